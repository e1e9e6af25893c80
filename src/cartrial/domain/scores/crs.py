"""Cytokine release syndrome grade, ASTCT 2019 consensus.

Source: Lee DW et al. ASTCT consensus grading for cytokine release syndrome and neurologic
toxicity associated with immune effector cells. Biol Blood Marrow Transplant 2019;25:625-38
(table and footnotes reproduced in PMC8403007 Table 4 and PMC8021214 Table 1).
Version: ASTCT 2019. Units: fever ≥ 38.0 °C; oxygen flow in L/min. Range: grade 0..5.

Grade = the more severe of hypotension and hypoxia, given fever not attributable to another
cause (or, once an antipyretic or anti-cytokine drug was given, without fever); grade 5 is
death from CRS. Organ toxicities are graded with CTCAE and never change the CRS grade.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import N_, Message, label

FEVER_MIN_INCLUSIVE_C = 38.0
LOW_FLOW_MAX_INCLUSIVE_L_PER_MIN = 6.0

# Open reading of the Lee 2019 footnote "once antipyretic or anticytokine therapy is given,
# fever is no longer required; grading is then driven by hypotension and/or hypoxia": it does
# not say what a treated, afebrile patient with neither is. We follow clinical.md §4.1
# (fever or prior treatment is enough for grade ≥ 1; none → 1), i.e. CRS still ongoing at
# grade 1. Set to 0 if the SAP records such a patient as resolved.
TREATED_AFEBRILE_WITHOUT_HYPOTENSION_OR_HYPOXIA_GRADE = 1


class Hypotension(StrEnum):
    """Hypotension and the vasopressor support it needs (vasopressin does not count as a second)."""

    NONE = "none"
    NO_VASOPRESSOR = "no_vasopressor"
    ONE_VASOPRESSOR = "one_vasopressor"
    MULTIPLE_VASOPRESSORS = "multiple_vasopressors"


class Hypoxia(StrEnum):
    """Oxygen support: low flow ≤ 6 L/min or blow-by; high flow > 6 L/min, facemask, NRB, Venturi."""

    NONE = "none"
    LOW_FLOW = "low_flow"
    HIGH_FLOW = "high_flow"
    POSITIVE_PRESSURE = "positive_pressure"


# How each finding reads on a form and in the reason (msgids; the JSON keeps the codes).
HYPOTENSION_LABELS: dict[Hypotension, str] = {
    Hypotension.NONE: N_("None"),
    Hypotension.NO_VASOPRESSOR: N_("Without vasopressor"),
    Hypotension.ONE_VASOPRESSOR: N_("One vasopressor (with or without vasopressin)"),
    Hypotension.MULTIPLE_VASOPRESSORS: N_("Several vasopressors (vasopressin not counted)"),
}
HYPOXIA_LABELS: dict[Hypoxia, str] = {
    Hypoxia.NONE: N_("None"),
    Hypoxia.LOW_FLOW: N_("Low flow: nasal cannula ≤ 6 L/min or blow-by"),
    Hypoxia.HIGH_FLOW: N_("High flow: > 6 L/min, facemask, non-rebreather or Venturi"),
    Hypoxia.POSITIVE_PRESSURE: N_("Positive pressure: CPAP, BiPAP, intubation"),
}

_HYPOTENSION_GRADE = {
    Hypotension.NONE: 1,
    Hypotension.NO_VASOPRESSOR: 2,
    Hypotension.ONE_VASOPRESSOR: 3,
    Hypotension.MULTIPLE_VASOPRESSORS: 4,
}
_HYPOXIA_GRADE = {
    Hypoxia.NONE: 1,
    Hypoxia.LOW_FLOW: 2,
    Hypoxia.HIGH_FLOW: 3,
    Hypoxia.POSITIVE_PRESSURE: 4,
}


@dataclass(frozen=True)
class CrsGrade:
    """The grade and the words that say which finding set it."""

    grade: int
    reason: Message


def grade_crs(
    *,
    fever: bool,
    antipyretic_or_anticytokine_given: bool,
    hypotension: Hypotension,
    hypoxia: Hypoxia,
    death_from_crs: bool,
) -> CrsGrade:
    """ASTCT 2019 CRS grade (0 = no CRS)."""
    hypotension, hypoxia = Hypotension(hypotension), Hypoxia(hypoxia)
    if death_from_crs:
        return CrsGrade(grade=5, reason=Message(N_("death from CRS")))
    if not fever and not antipyretic_or_anticytokine_given:
        return CrsGrade(
            grade=0,
            reason=Message(
                N_(
                    "no fever and no antipyretic or anti-cytokine treatment: not CRS "
                    "(hypotension or hypoxia without fever is graded elsewhere)"
                )
            ),
        )
    hypotension_grade = _HYPOTENSION_GRADE[hypotension]
    hypoxia_grade = _HYPOXIA_GRADE[hypoxia]
    grade = max(hypotension_grade, hypoxia_grade)
    if grade == 1:
        if fever:
            return CrsGrade(grade=1, reason=Message(N_("fever without hypotension or hypoxia")))
        return CrsGrade(
            grade=TREATED_AFEBRILE_WITHOUT_HYPOTENSION_OR_HYPOXIA_GRADE,
            reason=Message(N_("afebrile after antipyretic or anti-cytokine treatment, without hypotension or hypoxia")),
        )
    hypotension_words = Message(N_("hypotension: {finding}"), {"finding": label(HYPOTENSION_LABELS[hypotension])})
    hypoxia_words = Message(N_("hypoxia: {finding}"), {"finding": label(HYPOXIA_LABELS[hypoxia])})
    if hypotension_grade == grade and hypoxia_grade == grade:
        reason = Message(N_("{first} and {second}"), {"first": hypotension_words, "second": hypoxia_words})
    else:
        reason = hypotension_words if hypotension_grade == grade else hypoxia_words
    return CrsGrade(grade=grade, reason=reason)


def crs_fever_present(*, temperature_c: float) -> bool:
    """ASTCT fever: temperature ≥ 38.0 °C (38.0 exactly counts)."""
    return temperature_c >= FEVER_MIN_INCLUSIVE_C


def hypoxia_for_nasal_cannula(*, flow_l_per_min: float) -> Hypoxia:
    """Nasal-cannula oxygen: ≤ 6 L/min is low flow (grade 2), above it high flow (grade 3)."""
    if flow_l_per_min < 0:
        raise CalculatorInputError.for_field("flow_l_per_min", Message("must be ≥ 0"))
    if flow_l_per_min == 0:
        return Hypoxia.NONE
    if flow_l_per_min <= LOW_FLOW_MAX_INCLUSIVE_L_PER_MIN:
        return Hypoxia.LOW_FLOW
    return Hypoxia.HIGH_FLOW
