"""The network simulation as a background job (`simulate_network`): the page's request for runs
beyond what it answers in-process (months, replications), run by the worker with its progress per
replication; the summary is the result and the plots (PNG, in English and in French) the job's file,
a ZIP the result page reads back."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from django.utils import translation

from cartrial.apps.jobs.registry import JobFile, JobKind, JobOutcome, ProgressReport, job_kind_register
from cartrial.apps.simulation.runs import (
    SimulationRequest,
    run_simulation,
    simulation_parameters,
    simulation_request_from_json,
    simulation_request_to_json,
)
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.simulation import POLICIES, SimulationResult
from cartrial.domain.simulation.figures import PLOTS
from cartrial.domain.simulation.model import result_document
from cartrial.domain.text import N_, Message

SIMULATE_NETWORK = "simulate_network"
# A background run's limits (the page answers in-process up to its own smaller caps).
JOB_MAXIMUM_REPLICATIONS = 100
SEED_RANGE = (0, 2**31 - 1)
PLOT_LANGUAGES = ("en", "fr")
PLOTS_FILE = "simulation-plots.zip"


def _whole(parameters: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            "{item} must be a whole number from {minimum} to {maximum}.",
            code="value_out_of_range",
            item=name,
            minimum=low,
            maximum=high,
        )
    return value


def simulate_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The request as stored: overrides checked against the protocol's defaults (refused with their
    JSON path), the seed, the replications and the policies."""
    unknown = sorted(set(parameters) - {"overrides", "seed", "replications", "policies"})
    if unknown:
        raise InvalidInput(
            "Unknown parameters: {names}.", code="job_parameters_invalid", item="parameters", names=unknown
        )
    overrides = parameters.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise InvalidInput("{item} must be a JSON object.", code="item_type", item="overrides")
    policies = parameters.get("policies", list(POLICIES))
    if not isinstance(policies, list) or not policies or any(p not in POLICIES for p in policies):
        raise InvalidInput("{item} must list greedy, optimised or both.", code="unknown_policy", item="policies")
    request = SimulationRequest(
        overrides=dict(overrides),
        seed=_whole(parameters, "seed", *SEED_RANGE, default=0),
        replications=_whole(parameters, "replications", 1, JOB_MAXIMUM_REPLICATIONS, default=1),
        policies=tuple(dict.fromkeys(policies)),
    )
    simulation_parameters(request)
    return simulation_request_to_json(request)


def plots_zip(result: SimulationResult) -> bytes:
    """Each plot as PNG in each language of the pages: `en/queue_length.png`, `fr/…`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for language in PLOT_LANGUAGES:
            with translation.override(language):
                for name, draw in PLOTS.items():
                    archive.writestr(f"{language}/{name}.png", draw(result, translation.gettext))
        archive.writestr("summary.json", json.dumps(result_document(result), indent=1))
    return buffer.getvalue()


def plots_read(content: bytes, language: str) -> dict[str, bytes]:
    """The plots of `language` (English when it has none) from the job's file, by name."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        shown = language if f"{language}/{next(iter(PLOTS))}.png" in names else PLOT_LANGUAGES[0]
        return {name: archive.read(f"{shown}/{name}.png") for name in PLOTS if f"{shown}/{name}.png" in names}


def simulate_network_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    """`run_simulation` with its progress per replication; the plots drawn at the end."""
    request = simulation_request_from_json(dict(parameters))

    def replicated(done: int, total: int) -> None:
        progress(90.0 * done / total, Message(N_("{done} of {total} runs simulated"), {"done": done, "total": total}))

    runs = request.replications * len(request.policies)
    progress(0, Message(N_("{done} of {total} runs simulated"), {"done": 0, "total": runs}))
    result = run_simulation(request, on_progress=replicated)
    progress(92, Message(N_("Drawing the plots")))
    return JobOutcome(result_document(result), JobFile(PLOTS_FILE, "application/zip", plots_zip(result)))


def simulate_network_summary(result: Mapping[str, Any]) -> Message:
    """Infused per month per policy, in one sentence."""
    policies = result.get("policies") or {}
    figures = {p: (policies.get(p) or {}).get("infused_per_month_mean") for p in POLICIES}
    values = {
        "months": result.get("months"),
        "replications": result.get("replications"),
        "greedy": "—" if figures["greedy"] is None else f"{figures['greedy']:.2f}",
        "optimised": "—" if figures["optimised"] is None else f"{figures['optimised']:.2f}",
    }
    return Message(
        N_(
            "{months} months, {replications} replication(s): infused per month {greedy} first come first served, "
            "{optimised} optimised."
        ),
        values,
    )


def register() -> None:
    """The simulation's kind (called by `SimulationConfig.ready`)."""
    job_kind_register(
        JobKind(
            code=SIMULATE_NETWORK,
            label=N_("Simulate the trial network"),
            action=Action.RUN_SIMULATION,
            run=simulate_network_run,
            check=simulate_parameters,
            summary=simulate_network_summary,
            result_view="simulation:job_result",
        )
    )
