"""The analytes cartrial records, with their accepted units: one catalogue for every lab form.

Screening labs (clinical.md §6), safety counts (CTCAE, ICAHT) and the kinetic markers after
infusion (kinetics.md) all go to one store of lab observations; this catalogue says what may
be stored and in which unit. Unit *conversions* stay in `cartrial.domain.units`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, label


@dataclass(frozen=True)
class AnalyteSpec:
    """One analyte: stable code, label (a msgid: adapters translate it), accepted units (the first is the usual one)."""

    code: str
    label: str
    units: tuple[str, ...]
    kinetic_marker: bool = False


CATALOGUE: tuple[AnalyteSpec, ...] = (
    AnalyteSpec("creatinine", N_("Creatinine"), ("umol/L", "mg/dL")),
    AnalyteSpec("upcr", N_("Urine protein/creatinine ratio"), ("mg/mmol", "g/g")),
    AnalyteSpec("c3", N_("Complement C3"), ("g/L", "mg/dL")),
    AnalyteSpec("c4", N_("Complement C4"), ("g/L", "mg/dL")),
    AnalyteSpec("igg", N_("Immunoglobulin G"), ("g/L", "mg/dL")),
    AnalyteSpec("hemoglobin", N_("Haemoglobin"), ("g/dL", "g/L", "mmol/L")),
    AnalyteSpec("wbc", N_("White blood cells"), ("10^9/L",)),
    AnalyteSpec("neutrophils", N_("Neutrophils"), ("10^9/L",)),
    AnalyteSpec("lymphocytes", N_("Lymphocytes"), ("10^9/L",)),
    AnalyteSpec("platelets", N_("Platelets"), ("10^9/L",)),
    AnalyteSpec("cd3", N_("CD3+ T cells"), ("cells/µL",)),
    AnalyteSpec("crp", N_("C-reactive protein"), ("mg/L",)),
    AnalyteSpec("anti_dsdna", N_("Anti-dsDNA antibodies"), ("IU/mL",), kinetic_marker=True),
    AnalyteSpec("b_cells", N_("CD19+ B cells"), ("cells/µL",), kinetic_marker=True),
    AnalyteSpec("car_t", N_("CAR-T cells (transgene)"), ("copies/µg", "cells/µL"), kinetic_marker=True),
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


# The names of the numbers of a lab value, as the refusals say them, and the input item of each.
_NUMBER_NAMES = {
    "value": N_("The value"),
    "lower_limit": N_("The lower limit of normal"),
    "upper_limit": N_("The upper limit of normal"),
    "limit_of_quantification": N_("The limit of quantification"),
}


def _finite(item: str, value: float | None) -> float | None:
    if value is None:
        return None
    name = label(_NUMBER_NAMES[item])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("{name} must be a number.", code="lab_value_not_a_number", item=item, name=name)
    if value < 0:
        raise InvalidInput(
            "{name} cannot be negative ({value}).", code="lab_value_negative", item=item, name=name, value=value
        )
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
            "Unknown analyte '{analyte}' (known: {known}).",
            code="unknown_analyte",
            item="analyte",
            analyte=analyte,
            known=sorted(ANALYTES),
        )
    canonical_unit = normalise_unit(unit)
    if canonical_unit not in spec.units:
        raise InvalidInput(
            "Unit '{unit}' is not accepted for {analyte} (accepted: {accepted}).",
            code="unknown_unit",
            item="unit",
            unit=unit,
            analyte=label(spec.label),
            accepted=list(spec.units),
        )
    checked = _finite("value", value)
    low = _finite("lower_limit", lower_limit)
    high = _finite("upper_limit", upper_limit)
    loq = _finite("limit_of_quantification", limit_of_quantification)
    if checked is None and loq is None:
        raise InvalidInput(
            "Give a value, or the limit of quantification for '< LoQ'.", code="lab_value_missing", item="value"
        )
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            "Reference range reversed: {low} > {high}.",
            code="reference_range_reversed",
            item="upper_limit",
            low=low,
            high=high,
        )
    return LabValue(analyte, checked, canonical_unit, low, high, loq)
