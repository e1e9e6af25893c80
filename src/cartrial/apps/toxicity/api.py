"""API: a subject's daily CRS/ICANS assessments (read, record, correct) and its episodes with ICAHT.

Same rules and words as the page (the domain parses the inputs, the services record and correct).
Errors: 404 outside the user's scope, 403 for a role that may not read or record, 422 for a refused
input (`item` names it: `assessed_on` before D0, `temperature_c` out of range...), 409 for a day
already assessed (correct it with PUT) or a day without an assessment.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict

from cartrial.apps.access import reach_subject
from cartrial.apps.toxicity import selectors, services
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.toxicity import Episode, IcahtResult, assessment_inputs_parse

router = Router(tags=["toxicity"])


class AssessmentIn(Schema):
    """One day's inputs (choice codes as in the `crs` and `icans` calculators)."""

    model_config = ConfigDict(extra="forbid")

    temperature_c: float | str | None = None
    hypotension: str | None = None
    hypoxia: str | None = None
    ice_score: int | float | str | None = None
    consciousness: str | None = None
    seizure: str | None = None
    motor_weakness: str | None = None
    cerebral_edema: str | None = None
    tocilizumab_given: bool = False
    corticosteroids_given: bool = False


class AssessmentRecordIn(AssessmentIn):
    assessed_on: str


class AssessmentCorrectIn(AssessmentIn):
    reason: str = ""


def _inputs(payload: AssessmentIn) -> dict[str, Any]:
    return payload.dict(exclude={"assessed_on", "reason"})


def assessment_document(assessment: ToxicityAssessment) -> dict[str, Any]:
    """One assessment as the API shows it: date, day, inputs, grades, protocol version, who and when."""
    return {
        "assessed_on": assessment.assessed_on.isoformat(),
        "day": assessment.day,
        **assessment.inputs(),
        "crs_grade": assessment.crs_grade,
        "icans_grade": assessment.icans_grade,
        "protocol_version": assessment.protocol_version.version,
        "recorded_by": assessment.recorded_by.get_username(),
        "recorded_at": assessment.recorded_at.isoformat(),
    }


def episode_document(episode: Episode) -> dict[str, Any]:
    return {
        "kind": episode.kind.value,
        "onset_day": episode.onset_day,
        "max_grade": episode.max_grade,
        "duration_days": episode.duration_days,
        "tocilizumab": episode.tocilizumab,
        "steroids": episode.steroids,
        "resolved_day": episode.resolved_day,
        "ongoing": episode.ongoing,
    }


def icaht_document(icaht: IcahtResult | None) -> dict[str, Any] | None:
    if icaht is None:
        return None
    early, late = icaht.grades.early, icaht.grades.late
    return {
        "early_grade": early.grade,
        "late_grade": late.grade,
        "days_anc_le_500": early.days_anc_le_500,
        "days_anc_le_100": early.days_anc_le_100,
        "late_nadir_anc_per_ul": late.nadir_anc_per_ul,
        "anc": [{"day": v.day, "anc_per_ul": round(v.anc_per_ul, 1)} for v in icaht.series],
    }


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            "“{raw}” is not a date (YYYY-MM-DD).", code="item_type", item="assessed_on", raw=raw
        ) from None


@router.get("/{code}/toxicity/assessments", summary="A subject's daily CRS/ICANS assessments, D0 onwards")
def assessments_list(request: HttpRequest, code: str) -> dict[str, Any]:
    subject = reach_subject(request.user, code, Action.READ_TOXICITY, record=False).subject
    return {
        "subject": subject.code,
        "infusion_date": subject.infusion_date.isoformat() if subject.infusion_date else None,
        "assessments": [assessment_document(a) for a in selectors.subject_assessments(subject)],
    }


@router.post(
    "/{code}/toxicity/assessments",
    response={201: dict[str, Any]},
    summary="Record one day's assessment; the CRS and ICANS grades are computed (ASTCT 2019)",
)
def assessment_record(request: HttpRequest, code: str, payload: AssessmentRecordIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.RECORD_TOXICITY_ASSESSMENT)
    protocol = protocol_in_force()

    def work() -> ToxicityAssessment:
        assessed_on = _date(payload.assessed_on)
        inputs = assessment_inputs_parse(_inputs(payload))
        return services.toxicity_assessment_record(
            actor=reach.actor, subject=reach.subject, protocol=protocol, assessed_on=assessed_on, inputs=inputs
        )

    assessment = reach.run(work, what=Action.RECORD_TOXICITY_ASSESSMENT.value)
    return Status(201, assessment_document(assessment))


@router.put(
    "/{code}/toxicity/assessments/{day}",
    summary="Correct one day's assessment with a reason (every input given again); grades follow",
)
def assessment_correct(request: HttpRequest, code: str, day: int, payload: AssessmentCorrectIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.CORRECT_TOXICITY_ASSESSMENT)
    protocol = protocol_in_force()

    def work() -> services.AssessmentCorrected:
        inputs = assessment_inputs_parse(_inputs(payload))
        return services.toxicity_assessment_correct(
            actor=reach.actor, subject=reach.subject, protocol=protocol, day=day, inputs=inputs, reason=payload.reason
        )

    done = reach.run(work, what=Action.CORRECT_TOXICITY_ASSESSMENT.value)
    return {
        **assessment_document(done.assessment),
        "corrected": done.changed,
        "reason": payload.reason.strip(),
        "regraded_days": done.regraded_days,
    }


@router.get("/{code}/toxicity/episodes", summary="CRS and ICANS episodes, the days still due, and ICAHT")
def episodes(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_TOXICITY, record=False)
    toxicity = selectors.subject_toxicity(reach.subject, protocol_in_force(), reach.actor.now)
    documents = [episode_document(e) for e in toxicity.episodes]
    return {
        "subject": reach.subject.code,
        "crs": [d for d in documents if d["kind"] == "crs"],
        "icans": [d for d in documents if d["kind"] == "icans"],
        "today_day": toxicity.today_day,
        "days_due": list(toxicity.days_due.required),
        "days_missing": list(toxicity.days_due.missing),
        "icaht": icaht_document(toxicity.icaht),
    }
