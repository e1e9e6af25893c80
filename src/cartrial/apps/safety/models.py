"""Adverse events of each subject, the SAE reports sent to the sponsor and the investigator's DLT
assessments. Old values are not kept here: every change is an audit entry (ADR 0004)."""

from __future__ import annotations

from enum import StrEnum

from django.db import models

from cartrial.domain.safety.adverse_events import ActionTaken, Outcome, Relatedness
from cartrial.domain.safety.sae_clock import ReportKind


def _choices(enum: type[StrEnum]) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


class AdverseEvent(models.Model):
    """One AE: CTCAE term and grade (with the version), seriousness, relatedness, dates, outcome."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="adverse_events")
    term = models.CharField(max_length=64, help_text="Code of the CTCAE term list (domain/safety/ctcae_terms.json)")
    ctcae_version = models.CharField(max_length=8)
    grade = models.PositiveSmallIntegerField()
    serious = models.BooleanField(default=False)
    seriousness_criteria = models.JSONField(default=list, blank=True)
    awareness_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    relatedness_cart = models.CharField(max_length=16, choices=_choices(Relatedness), blank=True)
    relatedness_ld = models.CharField(max_length=16, choices=_choices(Relatedness), blank=True)
    relatedness_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    relatedness_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=24, choices=_choices(ActionTaken))
    outcome = models.CharField(max_length=24, choices=_choices(Outcome))
    aesi = models.CharField(max_length=32, blank=True, help_text="AE-of-special-interest category, from the term")
    source_form_record = models.ForeignKey(
        "casebook.FormRecord", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source_item = models.CharField(max_length=96, blank=True)
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The same lab value is recorded as an AE once.
            models.UniqueConstraint(
                fields=["source_form_record", "source_item"],
                condition=models.Q(source_form_record__isnull=False),
                name="adverse_event_lab_source_unique",
            ),
            models.CheckConstraint(condition=models.Q(grade__gte=1, grade__lte=5), name="adverse_event_grade_1_5"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="adverse_event_end_not_before_start",
            ),
        ]
        indexes = [models.Index(fields=["subject", "start_date"]), models.Index(fields=["serious"])]

    def __str__(self) -> str:
        return f"AE {self.pk} {self.term} grade {self.grade} ({self.subject_id})"


class AdverseEventLabSource(models.Model):
    """A lab value (form record and item) covered by an AE recorded from a lab-proposed episode:
    each value belongs to one AE at most, so an episode is never proposed or recorded twice. The AE's
    own `source_form_record`/`source_item` is the episode's worst value."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="lab_sources")
    form_record = models.ForeignKey("casebook.FormRecord", on_delete=models.PROTECT, related_name="+")
    item = models.CharField(max_length=96)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["form_record", "item"], name="adverse_event_lab_source_value_unique")
        ]
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.form_record_id}.{self.item} of AE {self.adverse_event_id}"


class SaeReport(models.Model):
    """A report of a serious AE sent to the sponsor: initial, follow-up or final."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="sae_reports")
    kind = models.CharField(max_length=12, choices=_choices(ReportKind))
    sent_at = models.DateTimeField()
    sent_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} report of AE {self.adverse_event_id}"


class DltAssessment(models.Model):
    """The investigator's signed decision on a DLT candidate: confirmed or ruled out, under a rule.

    The decision in force is the one whose signature is not void: correcting the AE voids it (the
    signature covers the AE's values) and the candidate is decided again."""

    class Decision(models.TextChoices):
        CONFIRMED = "confirmed"
        RULED_OUT = "ruled_out"

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="dlt_assessments")
    rule_code = models.CharField(max_length=64)
    decision = models.CharField(max_length=12, choices=Decision.choices)
    comment = models.TextField(blank=True)
    signature = models.OneToOneField("accounts.ElectronicSignature", on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"DLT {self.decision} for AE {self.adverse_event_id} ({self.rule_code})"
