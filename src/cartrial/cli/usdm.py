"""`cartrial usdm import FILE --out protocol.yaml --effective-date DATE`: a new protocol version from a
USDM v4 file (visits with their anchors, days and windows, phases and forms; eligibility criteria with
their texts), the rest taken from the base protocol (`--protocol`, default the shipped one).

The new file is written only once the protocol loader accepts it (written beside `--out`, loaded,
then renamed), and never over an existing file. No database: the command reads and writes files.
Unusable input: one line on stderr, exit 2. The conversion is `domain/standards/usdm_import.py`;
docs/exports.md (CDISC USDM v4) says what is read from where.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from cartrial.domain.errors import DomainError
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, Protocol, ProtocolError, load_protocol


def register(app: typer.Typer) -> None:
    """Attach the `usdm` group to the `cartrial` application."""
    usdm_app = typer.Typer(
        name="usdm",
        help="CDISC USDM v4: start a new protocol version from a USDM file (the export is `cartrial export usdm`).",
        no_args_is_help=True,
    )
    usdm_app.command("import")(import_command)
    app.add_typer(usdm_app, name="usdm")


class _NoAliases(yaml.SafeDumper):
    """Writes a value shared by several keys in full at each (the file stays readable by hand)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def import_command(
    usdm_file: Annotated[Path, typer.Argument(metavar="FILE", help="The USDM v4 JSON file.")],
    out: Annotated[Path, typer.Option("--out", help="The new protocol file (YAML) to write; must not exist.")],
    effective_date: Annotated[
        str, typer.Option("--effective-date", help="YYYY-MM-DD: the day the new version comes into force.")
    ],
    version: Annotated[
        str | None, typer.Option("--version", help="The new version, MAJOR.MINOR (default: the base's next minor).")
    ] = None,
    protocol: Annotated[
        Path | None, typer.Option("--protocol", help="The base protocol file (default: the one shipped with cartrial).")
    ] = None,
) -> None:
    """Write the new protocol version and print one line: code, version, visits, criteria, path."""
    from pydantic import ValidationError
    from usdm4.api.wrapper import Wrapper

    from cartrial.domain.standards.usdm_import import next_version, protocol_from_usdm

    base = _base(protocol)
    try:
        document = json.loads(usdm_file.read_text(encoding="utf-8"))
    except OSError as error:
        _fail(f"error: USDM file {usdm_file} cannot be read ({error.strerror}) [usdm_unreadable]")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        _fail(f"error: USDM file {usdm_file} is not JSON ({_one_line(str(error))}) [usdm_not_json]")
    try:
        Wrapper.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        _fail(f"error: {usdm_file} is not a USDM v4 document: at {where}: {first['msg']} [usdm_invalid]")
    try:
        effective = date.fromisoformat(effective_date)
    except ValueError:
        _fail(f"error: --effective-date {effective_date!r} is not a date written YYYY-MM-DD [date_malformed]")
    new_version = version or next_version(base.version)
    if new_version == base.version:
        _fail(f"error: the new version must differ from the base's ({base.version}) [usdm_version_unchanged]")
    if out.exists():
        _fail(f"error: {out} exists: the new protocol version goes to a new file [out_exists]")
    try:
        data = protocol_from_usdm(document, base.raw, version=new_version, effective_date=effective)
    except DomainError as error:
        _fail(f"error: {error} [{error.code}]")
    header = (
        f"# {base.code} version {new_version}, in force from {effective.isoformat()}: visits and eligibility "
        f"criteria from {usdm_file.name} (cartrial usdm import),\n# everything else from version {base.version}.\n"
    )
    text = header + yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=120)
    written = _write_checked(out, text)
    typer.echo(
        f"protocol {written.code} {written.version}: {len(written.visits)} visits, "
        f"{len(written.criteria)} criteria → {out}"
    )


def _base(protocol: Path | None) -> Protocol:
    try:
        return load_protocol(protocol if protocol is not None else DEFAULT_PROTOCOL_FILE)
    except ProtocolError as error:
        _fail(f"error: {_one_line(str(error))} [{error.code}]")


def _write_checked(out: Path, text: str) -> Protocol:
    """Write `text` beside `out`, load it as a protocol, and only then rename it to `out`."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    except OSError as error:
        _fail(f"error: cannot write in {out.parent} ({error.strerror}) [out_unwritable]")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        protocol = load_protocol(temporary)
        os.replace(temporary, out)
    except ProtocolError as error:
        _fail(f"error: the new protocol would be refused: at key '{error.key}': {error.problem} [{error.code}]")
    except OSError as error:
        _fail(f"error: cannot write {out} ({error.strerror}) [out_unwritable]")
    finally:
        temporary.unlink(missing_ok=True)
    return protocol


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(line: str) -> NoReturn:
    typer.echo(line, err=True)
    raise typer.Exit(2)
