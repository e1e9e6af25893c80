"""API: a subject's daily CRS/ICANS assessments (list, read one day with its corrections, record,
correct) and its episodes with the days still due and ICAHT.

Same rules and words as the pages (the domain parses the inputs, the services record and correct).
The choices (`hypotension`, `hypoxia`...) and `assessed_on` are declared in the OpenAPI schema with
their codes and format and read by the domain, so a value outside them is refused as on the page.
Errors: 404 outside the user's scope or for a day without an assessment (reading it), 403 for a
role that may not read or record, 422 for a refused input (`item` names it: `assessed_on` before
D0, `temperature_c` out of range...), 409 for a day already assessed (correct it with PUT) or a
day without an assessment (correcting it).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, WithJsonSchema

from cartrial.apps.access import reach_subject
from cartrial.apps.api_contract import FieldValue, Page, PageQuery, changed_since, paged
from cartrial.apps.toxicity import selectors, services
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.scores.crs import Hypotension, Hypoxia
from cartrial.domain.scores.icans import CerebralEdema, Consciousness, MotorWeakness, Seizure
from cartrial.domain.toxicity import CHOICES, Episode, IcahtResult, ToxicityKind, assessment_inputs_parse

router = Router(tags=["toxicity"])


def _choice(name: str, what: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(CHOICES[name]), "description": what})


# The daily form's choices (the `crs` and `icans` calculators' codes), read by the domain.
HypotensionCode = Annotated[str, _choice("hypotension", "Hypotension and its treatment")]
HypoxiaCode = Annotated[str, _choice("hypoxia", "Oxygen support for hypoxia")]
ConsciousnessCode = Annotated[str, _choice("consciousness", "Depressed level of consciousness")]
SeizureCode = Annotated[str, _choice("seizure", "Seizure")]
MotorWeaknessCode = Annotated[str, _choice("motor_weakness", "Motor findings")]
CerebralEdemaCode = Annotated[str, _choice("cerebral_edema", "Raised intracranial pressure / cerebral oedema")]


class AssessmentIn(Schema):
    """One day's inputs (choice codes as in the `crs` and `icans` calculators)."""

    model_config = ConfigDict(extra="forbid")

    temperature_c: float = Field(description="Highest body temperature of the day, °C")
    hypotension: HypotensionCode
    hypoxia: HypoxiaCode
    ice_score: int | None = Field(None, description="ICE score, 0 to 10; null: not performed")
    consciousness: ConsciousnessCode
    seizure: SeizureCode
    motor_weakness: MotorWeaknessCode
    cerebral_edema: CerebralEdemaCode
    tocilizumab_given: bool = False
    corticosteroids_given: bool = False


class AssessmentRecordIn(AssessmentIn):
    assessed_on: Annotated[
        str, WithJsonSchema({"type": "string", "format": "date", "description": "The center's date (YYYY-MM-DD)"})
    ]


class AssessmentCorrectIn(AssessmentIn):
    reason: str = Field("", description="Why the day's inputs are corrected (required)")


def _inputs(payload: AssessmentIn) -> dict[str, Any]:
    return payload.dict(exclude={"assessed_on", "reason"})


class ToxicityAssessmentOut(Schema):
    """One assessment: date, day, inputs, grades, protocol version, who and when."""

    assessed_on: date
    day: int = Field(description="Days from the infusion (D0 = 0)")
    temperature_c: float
    hypotension: Hypotension
    hypoxia: Hypoxia
    ice_score: int | None
    consciousness: Consciousness
    seizure: Seizure
    motor_weakness: MotorWeakness
    cerebral_edema: CerebralEdema
    tocilizumab_given: bool
    corticosteroids_given: bool
    crs_grade: int
    icans_grade: int
    protocol_version: str = Field(description="The protocol version the grades were computed under")
    recorded_by: str
    recorded_at: datetime


class AssessmentPage(Page[ToxicityAssessmentOut]):
    subject: str
    infusion_date: date | None


class ChangeOut(Schema):
    field: str
    old: FieldValue
    new: FieldValue


class CorrectionOut(Schema):
    """A correction of the day (or its grades derived again after an earlier day changed)."""

    at: datetime
    by: str = Field(description="Who corrected it (full name)")
    role: str
    changes: list[ChangeOut]
    reason: str


class AssessmentDetailOut(ToxicityAssessmentOut):
    history: list[CorrectionOut] = Field(description="Its corrections, oldest first")


class AssessmentCorrectedOut(ToxicityAssessmentOut):
    corrected: list[str] = Field(description="The inputs the correction changed")
    reason: str
    regraded_days: list[int] = Field(description="Later days whose grades changed with it")


def assessment_out(assessment: ToxicityAssessment) -> ToxicityAssessmentOut:
    return ToxicityAssessmentOut(
        assessed_on=assessment.assessed_on,
        day=assessment.day,
        **assessment.inputs(),
        crs_grade=assessment.crs_grade,
        icans_grade=assessment.icans_grade,
        protocol_version=assessment.protocol_version.version,
        recorded_by=assessment.recorded_by.get_username(),
        recorded_at=assessment.recorded_at,
    )


class EpisodeOut(Schema):
    kind: ToxicityKind
    onset_day: int
    max_grade: int
    duration_days: int = Field(description="From the onset to the last day graded ≥ 1, both included")
    tocilizumab: bool
    steroids: bool
    resolved_day: int | None = Field(description="The first day graded 0 after it; null while it goes on")
    ongoing: bool


class AncOut(Schema):
    day: int
    anc_per_ul: float


class IcahtOut(Schema):
    early_grade: int | None
    late_grade: int | None
    days_anc_le_500: int
    days_anc_le_100: int
    late_nadir_anc_per_ul: float | None
    anc: list[AncOut] = Field(description="The ANC series graded, cells/µL by day from D0")


class EpisodePage(Page[EpisodeOut]):
    """The subject's CRS then ICANS episodes (each in onset order), with what the whole series gives."""

    subject: str
    today_day: int | None = Field(description="Today's day from D0 at the subject's center")
    days_due: list[int] = Field(description="The days that need an assessment up to today")
    days_missing: list[int] = Field(description="Those of them still without one")
    icaht: IcahtOut | None


def episode_out(episode: Episode) -> EpisodeOut:
    return EpisodeOut(
        kind=episode.kind,
        onset_day=episode.onset_day,
        max_grade=episode.max_grade,
        duration_days=episode.duration_days,
        tocilizumab=episode.tocilizumab,
        steroids=episode.steroids,
        resolved_day=episode.resolved_day,
        ongoing=episode.ongoing,
    )


def icaht_out(icaht: IcahtResult | None) -> IcahtOut | None:
    if icaht is None:
        return None
    early, late = icaht.grades.early, icaht.grades.late
    return IcahtOut(
        early_grade=early.grade,
        late_grade=late.grade,
        days_anc_le_500=early.days_anc_le_500,
        days_anc_le_100=early.days_anc_le_100,
        late_nadir_anc_per_ul=late.nadir_anc_per_ul,
        anc=[AncOut(day=v.day, anc_per_ul=round(v.anc_per_ul, 1)) for v in icaht.series],
    )


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            "“{raw}” is not a date (YYYY-MM-DD).", code="item_type", item="assessed_on", raw=raw
        ) from None


@router.get(
    "/{code}/toxicity/assessments",
    response=AssessmentPage,
    summary="A subject's daily CRS/ICANS assessments, D0 onwards",
)
def assessments_list(request: HttpRequest, code: str, page: Query[PageQuery]) -> AssessmentPage:
    """In day order. `since`: the days recorded, corrected or graded again after it (the audit
    trail's `toxicity_assessment` entries)."""
    subject = reach_subject(request.user, code, Action.READ_TOXICITY, record=False).subject
    assessments = changed_since(selectors.assessments_of(subject), services.ENTITY, page.since)
    window = paged(assessments, page, assessment_out)
    return AssessmentPage(**window.dict(), subject=subject.code, infusion_date=subject.infusion_date)


@router.get(
    "/{code}/toxicity/assessments/{day}",
    response=AssessmentDetailOut,
    summary="One day's assessment with its corrections (who, when, why)",
)
def assessment_read(request: HttpRequest, code: str, day: int) -> AssessmentDetailOut:
    reach = reach_subject(request.user, code, Action.READ_TOXICITY, record=False)
    assessment = selectors.assessment_get(reach.subject, day)
    history = [
        CorrectionOut(
            at=entry.at,
            by=entry.name,
            role=entry.role,
            changes=[ChangeOut(field=c["field"], old=c["old"], new=c["new"]) for c in entry.changes],
            reason=entry.reason,
        )
        for entry in selectors.assessment_history(reach.subject, assessment)
    ]
    return AssessmentDetailOut(**assessment_out(assessment).dict(), history=history)


@router.post(
    "/{code}/toxicity/assessments",
    response={201: ToxicityAssessmentOut},
    summary="Record one day's assessment; the CRS and ICANS grades are computed (ASTCT 2019)",
)
def assessment_record(request: HttpRequest, code: str, payload: AssessmentRecordIn) -> Status[ToxicityAssessmentOut]:
    reach = reach_subject(request.user, code, Action.RECORD_TOXICITY_ASSESSMENT)
    protocol = protocol_in_force()

    def work() -> ToxicityAssessment:
        assessed_on = _date(payload.assessed_on)
        inputs = assessment_inputs_parse(_inputs(payload))
        return services.toxicity_assessment_record(
            actor=reach.actor, subject=reach.subject, protocol=protocol, assessed_on=assessed_on, inputs=inputs
        )

    assessment = reach.run(work, what=Action.RECORD_TOXICITY_ASSESSMENT.value)
    return Status(201, assessment_out(assessment))


@router.put(
    "/{code}/toxicity/assessments/{day}",
    response=AssessmentCorrectedOut,
    summary="Correct one day's assessment with a reason (every input given again); grades follow",
)
def assessment_correct(
    request: HttpRequest, code: str, day: int, payload: AssessmentCorrectIn
) -> AssessmentCorrectedOut:
    reach = reach_subject(request.user, code, Action.CORRECT_TOXICITY_ASSESSMENT)
    protocol = protocol_in_force()

    def work() -> services.AssessmentCorrected:
        inputs = assessment_inputs_parse(_inputs(payload))
        return services.toxicity_assessment_correct(
            actor=reach.actor, subject=reach.subject, protocol=protocol, day=day, inputs=inputs, reason=payload.reason
        )

    done = reach.run(work, what=Action.CORRECT_TOXICITY_ASSESSMENT.value)
    return AssessmentCorrectedOut(
        **assessment_out(done.assessment).dict(),
        corrected=done.changed,
        reason=payload.reason.strip(),
        regraded_days=done.regraded_days,
    )


@router.get(
    "/{code}/toxicity/episodes",
    response=EpisodePage,
    summary="CRS and ICANS episodes, the days still due, and ICAHT",
)
def episodes(request: HttpRequest, code: str, page: Query[PageQuery]) -> EpisodePage:
    """CRS then ICANS, each by onset. `since`: the episodes holding a day recorded, corrected or
    graded again after it (the audit trail's `toxicity_assessment` entries); the days due and ICAHT
    are the whole subject's, whatever `since`."""
    reach = reach_subject(request.user, code, Action.READ_TOXICITY, record=False)
    toxicity = selectors.subject_toxicity(reach.subject, protocol_in_force(), reach.actor.now)
    changed = selectors.episodes_changed_since(reach.subject, toxicity.episodes, page.since)
    window = paged(changed, page, episode_out)
    return EpisodePage(
        **window.dict(),
        subject=reach.subject.code,
        today_day=toxicity.today_day,
        days_due=list(toxicity.days_due.required),
        days_missing=list(toxicity.days_due.missing),
        icaht=icaht_out(toxicity.icaht),
    )
