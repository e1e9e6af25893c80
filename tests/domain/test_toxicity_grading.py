"""Daily CRS/ICANS grades through the calculators, episodes, days due and ICAHT from a series."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain import toxicity
from cartrial.domain.errors import InvalidInput
from cartrial.domain.quantities import BODY_TEMPERATURE_C
from cartrial.domain.toxicity import (
    AncSample,
    AssessedDay,
    DailyGrade,
    ToxicityKind,
    anc_sample,
    assessment_day,
    assessment_days_due,
    assessment_grades,
    assessment_inputs_parse,
    crs_ongoing_before,
    episodes_from,
    icaht_from_samples,
    series_grades,
)
from cartrial.protocols import active_protocol

CRS = ToxicityKind.CRS
D0 = date(2026, 3, 2)


def _inputs(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "temperature_c": 37.0,
        "hypotension": "none",
        "hypoxia": "none",
        "ice_score": 10,
        "consciousness": "normal",
        "seizure": "none",
        "motor_weakness": "none",
        "cerebral_edema": "none",
        "tocilizumab_given": False,
        "corticosteroids_given": False,
    }
    return base | changes


# --- grades through the calculators ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "crs", "icans"),
    [
        ({}, 0, 0),
        ({"temperature_c": 38.0}, 1, 0),  # 38.0 °C exactly is fever
        ({"temperature_c": 37.9}, 0, 0),
        ({"temperature_c": 38.5, "hypoxia": "low_flow"}, 2, 0),
        ({"temperature_c": 39.0, "hypotension": "one_vasopressor", "hypoxia": "low_flow"}, 3, 0),
        ({"ice_score": 8}, 0, 1),
        ({"ice_score": 5, "consciousness": "awakens_to_voice"}, 0, 2),
        ({"ice_score": 0, "consciousness": "unarousable"}, 0, 4),
        ({"ice_score": None, "seizure": "rapidly_resolving"}, 0, 3),
    ],
)
def test_a_day_is_graded_by_the_astct_calculators(changes: dict[str, Any], crs: int, icans: int) -> None:
    grades = assessment_grades(assessment_inputs_parse(_inputs(**changes)), crs_ongoing=False)
    assert (grades.crs.grade, grades.icans.grade) == (crs, icans)


# --- treated without fever: only a patient who has CRS (ASTCT, clinical.md §4.1) --------------------

TOCILIZUMAB = {"tocilizumab_given": True}
STEROIDS = {"corticosteroids_given": True}


@pytest.mark.parametrize(
    ("changes", "crs_ongoing", "crs"),
    [
        # Ongoing CRS then tocilizumab or steroids: fever no longer required, graded on hypotension/hypoxia.
        (TOCILIZUMAB, True, 1),
        (STEROIDS, True, 1),
        (TOCILIZUMAB | {"hypotension": "no_vasopressor"}, True, 2),
        (STEROIDS | {"hypoxia": "high_flow"}, True, 3),
        # Ongoing CRS, afebrile, nothing given that day: not CRS that day.
        ({}, True, 0),
        # No CRS before: the treatment (e.g. steroids for ICANS) does not waive fever.
        (STEROIDS | {"ice_score": 4}, False, 0),
        (TOCILIZUMAB | {"hypotension": "no_vasopressor"}, False, 0),
        # Fever is CRS with or without an episode before.
        ({"temperature_c": 38.2} | STEROIDS, False, 1),
    ],
)
def test_treatment_waives_fever_only_for_an_ongoing_crs(changes: dict[str, Any], crs_ongoing: bool, crs: int) -> None:
    grades = assessment_grades(assessment_inputs_parse(_inputs(**changes)), crs_ongoing=crs_ongoing)
    assert grades.crs.grade == crs


def _days(inputs: dict[int, dict[str, Any]]) -> list[AssessedDay]:
    return [AssessedDay(day, assessment_inputs_parse(_inputs(**changes))) for day, changes in inputs.items()]


def test_steroids_for_icans_on_afebrile_days_without_crs_give_no_crs() -> None:
    """MTL-001 of the demo: no CRS before, grade 2 ICANS D5–D6 treated with dexamethasone."""
    icans = STEROIDS | {"ice_score": 4}
    graded = series_grades(_days({0: {}, 1: {}, 2: {}, 3: {}, 4: {}, 5: icans, 6: icans, 7: {}}))
    assert [graded[d].crs.grade for d in range(8)] == [0] * 8
    assert [graded[d].icans.grade for d in (5, 6)] == [2, 2]


def test_tocilizumab_on_afebrile_d3_after_fever_d1_d2_keeps_the_crs() -> None:
    fever = {"temperature_c": 38.6}
    graded = series_grades(_days({0: {}, 1: fever, 2: fever, 3: TOCILIZUMAB, 4: {}}))
    assert [graded[d].crs.grade for d in range(5)] == [0, 1, 1, 1, 0]
    [episode] = episodes_from(CRS, [DailyGrade(d, g.crs.grade) for d, g in graded.items()])
    assert (episode.onset_day, episode.duration_days, episode.resolved_day) == (1, 3, 4)
    # Steroids for an ICANS after the CRS resolved (D4 graded 0): no CRS again.
    later = series_grades(
        _days({5: STEROIDS | {"ice_score": 5}}), earlier=[DailyGrade(d, g.crs.grade) for d, g in graded.items()]
    )
    assert later[5].crs.grade == 0


def test_ongoing_follows_the_episode_rule_and_its_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2 grade-0 days needed to resolve, CRS is still ongoing after a single grade-0 day."""
    series = [DailyGrade(1, 1), DailyGrade(2, 0)]
    assert not crs_ongoing_before(3, series) and crs_ongoing_before(2, series)
    assert crs_ongoing_before(5, [DailyGrade(1, 1), DailyGrade(2, 2)])  # D3, D4 not assessed: still ongoing
    monkeypatch.setattr(toxicity, "EPISODE_RESOLUTION_GRADE_0_DAYS", 2)
    assert crs_ongoing_before(3, series)
    graded = series_grades(_days({3: TOCILIZUMAB}), earlier=series)
    assert graded[3].crs.grade == 1


def test_a_series_refuses_earlier_grades_after_its_first_day() -> None:
    with pytest.raises(ValueError, match="before"):
        series_grades(_days({2: {}}), earlier=[DailyGrade(3, 1)])


@pytest.mark.parametrize(
    ("changes", "item", "code"),
    [
        ({"temperature_c": 55}, "temperature_c", "value_implausible"),
        ({"temperature_c": "warm"}, "temperature_c", "value_not_a_number"),
        ({"ice_score": 11}, "ice_score", "value_implausible"),
        ({"ice_score": 7.5}, "ice_score", "value_not_a_number"),
        ({"hypoxia": "mask"}, "hypoxia", "item_choice"),
        ({"hypotension": None}, "hypotension", "item_required"),
        ({"ice_score": 6, "consciousness": "unarousable"}, "ice_score", "item_range"),
        ({"tocilizumab_given": "perhaps"}, "tocilizumab_given", "value_not_a_boolean"),
        ({"ferritin": 3}, "ferritin", "item_unknown"),
    ],
)
def test_bad_inputs_are_refused_naming_the_item(changes: dict[str, Any], item: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refusal:
        assessment_inputs_parse(_inputs(**changes))
    assert (refusal.value.item, refusal.value.code) == (item, code)


def test_the_temperature_range_is_the_vital_signs_one() -> None:
    item = active_protocol().forms["vital_signs"].item("temperature_c")
    assert (item.minimum, item.maximum) == BODY_TEMPERATURE_C.bounds()


def test_an_assessment_before_d0_or_without_an_infusion_is_refused() -> None:
    with pytest.raises(InvalidInput) as before:
        assessment_day(assessed_on=date(2026, 3, 1), infusion_date=D0, today=date(2026, 3, 10))
    assert (before.value.code, before.value.item) == ("assessment_before_d0", "assessed_on")
    assert "before D0" in str(before.value) and "D-1" in str(before.value)
    with pytest.raises(InvalidInput) as no_infusion:
        assessment_day(assessed_on=D0, infusion_date=None, today=D0)
    assert no_infusion.value.code == "assessment_before_infusion"
    with pytest.raises(InvalidInput) as future:
        assessment_day(assessed_on=date(2026, 3, 11), infusion_date=D0, today=date(2026, 3, 10))
    assert future.value.code == "date_in_future"
    assert assessment_day(assessed_on=D0, infusion_date=D0, today=D0) == 0
    assert assessment_day(assessed_on=date(2026, 3, 4), infusion_date=D0, today=date(2026, 3, 10)) == 2


# --- episodes -----------------------------------------------------------------------------------


def _series(
    grades: dict[int, int],
    tocilizumab: frozenset[int] | set[int] = frozenset(),
    steroids: frozenset[int] | set[int] = frozenset(),
) -> list[DailyGrade]:
    return [DailyGrade(day, grade, day in tocilizumab, day in steroids) for day, grade in grades.items()]


def test_a_grade_2_crs_on_d2_of_d1_to_d4_is_one_episode() -> None:
    series = _series({0: 0, 1: 1, 2: 2, 3: 1, 4: 1, 5: 0, 6: 0}, tocilizumab={2})
    [episode] = episodes_from(CRS, series)
    assert (episode.onset_day, episode.max_grade, episode.duration_days) == (1, 2, 4)
    assert (episode.tocilizumab, episode.steroids, episode.resolved_day, episode.ongoing) == (True, False, 5, False)


def test_an_episode_without_a_grade_0_day_after_it_is_ongoing() -> None:
    [episode] = episodes_from(CRS, _series({0: 0, 1: 1, 2: 2, 3: 1}, steroids={3}))
    assert episode.ongoing and episode.resolved_day is None
    assert (episode.duration_days, episode.steroids) == (3, True)


def test_a_grade_0_day_ends_an_episode_and_a_day_not_assessed_does_not() -> None:
    assert toxicity.EPISODE_RESOLUTION_GRADE_0_DAYS == 1
    # D3 graded 0 splits; D6 not assessed does not.
    episodes = episodes_from(CRS, _series({1: 1, 2: 1, 3: 0, 4: 2, 5: 1, 7: 1, 8: 0}))
    assert [(e.onset_day, e.duration_days, e.resolved_day) for e in episodes] == [(1, 2, 3), (4, 4, 8)]


def test_the_gap_rule_joins_runs_split_by_fewer_grade_0_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2 grade-0 days needed to resolve, one grade-0 day inside is part of the episode."""
    monkeypatch.setattr(toxicity, "EPISODE_RESOLUTION_GRADE_0_DAYS", 2)
    episodes = episodes_from(CRS, _series({1: 1, 2: 0, 3: 2, 4: 0, 5: 0, 6: 1}, tocilizumab={2}))
    assert [(e.onset_day, e.max_grade, e.duration_days, e.resolved_day, e.tocilizumab) for e in episodes] == [
        (1, 2, 3, 4, True),
        (6, 1, 1, None, False),
    ]


def test_no_positive_grade_no_episode() -> None:
    assert episodes_from(CRS, _series({0: 0, 1: 0})) == []
    with pytest.raises(ValueError, match="twice"):
        episodes_from(CRS, [DailyGrade(1, 1), DailyGrade(1, 0)])


# --- days due -----------------------------------------------------------------------------------


def test_days_due_are_d0_to_d14_then_every_day_of_an_ongoing_episode() -> None:
    due = assessment_days_due(assessed_days={0, 1, 2, 4}, episodes=[], today_day=5, assessment_days=14)
    assert due.required == (0, 1, 2, 3, 4, 5) and due.missing == (3, 5)
    all_assessed = set(range(0, 15))
    resolved = episodes_from(CRS, _series({13: 1, 14: 0}))
    after = assessment_days_due(assessed_days=all_assessed, episodes=resolved, today_day=20, assessment_days=14)
    assert after.required == tuple(range(0, 15)) and after.missing == ()
    ongoing = episodes_from(CRS, _series({13: 1, 14: 2}))
    lasting = assessment_days_due(assessed_days=all_assessed, episodes=ongoing, today_day=17, assessment_days=14)
    assert lasting.missing == (15, 16, 17)
    assert assessment_days_due(assessed_days=(), episodes=[], today_day=-1, assessment_days=14).required == ()


# --- ICAHT --------------------------------------------------------------------------------------


def test_icaht_from_the_haematology_series_in_lab_units() -> None:
    """ANC ≤ 500/µL on D2–D11 (10 days, 0.3 ×10⁹/L), then recovered: early grade 2; late 0.8 and 1.2 → 2."""
    samples = [AncSample(-6, 0.1, "10^9/L")]  # before D0: not graded
    samples += [AncSample(day, 0.3, "10^9/L") for day in range(2, 12)]
    samples += [AncSample(day, 2.0, "10^9/L") for day in (0, 1, 12, 13, 14)]
    samples += [AncSample(40, 0.8, "10^9/L"), AncSample(60, 1200, "cells/µL"), AncSample(90, 2.5, "10^9/L")]
    result = icaht_from_samples(samples)
    assert result is not None
    assert (result.grades.early.grade, result.grades.late.grade) == (2, 2)
    assert result.grades.early.days_anc_le_500 == 10
    assert result.series[0].day == 0 and result.series[2].anc_per_ul == pytest.approx(300.0)
    assert icaht_from_samples([AncSample(-3, 0.1, "10^9/L")]) is None


def test_an_anc_as_the_ecrf_stores_it() -> None:
    assert anc_sample(3, 0.4) == AncSample(3, 0.4, "10^9/L")
    assert anc_sample(3, {"value": 400, "unit": "cells/uL", "lower_limit": 1500, "upper_limit": 7000}) == AncSample(
        3, 400.0, "cells/uL"
    )
    assert anc_sample(3, None) is None and anc_sample(3, {"value": None, "unit": "10^9/L"}) is None


def test_two_counts_on_one_day_keep_the_lower() -> None:
    result = icaht_from_samples([AncSample(5, 0.9, "10^9/L"), AncSample(5, 0.4, "10^9/L")])
    assert result is not None and [v.anc_per_ul for v in result.series] == [pytest.approx(400.0)]


def test_the_protocol_declares_the_daily_window() -> None:
    assert active_protocol().pathway_rules.toxicity_assessment_days == 14


# --- a property of the episodes over any series ---------------------------------------------------

# Days 0–20, each assessed or not, graded 0–4: a subject's series as recorded.
daily_series = st.dictionaries(st.integers(0, 20), st.integers(0, 4), max_size=21)


def _shape(grades: dict[int, int]) -> str:
    episodes = episodes_from(CRS, _series(grades))
    if len(episodes) >= 2 and episodes[-1].ongoing:
        return "several, the last ongoing"
    return "several" if len(episodes) >= 2 else f"{len(episodes)}"


def test_the_series_generator_reaches_several_episodes_and_an_ongoing_one() -> None:
    for shape in ("0", "1", "several", "several, the last ongoing"):
        found = find(
            daily_series,
            lambda g, shape=shape: _shape(g) == shape,
            settings=settings(database=None, max_examples=5000, derandomize=True),
        )
        assert _shape(found) == shape


@settings(max_examples=300, deadline=None)
@given(daily_series)
def test_every_positive_day_is_in_exactly_one_episode_and_only_the_last_may_be_ongoing(grades: dict[int, int]) -> None:
    event(_shape(grades))
    episodes = episodes_from(CRS, _series(grades))
    positive = sorted(day for day, grade in grades.items() if grade >= 1)
    covering = [[e for e in episodes if e.onset_day <= day <= e.last_day] for day in positive]
    assert all(len(c) == 1 for c in covering)
    for episode in episodes:
        inside = [grade for day, grade in grades.items() if episode.onset_day <= day <= episode.last_day]
        assert episode.max_grade == max(inside) and grades[episode.onset_day] >= 1 and grades[episode.last_day] >= 1
        if episode.resolved_day is not None:
            assert grades[episode.resolved_day] == 0 and episode.resolved_day > episode.last_day
    assert all(not e.ongoing for e in episodes[:-1])
    last_assessed = max(grades, default=None)
    assert bool(episodes and episodes[-1].ongoing) == (last_assessed is not None and grades[last_assessed] >= 1)


# --- a property of the treated-afebrile rule over any series ---------------------------------------

# Days 0–12, each assessed or not: afebrile or febrile, hypoxia or not, a treatment or not.
day_inputs = st.fixed_dictionaries(
    {
        "temperature_c": st.sampled_from([37.0, 38.5]),
        "hypoxia": st.sampled_from(["none", "none", "low_flow"]),
        "tocilizumab_given": st.booleans(),
        "corticosteroids_given": st.booleans(),
    }
)
assessed_series = st.dictionaries(st.integers(0, 12), day_inputs, max_size=13)


def _case(inputs: dict[int, dict[str, Any]]) -> str:
    graded = series_grades(_days(inputs))
    treated_afebrile = [
        d
        for d, i in inputs.items()
        if i["temperature_c"] < 38 and (i["tocilizumab_given"] or i["corticosteroids_given"])
    ]
    if any(graded[d].crs.grade >= 1 for d in treated_afebrile):
        return "treated afebrile day in a CRS"
    return "treated afebrile day without CRS" if treated_afebrile else "no treated afebrile day"


def test_the_series_generator_reaches_treated_afebrile_days_with_and_without_crs() -> None:
    for case in ("treated afebrile day in a CRS", "treated afebrile day without CRS", "no treated afebrile day"):
        found = find(
            assessed_series,
            lambda s, case=case: _case(s) == case,
            settings=settings(database=None, max_examples=5000, derandomize=True),
        )
        assert _case(found) == case


@settings(max_examples=300, deadline=None)
@given(assessed_series)
def test_an_afebrile_day_is_crs_only_when_treated_within_an_ongoing_crs(inputs: dict[int, dict[str, Any]]) -> None:
    event(_case(inputs))
    graded = series_grades(_days(inputs))
    ordered = sorted(inputs)
    for index, day in enumerate(ordered):
        day_inputs = inputs[day]
        crs = graded[day].crs.grade
        if day_inputs["temperature_c"] >= 38:
            assert crs >= 1
            continue
        previous = graded[ordered[index - 1]].crs.grade if index else 0
        treated = day_inputs["tocilizumab_given"] or day_inputs["corticosteroids_given"]
        assert (crs >= 1) == (previous >= 1 and treated), (day, previous, day_inputs)
    # Grading again from any day, the days before kept as graded, gives the same grades (the cascade).
    for start in ordered:
        earlier = [DailyGrade(d, graded[d].crs.grade) for d in ordered if d < start]
        again = series_grades([a for a in _days(inputs) if a.day >= start], earlier=earlier)
        assert {d: g.crs.grade for d, g in again.items()} == {d: graded[d].crs.grade for d in ordered if d >= start}
