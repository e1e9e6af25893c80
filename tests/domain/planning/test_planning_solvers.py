"""The greedy baseline, the CP-SAT optimizer, the bounds and the independent checker.

Every plan produced here goes through `plan_check`; hand-made instances have their optimum worked
out by hand; generated instances (hypothesis) reach congested and infeasible cases."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from planning_examples import instance_json, with_center

from cartrial.domain.planning import (
    Center,
    Facility,
    Instance,
    Patient,
    Plan,
    PlanStatus,
    instance_from_json,
    plan_check,
    plan_cpsat,
    plan_greedy,
)
from cartrial.domain.planning.bound import capacity_bound
from cartrial.domain.planning.days import Days
from cartrial.domain.planning.generate import generated_instance

MONDAY = date(2027, 1, 4)


def day(n: int) -> date:
    return MONDAY + timedelta(days=n)


def checked(instance: Instance, plan: Plan) -> Plan:
    assert plan_check(instance, plan) == []
    return plan


def both(instance: Instance) -> tuple[Plan, Plan]:
    return checked(instance, plan_greedy(instance)), checked(instance, plan_cpsat(instance, time_limit_s=10))


def test_a_patient_alone_gets_the_earliest_chain() -> None:
    instance = instance_from_json(instance_json(patients=[instance_json()["patients"][0]]))
    greedy, optimum = both(instance)
    assert greedy.objective_days == optimum.objective_days == optimum.lower_bound_days == 8
    assert optimum.status == PlanStatus.OPTIMAL
    row = optimum.patients[0]
    assert (row.apheresis, row.manufacturing_start) == (day(0), day(1))
    assert (row.release, row.product_arrival) == (day(4), day(5))
    # Lymphodepletion as late as the largest gap (4) allows from infusion on day 8, never before release.
    assert (row.lymphodepletion_start, row.infusion) == (day(4), day(8))


def test_the_urgent_patient_goes_first_where_first_come_first_served_does_not() -> None:
    # One apheresis a day, one line: whoever goes second has apheresis on day 1, manufacturing from
    # day 3 (the line is busy on days 1-2) and infusion on day 10. Greedy takes P1 (weight 1) first:
    # 8 + 5 × 10 = 58; the optimum takes P2 (weight 5) first: 5 × 8 + 10 = 50.
    greedy, optimum = both(instance_from_json(instance_json()))
    assert (greedy.status, greedy.objective_days, greedy.lower_bound_days) == (PlanStatus.FEASIBLE, 58, None)
    assert (optimum.status, optimum.objective_days, optimum.lower_bound_days) == (PlanStatus.OPTIMAL, 50, 50)
    infusions = {row.id: row.infusion for row in optimum.patients}
    assert infusions == {"P2": day(8), "P1": day(10)}


def test_infusion_beds_count_per_iso_week() -> None:
    # Infusions on Mondays, one a week: days 14 and 21. Optimum: 3 × 14 + 21 = 63; greedy: 14 + 3 × 21 = 77.
    data = with_center(infusion_weekdays=[0], infusions_per_week=1, apheresis_per_day=2)
    data["patients"][1]["weight"] = 3
    greedy, optimum = both(instance_from_json(data))
    assert (greedy.objective_days, optimum.objective_days, optimum.lower_bound_days) == (77, 63, 63)
    assert sorted(row.infusion for row in optimum.patients) == [day(14), day(21)]


def test_manufacturing_never_starts_on_a_closed_weekday_or_date() -> None:
    # Material arrives on Tuesday (day 1); the facility is closed on Tuesdays and on Wednesday 6 January.
    data = instance_json(patients=[instance_json()["patients"][0]])
    data["facilities"][0] |= {"closed_weekdays": [1], "closed_dates": ["2027-01-06"]}
    greedy, optimum = both(instance_from_json(data))
    assert greedy.patients[0].manufacturing_start == optimum.patients[0].manufacturing_start == day(3)
    assert optimum.objective_days == 10


def test_the_facility_that_releases_first_is_chosen() -> None:
    data = instance_json(patients=[instance_json()["patients"][0]])
    data["facilities"].append({"id": "F2", "lines": 1, "manufacturing_days": 1, "qc_days": 0, "closed_weekdays": []})
    data["centers"][0]["ship_days"] = {"F1": 1, "F2": 1}
    greedy, optimum = both(instance_from_json(data))
    assert greedy.patients[0].facility == optimum.patients[0].facility == "F2"
    # F2: release on day 2, lymphodepletion days 2-4, infusion day 6.
    assert optimum.objective_days == 6


def test_a_horizon_too_short_for_a_patient_alone_is_infeasible() -> None:
    instance = instance_from_json(instance_json(horizon_days=8))
    greedy, optimum = both(instance)
    assert greedy.status == optimum.status == PlanStatus.INFEASIBLE
    assert greedy.unplaced == optimum.unplaced == ("P1", "P2")
    assert optimum.patients == ()


def test_what_first_come_first_served_cannot_place_the_optimizer_places() -> None:
    # LIL infuses on Tuesdays only (days 1 and 8 in 14 days). Greedy gives the line to P1 (BDX) first:
    # P2's batch starts on day 3, infusion ≥ day 10, no Tuesday left. P2 first: infusion on day 8,
    # and P1 (any day at BDX) on day 10.
    data = instance_json(horizon_days=14)
    lille = {**data["centers"][0], "id": "LIL", "infusion_weekdays": [1]}
    data["centers"].append(lille)
    data["patients"][1]["center"] = "LIL"
    instance = instance_from_json(data)
    greedy, optimum = both(instance)
    assert (greedy.status, greedy.unplaced) == (PlanStatus.INFEASIBLE, ("P2",))
    assert (optimum.status, optimum.objective_days) == (PlanStatus.OPTIMAL, 10 + 5 * 8)
    assert {row.id: row.infusion for row in optimum.patients} == {"P1": day(10), "P2": day(8)}


def test_capacities_that_cannot_take_everyone_are_infeasible_for_both() -> None:
    # Mondays only, one a week, 21 days: day 14 only, for one patient.
    instance = instance_from_json(with_center(infusion_weekdays=[0], infusions_per_week=1) | {"horizon_days": 21})
    greedy, optimum = both(instance)
    assert greedy.status == optimum.status == PlanStatus.INFEASIBLE
    assert optimum.unplaced == ("P2",)
    assert [row.id for row in optimum.patients] == ["P1"]
    with pytest.raises(Exception, match="BDX"):
        capacity_bound(Days(instance))


def test_the_capacity_bound_sees_what_the_independent_bound_does_not() -> None:
    days = Days(instance_from_json(instance_json()))
    # Alone: 8 + 5 × 8 = 48. One apheresis a day: the second is on day 1, infused on day 9 alone: 49.
    assert (days.independent_bound(), capacity_bound(days)) == (48, 49)


def test_a_generated_congested_instance_is_improved_and_bounded() -> None:
    instance = generated_instance(7, 40, 4, 2)
    greedy, optimum = both(instance)
    assert greedy.objective_days is not None and optimum.objective_days is not None
    assert optimum.lower_bound_days is not None
    assert optimum.lower_bound_days <= optimum.objective_days < greedy.objective_days
    assert optimum.lower_bound_days >= Days(instance).independent_bound()  # type: ignore[operator]


# The checker: every rule, broken one at a time on a valid plan.
VALID = plan_cpsat(instance_from_json(instance_json()), time_limit_s=10)


def broken(patient: str, **changes: date | str) -> Plan:
    rows = tuple(dataclasses.replace(row, **changes) if row.id == patient else row for row in VALID.patients)
    return dataclasses.replace(VALID, patients=rows)


@pytest.mark.parametrize(
    ("plan", "violation"),
    [
        (broken("P2", apheresis=day(-1)), "P2: apheresis 2027-01-03 before the ready date 2027-01-04"),
        (broken("P1", apheresis=day(0)), "BDX: 2 apheresis on 2027-01-04, at most 1"),
        (broken("P2", manufacturing_start=day(0)), "P2: manufacturing starts 2027-01-04, before the material arrives "
         "(2027-01-04 + 1 days)"),
        (broken("P1", manufacturing_start=day(2)), "F1: 2 batches on its lines on 2027-01-06, at most 1"),
        (broken("P2", release=day(3)), "P2: release 2027-01-07 before manufacturing and QC end (2027-01-08)"),
        (broken("P2", product_arrival=day(4)), "P2: product arrival 2027-01-08 before release + 1 days of shipping"),
        (broken("P2", lymphodepletion_start=day(3)), "P2: lymphodepletion starts 2027-01-07 before release 2027-01-08"),
        (broken("P2", lymphodepletion_start=day(6)), "P2: 0 days from the last lymphodepletion day 2027-01-12 to "
         "infusion, allowed 2 to 4"),
        (broken("P2", infusion=day(4)), "P2: infusion 2027-01-08 before the product arrives 2027-01-09"),
        (broken("P2", infusion=day(70)), "P2: infusion 2027-03-15 is outside the horizon 2027-01-04 to 2027-03-04"),
        (broken("P2", facility="F9"), "P2: facility F9 is not in the instance"),
        (dataclasses.replace(VALID, objective_days=49), "objective_days 49, but Σ weight × days to infusion is 50"),
        (dataclasses.replace(VALID, lower_bound_days=51), "lower_bound_days 51 above the plan's objective 50"),
        (dataclasses.replace(VALID, patients=VALID.patients[:1]), "P2: neither planned nor listed unplaced"),
        (dataclasses.replace(VALID, status=PlanStatus.INFEASIBLE), "status infeasible without any unplaced patient"),
    ],
)  # fmt: skip
def test_the_checker_names_each_broken_rule(plan: Plan, violation: str) -> None:
    assert plan_check(instance_from_json(instance_json()), VALID) == []
    assert violation in plan_check(instance_from_json(instance_json()), plan)


def test_the_checker_knows_weekdays_closed_days_and_iso_weeks() -> None:
    data = with_center(infusion_weekdays=[0, 1, 2, 3], infusions_per_week=1, closed_dates=["2027-01-12"])
    data["facilities"][0]["closed_weekdays"] = [6]
    instance = instance_from_json(data)
    row = VALID.patients[0]
    on_friday = broken(row.id, infusion=day(11), lymphodepletion_start=day(7))  # Friday 15 January
    assert f"{row.id}: infusion 2027-01-15 is not an infusion weekday of BDX" in plan_check(instance, on_friday)
    sunday = broken(row.id, manufacturing_start=day(6))
    assert any("closed weekday of F1" in v for v in plan_check(instance, sunday))
    closed = broken(row.id, infusion=day(8), lymphodepletion_start=day(4))
    assert any("on a closed date of BDX" in v for v in plan_check(instance, closed))
    # P2 moved to Monday 11 January, P1 on Thursday 14: both in ISO week 2, one bed a week.
    same_week = dataclasses.replace(
        VALID, patients=tuple(dataclasses.replace(r, infusion=day(7), lymphodepletion_start=day(3)) if r.id == "P2"
                              else r for r in VALID.patients),
    )  # fmt: skip
    assert "BDX: 2 infusions in ISO week 2027-W02, at most 1" in plan_check(instance, same_week)


# Generated instances: every plan valid, the optimizer never worse than greedy, the bound below both.
@st.composite
def instances(draw: st.DrawFn) -> Instance:
    weekdays = st.frozensets(st.integers(0, 6), min_size=1, max_size=7)
    start = draw(st.dates(date(2026, 12, 14), date(2027, 1, 10)))  # ISO weeks across a year's end
    facilities = tuple(
        Facility(
            id=f"F{i}",
            lines=draw(st.integers(1, 2)),
            manufacturing_days=draw(st.integers(1, 6)),
            qc_days=draw(st.integers(0, 4)),
            closed_weekdays=draw(st.frozensets(st.integers(0, 6), max_size=3)),
        )
        for i in range(draw(st.integers(1, 2)))
    )
    centers = tuple(
        Center(
            id=f"C{i}",
            country="FR",
            apheresis_weekdays=draw(weekdays),
            apheresis_per_day=draw(st.integers(1, 2)),
            infusion_weekdays=draw(weekdays),
            infusions_per_week=draw(st.integers(1, 2)),
            ship_days={f.id: draw(st.integers(0, 3)) for f in facilities},
        )
        for i in range(draw(st.integers(1, 2)))
    )
    patients = tuple(
        Patient(
            id=f"P{i}",
            center=draw(st.sampled_from(centers)).id,
            ready_date=start + timedelta(days=draw(st.integers(-3, 20))),
            weight=draw(st.integers(1, 5)),
        )
        for i in range(draw(st.integers(1, 7)))
    )
    low = draw(st.integers(0, 3))
    return Instance(
        start_date=start,
        horizon_days=draw(st.integers(10, 70)),
        facilities=facilities,
        centers=centers,
        patients=patients,
        lymphodepletion_days=draw(st.integers(1, 4)),
        ld_to_infusion_gap_days=(low, low + draw(st.integers(0, 3))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_every_plan_of_a_generated_instance_is_valid(instance: Instance) -> None:
    greedy, optimum = both(instance)
    bound = Days(instance).independent_bound()
    if greedy.status == PlanStatus.INFEASIBLE:
        event("infeasible for greedy" + (", placed by CP-SAT" if optimum.status != PlanStatus.INFEASIBLE else ""))
        assert set(greedy.unplaced) and set(greedy.unplaced) <= {p.id for p in instance.patients}
        if bound is None:
            assert optimum.status == PlanStatus.INFEASIBLE
        return
    assert optimum.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE)
    assert greedy.objective_days is not None and optimum.objective_days is not None and bound is not None
    assert optimum.lower_bound_days is not None
    assert bound <= optimum.lower_bound_days <= optimum.objective_days <= greedy.objective_days
    event("congested (greedy above the independent bound)" if greedy.objective_days > bound else "uncongested")
    if optimum.objective_days < greedy.objective_days:
        event("CP-SAT better than greedy")


def test_an_instance_with_no_patient_has_an_empty_optimal_plan() -> None:
    instance = instance_from_json(instance_json(patients=[]))
    greedy, optimum = both(instance)
    assert (optimum.status, optimum.objective_days, optimum.patients) == (PlanStatus.OPTIMAL, 0, ())
    assert greedy.objective_days == 0


def test_a_time_limit_too_short_to_search_still_answers_a_valid_plan_no_worse_than_greedy() -> None:
    instance = generated_instance(2, 300, 8, 2)
    greedy = checked(instance, plan_greedy(instance))
    rushed = checked(instance, plan_cpsat(instance, time_limit_s=0.01))
    assert rushed.status == PlanStatus.FEASIBLE
    assert rushed.objective_days is not None and greedy.objective_days is not None
    assert rushed.lower_bound_days is not None
    assert rushed.lower_bound_days < rushed.objective_days <= greedy.objective_days
