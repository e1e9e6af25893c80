"""The hash chain's pure rules: the walk and the comparison of its end with the chain head."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cartrial.domain.audit_chain import (
    GENESIS_HASH,
    ChainBreak,
    ChainedContent,
    ChainHead,
    UnreadableEntry,
    beyond_head_break,
    entry_hash,
    read_entry,
    read_head,
    walk_chain,
)

START = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _chain(length: int) -> list[tuple[ChainedContent, str]]:
    entries: list[tuple[ChainedContent, str]] = []
    previous = GENESIS_HASH
    for sequence in range(1, length + 1):
        content = ChainedContent(
            sequence=sequence,
            occurred_at=START + timedelta(minutes=sequence),
            actor_id=7,
            actor_username="bdx.coordinator",
            role="coordinator",
            center_code="BDX",
            event="pathway.step",
            entity="subject",
            entity_id="BDX-001",
            subject_code="BDX-001",
            changes_json='[{"field":"state","new":"screening","old":"pre_screening"}]',
            reason="",
            previous_hash=previous,
        )
        previous = entry_hash(content)
        entries.append((content, previous))
    return entries


def test_a_chain_ending_at_its_head_is_intact_and_reports_the_heads_hash() -> None:
    chain = _chain(5)
    report = walk_chain(chain, ChainHead(5, chain[-1][1]))
    assert report.intact and report.checked == 5
    assert report.head_hash == chain[-1][1]


def test_no_entry_and_no_head_is_a_fresh_trail() -> None:
    report = walk_chain([], None)
    assert report.intact and report.checked == 0 and report.head_hash == GENESIS_HASH


def test_missing_last_entries_are_named_from_the_first_missing() -> None:
    chain = _chain(6)
    report = walk_chain(chain[:4], ChainHead(6, chain[-1][1]))
    assert report.first_break is not None
    assert report.first_break.sequence == 5
    assert report.checked == 4
    assert "ends at #4" in report.first_break.problem and "#6" in report.first_break.problem


def test_an_empty_trail_under_a_head_that_records_entries_is_broken() -> None:
    chain = _chain(3)
    report = walk_chain([], ChainHead(3, chain[-1][1]))
    assert report.first_break is not None
    assert report.first_break.sequence == 1
    assert "empty" in report.first_break.problem


def test_an_empty_trail_under_a_head_with_a_non_genesis_hash_is_broken() -> None:
    report = walk_chain([], ChainHead(0, "a" * 64))
    assert report.first_break is not None and "genesis" in report.first_break.problem


def test_a_head_hash_other_than_the_last_entrys_is_named_at_that_entry() -> None:
    chain = _chain(4)
    report = walk_chain(chain, ChainHead(4, "b" * 64))
    assert report.first_break is not None
    assert report.first_break.sequence == 4
    assert "chain head's hash" in report.first_break.problem


def test_entries_past_the_head_are_named() -> None:
    chain = _chain(4)
    report = walk_chain(chain, ChainHead(2, chain[1][1]))
    assert report.first_break is not None
    assert report.first_break.sequence == 3
    assert "after the chain head" in report.first_break.problem


def test_entries_without_any_head_row_are_broken() -> None:
    report = walk_chain(_chain(2), None)
    assert report.first_break is not None and "head row is missing" in report.first_break.problem


def test_a_break_inside_the_chain_is_named_before_the_head_is_compared() -> None:
    chain = _chain(5)
    edited = replace(chain[2][0], reason="edited")
    tampered = [*chain[:2], (edited, chain[2][1]), *chain[3:]]
    report = walk_chain(tampered, ChainHead(5, chain[-1][1]))
    assert report.first_break is not None
    assert report.first_break.sequence == 3 and "stored hash" in report.first_break.problem


def test_rows_beyond_the_head_name_the_first_and_the_head() -> None:
    stray = beyond_head_break(9, 2, 8)
    assert stray.sequence == 9 and "2 entries from #9" in stray.problem and "(#8)" in stray.problem
    headless = beyond_head_break(1, 3, None)
    assert "head row is missing" in headless.problem


# --- reading stored rows defensively ------------------------------------------------------------


def _stored(content: ChainedContent, stored_hash: str, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "id": 41,
        "sequence": content.sequence,
        "occurred_at": content.occurred_at.replace(tzinfo=None).isoformat(sep=" "),  # as SQLite keeps it
        "actor_id": content.actor_id,
        "actor_username": content.actor_username,
        "role": content.role,
        "center_code": content.center_code,
        "event": content.event,
        "entity": content.entity,
        "entity_id": content.entity_id,
        "subject_code": content.subject_code,
        "changes_json": content.changes_json,
        "reason": content.reason,
        "previous_hash": content.previous_hash,
        "entry_hash": stored_hash,
    }
    values.update(overrides)
    return values


def test_a_stored_row_reads_back_to_the_content_it_was_hashed_from() -> None:
    content, stored_hash = _chain(1)[0]
    assert read_entry(_stored(content, stored_hash)) == (content, stored_hash)
    aware = read_entry(_stored(content, stored_hash, occurred_at=content.occurred_at))  # as PostgreSQL gives it
    assert aware == (content, stored_hash)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("occurred_at", "not a time", "is not a valid time ('not a time')"),
        ("occurred_at", "2026-13-45 10:00:00", "is not a valid time"),
        ("occurred_at", "0001-01-01 00:10:00+05:00", "is not a valid time"),
        ("occurred_at", 1234.5, "is not a valid time (1234.5)"),
        ("occurred_at", None, "is missing (NULL)"),
        ("actor_id", "someone", "is not an integer ('someone')"),
        ("actor_id", True, "is not an integer (True)"),
        ("reason", None, "is missing (NULL)"),
        ("actor_username", b"\x00\xff", "is not text"),
        ("reason", "A\udcffB", "is not valid UTF-8 text"),
        ("changes_json", "{not json", "is not JSON ('{not json')"),
        ("entry_hash", 7, "is not text (7)"),
    ],
)
def test_a_corrupted_field_is_named_with_its_entry(field: str, value: object, words: str) -> None:
    content, stored_hash = _chain(1)[0]
    unreadable = read_entry(_stored(content, stored_hash, **{field: value}))
    assert isinstance(unreadable, UnreadableEntry)
    assert unreadable.sequence == content.sequence
    assert unreadable.problem.startswith(f"field {field} {words}")


def test_an_unreadable_sequence_names_the_row_id() -> None:
    content, stored_hash = _chain(1)[0]
    unreadable = read_entry(_stored(content, stored_hash, sequence="abc"))
    assert isinstance(unreadable, UnreadableEntry) and unreadable.sequence is None
    assert unreadable.problem == "field sequence is not an integer ('abc') (row id 41)"


def test_the_walk_names_an_unreadable_row_at_its_place() -> None:
    chain = _chain(4)
    rows = [read_entry(_stored(c, h)) for c, h in chain]
    rows[2] = read_entry(_stored(*chain[2], changes_json="[oops"))
    report = walk_chain(rows, ChainHead(4, chain[-1][1]))
    assert report.first_break is not None
    assert report.first_break.sequence == 3 and report.checked == 2
    assert report.first_break.problem.startswith("field changes_json is not JSON")


def test_an_unreadable_head_row_is_a_break_at_the_head() -> None:
    assert read_head({"last_sequence": 3, "last_hash": "c" * 64}) == ChainHead(3, "c" * 64)
    broken = read_head({"last_sequence": "many", "last_hash": "c" * 64})
    assert isinstance(broken, ChainBreak) and broken.sequence is None
    assert broken.problem == "the chain head row is unreadable: field last_sequence is not an integer ('many')"
