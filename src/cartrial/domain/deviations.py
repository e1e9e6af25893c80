"""Deviations: what must not happen and did, or was stopped, and who must deal with it.

A deviation is opened by the system (a wrong scan, a bedside mismatch, a transit time or a
temperature beyond the product's limits) and then managed by people: acknowledged, commented,
closed with a reason. What it says is a code and parameters, rendered in the reader's language
from `DEVIATION_MESSAGES`; who manages it depends on where it happened (`deviation_owners`).

Pure: the logistics app stores deviations and asks this module what they say and who owns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.roles import Role
from cartrial.domain.text import N_, Message


class DeviationKind(StrEnum):
    SCAN_MISMATCH = "scan_mismatch"
    BEDSIDE_MISMATCH = "bedside_mismatch"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    TRANSIT_TIME = "transit_time"


class DeviationStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


KIND_LABELS: dict[DeviationKind, str] = {
    DeviationKind.SCAN_MISMATCH: N_("Scanned code does not match"),
    DeviationKind.BEDSIDE_MISMATCH: N_("Bedside identity mismatch"),
    DeviationKind.TEMPERATURE_EXCURSION: N_("Temperature excursion"),
    DeviationKind.TRANSIT_TIME: N_("Transit time beyond the product's limit"),
}

STATUS_LABELS: dict[DeviationStatus, str] = {
    DeviationStatus.OPEN: N_("Open"),
    DeviationStatus.ACKNOWLEDGED: N_("Acknowledged"),
    DeviationStatus.CLOSED: N_("Closed"),
}

# What each deviation code says; parameters are stored with the deviation.
DEVIATION_MESSAGES: dict[str, str] = {
    "scan_unreadable": N_(
        "At {step}, the code scanned ({scanned}) is unreadable or its check character is wrong; "
        "expected {expected}. The hand-over was stopped."
    ),
    "scan_wrong_kind": N_(
        "At {step}, a DIN was scanned where the CoI was expected, or the reverse ({scanned}); "
        "expected {expected}. The hand-over was stopped."
    ),
    "scan_other_identifier": N_(
        "At {step}, the code scanned ({scanned}) belongs to another product; expected {expected}. "
        "The hand-over was stopped."
    ),
    "identity_mismatch": N_("Bedside identity mismatch, infusion stopped: {problems}."),
    "transit_time_exceeded": N_(
        "Material received {hours} h after the end of collection, beyond the {limit} h limit of {product}."
    ),
    "above_max": N_(
        "{product}: above the {limit} °C limit by up to {worst_deviation} °C for {duration} min "
        "from {start} UTC (file line {line}){still_open}."
    ),
    "below_min": N_(
        "{product}: below the {limit} °C limit by up to {worst_deviation} °C for {duration} min "
        "from {start} UTC (file line {line}){still_open}."
    ),
}

STILL_OPEN_AT_END = N_(", still out of range at the end of the log")

# One person's bedside scan that did not match, as a part of the `identity_mismatch` message.
BEDSIDE_BAG_MISMATCH = N_("{who} scanned bag '{scanned}' (expected CoI {expected})")
BEDSIDE_WRISTBAND_MISMATCH = N_("{who} scanned wristband '{scanned}' (expected {expected})")


def deviation_message(code: str, params: Mapping[str, object]) -> Message:
    """What a stored deviation says, to render in the reader's language."""
    msgid = DEVIATION_MESSAGES.get(code)
    if msgid is None:
        return Message(N_("Deviation {code}."), {"code": code})
    return Message(msgid, dict(params))


# Who manages a deviation, by the step where it happened: the people who were there, and the
# investigators and coordinators of the center (the lab for what happened at the lab).
_STEP_OWNERS: dict[str, frozenset[Role]] = {
    "collect_apheresis": frozenset({Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR}),
    "ship_material": frozenset({Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR}),
    "receive_material": frozenset({Role.MANUFACTURING}),
    "release_product": frozenset({Role.MANUFACTURING}),
    "ship_product": frozenset({Role.MANUFACTURING}),
    "receive_product": frozenset({Role.PHARMACIST, Role.INVESTIGATOR, Role.COORDINATOR}),
    "thaw": frozenset({Role.PHARMACIST, Role.INVESTIGATOR, Role.COORDINATOR}),
    "infuse": frozenset({Role.PHARMACIST, Role.INVESTIGATOR, Role.COORDINATOR}),
}
# Monitors follow every deviation of their centers and may acknowledge, comment and close them.
OVERSEERS: frozenset[Role] = frozenset({Role.MONITOR})


def deviation_owners(kind: DeviationKind, step: str, shipment_to_lab: bool | None = None) -> frozenset[Role]:
    """The roles that manage a deviation of `kind` that happened at `step`.

    A temperature excursion belongs to whoever ships: the apheresis unit for material sent to the
    lab, the lab for the product sent back (`shipment_to_lab`).
    """
    if kind is DeviationKind.TEMPERATURE_EXCURSION or kind is DeviationKind.TRANSIT_TIME:
        if shipment_to_lab:
            owners = frozenset({Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR, Role.MANUFACTURING})
        else:
            owners = frozenset({Role.MANUFACTURING, Role.PHARMACIST, Role.INVESTIGATOR, Role.COORDINATOR})
    else:
        owners = _STEP_OWNERS.get(step, frozenset({Role.INVESTIGATOR, Role.COORDINATOR}))
    return owners | OVERSEERS


# The moves of a deviation's life; closing needs a reason, a comment needs text.
_MOVES: dict[str, tuple[frozenset[DeviationStatus], DeviationStatus | None]] = {
    "acknowledge": (frozenset({DeviationStatus.OPEN}), DeviationStatus.ACKNOWLEDGED),
    "comment": (frozenset({DeviationStatus.OPEN, DeviationStatus.ACKNOWLEDGED}), None),
    "close": (frozenset({DeviationStatus.OPEN, DeviationStatus.ACKNOWLEDGED}), DeviationStatus.CLOSED),
    "reopen": (frozenset({DeviationStatus.CLOSED}), DeviationStatus.ACKNOWLEDGED),
}
DEVIATION_MOVES = tuple(_MOVES)
MOVE_LABELS: dict[str, str] = {
    "acknowledge": N_("Acknowledge"),
    "comment": N_("Comment"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
}


def deviation_move(status: DeviationStatus, move: str, text: str) -> DeviationStatus:
    """The status after `move`, or a refusal saying why (wrong status, missing reason or comment)."""
    if move not in _MOVES:
        raise InvalidInput("'{move}' is not something done to a deviation.", code="unknown_move", move=move)
    allowed, target = _MOVES[move]
    if status not in allowed:
        raise Refused(
            "This deviation is {status}: “{move}” is not possible now.",
            code="deviation_wrong_status",
            status=Message(STATUS_LABELS[status]),
            move=Message(MOVE_LABELS[move]),
        )
    if move in ("comment", "close", "reopen") and not text.strip():
        raise InvalidInput(
            "Write the {what}.",
            code="reason_required",
            item="text",
            what=Message(N_("comment") if move == "comment" else N_("reason")),
        )
    return target or status
