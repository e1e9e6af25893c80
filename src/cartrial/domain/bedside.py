"""The two-person bedside identity check before infusion (logistics.md §6 rule 6).

Two different qualified people each scan the product bag and the patient's wristband. The bag
must carry the patient's chain-of-identity code (CoI) or the donation number (DIN) of the
collection it was made from; the wristband the subject's code or its CoI. Any mismatch is a
hard stop: the infusion is refused and a deviation recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cartrial.domain.deviations import BEDSIDE_BAG_MISMATCH, BEDSIDE_WRISTBAND_MISMATCH
from cartrial.domain.errors import Refused
from cartrial.domain.identity import IdentifierError, parse_identifier
from cartrial.domain.roles import BEDSIDE_CHECKERS, Role
from cartrial.domain.text import Message


@dataclass(frozen=True)
class BedsideScan:
    """What one checker scanned: who (username), their role at the center, the bag, the wristband."""

    who: str
    role: Role | None
    bag_code: str
    wristband_code: str


class IdentityMismatch(Refused):
    """A bedside check that does not pass: the infusion stops (and a deviation is recorded)."""

    code = "identity_mismatch"


def _content(code: str) -> str | None:
    try:
        return parse_identifier(code).content
    except IdentifierError:
        return None


def bedside_mismatches(
    scans: Sequence[BedsideScan], *, subject_code: str, coi: str | None, din: str | None
) -> list[Message]:
    """What does not match, one message per wrong scan; empty when both scanned the right bag and patient."""
    problems: list[Message] = []
    for scan in scans:
        bag = _content(scan.bag_code)
        if bag is None or bag not in {coi, din}:
            problems.append(
                Message(BEDSIDE_BAG_MISMATCH, {"who": scan.who, "scanned": scan.bag_code.strip(), "expected": coi})
            )
        wristband = scan.wristband_code.strip().upper()
        if wristband != subject_code and _content(scan.wristband_code) != coi:
            problems.append(
                Message(
                    BEDSIDE_WRISTBAND_MISMATCH,
                    {"who": scan.who, "scanned": scan.wristband_code.strip(), "expected": subject_code},
                )
            )
    return problems


def bedside_checkers_check(scans: Sequence[BedsideScan], center_code: str) -> None:
    """Two different people, each qualified at the center (investigator or pharmacist)."""
    if len(scans) != 2 or scans[0].who == scans[1].who:
        raise IdentityMismatch(
            "The two bedside checks must be done by two different people.", code="same_checker", item="second_username"
        )
    for scan in scans:
        if scan.role not in BEDSIDE_CHECKERS:
            raise IdentityMismatch(
                "{who} is not qualified for the bedside check at {center}.",
                code="checker_not_qualified",
                item="second_username",
                who=scan.who,
                center=center_code,
            )
