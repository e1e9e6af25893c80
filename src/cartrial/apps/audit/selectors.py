"""Reading the audit trail: the chain walk and per-subject history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.domain.audit_chain import (
    ChainBreak,
    ChainedContent,
    ChainHead,
    ChainReport,
    beyond_head_break,
    walk_chain,
)


def _contents(up_to: int | None = None, batch_size: int = 2000) -> Iterator[tuple[ChainedContent, str]]:
    rows = AuditEntry.objects.order_by("sequence")
    if up_to is not None:
        rows = rows.filter(sequence__lte=up_to)
    for row in rows.iterator(chunk_size=batch_size):
        yield (
            ChainedContent(
                sequence=row.sequence,
                occurred_at=row.occurred_at,
                actor_id=row.actor_id,
                actor_username=row.actor_username,
                role=row.role,
                center_code=row.center_code,
                event=row.event,
                entity=row.entity,
                entity_id=row.entity_id,
                subject_code=row.subject_code,
                changes_json=row.changes_json,
                reason=row.reason,
                previous_hash=row.previous_hash,
            ),
            row.entry_hash,
        )


def _stored_head() -> ChainHead | None:
    row = AuditChainHead.objects.filter(pk=1).values_list("last_sequence", "last_hash").first()
    return None if row is None else ChainHead(last_sequence=row[0], last_hash=row[1])


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


def audit_verify() -> ChainReport:
    """Walk the chain up to the stored head, compare its end with the head, then look past it.

    Names the first broken entry. The walk stops at the head read before it, so entries
    appended meanwhile (with their head) are neither walked nor mistaken for strays; rows past
    the head as it is now were written without moving it.
    """
    head = _stored_head()
    report = walk_chain(_contents(up_to=head.last_sequence if head else 0), head)
    if not report.intact:
        return report
    stray = _first_beyond_current_head()
    if stray is not None:
        return ChainReport(report.checked, stray)
    return report


def audit_entries_for_subject(subject_code: str) -> QuerySet[AuditEntry]:
    """Every entry about one subject, oldest first (the caller has checked access)."""
    return AuditEntry.objects.filter(subject_code=subject_code).order_by("sequence")


def entry_changes(entry: AuditEntry) -> list[dict[str, Any]]:
    """The decoded field changes of one entry."""
    changes: list[dict[str, Any]] = json.loads(entry.changes_json)
    return changes
