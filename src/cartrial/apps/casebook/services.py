"""Writes of the casebook: visits done or missed, form saves with their edit checks, queries, SDV,
lock, unlock and the investigator's casebook signature.

Every function runs inside the caller's transaction (`Reach.run`), takes the action's one `now`
from `actor`, and writes one audit entry per record it changes. Lab items of a form are stored
in the one lab-observation store (clinical app), so the safety labs and kinetic markers entered
here are the ones the expected-biology model reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils.translation import gettext_noop

from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import signature_apply, signature_void
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.services import raise_alert
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, Query, QueryMessage, VisitRecord
from cartrial.apps.casebook.selectors import (
    casebook_signatures_in_force,
    form_context,
    in_time_order,
    overdue_visits,
    scheduled_visit_of,
    subject_anchors,
    subject_today,
    subject_visit_rows,
    visit_dates,
    visit_definition,
)
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.services import LabObservationInput, lab_observation_correct, lab_observations_record
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import protocol_version_of
from cartrial.domain.alerts import AlertKind, lab_finding_key, lab_findings
from cartrial.domain.casebook import (
    FROZEN_STATUSES,
    QueryMove,
    QueryOrigin,
    QueryStatus,
    casebook_content,
    changed_items,
    form_change_check,
    lock_check,
    query_move_check,
    query_text_check,
    reason_check,
    saved_status,
    sign_check,
    unlock_check,
    verify_check,
)
from cartrial.domain.ecrf import (
    FormContext,
    FormDef,
    FormStatus,
    derived_values,
    edit_check_findings,
    form_values_check,
)
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.text import ProtocolText, message_data
from cartrial.domain.visits import is_unscheduled, next_unscheduled_code, visit_date_check
from cartrial.protocols import Protocol

# Lab items of a form carry no sample time of their own: the sample is dated on the visit day at
# this local time of the center (a protocol convention, docs/casebook.md).
LAB_SAMPLE_LOCAL_TIME = time(8, 0)
FORM_LAB_CONTEXT = "casebook"


def form_definition(protocol: Protocol, visit_code: str, form_code: str) -> FormDef:
    """The protocol's form, if the visit collects it (an unscheduled visit may collect any form)."""
    form = protocol.forms.get(form_code)
    if form is None:
        raise NotFound("No form '{form}' in the protocol.", code="form_unknown", item="form", form=form_code)
    if not is_unscheduled(visit_code):
        visit = next((v for v in protocol.visits if v.code == visit_code), None)
        if visit is None:
            raise NotFound("No visit '{visit}' in the protocol.", code="visit_unknown", item="visit", visit=visit_code)
        if form_code not in visit.forms:
            raise InvalidInput(
                "The visit {visit} does not collect the form {form}.",
                code="form_not_in_visit",
                item="form",
                visit=visit_code,
                form=form_code,
            )
    return form


# --- visits -------------------------------------------------------------------------------------


def visit_done_record(
    *, actor: Actor, subject: Subject, protocol: Protocol, visit_code: str, done_on: date, reason: str = ""
) -> VisitRecord:
    """The visit took place on `done_on` (a later change of the date needs a reason)."""
    anchors = subject_anchors(subject)
    scheduled = scheduled_visit_of(protocol, anchors, visit_code)
    if scheduled is not None and scheduled.target is None:
        raise Refused(
            "The visit {visit} counts from a date not known yet for this subject (inclusion or infusion).",
            code="visit_anchor_unknown",
            item="visit",
            visit=visit_code,
        )
    visit_date_check(scheduled, done_on, subject_today(subject, actor.now), anchors.inclusion)
    row = VisitRecord.objects.filter(subject=subject, visit_code=visit_code).first()
    before = (
        None if row is None else {"outcome": row.outcome, "done_on": row.done_on, "missed_reason": row.missed_reason}
    )
    after = {"outcome": VisitRecord.Outcome.DONE.value, "done_on": done_on, "missed_reason": ""}
    why = reason_check(before, after, reason)
    if before is not None and not changed_items(before, after):
        return row  # type: ignore[return-value]
    if row is None:
        row = VisitRecord(subject=subject, visit_code=visit_code)
    row.outcome, row.done_on, row.missed_reason = VisitRecord.Outcome.DONE, done_on, ""
    row.recorded_by_id, row.recorded_at = actor.recording_user_id, actor.now
    row.save()
    _audit_visit(actor, subject, row, before, after, why)
    if before is not None and before["done_on"] != done_on:
        _visit_order_derive(actor, subject, protocol, visit_code)
    return row


def _visit_order_derive(actor: Actor, subject: Subject, protocol: Protocol, visit_code: str) -> None:
    """A visit's new date may change which visit comes before which: the forms whose derived items
    compare visits are derived again, each visit in the new order."""
    for form in protocol.forms.values():
        if not form.reads_other_visits:
            continue
        Subject.objects.select_for_update().filter(pk=subject.pk).first()
        series = _series_lock(subject, form, None)
        if not series:
            continue
        order = _time_order(protocol, subject, series)
        reason = REORDERED_REASON.format(visit=visit_code)
        _series_derive(actor, subject, form, series, order, order, {}, FormContext(), reason)


def unscheduled_visit_record(*, actor: Actor, subject: Subject, protocol: Protocol, done_on: date) -> VisitRecord:
    """An unscheduled visit done on `done_on`, under the subject's next unscheduled code (U1, U2...)."""
    existing = [row.code for row in subject_visit_rows(subject, protocol, subject_today(subject, actor.now))]
    return visit_done_record(
        actor=actor, subject=subject, protocol=protocol, visit_code=next_unscheduled_code(existing), done_on=done_on
    )


def visit_missed_record(
    *, actor: Actor, subject: Subject, protocol: Protocol, visit_code: str, reason: str
) -> VisitRecord:
    """The visit did not take place; why is required. A visit with saved forms cannot be missed."""
    visit_definition(protocol, visit_code)
    if not reason.strip():
        raise InvalidInput("Say why the visit was missed.", code="reason_required", item="reason")
    if FormRecord.objects.filter(subject=subject, visit_code=visit_code).exists():
        raise Refused(
            "The visit {visit} has saved forms: it took place and cannot be marked missed.",
            code="visit_has_forms",
            visit=visit_code,
        )
    row = VisitRecord.objects.filter(subject=subject, visit_code=visit_code).first()
    before = (
        None if row is None else {"outcome": row.outcome, "done_on": row.done_on, "missed_reason": row.missed_reason}
    )
    after = {"outcome": VisitRecord.Outcome.MISSED.value, "done_on": None, "missed_reason": reason.strip()}
    if row is None:
        row = VisitRecord(subject=subject, visit_code=visit_code)
    row.outcome, row.done_on, row.missed_reason = VisitRecord.Outcome.MISSED, None, reason.strip()
    row.recorded_by_id, row.recorded_at = actor.recording_user_id, actor.now
    row.save()
    _audit_visit(actor, subject, row, before, after, reason.strip() if before is not None else "")
    return row


def _audit_visit(
    actor: Actor,
    subject: Subject,
    row: VisitRecord,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    reason: str,
) -> None:
    old = before or {}
    audit_record(
        actor=actor,
        event=AuditEvent.VISIT_RECORDED,
        entity="visit_record",
        entity_id=str(row.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[
            *([Change("visit", None, row.visit_code)] if before is None else []),
            *(Change(k, _plain(old.get(k)), _plain(v)) for k, v in after.items() if before is None or old.get(k) != v),
        ],
        reason=reason,
        is_correction=before is not None,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# --- forms --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormSaved:
    """What one save did: the record, the items changed, the automatic queries opened and closed."""

    record: FormRecord
    changed: list[str]
    queries_opened: list[Query]
    queries_closed: list[Query]


def form_save(
    *,
    actor: Actor,
    subject: Subject,
    protocol: Protocol,
    visit_code: str,
    form_code: str,
    items: Mapping[str, object],
    reason: str = "",
) -> FormSaved:
    """Save a form's items through the one eCRF engine: checked, stored, audited, edit checks run.

    The first save needs no reason; every later change of a value does. A locked or signed form
    refuses. Changed items lose their source-data verification. Lab items go to the lab store.
    """
    form = form_definition(protocol, visit_code, form_code)
    visit = VisitRecord.objects.filter(subject=subject, visit_code=visit_code, outcome="done").first()
    if visit is None or visit.done_on is None:
        raise Refused(
            "Record the date of the visit {visit} before entering its forms.",
            code="visit_not_done",
            item="visit",
            visit=visit_code,
        )
    if form.reads_other_visits:
        # Saves of a form whose derived items compare visits take turns per subject: each locks
        # this visit's forms, then the form at the other visits (no two wait on each other).
        Subject.objects.select_for_update().filter(pk=subject.pk).first()
    # Every form of the visit, locked: the cross-form edit checks read the others as they stand.
    visit_forms = {
        r.form_code: r
        for r in FormRecord.objects.select_for_update(of=("self",))
        .select_related("protocol_version")
        .filter(subject=subject, visit_code=visit_code)
        .order_by("form_code")  # one locking order for every save
    }
    record = visit_forms.pop(form_code, None)
    if record is not None:
        form_change_check(FormStatus(record.status))
    others = {code: other.values_json for code, other in visit_forms.items()}
    context = form_context(subject, protocol, visit_code, done_on=visit.done_on, other_forms=others)
    # The form at the subject's other visits, read once when its derived items compare visits: for
    # this visit's derivation and the later visits' derived again.
    series = _series_lock(subject, form, visit_code)
    order: list[str] = []
    if series is not None:
        order = _time_order(protocol, subject, [*series, visit_code])
        context = _series_context(form, context, order, visit_code, {c: r.values_json for c, r in series.items()})
    cleaned = form_values_check(form, items, context)
    values = dict(cleaned.values)
    before = None if record is None else dict(record.values_json)
    why = reason_check(before, values, reason)
    changed = changed_items(before or {}, values)
    if record is not None and not changed:
        return FormSaved(record, [], [], [])
    verified = {} if record is None else {k: v for k, v in record.verified_json.items() if k not in changed}
    status = saved_status(cleaned.missing, verified, values)
    if record is None:
        record = FormRecord(
            subject=subject,
            visit_code=visit_code,
            form_code=form_code,
            protocol_version=protocol_version_of(protocol),
            created_by_id=actor.recording_user_id,
            created_at=actor.now,
            revision=1,
        )
    else:
        record.revision += 1
    old_status = record.status
    record.values_json = values
    record.verified_json = verified
    record.status = status.value
    record.updated_at = actor.now
    record.observations_json = _lab_items_store(
        actor, subject, form, dict(record.observations_json or {}), values, before or {}, visit.done_on, why
    )
    record.save()
    old_values = before or {}
    audit_record(
        actor=actor,
        event=AuditEvent.FORM_SAVED,
        entity="form_record",
        entity_id=str(record.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[
            *([Change("form", None, f"{visit_code}/{form_code}")] if before is None else []),
            *(Change(name, _plain(old_values.get(name)), _plain(values.get(name))) for name in changed),
            *([Change("status", old_status or None, status.value)] if old_status != status.value else []),
        ],
        reason=why,
        is_correction=before is not None,
    )
    if series is not None:
        later = order[order.index(visit_code) + 1 :]
        reason = REDERIVED_REASON.format(visit=visit_code)
        _series_derive(actor, subject, form, series, order, later, {visit_code: values}, context, reason)
    _lab_alerts_raise(actor, subject, form, visit_code, values, changed)
    findings = edit_check_findings(form, values, context)
    opened, closed = _automatic_queries_sync(actor, subject, visit_code, form_code, findings)
    # The visit's other forms whose checks read this one are judged again on its new values.
    for other_code, other in visit_forms.items():
        other_form = protocol.forms.get(other_code)
        if other_form is None or not other_form.reads_form(form_code):
            continue
        around = {code: o.values_json for code, o in visit_forms.items() if code != other_code} | {form_code: values}
        other_findings = edit_check_findings(other_form, other.values_json, replace(context, other_forms=around))
        also_opened, also_closed = _automatic_queries_sync(actor, subject, visit_code, other_code, other_findings)
        opened, closed = opened + also_opened, closed + also_closed
    return FormSaved(record, changed, opened, closed)


def _series_lock(subject: Subject, form: FormDef, visit_code: str | None) -> dict[str, FormRecord] | None:
    """The form's records at the subject's other visits than `visit_code`, locked; None when no
    derived item of the form compares visits."""
    if not form.reads_other_visits:
        return None
    return {
        r.visit_code: r
        for r in FormRecord.objects.select_for_update(of=("self",))
        .filter(subject=subject, form_code=form.code)
        .order_by("visit_code")
        if r.visit_code != visit_code
    }


def _time_order(protocol: Protocol, subject: Subject, codes: Iterable[str]) -> list[str]:
    dates = visit_dates(subject)
    return in_time_order(protocol, {code: dates.get(code) for code in codes})


def _series_context(
    form: FormDef, context: FormContext, order: list[str], visit_code: str, values: Mapping[str, Mapping[str, Any]]
) -> FormContext:
    """The context of the form at `visit_code`: the baseline visit's values and the previous visit's."""
    position = order.index(visit_code)
    earlier = [code for code in order[:position] if code in values]
    baseline = None if visit_code == form.baseline_visit else values.get(form.baseline_visit or "")
    return replace(
        context,
        visit_code=visit_code,
        baseline_values=baseline,
        previous_values=values[earlier[-1]] if earlier else None,
    )


# The reasons written with scores derived again (English: the trail's language).
REDERIVED_REASON = "Derived again: the form changed at {visit}."
REORDERED_REASON = "Derived again: the date of the visit {visit} changed the order of the visits."


def _series_derive(
    actor: Actor,
    subject: Subject,
    form: FormDef,
    series: Mapping[str, FormRecord],
    order: list[str],
    visits: Iterable[str],
    saved: Mapping[str, Mapping[str, Any]],
    context: FormContext,
    reason: str,
) -> None:
    """The form at `visits` (in time order) derived again from its baseline and previous visit as
    they now stand (`saved`: values just saved, not in `series`), each change saved and audited as a
    derived change; a locked or signed one whose derived items would change refuses the whole
    action (unlock it first)."""
    current = {code: record.values_json for code, record in series.items()} | dict(saved)
    for code in visits:
        record = series.get(code)
        if record is None:
            continue
        again = derived_values(form, record.values_json, _series_context(form, context, order, code, current))
        changed = changed_items(record.values_json, again)
        if not changed:
            continue
        if frozen(record):
            raise Refused(
                "Saving this changes the derived scores of {form} at {visit}, which is locked: unlock it first.",
                code="derived_form_locked",
                item="form",
                form=form.code,
                visit=code,
            )
        before = record.values_json
        record.values_json = again
        record.verified_json = {k: v for k, v in record.verified_json.items() if k not in changed}
        old_status = record.status
        if old_status != FormStatus.DRAFT.value:  # derived items are never required: a draft stays one
            record.status = saved_status((), record.verified_json, again).value
        record.revision += 1
        record.updated_at = actor.now
        record.save(update_fields=["values_json", "verified_json", "status", "revision", "updated_at"])
        current[code] = again
        audit_record(
            actor=actor,
            event=AuditEvent.FORM_REDERIVED,
            entity="form_record",
            entity_id=str(record.pk),
            subject_code=subject.code,
            center_code=subject.center.code,
            changes=[
                *(Change(name, _plain(before.get(name)), _plain(again.get(name))) for name in changed),
                *([Change("status", old_status, record.status)] if old_status != record.status else []),
            ],
            reason=reason,
            is_correction=True,
        )


def _lab_items_store(
    actor: Actor,
    subject: Subject,
    form: FormDef,
    links: dict[str, int],
    values: Mapping[str, Any],
    before: Mapping[str, Any],
    done_on: date,
    reason: str,
) -> dict[str, int]:
    """Each lab item is one LabObservation: created on first entry, corrected (with the form's
    reason) when the value, unit or reference range changes. Returns the form's links item → result."""
    zone = ZoneInfo(subject.center.time_zone)
    sampled_at = datetime.combine(done_on, LAB_SAMPLE_LOCAL_TIME, tzinfo=zone)
    new_inputs: list[tuple[str, LabObservationInput]] = []
    for item in form.items:
        if not item.analyte:
            continue
        lab = _lab_value(values.get(item.name), item.unit)
        if lab is None:
            continue
        if item.name in links and before.get(item.name) != values.get(item.name):
            observation = LabObservation.objects.get(pk=links[item.name])
            for field in ("unit", "value", "lower_limit", "upper_limit"):
                if getattr(observation, field) != lab[field]:
                    observation = lab_observation_correct(
                        actor=actor,
                        subject=subject,
                        observation=observation,
                        field=field,
                        value=lab[field],
                        reason=reason,
                    )
        elif item.name not in links:
            new_inputs.append(
                (
                    item.name,
                    LabObservationInput(
                        analyte=item.analyte,
                        value=lab["value"],
                        unit=lab["unit"],
                        sampled_at=sampled_at,
                        lower_limit=lab["lower_limit"],
                        upper_limit=lab["upper_limit"],
                        context=FORM_LAB_CONTEXT,
                    ),
                )
            )
    if new_inputs:
        rows = lab_observations_record(actor=actor, subject=subject, observations=[i for _, i in new_inputs])
        for (name, _), row in zip(new_inputs, rows, strict=True):
            links[name] = row.pk
    return links


def _lab_alerts_raise(
    actor: Actor, subject: Subject, form: FormDef, visit_code: str, values: Mapping[str, Any], changed: Iterable[str]
) -> None:
    """Alert on the lab items this save entered or changed: a CTCAE grade ≥ 3, an IgG below the
    threshold (`domain.alerts.lab_findings`, pure). No query unless a value calls for an alert."""
    names = set(changed)
    items = [
        (item.name, item.analyte, lab)
        for item in form.items
        if item.analyte and item.name in names and (lab := _lab_value(values.get(item.name), item.unit)) is not None
    ]
    for finding in lab_findings(items, visit=visit_code):
        raise_alert(
            actor=actor,
            kind=finding.kind,
            subject=subject,
            link=reverse("casebook:form", args=[subject.code, visit_code, form.code]),
            params=finding.params,
            key=lab_finding_key(visit_code, form.code, finding.item),
        )


def _lab_value(value: Any, default_unit: str | None) -> dict[str, Any] | None:
    """A lab item's cleaned value as the lab store wants it (value, unit, the lab's range)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {
            "value": value.get("value"),
            "unit": value.get("unit") or default_unit or "",
            "lower_limit": value.get("lower_limit"),
            "upper_limit": value.get("upper_limit"),
        }
    return {"value": value, "unit": default_unit or "", "lower_limit": None, "upper_limit": None}


def _automatic_queries_sync(
    actor: Actor, subject: Subject, visit_code: str, form_code: str, findings: Iterable[Any]
) -> tuple[list[Query], list[Query]]:
    """Open a query per new finding of an edit check; close those whose finding is gone."""
    wanted = {(f.code, f.item): f for f in findings}
    current = {
        (q.check_code, q.item): q
        for q in Query.objects.filter(
            subject=subject,
            visit_code=visit_code,
            form_code=form_code,
            origin=QueryOrigin.EDIT_CHECK.value,
        ).exclude(status=QueryStatus.CLOSED.value)
    }
    opened = []
    for key, finding in wanted.items():
        if key in current:
            continue
        text = finding.message.render()
        query = Query.objects.create(
            subject=subject,
            visit_code=visit_code,
            form_code=form_code,
            item=finding.item,
            origin=QueryOrigin.EDIT_CHECK.value,
            check_code=finding.code,
            status=QueryStatus.OPEN.value,
            text=text,
            message_json=message_data(finding.message),
            raised_by=None,
            raised_at=actor.now,
            updated_at=actor.now,
        )
        _thread(query, QueryMove.RAISE, text, None, "", actor.now)
        # The edit check's message is recorded as message data, so the trail reads in its reader's language.
        _audit_query(actor, subject, query, None, QueryMove.RAISE, query.message_json)
        opened.append(query)
    closed = []
    for key, query in current.items():
        if key in wanted:
            continue
        old = query.status
        query.status = query_move_check(QueryStatus(old), QueryMove.RESOLVE, "").value
        query.updated_at = actor.now
        query.save(update_fields=["status", "updated_at"])
        _thread(query, QueryMove.RESOLVE, "", actor.user_id, actor.username, actor.now)
        _audit_query(actor, subject, query, old, QueryMove.RESOLVE, "")
        closed.append(query)
    return opened, closed


# --- queries ------------------------------------------------------------------------------------


def query_raise(
    *,
    actor: Actor,
    subject: Subject,
    protocol: Protocol,
    visit_code: str,
    form_code: str,
    item: str,
    text: str,
) -> Query:
    """A monitor or data manager asks the center about one item of one form of one visit."""
    form = form_definition(protocol, visit_code, form_code)
    if not form.has_item(item):
        raise InvalidInput(
            "The form {form} has no item '{name}'.", code="item_unknown", item="item", form=form_code, name=item
        )
    question = query_text_check(text)
    query = Query.objects.create(
        subject=subject,
        visit_code=visit_code,
        form_code=form_code,
        item=item,
        origin=QueryOrigin.MANUAL.value,
        status=QueryStatus.OPEN.value,
        text=question,
        raised_by_id=actor.user_id,
        raised_at=actor.now,
        updated_at=actor.now,
    )
    _thread(query, QueryMove.RAISE, question, actor.user_id, actor.username, actor.now)
    _audit_query(actor, subject, query, None, QueryMove.RAISE, question)
    return query


def query_move(*, actor: Actor, query: Query, move: QueryMove, text: str) -> Query:
    """Answer (the center), close or reopen (the raiser's side) a query, with its text."""
    old = query.status
    query.status = query_move_check(QueryStatus(old), move, text).value
    query.updated_at = actor.now
    query.save(update_fields=["status", "updated_at"])
    _thread(query, move, text.strip(), actor.user_id, actor.username, actor.now)
    _audit_query(actor, query.subject, query, old, move, text.strip())
    return query


def _thread(query: Query, move: QueryMove, text: str, user_id: int | None, name: str, at: datetime) -> None:
    QueryMessage.objects.create(query=query, move=move.value, text=text, by_id=user_id, by_name=name, at=at)


def _audit_query(
    actor: Actor, subject: Subject, query: Query, old: str | None, move: QueryMove, text: str | Mapping[str, Any]
) -> None:
    changes = [Change("status", old, query.status), Change("move", None, move.value)]
    if old is None:
        changes[:0] = [
            Change("on", None, f"{query.visit_code}/{query.form_code}.{query.item}"),
            Change("origin", None, query.origin),
        ]
    if text:
        changes.append(Change("text", None, text))
    audit_record(
        actor=actor,
        event=AuditEvent.QUERY_RAISED if old is None else AuditEvent.QUERY_UPDATED,
        entity="query",
        entity_id=str(query.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=changes,
    )


# --- SDV, lock, signature -----------------------------------------------------------------------


def form_verify(
    *, actor: Actor, record: FormRecord, protocol: Protocol, items: Iterable[str] | None = None
) -> FormRecord:
    """The monitor verifies items against the source (when `items` is None: every filled item, or
    every item of a form holding no value); an empty choice of items is refused."""
    if items is not None:
        items = list(items)
        if not items:
            raise InvalidInput(
                "Tick the items you verified against the source.", code="nothing_verified", item="verify"
            )
    values = record.values_json
    known = form_definition(protocol, record.visit_code, record.form_code).value_names()
    filled = [n for n, v in values.items() if v not in (None, "", [])]
    chosen = (filled or list(known)) if items is None else list(items)
    verify_check(FormStatus(record.status), chosen, known)
    new = [name for name in chosen if name not in record.verified_json]
    if not new:
        return record
    stamp = {"by": actor.username, "at": actor.now.isoformat()}
    record.verified_json = {**record.verified_json, **{name: stamp for name in new}}
    old_status = record.status
    record.status = saved_status((), record.verified_json, values).value
    record.updated_at = actor.now
    record.save(update_fields=["verified_json", "status", "updated_at"])
    audit_record(
        actor=actor,
        event=AuditEvent.FORM_VERIFIED,
        entity="form_record",
        entity_id=str(record.pk),
        subject_code=record.subject.code,
        center_code=record.subject.center.code,
        changes=[
            Change("verified", None, new),
            *([Change("status", old_status, record.status)] if old_status != record.status else []),
        ],
    )
    return record


def forms_lock(*, actor: Actor, records: Iterable[FormRecord]) -> list[FormRecord]:
    """The data manager locks forms (one form, a visit's or a subject's): all or none."""
    chosen = list(records)
    if not chosen:
        raise Refused("There is no saved form to lock here.", code="nothing_to_lock")
    for record in chosen:
        lock_check(FormStatus(record.status))
    for record in chosen:
        old = record.status
        record.status = FormStatus.LOCKED.value
        record.updated_at = actor.now
        record.save(update_fields=["status", "updated_at"])
        _audit_status(actor, record, old, AuditEvent.FORM_LOCKED, "")
    return chosen


def subject_forms_lock(*, actor: Actor, subject: Subject) -> list[FormRecord]:
    """The data manager locks the whole casebook: every saved form not locked yet (all or none)."""
    frozen_codes = [status.value for status in FROZEN_STATUSES]
    records = FormRecord.objects.filter(subject=subject).exclude(status__in=frozen_codes)
    return forms_lock(actor=actor, records=records.order_by("visit_code", "form_code"))


def visit_forms_lock(*, actor: Actor, subject: Subject, visit_code: str) -> list[FormRecord]:
    """The data manager locks the forms of one visit not locked yet (all or none)."""
    records = FormRecord.objects.filter(subject=subject, visit_code=visit_code).order_by("form_code")
    return forms_lock(actor=actor, records=[r for r in records if not frozen(r)])


def visit_forms_unlock(*, actor: Actor, subject: Subject, visit_code: str, reason: str) -> list[FormRecord]:
    """The data manager unlocks, with a reason, the locked or signed forms of one visit."""
    records = FormRecord.objects.filter(subject=subject, visit_code=visit_code).order_by("form_code")
    return forms_unlock(actor=actor, records=[r for r in records if frozen(r)], reason=reason)


def forms_unlock(*, actor: Actor, records: Iterable[FormRecord], reason: str) -> list[FormRecord]:
    """Unlock with a reason: the forms can change again and the casebook signature is voided."""
    chosen = list(records)
    if not chosen:
        raise Refused("There is no locked form to unlock here.", code="form_not_locked")
    why = ""
    for record in chosen:
        why = unlock_check(FormStatus(record.status), reason)
    subject = chosen[0].subject
    _casebook_signature_void(actor, subject, why)
    for record in chosen:
        old = record.status
        record.status = saved_status((), record.verified_json, record.values_json).value
        record.updated_at = actor.now
        record.save(update_fields=["status", "updated_at"])
        _audit_status(actor, record, old, AuditEvent.FORM_UNLOCKED, why)
    # Other signed forms of the casebook are back to locked: the signature covering them is void.
    for other in FormRecord.objects.filter(subject=subject, status=FormStatus.SIGNED.value):
        other.status = FormStatus.LOCKED.value
        other.save(update_fields=["status"])
        _audit_status(actor, other, FormStatus.SIGNED.value, AuditEvent.FORM_UNLOCKED, why)
    return chosen


def _audit_status(actor: Actor, record: FormRecord, old: str, event: AuditEvent, reason: str) -> None:
    audit_record(
        actor=actor,
        event=event,
        entity="form_record",
        entity_id=str(record.pk),
        subject_code=record.subject.code,
        center_code=record.subject.center.code,
        changes=[Change("status", old, record.status)],
        reason=reason,
        is_correction=bool(reason),
    )


def casebook_signature_in_force(subject: Subject) -> CasebookSignature | None:
    """The casebook signature not voided, if any."""
    return casebook_signatures_in_force([subject.pk]).get(subject.pk)


def _casebook_signature_void(actor: Actor, subject: Subject, reason: str) -> None:
    current = casebook_signature_in_force(subject)
    if current is not None:
        signature_void(
            actor=actor, signature=current.signature, reason=reason, superseded_by=None, subject_code=subject.code
        )


# An English msgid: stored as signed, shown in the reader's language.
CASEBOOK_SIGNATURE_MEANING = gettext_noop("I attest that the data of this casebook are complete and accurate.")


def casebook_sign(
    *, actor: Actor, user: User, subject: Subject, password: str, otp_code: str = ""
) -> ElectronicSignature:
    """The investigator signs the subject's casebook: every saved form must be locked (Part 11:
    password re-entry, meaning, hash of the values signed)."""
    records = list(FormRecord.objects.filter(subject=subject).select_related("protocol_version"))
    sign_check({f"{r.visit_code}/{r.form_code}": FormStatus(r.status) for r in records})
    if casebook_signature_in_force(subject) is not None and all(r.status == FormStatus.SIGNED.value for r in records):
        raise Refused("This casebook is already signed.", code="casebook_already_signed")
    content = casebook_content((r.visit_code, r.form_code, r.protocol_version.version, r.values_json) for r in records)
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        otp_code=otp_code,
        meaning=CASEBOOK_SIGNATURE_MEANING,
        entity="casebook",
        entity_id=subject.code,
        content=content,
        subject_code=subject.code,
    )
    CasebookSignature.objects.create(subject=subject, signature=signature, forms_signed=len(records))
    for record in records:
        if record.status != FormStatus.SIGNED.value:
            old = record.status
            record.status = FormStatus.SIGNED.value
            record.updated_at = actor.now
            record.save(update_fields=["status", "updated_at"])
            _audit_status(actor, record, old, AuditEvent.FORM_SIGNED, "")
    return signature


def frozen(record: FormRecord) -> bool:
    """Whether the form's values may no longer change (locked or signed)."""
    return FormStatus(record.status) in FROZEN_STATUSES


def overdue_visit_alerts_raise(*, actor: Actor, protocol: Protocol) -> list[Alert]:
    """The daily scan: an alert for each overdue visit (the domain's visit status on each center's
    today at `actor.now`), once per subject and visit while unacknowledged; returns those raised."""
    raised = []
    for row in overdue_visits(protocol, actor.now):
        alert = raise_alert(
            actor=actor,
            kind=AlertKind.OVERDUE_VISIT,
            subject=row.subject,
            link=reverse("casebook:visit", args=[row.subject.code, row.visit.code]),
            params={"visit": ProtocolText(row.label), "latest": row.visit.latest},
            key=row.visit.code,
        )
        if alert is not None:
            raised.append(alert)
    return raised
