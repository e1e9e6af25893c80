"""Discrete-event simulation of the trial network (issue 11): how many patients it can treat."""

from cartrial.domain.simulation.model import (
    GREEDY,
    OPTIMISED,
    POLICIES,
    CapacityExceeded,
    PolicySummary,
    RunResult,
    SimulationResult,
    run_simulation,
    simulate_once,
)
from cartrial.domain.simulation.parameters import (
    CenterParameters,
    FacilityParameters,
    SimulationParameters,
    parameters_from_json,
    with_protocol,
)

__all__ = [
    "GREEDY",
    "OPTIMISED",
    "POLICIES",
    "CapacityExceeded",
    "CenterParameters",
    "FacilityParameters",
    "PolicySummary",
    "RunResult",
    "SimulationParameters",
    "SimulationResult",
    "parameters_from_json",
    "run_simulation",
    "simulate_once",
    "with_protocol",
]
