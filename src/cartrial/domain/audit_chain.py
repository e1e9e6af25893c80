"""Hash chain of the audit trail: canonical content, entry hash, and the walk that finds a break.

Pure so the same rule is used when writing (services) and when verifying (CLI, page, tests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

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


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(content: ChainedContent) -> str:
    """SHA-256 of the entry's canonical content, which includes the previous entry's hash."""
    payload = canonical_json(
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
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the chain does not hold, and why."""

    sequence: int
    problem: str


@dataclass(frozen=True)
class ChainHead:
    """What the one chain-head row records: the last entry's sequence and hash (0 and genesis when empty).

    The walk alone cannot see entries removed from the end (or every entry): the remaining rows
    still form an intact chain. Comparing its end with the head, written in the same transaction
    as each entry, finds them.
    """

    last_sequence: int
    last_hash: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: ChainBreak | None
    # The hash of the last entry checked: the chain head's when the trail is intact.
    head_hash: str = GENESIS_HASH

    @property
    def intact(self) -> bool:
        return self.first_break is None


def walk_chain(entries: Iterable[tuple[ChainedContent, str]], head: ChainHead | None) -> ChainReport:
    """Check entries in sequence order: numbering without gap, links, each stored hash, then the head.

    `entries` yields (content, stored hash) up to the head's sequence; `head` is the stored chain
    head, None when no entry was ever written. A deleted row shows as a gap, an edited row as a
    hash mismatch, a re-ordered or forged row as a broken link, deleted last rows (or all of
    them) as a trail shorter than the head.
    """
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for content, stored_hash in entries:
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
    head_break = _compare_head(checked, expected_previous, head)
    if head_break is not None:
        return ChainReport(min(checked, head_break.sequence - 1), head_break)
    return ChainReport(checked, None, expected_previous)


def _compare_head(last_sequence: int, last_hash: str, head: ChainHead | None) -> ChainBreak | None:
    """The break between the end of an intact walk and the stored head, or None when they agree."""
    if head is None:
        if last_sequence == 0:
            return None  # a fresh database: nothing was ever recorded
        return ChainBreak(last_sequence, f"the chain head row is missing although the trail ends at #{last_sequence}")
    if head.last_sequence > last_sequence:
        if last_sequence == 0:
            return ChainBreak(
                1,
                f"the audit table is empty but the chain head records {head.last_sequence} entries "
                f"(last #{head.last_sequence}): every entry was removed",
            )
        return ChainBreak(
            last_sequence + 1,
            f"the trail ends at #{last_sequence} but the chain head records #{head.last_sequence}: "
            f"entries #{last_sequence + 1} to #{head.last_sequence} are missing",
        )
    if head.last_sequence < last_sequence:
        return ChainBreak(
            head.last_sequence + 1,
            f"entries #{head.last_sequence + 1} to #{last_sequence} come after the chain head "
            f"(#{head.last_sequence}): they were not written by the audit service",
        )
    if head.last_hash != last_hash:
        if last_sequence == 0:
            return ChainBreak(1, "the audit table is empty but the chain head's hash is not the genesis hash")
        return ChainBreak(
            last_sequence, f"the chain head's hash does not match entry #{last_sequence}'s stored hash"
        )
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
