"""The one way in to correct a stored record, for pages and the API (docs/corrections.md).

`correction_apply(user, code, ...)`:
1. reach the subject (404 outside the user's scope), find the record among the subject's own
   (404 otherwise), read the corrected value by the field's type (`domain.corrections`);
2. authorise the kind's correction action, or the signing role's when a signature in force covers
   the record (403, recorded);
3. in one transaction (`Reach.run`): the owning app's service applies the correction with the
   checks of a new value and keeps old → new with the reason; what was derived follows (the
   verdict, custody, deviations: in the services); a signed record's signature is voided and the
   corrected record signed by the person correcting, who re-entered their password; the record
   points to the new signature. A refusal rolls everything back and is recorded after.

`correction_history(user, code, ...)` reads the record's corrections back from the audit trail
(the one store of old values, ADR 0004) and the signatures that covered it, voided or in force.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cartrial.apps.access import Reach, reach_subject
from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import signature_apply, signature_void
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entry_changes
from cartrial.apps.biology import services as biology
from cartrial.apps.clinical import services as clinical
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.clinical.selectors import KINETICS_CONTEXT, SCREENING_CONTEXT, screening_evaluation
from cartrial.apps.logistics import corrections as logistics
from cartrial.apps.logistics.models import Collection, Infusion, ProductReceipt, QcResult, Shipment, Thaw
from cartrial.apps.pathway.selectors import latest_assessment, local_date, lymphodepletion_event
from cartrial.apps.planning.models import ReplanProposal
from cartrial.apps.planning.replanning import replan_propose_quietly
from cartrial.apps.planning.selectors import active_booking
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import Consent, PathwayEvent, Subject
from cartrial.domain.corrections import (
    CORRECTION_MEANING,
    CorrectableRecord,
    RecordKind,
    SignedRecord,
    correctable,
    correction_action,
    correction_check,
    parse_corrected_value,
    pathway_date_order_check,
    stored_form,
)
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.pathway import State, Step, lymphodepletion_window_check
from cartrial.protocols import Protocol


@dataclass(frozen=True)
class Target:
    """A stored record of the subject, as a correction sees it."""

    record: CorrectableRecord
    obj: Any
    record_id: str
    values: dict[str, Any]
    signed: SignedRecord | None = None
    # The signatures in force that cover it (voided by a correction).
    signatures: tuple[ElectronicSignature, ...] = ()
    # Where the record stands in the pathway, for the signature it points to.
    signed_event: PathwayEvent | None = None
    context: str = ""


def _not_found(record: CorrectableRecord, record_id: str) -> NotFound:
    return NotFound("No {record} '{id}' for this subject.", code="not_found", record=record.kind.value, id=record_id)


def _pk(record: CorrectableRecord, record_id: str) -> int:
    try:
        return int(str(record_id))
    except ValueError:
        raise _not_found(record, record_id) from None


def _latest_event(subject: Subject, step: Step) -> PathwayEvent | None:
    return (
        PathwayEvent.objects.filter(subject=subject, step=step.value)
        .select_related("signature")
        .order_by("-occurred_at", "-pk")
        .first()
    )


def _inclusion(subject: Subject) -> tuple[SignedRecord | None, tuple[ElectronicSignature, ...], PathwayEvent | None]:
    """The inclusion signature in force, when the subject was included."""
    event = _latest_event(subject, Step.INCLUDE)
    if event is None or event.signature is None or event.signature.voided_at is not None:
        return None, (), None
    return SignedRecord.INCLUSION, (event.signature,), event


def _values(obj: Any, record: CorrectableRecord) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in record.fields}


def _subject_record(subject: Subject, record: CorrectableRecord, record_id: str) -> Subject:
    if str(record_id).strip().upper() != subject.code:
        raise _not_found(record, record_id)
    return subject


def correction_target(subject: Subject, record: CorrectableRecord, record_id: str) -> Target:
    """The record `record_id` of kind `record` among this subject's records (NotFound otherwise)."""
    kind = record.kind
    rid = str(record_id)
    if kind is RecordKind.SCREENING_DATA:
        screening = ScreeningRecord.objects.filter(subject=subject, pk=_pk(record, rid)).first()
        if screening is None:
            raise _not_found(record, rid)
        signed, signatures, event = _inclusion(subject)
        values = {f.name: screening.data_json.get(f.name) for f in record.fields}
        return Target(record, screening, rid, values, signed, signatures, event)
    if kind is RecordKind.LAB_OBSERVATION:
        observation = LabObservation.objects.filter(subject=subject, pk=_pk(record, rid)).first()
        if observation is None:
            raise _not_found(record, rid)
        signed, signatures, event = (
            _inclusion(subject) if observation.context == SCREENING_CONTEXT else (None, (), None)
        )
        return Target(
            record, observation, rid, _values(observation, record), signed, signatures, event, observation.context
        )
    if kind is RecordKind.CONSENT:
        consent = Consent.objects.filter(subject=subject, pk=_pk(record, rid)).first()
        if consent is None:
            raise _not_found(record, rid)
        signed, signatures, event = _inclusion(subject)
        return Target(record, consent, rid, _values(consent, record), signed, signatures, event)
    if kind is RecordKind.PLANNED_APHERESIS:
        row = _subject_record(subject, record, rid)
        if row.apheresis_date is None:
            raise _not_found(record, rid)
        return Target(record, row, subject.code, _values(row, record))
    if kind is RecordKind.INFUSION:
        row = _subject_record(subject, record, rid)
        event = _latest_event(subject, Step.INFUSE)
        if row.infusion_date is None or event is None:
            raise _not_found(record, rid)
        infusion = (
            Infusion.objects.filter(batch__subject=subject)
            .select_related("first_signature", "second_signature")
            .first()
        )
        candidates = [event.signature]
        if infusion is not None:
            candidates += [infusion.first_signature, infusion.second_signature]
        in_force: dict[int, ElectronicSignature] = {
            s.pk: s for s in candidates if s is not None and s.voided_at is None
        }
        signed = SignedRecord.BEDSIDE_CHECK if in_force else None
        return Target(record, row, subject.code, _values(row, record), signed, tuple(in_force.values()), event)
    if kind is RecordKind.DEATH:
        death = PathwayEvent.objects.filter(subject=subject, step=Step.RECORD_DEATH.value, pk=_pk(record, rid)).first()
        if death is None:
            raise _not_found(record, rid)
        on = death.details.get("death_date")
        return Target(record, death, rid, {"death_date": date.fromisoformat(on) if on else None})
    return _logistics_target(subject, record, rid)


def _logistics_target(subject: Subject, record: CorrectableRecord, rid: str) -> Target:
    kind = record.kind
    pk = _pk(record, rid)
    obj: Any
    if kind is RecordKind.COLLECTION:
        obj = Collection.objects.filter(subject=subject, pk=pk).first()
    elif kind in (RecordKind.MATERIAL_SHIPMENT, RecordKind.LAB_RECEIPT, RecordKind.PRODUCT_SHIPMENT):
        direction = Shipment.Direction.TO_CENTER if kind is RecordKind.PRODUCT_SHIPMENT else Shipment.Direction.TO_LAB
        obj = (
            Shipment.objects.filter(subject=subject, pk=pk, direction=direction)
            .select_related("collection", "batch__coi", "destination")
            .first()
        )
        if kind is RecordKind.LAB_RECEIPT and obj is not None:
            if obj.actual_arrival_at is None:
                raise _not_found(record, rid)
            return Target(record, obj, rid, {"received_at": obj.actual_arrival_at})
    elif kind is RecordKind.QC_RESULT:
        obj = QcResult.objects.filter(batch__subject=subject, pk=pk).select_related("batch__release_signature").first()
        if obj is not None:
            release = obj.batch.release_signature
            if release is not None and release.voided_at is None:
                return Target(record, obj, rid, {"value": obj.value_text}, SignedRecord.RELEASE, (release,))
            return Target(record, obj, rid, {"value": obj.value_text})
    elif kind is RecordKind.PRODUCT_RECEIPT:
        obj = ProductReceipt.objects.filter(batch__subject=subject, pk=pk).select_related("shipment").first()
    elif kind is RecordKind.THAW:
        obj = Thaw.objects.filter(batch__subject=subject, pk=pk).select_related("batch__coi").first()
    else:
        obj = None
    if obj is None:
        raise _not_found(record, rid)
    return Target(record, obj, rid, _values(obj, record))


# --- applying a correction -----------------------------------------------------------------------


@dataclass(frozen=True)
class CorrectionDone:
    """What a correction did: the record as corrected, the verdict recomputed, the signatures."""

    target: Target
    field: str
    old: Any
    new: Any
    reason: str
    verdict: str | None = None
    signature: ElectronicSignature | None = None
    voided: tuple[ElectronicSignature, ...] = ()


@dataclass(frozen=True)
class _Call:
    reach: Reach
    subject: Subject
    target: Target
    field: str
    value: Any
    reason: str
    protocol: Protocol
    # Re-entered to sign the corrected record; never shown, never stored.
    password: str = dataclasses.field(default="", repr=False)
    otp_code: str = dataclasses.field(default="", repr=False)

    @property
    def actor(self) -> Any:
        return self.reach.actor


def _pathway_dates(subject: Subject, **corrected: date | None) -> list[tuple[str, date | None]]:
    """The pathway's dates in their order, with the corrected one in place."""
    consents = list(subject.consents.values_list("pk", "signed_on"))
    death = _latest_event(subject, Step.RECORD_DEATH)
    dates: dict[str, date | None] = {
        "consent_signed_on": min((on for _, on in consents), default=None),
        "apheresis_date": subject.apheresis_date,
        "infusion_date": subject.infusion_date,
        "death_date": date.fromisoformat(death.details["death_date"])
        if death and death.details.get("death_date")
        else None,
    }
    dates.update(corrected)
    return list(dates.items())


def _today(call: _Call) -> date:
    return local_date(call.subject, call.actor.now)


def _correct_screening_data(call: _Call) -> None:
    clinical.screening_data_correct(
        actor=call.actor, subject=call.subject, field=call.field, value=call.value, reason=call.reason
    )


def _correct_lab_observation(call: _Call) -> None:
    correct = (
        biology.kinetic_observation_correct
        if call.target.context == KINETICS_CONTEXT
        else clinical.lab_observation_correct
    )
    correct(
        actor=call.actor,
        subject=call.subject,
        observation=call.target.obj,
        field=call.field,
        value=call.value,
        reason=call.reason,
    )


def _correct_consent(call: _Call) -> None:
    consent: Consent = call.target.obj
    others = [on for pk, on in call.subject.consents.values_list("pk", "signed_on") if pk != consent.pk]
    first = min([*others, call.value])
    pathway_date_order_check(_pathway_dates(call.subject, consent_signed_on=first), _today(call))
    subjects.consent_date_correct(
        actor=call.actor, subject=call.subject, consent=consent, signed_on=call.value, reason=call.reason
    )


def _correct_planned_apheresis(call: _Call) -> None:
    if Collection.objects.filter(subject=call.subject).exists():
        raise Refused(
            "The apheresis date is now the day the collection ended: correct the collection's end instead.",
            code="correction_derived",
            item="field",
        )
    pathway_date_order_check(_pathway_dates(call.subject, apheresis_date=call.value), _today(call))
    subjects.subject_date_correct(
        actor=call.actor, subject=call.subject, field="apheresis_date", value=call.value, reason=call.reason
    )
    # The booked apheresis day no longer holds: propose a new chain around the moved visit.
    _replan_after(call, ReplanProposal.Trigger.VISIT_MOVED)


def _correct_infusion(call: _Call) -> None:
    """D0 passes the infusion's own guard again (lymphodepletion window) and follows the pathway's dates."""
    started = lymphodepletion_event(call.subject)
    lymphodepletion_window_check(
        Step.INFUSE,
        State(call.subject.state),
        local_date(call.subject, started.occurred_at) if started else None,
        call.value,
        call.protocol.pathway_rules,
    )
    pathway_date_order_check(_pathway_dates(call.subject, infusion_date=call.value), _today(call))
    subjects.subject_date_correct(
        actor=call.actor, subject=call.subject, field="infusion_date", value=call.value, reason=call.reason
    )


def _correct_death(call: _Call) -> None:
    pathway_date_order_check(_pathway_dates(call.subject, death_date=call.value), _today(call))
    subjects.death_date_correct(
        actor=call.actor, subject=call.subject, event=call.target.obj, death_date=call.value, reason=call.reason
    )


def _correct_collection(call: _Call) -> None:
    logistics.collection_correct(
        actor=call.actor,
        subject=call.subject,
        protocol=call.protocol,
        collection=call.target.obj,
        field=call.field,
        value=call.value,
        reason=call.reason,
    )


def _correct_shipment(call: _Call) -> None:
    shipment = call.target.obj
    before = shipment.planned_arrival_at
    logistics.shipment_correct(
        actor=call.actor,
        subject=call.subject,
        shipment=shipment,
        field=call.field,
        value=call.value,
        reason=call.reason,
    )
    if call.field == "planned_arrival_at" and shipment.actual_arrival_at is None and call.value > before:
        # A shipment expected later than planned: the subject's booked chain is proposed again.
        _replan_after(call, ReplanProposal.Trigger.SHIPMENT_LATE)


def _replan_after(call: _Call, trigger: str) -> None:
    """Re-planning (issue 11, item 4): propose new dates for a booked subject after the event; nothing
    moves until a coordinator accepts them."""
    if active_booking(call.subject) is None:
        return
    replan_propose_quietly(
        actor=call.actor,
        user_id=call.reach.user.pk,
        affected=[call.subject],
        trigger=trigger,
        detail=call.reason,
        protocol=call.protocol,
        today=_today(call),
    )


def _correct_lab_receipt(call: _Call) -> None:
    logistics.lab_receipt_correct(
        actor=call.actor,
        subject=call.subject,
        protocol=call.protocol,
        shipment=call.target.obj,
        received_at=call.value,
        reason=call.reason,
    )


def _correct_qc_result(call: _Call) -> None:
    logistics.qc_result_correct(
        actor=call.actor,
        subject=call.subject,
        protocol=call.protocol,
        result=call.target.obj,
        value=call.value,
        reason=call.reason,
    )


def _correct_product_receipt(call: _Call) -> None:
    logistics.product_receipt_correct(
        actor=call.actor,
        subject=call.subject,
        receipt=call.target.obj,
        field=call.field,
        value=call.value,
        reason=call.reason,
    )


def _correct_thaw(call: _Call) -> None:
    logistics.thaw_correct(
        actor=call.actor, subject=call.subject, thaw=call.target.obj, thawed_at=call.value, reason=call.reason
    )


# Each kind of record: the owning app's service that corrects it.
APPLY: dict[RecordKind, Callable[[_Call], None]] = {
    RecordKind.SCREENING_DATA: _correct_screening_data,
    RecordKind.LAB_OBSERVATION: _correct_lab_observation,
    RecordKind.CONSENT: _correct_consent,
    RecordKind.PLANNED_APHERESIS: _correct_planned_apheresis,
    RecordKind.COLLECTION: _correct_collection,
    RecordKind.MATERIAL_SHIPMENT: _correct_shipment,
    RecordKind.LAB_RECEIPT: _correct_lab_receipt,
    RecordKind.QC_RESULT: _correct_qc_result,
    RecordKind.PRODUCT_SHIPMENT: _correct_shipment,
    RecordKind.PRODUCT_RECEIPT: _correct_product_receipt,
    RecordKind.THAW: _correct_thaw,
    RecordKind.INFUSION: _correct_infusion,
    RecordKind.DEATH: _correct_death,
}


def _feeds_verdict(target: Target) -> bool:
    if not target.record.feeds_verdict:
        return False
    return target.record.kind is not RecordKind.LAB_OBSERVATION or target.context == SCREENING_CONTEXT


def _resign(call: _Call, summary: dict[str, Any]) -> tuple[ElectronicSignature, tuple[ElectronicSignature, ...]]:
    """Void the signatures in force over the record and sign the corrected record, in one action."""
    target, actor, user = call.target, call.actor, call.reach.user
    if target.signed is SignedRecord.RELEASE:
        batch = target.obj.batch
        signature, voided = logistics.batch_release_resign(
            actor=actor,
            user=user,
            subject=call.subject,
            protocol=call.protocol,
            batch=batch,
            password=call.password,
            otp_code=call.otp_code,
            reason=call.reason,
            correction=summary,
        )
        return signature, tuple(voided)
    if target.signed is SignedRecord.INCLUSION:
        content: dict[str, Any] = {
            "subject": call.subject.code,
            "verdict": screening_evaluation(subject=call.subject, protocol=call.protocol).as_dict(),
        }
    else:
        content = {"subject": call.subject.code, "infusion_date": call.subject.infusion_date}
    signature = signature_apply(
        actor=actor,
        user=user,
        password=call.password,
        otp_code=call.otp_code,
        meaning=CORRECTION_MEANING,
        entity="subject",
        entity_id=call.subject.code,
        subject_code=call.subject.code,
        content={**content, "correction": summary},
    )
    for old in target.signatures:
        signature_void(
            actor=actor, signature=old, reason=call.reason, superseded_by=signature, subject_code=call.subject.code
        )
    if target.signed_event is not None:
        subjects.pathway_event_signature_replace(
            actor=actor, subject=call.subject, event=target.signed_event, signature_id=signature.pk, reason=call.reason
        )
    return signature, target.signatures


def correction_apply(
    user: Any,
    code: str,
    *,
    kind: str,
    record_id: str,
    field: str,
    value: Any,
    reason: str,
    protocol: Protocol,
    password: str = "",
    otp_code: str = "",
) -> CorrectionDone:
    """Correct one field of one stored record of subject `code` (see the module's docstring)."""
    reader = reach_subject(user, code)
    record = correctable(kind)
    spec = record.field(field)
    target = correction_target(reader.subject, record, record_id)
    reach = reach_subject(user, code, correction_action(record, target.signed))
    subject = reach.subject
    new = parse_corrected_value(spec, value, ZoneInfo(subject.center.time_zone))
    correction_check(target.values[field], new, reason)
    if target.signed is not None and not password:
        raise InvalidInput(
            "This record is signed: re-enter your password to sign the corrected record.",
            code="password_required",
            item="password",
        )

    def work() -> CorrectionDone:
        locked = subjects.subject_lock(subject)
        # Read again under the subject's lock: corrections of one subject are applied one at a time,
        # each against the value stored when it runs.
        current = correction_target(locked, record, target.record_id)
        if current.signed is not target.signed:
            raise Refused("The record changed while you were correcting it: open it again.", code="record_changed")
        previous = current.values[field]
        correction_check(previous, new, reason)
        call = _Call(reach, locked, current, field, new, reason.strip(), protocol, password, otp_code)
        APPLY[record.kind](call)
        verdict = None
        if _feeds_verdict(current) and latest_assessment(locked) is not None:
            verdict = clinical.eligibility_assess(
                actor=reach.actor, subject=locked, protocol=protocol, after_correction=True
            ).verdict
        signature: ElectronicSignature | None = None
        voided: tuple[ElectronicSignature, ...] = ()
        if current.signed is not None:
            summary = {
                "record": record.kind.value,
                "id": current.record_id,
                "field": field,
                "old": stored_form(previous),
                "new": stored_form(new),
            }
            signature, voided = _resign(call, summary)
        subject.refresh_from_db()
        return CorrectionDone(
            correction_target(locked, record, target.record_id),
            field,
            previous,
            new,
            reason.strip(),
            verdict,
            signature,
            voided,
        )

    return reach.run(work, what=f"correct {record.kind.value}.{field}")


# --- history --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    username: str
    name: str
    role: str
    center: str
    field: str
    old: Any
    new: Any
    reason: str
    follows: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class RecordHistory:
    reach: Reach
    target: Target
    entries: list[HistoryEntry]
    signatures: list[ElectronicSignature]


def _signature_chain(target: Target) -> list[ElectronicSignature]:
    """The signatures that covered the record: those in force and, back in time, those they replaced."""
    current: list[ElectronicSignature] = list(target.signatures)
    if target.record.kind is RecordKind.QC_RESULT:
        release = target.obj.batch.release_signature
        current = [release] if release is not None else []
    elif target.signed_event is not None and target.signed_event.signature is not None:
        current = [target.signed_event.signature]
    elif target.record.covered_by is SignedRecord.INCLUSION and target.context in ("", SCREENING_CONTEXT):
        event = _latest_event(target.obj.subject, Step.INCLUDE)
        current = [event.signature] if event is not None and event.signature is not None else []
    seen: dict[int, ElectronicSignature] = {s.pk: s for s in current}
    frontier = list(seen)
    while frontier:
        older = list(
            ElectronicSignature.objects.filter(superseded_by_id__in=frontier).select_related(
                "voided_by", "superseded_by"
            )
        )
        frontier = [s.pk for s in older if s.pk not in seen]
        seen.update({s.pk: s for s in older})
    return sorted(seen.values(), key=lambda s: (s.signed_at, s.pk))


def correction_history(user: Any, code: str, *, kind: str, record_id: str) -> RecordHistory:
    """A record's corrections (old → new, who, when, why) and its signatures, for whoever may read it."""
    reader = reach_subject(user, code)
    record = correctable(kind)
    target = correction_target(reader.subject, record, record_id)
    if record.read_action is not None:
        reader = reach_subject(user, code, record.read_action)
    rows = AuditEntry.objects.filter(
        subject_code=reader.subject.code,
        event=AuditEvent.RECORD_CORRECTED.value,
        entity=record.kind.value,
        entity_id=target.record_id,
    )
    if record.kind is RecordKind.SCREENING_DATA:
        # The screening form's saves after the first are corrections of the same record, with their reason.
        form_saves = AuditEntry.objects.filter(
            subject_code=reader.subject.code,
            event=AuditEvent.SCREENING_DATA_RECORDED.value,
            entity="screening_record",
            entity_id=target.record_id,
        ).exclude(reason="")
        rows = rows | form_saves
    entries_rows = list(rows.order_by("sequence"))
    names = {
        u.pk: u.get_full_name() or u.get_username()
        for u in User.objects.filter(pk__in={e.actor_id for e in entries_rows if e.actor_id})
    }
    entries = []
    for row in entries_rows:
        changes = entry_changes(row)
        for index, change in enumerate(changes):
            if row.event == AuditEvent.RECORD_CORRECTED.value and index > 0:
                break
            entries.append(
                HistoryEntry(
                    at=row.occurred_at,
                    username=row.actor_username,
                    name=names.get(row.actor_id or 0, row.actor_username),
                    role=row.role,
                    center=row.center_code,
                    field=str(change.get("field")),
                    old=change.get("old"),
                    new=change.get("new"),
                    reason=row.reason,
                    follows=changes[1:] if row.event == AuditEvent.RECORD_CORRECTED.value else [],
                )
            )
    return RecordHistory(reader, target, entries, _signature_chain(target))
