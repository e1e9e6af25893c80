"""A lower bound that sees the centers' capacities: per center, two assignment relaxations solved
exactly as min-cost flows.

- Apheresis: each patient takes one of the center's apheresis days (at most `apheresis_per_day`
  each) and is then infused as early as it could be alone from that day (lines unlimited).
- Infusion beds: each patient takes one ISO week of the center (at most `infusions_per_week`) and
  is infused on its earliest infusion day alone, or the week's first infusion day if later.

Every plan gives both assignments at no more than its cost, so for each center the larger of the
two minimum costs is at most what that center's patients cost in any plan; their sum bounds the
objective. When a flow cannot place every patient, no plan can: the instance is infeasible.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.graph.python import min_cost_flow  # type: ignore[import-untyped]

from cartrial.domain.planning.days import Days
from cartrial.domain.planning.instance import Patient


class Infeasible(Exception):
    """No plan places every patient of this center (a capacity relaxation already fails)."""

    def __init__(self, center_id: str) -> None:
        super().__init__(center_id)
        self.center_id = center_id


def _next_open(open_days: list[bool]) -> list[int | None]:
    """For each day, the first open day on or after it (None past the horizon)."""
    answer: list[int | None] = [None] * (len(open_days) + 1)
    for t in range(len(open_days) - 1, -1, -1):
        answer[t] = t if open_days[t] else answer[t + 1]
    return answer


def _min_cost(costs: list[dict[int, int]], capacity: int) -> int | None:
    """Minimum total cost of giving each patient one slot of its list, `capacity` patients a slot."""
    flow = min_cost_flow.SimpleMinCostFlow()
    slots = sorted({slot for options in costs for slot in options})
    slot_node = {slot: len(costs) + 2 + i for i, slot in enumerate(slots)}
    source, sink = 0, 1
    for i, options in enumerate(costs):
        flow.add_arc_with_capacity_and_unit_cost(source, 2 + i, 1, 0)
        for slot, cost in options.items():
            flow.add_arc_with_capacity_and_unit_cost(2 + i, slot_node[slot], 1, cost)
    for node in slot_node.values():
        flow.add_arc_with_capacity_and_unit_cost(node, sink, capacity, 0)
    flow.set_node_supply(source, len(costs))
    flow.set_node_supply(sink, -len(costs))
    if flow.solve() != flow.OPTIMAL:
        return None
    return int(flow.optimal_cost())


def capacity_bound(days: Days) -> int:
    """Σ over centers of the larger relaxation (see the module's text); raises `Infeasible`."""
    instance = days.instance
    horizon = days.horizon
    next_manufacturing = {f.id: _next_open(days.manufacturing_open[f.id]) for f in instance.facilities}
    by_center: defaultdict[str, list[Patient]] = defaultdict(list)
    for patient in instance.patients:
        by_center[patient.center].append(patient)
    total = 0
    for center_id, patients in by_center.items():
        center = days.centers[center_id]
        next_infusion = _next_open(days.infusion_open[center_id])
        apheresis_costs: list[dict[int, int]] = []
        infusion_costs: list[dict[int, int]] = []
        for patient in patients:
            alone = days.alone_chains[patient.id]
            if alone is None:
                raise Infeasible(center_id)
            ready = days.ready(patient)
            options: dict[int, int] = {}
            for a in range(alone.apheresis, horizon):
                if not days.apheresis_open[center_id][a]:
                    continue
                best = None
                for facility in instance.facilities:
                    arrival = a + center.ship_days[facility.id]
                    start = next_manufacturing[facility.id][arrival] if arrival < horizon else None
                    if start is None:
                        continue
                    earliest = start + days.lead(center, facility)
                    infusion = next_infusion[earliest] if earliest < horizon else None
                    if infusion is not None and (best is None or infusion < best):
                        best = infusion
                if best is None:
                    break  # later apheresis days only end later
                options[a] = patient.weight * (best - ready)
            apheresis_costs.append(options)
            weeks: dict[int, int] = {}
            for t in range(alone.infusion, horizon):
                if days.infusion_open[center_id][t] and days.week(t) not in weeks:
                    weeks[days.week(t)] = patient.weight * (t - ready)
            infusion_costs.append(weeks)
        apheresis = _min_cost(apheresis_costs, center.apheresis_per_day)
        infusion = _min_cost(infusion_costs, center.infusions_per_week)
        if apheresis is None or infusion is None:
            raise Infeasible(center_id)
        total += max(apheresis, infusion)
    return total
