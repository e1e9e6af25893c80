"""SRI-4 (Furie 2009; clinical.md §3.4 and the §3.5 cases)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.sri4 import SRI4_SLEDAI_VERSION, assess_sri4

FAST = settings(max_examples=100, deadline=None)


def _sri4(
    baseline: int, current: int, *, a: int = 0, b: int = 0, pga_before: float = 1.0, pga_now: float = 1.0
) -> list[str]:
    result = assess_sri4(
        baseline_sledai=baseline,
        current_sledai=current,
        new_bilag_a=a,
        new_bilag_b=b,
        baseline_pga=pga_before,
        current_pga=pga_now,
    )
    assert result.responder is (not result.unmet)
    return [u.code for u in result.unmet]


def test_12_to_8_with_pga_up_0_2_responds() -> None:
    # reduction 4 ≥ 4, no new BILAG, PGA +0.2 < 0.3.
    assert _sri4(12, 8, pga_before=1.0, pga_now=1.2) == []


def test_12_to_8_with_pga_up_0_3_does_not_respond() -> None:
    assert _sri4(12, 8, pga_before=1.0, pga_now=1.3) == ["pga_worsening"]


def test_12_to_9_is_only_minus_3() -> None:
    assert _sri4(12, 9) == ["sledai_reduction"]


def test_pga_rise_of_0_3_counts_even_where_binary_floats_say_0_2999() -> None:
    # 0.7 - 0.4 is 0.29999999999999993 in binary floating point; on the 0-3 scale it is a rise of 0.3.
    assert _sri4(12, 6, pga_before=0.4, pga_now=0.7) == ["pga_worsening"]


def test_pga_improvement_is_fine() -> None:
    assert _sri4(10, 2, pga_before=2.0, pga_now=0.5) == []


@pytest.mark.parametrize(("a", "b", "unmet"), [(1, 0, ["new_bilag_a"]), (0, 1, []), (0, 2, ["new_bilag_b"])])
def test_bilag_components(a: int, b: int, unmet: list[str]) -> None:
    assert _sri4(12, 8, a=a, b=b) == unmet


def test_all_three_components_can_fail_together() -> None:
    assert _sri4(6, 6, a=1, b=3, pga_before=0.0, pga_now=1.0) == [
        "sledai_reduction",
        "new_bilag_a",
        "new_bilag_b",
        "pga_worsening",
    ]


def test_the_sledai_version_is_reported() -> None:
    result = assess_sri4(
        baseline_sledai=8, current_sledai=4, new_bilag_a=0, new_bilag_b=0, baseline_pga=1.0, current_pga=1.0
    )
    assert result.sledai_version == SRI4_SLEDAI_VERSION == "SLEDAI-2K"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline": 106, "current": 0}, "baseline_sledai"),
        ({"baseline": 10, "current": -1}, "current_sledai"),
        ({"baseline": 10, "current": 2, "a": -1}, "new_bilag_a"),
        ({"baseline": 10, "current": 2, "b": 10}, "new_bilag_b"),
        ({"baseline": 10, "current": 2, "a": 5, "b": 5}, "new_bilag_b"),
        ({"baseline": 10, "current": 2, "pga_now": 3.5}, "current_pga"),
    ],
)
def test_out_of_range_inputs_are_refused(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        _sri4(**kwargs)
    assert [e["field"] for e in caught.value.field_errors] == [field]


@FAST
@given(
    baseline=st.integers(0, 105),
    current=st.integers(0, 105),
    a=st.integers(0, 4),
    b=st.integers(0, 4),
    pga_before_tenths=st.integers(0, 30),
    pga_now_tenths=st.integers(0, 30),
)
def test_response_matches_the_rule_in_exact_tenths(
    baseline: int, current: int, a: int, b: int, pga_before_tenths: int, pga_now_tenths: int
) -> None:
    # PGA recorded to 0.1: compare in whole tenths, where "a rise < 0.3" is "a rise < 3 tenths".
    unmet = _sri4(baseline, current, a=a, b=b, pga_before=pga_before_tenths / 10, pga_now=pga_now_tenths / 10)
    expected = baseline - current >= 4 and a == 0 and b <= 1 and pga_now_tenths - pga_before_tenths < 3
    assert (unmet == []) is expected
