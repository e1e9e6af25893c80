"""Immune effector cell-associated haematotoxicity (ICAHT), neutrophil grading, early and late.

Source: Rejeski K et al. Immune effector cell-associated hematotoxicity: EHA/EBMT consensus
grading and best practice recommendations. Blood 2023;142:865-77
(doi:10.1182/blood.2023020578); operational rules as in the Fred Hutch automated grading code
(emilyliangmd/automatedicahtgrading) and the T-ICAHT footnotes (clinical.md §4.4, [V-2]).
Version: EHA/EBMT 2023. Units: absolute neutrophil count (ANC) in cells/µL; days counted from
infusion (day 0). Ranges: grades 0..4; early = days 0..30, late = days 31..100.

Early ICAHT grades depth and duration: days with ANC ≤ 500/µL (1-6 → 1, 7-13 → 2, 14-30 → 3,
all 31 → 4) and days with ANC ≤ 100/µL (7-13 → 3, ≥ 14 → 4); the grade is the higher of the
two. A rise above a threshold for fewer than 3 days does not end a neutropenic period: those
days are added to it. Late ICAHT grades the nadir after day 30 (≤ 1500 → 1, ≤ 1000 → 2,
≤ 500 → 3, ≤ 100 → 4), confirmed by a second value ≤ 1500 (non-transient); a single value is
graded alone. A grade is None when its window holds no value, so it is never guessed.
Censoring (rescue immunosuppression, re-treatment) is the caller's: pass only the counts
before the censoring event.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import Message

EarlyDurationRule = Literal["cumulative", "longest_episode"]

EARLY_WINDOW_LAST_DAY = 30
LATE_WINDOW_FIRST_DAY = 31

# Open item (clinical.md §4.4, §7.5b): the T-ICAHT text adds up all days below a threshold in
# days 0-30; the Fred Hutch code grades the longest single episode. Default "cumulative", as
# clinical.md says, until the SAP fixes it.
EARLY_ICAHT_DURATION: EarlyDurationRule = "cumulative"

# Open item (clinical.md §4.4, interpolation rule for the SAP): counts are not daily after
# discharge. Like the Fred Hutch code, days between two counts at most 7 days apart take the
# linearly interpolated value; days in a longer gap have no value and are listed as such.
ICAHT_MAX_INTERPOLATION_GAP_DAYS = 7

# Recovery is the first of 3 consecutive days above the threshold (T-ICAHT footnote).
ICAHT_RECOVERY_MIN_CONSECUTIVE_DAYS = 3

# Open item (clinical.md §7.5a): grade 4 is "ANC ≤ 500 for the whole window without recovery".
# We count it as all 31 days 0..30 (clinical.md's "> 30 days"); the Fred Hutch code instead
# grades 4 a fall to ≤ 500 by day 3 that never recovers before the last count.
EARLY_ICAHT_GRADE_4_MIN_DAYS_LE_500 = 31

# Open item (clinical.md §7.5d): the late window ends at day +100 in the implementations; it
# is not part of the definition. Counts after it are reported as ignored.
LATE_ICAHT_WINDOW_LAST_DAY = 100

LATE_CONFIRMATION_MAX_ANC_PER_UL = 1500.0
# Plausibility bounds: 15 years of follow-up; an ANC above 100 000/µL is a unit slip.
ANC_DAY_MAX = 15 * 366
ANC_MAX_PER_UL = 100_000.0


@dataclass(frozen=True)
class AncValue:
    """One absolute neutrophil count on a day counted from infusion."""

    day: int
    anc_per_ul: float


@dataclass(frozen=True)
class EarlyIcaht:
    """Early ICAHT (days 0..30) with the durations it was graded on."""

    grade: int | None
    days_anc_le_500: int
    days_anc_le_100: int
    days_without_value: tuple[int, ...]
    duration_rule: EarlyDurationRule


@dataclass(frozen=True)
class LateIcaht:
    """Late ICAHT (days 31..100) with the nadir and its confirming value."""

    grade: int | None
    nadir_anc_per_ul: float | None
    confirming_anc_per_ul: float | None
    values_in_window: int


@dataclass(frozen=True)
class IcahtGrades:
    """Both ICAHT grades and the counts that fell outside every window."""

    early: EarlyIcaht
    late: LateIcaht
    ignored_days: tuple[int, ...]


def validate_anc_values(anc: Sequence[AncValue]) -> list[FieldError]:
    """Field errors for a series of counts (empty when the series can be graded)."""
    if not anc:
        return [("anc", Message("needs at least one ANC value"))]
    errors: list[FieldError] = []
    seen: set[int] = set()
    for index, value in enumerate(anc):
        if not 0 <= value.day <= ANC_DAY_MAX:
            errors.append(
                (
                    f"anc[{index}].day",
                    Message(
                        "must be 0 (infusion) to {maximum}, got {day}; pre-infusion counts do not enter ICAHT",
                        {"maximum": ANC_DAY_MAX, "day": value.day},
                    ),
                )
            )
        elif value.day in seen:
            errors.append((f"anc[{index}].day", Message("day {day} is given twice", {"day": value.day})))
        seen.add(value.day)
        if not (math.isfinite(value.anc_per_ul) and 0 <= value.anc_per_ul <= ANC_MAX_PER_UL):
            errors.append(
                (
                    f"anc[{index}].anc_per_ul",
                    Message(
                        "must be from 0 to {maximum} cells/µL, got {value}",
                        {"maximum": ANC_MAX_PER_UL, "value": value.anc_per_ul},
                    ),
                )
            )
    return errors


def grade_icaht(*, anc: Sequence[AncValue], early_duration: EarlyDurationRule = EARLY_ICAHT_DURATION) -> IcahtGrades:
    """Grade early and late neutrophil ICAHT from counts on days since infusion."""
    errors = validate_anc_values(anc)
    if errors:
        raise CalculatorInputError(errors)
    ordered = sorted(anc, key=lambda v: v.day)
    daily = _daily_anc(ordered)
    return IcahtGrades(
        early=_grade_early(daily, early_duration),
        late=_grade_late(ordered),
        ignored_days=tuple(v.day for v in ordered if v.day > LATE_ICAHT_WINDOW_LAST_DAY),
    )


def _daily_anc(ordered: Sequence[AncValue]) -> dict[int, float]:
    """Measured days, plus interpolated days between counts close enough together."""
    daily = {v.day: v.anc_per_ul for v in ordered}
    for before, after in itertools.pairwise(ordered):
        gap = after.day - before.day
        if gap > ICAHT_MAX_INTERPOLATION_GAP_DAYS:
            continue
        slope = (after.anc_per_ul - before.anc_per_ul) / gap
        for day in range(before.day + 1, after.day):
            daily[day] = before.anc_per_ul + slope * (day - before.day)
    return daily


def _neutropenic_days(daily: dict[int, float], threshold_per_ul: float) -> list[set[int]]:
    """Neutropenic periods at a threshold: runs of days at or below it, bridged over rises
    that last fewer than the recovery days (those days join the period)."""
    low_days = sorted(day for day, anc in daily.items() if anc <= threshold_per_ul)
    periods: list[set[int]] = []
    for day in low_days:
        if periods:
            last = max(periods[-1])
            between = range(last + 1, day)
            if len(between) < ICAHT_RECOVERY_MIN_CONSECUTIVE_DAYS and all(d in daily for d in between):
                periods[-1].update(between)
                periods[-1].add(day)
                continue
        periods.append({day})
    return periods


def _early_days(periods: list[set[int]], rule: EarlyDurationRule) -> int:
    in_window = [{d for d in p if d <= EARLY_WINDOW_LAST_DAY} for p in periods]
    if rule == "cumulative":
        return sum(len(p) for p in in_window)
    return max((len(p) for p in in_window), default=0)


def _grade_early(daily: dict[int, float], rule: EarlyDurationRule) -> EarlyIcaht:
    window = range(0, EARLY_WINDOW_LAST_DAY + 1)
    missing = tuple(d for d in window if d not in daily)
    days_500 = _early_days(_neutropenic_days(daily, 500.0), rule)
    days_100 = _early_days(_neutropenic_days(daily, 100.0), rule)
    grade: int | None
    if len(missing) == len(window):
        grade = None
    else:
        grade = max(_grade_from_days_le_500(days_500), _grade_from_days_le_100(days_100))
    return EarlyIcaht(
        grade=grade,
        days_anc_le_500=days_500,
        days_anc_le_100=days_100,
        days_without_value=missing,
        duration_rule=rule,
    )


def _grade_from_days_le_500(days: int) -> int:
    if days >= EARLY_ICAHT_GRADE_4_MIN_DAYS_LE_500:
        return 4
    if days >= 14:
        return 3
    if days >= 7:
        return 2
    if days >= 1:
        return 1
    return 0


def _grade_from_days_le_100(days: int) -> int:
    if days >= 14:
        return 4
    if days >= 7:
        return 3
    return 0


def late_grade_for_anc(anc_per_ul: float) -> int:
    """Depth grade of one count after day 30: ≤ 1500 → 1, ≤ 1000 → 2, ≤ 500 → 3, ≤ 100 → 4."""
    if anc_per_ul <= 100:
        return 4
    if anc_per_ul <= 500:
        return 3
    if anc_per_ul <= 1000:
        return 2
    if anc_per_ul <= LATE_CONFIRMATION_MAX_ANC_PER_UL:
        return 1
    return 0


def _grade_late(ordered: Sequence[AncValue]) -> LateIcaht:
    values = sorted(v.anc_per_ul for v in ordered if LATE_WINDOW_FIRST_DAY <= v.day <= LATE_ICAHT_WINDOW_LAST_DAY)
    if not values:
        return LateIcaht(grade=None, nadir_anc_per_ul=None, confirming_anc_per_ul=None, values_in_window=0)
    nadir = values[0]
    if len(values) == 1:
        return LateIcaht(
            grade=late_grade_for_anc(nadir),
            nadir_anc_per_ul=nadir,
            confirming_anc_per_ul=None,
            values_in_window=1,
        )
    confirming = values[1]
    grade = late_grade_for_anc(nadir) if confirming <= LATE_CONFIRMATION_MAX_ANC_PER_UL else 0
    return LateIcaht(
        grade=grade,
        nadir_anc_per_ul=nadir,
        confirming_anc_per_ul=confirming,
        values_in_window=len(values),
    )
