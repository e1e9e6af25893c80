"""Expected biology after CD19 CAR-T in SLE: Tier-1 kinetics model, virtual cohorts, fits, flags.

Spec: the project's kinetics.md §4 (Tier 1). Pure NumPy/SciPy, no Django, no I/O. Adapters
call `preset_named`, then `simulate_markers` (one or a few patients), `simulate_cohort`
(population bands) or `assess_subject` (one subject's fit, band and flags).
"""

from cartrial.domain.kinetics.assessment import (
    SubjectAssessment,
    assess_subject,
    assessment_document,
    band_document,
    flag_document,
    population_document,
    population_for,
)
from cartrial.domain.kinetics.cohort import Band, CohortResult, ReappearanceSummary, output_day_grid, simulate_cohort
from cartrial.domain.kinetics.errors import (
    InvalidObservation,
    InvalidSimulationRequest,
    KineticsInputError,
    ParameterOutOfRange,
    UnknownParameter,
    UnknownPreset,
)
from cartrial.domain.kinetics.fitting import FitResult, fit_subject
from cartrial.domain.kinetics.flags import Flag, assess_flags
from cartrial.domain.kinetics.observations import OBSERVED_MARKERS, Observation, parse_observations
from cartrial.domain.kinetics.parameters import PRESETS, ModelParameters, ParameterSpec, Preset, preset_named
from cartrial.domain.kinetics.simulation import MARKERS, marker_units, simulate_markers

__all__ = [
    "MARKERS",
    "OBSERVED_MARKERS",
    "PRESETS",
    "Band",
    "CohortResult",
    "FitResult",
    "Flag",
    "InvalidObservation",
    "InvalidSimulationRequest",
    "KineticsInputError",
    "ModelParameters",
    "Observation",
    "ParameterOutOfRange",
    "ParameterSpec",
    "Preset",
    "ReappearanceSummary",
    "SubjectAssessment",
    "UnknownParameter",
    "UnknownPreset",
    "assess_flags",
    "assess_subject",
    "assessment_document",
    "band_document",
    "fit_subject",
    "flag_document",
    "marker_units",
    "output_day_grid",
    "parse_observations",
    "population_document",
    "population_for",
    "preset_named",
    "simulate_cohort",
    "simulate_markers",
]
