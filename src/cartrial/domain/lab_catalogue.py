"""The analytes cartrial records, with their accepted units: one catalogue for every lab form.

Screening labs (clinical.md §6), safety counts (CTCAE, ICAHT) and the kinetic markers after
infusion (kinetics.md) all go to one store of lab observations; this catalogue says what may
be stored and in which unit. Unit *conversions* stay in `cartrial.domain.units`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cartrial.domain.errors import InvalidInput
from cartrial.domain.quantities import Quantity, plausible_check, plausible_optional
from cartrial.domain.text import N_, Message, label


@dataclass(frozen=True)
class AnalyteSpec:
    """One analyte: stable code, label (a msgid: adapters translate it), accepted units (the first is the
    usual one) with the plausible range of a result in each (`ranges[unit] = (minimum, maximum)`)."""

    code: str
    label: str
    ranges: Mapping[str, tuple[float, float]]
    kinetic_marker: bool = False

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(self.ranges)

    def quantity(self, unit: str) -> Quantity:
        """The analyte reported in `unit` as a numeric input item of the catalogue (`domain/quantities.py`)."""
        minimum, maximum = self.ranges[unit]
        return Quantity(f"lab.{self.code}", self.label, unit, minimum, maximum)

    def bounds(self) -> tuple[float, float]:
        """The widest (min, max) over the accepted units, for a form whose unit is chosen beside the value."""
        return min(low for low, _ in self.ranges.values()), max(high for _, high in self.ranges.values())


# Plausible ranges: physiology's extremes and the widest values labs report, not reference ranges
# (a creatinine of 1500 µmol/L is plausible in acute kidney injury; 10⁹ is a typing error).
CATALOGUE: tuple[AnalyteSpec, ...] = (
    AnalyteSpec("creatinine", N_("Creatinine"), {"umol/L": (5, 2000), "mg/dL": (0.05, 25)}),
    AnalyteSpec("upcr", N_("Urine protein/creatinine ratio"), {"mg/mmol": (0, 2000), "g/g": (0, 20)}),
    AnalyteSpec("c3", N_("Complement C3"), {"g/L": (0, 5), "mg/dL": (0, 500)}),
    AnalyteSpec("c4", N_("Complement C4"), {"g/L": (0, 2), "mg/dL": (0, 200)}),
    AnalyteSpec("igg", N_("Immunoglobulin G"), {"g/L": (0, 100), "mg/dL": (0, 10_000)}),
    AnalyteSpec("hemoglobin", N_("Haemoglobin"), {"g/dL": (1, 25), "g/L": (10, 250), "mmol/L": (0.6, 15.5)}),
    AnalyteSpec("wbc", N_("White blood cells"), {"10^9/L": (0, 500)}),
    AnalyteSpec("neutrophils", N_("Neutrophils"), {"10^9/L": (0, 300)}),
    AnalyteSpec("lymphocytes", N_("Lymphocytes"), {"10^9/L": (0, 500)}),
    AnalyteSpec("platelets", N_("Platelets"), {"10^9/L": (0, 2000)}),
    # Normal CD3+ counts are ~700–2100/µL; 20 000/µL would be a T-cell leukaemia.
    AnalyteSpec("cd3", N_("CD3+ T cells"), {"cells/µL": (0, 20_000)}),
    AnalyteSpec("crp", N_("C-reactive protein"), {"mg/L": (0, 1000)}),
    # Chemistry of the follow-up forms (not in clinical.md §6; usual SI units of European labs): hepatitis
    # and haemolysis reach thousands of U/L, HLH ferritin tens of thousands of µg/L, jaundice ~1000 µmol/L.
    AnalyteSpec("alt", N_("Alanine aminotransferase (ALT)"), {"U/L": (0, 20_000)}),
    AnalyteSpec("ast", N_("Aspartate aminotransferase (AST)"), {"U/L": (0, 20_000)}),
    AnalyteSpec("bilirubin", N_("Total bilirubin"), {"umol/L": (0, 1000)}),
    AnalyteSpec("ferritin", N_("Ferritin"), {"µg/L": (0, 200_000)}),
    AnalyteSpec("ldh", N_("Lactate dehydrogenase (LDH)"), {"U/L": (0, 50_000)}),
    # Kinetic markers (kinetics.md): anti-dsDNA assays report up to a few thousand IU/mL after dilution;
    # B cells are ~100–500/µL; CAR-T peaks reach 10²–10³ cells/µL (10⁴–10⁵ copies/µg DNA) in lupus.
    AnalyteSpec("anti_dsdna", N_("Anti-dsDNA antibodies"), {"IU/mL": (0, 10_000)}, kinetic_marker=True),
    AnalyteSpec("b_cells", N_("CD19+ B cells"), {"cells/µL": (0, 5000)}, kinetic_marker=True),
    AnalyteSpec(
        "car_t",
        N_("CAR-T cells (transgene)"),
        {"copies/µg": (0, 10_000_000), "cells/µL": (0, 100_000)},
        kinetic_marker=True,
    ),
)

ANALYTES: dict[str, AnalyteSpec] = {spec.code: spec for spec in CATALOGUE}

# How a stored unit reads to a person (a msgid: adapters translate it). Stored data, the API and
# CSV files keep the unit's code; a unit missing here reads as its code in every language.
UNIT_LABELS: dict[str, str] = {
    "umol/L": N_("µmol/L"),
    "cells/µL": N_("cells/µL"),
    "mL/min/1.73 m²": N_("mL/min/1.73 m²"),
    "mL/min/1.73m2": N_("mL/min/1.73 m²"),
    "mg/day": N_("mg/day"),
    "IU/mL": N_("IU/mL"),
}


def unit_label(unit: str) -> str:
    """The msgid a stored unit is shown by ('umol/L' → 'µmol/L'); an unknown unit is its own label."""
    return UNIT_LABELS.get(unit, unit)


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
    lab_value_plausible_check(spec, canonical_unit, value=checked, lower_limit=low, upper_limit=high, loq=loq)
    return LabValue(analyte, checked, canonical_unit, low, high, loq)


# How a refusal names each number of a lab value, after the analyte's label.
_PLAUSIBLE_NAMES = {
    "lower_limit": N_("{analyte} (lower limit of normal)"),
    "upper_limit": N_("{analyte} (upper limit of normal)"),
    "limit_of_quantification": N_("{analyte} (limit of quantification)"),
}


def lab_value_plausible_check(
    spec: AnalyteSpec,
    unit: str,
    *,
    value: float | None,
    lower_limit: float | None = None,
    upper_limit: float | None = None,
    loq: float | None = None,
) -> None:
    """Each number of a lab value within the analyte's plausible range in `unit` (a canonical unit).

    The limit of quantification may lie below the range's minimum (an assay reads lower than any
    patient), never above its maximum.
    """
    quantity = spec.quantity(unit)
    plausible_optional(quantity, value, item="value")
    for item, number in (("lower_limit", lower_limit), ("upper_limit", upper_limit)):
        name = Message(_PLAUSIBLE_NAMES[item], {"analyte": label(spec.label)})
        plausible_optional(quantity, number, item=item, name=name)
    if loq is not None:
        name = Message(_PLAUSIBLE_NAMES["limit_of_quantification"], {"analyte": label(spec.label)})
        plausible_check(replace(quantity, minimum=0), loq, item="limit_of_quantification", name=name)
