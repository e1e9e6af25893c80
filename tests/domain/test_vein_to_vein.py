"""Vein-to-vein measures: hand-computed medians and ranges, per center and overall, and step durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.vein_to_vein import ALL_CENTERS, Milestones, days_between, step_durations, summarise

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _m(code: str, center: str, release_days: float | None, infusion_days: float | None) -> Milestones:
    return Milestones(
        code,
        center,
        T0,
        T0 + timedelta(days=release_days) if release_days is not None else None,
        T0 + timedelta(days=infusion_days) if infusion_days is not None else None,
    )


def test_median_and_range_per_center_and_overall_by_hand() -> None:
    rows = [
        _m("BDX-001", "BDX", 14, 24),
        _m("BDX-002", "BDX", 18, 30),
        _m("BDX-003", "BDX", 16, None),  # released, not yet infused
        _m("LIL-001", "LIL", 20, 27),
        _m("LIL-002", "LIL", None, None),  # still in manufacturing
    ]
    summary = summarise(rows)
    bdx = summary["BDX"]
    # Apheresis → release at BDX: 14, 16, 18 → median 16, range 14–18.
    assert (bdx["apheresis_to_release"].count, bdx["apheresis_to_release"].median_days) == (3, 16)
    assert (bdx["apheresis_to_release"].min_days, bdx["apheresis_to_release"].max_days) == (14, 18)
    # Vein to vein at BDX: 24 and 30 → median 27 (mean of the two middle values).
    assert bdx["apheresis_to_infusion"].median_days == 27
    # Release → infusion at BDX: 10 and 12.
    assert bdx["release_to_infusion"].values_days == (10, 12)
    everyone = summary[ALL_CENTERS]
    # Overall apheresis → release: 14, 16, 18, 20 → median 17; vein to vein 24, 27, 30 → median 27.
    assert everyone["apheresis_to_release"].median_days == 17
    assert everyone["apheresis_to_infusion"].values_days == (24, 27, 30)
    assert summary["LIL"]["apheresis_to_infusion"].count == 1


def test_no_patient_reached_an_interval_gives_no_median() -> None:
    summary = summarise([_m("PAR-001", "PAR", None, None)])
    assert summary["PAR"]["apheresis_to_release"].count == 0
    assert summary["PAR"]["apheresis_to_release"].median_days is None


def test_durations_cross_a_clock_change_in_real_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 24 wall-clock hours across the end of summer time are 25 real hours.
    start = datetime(2026, 10, 24, 12, 0, tzinfo=paris)
    end = datetime(2026, 10, 25, 12, 0, tzinfo=paris)
    assert days_between(start, end) == pytest.approx(25 / 24)


def test_step_durations_name_each_step_by_its_two_milestones_and_refuse_backwards_records() -> None:
    steps = step_durations([("A", T0), ("B", T0 + timedelta(days=2)), ("C", T0 + timedelta(days=2.5))])
    assert [(s.label, s.days) for s in steps] == [("A → B", 2.0), ("B → C", 0.5)]
    with pytest.raises(ValueError, match="out of order"):
        step_durations([("A", T0), ("B", T0 - timedelta(hours=1))])


@given(st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=30))
def test_median_lies_within_the_range_and_steps_sum_to_the_total(days: list[float]) -> None:
    rows = [_m(f"BDX-{i:03d}", "BDX", d, d + 5) for i, d in enumerate(days)]
    interval = summarise(rows)["BDX"]["apheresis_to_release"]
    assert interval.min_days <= interval.median_days <= interval.max_days  # type: ignore[operator]
    points = [(str(i), T0 + timedelta(days=d)) for i, d in enumerate(sorted(days))]
    total = sum(step.days for step in step_durations(points))
    assert total == pytest.approx(days_between(points[0][1], points[-1][1]), abs=1e-6)
