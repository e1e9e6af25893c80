"""Release tests: results read as the lab reports them, boundaries of each specification, the QC verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.manufacturing import (
    QcResultInvalid,
    QcVerdict,
    judge_qc_result,
    parse_release_specification,
    qc_verdict,
)

# The shape of the protocol file's `release_specification` (the demo protocol declares these limits).
SPECIFICATIONS_BY_CODE = parse_release_specification(
    [
        {
            "code": "viability",
            "label": {"en": "Viability", "fr": "Viabilité"},
            "kind": "numeric",
            "unit": "%",
            "minimum": 70,
        },
        {
            "code": "car_expression",
            "label": {"en": "CAR+", "fr": "CAR+"},
            "kind": "numeric",
            "unit": "%",
            "minimum": 10,
        },
        {
            "code": "vector_copy_number",
            "label": {"en": "VCN", "fr": "VCN"},
            "kind": "numeric",
            "unit": "copies/cell",
            "maximum": 5,
        },
        {
            "code": "endotoxin",
            "label": {"en": "Endotoxin", "fr": "Endotoxines"},
            "kind": "numeric",
            "unit": "EU/mL",
            "maximum": 5,
        },
        {"code": "sterility", "label": {"en": "Sterility", "fr": "Stérilité"}, "kind": "negative"},
        {"code": "mycoplasma", "label": {"en": "Mycoplasma", "fr": "Mycoplasmes"}, "kind": "negative"},
    ]
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
    assert judge_qc_result(code, value, SPECIFICATIONS_BY_CODE).conforms is conforms


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
        judge_qc_result(code, value, SPECIFICATIONS_BY_CODE)


def test_verdict_needs_every_test_and_any_failure_is_out_of_specification() -> None:
    all_good = {code: True for code in SPECIFICATIONS_BY_CODE}
    assert qc_verdict(all_good, SPECIFICATIONS_BY_CODE) is QcVerdict.CONFORMS
    missing_one = dict(list(all_good.items())[:-1])
    assert qc_verdict(missing_one, SPECIFICATIONS_BY_CODE) is QcVerdict.INCOMPLETE
    assert qc_verdict({"viability": False}, SPECIFICATIONS_BY_CODE) is QcVerdict.OUT_OF_SPECIFICATION
    assert qc_verdict({}, SPECIFICATIONS_BY_CODE) is QcVerdict.INCOMPLETE


@given(st.dictionaries(st.sampled_from(sorted(SPECIFICATIONS_BY_CODE)), st.booleans()))
def test_verdict_conforms_only_when_complete_and_all_conform(results: dict[str, bool]) -> None:
    verdict = qc_verdict(results, SPECIFICATIONS_BY_CODE)
    complete = set(results) == set(SPECIFICATIONS_BY_CODE)
    assert (verdict is QcVerdict.CONFORMS) == (complete and all(results.values()))
    assert (verdict is QcVerdict.OUT_OF_SPECIFICATION) == (not all(results.values()))


@pytest.mark.parametrize(
    "broken",
    [
        [{"code": "viability", "label": {"en": "V", "fr": "V"}, "kind": "numeric"}],  # no limit
        [{"code": "x", "label": {"en": "X"}, "kind": "negative"}],  # no French label
        [{"code": "x", "label": {"en": "X", "fr": "X"}, "kind": "maybe"}],
        [{"code": "x", "label": {"en": "X", "fr": "X"}, "kind": "negative"}] * 2,  # duplicate
    ],
)
def test_a_broken_release_specification_is_refused(broken: list[dict[str, object]]) -> None:
    with pytest.raises(InvalidInput):
        parse_release_specification(broken)
