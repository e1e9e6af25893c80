"""`cartrial calc NAME`: one clinical calculator, JSON object in (stdin or --input), JSON out.

The command is an adapter over `cartrial.domain.scores.registry.calculate`, so it answers
exactly as the API and the web pages do. Bad input of any kind (invalid JSON, unknown key,
wrong type, out-of-range value, unknown calculator) is one line on stderr and exit code 2.
It never imports Django, so it runs without settings or a database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.registry import CALCULATOR_NAMES, calculate, describe

EXIT_INVALID_INPUT = 2


def _reject_constant(token: str) -> float:
    """JSON has no NaN or Infinity; Python's parser would accept them, the contract does not."""
    raise ValueError(f"{token} is not valid JSON")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cartrial calc: {' '.join(message.split())}", err=True)
    return typer.Exit(code=EXIT_INVALID_INPUT)


def _read_payload(input_file: Path | None) -> object:
    if input_file is None:
        text = sys.stdin.read()
        source = "stdin"
    else:
        try:
            text = input_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read {input_file}: {exc}") from None
        source = str(input_file)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _fail(f"invalid JSON on {source}: {exc}") from None


def calc(
    name: Annotated[str, typer.Argument(help=f"Calculator: {', '.join(CALCULATOR_NAMES)}.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="Read the JSON object from this file instead of stdin."),
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the calculator's input schema and output keys.")
    ] = False,
) -> None:
    """Run one clinical calculator: a JSON object on stdin (or --input FILE), a JSON object out."""
    try:
        if schema:
            result = describe(name)
        else:
            payload = _read_payload(input_file)
            if not isinstance(payload, dict):
                raise _fail("the input must be one JSON object ({...})")
            result = calculate(name, payload)
    except CalculatorInputError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    """Attach `calc` to the `cartrial` command."""
    app.command("calc")(calc)
