"""Writes of the safety app, one function per use case: record or correct an AE, accept a
lab-proposed grade as an AE, assess relatedness (investigator, signed), record an SAE report,
confirm or rule out a DLT (investigator, signed), and the daily scan's SAE clock alerts.

Each runs inside the caller's transaction (`Reach.run`), writes the action's one `actor.now` and
one audit entry per record it changes; a refusal (the domain's) stores nothing. A serious AE
recorded (or corrected into one) raises its SAE clock alert in the same transaction (e-mailed
after the commit by `raise_alert`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_noop

from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import signature_apply, signature_void
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.selectors import keys_raised
from cartrial.apps.alerts.services import raise_alert
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.safety.models import AdverseEvent, AdverseEventLabSource, DltAssessment, SaeReport
from cartrial.apps.safety.selectors import (
    adverse_event_get,
    consent_date,
    dlt_panel,
    lab_grade_proposals,
    sae_clock,
    safety_rules,
    sent_reports,
    trial_open_sae_clocks,
)
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.alerts import AlertKind, sae_clock_alert, sae_report_label
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.safety.adverse_events import (
    ActionTaken,
    AdverseEventData,
    Outcome,
    Relatedness,
    Seriousness,
    adverse_event_check,
    aesi_of,
)
from cartrial.domain.safety.rules import SafetyRules
from cartrial.domain.safety.sae_clock import ReportKind, sae_report_check
from cartrial.domain.safety.terms import term_get
from cartrial.domain.text import ProtocolText
from cartrial.protocols import Protocol

# The fields a coordinator records and corrects (relatedness is the investigator's, signed).
RECORDED_FIELDS = (
    "term",
    "grade",
    "start_date",
    "end_date",
    "serious",
    "seriousness_criteria",
    "awareness_at",
    "action",
    "outcome",
)


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    return str(value) if isinstance(value, Outcome | ActionTaken | Relatedness) else value


def _values(ae: AdverseEvent) -> dict[str, Any]:
    return {
        "term": ae.term,
        "grade": ae.grade,
        "start_date": ae.start_date,
        "end_date": ae.end_date,
        "serious": ae.serious,
        "seriousness_criteria": frozenset(Seriousness(c) for c in ae.seriousness_criteria),
        "awareness_at": ae.awareness_at,
        "action": ActionTaken(ae.action),
        "outcome": Outcome(ae.outcome),
    }


def _data(values: Mapping[str, Any], ae: AdverseEvent | None = None) -> AdverseEventData:
    return AdverseEventData(
        **{k: values[k] for k in RECORDED_FIELDS},
        relatedness_cart=Relatedness(ae.relatedness_cart) if ae is not None and ae.relatedness_cart else None,
        relatedness_ld=Relatedness(ae.relatedness_ld) if ae is not None and ae.relatedness_ld else None,
    )


def _apply(ae: AdverseEvent, values: Mapping[str, Any]) -> None:
    for key in RECORDED_FIELDS:
        value = values[key]
        if key == "seriousness_criteria":
            value = sorted(str(v) for v in value)
        elif isinstance(value, Outcome | ActionTaken):
            value = value.value
        setattr(ae, key, value)


def adverse_event_record(
    *,
    actor: Actor,
    subject: Subject,
    protocol: Protocol,
    data: AdverseEventData,
    source: tuple[FormRecord, str] | None = None,
    covered: Sequence[tuple[FormRecord, str]] = (),
) -> AdverseEvent:
    """Record a new AE after the domain's checks; its AESI category comes from the term. An AE from
    a lab episode names its worst value (`source`) and every value it covers (`covered`)."""
    rules = safety_rules(protocol)
    term = adverse_event_check(data, consent_date=consent_date(subject), today=local_today(subject.center, actor.now))
    values = {k: getattr(data, k) for k in RECORDED_FIELDS}
    ae = AdverseEvent(
        subject=subject,
        ctcae_version=rules.ctcae_version,
        aesi=(aesi_of(term) or ""),
        source_form_record=source[0] if source else None,
        source_item=source[1] if source else "",
        recorded_by_id=actor.recording_user_id,
        recorded_at=actor.now,
    )
    _apply(ae, values)
    ae.save()
    AdverseEventLabSource.objects.bulk_create(
        AdverseEventLabSource(adverse_event=ae, form_record=record, item=item) for record, item in covered
    )
    changes = [Change(k, None, _plain(v)) for k, v in values.items() if v is not None]
    changes.append(Change("ctcae_version", None, ae.ctcae_version))
    if ae.aesi:
        changes.append(Change("aesi", None, ae.aesi))
    if source:
        changes.append(Change("source", None, f"{source[0].visit_code}/{source[0].form_code}.{source[1]}"))
    if covered:
        changes.append(Change("lab_sources", None, ", ".join(f"{r.visit_code}/{r.form_code}.{i}" for r, i in covered)))
    _audit(actor, ae, AuditEvent.ADVERSE_EVENT_RECORDED, changes)
    sae_clock_alert_raise(actor=actor, ae=ae, rules=rules)
    return ae


def adverse_event_correct(
    *,
    actor: Actor,
    subject: Subject,
    protocol: Protocol,
    ae: AdverseEvent,
    changes: Mapping[str, Any],
    reason: str,
) -> AdverseEvent:
    """Correct recorded fields of an AE with a reason: the whole AE is checked again, the audit trail
    keeps old → new (its only history, ADR 0004); the AESI category follows the term. An AE serious
    after the correction (made serious, or its awareness moved) raises the alert its clock calls for
    now, unless that stage was already alerted."""
    rules = safety_rules(protocol)
    unknown = set(changes) - set(RECORDED_FIELDS)
    if unknown:
        raise InvalidInput("{item}: not a field of an adverse event.", code="item_unknown", item=sorted(unknown)[0])
    before = _values(ae)
    after = {**before, **changes}
    changed = [k for k in RECORDED_FIELDS if after[k] != before[k]]
    if not changed:
        raise InvalidInput("Nothing to correct: every value is the one stored.", code="correction_unchanged")
    if not reason.strip():
        raise InvalidInput(
            "reason: a reason is required to correct a recorded adverse event.", code="reason_required", item="reason"
        )
    term = adverse_event_check(
        _data(after, ae), consent_date=consent_date(subject), today=local_today(subject.center, actor.now)
    )
    if ae.source_form_record_id is not None and after["term"] != before["term"]:
        raise InvalidInput(
            "term: this AE records a lab value's grade; its term follows the lab item.",
            code="lab_term_fixed",
            item="term",
        )
    old_aesi = ae.aesi
    # The DLT decision signed the AE's values: a correction voids it, the candidate is decided again.
    for decision in DltAssessment.objects.filter(adverse_event=ae, signature__voided_at__isnull=True).select_related(
        "signature"
    ):
        signature_void(
            actor=actor, signature=decision.signature, reason=reason, superseded_by=None, subject_code=subject.code
        )
    _apply(ae, after)
    ae.aesi = aesi_of(term) or ""
    ae.save()
    entries = [Change(k, _plain(before[k]), _plain(after[k])) for k in changed]
    if ae.aesi != old_aesi:
        entries.append(Change("aesi", old_aesi or None, ae.aesi or None))
    audit_record(
        actor=actor,
        event=AuditEvent.RECORD_CORRECTED,
        entity="adverse_event",
        entity_id=str(ae.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=entries,
        reason=reason.strip(),
        is_correction=True,
    )
    sae_clock_alert_raise(actor=actor, ae=ae, rules=rules)
    return ae


def lab_proposal_accept(
    *, actor: Actor, subject: Subject, protocol: Protocol, record_id: int, item: str
) -> AdverseEvent:
    """Record the abnormality episode holding one lab value (any of its values names it) as one AE:
    its worst grade, from its first abnormal sample to the first normal one (recovered then, else not
    recovered, to be completed), linked to every value it covers so none is proposed again."""
    proposal = next(
        (p for p in lab_grade_proposals(subject, protocol) if (record_id, item) in p.sources),
        None,
    )
    if proposal is None:
        raise Refused(
            "No proposed grade for this lab value (already recorded, or not graded).",
            code="lab_proposal_not_found",
        )
    records = {r.pk: r for r in FormRecord.objects.filter(subject=subject, pk__in=[rid for rid, _ in proposal.sources])}
    data = AdverseEventData(
        term=proposal.term,
        grade=proposal.grade,
        start_date=proposal.start,
        end_date=proposal.end,
        serious=False,
        seriousness_criteria=frozenset(),
        awareness_at=None,
        outcome=Outcome.RECOVERED if proposal.end else Outcome.NOT_RECOVERED,
        action=ActionTaken.NONE,
    )
    worst_record, worst_item = proposal.lab.source
    return adverse_event_record(
        actor=actor,
        subject=subject,
        protocol=protocol,
        data=data,
        source=(records[worst_record], worst_item),
        covered=[(records[rid], covered_item) for rid, covered_item in proposal.sources],
    )


RELATEDNESS_MEANING = gettext_noop(
    "I assess the causality of this adverse event to the CAR-T product and to lymphodepletion."
)


def relatedness_assess(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    ae: AdverseEvent,
    cart: Relatedness,
    lymphodepletion: Relatedness,
    password: str,
    otp_code: str = "",
) -> AdverseEvent:
    """The investigator's causality assessment, signed with password re-entry; a new assessment
    replaces the previous one (both in the audit trail)."""
    old = (ae.relatedness_cart or None, ae.relatedness_ld or None)
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        otp_code=otp_code,
        meaning=RELATEDNESS_MEANING,
        entity="adverse_event",
        entity_id=str(ae.pk),
        content={"adverse_event": ae.pk, "cart": cart.value, "lymphodepletion": lymphodepletion.value},
        subject_code=subject.code,
    )
    ae.relatedness_cart, ae.relatedness_ld = cart.value, lymphodepletion.value
    ae.relatedness_by_id, ae.relatedness_at = actor.recording_user_id, actor.now
    ae.save(update_fields=["relatedness_cart", "relatedness_ld", "relatedness_by", "relatedness_at"])
    _audit(
        actor,
        ae,
        AuditEvent.RELATEDNESS_ASSESSED,
        [
            Change("relatedness_cart", old[0], cart.value),
            Change("relatedness_ld", old[1], lymphodepletion.value),
            Change("signature", None, signature.pk),
        ],
    )
    return ae


def sae_report_record(
    *, actor: Actor, subject: Subject, ae: AdverseEvent, kind: ReportKind, sent_at: datetime
) -> SaeReport:
    """Record that a report of a serious AE was sent to the sponsor (who: the acting user)."""
    if not ae.serious or ae.awareness_at is None:
        raise Refused("Only a serious adverse event is reported to the sponsor.", code="sae_not_serious")
    if sent_at > actor.now:
        raise InvalidInput(
            "{item}: {value} is in the future.", code="date_in_future", item="sent_at", value=sent_at.isoformat()
        )
    sae_report_check(
        kind=kind,
        sent_at=sent_at,
        awareness_at=ae.awareness_at,
        sent=sent_reports(ae),
        outcome_final=Outcome(ae.outcome).final,
    )
    report = SaeReport.objects.create(
        adverse_event=ae, kind=kind.value, sent_at=sent_at, sent_by_id=actor.recording_user_id, recorded_at=actor.now
    )
    audit_record(
        actor=actor,
        event=AuditEvent.SAE_REPORT_RECORDED,
        entity="sae_report",
        entity_id=str(report.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[
            Change("adverse_event", None, ae.pk),
            Change("kind", None, kind.value),
            Change("sent_at", None, sent_at.isoformat()),
        ],
    )
    return report


def sae_clock_alert_raise(
    *, actor: Actor, ae: AdverseEvent, rules: SafetyRules, raised: set[tuple[int, str]] | None = None
) -> Alert | None:
    """Raise the SAE clock alert of a serious AE at `actor.now`: its next report (the initial one
    for a new SAE), due or overdue, naming the event, the report and its due time (UTC), linking to
    the AE. Each stage is alerted once for good (key `<ae id>/<report kind>/<sequence>/<due|overdue>`):
    a stage already alerted, even acknowledged, is not raised again. `raised`: the (subject id, key)
    pairs already alerted, when the caller read them for many AEs at once (the scan)."""
    state = sae_clock(ae, rules, actor.now)
    stage = sae_clock_alert(state) if state is not None else None
    if stage is None:
        return None
    key = stage.key(ae.pk)
    if raised is None:
        raised = keys_raised(AlertKind.SAE_CLOCK, [ae.subject_id])
    if (ae.subject_id, key) in raised:
        return None
    return raise_alert(
        actor=actor,
        kind=AlertKind.SAE_CLOCK,
        subject=ae.subject,
        link=reverse("safety:adverse_event", args=[ae.subject.code, ae.pk]),
        params={
            "report": sae_report_label(stage.report),
            # The term list's own French and English labels, shown in each reader's language.
            "event": ProtocolText(dict(term_get(ae.term).label)),
            "due": stage.due_at.astimezone(UTC),
        },
        due_at=stage.due_at,
        key=key,
    )


def sae_clock_alerts_raise(*, actor: Actor, protocol: Protocol) -> list[Alert]:
    """The daily scan (`cartrial alerts scan`): for every open SAE clock of the trial, the alert of
    its next report, due or overdue at `actor.now`, if that stage was not alerted yet. Recording a
    report acknowledges nothing: the next report is alerted by the scan once it is pending. Returns
    the alerts raised (none under a protocol without a safety section)."""
    if protocol.safety is None:
        return []
    rules = safety_rules(protocol)
    clocks = trial_open_sae_clocks(rules, actor.now)
    raised_before = keys_raised(AlertKind.SAE_CLOCK, {c.adverse_event.subject_id for c in clocks})
    raised = []
    for clock in clocks:
        alert = sae_clock_alert_raise(actor=actor, ae=clock.adverse_event, rules=rules, raised=raised_before)
        if alert is not None:
            raised.append(alert)
    return raised


DLT_MEANINGS = {
    DltAssessment.Decision.CONFIRMED: gettext_noop("I confirm this adverse event as a dose-limiting toxicity."),
    DltAssessment.Decision.RULED_OUT: gettext_noop("I rule out this adverse event as a dose-limiting toxicity."),
}


@dataclass(frozen=True)
class DltDecisionInput:
    decision: DltAssessment.Decision
    comment: str
    password: str
    otp_code: str = ""


def dlt_decide(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, ae_id: int, decision: DltDecisionInput
) -> DltAssessment:
    """The investigator confirms or rules out a DLT candidate, signed; only a current candidate
    without a decision can be decided."""
    rules = safety_rules(protocol)
    ae = adverse_event_get(subject, ae_id)
    row = next((r for r in dlt_panel(subject, rules, [ae]) if r.adverse_event.pk == ae.pk), None)
    if row is None:
        raise Refused("This adverse event meets no DLT rule of the window.", code="dlt_not_candidate")
    if row.assessment is not None:
        raise Refused("This DLT candidate was already decided.", code="dlt_already_decided")
    if decision.decision is DltAssessment.Decision.RULED_OUT and not decision.comment.strip():
        raise InvalidInput("comment: say why the candidate is ruled out.", code="reason_required", item="comment")
    signature = signature_apply(
        actor=actor,
        user=user,
        password=decision.password,
        otp_code=decision.otp_code,
        meaning=DLT_MEANINGS[decision.decision],
        entity="dlt_assessment",
        entity_id=str(ae.pk),
        content={
            "adverse_event": ae.pk,
            "rule": row.candidate.rule.code,
            "decision": decision.decision.value,
            **{k: _plain(v) for k, v in _values(ae).items()},
        },
        subject_code=subject.code,
    )
    assessment = DltAssessment.objects.create(
        adverse_event=ae,
        rule_code=row.candidate.rule.code,
        decision=decision.decision.value,
        comment=decision.comment.strip(),
        signature=signature,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.DLT_DECIDED,
        entity="dlt_assessment",
        entity_id=str(assessment.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[
            Change("adverse_event", None, ae.pk),
            Change("rule", None, row.candidate.rule.code),
            Change("decision", None, decision.decision.value),
            Change("signature", None, signature.pk),
        ],
        reason=decision.comment.strip(),
    )
    return assessment


def _audit(actor: Actor, ae: AdverseEvent, event: AuditEvent, changes: list[Change]) -> None:
    audit_record(
        actor=actor,
        event=event,
        entity="adverse_event",
        entity_id=str(ae.pk),
        subject_code=ae.subject.code,
        center_code=ae.subject.center.code,
        changes=changes,
    )


def as_dict(data: AdverseEventData) -> dict[str, Any]:
    """An AE's entered values, plain (for forms shown again)."""
    return {k: _plain(v) for k, v in asdict(data).items()}
