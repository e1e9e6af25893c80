"""Hash chain of the audit trail: canonical content, entry hash, and the walk that finds a break.

Pure so the same rule is used when writing (services) and when verifying (CLI, page, tests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cartrial.domain.text import N_, Message

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
    """The first entry where the chain does not hold, and why (a message: `str()` is the English)."""

    sequence: int
    problem: Message


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def walk_chain(entries: Iterable[tuple[ChainedContent, str]]) -> ChainReport:
    """Check entries in sequence order: numbering without gap, links, and each stored hash.

    `entries` yields (content, stored hash). A deleted row shows as a gap, an edited row as a
    hash mismatch, a re-ordered or forged row as a broken link.
    """
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for content, stored_hash in entries:
        if content.sequence != expected_sequence:
            jump = Message(
                N_("sequence jumps from {previous} to {sequence}"),
                {"previous": expected_sequence - 1, "sequence": content.sequence},
            )
            return ChainReport(checked, ChainBreak(content.sequence, jump))
        if content.previous_hash != expected_previous:
            broken = Message(N_("previous-hash link does not match entry before"))
            return ChainReport(checked, ChainBreak(content.sequence, broken))
        if entry_hash(content) != stored_hash:
            edited = Message(N_("content does not match its stored hash"))
            return ChainReport(checked, ChainBreak(content.sequence, edited))
        checked += 1
        expected_previous = stored_hash
        expected_sequence += 1
    return ChainReport(checked, None)
