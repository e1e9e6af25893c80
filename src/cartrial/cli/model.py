"""`cartrial model simulate|cohort|fit`: the expected-biology model from the command line.

Adapters over `cartrial.domain.kinetics`: `simulate` writes the typical patient's markers as CSV,
`cohort` the 5/50/95 % bands of a virtual cohort as CSV, `fit` one subject's fitted parameters,
band and flags as JSON. Results go to stdout; progress (rich, only on a terminal) to stderr.
Any bad input (unknown preset or parameter, value out of range, unreadable file, bad
observation) is one line on stderr and exit code 2. No Django import.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cartrial.domain.kinetics import (
    MARKERS,
    KineticsInputError,
    Preset,
    assess_subject,
    assessment_document,
    output_day_grid,
    preset_named,
    simulate_cohort,
    simulate_markers,
)
from cartrial.domain.kinetics.cohort import BAND_QUANTILES
from cartrial.domain.kinetics.observations import OBSERVATION_COLUMNS

EXIT_INVALID_INPUT = 2
# More output rows than this (days / step) is refused: a year at 0.001-day steps is 365 000.
MAXIMUM_OUTPUT_ROWS = 1_000_000

model_app = typer.Typer(
    name="model",
    help="Expected biology after CAR-T: CAR-T, B cells, anti-dsDNA (Tier-1 kinetics model).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _BadInput(Exception):
    """A problem with the command's input, reported as one line and exit 2."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cartrial model: {' '.join(message.split())}", err=True)
    return typer.Exit(code=EXIT_INVALID_INPUT)


def _required(value: str | None, option: str) -> str:
    if value is None or not value.strip():
        raise _BadInput(f"{option} is required.")
    return value.strip()


def _positive_number(value: str | None, option: str) -> float:
    text = _required(value, option)
    try:
        number = float(text)
    except ValueError:
        raise _BadInput(f"{option} must be a number, got {text!r}.") from None
    if not math.isfinite(number) or number <= 0:
        raise _BadInput(f"{option} must be > 0, got {text}.")
    return number


def _whole_number(value: str | None, option: str, *, minimum: int) -> int:
    text = _required(value, option)
    try:
        number = int(text)
    except ValueError:
        raise _BadInput(f"{option} must be a whole number, got {text!r}.") from None
    if number < minimum:
        raise _BadInput(f"{option} must be ≥ {minimum}, got {number}.")
    return number


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"cannot read {path}: {exc}") from None


def _preset(name: str | None, params_file: Path | None) -> Preset:
    preset = preset_named(_required(name, "--preset"))
    if params_file is None:
        return preset
    try:
        overrides = json.loads(_read_text(params_file), parse_constant=_reject_constant)
    except ValueError as exc:
        raise _BadInput(f"invalid JSON in {params_file}: {exc}") from None
    if not isinstance(overrides, dict):
        raise _BadInput(f"{params_file} must hold one JSON object of parameter name → value.")
    return preset.with_typical(overrides)


def _format(value: float) -> str:
    return format(float(value), ".8g")


def _write_rows(stream: TextIO, header: Sequence[str], rows: Iterator[Sequence[str]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _stderr_console() -> Console:
    return Console(stderr=True)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (shown only on a terminal); yields an update callback."""
    console = _stderr_console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, _total: int) -> None:
            progress.update(task, completed=done)

        yield update


def _grid(days: str | None, step: str | None) -> np.ndarray:
    horizon = _positive_number(days, "--days")
    step_days = _positive_number(step, "--step") if step is not None else 1.0
    if horizon / step_days > MAXIMUM_OUTPUT_ROWS:
        raise _BadInput(f"--days / --step gives more than {MAXIMUM_OUTPUT_ROWS:,} rows; use a larger step.")
    return output_day_grid(horizon, step_days)


@model_app.command("simulate")
def simulate(
    preset: Annotated[str | None, typer.Option("--preset", metavar="NAME", help="stein2019 or sle-default.")] = None,
    params: Annotated[
        Path | None,
        typer.Option("--params", metavar="FILE.json", help="JSON object overriding typical parameter values."),
    ] = None,
    days: Annotated[str | None, typer.Option("--days", metavar="N", help="Horizon in days since infusion.")] = None,
    step: Annotated[str | None, typer.Option("--step", metavar="DAYS", help="Output step in days (default 1).")] = None,
) -> None:
    """The typical patient's markers as CSV: day, car_t, b_cells, ... (one row per step)."""
    try:
        chosen = _preset(preset, params)
        grid = _grid(days, step)
        markers = simulate_markers(chosen.typical_patient(), grid)
    except (KineticsInputError, _BadInput) as exc:
        raise _fail(str(exc)) from None
    _write_rows(
        sys.stdout,
        ["day", *MARKERS],
        ([_format(day)] + [_format(markers[marker][0, index]) for marker in MARKERS] for index, day in enumerate(grid)),
    )


@model_app.command("cohort")
def cohort(
    preset: Annotated[str | None, typer.Option("--preset", metavar="NAME", help="stein2019 or sle-default.")] = None,
    n: Annotated[str | None, typer.Option("--n", metavar="N", help="Number of virtual patients.")] = None,
    days: Annotated[str | None, typer.Option("--days", metavar="N", help="Horizon in days (daily bands).")] = None,
    seed: Annotated[str | None, typer.Option("--seed", metavar="S", help="Random seed (default 0).")] = None,
) -> None:
    """5/50/95 % bands of a virtual cohort as CSV: day, car_t_p05, car_t_p50, car_t_p95, ..."""
    try:
        chosen = _preset(preset, None)
        patients = _whole_number(n, "--n", minimum=1)
        grid = _grid(days, None)
        random_seed = _whole_number(seed, "--seed", minimum=0) if seed is not None else 0
        with _progress(f"{patients:,} virtual patients", patients) as update:
            result = simulate_cohort(chosen, patients=patients, days=grid, seed=random_seed, on_progress=update)
    except (KineticsInputError, _BadInput) as exc:
        raise _fail(str(exc)) from None
    suffixes = [f"p{round(q * 100):02d}" for q in BAND_QUANTILES]
    band = result.band
    _write_rows(
        sys.stdout,
        ["day", *(f"{marker}_{suffix}" for marker in MARKERS for suffix in suffixes)],
        (
            [_format(day)]
            + [_format(band.values[marker][position, index]) for marker in MARKERS for position in range(len(suffixes))]
            for index, day in enumerate(band.days)
        ),
    )


def _observation_records(path: Path) -> list[Mapping[str, object]]:
    text = _read_text(path)
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in OBSERVATION_COLUMNS if column != "loq" and column not in header]
    if missing:
        raise _BadInput(
            f"{path} needs a header row with columns {', '.join(OBSERVATION_COLUMNS)}; missing: {', '.join(missing)}."
        )
    records: list[Mapping[str, object]] = []
    for row in reader:
        if None in row:
            raise _BadInput(f"{path} line {reader.line_num}: more fields than header columns.")
        records.append({key.strip(): value for key, value in row.items() if key is not None})
    return records


@model_app.command("fit")
def fit(
    observations: Annotated[
        Path | None,
        typer.Option(
            "--observations",
            metavar="FILE.csv",
            help="CSV with columns marker,day,value,unit,loq (day since infusion; empty value = below LoQ).",
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", metavar="NAME", help="Priors (default sle-default).")
    ] = None,
    seed: Annotated[str | None, typer.Option("--seed", metavar="S", help="Random seed (default 0).")] = None,
) -> None:
    """Fit one subject's observations: parameters, predictive band and flags as JSON."""
    try:
        if observations is None:
            raise _BadInput("--observations is required.")
        records = _observation_records(observations)
        chosen = preset_named(preset.strip() if preset else "sle-default")
        random_seed = _whole_number(seed, "--seed", minimum=0) if seed is not None else 0
        console = _stderr_console()
        with console.status("fitting…") if console.is_terminal else _no_status():
            assessment = assess_subject(records, chosen, seed=random_seed)
    except (KineticsInputError, _BadInput) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(assessment_document(assessment), ensure_ascii=False, indent=1))


@contextmanager
def _no_status() -> Iterator[None]:
    yield


def register(app: typer.Typer) -> None:
    """Attach the `model` group to the `cartrial` command."""
    app.add_typer(model_app, name="model")
