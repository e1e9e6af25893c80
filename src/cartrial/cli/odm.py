"""`cartrial odm import FILE --out forms.yaml`: an ODM 1.3.2 file's forms as the protocol's `forms:`
section, to start a protocol version from another study's metadata (or to check a round trip).

Pure adapter over `cartrial.domain.standards.odm_import`; it never imports Django. A file that is not
XML, not valid ODM 1.3.2, holds a reference to nothing or a definition the eCRF engine refuses: one
line on stderr naming where (`/ODM/Study/MetaDataVersion/FormDef[2]/ItemGroupRef[1]`), exit 2, and
nothing written. The YAML is written to a temporary file then renamed: never half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml

from cartrial.domain.errors import DomainError
from cartrial.domain.standards.odm_import import forms_from_odm


def register(app: typer.Typer) -> None:
    """Attach the `odm` group to the `cartrial` application."""
    odm_app = typer.Typer(
        name="odm", help="CDISC ODM 1.3.2: read a study's forms from an ODM file.", no_args_is_help=True
    )
    odm_app.command("import")(import_command)
    app.add_typer(odm_app, name="odm")


def import_command(
    odm_file: Annotated[Path, typer.Argument(help="The ODM 1.3.2 file (XML) whose MetaDataVersion to read.")],
    out: Annotated[Path, typer.Option("--out", help="The YAML file to write: `forms:` as in a protocol file.")],
) -> None:
    """Write the file's forms as the protocol's `forms:` section (YAML)."""
    try:
        content = odm_file.read_bytes()
    except OSError as error:
        _fail(f"error: {odm_file} cannot be read ({error.strerror}) [input_unreadable]")
    try:
        forms = forms_from_odm(content)
    except DomainError as error:
        _fail(f"error: {odm_file}: {_one_line(str(error))} [{error.code}]")
    text = yaml.safe_dump({"forms": forms}, allow_unicode=True, sort_keys=False, width=120)
    try:
        _write_atomically(out, text)
    except OSError as error:
        _fail(f"error: {out} cannot be written ({error.strerror}) [output_unwritable]")
    typer.echo(f"{len(forms)} forms written to {out}")


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(line: str) -> NoReturn:
    typer.echo(line, err=True)
    raise typer.Exit(2)
