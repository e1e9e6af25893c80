"""`cartrial identity`: generate and check ISBT 128 chain-of-identity identifiers (CoI) and DINs, and
rotate the key that encrypts patients' identities.

The identifier commands are a pure adapter over `cartrial.domain.identity`; they never import
Django, so they work on a bench laptop with no database. `check` answers valid (exit 0) or invalid
(exit 1) on stdout; a refused generation or unusable input is a domain error: one line on stderr,
exit 2. `rotate-key` works on the database (Django is imported inside it): docs/operations.md.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from cartrial.domain.errors import DomainError
from cartrial.domain.identity import (
    DonationIdentificationNumber,
    Identifier,
    IdentifierError,
    is_validation_facility_number,
    mod37_2_check_character,
    new_coi,
    new_din,
    parse_identifier,
)


class OutputForm(StrEnum):
    """How a generated identifier is printed."""

    PLAIN = "plain"
    EYE_READABLE = "eye-readable"
    BARCODE = "barcode"


FinOption = Annotated[
    str, typer.Option("--fin", help="Facility identification number; only A9990-A9999 (ICCBBA validation).")
]
YearOption = Annotated[
    int | None, typer.Option("--year", help="Nominal year of issue (2000-2099); default: this year (UTC).")
]
SequenceOption = Annotated[
    int, typer.Option("--sequence", help="Sequence number 0-999999, the next one the registry allocates.")
]
FormOption = Annotated[
    OutputForm,
    typer.Option(
        "--form",
        help="plain: content and check character, no spaces; eye-readable: as printed, check "
        "character in [ ]; barcode: data identifier and content, as encoded in the barcode.",
    ),
]


def register(app: typer.Typer) -> None:
    """Attach the `identity` group to the `cartrial` application."""
    identity_app = typer.Typer(
        name="identity",
        help="ISBT 128 chain-of-identity identifiers (CoI) and donation numbers (DIN): generate, check.",
        no_args_is_help=True,
    )
    identity_app.command("new-coi")(new_coi_command)
    identity_app.command("new-din")(new_din_command)
    identity_app.command("check")(check_command)
    identity_app.command("check-char")(check_char_command)
    identity_app.command("rotate-key")(rotate_key_command)
    app.add_typer(identity_app, name="identity")


def new_coi_command(
    fin: FinOption,
    year: YearOption = None,
    sequence: SequenceOption = 1,
    form: FormOption = OutputForm.PLAIN,
) -> None:
    """Generate a chain-of-identity identifier (Data Structure 040) for a validation FIN."""
    chosen_year = year if year is not None else datetime.now(UTC).year
    try:
        coi = new_coi(facility_number=fin, year=chosen_year, sequence_number=sequence)
    except DomainError as error:
        _fail(error)
    typer.echo(_render(coi, form))


def new_din_command(
    fin: FinOption,
    year: YearOption = None,
    sequence: SequenceOption = 1,
    form: FormOption = OutputForm.PLAIN,
) -> None:
    """Generate a donation identification number (Data Structure 001) for a validation FIN."""
    chosen_year = year if year is not None else datetime.now(UTC).year
    try:
        din = new_din(facility_number=fin, year=chosen_year, sequence_number=sequence)
    except DomainError as error:
        _fail(error)
    typer.echo(_render(din, form))


def check_command(
    code: Annotated[
        list[str],
        typer.Argument(
            help="The code: typed with its check character (spaces allowed, e.g. A9998 18 123456 N) "
            "or a scanned barcode string with its data identifier (=... for a DIN, &/... for a CoI)."
        ),
    ],
) -> None:
    """Check a CoI or DIN; exit 0 with a description if valid, exit 1 with the reason if not."""
    text = " ".join(code)
    try:
        identifier = parse_identifier(text)
    except IdentifierError as error:
        typer.echo(f"invalid: {error} [{error.code}]")
        raise typer.Exit(1) from None
    typer.echo(_describe(identifier, scanned=text.strip().startswith(("=", "&"))))


def check_char_command(
    data: Annotated[list[str], typer.Argument(help="Data characters 0-9 and A-Z; spaces are ignored.")],
) -> None:
    """Print the ISO/IEC 7064 MOD 37-2 check character of DATA (for a CoI, give all 15 characters)."""
    try:
        typer.echo(mod37_2_check_character("".join(data).replace(" ", "")))
    except DomainError as error:
        _fail(error)


def rotate_key_command() -> None:
    """Re-encrypt every patient's identity with the newest key, the first of CARTRIAL_IDENTITY_KEY.

    Put a new key (`cartrial keygen`) in front of the old one(s), restart the server and the worker
    with it, run this, then remove the old key(s). Running it again only finishes what is left.
    """
    from cartrial.cli.web import _django

    _django()
    from cartrial.apps.audit.services import Actor
    from cartrial.apps.subjects.identity_crypto import identity_key_count
    from cartrial.apps.subjects.services import identity_key_rotate

    keys = identity_key_count()
    if keys == 0:
        typer.echo("error: CARTRIAL_IDENTITY_KEY is not set: there is no key to rotate to.", err=True)
        raise typer.Exit(2)
    try:
        rotation = identity_key_rotate(actor=Actor.system("cli"))
    except DomainError as error:
        _fail(error)
    typer.echo(
        f"{rotation.rekeyed} identities re-encrypted with the newest key; "
        f"{rotation.already_current} were already encrypted with it."
    )
    if keys > 1:
        typer.echo(
            f"The other {keys - 1} key(s) of CARTRIAL_IDENTITY_KEY can now be removed (keep them with older backups)."
        )


def _render(identifier: Identifier, form: OutputForm) -> str:
    if form is OutputForm.EYE_READABLE:
        return str(identifier.eye_readable())
    if form is OutputForm.BARCODE:
        return identifier.barcode_data()
    return identifier.typed_form


def _describe(identifier: Identifier, *, scanned: bool) -> str:
    fin = identifier.facility_number
    fin_note = "ICCBBA validation FIN" if is_validation_facility_number(fin) else "registered FIN"
    source = "scanned barcode" if scanned else "typed, check character verified"
    parts = f"FIN {fin} ({fin_note}), year {identifier.year_yy}, sequence {identifier.sequence}"
    if isinstance(identifier, DonationIdentificationNumber):
        flags = f", flags {identifier.flags}" if identifier.flags is not None else ""
        return f"valid DIN {identifier.eye_readable()} ({source}): {parts}{flags}"
    return f"valid CoI {identifier.eye_readable()} ({source}): {parts}"


def _fail(error: DomainError) -> NoReturn:
    typer.echo(f"error: {error} [{error.code}]", err=True)
    raise typer.Exit(2)
