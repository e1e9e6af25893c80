"""Reading the audit trail: the chain walk and per-subject history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from cartrial.apps.audit.models import AuditEntry
from cartrial.domain.audit_chain import ChainedContent, ChainReport, walk_chain


def _contents(batch_size: int = 2000) -> Iterator[tuple[ChainedContent, str]]:
    for row in AuditEntry.objects.order_by("sequence").iterator(chunk_size=batch_size):
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


def audit_verify() -> ChainReport:
    """Walk the whole chain from the first entry; names the first broken one."""
    return walk_chain(_contents())


def audit_entries_for_subject(subject_code: str) -> QuerySet[AuditEntry]:
    """Every entry about one subject, oldest first (the caller has checked access)."""
    return AuditEntry.objects.filter(subject_code=subject_code).order_by("sequence")


def entry_changes(entry: AuditEntry) -> list[dict[str, Any]]:
    """The decoded field changes of one entry."""
    changes: list[dict[str, Any]] = json.loads(entry.changes_json)
    return changes
