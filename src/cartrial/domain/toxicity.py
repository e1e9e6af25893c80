"""CRS and ICANS after the infusion: the daily assessment, its grades, the episodes, the days due, ICAHT.

Why here: the grades of a day come from the existing calculators (`scores/crs.py`, `scores/icans.py`,
whose inputs this module reuses), never from a table of our own; the episodes and the days that
still need an assessment are read from a subject's series of daily grades; ICAHT (early and late)
from the ANC series of the haematology forms through `scores/icaht.py`, converted by `units.py`.

Episode rule: an episode of one kind (CRS or ICANS) starts on the first day graded ≥ 1 and ends on
the last graded day before `EPISODE_RESOLUTION_GRADE_0_DAYS` consecutive assessed days graded 0;
the first of those days is its resolution day. Days without an assessment never end an episode (the
patient was not seen to recover): an episode whose last assessment is graded ≥ 1 is ongoing.

CRS treated without fever (`crs_treated`): ASTCT (Lee 2019, clinical.md §4.1) waives fever only "in
patients who have CRS then receive antipyretic or anticytokine therapy such as tocilizumab or
steroids". A day's treatment input to the `crs` calculator therefore holds only when tocilizumab or
a corticosteroid was given that day AND the subject's CRS episode was ongoing on the previous
assessed day (the episode rule above); steroids given for ICANS to a patient without CRS are not.
A day's CRS grade thus depends on the days before it (`series_grades`).

Days due: every day from D0 to the protocol's `pathway.toxicity_assessment_days` (D14), then every
day while an episode is ongoing, up to today.

Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.quantities import BODY_TEMPERATURE_C, ICE_SCORE_POINTS, plausible_check
from cartrial.domain.scores.crs import (
    HYPOTENSION_LABELS,
    HYPOXIA_LABELS,
    CrsGrade,
    Hypotension,
    Hypoxia,
    crs_fever_present,
    grade_crs,
)
from cartrial.domain.scores.icaht import AncValue, IcahtGrades, grade_icaht
from cartrial.domain.scores.icans import (
    CEREBRAL_EDEMA_LABELS,
    CONSCIOUSNESS_LABELS,
    MOTOR_WEAKNESS_LABELS,
    SEIZURE_LABELS,
    CerebralEdema,
    Consciousness,
    IcansGrade,
    MotorWeakness,
    Seizure,
    grade_icans,
)
from cartrial.domain.text import N_
from cartrial.domain.units import Analyte, convert

# How many consecutive assessed days graded 0 end an episode. 1 is the rule: the episode
# ends on the last graded day before a day graded 0. A larger number would join two runs of
# positive grades split by shorter runs of grade 0 into one episode (those days counted in it).
EPISODE_RESOLUTION_GRADE_0_DAYS = 1

# The unit ICAHT is graded in (domain/scores/icaht.py) and the haematology form's `anc` item's unit.
ICAHT_ANC_UNIT = "cells/uL"
HAEMATOLOGY_ANC_UNIT = "10^9/L"


class ToxicityKind(StrEnum):
    """The two syndromes graded daily; stable codes (API, alerts, dashboards)."""

    CRS = "crs"
    ICANS = "icans"


KIND_LABELS: Mapping[ToxicityKind, str] = {
    ToxicityKind.CRS: N_("Cytokine release syndrome (CRS)"),
    ToxicityKind.ICANS: N_("Neurotoxicity (ICANS)"),
}

# The choices of the daily form: the calculators' own enums and labels (one concept, one name).
CHOICES: Mapping[str, Mapping[str, str]] = {
    "hypotension": {k.value: v for k, v in HYPOTENSION_LABELS.items()},
    "hypoxia": {k.value: v for k, v in HYPOXIA_LABELS.items()},
    "consciousness": {k.value: v for k, v in CONSCIOUSNESS_LABELS.items()},
    "seizure": {k.value: v for k, v in SEIZURE_LABELS.items()},
    "motor_weakness": {k.value: v for k, v in MOTOR_WEAKNESS_LABELS.items()},
    "cerebral_edema": {k.value: v for k, v in CEREBRAL_EDEMA_LABELS.items()},
}


@dataclass(frozen=True)
class AssessmentInputs:
    """What is observed on one day: the CRS inputs, the ICANS inputs, and the treatments given that day.

    `ice_score` None means the ICE could not be performed (graded on the other ICANS domains).
    """

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

    def as_dict(self) -> dict[str, Any]:
        """The inputs as stored and audited (choice codes, plain numbers)."""
        return {
            "temperature_c": self.temperature_c,
            "hypotension": self.hypotension.value,
            "hypoxia": self.hypoxia.value,
            "ice_score": self.ice_score,
            "consciousness": self.consciousness.value,
            "seizure": self.seizure.value,
            "motor_weakness": self.motor_weakness.value,
            "cerebral_edema": self.cerebral_edema.value,
            "tocilizumab_given": self.tocilizumab_given,
            "corticosteroids_given": self.corticosteroids_given,
        }


INPUT_NAMES: tuple[str, ...] = (
    "temperature_c",
    "hypotension",
    "hypoxia",
    "ice_score",
    "consciousness",
    "seizure",
    "motor_weakness",
    "cerebral_edema",
    "tocilizumab_given",
    "corticosteroids_given",
)

_ENUMS: Mapping[str, type[StrEnum]] = {
    "hypotension": Hypotension,
    "hypoxia": Hypoxia,
    "consciousness": Consciousness,
    "seizure": Seizure,
    "motor_weakness": MotorWeakness,
    "cerebral_edema": CerebralEdema,
}
_BOOLEANS = {"true": True, "yes": True, "oui": True, "1": True, "on": True, "false": False, "no": False}
_BOOLEANS |= {"non": False, "0": False, "off": False, "": False}


def _number(raw: object, item: str) -> float:
    if isinstance(raw, bool):
        raise InvalidInput("{item} must be a number.", code="value_not_a_number", item=item)
    if isinstance(raw, int | float):
        return float(raw)
    try:
        number = float(str(raw).strip().replace(",", "."))
    except ValueError:
        raise InvalidInput("{item} must be a number.", code="value_not_a_number", item=item) from None
    if not math.isfinite(number):
        raise InvalidInput("{item} must be a number.", code="value_not_a_number", item=item)
    return number


def _boolean(raw: object, item: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return False
    value = _BOOLEANS.get(str(raw).strip().lower())
    if value is None:
        raise InvalidInput("{item} must be yes or no.", code="value_not_a_boolean", item=item)
    return value


def assessment_inputs_parse(raw: Mapping[str, Any]) -> AssessmentInputs:
    """The day's inputs from a form or a JSON body: each item of its type and in its plausible range.

    Refuses the first bad item with its name and the rule (unknown item, missing, not a number,
    outside the plausible range, not one of the choices); nothing is graded from partial inputs.
    """
    unknown = sorted(set(raw) - set(INPUT_NAMES))
    if unknown:
        raise InvalidInput(
            "'{name}' is not an input of the daily assessment; inputs: {names}.",
            code="item_unknown",
            item=unknown[0],
            name=unknown[0],
            names=list(INPUT_NAMES),
        )
    for name in ("temperature_c", *_ENUMS):
        if raw.get(name) in (None, ""):
            raise InvalidInput("{item} is required.", code="item_required", item=name)
    temperature = plausible_check(
        BODY_TEMPERATURE_C, _number(raw["temperature_c"], "temperature_c"), item="temperature_c"
    )
    ice_raw = raw.get("ice_score")
    ice: int | None = None
    if ice_raw not in (None, ""):
        ice = int(plausible_check(ICE_SCORE_POINTS, _number(ice_raw, "ice_score"), item="ice_score"))
    chosen: dict[str, Any] = {}
    for name, enum in _ENUMS.items():
        try:
            chosen[name] = enum(str(raw[name]).strip())
        except ValueError:
            raise InvalidInput(
                "{item}: '{value}' is not one of {choices}.",
                code="item_choice",
                item=name,
                value=raw[name],
                choices=[e.value for e in enum],
            ) from None
    if chosen["consciousness"] is Consciousness.UNAROUSABLE and ice not in (None, 0):
        raise InvalidInput(
            "An unarousable patient cannot score {value} on the ICE: give 0 or leave it empty (not performed).",
            code="item_range",
            item="ice_score",
            value=ice,
        )
    return AssessmentInputs(
        temperature_c=temperature,
        ice_score=ice,
        tocilizumab_given=_boolean(raw.get("tocilizumab_given"), "tocilizumab_given"),
        corticosteroids_given=_boolean(raw.get("corticosteroids_given"), "corticosteroids_given"),
        **chosen,
    )


def assessment_day(*, assessed_on: date, infusion_date: date | None, today: date) -> int:
    """The day relative to D0 of an assessment dated `assessed_on`; refused before D0 or in the future."""
    if infusion_date is None:
        raise InvalidInput(
            "A CRS/ICANS assessment needs the infusion (D0) recorded first: days are counted from D0.",
            code="assessment_before_infusion",
            item="assessed_on",
        )
    if assessed_on < infusion_date:
        raise InvalidInput(
            "A CRS/ICANS assessment before D0 is refused: {assessed_on} is D{day}, and assessments start on "
            "the day of the infusion ({infusion_date}).",
            code="assessment_before_d0",
            item="assessed_on",
            assessed_on=assessed_on,
            day=(assessed_on - infusion_date).days,
            infusion_date=infusion_date,
        )
    if assessed_on > today:
        raise InvalidInput(
            "The assessment date {assessed_on} is in the future.",
            code="date_in_future",
            item="assessed_on",
            assessed_on=assessed_on,
        )
    return (assessed_on - infusion_date).days


# --- episodes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyGrade:
    """One assessed day of one kind: its grade and the treatments given that day."""

    day: int
    grade: int
    tocilizumab: bool = False
    corticosteroids: bool = False


@dataclass(frozen=True)
class Episode:
    """A CRS or ICANS episode: onset day (from D0), maximum grade, duration, treatments, resolution.

    `duration_days` counts from the onset to the last day graded ≥ 1, both included; `resolved_day`
    is the first day graded 0 after it, None while the episode is ongoing.
    """

    kind: ToxicityKind
    onset_day: int
    max_grade: int
    duration_days: int
    tocilizumab: bool
    steroids: bool
    resolved_day: int | None

    @property
    def ongoing(self) -> bool:
        return self.resolved_day is None

    @property
    def last_day(self) -> int:
        return self.onset_day + self.duration_days - 1


def episodes_from(kind: ToxicityKind, series: Iterable[DailyGrade]) -> list[Episode]:
    """The episodes of one kind in a subject's daily grades (any order; one grade per day)."""
    ordered = sorted(series, key=lambda g: g.day)
    days = [g.day for g in ordered]
    if len(set(days)) != len(days):
        raise ValueError("one grade per day: a day is given twice")
    episodes: list[Episode] = []
    current: list[DailyGrade] = []
    zeros: list[DailyGrade] = []

    def close(resolved_day: int | None) -> None:
        positive = [g for g in current if g.grade >= 1]
        episodes.append(
            Episode(
                kind=kind,
                onset_day=positive[0].day,
                max_grade=max(g.grade for g in positive),
                duration_days=positive[-1].day - positive[0].day + 1,
                tocilizumab=any(g.tocilizumab for g in current),
                steroids=any(g.corticosteroids for g in current),
                resolved_day=resolved_day,
            )
        )

    for grade in ordered:
        if grade.grade >= 1:
            # Grade-0 days shorter than the resolution run are part of the episode.
            current.extend(zeros)
            zeros = []
            current.append(grade)
        elif current:
            zeros.append(grade)
            if len(zeros) >= EPISODE_RESOLUTION_GRADE_0_DAYS:
                close(zeros[0].day)
                current, zeros = [], []
    if current:
        close(None)
    return episodes


# --- grades of a day, and of a series -------------------------------------------------------------


@dataclass(frozen=True)
class DayGrades:
    """The grades of one day and the calculators' results that explain them."""

    crs: CrsGrade
    icans: IcansGrade


def crs_treated(inputs: AssessmentInputs, *, crs_ongoing: bool) -> bool:
    """The `crs` calculator's anti-cytokine treatment input for one day: tocilizumab or a corticosteroid
    given that day to a patient whose CRS episode is ongoing (ASTCT: "patients who have CRS then
    receive ... tocilizumab or steroids"); a steroid for ICANS without CRS does not waive fever."""
    return crs_ongoing and (inputs.tocilizumab_given or inputs.corticosteroids_given)


def assessment_grades(inputs: AssessmentInputs, *, crs_ongoing: bool) -> DayGrades:
    """CRS (ASTCT 2019) and ICANS (ASTCT 2019, adults) grades of one day, from the calculators.

    Fever is the ASTCT threshold (`crs_fever_present`); `crs_ongoing` says whether the subject's CRS
    episode was ongoing on the previous assessed day (`crs_ongoing_before`), which `crs_treated`
    needs. Death from CRS is not a daily input: it is an adverse event's outcome (grade 5 there).
    """
    crs = grade_crs(
        fever=crs_fever_present(temperature_c=inputs.temperature_c),
        antipyretic_or_anticytokine_given=crs_treated(inputs, crs_ongoing=crs_ongoing),
        hypotension=inputs.hypotension,
        hypoxia=inputs.hypoxia,
        death_from_crs=False,
    )
    icans = grade_icans(
        ice_score=inputs.ice_score,
        consciousness=inputs.consciousness,
        seizure=inputs.seizure,
        motor_weakness=inputs.motor_weakness,
        cerebral_edema=inputs.cerebral_edema,
    )
    return DayGrades(crs=crs, icans=icans)


def crs_ongoing_before(day: int, crs: Iterable[DailyGrade]) -> bool:
    """Whether the subject's CRS episode was ongoing on the last assessed day before `day` (the episode
    rule of `episodes_from`, its `EPISODE_RESOLUTION_GRADE_0_DAYS` included)."""
    episodes = episodes_from(ToxicityKind.CRS, [g for g in crs if g.day < day])
    return bool(episodes) and episodes[-1].ongoing


@dataclass(frozen=True)
class AssessedDay:
    """One assessed day's inputs, to be graded in its series."""

    day: int
    inputs: AssessmentInputs


def series_grades(days: Iterable[AssessedDay], *, earlier: Iterable[DailyGrade] = ()) -> dict[int, DayGrades]:
    """The grades of `days`, graded in day order, each knowing the CRS of the days before it: the
    `earlier` days (CRS grades as stored, all before `days`) then those graded here.

    Why a series: a correction or a late entry of one day can change whether CRS was ongoing on the
    next, and so that day's grade (the caller grades again from the changed day on).
    """
    crs = list(earlier)
    ordered = sorted(days, key=lambda d: d.day)
    if ordered and any(g.day >= ordered[0].day for g in crs):
        raise ValueError("the earlier grades must all come before the days graded")
    graded: dict[int, DayGrades] = {}
    for assessed in ordered:
        if assessed.day in graded:
            raise ValueError("one assessment per day: a day is given twice")
        grades = assessment_grades(assessed.inputs, crs_ongoing=crs_ongoing_before(assessed.day, crs))
        graded[assessed.day] = grades
        crs.append(
            DailyGrade(
                assessed.day,
                grades.crs.grade,
                assessed.inputs.tocilizumab_given,
                assessed.inputs.corticosteroids_given,
            )
        )
    return graded


# --- days due -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaysDue:
    """The days that need an assessment up to today, and those of them still without one."""

    required: tuple[int, ...]
    missing: tuple[int, ...]


def assessment_days_due(
    *, assessed_days: Iterable[int], episodes: Sequence[Episode], today_day: int, assessment_days: int
) -> DaysDue:
    """D0..D`assessment_days` always, then every day while an episode is ongoing, up to today (`today_day`)."""
    if today_day < 0:
        return DaysDue((), ())
    required = set(range(0, min(assessment_days, today_day) + 1))
    for episode in episodes:
        if episode.ongoing:
            required |= set(range(episode.onset_day, today_day + 1))
    assessed = set(assessed_days)
    ordered = tuple(sorted(required))
    return DaysDue(ordered, tuple(d for d in ordered if d not in assessed))


# --- ICAHT from the haematology forms -------------------------------------------------------------


@dataclass(frozen=True)
class AncSample:
    """One ANC of a haematology form: the day from D0 and the value in the unit the lab reported."""

    day: int
    value: float
    unit: str


@dataclass(frozen=True)
class IcahtResult:
    """Both ICAHT grades and the series (cells/µL by day) they were graded on."""

    grades: IcahtGrades
    series: tuple[AncValue, ...]


def anc_sample(day: int, stored: object) -> AncSample | None:
    """An ANC as the eCRF stores it (a number in 10^9/L or {value, unit, ...}); None when empty."""
    if isinstance(stored, Mapping):
        value, unit = stored.get("value"), stored.get("unit") or HAEMATOLOGY_ANC_UNIT
    else:
        value, unit = stored, HAEMATOLOGY_ANC_UNIT
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return AncSample(day=day, value=float(value), unit=str(unit))


def anc_per_ul(sample: AncSample) -> float:
    """The count in cells/µL, converted by `units.py` only."""
    return convert(analyte=Analyte.NEUTROPHILS, value=sample.value, from_unit=sample.unit, to_unit=ICAHT_ANC_UNIT).value


def icaht_from_samples(samples: Iterable[AncSample]) -> IcahtResult | None:
    """Early and late ICAHT from the ANC series; counts before D0 do not enter; None without a count.

    Two counts on one day (an unscheduled visit beside a scheduled one) keep the lower: ICAHT grades
    the depth of neutropenia, and the lower count is the one that was observed.
    """
    by_day: dict[int, float] = {}
    for sample in samples:
        if sample.day < 0:
            continue
        value = anc_per_ul(sample)
        by_day[sample.day] = min(value, by_day.get(sample.day, value))
    if not by_day:
        return None
    series = tuple(AncValue(day=day, anc_per_ul=value) for day, value in sorted(by_day.items()))
    return IcahtResult(grades=grade_icaht(anc=series), series=series)
