"""Lab observations: value, unit, the lab's reference range, the assay's LoQ, sample time."""

from __future__ import annotations

from django.db import models


class LabObservation(models.Model):
    """One lab result of one subject; screening labs, safety counts and kinetic markers alike."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="lab_observations")
    analyte = models.CharField(max_length=32, db_index=True)
    value = models.FloatField(null=True, blank=True, help_text="Empty when the report says '< LoQ'")
    unit = models.CharField(max_length=20)
    lower_limit = models.FloatField(null=True, blank=True, help_text="Lab's lower limit of normal")
    upper_limit = models.FloatField(null=True, blank=True, help_text="Lab's upper limit of normal")
    limit_of_quantification = models.FloatField(null=True, blank=True)
    sampled_at = models.DateTimeField()
    context = models.CharField(max_length=32, default="", blank=True, help_text="screening, follow_up, import...")
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)

    class Meta:
        ordering = ["sampled_at", "pk"]
        indexes = [models.Index(fields=["subject", "analyte", "sampled_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(value__isnull=False) | models.Q(limit_of_quantification__isnull=False),
                name="lab_observation_value_or_loq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} {self.analyte}={self.value} {self.unit} @ {self.sampled_at:%Y-%m-%d}"


class ScreeningRecord(models.Model):
    """What screening found for one subject (SLE findings, treatment history...); labs live in LabObservation.

    One row per subject, corrected in place with a reason once saved (the audit trail keeps every
    version's changes); `data_json` holds the items of `domain.screening.SCREENING_FIELDS`, None
    for an item not assessed yet.
    """

    subject = models.OneToOneField("subjects.Subject", on_delete=models.PROTECT, related_name="screening_record")
    data_json = models.JSONField(default=dict)
    attestations_json = models.JSONField(default=dict, blank=True)
    revision = models.PositiveIntegerField(default=1)
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    first_recorded_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"screening of {self.subject_id} (revision {self.revision})"
