"""The optimizer: OR-Tools CP-SAT minimising Σ weight × days from ready date to infusion.

Day indices from the start date (day 0) to the horizon's last day. Per patient: the apheresis day
(domain: the center's open apheresis days from the ready date), per facility an optional
manufacturing start (domain: the facility's open days) chosen by one boolean, and the infusion day
(domain: the center's infusion days). Release, product arrival and lymphodepletion are fixed by
them (release = start + manufacturing + QC, arrival = release + shipping, lymphodepletion as late as
its largest gap allows but not before release), so the rules become: start ≥ apheresis + shipping;
infusion ≥ start + manufacturing + QC + max(shipping back, lymphodepletion − 1 + smallest gap).
Capacities are cumulative constraints: apheresis (intervals of one day per center), lines (optional
intervals of `manufacturing_days` per facility; no-overlap for a single line), infusion beds
(one-unit intervals on the ISO week index, `infusion + weekday(start) = 7 × week + rest`).

The best of the first-come-first-served plan and a few greedy orders that serve heavier patients
earlier is the hint and the objective's ceiling, so the answer is never worse than greedy. The
bound is the largest of the solver's proven bound, the independent bound (each patient alone,
capacities unlimited) and the capacity bound of bound.py, also given to the solver as a floor of
the objective so that it stops when it reaches it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ortools.sat.python import cp_model

from cartrial.domain.planning.bound import Infeasible, capacity_bound
from cartrial.domain.planning.days import Chain, Days
from cartrial.domain.planning.greedy import greedy_chains, plan_of_chains
from cartrial.domain.planning.instance import Instance, Plan, PlanStatus

NUM_WORKERS = 2
# Greedy orders tried for the hint: served as if ready `urgency` × weight days earlier (0: first come).
URGENCIES = (2, 4, 8, 16, 32)


def _values(open_days: list[bool], low: int, high: int) -> list[int]:
    return [t for t in range(max(low, 0), min(high, len(open_days) - 1) + 1) if open_days[t]]


# What the search reports as it goes: (seconds elapsed, best objective found or None, best bound).
SearchProgress = Callable[[float, float | None, float], None]


class _Reporter(cp_model.CpSolverSolutionCallback):
    """Tells `report` each better plan the search finds, with the bound proven so far."""

    def __init__(self, report: SearchProgress) -> None:
        super().__init__()
        self._report = report

    def on_solution_callback(self) -> None:
        self._report(self.wall_time, self.objective_value, self.best_objective_bound)


def plan_cpsat(instance: Instance, time_limit_s: float = 30.0, on_progress: SearchProgress | None = None) -> Plan:
    """The optimal plan (or the best found in the time limit, with its proven bound); infeasible
    with the unplaced patients when no plan places them all. `on_progress`, if given, hears of each
    better plan and each better bound while the solver searches (a background job's progress)."""
    days = Days(instance)
    greedy, unplaced = greedy_chains(days)
    try:
        floor = max(capacity_bound(days), days.independent_bound() or 0)
    except Infeasible:
        # Proven without the solver: a patient has no chain even alone, or a center's capacities
        # cannot take all its patients within the horizon.
        return plan_of_chains(days, greedy, unplaced, PlanStatus.INFEASIBLE, None)
    start = None if unplaced else greedy
    for urgency in URGENCIES:
        chains, missing = greedy_chains(days, urgency)
        if not missing and (start is None or days.objective(chains) < days.objective(start)):
            start = chains
    model = _Model(days, start, floor)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = NUM_WORKERS
    solver.parameters.max_time_in_seconds = time_limit_s
    if on_progress is None:
        status = solver.solve(model.model)
    else:
        started = time.monotonic()
        report = on_progress
        solver.best_bound_callback = lambda bound: report(time.monotonic() - started, None, bound)
        status = solver.solve(model.model, _Reporter(report))
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chains = model.chains(solver)
        if start is not None and days.objective(start) < days.objective(chains):
            chains = start
    elif start is not None:
        chains = start  # no better plan found in the time limit: the best greedy order's stands
    else:
        # No greedy order placed everyone and the solver found no plan (proved there is none, or
        # ran out of time): greedy's unplaced patients are reported, with its dates for the others.
        return plan_of_chains(days, greedy, unplaced, PlanStatus.INFEASIBLE, None)
    bound = floor
    solver_bound = solver.best_objective_bound
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.UNKNOWN) and math.isfinite(solver_bound):
        bound = max(bound, math.ceil(solver_bound - 1e-6))
    optimal = days.objective(chains) <= bound
    return plan_of_chains(days, chains, [], PlanStatus.OPTIMAL if optimal else PlanStatus.FEASIBLE, bound)


class _Model:
    """The CP-SAT model of one instance; `hint` greedy chains that place every patient (also the
    objective's ceiling), if any; `floor` a proven lower bound of the objective."""

    def __init__(self, days: Days, hint: dict[str, Chain] | None, floor: int) -> None:
        self.days = days
        self.model = cp_model.CpModel()
        model = self.model
        instance = days.instance
        last = days.horizon - 1
        aph_intervals: dict[str, list[cp_model.IntervalVar]] = {c.id: [] for c in instance.centers}
        line_intervals: dict[str, list[cp_model.IntervalVar]] = {f.id: [] for f in instance.facilities}
        week_intervals: dict[str, list[cp_model.IntervalVar]] = {c.id: [] for c in instance.centers}
        self.apheresis: dict[str, cp_model.IntVar] = {}
        self.starts: dict[str, dict[str, tuple[cp_model.IntVar, cp_model.IntVar | int]]] = {}
        self.infusion: dict[str, cp_model.IntVar] = {}
        self.weeks: dict[str, tuple[cp_model.IntVar, cp_model.IntVar]] = {}
        objective = []
        for patient in instance.patients:
            center = days.centers[patient.center]
            alone = days.alone_chains[patient.id]
            assert alone is not None
            apheresis = model.new_int_var_from_domain(
                cp_model.Domain.from_values(_values(days.apheresis_open[center.id], alone.apheresis, last)),
                f"a_{patient.id}",
            )
            infusion = model.new_int_var_from_domain(
                cp_model.Domain.from_values(_values(days.infusion_open[center.id], alone.infusion, last)),
                f"i_{patient.id}",
            )
            week = model.new_int_var(days.week(alone.infusion), days.week(last), f"w_{patient.id}")
            rest = model.new_int_var(0, 6, f"r_{patient.id}")
            model.add(infusion + days.week_offset == 7 * week + rest)
            aph_intervals[center.id].append(model.new_fixed_size_interval_var(apheresis, 1, f"ai_{patient.id}"))
            week_intervals[center.id].append(model.new_fixed_size_interval_var(week, 1, f"wi_{patient.id}"))
            open_starts = {
                f.id: _values(
                    days.manufacturing_open[f.id], alone.apheresis + center.ship_days[f.id], last - days.lead(center, f)
                )
                for f in instance.facilities
            }
            open_starts = {facility_id: values for facility_id, values in open_starts.items() if values}
            options: dict[str, tuple[cp_model.IntVar, cp_model.IntVar | int]] = {}
            for facility_id, values in open_starts.items():
                facility = instance.facility(facility_id)
                ship = center.ship_days[facility_id]
                lead = days.lead(center, facility)
                start = model.new_int_var_from_domain(
                    cp_model.Domain.from_values(values), f"m_{patient.id}_{facility_id}"
                )
                if len(open_starts) == 1:
                    chosen: cp_model.IntVar | int = 1
                    model.add(start >= apheresis + ship)
                    model.add(infusion >= start + lead)
                    interval = model.new_fixed_size_interval_var(start, facility.manufacturing_days, "")
                else:
                    chosen = model.new_bool_var(f"x_{patient.id}_{facility_id}")
                    model.add(start >= apheresis + ship).only_enforce_if(chosen)
                    model.add(infusion >= start + lead).only_enforce_if(chosen)
                    interval = model.new_optional_fixed_size_interval_var(
                        start, facility.manufacturing_days, chosen, ""
                    )
                options[facility_id] = (start, chosen)
                line_intervals[facility_id].append(interval)
            if len(options) > 1:
                model.add_exactly_one([chosen for _, chosen in options.values()])
            self.apheresis[patient.id] = apheresis
            self.starts[patient.id] = options
            self.infusion[patient.id] = infusion
            self.weeks[patient.id] = (week, rest)
            objective.append(patient.weight * (infusion - days.ready(patient)))
        for center in instance.centers:
            if aph_intervals[center.id]:
                model.add_cumulative(
                    aph_intervals[center.id], [1] * len(aph_intervals[center.id]), center.apheresis_per_day
                )
                model.add_cumulative(
                    week_intervals[center.id], [1] * len(week_intervals[center.id]), center.infusions_per_week
                )
        for facility in instance.facilities:
            intervals = line_intervals[facility.id]
            if facility.lines == 1:
                model.add_no_overlap(intervals)
            elif intervals:
                model.add_cumulative(intervals, [1] * len(intervals), facility.lines)
        total = sum(objective)
        model.minimize(total)
        model.add(total >= floor)  # the capacity bound, proven apart: the solver stops when it reaches it
        if hint is not None:
            model.add(total <= days.objective(hint))
            self._hint(hint)

    def _hint(self, chains: dict[str, Chain]) -> None:
        for patient_id, chain in chains.items():
            self.model.add_hint(self.apheresis[patient_id], chain.apheresis)
            self.model.add_hint(self.infusion[patient_id], chain.infusion)
            week, rest = self.weeks[patient_id]
            self.model.add_hint(week, self.days.week(chain.infusion))
            self.model.add_hint(rest, (chain.infusion + self.days.week_offset) % 7)
            for facility_id, (start, chosen) in self.starts[patient_id].items():
                if facility_id == chain.facility:
                    self.model.add_hint(start, chain.manufacturing_start)
                if not isinstance(chosen, int):
                    self.model.add_hint(chosen, facility_id == chain.facility)

    def chains(self, solver: cp_model.CpSolver) -> dict[str, Chain]:
        chains = {}
        for patient_id, options in self.starts.items():
            facility_id, start = next(
                (fid, solver.value(start)) for fid, (start, chosen) in options.items()
                if isinstance(chosen, int) or solver.boolean_value(chosen)
            )  # fmt: skip
            chains[patient_id] = Chain(
                facility_id, solver.value(self.apheresis[patient_id]), start, solver.value(self.infusion[patient_id])
            )
        return chains
