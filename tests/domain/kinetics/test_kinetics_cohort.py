"""Virtual cohorts: chunking changes nothing, bands are the sample's quantiles, memory stays bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from cartrial.domain.kinetics import MARKERS, InvalidSimulationRequest, preset_named, simulate_cohort, simulate_markers
from cartrial.domain.kinetics.cohort import ZERO_LEVEL, output_day_grid
from cartrial.domain.kinetics.milestones import b_cell_reappearance_days
from cartrial.domain.kinetics.parameters import sample_patients

SLE = preset_named("sle-default")
DAYS = np.arange(0.0, 121.0)


def test_bands_bracket_the_exact_sample_quantiles() -> None:
    patients = 3000
    result = simulate_cohort(SLE, patients=patients, days=DAYS, seed=5, chunk_patients=1000)
    sample = sample_patients(SLE, patients, np.random.default_rng(5))
    exact = simulate_markers(sample, DAYS)
    for marker in MARKERS:
        ordered = np.sort(np.where(exact[marker] <= ZERO_LEVEL, 0.0, exact[marker]), axis=0)
        for position, level in enumerate(result.band.quantiles):
            rank = level * (patients - 1)
            below = ordered[max(int(np.floor(rank)) - 1, 0)]
            above = ordered[min(int(np.ceil(rank)) + 1, patients - 1)]
            band = result.band.values[marker][position]
            # Within one histogram bin (≤ ~2 % relative) of the order statistics around the rank.
            assert np.all(band >= below * 0.98), marker
            assert np.all(band <= above * 1.02 + ZERO_LEVEL), marker


def test_chunk_size_does_not_change_the_result() -> None:
    one = simulate_cohort(SLE, patients=5000, days=DAYS, seed=1, chunk_patients=5000)
    many = simulate_cohort(SLE, patients=5000, days=DAYS, seed=1, chunk_patients=2048)
    for marker in MARKERS:
        np.testing.assert_array_equal(one.band.values[marker], many.band.values[marker])
    assert one.reappearance == many.reappearance


def test_same_seed_same_bands_other_seed_other_bands() -> None:
    first = simulate_cohort(SLE, patients=500, days=DAYS, seed=3)
    again = simulate_cohort(SLE, patients=500, days=DAYS, seed=3)
    other = simulate_cohort(SLE, patients=500, days=DAYS, seed=4)
    np.testing.assert_array_equal(first.band.values["car_t"], again.band.values["car_t"])
    assert not np.array_equal(first.band.values["car_t"], other.band.values["car_t"])


def test_bands_are_ordered_and_shared_values_are_exact() -> None:
    result = simulate_cohort(SLE, patients=2000, days=DAYS, seed=2)
    for marker in MARKERS:
        low, mid, high = result.band.values[marker]
        assert np.all(low <= mid) and np.all(mid <= high), marker
    # Every patient has LLPCs = 1 (no loss in sle-default) and inflammation = 1 at day 0.
    np.testing.assert_array_equal(result.band.values["long_lived_plasma_cells"], 1.0)
    np.testing.assert_array_equal(result.band.values["inflammation"][:, 0], 1.0)


def test_reappearance_summary_matches_the_per_patient_days() -> None:
    days = np.arange(0.0, 366.0)
    result = simulate_cohort(SLE, patients=1500, days=days, seed=8, chunk_patients=600)
    exact = simulate_markers(sample_patients(SLE, 1500, np.random.default_rng(8)), days)
    reappearance = b_cell_reappearance_days(exact["b_cells"], days)
    back = reappearance[np.isfinite(reappearance)]
    summary = result.reappearance
    assert summary.never_depleted == int(np.isnan(reappearance).sum())
    assert summary.not_back_by_horizon == int(np.isinf(reappearance).sum())
    assert summary.mean_days == pytest.approx(back.mean())
    assert summary.sd_days == pytest.approx(back.std(ddof=1))
    depleted = reappearance[~np.isnan(reappearance)]
    for level, day in summary.quantile_days.items():
        assert day == np.quantile(depleted, level, method="inverted_cdf")


def test_memory_does_not_grow_with_the_number_of_patients() -> None:
    days = np.arange(0.0, 31.0)
    peaks = []
    for patients in (2 * 2048, 8 * 2048):
        tracemalloc.start()
        simulate_cohort(SLE, patients=patients, days=days, seed=0, chunk_patients=2048)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0]


@pytest.mark.parametrize(
    "arguments",
    [
        {"patients": 0, "days": DAYS},
        {"patients": 10, "days": []},
        {"patients": 10, "days": [-1.0, 0.0]},
        {"patients": 10, "days": DAYS, "chunk_patients": 0},
    ],
)
def test_bad_cohort_requests_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidSimulationRequest):
        simulate_cohort(SLE, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(("horizon", "step"), [(0.0, 1.0), (10.0, 0.0), (float("nan"), 1.0)])
def test_bad_grids_are_refused(horizon: float, step: float) -> None:
    with pytest.raises(InvalidSimulationRequest):
        output_day_grid(horizon, step)


def test_grid_includes_the_horizon_when_it_falls_on_a_step() -> None:
    np.testing.assert_allclose(output_day_grid(1.0, 0.1), np.arange(11) * 0.1)
    np.testing.assert_allclose(output_day_grid(10.0, 3.0), [0.0, 3.0, 6.0, 9.0])
