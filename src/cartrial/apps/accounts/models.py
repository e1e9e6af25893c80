"""Users, memberships and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower

from cartrial.domain.roles import Role


class CaseInsensitiveUserManager(UserManager["User"]):
    """Finds a person by username in any case: the login form and the backends go through here."""

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A person using cartrial; what they may do depends on their memberships.

    The username is kept as typed and unique whatever its case (database constraint), so one
    person cannot hold two accounts by changing case (domain/usernames.py).
    """

    language = models.CharField(max_length=8, blank=True, help_text="Preferred UI language; empty = center's")
    # A suspended person is inactive (no sign-in, no session, no token) until reinstated; who and
    # why are in the audit trail, the instant and reason here for the administration page.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True)

    objects: ClassVar[CaseInsensitiveUserManager] = CaseInsensitiveUserManager()

    class Meta(AbstractUser.Meta):
        constraints = [models.UniqueConstraint(Lower("username"), name="user_username_unique_any_case")]


def membership_current(now: datetime, prefix: str = "") -> models.Q:
    """The filter of the memberships in force at `now`: no end, or an end still to come. The access
    entry point, the alerts' recipients and the header read memberships through it."""
    return models.Q(**{f"{prefix}ends_at__isnull": True}) | models.Q(**{f"{prefix}ends_at__gt": now})


class Membership(models.Model):
    """One role of one user at one center (DESIGN §1: one role per center)."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    center = models.ForeignKey("trial.Center", on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=32, choices=[(r.value, r.value) for r in Role])
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Access ends at this instant (the midnight after its last day at the center)"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "center"], name="membership_one_role_per_center")]

    def __str__(self) -> str:
        return f"{self.user.username} @ {self.center.code} as {self.role}"


class ApiToken(models.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    label = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="First characters, to recognise a token in lists")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(help_text="Refused from this instant on, like a revoked token")
    revoked = models.BooleanField(default=False)


class ElectronicSignature(models.Model):
    """A 21 CFR Part 11 style signature: who, meaning, when, and the hash of what was signed.

    Never edited nor deleted. A correction of what it covers voids it (who, when, why) and the
    corrected record is signed again: `superseded_by` is that new signature, which the record
    now points to (docs/corrections.md).
    """

    signer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="signatures")
    signer_name = models.CharField(max_length=200, help_text="Printed name at signing time")
    role = models.CharField(max_length=32)
    center_code = models.CharField(max_length=16)
    meaning = models.CharField(max_length=300)
    signed_at = models.DateTimeField()
    entity = models.CharField(max_length=48)
    entity_id = models.CharField(max_length=64)
    content_sha256 = models.CharField(max_length=64)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    void_reason = models.TextField(blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(voided_at__isnull=True) | ~models.Q(void_reason=""),
                name="signature_void_has_reason",
            )
        ]

    def __str__(self) -> str:
        return f"{self.signer_name}: {self.meaning} ({self.signed_at:%Y-%m-%d %H:%M} UTC)"

    @property
    def void(self) -> bool:
        return self.voided_at is not None
