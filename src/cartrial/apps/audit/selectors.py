"""Reading the audit trail: the chain walk and per-subject history."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast

from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.domain.audit_chain import (
    ChainBreak,
    ChainedContent,
    ChainHead,
    ChainReport,
    UnreadableEntry,
    beyond_head_break,
    read_entry,
    read_head,
    walk_chain,
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
    up_to: int | None = None, batch_size: int = 2000
) -> Iterator[tuple[ChainedContent, str] | UnreadableEntry]:
    """The stored entries in sequence order, read as raw values so that a corrupted row is named.

    On SQLite the time is read as the stored text: the ORM's conversion of a malformed time
    raises (or gives None) before anything could say which entry holds it.
    """
    stored_time = Cast("occurred_at", TextField()) if connection.vendor == "sqlite" else F("occurred_at")
    rows = AuditEntry.objects.annotate(stored_time=stored_time).order_by("sequence", "id")
    if up_to is not None:
        rows = rows.filter(sequence__lte=up_to)
    for values in rows.values_list(*_STORED_FIELDS).iterator(chunk_size=batch_size):
        named = dict(zip(_STORED_FIELDS, values, strict=True))
        named["occurred_at"] = named.pop("stored_time")
        yield read_entry(named)


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


def _counted[T](items: Iterable[T], total: int, progress: Callable[[int, int], None]) -> Iterator[T]:
    """`items` as they are walked, telling `progress(walked, total)` after each one."""
    for walked, item in enumerate(items, start=1):
        yield item
        progress(walked, total)


def audit_verify(progress: Callable[[int, int], None] | None = None) -> ChainReport:
    """Walk the chain up to the stored head, compare its end with the head, then look past it.

    Names the first broken entry. The walk stops at the head read before it, so entries
    appended meanwhile (with their head) are neither walked nor mistaken for strays; rows past
    the head as it is now were written without moving it. `progress(walked, total)` is told of
    each entry walked (the background job's progress bar), `total` being the head's sequence.
    """
    with _tolerant_text():
        head = _stored_head()
        if isinstance(head, ChainBreak):
            return ChainReport(0, head)
        up_to = head.last_sequence if head else 0
        entries = _contents(up_to=up_to)
        report = walk_chain(entries if progress is None else _counted(entries, up_to, progress), head)
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
