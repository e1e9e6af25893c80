"""Estimated GFR by the CKD-EPI 2021 race-free creatinine equation.

Source: Inker LA et al. New creatinine- and cystatin C-based equations to estimate GFR
without race. N Engl J Med 2021;385:1737-49, as restated on the National Kidney Foundation
equation page (kidney.org/ckd-epi-creatinine-equation-2021); constants also in CRAN
`kidney.epi` (`R/egfr_ckdepi2021.R`).
Version: CKD-EPI 2021, creatinine only. Units: IDMS-standardised serum creatinine in mg/dL
(µmol/L is converted by `cartrial.domain.units` with 88.4), age in years, result in
mL/min/1.73 m². Valid ranges: adults 18..120 years (the equation was developed in adults);
creatinine > 0 and ≤ 40 mg/dL (3536 µmol/L), a plausibility bound that catches unit slips.

eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^-1.200 × 0.9938^age × (1.012 if female),
κ = 0.7 (female) or 0.9 (male), α = -0.241 (female) or -0.302 (male).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import Message
from cartrial.domain.units import (
    CREATININE_UMOL_PER_MGDL,
    UnitConversionError,
    creatinine_mg_per_dl,
)

EQUATION = "CKD-EPI 2021"
EGFR_UNIT = "mL/min/1.73m2"
MIN_AGE_YEARS = 18.0
MAX_AGE_YEARS = 120.0
MAX_CREATININE_MG_PER_DL = 40.0


class Sex(StrEnum):
    """Sex as the equation uses it (κ, α and the female factor)."""

    FEMALE = "female"
    MALE = "male"


_KAPPA = {Sex.FEMALE: 0.7, Sex.MALE: 0.9}
_ALPHA = {Sex.FEMALE: -0.241, Sex.MALE: -0.302}
_FEMALE_FACTOR = 1.012
_CONSTANT = 142.0
_HIGH_EXPONENT = -1.200
_AGE_BASE = 0.9938


@dataclass(frozen=True)
class EgfrEstimate:
    """The unrounded estimate and the creatinine, in mg/dL, that produced it."""

    egfr_ml_per_min_per_1_73m2: float
    creatinine_mg_per_dl: float
    equation: str = EQUATION


def estimate_egfr_ckd_epi_2021(*, creatinine: float, creatinine_unit: str, age_years: float, sex: Sex) -> EgfrEstimate:
    """eGFR from serum creatinine (mg/dL or µmol/L), age and sex."""
    errors: list[FieldError] = []
    scr: float | None = None
    try:
        scr = creatinine_mg_per_dl(creatinine=creatinine, creatinine_unit=creatinine_unit)
    except UnitConversionError as exc:
        errors.append(("creatinine_unit" if exc.field == "from" else "creatinine", exc.message))
    if scr is not None and not 0 < scr <= MAX_CREATININE_MG_PER_DL:
        errors.append(
            (
                "creatinine",
                Message(
                    "must be > 0 and ≤ {maximum} mg/dL ({maximum_umol} umol/L), got {value} {unit}",
                    {
                        "maximum": MAX_CREATININE_MG_PER_DL,
                        "maximum_umol": MAX_CREATININE_MG_PER_DL * CREATININE_UMOL_PER_MGDL,
                        "value": creatinine,
                        "unit": creatinine_unit,
                    },
                ),
            )
        )
    if not (math.isfinite(age_years) and MIN_AGE_YEARS <= age_years <= MAX_AGE_YEARS):
        errors.append(
            (
                "age_years",
                Message(
                    "CKD-EPI 2021 applies to adults: must be {minimum} to {maximum} years, got {value}",
                    {"minimum": MIN_AGE_YEARS, "maximum": MAX_AGE_YEARS, "value": age_years},
                ),
            )
        )
    if sex not in (Sex.FEMALE, Sex.MALE):
        errors.append(("sex", Message("must be 'female' or 'male', got {value}", {"value": repr(sex)})))
    if errors or scr is None:
        raise CalculatorInputError(errors)
    sex = Sex(sex)

    kappa, alpha = _KAPPA[sex], _ALPHA[sex]
    ratio = scr / kappa
    egfr = (
        _CONSTANT
        * min(ratio, 1.0) ** alpha
        * max(ratio, 1.0) ** _HIGH_EXPONENT
        * _AGE_BASE**age_years
        * (_FEMALE_FACTOR if sex == Sex.FEMALE else 1.0)
    )
    return EgfrEstimate(egfr_ml_per_min_per_1_73m2=egfr, creatinine_mg_per_dl=scr)
