"""API: a subject's kinetic results (read, record as JSON or CSV) and its assessment (fit, band, flags).

Same rules and words as the pages (`entries`, `services`); messages follow Accept-Language.
Errors: 404 outside the user's scope, 403 for a role that may not enter results, 422 for a
refused result (`code` names the problem, `message` the line or result), 409 when there is no
result to assess yet.
"""

from __future__ import annotations

from typing import Any, cast
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.utils import translation
from ninja import Router, Schema, Status

from cartrial.apps.access import reach_subject
from cartrial.apps.biology import selectors, services
from cartrial.apps.biology.entries import entries_from_objects, parse_csv
from cartrial.apps.biology.presenters import flag_message
from cartrial.apps.subjects.models import Subject
from cartrial.apps.text import api_language
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.kinetics import assessment_document
from cartrial.domain.roles import Action

router = Router(tags=["kinetics"])


class ObservationIn(Schema):
    subject: str | None = None
    marker: str
    sampled_at: str | None = None
    value: float | str | None = None
    unit: str | None = None
    loq: float | str | None = None


class ObservationsIn(Schema):
    observations: list[ObservationIn]


def _row_document(row: selectors.KineticRow, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.pk,
        "marker": row.marker,
        "sampled_at": row.sampled_at.isoformat(),
        "sampled_at_local": row.sampled_at.astimezone(zone).isoformat(),
        "day": row.day,
        "value": row.value,
        "unit": row.unit,
        "loq": row.loq,
        "censored": row.censored,
        "context": row.context,
        "used_by_model": row.usable,
        "not_used_because": row.not_used_because or None,
    }


def _observations_document(subject: Subject) -> dict[str, Any]:
    zone = ZoneInfo(subject.center.time_zone)
    return {
        "subject": subject.code,
        "infusion_date": subject.infusion_date.isoformat() if subject.infusion_date else None,
        "time_zone": zone.key,
        "observations": [_row_document(row, zone) for row in selectors.subject_kinetic_rows(subject=subject)],
    }


def _recorded(subject: Subject, result: services.KineticsRecorded) -> dict[str, Any]:
    zone = ZoneInfo(subject.center.time_zone)
    recorded = {row.pk for row in result.recorded}
    rows = [row for row in selectors.subject_kinetic_rows(subject=subject) if row.pk in recorded]
    return {
        "subject": subject.code,
        "recorded": len(result.recorded),
        "skipped_duplicates": result.skipped_duplicates,
        "observations": [_row_document(row, zone) for row in rows],
    }


@router.get("/{code}/kinetics/observations", summary="A subject's CAR-T, B-cell and anti-dsDNA results")
def observations_list(request: HttpRequest, code: str) -> dict[str, Any]:
    return _observations_document(reach_subject(request.user, code).subject)


@router.post(
    "/{code}/kinetics/observations",
    response={201: dict[str, Any]},
    summary="Record results (all or none); sampled_at without an offset is read in the center's zone",
)
def observations_record(request: HttpRequest, code: str, payload: ObservationsIn) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.ENTER_KINETIC_RESULTS)
    subject = reach.subject
    entries = entries_from_objects(
        [item.dict() for item in payload.observations],
        subject_code=subject.code,
        preset=selectors.kinetics_preset(),
        zone=ZoneInfo(subject.center.time_zone),
    )
    result = reach.run(
        lambda: services.kinetic_observations_record(actor=reach.actor, subject=subject, entries=entries)
    )
    return Status(201, _recorded(subject, result))


@router.post(
    "/{code}/kinetics/observations.csv",
    response={201: dict[str, Any]},
    summary="Import a CSV body (subject,marker,sampled_at,value,unit,loq), all rows or none",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def observations_import(request: HttpRequest, code: str) -> Status[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.ENTER_KINETIC_RESULTS)
    subject = reach.subject
    entries = parse_csv(
        request.body,
        subject_code=subject.code,
        preset=selectors.kinetics_preset(),
        zone=ZoneInfo(subject.center.time_zone),
    )
    result = reach.run(
        lambda: services.kinetic_observations_record(actor=reach.actor, subject=subject, entries=entries)
    )
    return Status(201, _recorded(subject, result))


@router.get("/{code}/kinetics/assessment", summary="Individual fit, predictive band and flags of a subject")
def assessment(request: HttpRequest, code: str) -> dict[str, Any]:
    subject = reach_subject(request.user, code).subject
    kinetics = selectors.subject_kinetics(subject=subject)
    if kinetics.error:
        raise InvalidInput("{problem}", code="kinetics_invalid_observation", problem=kinetics.error)
    if kinetics.assessment is None:
        raise Refused(
            "{subject} has no kinetic result since the infusion.", code="kinetics_no_observations", subject=subject.code
        )
    document = assessment_document(kinetics.assessment)
    flag_entries = cast(list[dict[str, object]], document["flags"])  # one JSON object per flag, in order
    with translation.override(api_language(request)):
        for flag, entry in zip(kinetics.assessment.flags, flag_entries, strict=True):
            entry["message_localised"] = flag_message(flag)
    return {
        "subject": subject.code,
        "infusion_date": subject.infusion_date.isoformat() if subject.infusion_date else None,
        **document,
    }
