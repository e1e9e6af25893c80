"""Reading the audit trail: the chain walk and per-subject history."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast

from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.domain.audit_chain import (
    ChainBreak,
    ChainedContent,
    ChainHead,
    ChainPosition,
    ChainReport,
    UnreadableEntry,
    beyond_head_break,
    chain_end,
    read_entry,
    read_head,
    walk_entries,
)

_STORED_FIELDS = (
    "id",
    "sequence",
    "stored_time",
    "actor_id",
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


def _contents(
    up_to: int | None = None, batch_size: int = 2000, after: int | None = None
) -> Iterator[tuple[ChainedContent, str] | UnreadableEntry]:
    """The stored entries in sequence order (those after `after`, up to `up_to`), read as raw values
    so that a corrupted row is named.

    On SQLite the time is read as the stored text: the ORM's conversion of a malformed time
    raises (or gives None) before anything could say which entry holds it.
    """
    stored_time = Cast("occurred_at", TextField()) if connection.vendor == "sqlite" else F("occurred_at")
    rows = AuditEntry.objects.annotate(stored_time=stored_time).order_by("sequence", "id")
    if up_to is not None:
        rows = rows.filter(sequence__lte=up_to)
    if after is not None:
        rows = rows.filter(sequence__gt=after)
    for values in rows.values_list(*_STORED_FIELDS).iterator(chunk_size=batch_size):
        named = dict(zip(_STORED_FIELDS, values, strict=True))
        named["occurred_at"] = named.pop("stored_time")
        yield read_entry(named)


# On PostgreSQL the database hashes the entries (SQL below), in batches of this many: the Python
# walk's per-row cost (fetching, building the canonical JSON) was 10x the hashing itself.
DATABASE_BATCH = 250_000

# The canonical content (`domain.audit_chain.entry_payload`) built by PostgreSQL: keys in sorted
# order, no spaces, strings escaped by `to_json` exactly as Python's json.dumps(ensure_ascii=False)
# escapes them (the same short escapes, \u00xx for other control characters), the time in UTC with
# microseconds and "+00:00". tests/integration/test_audit_verify_database.py compares it with the
# domain's payload on awkward text. A difference could only report a break that is not one (the
# stored hashes were made by the domain's rule): any batch not proven intact here is walked again
# in Python, which names the first break exactly.
_PAYLOAD_SQL = (
    """'{"actor_id":' || COALESCE(actor_id::text, 'null')"""
    """ || ',"actor_username":' || to_json(actor_username)::text"""
    """ || ',"center_code":' || to_json(center_code)::text"""
    """ || ',"changes":' || to_json(changes_json)::text"""
    """ || ',"entity":' || to_json(entity)::text"""
    """ || ',"entity_id":' || to_json(entity_id)::text"""
    """ || ',"event":' || to_json(event)::text"""
    """ || ',"occurred_at":"' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
    """ || '+00:00","previous_hash":' || to_json(previous_hash)::text"""
    """ || ',"reason":' || to_json(reason)::text"""
    """ || ',"role":' || to_json(role)::text"""
    """ || ',"sequence":' || sequence::text"""
    """ || ',"subject_code":' || to_json(subject_code)::text || '}'"""
)
# Each row's hash, with what `read_entry` requires too: changes that are JSON (the cast raises
# otherwise, and the batch is walked in Python) and a time Python can hold. Table name from the
# model, bounds as parameters: nothing from input.
_HASHED_SQL = (
    "SELECT count(*), count(*) FILTER (WHERE ("  # noqa: S608
    f"encode(sha256(convert_to({_PAYLOAD_SQL}, 'UTF8')), 'hex') = entry_hash"
    " AND changes_json::json IS NOT NULL"
    " AND occurred_at >= '0001-01-01 00:00:00+00' AND occurred_at < '10000-01-01 00:00:00+00'"
    ") IS NOT TRUE) FROM {table} WHERE sequence > %s AND sequence <= %s"
)
# The links and the numbering, in sequence order: each row after the batch's first follows the one
# before (sequence + 1, previous hash = its hash); the first row's link is checked by the caller.
_LINKED_SQL = (
    "SELECT count(*),"
    " count(*) FILTER (WHERE (before_sequence IS NULL"
    " OR (sequence = before_sequence + 1 AND previous_hash = before_hash)) IS NOT TRUE),"
    " min(sequence), max(sequence),"
    " max(previous_hash) FILTER (WHERE before_sequence IS NULL),"
    " max(entry_hash) FILTER (WHERE sequence = %s)"
    " FROM (SELECT sequence, previous_hash, entry_hash,"
    " lag(sequence) OVER w AS before_sequence, lag(entry_hash) OVER w AS before_hash"
    " FROM {table} WHERE sequence > %s AND sequence <= %s WINDOW w AS (ORDER BY sequence)) AS linked"
)


def _hashed_by_database() -> bool:
    """PostgreSQL with UTF-8 text hashes the entries itself; elsewhere the walk is Python's."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_encoding")
        (encoding,) = cursor.fetchone()
    return str(encoding).upper() in {"UTF8", "UTF-8"}


def _batch_end(after: int, up_to: int, position: ChainPosition) -> ChainPosition | None:
    """Where the walk stands after entries `after`+1 .. `up_to` when the database proves them intact
    and linked to `position`; None when it does not (the batch is then walked in Python)."""
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    # The first batch takes every row up to its end, so a row numbered below 1 is seen too.
    lowest = after if after > 0 else -(2**63)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_HASHED_SQL.replace("{table}", table), [lowest, up_to])
            hashed, unhashed = cursor.fetchone()
            cursor.execute(_LINKED_SQL.replace("{table}", table), [up_to, lowest, up_to])
            linked, unlinked, first, last, first_previous, last_hash = cursor.fetchone()
    except DatabaseError:
        return None  # e.g. changes that are not JSON: the Python walk names the entry
    expected = up_to - after
    if (hashed, unhashed, linked, unlinked, first, last) != (expected, 0, expected, 0, after + 1, up_to):
        return None
    if first_previous != position.last_hash or not isinstance(last_hash, str):
        return None
    return ChainPosition(up_to, last_hash)


def _walk_in_database(up_to: int, progress: Callable[[int, int], None] | None) -> ChainPosition | ChainReport:
    """The chain up to `up_to`, batch by batch, each proven intact by the database; from the first
    batch it does not prove, Python walks the rest entry by entry, as on SQLite, and names the break."""
    position = ChainPosition()
    while position.checked < up_to:
        proven = _batch_end(position.checked, min(position.checked + DATABASE_BATCH, up_to), position)
        if proven is None:
            after = position.checked if position.checked > 0 else None
            entries = _contents(up_to=up_to, after=after)
            if progress is not None:
                entries = _counted(entries, up_to, progress, start=position.checked)
            return walk_entries(entries, position)
        position = proven
        if progress is not None:
            progress(position.checked, up_to)
    return position


def _walk_in_python(up_to: int, progress: Callable[[int, int], None] | None) -> ChainPosition | ChainReport:
    entries = _contents(up_to=up_to)
    return walk_entries(entries if progress is None else _counted(entries, up_to, progress))


def _stored_head() -> ChainHead | ChainBreak | None:
    row = AuditChainHead.objects.filter(pk=1).values("last_sequence", "last_hash").first()
    return None if row is None else read_head(row)


@contextmanager
def _tolerant_text() -> Iterator[None]:
    """On SQLite, read text whose bytes are not UTF-8 (escaped) so that the walk can name it.

    Python's sqlite3 otherwise fails the whole fetch on such a value. PostgreSQL refuses to
    store invalid text, so nothing changes there.
    """
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.text_factory
    raw.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    try:
        yield
    finally:
        raw.text_factory = previous


def _first_beyond_current_head() -> ChainBreak | None:
    """Rows stored after the chain head, read with the head in one statement (one snapshot)."""
    head_table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    entry_table = connection.ops.quote_name(AuditEntry._meta.db_table)
    # Table names come from the models, nothing from input.
    head = f"(SELECT last_sequence FROM {head_table} WHERE id = 1)"  # noqa: S608
    sql = f"SELECT {head}, MIN(sequence), COUNT(*) FROM {entry_table} WHERE sequence > COALESCE({head}, 0)"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        current_head, first, count = cursor.fetchone()
    return beyond_head_break(first, count, current_head) if count else None


def _counted[T](items: Iterable[T], total: int, progress: Callable[[int, int], None], start: int = 0) -> Iterator[T]:
    """`items` as they are walked, telling `progress(walked, total)` after each one (`start` walked before)."""
    for walked, item in enumerate(items, start=start + 1):
        yield item
        progress(walked, total)


def audit_verify(progress: Callable[[int, int], None] | None = None) -> ChainReport:
    """Walk the chain up to the stored head, compare its end with the head, then look past it.

    Names the first broken entry. The walk stops at the head read before it, so entries
    appended meanwhile (with their head) are neither walked nor mistaken for strays; rows past
    the head as it is now were written without moving it. `progress(walked, total)` is told as
    the walk goes (the background job's progress bar): after each entry, or on PostgreSQL after
    each batch the database hashed; `total` is the head's sequence.
    """
    with _tolerant_text():
        head = _stored_head()
        if isinstance(head, ChainBreak):
            return ChainReport(0, head)
        up_to = head.last_sequence if head else 0
        walk = _walk_in_database if _hashed_by_database() else _walk_in_python
        walked = walk(up_to, progress)
        report = walked if isinstance(walked, ChainReport) else chain_end(walked, head)
    if not report.intact:
        return report
    stray = _first_beyond_current_head()
    if stray is not None:
        return ChainReport(report.checked, stray)
    return report


def audit_entries_for_subject(subject_code: str) -> QuerySet[AuditEntry]:
    """Every entry about one subject, oldest first (the caller has checked access)."""
    return AuditEntry.objects.filter(subject_code=subject_code).order_by("sequence")


def entity_ids_changed_since(entity: str, since: datetime) -> set[str]:
    """The ids of the records of `entity` that an entry after `since` created or changed: the API's
    incremental reads ask the audit trail, the one record of every change."""
    rows = AuditEntry.objects.filter(occurred_at__gt=since, entity=entity).values_list("entity_id", flat=True)
    return set(rows.distinct())


def records_changed_since(
    *, since: datetime, subject_codes: Iterable[str], entities: Iterable[str]
) -> set[tuple[str, str]]:
    """The records (entity, entity id) of these subjects that an entry after `since` created or
    changed: the audit trail is the one record of every change, so an incremental export asks it."""
    rows = AuditEntry.objects.filter(
        occurred_at__gt=since, subject_code__in=list(subject_codes), entity__in=list(entities)
    ).values_list("entity", "entity_id")
    return set(rows.distinct())


def entry_changes(entry: AuditEntry) -> list[dict[str, Any]]:
    """The decoded field changes of one entry."""
    changes: list[dict[str, Any]] = json.loads(entry.changes_json)
    return changes


def first_entries(event: str, subject_codes: Sequence[str]) -> dict[str, AuditEntry]:
    """The first entry of `event` about each of these subjects (for `subject.created`: its registration:
    who, where, when), in one query."""
    found: dict[str, AuditEntry] = {}
    for entry in AuditEntry.objects.filter(event=event, subject_code__in=list(subject_codes)).order_by("sequence"):
        found.setdefault(entry.subject_code, entry)
    return found


def actors_about(subject_codes: Sequence[str], *, entities: Sequence[str], events: Sequence[str]) -> set[str]:
    """The usernames of whoever wrote an entry of these entities or events about these subjects."""
    about = AuditEntry.objects.filter(subject_code__in=list(subject_codes))
    written = about.filter(Q(entity__in=list(entities)) | Q(event__in=list(events)))
    return set(written.values_list("actor_username", flat=True).distinct())


def subject_codes_changed_since(since: datetime) -> QuerySet[AuditEntry, str]:
    """The codes of the subjects about which an entry after `since` was written (any record of the
    subject created or changed, or a refused attempt on it), as a subquery: a subject's incremental
    read asks the audit trail, the one record of every change."""
    rows = AuditEntry.objects.filter(occurred_at__gt=since).exclude(subject_code="")
    return rows.values_list("subject_code", flat=True).distinct()
