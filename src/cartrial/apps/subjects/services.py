"""Subject writes: registration, identity, consents, eligibility assessments, pathway events.

The subjects app owns these records; other apps write them only through these functions. Each
runs inside the caller's transaction when there is one (the pathway engine's), and audits the
record it changes with the action's actor, whose `now` is the one time of the action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_correction, audit_record, changes_between
from cartrial.apps.subjects.identity_crypto import (
    hospital_number_digests,
    identity_decrypt,
    identity_encrypt,
    identity_under_newest_key,
)
from cartrial.apps.subjects.models import (
    Consent,
    ConsentWithdrawal,
    EligibilityAssessment,
    PathwayEvent,
    Subject,
    SubjectCodeCounter,
    SubjectIdentity,
)
from cartrial.apps.trial.models import Center, ProtocolVersion
from cartrial.domain.chronology import Milestone, chronology_check
from cartrial.domain.corrections import correction_check
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import State
from cartrial.domain.patient_identity import hospital_number_key, patient_identity_check
from cartrial.protocols import Protocol


@dataclass(frozen=True)
class IdentityInput:
    family_name: str
    given_names: str
    birth_date: date
    hospital_number: str


def local_today(center: Center, now: datetime) -> date:
    """Today's date at the center: clinical dates are the center's local dates."""
    return now.astimezone(ZoneInfo(center.time_zone)).date()


def protocol_version_of(protocol: Protocol) -> ProtocolVersion:
    """The database row of the protocol in force (registered by `cartrial demo`/set-up)."""
    version = ProtocolVersion.objects.filter(study_code=protocol.code, version=protocol.version).first()
    if version is None:
        raise InvalidInput(
            "Protocol {study} v{version} is not registered in this database (run the set-up or the demo).",
            code="protocol_not_registered",
            study=protocol.code,
            version=protocol.version,
        )
    return version


def _checked_identity(identity: IdentityInput, center: Center, now: datetime) -> dict[str, str]:
    return patient_identity_check(
        family_name=identity.family_name,
        given_names=identity.given_names,
        birth_date=identity.birth_date,
        hospital_number=identity.hospital_number,
        today=local_today(center, now),
    ).as_stored()


def _refuse_duplicate_hospital_number(center: Center, hospital_number: str, *, besides: Subject | None = None) -> str:
    """The digest to store; refuses a hospital number already registered at the center."""
    digests = hospital_number_digests(center.code, hospital_number_key(hospital_number))
    taken = SubjectIdentity.objects.filter(subject__center=center, hospital_number_digest__in=digests)
    if besides is not None:
        taken = taken.exclude(subject=besides)
    existing = taken.select_related("subject").first()
    if existing is not None:
        raise InvalidInput(
            "The hospital number {hospital_number} is already registered at {center} (subject {subject}).",
            code="duplicate_hospital_number",
            item="hospital_number",
            hospital_number=hospital_number,
            center=center.code,
            subject=existing.subject.code,
        )
    return digests[0]


def subject_create(
    *,
    actor: Actor,
    center: Center,
    identity: IdentityInput,
    protocol: Protocol,
    manufacturing_site: Center | None = None,
    synthetic: bool = False,
) -> Subject:
    """Register a patient at `center` with the next code (BDX-001, BDX-002...), never a gap or a twin.

    The center's counter row is locked for the transaction: two coordinators creating a subject
    at the same instant are served one after the other, and a rollback returns the number.
    The same hospital number cannot be registered twice at one center.
    """
    if center.kind != Center.Kind.CLINICAL:
        raise InvalidInput("{center} is not a clinical center.", code="not_a_clinical_center", center=center.code)
    fields = _checked_identity(identity, center, actor.now)
    version = protocol_version_of(protocol)
    if manufacturing_site is None:
        manufacturing_site = manufacturing_site_for(center)
    with transaction.atomic():
        SubjectCodeCounter.objects.get_or_create(center=center)
        counter = SubjectCodeCounter.objects.select_for_update().get(center=center)
        digest = _refuse_duplicate_hospital_number(center, fields["hospital_number"])
        counter.last_number += 1
        counter.save(update_fields=["last_number"])
        code = f"{center.code}-{counter.last_number:03d}"
        subject = Subject.objects.create(
            center=center,
            manufacturing_site=manufacturing_site,
            number=counter.last_number,
            code=code,
            state=State.PRE_SCREENING.value,
            protocol_version=version,
            synthetic=synthetic,
            created_at=actor.now,
            state_changed_at=actor.now,
        )
        SubjectIdentity.objects.create(
            subject=subject, ciphertext=identity_encrypt(fields), hospital_number_digest=digest
        )
        audit_record(
            actor=actor,
            event=AuditEvent.SUBJECT_CREATED,
            entity="subject",
            entity_id=code,
            subject_code=code,
            center_code=center.code,
            # Identity values never enter the audit trail in clear: only which fields were set.
            changes=[
                Change("code", None, code),
                Change("state", None, State.PRE_SCREENING.value),
                Change("protocol_version", None, protocol.version),
                Change("synthetic", None, synthetic),
                Change("identity", None, "recorded (encrypted)"),
            ],
        )
    return subject


def subject_lock(subject: Subject) -> Subject:
    """The subject's row locked for the rest of the transaction: one action on a subject at a time."""
    # `of=("self",)`: PostgreSQL cannot lock the nullable side of the outer join to the manufacturing site.
    locked = (
        Subject.objects.select_for_update(of=("self",))
        .select_related("center", "manufacturing_site")
        .get(pk=subject.pk)
    )
    subject.state = locked.state
    return locked


def manufacturing_site_for(center: Center) -> Center | None:
    """The manufacturing lab that makes the products of `center`'s patients (the trial has one lab)."""
    return Center.objects.filter(kind=Center.Kind.MANUFACTURING, active=True).order_by("code").first()


def subject_identity_correct(*, actor: Actor, subject: Subject, identity: IdentityInput, reason: str) -> None:
    """Correct identity data; a reason is required because the data was already saved.

    The corrected birth date must still precede the consent (`domain.chronology`).
    """
    fields = _checked_identity(identity, subject.center, actor.now)
    consent = subject.consents.order_by("signed_on", "pk").first()
    if consent is not None:
        chronology_check(
            {Milestone.BIRTH: identity.birth_date, Milestone.CONSENT: consent.signed_on},
            now=actor.now,
            zone=ZoneInfo(subject.center.time_zone),
            items={Milestone.BIRTH: "birth_date"},
        )
    with transaction.atomic():
        row = SubjectIdentity.objects.select_for_update().get(subject=subject)
        before = identity_decrypt(row.ciphertext)
        changed = sorted(k for k, v in fields.items() if before.get(k) != v)
        if not changed:
            raise InvalidInput("Nothing changed.", code="no_change")
        digest = _refuse_duplicate_hospital_number(subject.center, fields["hospital_number"], besides=subject)
        audit_record(
            actor=actor,
            event=AuditEvent.SUBJECT_IDENTITY_CHANGED,
            entity="subject_identity",
            entity_id=subject.code,
            subject_code=subject.code,
            center_code=subject.center.code,
            changes=[Change(name, "(encrypted)", "(encrypted)") for name in changed],
            reason=reason,
            is_correction=True,
        )
        row.ciphertext = identity_encrypt(fields)
        row.hospital_number_digest = digest
        row.save(update_fields=["ciphertext", "hospital_number_digest"])


@dataclass(frozen=True)
class IdentityRotation:
    """What one rotation did: identities re-encrypted with the newest key, and those already under it."""

    rekeyed: int
    already_current: int


def identity_key_rotate(*, actor: Actor, batch_size: int = 200) -> IdentityRotation:
    """Re-encrypt every identity with the newest key (the first of CARTRIAL_IDENTITY_KEY) and re-key its
    hospital-number digest, so that the older keys can then be removed from the environment.

    Batches of rows are locked, rewritten and audited one transaction each: an interruption leaves
    every row readable (old rows under a key still configured) and running it again finishes the
    rest, since a row the newest key already opens is left alone. A row no configured key opens
    stops the rotation, naming its subject; the rows before it stay done.
    """
    done = current = 0
    last_id = 0
    while True:
        with transaction.atomic():
            rows = list(
                SubjectIdentity.objects.select_for_update(of=("self",))
                .select_related("subject__center")
                .filter(pk__gt=last_id)
                .order_by("pk")[:batch_size]
            )
            if not rows:
                return IdentityRotation(done, current)
            for row in rows:
                last_id = row.pk
                if identity_under_newest_key(row.ciphertext):
                    current += 1
                    continue
                _identity_rekey(actor, row)
                done += 1


def _identity_rekey(actor: Actor, row: SubjectIdentity) -> None:
    subject = row.subject
    try:
        fields = identity_decrypt(row.ciphertext)
    except ImproperlyConfigured:
        raise InvalidInput(
            "The identity of subject {subject} opens with none of the keys in CARTRIAL_IDENTITY_KEY: add the key it "
            "was encrypted with (after the newest) and run the rotation again.",
            code="identity_key_unknown",
            subject=subject.code,
        ) from None
    row.ciphertext = identity_encrypt(fields)
    if row.hospital_number_digest is not None:
        # A duplicate registered before the digest existed keeps none (migration 0004).
        key = hospital_number_key(str(fields.get("hospital_number", "")))
        row.hospital_number_digest = hospital_number_digests(subject.center.code, key)[0]
    row.save(update_fields=["ciphertext", "hospital_number_digest"])
    audit_record(
        actor=actor,
        event=AuditEvent.SUBJECT_IDENTITY_REKEYED,
        entity="subject_identity",
        entity_id=subject.code,
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[Change("identity", "(encrypted)", "(encrypted with the newest key)")],
    )


# --- consent -------------------------------------------------------------------------------------


def consent_document_check(protocol: Protocol, document_version: str, language: str) -> None:
    """Refuses a consent version the protocol did not issue in that language."""
    issued = {(d.version, d.language) for d in protocol.consent_documents}
    if (document_version, language) not in issued:
        raise InvalidInput(
            "Consent version {version} ({language}) is not a document of the protocol.",
            code="unknown_consent_version",
            item="document_version",
            version=document_version,
            language=language,
        )


def consent_date_check(subject: Subject, signed_on: date, now: datetime) -> None:
    """A consent is signed on a day that has come (new or corrected)."""
    if signed_on > local_today(subject.center, now):
        raise InvalidInput(
            "The consent signature date {signed_on} is in the future.",
            code="consent_date_future",
            item="signed_on",
            signed_on=signed_on,
        )


def consent_record(
    *, actor: Actor, subject: Subject, protocol: Protocol, document_version: str, language: str, signed_on: date
) -> Consent:
    """Record a signed consent; the version must be one the protocol issued in that language."""
    consent_document_check(protocol, document_version, language)
    consent_date_check(subject, signed_on, actor.now)
    with transaction.atomic():
        consent = Consent.objects.create(
            subject=subject,
            document_version=document_version,
            language=language,
            signed_on=signed_on,
            obtained_by_id=actor.recording_user_id,
            recorded_at=actor.now,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.CONSENT_RECORDED,
            entity="consent",
            entity_id=str(consent.pk),
            subject_code=subject.code,
            center_code=subject.center.code,
            changes=changes_between(
                None, {"document_version": document_version, "language": language, "signed_on": signed_on.isoformat()}
            ),
        )
    return consent


def consent_withdrawal_check(*, actor: Actor, subject: Subject, withdrawn_on: date, reason: str) -> Consent:
    """The consent a withdrawal ends, or why the withdrawal cannot be recorded (reason, date, state)."""
    if not reason.strip():
        raise InvalidInput(
            "Give the reason for the withdrawal (as the patient stated it).", code="reason_required", item="reason"
        )
    if withdrawn_on > local_today(subject.center, actor.now):
        raise InvalidInput(
            "The withdrawal date {withdrawn_on} is in the future.",
            code="withdrawal_date_future",
            item="withdrawn_on",
            withdrawn_on=withdrawn_on,
        )
    consent = subject.consents.order_by("-recorded_at", "-pk").first()
    if consent is None:
        raise InvalidInput("No consent is recorded for this subject.", code="consent_missing")
    if ConsentWithdrawal.objects.filter(subject=subject).exists():
        raise InvalidInput("The withdrawal of consent is already recorded.", code="consent_withdrawn")
    if withdrawn_on < consent.signed_on:
        raise InvalidInput(
            "The withdrawal date {withdrawn_on} is before the consent was signed ({signed_on}).",
            code="withdrawal_before_consent",
            item="withdrawn_on",
            withdrawn_on=withdrawn_on,
            signed_on=consent.signed_on,
        )
    return consent


def consent_withdrawal_record(
    *, actor: Actor, subject: Subject, withdrawn_on: date, reason: str, stops: Sequence[str], exited_study: bool
) -> ConsentWithdrawal:
    """Record the withdrawal of consent and what it stops (the exit itself is a pathway step)."""
    consent = consent_withdrawal_check(actor=actor, subject=subject, withdrawn_on=withdrawn_on, reason=reason)
    withdrawal = ConsentWithdrawal.objects.create(
        subject=subject,
        consent=consent,
        withdrawn_on=withdrawn_on,
        reason=reason.strip(),
        stops=list(stops),
        exited_study=exited_study,
        recorded_by_id=actor.recording_user_id,
        recorded_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.CONSENT_WITHDRAWN,
        entity="consent_withdrawal",
        entity_id=str(withdrawal.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=changes_between(
            None,
            {
                "consent_version": consent.document_version,
                "withdrawn_on": withdrawn_on.isoformat(),
                "stops": list(stops),
                "exited_study": exited_study,
            },
        ),
        reason=reason.strip(),
    )
    return withdrawal


# --- eligibility ------------------------------------------------------------------------------------


def eligibility_assessment_record(
    *,
    actor: Actor,
    subject: Subject,
    protocol: Protocol,
    verdict: str,
    result: Mapping[str, Any],
    failed: list[str],
    after_correction: bool = False,
) -> EligibilityAssessment:
    """Keep one computed verdict (per criterion, with the values used) under the protocol in force.

    Assessed during screening, and again at any later stage when what it is computed from is corrected.
    """
    if not after_correction and subject.state not in (State.SCREENING.value, State.ELIGIBLE.value):
        raise InvalidInput("Eligibility is assessed during screening only.", code="not_in_screening")
    assessment = EligibilityAssessment.objects.create(
        subject=subject,
        verdict=verdict,
        result_json=dict(result),
        assessed_by_id=actor.recording_user_id,
        assessed_at=actor.now,
        protocol_version=protocol_version_of(protocol),
    )
    audit_record(
        actor=actor,
        event=AuditEvent.ELIGIBILITY_ASSESSED,
        entity="eligibility_assessment",
        entity_id=str(assessment.pk),
        subject_code=subject.code,
        center_code=subject.center.code,
        changes=[Change("verdict", None, verdict), Change("failed", None, failed)],
    )
    return assessment


# --- pathway ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-friendly form of a recorded value (dates as ISO text)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def pathway_event_record(
    *,
    actor: Actor,
    subject: Subject,
    step: str,
    target: State,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
    dates: Mapping[str, date] | None = None,
    signature_id: int | None = None,
) -> PathwayEvent:
    """Move the (locked) subject to `target` and keep the step in its timeline: one audit entry.

    `dates` are the pathway dates the step sets on the subject (planned apheresis, D0).
    """
    source = subject.state
    changes = [Change("state", source, target.value)]
    for name, value in (dates or {}).items():
        old = getattr(subject, name)
        if old != value:
            changes.append(Change(name, _plain(old), _plain(value)))
            setattr(subject, name, value)
    subject.state = target.value
    subject.state_changed_at = actor.now
    subject.save()
    event = PathwayEvent.objects.create(
        subject=subject,
        step=step,
        from_state=source,
        to_state=target.value,
        occurred_at=actor.now,
        actor_id=actor.recording_user_id,
        role=actor.role,
        center_code=actor.center_code,
        reason=reason,
        details={k: _plain(v) for k, v in (details or {}).items()},
        signature_id=signature_id,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.PATHWAY_STEP,
        entity="subject",
        entity_id=subject.code,
        subject_code=subject.code,
        changes=[*changes, Change("step", None, step)],
        reason=reason,
    )
    return event


# --- corrections ----------------------------------------------------------------------------------


def consent_date_correct(*, actor: Actor, subject: Subject, consent: Consent, signed_on: date, reason: str) -> Consent:
    """Correct the date a consent was signed (checked as a new one); the caller recomputes the verdict
    (the age criterion is the age at consent)."""
    consent_date_check(subject, signed_on, actor.now)
    withdrawal = ConsentWithdrawal.objects.filter(consent=consent).first()
    if withdrawal is not None and withdrawal.withdrawn_on < signed_on:
        raise InvalidInput(
            "The withdrawal date {withdrawn_on} is before the consent was signed ({signed_on}).",
            code="withdrawal_before_consent",
            item="value",
            withdrawn_on=withdrawal.withdrawn_on,
            signed_on=signed_on,
        )
    old = consent.signed_on
    correction_check(old, signed_on, reason)
    consent.signed_on = signed_on
    consent.save(update_fields=["signed_on"])
    audit_correction(
        actor=actor,
        entity="consent",
        entity_id=str(consent.pk),
        field="signed_on",
        old=old,
        new=signed_on,
        reason=reason,
        subject_code=subject.code,
    )
    return consent


# The pathway dates a correction may change on the subject, and the step that set each.
SUBJECT_DATE_RECORDS = {"apheresis_date": "planned_apheresis", "infusion_date": "infusion"}


def subject_date_correct(*, actor: Actor, subject: Subject, field: str, value: date, reason: str) -> Subject:
    """Correct a pathway date kept on the (locked) subject: the planned apheresis date or D0.

    The checks a new date passes are the pathway's (its guard, asked by the caller); what is
    computed from the date (days since D0, visits, kinetics) is computed on read and follows.
    """
    if field not in SUBJECT_DATE_RECORDS:
        raise InvalidInput("'{field}' is not a pathway date.", code="unknown_field", item="field", field=field)
    old = getattr(subject, field)
    correction_check(old, value, reason)
    setattr(subject, field, value)
    subject.save(update_fields=[field])
    audit_correction(
        actor=actor,
        entity=SUBJECT_DATE_RECORDS[field],
        entity_id=subject.code,
        field=field,
        old=old,
        new=value,
        reason=reason,
        subject_code=subject.code,
    )
    return subject


def death_date_correct(
    *, actor: Actor, subject: Subject, event: PathwayEvent, death_date: date, reason: str
) -> PathwayEvent:
    """Correct the date of death recorded with the step (the step itself stays as it was taken)."""
    old_text = event.details.get("death_date")
    old = date.fromisoformat(old_text) if old_text else None
    correction_check(old, death_date, reason)
    event.details = {**event.details, "death_date": death_date.isoformat()}
    event.save(update_fields=["details"])
    audit_correction(
        actor=actor,
        entity="death",
        entity_id=str(event.pk),
        field="death_date",
        old=old,
        new=death_date,
        reason=reason,
        subject_code=subject.code,
    )
    return event


def pathway_event_signature_replace(
    *, actor: Actor, subject: Subject, event: PathwayEvent, signature_id: int, reason: str
) -> PathwayEvent:
    """The step's record now points to the signature of the corrected record (the old one is voided)."""
    old = event.signature_id
    event.signature_id = signature_id
    event.save(update_fields=["signature"])
    audit_record(
        actor=actor,
        event=AuditEvent.RECORD_CORRECTED,
        entity="pathway_event",
        entity_id=str(event.pk),
        subject_code=subject.code,
        changes=[Change("signature", old, signature_id)],
        reason=reason,
        is_correction=True,
    )
    return event
