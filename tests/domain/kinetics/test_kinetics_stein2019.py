"""V1 (kinetics.md §5): the stein2019 preset reproduces Stein 2019's typical tisagenlecleucel profile.

Targets are the published Table 1 / Discussion numbers and checkpoints computed by hand from the
published parameters, never the model's own output. Tolerances are those of kinetics.md §5:
1e-6 between ODE and closed form, ±1 % against derived checkpoints, ±3 % against the paper's
rounded half-lives, ±3 % (median) and ±5 % (5th/95th percentiles) for 20 000 virtual patients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cartrial.domain.kinetics import preset_named
from cartrial.domain.kinetics import published as pub
from cartrial.domain.kinetics.car_t import car_t_curve, car_t_exposure, car_t_level, summarize_typical
from cartrial.domain.kinetics.parameters import sample_patients
from cartrial.domain.kinetics.reference import solve_patient

STEIN = preset_named("stein2019")
TYPICAL = STEIN.typical_patient()


def test_derived_constants_match_the_paper() -> None:
    summary = summarize_typical(TYPICAL)
    assert summary.initial_level == pytest.approx(pub.STEIN_2019_INITIAL_LEVEL_COPIES_PER_UG, rel=1e-3)
    assert summary.growth_rate_per_day == pytest.approx(pub.STEIN_2019_GROWTH_RATE_PER_DAY, rel=1e-4)
    assert summary.doubling_time_days == pytest.approx(pub.STEIN_2019_DOUBLING_TIME_DAYS, rel=0.01)
    assert summary.fast_half_life_days == pytest.approx(4.332, rel=1e-3)  # ln2/0.16, kinetics.md
    assert summary.fast_half_life_days == pytest.approx(pub.STEIN_2019_FAST_HALF_LIFE_DAYS_PAPER, rel=0.03)
    assert summary.slow_half_life_days == pytest.approx(216.6, rel=1e-3)  # ln2/0.0032
    assert summary.slow_half_life_days == pytest.approx(pub.STEIN_2019_SLOW_HALF_LIFE_DAYS_PAPER, rel=0.03)


def test_peak_is_exactly_24000_copies_at_day_9_3() -> None:
    at_peak = float(car_t_level(TYPICAL, pub.STEIN_2019_PEAK_DAY)[0])
    assert at_peak == pytest.approx(pub.STEIN_2019_PEAK_COPIES_PER_UG, rel=1e-12)
    around = car_t_curve(TYPICAL, np.linspace(0, 60, 6001))[0]
    assert around.max() <= at_peak * (1 + 1e-12)


@pytest.mark.parametrize(
    ("day", "expected_copies_per_ug"),
    [
        # Hand-computed from Table 1: R0·e^(ρ·2) and 24000·[0.9921·e^(−0.16 s) + 0.0079·e^(−0.0032 s)].
        (0.0, 6.1538),
        (2.0, 36.4266),
        (30.0, 1045.175),
        (100.0, 141.8486),
        (365.0, 60.7445),
    ],
)
def test_derived_checkpoints(day: float, expected_copies_per_ug: float) -> None:
    assert float(car_t_level(TYPICAL, day)[0]) == pytest.approx(expected_copies_per_ug, rel=0.01)


def curve(day: float) -> float:
    return float(car_t_level(TYPICAL, day)[0])


def test_half_lives_read_off_the_curve() -> None:
    doubling = math.log(2) / math.log(curve(3.0) / curve(2.0))
    terminal = math.log(2) * (365.0 - 300.0) / math.log(curve(300.0) / curve(365.0))
    # Just after the peak the slow phase is < 1 % of the level; it biases the slope by ≤ 0.8 %.
    early = math.log(2) * 3.0 / math.log(curve(9.3) / curve(12.3))
    assert doubling == pytest.approx(pub.STEIN_2019_DOUBLING_TIME_DAYS, rel=0.01)
    assert terminal == pytest.approx(pub.STEIN_2019_SLOW_HALF_LIFE_DAYS_PAPER, rel=0.03)
    assert early == pytest.approx(pub.STEIN_2019_FAST_HALF_LIFE_DAYS_PAPER, rel=0.03)


def test_closed_form_equals_the_compartmental_ode() -> None:
    # solve_ivp integrates dE/dt = ρE, then −αE and dM/dt = FB(α−β)E − βM: an independent path.
    days = np.concatenate([np.linspace(0, 9.3, 32), np.linspace(9.5, 365, 120)])
    reference = solve_patient(TYPICAL, 0, days, relative_tolerance=1e-11, absolute_tolerance=1e-12)
    closed = car_t_curve(TYPICAL, days)[0]
    np.testing.assert_allclose(closed, reference["car_t"], rtol=1e-6)


def test_exposure_is_the_integral_of_the_curve() -> None:
    days = np.linspace(0, 120, 240_001)
    levels = car_t_curve(TYPICAL, days)[0]
    trapezoid = float(np.sum((levels[1:] + levels[:-1]) / 2 * np.diff(days)))
    assert float(car_t_exposure(TYPICAL, 120.0)[0]) == pytest.approx(trapezoid, rel=1e-6)


def test_population_peak_distribution_matches_the_published_variance() -> None:
    patients = sample_patients(STEIN, 20_000, np.random.default_rng(2019))
    peaks = car_t_level(patients, patients.car_t_peak_day)
    p05, p50, p95 = np.quantile(peaks, [0.05, 0.5, 0.95])
    assert p50 == pytest.approx(pub.STEIN_2019_PEAK_COPIES_PER_UG, rel=0.03)
    assert p05 == pytest.approx(pub.STEIN_2019_PEAK_P05_COPIES_PER_UG, rel=0.05)
    assert p95 == pytest.approx(pub.STEIN_2019_PEAK_P95_COPIES_PER_UG, rel=0.05)
