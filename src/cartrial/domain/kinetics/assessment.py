"""One subject against the expected biology: individual fit, its band, and the deviation flags.

This is the entry point for adapters (CLI `cartrial model fit`, a subject's web page): give the
subject's observations, get one `SubjectAssessment`, render `assessment_document` as JSON.
The flags that compare with "what is expected" use a virtual cohort of the same preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cartrial.domain.kinetics.cohort import Band, CohortResult, output_day_grid, simulate_cohort
from cartrial.domain.kinetics.fitting import BAND_HORIZON_DAYS, FitResult, fit_subject
from cartrial.domain.kinetics.flags import Flag, assess_flags
from cartrial.domain.kinetics.observations import Observation, parse_observations
from cartrial.domain.kinetics.parameters import Preset

# Size of the reference cohort behind the flags: its 5 % quantiles move by ~2 % between seeds.
POPULATION_PATIENTS = 4000


@dataclass(frozen=True)
class SubjectAssessment:
    """Fit, flags and the population the subject was compared with."""

    preset: str
    observations: tuple[Observation, ...]
    fit: FitResult
    flags: tuple[Flag, ...]
    population: CohortResult


def population_for(
    preset: Preset, *, horizon_days: float = BAND_HORIZON_DAYS, patients: int = POPULATION_PATIENTS, seed: int = 0
) -> CohortResult:
    """The reference virtual cohort of a preset (daily bands up to the horizon)."""
    return simulate_cohort(preset, patients=patients, days=output_day_grid(horizon_days), seed=seed)


def assess_subject(
    records: Sequence[Mapping[str, object]],
    preset: Preset,
    *,
    population: CohortResult | None = None,
    seed: int = 0,
) -> SubjectAssessment:
    """Validate raw observation records, fit them, and raise the flags.

    Records are mappings with marker, day, value, unit and loq (strings or numbers, as read
    from a CSV row or a form). Pass a precomputed `population` to avoid simulating it again.
    """
    observations = parse_observations(records, preset)
    last_day = max(observation.day for observation in observations)
    horizon = max(BAND_HORIZON_DAYS, math.ceil(last_day))
    reference = population or population_for(preset, horizon_days=horizon, seed=seed)
    fit = fit_subject(observations, preset, band_days=reference.band.days, seed=seed)
    flags = assess_flags(observations, preset, reference.band, reference.reappearance)
    return SubjectAssessment(preset.name, observations, fit, flags, reference)


def band_document(band: Band) -> dict[str, object]:
    """A band as JSON: its days, quantiles and, per marker, its unit and one list per quantile (`p05`...)."""
    return {
        "days": band.days.tolist(),
        "quantiles": list(band.quantiles),
        "markers": {
            marker: {
                "unit": band.units[marker],
                **{f"p{round(q * 100):02d}": band.values[marker][i].tolist() for i, q in enumerate(band.quantiles)},
            }
            for marker in band.markers
        },
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def flag_document(flag: Flag) -> dict[str, object]:
    """A flag as JSON: its code, whether raised (None: cannot tell), its message and evidence."""
    return {
        "code": flag.code,
        "raised": flag.raised,
        "message": str(flag.message),
        "evidence": {key: _finite_or_none(value) for key, value in flag.evidence.items()},
    }


def population_document(population: CohortResult) -> dict[str, object]:
    """A reference cohort's summary as JSON: its size, seed and B-cell reappearance days."""
    reappearance = population.reappearance
    return {
        "patients": population.patients,
        "seed": population.seed,
        "b_cell_reappearance_days": {
            "threshold_cells_per_ul": reappearance.threshold_cells_per_ul,
            "mean": _finite_or_none(reappearance.mean_days),
            "sd": _finite_or_none(reappearance.sd_days),
            **{f"p{round(q * 100):02d}": _finite_or_none(v) for q, v in reappearance.quantile_days.items()},
        },
    }


def assessment_document(assessment: SubjectAssessment) -> dict[str, object]:
    """A JSON-ready view (plain dicts, lists, floats, None for non-finite numbers)."""
    fit = assessment.fit
    return {
        "preset": assessment.preset,
        "observations": len(assessment.observations),
        "fit": {
            "converged": fit.converged,
            "message": fit.message,
            "evaluations": fit.evaluations,
            "negative_log_posterior": _finite_or_none(fit.negative_log_posterior),
            "fitted": list(fit.fitted),
            "parameters": {name: _finite_or_none(value) for name, value in fit.parameters.items()},
            "log_standard_errors": fit.log_standard_errors,
            "expected": None
            if fit.expected is None
            else {marker: np.asarray(values).tolist() for marker, values in fit.expected.items()},
            "band": None if fit.band is None else band_document(fit.band),
        },
        "flags": [flag_document(flag) for flag in assessment.flags],
        "population": population_document(assessment.population),
    }
