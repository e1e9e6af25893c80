"""`cartrial plan`: the vein-to-vein plan of an instance, or the check of a plan (issue 11).

A contract other programs rely on (docs/planning.md): `--instance FILE.json [--solver cpsat|greedy]
[--time-limit SECONDS]` prints the JSON plan; `--check PLAN.json --instance FILE.json` runs the
independent checker (exit 0 and one line when valid, exit 1 with one violation per line). Pure
adapter over `cartrial.domain.planning`, with no database. Unusable input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cartrial.domain.errors import DomainError
from cartrial.domain.planning import (
    instance_from_json,
    plan_check,
    plan_cpsat,
    plan_from_json,
    plan_greedy,
    plan_to_json,
)

EXIT_INVALID_INPUT = 2
EXIT_VIOLATIONS = 1


class Solver(StrEnum):
    CPSAT = "cpsat"
    GREEDY = "greedy"


def register(app: typer.Typer) -> None:
    """Attach `plan` to the `cartrial` application."""
    app.command("plan")(plan_command)


def plan_command(
    instance_file: Annotated[
        Path,
        typer.Option(
            "--instance",
            help="Instance JSON: start_date, horizon_days, facilities, centers, patients, lymphodepletion_days, "
            "ld_to_infusion_gap_days (docs/planning.md).",
        ),
    ],
    solver: Annotated[
        Solver, typer.Option("--solver", help="cpsat (optimizer) or greedy (first come, first served).")
    ] = (Solver.CPSAT),
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, max=86400.0, help="CP-SAT time limit in seconds.")
    ] = 30.0,
    check: Annotated[
        Path | None, typer.Option("--check", help="Check this plan JSON against the instance instead of planning.")
    ] = None,
) -> None:
    """Print {"status", "objective_days", "lower_bound_days", "patients": [...]} for the instance,
    or check a plan (exit 0 valid, 1 with its violations). Exit 2 for input the contract refuses."""
    try:
        instance = instance_from_json(_read_object(instance_file))
        if check is not None:
            plan = plan_from_json(_read_object(check))
    except DomainError as error:
        _fail(f"error: {_one_line(str(error))} [{error.code}]")
    if check is not None:
        violations = plan_check(instance, plan)
        if violations:
            for violation in violations:
                typer.echo(violation)
            typer.echo(f"plan {check} breaks {len(violations)} rule(s) of instance {instance_file}", err=True)
            raise typer.Exit(EXIT_VIOLATIONS)
        typer.echo(f"plan {check} is valid for instance {instance_file}: every rule holds")
        return
    answer = plan_greedy(instance) if solver is Solver.GREEDY else plan_cpsat(instance, time_limit_s=time_limit)
    typer.echo(json.dumps(plan_to_json(answer)))


def _read_object(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except OSError as error:
        _fail(f"error: input file {path} cannot be read ({error.strerror}) [input_unreadable]")
    except (UnicodeDecodeError, ValueError) as error:
        _fail(f"error: input file {path} is not JSON ({_one_line(str(error))}) [input_not_json]")
    if not isinstance(payload, dict):
        _fail(f"error: input file {path} must hold a JSON object [input_not_object]")
    return payload


def _reject_constant(token: str) -> float:
    """JSON has no NaN or Infinity; Python's parser would accept them, the contract does not."""
    raise ValueError(f"{token} is not valid JSON")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(line: str) -> NoReturn:
    typer.echo(line, err=True)
    raise typer.Exit(EXIT_INVALID_INPUT)
