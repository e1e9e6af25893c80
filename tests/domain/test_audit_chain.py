"""The hash chain's pure rules: the walk and the comparison of its end with the chain head."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cartrial.domain.audit_chain import (
    GENESIS_HASH,
    ChainedContent,
    ChainHead,
    beyond_head_break,
    entry_hash,
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
