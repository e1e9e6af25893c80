"""Writing lab observations: validated against the catalogue, audited, never in the future."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_record, changes_between
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.models import Subject
from cartrial.domain.errors import InvalidInput
from cartrial.domain.lab_catalogue import validate_lab_value


@dataclass(frozen=True)
class LabObservationInput:
    analyte: str
    value: float | None
    unit: str
    sampled_at: datetime
    lower_limit: float | None = None
    upper_limit: float | None = None
    limit_of_quantification: float | None = None
    context: str = ""


def lab_observations_record(
    *, actor: Actor, user: User, subject: Subject, observations: Sequence[LabObservationInput]
) -> list[LabObservation]:
    """Store a batch of results for one subject: all valid or none stored (e.g. one CSV import)."""
    now = clock.now()
    checked = []
    for index, item in enumerate(observations, start=1):
        if item.sampled_at.tzinfo is None:
            raise InvalidInput(f"Result {index}: the sample time needs a time zone.", code="naive_datetime")
        if item.sampled_at > now:
            raise InvalidInput(f"Result {index}: the sample time is in the future.", code="sample_in_future")
        try:
            value = validate_lab_value(
                analyte=item.analyte,
                value=item.value,
                unit=item.unit,
                lower_limit=item.lower_limit,
                upper_limit=item.upper_limit,
                limit_of_quantification=item.limit_of_quantification,
            )
        except InvalidInput as error:
            raise InvalidInput(f"Result {index}: {error.message}", code=error.code) from None
        checked.append((item, value))
    stored = []
    with transaction.atomic():
        for item, value in checked:
            row = LabObservation.objects.create(
                subject=subject,
                analyte=value.analyte,
                value=value.value,
                unit=value.unit,
                lower_limit=value.lower_limit,
                upper_limit=value.upper_limit,
                limit_of_quantification=value.limit_of_quantification,
                sampled_at=item.sampled_at,
                context=item.context,
                recorded_by=user,
                recorded_at=now,
                protocol_version=subject.protocol_version,
            )
            audit_record(
                actor=actor,
                event=AuditEvent.LAB_OBSERVATION_RECORDED,
                entity="lab_observation",
                entity_id=str(row.pk),
                subject_code=subject.code,
                center_code=subject.center.code,
                changes=changes_between(
                    None,
                    {
                        "analyte": value.analyte,
                        "value": value.value,
                        "unit": value.unit,
                        "lower_limit": value.lower_limit,
                        "upper_limit": value.upper_limit,
                        "limit_of_quantification": value.limit_of_quantification,
                        "sampled_at": item.sampled_at.isoformat(),
                    },
                ),
                now=now,
            )
            stored.append(row)
    return stored
