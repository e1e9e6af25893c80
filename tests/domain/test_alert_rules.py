"""The alert rules, pure: each kind's message holds exactly its parameters and names who acts; the lab
values that call for an alert (CTCAE grade ≥ 3 with or without the lab's LLN, IgG below 4 g/L in any
unit); who may acknowledge; the SAE clock's stages (each report due, then overdue); CRS/ICANS
grade ≥ 3 once per episode."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.alerts import (
    ALERT_SPECS,
    CTCAE_TERM_LABELS,
    CTCAE_TERM_OF_ANALYTE,
    IGG_LOW_G_PER_L,
    SAE_REPORT_LABELS,
    AlertKind,
    LabFinding,
    SaeClockAlert,
    SaeReport,
    SevereEpisode,
    lab_findings,
    may_acknowledge,
    sae_clock_alert,
    severe_episodes_reached,
    toxicity_day,
)
from cartrial.domain.roles import Role
from cartrial.domain.safety.sae_clock import ReportKind, SaeClockRules, SentReport, sae_clock_state
from cartrial.domain.scores.ctcae import grade_lab_value
from cartrial.domain.toxicity import DailyGrade, ToxicityKind


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


# --- the SAE clock: which report, due or overdue, each stage once ---------------------------------

AWARE = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
RULES = SaeClockRules(initial_report_hours=24, follow_up_interval_days=7)


def _stage(now: datetime, sent: list[SentReport], final: bool = False) -> SaeClockAlert | None:
    state = sae_clock_state(awareness_at=AWARE, sent=sent, outcome_final=final, rules=RULES, now=now)
    return sae_clock_alert(state)


def test_a_new_sae_alerts_its_initial_report_due_then_overdue() -> None:
    due = _stage(AWARE + timedelta(hours=1), [])
    assert due is not None
    assert (due.report, due.due_at, due.overdue) == (SaeReport.INITIAL_DUE, AWARE + timedelta(hours=24), False)
    assert due.key(12) == "12/initial/1/due"
    late = _stage(AWARE + timedelta(hours=25), [])
    assert late is not None and late.report is SaeReport.INITIAL_OVERDUE and late.key(12) == "12/initial/1/overdue"


def test_each_follow_up_is_its_own_stage_and_the_final_report_closes_the_clock() -> None:
    initial = SentReport(ReportKind.INITIAL, AWARE + timedelta(hours=20))
    first = _stage(AWARE + timedelta(days=2), [initial])
    assert first is not None and first.report is SaeReport.FOLLOW_UP_DUE
    assert (first.key(5), first.due_at) == ("5/follow_up/1/due", initial.sent_at + timedelta(days=7))
    follow_up = SentReport(ReportKind.FOLLOW_UP, AWARE + timedelta(days=6))
    second = _stage(AWARE + timedelta(days=20), [initial, follow_up])
    assert second is not None and second.key(5) == "5/follow_up/2/overdue"
    assert second.report is SaeReport.FOLLOW_UP_OVERDUE
    final = _stage(AWARE + timedelta(days=7), [initial, follow_up], final=True)
    assert final is not None and (final.report, final.key(5)) == (SaeReport.FINAL_DUE, "5/final/1/due")
    closed = [initial, follow_up, SentReport(ReportKind.FINAL, AWARE + timedelta(days=8))]
    assert _stage(AWARE + timedelta(days=30), closed, final=True) is None


def test_every_stage_of_the_clock_has_a_label() -> None:
    assert set(SAE_REPORT_LABELS) == set(SaeReport)
    assert {f"{kind.value}_{status}" for kind in ReportKind for status in ("due", "overdue")} == {
        r.value for r in SaeReport
    }


# --- CRS / ICANS grade ≥ 3: once per episode ------------------------------------------------------


def _grades(*grades: int, start: int = 1) -> list[DailyGrade]:
    return [DailyGrade(start + i, g) for i, g in enumerate(grades)]


def test_grade_2_is_no_alert_and_the_first_grade_3_day_of_an_episode_is() -> None:
    assert severe_episodes_reached(ToxicityKind.CRS, _grades(1), _grades(1, 2)) == []
    reached = severe_episodes_reached(ToxicityKind.CRS, _grades(1, 2), _grades(1, 2, 3))
    assert reached == [SevereEpisode(ToxicityKind.CRS, onset_day=1, day=3, grade=3)]
    assert reached[0].key == "episode/D1" and reached[0].alert_kind is AlertKind.CRS_GRADE_3


def test_a_later_day_of_an_episode_already_severe_raises_nothing() -> None:
    # D4 grade 4 in the episode that reached 3 on D3; D2 entered late, moving the onset: still no alert.
    assert severe_episodes_reached(ToxicityKind.CRS, _grades(1, 2, 3), _grades(1, 2, 3, 4)) == []
    assert severe_episodes_reached(ToxicityKind.ICANS, _grades(3, start=3), _grades(1, 3, start=2)) == []


def test_a_new_episode_after_resolution_is_alerted_again() -> None:
    before = _grades(1, 3, 1, 0, 1)
    reached = severe_episodes_reached(ToxicityKind.ICANS, before, [*before, DailyGrade(6, 3)])
    assert reached == [SevereEpisode(ToxicityKind.ICANS, onset_day=5, day=6, grade=3)]
    assert reached[0].alert_kind is AlertKind.ICANS_GRADE_3


def test_a_correction_to_grade_3_is_alerted_and_a_correction_below_it_raises_nothing() -> None:
    assert severe_episodes_reached(ToxicityKind.CRS, _grades(1, 2, 1), _grades(1, 3, 1)) == [
        SevereEpisode(ToxicityKind.CRS, 1, 2, 3)
    ]
    assert severe_episodes_reached(ToxicityKind.CRS, _grades(1, 3, 1), _grades(1, 2, 1)) == []


def test_the_day_of_a_toxicity_alert_reads_in_each_language() -> None:
    day = toxicity_day(3, date(2026, 3, 5))
    assert day.render() == "2026-03-05 (D3)"
    assert day.render(lambda msgid: {"{date} (D{day})": "{date} (J{day})"}.get(msgid, msgid), "fr") == (
        "2026-03-05 (J3)"
    )
