"""Reads: a subject's kinetic results by day since infusion, its assessment, the trial's cohort.

Day since infusion = the calendar date of the sample in the center's time zone minus the
infusion date (D0), as the protocol counts its visits (D7, D14, M3...). Results before D0 (e.g.
an anti-dsDNA titre entered at screening) are listed but not used by the model, which starts at
the infusion; so are values outside the marker's plausible range (stored before the checks
existed): listed with the reason, never given to the fit. Every subject is reached through the
scoped subject selectors first.

The model's reference cohort is simulated once per (preset, horizon) per process (~0.3-0.8 s)
and a subject's assessment (fit + band, ~0.3-0.6 s) is kept per exact set of observations, so a
page reload or the subject page's panel does not refit unchanged data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from cartrial.apps import clock
from cartrial.apps.access import Scope, subjects_in_scope
from cartrial.apps.audit.selectors import entity_ids_changed_since
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.selectors import lab_observations
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.kinetics import (
    OBSERVED_MARKERS,
    CohortResult,
    Flag,
    Preset,
    SubjectAssessment,
    assess_flags,
    assess_subject,
    parse_observations,
    population_for,
    preset_named,
)
from cartrial.domain.kinetics.flags import observed_b_cell_reappearance_day
from cartrial.domain.kinetics.observations import observed_units
from cartrial.domain.lab_catalogue import ANALYTES, lab_value_plausible_check
from cartrial.domain.text import Message

# Bands are simulated over whole years, so a subject's horizon falls on one of a few cached cohorts.
HORIZON_STEP_DAYS = 365
# CAR-T window in which the observed peak is read (the acute monitoring period, D0-D28).
PEAK_WINDOW_DAYS = 28
# A CAR-T peak is called "reached" once a sample after this day exists (typical peak: day 9).
PEAK_SEEN_AFTER_DAY = 14


def day_since_infusion(sampled_at: datetime, infusion_date: date, zone: ZoneInfo) -> int:
    """Calendar days from D0 to the sample, in the center's time zone."""
    return (sampled_at.astimezone(zone).date() - infusion_date).days


def kinetics_preset_name() -> str:
    """The model preset the protocol in force names (`model.kinetics_preset`)."""
    return protocol_in_force().kinetics_preset


def kinetics_preset() -> Preset:
    return preset_named(kinetics_preset_name())


@lru_cache(maxsize=8)
def reference_population(preset_name: str, horizon_days: int) -> CohortResult:
    """The preset's virtual cohort (4 000 patients, seed 0), once per process."""
    return population_for(preset_named(preset_name), horizon_days=horizon_days)


def warm_reference_populations(horizons_days: tuple[int, ...] = (365, 730)) -> None:
    """Simulate the usual reference cohorts now (server start), not in the first subject page."""
    for horizon_days in horizons_days:
        reference_population(kinetics_preset_name(), horizon_days)


def horizon_for(last_day: float) -> int:
    """The band horizon covering `last_day`: 365, 730, 1095... days."""
    return HORIZON_STEP_DAYS * max(1, math.ceil(last_day / HORIZON_STEP_DAYS))


@dataclass(frozen=True)
class KineticRow:
    """One stored result of a kinetic marker, placed in days since infusion."""

    pk: int
    marker: str
    sampled_at: datetime
    day: int | None
    value: float | None
    unit: str
    loq: float | None
    context: str
    usable: bool
    not_used_because: str = ""

    @property
    def censored(self) -> bool:
        return self.value is None or (self.loq is not None and self.value < self.loq)

    @property
    def shown_value(self) -> float | None:
        """What a plot places: the value, or the LoQ of a censored result."""
        return self.loq if self.censored else self.value

    def record(self) -> dict[str, object]:
        """The domain's observation record."""
        return {"marker": self.marker, "day": self.day, "value": self.value, "unit": self.unit, "loq": self.loq}


def _rows(subject: Subject, observations: Iterable[LabObservation], preset: Preset) -> list[KineticRow]:
    zone = ZoneInfo(subject.center.time_zone)
    units = observed_units(preset)
    rows = []
    for observation in observations:
        day = (
            day_since_infusion(observation.sampled_at, subject.infusion_date, zone)
            if subject.infusion_date is not None
            else None
        )
        reason = ""
        if day is None:
            reason = "not_infused"
        elif day < 0:
            reason = "before_infusion"
        elif observation.unit != units[observation.analyte]:
            reason = "other_unit"
        elif not _plausible(observation):
            # Stored before the plausibility checks (or by a path that skipped them): listed, never fitted.
            reason = "implausible"
        elif observation.value == 0 and observation.limit_of_quantification is None:
            # Another form may store a 0 without the assay's limit; the model cannot read it.
            reason = "zero_without_loq"
        rows.append(
            KineticRow(
                pk=observation.pk,
                marker=observation.analyte,
                sampled_at=observation.sampled_at,
                day=day,
                value=observation.value,
                unit=observation.unit,
                loq=observation.limit_of_quantification,
                context=observation.context,
                usable=not reason,
                not_used_because=reason,
            )
        )
    return rows


def _plausible(observation: LabObservation) -> bool:
    """The stored value and LoQ lie within the marker's plausible range in its unit (`domain/lab_catalogue.py`)."""
    spec = ANALYTES.get(observation.analyte)
    if spec is None or observation.unit not in spec.ranges:
        return False
    try:
        lab_value_plausible_check(
            spec, observation.unit, value=observation.value, loq=observation.limit_of_quantification
        )
    except InvalidInput:
        return False
    return True


def raised_flags(subject: Subject, observations: Iterable[LabObservation]) -> dict[str, Flag]:
    """The flags raised on these results (no fit: the cohort page's reading), by code; none without
    usable results or when the model refuses them (the subject's page shows why)."""
    preset = kinetics_preset()
    usable = [row for row in _rows(subject, observations, preset) if row.usable]
    if not usable:
        return {}
    try:
        parsed = parse_observations([row.record() for row in usable], preset)
    except DomainError:
        return {}
    population = reference_population(kinetics_preset_name(), horizon_for(max(row.day or 0 for row in usable)))
    return {
        flag.code: flag
        for flag in assess_flags(parsed, preset, population.band, population.reappearance)
        if flag.raised
    }


# The audit trail's name of a stored result (the clinical app's lab store writes it).
LAB_OBSERVATION_ENTITY = "lab_observation"


def subject_kinetic_rows(*, subject: Subject, since: datetime | None = None) -> list[KineticRow]:
    """The subject's CAR-T, B-cell and anti-dsDNA results, oldest first; `since`: only those an audit
    entry after it recorded or corrected."""
    observations = lab_observations(subject=subject, analytes=OBSERVED_MARKERS)
    if since is not None:
        observations = observations.filter(pk__in=_changed_ids(since))
    return _rows(subject, observations, kinetics_preset())


def _changed_ids(since: datetime) -> list[int]:
    return [int(i) for i in entity_ids_changed_since(LAB_OBSERVATION_ENTITY, since) if i.isdigit()]


def _frozen_records(rows: Sequence[KineticRow]) -> tuple[tuple[str, int, float | None, str, float | None], ...]:
    return tuple((r.marker, r.day or 0, r.value, r.unit, r.loq) for r in rows if r.usable)


@lru_cache(maxsize=128)
def _assess(
    preset_name: str, records: tuple[tuple[str, int, float | None, str, float | None], ...]
) -> SubjectAssessment:
    preset = preset_named(preset_name)
    last_day = max(record[1] for record in records)
    population = reference_population(preset_name, horizon_for(last_day))
    return assess_subject(
        [{"marker": m, "day": d, "value": v, "unit": u, "loq": q} for m, d, v, u, q in records],
        preset,
        population=population,
    )


@dataclass(frozen=True)
class SubjectKinetics:
    """A subject's results and, when there are usable ones, the model's assessment."""

    subject: Subject
    rows: list[KineticRow]
    assessment: SubjectAssessment | None
    error: Message | str = ""  # the model's refusal (a message), or a text already translated

    @property
    def usable_rows(self) -> list[KineticRow]:
        return [row for row in self.rows if row.usable]

    @property
    def days_since_infusion(self) -> int | None:
        """Today's day since infusion in the center's zone (D-number of the next sample)."""
        if self.subject.infusion_date is None:
            return None
        return day_since_infusion(clock.now(), self.subject.infusion_date, ZoneInfo(self.subject.center.time_zone))


def subject_kinetics(*, subject: Subject) -> SubjectKinetics:
    """Rows plus the fit, band and flags (None without usable results; `error` if the model refuses)."""
    rows = subject_kinetic_rows(subject=subject)
    records = _frozen_records(rows)
    if not records:
        return SubjectKinetics(subject, rows, None)
    try:
        assessment = _assess(kinetics_preset_name(), records)
    except DomainError as error:
        return SubjectKinetics(subject, rows, None, error=error.message)
    except np.linalg.LinAlgError:
        # The Laplace covariance could not be factorised: shown like a fit that did not converge.
        return SubjectKinetics(subject, rows, None, error=_("The individual fit failed numerically; no band is shown."))
    return SubjectKinetics(subject, rows, assessment)


# --- cohort --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortPatient:
    """One infused subject of the cohort page: results, flags (no fit), summary numbers."""

    subject: Subject
    rows: list[KineticRow]
    flags: tuple[Flag, ...] = ()
    peak_car_t: KineticRow | None = None
    peak_reached: bool = False
    reappearance_day: float | None = None
    depleted_until_day: int | None = None
    last_day: int | None = None
    error: Message | str = ""  # the model's refusal (a message), or a text already translated
    series: dict[str, list[KineticRow]] = field(default_factory=dict)

    @property
    def raised(self) -> list[Flag]:
        return [flag for flag in self.flags if flag.raised]


@dataclass(frozen=True)
class Cohort:
    patients: list[CohortPatient]
    population: CohortResult
    preset: Preset


def _patient(subject: Subject, rows: list[KineticRow], preset: Preset, population: CohortResult) -> CohortPatient:
    usable = [row for row in rows if row.usable]
    series = {marker: [row for row in usable if row.marker == marker] for marker in OBSERVED_MARKERS}
    if not usable:
        return CohortPatient(subject, rows, series=series)
    try:
        parsed = parse_observations([row.record() for row in usable], preset)
    except DomainError as error:
        return CohortPatient(subject, rows, error=error.message, series=series)
    flags = assess_flags(parsed, preset, population.band, population.reappearance)
    window = [row for row in series["car_t"] if row.day is not None and row.day <= PEAK_WINDOW_DAYS]
    measured = [row for row in window if not row.censored]
    peak = max(measured, key=lambda row: row.value or 0.0) if measured else None
    b_cells = series["b_cells"]
    depleted = [row.day for row in b_cells if row.day is not None and row.censored and (row.loq or 0) <= 1.0]
    return CohortPatient(
        subject,
        rows,
        flags=flags,
        peak_car_t=peak,
        peak_reached=any(row.day is not None and row.day > PEAK_SEEN_AFTER_DAY for row in series["car_t"]),
        reappearance_day=observed_b_cell_reappearance_day(parsed),
        depleted_until_day=max(depleted) if depleted else None,
        last_day=max(row.day or 0 for row in usable),
        series=series,
    )


def cohort_kinetics(*, scope: Scope, center_code: str | None = None, since: datetime | None = None) -> Cohort:
    """Every infused subject the user may see, with their kinetic results: three queries in all.
    `since`: only the subjects with a kinetic result recorded or corrected after it (audit trail)."""
    preset = kinetics_preset()
    infused = subjects_in_scope(scope, center_code=center_code).filter(infusion_date__isnull=False)
    if since is not None:
        changed = LabObservation.objects.filter(pk__in=_changed_ids(since), analyte__in=OBSERVED_MARKERS)
        infused = infused.filter(pk__in=changed.values("subject_id"))
    subjects = list(
        infused.prefetch_related(
            Prefetch(
                "lab_observations",
                queryset=LabObservation.objects.filter(analyte__in=OBSERVED_MARKERS).order_by("sampled_at", "pk"),
                to_attr="kinetic_observations",
            )
        )
    )
    rows = {subject.pk: _rows(subject, subject.kinetic_observations, preset) for subject in subjects}

    def last_day(subject_rows: list[KineticRow]) -> int:
        return max((row.day or 0 for row in subject_rows if row.usable), default=1)

    # Each patient's flags use the same reference cohort as its own page (same horizon), so the
    # two pages never disagree; the plots use the cohort covering everyone's results.
    patients = [
        _patient(
            subject,
            rows[subject.pk],
            preset,
            reference_population(kinetics_preset_name(), horizon_for(last_day(rows[subject.pk]))),
        )
        for subject in subjects
    ]
    population = reference_population(kinetics_preset_name(), horizon_for(max(map(last_day, rows.values()), default=1)))
    return Cohort(patients, population, preset)
