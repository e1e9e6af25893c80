"""An alert: what happened to a subject, who must act, where the record is, and its acknowledgement."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from cartrial.domain.alerts import AlertKind, Severity


class Alert(models.Model):
    """One alert on one subject. Its text is message data (`params`), rendered in each reader's
    language from the kind's msgid; `roles` are the roles that must act, written `,a,b,` so that a
    role is found with one `contains` on every database engine."""

    kind = models.CharField(max_length=32, choices=[(k.value, k.value) for k in AlertKind])
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="alerts")
    center = models.ForeignKey("trial.Center", on_delete=models.PROTECT, related_name="alerts")
    severity = models.CharField(max_length=16, choices=[(s.value, s.value) for s in Severity])
    params = models.JSONField(default=dict)
    link = models.CharField(max_length=300)
    roles = models.CharField(max_length=200)
    key = models.CharField(max_length=120, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    raised_by = models.CharField(max_length=150)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["center", "acknowledged_at"], name="alert_center_open")]
        constraints = [
            # The same kind + subject + key is open once (raise_alert's idempotency, race-safe).
            models.UniqueConstraint(
                fields=["kind", "subject", "key"],
                condition=Q(acknowledged_at__isnull=True),
                name="alert_open_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_id} {self.key}"

    @property
    def acting_roles(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]
