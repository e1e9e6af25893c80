"""The planner as a background job (`plan_network`): first come first served, then CP-SAT on an
instance built from the stored capacities and the waiting subjects (by the planner page, at the
request) or uploaded as JSON; the plan, its checker verdict and greedy's objective are the result.

The instance is built when the job is requested and kept in its parameters: the plan answers
exactly the instance the requester saw (and the audit entry of the request holds it), and the
worker reads no subject. CP-SAT searches in a thread of its own; the worker's thread reports the
elapsed share of the time limit with the best plan and bound found so far (the solver's callbacks
run in its own threads, where no database write belongs).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from cartrial.apps.jobs.registry import JobFile, JobKind, JobOutcome, ProgressReport, job_kind_register
from cartrial.domain.errors import InvalidInput
from cartrial.domain.planning import (
    Instance,
    Plan,
    instance_from_json,
    plan_check,
    plan_cpsat,
    plan_greedy,
    plan_to_json,
)
from cartrial.domain.planning.contract import instance_schema
from cartrial.domain.roles import Action
from cartrial.domain.text import N_, Message

PLAN_NETWORK = "plan_network"
Solver = Literal["cpsat", "greedy"]
Source = Literal["network", "upload"]
SOLVERS: tuple[str, ...] = get_args(Solver)
SOURCES: tuple[str, ...] = get_args(Source)
TIME_LIMIT_RANGE_S = (1.0, 600.0)
DEFAULT_TIME_LIMIT_S = 30.0
# How often the worker's thread reports the search while CP-SAT runs (the reporter throttles too).
REPORT_EVERY_S = 0.5
# Percent of the bar: reading and greedy before the search, the check after it.
SEARCH_FROM, SEARCH_TO = 10.0, 95.0


def _inlined(node: Any, definitions: Mapping[str, Any]) -> Any:
    """`node` with each `{"$ref": "#/$defs/NAME"}` replaced by the definition itself (its other
    keys kept): in the OpenAPI document a `$defs` reference would point nowhere."""
    if isinstance(node, list):
        return [_inlined(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref", "")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions) | _inlined(rest, definitions)
    return {key: _inlined(value, definitions) for key, value in node.items()}


def instance_json_schema() -> dict[str, Any]:
    """The contract's instance schema (`instance.schema.json`) standalone: its definitions inlined,
    without `$schema`, `$id` and `$defs`, as the OpenAPI document can hold it."""
    schema = instance_schema()
    definitions = schema.get("$defs", {})
    kept = {key: value for key, value in schema.items() if key not in ("$schema", "$id", "$defs")}
    inlined: dict[str, Any] = _inlined(kept, definitions)
    return inlined


class PlanNetworkParameters(BaseModel):
    """What a request of `plan_network` sends (`plan_parameters` checks it: the instance against the
    contract, with the JSON path of its first error)."""

    model_config = ConfigDict(extra="forbid")

    instance: Annotated[dict[str, Any], WithJsonSchema(instance_json_schema())] = Field(
        description="A planning instance (docs/planning.md): facilities, centers, patients, horizon"
    )
    solver: Solver = Field(
        "cpsat", description="cpsat: optimised within the time limit; greedy: first come first served"
    )
    time_limit_s: float = Field(
        DEFAULT_TIME_LIMIT_S,
        ge=TIME_LIMIT_RANGE_S[0],
        le=TIME_LIMIT_RANGE_S[1],
        strict=True,
        description="CP-SAT's search time, in seconds",
    )
    source: Source = Field("upload", description="Where the instance came from: the network's data or an upload")


class PlannedPatient(BaseModel):
    id: str
    facility: str
    apheresis: date
    manufacturing_start: date
    release: date
    product_arrival: date
    lymphodepletion_start: date
    infusion: date


class PlanDocument(BaseModel):
    """The contract's plan (`plan_to_json`, the job's file `plan.json`)."""

    status: Literal["optimal", "feasible", "infeasible"]
    objective_days: int | None
    lower_bound_days: int | None
    patients: list[PlannedPatient]
    unplaced: list[str] | None = Field(None, description="The patients not placed, when the status is infeasible")


class GreedyOutcome(BaseModel):
    status: Literal["optimal", "feasible", "infeasible"]
    objective_days: int | None
    unplaced: list[str]


class PlanNetworkResult(BaseModel):
    """What `plan_network_run` returns."""

    source: Source
    solver: Solver
    time_limit_s: float
    start_date: date
    horizon_days: int
    patients_count: int
    plan: PlanDocument
    greedy: GreedyOutcome = Field(description="First come, first served on the same instance")
    gap_percent: float | None = Field(description="(objective − bound) / objective; null without both")
    check: list[str] = Field(description="The rules the plan breaks, by the independent checker (empty: none)")


def plan_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The stored parameters: the instance (refused with the JSON path of its first error), the
    solver, the time limit in seconds and where the instance came from."""
    unknown = sorted(set(parameters) - set(PlanNetworkParameters.model_fields))
    if unknown:
        raise InvalidInput(
            "Unknown parameters: {names}.", code="job_parameters_invalid", item="parameters", names=unknown
        )
    instance = parameters.get("instance")
    if not isinstance(instance, Mapping):
        raise InvalidInput("{item} must be a JSON object.", code="instance_invalid", item="instance")
    instance_from_json(instance)
    solver = parameters.get("solver", "cpsat")
    if solver not in SOLVERS:
        raise InvalidInput(
            "Unknown solver {solver}: cpsat or greedy.", code="solver_unknown", item="solver", solver=str(solver)
        )
    limit = parameters.get("time_limit_s", DEFAULT_TIME_LIMIT_S)
    low, high = TIME_LIMIT_RANGE_S
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not low <= limit <= high:
        raise InvalidInput(
            "{item} must be between {minimum} and {maximum} seconds.",
            code="value_out_of_range",
            item="time_limit_s",
            minimum=int(low),
            maximum=int(high),
        )
    source = parameters.get("source", "upload")
    if source not in SOURCES:
        raise InvalidInput(
            "Unknown source {source}: network or upload.", code="source_unknown", item="source", source=str(source)
        )
    return {"instance": dict(instance), "solver": solver, "time_limit_s": float(limit), "source": source}


class _Search:
    """The best plan and bound CP-SAT has reported, shared between its threads and the worker's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objective: float | None = None
        self.bound: float | None = None
        self.plan: Plan | None = None
        self.error: BaseException | None = None

    def heard(self, _elapsed: float, objective: float | None, bound: float) -> None:
        with self.lock:
            if objective is not None:
                self.objective = objective
            self.bound = bound

    def seen(self) -> tuple[float | None, float | None]:
        with self.lock:
            return self.objective, self.bound


def _search_message(objective: float | None, bound: float | None, elapsed: float, limit: float) -> Message:
    clock = {"elapsed": round(elapsed), "limit": round(limit)}
    if objective is None:
        return Message(
            N_("CP-SAT searching: bound {bound} days ({elapsed} s of {limit} s)"),
            {"bound": "—" if bound is None else round(bound), **clock},
        )
    return Message(
        N_("CP-SAT: best plan {objective} days, bound {bound} days ({elapsed} s of {limit} s)"),
        {"objective": round(objective), "bound": "—" if bound is None else round(bound), **clock},
    )


def _optimise(instance: Instance, limit: float, progress: ProgressReport) -> Plan:
    """`plan_cpsat` in a thread; this one reports the share of the time limit elapsed, the best
    objective and the bound until it ends."""
    search = _Search()

    def solve() -> None:
        try:
            search.plan = plan_cpsat(instance, limit, search.heard)
        except BaseException as error:  # handed to the worker's thread, which raises it
            search.error = error

    thread = threading.Thread(target=solve, name="plan-network-cpsat", daemon=True)
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(REPORT_EVERY_S)
        elapsed = time.monotonic() - started
        share = min(elapsed / limit, 1.0)
        objective, bound = search.seen()
        progress(SEARCH_FROM + share * (SEARCH_TO - SEARCH_FROM), _search_message(objective, bound, elapsed, limit))
    if search.error is not None:
        raise search.error
    assert search.plan is not None
    return search.plan


def plan_network_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    """Greedy, then (unless greedy alone was asked) CP-SAT; the plan checked by the independent
    checker; the plan JSON is the job's file."""
    instance = instance_from_json(parameters["instance"])
    progress(
        2, Message(N_("Planning {patients} patients: first come, first served"), {"patients": len(instance.patients)})
    )
    greedy = plan_greedy(instance)
    progress(
        SEARCH_FROM,
        Message(N_("First come, first served: {objective} days"), {"objective": greedy.objective_days or "—"}),
    )
    plan = greedy if parameters["solver"] == "greedy" else _optimise(instance, parameters["time_limit_s"], progress)
    progress(SEARCH_TO, Message(N_("Checking every rule of the plan")))
    violations = plan_check(instance, plan)
    document = plan_to_json(plan)
    result = {
        "source": parameters["source"],
        "solver": parameters["solver"],
        "time_limit_s": parameters["time_limit_s"],
        "start_date": instance.start_date.isoformat(),
        "horizon_days": instance.horizon_days,
        "patients_count": len(instance.patients),
        "plan": document,
        "greedy": {"status": greedy.status, "objective_days": greedy.objective_days, "unplaced": list(greedy.unplaced)},
        "gap_percent": gap_percent(plan.objective_days, plan.lower_bound_days),
        "check": violations,
    }
    content = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    return JobOutcome(result, JobFile("plan.json", "application/json", content))


def gap_percent(objective: int | None, bound: int | None) -> float | None:
    """(objective − bound) / objective in percent; None without both (greedy, infeasible)."""
    if objective is None or bound is None:
        return None
    return 0.0 if objective == 0 else round(100.0 * (objective - bound) / objective, 2)


def plan_network_summary(result: Mapping[str, Any]) -> Message:
    """The outcome in one sentence: the status, the objective against greedy, the checker's verdict."""
    plan = result.get("plan") or {}
    violations = result.get("check") or []
    if plan.get("status") == "infeasible":
        return Message(
            N_("No plan places every patient: {unplaced} cannot be placed in the horizon."),
            {"unplaced": ", ".join(plan.get("unplaced", []))},
        )
    if violations:
        return Message(N_("The plan breaks {count} rules: it must not be used."), {"count": len(violations)})
    figures = {
        "objective": plan.get("objective_days"),
        "greedy": (result.get("greedy") or {}).get("objective_days") or "—",
        "gap": result.get("gap_percent"),
    }
    if plan.get("status") == "optimal":
        return Message(
            N_("Optimal plan: {objective} days (first come, first served: {greedy}); every rule holds."), figures
        )
    if plan.get("lower_bound_days") is None:
        return Message(N_("First-come-first-served plan: {objective} days; every rule holds."), figures)
    return Message(
        N_("Plan of {objective} days, {gap} % above the bound (first come, first served: {greedy}); every rule holds."),
        figures,
    )


def register() -> None:
    """The planner's kind (called by `PlanningConfig.ready`)."""
    job_kind_register(
        JobKind(
            code=PLAN_NETWORK,
            label=N_("Plan the network's calendar"),
            action=Action.PLAN_NETWORK,
            run=plan_network_run,
            check=plan_parameters,
            summary=plan_network_summary,
            result_view="planning:plan_result",
            parameters_schema=PlanNetworkParameters,
            result_schema=PlanNetworkResult,
        )
    )
