"""Hash chain of the audit trail: canonical content, entry hash, and the walk that finds a break.

Pure so the same rule is used when writing (services) and when verifying (CLI, page, tests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

# The previous hash of the very first entry.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainedContent:
    """The fields of one entry that its hash covers (all but the hash itself)."""

    sequence: int
    occurred_at: datetime
    actor_id: int | None
    actor_username: str
    role: str
    center_code: str
    event: str
    entity: str
    entity_id: str
    subject_code: str
    changes_json: str
    reason: str
    previous_hash: str


# The entry's columns its hash covers, in the hashed order: bulk loaders (the scale data, the
# benchmark, backups) name them from here rather than listing them again.
CHAINED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ChainedContent))
_chained_values = attrgetter(*CHAINED_FIELDS)


def chained_row(content: ChainedContent, digest: str) -> tuple[Any, ...]:
    """The entry as a row of CHAINED_FIELDS then its hash: what a bulk loader writes."""
    return (*_chained_values(content), digest)


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_payload(content: ChainedContent) -> bytes:
    """The bytes an entry's hash covers: its canonical content as UTF-8 JSON."""
    return canonical_json(
        {
            "sequence": content.sequence,
            "occurred_at": _utc_iso(content.occurred_at),
            "actor_id": content.actor_id,
            "actor_username": content.actor_username,
            "role": content.role,
            "center_code": content.center_code,
            "event": content.event,
            "entity": content.entity,
            "entity_id": content.entity_id,
            "subject_code": content.subject_code,
            "changes": content.changes_json,
            "reason": content.reason,
            "previous_hash": content.previous_hash,
        }
    ).encode("utf-8")


def entry_hash(content: ChainedContent) -> str:
    """SHA-256 of the entry's canonical content, which includes the previous entry's hash."""
    return hashlib.sha256(entry_payload(content)).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the chain does not hold (None: the chain head row itself), and why."""

    sequence: int | None
    problem: str


@dataclass(frozen=True)
class UnreadableEntry:
    """A stored row that cannot be read as an entry: a field is missing, of the wrong type or malformed.

    Only a corrupted database gives one; the walk names it instead of failing on it.
    """

    sequence: int | None
    problem: str


_TEXT_FIELDS = (
    "actor_username",
    "role",
    "center_code",
    "event",
    "entity",
    "entity_id",
    "subject_code",
    "changes_json",
    "reason",
    "previous_hash",
    "entry_hash",
)


class _Unreadable(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field} {problem}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(values: Mapping[str, object], field: str, *, required: bool = True) -> int | None:
    value = values.get(field)
    if value is None:
        if required:
            raise _Unreadable(field, "is missing (NULL)")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unreadable(field, f"is not an integer ({_shown(value)})")
    return value


def _text(values: Mapping[str, object], field: str) -> str:
    value = values.get(field)
    if value is None:
        raise _Unreadable(field, "is missing (NULL)")
    if not isinstance(value, str):
        raise _Unreadable(field, f"is not text ({_shown(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Read with escapes (see the selector) because the stored bytes are not UTF-8.
        raise _Unreadable(field, f"is not valid UTF-8 text ({_shown(value)})") from None
    return value


def _time(values: Mapping[str, object], field: str) -> datetime:
    """A stored time: a datetime or ISO text; without an offset it is UTC (how SQLite keeps it)."""
    value = values.get(field)
    if value is None:
        raise _Unreadable(field, "is missing (NULL)")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _Unreadable(field, f"is not a valid time ({_shown(value)})") from None
    else:
        raise _Unreadable(field, f"is not a valid time ({_shown(value)})")
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise _Unreadable(field, f"is not a valid time ({_shown(value)})") from None
    return moment


def read_entry(values: Mapping[str, object]) -> tuple[ChainedContent, str] | UnreadableEntry:
    """One stored row's raw values (by field name, plus `id`) as (content, stored hash), or what is wrong.

    Rows are read as stored, without the ORM's conversions, so that one corrupted row (a time
    that does not parse, text that is not JSON, a NULL or a value of another type) is named by
    the walk instead of stopping it with an exception.
    """
    sequence: int | None = None
    try:
        sequence = _integer(values, "sequence")
        occurred_at = _time(values, "occurred_at")
        actor_id = _integer(values, "actor_id", required=False)
        text = {field: _text(values, field) for field in _TEXT_FIELDS}
        try:
            json.loads(text["changes_json"])
        except ValueError:
            raise _Unreadable("changes_json", f"is not JSON ({_shown(text['changes_json'])})") from None
    except _Unreadable as unreadable:
        problem = str(unreadable) if sequence is not None else f"{unreadable} (row id {values.get('id')})"
        return UnreadableEntry(sequence, problem)
    assert sequence is not None
    content = ChainedContent(
        sequence=sequence,
        occurred_at=occurred_at,
        actor_id=actor_id,
        actor_username=text["actor_username"],
        role=text["role"],
        center_code=text["center_code"],
        event=text["event"],
        entity=text["entity"],
        entity_id=text["entity_id"],
        subject_code=text["subject_code"],
        changes_json=text["changes_json"],
        reason=text["reason"],
        previous_hash=text["previous_hash"],
    )
    return content, text["entry_hash"]


@dataclass(frozen=True)
class ChainHead:
    """What the one chain-head row records: the last entry's sequence and hash (0 and genesis when empty).

    The walk alone cannot see entries removed from the end (or every entry): the remaining rows
    still form an intact chain. Comparing its end with the head, written in the same transaction
    as each entry, finds them.
    """

    last_sequence: int
    last_hash: str


def read_head(values: Mapping[str, object]) -> ChainHead | ChainBreak:
    """The stored head row's raw values as a ChainHead, or the break naming its unreadable field."""
    try:
        last_sequence = _integer(values, "last_sequence")
        last_hash = _text(values, "last_hash")
    except _Unreadable as unreadable:
        return ChainBreak(None, f"the chain head row is unreadable: {unreadable}")
    assert last_sequence is not None
    return ChainHead(last_sequence=last_sequence, last_hash=last_hash)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: ChainBreak | None
    # The hash of the last entry checked: the chain head's when the trail is intact.
    head_hash: str = GENESIS_HASH

    @property
    def intact(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class ChainPosition:
    """How far an intact walk has come: entries checked (the last sequence, numbering has no gap)
    and the last entry's hash, to which the next entry must link."""

    checked: int = 0
    last_hash: str = GENESIS_HASH


def walk_entries(
    entries: Iterable[tuple[ChainedContent, str] | UnreadableEntry], start: ChainPosition | None = None
) -> ChainPosition | ChainReport:
    """Check entries in sequence order from `start`: numbering without gap, links, each stored hash.

    Returns where the walk ended when every entry holds, or the report naming the first break. A
    walk can go over the trail in parts (the database checks most of it; see the selector).
    """
    position = start or ChainPosition()
    expected_previous = position.last_hash
    expected_sequence = position.checked + 1
    checked = position.checked
    for item in entries:
        if isinstance(item, UnreadableEntry):
            if item.sequence is not None and item.sequence != expected_sequence:
                problem = f"sequence jumps from {expected_sequence - 1} to {item.sequence}"
                return ChainReport(checked, ChainBreak(item.sequence, problem))
            return ChainReport(checked, ChainBreak(expected_sequence, item.problem))
        content, stored_hash = item
        if content.sequence != expected_sequence:
            return ChainReport(
                checked,
                ChainBreak(content.sequence, f"sequence jumps from {expected_sequence - 1} to {content.sequence}"),
            )
        if content.previous_hash != expected_previous:
            return ChainReport(checked, ChainBreak(content.sequence, "previous-hash link does not match entry before"))
        if entry_hash(content) != stored_hash:
            return ChainReport(checked, ChainBreak(content.sequence, "content does not match its stored hash"))
        checked += 1
        expected_previous = stored_hash
        expected_sequence += 1
    return ChainPosition(checked, expected_previous)


def chain_end(position: ChainPosition, head: ChainHead | None) -> ChainReport:
    """The report of an intact walk that ended at `position`, once its end is compared with the head."""
    head_break = _compare_head(position.checked, position.last_hash, head)
    if head_break is not None:
        sequence, problem = head_break
        return ChainReport(min(position.checked, sequence - 1), ChainBreak(sequence, problem))
    return ChainReport(position.checked, None, position.last_hash)


def walk_chain(entries: Iterable[tuple[ChainedContent, str] | UnreadableEntry], head: ChainHead | None) -> ChainReport:
    """Check entries in sequence order: numbering without gap, links, each stored hash, then the head.

    `entries` yields (content, stored hash) up to the head's sequence; `head` is the stored chain
    head, None when no entry was ever written. A deleted row shows as a gap, an edited row as a
    hash mismatch, a re-ordered or forged row as a broken link, deleted last rows (or all of
    them) as a trail shorter than the head, a corrupted row (`UnreadableEntry`) by its field.
    """
    walked = walk_entries(entries)
    return walked if isinstance(walked, ChainReport) else chain_end(walked, head)


def _compare_head(last_sequence: int, last_hash: str, head: ChainHead | None) -> tuple[int, str] | None:
    """Where and why the end of an intact walk disagrees with the stored head; None when they agree."""
    if head is None:
        if last_sequence == 0:
            return None  # a fresh database: nothing was ever recorded
        return (last_sequence, f"the chain head row is missing although the trail ends at #{last_sequence}")
    if head.last_sequence > last_sequence:
        if last_sequence == 0:
            return (
                1,
                f"the audit table is empty but the chain head records {head.last_sequence} entries "
                f"(last #{head.last_sequence}): every entry was removed",
            )
        return (
            last_sequence + 1,
            f"the trail ends at #{last_sequence} but the chain head records #{head.last_sequence}: "
            f"entries #{last_sequence + 1} to #{head.last_sequence} are missing",
        )
    if head.last_sequence < last_sequence:
        return (
            head.last_sequence + 1,
            f"entries #{head.last_sequence + 1} to #{last_sequence} come after the chain head "
            f"(#{head.last_sequence}): they were not written by the audit service",
        )
    if head.last_hash != last_hash:
        if last_sequence == 0:
            return (1, "the audit table is empty but the chain head's hash is not the genesis hash")
        return (last_sequence, f"the chain head's hash does not match entry #{last_sequence}'s stored hash")
    return None


def beyond_head_break(first_sequence: object, count: int, head_sequence: int | None) -> ChainBreak:
    """The break for rows stored after the chain head: every entry written by the audit service
    moves the head in the same transaction, so such rows were added some other way."""
    if head_sequence is None:
        return ChainBreak(
            first_sequence if isinstance(first_sequence, int) else 0,
            f"{count} entries are stored but the chain head row is missing",
        )
    return ChainBreak(
        first_sequence if isinstance(first_sequence, int) else head_sequence + 1,
        f"{count} entries from #{first_sequence} come after the chain head (#{head_sequence}): "
        "they were not written by the audit service",
    )
