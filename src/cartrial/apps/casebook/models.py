"""The casebook of each subject: visits done or missed, one record per form and visit, data queries.

Old values are not kept in these tables: every change is an audit entry (old → new, who, when,
why), the one store of history (ADR 0004); a form's item history is read from there.
"""

from __future__ import annotations

from django.db import models

from cartrial.domain.casebook import QueryOrigin, QueryStatus
from cartrial.domain.ecrf import FormStatus


class VisitRecord(models.Model):
    """A visit of the schedule (or an unscheduled one) that took place on a date, or was missed."""

    class Outcome(models.TextChoices):
        DONE = "done"
        MISSED = "missed"

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="visit_records")
    visit_code = models.CharField(max_length=16)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    done_on = models.DateField(null=True, blank=True)
    missed_reason = models.TextField(blank=True)
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "visit_code"], name="visit_record_unique"),
            models.CheckConstraint(
                condition=(models.Q(outcome="done") & models.Q(done_on__isnull=False))
                | (models.Q(outcome="missed") & models.Q(done_on__isnull=True)),
                name="visit_record_done_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} {self.visit_code} {self.outcome}"


class FormRecord(models.Model):
    """One form of one visit of one subject: its values (JSON), status and the protocol version it
    was captured under (an amendment adds forms or items without touching this record)."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="form_records")
    visit_code = models.CharField(max_length=16)
    form_code = models.CharField(max_length=48)
    status = models.CharField(max_length=12, choices=[(s.value, s.value) for s in FormStatus])
    values_json = models.JSONField(default=dict)
    verified_json = models.JSONField(default=dict, help_text="item → {by, at} of its source-data verification")
    observations_json = models.JSONField(default=dict, help_text="lab item → id of its LabObservation")
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)
    revision = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "visit_code", "form_code"], name="form_record_unique"),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.subject_id} {self.visit_code}/{self.form_code} ({self.status})"


class CasebookSignature(models.Model):
    """The investigator's signature of a subject's casebook; voided (kept) when a form is unlocked."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="casebook_signatures")
    signature = models.OneToOneField("accounts.ElectronicSignature", on_delete=models.PROTECT, related_name="+")
    forms_signed = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"casebook of {self.subject_id} signed ({self.signature_id})"


class Query(models.Model):
    """A data query on one item of one form of one visit, raised by a person or by an edit check."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="queries")
    visit_code = models.CharField(max_length=16)
    form_code = models.CharField(max_length=48)
    item = models.CharField(max_length=96)
    origin = models.CharField(max_length=12, choices=[(o.value, o.value) for o in QueryOrigin])
    check_code = models.CharField(max_length=64, blank=True, help_text="The edit check of an automatic query")
    status = models.CharField(max_length=12, choices=[(s.value, s.value) for s in QueryStatus])
    text = models.TextField()
    message_json = models.JSONField(
        default=dict, blank=True, help_text="An edit check's message, to show in any language"
    )
    raised_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["status", "raised_at"]),
            models.Index(fields=["subject", "visit_code", "form_code"]),
        ]

    def __str__(self) -> str:
        return f"query {self.pk} on {self.subject_id} {self.visit_code}/{self.form_code}.{self.item} ({self.status})"


class QueryMessage(models.Model):
    """One step of a query's thread: raised, answered, closed, reopened, closed by a correction."""

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    move = models.CharField(max_length=12)
    text = models.TextField(blank=True)
    by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    by_name = models.CharField(max_length=150)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.query_id} {self.move}"
