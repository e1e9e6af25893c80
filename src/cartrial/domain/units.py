"""Laboratory unit conversions: the only place in cartrial where a lab value changes unit.

Source: the project's clinical reference, clinical.md §6 and §6.1 (conversion factors for
UPCR, creatinine, C3, C4, IgG and haemoglobin), which cites Inker 2021 / the NKF CKD-EPI
page and the CRAN packages `kidney.epi` and `egfr` for the creatinine factor 88.4.

Every factor below is a number of canonical units per one unit of the named spelling, so a
conversion is `value × factor[from] / factor[to]` and each pair of units is consistent by
construction. Valid values: finite and ≥ 0 (a concentration or a ratio is never negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cartrial.domain.errors import InvalidInput


class Analyte(StrEnum):
    """Analytes whose unit conversions clinical.md §6 defines."""

    UPCR = "upcr"
    CREATININE = "creatinine"
    C3 = "c3"
    C4 = "c4"
    IGG = "igg"
    HEMOGLOBIN = "hemoglobin"
    NEUTROPHILS = "neutrophils"


# clinical.md §6.1 settles the factor at 88.4 µmol/L per mg/dL (88.42 only comes from rounding
# the molar mass to 113.1 g/mol); defined once here and used by eGFR and UPCR alike.
CREATININE_UMOL_PER_MGDL = 88.4

# Open choice, sources differ: clinical.md quotes "1 g/g = 113.1 mg/mmol" from a molar mass of
# 113.12 g/mol. We derive the molar mass from the settled 88.4 factor (10 000 / 88.4 = 113.122),
# so a UPCR and a creatinine converted here always agree; the difference from 113.1 is 0.02 %.
CREATININE_MOLAR_MASS_G_PER_MOL = 10_000 / CREATININE_UMOL_PER_MGDL

# Haemoglobin (monomer, 16.114 kDa): mmol/L = g/dL × 0.6206 (clinical.md §6, CTCAE wording).
HEMOGLOBIN_MMOL_PER_L_PER_G_PER_DL = 0.6206

# Canonical unit per analyte and, for every accepted spelling, how many canonical units one
# unit of it is worth. UPCR: 1 g protein per g creatinine = 1000 mg / (1000 / M mmol) = M mg/mmol.
_FACTORS: MappingProxyType[Analyte, MappingProxyType[str, float]] = MappingProxyType(
    {
        Analyte.UPCR: MappingProxyType(
            {
                "mg/mmol": 1.0,
                "g/g": CREATININE_MOLAR_MASS_G_PER_MOL,
                "mg/mg": CREATININE_MOLAR_MASS_G_PER_MOL,
                "mg/g": CREATININE_MOLAR_MASS_G_PER_MOL / 1000,
            }
        ),
        Analyte.CREATININE: MappingProxyType({"umol/L": 1.0, "mg/dL": CREATININE_UMOL_PER_MGDL}),
        Analyte.C3: MappingProxyType({"g/L": 1.0, "mg/dL": 0.01}),
        Analyte.C4: MappingProxyType({"g/L": 1.0, "mg/dL": 0.01}),
        Analyte.IGG: MappingProxyType({"g/L": 1.0, "mg/dL": 0.01}),
        Analyte.HEMOGLOBIN: MappingProxyType(
            {"g/L": 1.0, "g/dL": 10.0, "mmol/L": 10.0 / HEMOGLOBIN_MMOL_PER_L_PER_G_PER_DL}
        ),
        # Cell counts: labs report 10^9/L (= 10^3/µL), ICAHT is defined in cells/µL (1/µL = 10^6/L).
        Analyte.NEUTROPHILS: MappingProxyType({"10^9/L": 1.0, "cells/uL": 0.001, "/uL": 0.001}),
    }
)

# Lab reports write "micro" with the micro sign or the Greek mu; both mean the ASCII "u".
_SPELLINGS = MappingProxyType(
    {"µmol/L": "umol/L", "μmol/L": "umol/L", "cells/µL": "cells/uL", "cells/μL": "cells/uL", "/µL": "/uL", "/μL": "/uL"}
)


class UnitConversionError(InvalidInput):
    """An analyte, a unit or a value no conversion applies to; `field` names the bad argument."""

    code = "unit_conversion_invalid"

    def __init__(self, msgid: str, /, *, field: str, **params: Any) -> None:
        super().__init__(msgid, item=field, **params)
        self.field = field


@dataclass(frozen=True)
class Quantity:
    """A value with the unit it is expressed in (canonical spelling)."""

    value: float
    unit: str


def units_for(analyte: Analyte) -> tuple[str, ...]:
    """The unit spellings accepted for an analyte, canonical unit first."""
    return tuple(_FACTORS[analyte])


def normalize_unit(unit: str) -> str:
    """The canonical spelling of a unit (µmol/L → umol/L); unknown spellings are returned as is."""
    return _SPELLINGS.get(unit, unit)


def convert(*, analyte: Analyte | str, value: float, from_unit: str, to_unit: str) -> Quantity:
    """Convert one lab value between two units of the same analyte."""
    try:
        known_analyte = Analyte(analyte)
    except ValueError:
        raise UnitConversionError(
            "unknown analyte '{analyte}'; accepted: {accepted}",
            field="analyte",
            analyte=analyte,
            accepted=[a.value for a in Analyte],
        ) from None
    factors = _FACTORS[known_analyte]
    source, target = normalize_unit(from_unit), normalize_unit(to_unit)
    for field, unit in (("from", source), ("to", target)):
        if unit not in factors:
            raise UnitConversionError(
                "unknown unit '{unit}' for {analyte}; accepted: {accepted}",
                field=field,
                unit=unit,
                analyte=known_analyte.value,
                accepted=list(factors),
            )
    if not math.isfinite(value) or value < 0:
        raise UnitConversionError("value must be a finite number ≥ 0, got {value}", field="value", value=value)
    return Quantity(value=value * factors[source] / factors[target], unit=target)


def creatinine_mg_per_dl(*, creatinine: float, creatinine_unit: str) -> float:
    """Serum creatinine in mg/dL, the unit CKD-EPI is defined in."""
    return convert(analyte=Analyte.CREATININE, value=creatinine, from_unit=creatinine_unit, to_unit="mg/dL").value
