"""Reads of the safety app: a subject's AEs, their SAE clocks, the lab grades to propose, the DLT
panel, an AE's history, and the open SAE clocks of a user's scope (for alerts and dashboards).
Callers reach the subject through the access entry point first; scope-wide reads take the scope."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from cartrial.apps.access import Scope, centers_for, subject_filter
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import records_changed_since
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.safety.models import AdverseEvent, AdverseEventLabSource, DltAssessment, SaeReport
from cartrial.apps.subjects.models import Consent, Subject
from cartrial.domain.errors import NotFound, Refused
from cartrial.domain.roles import Action
from cartrial.domain.safety.adverse_events import Outcome, Relatedness
from cartrial.domain.safety.dlt import AeForDlt, DltCandidate, dlt_candidates
from cartrial.domain.safety.lab_grades import DECREASED_ITEMS, INCREASED_ITEMS, LabProposal, LabValue, lab_proposals
from cartrial.domain.safety.rules import SafetyRules
from cartrial.domain.safety.sae_clock import ReportKind, SaeClockState, SentReport, sae_clock_state
from cartrial.protocols import Protocol

# The eCRF forms whose lab items are graded (docs/safety.md).
GRADED_FORMS = ("haematology", "chemistry")


def safety_rules(protocol: Protocol) -> SafetyRules:
    """The protocol's safety section; a protocol without one refuses safety actions."""
    if protocol.safety is None:
        raise Refused("The protocol in force has no safety section.", code="safety_not_defined")
    return protocol.safety


def consent_date(subject: Subject) -> date | None:
    """The day the subject first signed a consent: AEs are recorded from then on."""
    return Consent.objects.filter(subject=subject).order_by("signed_on").values_list("signed_on", flat=True).first()


def adverse_events_of(subject: Subject) -> QuerySet[AdverseEvent]:
    """The subject's AEs, by start date, with their SAE reports and DLT decision."""
    return (
        AdverseEvent.objects.filter(subject=subject)
        .prefetch_related(
            "lab_sources",
            Prefetch("sae_reports", queryset=SaeReport.objects.order_by("sent_at", "pk")),
            Prefetch(
                "dlt_assessments",
                queryset=DltAssessment.objects.filter(signature__voided_at__isnull=True).select_related("signature"),
            ),
        )
        .order_by("start_date", "pk")
    )


def adverse_events_in(subject_ids: Iterable[int]) -> QuerySet[AdverseEvent]:
    """The AEs of many subjects (already reached within the caller's scope), by subject and start date,
    with their DLT decision in force: two queries whatever their number (the safety dashboard)."""
    return (
        AdverseEvent.objects.filter(subject_id__in=list(subject_ids))
        .prefetch_related(
            Prefetch(
                "dlt_assessments",
                queryset=DltAssessment.objects.filter(signature__voided_at__isnull=True).select_related("signature"),
            )
        )
        .order_by("subject_id", "start_date", "pk")
    )


def _ids(changed: set[tuple[str, str]], entity: str) -> set[int]:
    return {int(entity_id) for name, entity_id in changed if name == entity and entity_id.isdigit()}


def adverse_events_changed_since(
    subject: Subject, events: QuerySet[AdverseEvent], since: datetime | None
) -> QuerySet[AdverseEvent]:
    """`events` (the subject's) narrowed to those the audit trail says were recorded, corrected,
    assessed for relatedness or reported to the sponsor (an `adverse_event` or `sae_report` entry)
    after `since`; all of them when `since` is None. A report due turning overdue with time is not a
    change of the AE: its clock is computed when read."""
    if since is None:
        return events
    changed = records_changed_since(since=since, subject_codes=[subject.code], entities=["adverse_event", "sae_report"])
    reported = SaeReport.objects.filter(pk__in=_ids(changed, "sae_report")).values_list("adverse_event_id", flat=True)
    return events.filter(pk__in=_ids(changed, "adverse_event") | set(reported))


def adverse_event_get(subject: Subject, ae_id: int | str) -> AdverseEvent:
    """One AE of the subject (404 when it is not one of theirs)."""
    try:
        key = int(ae_id)
    except (TypeError, ValueError):
        key = -1
    ae = adverse_events_of(subject).filter(pk=key).first()
    if ae is None:
        raise NotFound("No adverse event {id} for this subject.", code="not_found", id=ae_id)
    return ae


def sent_reports(ae: AdverseEvent) -> list[SentReport]:
    return [SentReport(ReportKind(r.kind), r.sent_at) for r in ae.sae_reports.all()]


def sae_clock(ae: AdverseEvent, rules: SafetyRules, now: datetime) -> SaeClockState | None:
    """The reporting clock of a serious AE at `now` (None for a non-serious one)."""
    if not ae.serious or ae.awareness_at is None:
        return None
    return sae_clock_state(
        awareness_at=ae.awareness_at,
        sent=sent_reports(ae),
        outcome_final=Outcome(ae.outcome).final,
        rules=rules.sae_clock,
        now=now,
    )


@dataclass(frozen=True)
class OpenSaeClock:
    """A serious AE whose reporting clock is still open, for alerts and dashboards."""

    adverse_event: AdverseEvent
    subject_code: str
    center_code: str
    state: SaeClockState


def open_sae_clocks(
    scope: Scope, rules: SafetyRules, now: datetime, *, center_code: str | None = None
) -> list[OpenSaeClock]:
    """The open SAE clocks of the subjects the scope may read safety data of, next due first."""
    centers = centers_for(scope, Action.READ_SAFETY)
    queryset = AdverseEvent.objects.filter(
        serious=True, subject__in=Subject.objects.filter(subject_filter(scope))
    ).filter(subject__center_id__in=centers)
    if center_code:
        queryset = queryset.filter(subject__center__code=center_code)
    return _open_clocks(queryset, rules, now)


def trial_open_sae_clocks(rules: SafetyRules, now: datetime) -> list[OpenSaeClock]:
    """Every open SAE clock of the trial, next due first: the daily alert scan's read, not a user's."""
    return _open_clocks(AdverseEvent.objects.filter(serious=True), rules, now)


def _open_clocks(queryset: QuerySet[AdverseEvent], rules: SafetyRules, now: datetime) -> list[OpenSaeClock]:
    events = queryset.select_related("subject__center").prefetch_related(
        Prefetch("sae_reports", queryset=SaeReport.objects.order_by("sent_at", "pk"))
    )
    clocks = []
    for ae in events:
        state = sae_clock(ae, rules, now)
        if state is not None and not state.closed:
            clocks.append(OpenSaeClock(ae, ae.subject.code, ae.subject.center.code, state))
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(clocks, key=lambda c: (c.state.next_due.due_at if c.state.next_due else far, c.adverse_event.pk))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def lab_values(subject: Subject, protocol: Protocol) -> list[LabValue]:
    """The graded lab items of the subject's saved haematology and chemistry forms, dated by their visit."""
    done_on = dict(
        VisitRecord.objects.filter(subject=subject, done_on__isnull=False).values_list("visit_code", "done_on")
    )
    values = []
    graded = set(DECREASED_ITEMS) | set(INCREASED_ITEMS)
    for record in FormRecord.objects.filter(subject=subject, form_code__in=GRADED_FORMS).order_by("pk"):
        day = done_on.get(record.visit_code)
        if day is None:
            continue
        form = protocol.forms.get(record.form_code)
        units = {i.name: i.unit for i in form.items} if form else {}
        for item, raw in (record.values_json or {}).items():
            if item not in graded:
                continue
            lab = raw if isinstance(raw, dict) else {"value": raw}
            value = _number(lab.get("value"))
            if value is None:
                continue
            values.append(
                LabValue(
                    record_id=record.pk,
                    item=item,
                    visit_code=record.visit_code,
                    sampled_on=day,
                    value=value,
                    unit=str(lab.get("unit") or units.get(item) or ""),
                    lower_limit=_number(lab.get("lower_limit")),
                    upper_limit=_number(lab.get("upper_limit")),
                )
            )
    return values


def lab_sources_taken(subject: Subject) -> set[tuple[int, str]]:
    """The lab values already covered by an AE."""
    rows = AdverseEventLabSource.objects.filter(adverse_event__subject=subject).values_list("form_record_id", "item")
    return {(int(record_id), item) for record_id, item in rows}


def lab_terms_not_proposed(protocol: Protocol) -> frozenset[str]:
    """The terms the protocol expects of its treatment: never proposed from the labs."""
    return protocol.safety.lab_proposals_exclude_terms if protocol.safety else frozenset()


def lab_grade_proposals(subject: Subject, protocol: Protocol) -> list[LabProposal]:
    """The abnormality episodes of the subject's lab values not yet recorded as an AE, without the
    terms the protocol expects of its treatment."""
    return lab_proposals(lab_values(subject, protocol), lab_sources_taken(subject), lab_terms_not_proposed(protocol))


def lab_proposals_changed_since(
    subject: Subject, proposals: list[LabProposal], since: datetime | None
) -> list[LabProposal]:
    """The proposals holding a lab value (its abnormal values and the normal one that ends it) whose
    form was saved, corrected or verified, or whose visit date was recorded or changed, after `since`
    (the audit trail's `form_record` and `visit_record` entries); all of them when `since` is None."""
    if since is None:
        return proposals
    changed = records_changed_since(since=since, subject_codes=[subject.code], entities=["form_record", "visit_record"])
    records = _ids(changed, "form_record")
    visits = set(
        VisitRecord.objects.filter(subject=subject, pk__in=_ids(changed, "visit_record")).values_list(
            "visit_code", flat=True
        )
    )

    def touched(value: LabValue | None) -> bool:
        return value is not None and (value.record_id in records or value.visit_code in visits)

    return [p for p in proposals if touched(p.recovery) or any(touched(g.lab) for g in p.grades)]


def ae_for_dlt(ae: AdverseEvent) -> AeForDlt:
    return AeForDlt(
        ae_id=ae.pk,
        term=ae.term,
        grade=ae.grade,
        start_date=ae.start_date,
        end_date=ae.end_date,
        relatedness_cart=Relatedness(ae.relatedness_cart) if ae.relatedness_cart else None,
    )


@dataclass(frozen=True)
class DltRow:
    """A DLT candidate with the investigator's decision in force, if taken."""

    adverse_event: AdverseEvent
    candidate: DltCandidate
    assessment: DltAssessment | None


def dlt_panel(subject: Subject, rules: SafetyRules, events: Iterable[AdverseEvent] | None = None) -> list[DltRow]:
    """The DLT candidates of the window from the recorded AEs, with their decisions."""
    aes = {ae.pk: ae for ae in (events if events is not None else adverse_events_of(subject))}
    candidates = dlt_candidates(rules.dlt, [ae_for_dlt(ae) for ae in aes.values()], subject.infusion_date)
    rows = []
    for candidate in candidates:
        ae = aes[candidate.ae_id]
        decided = list(ae.dlt_assessments.all())
        rows.append(DltRow(ae, candidate, decided[0] if decided else None))
    return rows


@dataclass(frozen=True)
class AeChange:
    field: str
    old: Any
    new: Any
    user: str
    at: datetime
    reason: str
    event: str


def adverse_event_history(ae: AdverseEvent) -> list[AeChange]:
    """Every change of the AE, oldest first: recording, corrections (with their reason), relatedness."""
    entries = AuditEntry.objects.filter(entity="adverse_event", entity_id=str(ae.pk)).order_by("sequence")
    return [
        AeChange(c["field"], c["old"], c["new"], e.actor_username, e.occurred_at, e.reason, e.event)
        for e in entries
        for c in json.loads(e.changes_json)
    ]
