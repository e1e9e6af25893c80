"""API of the safety app: a subject's adverse events (list, record, read, correct), SAE reports,
the investigator's relatedness assessment, lab-proposed grades, the DLT window, the term list.
Same rules and words as the pages; errors in the one format `{code, message, item}`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from cartrial.apps.access import Reach, reach_subject, require_somewhere
from cartrial.apps.safety import entries, selectors, services
from cartrial.apps.safety.models import AdverseEvent, DltAssessment
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.safety.adverse_events import Relatedness, choice
from cartrial.domain.safety.lab_grades import LabProposal
from cartrial.domain.safety.rules import SafetyRules
from cartrial.domain.safety.sae_clock import ReportKind, SaeClockState
from cartrial.domain.safety.terms import CtcaeTerm, term_list, term_search

router = Router(tags=["safety"])
terms_router = Router(tags=["safety"])


class AdverseEventIn(Schema):
    term: str | None = None
    grade: int | str | None = None
    start_date: str | None = None
    end_date: str | None = None
    serious: bool = False
    seriousness_criteria: list[str] = []
    awareness_at: str | None = None
    action: str | None = None
    outcome: str | None = None


class CorrectionIn(Schema):
    changes: dict[str, Any]
    reason: str = ""


class SaeReportIn(Schema):
    kind: str
    sent_at: str


class RelatednessIn(Schema):
    cart: str
    lymphodepletion: str
    password: str = ""


class DltDecisionIn(Schema):
    adverse_event: int
    decision: str
    comment: str = ""
    password: str = ""


class LabProposalIn(Schema):
    record: int
    item: str


def term_document(term: CtcaeTerm) -> dict[str, Any]:
    return {
        "code": term.code,
        "label": dict(term.label),
        "soc": term.soc,
        "meddra_code": term.meddra_code,
        "grades": list(term.grades),
        "aesi": term.aesi.value if term.aesi else None,
        "ctcae_term": term.ctcae_term,
    }


def clock_document(state: SaeClockState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "awareness_at": state.awareness_at.isoformat(),
        "closed": state.closed,
        "overdue": state.overdue,
        "reports": [
            {
                "kind": r.kind.value,
                "due_at": r.due_at.isoformat(),
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "status": r.status.value,
            }
            for r in state.reports
        ],
    }


def ae_document(ae: AdverseEvent, rules: SafetyRules, now: datetime) -> dict[str, Any]:
    return {
        "id": ae.pk,
        "term": ae.term,
        "ctcae_version": ae.ctcae_version,
        "grade": ae.grade,
        "serious": ae.serious,
        "seriousness_criteria": list(ae.seriousness_criteria),
        "awareness_at": ae.awareness_at.isoformat() if ae.awareness_at else None,
        "start_date": ae.start_date.isoformat(),
        "end_date": ae.end_date.isoformat() if ae.end_date else None,
        "relatedness_cart": ae.relatedness_cart or None,
        "relatedness_lymphodepletion": ae.relatedness_ld or None,
        "action": ae.action,
        "outcome": ae.outcome,
        "aesi": ae.aesi or None,
        "source": (
            {"form_record": ae.source_form_record_id, "item": ae.source_item} if ae.source_form_record_id else None
        ),
        # Every lab value of the episode the AE was recorded from (`source` is its worst).
        "lab_sources": [{"form_record": s.form_record_id, "item": s.item} for s in ae.lab_sources.all()],
        "recorded_at": ae.recorded_at.isoformat(),
        "sae_clock": clock_document(selectors.sae_clock(ae, rules, now)),
    }


def _body(payload: AdverseEventIn) -> dict[str, Any]:
    return {k: v for k, v in payload.dict().items() if k != "seriousness_criteria" and v is not None}


@router.get("/{code}/adverse-events", summary="A subject's adverse events with their SAE clock")
def adverse_events_list(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    rules = selectors.safety_rules(protocol_in_force())
    return {
        "adverse_events": [ae_document(ae, rules, reach.actor.now) for ae in selectors.adverse_events_of(reach.subject)]
    }


@router.post("/{code}/adverse-events", summary="Record an adverse event", response={201: dict[str, Any]})
def adverse_event_create(request: HttpRequest, code: str, payload: AdverseEventIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)

    def work() -> AdverseEvent:
        data = entries.read_adverse_event(_body(payload), reach.subject.center.time_zone, payload.seriousness_criteria)
        return services.adverse_event_record(actor=reach.actor, subject=reach.subject, protocol=protocol, data=data)

    ae = reach.run(work)
    return Status(201, ae_document(ae, rules, reach.actor.now))


@router.get("/{code}/adverse-events/{ae_id}", summary="One adverse event, with its history")
def adverse_event_read(request: HttpRequest, code: str, ae_id: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    rules = selectors.safety_rules(protocol_in_force())
    ae = selectors.adverse_event_get(reach.subject, ae_id)
    document = ae_document(ae, rules, reach.actor.now)
    document["history"] = [
        {"field": c.field, "old": c.old, "new": c.new, "user": c.user, "at": c.at.isoformat(), "reason": c.reason}
        for c in selectors.adverse_event_history(ae)
    ]
    return document


@router.put("/{code}/adverse-events/{ae_id}", summary="Correct an adverse event's values, with a reason")
def adverse_event_update(request: HttpRequest, code: str, ae_id: str, payload: CorrectionIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    ae = selectors.adverse_event_get(reach.subject, ae_id)
    raw = dict(payload.changes)
    criteria = raw.pop("seriousness_criteria", None)
    if criteria is not None and not isinstance(criteria, list):
        raise InvalidInput("{item}: a list of criteria is expected.", code="item_type", item="seriousness_criteria")

    def work() -> AdverseEvent:
        changes = entries.read_fields(
            {**raw, **({"seriousness_criteria": criteria} if criteria is not None else {})},
            reach.subject.center.time_zone,
            criteria or [],
        )
        return services.adverse_event_correct(
            actor=reach.actor, subject=reach.subject, protocol=protocol, ae=ae, changes=changes, reason=payload.reason
        )

    return ae_document(reach.run(work), rules, reach.actor.now)


@router.post(
    "/{code}/adverse-events/{ae_id}/sae-reports",
    summary="Record an SAE report sent to the sponsor",
    response={201: dict[str, Any]},
)
def sae_report_create(request: HttpRequest, code: str, ae_id: str, payload: SaeReportIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    rules = selectors.safety_rules(protocol_in_force())
    ae = selectors.adverse_event_get(reach.subject, ae_id)

    def work() -> AdverseEvent:
        kind = ReportKind(choice(ReportKind, payload.kind, "kind"))
        sent_at = entries.read_instant(payload.sent_at, "sent_at", reach.subject.center.time_zone)
        if sent_at is None:
            raise InvalidInput("{item}: a value is required.", code="item_required", item="sent_at")
        services.sae_report_record(actor=reach.actor, subject=reach.subject, ae=ae, kind=kind, sent_at=sent_at)
        return selectors.adverse_event_get(reach.subject, ae.pk)

    return Status(201, ae_document(reach.run(work), rules, reach.actor.now))


@router.post("/{code}/adverse-events/{ae_id}/relatedness", summary="The investigator's causality assessment (signed)")
def relatedness_create(request: HttpRequest, code: str, ae_id: str, payload: RelatednessIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.ASSESS_RELATEDNESS)
    rules = selectors.safety_rules(protocol_in_force())
    ae = selectors.adverse_event_get(reach.subject, ae_id)

    def work() -> AdverseEvent:
        return services.relatedness_assess(
            actor=reach.actor,
            user=reach.user,
            subject=reach.subject,
            ae=ae,
            cart=Relatedness(choice(Relatedness, payload.cart, "cart")),
            lymphodepletion=Relatedness(choice(Relatedness, payload.lymphodepletion, "lymphodepletion")),
            password=payload.password,
        )

    return ae_document(reach.run(work), rules, reach.actor.now)


def lab_proposal_document(p: LabProposal) -> dict[str, Any]:
    """One abnormality episode: its worst value at the top level (the keys of a single value, as
    before episodes), its dates and every value it covers."""
    return {
        "record": p.lab.record_id,
        "item": p.lab.item,
        "visit": p.lab.visit_code,
        "sampled_on": p.lab.sampled_on.isoformat(),
        "value": p.lab.value,
        "unit": p.lab.unit,
        "lower_limit": p.lab.lower_limit,
        "upper_limit": p.lab.upper_limit,
        "term": p.term,
        "grade": p.grade,
        "ctcae_version": p.version,
        "start_date": p.start.isoformat(),
        "end_date": p.end.isoformat() if p.end else None,
        "ongoing": p.end is None,
        "count": len(p.grades),
        "sources": [
            {
                "record": g.lab.record_id,
                "item": g.lab.item,
                "visit": g.lab.visit_code,
                "sampled_on": g.lab.sampled_on.isoformat(),
                "value": g.lab.value,
                "grade": g.grade,
            }
            for g in p.grades
        ],
    }


@router.get("/{code}/lab-proposals", summary="CTCAE grades proposed from the eCRF's lab values, one per episode")
def lab_proposals_list(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    proposals = selectors.lab_grade_proposals(reach.subject, protocol_in_force())
    return {"proposals": [lab_proposal_document(p) for p in proposals]}


@router.post(
    "/{code}/lab-proposals", summary="Record a proposed lab grade as an adverse event", response={201: dict[str, Any]}
)
def lab_proposal_accept(request: HttpRequest, code: str, payload: LabProposalIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    ae = reach.run(
        lambda: services.lab_proposal_accept(
            actor=reach.actor, subject=reach.subject, protocol=protocol, record_id=payload.record, item=payload.item
        )
    )
    return Status(201, ae_document(ae, rules, reach.actor.now))


def dlt_document(reach: Reach, rules: SafetyRules) -> dict[str, Any]:
    subject = reach.subject
    rows = selectors.dlt_panel(subject, rules)
    return {
        "infusion_date": subject.infusion_date.isoformat() if subject.infusion_date else None,
        "window_days": list(rules.dlt.window_days),
        "candidates": [
            {
                "adverse_event": row.adverse_event.pk,
                "term": row.adverse_event.term,
                "grade": row.adverse_event.grade,
                "start_date": row.adverse_event.start_date.isoformat(),
                "rule": row.candidate.rule.code,
                "decision": row.assessment.decision if row.assessment else None,
                "decided_by": row.assessment.signature.signer_name if row.assessment else None,
                "decided_at": row.assessment.signature.signed_at.isoformat() if row.assessment else None,
            }
            for row in rows
        ],
    }


@router.get("/{code}/dlt", summary="The DLT window: candidates from the recorded AEs and the investigator's decisions")
def dlt_read(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    return dlt_document(reach, selectors.safety_rules(protocol_in_force()))


@router.post("/{code}/dlt", summary="The investigator confirms or rules out a DLT candidate (signed)")
def dlt_decide(request: HttpRequest, code: str, payload: DltDecisionIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.DECIDE_DLT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)

    def work() -> DltAssessment:
        decision = services.DltDecisionInput(
            decision=DltAssessment.Decision(choice(DltAssessment.Decision, payload.decision, "decision")),
            comment=payload.comment,
            password=payload.password,
        )
        return services.dlt_decide(
            actor=reach.actor,
            user=reach.user,
            subject=reach.subject,
            protocol=protocol,
            ae_id=payload.adverse_event,
            decision=decision,
        )

    reach.run(work)
    return dlt_document(reach, rules)


@terms_router.get("/ctcae-terms", summary="Search the CTCAE term list (French or English, any case or accents)")
def ctcae_terms(request: HttpRequest, q: str = "") -> dict[str, Any]:
    require_somewhere(request.user, Action.READ_SAFETY, "ctcae_terms")
    return {"version": term_list().version, "terms": [term_document(t) for t in term_search(q, limit=50)]}
