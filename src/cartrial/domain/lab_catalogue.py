"""The analytes cartrial records, with their accepted units: one catalogue for every lab form.

Screening labs (clinical.md §6), safety counts (CTCAE, ICAHT) and the kinetic markers after
infusion (kinetics.md) all go to one store of lab observations; this catalogue says what may
be stored and in which unit. Unit *conversions* stay in `cartrial.domain.units`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cartrial.domain.errors import InvalidInput


@dataclass(frozen=True)
class AnalyteSpec:
    """One analyte: stable code, bilingual label, accepted units (the first is the usual one)."""

    code: str
    label_en: str
    label_fr: str
    units: tuple[str, ...]
    kinetic_marker: bool = False

    def label(self, language: str) -> str:
        return self.label_fr if language == "fr" else self.label_en


CATALOGUE: tuple[AnalyteSpec, ...] = (
    AnalyteSpec("creatinine", "Creatinine", "Créatinine", ("umol/L", "mg/dL")),
    AnalyteSpec("upcr", "Urine protein/creatinine ratio", "Rapport protéinurie/créatininurie", ("mg/mmol", "g/g")),
    AnalyteSpec("c3", "Complement C3", "Complément C3", ("g/L", "mg/dL")),
    AnalyteSpec("c4", "Complement C4", "Complément C4", ("g/L", "mg/dL")),
    AnalyteSpec("igg", "Immunoglobulin G", "Immunoglobulines G", ("g/L", "mg/dL")),
    AnalyteSpec("hemoglobin", "Haemoglobin", "Hémoglobine", ("g/dL", "g/L", "mmol/L")),
    AnalyteSpec("wbc", "White blood cells", "Leucocytes", ("10^9/L",)),
    AnalyteSpec("neutrophils", "Neutrophils", "Polynucléaires neutrophiles", ("10^9/L",)),
    AnalyteSpec("lymphocytes", "Lymphocytes", "Lymphocytes", ("10^9/L",)),
    AnalyteSpec("platelets", "Platelets", "Plaquettes", ("10^9/L",)),
    AnalyteSpec("cd3", "CD3+ T cells", "Lymphocytes T CD3+", ("cells/µL",)),
    AnalyteSpec("crp", "C-reactive protein", "Protéine C-réactive", ("mg/L",)),
    AnalyteSpec("anti_dsdna", "Anti-dsDNA antibodies", "Anticorps anti-ADN natif", ("IU/mL",), kinetic_marker=True),
    AnalyteSpec("b_cells", "CD19+ B cells", "Lymphocytes B CD19+", ("cells/µL",), kinetic_marker=True),
    AnalyteSpec("car_t", "CAR-T cells (transgene)", "Cellules CAR-T (transgène)", ("copies/µg", "cells/µL"),
                kinetic_marker=True),
)

ANALYTES: dict[str, AnalyteSpec] = {spec.code: spec for spec in CATALOGUE}

_MICRO = ("μ", "u")


def normalise_unit(unit: str) -> str:
    """One spelling per unit: 'umol/L', 'µmol/L' and 'μmol/L' are the same; 'cells/uL' is 'cells/µL'."""
    text = unit.strip()
    if text in ("µmol/L", "μmol/L"):
        return "umol/L"
    for micro in _MICRO:
        text = text.replace(f"{micro}L", "µL").replace(f"{micro}g", "µg")
    return text


@dataclass(frozen=True)
class LabValue:
    """A validated lab value ready to store."""

    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    limit_of_quantification: float | None


def _finite(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number.", code="lab_value_not_a_number")
    if value < 0:
        raise InvalidInput(f"{name} cannot be negative ({value}).", code="lab_value_negative")
    return float(value)


def validate_lab_value(
    *,
    analyte: str,
    value: float | None,
    unit: str,
    lower_limit: float | None = None,
    upper_limit: float | None = None,
    limit_of_quantification: float | None = None,
) -> LabValue:
    """Refuse an unknown analyte or unit, a negative or non-numeric value, a reversed range.

    `value` may be None only with a limit of quantification: the report then says "< LoQ".
    """
    spec = ANALYTES.get(analyte)
    if spec is None:
        raise InvalidInput(
            f"Unknown analyte '{analyte}' (known: {', '.join(sorted(ANALYTES))}).", code="unknown_analyte"
        )
    canonical_unit = normalise_unit(unit)
    if canonical_unit not in spec.units:
        raise InvalidInput(
            f"Unit '{unit}' is not accepted for {analyte} (accepted: {', '.join(spec.units)}).", code="unknown_unit"
        )
    checked = _finite("The value", value)
    low = _finite("The lower limit of normal", lower_limit)
    high = _finite("The upper limit of normal", upper_limit)
    loq = _finite("The limit of quantification", limit_of_quantification)
    if checked is None and loq is None:
        raise InvalidInput("Give a value, or the limit of quantification for '< LoQ'.", code="lab_value_missing")
    if low is not None and high is not None and low > high:
        raise InvalidInput(f"Reference range reversed: {low} > {high}.", code="reference_range_reversed")
    return LabValue(analyte, checked, canonical_unit, low, high, loq)
