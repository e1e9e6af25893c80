"""API: a subject's kinetic results (read, record as JSON or CSV), its assessment (fit, band,
flags), the markers a result may name, and the cohort of infused patients.

Same rules and words as the pages (`entries`, `services`, `selectors`); messages follow
Accept-Language. Errors: 404 outside the user's scope, 403 for a role that may not enter results,
422 for a refused result (`code` names the problem, `message` the line or result), 409 when there
is no result to assess yet.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.utils import translation
from ninja import Field, Query, Router, Schema, Status

from cartrial.apps.access import reach_subject, scope_for
from cartrial.apps.api_contract import Page, PageQuery, paged
from cartrial.apps.biology import selectors, services
from cartrial.apps.biology.entries import entries_from_objects, parse_csv
from cartrial.apps.biology.presenters import FLAG_TITLES, MARKER_TITLES, flag_message
from cartrial.apps.subjects.models import Subject
from cartrial.apps.text import api_language, render
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.kinetics import (
    OBSERVED_MARKERS,
    Flag,
    SubjectAssessment,
    assessment_document,
    band_document,
    flag_document,
    population_document,
)
from cartrial.domain.lab_catalogue import ANALYTES, unit_label
from cartrial.domain.roles import Action
from cartrial.domain.text import Message

router = Router(tags=["kinetics"])  # /subjects/{code}/kinetics/...
cohort_router = Router(tags=["kinetics"])  # /kinetics

type Marker = Literal["car_t", "b_cells", "anti_dsdna"]
type NotUsedBecause = Literal["not_infused", "before_infusion", "other_unit", "implausible", "zero_without_loq"]


class ObservationIn(Schema):
    subject: str | None = Field(None, description="When given, the subject of the URL")
    marker: str = Field(description="One of `GET /api/v1/kinetics/markers`")
    sampled_at: str | None = Field(
        None, description="ISO 8601 date and time; without an offset, the center's local time"
    )
    value: float | str | None = Field(None, description="The result in `unit`; null (or omitted) below the LoQ")
    unit: str | None = Field(None, description="One of the marker's units")
    loq: float | str | None = Field(None, description="The assay's limit of quantification, in `unit`")


class ObservationsIn(Schema):
    observations: list[ObservationIn]


class ObservationOut(Schema):
    id: int
    marker: str
    sampled_at: datetime
    sampled_at_local: datetime = Field(description="The same instant in the center's time zone")
    day: int | None = Field(description="Days since the infusion (D0), in the center's calendar")
    value: float | None
    unit: str
    loq: float | None
    censored: bool = Field(description="Below the limit of quantification")
    context: str
    used_by_model: bool
    not_used_because: NotUsedBecause | None


class ObservationsPage(Page[ObservationOut]):
    subject: str
    infusion_date: date | None
    time_zone: str


class ObservationsRecordedOut(Schema):
    subject: str
    recorded: int
    skipped_duplicates: int = Field(description="Results identical to one stored already, not stored twice")
    observations: list[ObservationOut] = Field(description="The results recorded by this request")


class MarkerUnitRangeOut(Schema):
    unit: str
    label: str
    minimum: float
    maximum: float


class MarkerOut(Schema):
    marker: Marker
    title: str
    preferred_unit: str = Field(description="The unit the model reads (others are stored, not fitted)")
    units: list[MarkerUnitRangeOut] = Field(description="The units accepted, each with its plausible range")


class MarkersOut(Schema):
    markers: list[MarkerOut]


class BandMarkerOut(Schema):
    unit: str
    p05: list[float]
    p50: list[float]
    p95: list[float]


class BandOut(Schema):
    days: list[float]
    quantiles: list[float]
    markers: dict[str, BandMarkerOut]


class FitOut(Schema):
    converged: bool
    message: str
    evaluations: int
    negative_log_posterior: float | None
    fitted: list[str]
    parameters: dict[str, float | None]
    log_standard_errors: dict[str, float] | None
    expected: dict[str, list[float]] | None = Field(description="Each marker's expected value on `band.days`")
    band: BandOut | None = Field(description="The subject's predictive band; null when the fit did not converge")


class FlagOut(Schema):
    code: str
    title: str = Field(description="In the request's language")
    raised: bool | None = Field(description="null: cannot tell yet")
    message: str = Field(description="The model's own words (English)")
    message_localised: str = Field(description="In the request's language, with its evidence")
    evidence: dict[str, float | None]


class ReappearanceOut(Schema):
    threshold_cells_per_ul: float
    mean: float | None
    sd: float | None
    p05: float | None
    p50: float | None
    p95: float | None


class PopulationOut(Schema):
    patients: int
    seed: int
    b_cell_reappearance_days: ReappearanceOut


class KineticsAssessmentOut(Schema):
    subject: str
    infusion_date: date | None
    preset: str
    observations: int = Field(description="The results the model used")
    fit: FitOut
    flags: list[FlagOut]
    population: PopulationOut


class PeakOut(Schema):
    day: int | None
    value: float | None
    unit: str


class CohortPointOut(Schema):
    marker: str
    day: int | None
    value: float | None = Field(description="The value, or the LoQ of a censored result (as plotted)")
    unit: str
    censored: bool


class CohortPatientOut(Schema):
    subject: str
    center: str
    state: str
    infusion_date: date | None
    results: int = Field(description="The kinetic results stored")
    last_day: int | None
    peak_car_t: PeakOut | None = Field(description="The highest measured CAR-T value up to D28")
    peak_reached: bool = Field(description="A CAR-T sample after D14 exists")
    reappearance_day: float | None = Field(description="The day B cells were seen coming back")
    depleted_until_day: int | None
    flags_raised: list[FlagOut]
    error: str | None = Field(description="Why the model could not read the results")
    points: list[CohortPointOut] = Field(description="The results the model reads, as the cohort's plots show them")


class CohortPage(Page[CohortPatientOut]):
    preset: str
    population: PopulationOut
    band: BandOut = Field(description="The population's 5-95 % band covering every patient's results")


def _row_out(row: selectors.KineticRow, zone: ZoneInfo) -> ObservationOut:
    return ObservationOut(
        id=row.pk,
        marker=row.marker,
        sampled_at=row.sampled_at,
        sampled_at_local=row.sampled_at.astimezone(zone),
        day=row.day,
        value=row.value,
        unit=row.unit,
        loq=row.loq,
        censored=row.censored,
        context=row.context,
        used_by_model=row.usable,
        not_used_because=cast("NotUsedBecause | None", row.not_used_because or None),
    )


def _recorded(subject: Subject, result: services.KineticsRecorded) -> ObservationsRecordedOut:
    zone = ZoneInfo(subject.center.time_zone)
    recorded = {row.pk for row in result.recorded}
    rows = [row for row in selectors.subject_kinetic_rows(subject=subject) if row.pk in recorded]
    return ObservationsRecordedOut(
        subject=subject.code,
        recorded=len(result.recorded),
        skipped_duplicates=result.skipped_duplicates,
        observations=[_row_out(row, zone) for row in rows],
    )


def _flag_out(flag: Flag, language: str) -> FlagOut:
    with translation.override(language):
        document = {
            **flag_document(flag),
            "title": str(FLAG_TITLES.get(flag.code, flag.code)),
            "message_localised": flag_message(flag),
        }
        return FlagOut.model_validate(document)


def _assessment_out(subject: Subject, assessment: SubjectAssessment, language: str) -> KineticsAssessmentOut:
    document = assessment_document(assessment)
    return KineticsAssessmentOut(
        subject=subject.code,
        infusion_date=subject.infusion_date,
        preset=assessment.preset,
        observations=len(assessment.observations),
        fit=FitOut.model_validate(document["fit"]),
        flags=[_flag_out(flag, language) for flag in assessment.flags],
        population=PopulationOut.model_validate(document["population"]),
    )


@router.get(
    "/{code}/kinetics/observations",
    response=ObservationsPage,
    summary="A subject's CAR-T, B-cell and anti-dsDNA results, oldest first",
)
def observations_list(request: HttpRequest, code: str, page: Query[PageQuery]) -> ObservationsPage:
    """`since`: only the results recorded or corrected after it (the audit trail's `lab_observation`
    entries)."""
    subject = reach_subject(request.user, code).subject
    zone = ZoneInfo(subject.center.time_zone)
    window = paged(
        selectors.subject_kinetic_rows(subject=subject, since=page.since), page, lambda row: _row_out(row, zone)
    )
    return ObservationsPage(
        items=window.items,
        total=window.total,
        next_offset=window.next_offset,
        subject=subject.code,
        infusion_date=subject.infusion_date,
        time_zone=zone.key,
    )


@router.post(
    "/{code}/kinetics/observations",
    response={201: ObservationsRecordedOut},
    summary="Record results (all or none); sampled_at without an offset is read in the center's zone",
)
def observations_record(request: HttpRequest, code: str, payload: ObservationsIn) -> Status[ObservationsRecordedOut]:
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
    response={201: ObservationsRecordedOut},
    summary="Import a CSV body (subject,marker,sampled_at,value,unit,loq), all rows or none",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def observations_import(request: HttpRequest, code: str) -> Status[ObservationsRecordedOut]:
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


@router.get(
    "/{code}/kinetics/assessment", response=KineticsAssessmentOut, summary="Individual fit, predictive band, flags"
)
def assessment(request: HttpRequest, code: str) -> KineticsAssessmentOut:
    subject = reach_subject(request.user, code).subject
    kinetics = selectors.subject_kinetics(subject=subject)
    if kinetics.error:
        raise InvalidInput("{problem}", code="kinetics_invalid_observation", problem=kinetics.error)
    if kinetics.assessment is None:
        raise Refused(
            "{subject} has no kinetic result since the infusion.", code="kinetics_no_observations", subject=subject.code
        )
    return _assessment_out(subject, kinetics.assessment, api_language(request))


@cohort_router.get("/markers", response=MarkersOut, summary="The kinetic markers: units and plausible ranges")
def kinetic_markers(request: HttpRequest) -> MarkersOut:
    """What a result's `marker` and `unit` may be (`POST …/kinetics/observations`), and the range a
    value must lie in; every user may read it."""
    preset = selectors.kinetics_preset()
    with translation.override(api_language(request)):
        markers = []
        for marker in OBSERVED_MARKERS:
            spec = ANALYTES[marker]
            preferred = preset.car_t_unit if marker == "car_t" else spec.units[0]
            markers.append(
                MarkerOut(
                    marker=cast("Marker", marker),
                    title=translation.gettext(MARKER_TITLES[marker]),
                    preferred_unit=preferred,
                    units=[
                        MarkerUnitRangeOut(
                            unit=unit, label=translation.gettext(unit_label(unit)), minimum=low, maximum=high
                        )
                        for unit, (low, high) in spec.ranges.items()
                    ],
                )
            )
    return MarkersOut(markers=markers)


def _cohort_patient_out(patient: selectors.CohortPatient, language: str) -> CohortPatientOut:
    subject = patient.subject
    peak = patient.peak_car_t
    error = patient.error
    return CohortPatientOut(
        subject=subject.code,
        center=subject.center.code,
        state=subject.state,
        infusion_date=subject.infusion_date,
        results=sum(len(rows) for rows in patient.series.values()),
        last_day=patient.last_day,
        peak_car_t=PeakOut(day=peak.day, value=peak.value, unit=peak.unit) if peak else None,
        peak_reached=patient.peak_reached,
        reappearance_day=patient.reappearance_day,
        depleted_until_day=patient.depleted_until_day,
        flags_raised=[_flag_out(flag, language) for flag in patient.raised],
        error=(render(error, language) if isinstance(error, Message) else error) or None,
        points=[
            CohortPointOut(marker=row.marker, day=row.day, value=row.shown_value, unit=row.unit, censored=row.censored)
            for rows in patient.series.values()
            for row in rows
        ],
    )


@cohort_router.get(
    "/cohort",
    response=CohortPage,
    summary="The infused patients of your centers against the prior and each other (flags, no fit)",
)
def kinetics_cohort(request: HttpRequest, page: Query[PageQuery], center: str | None = None) -> CohortPage:
    """Each infused patient you may see (by center and number): results, CAR-T peak, B-cell
    reappearance, the flags raised; with the reference population. `since`: only the patients with
    a kinetic result recorded or corrected after it (the audit trail's `lab_observation` entries)."""
    scope = scope_for(request.user)
    if center is not None and center not in scope.center_codes.values():
        raise NotFound("No center '{center}' in your scope.", code="not_found", center=center)
    found = selectors.cohort_kinetics(scope=scope, center_code=center, since=page.since)
    language = api_language(request)
    window = paged(found.patients, page, lambda patient: _cohort_patient_out(patient, language))
    return CohortPage(
        items=window.items,
        total=window.total,
        next_offset=window.next_offset,
        preset=found.preset.name,
        population=PopulationOut.model_validate(population_document(found.population)),
        band=BandOut.model_validate(band_document(found.population.band)),
    )
