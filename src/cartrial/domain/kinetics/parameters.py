"""Tier-1 parameter table: units, typical values, between-patient variability, ranges, sources.

Source: the project's research note kinetics.md §2.1 (Stein et al. 2019, CPT Pharmacometrics
Syst Pharmacol 8:285, doi:10.1002/psp4.12388, Table 1) and §4.2 (SLE priors). Status tags are
those of the note: "pub" printed in the cited source, "derived" computed from published values,
"prior" chosen by us for SLE and to be re-estimated from trial data, "verify" recalled only.

Every positive parameter varies between patients log-normally: θ_i = θ_typical · exp(ω·z),
z ~ N(0, 1), ω² the variance on the log scale (0 = same value for everyone). A value outside
its physical range is refused with `ParameterOutOfRange`; sampled values are clipped to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from cartrial.domain.kinetics.errors import ParameterOutOfRange, UnknownParameter, UnknownPreset

FloatArray = npt.NDArray[np.float64]


class SourceStatus(StrEnum):
    """How sure a number is; mirrors the tags of kinetics.md."""

    PUBLISHED = "pub"
    DERIVED = "derived"
    PRIOR = "prior"
    VERIFY = "verify"


# --- Numbers the note tags as uncertain, each defined once -----------------------------------

# kinetics.md §4.2: "SLE peak ≈ day 7-10 [verify]"; clinical.md §5.1 "around day 9" [R]/[U].
SLE_CAR_T_PEAK_DAY_PRIOR = 9.0
# kinetics.md §4.2 [prior]: ZUMA-1 day-7 median 27.5 cells/µL (Kimmel 2021); SLE ≈ B-NHL.
SLE_CAR_T_PEAK_CELLS_PER_UL_PRIOR = 30.0
# kinetics.md §4.2 [prior]: scaled from Kimmel's 0.36 cells/µL for 2×10⁶/kg axi-cel.
SLE_CAR_T_INITIAL_CELLS_PER_UL_PRIOR = 0.2
# kinetics.md §4.2 [prior]: SLE persistence shorter than B-ALL (Müller, Blood 2025).
SLE_CAR_T_SLOW_DECLINE_PER_DAY_PRIOR = 0.02
# kinetics.md §4.2 [prior]: "0.3-0.5 for PD params"; we take the lower end for every PD rate.
PD_BETWEEN_PATIENT_VARIANCE_PRIOR = 0.3
# kinetics.md §8: f_L "is the main individual parameter for the antibody floor"; wider prior.
LLPC_FRACTION_BETWEEN_PATIENT_VARIANCE_PRIOR = 0.5
# kinetics.md §4.2: CAR-T killing of CD19+ cells, [prior] "chosen so the typical run reproduces
# SLE B-cell recovery". Calibrated: with it the sle-default virtual cohort's mean B-cell
# reappearance is 111 days (Mackensen 2022: 110 ± 32), the typical patient's 88 days.
SLE_B_LINEAGE_KILL_RATE_UL_PER_CELL_DAY = 2.0
# kinetics.md §4.2 says to start from Stein's ω² (paediatric B-ALL, tumour burden over orders of
# magnitude). In SLE the only antigen is the (lymphodepleted) normal B-cell pool and persistence
# is "consistently shorter" (Müller, Blood 2025), so we halve Stein's log-scale SDs (ω² × 0.25)
# [prior]. Calibrated: the cohort SD of B-cell reappearance is then 64 days, inside the 95 %
# confidence intervals of the published SDs (Mackensen 32 d, n = 5: 19-92; Müller 47 d, n = 15:
# 34-74); with Stein's full ω² it is ~150 days.
SLE_CAR_T_VARIANCE_SCALE = 0.25
# kinetics.md §3: IgG half-life ≈ 21 days, textbook range 18-23 days. Read as a 90 % interval of
# a log-normal, ω = ln(23/18) / (2 × 1.645) [derived].
IGG_HALF_LIFE_DAYS = 21.0
IGG_HALF_LIFE_BETWEEN_PATIENT_VARIANCE = (math.log(23.0 / 18.0) / (2 * 1.645)) ** 2
# Baselines are measured per patient; these population priors only matter when a subject has
# no early observation. clinical.md §6: CD19+ B cells ~100-500 cells/µL; anti-dsDNA positive at
# ≥ 30 IU/mL in most trials, refractory SLE titres are often several-fold higher.
SLE_B_CELLS_BASELINE_CELLS_PER_UL_PRIOR = 150.0
SLE_ANTI_DSDNA_BASELINE_IU_PER_ML_PRIOR = 200.0
# Inflammation marker (normalised activity, indirect response) §4.1, "to fit per marker" [prior].
# A50 ≫ 1 makes the activity nearly proportional to the autoantibody; I_min = 0 is full remission
# (Mackensen 2022: SLEDAI-2K median 0 at 3 months); turnover half-life 7 days. Chosen so the
# typical patient is in the remission range (`published.py`) by day 90.
INFLAMMATION_TURNOVER_PER_DAY_PRIOR = 0.1
INFLAMMATION_HALF_EFFECT_FRACTION_PRIOR = 10.0
INFLAMMATION_FLOOR_FRACTION_PRIOR = 0.0

STEIN_2019 = "Stein 2019, CPT Pharmacometrics Syst Pharmacol 8:285, Table 1"


@dataclass(frozen=True)
class ParameterSpec:
    """One row of the parameter table; `between_patient_variance` is ω² on the log scale."""

    name: str
    symbol: str
    meaning: str
    unit: str
    typical: float
    between_patient_variance: float
    lower: float
    upper: float
    source: str
    status: SourceStatus

    def check(self, value: float) -> float:
        """Return the value if it lies in the physical range, else refuse it by name."""
        if not math.isfinite(value) or not self.lower <= value <= self.upper:
            raise ParameterOutOfRange(
                "{name} = {value} {unit} is outside its physical range [{lower}, {upper}] {unit}.",
                parameter=self.name,
                name=self.name,
                value=value,
                unit=self.unit,
                lower=self.lower,
                upper=self.upper,
            )
        return value


@dataclass(frozen=True)
class ModelParameters:
    """Parameters of N patients, one float64 array of shape (N,) per parameter (table order)."""

    car_t_fold_expansion: FloatArray
    car_t_peak: FloatArray
    car_t_peak_day: FloatArray
    car_t_fast_decline_per_day: FloatArray
    car_t_memory_fraction: FloatArray
    car_t_slow_decline_per_day: FloatArray
    b_lineage_kill_rate: FloatArray
    plasmablast_kill_ratio: FloatArray
    precursor_transit_days: FloatArray
    b_cell_turnover_per_day: FloatArray
    lymphodepletion_b_fraction: FloatArray
    b_cells_baseline: FloatArray
    plasmablast_turnover_per_day: FloatArray
    regenerated_autoreactivity: FloatArray
    llpc_antibody_fraction: FloatArray
    llpc_loss_per_day: FloatArray
    antibody_half_life_days: FloatArray
    anti_dsdna_baseline: FloatArray
    inflammation_turnover_per_day: FloatArray
    inflammation_half_effect_fraction: FloatArray
    inflammation_floor_fraction: FloatArray

    @classmethod
    def from_columns(cls, columns: Mapping[str, npt.ArrayLike]) -> ModelParameters:
        """Build from a name → values mapping holding exactly the table's names."""
        names = parameter_names()
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise UnknownParameter("Unknown kinetics parameter(s): {names}.", names=unknown)
        missing = [name for name in names if name not in columns]
        if missing:
            raise UnknownParameter("Missing kinetics parameter(s): {names}.", names=missing)
        arrays = {name: np.atleast_1d(np.asarray(columns[name], dtype=np.float64)) for name in names}
        sizes = {array.shape for array in arrays.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ParameterOutOfRange(
                "Every parameter needs one value per patient (same 1-D length).",
                parameter=names[0],
            )
        return cls(**arrays)

    @property
    def patient_count(self) -> int:
        """Number of patients N."""
        return int(self.car_t_peak.shape[0])

    def column(self, name: str) -> FloatArray:
        """The (N,) array of one parameter, by table name."""
        if name not in parameter_names():
            raise UnknownParameter("Unknown kinetics parameter: {name}.", item=name, name=name)
        value: FloatArray = getattr(self, name)
        return value

    def as_columns(self) -> dict[str, FloatArray]:
        """Name → (N,) array, in table order."""
        return {name: self.column(name) for name in parameter_names()}

    def subset(self, index: slice | npt.NDArray[np.intp]) -> ModelParameters:
        """The same parameters for a subset of patients."""
        return ModelParameters(**{name: array[index] for name, array in self.as_columns().items()})


def parameter_names() -> tuple[str, ...]:
    """Stable parameter identifiers, in table order."""
    return tuple(field.name for field in fields(ModelParameters))


@dataclass(frozen=True)
class Preset:
    """A named parameter table plus the observation model (units and residual error)."""

    name: str
    description: str
    car_t_unit: str
    parameters: tuple[ParameterSpec, ...]
    residual_sd_log: Mapping[str, float]
    residual_sd_source: str

    def spec(self, name: str) -> ParameterSpec:
        """The table row of one parameter."""
        for spec in self.parameters:
            if spec.name == name:
                return spec
        raise UnknownParameter("Preset {preset} has no parameter '{name}'.", item=name, preset=self.name, name=name)

    def typical_values(self) -> dict[str, float]:
        """Name → typical value."""
        return {spec.name: spec.typical for spec in self.parameters}

    def typical_patient(self) -> ModelParameters:
        """The typical patient (no between-patient variability) as a batch of one."""
        return ModelParameters.from_columns({name: [value] for name, value in self.typical_values().items()})

    def with_typical(self, overrides: Mapping[str, float]) -> Preset:
        """A copy whose typical values are replaced; unknown names and out-of-range values fail."""
        by_name = {spec.name: spec for spec in self.parameters}
        unknown = sorted(set(overrides) - set(by_name))
        if unknown:
            raise UnknownParameter(
                "Unknown kinetics parameter(s) for preset {preset}: {names}.", preset=self.name, names=unknown
            )
        for name, value in overrides.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterOutOfRange(
                    "{name} must be a number, got {value}.", parameter=name, name=name, value=repr(value)
                )
            by_name[name] = replace(by_name[name], typical=by_name[name].check(float(value)))
        return replace(self, parameters=tuple(by_name[spec.name] for spec in self.parameters))

    def with_variance(self, variances: Mapping[str, float]) -> Preset:
        """A copy with other between-patient variances ω² (e.g. zero to fix a parameter)."""
        by_name = {spec.name: spec for spec in self.parameters}
        for name, variance in variances.items():
            if name not in by_name:
                raise UnknownParameter(
                    "Preset {preset} has no parameter '{name}'.", item=name, preset=self.name, name=name
                )
            if not math.isfinite(variance) or variance < 0:
                raise ParameterOutOfRange(
                    "The between-patient variance of {name} must be ≥ 0, got {value}.",
                    parameter=name,
                    name=name,
                    value=variance,
                )
            by_name[name] = replace(by_name[name], between_patient_variance=variance)
        return replace(self, parameters=tuple(by_name[spec.name] for spec in self.parameters))


def sample_patients(preset: Preset, count: int, rng: np.random.Generator) -> ModelParameters:
    """Draw `count` virtual patients; one (count, P) block of normals per call.

    Drawing n₁ then n₂ patients from one generator gives the same patients as drawing n₁ + n₂
    at once, so a chunked cohort equals an unchunked one for the same seed.
    """
    standard_normals = rng.standard_normal((count, len(preset.parameters)))
    columns: dict[str, FloatArray] = {}
    for index, spec in enumerate(preset.parameters):
        deviation = math.sqrt(spec.between_patient_variance) * standard_normals[:, index]
        values = spec.typical * np.exp(deviation)
        columns[spec.name] = np.clip(values, spec.lower, spec.upper)
    return ModelParameters.from_columns(columns)


def validate_patients(preset: Preset, parameters: ModelParameters) -> None:
    """Refuse any patient whose parameter lies outside its physical range."""
    for spec in preset.parameters:
        values = parameters.column(spec.name)
        bad = ~np.isfinite(values) | (values < spec.lower) | (values > spec.upper)
        if bool(bad.any()):
            spec.check(float(values[int(np.argmax(bad))]))


def _spec(
    name: str,
    symbol: str,
    meaning: str,
    unit: str,
    typical: float,
    variance: float,
    bounds: tuple[float, float],
    source: str,
    status: SourceStatus,
) -> ParameterSpec:
    spec = ParameterSpec(
        name=name,
        symbol=symbol,
        meaning=meaning,
        unit=unit,
        typical=typical,
        between_patient_variance=variance,
        lower=bounds[0],
        upper=bounds[1],
        source=source,
        status=status,
    )
    spec.check(typical)
    return spec


def _b_lineage_and_antibody_specs(
    *, kill_rate: float, kill_rate_unit: str, kill_rate_source: str
) -> tuple[ParameterSpec, ...]:
    """The PD cascade of kinetics.md §4.1, shared by both presets (only κ's unit differs)."""
    pd = PD_BETWEEN_PATIENT_VARIANCE_PRIOR
    prior = SourceStatus.PRIOR
    return (
        _spec(
            "b_lineage_kill_rate",
            "κ",
            "CAR-T killing of CD19+ B-lineage cells",
            kill_rate_unit,
            kill_rate,
            pd,
            (0.0, 1e3),
            kill_rate_source,
            prior,
        ),
        _spec(
            "plasmablast_kill_ratio",
            "κ_S/κ",
            "killing of CD19+ plasmablasts relative to κ",
            "1",
            0.5,
            pd,
            (0.0, 10.0),
            "kinetics.md §4.2 [prior]",
            prior,
        ),
        _spec(
            "precursor_transit_days",
            "MTT",
            "mean transit through the 3 marrow CD19+ stages",
            "day",
            30.0,
            pd,
            (1.0, 365.0),
            "kinetics.md §4.2 [prior]",
            prior,
        ),
        _spec(
            "b_cell_turnover_per_day",
            "δ_B",
            "peripheral B-cell turnover",
            "1/day",
            0.02,
            pd,
            (1e-4, 1.0),
            "Macallan 2005 Blood 105:3633: 1.9 %/day; León-Triana 2020 τ_B 60 d",
            SourceStatus.PUBLISHED,
        ),
        _spec(
            "lymphodepletion_b_fraction",
            "f_LD",
            "B-lineage fraction left after Flu/Cy",
            "1",
            0.05,
            pd,
            (1e-6, 1.0),
            "kinetics.md §4.2 [prior]",
            prior,
        ),
        _spec(
            "b_cells_baseline",
            "B_pre",
            "CD19+ B cells before lymphodepletion",
            "cells/µL",
            SLE_B_CELLS_BASELINE_CELLS_PER_UL_PRIOR,
            0.5,
            (0.01, 5000.0),
            "measured per patient; prior from clinical.md §6 reference range",
            prior,
        ),
        _spec(
            "plasmablast_turnover_per_day",
            "δ_S",
            "plasmablast / short-lived PC turnover",
            "1/day",
            0.2,
            pd,
            (1e-3, 10.0),
            "kinetics.md §4.2 [prior] (lifetime days)",
            prior,
        ),
        _spec(
            "regenerated_autoreactivity",
            "φ",
            "autoreactivity of regenerated B cells relative to baseline (0 = reset)",
            "1",
            0.0,
            0.0,
            (0.0, 10.0),
            "kinetics.md §4.2 [prior]; φ > 0 is the relapse hypothesis",
            prior,
        ),
        _spec(
            "llpc_antibody_fraction",
            "f_L",
            "share of the autoantibody made by CD19− LLPCs",
            "1",
            0.15,
            LLPC_FRACTION_BETWEEN_PATIENT_VARIANCE_PRIOR,
            (0.0, 1.0),
            "kinetics.md §4.2 [prior] (anti-dsDNA)",
            prior,
        ),
        _spec(
            "llpc_loss_per_day",
            "δ_L",
            "long-lived plasma-cell loss",
            "1/day",
            0.0,
            0.0,
            (0.0, 1.0 / 365.0),
            "kinetics.md §4.2 [prior] (≤ 1/3650)",
            prior,
        ),
        _spec(
            "antibody_half_life_days",
            "t½_A",
            "IgG autoantibody half-life",
            "day",
            IGG_HALF_LIFE_DAYS,
            IGG_HALF_LIFE_BETWEEN_PATIENT_VARIANCE,
            (3.0, 60.0),
            "textbook IgG 21 d (18-23 d), kinetics.md §3",
            SourceStatus.PUBLISHED,
        ),
        _spec(
            "anti_dsdna_baseline",
            "A_pre",
            "anti-dsDNA before infusion",
            "IU/mL",
            SLE_ANTI_DSDNA_BASELINE_IU_PER_ML_PRIOR,
            1.0,
            (0.01, 1e6),
            "measured per patient; prior from clinical.md §6 cut-off 30 IU/mL",
            prior,
        ),
        _spec(
            "inflammation_turnover_per_day",
            "k_out",
            "turnover of the inflammation marker",
            "1/day",
            INFLAMMATION_TURNOVER_PER_DAY_PRIOR,
            pd,
            (1e-3, 10.0),
            "kinetics.md §4.2 [prior] (to fit per marker)",
            prior,
        ),
        _spec(
            "inflammation_half_effect_fraction",
            "A50",
            "antibody fraction giving half the inflammation effect",
            "1",
            INFLAMMATION_HALF_EFFECT_FRACTION_PRIOR,
            pd,
            (1e-3, 1e3),
            "kinetics.md §4.2 [prior] (to fit per marker)",
            prior,
        ),
        _spec(
            "inflammation_floor_fraction",
            "I_min",
            "inflammation marker in full remission",
            "1",
            INFLAMMATION_FLOOR_FRACTION_PRIOR,
            0.0,
            (0.0, 1.0),
            "kinetics.md §4.2 [prior] (to fit per marker)",
            prior,
        ),
    )


def _stein2019() -> Preset:
    pub = SourceStatus.PUBLISHED
    # Same kill rate at the peak (κ·Cmax) as sle-default, so the PD cascade stays comparable
    # when the CAR-T curve is expressed in qPCR copies/µg.
    stein_peak = 24_000.0
    kill_rate = SLE_B_LINEAGE_KILL_RATE_UL_PER_CELL_DAY * SLE_CAR_T_PEAK_CELLS_PER_UL_PRIOR / stein_peak
    car_t = (
        _spec(
            "car_t_fold_expansion",
            "foldx",
            "fold expansion from infusion to peak",
            "1",
            3900.0,
            2.4,
            (1.0, 1e7),
            STEIN_2019,
            pub,
        ),
        _spec(
            "car_t_peak",
            "Cmax",
            "peak CAR transgene level",
            "copies/µg",
            stein_peak,
            0.65,
            (1e-6, 1e8),
            STEIN_2019,
            pub,
        ),
        _spec("car_t_peak_day", "Tmax", "time of the peak", "day", 9.3, 0.38, (0.25, 120.0), STEIN_2019, pub),
        _spec(
            "car_t_fast_decline_per_day",
            "α",
            "fast (effector) decline",
            "1/day",
            0.16,
            0.91,
            (1e-3, 10.0),
            STEIN_2019,
            pub,
        ),
        _spec(
            "car_t_memory_fraction",
            "FB",
            "fraction entering the slow phase",
            "1",
            0.0079,
            0.80,
            (0.0, 1.0),
            STEIN_2019,
            pub,
        ),
        _spec(
            "car_t_slow_decline_per_day",
            "β",
            "slow (memory) decline",
            "1/day",
            0.0032,
            0.86,
            (0.0, 1.0),
            STEIN_2019,
            pub,
        ),
    )
    return Preset(
        name="stein2019",
        description="Tisagenlecleucel typical profile in r/r B-ALL (Stein 2019), copies/µg.",
        car_t_unit="copies/µg",
        parameters=car_t
        + _b_lineage_and_antibody_specs(
            kill_rate=kill_rate,
            kill_rate_unit="µg/(copy·day)",
            kill_rate_source="derived: same κ·Cmax as sle-default (no published PD in Stein 2019)",
        ),
        residual_sd_log=MappingProxyType(_residual_sd_log(car_t_sd=0.56)),
        residual_sd_source="CAR-T 0.56 Stein 2019 [pub]; others kinetics.md §4.2 [prior]",
    )


def _sle_default() -> Preset:
    prior = SourceStatus.PRIOR
    pub = SourceStatus.PUBLISHED
    fold = SLE_CAR_T_PEAK_CELLS_PER_UL_PRIOR / SLE_CAR_T_INITIAL_CELLS_PER_UL_PRIOR
    scale = SLE_CAR_T_VARIANCE_SCALE
    car_t = (
        _spec(
            "car_t_fold_expansion",
            "Cmax/C0",
            "fold expansion from infusion to peak",
            "1",
            fold,
            2.4 * scale,
            (1.0, 1e7),
            "derived: Cmax 30 / C0 0.2 cells/µL priors; ω² Stein 2019 × 0.25",
            SourceStatus.DERIVED,
        ),
        _spec(
            "car_t_peak",
            "Cmax",
            "peak CAR-T in blood",
            "cells/µL",
            SLE_CAR_T_PEAK_CELLS_PER_UL_PRIOR,
            0.65 * scale,
            (1e-6, 1e5),
            "kinetics.md §4.2 [prior]; ω² Stein 2019 × 0.25",
            prior,
        ),
        _spec(
            "car_t_peak_day",
            "Tmax",
            "time of the peak",
            "day",
            SLE_CAR_T_PEAK_DAY_PRIOR,
            0.38 * scale,
            (0.25, 120.0),
            "kinetics.md §4.2 [prior, verify]; ω² Stein 2019 × 0.25",
            SourceStatus.VERIFY,
        ),
        _spec(
            "car_t_fast_decline_per_day",
            "α",
            "fast (effector) contraction",
            "1/day",
            0.16,
            0.91 * scale,
            (1e-3, 10.0),
            f"{STEIN_2019}; ω² × 0.25",
            pub,
        ),
        _spec(
            "car_t_memory_fraction",
            "F_M",
            "fraction persisting in the slow phase",
            "1",
            0.01,
            0.80 * scale,
            (0.0, 1.0),
            "kinetics.md §4.2 (Stein FB 0.0079 [pub]); ω² × 0.25",
            prior,
        ),
        _spec(
            "car_t_slow_decline_per_day",
            "β",
            "slow decline (shorter persistence in SLE)",
            "1/day",
            SLE_CAR_T_SLOW_DECLINE_PER_DAY_PRIOR,
            0.86 * scale,
            (0.0, 1.0),
            "kinetics.md §4.2 [prior]; ω² Stein 2019 × 0.25",
            prior,
        ),
    )
    return Preset(
        name="sle-default",
        description="SLE priors of kinetics.md §4.2: CAR-T in cells/µL, B cells, anti-dsDNA.",
        car_t_unit="cells/µL",
        parameters=car_t
        + _b_lineage_and_antibody_specs(
            kill_rate=SLE_B_LINEAGE_KILL_RATE_UL_PER_CELL_DAY,
            kill_rate_unit="µL/(cell·day)",
            kill_rate_source="kinetics.md §4.2 [prior], calibrated to Mackensen 2022 B-cell return",
        ),
        residual_sd_log=MappingProxyType(_residual_sd_log(car_t_sd=0.56)),
        residual_sd_source="CAR-T 0.56 Stein 2019 [pub]; others kinetics.md §4.2 [prior]",
    )


# kinetics.md §4.2 "residual: B cells, antibodies: estimate" — these are our [prior] values.
B_CELLS_RESIDUAL_SD_LOG_PRIOR = 0.3
ANTI_DSDNA_RESIDUAL_SD_LOG_PRIOR = 0.2


def _residual_sd_log(*, car_t_sd: float) -> dict[str, float]:
    return {
        "car_t": car_t_sd,
        "b_cells": B_CELLS_RESIDUAL_SD_LOG_PRIOR,
        "anti_dsdna": ANTI_DSDNA_RESIDUAL_SD_LOG_PRIOR,
    }


PRESETS: Mapping[str, Preset] = MappingProxyType({preset.name: preset for preset in (_stein2019(), _sle_default())})


def preset_named(name: str) -> Preset:
    """The preset of that name, or a typed refusal listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownPreset(
            "Unknown kinetics preset '{name}'; known presets: {known}.", item="preset", name=name, known=sorted(PRESETS)
        ) from None
