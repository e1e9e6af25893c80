"""Grades proposed from eCRF lab values with the lab's reference range, through the CTCAE calculator."""

from __future__ import annotations

from datetime import date

import pytest

from cartrial.domain.safety.lab_grades import LabValue, lab_grade, lab_proposals
from cartrial.domain.scores.ctcae import CtcaeIncreaseTerm, grade_lab_increase
from cartrial.domain.scores.errors import CalculatorInputError


def lab(item: str, value: float, unit: str, lower: float | None = None, upper: float | None = None) -> LabValue:
    return LabValue(1, item, "D7", date(2026, 5, 8), value, unit, lower, upper)


@pytest.mark.parametrize(
    ("value", "grade"), [(40.0, 0), (41.0, 1), (120.0, 1), (121.0, 2), (200.0, 2), (201.0, 3), (800.0, 3), (801.0, 4)]
)
def test_alt_increased_by_multiples_of_the_uln(value: float, grade: int) -> None:
    assert grade_lab_increase(term=CtcaeIncreaseTerm.ALT_INCREASED, value=value, uln=40.0).grade == grade


@pytest.mark.parametrize(("value", "grade"), [(21.0, 1), (30.0, 1), (31.0, 2), (61.0, 3), (201.0, 4)])
def test_bilirubin_increased_by_multiples_of_the_uln(value: float, grade: int) -> None:
    assert grade_lab_increase(term=CtcaeIncreaseTerm.BILIRUBIN_INCREASED, value=value, uln=20.0).grade == grade


def test_increase_refuses_a_zero_uln() -> None:
    with pytest.raises(CalculatorInputError):
        grade_lab_increase(term=CtcaeIncreaseTerm.AST_INCREASED, value=10.0, uln=0.0)


def test_decreased_counts_use_the_labs_lln_and_propose_the_term() -> None:
    proposal = lab_grade(lab("anc", 0.4, "10^9/L", 1.8, 7.5))
    assert proposal is not None and (proposal.term, proposal.grade) == ("neutrophil_count_decreased", 4)
    grade_1 = lab_grade(lab("platelets", 140.0, "10^9/L", 150.0, 400.0))
    assert grade_1 is not None and grade_1.grade == 1
    anaemia = lab_grade(lab("haemoglobin", 75.0, "g/L", 120.0, 160.0))
    assert anaemia is not None and (anaemia.term, anaemia.grade) == ("anemia", 3)


def test_without_the_lln_grade_1_is_not_proposed_but_grade_2_is() -> None:
    assert lab_grade(lab("anc", 1.6, "10^9/L")) is None
    proposal = lab_grade(lab("anc", 1.2, "10^9/L"))
    assert proposal is not None and proposal.grade == 2


def test_without_the_uln_an_increase_is_not_proposed() -> None:
    assert lab_grade(lab("alt", 900.0, "U/L")) is None
    proposal = lab_grade(lab("alt", 900.0, "U/L", 5.0, 40.0))
    assert proposal is not None and (proposal.term, proposal.grade) == ("alanine_aminotransferase_increased", 4)


def test_normal_values_and_items_not_graded_are_not_proposed() -> None:
    assert lab_grade(lab("anc", 3.0, "10^9/L", 1.8, 7.5)) is None
    assert lab_grade(lab("crp", 90.0, "mg/L", 0.0, 5.0)) is None


def test_a_value_already_recorded_is_never_proposed_again() -> None:
    values = [lab("anc", 0.4, "10^9/L", 1.8, 7.5), lab("alt", 900.0, "U/L", 5.0, 40.0)]
    assert [p.lab.item for p in lab_proposals(values, taken=set())] == ["alt", "anc"]
    assert [p.lab.item for p in lab_proposals(values, taken={(1, "anc")})] == ["alt"]
