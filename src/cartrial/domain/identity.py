"""ISBT 128 identifiers for chain of identity: MOD 37-2 check characters, DIN and CoI.

Source: the team's logistics reference note, logistics.md §2 (ISBT 128 ST-001 v6.2.2 §2.4.1, §2.4.40, Table 3, §7.5;
ST-028 for the CoI). A single identity error destroys a unique autologous product, so every
parser here refuses rather than guesses: spaces are stripped explicitly, any other character
outside the ISBT alphabet is reported with its position, never skipped.

Two identifiers:

- DIN, Data Structure 001: `αppppyynnnnnn` (13 characters), scanned as `=` + DIN + 2 flags,
  typed or printed with a boxed check character K over the 13 characters.
- Chain of Identity Identifier (CoI), Data Structure 040: `CHαppppyynnnnnn` (15 characters),
  scanned as `&/` + content, printed with a boxed K over the 15 characters *including* "CH"
  (working rule of logistics.md §2.1, held in `COI_CHECK_CHARACTER_COVERS_CH_LITERAL`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, label

MOD37_2_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
"""ISO/IEC 7064 MOD 37-2 output alphabet; value of a character = its index (logistics.md §2.3)."""

DATA_CHARACTERS: Final = frozenset(MOD37_2_ALPHABET[:36])
"""Characters allowed in DIN and CoI data content: `*` can only be a check character."""

COI_CHECK_CHARACTER_COVERS_CH_LITERAL: Final = True
"""Whether the CoI check character is computed over the 15 characters including "CH".

logistics.md §2.1 working rule (confidence moderate-high, no ICCBBA CoI example read yet). The
two readings never agree (they differ by 9 mod 37), so one real ICCBBA label settles it; flip
this constant, not the code, if it turns out otherwise.
"""

DIN_DATA_IDENTIFIER: Final = "="
COI_DATA_IDENTIFIER: Final = "&/"
COI_LITERAL: Final = "CH"

VALIDATION_FACILITY_NUMBERS: Final = frozenset(f"A999{digit}" for digit in range(10))
"""FINs A9990–A9999 reserved by ICCBBA for validation: the only ones we may generate (§2, §6.7)."""

GENERATION_YEARS: Final = range(2000, 2100)
"""Years we generate identifiers for; the label keeps two digits, so the century must be fixed."""

SEQUENCE_NUMBERS: Final = range(0, 1_000_000)
"""Sequence numbers the generators accept: six decimal digits, as printed."""

DIN_LENGTH: Final = 13
COI_LENGTH: Final = 15
DIN_FLAGS_LENGTH: Final = 2

_FIN_FIRST_CHARACTERS: Final = frozenset("ABCDEFGHIJKLMNPQRSTUVWXYZ123456789")
_FIN_SECOND_THIRD_CHARACTERS: Final = frozenset("ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789")
_DIGITS: Final = frozenset("0123456789")
_DIN_FLAG_CHARACTERS: Final = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXY")
_TYPE_3_FLAG_OFFSET: Final = 60
_RESERVED_FLAG_VALUES: Final = range(97, 100)


class IdentifierError(InvalidInput):
    """An identifier that cannot be accepted; `position` (1-based, in the text as given) if known."""

    code = "identifier_invalid"

    def __init__(self, msgid: str, /, *, position: int | None = None, code: str | None = None, **params: Any) -> None:
        super().__init__(msgid, code=code, **params)
        self.position = position


class IdentifierLengthError(IdentifierError):
    code = "identifier_length"


class IdentifierCharacterError(IdentifierError):
    code = "identifier_character"


class DataIdentifierError(IdentifierError):
    """A barcode of another ISBT 128 data structure was scanned where a DIN or CoI was expected."""

    code = "identifier_data_identifier"


class FacilityNumberError(IdentifierError):
    code = "identifier_facility_number"


class FacilityNotRegisteredError(IdentifierError):
    """Generation refused: production FINs need ICCBBA registration (and CoI issuer registration)."""

    code = "identifier_facility_not_registered"


class IdentifierYearError(IdentifierError):
    code = "identifier_year"


class IdentifierSequenceError(IdentifierError):
    code = "identifier_sequence"


class CoiLiteralError(IdentifierError):
    code = "coi_literal"


class DinFlagError(IdentifierError):
    code = "din_flag"


class CheckCharacterMissingError(IdentifierError):
    """Typed codes must carry their check character: it is the only guard against a typo."""

    code = "check_character_missing"


class CheckCharacterMismatchError(IdentifierError):
    code = "check_character_mismatch"


def mod37_2_checksum(data: str) -> int:
    """ISO/IEC 7064 MOD 37-2 checksum (0–36) of `data`, in the running form of logistics.md §2.3."""
    running = 0
    for position, character in enumerate(data, start=1):
        value = MOD37_2_ALPHABET.find(character)
        if value < 0 or value == 36:
            raise IdentifierCharacterError(
                "'{character}' at position {position} cannot be part of the data: "
                "only 0-9 and A-Z (upper case) are allowed.",
                position=position,
                character=character,
            )
        running = ((running + value) * 2) % 37
    return (38 - running) % 37


def mod37_2_check_character(data: str) -> str:
    """Eye-readable check character K of `data` (may be `*`)."""
    return MOD37_2_ALPHABET[mod37_2_checksum(data)]


def is_validation_facility_number(facility_number: str) -> bool:
    """True for the ICCBBA validation FINs A9990–A9999, the only ones usable without registration."""
    return facility_number in VALIDATION_FACILITY_NUMBERS


@dataclass(frozen=True)
class EyeReadable:
    """Text printed under the barcode, and the check character printed in a box beside it."""

    text: str
    check_character: str

    def __str__(self) -> str:
        return f"{self.text} [{self.check_character}]"


@dataclass(frozen=True)
class DonationIdentificationNumber:
    """ISBT 128 DIN (Data Structure 001): one collection, unique for 100 years.

    `flags` is set only when parsed from a scanned barcode; it is label data, not identity.
    """

    facility_number: str
    year_yy: str
    sequence: str
    flags: str | None = None

    def __post_init__(self) -> None:
        _check_facility_number(self.facility_number, _positions_from(1, 5))
        _check_year(self.year_yy, _positions_from(6, 2))
        _check_din_sequence(self.sequence, _positions_from(8, 6))
        if self.flags is not None:
            _check_din_flags(self.flags, self.content, _positions_from(14, 2))

    @property
    def content(self) -> str:
        """The 13 DIN characters `αppppyynnnnnn`, the identity compared at every scan."""
        return f"{self.facility_number}{self.year_yy}{self.sequence}"

    @property
    def check_character(self) -> str:
        return mod37_2_check_character(self.content)

    @property
    def type_3_flag(self) -> str:
        """Flag `ff` = 60 + checksum, the machine-readable counterpart of K (ST-001 Table 3)."""
        return str(_TYPE_3_FLAG_OFFSET + mod37_2_checksum(self.content))

    @property
    def typed_form(self) -> str:
        """Content followed by K, without spaces: what an operator types from the label."""
        return self.content + self.check_character

    def eye_readable(self) -> EyeReadable:
        """As printed by ST-001 §7.5.1.1: `A9998 18 123456` with K boxed beside it."""
        return EyeReadable(f"{self.facility_number} {self.year_yy} {self.sequence}", self.check_character)

    def barcode_data(self, flags: str | None = None) -> str:
        """`=` + DIN + flags; a type-3 flag by default so the scan carries its own check."""
        chosen = flags if flags is not None else (self.flags or self.type_3_flag)
        _check_din_flags(chosen, self.content, _positions_from(1, 2))
        return f"{DIN_DATA_IDENTIFIER}{self.content}{chosen}"


@dataclass(frozen=True)
class ChainOfIdentityIdentifier:
    """ISBT 128 CoI (Data Structure 040): links all collections of one patient therapy event."""

    facility_number: str
    year_yy: str
    sequence: str

    def __post_init__(self) -> None:
        _check_facility_number(self.facility_number, _positions_from(3, 5))
        _check_year(self.year_yy, _positions_from(8, 2))
        _check_coi_sequence(self.sequence, _positions_from(10, 6))

    @property
    def content(self) -> str:
        """The 15 characters `CHαppppyynnnnnn`, the identity compared at every scan."""
        return f"{COI_LITERAL}{self.facility_number}{self.year_yy}{self.sequence}"

    @property
    def check_character(self) -> str:
        return mod37_2_check_character(coi_check_character_input(self.content))

    @property
    def typed_form(self) -> str:
        """Content followed by K, without spaces: what an operator types from the label."""
        return self.content + self.check_character

    def eye_readable(self) -> EyeReadable:
        """`CH A9999 23 ABC123` with K boxed beside it.

        The grouping mirrors the DIN's; ST-028's own print layout has not been read
        (logistics.md §2.1), and parsing accepts any spacing.
        """
        return EyeReadable(
            f"{COI_LITERAL} {self.facility_number} {self.year_yy} {self.sequence}",
            self.check_character,
        )

    def barcode_data(self) -> str:
        """`&/` + the 15 characters; K is never part of the barcode."""
        return f"{COI_DATA_IDENTIFIER}{self.content}"


Identifier = DonationIdentificationNumber | ChainOfIdentityIdentifier


def coi_check_character_input(content: str) -> str:
    """The string K is computed over for a CoI content, per the §2.1 working rule."""
    return content if COI_CHECK_CHARACTER_COVERS_CH_LITERAL else content[len(COI_LITERAL) :]


def new_din(*, facility_number: str, year: int, sequence_number: int) -> DonationIdentificationNumber:
    """Generate a DIN for a validation FIN; `sequence_number` is the next one from the registry."""
    _check_generation(facility_number, year, sequence_number)
    return DonationIdentificationNumber(facility_number, f"{year % 100:02d}", f"{sequence_number:06d}")


def new_coi(*, facility_number: str, year: int, sequence_number: int) -> ChainOfIdentityIdentifier:
    """Generate a CoI for a validation FIN; `sequence_number` is the next one from the registry.

    We allocate decimal sequences only (`000001`): numbering stays monotonic and readable, and
    10^6 per FIN and year is far beyond a phase 1/2 trial. Alphanumeric ones are still parsed.
    """
    _check_generation(facility_number, year, sequence_number)
    return ChainOfIdentityIdentifier(facility_number, f"{year % 100:02d}", f"{sequence_number:06d}")


def parse_din(text: str) -> DonationIdentificationNumber:
    """Parse a DIN typed with its K (`A9998 18 123456 N`) or scanned (`=A99981812345683`)."""
    stripped = text.strip()
    if stripped.startswith(DIN_DATA_IDENTIFIER):
        return _parse_din_barcode(stripped)
    if stripped.startswith("&"):
        raise _wrong_data_identifier(stripped, expected="DIN")
    content, positions = _normalise(stripped)
    _check_typed_length(content, DIN_LENGTH, "DIN")
    _check_characters(content, positions, check_character_last=True)
    _check_din_components(content, positions)
    din = DonationIdentificationNumber(content[0:5], content[5:7], content[7:13])
    _check_check_character(din.check_character, content, positions)
    return din


def parse_coi(text: str) -> ChainOfIdentityIdentifier:
    """Parse a CoI typed with its K (`CH A9999 23 ABC123 U`) or scanned (`&/CHA999923ABC123`)."""
    stripped = text.strip()
    if stripped.startswith(COI_DATA_IDENTIFIER):
        content, positions = _normalise(stripped[len(COI_DATA_IDENTIFIER) :], offset=2)
        if len(content) != COI_LENGTH:
            raise IdentifierLengthError(
                "A scanned CoI is '&/' followed by {expected} characters; this one has {length} after '&/'.",
                expected=COI_LENGTH,
                length=len(content),
            )
        _check_characters(content, positions, check_character_last=False)
        return _coi_from_content(content, positions)
    if stripped.startswith(("=", "&")):
        raise _wrong_data_identifier(stripped, expected="CoI")
    content, positions = _normalise(stripped)
    if not content.startswith(COI_LITERAL):
        raise CoiLiteralError(
            "A CoI starts with 'CH'; this one starts with '{start}'.",
            position=positions[0] if positions else None,
            start=content[:2],
        )
    _check_typed_length(content, COI_LENGTH, "CoI")
    _check_characters(content, positions, check_character_last=True)
    coi = _coi_from_content(content[:COI_LENGTH], positions)
    _check_check_character(coi.check_character, content, positions)
    return coi


def parse_identifier(text: str) -> Identifier:
    """Parse either identifier, telling them apart by data identifier or by the "CH" literal.

    A typed code starting with "CH" is read as a CoI: a DIN could only start with "CH" if its
    FIN had a letter in second position, and no such FIN is assigned today (logistics.md §2.1).
    """
    stripped = text.strip()
    if stripped.startswith("&"):
        return parse_coi(stripped)
    if stripped.startswith("="):
        return parse_din(stripped)
    content, positions = _normalise(stripped)
    if content.startswith(COI_LITERAL):
        return parse_coi(stripped)
    if len(content) in (DIN_LENGTH, DIN_LENGTH + 1):
        return parse_din(stripped)
    _check_characters(content, positions, check_character_last=True)
    raise IdentifierLengthError(
        "Not a DIN or a CoI: {length} characters without spaces. A DIN is typed as {din_length} characters "
        "and its check character, a CoI as 'CH' + 13 characters and its check character.",
        length=len(content),
        din_length=DIN_LENGTH,
    )


def _parse_din_barcode(stripped: str) -> DonationIdentificationNumber:
    body = stripped[len(DIN_DATA_IDENTIFIER) :]
    if body and body[0] != " " and not (body[0].isascii() and body[0].isalnum()):
        raise _wrong_data_identifier(stripped, expected="DIN")
    content, positions = _normalise(body, offset=1)
    expected_length = DIN_LENGTH + DIN_FLAGS_LENGTH
    if len(content) != expected_length:
        raise IdentifierLengthError(
            "A scanned DIN is '=' followed by {expected} characters ({din_length} for the DIN, 2 flags); "
            "this one has {length} after '='.",
            expected=expected_length,
            din_length=DIN_LENGTH,
            length=len(content),
        )
    _check_characters(content[:DIN_LENGTH], positions, check_character_last=False)
    _check_din_components(content, positions)
    flags = content[DIN_LENGTH:]
    _check_din_flags(flags, content[:DIN_LENGTH], positions[DIN_LENGTH:])
    return DonationIdentificationNumber(content[0:5], content[5:7], content[7:13], flags=flags)


def _coi_from_content(content: str, positions: Sequence[int]) -> ChainOfIdentityIdentifier:
    if content[:2] != COI_LITERAL:
        raise CoiLiteralError(
            "A CoI starts with 'CH'; this one starts with '{start}'.",
            position=positions[0],
            start=content[:2],
        )
    _check_facility_number(content[2:7], positions[2:7])
    _check_year(content[7:9], positions[7:9])
    _check_coi_sequence(content[9:15], positions[9:15])
    return ChainOfIdentityIdentifier(content[2:7], content[7:9], content[9:15])


def _check_din_components(content: str, positions: Sequence[int]) -> None:
    _check_facility_number(content[0:5], positions[0:5])
    _check_year(content[5:7], positions[5:7])
    _check_din_sequence(content[7:13], positions[7:13])


def _normalise(text: str, *, offset: int = 0) -> tuple[str, list[int]]:
    """Drop spaces (the eye-readable grouping), keeping each character's position as given."""
    kept = [(index, char) for index, char in enumerate(text, start=offset + 1) if char != " "]
    return "".join(char for _, char in kept), [index for index, _ in kept]


def _positions_from(first: int, count: int) -> list[int]:
    return list(range(first, first + count))


def _check_typed_length(content: str, length: int, name: str) -> None:
    if len(content) == length:
        raise CheckCharacterMissingError(
            "The check character of this {name} is missing: type the boxed character printed "
            "after the code on the label. Without it a typing error cannot be detected.",
            name=name,
        )
    if len(content) != length + 1:
        raise IdentifierLengthError(
            "A {name} is typed as {length} characters followed by its check character "
            "({typed} without spaces); this one has {found}.",
            name=name,
            length=length,
            typed=length + 1,
            found=len(content),
        )


def _check_characters(content: str, positions: Sequence[int], *, check_character_last: bool) -> None:
    for index, char in enumerate(content):
        is_check_character = check_character_last and index == len(content) - 1
        allowed = MOD37_2_ALPHABET if is_check_character else DATA_CHARACTERS
        if char in allowed:
            continue
        position = positions[index]
        if char.isascii() and char.islower():
            reason = N_("codes are upper case")
        elif char == "*":
            reason = N_("'*' can only be the check character")
        else:
            reason = N_("only 0-9 and A-Z are allowed")
        raise IdentifierCharacterError(
            "Character '{character}' at position {position} is not allowed: {reason}.",
            position=position,
            character=char,
            reason=label(reason),
        )


def _check_facility_number(facility_number: str, positions: Sequence[int]) -> None:
    """FIN `αpppp`: α in A–N, P–Z, 1–9; p1–p2 letters (not O) or digits; p3–p4 digits."""
    if len(facility_number) != 5:
        raise FacilityNumberError(
            "A facility identification number (FIN) has 5 characters; '{fin}' has {length}.",
            fin=facility_number,
            length=len(facility_number),
        )
    rules = (
        (_FIN_FIRST_CHARACTERS, N_("A-N, P-Z or 1-9 (never O or 0)")),
        (_FIN_SECOND_THIRD_CHARACTERS, N_("A-N, P-Z or 0-9 (never O)")),
        (_FIN_SECOND_THIRD_CHARACTERS, N_("A-N, P-Z or 0-9 (never O)")),
        (_DIGITS, N_("a digit")),
        (_DIGITS, N_("a digit")),
    )
    for index, (char, (allowed, wording)) in enumerate(zip(facility_number, rules, strict=True)):
        if char not in allowed:
            raise FacilityNumberError(
                "Facility number '{fin}': character {index} must be {wording}, "
                "not '{character}' (position {position}).",
                position=positions[index],
                fin=facility_number,
                index=index + 1,
                wording=label(wording),
                character=char,
            )


def _check_year(year_yy: str, positions: Sequence[int]) -> None:
    if len(year_yy) != 2 or not set(year_yy) <= _DIGITS:
        raise IdentifierYearError(
            "The year is two digits; got '{year}' at position {position}.",
            position=positions[0],
            year=year_yy,
        )


def _check_din_sequence(sequence: str, positions: Sequence[int]) -> None:
    if len(sequence) != 6:
        raise IdentifierSequenceError("A DIN sequence number has 6 digits; got '{sequence}'.", sequence=sequence)
    for index, char in enumerate(sequence):
        if char not in _DIGITS:
            raise IdentifierSequenceError(
                "A DIN sequence number is 6 digits; '{character}' at position {position} is not a digit.",
                position=positions[index],
                character=char,
            )


def _check_coi_sequence(sequence: str, positions: Sequence[int]) -> None:
    if len(sequence) != 6:
        raise IdentifierSequenceError("A CoI sequence has 6 characters; got '{sequence}'.", sequence=sequence)
    for index, char in enumerate(sequence):
        if char not in DATA_CHARACTERS:
            raise IdentifierSequenceError(
                "A CoI sequence is 6 characters A-Z or 0-9; '{character}' at position {position} is not allowed.",
                position=positions[index],
                character=char,
            )


def _check_din_flags(flags: str, din_content: str, positions: Sequence[int]) -> None:
    """Flags `ff`: 97–99 reserved; 60–96 is a type-3 flag and must equal 60 + checksum."""
    if len(flags) != DIN_FLAGS_LENGTH:
        raise DinFlagError("DIN flags are 2 characters; got '{flags}'.", flags=flags)
    for index, char in enumerate(flags):
        if char not in _DIN_FLAG_CHARACTERS:
            raise DinFlagError(
                "DIN flag character '{character}' at position {position} is not allowed (0-9, A-H, J-N, P, R-Y).",
                position=positions[index],
                character=char,
            )
    if not set(flags) <= _DIGITS:
        return
    value = int(flags)
    if value in _RESERVED_FLAG_VALUES:
        raise DinFlagError(
            "DIN flags '{flags}' are reserved by ISBT 128 and never printed on a label.",
            position=positions[0],
            code="din_flag_reserved",
            flags=flags,
        )
    if _TYPE_3_FLAG_OFFSET <= value <= _TYPE_3_FLAG_OFFSET + 36 and (
        value != _TYPE_3_FLAG_OFFSET + mod37_2_checksum(din_content)
    ):
        raise DinFlagError(
            "The barcode's check flags do not match the DIN: the label is damaged or misprinted, "
            "or the scan is corrupt. Scan again, or type the DIN with its check character.",
            position=positions[0],
            code="din_flag_checksum_mismatch",
        )


def _check_check_character(expected: str, content: str, positions: Sequence[int]) -> None:
    if content[-1] != expected:
        raise CheckCharacterMismatchError(
            "The check character does not match the code: a character was mistyped or misread. "
            "Re-enter the code from the label.",
            position=positions[-1],
        )


_OTHER_DATA_IDENTIFIERS: Final = {
    "=<": N_("the ISBT 128 product code (Data Structure 003)"),
    "=,": N_("the ISBT 128 product divisions (Data Structure 032)"),
    "=(": N_("the ISBT 128 flexible date and time (Data Structure 031)"),
    "=/": N_("the ISBT 128 processing facility FIN(P) (Data Structure 034)"),
    "&+": N_("the ISBT 128 processing facility FIN(P) (Data Structure 033)"),
    "&>": N_("the ISBT 128 expiry date and time (Data Structure 005)"),
    "&*": N_("the ISBT 128 collection date and time (Data Structure 007)"),
    "&#": N_("the ISBT 128 patient identification (Data Structure 025)"),
}


def _wrong_data_identifier(stripped: str, *, expected: str) -> DataIdentifierError:
    prefix = stripped[:2]
    if prefix == COI_DATA_IDENTIFIER:
        meaning = N_("a chain-of-identity identifier (CoI)")
    else:
        meaning = _OTHER_DATA_IDENTIFIERS.get(prefix, N_("not a data identifier we read"))
    return DataIdentifierError(
        "This barcode is not a {expected}: its data identifier '{prefix}' is {meaning}. Scan the {expected} barcode.",
        position=1,
        expected=expected,
        prefix=prefix,
        meaning=label(meaning),
    )


def _check_generation(facility_number: str, year: int, sequence_number: int) -> None:
    _check_facility_number(facility_number, _positions_from(1, 5))
    if not is_validation_facility_number(facility_number):
        raise FacilityNotRegisteredError(
            "FIN {fin} is not an ICCBBA validation FIN: cartrial generates identifiers only for "
            "A9990-A9999. Production FINs need ICCBBA registration, and issuing CoIs needs "
            "registration as a CoI issuing organisation (ST-028).",
            fin=facility_number,
        )
    if year not in GENERATION_YEARS:
        raise IdentifierYearError(
            "The year must be between {first} and {last} (the label keeps two digits); got {year}.",
            first=GENERATION_YEARS.start,
            last=GENERATION_YEARS.stop - 1,
            year=year,
        )
    if sequence_number not in SEQUENCE_NUMBERS:
        raise IdentifierSequenceError(
            "The sequence number must be between 0 and {last}; got {sequence}.",
            last=SEQUENCE_NUMBERS.stop - 1,
            sequence=sequence_number,
        )
