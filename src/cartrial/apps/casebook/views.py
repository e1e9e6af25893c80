"""Pages of the casebook: the study grid, a center's worklist, a subject's visits, a visit, a form
(entry, queries, SDV, lock), a form's history and the query inbox.

Adapters only: every subject is reached through the access entry point with the action the page
needs (reading the casebook, entering data, raising or answering queries, verifying, locking,
signing); the services do the work in one transaction, audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cartrial.apps import clock
from cartrial.apps.access import Reach, can, centers_for, reach_subject, require_somewhere
from cartrial.apps.accounts.signing import posted_code
from cartrial.apps.casebook import entries, presenters, selectors, services
from cartrial.apps.text import error_text
from cartrial.apps.text import render as render_message
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.casebook import QueryMove, QueryStatus
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.text import message_from_data


def _center_choice(request: HttpRequest, codes: list[str]) -> str | None:
    chosen = request.GET.get("center") or None
    return chosen if chosen in codes else None


@login_required
def study_grid(request: HttpRequest) -> HttpResponse:
    """Every included subject of the user's scope × the protocol's visits, status by colour."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "casebook")
    codes = sorted(scope.center_codes[c] for c in centers_for(scope, Action.READ_CASEBOOK))
    center = _center_choice(request, codes)
    protocol = protocol_in_force()
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    grid, page, pages = selectors.study_grid_page(scope, protocol, clock.now(), page=page, center_code=center)
    visits = [(v.code, presenters.text_of(v.label)) for v in protocol.visits]
    visit_url = reverse("casebook:visit", args=["SUBJECT", "VISIT"]).replace("SUBJECT", "{subject}")
    visit_url = visit_url.replace("VISIT", "{visit}")
    rows = [
        {
            "subject": row.subject,
            "cells": presenters.grid_cells(row.subject.code, (v for v in row.visits if not v.unscheduled), visit_url),
        }
        for row in grid
    ]
    context = {
        "rows": rows,
        "visits": visits,
        "centers": codes,
        "center": center or "",
        "legend": presenters.visit_status_legend(),
        "page": page,
        "pages": pages,
        "page_links": presenters.page_links(page, pages),
    }
    return render(request, "casebook/grid.html", context)


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    """A center's visits overdue, due now and coming this week."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "worklist")
    codes = sorted(scope.center_codes[c] for c in centers_for(scope, Action.READ_CASEBOOK))
    center = _center_choice(request, codes)
    work = selectors.center_worklist(scope, protocol_in_force(), clock.now(), center_code=center)

    def rows(entries: list[selectors.WorklistRow]) -> list[dict[str, Any]]:
        return [
            {
                "subject": e.subject,
                "visit": e.visit,
                "label": presenters.text_of(e.label),
                "status": presenters.visit_status_view(e.visit.status),
            }
            for e in entries
        ]

    context = {
        "sections": [
            (_("Overdue"), rows(work.overdue), "overdue"),
            (_("Due now (window open)"), rows(work.due), "due"),
            (_("Coming within 7 days"), rows(work.upcoming), "upcoming"),
        ],
        "centers": codes,
        "center": center or "",
    }
    return render(request, "casebook/worklist.html", context)


def _visit_rows(reach: Reach) -> list[dict[str, Any]]:
    today = selectors.subject_today(reach.subject, reach.actor.now)
    protocol = protocol_in_force()
    return [
        {
            "row": row,
            "label": presenters.text_of(row.label),
            "status": presenters.visit_status_view(row.status),
            "forms": [
                {
                    "code": code,
                    "label": presenters.form_label(protocol, code),
                    "status": presenters.form_status_view(status),
                }
                for code, status in row.forms
            ],
        }
        for row in selectors.subject_visit_rows(reach.subject, protocol, today)
    ]


@login_required
@require_http_methods(["GET", "POST"])
def subject_casebook(request: HttpRequest, code: str) -> HttpResponse:
    """A subject's visits (grid of statuses and forms), unscheduled visits, lock and signature."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    error = ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op == "lock":
                acting = reach_subject(request.user, code, Action.LOCK_DATA)
                acting.run(
                    lambda: services.subject_forms_lock(actor=acting.actor, subject=acting.subject),
                    what="lock subject",
                )
                messages.success(request, _("Every saved form of the casebook is locked."))
            elif op == "sign":
                acting = reach_subject(request.user, code, Action.SIGN_CASEBOOK)
                acting.run(
                    lambda: services.casebook_sign(
                        actor=acting.actor,
                        user=acting.user,
                        subject=acting.subject,
                        password=request.POST.get("password", ""),
                        otp_code=posted_code(request),
                    ),
                    what="sign casebook",
                )
                messages.success(request, _("The casebook is signed."))
            elif op == "unscheduled":
                acting = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
                done_on = _posted_date(request.POST.get("done_on", ""), "done_on")
                added = acting.run(
                    lambda: services.unscheduled_visit_record(
                        actor=acting.actor, subject=acting.subject, protocol=protocol_in_force(), done_on=done_on
                    ),
                    what="unscheduled visit",
                )
                return redirect("casebook:visit", code=code, visit=added.visit_code)
            else:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            return redirect("casebook:subject", code=code)
    signature = services.casebook_signature_in_force(reach.subject)
    visit_rows = _visit_rows(reach)
    activity = selectors.disease_activity(reach.subject, protocol_in_force())
    context = {
        "subject": reach.subject,
        "visits": visit_rows,
        **_activity_context(activity, visit_rows),
        "doris_sustained_from": activity.doris_sustained_from,
        "signature": signature.signature if signature else None,
        "can_enter": can(reach.scope, Action.ENTER_FORM_DATA, reach.subject),
        "can_lock": can(reach.scope, Action.LOCK_DATA, reach.subject),
        "can_sign": can(reach.scope, Action.SIGN_CASEBOOK, reach.subject),
        "meaning": _(services.CASEBOOK_SIGNATURE_MEANING),
        "signed_meaning": _(signature.signature.meaning) if signature else "",
        "error": error,
    }
    return render(request, "casebook/subject.html", context, status=422 if error else 200)


def _posted_date(value: str, item: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item=item, value=value
        ) from None


@login_required
@require_http_methods(["GET", "POST"])
def visit_page(request: HttpRequest, code: str, visit: str) -> HttpResponse:
    """One visit: its date (or missed with a reason), its forms, lock of the visit."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    protocol = protocol_in_force()
    selectors.visit_definition(protocol, visit)
    error = ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op == "done":
                acting = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
                done_on = _posted_date(request.POST.get("done_on", ""), "done_on")
                acting.run(
                    lambda: services.visit_done_record(
                        actor=acting.actor,
                        subject=acting.subject,
                        protocol=protocol,
                        visit_code=visit,
                        done_on=done_on,
                        reason=request.POST.get("reason", ""),
                    ),
                    what="visit date",
                )
            elif op == "missed":
                acting = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
                acting.run(
                    lambda: services.visit_missed_record(
                        actor=acting.actor,
                        subject=acting.subject,
                        protocol=protocol,
                        visit_code=visit,
                        reason=request.POST.get("reason", ""),
                    ),
                    what="visit missed",
                )
            elif op == "lock":
                acting = reach_subject(request.user, code, Action.LOCK_DATA)
                acting.run(
                    lambda: services.visit_forms_lock(actor=acting.actor, subject=acting.subject, visit_code=visit),
                    what="lock",
                )
            elif op == "unlock":
                acting = reach_subject(request.user, code, Action.LOCK_DATA)
                acting.run(
                    lambda: services.visit_forms_unlock(
                        actor=acting.actor,
                        subject=acting.subject,
                        visit_code=visit,
                        reason=request.POST.get("reason", ""),
                    ),
                    what="unlock",
                )
            else:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            return redirect("casebook:visit", code=code, visit=visit)
    visit_rows = _visit_rows(reach)
    row = next((r for r in visit_rows if r["row"].code == visit), None)
    activity = selectors.disease_activity(reach.subject, protocol)
    context = {
        "subject": reach.subject,
        "visit": row,
        **_activity_context(activity, visit_rows, only=visit),
        "visit_code": visit,
        "record": selectors.visit_record_get(reach.subject, visit),
        "can_enter": can(reach.scope, Action.ENTER_FORM_DATA, reach.subject),
        "can_lock": can(reach.scope, Action.LOCK_DATA, reach.subject),
        "all_forms": sorted(
            ((code, presenters.form_label(protocol, code)) for code in protocol.forms), key=lambda pair: pair[1]
        ),
        "error": error,
    }
    return render(request, "casebook/visit.html", context, status=422 if error else 200)


def _activity_context(
    activity: selectors.DiseaseActivity, visit_rows: list[dict[str, Any]], only: str | None = None
) -> dict[str, Any]:
    """The disease-activity table: one row per visit with a lupus activity form (or only `only`)."""
    form = selectors.activity_form(protocol_in_force())
    labels = {r["row"].code: r["label"] for r in visit_rows}
    return {
        "activity_form": form.code if form else "",
        "activity_rows": [
            presenters.activity_view(v, labels.get(v.code, v.code))
            for v in activity.visits
            if only is None or v.code == only
        ],
    }


def _query_views(queries: Any) -> list[dict[str, Any]]:
    """Queries as people read them: the form's and the item's labels, the edit check's message in
    the page's language (its stored English text is for the audit trail)."""
    protocol = protocol_in_force()
    views = []
    for query in queries:
        text = query.text
        if query.message_json:
            text = render_message(message_from_data(query.message_json))
        thread = [
            {
                "message": m,
                "text": text if query.message_json and m.move == QueryMove.RAISE.value else m.text,
                "move": presenters.query_move_label(m.move),
                "by": m.by_name or _("Edit check"),
            }
            for m in query.messages.all()
        ]
        views.append(
            {
                "query": query,
                "text": text,
                "status": presenters.query_status_label(query.status),
                "item": presenters.item_label(protocol, query.form_code, query.item),
                "form": presenters.form_label(protocol, query.form_code),
                "thread": thread,
            }
        )
    return views


@login_required
@require_http_methods(["GET", "POST"])
def form_page(request: HttpRequest, code: str, visit: str, form: str) -> HttpResponse:
    """One form of one visit: entry through the eCRF engine (a reason for each later change), its
    queries beside the items, SDV for the monitor, lock and unlock for the data manager."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    protocol = protocol_in_force()
    definition = services.form_definition(protocol, visit, form)
    error = ""
    error_item = ""
    posted: dict[str, Any] | None = None
    if request.method == "POST":
        op = request.POST.get("op", "save")
        try:
            if op == "save":
                acting = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
                posted = entries.posted_items(definition, request.POST)
                saved = acting.run(
                    lambda: services.form_save(
                        actor=acting.actor,
                        subject=acting.subject,
                        protocol=protocol,
                        visit_code=visit,
                        form_code=form,
                        items=posted or {},
                        reason=request.POST.get("reason", ""),
                    ),
                    what=f"save {visit}/{form}",
                )
                if saved.queries_opened:
                    messages.warning(
                        request,
                        _("Saved. An edit check opened %(count)d query: see below.")
                        % {"count": len(saved.queries_opened)},
                    )
                else:
                    messages.success(request, _("Saved."))
            elif op == "query":
                acting = reach_subject(request.user, code, Action.RAISE_QUERY)
                acting.run(
                    lambda: services.query_raise(
                        actor=acting.actor,
                        subject=acting.subject,
                        protocol=protocol,
                        visit_code=visit,
                        form_code=form,
                        item=request.POST.get("item", ""),
                        text=request.POST.get("text", ""),
                    ),
                    what="raise query",
                )
            elif op == "verify":
                acting = reach_subject(request.user, code, Action.VERIFY_SOURCE)
                record = selectors.form_record_saved(acting.subject, visit, form)
                chosen = request.POST.getlist("verify") or None
                acting.run(
                    lambda: services.form_verify(actor=acting.actor, record=record, protocol=protocol, items=chosen),
                    what="verify",
                )
            elif op == "lock":
                acting = reach_subject(request.user, code, Action.LOCK_DATA)
                record = selectors.form_record_saved(acting.subject, visit, form)
                acting.run(lambda: services.forms_lock(actor=acting.actor, records=[record]), what="lock")
            elif op == "unlock":
                acting = reach_subject(request.user, code, Action.LOCK_DATA)
                record = selectors.form_record_saved(acting.subject, visit, form)
                reason = request.POST.get("reason", "")
                acting.run(
                    lambda: services.forms_unlock(actor=acting.actor, records=[record], reason=reason), what="unlock"
                )
            elif op in ("answer", "close", "reopen"):
                _query_move_from_post(request, reach, op)
            else:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
            error_item = refusal.item or ""
        else:
            return redirect("casebook:form", code=code, visit=visit, form=form)
    stored = selectors.form_record_get(reach.subject, visit, form)
    values = stored.values_json if stored else {}
    if posted is not None:
        values = posted
    queries = list(selectors.form_queries(reach.subject, visit, form))
    status = FormStatus(stored.status) if stored else FormStatus.NOT_STARTED
    frozen = stored is not None and services.frozen(stored)
    can_enter = can(reach.scope, Action.ENTER_FORM_DATA, reach.subject)
    context = {
        "subject": reach.subject,
        "visit_code": visit,
        "form_code": form,
        "form_label": presenters.text_of(definition.label),
        "groups": presenters.form_view(definition, values, stored.verified_json if stored else {}, queries),
        "record": stored,
        "status": presenters.form_status_view(status),
        "frozen": frozen,
        # Values are shown in disabled inputs to whoever may not change them (locked, or not their role).
        "read_only": frozen or not can_enter,
        "queries": _query_views(queries),
        "items": [(i.name, presenters.text_of(i.label)) for i in definition.items],
        "can_enter": can_enter,
        "can_query": can(reach.scope, Action.RAISE_QUERY, reach.subject),
        "can_answer": can(reach.scope, Action.ANSWER_QUERY, reach.subject),
        "can_close": can(reach.scope, Action.CLOSE_QUERY, reach.subject),
        "can_verify": can(reach.scope, Action.VERIFY_SOURCE, reach.subject),
        "can_lock": can(reach.scope, Action.LOCK_DATA, reach.subject),
        "error": error,
        "error_item": error_item,
        "error_at_item": error_item in {i.name for i in definition.items},
        "reason": request.POST.get("reason", "") if error else "",
    }
    return render(request, "casebook/form.html", context, status=422 if error else 200)


_MOVES = {
    "answer": (QueryMove.ANSWER, Action.ANSWER_QUERY),
    "close": (QueryMove.CLOSE, Action.CLOSE_QUERY),
    "reopen": (QueryMove.REOPEN, Action.CLOSE_QUERY),
}


def _query_move_from_post(request: HttpRequest, reach: Reach, op: str) -> None:
    move, action = _MOVES[op]
    try:
        query_id = int(request.POST.get("query", ""))
    except ValueError:
        raise InvalidInput("Which query?", code="query_unknown", item="query") from None
    query = selectors.query_get(reach.scope, query_id)
    acting = reach_subject(request.user, query.subject.code, action)
    acting.run(
        lambda: services.query_move(actor=acting.actor, query=query, move=move, text=request.POST.get("text", "")),
        what=f"query {op}",
    )


@login_required
def form_history(request: HttpRequest, code: str, visit: str, form: str) -> HttpResponse:
    """Every change of the form's items: old → new, who, when, why."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    definition = services.form_definition(protocol_in_force(), visit, form)
    record = selectors.form_record_get(reach.subject, visit, form)
    labels = {i.name: presenters.text_of(i.label) for i in definition.items}
    labels.update({g.name: presenters.text_of(g.label) for g in definition.groups})
    changes = selectors.form_history(record) if record else []
    context = {
        "subject": reach.subject,
        "visit_code": visit,
        "form_code": form,
        "form_label": presenters.text_of(definition.label),
        "changes": [
            {
                "change": c,
                "label": labels.get(c.item, c.item),
                "old": presenters.shown_value(c.old),
                "new": presenters.shown_value(c.new),
            }
            for c in changes
        ],
    }
    return render(request, "casebook/history.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def query_inbox(request: HttpRequest) -> HttpResponse:
    """The queries of the user's scope by status and age: the center answers, the raiser closes."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    error = ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op not in _MOVES:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
            move, action = _MOVES[op]
            # Not a query's number (text, 100 000 digits): no such query, as for an unknown number.
            raw = request.POST.get("query", "").strip()
            query = selectors.query_get(scope, int(raw) if raw.isdecimal() and len(raw) <= 18 else 0)
            acting = reach_subject(request.user, query.subject.code, action)
            acting.run(
                lambda: services.query_move(
                    actor=acting.actor, query=query, move=move, text=request.POST.get("text", "")
                ),
                what=f"query {op}",
            )
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            return redirect(request.get_full_path())
    codes = sorted(scope.center_codes[c] for c in centers_for(scope, Action.READ_CASEBOOK))
    center = _center_choice(request, codes)
    status = request.GET.get("status", QueryStatus.OPEN.value)
    if status not in {s.value for s in QueryStatus} and status != "all":
        status = QueryStatus.OPEN.value
    queries = selectors.queries_in_scope(
        scope, status=None if status == "all" else status, center_code=center
    ).prefetch_related("messages")
    now = clock.now()
    rows = []
    for view in _query_views(queries):
        query = view["query"]
        view["age_days"] = (now - query.raised_at).days
        view["can_answer"] = can(scope, Action.ANSWER_QUERY, query.subject)
        view["can_close"] = can(scope, Action.CLOSE_QUERY, query.subject)
        rows.append(view)
    summary = selectors.queries_by_center((view["query"] for view in rows), now)
    context = {
        "rows": rows,
        "summary": summary,
        "status": status,
        "statuses": [(s.value, presenters.query_status_label(s.value)) for s in QueryStatus],
        "centers": codes,
        "center": center or "",
        "error": error,
    }
    return render(request, "casebook/queries.html", context, status=422 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def form_verify_page(request: HttpRequest, code: str, visit: str, form: str) -> HttpResponse:
    """Source-data verification: the form's values beside the source checklist, a box per item."""
    reach = reach_subject(request.user, code, Action.VERIFY_SOURCE, record=request.method == "POST")
    protocol = protocol_in_force()
    definition = services.form_definition(protocol, visit, form)
    error = ""
    record = selectors.form_record_get(reach.subject, visit, form)
    if request.method == "POST":
        try:
            found = selectors.form_record_saved(reach.subject, visit, form)
            chosen = request.POST.getlist("verify")
            reach.run(
                lambda: services.form_verify(actor=reach.actor, record=found, protocol=protocol, items=chosen),
                what="verify",
            )
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            messages.success(request, _("Verification recorded."))
            return redirect("casebook:verify", code=code, visit=visit, form=form)
    values = record.values_json if record else {}
    verified = record.verified_json if record else {}
    groups = presenters.form_view(definition, values, verified, [])
    context = {
        "subject": reach.subject,
        "visit_code": visit,
        "form_code": form,
        "form_label": presenters.text_of(definition.label),
        "groups": groups,
        "record": record,
        "status": presenters.form_status_view(FormStatus(record.status) if record else FormStatus.NOT_STARTED),
        "checklist": presenters.SOURCE_CHECKLIST,
        "error": error,
    }
    return render(request, "casebook/verify.html", context, status=422 if error else 200)
