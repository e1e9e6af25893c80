"""`cartrial endpoints`: a subject's efficacy endpoints per visit (SLEDAI-2K, DORIS, LLDAS, SRI-4).

A contract other programs rely on (issue 10): it reads the baseline and the visits from a JSON
file and prints each visit's endpoints and the visit from which DORIS is sustained. Pure adapter
over `cartrial.domain.endpoints`, with no database; it never imports Django. Unusable input: one
line on stderr, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cartrial.domain.endpoints import endpoints_report
from cartrial.domain.errors import DomainError

EXIT_INVALID_INPUT = 2


def register(app: typer.Typer) -> None:
    """Attach `endpoints` to the `cartrial` application."""
    app.command("endpoints")(endpoints_command)


def endpoints_command(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            help='JSON: {"baseline": {"sledai_descriptors": [...], "pga": 0-3}, "visits": [{"code", '
            '"sledai_descriptors", "pga", "prednisone_mg_per_day", "maintenance_therapy_stable", '
            '"standard_maintenance_only", "hemolytic_anemia", "gi_activity", "new_bilag_a", "new_bilag_b", '
            '"immunosuppressants"}, ...]} with the visits in time order.',
        ),
    ],
) -> None:
    """Print {"visits": [{code, sledai, clinical_sledai, doris, drug_free_doris, lldas, sri4}],
    "doris_sustained_from": code or null} for the subject's visits.

    One line on stderr and exit 2 for input the contract refuses.
    """
    try:
        payload = json.loads(input_file.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except OSError as error:
        _fail(f"error: input file {input_file} cannot be read ({error.strerror}) [input_unreadable]")
    except (UnicodeDecodeError, ValueError) as error:
        _fail(f"error: input file {input_file} is not JSON ({_one_line(str(error))}) [input_not_json]")
    if not isinstance(payload, dict):
        _fail(f"error: input file {input_file} must hold a JSON object [input_not_object]")
    try:
        report = endpoints_report(payload)
    except DomainError as error:
        _fail(f"error: {_one_line(str(error))} [{error.code}]")
    typer.echo(json.dumps(report))


def _reject_constant(token: str) -> float:
    """JSON has no NaN or Infinity; Python's parser would accept them, the contract does not."""
    raise ValueError(f"{token} is not valid JSON")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(line: str) -> NoReturn:
    typer.echo(line, err=True)
    raise typer.Exit(EXIT_INVALID_INPUT)
