"""`cartrial visits`: a subject's visit schedule and statuses from the protocol, with no database.

`status` is a contract other programs rely on (issue 9): it reads one subject's anchor dates,
done and missed visits from a JSON file and prints every protocol visit with its window and
status. `table` prints the schedule as the Markdown table of docs/visits.md. Pure adapter over
`cartrial.domain.visits`; it never imports Django. Unusable input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cartrial.domain.errors import DomainError
from cartrial.domain.visits import VisitDefinition, visits_status_report
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

ProtocolOption = Annotated[
    Path | None,
    typer.Option("--protocol", help="Protocol file (YAML); default: the protocol shipped with cartrial."),
]


def register(app: typer.Typer) -> None:
    """Attach the `visits` group to the `cartrial` application."""
    visits_app = typer.Typer(
        name="visits",
        help="The visit schedule of the protocol: windows and statuses of one subject's visits.",
        no_args_is_help=True,
    )
    visits_app.command("status")(status_command)
    visits_app.command("table")(table_command)
    app.add_typer(visits_app, name="visits")


def status_command(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            help='JSON: {"inclusion_date": "YYYY-MM-DD", "infusion_date": "YYYY-MM-DD" or null, '
            '"today": "YYYY-MM-DD", "done": {"D7": "YYYY-MM-DD"}, "missed": ["M9"]}.',
        ),
    ],
    protocol: ProtocolOption = None,
) -> None:
    """Print {"visits": [{code, anchor, target, earliest, latest, status}]} in protocol order."""
    visits = _visits(protocol)
    try:
        payload = json.loads(input_file.read_text(encoding="utf-8"))
    except OSError as error:
        _fail(f"error: input file {input_file} cannot be read ({error.strerror}) [input_unreadable]")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        _fail(f"error: input file {input_file} is not JSON ({_one_line(str(error))}) [input_not_json]")
    if not isinstance(payload, dict):
        _fail(f"error: input file {input_file} must hold a JSON object [input_not_object]")
    try:
        report = visits_status_report(visits, payload)
    except DomainError as error:
        _fail(f"error: {error} [{error.code}]")
    typer.echo(json.dumps(report))


def table_command(protocol: ProtocolOption = None) -> None:
    """Print the schedule as a Markdown table (the one in docs/visits.md)."""
    typer.echo(schedule_table(_visits(protocol)), nl=False)


def schedule_table(visits: Sequence[VisitDefinition]) -> str:
    """The schedule as Markdown: one row per visit, in protocol order."""
    lines = [
        "| Code | Visit | Anchor | Day | Days before | Days after | Phase | Forms |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for visit in visits:
        lines.append(
            f"| {visit.code} | {visit.label['en']} | {visit.anchor.value} | {visit.day} "
            f"| {visit.window_before_days} | {visit.window_after_days} "
            f"| {visit.phase.value} | {', '.join(visit.forms)} |"
        )
    return "\n".join(lines) + "\n"


def _visits(protocol: Path | None) -> tuple[VisitDefinition, ...]:
    try:
        return load_protocol(protocol if protocol is not None else DEFAULT_PROTOCOL_FILE).visits
    except ProtocolError as error:
        _fail(f"error: {_one_line(str(error))} [{error.code}]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(line: str) -> NoReturn:
    typer.echo(line, err=True)
    raise typer.Exit(2)
