"""The planning problem and its answer as plain data (issue 11): an instance of the vein-to-vein
calendar and a plan, with the names and keys of the `cartrial plan` contract (docs/planning.md).

Weekdays count from 0 = Monday (`date.weekday()`); every day is a calendar date. The solvers
(greedy, CP-SAT), the lower bound, the checker, the simulation and the app's booking all speak
these types, so that a plan checked here is the plan booked there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Facility:
    """A manufacturing facility: `lines` batches at once, each holding its line `manufacturing_days`;
    QC (`qc_days`) follows without holding the line; no batch starts on a `closed_weekdays` day."""

    id: str
    lines: int
    manufacturing_days: int
    qc_days: int
    closed_weekdays: frozenset[int] = frozenset()
    closed_dates: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Center:
    """A treating center: apheresis on its weekdays (at most `apheresis_per_day`), infusions on its
    weekdays (at most `infusions_per_week` per ISO week), `ship_days` to and from each facility."""

    id: str
    country: str
    apheresis_weekdays: frozenset[int]
    apheresis_per_day: int
    infusion_weekdays: frozenset[int]
    infusions_per_week: int
    ship_days: dict[str, int]
    closed_dates: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Patient:
    """A patient to plan: ready for apheresis from `ready_date` at `center`; `weight` scales each day
    of waiting in the objective (urgency)."""

    id: str
    center: str
    ready_date: date
    weight: int = 1


@dataclass(frozen=True)
class Instance:
    """One planning problem: from `start_date`, over `horizon_days` days."""

    start_date: date
    horizon_days: int
    facilities: tuple[Facility, ...]
    centers: tuple[Center, ...]
    patients: tuple[Patient, ...]
    lymphodepletion_days: int
    ld_to_infusion_gap_days: tuple[int, int]

    def facility(self, facility_id: str) -> Facility:
        return next(f for f in self.facilities if f.id == facility_id)

    def center(self, center_id: str) -> Center:
        return next(c for c in self.centers if c.id == center_id)


@dataclass(frozen=True)
class PatientPlan:
    """The dates of one patient's vein-to-vein path (the contract's keys)."""

    id: str
    facility: str
    apheresis: date
    manufacturing_start: date
    release: date
    product_arrival: date
    lymphodepletion_start: date
    infusion: date


class PlanStatus:
    """The contract's `status` values."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class Plan:
    """A solver's answer: `objective_days` = Σ weight × days from ready date to infusion;
    `lower_bound_days` a proven bound (None for greedy); `unplaced` the patients that cannot be
    placed when the status is infeasible (never a wrong plan)."""

    status: str
    objective_days: int | None
    lower_bound_days: int | None
    patients: tuple[PatientPlan, ...]
    unplaced: tuple[str, ...] = field(default=())
