"""Re-planning around what is booked (issue 11, item 4): the other bookings become closed days, and
every proposed chain keeps the booking's rules and the planner's checker."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise

from cartrial.domain.booking import Booked, ManufacturingSlot, free_line, iso_week
from cartrial.domain.planning.check import plan_check
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, Plan, PlanStatus
from cartrial.domain.planning.replan import instance_with_booked, replan

MONDAY = date(2026, 12, 7)
LAB = Facility("LAB", lines=1, manufacturing_days=10, qc_days=7, closed_weekdays=frozenset({5, 6}))
BDX = Center(
    "BDX",
    "FR",
    apheresis_weekdays=frozenset({0, 2}),
    apheresis_per_day=1,
    infusion_weekdays=frozenset({0, 1, 2, 3}),
    infusions_per_week=1,
    ship_days={"LAB": 1},
)
INSTANCE = Instance(MONDAY, 120, (LAB,), (BDX,), (), 3, (1, 3))


def _booked() -> Booked:
    """One batch on the only line from Tuesday 8 December, its apheresis on Monday, its bed in W53."""
    booked = Booked()
    booked.batches.append(ManufacturingSlot("LAB", 1, MONDAY + timedelta(days=1)))
    booked.apheresis[("BDX", MONDAY)] += 1
    booked.infusions[("BDX", "2026-W53")] += 1
    return booked


def test_what_is_booked_becomes_closed_days() -> None:
    reduced = instance_with_booked(INSTANCE, _booked())
    lab, bdx = reduced.facilities[0], reduced.centers[0]
    # A batch started from 29 November to 17 December would share the line with the booked one.
    assert MONDAY + timedelta(days=1) in lab.closed_dates and MONDAY + timedelta(days=10) in lab.closed_dates
    assert MONDAY + timedelta(days=11) not in lab.closed_dates
    assert MONDAY in bdx.closed_dates  # the apheresis slot of the day is taken
    assert {d for d in bdx.closed_dates if iso_week(d) == "2026-W53"} == {
        date(2026, 12, 28) + timedelta(days=i) for i in range(7)
    }


def test_replanned_chains_avoid_the_booked_capacity_and_pass_the_checker() -> None:
    booked = _booked()
    patients = [Patient("P1", "BDX", MONDAY, weight=1), Patient("P2", "BDX", MONDAY, weight=3)]
    answer = replan(INSTANCE, booked, patients, time_limit_s=5)
    assert answer.unplaced == () and set(answer.chains) == {"P1", "P2"}
    plans = [plan for plan, _line in answer.chains.values()]
    # One line: neither batch overlaps the booked one nor each other.
    starts = sorted([MONDAY + timedelta(days=1)] + [p.manufacturing_start for p in plans])
    assert all(b - a >= timedelta(days=10) for a, b in pairwise(starts))
    assert MONDAY not in {p.apheresis for p in plans}
    weeks = [iso_week(p.infusion) for p in plans]
    assert "2026-W53" not in weeks and len(set(weeks)) == 2
    # The heavier patient is treated first (Σ weight × days is minimised).
    assert answer.chains["P2"][0].infusion < answer.chains["P1"][0].infusion
    reduced = instance_with_booked(INSTANCE, booked)
    objective = sum(p.weight * (answer.chains[p.id][0].infusion - p.ready_date).days for p in patients)
    checked = Plan(PlanStatus.FEASIBLE, objective, None, tuple(plans))
    assert plan_check(replace(reduced, patients=tuple(patients)), checked) == []
    # The booked state given in is left untouched (the proposal moves nothing).
    assert booked.batches == [ManufacturingSlot("LAB", 1, MONDAY + timedelta(days=1))]
    assert free_line(LAB, booked.batches, MONDAY + timedelta(days=11)) == 1


def test_a_patient_without_room_is_unplaced_never_misplaced() -> None:
    short = Instance(MONDAY, 20, (LAB,), (BDX,), (), 3, (1, 3))
    answer = replan(short, _booked(), [Patient("P1", "BDX", MONDAY)], time_limit_s=2)
    assert answer.chains == {} and answer.unplaced == ("P1",)
