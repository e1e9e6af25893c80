"""CTCAE v5.0 grades of decreased blood counts derived from a laboratory value.

Source: National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE)
version 5.0, 27 November 2017 (Investigations: neutrophil, platelet, white blood cell and
lymphocyte count decreased; Blood and lymphatic system disorders: anemia).
Version: 5.0. Units: counts in 10⁹/L; haemoglobin in g/dL, g/L or mmol/L; the lab's lower
limit of normal (LLN) in the same unit as the value. Range: grade 0..4, 0 = not below LLN.

A grade band's lower limit is exclusive: "<1.5-1.0" means 1.0 ≤ value < 1.5. Grade 1 needs
the value below the local LLN. Anemia grade 4 ("life-threatening; urgent intervention") and
every grade 5 are clinical and are never derived from the value; other CTCAE terms are
entered by the investigator, not computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import N_, Message

# Open item (clinical.md §4.3 and §7.6): v5.0 and v6.0 both exist and v6.0 renames terms
# (e.g. "Thrombocytopenia"); the grades below are v5.0's, and the version is reported with
# every grade so an AE always records which one it was graded against.
CTCAE_VERSION = "5.0"

COUNT_UNIT = "10^9/L"


class CtcaeLabTerm(StrEnum):
    """CTCAE terms graded from one blood-count value."""

    NEUTROPHIL_COUNT_DECREASED = "neutrophil_count_decreased"
    PLATELET_COUNT_DECREASED = "platelet_count_decreased"
    WHITE_BLOOD_CELL_DECREASED = "white_blood_cell_decreased"
    LYMPHOCYTE_COUNT_DECREASED = "lymphocyte_count_decreased"
    ANEMIA = "anemia"


# Lower bounds of grades 2, 3 and 4 bands: a value below the grade-n bound is at least grade n+1.
_COUNT_BOUNDS_10E9_PER_L: MappingProxyType[CtcaeLabTerm, tuple[float, float, float]] = MappingProxyType(
    {
        CtcaeLabTerm.NEUTROPHIL_COUNT_DECREASED: (1.5, 1.0, 0.5),
        CtcaeLabTerm.PLATELET_COUNT_DECREASED: (75.0, 50.0, 25.0),
        CtcaeLabTerm.WHITE_BLOOD_CELL_DECREASED: (3.0, 2.0, 1.0),
        CtcaeLabTerm.LYMPHOCYTE_COUNT_DECREASED: (0.8, 0.5, 0.2),
    }
)

# Open choice, the three units disagree slightly: CTCAE prints anemia bounds in each unit
# (10.0 / 8.0 g/dL, 100 / 80 g/L, 6.2 / 4.9 mmol/L), and 6.2 mmol/L is 9.99 g/dL, 4.9 mmol/L
# 7.90 g/dL. We grade in the unit the lab reported, against the bound CTCAE prints for that
# unit, and never convert first, so the grade matches the one a reader of the table would give.
ANEMIA_BOUNDS_BY_UNIT: MappingProxyType[str, tuple[float, float]] = MappingProxyType(
    {"g/dL": (10.0, 8.0), "g/L": (100.0, 80.0), "mmol/L": (6.2, 4.9)}
)

# Plausibility ceilings, in each accepted unit; they catch a value typed in another unit
# (haemoglobin 130 "g/dL" is 130 g/L, platelets 150000 "10^9/L" are per µL).
PLAUSIBLE_MAX_BY_UNIT: MappingProxyType[str, float] = MappingProxyType(
    {COUNT_UNIT: 5000.0, "g/dL": 25.0, "g/L": 250.0, "mmol/L": 15.5}
)


@dataclass(frozen=True)
class CtcaeLabGrade:
    """A CTCAE grade from a lab value, with the band it fell in."""

    grade: int
    term: CtcaeLabTerm
    band: Message
    version: str = CTCAE_VERSION


def units_for(term: CtcaeLabTerm) -> tuple[str, ...]:
    """The units a term's value and LLN may be given in."""
    if term is CtcaeLabTerm.ANEMIA:
        return tuple(ANEMIA_BOUNDS_BY_UNIT)
    return (COUNT_UNIT,)


def grade_lab_value(*, term: CtcaeLabTerm, value: float, unit: str, lln: float) -> CtcaeLabGrade:
    """Grade a decreased blood count against the lab's LLN and the CTCAE v5.0 bands."""
    term = CtcaeLabTerm(term)
    accepted = units_for(term)
    if unit not in accepted:
        raise CalculatorInputError.for_field(
            "unit",
            Message(
                "unit '{unit}' does not apply to {term}; accepted: {accepted}",
                {"unit": unit, "term": term.value, "accepted": list(accepted)},
            ),
        )
    ceiling = PLAUSIBLE_MAX_BY_UNIT[unit]
    errors: list[FieldError] = [
        (
            field,
            Message(
                "must be a finite number from 0 to {ceiling} {unit}, got {value}",
                {"ceiling": ceiling, "unit": unit, "value": number},
            ),
        )
        for field, number in (("value", value), ("lln", lln))
        if not (math.isfinite(number) and 0 <= number <= ceiling)
    ]
    if not errors and lln == 0:
        errors.append(("lln", Message("the lower limit of normal must be > 0")))
    if errors:
        raise CalculatorInputError(errors)

    if value >= lln:
        return CtcaeLabGrade(grade=0, term=term, band=_band(N_("value ≥ LLN ({lln} {unit})"), lln=lln, unit=unit))
    if term is CtcaeLabTerm.ANEMIA:
        grade_2_bound, grade_3_bound = ANEMIA_BOUNDS_BY_UNIT[unit]
        if value < grade_3_bound:
            band = _band(N_("value < {high} {unit} (grade 4 needs clinical assessment)"), high=grade_3_bound, unit=unit)
            return CtcaeLabGrade(grade=3, term=term, band=band)
        if value < grade_2_bound:
            band = _band(N_("{low} ≤ value < {high} {unit}"), low=grade_3_bound, high=grade_2_bound, unit=unit)
            return CtcaeLabGrade(grade=2, term=term, band=band)
        band = _band(N_("{low} ≤ value < LLN ({lln} {unit})"), low=grade_2_bound, lln=lln, unit=unit)
        return CtcaeLabGrade(grade=1, term=term, band=band)

    bounds = _COUNT_BOUNDS_10E9_PER_L[term]
    if value < bounds[2]:
        return CtcaeLabGrade(grade=4, term=term, band=_band(N_("value < {high} {unit}"), high=bounds[2], unit=unit))
    if value < bounds[1]:
        band = _band(N_("{low} ≤ value < {high} {unit}"), low=bounds[2], high=bounds[1], unit=unit)
        return CtcaeLabGrade(grade=3, term=term, band=band)
    if value < bounds[0]:
        band = _band(N_("{low} ≤ value < {high} {unit}"), low=bounds[1], high=bounds[0], unit=unit)
        return CtcaeLabGrade(grade=2, term=term, band=band)
    band = _band(N_("{low} ≤ value < LLN ({lln} {unit})"), low=bounds[0], lln=lln, unit=unit)
    return CtcaeLabGrade(grade=1, term=term, band=band)


def _band(msgid: str, **bounds: object) -> Message:
    return Message(msgid, bounds)


class CtcaeIncreaseTerm(StrEnum):
    """CTCAE terms graded from a chemistry value as a multiple of the lab's upper limit of normal."""

    ALT_INCREASED = "alanine_aminotransferase_increased"
    AST_INCREASED = "aspartate_aminotransferase_increased"
    BILIRUBIN_INCREASED = "blood_bilirubin_increased"


# Upper bounds of grades 1, 2 and 3 as multiples of the ULN, for a baseline within normal limits
# (CTCAE v5.0, Investigations): ALT/AST ">ULN-3.0 x ULN", ">3.0-5.0", ">5.0-20.0", ">20.0";
# blood bilirubin ">ULN-1.5 x ULN", ">1.5-3.0", ">3.0-10.0", ">10.0". The bands' upper limits are
# inclusive ("> 3.0-5.0" holds 5.0). CTCAE grades an abnormal baseline against the baseline value
# instead; that variant is left to the investigator (docs/safety.md).
_ULN_MULTIPLES: MappingProxyType[CtcaeIncreaseTerm, tuple[float, float, float]] = MappingProxyType(
    {
        CtcaeIncreaseTerm.ALT_INCREASED: (3.0, 5.0, 20.0),
        CtcaeIncreaseTerm.AST_INCREASED: (3.0, 5.0, 20.0),
        CtcaeIncreaseTerm.BILIRUBIN_INCREASED: (1.5, 3.0, 10.0),
    }
)


@dataclass(frozen=True)
class CtcaeIncreaseGrade:
    """A CTCAE grade from a value above the ULN, with the band it fell in."""

    grade: int
    term: CtcaeIncreaseTerm
    band: Message
    version: str = CTCAE_VERSION


def grade_lab_increase(*, term: CtcaeIncreaseTerm, value: float, uln: float) -> CtcaeIncreaseGrade:
    """Grade an increased chemistry value against the lab's ULN (same unit), baseline normal."""
    term = CtcaeIncreaseTerm(term)
    errors: list[FieldError] = [
        (field, Message("must be a finite number ≥ 0, got {value}", {"value": number}))
        for field, number in (("value", value), ("uln", uln))
        if not (math.isfinite(number) and number >= 0)
    ]
    if not errors and uln == 0:
        errors.append(("uln", Message("the upper limit of normal must be > 0")))
    if errors:
        raise CalculatorInputError(errors)
    ratio = value / uln
    g1, g2, g3 = _ULN_MULTIPLES[term]
    if ratio <= 1:
        return CtcaeIncreaseGrade(grade=0, term=term, band=_band(N_("value ≤ ULN")))
    if ratio > g3:
        return CtcaeIncreaseGrade(grade=4, term=term, band=_band(N_("value > {high} × ULN"), high=g3))
    if ratio > g2:
        return CtcaeIncreaseGrade(grade=3, term=term, band=_band(N_("{low} < value ≤ {high} × ULN"), low=g2, high=g3))
    if ratio > g1:
        return CtcaeIncreaseGrade(grade=2, term=term, band=_band(N_("{low} < value ≤ {high} × ULN"), low=g1, high=g2))
    return CtcaeIncreaseGrade(grade=1, term=term, band=_band(N_("ULN < value ≤ {high} × ULN"), high=g1))
