"""Release tests: results read as the lab reports them, boundaries of each specification, the QC verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.manufacturing import (
    SPECIFICATIONS_BY_CODE,
    QcResultInvalid,
    QcVerdict,
    judge_qc_result,
    qc_verdict,
)


@pytest.mark.parametrize(
    ("code", "value", "conforms"),
    [
        ("viability", "70", True),  # the limit itself conforms (≥ 70 %)
        ("viability", "69.9", False),
        ("viability", "69,9", False),  # decimal comma
        ("car_expression", "10", True),
        ("car_expression", "9.99", False),
        ("vector_copy_number", "5", True),  # ≤ 5 copies/cell
        ("vector_copy_number", "5.01", False),
        ("endotoxin", "5", True),
        ("endotoxin", "5.1", False),
        ("sterility", "negative", True),
        ("sterility", "Négatif", True),
        ("sterility", "positive", False),
        ("mycoplasma", "pos", False),
    ],
)
def test_each_specification_boundary(code: str, value: str, conforms: bool) -> None:
    assert judge_qc_result(code, value).conforms is conforms


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("viability", ""),
        ("viability", "high"),
        ("viability", "-3"),
        ("viability", "nan"),
        ("sterility", "maybe"),
        ("potency", "1"),
    ],
)
def test_unreadable_results_are_refused(code: str, value: str) -> None:
    with pytest.raises(QcResultInvalid):
        judge_qc_result(code, value)


def test_verdict_needs_every_test_and_any_failure_is_out_of_specification() -> None:
    all_good = {code: True for code in SPECIFICATIONS_BY_CODE}
    assert qc_verdict(all_good) is QcVerdict.CONFORMS
    missing_one = dict(list(all_good.items())[:-1])
    assert qc_verdict(missing_one) is QcVerdict.INCOMPLETE
    assert qc_verdict({"viability": False}) is QcVerdict.OUT_OF_SPECIFICATION
    assert qc_verdict({}) is QcVerdict.INCOMPLETE


@given(st.dictionaries(st.sampled_from(sorted(SPECIFICATIONS_BY_CODE)), st.booleans()))
def test_verdict_conforms_only_when_complete_and_all_conform(results: dict[str, bool]) -> None:
    verdict = qc_verdict(results)
    complete = set(results) == set(SPECIFICATIONS_BY_CODE)
    assert (verdict is QcVerdict.CONFORMS) == (complete and all(results.values()))
    assert (verdict is QcVerdict.OUT_OF_SPECIFICATION) == (not all(results.values()))
