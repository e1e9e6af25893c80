"""ISBT 128 identifiers: published MOD 37-2 vectors (logistics.md §2.3) and error-detection properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.identity import (
    COI_CHECK_CHARACTER_COVERS_CH_LITERAL,
    MOD37_2_ALPHABET,
    ChainOfIdentityIdentifier,
    CheckCharacterMismatchError,
    CheckCharacterMissingError,
    CoiLiteralError,
    DataIdentifierError,
    DinFlagError,
    DonationIdentificationNumber,
    FacilityNotRegisteredError,
    FacilityNumberError,
    IdentifierCharacterError,
    IdentifierError,
    IdentifierLengthError,
    IdentifierSequenceError,
    IdentifierYearError,
    coi_check_character_input,
    mod37_2_check_character,
    mod37_2_checksum,
    new_coi,
    new_din,
    parse_coi,
    parse_din,
    parse_identifier,
)

# (13-character DIN, checksum, K, type-3 flag): logistics.md §2.3, UK Red Book Annex 2, ST-001
# §7.5.1.1, Figure 2, Appendix A.1/A.2 and the CheckDigits.Net ISBT vectors.
PUBLISHED_DIN_VECTORS = [
    ("G123498654321", 17, "H", "77"),
    ("A999818123456", 23, "N", "83"),
    ("A999921123456", 3, "3", "63"),
    ("G123417654321", 10, "A", "70"),
    ("A999914123456", 23, "N", "83"),
    ("C000307001466", 6, "6", "66"),
    ("A999922123459", 17, "H", "77"),
    ("A999922654321", 28, "S", "88"),
    ("A999922123458", 19, "J", "79"),
    ("A999922012346", 36, "*", "96"),
    ("A999522123456", 36, "*", "96"),
]

# ISO-level vectors from the CheckDigits.Net MOD 37-2 tests, and the ST-017 Basic UDI-DI example
# (16 characters, letters inside; ST-017 prints the checksum 8 as "08").
ISO_VECTORS = [
    ("0", "1"),
    ("1", "*"),
    ("Z", "5"),
    ("ABCDEFGHIJKLMNOPQRSTUVWX", "*"),
    ("A9990ABC123T0480", "8"),
]

# CoI vectors are derived [D] in logistics.md §2.1/§2.3 under the working rule (K over "CH" too);
# the second K is the alternative reading, kept to prove the constant decides.
DERIVED_COI_VECTORS = [
    ("CHA999923ABC123", "U", "2"),
    ("CHA999926ABC001", "*", "8"),
    ("CHA999926OI0O1Z", "S", "0"),
]


@pytest.mark.parametrize(("din", "checksum", "check_character", "flag"), PUBLISHED_DIN_VECTORS)
def test_published_din_vectors(din: str, checksum: int, check_character: str, flag: str) -> None:
    assert mod37_2_checksum(din) == checksum
    assert mod37_2_check_character(din) == check_character
    parsed = parse_din(din + check_character)
    assert parsed.content == din
    assert parsed.type_3_flag == flag
    assert parse_din(f"={din}{flag}").content == din


@pytest.mark.parametrize(("data", "check_character"), ISO_VECTORS)
def test_iso_vectors(data: str, check_character: str) -> None:
    assert mod37_2_check_character(data) == check_character


@pytest.mark.parametrize(("content", "with_ch", "without_ch"), DERIVED_COI_VECTORS)
def test_derived_coi_vectors_follow_the_working_rule(content: str, with_ch: str, without_ch: str) -> None:
    assert COI_CHECK_CHARACTER_COVERS_CH_LITERAL
    assert coi_check_character_input(content) == content
    assert mod37_2_check_character(content) == with_ch
    assert mod37_2_check_character(content[2:]) == without_ch
    assert parse_coi(content + with_ch).check_character == with_ch
    with pytest.raises(CheckCharacterMismatchError):
        parse_coi(content + without_ch)


def test_the_two_coi_readings_differ_by_nine() -> None:
    # logistics.md §2.1: c(with "CH") = (c(without "CH") - 9) mod 37 for any 15-character content.
    for content, _, _ in DERIVED_COI_VECTORS:
        assert mod37_2_checksum(content) == (mod37_2_checksum(content[2:]) - 9) % 37


def test_st001_printed_din_reads_in_all_forms() -> None:
    expected = DonationIdentificationNumber("A9998", "18", "123456")
    for text in ("A9998 18 123456 N", "A999818123456N", "=A99981812345683", "  A9998 18 123456 N\r\n"):
        assert parse_din(text).content == expected.content
    assert str(expected.eye_readable()) == "A9998 18 123456 [N]"
    assert expected.eye_readable().check_character == "N"
    assert expected.barcode_data() == "=A99981812345683"


def test_coi_forms() -> None:
    coi = ChainOfIdentityIdentifier("A9999", "23", "ABC123")
    assert coi.content == "CHA999923ABC123"
    assert coi.typed_form == "CHA999923ABC123U"
    assert coi.barcode_data() == "&/CHA999923ABC123"
    assert coi.eye_readable().text == "CH A9999 23 ABC123"
    assert coi.eye_readable().check_character == "U"
    for text in (coi.typed_form, "CH A9999 23 ABC123 U", coi.barcode_data()):
        assert parse_coi(text) == coi
        assert parse_identifier(text) == coi


def test_coi_sequence_accepts_o_i_and_zero() -> None:
    coi = parse_coi("CHA999926OI0O1ZS")
    assert coi.sequence == "OI0O1Z"


def test_barcode_flags_are_kept_but_not_part_of_identity() -> None:
    scanned = parse_din("=A99981812345601")
    typed = parse_din("A999818123456N")
    assert scanned.flags == "01"
    assert scanned.content == typed.content
    assert scanned != typed


def test_parse_identifier_dispatches() -> None:
    assert isinstance(parse_identifier("A999921123456 3"), DonationIdentificationNumber)
    assert isinstance(parse_identifier("=A99992112345663"), DonationIdentificationNumber)
    assert isinstance(parse_identifier("&/CHA999923ABC123"), ChainOfIdentityIdentifier)


@pytest.mark.parametrize(
    ("text", "error", "code", "position"),
    [
        ("A999818123456", CheckCharacterMissingError, "check_character_missing", None),
        ("CHA999923ABC123", CheckCharacterMissingError, "check_character_missing", None),
        ("A9998 18 123456 M", CheckCharacterMismatchError, "check_character_mismatch", 17),
        ("A9998181234N", IdentifierLengthError, "identifier_length", None),
        ("a9998 18 123456 N", IdentifierCharacterError, "identifier_character", 1),
        ("A9998\t18 123456 N", IdentifierCharacterError, "identifier_character", 6),
        ("CHA999923ABC12*U", IdentifierCharacterError, "identifier_character", 15),
        ("O9998 18 123456 N", FacilityNumberError, "identifier_facility_number", 1),
        ("09998 18 123456 N", FacilityNumberError, "identifier_facility_number", 1),
        ("AO998 18 123456 N", FacilityNumberError, "identifier_facility_number", 2),
        ("A99A8 18 123456 N", FacilityNumberError, "identifier_facility_number", 4),
        ("A9998 1A 123456 N", IdentifierYearError, "identifier_year", 7),
        ("A9998 18 12345A N", IdentifierSequenceError, "identifier_sequence", 15),
        ("=<S12954A0", DataIdentifierError, "identifier_data_identifier", 1),
        ("&>026032359", DataIdentifierError, "identifier_data_identifier", 1),
        ("=A999818123456", IdentifierLengthError, "identifier_length", None),
        ("=A99981812345684", DinFlagError, "din_flag_checksum_mismatch", 15),
        ("=A99981812345697", DinFlagError, "din_flag_reserved", 15),
        ("=A999818123456I0", DinFlagError, "din_flag", 15),
        ("&/A999923ABC12345", CoiLiteralError, "coi_literal", 3),
        ("&/CHA999923ABC12", IdentifierLengthError, "identifier_length", None),
        ("&/CHA999923ABC12-", IdentifierCharacterError, "identifier_character", 17),
        ("XYZ", IdentifierLengthError, "identifier_length", None),
    ],
)
def test_refusals_are_precise(text: str, error: type[IdentifierError], code: str, position: int | None) -> None:
    with pytest.raises(error) as raised:
        parse_identifier(text)
    assert raised.value.code == code
    assert raised.value.position == position
    assert isinstance(raised.value, InvalidInput)
    assert str(raised.value)


def test_coi_parser_names_a_missing_literal_before_the_length() -> None:
    with pytest.raises(CoiLiteralError):
        parse_coi("A999923ABC123U")
    with pytest.raises(CoiLiteralError):
        parse_coi("")


def test_din_parser_refuses_a_coi_barcode_and_back() -> None:
    with pytest.raises(DataIdentifierError, match="chain-of-identity"):
        parse_din("&/CHA999923ABC123")
    with pytest.raises(DataIdentifierError):
        parse_coi("=A99981812345683")


def test_generation_uses_validation_fins_only() -> None:
    coi = new_coi(facility_number="A9999", year=2026, sequence_number=1)
    assert coi.content == "CHA999926000001"
    assert coi.typed_form == "CHA999926000001" + mod37_2_check_character("CHA999926000001")
    din = new_din(facility_number="A9990", year=2026, sequence_number=42)
    assert din.content == "A999026000042"
    for production_fin in ("B1234", "A9989", "W0000"):
        with pytest.raises(FacilityNotRegisteredError, match="ICCBBA registration"):
            new_coi(facility_number=production_fin, year=2026, sequence_number=1)
        with pytest.raises(FacilityNotRegisteredError):
            new_din(facility_number=production_fin, year=2026, sequence_number=1)


@pytest.mark.parametrize(
    ("fin", "year", "sequence_number", "error"),
    [
        ("A999", 2026, 1, FacilityNumberError),
        ("A9999", 1999, 1, IdentifierYearError),
        ("A9999", 2100, 1, IdentifierYearError),
        ("A9999", 2026, -1, IdentifierSequenceError),
        ("A9999", 2026, 1_000_000, IdentifierSequenceError),
    ],
)
def test_generation_bounds(fin: str, year: int, sequence_number: int, error: type[IdentifierError]) -> None:
    with pytest.raises(error):
        new_coi(facility_number=fin, year=year, sequence_number=sequence_number)
    with pytest.raises(error):
        new_din(facility_number=fin, year=year, sequence_number=sequence_number)


def test_generation_bounds_inclusive() -> None:
    assert new_din(facility_number="A9999", year=2099, sequence_number=999_999).content == ("A999999999999")
    assert new_coi(facility_number="A9999", year=2000, sequence_number=0).sequence == "000000"


def test_dataclasses_refuse_invalid_parts() -> None:
    with pytest.raises(IdentifierSequenceError):
        DonationIdentificationNumber("A9999", "26", "ABC123")
    with pytest.raises(FacilityNumberError):
        ChainOfIdentityIdentifier("O9999", "26", "ABC123")
    with pytest.raises(DinFlagError):
        DonationIdentificationNumber("A9999", "26", "000001", flags="99")


# ---- error-detection properties ---------------------------------------------------------------

data_strings = st.text(alphabet=MOD37_2_ALPHABET[:36], min_size=1, max_size=30)


def _accepted(protected: str) -> bool:
    """What a validator does with data + K: accept only if K matches and the data is clean."""
    try:
        return mod37_2_check_character(protected[:-1]) == protected[-1]
    except IdentifierCharacterError:
        return False


@given(data=data_strings, index=st.data())
def test_mod37_2_detects_any_single_substitution(data: str, index: st.DataObject) -> None:
    protected = data + mod37_2_check_character(data)
    assert _accepted(protected)
    position = index.draw(st.integers(0, len(protected) - 1))
    replacement = index.draw(st.sampled_from(MOD37_2_ALPHABET).filter(lambda c: c != protected[position]))
    assert not _accepted(protected[:position] + replacement + protected[position + 1 :])


@given(data=st.text(alphabet=MOD37_2_ALPHABET[:36], min_size=2, max_size=30), index=st.data())
def test_mod37_2_detects_any_adjacent_transposition(data: str, index: st.DataObject) -> None:
    protected = data + mod37_2_check_character(data)
    position = index.draw(st.integers(0, len(protected) - 2))
    first, second = protected[position], protected[position + 1]
    assume(first != second)
    assert not _accepted(protected[:position] + second + first + protected[position + 2 :])


coi_parts = st.tuples(
    st.sampled_from(sorted(f"A999{d}" for d in range(10))),
    st.integers(2000, 2099),
    st.text(alphabet=MOD37_2_ALPHABET[:36], min_size=6, max_size=6),
)


@given(parts=coi_parts)
def test_every_coi_round_trips_through_its_three_forms(parts: tuple[str, int, str]) -> None:
    fin, year, sequence = parts
    coi = ChainOfIdentityIdentifier(fin, f"{year % 100:02d}", sequence)
    printed = coi.eye_readable()
    assert parse_coi(f"{printed.text} {printed.check_character}") == coi
    assert parse_coi(coi.typed_form) == coi
    assert parse_coi(coi.barcode_data()) == coi


@given(
    fin=st.sampled_from(sorted(f"A999{d}" for d in range(10))),
    year=st.integers(2000, 2099),
    sequence_number=st.integers(0, 999_999),
    index=st.data(),
)
def test_a_single_typo_in_a_typed_din_is_refused(
    fin: str, year: int, sequence_number: int, index: st.DataObject
) -> None:
    typed = new_din(facility_number=fin, year=year, sequence_number=sequence_number).typed_form
    position = index.draw(st.integers(0, len(typed) - 1))
    replacement = index.draw(st.sampled_from("0123456789").filter(lambda c: c != typed[position]))
    with pytest.raises(IdentifierError):
        parse_din(typed[:position] + replacement + typed[position + 1 :])
