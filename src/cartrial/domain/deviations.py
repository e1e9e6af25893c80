"""Deviations: what must not happen and did, or was stopped, and who must deal with it.

A deviation is opened by the system (a wrong scan, a bedside mismatch, a transit time or a
temperature beyond the product's limits) and then managed by people: acknowledged, commented,
closed with a reason. What it says is a code and parameters, rendered in the reader's language
from `DEVIATION_MESSAGES`; who manages it depends on where it happened (`deviation_owners`).

Pure: the logistics app stores deviations and asks this module what they say and who owns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.errors import AccessDenied, InvalidInput, Refused
from cartrial.domain.roles import ROLE_LABELS, Role
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

# Column headings where space is short (the dashboard's counts); the full label goes in the title.
KIND_SHORT_LABELS: dict[DeviationKind, str] = {
    DeviationKind.SCAN_MISMATCH: N_("Scan"),
    DeviationKind.BEDSIDE_MISMATCH: N_("Bedside"),
    DeviationKind.TEMPERATURE_EXCURSION: N_("Temperature"),
    DeviationKind.TRANSIT_TIME: N_("Transit time"),
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


# Who manages a deviation. Two circles (docs/logistics.md, "Deviations"):
# - the people of the place where it happened take it in charge (acknowledge) and comment;
# - among them, those accountable for its consequence close it (and may reopen it): the unit's own
#   head role and the investigator for the patient; the lab for what happened at the lab; a bedside
#   identity mismatch, a never-event for the patient, only by the investigator.
# The coordinator documents (acknowledges, comments) but does not close. The monitor oversees every
# deviation of its centers: comments, and reopens a closure it finds unsupported, but neither takes a
# deviation in charge (that would hide it from the site's "open" list) nor closes one.
_APHERESIS_UNIT = frozenset({Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR})
_LAB = frozenset({Role.MANUFACTURING})
_PHARMACY = frozenset({Role.PHARMACIST, Role.INVESTIGATOR, Role.COORDINATOR})
_CLINICAL = frozenset({Role.INVESTIGATOR, Role.COORDINATOR})
_STEP_PLACES: dict[str, tuple[frozenset[Role], frozenset[Role]]] = {
    "collect_apheresis": (_APHERESIS_UNIT, frozenset({Role.APHERESIS, Role.INVESTIGATOR})),
    "ship_material": (_APHERESIS_UNIT, frozenset({Role.APHERESIS, Role.INVESTIGATOR})),
    "receive_material": (_LAB, _LAB),
    "release_product": (_LAB, _LAB),
    "ship_product": (_LAB, _LAB),
    "receive_product": (_PHARMACY, frozenset({Role.PHARMACIST, Role.INVESTIGATOR})),
    "thaw": (_PHARMACY, frozenset({Role.PHARMACIST, Role.INVESTIGATOR})),
    "infuse": (_PHARMACY, frozenset({Role.INVESTIGATOR})),
}
_ELSEWHERE = (_CLINICAL, frozenset({Role.INVESTIGATOR}))
_TO_LAB = (_APHERESIS_UNIT | _LAB, frozenset({Role.MANUFACTURING, Role.INVESTIGATOR}))
_TO_CENTER = (_PHARMACY | _LAB, frozenset({Role.MANUFACTURING, Role.PHARMACIST, Role.INVESTIGATOR}))
# Monitors follow every deviation of their centers: they comment and may reopen a closed one.
OVERSEERS: frozenset[Role] = frozenset({Role.MONITOR})


@dataclass(frozen=True)
class DeviationOwners:
    """Who manages one deviation (of `kind`): who takes it in charge and comments, who closes and reopens it."""

    kind: DeviationKind
    handlers: frozenset[Role]
    closers: frozenset[Role]

    def roles_for(self, move: str) -> frozenset[Role]:
        """The roles that may make `move` (an unknown move: nobody)."""
        return {
            "acknowledge": self.handlers,
            "comment": self.handlers | OVERSEERS,
            "close": self.closers,
            "reopen": self.closers | OVERSEERS,
        }.get(move, frozenset())


def deviation_owners(kind: DeviationKind, step: str, shipment_to_lab: bool | None = None) -> DeviationOwners:
    """Who manages a deviation of `kind` that happened at `step`.

    A bedside mismatch is the bedside's whatever step recorded it. A temperature excursion or a
    transit time belongs to both ends of its shipment (`shipment_to_lab`): the apheresis unit and
    the lab for material sent to the lab, the lab and the pharmacy for the product sent back; a
    transit time without its shipment is the way to the lab (it is measured at the lab's receipt).
    """
    if kind is DeviationKind.BEDSIDE_MISMATCH:
        handlers, closers = _STEP_PLACES["infuse"]
    elif kind is DeviationKind.TEMPERATURE_EXCURSION or kind is DeviationKind.TRANSIT_TIME:
        to_lab = shipment_to_lab if shipment_to_lab is not None else step == "receive_material"
        handlers, closers = _TO_LAB if to_lab else _TO_CENTER
    else:
        handlers, closers = _STEP_PLACES.get(step, _ELSEWHERE)
    return DeviationOwners(kind=kind, handlers=handlers, closers=closers)


def deviation_authorise(role: Role | None, owners: DeviationOwners, move: str) -> None:
    """Refuses a move to a role that does not own it, naming the roles that may."""
    _known(move)
    allowed = owners.roles_for(move)
    if role is not None and role in allowed:
        return
    raise AccessDenied(
        "Your role ({role}) may not “{move}” this deviation ({kind}); who may: {roles}.",
        code="deviation_not_owner",
        role=Message(ROLE_LABELS[role]) if role is not None else Message(N_("no role")),
        move=Message(MOVE_LABELS[move]),
        kind=Message(KIND_LABELS[owners.kind]),
        roles=[Message(ROLE_LABELS[r]) for r in sorted(allowed, key=_ROLE_ORDER.index)],
    )


def deviation_moves_open_to(role: Role | None, status: DeviationStatus, owners: DeviationOwners) -> list[str]:
    """The moves `role` may make now on a deviation at `status` (the forms to offer), in order."""
    if role is None:
        return []
    return [move for move in DEVIATION_MOVES if status in _MOVES[move][0] and role in owners.roles_for(move)]


_ROLE_ORDER = list(Role)


# The moves of a deviation's life; closing and reopening need a reason, a comment needs text.
# Reopened, a deviation is open again: someone must take it in charge anew.
_MOVES: dict[str, tuple[frozenset[DeviationStatus], DeviationStatus | None]] = {
    "acknowledge": (frozenset({DeviationStatus.OPEN}), DeviationStatus.ACKNOWLEDGED),
    "comment": (frozenset({DeviationStatus.OPEN, DeviationStatus.ACKNOWLEDGED}), None),
    "close": (frozenset({DeviationStatus.OPEN, DeviationStatus.ACKNOWLEDGED}), DeviationStatus.CLOSED),
    "reopen": (frozenset({DeviationStatus.CLOSED}), DeviationStatus.OPEN),
}
DEVIATION_MOVES = tuple(_MOVES)
MOVE_LABELS: dict[str, str] = {
    "acknowledge": N_("Acknowledge"),
    "comment": N_("Comment"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
}
# A move as its thread entry says it, once made.
MOVE_DONE_LABELS: dict[str, str] = {
    "acknowledge": N_("Acknowledged"),
    "comment": N_("Commented"),
    "close": N_("Closed"),
    "reopen": N_("Reopened"),
}


def _known(move: str) -> None:
    if move not in _MOVES:
        raise InvalidInput("'{move}' is not something done to a deviation.", code="unknown_move", move=move)


def deviation_move(status: DeviationStatus, move: str, text: str) -> DeviationStatus:
    """The status after `move`, or a refusal saying why (wrong status, missing reason or comment)."""
    _known(move)
    allowed, target = _MOVES[move]
    if status not in allowed:
        raise Refused(
            "This deviation is “{status}”: “{move}” is not possible now.",
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
