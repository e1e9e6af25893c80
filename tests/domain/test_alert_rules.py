"""The alert rules, pure: each kind's message holds exactly its parameters and names who acts; the lab
values that call for an alert (CTCAE grade ≥ 3 with or without the lab's LLN, IgG below 4 g/L in any
unit); who may acknowledge."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.alerts import (
    ALERT_SPECS,
    CTCAE_TERM_LABELS,
    CTCAE_TERM_OF_ANALYTE,
    IGG_LOW_G_PER_L,
    AlertKind,
    LabFinding,
    lab_findings,
    may_acknowledge,
)
from cartrial.domain.roles import Role
from cartrial.domain.scores.ctcae import grade_lab_value


def test_every_kind_has_a_spec_whose_message_uses_exactly_its_parameters() -> None:
    assert set(ALERT_SPECS) == set(AlertKind)
    for kind, spec in ALERT_SPECS.items():
        placeholders = set(re.findall(r"{(\w+)}", spec.message))
        assert placeholders == set(spec.params), kind
        assert "subject" in placeholders, kind
        assert spec.roles and Role.INVESTIGATOR in spec.roles, kind


def test_the_sponsor_follows_the_sae_clock_and_severe_toxicities_only() -> None:
    followed = {kind for kind, spec in ALERT_SPECS.items() if Role.MONITOR in spec.roles}
    assert followed == {AlertKind.SAE_CLOCK, AlertKind.CRS_GRADE_3, AlertKind.ICANS_GRADE_3}


def _count(analyte: str, value: float, lln: float | None = None, unit: str = "10^9/L") -> list[LabFinding]:
    return list(lab_findings([("item", analyte, {"value": value, "unit": unit, "lower_limit": lln})], visit="D7"))


# Lower limits of normal a lab would print (10^9/L).
USUAL_LLN = {"neutrophils": 1.8, "platelets": 150.0, "lymphocytes": 1.0, "wbc": 4.0}


@pytest.mark.parametrize(
    ("analyte", "value", "grade"),
    [
        ("neutrophils", 0.99, 3),
        ("neutrophils", 0.49, 4),
        ("neutrophils", 1.0, None),  # 1.0 is the lower end of grade 2
        ("platelets", 49.0, 3),
        ("platelets", 50.0, None),
        ("lymphocytes", 0.49, 3),
        ("wbc", 1.99, 3),
    ],
)
def test_a_count_alerts_from_grade_3_with_or_without_the_labs_lower_limit(
    analyte: str, value: float, grade: int | None
) -> None:
    for lln in (None, USUAL_LLN[analyte]):
        findings = lab_findings([("x", analyte, {"value": value, "unit": "10^9/L", "lower_limit": lln})], visit="D7")
        if grade is None:
            assert findings == []
        else:
            (finding,) = findings
            assert finding.kind is AlertKind.LAB_GRADE_3 and finding.params["grade"] == grade
            assert finding.params["term"].msgid == CTCAE_TERM_LABELS[CTCAE_TERM_OF_ANALYTE[analyte]]


@given(value=st.floats(min_value=0.0, max_value=30.0, allow_nan=False))
def test_without_a_lower_limit_the_alert_follows_the_calculator_with_a_normal_lln(value: float) -> None:
    """The grade ≥ 3 decision never depends on whether the lab gave its LLN (any LLN above 1.5)."""
    with_lln = grade_lab_value(term=CTCAE_TERM_OF_ANALYTE["neutrophils"], value=value, unit="10^9/L", lln=1.8)
    assert bool(_count("neutrophils", value)) is (with_lln.grade >= 3)


def test_a_value_at_or_above_the_labs_lower_limit_is_no_alert_even_when_low() -> None:
    assert _count("lymphocytes", 0.45, lln=0.4) == []
    assert len(_count("lymphocytes", 0.45, lln=1.0)) == 1


def test_haemoglobin_is_graded_in_the_unit_the_lab_reported() -> None:
    assert len(_count("hemoglobin", 79.0, unit="g/L")) == 1
    assert _count("hemoglobin", 80.0, unit="g/L") == []
    assert len(_count("hemoglobin", 7.9, unit="g/dL")) == 1
    assert len(_count("hemoglobin", 4.8, unit="mmol/L")) == 1


@pytest.mark.parametrize(
    ("value", "unit", "alerted"),
    [(3.99, "g/L", True), (IGG_LOW_G_PER_L, "g/L", False), (399.0, "mg/dL", True), (400.0, "mg/dL", False)],
)
def test_igg_below_the_threshold_in_either_unit(value: float, unit: str, alerted: bool) -> None:
    findings = _count("igg", value, unit=unit)
    assert bool(findings) is alerted
    if alerted:
        assert findings == lab_findings([("item", "igg", {"value": value, "unit": unit})], visit="D7")
        assert findings[0].kind is AlertKind.IGG_LOW


def test_analytes_without_a_rule_and_unknown_units_raise_nothing() -> None:
    assert _count("alt", 900.0, unit="U/L") == []  # not graded from values by the calculator
    assert _count("c3", 0.1, unit="g/L") == []
    assert _count("igg", 1.0, unit="mmol/L") == []  # no conversion known: not judged


def test_who_may_acknowledge() -> None:
    roles = ["coordinator", "investigator"]
    assert may_acknowledge(Role.COORDINATOR, roles)
    assert may_acknowledge(Role.INVESTIGATOR, ["monitor"])  # the center's investigator, always
    assert not may_acknowledge(Role.MONITOR, roles)
    assert not may_acknowledge(Role.PHARMACIST, roles)
    assert not may_acknowledge(None, roles)
