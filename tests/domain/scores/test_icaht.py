"""Neutrophil ICAHT, early and late (Rejeski 2023 as operationalised in clinical.md §4.4)."""

from __future__ import annotations

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain.scores import icaht
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.icaht import AncValue, grade_icaht

FAST = settings(max_examples=60, deadline=None)
NORMAL = 2000.0


def daily(low: dict[range, float], *, last_day: int = 30) -> list[AncValue]:
    """A count every day 0..last_day: NORMAL except the given day ranges."""
    values = {day: NORMAL for day in range(last_day + 1)}
    for days, anc in low.items():
        for day in days:
            values[day] = anc
    return [AncValue(day=d, anc_per_ul=a) for d, a in sorted(values.items())]


def early(values: list[AncValue], rule: icaht.EarlyDurationRule = "cumulative") -> int | None:
    return grade_icaht(anc=values, early_duration=rule).early.grade


# clinical.md §4.4 suggested tests (ANC/µL, cumulative default).
def test_five_days_at_or_below_500_is_grade_1() -> None:
    # days 3-7 ≤ 500 → 5 days, within 1-6 → grade 1; never ≤ 100.
    assert early(daily({range(3, 8): 400.0})) == 1


def test_ten_days_with_three_at_or_below_100_is_grade_2() -> None:
    # ≤ 500 on days 2-11 = 10 days → 2; ≤ 100 on 3 days (< 7) adds nothing.
    assert early(daily({range(2, 12): 300.0, range(5, 8): 50.0})) == 2


def test_ten_days_with_eight_at_or_below_100_is_grade_3() -> None:
    # ≤ 100 on days 3-10 = 8 days, within 7-13 → grade 3.
    assert early(daily({range(2, 12): 300.0, range(3, 11): 50.0})) == 3


def test_twenty_days_at_or_below_500_is_grade_3() -> None:
    # days 1-20 = 20 days, within 14-30 → grade 3.
    assert early(daily({range(1, 21): 400.0})) == 3


def test_whole_window_without_recovery_is_grade_4() -> None:
    # days 0-30 = 31 days → grade 4.
    assert early(daily({range(31): 400.0})) == 4


def test_fourteen_days_at_or_below_100_is_grade_4() -> None:
    # ≤ 100 on days 5-18 = 14 days → grade 4 (≤ 500 for the same 14 days alone would be 3).
    assert early(daily({range(5, 19): 50.0})) == 4


@pytest.mark.parametrize(("anc", "grade"), [(500.0, 2), (500.1, 0)])
def test_exactly_500_counts_as_at_or_below(anc: float, grade: int) -> None:
    # 7 days at exactly 500 → 7 days ≤ 500 → grade 2; at 500.1 nothing counts.
    assert early(daily({range(3, 10): anc})) == grade


@pytest.mark.parametrize(("days", "grade"), [(1, 1), (6, 1), (7, 2), (13, 2), (14, 3), (30, 3), (31, 4)])
def test_duration_edges_at_or_below_500(days: int, grade: int) -> None:
    assert early(daily({range(0, days): 450.0})) == grade


@pytest.mark.parametrize(("days", "grade"), [(6, 1), (7, 3), (13, 3), (14, 4)])
def test_duration_edges_at_or_below_100(days: int, grade: int) -> None:
    # 6 days ≤ 100 are also 6 days ≤ 500 → grade 1 from the 500 row.
    assert early(daily({range(0, days): 100.0})) == grade


def test_a_rise_shorter_than_3_days_does_not_end_the_period() -> None:
    # ≤ 500 days 3-5, above on 6-7 (2 days), ≤ 500 on 8-9: one period 3-9 = 7 days → grade 2
    # (without the bridge it would be 5 days → grade 1).
    values = daily({range(3, 6): 400.0, range(8, 10): 400.0})
    result = grade_icaht(anc=values).early
    assert (result.days_anc_le_500, result.grade) == (7, 2)


def test_a_rise_of_3_days_is_a_recovery() -> None:
    # ≤ 500 days 3-5, above on 6-8 (3 days = recovery), ≤ 500 on 9-10: 3 + 2 = 5 days → grade 1.
    values = daily({range(3, 6): 400.0, range(9, 11): 400.0})
    result = grade_icaht(anc=values).early
    assert (result.days_anc_le_500, result.grade) == (5, 1)


def test_cumulative_and_longest_episode_differ_on_two_episodes() -> None:
    # Two 4-day episodes (days 2-5 and 12-15) with a 6-day recovery: cumulative 8 → 2; longest 4 → 1.
    values = daily({range(2, 6): 400.0, range(12, 16): 400.0})
    assert icaht.EARLY_ICAHT_DURATION == "cumulative"
    assert early(values) == 2
    assert early(values, "longest_episode") == 1


def test_days_between_close_counts_are_interpolated() -> None:
    # Counts on days 0 (1000), 4 (200), 8 (1000): interpolated 800, 600, 400 | 200 | 400, 600, 800;
    # ≤ 500 on days 3, 4, 5 = 3 days → grade 1. Days 9-30 have no value and are listed.
    values = [AncValue(0, 1000.0), AncValue(4, 200.0), AncValue(8, 1000.0)]
    result = grade_icaht(anc=values).early
    assert (result.days_anc_le_500, result.grade) == (3, 1)
    assert result.days_without_value == tuple(range(9, 31))


def test_days_in_a_long_gap_have_no_value_and_are_not_counted() -> None:
    # Counts 10 days apart (> 7): days 1-9 unknown, so only days 0 and 10 count → 2 days → grade 1.
    values = [AncValue(0, 200.0), AncValue(10, 200.0)]
    result = grade_icaht(anc=values).early
    assert (result.days_anc_le_500, result.grade) == (2, 1)
    assert result.days_without_value[:9] == tuple(range(1, 10))


def test_no_count_in_days_0_to_30_leaves_early_ungraded() -> None:
    result = grade_icaht(anc=[AncValue(45, 800.0)])
    assert result.early.grade is None
    assert result.late.grade == 2  # single value 800 ≤ 1000


def test_no_count_after_day_30_leaves_late_ungraded() -> None:
    assert grade_icaht(anc=daily({})).late.grade is None


def _late(*anc: float) -> int | None:
    values = [AncValue(day=40 + 10 * i, anc_per_ul=a) for i, a in enumerate(anc)]
    return grade_icaht(anc=values).late.grade


def test_late_nadir_800_confirmed_by_1200_is_grade_2() -> None:
    # nadir 800 ≤ 1000 → 2; second-lowest 1200 ≤ 1500 confirms.
    assert _late(2500.0, 800.0, 1200.0, 3000.0) == 2


def test_late_nadir_400_not_confirmed_is_transient() -> None:
    # nadir 400 but second-lowest 1600 > 1500 → transient → 0.
    assert _late(400.0, 1600.0, 2000.0) == 0


@pytest.mark.parametrize(
    ("anc", "grade"), [(1500.0, 1), (1500.5, 0), (1000.0, 2), (1000.5, 1), (500.0, 3), (100.0, 4), (100.5, 3)]
)
def test_late_single_value_depth_edges(anc: float, grade: int) -> None:
    assert _late(anc) == grade


def test_late_window_is_days_31_to_100() -> None:
    values = [AncValue(30, 300.0), AncValue(31, 1400.0), AncValue(100, 1300.0), AncValue(101, 50.0)]
    result = grade_icaht(anc=values)
    assert (result.late.grade, result.late.values_in_window) == (1, 2)
    assert result.ignored_days == (101,)


@pytest.mark.parametrize(
    ("anc", "field"),
    [
        ([], "anc"),
        ([AncValue(-3, 500.0)], "anc[0].day"),
        ([AncValue(2, 500.0), AncValue(2, 600.0)], "anc[1].day"),
        ([AncValue(2, -1.0)], "anc[0].anc_per_ul"),
        ([AncValue(2, float("nan"))], "anc[0].anc_per_ul"),
    ],
)
def test_invalid_series_are_refused(anc: list[AncValue], field: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        grade_icaht(anc=anc)
    assert caught.value.field_errors[0]["field"] == field


series = st.dictionaries(
    keys=st.integers(min_value=0, max_value=120),
    values=st.floats(min_value=0.0, max_value=5000.0),
    min_size=1,
    max_size=40,
)


def test_the_series_generator_reaches_series_graded_early_and_late_above_0() -> None:
    """The property below compares grades only where both exist: the generator gives such series."""

    def graded(counts: dict[int, float]) -> bool:
        result = grade_icaht(anc=[AncValue(d, a) for d, a in counts.items()])
        return bool(result.early.grade and result.late.grade)

    assert graded(find(series, graded, settings=settings(database=None)))


@FAST
@given(counts=series, data=st.data())
def test_lowering_one_count_never_lowers_a_grade(counts: dict[int, float], data: st.DataObject) -> None:
    day = data.draw(st.sampled_from(sorted(counts)))
    lowered = dict(counts)
    lowered[day] = data.draw(st.floats(min_value=0.0, max_value=counts[day]))
    rule = data.draw(st.sampled_from(["cumulative", "longest_episode"]))
    before = grade_icaht(anc=[AncValue(d, a) for d, a in counts.items()], early_duration=rule)
    after = grade_icaht(anc=[AncValue(d, a) for d, a in lowered.items()], early_duration=rule)
    event(f"graded: early {before.early.grade is not None}, late {before.late.grade is not None}")
    for old, new in ((before.early.grade, after.early.grade), (before.late.grade, after.late.grade)):
        assert (old is None) == (new is None)
        if old is not None and new is not None:
            assert 0 <= old <= new <= 4
