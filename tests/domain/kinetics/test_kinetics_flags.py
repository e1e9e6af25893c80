"""Deviation flags: raised on the deviation they name, quiet on the expected course, None without data."""

from __future__ import annotations

import numpy as np
import pytest

from cartrial.domain.kinetics import Observation, assess_flags, preset_named, simulate_markers
from cartrial.domain.kinetics.assessment import population_for
from cartrial.domain.kinetics.cohort import CohortResult
from cartrial.domain.kinetics.flags import (
    anti_dsdna_rise_after_b_cell_return,
    anti_dsdna_slow_decline,
    car_t_peak_below_band,
    early_b_cell_return,
    no_b_cell_depletion_by_day_14,
    observed_b_cell_reappearance_day,
)
from cartrial.locale import render

SLE = preset_named("sle-default")
VISITS = [0.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0, 60.0, 90.0, 120.0, 180.0, 270.0, 365.0]


@pytest.fixture(scope="module")
def population() -> CohortResult:
    return population_for(SLE, patients=2000)


def car_t(day: float, value: float | None) -> Observation:
    return Observation("car_t", day, value, "cells/µL", 0.1)


def b_cells(day: float, value: float | None) -> Observation:
    return Observation("b_cells", day, value, "cells/µL", 1.0)


def anti_dsdna(day: float, value: float | None) -> Observation:
    return Observation("anti_dsdna", day, value, "IU/mL", 10.0)


def course(patient_changes: dict[str, float] | None = None) -> list[Observation]:
    """A subject following the preset's typical course (with changes), censored at the LoQs."""
    patient = SLE.with_typical(patient_changes or {}).typical_patient()
    simulated = simulate_markers(patient, VISITS)
    observations = []
    for make, marker, loq in ((car_t, "car_t", 0.1), (b_cells, "b_cells", 1.0), (anti_dsdna, "anti_dsdna", 10.0)):
        for index, day in enumerate(VISITS):
            value = float(simulated[marker][0, index])
            observations.append(make(day, value if value >= loq else None))
    return sorted(observations, key=lambda o: o.day)


def test_the_typical_course_raises_nothing(population: CohortResult) -> None:
    flags = assess_flags(course(), SLE, population.band, population.reappearance)
    assert [flag.code for flag in flags] == [
        "car_t_peak_below_band",
        "no_b_cell_depletion_by_day_14",
        "early_b_cell_return",
        "anti_dsdna_slow_decline",
        "anti_dsdna_rise_after_b_cell_return",
    ]
    assert [flag.raised for flag in flags] == [False] * 5


def test_poor_expansion_is_flagged(population: CohortResult) -> None:
    flag = car_t_peak_below_band([car_t(7, 0.05), car_t(10, 0.2), car_t(14, 0.1), car_t(21, None)], population.band)
    assert flag.raised is True and str(flag.message).endswith(": poor expansion.")
    assert render(flag.message, "fr").endswith(" : expansion insuffisante.")
    assert car_t_peak_below_band([b_cells(7, 3.0)], population.band).raised is None
    # A limit of quantification above the expected 5 % level cannot tell.
    high_limit = Observation("car_t", 10.0, None, "cells/µL", 50.0)
    assert car_t_peak_below_band([high_limit], population.band).raised is None


def test_no_depletion_by_day_14_is_flagged() -> None:
    assert no_b_cell_depletion_by_day_14([b_cells(7, 30.0), b_cells(14, 12.0)]).raised is True
    assert no_b_cell_depletion_by_day_14([b_cells(7, 30.0), b_cells(14, None)]).raised is False
    assert no_b_cell_depletion_by_day_14([b_cells(3, 30.0), b_cells(28, 12.0)]).raised is None
    unknown_depth = Observation("b_cells", 10.0, None, "cells/µL", 5.0)
    assert no_b_cell_depletion_by_day_14([unknown_depth]).raised is None


def test_early_b_cell_return_is_flagged(population: CohortResult) -> None:
    early = [b_cells(7, None), b_cells(14, None), b_cells(28, 6.0)]
    assert observed_b_cell_reappearance_day(early) == 28.0
    assert early_b_cell_return(early, population.reappearance).raised is True
    assert early_b_cell_return(course(), population.reappearance).raised is False
    assert early_b_cell_return([b_cells(7, None), b_cells(60, None)], population.reappearance).raised is False


def test_slow_anti_dsdna_decline_is_flagged() -> None:
    slow = [anti_dsdna(0, 300.0), anti_dsdna(28, 290.0), anti_dsdna(90, 270.0)]
    flag = anti_dsdna_slow_decline(slow, SLE)
    assert flag.raised is True and flag.evidence["day"] == 90.0
    assert anti_dsdna_slow_decline(course(), SLE).raised is False
    assert anti_dsdna_slow_decline([anti_dsdna(60, 100.0)], SLE).raised is None


def test_rise_after_b_cell_return_is_flagged() -> None:
    relapse = course({"regenerated_autoreactivity": 1.0})
    flag = anti_dsdna_rise_after_b_cell_return(relapse)
    assert flag.raised is True and str(flag.message).endswith(": possible relapse.")
    assert render(flag.message, "fr").endswith(" : rechute possible.")
    assert anti_dsdna_rise_after_b_cell_return(course()).raised is False
    not_back = [b_cells(14, None), anti_dsdna(0, 200.0), anti_dsdna(90, 40.0)]
    assert anti_dsdna_rise_after_b_cell_return(not_back).raised is None


def test_flag_evidence_is_numeric(population: CohortResult) -> None:
    for flag in assess_flags(
        course({"regenerated_autoreactivity": 1.0}), SLE, population.band, population.reappearance
    ):
        assert all(isinstance(value, float) and np.isfinite(value) for value in flag.evidence.values())
