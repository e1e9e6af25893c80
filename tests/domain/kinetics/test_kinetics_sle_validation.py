"""V4-V6 (kinetics.md §5): the sle-default preset against the published SLE series.

Calibration, said plainly: κ and the SLE scaling of Stein's variances were chosen so that the
cohort's mean B-cell reappearance matches Mackensen 2022 and its SD falls inside the published
SDs' confidence intervals (parameters.py). The B-cell tests below therefore check that the
calibration holds (and stays held), not an independent prediction. The anti-dsDNA, remission,
IgG and protective-antibody checks use no fitted number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from cartrial.domain.kinetics import preset_named, simulate_cohort, simulate_markers
from cartrial.domain.kinetics import published as pub
from cartrial.domain.kinetics.cohort import CohortResult
from cartrial.domain.kinetics.milestones import b_cell_reappearance_days
from cartrial.domain.kinetics.parameters import sample_patients

SLE = preset_named("sle-default")
TWO_YEARS = np.arange(0.0, 731.0)


@pytest.fixture(scope="module")
def cohort() -> CohortResult:
    return simulate_cohort(SLE, patients=5000, days=TWO_YEARS, seed=2022)


def mean_interval(mean: float, sd: float, patients: int, t_quantile: float) -> tuple[float, float]:
    half_width = t_quantile * sd / math.sqrt(patients)
    return mean - half_width, mean + half_width


def sd_interval(sd: float, patients: int) -> tuple[float, float]:
    dof = patients - 1
    return sd * math.sqrt(dof / chi2.ppf(0.975, dof)), sd * math.sqrt(dof / chi2.ppf(0.025, dof))


def test_typical_patient_b_cells_reappear_within_one_sd_of_mackensen() -> None:
    b_cells = simulate_markers(SLE.typical_patient(), TWO_YEARS)["b_cells"]
    day = float(b_cell_reappearance_days(b_cells, TWO_YEARS)[0])
    mean, sd = pub.MACKENSEN_2022_B_CELL_REAPPEARANCE_MEAN_DAYS, pub.MACKENSEN_2022_B_CELL_REAPPEARANCE_SD_DAYS
    assert mean - sd <= day <= mean + sd  # 78-142 days


def test_cohort_mean_reappearance_inside_both_published_confidence_intervals(cohort: CohortResult) -> None:
    summary = cohort.reappearance
    assert summary.never_depleted == 0
    assert summary.not_back_by_horizon / summary.patients < 0.01
    mackensen = mean_interval(
        pub.MACKENSEN_2022_B_CELL_REAPPEARANCE_MEAN_DAYS,
        pub.MACKENSEN_2022_B_CELL_REAPPEARANCE_SD_DAYS,
        pub.MACKENSEN_2022_PATIENTS,
        pub.STUDENT_T_975_4_DOF,
    )
    muller = mean_interval(
        pub.MULLER_2024_B_CELL_APLASIA_MEAN_DAYS,
        pub.MULLER_2024_B_CELL_APLASIA_SD_DAYS,
        pub.MULLER_2024_PATIENTS,
        pub.STUDENT_T_975_14_DOF,
    )
    assert mackensen == pytest.approx((70.2, 149.8), abs=0.1)  # kinetics.md: 70-150 days
    assert muller == pytest.approx((86.0, 138.0), abs=0.1)  # kinetics.md: 86-138 days
    assert mackensen[0] <= summary.mean_days <= mackensen[1]
    assert muller[0] <= summary.mean_days <= muller[1]


def test_cohort_spread_of_reappearance_is_compatible_with_the_published_sds(cohort: CohortResult) -> None:
    low_m, high_m = sd_interval(pub.MACKENSEN_2022_B_CELL_REAPPEARANCE_SD_DAYS, pub.MACKENSEN_2022_PATIENTS)
    low_u, high_u = sd_interval(pub.MULLER_2024_B_CELL_APLASIA_SD_DAYS, pub.MULLER_2024_PATIENTS)
    assert max(low_m, low_u) <= cohort.reappearance.sd_days <= min(high_m, high_u)  # 34-74 days


def test_typical_anti_dsdna_at_most_a_quarter_of_baseline_by_day_90() -> None:
    anti_dsdna = simulate_markers(SLE.typical_patient(), [0.0, pub.REMISSION_ASSESSMENT_DAY])["anti_dsdna"][0]
    assert anti_dsdna[1] / anti_dsdna[0] <= pub.ANTI_DSDNA_DAY_90_MAX_FRACTION_OF_BASELINE


def test_seroconversion_when_the_baseline_titre_is_below_four_times_the_cutoff() -> None:
    baseline = 4 * pub.ANTI_DSDNA_POSITIVE_IU_PER_ML * 0.99
    patient = SLE.with_typical({"anti_dsdna_baseline": baseline}).typical_patient()
    at_day_90 = simulate_markers(patient, [pub.REMISSION_ASSESSMENT_DAY])["anti_dsdna"][0, 0]
    assert at_day_90 < pub.ANTI_DSDNA_POSITIVE_IU_PER_ML


def test_no_anti_dsdna_rebound_after_b_cell_return_when_regenerated_cells_are_naive() -> None:
    patients = simulate_markers(sample_patients(SLE, 300, np.random.default_rng(90)), TWO_YEARS)
    assert np.all(np.diff(patients["anti_dsdna"], axis=1) <= 1e-9 * patients["anti_dsdna"][:, :-1])


def test_the_relapse_hypothesis_does_rebound() -> None:
    # φ = 1: regenerated B cells as autoreactive as the old ones — the titre comes back.
    patient = SLE.with_typical({"regenerated_autoreactivity": 1.0}).typical_patient()
    anti_dsdna = simulate_markers(patient, TWO_YEARS)["anti_dsdna"][0]
    assert anti_dsdna[-1] > 3 * anti_dsdna.min()


def test_typical_patient_in_remission_range_by_day_90() -> None:
    inflammation = simulate_markers(SLE.typical_patient(), [pub.REMISSION_ASSESSMENT_DAY])["inflammation"][0, 0]
    assert inflammation <= pub.INFLAMMATION_REMISSION_MAX_FRACTION_OF_BASELINE


def test_igg_without_production_decays_with_a_21_day_half_life() -> None:
    # V6: no LLPC share, plasmablasts killed within hours: A(90)/A(0) = 2^(−90/21) = 0.051.
    patient = SLE.with_typical(
        {"llpc_antibody_fraction": 0.0, "b_lineage_kill_rate": 1000.0, "plasmablast_kill_ratio": 10.0}
    ).typical_patient()
    anti_dsdna = simulate_markers(patient, [0.0, 90.0])["anti_dsdna"][0]
    assert anti_dsdna[1] / anti_dsdna[0] == pytest.approx(pub.IGG_ONLY_DECAY_FRACTION_AT_DAY_90, rel=0.02)


@pytest.mark.parametrize("month", [6, 12])
def test_protective_antibodies_spared_as_in_walti_2019(month: int) -> None:
    # V5: Walti's patients had B-cell malignancies and lasting aplasia, hence stein2019 persistence.
    day = month * 30.4375
    stein = preset_named("stein2019")
    total_igg = stein.with_typical(
        {"llpc_antibody_fraction": pub.TOTAL_IGG_LLPC_FRACTION_PRIOR, "regenerated_autoreactivity": 1.0}
    ).typical_patient()
    measles = stein.with_typical({"llpc_antibody_fraction": 1.0}).typical_patient()
    tolerance = pub.WALTI_2019_TOLERANCE_PERCENTAGE_POINTS
    for patient, published in (
        (total_igg, pub.WALTI_2019_TOTAL_IGG_CHANGE_PERCENT),
        (measles, pub.WALTI_2019_MEASLES_IGG_CHANGE_PERCENT),
    ):
        antibody = simulate_markers(patient, [0.0, day])["anti_dsdna"][0]
        change_percent = 100 * (antibody[1] / antibody[0] - 1)
        assert change_percent == pytest.approx(published, abs=tolerance)
