"""`cartrial export`: the trial's data in a standard, written from the server's command line.

A contract other programs rely on (issue 12, docs/exports.md):

    cartrial export odm|define|datasetjson|fhir|usdm|csv [--center ID] [--subject CODE]
                    [--since ISO-TIME] --out PATH

`--out` is a file for odm, define, fhir and usdm, a folder for datasetjson (one `<domain>.json` per
SDTM domain, lower case) and csv. The command line is the server's operator: every center, no
identity (pseudonymous). Exit 0 with one summary line; exit 2 with one line on bad input (an
unknown center, a malformed `--since`, an unknown subject, an unusable `--out`); exit 1 with one
line when the file cannot be written (a full disk): nothing half-written in either case. A progress
bar shows on a terminal. The export is recorded in the audit trail with its SHA-256.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from cartrial.cli.web import _django, _fail

EXIT_INVALID_INPUT = 2
EXIT_WRITE_FAILED = 1


def register(app: typer.Typer) -> None:
    """Attach `export` to the `cartrial` application."""
    app.command("export")(export_command)


def export_command(
    export_format: Annotated[
        str, typer.Argument(metavar="FORMAT", help="odm, define, datasetjson, fhir, usdm or csv.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="The file (odm, define, fhir, usdm) or the folder (datasetjson, csv) to write."),
    ],
    center: Annotated[
        list[str] | None, typer.Option("--center", help="Only this center's subjects (its code: BDX); repeatable.")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Only this subject (its code).")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only what changed after this time (ISO 8601 with offset, or a date: UTC)."),
    ] = None,
) -> None:
    """Write the export and print one line: format, subjects, records, path and SHA-256."""
    _django()
    from cartrial.apps import clock, text
    from cartrial.apps.audit.services import Actor
    from cartrial.apps.exports.jobs import export_format_parse
    from cartrial.apps.exports.selectors import export_request_resolve, since_parse
    from cartrial.apps.exports.services import ExportWriteFailed, export_run
    from cartrial.domain.errors import DomainError

    actor = Actor.system(f"cli:{getpass.getuser()}", now=clock.now())
    try:
        request = export_request_resolve(
            scope=None,
            export_format=export_format_parse(export_format),
            center_codes=center or [],
            subject_code=subject,
            since=since_parse(since) if since is not None else None,
            now=actor.now,
            requested_by=actor.username,
        )
        with _ProgressBar(enabled=sys.stderr.isatty()) as bar:
            result = export_run(actor, request, out, bar, centers=sorted(c.upper() for c in center or []))
    except ExportWriteFailed as error:
        _fail(f"error: {text.error_text(error, 'en')} [{error.code}]", EXIT_WRITE_FAILED)
    except DomainError as error:
        _fail(f"error: {text.error_text(error, 'en')} [{error.code}]", EXIT_INVALID_INPUT)
    typer.echo(
        f"{request.format.value}: {result.counts.subjects} subjects, {result.counts.records} records "
        f"→ {result.path} (SHA-256 {result.sha256}, {result.size} bytes)"
    )


class _ProgressBar:
    """`progress(done, total)` drawn as a bar on stderr when it is a terminal (a large export takes
    minutes); silent otherwise, so scripts read one line."""

    def __init__(self, *, enabled: bool) -> None:
        self.bar = Progress(console=Console(stderr=True), transient=True) if enabled else None
        self.task = self.bar.add_task("export", total=None) if self.bar is not None else None

    def __enter__(self) -> _ProgressBar:
        if self.bar is not None:
            self.bar.start()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
