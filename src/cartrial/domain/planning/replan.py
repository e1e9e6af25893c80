"""Re-planning (issue 11, item 4): new dates for the patients a QC failure, a late shipment or a
moved visit affects, the other bookings held as used capacity.

The planner's instance has no per-day counters, so what the other bookings hold becomes closed days
(a batch start with no line free for its whole run, an apheresis day that is full, every day of a
full infusion week). That is conservative; the solver's chains are then checked one by one against
what is booked (`booking_check`, the booking's own rules) and the planner's checker (`plan_check`):
a chain that fails either is replaced by the earliest free chain, never proposed wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from cartrial.domain.booking import (
    Booked,
    BookingRequest,
    ManufacturingSlot,
    booking_check,
    free_line,
    iso_week,
    slots_propose,
)
from cartrial.domain.errors import DomainError
from cartrial.domain.planning.check import plan_check
from cartrial.domain.planning.cpsat import plan_cpsat
from cartrial.domain.planning.greedy import plan_greedy
from cartrial.domain.planning.instance import Instance, Patient, PatientPlan, Plan, PlanStatus
from cartrial.domain.text import N_

# The dates a proposal compares, in the pathway's order (the `cartrial plan` contract's keys).
PLAN_DATES: tuple[str, ...] = (
    "apheresis",
    "manufacturing_start",
    "release",
    "product_arrival",
    "lymphodepletion_start",
    "infusion",
)

# Their names on the pages (msgids for gettext).
PLAN_DATE_LABELS: dict[str, str] = {
    "apheresis": N_("Apheresis"),
    "manufacturing_start": N_("Manufacturing start"),
    "release": N_("Release"),
    "product_arrival": N_("Product arrival"),
    "lymphodepletion_start": N_("Lymphodepletion start"),
    "infusion": N_("Infusion (D0)"),
}


@dataclass(frozen=True)
class Replan:
    """The proposed chain per patient (with its line), the solver that found it, and who could not be placed."""

    chains: dict[str, tuple[PatientPlan, int]]
    solver: str
    unplaced: tuple[str, ...]


def _days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(count + 1)]


def instance_with_booked(instance: Instance, booked: Booked) -> Instance:
    """The instance with what `booked` holds closed: batch starts without a free line for the whole
    run, full apheresis days, every day of a full infusion week."""
    days = _days(instance.start_date, instance.horizon_days)
    facilities = tuple(
        replace(
            f,
            closed_dates=f.closed_dates | {d for d in days if free_line(f, booked.batches, d) is None},
        )
        for f in instance.facilities
    )
    centers = tuple(
        replace(
            c,
            closed_dates=c.closed_dates
            | {
                d
                for d in days
                if booked.apheresis[(c.id, d)] >= c.apheresis_per_day
                or booked.infusions[(c.id, iso_week(d))] >= c.infusions_per_week
            },
        )
        for c in instance.centers
    )
    return replace(instance, facilities=facilities, centers=centers)


def _hold(booked: Booked, instance: Instance, request: BookingRequest) -> tuple[PatientPlan, int] | None:
    """The chain of `request` if the booking's rules allow it, then held in `booked`."""
    try:
        chain = booking_check(instance, booked, request)
    except DomainError:
        return None
    booked.batches.append(ManufacturingSlot(chain.plan.facility, chain.line, chain.plan.manufacturing_start))
    booked.apheresis[(request.center, chain.plan.apheresis)] += 1
    booked.infusions[(request.center, iso_week(chain.plan.infusion))] += 1
    return chain.plan, chain.line


def replan(instance: Instance, booked: Booked, patients: Sequence[Patient], time_limit_s: float = 5.0) -> Replan:
    """New chains for `patients` around what `booked` holds: CP-SAT with a short time limit, the
    greedy baseline when it finds nothing; every chain checked before it is proposed."""
    reduced = replace(instance_with_booked(instance, booked), patients=tuple(patients))
    plan: Plan = plan_cpsat(reduced, time_limit_s=time_limit_s)
    solver = "cpsat"
    if plan.status not in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE) or plan_check(reduced, plan):
        plan, solver = plan_greedy(reduced), "greedy"
    found = {row.id: row for row in plan.patients} if not plan_check(reduced, plan) else {}
    held = Booked(list(booked.batches), booked.apheresis.copy(), booked.infusions.copy())
    chains: dict[str, tuple[PatientPlan, int]] = {}
    unplaced: list[str] = []
    for patient in patients:
        row = found.get(patient.id)
        chain = (
            _hold(
                held,
                instance,
                BookingRequest(patient.center, row.apheresis, row.facility, row.manufacturing_start, row.infusion),
            )
            if row is not None
            else None
        )
        if chain is None:
            earliest = slots_propose(instance, held, patient.center, patient.ready_date, 1)
            chain = (
                _hold(
                    held,
                    instance,
                    BookingRequest(
                        patient.center,
                        earliest[0].plan.apheresis,
                        earliest[0].plan.facility,
                        earliest[0].plan.manufacturing_start,
                        earliest[0].plan.infusion,
                    ),
                )
                if earliest
                else None
            )
            solver = solver if row is not None or chain is None else f"{solver}+earliest"
        if chain is None:
            unplaced.append(patient.id)
        else:
            chains[patient.id] = (replace(chain[0], id=patient.id), chain[1])
    return Replan(chains, solver, tuple(unplaced))
