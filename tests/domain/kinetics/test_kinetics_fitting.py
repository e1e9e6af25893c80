"""Individual MAP fit: recovers a simulated subject, handles censoring, says when it fails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cartrial.domain.kinetics import Observation, fit_subject, preset_named, simulate_markers
from cartrial.domain.kinetics.fitting import fitted_parameters, negative_log_likelihood
from cartrial.domain.kinetics.observations import observed_units
from cartrial.domain.kinetics.parameters import ModelParameters

SLE = preset_named("sle-default")
VISITS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 120, 180, 270, 365.0])
LOQ = {"car_t": 0.1, "b_cells": 1.0, "anti_dsdna": 10.0}


def observe(patient: ModelParameters, noise_seed: int | None = None) -> list[Observation]:
    """The subject's markers at the visits, log-normal noise of the preset's size, censored at LoQ."""
    simulated = simulate_markers(patient, VISITS)
    rng = np.random.default_rng(noise_seed)
    units = observed_units(SLE)
    observations = []
    for marker, loq in LOQ.items():
        for index, day in enumerate(VISITS):
            value = float(simulated[marker][0, index])
            if noise_seed is not None:
                value *= float(np.exp(SLE.residual_sd_log[marker] * rng.standard_normal()))
            observations.append(Observation(marker, float(day), value if value >= loq else None, units[marker], loq))
    return observations


def test_fits_the_typical_subject_back_to_the_typical_values() -> None:
    fit = fit_subject(observe(SLE.typical_patient()), SLE)
    assert fit.converged, fit.message
    typical = SLE.typical_values()
    for name in ("car_t_peak", "car_t_peak_day", "anti_dsdna_baseline", "b_cells_baseline", "llpc_antibody_fraction"):
        assert fit.parameters[name] == pytest.approx(typical[name], rel=0.05), name
    assert fit.negative_log_posterior < 1.0


def test_recovers_a_different_subject_within_its_uncertainty() -> None:
    truth = SLE.with_typical(
        {"car_t_peak": 80.0, "car_t_peak_day": 12.0, "anti_dsdna_baseline": 600.0, "llpc_antibody_fraction": 0.3}
    ).typical_patient()
    fit = fit_subject(observe(truth, noise_seed=4), SLE)
    assert fit.converged and fit.log_standard_errors is not None
    for name in ("car_t_peak", "car_t_peak_day", "anti_dsdna_baseline", "llpc_antibody_fraction"):
        error = abs(np.log(fit.parameters[name]) - np.log(truth.column(name)[0]))
        assert error < 3 * fit.log_standard_errors[name] + 0.05, name


def test_band_contains_the_expected_curve_and_is_ordered() -> None:
    fit = fit_subject(observe(SLE.typical_patient(), noise_seed=1), SLE)
    assert fit.band is not None and fit.expected is not None
    low, mid, high = fit.band.values["car_t"]
    assert np.all(low <= mid) and np.all(mid <= high)
    inside = (fit.expected["car_t"] >= low) & (fit.expected["car_t"] <= high)
    assert inside.mean() > 0.95
    assert fit.band.days[-1] == 365.0


def test_censored_values_use_the_normal_cdf_not_a_number() -> None:
    observations = [
        Observation("b_cells", 14.0, None, "cells/µL", 1.0),
        Observation("b_cells", 28.0, 0.2, "cells/µL", 1.0),
        Observation("b_cells", 180.0, 95.0, "cells/µL", 1.0),
        Observation("anti_dsdna", 0.0, 210.0, "IU/mL", 10.0),
    ]
    predicted = simulate_markers(SLE.typical_patient(), [0.0, 14.0, 28.0, 180.0])
    b_sd, a_sd = SLE.residual_sd_log["b_cells"], SLE.residual_sd_log["anti_dsdna"]
    expected = (
        -norm.logcdf((np.log(1.0) - np.log(predicted["b_cells"][0, 1])) / b_sd)
        - norm.logcdf((np.log(1.0) - np.log(predicted["b_cells"][0, 2])) / b_sd)
        + 0.5 * ((np.log(95.0) - np.log(predicted["b_cells"][0, 3])) / b_sd) ** 2
        + 0.5 * ((np.log(210.0) - np.log(predicted["anti_dsdna"][0, 0])) / a_sd) ** 2
    )
    assert negative_log_likelihood(observations, SLE, {}) == pytest.approx(expected, rel=1e-9)


def test_censoring_keeps_the_fit_below_the_limit() -> None:
    observations = observe(SLE.typical_patient())
    fit = fit_subject(observations, SLE)
    assert fit.expected is not None
    for observation in observations:
        if observation.censored and observation.marker == "b_cells":
            day = int(observation.day)
            assert fit.expected["b_cells"][day] < 1.0


def test_a_fit_that_does_not_converge_says_so_and_has_no_band() -> None:
    truth = SLE.with_typical({"car_t_peak": 300.0, "anti_dsdna_baseline": 5000.0}).typical_patient()
    fit = fit_subject(observe(truth, noise_seed=2), SLE, max_evaluations=1)
    assert not fit.converged
    assert fit.band is None and fit.expected is None and fit.log_standard_errors is None
    assert "did not converge" in fit.message


def test_only_informed_parameters_with_variability_are_fitted() -> None:
    names = fitted_parameters(SLE)
    assert "car_t_peak" in names and "anti_dsdna_baseline" in names
    assert "regenerated_autoreactivity" not in names  # ω² = 0
    assert not any(name.startswith("inflammation") for name in names)


def test_one_fit_is_bounded_in_work() -> None:
    """The fit's cost is bounded by its number of model evaluations, not by the machine's load: its time
    is measured by benchmarks/kinetics_cohort.py (docs/benchmarks.md), never by a timed unit test."""
    from cartrial.domain.kinetics.fitting import DEFAULT_MAX_EVALUATIONS

    fit = fit_subject(observe(SLE.typical_patient(), noise_seed=3), SLE)
    assert fit.converged and 0 < fit.evaluations <= DEFAULT_MAX_EVALUATIONS
