"""Running a network simulation for the app (issue 11): one request as plain JSON-able data, one
function that runs it. The page runs short ones in-process; a background job enqueues the same
`run_simulation(request)` for long ones (the request serialises with `simulation_request_to_json`).
Nothing is stored: a simulation reads the protocol in force and no trial data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.simulation import POLICIES, SimulationParameters, SimulationResult, parameters_from_json
from cartrial.domain.simulation import run_simulation as simulate
from cartrial.protocols.simulation import simulation_defaults


@dataclass(frozen=True)
class SimulationRequest:
    """What to simulate: `overrides` of the protocol's defaults (the `--params` JSON of the CLI), the
    first seed, the replications per policy and the policies compared."""

    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    replications: int = 1
    policies: tuple[str, ...] = POLICIES


def simulation_parameters(request: SimulationRequest) -> SimulationParameters:
    """The protocol in force's defaults with the request's overrides (refused with their JSON path)."""
    return parameters_from_json(request.overrides, simulation_defaults(protocol_in_force()))


def run_simulation(
    request: SimulationRequest, on_progress: Callable[[int, int], None] | None = None
) -> SimulationResult:
    """Run the request: the one entry point of the page and of a background job (which follows
    `on_progress(replications done, total)`)."""
    return simulate(
        simulation_parameters(request),
        seed=request.seed,
        replications=request.replications,
        policies=request.policies,
        on_progress=on_progress,
    )


def simulation_request_to_json(request: SimulationRequest) -> dict[str, Any]:
    """The request as JSON (a job's arguments)."""
    return {
        "overrides": request.overrides,
        "seed": request.seed,
        "replications": request.replications,
        "policies": list(request.policies),
    }


def simulation_request_from_json(data: dict[str, Any]) -> SimulationRequest:
    """The request back from `simulation_request_to_json`."""
    return SimulationRequest(
        overrides=dict(data["overrides"]),
        seed=int(data["seed"]),
        replications=int(data["replications"]),
        policies=tuple(data["policies"]),
    )
