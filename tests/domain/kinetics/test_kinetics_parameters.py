"""Parameter table: every row sourced and in range, typed refusals, log-normal sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.kinetics import (
    MARKERS,
    PRESETS,
    ParameterOutOfRange,
    UnknownParameter,
    UnknownPreset,
    preset_named,
)
from cartrial.domain.kinetics.parameters import (
    ModelParameters,
    SourceStatus,
    parameter_names,
    sample_patients,
    validate_patients,
)


def test_both_presets_exist_and_car_t_is_the_first_marker() -> None:
    assert set(PRESETS) == {"stein2019", "sle-default"}
    assert MARKERS[0] == "car_t"
    assert len(set(MARKERS)) == len(MARKERS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_parameter_has_unit_source_range_and_a_typical_value_inside_it(name: str) -> None:
    preset = preset_named(name)
    assert tuple(spec.name for spec in preset.parameters) == parameter_names()
    for spec in preset.parameters:
        assert spec.unit and spec.source and spec.meaning and spec.symbol
        assert isinstance(spec.status, SourceStatus)
        assert spec.lower <= spec.typical <= spec.upper
        assert spec.between_patient_variance >= 0


def test_stein_values_are_the_published_table() -> None:
    stein = preset_named("stein2019")
    published = {
        "car_t_fold_expansion": (3900, 2.4),
        "car_t_peak_day": (9.3, 0.38),
        "car_t_peak": (24_000, 0.65),
        "car_t_fast_decline_per_day": (0.16, 0.91),
        "car_t_memory_fraction": (0.0079, 0.80),
        "car_t_slow_decline_per_day": (0.0032, 0.86),
    }
    for name, (typical, variance) in published.items():
        spec = stein.spec(name)
        assert (spec.typical, spec.between_patient_variance, spec.status) == (typical, variance, SourceStatus.PUBLISHED)
    assert stein.car_t_unit == "copies/µg"
    assert stein.residual_sd_log["car_t"] == 0.56


def test_unknown_preset_and_parameter_are_typed_input_errors() -> None:
    with pytest.raises(UnknownPreset, match="sle-default, stein2019"):
        preset_named("tisa")
    with pytest.raises(UnknownParameter, match="car_t_pek"):
        preset_named("sle-default").with_typical({"car_t_pek": 3.0})
    assert issubclass(UnknownPreset, InvalidInput) and issubclass(ParameterOutOfRange, InvalidInput)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("car_t_peak_day", -1.0),
        ("car_t_memory_fraction", 1.5),
        ("car_t_fold_expansion", 0.5),
        ("antibody_half_life_days", math.nan),
        ("b_cells_baseline", math.inf),
        ("b_lineage_kill_rate", -0.1),
    ],
)
def test_a_value_outside_its_physical_range_is_refused_by_name(name: str, value: float) -> None:
    with pytest.raises(ParameterOutOfRange, match=name) as refused:
        preset_named("sle-default").with_typical({name: value})
    assert refused.value.parameter == name


def test_a_non_number_is_refused() -> None:
    with pytest.raises(ParameterOutOfRange, match="must be a number"):
        preset_named("sle-default").with_typical({"car_t_peak": "30"})  # type: ignore[dict-item]


def test_validate_patients_names_the_first_bad_parameter() -> None:
    preset = preset_named("sle-default")
    columns = {name: np.full(3, value) for name, value in preset.typical_values().items()}
    columns["car_t_peak_day"][1] = 500.0
    with pytest.raises(ParameterOutOfRange, match="car_t_peak_day"):
        validate_patients(preset, ModelParameters.from_columns(columns))


def test_sampling_in_chunks_draws_the_same_patients() -> None:
    preset = preset_named("sle-default")
    once = sample_patients(preset, 1000, np.random.default_rng(7))
    generator = np.random.default_rng(7)
    chunks = [sample_patients(preset, size, generator) for size in (300, 500, 200)]
    for name in parameter_names():
        np.testing.assert_array_equal(once.column(name), np.concatenate([chunk.column(name) for chunk in chunks]))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_sampled_patients_are_log_normal_around_the_typical_values(seed: int) -> None:
    preset = preset_named("sle-default")
    patients = sample_patients(preset, 4000, np.random.default_rng(seed))
    validate_patients(preset, patients)
    for spec in preset.parameters:
        values = patients.column(spec.name)
        if spec.between_patient_variance == 0:
            assert np.all(values == spec.typical)
            continue
        logs = np.log(values[(values > spec.lower) & (values < spec.upper)])
        # Median of a log-normal is the typical value; SD of the logs is ω (clipping is rare).
        assert np.median(logs) == pytest.approx(math.log(spec.typical), abs=0.1)
        assert np.std(logs) == pytest.approx(math.sqrt(spec.between_patient_variance), rel=0.1)
