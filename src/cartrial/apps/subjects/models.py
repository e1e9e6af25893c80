"""Subjects and what happened to them along the pathway."""

from __future__ import annotations

from django.db import models

from cartrial.domain.pathway import State, Step


class SubjectCodeCounter(models.Model):
    """Last number given at a center; locked by the creating transaction so codes have no gap."""

    center = models.OneToOneField("trial.Center", on_delete=models.PROTECT, related_name="subject_counter")
    last_number = models.PositiveIntegerField(default=0)


class Subject(models.Model):
    """A patient in the trial, known to the sponsor only by a pseudonymous code (BDX-001)."""

    center = models.ForeignKey("trial.Center", on_delete=models.PROTECT, related_name="subjects")
    manufacturing_site = models.ForeignKey(
        "trial.Center", on_delete=models.PROTECT, related_name="manufactured_subjects", null=True, blank=True
    )
    number = models.PositiveIntegerField()
    code = models.CharField(max_length=16, unique=True)
    state = models.CharField(max_length=32, choices=[(s.value, s.value) for s in State], default=State.PRE_SCREENING)
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)
    synthetic = models.BooleanField(default=False, help_text="Demo data, not a real patient")
    created_at = models.DateTimeField()
    # Dates set by pathway steps (planned or done apheresis, D0); the logistics facts the guards
    # read come from the logistics records (logistics.selectors.logistics_facts).
    apheresis_date = models.DateField(null=True, blank=True)
    infusion_date = models.DateField(null=True, blank=True)
    state_changed_at = models.DateTimeField()

    class Meta:
        ordering = ["center__code", "number"]
        constraints = [
            models.UniqueConstraint(fields=["center", "number"], name="subject_number_unique_per_center"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="subject_number_positive"),
        ]

    def __str__(self) -> str:
        return self.code


class SubjectIdentity(models.Model):
    """Who the patient is, encrypted at rest (Fernet); only the center's staff may read it."""

    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, related_name="identity")
    ciphertext = models.TextField()
    # Keyed digest of the center and the hospital number (identity_crypto.hospital_number_digests):
    # finds a second registration of the same patient at a center without decrypting anything.
    hospital_number_digest = models.CharField(max_length=64, null=True, blank=True, db_index=True)  # noqa: DJ001

    class Meta:
        # The digest includes the center's code, so one digest is one hospital number at one center.
        constraints = [
            models.UniqueConstraint(fields=["hospital_number_digest"], name="hospital_number_once_per_center")
        ]


class Consent(models.Model):
    """A signed informed consent: which document version, in which language, obtained by whom, when."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="consents")
    document_version = models.CharField(max_length=10)
    language = models.CharField(max_length=8)
    signed_on = models.DateField()
    obtained_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["recorded_at"]


class EligibilityAssessment(models.Model):
    """A verdict per criterion and overall, under the protocol version in force."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="eligibility_assessments")
    verdict = models.CharField(max_length=16)
    result_json = models.JSONField()
    assessed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()
    protocol_version = models.ForeignKey("trial.ProtocolVersion", on_delete=models.PROTECT)

    class Meta:
        ordering = ["assessed_at", "pk"]


class PathwayEvent(models.Model):
    """One step performed on a subject: the timeline of the pathway."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="pathway_events")
    step = models.CharField(max_length=40, choices=[(s.value, s.value) for s in Step])
    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=32)
    center_code = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    signature = models.ForeignKey("accounts.ElectronicSignature", on_delete=models.PROTECT, null=True, blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]


class ConsentWithdrawal(models.Model):
    """A subject's withdrawal of consent: when, why, who recorded it, and which steps it stopped."""

    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, related_name="consent_withdrawal")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="+")
    withdrawn_on = models.DateField()
    reason = models.TextField()
    stops = models.JSONField(default=list, help_text="Steps (and data collection) that the withdrawal stopped")
    exited_study = models.BooleanField()
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
