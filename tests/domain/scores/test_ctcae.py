"""CTCAE v5.0 decreased blood counts (clinical.md §4.3): each band edge, lower limit exclusive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores.ctcae import CTCAE_VERSION, CtcaeLabTerm, grade_lab_value
from cartrial.domain.scores.errors import CalculatorInputError

FAST = settings(max_examples=80, deadline=None)
T = CtcaeLabTerm

# (term, LLN, value, expected grade), read off the v5.0 table: "<1.5-1.0" means 1.0 ≤ x < 1.5.
COUNT_EDGES = [
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 2.0, 0),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 1.99, 1),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 1.5, 1),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 1.49, 2),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 1.0, 2),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 0.99, 3),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 0.5, 3),
    (T.NEUTROPHIL_COUNT_DECREASED, 2.0, 0.49, 4),
    (T.PLATELET_COUNT_DECREASED, 150.0, 150.0, 0),
    (T.PLATELET_COUNT_DECREASED, 150.0, 75.0, 1),
    (T.PLATELET_COUNT_DECREASED, 150.0, 74.9, 2),
    (T.PLATELET_COUNT_DECREASED, 150.0, 50.0, 2),
    (T.PLATELET_COUNT_DECREASED, 150.0, 49.9, 3),
    (T.PLATELET_COUNT_DECREASED, 150.0, 25.0, 3),
    (T.PLATELET_COUNT_DECREASED, 150.0, 24.9, 4),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 3.0, 1),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 2.9, 2),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 2.0, 2),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 1.9, 3),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 1.0, 3),
    (T.WHITE_BLOOD_CELL_DECREASED, 4.0, 0.9, 4),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.8, 1),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.79, 2),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.5, 2),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.49, 3),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.2, 3),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.19, 4),
    (T.LYMPHOCYTE_COUNT_DECREASED, 1.0, 0.0, 4),
]


@pytest.mark.parametrize(("term", "lln", "value", "grade"), COUNT_EDGES)
def test_count_band_edges(term: CtcaeLabTerm, lln: float, value: float, grade: int) -> None:
    assert grade_lab_value(term=term, value=value, unit="10^9/L", lln=lln).grade == grade


@pytest.mark.parametrize(
    ("unit", "lln", "value", "grade"),
    [
        ("g/dL", 12.0, 12.0, 0),
        ("g/dL", 12.0, 10.0, 1),
        ("g/dL", 12.0, 9.9, 2),
        ("g/dL", 12.0, 8.0, 2),
        ("g/dL", 12.0, 7.9, 3),
        ("g/dL", 12.0, 3.0, 3),
        ("g/L", 120.0, 100.0, 1),
        ("g/L", 120.0, 99.0, 2),
        ("g/L", 120.0, 80.0, 2),
        ("g/L", 120.0, 79.0, 3),
        ("mmol/L", 7.4, 6.2, 1),
        ("mmol/L", 7.4, 6.1, 2),
        ("mmol/L", 7.4, 4.9, 2),
        ("mmol/L", 7.4, 4.8, 3),
    ],
)
def test_anemia_band_edges_in_each_printed_unit(unit: str, lln: float, value: float, grade: int) -> None:
    assert grade_lab_value(term=T.ANEMIA, value=value, unit=unit, lln=lln).grade == grade


def test_anemia_is_graded_against_the_bound_printed_for_the_reported_unit() -> None:
    # 6.2 mmol/L is 9.99 g/dL (6.2 / 0.6206): grade 2 after conversion, but CTCAE prints "<LLN-6.2 mmol/L"
    # for grade 1, and ANEMIA_BOUNDS_BY_UNIT grades in the reported unit.
    assert grade_lab_value(term=T.ANEMIA, value=6.2, unit="mmol/L", lln=7.4).grade == 1


def test_value_below_lln_but_above_grade_2_band_is_grade_1_even_with_a_low_lln() -> None:
    # Lymphocytes 0.85 with LLN 0.9: below LLN, above 0.8 → grade 1.
    assert grade_lab_value(term=T.LYMPHOCYTE_COUNT_DECREASED, value=0.85, unit="10^9/L", lln=0.9).grade == 1


def test_version_is_reported() -> None:
    result = grade_lab_value(term=T.NEUTROPHIL_COUNT_DECREASED, value=0.3, unit="10^9/L", lln=1.8)
    assert result.version == CTCAE_VERSION == "5.0"


@pytest.mark.parametrize(
    ("term", "unit"),
    [(T.ANEMIA, "10^9/L"), (T.NEUTROPHIL_COUNT_DECREASED, "g/dL"), (T.PLATELET_COUNT_DECREASED, "/uL")],
)
def test_unit_that_does_not_fit_the_term_is_refused(term: CtcaeLabTerm, unit: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        grade_lab_value(term=term, value=1.0, unit=unit, lln=2.0)
    assert caught.value.field_errors[0]["field"] == "unit"


@pytest.mark.parametrize(
    ("term", "value", "unit", "lln", "field"),
    [
        (T.ANEMIA, 130.0, "g/dL", 12.0, "value"),  # 130 g/L typed as g/dL
        (T.PLATELET_COUNT_DECREASED, 150000.0, "10^9/L", 150.0, "value"),  # per µL typed as 10^9/L
        (T.NEUTROPHIL_COUNT_DECREASED, -0.1, "10^9/L", 1.8, "value"),
        (T.NEUTROPHIL_COUNT_DECREASED, 1.0, "10^9/L", 0.0, "lln"),
    ],
)
def test_implausible_values_are_refused(term: CtcaeLabTerm, value: float, unit: str, lln: float, field: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        grade_lab_value(term=term, value=value, unit=unit, lln=lln)
    assert caught.value.field_errors[0]["field"] == field


counts = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)


@FAST
@given(
    term=st.sampled_from([t for t in T if t is not T.ANEMIA]),
    value=counts,
    lower=counts,
    lln=st.floats(min_value=0.1, max_value=500.0),
)
def test_a_lower_count_never_gets_a_lower_grade(term: CtcaeLabTerm, value: float, lower: float, lln: float) -> None:
    low, high = sorted((value, lower))
    grade_high = grade_lab_value(term=term, value=high, unit="10^9/L", lln=lln).grade
    grade_low = grade_lab_value(term=term, value=low, unit="10^9/L", lln=lln).grade
    assert grade_low >= grade_high
    assert (grade_high == 0) is (high >= lln)


@FAST
@given(value=st.floats(min_value=0.0, max_value=25.0), lln=st.floats(min_value=0.1, max_value=25.0))
def test_anemia_is_never_grade_4_from_a_value(value: float, lln: float) -> None:
    assert grade_lab_value(term=T.ANEMIA, value=value, unit="g/dL", lln=lln).grade <= 3
