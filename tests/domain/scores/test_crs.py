"""ASTCT 2019 CRS grading (Lee 2019; clinical.md §4.1): grade = worse of hypotension and hypoxia."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores import crs
from cartrial.domain.scores.crs import Hypotension, Hypoxia, grade_crs
from cartrial.domain.scores.errors import CalculatorInputError

FAST = settings(max_examples=60, deadline=None)

# Lee 2019 table: the grade each finding alone gives to a febrile patient.
HYPOTENSION_ROW = {
    Hypotension.NONE: 1,
    Hypotension.NO_VASOPRESSOR: 2,
    Hypotension.ONE_VASOPRESSOR: 3,
    Hypotension.MULTIPLE_VASOPRESSORS: 4,
}
HYPOXIA_ROW = {Hypoxia.NONE: 1, Hypoxia.LOW_FLOW: 2, Hypoxia.HIGH_FLOW: 3, Hypoxia.POSITIVE_PRESSURE: 4}


def _grade(
    *,
    fever: bool = True,
    treated: bool = False,
    hypotension: Hypotension = Hypotension.NONE,
    hypoxia: Hypoxia = Hypoxia.NONE,
    death: bool = False,
) -> int:
    return grade_crs(
        fever=fever,
        antipyretic_or_anticytokine_given=treated,
        hypotension=hypotension,
        hypoxia=hypoxia,
        death_from_crs=death,
    ).grade


def test_fever_alone_is_grade_1() -> None:
    assert _grade() == 1


def test_no_fever_and_no_treatment_is_no_crs_even_with_hypotension() -> None:
    assert _grade(fever=False, hypotension=Hypotension.ONE_VASOPRESSOR, hypoxia=Hypoxia.HIGH_FLOW) == 0


@pytest.mark.parametrize(("hypotension", "grade"), HYPOTENSION_ROW.items())
def test_hypotension_row(hypotension: Hypotension, grade: int) -> None:
    assert _grade(hypotension=hypotension) == grade


@pytest.mark.parametrize(("hypoxia", "grade"), HYPOXIA_ROW.items())
def test_hypoxia_row(hypoxia: Hypoxia, grade: int) -> None:
    assert _grade(hypoxia=hypoxia) == grade


def test_the_worse_finding_sets_the_grade() -> None:
    # clinical.md §4.1: fever + one vasopressor (3) + low-flow O2 (2) = grade 3.
    assert _grade(hypotension=Hypotension.ONE_VASOPRESSOR, hypoxia=Hypoxia.LOW_FLOW) == 3
    # fever + no vasopressor (2) + positive pressure (4) = grade 4.
    assert _grade(hypotension=Hypotension.NO_VASOPRESSOR, hypoxia=Hypoxia.POSITIVE_PRESSURE) == 4


def test_after_tocilizumab_fever_is_no_longer_required() -> None:
    # Lee 2019 footnote: treated patient, afebrile, hypotension without vasopressor → grade 2.
    assert _grade(fever=False, treated=True, hypotension=Hypotension.NO_VASOPRESSOR) == 2
    assert _grade(fever=False, treated=True, hypoxia=Hypoxia.HIGH_FLOW) == 3


def test_treated_afebrile_patient_without_findings_follows_the_named_choice() -> None:
    assert _grade(fever=False, treated=True) == crs.TREATED_AFEBRILE_WITHOUT_HYPOTENSION_OR_HYPOXIA_GRADE == 1


def test_death_from_crs_is_grade_5() -> None:
    assert _grade(fever=False, death=True) == 5


@pytest.mark.parametrize(("temperature_c", "fever"), [(37.9, False), (38.0, True), (38.3, True)])
def test_astct_fever_starts_at_38_inclusive(temperature_c: float, fever: bool) -> None:
    assert crs.crs_fever_present(temperature_c=temperature_c) is fever


@pytest.mark.parametrize(
    ("flow", "hypoxia"),
    [(0.0, Hypoxia.NONE), (2.0, Hypoxia.LOW_FLOW), (6.0, Hypoxia.LOW_FLOW), (6.5, Hypoxia.HIGH_FLOW)],
)
def test_nasal_cannula_low_flow_is_up_to_6_l_per_min(flow: float, hypoxia: Hypoxia) -> None:
    assert crs.hypoxia_for_nasal_cannula(flow_l_per_min=flow) is hypoxia


def test_negative_flow_is_refused() -> None:
    with pytest.raises(CalculatorInputError):
        crs.hypoxia_for_nasal_cannula(flow_l_per_min=-1.0)


@FAST
@given(hypotension=st.sampled_from(list(Hypotension)), hypoxia=st.sampled_from(list(Hypoxia)))
def test_febrile_grade_is_the_max_of_the_two_rows(hypotension: Hypotension, hypoxia: Hypoxia) -> None:
    assert _grade(hypotension=hypotension, hypoxia=hypoxia) == max(HYPOTENSION_ROW[hypotension], HYPOXIA_ROW[hypoxia])


@FAST
@given(
    fever=st.booleans(),
    treated=st.booleans(),
    hypotension=st.sampled_from(list(Hypotension)),
    hypoxia=st.sampled_from(list(Hypoxia)),
    death=st.booleans(),
)
def test_grade_is_always_0_to_5(
    fever: bool, treated: bool, hypotension: Hypotension, hypoxia: Hypoxia, death: bool
) -> None:
    grade = _grade(fever=fever, treated=treated, hypotension=hypotension, hypoxia=hypoxia, death=death)
    assert 0 <= grade <= 5
    assert (grade == 5) is death
