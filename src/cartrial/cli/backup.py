"""`cartrial backup --out FILE` and `cartrial restore FILE`: the whole trial in one file and back.

Both use the database named by DATABASE_URL. The restore's last line is the audit chain's head
(`head <sha256>`), as `cartrial audit verify` prints it: the same line before the backup and after
the restore is the proof that the trail came back whole. docs/operations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cartrial.domain.errors import DomainError


def register(app: typer.Typer) -> None:
    """Attach `backup` and `restore` to the `cartrial` application."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="The backup file to write (refused if it exists).")],
) -> None:
    """Write the whole database (every table, the audit trail, encrypted identities) to one file."""
    from cartrial.cli.web import _django, _fail

    _django()
    from django.db import DatabaseError

    from cartrial.apps.backup import database_backup

    try:
        summary = database_backup(out)
    except DomainError as error:
        _fail(f"backup refused: {error}")
    except (DatabaseError, OSError) as error:
        _fail(f"backup failed, no file written: {error}".splitlines()[0])
    typer.echo(f"Backed up {summary.rows} rows of {summary.tables} tables to {summary.path}.")
    typer.echo(f"sha256 of the file: {summary.file_sha256}")
    typer.echo(f"Audit trail: {summary.audit_sequence} entries.")
    typer.echo(f"head {summary.audit_head}")


def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by `cartrial backup`.")],
) -> None:
    """Load a backup into the empty database named by DATABASE_URL; a database holding data is refused."""
    from cartrial.cli.web import _django, _fail

    _django()
    from django.db import DatabaseError

    from cartrial.apps.backup import database_restore

    try:
        summary = database_restore(file)
    except DomainError as error:
        _fail(f"restore refused, nothing loaded: {error}")
    except DatabaseError as error:
        _fail(f"restore failed, nothing loaded: {error}".splitlines()[0])
    typer.echo(f"Restored {summary.rows} rows of {summary.tables} tables from {file}.")
    typer.echo(f"Identity data of {summary.identities} subjects decrypted with the configured key.")
    if summary.migrated_forward:
        typer.echo("The database was then migrated forward to this cartrial's schema.")
    typer.echo(f"Audit trail intact: {summary.audit_checked} entries verified.")
    typer.echo(f"head {summary.audit_head}")
