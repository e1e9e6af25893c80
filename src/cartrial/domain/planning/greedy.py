"""First come, first served: what a coordinator does by hand, and the baseline of the optimizer.

Patients are taken in ready-date order (then by id); each takes the earliest apheresis slot left at
its center, the facility whose line releases the product first (a line free for the whole
manufacturing), and the earliest infusion bed left after the product is there and lymphodepletion
is done. Nothing is moved once booked, so a later, more urgent patient waits behind an earlier one.
A patient with no complete chain inside the horizon is left unplaced (the plan is then infeasible).
"""

from __future__ import annotations

from collections import defaultdict

from cartrial.domain.planning.days import Chain, Days
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, Plan, PlanStatus


class _Bookings:
    """What is booked so far: apheresis per center and day, lines per facility and day, infusions
    per center and week."""

    def __init__(self, days: Days) -> None:
        self.days = days
        self.apheresis: dict[str, list[int]] = {c.id: [0] * days.horizon for c in days.instance.centers}
        self.lines: dict[str, list[int]] = {
            f.id: [0] * (days.horizon + f.manufacturing_days) for f in days.instance.facilities
        }
        self.infusions: defaultdict[tuple[str, int], int] = defaultdict(int)

    def apheresis_day(self, center: Center, day: int) -> int | None:
        open_days = self.days.apheresis_open[center.id]
        used = self.apheresis[center.id]
        for t in range(max(day, 0), self.days.horizon):
            if open_days[t] and used[t] < center.apheresis_per_day:
                return t
        return None

    def manufacturing_day(self, facility: Facility, day: int) -> int | None:
        """The first open day from `day` with a line free for the whole manufacturing."""
        open_days = self.days.manufacturing_open[facility.id]
        used = self.lines[facility.id]
        t = max(day, 0)
        while t < self.days.horizon:
            if not open_days[t]:
                t += 1
                continue
            busy = next((u for u in range(t, t + facility.manufacturing_days) if used[u] >= facility.lines), None)
            if busy is None:
                return t
            t = busy + 1
        return None

    def infusion_day(self, center: Center, day: int) -> int | None:
        open_days = self.days.infusion_open[center.id]
        for t in range(max(day, 0), self.days.horizon):
            if open_days[t] and self.infusions[center.id, self.days.week(t)] < center.infusions_per_week:
                return t
        return None

    def chain(self, patient: Patient) -> Chain | None:
        center = self.days.centers[patient.center]
        apheresis = self.apheresis_day(center, self.days.ready(patient))
        if apheresis is None:
            return None
        best: tuple[tuple[int, int], Chain] | None = None
        for facility in self.days.instance.facilities:
            start = self.manufacturing_day(facility, apheresis + center.ship_days[facility.id])
            if start is None:
                continue
            infusion = self.infusion_day(center, start + self.days.lead(center, facility))
            if infusion is None:
                continue
            release = start + facility.manufacturing_days + facility.qc_days
            if best is None or (release, infusion) < best[0]:
                best = ((release, infusion), Chain(facility.id, apheresis, start, infusion))
        return None if best is None else best[1]

    def book(self, patient: Patient, chain: Chain) -> None:
        self.apheresis[patient.center][chain.apheresis] += 1
        facility = self.days.instance.facility(chain.facility)
        used = self.lines[facility.id]
        for t in range(chain.manufacturing_start, chain.manufacturing_start + facility.manufacturing_days):
            used[t] += 1
        self.infusions[patient.center, self.days.week(chain.infusion)] += 1


def greedy_chains(days: Days, urgency: int = 0) -> tuple[dict[str, Chain], list[str]]:
    """The first-come-first-served chains and the patients left unplaced (in ready-date order).

    With `urgency` > 0, a patient is served as if ready `urgency` × weight days earlier: the
    optimizer tries a few such orders for its starting point; the coordinator's baseline is 0."""
    bookings = _Bookings(days)
    chains: dict[str, Chain] = {}
    unplaced: list[str] = []
    order = sorted(days.instance.patients, key=lambda p: (days.ready(p) - urgency * p.weight, p.ready_date, p.id))
    for patient in order:
        chain = bookings.chain(patient)
        if chain is None:
            unplaced.append(patient.id)
            continue
        bookings.book(patient, chain)
        chains[patient.id] = chain
    return chains, unplaced


def plan_greedy(instance: Instance) -> Plan:
    """The coordinator's plan by hand: feasible (no bound), or infeasible with the patients it could
    not place and the others' dates."""
    days = Days(instance)
    chains, unplaced = greedy_chains(days)
    return plan_of_chains(days, chains, unplaced, PlanStatus.FEASIBLE, None)


def plan_of_chains(days: Days, chains: dict[str, Chain], unplaced: list[str], status: str, bound: int | None) -> Plan:
    """A plan from chains, in the instance's patient order; infeasible (no objective, no bound)
    whenever a patient is unplaced."""
    placed = tuple(days.patient_plan(p, chains[p.id]) for p in days.instance.patients if p.id in chains)
    if unplaced:
        return Plan(PlanStatus.INFEASIBLE, None, None, placed, tuple(unplaced))
    return Plan(status, days.objective(chains), bound, placed)
