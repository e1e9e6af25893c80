"""Chain of custody: every hand-over of a collection or product, checked as one unbroken line.

logistics.md §3 (SCB): the chain of custody "records all points of transfer and control for a
product"; §6 rules 1 and 3: the identifier is scanned at every hand-over and a mismatch blocks
the step and opens a deviation. A unique autologous product cannot be replaced, so the rules
here refuse any record that would leave an item with two holders (fork), with an unrecorded
holder (gap), with someone who never received it, or moving backwards in time.

Pure: the persistence layer loads the accepted events of an item and records what this module
accepts, or the `ScanDeviation` it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.identity import (
    ChainOfIdentityIdentifier,
    Identifier,
    IdentifierError,
    parse_identifier,
)
from cartrial.domain.text import N_, Message, label

# The parts of a custody record, as a refusal names the missing one.
_RECORD_PARTS = {
    "item_id": N_("an item"),
    "to_holder": N_("a receiving holder"),
    "actor": N_("an actor"),
    "location": N_("a location"),
}


@dataclass(frozen=True)
class CustodyEvent:
    """One hand-over of one item; `from_holder` is None only when the item enters custody."""

    item_id: str
    from_holder: str | None
    to_holder: str
    actor: str
    at: datetime
    location: str
    scanned_code: str

    def __post_init__(self) -> None:
        for name, part in _RECORD_PARTS.items():
            if not getattr(self, name).strip():
                raise CustodyEventInvalid("A custody record needs {part}.", item=name, part=label(part))
        if self.from_holder is not None and not self.from_holder.strip():
            raise CustodyEventInvalid("The holder handing the item over is blank.", item="from_holder")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise CustodyEventInvalid(
                "The hand-over time has no time zone: record it with its zone (stored in UTC).", item="at"
            )
        if self.from_holder == self.to_holder:
            raise CustodyEventInvalid(
                "{holder} cannot hand item {item_id} over to itself.",
                item="to_holder",
                holder=self.to_holder,
                item_id=self.item_id,
            )


@dataclass(frozen=True)
class CustodyPosition:
    """Who holds an item, since when and where, after the last accepted hand-over."""

    item_id: str
    holder: str
    since: datetime
    location: str
    hand_over_count: int


@dataclass(frozen=True)
class ScanDeviation:
    """What was expected against what was scanned at a refused step; recorded as a deviation.

    `reason_code` is stable: `scan_unreadable`, `scan_wrong_kind` (a DIN where the CoI was
    expected or the reverse) or `scan_other_identifier` (a readable code of another product);
    `reason` says it in words (a message: `str()` is the English kept in the record).
    """

    item_id: str
    expected_code: str
    scanned_code: str
    scanned_content: str | None
    reason_code: str
    reason: Message
    actor: str
    at: datetime
    location: str
    from_holder: str | None
    to_holder: str


class CustodyEventInvalid(InvalidInput):
    code = "custody_event_invalid"


class CustodyRefused(DomainError):
    """A hand-over that would break the chain; `event_index` is its place in the given records."""

    code = "custody_refused"

    def __init__(self, msgid: str, /, *, item_id: str, event_index: int, **params: Any) -> None:
        super().__init__(msgid, item_id=item_id, **params)
        self.item_id = item_id
        self.event_index = event_index


class CustodyGap(CustodyRefused):
    """The item turns up with a holder no record shows receiving it: a hand-over is missing."""

    code = "custody_gap"


class CustodyFork(CustodyRefused):
    """The item would be in two places: handed on twice, or received at collection twice."""

    code = "custody_fork"


class CustodyNotHeld(CustodyRefused):
    """A hand-over of an item nobody is recorded as holding yet."""

    code = "custody_not_held"


class CustodyOutOfOrder(CustodyRefused):
    code = "custody_out_of_order"


class CustodyScanMismatch(CustodyRefused):
    """The scanned code is not the item's identifier: the step is refused, a deviation opens."""

    code = "custody_scan_mismatch"

    def __init__(self, deviation: ScanDeviation, *, event_index: int) -> None:
        super().__init__(
            N_(
                "Identity check failed for item {item_id}: {reason} "
                "Stop: do not hand the item over; a deviation is opened."
            ),
            item_id=deviation.item_id,
            event_index=event_index,
            reason=deviation.reason,
        )
        self.deviation = deviation


def verify_scan(event: CustodyEvent, expected: Identifier) -> ScanDeviation | None:
    """Compare the code scanned at a hand-over with the item's identifier; None if they match.

    Identity is the content (13 DIN or 15 CoI characters): DIN flags describe the container,
    so a scan with other flags of the same DIN still matches.
    """
    expected_kind = _kind(expected)
    try:
        scanned = parse_identifier(event.scanned_code)
    except IdentifierError as error:
        return _deviation(
            event,
            expected,
            None,
            "scan_unreadable",
            Message(N_("the scanned code is unreadable: {problem}"), {"problem": error.message}),
        )
    if type(scanned) is not type(expected):
        return _deviation(
            event,
            expected,
            scanned.content,
            "scan_wrong_kind",
            Message(
                N_("a {scanned_kind} ({scanned}) was scanned where the {expected_kind} {expected} was expected."),
                {
                    "scanned_kind": _kind(scanned),
                    "scanned": scanned.content,
                    "expected_kind": expected_kind,
                    "expected": expected.content,
                },
            ),
        )
    if scanned.content != expected.content:
        return _deviation(
            event,
            expected,
            scanned.content,
            "scan_other_identifier",
            Message(
                N_("scanned {kind} {scanned} is not {expected}, the one this item carries."),
                {"kind": expected_kind, "scanned": scanned.content, "expected": expected.content},
            ),
        )
    return None


def check_hand_over(history: Sequence[CustodyEvent], event: CustodyEvent, *, expected: Identifier) -> CustodyPosition:
    """Accept or refuse the next hand-over of one item, given its already-accepted history.

    Raises `CustodyScanMismatch` (carrying the `ScanDeviation` to record) or another
    `CustodyRefused`; returns where the item stands once the hand-over is recorded.
    """
    for earlier in history:
        if earlier.item_id != event.item_id:
            raise CustodyEventInvalid(
                "The history of item {item_id} contains a record of item {other}.",
                item_id=event.item_id,
                other=earlier.item_id,
            )
    positions = check_custody_chain([*history, event], expected={event.item_id: expected})
    return positions[event.item_id]


def check_custody_chain(
    events: Sequence[CustodyEvent], *, expected: Mapping[str, Identifier]
) -> dict[str, CustodyPosition]:
    """Check a whole record of hand-overs (one or several items, in recorded order).

    Identity is checked first at each step, as at the bench; then continuity: the first record
    of an item is its receipt (no `from_holder`), each next one starts from the current holder,
    and times never go backwards within an item's chain. Returns each item's final position.
    """
    lines: dict[str, _CustodyLine] = {}
    for index, event in enumerate(events):
        if event.item_id not in expected:
            raise CustodyEventInvalid(
                "Item {item_id} has no registered identifier (CoI or DIN) to check scans against: "
                "register it before recording its custody.",
                item_id=event.item_id,
            )
        deviation = verify_scan(event, expected[event.item_id])
        if deviation is not None:
            raise CustodyScanMismatch(deviation, event_index=index)
        lines[event.item_id] = _advance(lines.get(event.item_id), event, index)
    return {item_id: line.position for item_id, line in lines.items()}


@dataclass(frozen=True)
class _CustodyLine:
    """An item's position plus, for each former holder, the hand-over that ended its custody."""

    position: CustodyPosition
    handed_on: Mapping[str, CustodyEvent]


def _advance(line: _CustodyLine | None, event: CustodyEvent, index: int) -> _CustodyLine:
    item = event.item_id
    if line is None:
        if event.from_holder is not None:
            raise CustodyNotHeld(
                "{holder} hands item {item_id} over, but no one is recorded as holding it: its custody "
                "must start with its receipt at collection (no 'from' holder).",
                item_id=item,
                event_index=index,
                holder=event.from_holder,
            )
        return _CustodyLine(_position_after(event, 1), {})
    current = line.position
    if event.at.astimezone(UTC) < current.since.astimezone(UTC):
        raise CustodyOutOfOrder(
            "The hand-over of item {item_id} at {at} is earlier than the previous one ({previous}): "
            "custody records must follow each other in time.",
            item_id=item,
            event_index=index,
            at=_when(event.at),
            previous=_when(current.since),
        )
    if event.from_holder is None:
        raise CustodyFork(
            "Item {item_id} is already held by {holder} since {since}: a second receipt at collection "
            "would start a second custody line.",
            item_id=item,
            event_index=index,
            holder=current.holder,
            since=_when(current.since),
        )
    if event.from_holder != current.holder:
        earlier = line.handed_on.get(event.from_holder)
        if earlier is not None:
            raise CustodyFork(
                "{holder} already handed item {item_id} to {receiver} at {at}; it cannot also hand it "
                "to {other}: the item would be in two places.",
                item_id=item,
                event_index=index,
                holder=event.from_holder,
                receiver=earlier.to_holder,
                at=_when(earlier.at),
                other=event.to_holder,
            )
        raise CustodyGap(
            "Item {item_id} is recorded with {holder} since {since}, but this hand-over starts from "
            "{giver}: the hand-over from {holder} to {giver} is missing.",
            item_id=item,
            event_index=index,
            holder=current.holder,
            since=_when(current.since),
            giver=event.from_holder,
        )
    handed_on = {**line.handed_on, current.holder: event}
    handed_on.pop(event.to_holder, None)
    return _CustodyLine(_position_after(event, current.hand_over_count + 1), handed_on)


def _position_after(event: CustodyEvent, count: int) -> CustodyPosition:
    return CustodyPosition(event.item_id, event.to_holder, event.at, event.location, count)


def _deviation(
    event: CustodyEvent,
    expected: Identifier,
    scanned_content: str | None,
    reason_code: str,
    reason: Message,
) -> ScanDeviation:
    return ScanDeviation(
        item_id=event.item_id,
        expected_code=expected.content,
        scanned_code=event.scanned_code,
        scanned_content=scanned_content,
        reason_code=reason_code,
        reason=reason,
        actor=event.actor,
        at=event.at,
        location=event.location,
        from_holder=event.from_holder,
        to_holder=event.to_holder,
    )


def _kind(identifier: Identifier) -> str:
    return "CoI" if isinstance(identifier, ChainOfIdentityIdentifier) else "DIN"


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
