"""Day indices for the solvers: day 0 is the instance's `start_date`, the last day is
`horizon_days - 1`; which days each center and facility may act on, and the earliest chain of one
patient alone (the independent lower bound). The checker does not use this module: it re-reads the
rules on calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, PatientPlan


@dataclass(frozen=True)
class Chain:
    """One patient's path as day indices (the facility by id)."""

    facility: str
    apheresis: int
    manufacturing_start: int
    infusion: int


class Days:
    """The instance on day indices, computed once per solve."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.horizon = instance.horizon_days
        start = instance.start_date
        dates = [start + timedelta(days=t) for t in range(self.horizon)]
        self.apheresis_open = {
            c.id: [d.weekday() in c.apheresis_weekdays and d not in c.closed_dates for d in dates]
            for c in instance.centers
        }
        self.infusion_open = {
            c.id: [d.weekday() in c.infusion_weekdays and d not in c.closed_dates for d in dates]
            for c in instance.centers
        }
        self.manufacturing_open = {
            f.id: [d.weekday() not in f.closed_weekdays and d not in f.closed_dates for d in dates]
            for f in instance.facilities
        }
        self.week_offset = start.weekday()
        self.centers = {c.id: c for c in instance.centers}

    def ready(self, patient: Patient) -> int:
        """The ready date as a day index (negative when before the start)."""
        return (patient.ready_date - self.instance.start_date).days

    def week(self, day: int) -> int:
        """ISO week counted from the start date's week (weeks start on Monday)."""
        return (day + self.week_offset) // 7

    def lead(self, center: Center, facility: Facility) -> int:
        """Days from manufacturing start to the earliest infusion: manufacturing, QC, then the longer
        of shipping back and lymphodepletion with its smallest gap (it starts on release)."""
        low_gap = self.instance.ld_to_infusion_gap_days[0]
        return (
            facility.manufacturing_days
            + facility.qc_days
            + max(center.ship_days[facility.id], self.instance.lymphodepletion_days - 1 + low_gap)
        )

    @staticmethod
    def first(open_days: list[bool], day: int) -> int | None:
        """The first open day on or after `day`, None past the horizon."""
        for t in range(max(day, 0), len(open_days)):
            if open_days[t]:
                return t
        return None

    def alone(self, patient: Patient) -> Chain | None:
        """The earliest chain of the patient alone, every capacity unlimited (None: none in the
        horizon). Each step's earliest day only grows with the previous one's, so this is optimal."""
        center = self.centers[patient.center]
        apheresis = self.first(self.apheresis_open[center.id], self.ready(patient))
        if apheresis is None:
            return None
        best: Chain | None = None
        for facility in self.instance.facilities:
            start = self.first(self.manufacturing_open[facility.id], apheresis + center.ship_days[facility.id])
            if start is None:
                continue
            infusion = self.first(self.infusion_open[center.id], start + self.lead(center, facility))
            if infusion is not None and (best is None or infusion < best.infusion):
                best = Chain(facility.id, apheresis, start, infusion)
        return best

    @cached_property
    def alone_chains(self) -> dict[str, Chain | None]:
        return {p.id: self.alone(p) for p in self.instance.patients}

    def independent_bound(self) -> int | None:
        """Σ weight × days to infusion, each patient alone with unlimited capacity: a lower bound of
        every plan (None when some patient has no chain in the horizon)."""
        total = 0
        for patient in self.instance.patients:
            chain = self.alone_chains[patient.id]
            if chain is None:
                return None
            total += patient.weight * (chain.infusion - self.ready(patient))
        return total

    def patient_plan(self, patient: Patient, chain: Chain) -> PatientPlan:
        """The dates of a chain: release and arrival as early as the rules allow, lymphodepletion as
        late as its largest gap allows but not before release."""
        center = self.centers[patient.center]
        facility = self.instance.facility(chain.facility)
        high_gap = self.instance.ld_to_infusion_gap_days[1]
        release = chain.manufacturing_start + facility.manufacturing_days + facility.qc_days
        ld_start = max(release, chain.infusion - (self.instance.lymphodepletion_days - 1) - high_gap)
        day = self.instance.start_date
        return PatientPlan(
            id=patient.id,
            facility=facility.id,
            apheresis=day + timedelta(days=chain.apheresis),
            manufacturing_start=day + timedelta(days=chain.manufacturing_start),
            release=day + timedelta(days=release),
            product_arrival=day + timedelta(days=release + center.ship_days[facility.id]),
            lymphodepletion_start=day + timedelta(days=ld_start),
            infusion=day + timedelta(days=chain.infusion),
        )

    def objective(self, chains: dict[str, Chain]) -> int:
        """Σ weight × days from ready date to infusion over the chains."""
        return sum(p.weight * (chains[p.id].infusion - self.ready(p)) for p in self.instance.patients)
