"""Subject writes: one service per use case, atomic and audited (DESIGN §3, §5).

Each pathway step has its own named service (`subject_include`, `subject_infuse`, ...). They
share `_perform_step`, which locks the subject, asks the domain whether the step is allowed
on the current facts, applies it, and records the timeline event and the audit entry in the
same transaction. A refusal rolls everything back and is then recorded on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import SignatureRefused, signature_apply
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record, audit_refusal, changes_between
from cartrial.apps.clinical.selectors import screening_evaluation
from cartrial.apps.logistics import services as logistics
from cartrial.apps.logistics.errors import ScanRefused
from cartrial.apps.logistics.selectors import logistics_facts
from cartrial.apps.subjects.identity_crypto import identity_decrypt, identity_encrypt
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
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.pathway import (
    CONSENT_EXEMPT_STEPS,
    CONSENT_WITHDRAWAL_EXITS_STUDY,
    Facts,
    State,
    Step,
    TransitionRefused,
    attempt,
    is_final,
    steps_from,
)
from cartrial.domain.roles import BEDSIDE_CHECKERS, Role
from cartrial.protocols import Protocol

INCLUSION_MEANING = "I confirm this patient meets all eligibility criteria"
INCLUSION_MEANING_FR = "Je confirme que ce patient remplit tous les critères d'éligibilité"


class IdentityMismatch(DomainError):
    """A bedside scan does not match the subject: a hard stop and a deviation."""

    code = "identity_mismatch"


@dataclass(frozen=True)
class IdentityInput:
    family_name: str
    given_names: str
    birth_date: date
    hospital_number: str

    def validated(self) -> dict[str, str]:
        """The fields as stored; refuses empty names and impossible birth dates."""
        if not self.family_name.strip() or not self.given_names.strip():
            raise InvalidInput("Family name and given names are required.", code="identity_incomplete")
        if not self.hospital_number.strip():
            raise InvalidInput("The hospital number (IPP) is required.", code="identity_incomplete")
        today = clock.now().date()
        if self.birth_date > today or self.birth_date.year < 1900:
            raise InvalidInput("The birth date is not plausible.", code="identity_birth_date")
        return {
            "family_name": self.family_name.strip(),
            "given_names": self.given_names.strip(),
            "birth_date": self.birth_date.isoformat(),
            "hospital_number": self.hospital_number.strip(),
        }


def _protocol_version(protocol: Protocol) -> ProtocolVersion:
    version = ProtocolVersion.objects.filter(study_code=protocol.code, version=protocol.version).first()
    if version is None:
        raise InvalidInput(
            f"Protocol {protocol.code} v{protocol.version} is not registered in this database "
            "(run `cartrial setup` or the demo).",
            code="protocol_not_registered",
        )
    return version


def _local_today(center: Center, now: datetime) -> date:
    """Today's date at the center: clinical dates are the center's local dates."""
    return now.astimezone(ZoneInfo(center.time_zone)).date()


def subject_create(
    *,
    actor: Actor,
    center: Center,
    identity: IdentityInput,
    protocol: Protocol,
    manufacturing_site: Center | None = None,
    synthetic: bool = False,
    now: datetime | None = None,
) -> Subject:
    """Register a patient at `center` with the next code (BDX-001, BDX-002...), never a gap or a twin.

    The center's counter row is locked for the transaction: two coordinators creating a subject
    at the same instant are served one after the other, and a rollback returns the number.
    """
    if center.kind != Center.Kind.CLINICAL:
        raise InvalidInput(f"{center.code} is not a clinical center.", code="not_a_clinical_center")
    fields = identity.validated()
    now = now or clock.now()
    version = _protocol_version(protocol)
    with transaction.atomic():
        SubjectCodeCounter.objects.get_or_create(center=center)
        counter = SubjectCodeCounter.objects.select_for_update().get(center=center)
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
            created_at=now,
            state_changed_at=now,
        )
        SubjectIdentity.objects.create(subject=subject, ciphertext=identity_encrypt(fields))
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
            now=now,
        )
    return subject


def subject_identity_correct(*, actor: Actor, subject: Subject, identity: IdentityInput, reason: str) -> None:
    """Correct identity data; a reason is required because the data was already saved."""
    fields = identity.validated()
    with transaction.atomic():
        row = SubjectIdentity.objects.select_for_update().get(subject=subject)
        before = identity_decrypt(row.ciphertext)
        changed = sorted(k for k, v in fields.items() if before.get(k) != v)
        if not changed:
            raise InvalidInput("Nothing changed.", code="no_change")
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
        row.save(update_fields=["ciphertext"])


def _check_consent_document(protocol: Protocol, document_version: str, language: str) -> None:
    issued = {(d.version, d.language) for d in protocol.consent_documents}
    if (document_version, language) not in issued:
        raise InvalidInput(
            f"Consent version {document_version} ({language}) is not a document of the protocol.",
            code="unknown_consent_version",
        )


def consent_record(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    document_version: str,
    language: str,
    signed_on: date,
    now: datetime | None = None,
) -> Consent:
    """Record a signed consent; the version must be one the protocol issued in that language."""
    now = now or clock.now()
    _check_consent_document(protocol, document_version, language)
    if signed_on > _local_today(subject.center, now):
        raise InvalidInput("The consent signature date is in the future.", code="consent_date_future")
    with transaction.atomic():
        consent = Consent.objects.create(
            subject=subject,
            document_version=document_version,
            language=language,
            signed_on=signed_on,
            obtained_by=user,
            recorded_at=now,
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
            now=now,
        )
    return consent


def eligibility_assess(*, actor: Actor, user: User, subject: Subject, protocol: Protocol) -> EligibilityAssessment:
    """Record the verdict COMPUTED from the stored screening data and labs (the latest one counts).

    Called by `screening_record` after each save; the stored result keeps, per criterion, the
    values used and the explanation, plus the facts and scores they came from.
    """
    if subject.state not in (State.SCREENING.value, State.ELIGIBLE.value):
        raise InvalidInput("Eligibility is assessed during screening only.", code="not_in_screening")
    evaluation = screening_evaluation(subject=subject, protocol=protocol)
    verdict = evaluation.verdict
    with transaction.atomic():
        assessment = EligibilityAssessment.objects.create(
            subject=subject,
            verdict=verdict.verdict.value,
            result_json=evaluation.as_dict(),
            assessed_by=user,
            assessed_at=clock.now(),
            protocol_version=_protocol_version(protocol),
        )
        audit_record(
            actor=actor,
            event=AuditEvent.ELIGIBILITY_ASSESSED,
            entity="eligibility_assessment",
            entity_id=str(assessment.pk),
            subject_code=subject.code,
            center_code=subject.center.code,
            changes=[Change("verdict", None, verdict.verdict.value), Change("failed", None, verdict.failed())],
        )
    return assessment


def _consent_facts(subject: Subject, protocol: Protocol) -> tuple[bool, bool]:
    """(signed any consent, signed the current version in the language signed)."""
    consents = list(subject.consents.all())
    if not consents:
        return False, False
    current = protocol.current_consent_versions()
    latest = consents[-1]
    return True, current.get(latest.language) == latest.document_version


def consent_is_withdrawn(subject: Subject) -> bool:
    return ConsentWithdrawal.objects.filter(subject=subject).exists()


def consent_reconsent(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    language: str,
    signed_on: date,
    now: datetime | None = None,
) -> Consent:
    """Record the signature of the current consent version by a subject who signed an older one."""
    if is_final(State(subject.state)):
        raise InvalidInput("The pathway has ended for this subject: no re-consent.", code="pathway_ended")
    if consent_is_withdrawn(subject):
        raise InvalidInput("The subject withdrew consent.", code="consent_withdrawn")
    signed, current = _consent_facts(subject, protocol)
    if not signed:
        raise InvalidInput("No consent recorded yet: start screening with the consent.", code="consent_missing")
    if current:
        raise InvalidInput("The subject already signed the current consent version.", code="consent_current")
    version = protocol.current_consent_versions().get(language)
    if version is None:
        raise InvalidInput(f"No current consent version in '{language}'.", code="unknown_consent_version")
    return consent_record(
        actor=actor,
        user=user,
        subject=subject,
        protocol=protocol,
        document_version=version,
        language=language,
        signed_on=signed_on,
        now=now,
    )


def consent_withdraw(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    withdrawn_on: date,
    reason: str,
    ui_language: str = "en",
) -> ConsentWithdrawal:
    """Record the withdrawal of consent and what it stops; with CONSENT_WITHDRAWAL_EXITS_STUDY, the exit too.

    `stops` lists the pathway steps that were still ahead (every step but the exits) and the
    collection of new study data; data recorded before the withdrawal is kept.
    """
    now = clock.now()
    if not reason.strip():
        raise InvalidInput("Give the reason for the withdrawal (as the patient stated it).", code="reason_required")
    if withdrawn_on > _local_today(subject.center, now):
        raise InvalidInput("The withdrawal date is in the future.", code="withdrawal_date_future")
    consent = subject.consents.order_by("-recorded_at", "-pk").first()
    if consent is None:
        raise InvalidInput("No consent is recorded for this subject.", code="consent_missing")
    if consent_is_withdrawn(subject):
        raise InvalidInput("The withdrawal of consent is already recorded.", code="consent_withdrawn")
    if withdrawn_on < consent.signed_on:
        raise InvalidInput("The withdrawal date is before the consent was signed.", code="withdrawal_before_consent")
    stops = [step.value for step in steps_from(State(subject.state)) if step not in CONSENT_EXEMPT_STEPS]
    stops.append("data_collection")
    holder: list[ConsentWithdrawal] = []

    def record(locked: Subject) -> None:
        withdrawal = ConsentWithdrawal.objects.create(
            subject=locked,
            consent=consent,
            withdrawn_on=withdrawn_on,
            reason=reason.strip(),
            stops=stops,
            exited_study=CONSENT_WITHDRAWAL_EXITS_STUDY,
            recorded_by=user,
            recorded_at=now,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.CONSENT_WITHDRAWN,
            entity="consent_withdrawal",
            entity_id=str(withdrawal.pk),
            subject_code=locked.code,
            center_code=locked.center.code,
            changes=changes_between(
                None,
                {
                    "consent_version": consent.document_version,
                    "withdrawn_on": withdrawn_on.isoformat(),
                    "stops": stops,
                    "exited_study": CONSENT_WITHDRAWAL_EXITS_STUDY,
                },
            ),
            reason=reason.strip(),
            now=now,
        )
        holder.append(withdrawal)

    if CONSENT_WITHDRAWAL_EXITS_STUDY:
        _perform_step(
            actor=actor,
            user=user,
            subject=subject,
            step=Step.WITHDRAW,
            protocol=protocol,
            reason=f"Consent withdrawn: {reason.strip()}",
            details={"consent_withdrawn_on": withdrawn_on, "stops": stops},
            before_apply=lambda locked: record(locked),  # type: ignore[func-returns-value]
            language=ui_language,
            now=now,
        )
    else:
        with transaction.atomic():
            record(Subject.objects.select_for_update().select_related("center").get(pk=subject.pk))
    return holder[0]


def subject_facts(subject: Subject, protocol: Protocol, *, now: datetime | None = None, reason: str = "") -> Facts:
    """The facts the domain's guards read, from what is recorded about the subject."""
    now = now or clock.now()
    signed, current = _consent_facts(subject, protocol)
    latest = subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()
    return Facts(
        consent_signed=signed,
        consent_current=current,
        consent_withdrawn=consent_is_withdrawn(subject),
        eligibility_verdict=latest.verdict if latest else None,
        apheresis_date=subject.apheresis_date,
        infusion_date=subject.infusion_date,
        today=_local_today(subject.center, now),
        reason=reason,
        # Manufacturing, shipment, receipt and thaw facts come from the logistics records; the
        # boolean columns of Subject that used to hold them are no longer written.
        **logistics_facts(subject, protocol, now=now),
    )


def _perform_step(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    step: Step,
    protocol: Protocol,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
    fact_updates: Mapping[str, Any] | None = None,
    facts_override: Mapping[str, Any] | None = None,
    before_apply: Callable[[Subject], ElectronicSignature | None] | None = None,
    language: str = "en",
    now: datetime | None = None,
) -> PathwayEvent:
    """Check the guard, apply the step, record the event and the audit entry: all or nothing."""
    now = now or clock.now()
    fact_updates = dict(fact_updates or {})
    try:
        with transaction.atomic():
            locked = Subject.objects.select_for_update().select_related("center").get(pk=subject.pk)
            facts = subject_facts(locked, protocol, now=now, reason=reason)
            facts = replace(facts, **{k: v for k, v in fact_updates.items() if hasattr(facts, k)})
            if facts_override:
                facts = replace(facts, **facts_override)
            source = State(locked.state)
            target = attempt(source, step, facts, language)
            signature = before_apply(locked) if before_apply else None
            changes = [Change("state", source.value, target.value)]
            for name, value in fact_updates.items():
                old = getattr(locked, name)
                if old != value:
                    changes.append(Change(name, _plain(old), _plain(value)))
                    setattr(locked, name, value)
            locked.state = target.value
            locked.state_changed_at = now
            locked.save()
            event = PathwayEvent.objects.create(
                subject=locked,
                step=step.value,
                from_state=source.value,
                to_state=target.value,
                occurred_at=now,
                actor=user,
                role=actor.role,
                center_code=actor.center_code,
                reason=reason,
                details={k: _plain(v) for k, v in (details or {}).items()},
                signature=signature,
            )
            audit_record(
                actor=actor,
                event=AuditEvent.PATHWAY_STEP,
                entity="subject",
                entity_id=locked.code,
                subject_code=locked.code,
                changes=[*changes, Change("step", None, step.value)],
                reason=reason,
                now=now,
            )
    except DomainError as refusal:
        # Recorded after the rollback, so the record of the attempt survives it.
        message = refusal.message_in("en") if isinstance(refusal, TransitionRefused) else refusal.message
        audit_refusal(
            actor=actor,
            event=AuditEvent.SIGNATURE_FAILED if isinstance(refusal, SignatureRefused) else AuditEvent.STEP_REFUSED,
            entity="subject",
            entity_id=subject.code,
            code=refusal.code,
            message=f"{step.value}: {message}",
            subject_code=subject.code,
        )
        raise
    subject.refresh_from_db()
    return event


def _plain(value: Any) -> Any:
    """JSON-friendly form of a recorded value (dates as ISO text)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# --- one service per pathway step --------------------------------------------------------------


def subject_start_screening(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    document_version: str,
    language: str,
    signed_on: date,
    ui_language: str = "en",
) -> PathwayEvent:
    """Screening starts with the signed consent: both are recorded together or not at all."""
    current = protocol.current_consent_versions()
    try:
        _check_consent_document(protocol, document_version, language)
    except InvalidInput as error:
        audit_refusal(
            actor=actor,
            event=AuditEvent.STEP_REFUSED,
            entity="subject",
            entity_id=subject.code,
            code=error.code,
            message=f"{Step.START_SCREENING.value}: {error.message}",
            subject_code=subject.code,
        )
        raise

    def record_consent(locked: Subject) -> None:
        consent_record(
            actor=actor,
            user=user,
            subject=locked,
            protocol=protocol,
            document_version=document_version,
            language=language,
            signed_on=signed_on,
        )

    return _perform_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.START_SCREENING,
        protocol=protocol,
        facts_override={"consent_signed": True, "consent_current": current.get(language) == document_version},
        before_apply=record_consent,
        details={"consent_version": document_version, "consent_language": language, "consent_signed_on": signed_on},
        language=ui_language,
    )


def subject_confirm_eligibility(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, ui_language: str = "en"
) -> PathwayEvent:
    """Eligible only when the verdict computed now from the stored screening data is `eligible`.

    Recomputed rather than read from the latest assessment, so a lab result added since the last
    save of the screening form cannot be overlooked.
    """
    latest = subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()
    computed = screening_evaluation(subject=subject, protocol=protocol).verdict.verdict.value
    return _perform_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.CONFIRM_ELIGIBILITY,
        protocol=protocol,
        facts_override={"eligibility_verdict": computed},
        details={"assessment_id": latest.pk if latest else None, "verdict": computed},
        language=ui_language,
    )


def subject_fail_screening(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str, ui_language: str = "en"
) -> PathwayEvent:
    """A screen failure keeps the failed criteria of the latest assessment (screening log)."""
    latest = subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()
    failed = [c["id"] for c in latest.result_json.get("criteria", []) if c["outcome"] == "not_met"] if latest else []
    return _perform_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.FAIL_SCREENING,
        protocol=protocol,
        reason=reason,
        details={"failed_criteria": failed},
        language=ui_language,
    )


def subject_include(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, password: str, ui_language: str = "en"
) -> PathwayEvent:
    """Inclusion by the investigator's e-signature over the verdict computed now; no override.

    The verdict is recomputed from the stored screening data and labs at the moment of signing:
    the guard reads it (a criterion not met or missing refuses the inclusion) and the signature's
    hash covers exactly it, so what is signed is what the data says, not an older assessment.
    """
    latest = subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()
    computed = screening_evaluation(subject=subject, protocol=protocol).as_dict()

    def sign(locked: Subject) -> ElectronicSignature:
        signature = signature_apply(
            actor=actor,
            user=user,
            password=password,
            meaning=INCLUSION_MEANING,
            entity="subject",
            entity_id=locked.code,
            subject_code=locked.code,
            content={"subject": locked.code, "verdict": computed},
        )
        # The chain of identity starts at inclusion, before any apheresis (logistics.md §6 rule 1).
        logistics.coi_ensure_in_step(actor=actor, user=user, subject=locked, now=clock.now())
        return signature

    return _perform_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.INCLUDE,
        protocol=protocol,
        facts_override={"inclusion_signed": True, "eligibility_verdict": computed["verdict"]},
        before_apply=sign,
        details={
            "assessment_id": latest.pk if latest else None,
            "meaning": INCLUSION_MEANING,
            "signed_verdict": computed["verdict"],
        },
        language=ui_language,
    )


# --- logistics steps: each creates or requires the logistics records (apps/logistics) ------------


def _logistics_step(*, actor: Actor, user: User, subject: Subject, **kwargs: Any) -> PathwayEvent:
    """`_perform_step`, plus the deviation of a refused scan, written after the rollback."""
    try:
        return _perform_step(actor=actor, user=user, subject=subject, **kwargs)
    except ScanRefused as refusal:
        logistics.scan_deviation_record(actor=actor, user=user, subject=subject, refusal=refusal)
        raise


def subject_schedule_apheresis(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, apheresis_date: date, ui_language: str = "en"
) -> PathwayEvent:
    """Plan the first apheresis under the CoI allocated at inclusion (allocated here for older inclusions)."""
    now = clock.now()

    def allocate(locked: Subject) -> None:
        logistics.coi_ensure_in_step(actor=actor, user=user, subject=locked, now=now)

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.SCHEDULE_APHERESIS,
        protocol=protocol,
        fact_updates={"apheresis_date": apheresis_date},
        before_apply=allocate,
        language=ui_language,
        now=now,
    )


def subject_collect_apheresis(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    started_at: datetime,
    ended_at: datetime,
    volume_ml: float,
    tnc_e9: float | None = None,
    cd3_cells_e9: float | None = None,
    ui_language: str = "en",
) -> PathwayEvent:
    """Record one apheresis collection: its own DIN under the CoI, time, volume and cell counts."""
    now = clock.now()
    data = logistics.CollectionInput(started_at, ended_at, volume_ml, tnc_e9, cd3_cells_e9)
    created: list[Any] = []

    def record(locked: Subject) -> None:
        created.append(
            logistics.collection_record_in_step(
                actor=actor, user=user, subject=locked, data=data, language=ui_language, now=now
            )
        )

    local_day = ended_at.astimezone(ZoneInfo(subject.center.time_zone)).date()
    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.COLLECT_APHERESIS,
        protocol=protocol,
        fact_updates={"apheresis_date": local_day},
        before_apply=record,
        details={"volume_ml": volume_ml, "tnc_e9": tnc_e9, "cd3_cells_e9": cd3_cells_e9},
        language=ui_language,
        now=now,
    )


def subject_ship_material(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    courier: str,
    shipper_id: str,
    condition: str,
    planned_departure_at: datetime,
    planned_arrival_at: datetime,
    scanned_code: str,
    actual_departure_at: datetime | None = None,
    ui_language: str = "en",
) -> PathwayEvent:
    """Hand the collection to the courier: a shipment to the lab and a custody record (DIN scanned)."""
    now = clock.now()
    data = logistics.DispatchInput(
        courier,
        shipper_id,
        planned_departure_at,
        planned_arrival_at,
        actual_departure_at or now,
        scanned_code,
        condition=condition,
    )

    def dispatch(locked: Subject) -> None:
        logistics.material_dispatch_in_step(
            actor=actor, user=user, subject=locked, data=data, language=ui_language, now=now
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.SHIP_MATERIAL,
        protocol=protocol,
        before_apply=dispatch,
        details={"courier": courier, "shipper_id": shipper_id, "condition": condition},
        language=ui_language,
        now=now,
    )


def subject_start_manufacturing(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str = "", ui_language: str = "en"
) -> PathwayEvent:
    """Start production of the batch opened when the lab scanned the material in (required)."""
    now = clock.now()

    def start(locked: Subject) -> None:
        logistics.batch_start_in_step(actor=actor, subject=locked, language=ui_language, now=now)

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.START_MANUFACTURING,
        protocol=protocol,
        reason=reason,
        before_apply=start,
        language=ui_language,
        now=now,
    )


def subject_release_product(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    password: str,
    bag_code: str,
    ui_language: str = "en",
) -> PathwayEvent:
    """Release by the lab's qualified person: e-signature, QC conforming (or a signed OOS exception), bag scanned."""
    now = clock.now()

    def release(locked: Subject) -> ElectronicSignature | None:
        batch = logistics.batch_release_in_step(
            actor=actor,
            user=user,
            subject=locked,
            password=password,
            scanned_code=bag_code,
            language=ui_language,
            now=now,
        )
        return batch.release_signature

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.RELEASE_PRODUCT,
        protocol=protocol,
        before_apply=release,
        details={"meaning": logistics.RELEASE_MEANING},
        language=ui_language,
        now=now,
    )


def subject_fail_manufacturing(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str, ui_language: str = "en"
) -> PathwayEvent:
    """The batch failed (or stays out of specification without exception); a branch must follow."""
    now = clock.now()

    def fail(locked: Subject) -> None:
        logistics.batch_fail_in_step(actor=actor, subject=locked, reason=reason, language=ui_language, now=now)

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.FAIL_MANUFACTURING,
        protocol=protocol,
        reason=reason,
        before_apply=fail if reason.strip() else None,
        language=ui_language,
        now=now,
    )


def subject_remanufacture(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str = "", ui_language: str = "en"
) -> PathwayEvent:
    """Branch 'remanufacture': a new batch from the material still at the lab."""
    now = clock.now()

    def again(locked: Subject) -> None:
        logistics.batch_remanufacture_in_step(
            actor=actor, user=user, subject=locked, reason=reason, language=ui_language, now=now
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.REMANUFACTURE,
        protocol=protocol,
        reason=reason,
        before_apply=again,
        language=ui_language,
        now=now,
    )


def subject_repeat_apheresis(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    apheresis_date: date,
    reason: str = "",
    ui_language: str = "en",
) -> PathwayEvent:
    """Branch 're-apheresis': the failed batch's decision, and a new apheresis planned (new DIN, same CoI)."""
    now = clock.now()

    def decide(locked: Subject) -> None:
        logistics.batch_re_apheresis_in_step(
            actor=actor, user=user, subject=locked, reason=reason, language=ui_language, now=now
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.REPEAT_APHERESIS,
        protocol=protocol,
        reason=reason,
        fact_updates={"apheresis_date": apheresis_date},
        before_apply=decide,
        language=ui_language,
        now=now,
    )


def subject_decide_no_infusion(
    *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str, ui_language: str = "en"
) -> PathwayEvent:
    """Branch 'no infusion' after a failed batch: the decision on the batch and the subject's withdrawal, together."""
    now = clock.now()

    def decide(locked: Subject) -> None:
        if locked.state != State.MANUFACTURING_FAILED.value:
            raise InvalidInput(
                "'No infusion' is decided after a manufacturing failure.", code="no_infusion_wrong_state"
            )
        logistics.batch_no_infusion_in_step(
            actor=actor, user=user, subject=locked, reason=reason, language=ui_language, now=now
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.WITHDRAW,
        protocol=protocol,
        reason=reason,
        before_apply=decide,
        details={"branch": "no_infusion"},
        language=ui_language,
        now=now,
    )


def subject_ship_product(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    courier: str,
    shipper_id: str,
    planned_departure_at: datetime,
    planned_arrival_at: datetime,
    scanned_code: str,
    arrival_confirmed: bool = False,
    actual_departure_at: datetime | None = None,
    ui_language: str = "en",
) -> PathwayEvent:
    """The released product leaves the lab frozen (LN2 vapour): shipment and custody record (CoI scanned)."""
    now = clock.now()
    data = logistics.DispatchInput(
        courier,
        shipper_id,
        planned_departure_at,
        planned_arrival_at,
        actual_departure_at or now,
        scanned_code,
        condition="cryopreserved",
        arrival_confirmed=arrival_confirmed,
    )

    def dispatch(locked: Subject) -> None:
        logistics.product_dispatch_in_step(
            actor=actor, user=user, subject=locked, data=data, language=ui_language, now=now
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.SHIP_PRODUCT,
        protocol=protocol,
        before_apply=dispatch,
        details={"courier": courier, "shipper_id": shipper_id, "arrival_confirmed": arrival_confirmed},
        language=ui_language,
        now=now,
    )


def subject_receive_product(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    scanned_code: str,
    storage_location: str,
    received_at: datetime | None = None,
    ui_language: str = "en",
) -> PathwayEvent:
    """The pharmacy receives the product from the courier (CoI scanned) and stores it."""
    now = clock.now()

    def receive(locked: Subject) -> None:
        logistics.product_receive_in_step(
            actor=actor,
            user=user,
            subject=locked,
            scanned_code=scanned_code,
            storage_location=storage_location,
            received_at=received_at or now,
            language=ui_language,
            now=now,
        )

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.RECEIVE_PRODUCT,
        protocol=protocol,
        before_apply=receive,
        details={"storage_location": storage_location},
        language=ui_language,
        now=now,
    )


def subject_start_lymphodepletion(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    planned_infusion_date: date,
    ui_language: str = "en",
) -> PathwayEvent:
    """Lymphodepletion only with the product received, or in transit with a confirmed arrival before D0."""
    now = clock.now()
    facts = logistics_facts(subject, protocol, now=now, planned_infusion_date=planned_infusion_date)
    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.START_LYMPHODEPLETION,
        protocol=protocol,
        facts_override={"product_arrival_confirmed_before_d0": facts["product_arrival_confirmed_before_d0"]},
        details={"planned_infusion_date": planned_infusion_date},
        language=ui_language,
        now=now,
    )


@dataclass(frozen=True)
class BedsideCheck:
    """One person's part of the two-person identity check: who, their password, what they scanned."""

    user: User
    password: str
    bag_code: str
    wristband_code: str


def subject_infuse(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    infused_on: date,
    checks: tuple[BedsideCheck, BedsideCheck],
    ui_language: str = "en",
) -> PathwayEvent:
    """Infusion after two different qualified people both scanned the bag and the wristband and signed.

    The bag must carry the subject's CoI (or the DIN of its collection), the wristband the subject's
    code or CoI. Any mismatch is a hard stop, recorded as a refusal and a deviation. The product
    must have been thawed within the protocol's thaw-to-infusion limit (a pathway guard).
    """
    first, second = checks
    if first.user.pk == second.user.pk:
        raise IdentityMismatch("The two bedside checks must be done by two different people.", code="same_checker")
    for check in checks:
        role = check.user.memberships.filter(center=subject.center).values_list("role", flat=True).first()
        if role is None or Role(role) not in BEDSIDE_CHECKERS:
            raise IdentityMismatch(
                f"{check.user.get_username()} is not qualified for the bedside check at {subject.center.code}.",
                code="checker_not_qualified",
            )
    scans = tuple(logistics.BedsideScan(c.user, c.bag_code, c.wristband_code) for c in checks)
    mismatches = logistics.bedside_mismatches(subject, (scans[0], scans[1]))
    if mismatches:
        detail = "; ".join(mismatches)
        english = f"Identity mismatch – infusion stopped: {detail}. A deviation is recorded."
        french = f"Discordance d'identité – perfusion arrêtée : {detail}. Une déviation est enregistrée."
        error = IdentityMismatch(french if ui_language == "fr" else english)
        audit_refusal(
            actor=actor,
            event=AuditEvent.STEP_REFUSED,
            entity="subject",
            entity_id=subject.code,
            code="identity_mismatch_deviation",
            message=english,
            subject_code=subject.code,
        )
        logistics.deviation_open(
            actor=actor,
            user=user,
            subject=subject,
            kind="bedside_mismatch",
            code="identity_mismatch",
            message=english,
            message_fr=french,
            step=Step.INFUSE.value,
            expected=subject.code,
            scanned=" | ".join(f"{c.bag_code.strip()} / {c.wristband_code.strip()}" for c in checks),
            location=subject.center.name,
        )
        raise error
    now = clock.now()

    def sign_and_record(locked: Subject) -> ElectronicSignature:
        signatures = [
            signature_apply(
                actor=Actor(check.user.pk, check.user.get_username(), actor.role, actor.center_code),
                user=check.user,
                password=check.password,
                meaning=logistics.BEDSIDE_MEANING,
                entity="subject",
                entity_id=locked.code,
                subject_code=locked.code,
                content={"subject": locked.code, "bag": check.bag_code, "wristband": check.wristband_code},
            )
            for check in checks
        ]
        logistics.infusion_record_in_step(
            actor=actor,
            user=user,
            subject=locked,
            scans=(scans[0], scans[1]),
            signatures=(signatures[0], signatures[1]),
            language=ui_language,
            now=now,
        )
        return signatures[0]

    return _logistics_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.INFUSE,
        protocol=protocol,
        facts_override={"identity_check_passed": True, "identity_check_people": 2},
        fact_updates={"infusion_date": infused_on},
        before_apply=sign_and_record,
        details={"checkers": [c.user.get_username() for c in checks]},
        language=ui_language,
        now=now,
    )


def _simple_step(step: Step) -> Callable[..., PathwayEvent]:
    def service(
        *, actor: Actor, user: User, subject: Subject, protocol: Protocol, reason: str = "", ui_language: str = "en"
    ) -> PathwayEvent:
        return _perform_step(
            actor=actor, user=user, subject=subject, step=step, protocol=protocol, reason=reason, language=ui_language
        )

    service.__name__ = f"subject_{step.value}"
    service.__doc__ = f"Perform '{step.value}' (no input but an optional reason)."
    return service


subject_start_acute_monitoring = _simple_step(Step.START_ACUTE_MONITORING)
subject_start_follow_up = _simple_step(Step.START_FOLLOW_UP)
subject_start_long_term_follow_up = _simple_step(Step.START_LONG_TERM_FOLLOW_UP)
subject_complete = _simple_step(Step.COMPLETE)
subject_withdraw = _simple_step(Step.WITHDRAW)
subject_mark_lost_to_follow_up = _simple_step(Step.MARK_LOST_TO_FOLLOW_UP)


def subject_record_death(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    reason: str,
    death_date: date,
    ui_language: str = "en",
) -> PathwayEvent:
    return _perform_step(
        actor=actor,
        user=user,
        subject=subject,
        step=Step.RECORD_DEATH,
        protocol=protocol,
        reason=reason,
        details={"death_date": death_date},
        language=ui_language,
    )
