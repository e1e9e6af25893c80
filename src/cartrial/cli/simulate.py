"""`cartrial simulate`: the trial network simulated over months (issue 11), greedy versus optimised.

Adapter over `cartrial.domain.simulation`: the defaults with the protocol's figures, overridden by
`--params FILE.json`, run for `--replications` seeds; a progress bar (rich, on a terminal) on
stderr, the summary table (or `--json`) on stdout, PNG plots in `--out`. No database, no Django.
Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cartrial.domain.errors import DomainError
from cartrial.domain.simulation import POLICIES, SimulationResult, parameters_from_json, run_simulation
from cartrial.domain.simulation.figures import PLOTS
from cartrial.domain.simulation.model import BRANCHES, result_document
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol
from cartrial.protocols.simulation import simulation_defaults

EXIT_INVALID_INPUT = 2
MAXIMUM_REPLICATIONS = 1000


def register(app: typer.Typer) -> None:
    """Attach `simulate` to the `cartrial` application."""
    app.command("simulate")(simulate_command)


def _fail(line: str) -> NoReturn:
    typer.echo(f"cartrial simulate: {' '.join(line.split())}", err=True)
    raise typer.Exit(EXIT_INVALID_INPUT)


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def _figure(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_table(result: SimulationResult) -> Table:
    """One row per figure, one column per policy."""
    table = Table(title=f"{result.parameters.months} months, {result.replications} replication(s), seed {result.seed}")
    table.add_column("Figure")
    for summary in result.summaries:
        table.add_column(summary.policy, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("Patients screened (mean)", [_figure(s.arrivals_mean) for s in result.summaries]),
        ("Screen failures (mean)", [_figure(s.screen_failures_mean) for s in result.summaries]),
        ("Infused (mean)", [_figure(s.infused_mean) for s in result.summaries]),
        ("Infused per month", [_figure(s.infused_per_month_mean, 2) for s in result.summaries]),
        ("No infusion (mean)", [_figure(s.no_infusion_mean) for s in result.summaries]),
        ("In progress at the end (mean)", [_figure(s.in_progress_mean) for s in result.summaries]),
        ("Days inclusion → infusion, median", [_figure(s.median_days) for s in result.summaries]),
        ("Days inclusion → infusion, P90", [_figure(s.p90_days) for s in result.summaries]),
        ("Days inclusion → infusion, urgent, median", [_figure(s.urgent_median_days) for s in result.summaries]),
        ("Queue for apheresis (mean)", [_figure(s.queue_mean) for s in result.summaries]),
    ]
    for branch in BRANCHES:
        rows.append((f"Failed batches → {branch} (total)", [str(s.failures[branch]) for s in result.summaries]))
    for facility in result.parameters.facilities:
        rows.append((f"Line use {facility.id}", [f"{s.line_utilisation[facility.id]:.0%}" for s in result.summaries]))
    for center in result.parameters.centers:
        rows.append((f"Bed use {center.id}", [f"{s.bed_utilisation[center.id]:.0%}" for s in result.summaries]))
    for name, values in rows:
        table.add_row(name, *values)
    return table


def simulate_command(
    months: Annotated[int | None, typer.Option("--months", metavar="N", help="Months simulated (1-120).")] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Random seed (default 0).")] = 0,
    replications: Annotated[
        int, typer.Option("--replications", metavar="R", help="Runs per policy, seeds S..S+R-1 (default 1).")
    ] = 1,
    policy: Annotated[str, typer.Option("--policy", help="greedy, optimised or both (default both).")] = "both",
    params: Annotated[
        Path | None,
        typer.Option("--params", metavar="FILE.json", help="JSON object overriding parameters (docs/simulation.md)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", help="Write the PNG plots here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate the network's patients (arrivals, screening, apheresis, manufacturing, QC failures,
    infusion) and compare first-come-first-served booking with CP-SAT re-planning."""
    if policy not in (*POLICIES, "both"):
        _fail(f"--policy must be greedy, optimised or both, got {policy!r}.")
    if not 1 <= replications <= MAXIMUM_REPLICATIONS:
        _fail(f"--replications must be between 1 and {MAXIMUM_REPLICATIONS}, got {replications}.")
    if seed < 0:
        _fail(f"--seed must be ≥ 0, got {seed}.")
    try:
        parameters = simulation_defaults(load_protocol(DEFAULT_PROTOCOL_FILE))
    except ProtocolError as error:
        _fail(str(error))
    try:
        if params is not None:
            try:
                data = json.loads(params.read_text(encoding="utf-8"), parse_constant=_reject_constant)
            except OSError as error:
                _fail(f"cannot read {params} ({error.strerror}).")
            except (UnicodeDecodeError, ValueError) as error:
                _fail(f"{params} is not JSON ({error}).")
            parameters = parameters_from_json(data, parameters)
        if months is not None:
            parameters = parameters_from_json({"months": months}, parameters)
        if out is not None and out.exists() and not out.is_dir():
            _fail(f"--out {out} is not a directory.")
        chosen = POLICIES if policy == "both" else (policy,)
        console = Console(stderr=True)
        with Progress(
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} runs"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("simulate", total=replications * len(chosen))
            result = run_simulation(
                parameters,
                seed=seed,
                replications=replications,
                policies=chosen,
                on_progress=lambda done, _total: progress.update(task, completed=done),
            )
    except DomainError as error:
        _fail(f"{error} [{error.code}]")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, draw in PLOTS.items():
            (out / f"{name}.png").write_bytes(draw(result, str))
    if as_json:
        typer.echo(json.dumps(result_document(result), indent=1))
    else:
        Console().print(summary_table(result))
