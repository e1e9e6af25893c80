"""A daily CRS/ICANS assessment after the infusion: its inputs, the grades they gave, who recorded it.

The grades are stored with the inputs and the protocol version they were computed under (a record
keeps what it was captured under); a correction changes inputs and grades together, audited.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from cartrial.domain.scores.crs import Hypotension, Hypoxia
from cartrial.domain.scores.icans import CerebralEdema, Consciousness, MotorWeakness, Seizure
from cartrial.domain.toxicity import INPUT_NAMES


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


class ToxicityAssessment(models.Model):
    """One day's ASTCT assessment of one subject (one per day from D0)."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="toxicity_assessments")
    assessed_on = models.DateField(help_text="The center's calendar date of the assessment")
    day = models.IntegerField(help_text="Days from the infusion (D0 = 0)")
    temperature_c = models.FloatField()
    hypotension = models.CharField(max_length=24, choices=_choices(Hypotension))
    hypoxia = models.CharField(max_length=24, choices=_choices(Hypoxia))
    ice_score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: ICE not performed")
    consciousness = models.CharField(max_length=24, choices=_choices(Consciousness))
    seizure = models.CharField(max_length=24, choices=_choices(Seizure))
    motor_weakness = models.CharField(max_length=24, choices=_choices(MotorWeakness))
    cerebral_edema = models.CharField(max_length=24, choices=_choices(CerebralEdema))
    tocilizumab_given = models.BooleanField()
    corticosteroids_given = models.BooleanField()
    crs_grade = models.PositiveSmallIntegerField()
    icans_grade = models.PositiveSmallIntegerField()
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "day"], name="toxicity_assessment_one_per_day"),
            models.CheckConstraint(condition=models.Q(day__gte=0), name="toxicity_assessment_from_d0"),
            models.CheckConstraint(
                condition=models.Q(crs_grade__lte=5) & models.Q(icans_grade__lte=4),
                name="toxicity_assessment_grades",
            ),
            models.CheckConstraint(
                condition=models.Q(ice_score__isnull=True) | models.Q(ice_score__lte=10),
                name="toxicity_assessment_ice_score",
            ),
        ]
        ordering = ["subject", "day"]

    def __str__(self) -> str:
        return f"{self.subject_id} D{self.day}: CRS {self.crs_grade}, ICANS {self.icans_grade}"

    def inputs(self) -> dict[str, Any]:
        """The stored inputs, as the domain reads and the audit trail keeps them."""
        return {name: getattr(self, name) for name in INPUT_NAMES}
