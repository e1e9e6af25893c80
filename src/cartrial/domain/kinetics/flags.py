"""Deviation flags on one subject's observations (kinetics.md §4.4 a, "clinically meaningful flags").

Each flag is a pure function of the observations (and, where it compares with what is expected,
of the population band or B-cell reappearance distribution of a virtual cohort). A flag is
raised (True), not raised (False), or not evaluable (None) when the data cannot say, and its
message says why in words a clinician reads. Censored values count at their LoQ as an upper
bound, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cartrial.domain.kinetics.cohort import Band, ReappearanceSummary
from cartrial.domain.kinetics.observations import Observation
from cartrial.domain.kinetics.parameters import Preset
from cartrial.domain.kinetics.published import B_CELL_REAPPEARANCE_CELLS_PER_UL, IGG_HALF_LIFE_UPPER_DAYS
from cartrial.domain.text import N_, Message

# Acute monitoring window D0-D28 (clinical.md §5.5), where the CAR-T peak is expected.
CAR_T_EXPANSION_WINDOW_DAYS = (0.0, 28.0)
# kinetics.md §4.4: "no B-cell depletion by day 7-14".
B_CELL_DEPLETION_WINDOW_DAYS = (7.0, 14.0)
# Depleted = undetectable by flow. clinical.md §6 also cites "< 20 cells/µL" for aplasia, but
# lymphodepletion alone takes a typical patient (150 cells/µL × f_LD 0.05) to ~7.5 cells/µL,
# so only the detection limit separates a CAR-T effect from lymphodepletion.
B_CELL_DEPLETED_BELOW_CELLS_PER_UL = B_CELL_REAPPEARANCE_CELLS_PER_UL
# Anti-dsDNA decline [prior]: plasmablasts are gone about two weeks after infusion (peak at day
# ~9 plus a few 5-day plasmablast lifetimes); from then on the titre can fall no slower than
# IgG clearance (t½ ≤ 23 days, textbook upper bound) towards the LLPC floor, taken at the 95th
# percentile of the preset's LLPC share. Checked from day 28 to day 180.
ANTI_DSDNA_PLASMABLAST_REMOVAL_DAYS = 14.0
ANTI_DSDNA_DECLINE_CHECK_DAYS = (28.0, 180.0)
# A rebound is a titre at least this many times the lowest one seen before it [prior]: twice is
# 3.5 residual SDs (0.2 on the log scale), beyond assay noise.
ANTI_DSDNA_REBOUND_FOLD = 2.0
_Z_95 = 1.6448536269514722


@dataclass(frozen=True)
class Flag:
    """One deviation check: `raised` is True, False, or None when the data cannot tell."""

    code: str
    raised: bool | None
    message: Message
    evidence: dict[str, float] = field(default_factory=dict)


def _say(msgid: str, **params: object) -> Message:
    return Message(msgid, params)


def _rounded(value: float, digits: int) -> float:
    """`value` to `digits` significant digits, as the message shows it."""
    return float(f"{value:.{digits}g}")


def _of(observations: Sequence[Observation], marker: str, window: tuple[float, float]) -> list[Observation]:
    low, high = window
    return [o for o in observations if o.marker == marker and low <= o.day <= high]


def car_t_peak_below_band(observations: Sequence[Observation], population: Band) -> Flag:
    """Poor expansion: no CAR-T value in D0-D28 reaches the population's 5 % band on its day."""
    code = "car_t_peak_below_band"
    window = _of(observations, "car_t", CAR_T_EXPANSION_WINDOW_DAYS)
    if not window:
        return Flag(code, None, _say(N_("No CAR-T measurement between day 0 and day 28.")))
    ratios = [(o, o.upper_bound / float(population.at_day("car_t", o.day)[0])) for o in window]
    reached = [(o, ratio) for o, ratio in ratios if not o.censored and ratio >= 1.0]
    if reached:
        best, ratio = max(reached, key=lambda item: item[1])
        return Flag(
            code,
            False,
            _say(
                N_("CAR-T expanded into the expected range (day {day}: {value} {unit}, {ratio} × the 5 % band)."),
                day=best.day,
                value=best.value,
                unit=best.unit,
                ratio=_rounded(ratio, 2),
            ),
            {"day": best.day, "value_over_lower_band": ratio},
        )
    undecided = [o for o, ratio in ratios if o.censored and ratio >= 1.0]
    if undecided:
        return Flag(code, None, _say(N_("CAR-T was below the assay limit, which is above the expected 5 % level.")))
    best, ratio = max(ratios, key=lambda item: item[1])
    return Flag(
        code,
        True,
        _say(
            N_(
                "Every CAR-T value up to day 28 is below the 5 % band (highest: day {day}, "
                "{ratio} × the band's lower edge): poor expansion."
            ),
            day=best.day,
            ratio=_rounded(ratio, 2),
        ),
        {"day": best.day, "value_over_lower_band": ratio},
    )


def _known_depleted(observation: Observation) -> bool:
    """Below the depletion threshold for sure (a censored value counts only if its LoQ is)."""
    threshold = B_CELL_DEPLETED_BELOW_CELLS_PER_UL
    return observation.upper_bound < threshold or (observation.censored and observation.upper_bound <= threshold)


def no_b_cell_depletion_by_day_14(observations: Sequence[Observation]) -> Flag:
    """No B-cell depletion: every B-cell count between day 7 and 14 is still detectable."""
    code = "no_b_cell_depletion_by_day_14"
    window = _of(observations, "b_cells", B_CELL_DEPLETION_WINDOW_DAYS)
    if not window:
        return Flag(code, None, _say(N_("No B-cell count between day 7 and day 14.")))
    threshold = B_CELL_DEPLETED_BELOW_CELLS_PER_UL
    depleted = [o for o in window if _known_depleted(o)]
    lowest = min(window, key=lambda o: o.upper_bound)
    if depleted:
        return Flag(
            code,
            False,
            _say(
                N_("B cells depleted by day {day} (< {threshold} cells/µL)."),
                day=depleted[0].day,
                threshold=threshold,
            ),
            {"day": depleted[0].day},
        )
    if any(o.censored for o in window):
        return Flag(
            code,
            None,
            _say(N_("B cells below an assay limit above {threshold} cells/µL; depth unknown."), threshold=threshold),
        )
    return Flag(
        code,
        True,
        _say(
            N_(
                "B cells still at {lowest} cells/µL or more between day 7 and 14 "
                "(depletion means < {threshold} cells/µL)."
            ),
            lowest=lowest.upper_bound,
            threshold=threshold,
        ),
        {"lowest_cells_per_ul": lowest.upper_bound, "day": lowest.day},
    )


def observed_b_cell_reappearance_day(observations: Sequence[Observation]) -> float | None:
    """First day B cells are detectable again after a depleted count; None if not seen."""
    depleted_seen = False
    for observation in observations:
        if observation.marker != "b_cells":
            continue
        if _known_depleted(observation):
            depleted_seen = True
        elif depleted_seen and not observation.censored:
            return observation.day
    return None


def early_b_cell_return(observations: Sequence[Observation], reappearance: ReappearanceSummary) -> Flag:
    """B cells back before the 5th percentile of the cohort's reappearance days (short persistence)."""
    code = "early_b_cell_return"
    day = observed_b_cell_reappearance_day(observations)
    earliest_expected = reappearance.quantile_days[0.05]
    if day is None:
        return Flag(code, False, _say(N_("B cells have not been seen coming back after depletion.")))
    evidence = {"reappearance_day": day, "expected_5th_percentile_day": earliest_expected}
    if day < earliest_expected:
        return Flag(
            code,
            True,
            _say(
                N_(
                    "B cells back by day {day}, before 95 % of comparable patients "
                    "(5th percentile: day {earliest}): CAR-T persistence may be short."
                ),
                day=day,
                earliest=earliest_expected,
            ),
            evidence,
        )
    return Flag(code, False, _say(N_("B cells back on day {day}, within the expected range."), day=day), evidence)


def anti_dsdna_slow_decline(observations: Sequence[Observation], preset: Preset) -> Flag:
    """Anti-dsDNA stays above what IgG clearance towards a high LLPC floor allows."""
    code = "anti_dsdna_slow_decline"
    baseline = [o for o in _of(observations, "anti_dsdna", (0.0, 7.0)) if not o.censored]
    later = _of(observations, "anti_dsdna", ANTI_DSDNA_DECLINE_CHECK_DAYS)
    if not baseline or not later:
        return Flag(code, None, _say(N_("Needs an anti-dsDNA value by day 7 and another between day 28 and 180.")))
    reference = baseline[0]
    assert reference.value is not None
    llpc = preset.spec("llpc_antibody_fraction")
    floor = min(1.0, llpc.typical * math.exp(_Z_95 * math.sqrt(llpc.between_patient_variance)))
    worst: tuple[Observation, float, float] | None = None
    for observation in later:
        elapsed = max(observation.day - ANTI_DSDNA_PLASMABLAST_REMOVAL_DAYS, 0.0)
        allowed = floor + (1.0 - floor) * 2.0 ** (-elapsed / IGG_HALF_LIFE_UPPER_DAYS)
        remaining = observation.upper_bound / reference.value
        if not observation.censored and remaining > allowed and (worst is None or remaining / allowed > worst[1]):
            worst = (observation, remaining / allowed, remaining)
    if worst is None:
        return Flag(code, False, _say(N_("Anti-dsDNA falls as fast as IgG clearance allows.")))
    observation, excess, remaining = worst
    return Flag(
        code,
        True,
        _say(
            N_(
                "Anti-dsDNA at day {day} is {percent}% of its day-{reference_day} value, {excess} × the most "
                "IgG clearance (t½ ≤ {half_life} d) allows: antibody production continues."
            ),
            day=observation.day,
            percent=round(100 * remaining),
            reference_day=reference.day,
            excess=round(excess, 1),
            half_life=IGG_HALF_LIFE_UPPER_DAYS,
        ),
        {"day": observation.day, "fraction_of_baseline": remaining, "excess_over_allowed": excess},
    )


def anti_dsdna_rise_after_b_cell_return(observations: Sequence[Observation]) -> Flag:
    """Anti-dsDNA rebound once B cells are back: the regenerated repertoire is autoreactive again."""
    code = "anti_dsdna_rise_after_b_cell_return"
    returned = observed_b_cell_reappearance_day(observations)
    if returned is None:
        return Flag(code, None, _say(N_("B cells have not come back yet; nothing to compare.")))
    titres = [o for o in observations if o.marker == "anti_dsdna"]
    before = [o for o in titres if o.day <= returned]
    after = [o for o in titres if o.day > returned and not o.censored]
    if not before or not after:
        return Flag(code, None, _say(N_("Needs anti-dsDNA values both before and after B-cell return.")))
    nadir = min(o.upper_bound for o in before)
    peak = max(after, key=lambda o: o.upper_bound)
    rise = peak.upper_bound / nadir
    evidence = {"b_cell_return_day": returned, "nadir_before": nadir, "highest_after": peak.upper_bound}
    if rise >= ANTI_DSDNA_REBOUND_FOLD:
        return Flag(
            code,
            True,
            _say(
                N_(
                    "Anti-dsDNA rose {fold}-fold after B cells returned on day {returned} "
                    "(day {day}: {value} IU/mL): possible relapse."
                ),
                fold=round(rise, 1),
                returned=returned,
                day=peak.day,
                value=peak.upper_bound,
            ),
            evidence,
        )
    return Flag(code, False, _say(N_("No anti-dsDNA rebound after B-cell return.")), evidence)


def assess_flags(
    observations: Sequence[Observation], preset: Preset, population: Band, reappearance: ReappearanceSummary
) -> tuple[Flag, ...]:
    """Every flag, in a stable order."""
    return (
        car_t_peak_below_band(observations, population),
        no_b_cell_depletion_by_day_14(observations),
        early_b_cell_return(observations, reappearance),
        anti_dsdna_slow_decline(observations, preset),
        anti_dsdna_rise_after_b_cell_return(observations),
    )
