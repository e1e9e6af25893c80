"""API of the casebook (issue 9 contract): a subject's visits and forms, form save and history,
queries. Same rules and words as the pages; errors in the one format `{code, message, item}`."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils import translation
from ninja import Router, Schema, Status

from cartrial.apps import text
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.casebook import entries, selectors, services
from cartrial.apps.casebook.models import FormRecord, Query
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.casebook import QueryMove, QueryStatus
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.text import message_from_data

router = Router(tags=["casebook"])
queries_router = Router(tags=["casebook"])
forms_router = Router(tags=["casebook"])


class FormIn(Schema):
    items: dict[str, Any]
    reason: str = ""


class VisitIn(Schema):
    done_on: str | None = None
    missed: bool = False
    reason: str = ""


class QueryIn(Schema):
    visit: str
    form: str
    item: str
    text: str


class QueryTextIn(Schema):
    text: str = ""


class QueryCloseIn(Schema):
    reason: str = ""


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None, item: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item=item, value=value
        ) from None


@router.get("/{code}/visits", summary="A subject's visits: dates, window, status and forms")
def visits_list(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    rows = selectors.subject_visit_rows(
        reach.subject, protocol_in_force(), selectors.subject_today(reach.subject, reach.actor.now)
    )
    return {
        "visits": [
            {
                "code": row.code,
                "target": _iso(row.target),
                "earliest": _iso(row.earliest),
                "latest": _iso(row.latest),
                "status": row.status.value,
                "done_on": _iso(row.done_on),
                "forms": [{"code": form, "status": status.value} for form, status in row.forms],
            }
            for row in rows
        ]
    }


@router.get(
    "/{code}/disease-activity",
    summary="A subject's lupus activity by visit: SLEDAI-2K, clinical SLEDAI, DORIS, drug-free DORIS, LLDAS, SRI-4",
)
def disease_activity(request: HttpRequest, code: str) -> dict[str, Any]:
    """The scores stored with each lupus activity form (keys of `cartrial endpoints`, null when not
    assessable), with the protocol version each form was captured under."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    activity = selectors.disease_activity(reach.subject, protocol_in_force())
    return {
        "visits": [
            {
                "code": v.code,
                "sledai": v.sledai,
                "clinical_sledai": v.clinical_sledai,
                "doris": v.doris,
                "drug_free_doris": v.drug_free_doris,
                "lldas": v.lldas,
                "sri4": v.sri4,
                "protocol_version": v.protocol_version,
            }
            for v in activity.visits
        ],
        "doris_sustained_from": activity.doris_sustained_from,
    }


@router.put("/{code}/visits/{visit}", summary="Record a visit as done on a date, or missed with a reason")
def visit_record(request: HttpRequest, code: str, visit: str, payload: VisitIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
    protocol = protocol_in_force()
    if payload.missed:
        row = reach.run(
            lambda: services.visit_missed_record(
                actor=reach.actor, subject=reach.subject, protocol=protocol, visit_code=visit, reason=payload.reason
            )
        )
    else:
        done_on = _date(payload.done_on, "done_on")
        row = reach.run(
            lambda: services.visit_done_record(
                actor=reach.actor,
                subject=reach.subject,
                protocol=protocol,
                visit_code=visit,
                done_on=done_on,
                reason=payload.reason,
            )
        )
    return {"visit": row.visit_code, "outcome": row.outcome, "done_on": _iso(row.done_on), "reason": row.missed_reason}


def _form_document(record: FormRecord | None, visit: str, form: str) -> dict[str, Any]:
    if record is None:
        return {
            "form": form,
            "visit": visit,
            "status": FormStatus.NOT_STARTED.value,
            "protocol_version": None,
            "items": {},
        }
    return {
        "form": record.form_code,
        "visit": record.visit_code,
        "status": record.status,
        "protocol_version": record.protocol_version.version,
        "items": record.values_json,
        "verified_items": sorted(record.verified_json),
    }


@router.get("/{code}/visits/{visit}/forms/{form}", summary="A form of a visit: status, protocol version, items")
def form_get(request: HttpRequest, code: str, visit: str, form: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    protocol = protocol_in_force()
    services.form_definition(protocol, visit, form)
    return _form_document(selectors.form_record_get(reach.subject, visit, form), visit, form)


@router.put(
    "/{code}/visits/{visit}/forms/{form}",
    summary="Save a form's items (a reason for every change after the first save); 409 when locked",
)
def form_put(request: HttpRequest, code: str, visit: str, form: str, payload: FormIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
    protocol = protocol_in_force()
    saved = reach.run(
        lambda: services.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code=visit,
            form_code=form,
            items=payload.items,
            reason=payload.reason,
        )
    )
    document = _form_document(saved.record, visit, form)
    document["queries_opened"] = [q.pk for q in saved.queries_opened]
    document["queries_closed"] = [q.pk for q in saved.queries_closed]
    return document


@router.get("/{code}/visits/{visit}/forms/{form}/history", summary="Every change of the form's items")
def form_history(request: HttpRequest, code: str, visit: str, form: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    record = selectors.form_record_get(reach.subject, visit, form)
    if record is None:
        raise NotFound("No saved form {form} at {visit}.", code="not_found", form=form, visit=visit)
    return {
        "changes": [
            {"item": c.item, "old": c.old, "new": c.new, "user": c.user, "at": c.at.isoformat(), "reason": c.reason}
            for c in selectors.form_history(record)
        ]
    }


def query_document(query: Query, language: str) -> dict[str, Any]:
    """A query as the API shows it (an edit check's text in the request's language)."""
    question = query.text
    if query.message_json:
        with translation.override(language):
            question = text.render(message_from_data(query.message_json), language)
    return {
        "id": query.pk,
        "status": query.status,
        "subject": query.subject.code,
        "visit": query.visit_code,
        "form": query.form_code,
        "item": query.item,
        "origin": query.origin,
        "check": query.check_code or None,
        "text": question,
        "raised_at": query.raised_at.isoformat(),
        "thread": [
            {"move": m.move, "text": m.text, "by": m.by_name, "at": m.at.isoformat()} for m in query.messages.all()
        ],
    }


@router.post("/{code}/queries", response={201: dict[str, Any]}, summary="Raise a query on an item of a form")
def query_raise(request: HttpRequest, code: str, payload: QueryIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.RAISE_QUERY)
    protocol = protocol_in_force()
    query = reach.run(
        lambda: services.query_raise(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code=payload.visit,
            form_code=payload.form,
            item=payload.item,
            text=payload.text,
        )
    )
    return Status(201, query_document(query, text.api_language(request)))


@queries_router.get("", summary="Queries on the subjects in your scope (?status=open|answered|closed)")
def queries_list(request: HttpRequest, status: str | None = None, center: str | None = None) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    if status is not None and status not in {s.value for s in QueryStatus}:
        raise InvalidInput("Unknown query status '{status}'.", code="invalid_status", item="status", status=status)
    language = text.api_language(request)
    rows = selectors.queries_in_scope(scope, status=status, center_code=center).prefetch_related("messages")
    return {"queries": [query_document(q, language) for q in rows]}


def _move(request: HttpRequest, query_id: int, move: QueryMove, words: str, action: Action) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    found = selectors.query_get(scope, query_id)
    reach = reach_subject(request.user, found.subject.code, action)
    query = reach.run(lambda: services.query_move(actor=reach.actor, query=found, move=move, text=words))
    return query_document(query, text.api_language(request))


@queries_router.post("/{query_id}/answer", summary="The center answers a query")
def query_answer(request: HttpRequest, query_id: int, payload: QueryTextIn) -> dict[str, Any]:
    return _move(request, query_id, QueryMove.ANSWER, payload.text, Action.ANSWER_QUERY)


@queries_router.post("/{query_id}/close", summary="The monitor or data manager closes a query, with a reason")
def query_close(request: HttpRequest, query_id: int, payload: QueryCloseIn) -> dict[str, Any]:
    return _move(request, query_id, QueryMove.CLOSE, payload.reason, Action.CLOSE_QUERY)


@queries_router.post("/{query_id}/reopen", summary="The monitor or data manager reopens a query")
def query_reopen(request: HttpRequest, query_id: int, payload: QueryTextIn) -> dict[str, Any]:
    return _move(request, query_id, QueryMove.REOPEN, payload.text, Action.CLOSE_QUERY)


@forms_router.post(
    "/{form}/import.csv",
    summary="Import one form for many visits (CSV: subject, visit, done_on, then the item columns): all rows or none",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def forms_import(request: HttpRequest, form: str, reason: str = "") -> dict[str, Any]:
    """The same engine as the pages and the form PUT: each row is one form of one visit; a row
    refused names its line and item, and nothing of the file is stored."""
    protocol = protocol_in_force()
    definition = protocol.forms.get(form)
    if definition is None:
        raise NotFound("No form '{form}' in the protocol.", code="form_unknown", item="form", form=form)
    rows = entries.import_rows(request.body, definition)
    reaches = {}
    for row in rows:
        if row.subject not in reaches:
            reaches[row.subject] = reach_subject(request.user, row.subject, Action.ENTER_FORM_DATA)
    first = next(iter(reaches.values()))
    now = first.actor.now

    def work() -> list[services.FormSaved]:
        saved = []
        for row in rows:
            reach = reaches[row.subject]
            actor = replace(reach.actor, now=now)
            try:
                if row.done_on:
                    services.visit_done_record(
                        actor=actor,
                        subject=reach.subject,
                        protocol=protocol,
                        visit_code=row.visit,
                        done_on=_date(row.done_on, "done_on"),
                        reason=reason,
                    )
                saved.append(
                    services.form_save(
                        actor=actor,
                        subject=reach.subject,
                        protocol=protocol,
                        visit_code=row.visit,
                        form_code=form,
                        items=row.items,
                        reason=reason,
                    )
                )
            except (AccessDenied, NotFound):
                raise
            except DomainError as error:
                raise InvalidInput(
                    "Line {line}: {problem}", code=error.code, item=error.item, line=row.line, problem=error.message
                ) from None
        return saved

    saved = first.run(work, what=f"import {form}")
    return {
        "form": form,
        "rows": len(rows),
        "changed": sum(1 for s in saved if s.changed),
        "queries_opened": [q.pk for s in saved for q in s.queries_opened],
    }
