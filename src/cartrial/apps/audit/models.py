"""Audit entries: who, role, center, when (UTC), what (entity, field, old → new), why.

Each entry stores the SHA-256 of its own content and of the previous entry, so altering or
deleting any row breaks the chain at that row. On PostgreSQL a trigger refuses UPDATE and
DELETE outright (migration 0002). The chain head row serialises writers.
"""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150)
    role = models.CharField(max_length=32, blank=True)
    center_code = models.CharField(max_length=16, blank=True)
    event = models.CharField(max_length=48)
    entity = models.CharField(max_length=48)
    entity_id = models.CharField(max_length=64)
    # Its index on PostgreSQL has the LIKE variant too: a center's subjects are read by prefix.
    subject_code = models.CharField(max_length=32, blank=True, db_index=True)
    # Canonical JSON text (sorted keys), hashed exactly as stored: a JSON column could
    # reorder keys or renormalise numbers and break the hash on another engine.
    changes_json = models.TextField(default="[]")
    reason = models.TextField(blank=True)
    previous_hash = models.CharField(max_length=64)
    # Not indexed: the chain is walked by sequence, never looked up by hash.
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]
        constraints = [models.CheckConstraint(condition=models.Q(sequence__gte=1), name="audit_sequence_positive")]
        # Every index is paid by every audited write (ADR 0006): these four serve the readers' filters
        # (center, event, a record's history) and the incremental reads (`since`: which records of
        # an entity changed after an instant); plain B-trees, without PostgreSQL's LIKE variant.
        indexes = [
            models.Index(fields=["entity", "occurred_at"], name="audit_entity_time"),
            models.Index(fields=["center_code"], name="audit_center"),
            models.Index(fields=["event"], name="audit_event"),
            models.Index(fields=["entity_id"], name="audit_entity_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event} {self.entity}:{self.entity_id}"


class AuditChainHead(models.Model):
    """One row holding the last sequence and hash; locked by each writer to keep the chain linear."""

    last_sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
