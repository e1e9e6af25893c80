"""The trial network as a discrete-event simulation (SimPy), day by day (issue 11).

Patients arrive at each center (Poisson), are screened (some fail), included, and become ready for
apheresis. A planning policy books each one an apheresis slot at its center together with a
manufacturing line at a facility downstream (never an apheresis without a line); the batch runs for
a drawn duration on a line (a SimPy resource: never more batches than lines), QC follows, ~4 % of
batches fail (remanufacture from the retained material, a new apheresis, or no infusion); the
released product ships back and the infusion is booked in a bed of the center's week, after the
lymphodepletion. Two policies share that booking: first-come-first-served (the coordinator by
hand: each patient booked as soon as included, at the earliest dates) and optimised (every
`replan_every_days`, the patients waiting for a date are planned together by the CP-SAT planner,
then booked in its order at its facilities).

Every random draw of a patient comes from the patient's own stream (seed, patient number), so both
policies see the same patients, durations and failures (common random numbers): the difference
between them is the policy's. Deterministic per seed (the optimised policy too when CP-SAT proves
its weekly plans optimal within its time limit, which the small weekly pools allow).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import holidays
import numpy as np
import simpy

from cartrial.domain import planning
from cartrial.domain.errors import InvalidInput
from cartrial.domain.simulation.parameters import CenterParameters, FacilityParameters, SimulationParameters

GREEDY = "greedy"
OPTIMISED = "optimised"
POLICIES = (GREEDY, OPTIMISED)

SCREEN_FAILED = "screen_failed"
INFUSED = "infused"
NO_INFUSION = "no_infusion"
IN_PROGRESS = "in_progress"

REMANUFACTURE = "remanufacture"
RE_APHERESIS = "re_apheresis"
BRANCHES = (REMANUFACTURE, RE_APHERESIS, NO_INFUSION)

DAYS_PER_MONTH = 30.44


class CapacityExceeded(RuntimeError):
    """A monitor found more use than capacity: a bug of the model, never a result."""


def planner_cpsat() -> Callable[..., Any]:
    """The CP-SAT planner of `cartrial.domain.planning` (the optimised policy's), or a clear refusal."""
    try:
        from cartrial.domain.planning import plan_cpsat  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise InvalidInput(
            "The optimised policy needs the CP-SAT planner (cartrial.domain.planning.plan_cpsat), "
            "which this installation does not have yet: use the greedy policy.",
            code="planner_unavailable",
        ) from None
    planner: Callable[..., Any] = plan_cpsat
    return planner


@dataclass
class _Patient:
    number: int
    id: str
    center: CenterParameters
    arrival_day: int
    rng: np.random.Generator
    weight: int = 1
    inclusion_day: int | None = None
    infusion_day: int | None = None
    outcome: str = IN_PROGRESS


@dataclass(frozen=True)
class _Booking:
    facility: FacilityParameters
    apheresis_day: int
    manufacturing_day: int


@dataclass(frozen=True)
class RunResult:
    """One replication under one policy. Days count from `start_date` (day 0)."""

    policy: str
    seed: int
    days: int
    arrivals: int
    screen_failures: int
    infused: int
    no_infusion: int
    in_progress: int
    inclusion_to_infusion_days: tuple[int, ...]
    urgent_inclusion_to_infusion_days: tuple[int, ...]  # the same, for the patients of weight > 1
    infused_per_month: tuple[int, ...]
    queue_length: tuple[int, ...]  # per day: included patients not yet collected (apheresis)
    line_use: dict[str, tuple[int, ...]]  # per facility, per day: lines running a batch
    bed_use: dict[str, tuple[int, ...]]  # per center, per ISO week from the start: infusions
    apheresis_use: dict[str, tuple[int, ...]]  # per center, per day: apheresis slots used
    failures: dict[str, int]  # failed batches by the branch drawn
    batches: int
    line_waits: int  # batches that found no free line on their planned day (an overrun before them)


class _Network:
    """One replication: the ledger of bookings, the SimPy resources and the patients' processes."""

    def __init__(self, parameters: SimulationParameters, seed: int, policy: str, planner: Callable[..., Any] | None):
        self.p = parameters
        self.seed = seed
        self.policy = policy
        self.planner = planner
        self.env = simpy.Environment()
        self.horizon = parameters.days
        self.lines = {f.id: simpy.Resource(self.env, capacity=f.lines) for f in parameters.facilities}
        self.apheresis_booked: Counter[tuple[str, int]] = Counter()
        self.line_planned: Counter[tuple[str, int]] = Counter()
        self.beds_booked: Counter[tuple[str, int]] = Counter()
        self.waiting: list[tuple[_Patient, int, simpy.Event]] = []
        self.queue = 0
        self.patients: list[_Patient] = []
        self.failures: Counter[str] = Counter()
        self.batches = 0
        self.line_waits = 0
        self.queue_days: list[int] = []
        self.line_days: dict[str, list[int]] = {f.id: [] for f in parameters.facilities}
        self.apheresis_days: dict[str, list[int]] = {c.id: [] for c in parameters.centers}
        self._holidays: dict[str, holidays.HolidayBase] = {}

    # -- calendar -------------------------------------------------------------------------------
    def date_of(self, day: int) -> date:
        return self.p.start_date + timedelta(days=day)

    def weekday(self, day: int) -> int:
        return self.date_of(day).weekday()

    def holiday(self, country: str, day: int) -> bool:
        """A public holiday of `country` (when the parameters close them)."""
        if not self.p.public_holidays:
            return False
        if country not in self._holidays:
            self._holidays[country] = holidays.country_holidays(country)
        return self.date_of(day) in self._holidays[country]

    def apheresis_open(self, center: CenterParameters, day: int) -> bool:
        return self.weekday(day) in center.apheresis_weekdays and not self.holiday(center.country, day)

    def infusion_open(self, center: CenterParameters, day: int) -> bool:
        return self.weekday(day) in center.infusion_weekdays and not self.holiday(center.country, day)

    def facility_open(self, facility: FacilityParameters, day: int) -> bool:
        return self.weekday(day) not in facility.closed_weekdays and not self.holiday(facility.country, day)

    def week(self, day: int) -> int:
        """Index of the ISO week of `day`, counted from the week of the start date."""
        start_monday = self.p.start_date - timedelta(days=self.p.start_date.weekday())
        return (self.date_of(day) - start_monday).days // 7

    # -- booking (the ledger both policies use) -------------------------------------------------
    def _line_free(self, facility: FacilityParameters, start: int) -> bool:
        return all(
            self.line_planned[(facility.id, day)] < facility.lines
            for day in range(start, start + facility.manufacturing_days)
        )

    def _line_start(self, facility: FacilityParameters, earliest: int, latest: int) -> int | None:
        for day in range(earliest, latest + 1):
            if self.facility_open(facility, day) and self._line_free(facility, day):
                return day
        return None

    def _reserve_line(self, facility: FacilityParameters, start: int) -> None:
        for day in range(start, start + facility.manufacturing_days):
            self.line_planned[(facility.id, day)] += 1

    def earliest_booking(self, patient: _Patient, ready: int, facilities: list[FacilityParameters]) -> _Booking | None:
        """The earliest apheresis slot from `ready` whose material finds a line on arrival (within the
        fresh material's wait); among facilities, the one whose product would come back first."""
        center = patient.center
        best: tuple[int, int, _Booking] | None = None
        for order, facility in enumerate(facilities):
            ship = center.ship_days[facility.id]
            for day in range(ready, ready + self.p.planning_horizon_days):
                if not self.apheresis_open(center, day):
                    continue
                if self.apheresis_booked[(center.id, day)] >= center.apheresis_per_day:
                    continue
                start = self._line_start(facility, day + ship, day + ship + self.p.max_material_wait_days)
                if start is None:
                    continue
                back = start + facility.manufacturing_days + facility.qc_days + ship
                if best is None or (back, order) < best[:2]:
                    best = (back, order, _Booking(facility, day, start))
                break
        return best[2] if best else None

    def book(self, booking: _Booking, patient: _Patient) -> None:
        self.apheresis_booked[(patient.center.id, booking.apheresis_day)] += 1
        self._reserve_line(booking.facility, booking.manufacturing_day)

    def book_infusion(self, patient: _Patient, release: int, facility: FacilityParameters) -> int:
        """The earliest infusion day on a center's infusion weekday with a bed left in its week, after
        the product's arrival and a lymphodepletion started on or after the release."""
        center = patient.center
        gap_min = self.p.ld_to_infusion_gap_days[0]
        earliest = max(release + center.ship_days[facility.id], release + self.p.lymphodepletion_days - 1 + gap_min)
        day = earliest
        while True:
            if (
                self.infusion_open(center, day)
                and self.beds_booked[(center.id, self.week(day))] < center.infusions_per_week
            ):
                self.beds_booked[(center.id, self.week(day))] += 1
                return day
            day += 1

    # -- policies ---------------------------------------------------------------------------------
    def request_booking(self, patient: _Patient, ready: int) -> simpy.Event:
        event = self.env.event()
        self.waiting.append((patient, ready, event))
        if self.policy == GREEDY:
            self._book_in_order(list(self.waiting), None)
        return event

    def _book_in_order(self, entries: list[tuple[_Patient, int, simpy.Event]], chosen: dict[str, str] | None) -> None:
        for entry in entries:
            patient, ready, event = entry
            facilities = list(self.p.facilities)
            if chosen and patient.id in chosen:
                facilities = [f for f in facilities if f.id == chosen[patient.id]] or facilities
            booking = self.earliest_booking(patient, max(ready, int(self.env.now)), facilities)
            if booking is None:
                continue
            self.book(booking, patient)
            self.waiting.remove(entry)
            event.succeed(booking)

    def _greedy_retry(self) -> Generator[simpy.Event, Any, None]:
        """A patient left without a date (nothing free within the horizon) is tried again each day."""
        while True:
            yield self.env.timeout(1)
            if self.waiting:
                self._book_in_order(sorted(self.waiting, key=lambda e: (e[1], e[0].number)), None)

    def _replan(self) -> Generator[simpy.Event, Any, None]:
        """Every `replan_every_days`: the waiting patients planned together by CP-SAT, booked in its order."""
        while True:
            if self.waiting:
                self._plan_waiting()
            yield self.env.timeout(self.p.replan_every_days)

    def _plan_waiting(self) -> None:
        today = int(self.env.now)
        horizon = self.p.planning_horizon_days
        facilities = tuple(
            planning.Facility(
                id=f.id,
                lines=f.lines,
                manufacturing_days=f.manufacturing_days,
                qc_days=f.qc_days,
                closed_weekdays=f.closed_weekdays,
                # Days already fully taken by booked batches, and public holidays: no new batch starts then.
                closed_dates=frozenset(
                    self.date_of(d)
                    for d in range(today, today + horizon)
                    if not self._line_free(f, d) or self.holiday(f.country, d)
                ),
            )
            for f in self.p.facilities
        )
        centers = tuple(
            planning.Center(
                id=c.id,
                country=c.country,
                apheresis_weekdays=c.apheresis_weekdays,
                apheresis_per_day=c.apheresis_per_day,
                infusion_weekdays=c.infusion_weekdays,
                infusions_per_week=c.infusions_per_week,
                ship_days=dict(c.ship_days),
                closed_dates=frozenset(
                    self.date_of(d)
                    for d in range(today, today + horizon)
                    if self.apheresis_booked[(c.id, d)] >= c.apheresis_per_day or self.holiday(c.country, d)
                ),
            )
            for c in self.p.centers
        )
        waiting = sorted(self.waiting, key=lambda e: (e[1], e[0].number))
        instance = planning.Instance(
            start_date=self.date_of(today),
            horizon_days=horizon,
            facilities=facilities,
            centers=centers,
            patients=tuple(
                planning.Patient(
                    id=p.id, center=p.center.id, ready_date=self.date_of(max(ready, today)), weight=p.weight
                )
                for p, ready, _ in waiting
            ),
            lymphodepletion_days=self.p.lymphodepletion_days,
            ld_to_infusion_gap_days=self.p.ld_to_infusion_gap_days,
        )
        assert self.planner is not None
        plan = self.planner(instance, time_limit_s=self.p.cpsat_time_limit_s)
        planned = {row.id: row for row in plan.patients}
        far = date.max

        def order(entry: tuple[_Patient, int, simpy.Event]) -> tuple[date, date, int, int]:
            row = planned.get(entry[0].id)
            if row is None:
                return (far, far, entry[1], entry[0].number)
            return (row.apheresis, row.manufacturing_start, entry[1], entry[0].number)

        self._book_in_order(sorted(waiting, key=order), {pid: row.facility for pid, row in planned.items()})

    # -- the patient's path -------------------------------------------------------------------------
    def _triangular(self, rng: np.random.Generator, low: float, mode: float, high: float) -> int:
        return round(mode if low == high else float(rng.triangular(low, mode, high)))

    def patient_path(self, patient: _Patient) -> Generator[simpy.Event, Any, None]:
        p = self.p
        rng = patient.rng
        # The patient's draws, in a fixed order whatever the policy (common random numbers).
        screening = self._triangular(rng, *p.screening_days)
        screen_failed = rng.random() < p.screen_failure_rate
        patient.weight = p.urgent_weight if rng.random() < p.urgent_share else 1
        yield self.env.timeout(patient.arrival_day + screening - self.env.now)
        if screen_failed:
            patient.outcome = SCREEN_FAILED
            return
        patient.inclusion_day = int(self.env.now)
        ready = patient.inclusion_day + p.apheresis_after_inclusion_days
        attempts = 0
        while True:  # one apheresis per turn
            self.queue += 1
            booking: _Booking = yield self.request_booking(patient, ready)
            yield self.env.timeout(booking.apheresis_day - self.env.now)
            self.queue -= 1
            facility, start = booking.facility, booking.manufacturing_day
            while True:  # one batch per turn
                yield self.env.timeout(start - self.env.now)
                self.batches += 1
                with self.lines[facility.id].request() as line:
                    yield line
                    if self.env.now > start:
                        self.line_waits += 1
                    manufacturing = self._triangular(
                        rng,
                        facility.manufacturing_days + p.manufacturing_spread_days[0],
                        facility.manufacturing_days,
                        facility.manufacturing_days + p.manufacturing_spread_days[1],
                    )
                    yield self.env.timeout(manufacturing)
                qc = self._triangular(
                    rng,
                    facility.qc_days + p.qc_spread_days[0],
                    facility.qc_days,
                    facility.qc_days + p.qc_spread_days[1],
                )
                yield self.env.timeout(qc)
                failed = rng.random() < p.manufacturing_failure_rate
                branch_draw = rng.random()
                if not failed:
                    release = int(self.env.now)
                    infusion = self.book_infusion(patient, release, facility)
                    yield self.env.timeout(infusion - self.env.now)
                    patient.infusion_day = infusion
                    patient.outcome = INFUSED
                    return
                attempts += 1
                branch = (
                    REMANUFACTURE
                    if branch_draw < p.remanufacture_share
                    else RE_APHERESIS
                    if branch_draw < p.remanufacture_share + p.re_apheresis_share
                    else NO_INFUSION
                )
                self.failures[branch] += 1
                if branch == NO_INFUSION or attempts >= p.max_manufacturing_attempts:
                    patient.outcome = NO_INFUSION
                    return
                if branch == RE_APHERESIS:
                    ready = int(self.env.now) + p.re_apheresis_delay_days
                    break
                # Remanufacture from the retained (frozen) material: the next line free.
                now = int(self.env.now)
                found = None
                while found is None:
                    found = self._line_start(facility, now + 1, now + p.planning_horizon_days)
                    now += p.planning_horizon_days
                self._reserve_line(facility, found)
                start = found

    # -- monitors -------------------------------------------------------------------------------------
    def _monitor(self) -> Generator[simpy.Event, Any, None]:
        """Each day: record the queue and the use of lines and apheresis slots, and check that no
        capacity is ever exceeded (a violation stops the run: it is a bug, not a result)."""
        while True:
            day = int(self.env.now)
            self.queue_days.append(self.queue)
            for facility in self.p.facilities:
                busy = self.lines[facility.id].count
                if busy > facility.lines:
                    raise CapacityExceeded(f"{facility.id}: {busy} batches on {facility.lines} lines on day {day}")
                self.line_days[facility.id].append(busy)
            for center in self.p.centers:
                used = self.apheresis_booked[(center.id, day)]
                if used > center.apheresis_per_day or (used and not self.apheresis_open(center, day)):
                    raise CapacityExceeded(f"{center.id}: {used} aphereses on day {day}")
                self.apheresis_days[center.id].append(used)
                beds = self.beds_booked[(center.id, self.week(day))]
                if beds > center.infusions_per_week:
                    raise CapacityExceeded(f"{center.id}: {beds} infusions in week {self.week(day)}")
            yield self.env.timeout(1)

    # -- the run ------------------------------------------------------------------------------------
    def arrivals(self) -> list[_Patient]:
        """Each center's Poisson arrivals over the horizon, from the replication's own stream."""
        stream = np.random.default_rng([self.seed, 0])
        found: list[tuple[int, int, CenterParameters]] = []
        for index, center in enumerate(self.p.centers):
            rate = center.arrivals_per_month / DAYS_PER_MONTH
            when = 0.0
            while rate > 0:
                when += stream.exponential(1 / rate)
                if when >= self.horizon:
                    break
                found.append((int(when), index, center))
        found.sort(key=lambda item: (item[0], item[1]))
        serial: Counter[str] = Counter()
        patients = []
        for number, (day, _, center) in enumerate(found, start=1):
            serial[center.id] += 1
            patients.append(
                _Patient(
                    number=number,
                    id=f"{center.id}-{serial[center.id]:03d}",
                    center=center,
                    arrival_day=day,
                    rng=np.random.default_rng([self.seed, 1, number]),
                )
            )
        return patients

    def run(self) -> RunResult:
        self.patients = self.arrivals()
        self.env.process(self._monitor())
        for patient in self.patients:
            self.env.process(self.patient_path(patient))
        self.env.process(self._greedy_retry() if self.policy == GREEDY else self._replan())
        self.env.run(until=self.horizon)
        return self._result()

    def _result(self) -> RunResult:
        outcomes = Counter(p.outcome for p in self.patients)
        months = math.ceil(self.horizon / DAYS_PER_MONTH)
        per_month = [0] * months
        waits, urgent = [], []
        for patient in self.patients:
            if patient.outcome == INFUSED and patient.infusion_day is not None and patient.inclusion_day is not None:
                per_month[min(months - 1, int(patient.infusion_day / DAYS_PER_MONTH))] += 1
                waits.append(patient.infusion_day - patient.inclusion_day)
                if patient.weight > 1:
                    urgent.append(patient.infusion_day - patient.inclusion_day)
        weeks = self.week(self.horizon - 1) + 1
        return RunResult(
            policy=self.policy,
            seed=self.seed,
            days=self.horizon,
            arrivals=len(self.patients),
            screen_failures=outcomes[SCREEN_FAILED],
            infused=outcomes[INFUSED],
            no_infusion=outcomes[NO_INFUSION],
            in_progress=outcomes[IN_PROGRESS],
            inclusion_to_infusion_days=tuple(waits),
            urgent_inclusion_to_infusion_days=tuple(urgent),
            infused_per_month=tuple(per_month),
            queue_length=tuple(self.queue_days),
            line_use={k: tuple(v) for k, v in self.line_days.items()},
            bed_use={c.id: tuple(self.beds_booked[(c.id, w)] for w in range(weeks)) for c in self.p.centers},
            apheresis_use={k: tuple(v) for k, v in self.apheresis_days.items()},
            failures={branch: self.failures[branch] for branch in BRANCHES},
            batches=self.batches,
            line_waits=self.line_waits,
        )


def simulate_once(parameters: SimulationParameters, *, seed: int, policy: str) -> RunResult:
    """One replication under one policy (`greedy` or `optimised`)."""
    if policy not in POLICIES:
        raise InvalidInput(
            "Unknown planning policy {policy}: greedy or optimised.",
            code="unknown_policy",
            item="policy",
            policy=policy,
        )
    planner = planner_cpsat() if policy == OPTIMISED else None
    return _Network(parameters, seed, policy, planner).run()


@dataclass(frozen=True)
class PolicySummary:
    """One policy over the replications: figures pooled or averaged, as named."""

    policy: str
    runs: tuple[RunResult, ...]
    arrivals_mean: float
    screen_failures_mean: float
    infused_mean: float
    no_infusion_mean: float
    in_progress_mean: float
    infused_per_month_mean: float
    median_days: float | None  # inclusion → infusion, pooled over the replications
    p90_days: float | None
    urgent_median_days: float | None  # inclusion → infusion of the urgent patients (weight > 1), pooled
    failures: dict[str, int]  # summed over the replications
    line_utilisation: dict[str, float]  # busy line-days / line-days, per facility
    bed_utilisation: dict[str, float]  # infusions / bed-weeks, per center
    queue_mean: float
    queue_by_day: tuple[float, ...]  # mean over the replications
    line_use_by_day: dict[str, tuple[float, ...]]
    bed_use_by_week: dict[str, tuple[float, ...]]  # infusions per week and center, mean over the replications


@dataclass(frozen=True)
class SimulationResult:
    """`run_simulation`'s answer: the parameters and one summary per policy, side by side."""

    parameters: SimulationParameters
    seed: int
    replications: int
    summaries: tuple[PolicySummary, ...] = field(default=())


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def summarise(parameters: SimulationParameters, policy: str, runs: list[RunResult]) -> PolicySummary:
    """The figures of one policy over its replications."""
    waits = [w for run in runs for w in run.inclusion_to_infusion_days]
    urgent = [w for run in runs for w in run.urgent_inclusion_to_infusion_days]
    lines = {f.id: f.lines for f in parameters.facilities}
    beds = {c.id: c.infusions_per_week for c in parameters.centers}
    return PolicySummary(
        policy=policy,
        runs=tuple(runs),
        arrivals_mean=_mean([r.arrivals for r in runs]),
        screen_failures_mean=_mean([r.screen_failures for r in runs]),
        infused_mean=_mean([r.infused for r in runs]),
        no_infusion_mean=_mean([r.no_infusion for r in runs]),
        in_progress_mean=_mean([r.in_progress for r in runs]),
        infused_per_month_mean=_mean([r.infused / parameters.months for r in runs]),
        median_days=float(np.median(waits)) if waits else None,
        p90_days=float(np.percentile(waits, 90)) if waits else None,
        urgent_median_days=float(np.median(urgent)) if urgent else None,
        failures={b: sum(r.failures[b] for r in runs) for b in BRANCHES},
        line_utilisation={
            f: _mean([sum(r.line_use[f]) / (lines[f] * len(r.line_use[f])) for r in runs]) for f in lines
        },
        bed_utilisation={c: _mean([sum(r.bed_use[c]) / (beds[c] * len(r.bed_use[c])) for r in runs]) for c in beds},
        queue_mean=_mean([_mean(list(r.queue_length)) for r in runs]),
        queue_by_day=tuple(float(v) for v in np.mean([r.queue_length for r in runs], axis=0)),
        line_use_by_day={f: tuple(float(v) for v in np.mean([r.line_use[f] for r in runs], axis=0)) for f in lines},
        bed_use_by_week={c: tuple(float(v) for v in np.mean([r.bed_use[c] for r in runs], axis=0)) for c in beds},
    )


def run_simulation(
    parameters: SimulationParameters,
    *,
    seed: int = 0,
    replications: int = 1,
    policies: tuple[str, ...] = POLICIES,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """`replications` runs of each policy (replication r uses seed + r, the same for every policy),
    summarised side by side. The one entry point of the CLI, the page and a background job."""
    if replications < 1:
        raise InvalidInput(
            "{item} must be at least {minimum}.", code="value_out_of_range", item="replications", minimum=1
        )
    for policy in policies:
        if policy not in POLICIES:
            raise InvalidInput(
                "Unknown planning policy {policy}: greedy or optimised.",
                code="unknown_policy",
                item="policy",
                policy=policy,
            )
    planner = planner_cpsat() if OPTIMISED in policies else None
    total, done = replications * len(policies), 0
    summaries = []
    for policy in policies:
        runs = []
        for replication in range(replications):
            runs.append(
                _Network(parameters, seed + replication, policy, planner if policy == OPTIMISED else None).run()
            )
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        summaries.append(summarise(parameters, policy, runs))
    return SimulationResult(parameters=parameters, seed=seed, replications=replications, summaries=tuple(summaries))


def result_document(result: SimulationResult) -> dict[str, Any]:
    """The machine-readable summary (`cartrial simulate --json`, a background job's result): per
    policy, the figures of the summary table."""
    return {
        "seed": result.seed,
        "replications": result.replications,
        "months": result.parameters.months,
        "policies": {
            s.policy: {
                "arrivals_mean": s.arrivals_mean,
                "screen_failures_mean": s.screen_failures_mean,
                "infused_mean": s.infused_mean,
                "no_infusion_mean": s.no_infusion_mean,
                "in_progress_mean": s.in_progress_mean,
                "infused_per_month_mean": s.infused_per_month_mean,
                "median_days_inclusion_to_infusion": s.median_days,
                "p90_days_inclusion_to_infusion": s.p90_days,
                "urgent_median_days_inclusion_to_infusion": s.urgent_median_days,
                "failures": s.failures,
                "line_utilisation": s.line_utilisation,
                "bed_utilisation": s.bed_utilisation,
                "queue_mean": s.queue_mean,
            }
            for s in result.summaries
        },
    }
