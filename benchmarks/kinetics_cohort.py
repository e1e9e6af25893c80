"""Kinetics benchmark: vectorized virtual cohort vs patient-by-patient solve_ivp, fit time, memory.

Run from the project root:  .venv/bin/python benchmarks/kinetics_cohort.py
Prints, side by side: the wall time of 100 000 virtual patients × 365 days (target ≤ 10 s),
the same model integrated patient by patient with scipy's solve_ivp on a sample (extrapolated
to 100 000 patients, and said so), the speed-up (target ≥ 100×), the time of one individual
fit (target ≤ 1 s), and the peak traced memory of 100 000 vs 1 000 000 patients (chunking
should keep them equal). Takes about two minutes; the 1 000 000-patient run dominates.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np
import scipy

from cartrial.domain.kinetics import Observation, fit_subject, preset_named, simulate_cohort, simulate_markers
from cartrial.domain.kinetics.cohort import DEFAULT_CHUNK_PATIENTS, output_day_grid
from cartrial.domain.kinetics.observations import observed_units
from cartrial.domain.kinetics.parameters import sample_patients
from cartrial.domain.kinetics.reference import solve_patient

PRESET = preset_named("sle-default")
DAYS = output_day_grid(365.0)
COHORT_PATIENTS = 100_000
LARGE_COHORT_PATIENTS = 1_000_000
VISITS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 120, 180, 270, 365.0])
LIMITS_OF_QUANTIFICATION = {"car_t": 0.1, "b_cells": 1.0, "anti_dsdna": 10.0}
# solve_ivp settings compared: LSODA was the fastest of LSODA, BDF and Radau on this model.
REFERENCE_SETTINGS = (("LSODA", 1e-6, 1e-10), ("LSODA", 1e-4, 1e-8))


def time_cohort(patients: int) -> float:
    started = time.perf_counter()
    simulate_cohort(PRESET, patients=patients, days=DAYS, seed=1)
    return time.perf_counter() - started


def time_reference(sample: int, method: str, relative: float, absolute: float) -> float:
    """Mean seconds per patient of solve_ivp on `sample` patients of the same preset."""
    patients = sample_patients(PRESET, sample, np.random.default_rng(1))
    started = time.perf_counter()
    for patient in range(sample):
        solve_patient(patients, patient, DAYS, relative_tolerance=relative, absolute_tolerance=absolute, method=method)
    return (time.perf_counter() - started) / sample


def subject_observations(seed: int) -> list[Observation]:
    """A virtual subject seen at routine visits, with the preset's residual noise and LoQs."""
    rng = np.random.default_rng(seed)
    truth = sample_patients(PRESET, 1, rng)
    simulated = simulate_markers(truth, VISITS)
    units = observed_units(PRESET)
    observations = []
    for marker, loq in LIMITS_OF_QUANTIFICATION.items():
        for index, day in enumerate(VISITS):
            value = float(simulated[marker][0, index] * np.exp(PRESET.residual_sd_log[marker] * rng.standard_normal()))
            observations.append(Observation(marker, float(day), value if value >= loq else None, units[marker], loq))
    return observations


def time_fits(subjects: int) -> tuple[list[float], int]:
    times, converged = [], 0
    for seed in range(subjects):
        observations = subject_observations(seed)
        started = time.perf_counter()
        fit = fit_subject(observations, PRESET)
        times.append(time.perf_counter() - started)
        converged += fit.converged
    return times, converged


def peak_traced_megabytes(patients: int) -> float:
    tracemalloc.start()
    simulate_cohort(PRESET, patients=patients, days=DAYS, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-sample", type=int, default=20, help="patients integrated with solve_ivp")
    parser.add_argument("--fits", type=int, default=10, help="virtual subjects fitted")
    arguments = parser.parse_args()

    print("Kinetics benchmark (benchmarks/kinetics_cohort.py)")
    print(
        f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    )
    print(f"  model: preset {PRESET.name}, {DAYS.size} output days (0-365), chunks of {DEFAULT_CHUNK_PATIENTS}")
    print()

    vectorized = time_cohort(COHORT_PATIENTS)
    per_patient_vectorized = vectorized / COHORT_PATIENTS
    print(f"{'':44}{'measured':>14}{'per patient':>14}{'100 000 patients':>20}")
    print(
        f"{'vectorized cohort (bands + reappearance)':44}{vectorized:>12.2f} s"
        f"{per_patient_vectorized * 1e6:>11.1f} µs{vectorized:>18.2f} s"
    )
    for method, relative, absolute in REFERENCE_SETTINGS:
        per_patient = time_reference(arguments.reference_sample, method, relative, absolute)
        extrapolated = per_patient * COHORT_PATIENTS
        label = f"solve_ivp {method} rtol {relative:g} atol {absolute:g}"
        print(
            f"{label:44}{per_patient * arguments.reference_sample:>12.2f} s{per_patient * 1e3:>11.1f} ms"
            f"{extrapolated:>16.0f} s *"
        )
        print(f"{'  speed-up of the vectorized cohort':44}{extrapolated / vectorized:>13.0f}×")
    print(
        f"  * extrapolated: {arguments.reference_sample} patients integrated one by one, "
        f"time per patient × {COHORT_PATIENTS:,}"
    )
    print()

    times, converged = time_fits(arguments.fits)
    print(
        f"individual fit ({arguments.fits} virtual subjects, 14 visits × 3 markers, band included): "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s, {converged}/{arguments.fits} converged"
    )
    print()

    small = peak_traced_megabytes(COHORT_PATIENTS)
    large = peak_traced_megabytes(LARGE_COHORT_PATIENTS)
    print(f"peak traced memory (tracemalloc), {DAYS.size} days:")
    print(f"  {COHORT_PATIENTS:>9,} patients: {small:8.1f} MB")
    print(f"  {LARGE_COHORT_PATIENTS:>9,} patients: {large:8.1f} MB  (ratio {large / small:.2f})")


if __name__ == "__main__":
    main()
