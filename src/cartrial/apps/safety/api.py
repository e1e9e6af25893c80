"""API of the safety app: a subject's adverse events (list, record, read, correct), SAE reports,
the investigator's relatedness assessment, lab-proposed grades, the DLT window, the term list.
Same rules and words as the pages; errors in the one format `{code, message, item}`.

Codes (term action, outcome, seriousness, relatedness, report kind, DLT decision), dates and
instants are declared in the OpenAPI schema with their allowed values and formats, and read by the
same functions as the pages (`entries`, `choice`): a value outside them is refused with 422 naming
the item, in the request's language, with the page's code and words.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, WithJsonSchema

from cartrial.apps import text
from cartrial.apps.access import Reach, reach_subject, require_somewhere
from cartrial.apps.accounts.signing import SignatureCodeIn
from cartrial.apps.api_contract import Page, PageQuery, paged
from cartrial.apps.safety import entries, selectors, services
from cartrial.apps.safety.models import AdverseEvent, DltAssessment
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.safety.adverse_events import ActionTaken, Outcome, Relatedness, Seriousness, choice
from cartrial.domain.safety.lab_grades import LabProposal, LabValue
from cartrial.domain.safety.rules import SafetyRules
from cartrial.domain.safety.sae_clock import ReportKind, ReportStatus, SaeClockState
from cartrial.domain.safety.terms import AesiCategory, CtcaeTerm, term_list, term_search

router = Router(tags=["safety"])
terms_router = Router(tags=["safety"])


def _codes(values: list[str], what: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": values, "description": what})


# Inputs declared with their allowed values, read by the domain (see the module's docstring).
ActionCode = Annotated[str, _codes([a.value for a in ActionTaken], "Action taken (a code)")]
OutcomeCode = Annotated[str, _codes([o.value for o in Outcome], "Outcome (a code)")]
SeriousnessCode = Annotated[str, _codes([s.value for s in Seriousness], "A seriousness criterion (ICH E2A)")]
RelatednessCode = Annotated[str, _codes([r.value for r in Relatedness], "Causality (a code)")]
ReportKindCode = Annotated[str, _codes([k.value for k in ReportKind], "The report sent")]
DecisionCode = Annotated[str, _codes([d.value for d in DltAssessment.Decision], "The investigator's decision")]
DateText = Annotated[str, WithJsonSchema({"type": "string", "format": "date", "description": "YYYY-MM-DD"})]
InstantText = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 date and time; without an offset it is the center's wall-clock time",
        }
    ),
]


class AdverseEventIn(Schema):
    """A new adverse event: the items of the page's form."""

    model_config = ConfigDict(extra="forbid")

    term: str = Field(description="A code of the CTCAE term list (`GET /api/v1/ctcae-terms`)")
    grade: int = Field(description="CTCAE grade, one the term allows (1 to 5)")
    start_date: DateText
    end_date: DateText | None = None
    serious: bool = False
    seriousness_criteria: list[SeriousnessCode] = Field([], description="At least one when serious")
    awareness_at: InstantText | None = Field(None, description="When the site learnt of it; required when serious")
    action: ActionCode
    outcome: OutcomeCode


class AdverseEventChanges(Schema):
    """The recorded fields to correct: only those given change, the others keep their values. A
    null clears `end_date` or `awareness_at`; the other fields cannot be blank (a null is refused
    naming the field, except `serious`: null is no, as an unticked box)."""

    model_config = ConfigDict(extra="forbid")

    term: str | None = Field(None, description="A code of the CTCAE term list")
    grade: int | None = Field(None, description="CTCAE grade, one the term allows (1 to 5)")
    start_date: DateText | None = None
    end_date: DateText | None = None
    serious: bool | None = None
    seriousness_criteria: list[SeriousnessCode] | None = Field(None, description="The whole new list of criteria")
    awareness_at: InstantText | None = None
    action: ActionCode | None = None
    outcome: OutcomeCode | None = None


class CorrectionIn(Schema):
    changes: AdverseEventChanges
    reason: str = Field("", description="Why the recorded values are corrected (required)")


class SaeReportIn(Schema):
    kind: ReportKindCode
    sent_at: InstantText


class RelatednessIn(SignatureCodeIn):
    cart: RelatednessCode = Field(description="Causality to the CAR-T product")
    lymphodepletion: RelatednessCode = Field(description="Causality to lymphodepletion")
    password: str = Field("", description="The investigator's password: the assessment is signed")


class DltDecisionIn(SignatureCodeIn):
    adverse_event: int = Field(description="The candidate's adverse event id")
    decision: DecisionCode
    comment: str = Field("", description="Required to rule a candidate out")
    password: str = Field("", description="The investigator's password: the decision is signed")


class LabProposalIn(Schema):
    record: int = Field(description="The form record of any value of the episode")
    item: str = Field(description="The lab item of that value (e.g. `anc`)")


class LabValueRefOut(Schema):
    form_record: int
    item: str


class ReportDueOut(Schema):
    kind: ReportKind
    due_at: datetime
    sent_at: datetime | None
    status: ReportStatus


class SaeClockOut(Schema):
    """The reporting clock of a serious AE: every report so far and whether one is overdue."""

    awareness_at: datetime
    closed: bool
    overdue: bool
    reports: list[ReportDueOut]


class AdverseEventOut(Schema):
    id: int
    term: str
    ctcae_version: str
    grade: int
    serious: bool
    seriousness_criteria: list[Seriousness]
    awareness_at: datetime | None
    start_date: date
    end_date: date | None
    relatedness_cart: Relatedness | None
    relatedness_lymphodepletion: Relatedness | None
    action: ActionTaken
    outcome: Outcome
    aesi: AesiCategory | None
    source: LabValueRefOut | None = Field(description="The lab value it records (an episode's worst), if any")
    lab_sources: list[LabValueRefOut] = Field(description="Every lab value of the episode it was recorded from")
    recorded_at: datetime
    sae_clock: SaeClockOut | None = Field(description="Null for a non-serious AE")


# A value of an AE's history as the audit trail keeps it: a code, a number, a yes/no, a date or
# time as ISO text, the list of seriousness criteria, or nothing.
type HistoryValue = str | int | float | bool | list[str] | None


class AeChangeOut(Schema):
    field: str
    old: HistoryValue
    new: HistoryValue
    user: str
    at: datetime
    reason: str
    event: str


class AdverseEventDetailOut(AdverseEventOut):
    history: list[AeChangeOut] = Field(description="Every change, oldest first")
    relatedness_meaning: str = Field(description="What the investigator's relatedness signature means")


def clock_out(state: SaeClockState | None) -> SaeClockOut | None:
    if state is None:
        return None
    return SaeClockOut(
        awareness_at=state.awareness_at,
        closed=state.closed,
        overdue=state.overdue,
        reports=[ReportDueOut(kind=r.kind, due_at=r.due_at, sent_at=r.sent_at, status=r.status) for r in state.reports],
    )


def ae_out(ae: AdverseEvent, rules: SafetyRules, now: datetime) -> AdverseEventOut:
    return AdverseEventOut(
        id=ae.pk,
        term=ae.term,
        ctcae_version=ae.ctcae_version,
        grade=ae.grade,
        serious=ae.serious,
        seriousness_criteria=[Seriousness(c) for c in ae.seriousness_criteria],
        awareness_at=ae.awareness_at,
        start_date=ae.start_date,
        end_date=ae.end_date,
        relatedness_cart=Relatedness(ae.relatedness_cart) if ae.relatedness_cart else None,
        relatedness_lymphodepletion=Relatedness(ae.relatedness_ld) if ae.relatedness_ld else None,
        action=ActionTaken(ae.action),
        outcome=Outcome(ae.outcome),
        aesi=AesiCategory(ae.aesi) if ae.aesi else None,
        source=(
            LabValueRefOut(form_record=ae.source_form_record_id, item=ae.source_item)
            if ae.source_form_record_id
            else None
        ),
        lab_sources=[LabValueRefOut(form_record=s.form_record_id, item=s.item) for s in ae.lab_sources.all()],
        recorded_at=ae.recorded_at,
        sae_clock=clock_out(selectors.sae_clock(ae, rules, now)),
    )


def _body(payload: AdverseEventIn) -> dict[str, Any]:
    return {k: v for k, v in payload.dict().items() if k != "seriousness_criteria" and v is not None}


@router.get(
    "/{code}/adverse-events", response=Page[AdverseEventOut], summary="A subject's adverse events with their SAE clock"
)
def adverse_events_list(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[AdverseEventOut]:
    """By start date. `since`: the AEs recorded, corrected, assessed or reported to the sponsor after
    it (the audit trail's `adverse_event` and `sae_report` entries)."""
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    rules = selectors.safety_rules(protocol_in_force())
    events = selectors.adverse_events_changed_since(
        reach.subject, selectors.adverse_events_of(reach.subject), page.since
    )
    return paged(events, page, lambda ae: ae_out(ae, rules, reach.actor.now))


@router.post("/{code}/adverse-events", summary="Record an adverse event", response={201: AdverseEventOut})
def adverse_event_create(request: HttpRequest, code: str, payload: AdverseEventIn) -> Status[AdverseEventOut]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)

    def work() -> AdverseEvent:
        data = entries.read_adverse_event(_body(payload), reach.subject.center.time_zone, payload.seriousness_criteria)
        return services.adverse_event_record(actor=reach.actor, subject=reach.subject, protocol=protocol, data=data)

    ae = reach.run(work)
    return Status(201, ae_out(ae, rules, reach.actor.now))


@router.get(
    "/{code}/adverse-events/{ae_id}", response=AdverseEventDetailOut, summary="One adverse event, with its history"
)
def adverse_event_read(request: HttpRequest, code: str, ae_id: str) -> AdverseEventDetailOut:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    rules = selectors.safety_rules(protocol_in_force())
    ae = selectors.adverse_event_get(reach.subject, ae_id)
    history = [
        AeChangeOut(field=c.field, old=c.old, new=c.new, user=c.user, at=c.at, reason=c.reason, event=c.event)
        for c in selectors.adverse_event_history(ae)
    ]
    meaning = text.tr(services.RELATEDNESS_MEANING, text.api_language(request))
    return AdverseEventDetailOut(
        **ae_out(ae, rules, reach.actor.now).dict(), history=history, relatedness_meaning=meaning
    )


@router.put(
    "/{code}/adverse-events/{ae_id}",
    response=AdverseEventOut,
    summary="Correct an adverse event's values, with a reason",
)
def adverse_event_update(request: HttpRequest, code: str, ae_id: str, payload: CorrectionIn) -> AdverseEventOut:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    ae = selectors.adverse_event_get(reach.subject, ae_id)
    raw = payload.changes.model_dump(exclude_unset=True)
    criteria = raw.pop("seriousness_criteria", None)

    def work() -> AdverseEvent:
        changes = entries.read_fields(
            {**raw, **({"seriousness_criteria": criteria} if criteria is not None else {})},
            reach.subject.center.time_zone,
            criteria or [],
        )
        return services.adverse_event_correct(
            actor=reach.actor, subject=reach.subject, protocol=protocol, ae=ae, changes=changes, reason=payload.reason
        )

    return ae_out(reach.run(work), rules, reach.actor.now)


@router.post(
    "/{code}/adverse-events/{ae_id}/sae-reports",
    summary="Record an SAE report sent to the sponsor",
    response={201: AdverseEventOut},
)
def sae_report_create(request: HttpRequest, code: str, ae_id: str, payload: SaeReportIn) -> Status[AdverseEventOut]:
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

    return Status(201, ae_out(reach.run(work), rules, reach.actor.now))


@router.post(
    "/{code}/adverse-events/{ae_id}/relatedness",
    response=AdverseEventOut,
    summary="The investigator's causality assessment (signed)",
)
def relatedness_create(request: HttpRequest, code: str, ae_id: str, payload: RelatednessIn) -> AdverseEventOut:
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
            otp_code=payload.otp_code,
        )

    return ae_out(reach.run(work), rules, reach.actor.now)


class LabSampleOut(Schema):
    record: int
    item: str
    visit: str
    sampled_on: date
    value: float
    grade: int


class LabProposalOut(Schema):
    """One abnormality episode: its worst value at the top level, its dates and every value it covers."""

    record: int = Field(description="The worst value's form record")
    item: str
    visit: str
    sampled_on: date
    value: float
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    term: str
    grade: int
    band: str = Field(description="The CTCAE band of the worst value, in the request's language")
    ctcae_version: str
    start_date: date
    end_date: date | None
    ongoing: bool
    count: int = Field(description="How many abnormal values the episode holds")
    sources: list[LabSampleOut]


class LabProposalPage(Page[LabProposalOut]):
    excluded_terms: list[str] = Field(description="Terms the protocol expects of its treatment: never proposed")


def _sample(value: LabValue, grade: int) -> LabSampleOut:
    return LabSampleOut(
        record=value.record_id,
        item=value.item,
        visit=value.visit_code,
        sampled_on=value.sampled_on,
        value=value.value,
        grade=grade,
    )


def lab_proposal_out(p: LabProposal, language: str) -> LabProposalOut:
    return LabProposalOut(
        record=p.lab.record_id,
        item=p.lab.item,
        visit=p.lab.visit_code,
        sampled_on=p.lab.sampled_on,
        value=p.lab.value,
        unit=p.lab.unit,
        lower_limit=p.lab.lower_limit,
        upper_limit=p.lab.upper_limit,
        term=p.term,
        grade=p.grade,
        band=text.render(p.band, language),
        ctcae_version=p.version,
        start_date=p.start,
        end_date=p.end,
        ongoing=p.end is None,
        count=len(p.grades),
        sources=[_sample(g.lab, g.grade) for g in p.grades],
    )


@router.get(
    "/{code}/lab-proposals",
    response=LabProposalPage,
    summary="CTCAE grades proposed from the eCRF's lab values, one per episode",
)
def lab_proposals_list(request: HttpRequest, code: str, page: Query[PageQuery]) -> LabProposalPage:
    """By first abnormal sample. `since`: the episodes holding a value whose form was saved,
    corrected or verified, or whose visit date was recorded, after it (the audit trail's
    `form_record` and `visit_record` entries)."""
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    protocol = protocol_in_force()
    proposals = selectors.lab_proposals_changed_since(
        reach.subject, selectors.lab_grade_proposals(reach.subject, protocol), page.since
    )
    language = text.api_language(request)
    window = paged(proposals, page, lambda p: lab_proposal_out(p, language))
    return LabProposalPage(**window.dict(), excluded_terms=sorted(selectors.lab_terms_not_proposed(protocol)))


@router.post(
    "/{code}/lab-proposals",
    summary="Record a proposed lab grade as an adverse event",
    response={201: AdverseEventOut},
)
def lab_proposal_accept(request: HttpRequest, code: str, payload: LabProposalIn) -> Status[AdverseEventOut]:
    reach = reach_subject(request.user, code, Action.RECORD_ADVERSE_EVENT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)
    ae = reach.run(
        lambda: services.lab_proposal_accept(
            actor=reach.actor, subject=reach.subject, protocol=protocol, record_id=payload.record, item=payload.item
        )
    )
    return Status(201, ae_out(ae, rules, reach.actor.now))


class DltCandidateOut(Schema):
    adverse_event: int
    term: str
    grade: int
    start_date: date
    rule: str = Field(description="The protocol's DLT rule the AE meets")
    decision: DltAssessment.Decision | None = Field(description="The signed decision in force; null while pending")
    decided_by: str | None
    decided_at: datetime | None


class DltMeaningsOut(Schema):
    """What the investigator's signature means, per decision, in the request's language."""

    confirmed: str
    ruled_out: str


class DltOut(Schema):
    infusion_date: date | None
    window_days: list[int] = Field(description="The window's first and last day from D0")
    candidates: list[DltCandidateOut]
    signature_meanings: DltMeaningsOut


def dlt_out(reach: Reach, rules: SafetyRules, language: str) -> DltOut:
    subject = reach.subject
    meanings = {decision.value: text.tr(meaning, language) for decision, meaning in services.DLT_MEANINGS.items()}
    return DltOut(
        infusion_date=subject.infusion_date,
        window_days=list(rules.dlt.window_days),
        candidates=[
            DltCandidateOut(
                adverse_event=row.adverse_event.pk,
                term=row.adverse_event.term,
                grade=row.adverse_event.grade,
                start_date=row.adverse_event.start_date,
                rule=row.candidate.rule.code,
                decision=DltAssessment.Decision(row.assessment.decision) if row.assessment else None,
                decided_by=row.assessment.signature.signer_name if row.assessment else None,
                decided_at=row.assessment.signature.signed_at if row.assessment else None,
            )
            for row in selectors.dlt_panel(subject, rules)
        ],
        signature_meanings=DltMeaningsOut(**meanings),
    )


@router.get(
    "/{code}/dlt",
    response=DltOut,
    summary="The DLT window: candidates from the recorded AEs and the investigator's decisions",
)
def dlt_read(request: HttpRequest, code: str) -> DltOut:
    reach = reach_subject(request.user, code, Action.READ_SAFETY, record=False)
    return dlt_out(reach, selectors.safety_rules(protocol_in_force()), text.api_language(request))


@router.post("/{code}/dlt", response=DltOut, summary="The investigator confirms or rules out a DLT candidate (signed)")
def dlt_decide(request: HttpRequest, code: str, payload: DltDecisionIn) -> DltOut:
    reach = reach_subject(request.user, code, Action.DECIDE_DLT)
    protocol = protocol_in_force()
    rules = selectors.safety_rules(protocol)

    def work() -> DltAssessment:
        decision = services.DltDecisionInput(
            decision=DltAssessment.Decision(choice(DltAssessment.Decision, payload.decision, "decision")),
            comment=payload.comment,
            password=payload.password,
            otp_code=payload.otp_code,
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
    return dlt_out(reach, rules, text.api_language(request))


class CtcaeTermOut(Schema):
    code: str
    label: dict[str, str] = Field(description="The term's label by language (`en`, `fr`)")
    soc: str = Field(description="MedDRA system organ class")
    meddra_code: int | None
    grades: list[int] = Field(description="The grades the term allows")
    aesi: AesiCategory | None
    ctcae_term: bool = Field(description="A term of CTCAE v5.0 itself (false: added by the trial)")


class CtcaeTermPage(Page[CtcaeTermOut]):
    version: str = Field(description="The term list's CTCAE version")


def term_out(term: CtcaeTerm) -> CtcaeTermOut:
    return CtcaeTermOut(
        code=term.code,
        label=dict(term.label),
        soc=term.soc,
        meddra_code=term.meddra_code,
        grades=list(term.grades),
        aesi=term.aesi,
        ctcae_term=term.ctcae_term,
    )


@terms_router.get(
    "/ctcae-terms",
    response=CtcaeTermPage,
    summary="Search the CTCAE term list (French or English, any case or accents)",
)
def ctcae_terms(request: HttpRequest, page: Query[PageQuery], q: str = "") -> CtcaeTermPage:
    """Labels starting with `q` first, then by English label. The list ships with the release and
    the trial never changes it: a `since` read is empty (a new release's list has a new `version`)."""
    require_somewhere(request.user, Action.READ_SAFETY, "ctcae_terms")
    terms = term_list()
    found = [] if page.since is not None else term_search(q, limit=len(terms.terms))
    window = paged(found, page, term_out)
    return CtcaeTermPage(**window.dict(), version=terms.version)
