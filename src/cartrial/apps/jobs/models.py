"""A job: one long piece of work a user asked for, run by the queue's worker, with its progress and outcome.

The queue (django-tasks' database backend, ADR 0005) keeps its own row per task; this record is
what people read: which kind, with which parameters, who asked, where it stands (progress and a
message), and what came of it (a JSON result and/or a file, or the error).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    kind = models.CharField(max_length=48)
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress_percent = models.PositiveSmallIntegerField(default=0)
    # Message data (`domain.text.message_data`): shown again in each reader's language.
    progress_message = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_file = models.BinaryField(null=True, blank=True)
    result_file_name = models.CharField(max_length=120, blank=True)
    result_file_type = models.CharField(max_length=80, blank=True)
    # A refusal's message data when the work raised a DomainError; else the exception's one line.
    error_message = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_traceback = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    requester_role = models.CharField(max_length=32, blank=True)
    task_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requested_by", "created_at"], name="job_requester_created")]
        constraints = [
            models.CheckConstraint(condition=Q(progress_percent__lte=100), name="job_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
