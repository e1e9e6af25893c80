"""The network simulation as a background job (`simulate_network`): the page's request for runs
beyond what it answers in-process (months, replications), run by the worker with its progress per
replication; the summary is the result and the plots (PNG, in English and in French) the job's file,
a ZIP the result page reads back."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_type_hints

from django.utils import translation
from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema, create_model

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
from cartrial.domain.simulation.parameters import (
    CENTER_RANGES,
    FACILITY_RANGES,
    GAP_DAYS_RANGE,
    PARAMETER_RANGES,
    SCREENING_DAYS_RANGE,
    SHIP_DAYS_RANGE,
    SPREAD_DAYS_RANGE,
    CenterParameters,
    FacilityParameters,
    SimulationParameters,
)
from cartrial.domain.text import N_, Message

SIMULATE_NETWORK = "simulate_network"
# A background run's limits (the page answers in-process up to its own smaller caps).
JOB_MAXIMUM_REPLICATIONS = 100
SEED_RANGE = (0, 2**31 - 1)
PLOT_LANGUAGES = ("en", "fr")
PLOTS_FILE = "simulation-plots.zip"

# The API's description of a request (`POST /api/v1/jobs`, kind `simulate_network`). The overrides'
# numeric ranges are the domain's (PARAMETER_RANGES, CENTER_RANGES, FACILITY_RANGES and the day
# ranges), their types the parameters' own: the fields are generated from them, so a range is
# declared once. `simulate_parameters` (then `parameters_from_json`) stays the one check.


def _left_out() -> None:
    """The default of an override: left out, the protocol's value is kept (null is no value)."""
    return None


def _ranged(value_type: Any, bounds: tuple[float, float]) -> Any:
    low, high = bounds
    return Annotated[value_type, Field(ge=low, le=high, strict=True)]


def _ranged_fields(parameters_type: type, ranges: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """A field per ranged parameter: its type read from the parameters' dataclass, its range from `ranges`."""
    hints = get_type_hints(parameters_type)
    return {name: _ranged(hints[name], bounds) for name, bounds in ranges.items()}


def _overrides_model(name: str, doc: str, annotations: Mapping[str, Any], *, required: str = "") -> type[BaseModel]:
    """A model of optional overrides (`required` names the one key that must be given), no other key."""
    specified: dict[str, Any] = {
        key: (annotation, Field() if key == required else Field(default_factory=_left_out))
        for key, annotation in annotations.items()
    }
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **specified)
    return model


# The names of the policies compared (the domain's POLICIES; tests/integration/test_jobs_api.py
# holds them equal).
PolicyName = Literal["greedy", "optimised"]
Weekday = Annotated[int, Field(ge=0, le=6, strict=True, description="0 (Monday) to 6 (Sunday)")]
ScreeningDays = Annotated[int, Field(ge=SCREENING_DAYS_RANGE[0], le=SCREENING_DAYS_RANGE[1], strict=True)]
SpreadDays = Annotated[int, Field(ge=SPREAD_DAYS_RANGE[0], le=SPREAD_DAYS_RANGE[1], strict=True)]
GapDays = Annotated[int, Field(ge=GAP_DAYS_RANGE[0], le=GAP_DAYS_RANGE[1], strict=True)]
ShipDays = Annotated[int, Field(ge=SHIP_DAYS_RANGE[0], le=SHIP_DAYS_RANGE[1], strict=True)]
Seed = Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1], strict=True)]
Replications = Annotated[int, Field(ge=1, le=JOB_MAXIMUM_REPLICATIONS, strict=True)]
Name = Annotated[str, Field(min_length=1)]
Country = Annotated[str, Field(min_length=1, description="ISO 3166-1 alpha-2 code (FR, CA…)")]

SimulatedCenter = _overrides_model(
    "SimulatedCenter",
    "A center of the simulated network: a listed `id` already in the defaults keeps its unlisted values.",
    {
        "id": Name,
        "country": Country,
        **_ranged_fields(CenterParameters, CENTER_RANGES),
        "apheresis_weekdays": Annotated[list[Weekday], Field(min_length=1)],
        "infusion_weekdays": Annotated[list[Weekday], Field(min_length=1)],
        "ship_days": Annotated[dict[str, ShipDays], Field(min_length=1, description="Days to each facility, by id")],
    },
    required="id",
)
SimulatedFacility = _overrides_model(
    "SimulatedFacility",
    "A manufacturing facility of the simulated network: a listed `id` already in the defaults keeps its "
    "unlisted values.",
    {
        "id": Name,
        "country": Country,
        **_ranged_fields(FacilityParameters, FACILITY_RANGES),
        "closed_weekdays": list[Weekday],
    },
    required="id",
)
SimulationOverrides = _overrides_model(
    "SimulationOverrides",
    "Overrides of the protocol's simulation defaults (docs/simulation.md); a key left out keeps its default.",
    {
        "start_date": Annotated[str, WithJsonSchema({"type": "string", "format": "date"})],
        **_ranged_fields(SimulationParameters, PARAMETER_RANGES),
        "centers": Annotated[list[SimulatedCenter], Field(min_length=1)],  # type: ignore[valid-type]
        "facilities": Annotated[list[SimulatedFacility], Field(min_length=1)],  # type: ignore[valid-type]
        "screening_days": Annotated[
            list[ScreeningDays], Field(min_length=3, max_length=3, description="[min, mode, max]")
        ],
        "manufacturing_spread_days": Annotated[
            list[SpreadDays], Field(min_length=2, max_length=2, description="[low ≤ 0, high ≥ 0]")
        ],
        "qc_spread_days": Annotated[
            list[SpreadDays], Field(min_length=2, max_length=2, description="[low ≤ 0, high ≥ 0]")
        ],
        "ld_to_infusion_gap_days": Annotated[
            list[GapDays], Field(min_length=2, max_length=2, description="[min, max]")
        ],
        "public_holidays": StrictBool,
    },
)
SimulateNetworkParameters = create_model(
    "SimulateNetworkParameters",
    __config__=ConfigDict(extra="forbid"),
    __doc__="What a request of `simulate_network` sends (`simulate_parameters` checks it).",
    overrides=(SimulationOverrides, Field(default_factory=SimulationOverrides)),
    seed=(Seed, Field(0, description="The first replication's seed")),
    replications=(Replications, Field(1, description="Runs per policy")),
    policies=(
        list[PolicyName],
        Field(default_factory=lambda: list(POLICIES), min_length=1, description="The policies compared"),
    ),
)


class PolicyFigures(BaseModel):
    """One policy's figures over the replications (`result_document`)."""

    arrivals_mean: float
    screen_failures_mean: float
    infused_mean: float
    no_infusion_mean: float
    in_progress_mean: float
    infused_per_month_mean: float
    median_days_inclusion_to_infusion: float | None
    p90_days_inclusion_to_infusion: float | None
    urgent_median_days_inclusion_to_infusion: float | None
    failures: dict[str, int] = Field(description="Failed batches by the branch drawn, summed over the replications")
    line_utilisation: dict[str, float] = Field(description="Busy line-days / line-days, by facility")
    bed_utilisation: dict[str, float] = Field(description="Infusions / bed-weeks, by center")
    queue_mean: float


class SimulateNetworkResult(BaseModel):
    """What `simulate_network_run` returns: the summary of `cartrial simulate --json`."""

    seed: int
    replications: int
    months: int
    policies: dict[PolicyName, PolicyFigures] = Field(description="The figures of each policy compared")


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
    unknown = sorted(set(parameters) - set(SimulateNetworkParameters.model_fields))
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
            parameters_schema=SimulateNetworkParameters,
            result_schema=SimulateNetworkResult,
        )
    )
