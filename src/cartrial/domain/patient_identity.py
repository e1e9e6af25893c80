"""Who the patient is, as typed at registration: the checks that apply before anything is stored.

Names and the hospital number (IPP) are printed on wristbands and matched by people: they may not
hold control or invisible formatting characters, and a hospital number is compared without the
spaces, dots or dashes that different systems print in it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, label

# A person's age beyond which a birth date is a typing error, not a patient (oldest recorded: 122).
MAX_AGE_YEARS = 120
NAME_MAX_LENGTH = 100
HOSPITAL_NUMBER_MAX_LENGTH = 30
FIELD_LABELS = {
    "family_name": N_("family name"),
    "given_names": N_("given names"),
    "hospital_number": N_("hospital number (IPP)"),
}


@dataclass(frozen=True)
class PatientIdentity:
    """The identity fields as stored (encrypted) once checked."""

    family_name: str
    given_names: str
    birth_date: date
    hospital_number: str

    def as_stored(self) -> dict[str, str]:
        return {
            "family_name": self.family_name,
            "given_names": self.given_names,
            "birth_date": self.birth_date.isoformat(),
            "hospital_number": self.hospital_number,
        }


def _clean_text(item: str, value: str, max_length: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise InvalidInput(
            "The {field} is required.", code="identity_incomplete", item=item, field=label(FIELD_LABELS[item])
        )
    for character in value:
        if unicodedata.category(character) in ("Cc", "Cf", "Co", "Cs") and character not in " ":
            raise InvalidInput(
                "The {field} holds an invisible or control character (U+{codepoint}): retype it.",
                code="identity_control_character",
                item=item,
                field=label(FIELD_LABELS[item]),
                codepoint=f"{ord(character):04X}",
            )
    if len(text) > max_length:
        raise InvalidInput(
            "The {field} is longer than {max_length} characters.",
            code="identity_too_long",
            item=item,
            field=label(FIELD_LABELS[item]),
            max_length=max_length,
        )
    return text


def patient_identity_check(
    *, family_name: str, given_names: str, birth_date: date, hospital_number: str, today: date
) -> PatientIdentity:
    """The identity as stored, or InvalidInput naming the field (control characters, empty, impossible birth date)."""
    family = _clean_text("family_name", family_name, NAME_MAX_LENGTH)
    given = _clean_text("given_names", given_names, NAME_MAX_LENGTH)
    number = _clean_text("hospital_number", hospital_number, HOSPITAL_NUMBER_MAX_LENGTH)
    if birth_date > today:
        raise InvalidInput(
            "The birth date {birth_date} is in the future.",
            code="identity_birth_date",
            item="birth_date",
            birth_date=birth_date,
        )
    if (today.year - birth_date.year) > MAX_AGE_YEARS:
        raise InvalidInput(
            "The birth date {birth_date} would make the patient older than {max_age} years.",
            code="identity_birth_date",
            item="birth_date",
            birth_date=birth_date,
            max_age=MAX_AGE_YEARS,
        )
    return PatientIdentity(family, given, birth_date, number)


def hospital_number_key(hospital_number: str) -> str:
    """The hospital number as compared for duplicates: letters and digits only, upper case."""
    return "".join(c for c in unicodedata.normalize("NFKC", hospital_number).upper() if c.isalnum())
