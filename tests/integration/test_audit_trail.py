"""The audit trail: hash chain intact, tampering found and named, append-only on PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection, transaction
from typer.testing import CliRunner

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor, audit_record
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

TRIGGER = "audit_entry_append_only"


def _raw(sql: str, params: list[object]) -> None:
    """Run SQL as an attacker with database access would, bypassing the ORM and, on PostgreSQL, the trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE audit_auditentry DISABLE TRIGGER {TRIGGER}")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE audit_auditentry ENABLE TRIGGER {TRIGGER}")


def _cli(*args: str):
    from cartrial.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def test_every_change_is_chained_and_verify_passes(world) -> None:
    world.new_subject("BDX", State.INCLUDED)
    report = audit_verify()
    assert report.intact
    assert report.checked == AuditEntry.objects.count() > 50
    entries = list(AuditEntry.objects.order_by("sequence"))
    for before, after in itertools.pairwise(entries):
        assert after.previous_hash == before.entry_hash
        assert after.sequence == before.sequence + 1


def test_altering_one_row_with_raw_sql_is_found_and_named(world) -> None:
    world.new_subject("BDX", State.SCREENING)
    victim = AuditEntry.objects.filter(event="pathway.step").order_by("sequence").first()
    assert victim is not None
    _raw("UPDATE audit_auditentry SET reason = %s WHERE id = %s", ["quietly edited", victim.pk])
    report = audit_verify()
    assert not report.intact
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert "hash" in report.first_break.problem


def test_recomputing_the_hash_of_an_altered_row_breaks_the_next_link(world) -> None:
    from cartrial.apps.audit.selectors import _contents
    from cartrial.domain.audit_chain import entry_hash

    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[3]
    content = next(c for c, _ in _contents() if c.sequence == victim.sequence)
    from dataclasses import replace

    forged = replace(content, reason="forged")
    _raw(
        "UPDATE audit_auditentry SET reason = %s, entry_hash = %s WHERE id = %s",
        ["forged", entry_hash(forged), victim.pk],
    )
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence + 1
    assert "link" in report.first_break.problem


def test_deleting_a_row_is_found_as_a_gap(world) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[10]
    _raw("DELETE FROM audit_auditentry WHERE id = %s", [victim.pk])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence + 1
    assert "jumps" in report.first_break.problem


def test_cli_verify_exits_0_then_1_naming_the_entry(world) -> None:
    world.new_subject("LIL")
    ok = _cli("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    victim = AuditEntry.objects.order_by("sequence")[7]
    _raw("UPDATE audit_auditentry SET actor_username = %s WHERE id = %s", ["someone-else", victim.pk])
    broken = _cli("audit", "verify")
    assert broken.exit_code == 1
    assert f"#{victim.sequence}" in broken.output


def test_audit_record_refuses_to_run_outside_a_transaction(world) -> None:
    if connection.in_atomic_block:
        # pytest-django wraps each test in a transaction; the guard is checked in the transactional test below.
        assert connection.in_atomic_block
    entry = None
    with transaction.atomic():
        entry = audit_record(actor=Actor.system(), event=AuditEvent.CENTER_CREATED, entity="center", entity_id="X")
    assert entry.sequence == AuditEntry.objects.count()


@pytest.mark.django_db(transaction=True)
def test_audit_record_outside_transaction_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        audit_record(actor=Actor.system(), event=AuditEvent.CENTER_CREATED, entity="center", entity_id="X")


def test_correction_without_reason_is_refused(world) -> None:
    from cartrial.apps.audit.services import ReasonRequired

    with transaction.atomic(), pytest.raises(ReasonRequired):
        audit_record(
            actor=Actor.system(),
            event=AuditEvent.SUBJECT_IDENTITY_CHANGED,
            entity="x",
            entity_id="1",
            is_correction=True,
        )


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the append-only trigger is PostgreSQL's")
def test_postgresql_trigger_refuses_update_and_delete(world) -> None:
    entry = AuditEntry.objects.order_by("sequence").first()
    assert entry is not None
    for sql in ("UPDATE audit_auditentry SET reason = 'x' WHERE id = %s", "DELETE FROM audit_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])
        assert "append-only" in str(refused.value)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="via ORM")
    assert audit_verify().intact


# --- the chain head: the last entry must be the one the head records -----------------------------

TRUNCATE_TRIGGER = "audit_entry_no_truncate"


def _head() -> tuple[int, str]:
    from cartrial.apps.audit.models import AuditChainHead

    head = AuditChainHead.objects.get(pk=1)
    return head.last_sequence, head.last_hash


def _empty_the_table() -> None:
    """Remove every entry as an attacker with database access would: TRUNCATE on PostgreSQL
    (with the refusing triggers disabled, as the table owner can), DELETE on SQLite (no TRUNCATE there)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER USER")
            cursor.execute("TRUNCATE audit_auditentry")
            cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER USER")
        else:
            cursor.execute("DELETE FROM audit_auditentry")


def test_deleting_the_last_entries_is_found_against_the_chain_head(world) -> None:
    world.new_subject("BDX")
    head_sequence, _ = _head()
    kept = head_sequence - 3
    _raw("DELETE FROM audit_auditentry WHERE sequence > %s", [kept])
    report = audit_verify()
    assert not report.intact
    assert report.first_break is not None
    assert report.first_break.sequence == kept + 1
    assert "chain head" in report.first_break.problem
    assert f"#{head_sequence}" in report.first_break.problem and f"#{kept}" in report.first_break.problem


def test_an_emptied_table_with_a_chain_head_is_broken(world) -> None:
    world.new_subject("LIL")
    head_sequence, _ = _head()
    assert head_sequence > 10
    _empty_the_table()
    assert AuditEntry.objects.count() == 0
    report = audit_verify()
    assert not report.intact
    assert report.first_break is not None
    assert report.first_break.sequence == 1
    assert "empty" in report.first_break.problem and str(head_sequence) in report.first_break.problem
    broken = _cli("audit", "verify")
    assert broken.exit_code == 1
    assert "empty" in broken.output and "chain head" in broken.output


def test_chain_head_hash_differing_from_the_last_entry_is_named(world) -> None:
    world.new_subject("BDX")
    head_sequence, _ = _head()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditchainhead SET last_hash = %s WHERE id = 1", ["f" * 64])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == head_sequence
    assert "chain head" in report.first_break.problem and "hash" in report.first_break.problem


def test_a_well_chained_row_added_without_moving_the_head_is_named(world) -> None:
    from dataclasses import replace

    from cartrial.apps.audit.selectors import _contents
    from cartrial.domain.audit_chain import entry_hash

    world.new_subject("BDX")
    head_sequence, head_hash = _head()
    last = next(c for c, _ in _contents() if c.sequence == head_sequence)
    forged = replace(last, sequence=head_sequence + 1, previous_hash=head_hash, reason="forged afterwards")
    _raw(
        "INSERT INTO audit_auditentry (sequence, occurred_at, actor_id, actor_username, role, center_code, event,"
        " entity, entity_id, subject_code, changes_json, reason, previous_hash, entry_hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            forged.sequence,
            forged.occurred_at,
            forged.actor_id,
            forged.actor_username,
            forged.role,
            forged.center_code,
            forged.event,
            forged.entity,
            forged.entity_id,
            forged.subject_code,
            forged.changes_json,
            forged.reason,
            forged.previous_hash,
            entry_hash(forged),
        ],
    )
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == head_sequence + 1
    assert f"after the chain head (#{head_sequence})" in report.first_break.problem


def test_a_fresh_database_without_entries_or_head_is_intact(db) -> None:
    report = audit_verify()
    assert report.intact and report.checked == 0


def test_cli_verify_ends_with_the_chain_heads_hash(world) -> None:
    world.new_subject("BDX")
    _, head_hash = _head()
    ok = _cli("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1] == f"head {head_hash}"
    assert head_hash == AuditEntry.objects.order_by("-sequence").first().entry_hash


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="TRUNCATE and its trigger are PostgreSQL's")
def test_postgresql_trigger_refuses_truncate(world) -> None:
    count = AuditEntry.objects.count()
    assert count > 0
    with connection.cursor() as cursor:
        # The test database keeps this trigger disabled so that flushing between tests works
        # (tests/conftest.py); enabled here, inside this test's transaction only.
        cursor.execute(f"ALTER TABLE audit_auditentry ENABLE TRIGGER {TRUNCATE_TRIGGER}")
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditentry")
    assert "append-only" in str(refused.value) and "TRUNCATE" in str(refused.value)
    assert AuditEntry.objects.count() == count
    assert audit_verify().intact


# --- corrupted rows: one clear line naming the entry and the field, never a traceback ------------

SQLITE_ONLY = pytest.mark.skipif(
    "connection.vendor != 'sqlite'",
    reason="PostgreSQL's typed columns refuse this value: it cannot be stored there to be read back",
)


def _assert_cli_names(sequence: int, field: str) -> None:
    result = _cli("audit", "verify")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a clean exit, not a crash
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"#{sequence}" in lines[0] and field in lines[0], lines[0]


@SQLITE_ONLY
@pytest.mark.parametrize("stored", ["not a time", "2026-13-45 10:00:00", ""], ids=["words", "month-13", "empty"])
def test_an_unreadable_time_is_named_not_a_crash(world, stored: str) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[5]
    _raw("UPDATE audit_auditentry SET occurred_at = %s WHERE id = %s", [stored, victim.pk])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert "occurred_at" in report.first_break.problem and "time" in report.first_break.problem
    _assert_cli_names(victim.sequence, "occurred_at")


def test_changes_that_are_not_json_are_named(world) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[4]
    _raw("UPDATE audit_auditentry SET changes_json = %s WHERE id = %s", ["{not json", victim.pk])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert "changes_json" in report.first_break.problem and "JSON" in report.first_break.problem
    _assert_cli_names(victim.sequence, "changes_json")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("column", "stored"),
    [("actor_id", "someone"), ("actor_id", 4.5), ("actor_username", b"\x00\xff")],
    ids=["text-in-integer", "real-in-integer", "bytes-in-text"],
)
def test_a_wrong_typed_value_is_named(world, column: str, stored: object) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[6]
    with connection.cursor() as cursor:
        # SQLite keeps a value of another type when the column's affinity cannot convert it.
        cursor.execute(f"UPDATE audit_auditentry SET {column} = %s WHERE id = %s", [stored, victim.pk])
        cursor.execute(f"SELECT typeof({column}) FROM audit_auditentry WHERE id = %s", [victim.pk])
        stored_type = cursor.fetchone()[0]
    assert stored_type != {"actor_id": "integer"}.get(column, "text")  # the corruption really is stored
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert column in report.first_break.problem
    _assert_cli_names(victim.sequence, column)


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite enforces NOT NULL without a way to lift it for one test (no ALTER COLUMN)",
)
def test_a_null_in_a_required_column_is_named(world) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[3]
    with connection.cursor() as cursor:
        # Inside this test's transaction only: an owner lifting the constraint, then blanking the field.
        cursor.execute("ALTER TABLE audit_auditentry ALTER COLUMN reason DROP NOT NULL")
    _raw("UPDATE audit_auditentry SET reason = NULL WHERE id = %s", [victim.pk])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert "reason" in report.first_break.problem and "missing" in report.first_break.problem
    _assert_cli_names(victim.sequence, "reason")


@SQLITE_ONLY
def test_text_that_is_not_utf8_is_named(world) -> None:
    world.new_subject("BDX")
    victim = AuditEntry.objects.order_by("sequence")[2]
    _raw("UPDATE audit_auditentry SET reason = CAST(X'41FF42' AS TEXT) WHERE id = %s", [victim.pk])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence == victim.sequence
    assert "reason" in report.first_break.problem and "UTF-8" in report.first_break.problem
    _assert_cli_names(victim.sequence, "reason")


@SQLITE_ONLY
def test_an_unreadable_chain_head_is_named_not_a_crash(world) -> None:
    world.new_subject("BDX")
    _raw("UPDATE audit_auditchainhead SET last_sequence = %s WHERE id = 1", ["many"])
    report = audit_verify()
    assert report.first_break is not None
    assert report.first_break.sequence is None
    assert "chain head" in report.first_break.problem and "last_sequence" in report.first_break.problem
    result = _cli("audit", "verify")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "BROKEN at the chain head" in result.output and "last_sequence" in result.output


def test_an_entry_is_stored_as_the_orm_stores_it_and_found_by_its_time(world) -> None:
    """The append is raw SQL: its values must reach the database as the ORM's would (on SQLite a
    time is UTC text without offset), or filters by time (`since`, the trail's dates) miss entries."""
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    actor = Actor(user_id=None, username="t", role="system", center_code="", now=moment)
    with transaction.atomic():
        entry = audit_record(actor=actor, event=AuditEvent.CENTER_CREATED, entity="center", entity_id="T1")
    assert list(AuditEntry.objects.filter(occurred_at=moment).values_list("pk", flat=True)) == [entry.pk]
    assert not AuditEntry.objects.filter(pk=entry.pk, occurred_at__gt=moment).exists()
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.sequence, stored.entry_hash, stored.occurred_at) == (entry.sequence, entry.entry_hash, moment)
