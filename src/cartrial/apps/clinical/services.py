"""Clinical writes: lab observations (the one store), screening data with its computed verdict (and its
preview, which writes nothing), re-consent.

Lab values are validated against the catalogue (analyte, unit, plausible range) before anything is
stored; a batch (a CSV import, the screening form's labs) is all or nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from django.db import transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_correction, audit_record, changes_between
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.clinical.selectors import (
    KINETICS_CONTEXT,
    SCREENING_ANALYTES,
    SCREENING_CONTEXT,
    clinical_milestones,
    consent_facts,
    lab_fact,
    screening_evaluation,
    screening_labs,
    subject_birth_date,
    subject_zone,
)
from cartrial.apps.clinical.signals import lab_observations_recorded
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Consent, ConsentWithdrawal, EligibilityAssessment, Subject
from cartrial.domain.chronology import Milestone, chronology_check
from cartrial.domain.corrections import correction_check
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.lab_catalogue import LabValue, normalise_unit, validate_lab_value
from cartrial.domain.pathway import State, is_final
from cartrial.domain.screening import LabFact, ScreeningEvaluation, screening_data_parse
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


def lab_observation_check(
    item: LabObservationInput,
    now: datetime,
    index: int = 1,
    *,
    subject: Subject | None = None,
    birth: date | None = None,
) -> LabValue:
    """What a result must be to be stored (new or corrected): an aware sample time not in the
    future nor before the subject's birth, an analyte and unit of the catalogue, every number within
    the analyte's plausible range, a value or a LoQ, a range in order. `birth` is the subject's
    birth date, read once by the caller (a batch of results checks it against each)."""
    if item.sampled_at.tzinfo is None:
        raise InvalidInput(
            "Result {index}: the sample time needs a time zone.",
            code="naive_datetime",
            item="sampled_at",
            index=index,
        )
    if item.sampled_at > now:
        raise InvalidInput(
            "Result {index}: the sample time is in the future.",
            code="sample_in_future",
            item="sampled_at",
            index=index,
        )
    try:
        value = validate_lab_value(
            analyte=item.analyte,
            value=item.value,
            unit=item.unit,
            lower_limit=item.lower_limit,
            upper_limit=item.upper_limit,
            limit_of_quantification=item.limit_of_quantification,
        )
        if subject is not None and birth is not None:
            sample = Milestone.KINETIC_SAMPLE if item.context == KINETICS_CONTEXT else Milestone.LAB_SAMPLE
            chronology_check(
                {Milestone.BIRTH: birth, sample: item.sampled_at},
                now=now,
                zone=subject_zone(subject),
                entered=[sample],
                items={sample: "sampled_at"},
            )
        return value
    except InvalidInput as error:
        raise InvalidInput(
            "Result {index}: {problem}", code=error.code, item=error.item, index=index, problem=error.message
        ) from None


def lab_observations_record(
    *, actor: Actor, subject: Subject, observations: Sequence[LabObservationInput]
) -> list[LabObservation]:
    """Store a batch of results for one subject: all valid or none stored (e.g. one CSV import).

    Each result: a known analyte in an accepted unit, every number within the analyte's plausible
    range (`domain/lab_catalogue.py`), sampled with a time zone, not in the future, not before birth.
    The apps that react to results (kinetics flags) hear of the batch through
    `signals.lab_observations_recorded`, in this transaction, whichever app entered it.
    """
    now = actor.now
    birth = subject_birth_date(subject)  # decrypted once for the batch
    checked = [
        (item, lab_observation_check(item, now, index, subject=subject, birth=birth))
        for index, item in enumerate(observations, start=1)
    ]
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
                recorded_by_id=actor.recording_user_id,
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
            )
            stored.append(row)
        if stored:
            lab_observations_recorded.send(
                sender=LabObservation, actor=actor, subject=subject, observations=stored, previous=[]
            )
    return stored


# Fields of a stored result that a correction may change (domain.corrections, lab_observation).
LAB_CORRECTABLE_FIELDS = ("value", "unit", "limit_of_quantification", "lower_limit", "upper_limit", "sampled_at")


def _as_input(row: LabObservation) -> LabObservationInput:
    return LabObservationInput(
        analyte=row.analyte,
        value=row.value,
        unit=row.unit,
        sampled_at=row.sampled_at,
        lower_limit=row.lower_limit,
        upper_limit=row.upper_limit,
        limit_of_quantification=row.limit_of_quantification,
        context=row.context,
    )


def lab_observation_correct(
    *, actor: Actor, subject: Subject, observation: LabObservation, field: str, value: object, reason: str
) -> LabObservation:
    """Correct one field of a stored result: the corrected result passes the checks of a new one.

    The old value stays in the audit trail (old → new, who, when, why); the verdict computed from
    a screening lab is recomputed by the caller (`eligibility_assess`). The correction is sent as
    `signals.lab_observations_recorded` with the result as it stood, so a flag it raises is alerted.
    """
    if field not in LAB_CORRECTABLE_FIELDS:
        raise InvalidInput(
            "'{field}' cannot be corrected on a lab result.", code="unknown_field", item="field", field=field
        )
    # The value comes as typed in the correction; it is checked below as a new result's would be.
    change: dict[str, Any] = {field: value}
    corrected = replace(_as_input(observation), **change)
    checked = lab_observation_check(corrected, actor.now, subject=subject, birth=subject_birth_date(subject))
    stored = {
        "value": checked.value,
        "unit": checked.unit,
        "limit_of_quantification": checked.limit_of_quantification,
        "lower_limit": checked.lower_limit,
        "upper_limit": checked.upper_limit,
        "sampled_at": corrected.sampled_at,
    }
    old = getattr(observation, field)
    correction_check(old, stored[field], reason)
    follows = [
        Change(name, getattr(observation, name), new)
        for name, new in stored.items()
        if name != field and getattr(observation, name) != new
    ]
    previous = copy.copy(observation)
    with transaction.atomic():
        for name, new in stored.items():
            setattr(observation, name, new)
        observation.save(update_fields=list(stored))
        audit_correction(
            actor=actor,
            entity="lab_observation",
            entity_id=str(observation.pk),
            field=field,
            old=old,
            new=stored[field],
            reason=reason,
            subject_code=subject.code,
            follows=follows,
        )
        lab_observations_recorded.send(
            sender=LabObservation, actor=actor, subject=subject, observations=[observation], previous=[previous]
        )
    return observation


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
    checked_labs = _screening_labs_checked(labs)
    now = actor.now
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
                "The screening data was already saved: give the reason for the correction.",
                code="reason_required",
                item="reason",
            )
        if record is None:
            record = ScreeningRecord.objects.create(
                subject=locked,
                data_json=parsed,
                attestations_json=attested,
                recorded_by_id=actor.recording_user_id,
                first_recorded_at=now,
                updated_at=now,
                protocol_version=locked.protocol_version,
            )
        elif changes:
            record.data_json, record.attestations_json = parsed, attested
            record.revision += 1
            record.recorded_by_id, record.updated_at = actor.recording_user_id, now
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
            )
        stored = lab_observations_record(actor=actor, subject=locked, observations=new_labs)
        assessment = eligibility_assess(actor=actor, subject=locked, protocol=protocol)
    subject.refresh_from_db()
    return ScreeningSaved(record, stored, assessment)


def _screening_labs_checked(labs: Sequence[LabObservationInput]) -> list[LabObservationInput]:
    """The labs of a screening save or preview, each a screening analyte (refused otherwise)."""
    checked = [replace(item, context=SCREENING_CONTEXT) for item in labs]
    for index, item in enumerate(checked, start=1):
        if item.analyte not in SCREENING_ANALYTES:
            raise InvalidInput(
                "Result {index}: '{analyte}' is not a screening lab (expected: {expected}).",
                code="unknown_analyte",
                item="analyte",
                index=index,
                analyte=item.analyte,
                expected=list(SCREENING_ANALYTES),
            )
    return checked


def screening_preview(
    *,
    subject: Subject,
    protocol: Protocol,
    now: datetime,
    data: Mapping[str, object],
    labs: Sequence[LabObservationInput] = (),
    attestations: Mapping[str, str] | None = None,
) -> ScreeningEvaluation:
    """The verdict the screening data and labs would give, stored nothing: the screening page's live
    preview. The input is checked as a save checks it (the data contract, screening analytes, each
    result's unit, range and time); a lab not given is the one stored."""
    parsed = screening_data_parse(data)
    facts = {analyte: lab_fact(row) for analyte, row in screening_labs(subject=subject).items()}
    birth = subject_birth_date(subject)
    for index, item in enumerate(_screening_labs_checked(labs), start=1):
        value = lab_observation_check(item, now, index, subject=subject, birth=birth)
        sampled_on = item.sampled_at.astimezone(subject_zone(subject)).date()
        facts[value.analyte] = LabFact(
            value.analyte, value.value, value.unit, value.lower_limit, value.upper_limit, sampled_on
        )
    return screening_evaluation(
        subject=subject, protocol=protocol, data=parsed, labs=facts, attestations=dict(attestations or {})
    )


def eligibility_assess(
    *, actor: Actor, subject: Subject, protocol: Protocol, after_correction: bool = False
) -> EligibilityAssessment:
    """Keep the verdict COMPUTED from the stored screening data and labs (after each save, and
    after a correction of what it is computed from, at any stage: the verdict follows the data)."""
    evaluation = screening_evaluation(subject=subject, protocol=protocol)
    verdict = evaluation.verdict
    return subject_services.eligibility_assessment_record(
        actor=actor,
        subject=subject,
        protocol=protocol,
        verdict=verdict.verdict.value,
        result=evaluation.as_dict(),
        failed=verdict.failed(),
        after_correction=after_correction,
    )


def screening_data_correct(
    *, actor: Actor, subject: Subject, field: str, value: object, reason: str
) -> ScreeningRecord:
    """Correct one screening item, read by the screening data contract like the form's save.

    The form corrects during screening; this corrects at any stage (after inclusion the caller
    voids the inclusion signature and signs the recomputed verdict).
    """
    record = ScreeningRecord.objects.select_for_update().filter(subject=subject).first()
    if record is None:
        raise NotFound("No screening data is recorded for {subject}.", code="not_found", subject=subject.code)
    parsed = screening_data_parse(dict(record.data_json) | {field: value})
    old, new = record.data_json.get(field), parsed.get(field)
    correction_check(old, new, reason)
    with transaction.atomic():
        record.data_json = parsed
        record.revision += 1
        record.recorded_by_id, record.updated_at = actor.recording_user_id, actor.now
        record.save(update_fields=["data_json", "revision", "recorded_by", "updated_at"])
        audit_correction(
            actor=actor,
            entity="screening_data",
            entity_id=str(record.pk),
            field=field,
            old=old,
            new=new,
            reason=reason,
            subject_code=subject.code,
            follows=[Change("revision", record.revision - 1, record.revision)],
        )
    return record


# --- re-consent -------------------------------------------------------------------------------------


def consent_reconsent(*, actor: Actor, subject: Subject, protocol: Protocol, language: str, signed_on: date) -> Consent:
    """Record the signature of the current consent version by a subject who signed an older one."""
    if is_final(State(subject.state)):
        raise InvalidInput("The pathway has ended for this subject: no re-consent.", code="pathway_ended")
    if ConsentWithdrawal.objects.filter(subject=subject).exists():
        raise InvalidInput("The subject withdrew consent.", code="consent_withdrawn")
    signed, current = consent_facts(subject, protocol)
    if not signed:
        raise InvalidInput("No consent recorded yet: start screening with the consent.", code="consent_missing")
    if current:
        raise InvalidInput("The subject already signed the current consent version.", code="consent_current")
    version = protocol.current_consent_versions().get(language)
    if version is None:
        raise InvalidInput(
            "No current consent version in '{language}'.",
            code="unknown_consent_version",
            item="language",
            language=language,
        )
    chronology_check(
        {**clinical_milestones(subject), Milestone.RECONSENT: signed_on},
        now=actor.now,
        zone=subject_zone(subject),
        entered=[Milestone.RECONSENT],
        items={Milestone.RECONSENT: "signed_on"},
    )
    return subject_services.consent_record(
        actor=actor,
        subject=subject,
        protocol=protocol,
        document_version=version,
        language=language,
        signed_on=signed_on,
    )
