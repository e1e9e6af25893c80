"""The independent checker of a plan: every rule of the contract, read again on calendar dates.

Written apart from the solvers (no day indices, no shared helper): a plan that a solver gets wrong
is caught here, so every plan the tests produce is checked by it. Returns the violations, one
sentence each naming the patient and the rule; an empty list means the plan is valid.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from cartrial.domain.planning.instance import Instance, Plan, PlanStatus


def plan_check(instance: Instance, plan: Plan) -> list[str]:
    """Every violation of the instance's rules by the plan (empty: valid)."""
    problems: list[str] = []
    patients = {p.id: p for p in instance.patients}
    centers = {c.id: c for c in instance.centers}
    facilities = {f.id: f for f in instance.facilities}
    first_day = instance.start_date
    last_day = instance.start_date + timedelta(days=instance.horizon_days - 1)
    low_gap, high_gap = instance.ld_to_infusion_gap_days

    planned = [row.id for row in plan.patients]
    for patient_id, count in Counter([*planned, *plan.unplaced]).items():
        if patient_id not in patients:
            problems.append(f"{patient_id}: not a patient of the instance")
        elif count > 1:
            problems.append(f"{patient_id}: planned or listed unplaced {count} times")
    for patient_id in patients:
        if patient_id not in planned and patient_id not in plan.unplaced:
            problems.append(f"{patient_id}: neither planned nor listed unplaced")

    if plan.status not in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE, PlanStatus.INFEASIBLE):
        problems.append(f"status {plan.status!r} is not optimal, feasible or infeasible")
    if plan.unplaced and plan.status != PlanStatus.INFEASIBLE:
        problems.append(f"status {plan.status} while {len(plan.unplaced)} patients are unplaced")
    if plan.status == PlanStatus.INFEASIBLE and not plan.unplaced:
        problems.append("status infeasible without any unplaced patient")

    apheresis_per_day: Counter[tuple[str, date]] = Counter()
    infusions_per_week: Counter[tuple[str, int, int]] = Counter()
    batches: dict[str, list[tuple[date, date]]] = {f: [] for f in facilities}
    objective = 0
    for row in plan.patients:
        patient = patients.get(row.id)
        if patient is None:
            continue
        center = centers[patient.center]
        facility = facilities.get(row.facility)
        if facility is None:
            problems.append(f"{row.id}: facility {row.facility} is not in the instance")
            continue
        ship = center.ship_days[facility.id]
        steps = [
            ("apheresis", row.apheresis),
            ("manufacturing start", row.manufacturing_start),
            ("release", row.release),
            ("product arrival", row.product_arrival),
            ("lymphodepletion start", row.lymphodepletion_start),
            ("infusion", row.infusion),
        ]
        for name, day in steps:
            if not first_day <= day <= last_day:
                problems.append(f"{row.id}: {name} {day} is outside the horizon {first_day} to {last_day}")
        if row.apheresis < patient.ready_date:
            problems.append(f"{row.id}: apheresis {row.apheresis} before the ready date {patient.ready_date}")
        if row.apheresis.weekday() not in center.apheresis_weekdays:
            problems.append(f"{row.id}: apheresis {row.apheresis} is not an apheresis weekday of {center.id}")
        if row.apheresis in center.closed_dates:
            problems.append(f"{row.id}: apheresis {row.apheresis} on a closed date of {center.id}")
        apheresis_per_day[center.id, row.apheresis] += 1
        if row.manufacturing_start < row.apheresis + timedelta(days=ship):
            problems.append(
                f"{row.id}: manufacturing starts {row.manufacturing_start}, before the material arrives "
                f"({row.apheresis} + {ship} days)"
            )
        if row.manufacturing_start.weekday() in facility.closed_weekdays:
            problems.append(
                f"{row.id}: manufacturing starts {row.manufacturing_start}, closed weekday of {facility.id}"
            )
        if row.manufacturing_start in facility.closed_dates:
            problems.append(f"{row.id}: manufacturing starts {row.manufacturing_start}, a closed date of {facility.id}")
        batches[facility.id].append(
            (row.manufacturing_start, row.manufacturing_start + timedelta(days=facility.manufacturing_days))
        )
        earliest_release = row.manufacturing_start + timedelta(days=facility.manufacturing_days + facility.qc_days)
        if row.release < earliest_release:
            problems.append(f"{row.id}: release {row.release} before manufacturing and QC end ({earliest_release})")
        if row.product_arrival < row.release + timedelta(days=ship):
            problems.append(f"{row.id}: product arrival {row.product_arrival} before release + {ship} days of shipping")
        if row.lymphodepletion_start < row.release:
            problems.append(
                f"{row.id}: lymphodepletion starts {row.lymphodepletion_start} before release {row.release}"
            )
        if row.infusion < row.product_arrival:
            problems.append(f"{row.id}: infusion {row.infusion} before the product arrives {row.product_arrival}")
        if row.infusion.weekday() not in center.infusion_weekdays:
            problems.append(f"{row.id}: infusion {row.infusion} is not an infusion weekday of {center.id}")
        if row.infusion in center.closed_dates:
            problems.append(f"{row.id}: infusion {row.infusion} on a closed date of {center.id}")
        iso = row.infusion.isocalendar()
        infusions_per_week[center.id, iso.year, iso.week] += 1
        last_ld_day = row.lymphodepletion_start + timedelta(days=instance.lymphodepletion_days - 1)
        gap = (row.infusion - last_ld_day).days
        if not low_gap <= gap <= high_gap:
            problems.append(
                f"{row.id}: {gap} days from the last lymphodepletion day {last_ld_day} to infusion, "
                f"allowed {low_gap} to {high_gap}"
            )
        objective += patient.weight * (row.infusion - patient.ready_date).days

    for (center_id, day), count in sorted(apheresis_per_day.items()):
        if count > centers[center_id].apheresis_per_day:
            problems.append(f"{center_id}: {count} apheresis on {day}, at most {centers[center_id].apheresis_per_day}")
    for (center_id, year, week), count in sorted(infusions_per_week.items()):
        if count > centers[center_id].infusions_per_week:
            problems.append(
                f"{center_id}: {count} infusions in ISO week {year}-W{week:02d}, "
                f"at most {centers[center_id].infusions_per_week}"
            )
    for facility_id, spans in batches.items():
        facility = facilities[facility_id]
        busy: Counter[date] = Counter()
        for begin, end in spans:
            day = begin
            while day < end:
                busy[day] += 1
                day += timedelta(days=1)
        for day, count in sorted(busy.items()):
            if count > facility.lines:
                problems.append(f"{facility_id}: {count} batches on its lines on {day}, at most {facility.lines}")

    if plan.status == PlanStatus.INFEASIBLE:
        if plan.objective_days is not None or plan.lower_bound_days is not None:
            problems.append("an infeasible plan has neither objective nor bound")
    else:
        if plan.objective_days != objective:
            problems.append(f"objective_days {plan.objective_days}, but Σ weight × days to infusion is {objective}")
        bound = plan.lower_bound_days
        if bound is not None and bound > objective:
            problems.append(f"lower_bound_days {bound} above the plan's objective {objective}")
        if plan.status == PlanStatus.OPTIMAL and bound is not None and bound != objective:
            problems.append(f"status optimal while the bound {bound} is below the objective {objective}")
    return problems
