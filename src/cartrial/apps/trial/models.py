"""Centers (hospitals and the manufacturing lab) and the protocol versions in use."""

from __future__ import annotations

from django.db import models


class Center(models.Model):
    class Kind(models.TextChoices):
        CLINICAL = "clinical", "Clinical center"
        MANUFACTURING = "manufacturing", "Manufacturing lab"
        SPONSOR = "sponsor", "Sponsor"

    code = models.CharField(max_length=8, unique=True, help_text="Prefix of subject codes, e.g. BDX")
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    time_zone = models.CharField(max_length=64, default="Europe/Paris")
    language = models.CharField(max_length=8, default="fr")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CLINICAL)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(code__regex=r"^[A-Z]{2,6}$"), name="center_code_upper_letters"),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"


class ProtocolVersion(models.Model):
    """A protocol version as registered in this database; records point to the one they used."""

    study_code = models.CharField(max_length=20)
    version = models.CharField(max_length=10)
    file_sha256 = models.CharField(max_length=64)
    registered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study_code", "version"], name="protocol_version_unique")]

    def __str__(self) -> str:
        return f"{self.study_code} v{self.version}"
