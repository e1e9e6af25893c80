"""The audit walk on PostgreSQL: the database's canonical content is the domain's, byte for byte, and
the batched walk proves an intact chain without Python reading the rows, names a break exactly as
the Python walk does, and reports its progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.apps.audit import selectors
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.domain.audit_chain import CHAINED_FIELDS, ChainedContent, entry_payload, walk_chain

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the database hashes entries on PostgreSQL only"),
]

TRIGGER = "audit_entry_append_only"
COLUMNS = CHAINED_FIELDS
TYPES = ("bigint", "timestamptz", "bigint", *("text",) * 10)

# Any text PostgreSQL can store (no NUL, no lone surrogate), with the characters JSON escapes
# (quotes, backslash, control characters) and those it does not (DEL, U+2028, beyond the BMP) likely.
_AWKWARD = st.sampled_from(['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f", "\x7f", "\u2028", "é", "😀", "/"])
_TEXT = st.lists(st.one_of(_AWKWARD, st.characters(exclude_categories=["Cs"], exclude_characters="\x00")), max_size=12)


def _database_payload(content: ChainedContent) -> bytes:
    """The payload PostgreSQL builds from one row holding `content` (a VALUES row, nothing stored)."""
    placeholders = ", ".join(f"%s::{kind}" for kind in TYPES)
    sql = (
        f"SELECT convert_to({selectors._PAYLOAD_SQL}, 'UTF8') "
        f"FROM (VALUES ({placeholders})) AS row_ ({', '.join(COLUMNS)})"
    )
    values = [getattr(content, name) for name in COLUMNS]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, values)
        (payload,) = cursor.fetchone()
    return bytes(payload)


@given(
    texts=st.lists(_TEXT.map("".join), min_size=10, max_size=10),
    actor_id=st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62)),
    sequence=st.integers(min_value=1, max_value=2**62),
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_the_database_payload_is_the_domain_payload(
    texts: list[str], actor_id: int | None, sequence: int, moment: datetime, offset_minutes: int
) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    content = ChainedContent(sequence, local, actor_id, *texts)  # type: ignore[arg-type]
    joined = "".join(texts)
    event("control character" if any(ord(c) < 0x20 for c in joined) else "no control character")
    event("quote or backslash" if '"' in joined or "\\" in joined else "no quote")
    event("beyond the BMP" if any(ord(c) > 0xFFFF for c in joined) else "BMP only")
    event("no actor" if actor_id is None else "actor")
    assert _database_payload(content) == entry_payload(content)


def _entries(count: int) -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for index in range(count):
        actor = Actor(None, "bdx.investigator", "investigator", "BDX", start + timedelta(minutes=index))
        with transaction.atomic():
            audit_record(
                actor=actor,
                event=AuditEvent.LAB_OBSERVATION_RECORDED,
                entity="lab_observation",
                entity_id=str(index),
                subject_code="BDX-0001",
                changes=[Change("value", None, index + 0.5), Change("note", None, 'a "quoted"\nline')],
            )


def _raw(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_auditentry DISABLE TRIGGER {TRIGGER}")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE audit_auditentry ENABLE TRIGGER {TRIGGER}")


def _python_walk() -> object:
    head = selectors._stored_head()
    return walk_chain(selectors._contents(), head)  # type: ignore[arg-type]


def test_an_intact_chain_is_proven_by_the_database_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _entries(11)
    monkeypatch.setattr(selectors, "DATABASE_BATCH", 4)
    read_in_python: list[object] = []
    monkeypatch.setattr(selectors, "_contents", lambda *a, **k: read_in_python.append(k) or iter(()))
    told: list[tuple[int, int]] = []
    report = audit_verify(progress=lambda done, total: told.append((done, total)))
    assert report.intact
    assert report.checked == 11
    assert read_in_python == []  # no row was read in Python
    assert told == [(4, 11), (8, 11), (11, 11)]
    monkeypatch.undo()
    assert report == _python_walk()


@pytest.mark.parametrize("victim", [1, 4, 5, 9, 11])
def test_an_edited_entry_in_any_batch_is_named_as_the_python_walk_names_it(
    monkeypatch: pytest.MonkeyPatch, victim: int
) -> None:
    _entries(11)
    monkeypatch.setattr(selectors, "DATABASE_BATCH", 4)
    _raw("UPDATE audit_auditentry SET reason = %s WHERE sequence = %s", ["quietly edited", victim])
    told: list[tuple[int, int]] = []
    report = audit_verify(progress=lambda done, total: told.append((done, total)))
    assert report.first_break is not None
    assert report.first_break.sequence == victim
    assert "hash" in report.first_break.problem
    assert report.checked == victim - 1
    assert report == _python_walk()
    assert told[-1] == (victim - 1, 11) if victim > 1 else told == []


@pytest.mark.parametrize("victim", [4, 5, 8, 11])
def test_a_deleted_entry_at_a_batch_edge_is_named(monkeypatch: pytest.MonkeyPatch, victim: int) -> None:
    _entries(11)
    monkeypatch.setattr(selectors, "DATABASE_BATCH", 4)
    _raw("DELETE FROM audit_auditentry WHERE sequence = %s", [victim])
    report = audit_verify()
    assert report.first_break is not None
    assert report == _python_walk()
    expected = victim + 1 if victim < 11 else 11
    assert report.first_break.sequence == expected


def test_a_relinked_forgery_breaks_the_link_across_a_batch_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from cartrial.domain.audit_chain import entry_hash

    _entries(9)
    monkeypatch.setattr(selectors, "DATABASE_BATCH", 4)
    content = next(c for c, _ in selectors._contents() if c.sequence == 4)  # type: ignore[misc]
    forged = replace(content, reason="forged")
    _raw(
        "UPDATE audit_auditentry SET reason = %s, entry_hash = %s WHERE sequence = 4",
        ["forged", entry_hash(forged)],
    )
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == 5
    assert "link" in report.first_break.problem
    assert report == _python_walk()
    assert AuditEntry.objects.count() == 9
