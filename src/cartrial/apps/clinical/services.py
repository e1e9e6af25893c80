"""Writing lab observations: validated against the catalogue, audited, never in the future."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, audit_record, changes_between
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.clinical.selectors import SCREENING_ANALYTES, SCREENING_CONTEXT, screening_labs
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import EligibilityAssessment, Subject
from cartrial.domain.errors import InvalidInput
from cartrial.domain.lab_catalogue import normalise_unit, validate_lab_value
from cartrial.domain.pathway import State
from cartrial.domain.screening import screening_data_parse
from cartrial.protocols import Protocol


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


# --- screening data ---------------------------------------------------------------------------

SCREENING_STATES = frozenset({State.SCREENING.value, State.ELIGIBLE.value})


@dataclass(frozen=True)
class ScreeningSaved:
    record: ScreeningRecord
    labs: list[LabObservation]
    assessment: EligibilityAssessment


def _same_as_latest(item: LabObservationInput, latest: LabObservation | None) -> bool:
    """A lab re-submitted unchanged with the form is not a new result."""
    if latest is None:
        return False
    return (
        latest.value == item.value
        and latest.unit == normalise_unit(item.unit)
        and latest.lower_limit == item.lower_limit
        and latest.upper_limit == item.upper_limit
        and latest.sampled_at == item.sampled_at
    )


def screening_record(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    data: Mapping[str, object],
    labs: Sequence[LabObservationInput] = (),
    attestations: Mapping[str, str] | None = None,
    reason: str = "",
) -> ScreeningSaved:
    """Store the screening data and labs, then the verdict computed from them: all or nothing.

    The first save needs no reason; any later one corrects saved data and must say why. Labs go
    to the one store of lab observations (context "screening"). Bad input (unknown descriptor,
    negative titre, creatinine in an unknown unit, an attestation for a computed criterion)
    raises before anything is kept.
    """
    if subject.state not in SCREENING_STATES:
        raise InvalidInput("Screening data is entered while the subject is in screening.", code="not_in_screening")
    parsed = screening_data_parse(data)
    attested = dict(attestations or {})
    checked_labs = [replace(item, context=SCREENING_CONTEXT) for item in labs]
    for index, item in enumerate(checked_labs, start=1):
        if item.analyte not in SCREENING_ANALYTES:
            raise InvalidInput(
                f"Result {index}: '{item.analyte}' is not a screening lab (expected: {', '.join(SCREENING_ANALYTES)}).",
                code="unknown_analyte",
            )
    now = clock.now()
    with transaction.atomic():
        locked = Subject.objects.select_for_update().select_related("center", "protocol_version").get(pk=subject.pk)
        record = ScreeningRecord.objects.select_for_update().filter(subject=locked).first()
        latest = screening_labs(subject=locked)
        new_labs = [item for item in checked_labs if not _same_as_latest(item, latest.get(item.analyte))]
        before = (record.data_json | {"attestations": record.attestations_json}) if record else None
        after = parsed | {"attestations": attested}
        changes = changes_between(before, after) if before != after else []
        if record is not None and (changes or new_labs) and not reason.strip():
            raise InvalidInput(
                "The screening data was already saved: give the reason for the correction.", code="reason_required"
            )
        if record is None:
            record = ScreeningRecord.objects.create(
                subject=locked,
                data_json=parsed,
                attestations_json=attested,
                recorded_by=user,
                first_recorded_at=now,
                updated_at=now,
                protocol_version=locked.protocol_version,
            )
        elif changes:
            record.data_json, record.attestations_json = parsed, attested
            record.revision += 1
            record.recorded_by, record.updated_at = user, now
            record.save()
        if changes or before is None:
            audit_record(
                actor=actor,
                event=AuditEvent.SCREENING_DATA_RECORDED,
                entity="screening_record",
                entity_id=str(record.pk),
                subject_code=locked.code,
                center_code=locked.center.code,
                changes=changes_between(before, after) if before is not None else changes_between(None, after),
                reason=reason if before is not None else "",
                is_correction=before is not None,
                now=now,
            )
        stored = lab_observations_record(actor=actor, user=user, subject=locked, observations=new_labs)
        assessment = subject_services.eligibility_assess(actor=actor, user=user, subject=locked, protocol=protocol)
    subject.refresh_from_db()
    return ScreeningSaved(record, stored, assessment)
