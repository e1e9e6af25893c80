"""Pages of the safety app: a subject's adverse events with their SAE clocks, the lab grades to
record, the DLT window; a new AE; one AE (correction, SAE reports, relatedness, history); the term
picker's search. Adapters only: access through the entry point, work in the services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from cartrial.apps.access import can, reach_subject, require_somewhere
from cartrial.apps.accounts.signing import posted_code
from cartrial.apps.fields import center_wall_clock
from cartrial.apps.logistics.templatetags.logistics_tags import local_utc
from cartrial.apps.safety import entries, selectors, services
from cartrial.apps.safety.models import AdverseEvent, DltAssessment
from cartrial.apps.text import error_text
from cartrial.apps.text import render as render_message
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.safety.adverse_events import (
    ACTION_LABELS,
    OUTCOME_LABELS,
    RELATEDNESS_LABELS,
    SERIOUSNESS_LABELS,
    ActionTaken,
    Outcome,
    Relatedness,
    Seriousness,
    choice,
)
from cartrial.domain.safety.rules import SafetyRules
from cartrial.domain.safety.sae_clock import (
    REPORT_KIND_LABELS,
    REPORT_STATUS_LABELS,
    ReportKind,
    SaeClockState,
)
from cartrial.domain.safety.terms import AESI_LABELS, AesiCategory, term_list, term_search
from cartrial.domain.text import N_


def _language() -> str:
    return (get_language() or "fr")[:2]


def _term_label(code: str) -> str:
    term = term_list().terms.get(code)
    return term.label_in(_language()) if term else code


def _clock_view(state: SaeClockState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    upcoming = state.next_due
    return {
        "closed": state.closed,
        "overdue": state.overdue,
        "next_kind": _(REPORT_KIND_LABELS[upcoming.kind]) if upcoming else "",
        "next_due": upcoming.due_at if upcoming else None,
        "reports": [
            {
                "code": r.kind.value,
                "kind": _(REPORT_KIND_LABELS[r.kind]),
                "due_at": r.due_at,
                "due_utc": r.due_at.astimezone(UTC).isoformat(),
                "sent_at": r.sent_at,
                "status": r.status.value,
                "status_label": _(REPORT_STATUS_LABELS[r.status]),
            }
            for r in state.reports
        ],
    }


def _ae_view(ae: AdverseEvent, rules: SafetyRules, now: Any) -> dict[str, Any]:
    return {
        "ae": ae,
        "term": _term_label(ae.term),
        "aesi": _(AESI_LABELS[AesiCategory(ae.aesi)]) if ae.aesi else "",
        "criteria": [_(SERIOUSNESS_LABELS[Seriousness(c)]) for c in ae.seriousness_criteria],
        "cart": _(RELATEDNESS_LABELS[Relatedness(ae.relatedness_cart)]) if ae.relatedness_cart else "",
        "ld": _(RELATEDNESS_LABELS[Relatedness(ae.relatedness_ld)]) if ae.relatedness_ld else "",
        "outcome": _(OUTCOME_LABELS[Outcome(ae.outcome)]),
        "action": _(ACTION_LABELS[ActionTaken(ae.action)]),
        "clock": _clock_view(selectors.sae_clock(ae, rules, now)),
    }


def _choices() -> dict[str, Any]:
    return {
        "criteria_choices": [(c.value, _(label)) for c, label in SERIOUSNESS_LABELS.items()],
        "action_choices": [(a.value, _(label)) for a, label in ACTION_LABELS.items()],
        "outcome_choices": [(o.value, _(label)) for o, label in OUTCOME_LABELS.items()],
        "relatedness_choices": [(r.value, _(label)) for r, label in RELATEDNESS_LABELS.items()],
        "report_choices": [(k.value, _(label)) for k, label in REPORT_KIND_LABELS.items()],
        "terms": [(t.code, t.label_in(_language()), list(t.grades)) for t in term_list().terms.values()],
    }


@login_required
@require_http_methods(["GET", "POST"])
def subject_safety(request: HttpRequest, code: str) -> HttpResponse:
    """A subject's AEs, the lab grades proposed from the eCRF, the DLT window. A posted action is
    reached for first, so a role refused it has the attempt recorded whether it reads safety or not."""
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    error = ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op == "accept_lab":
                acting = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
                record_id = _int(request.POST.get("record"), "record")
                item = request.POST.get("item", "")
                acting.run(
                    lambda: services.lab_proposal_accept(
                        actor=acting.actor, subject=acting.subject, protocol=protocol, record_id=record_id, item=item
                    ),
                    what="record lab grade",
                )
                messages.success(request, _("The lab grade is recorded as an adverse event."))
            elif op == "dlt":
                acting = reach_subject(request.user, code, Action.DECIDE_DLT)
                decision = services.DltDecisionInput(
                    decision=DltAssessment.Decision(
                        choice(DltAssessment.Decision, request.POST.get("decision"), "decision")
                    ),
                    comment=request.POST.get("comment", ""),
                    password=request.POST.get("password", ""),
                    otp_code=posted_code(request),
                )
                ae_id = _int(request.POST.get("adverse_event"), "adverse_event")
                acting.run(
                    lambda: services.dlt_decide(
                        actor=acting.actor,
                        user=acting.user,
                        subject=acting.subject,
                        protocol=protocol,
                        ae_id=ae_id,
                        decision=decision,
                    ),
                    what="decide dlt",
                )
                messages.success(request, _("The DLT decision is signed."))
            else:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            return redirect("safety:subject", code=code)
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    events = list(selectors.adverse_events_of(reach.subject))
    proposals = selectors.lab_grade_proposals(reach.subject, protocol)
    context = {
        "subject": reach.subject,
        "events": [_ae_view(ae, rules, reach.actor.now) for ae in events],
        "proposals": [
            {
                "p": p,
                "term": _term_label(p.term),
                "band": render_message(p.band),
                "count": len(p.grades),
            }
            for p in proposals
        ],
        "excluded_terms": sorted(_term_label(term) for term in rules.lab_proposals_exclude_terms),
        "dlt_rows": [
            {
                "row": row,
                "term": _term_label(row.adverse_event.term),
                "rule": row.candidate.rule.label.get(_language(), row.candidate.rule.code),
            }
            for row in selectors.dlt_panel(reach.subject, rules, events)
        ],
        "window": rules.dlt.window_days,
        "can_record": can(reach.scope, Action.RECORD_ADVERSE_EVENT, reach.subject),
        "can_decide": can(reach.scope, Action.DECIDE_DLT, reach.subject),
        "meanings": {d.value: _(m) for d, m in services.DLT_MEANINGS.items()},
        "error": error,
    }
    return render(request, "safety/subject.html", context, status=422 if error else 200)


def _int(value: Any, item: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidInput("{item}: '{value}' is not a number.", code="item_type", item=item, value=value) from None


@login_required
@require_http_methods(["GET", "POST"])
def adverse_event_new(request: HttpRequest, code: str) -> HttpResponse:
    """Record an adverse event (coordinator or investigator)."""
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT, record=request.method == "POST")
    protocol = protocol_in_force()
    error, item = "", ""
    if request.method == "POST":
        try:
            ae = reach.run(
                lambda: services.adverse_event_record(
                    actor=reach.actor,
                    subject=reach.subject,
                    protocol=protocol,
                    data=entries.read_adverse_event(
                        request.POST, reach.subject.center.time_zone, request.POST.getlist("seriousness_criteria")
                    ),
                ),
                what="record adverse event",
            )
        except DomainError as refusal:
            if isinstance(refusal, AccessDenied | NotFound):
                raise
            error, item = error_text(refusal), refusal.item or ""
        else:
            messages.success(request, _("The adverse event is recorded."))
            return redirect("safety:adverse_event", code=code, ae_id=ae.pk)
    values = {**request.POST.dict(), "criteria": request.POST.getlist("seriousness_criteria")}
    context = {"subject": reach.subject, "values": values, "error": error, "error_item": item, **_choices()}
    return render(request, "safety/new.html", context, status=422 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def adverse_event_page(request: HttpRequest, code: str, ae_id: int) -> HttpResponse:
    """One AE: its values and SAE clock; correction with a reason, SAE report, relatedness; history."""
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    ae = selectors.adverse_event_get(reach.subject, ae_id)
    error, item = "", ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        try:
            if op == "correct":
                acting = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
                raw = {k: request.POST.get(k, "") for k in services.RECORDED_FIELDS if k != "seriousness_criteria"}
                raw["serious"] = request.POST.get("serious", "")
                acting.run(
                    lambda: services.adverse_event_correct(
                        actor=acting.actor,
                        subject=acting.subject,
                        protocol=protocol,
                        ae=ae,
                        changes=entries.read_fields(
                            {**raw, "seriousness_criteria": True},
                            acting.subject.center.time_zone,
                            request.POST.getlist("seriousness_criteria"),
                        ),
                        reason=request.POST.get("reason", ""),
                    ),
                    what="correct adverse event",
                )
                messages.success(request, _("The adverse event is corrected."))
            elif op == "report":
                acting = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
                kind = ReportKind(choice(ReportKind, request.POST.get("kind"), "kind"))
                sent_at = entries.read_instant(request.POST.get("sent_at"), "sent_at", acting.subject.center.time_zone)
                if sent_at is None:
                    raise InvalidInput("{item}: a value is required.", code="item_required", item="sent_at")
                acting.run(
                    lambda: services.sae_report_record(
                        actor=acting.actor, subject=acting.subject, ae=ae, kind=kind, sent_at=sent_at
                    ),
                    what="record sae report",
                )
                messages.success(request, _("The SAE report is recorded."))
            elif op == "relatedness":
                acting = reach_subject(request.user, code, Action.ASSESS_RELATEDNESS)
                cart = Relatedness(choice(Relatedness, request.POST.get("cart"), "cart"))
                ld = Relatedness(choice(Relatedness, request.POST.get("lymphodepletion"), "lymphodepletion"))
                acting.run(
                    lambda: services.relatedness_assess(
                        actor=acting.actor,
                        user=acting.user,
                        subject=acting.subject,
                        ae=ae,
                        cart=cart,
                        lymphodepletion=ld,
                        password=request.POST.get("password", ""),
                        otp_code=posted_code(request),
                    ),
                    what="assess relatedness",
                )
                messages.success(request, _("The relatedness assessment is signed."))
            else:
                raise InvalidInput("Unknown operation.", code="unknown_operation", item="op")
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error, item = error_text(refusal), refusal.item or ""
            ae = selectors.adverse_event_get(reach.subject, ae_id)
        else:
            return redirect("safety:adverse_event", code=code, ae_id=ae_id)
    zone = reach.subject.center.time_zone
    history = [
        {
            "c": c,
            "field": _(HISTORY_FIELDS[c.field]) if c.field in HISTORY_FIELDS else c.field,
            "old": _history_value(c.field, c.old, zone),
            "new": _history_value(c.field, c.new, zone),
        }
        for c in selectors.adverse_event_history(ae)
    ]
    context = {
        "subject": reach.subject,
        "v": _ae_view(ae, rules, reach.actor.now),
        "values": _form_values(ae),
        "history": history,
        "can_record": can(reach.scope, Action.RECORD_ADVERSE_EVENT, reach.subject),
        "can_assess": can(reach.scope, Action.ASSESS_RELATEDNESS, reach.subject),
        "relatedness_meaning": _(services.RELATEDNESS_MEANING),
        "error": error,
        "error_item": item,
        **_choices(),
    }
    return render(request, "safety/adverse_event.html", context, status=422 if error else 200)


# The fields of an AE's history, by their form labels.
HISTORY_FIELDS: dict[str, str] = {
    "term": N_("CTCAE v5.0 term"),
    "grade": N_("Grade"),
    "start_date": N_("Start date"),
    "end_date": N_("End date"),
    "serious": N_("Serious"),
    "seriousness_criteria": N_("Seriousness (ICH E2A)"),
    "awareness_at": N_("Site aware of it at (center time)"),
    "action": N_("Action taken"),
    "outcome": N_("Outcome"),
    "ctcae_version": N_("CTCAE version"),
    "aesi": N_("Special interest"),
    "source": N_("from lab"),
    "lab_sources": N_("Lab values"),
    "relatedness_cart": N_("To the CAR-T product"),
    "relatedness_ld": N_("To lymphodepletion"),
    "signature": N_("Sign"),
}


def _history_value(field: str, value: Any, zone: str) -> str:
    """A value of the AE's history as the reader says it (labels, yes/no, the center's time)."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    labelled: dict[str, Any] = {
        "action": lambda v: _(ACTION_LABELS[ActionTaken(v)]),
        "outcome": lambda v: _(OUTCOME_LABELS[Outcome(v)]),
        "relatedness_cart": lambda v: _(RELATEDNESS_LABELS[Relatedness(v)]),
        "relatedness_ld": lambda v: _(RELATEDNESS_LABELS[Relatedness(v)]),
        "aesi": lambda v: _(AESI_LABELS[AesiCategory(v)]),
        "term": _term_label,
        "seriousness_criteria": lambda v: ", ".join(_(SERIOUSNESS_LABELS[Seriousness(c)]) for c in v),
        "awareness_at": lambda v: local_utc(datetime.fromisoformat(v), zone),
    }
    try:
        return str(labelled[field](value)) if field in labelled else str(value)
    except (KeyError, ValueError, TypeError):
        return str(value)


def _form_values(ae: AdverseEvent) -> dict[str, Any]:
    """The AE's values as its form shows them (dates ISO, awareness in the center's time)."""
    zone = ae.subject.center.time_zone
    awareness = center_wall_clock(ae.awareness_at, zone) if ae.awareness_at else None
    return {
        "term": ae.term,
        "grade": ae.grade,
        "start_date": ae.start_date.isoformat(),
        "end_date": ae.end_date.isoformat() if ae.end_date else "",
        "serious": ae.serious,
        "criteria": list(ae.seriousness_criteria),
        "awareness_at": awareness.strftime("%Y-%m-%dT%H:%M") if awareness else "",
        "action": ae.action,
        "outcome": ae.outcome,
    }


@login_required
@require_GET
def term_options(request: HttpRequest) -> HttpResponse:
    """The term picker's search: `<option>`s of the terms matching `q` (htmx swaps them in)."""
    require_somewhere(request.user, Action.READ_SAFETY, "ctcae_terms")
    language = _language()
    found = [
        (t.code, t.label_in(language), list(t.grades))
        for t in term_search(request.GET.get("q") or request.GET.get("term", ""), limit=30)
    ]
    return render(request, "safety/_term_options.html", {"terms": found})
