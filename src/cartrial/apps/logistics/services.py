"""Logistics writes: chain of identity, collections, shipments, custody, batches, receipt, thaw, infusion.

Each function is one unit of work on the logistics records, run inside the transaction of the
user action that calls it: a pathway step (the pathway engine calls the step's function, see
`apps/pathway/steps.py`) or an action of its own (receipt at the lab, QC, thaw, temperature
log, OOS exception, run through the access entry point's `Reach.run`). Rules are the domain's
(custody, shipping, bedside, manufacturing, temperature); refusals are its typed errors; a wrong
scan carries its deviation, written after the rollback. Every record changed gets one audit
entry, with the action's actor and time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import signature_apply
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    CustodyRecord,
    Deviation,
    DeviationComment,
    IdentifierCounter,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    QcResult,
    Shipment,
    TemperatureLog,
    Thaw,
)
from cartrial.apps.logistics.selectors import current_batch, latest_qc_conformity, subject_milestones
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.bedside import BedsideScan, IdentityMismatch, bedside_mismatches
from cartrial.domain.chronology import Milestone, Moment, chronology_check
from cartrial.domain.custody import CustodyEvent, CustodyScanMismatch, check_hand_over
from cartrial.domain.deviations import (
    STILL_OPEN_AT_END,
    DeviationKind,
    DeviationOwners,
    DeviationStatus,
    deviation_authorise,
    deviation_message,
    deviation_move,
    deviation_owners,
)
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.identity import (
    ChainOfIdentityIdentifier,
    DonationIdentificationNumber,
    Identifier,
    new_coi,
    new_din,
)
from cartrial.domain.manufacturing import BatchStatus, FailureBranch, QcVerdict, judge_qc_result, qc_verdict
from cartrial.domain.pathway import STEP_LABELS
from cartrial.domain.quantities import collection_counts_check
from cartrial.domain.roles import ACTION_LABELS, Role
from cartrial.domain.shipping import (
    DispatchInput,
    arrival_check,
    dispatch_check,
    logger_period_check,
    not_in_future,
    transit_hours_beyond_limit,
)
from cartrial.domain.temperature import (
    TemperatureLimits,
    TemperatureLogError,
    detect_excursions,
    parse_temperature_log,
)
from cartrial.domain.text import N_, Message, label, params_from_json, params_to_json
from cartrial.protocols import Protocol

# ICCBBA validation FINs only (logistics.md §2, §6 rule 7): production identifiers need ICCBBA
# registration, and issuing CoIs a registration as a CoI issuing organisation.
COI_FACILITY_NUMBER = "A9999"
DIN_FACILITY_NUMBER = "A9998"
# A logger reading every minute for 30 days is ~40 000 lines (~1.5 MB); anything far larger is not a log.
MAX_TEMPERATURE_FILE_BYTES = 5_000_000

# Meanings are stored in English with the signature and shown in the reader's language (msgids).
RELEASE_MEANING = N_("I release this batch for infusion (qualified person)")
OOS_EXCEPTION_MEANING = N_("I request infusion of this out-of-specification product under a documented exception")
BEDSIDE_MEANING = N_("I verified the product's and the patient's identity at the bedside")


# --- identifiers -------------------------------------------------------------------------------


def coi_of(coi: ChainOfIdentity) -> ChainOfIdentityIdentifier:
    content = coi.content
    return ChainOfIdentityIdentifier(content[2:7], content[7:9], content[9:15])


def din_of(collection: Collection) -> DonationIdentificationNumber:
    content = collection.din
    return DonationIdentificationNumber(content[0:5], content[5:7], content[7:13])


def batch_label(batch: ManufacturingBatch) -> str:
    return f"{batch.coi.content}-{batch.number}"


def _next_number(kind: str, facility_number: str, year: int) -> int:
    IdentifierCounter.objects.get_or_create(kind=kind, facility_number=facility_number, year=year % 100)
    counter = IdentifierCounter.objects.select_for_update().get(
        kind=kind, facility_number=facility_number, year=year % 100
    )
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def coi_ensure(*, actor: Actor, subject: Subject) -> ChainOfIdentity:
    """The subject's CoI, allocated now if it has none (at inclusion, before the first apheresis)."""
    existing = ChainOfIdentity.objects.filter(subject=subject).first()
    if existing is not None:
        return existing
    identifier = new_coi(
        facility_number=COI_FACILITY_NUMBER,
        year=actor.now.year,
        sequence_number=_next_number("coi", COI_FACILITY_NUMBER, actor.now.year),
    )
    coi = ChainOfIdentity.objects.create(
        subject=subject,
        content=identifier.content,
        check_character=identifier.check_character,
        allocated_at=actor.now,
        allocated_by_id=actor.recording_user_id,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.COI_ALLOCATED,
        entity="chain_of_identity",
        entity_id=coi.content,
        subject_code=subject.code,
        changes=[Change("coi", None, coi.content), Change("check_character", None, coi.check_character)],
    )
    return coi


# --- the order of dates ----------------------------------------------------------------------------


def milestones_check(
    subject: Subject,
    entered: Mapping[Milestone, tuple[Moment, str | None]],
    *,
    now: datetime,
    planning_horizon_days: int | None = None,
) -> None:
    """The dates an action brings (milestone → (date or instant, input item)): none in the future, none
    before what must precede it among the subject's known milestones (`selectors.subject_milestones`)."""
    chronology_check(
        {**subject_milestones(subject), **{milestone: at for milestone, (at, _item) in entered.items()}},
        now=now,
        zone=ZoneInfo(subject.center.time_zone),
        entered=list(entered),
        items={milestone: item for milestone, (_at, item) in entered.items() if item},
        planning_horizon_days=planning_horizon_days,
    )


# --- custody -----------------------------------------------------------------------------------


def holder_apheresis(center: Center) -> str:
    return f"{center.code} · apheresis unit"


def holder_courier(courier: str, shipper_id: str) -> str:
    return f"courier {courier} · shipper {shipper_id}"


def holder_lab(center: Center) -> str:
    return f"{center.code} · manufacturing"


def holder_pharmacy(center: Center) -> str:
    return f"{center.code} · pharmacy"


def holder_bedside(center: Center) -> str:
    return f"{center.code} · bedside"


def holder_patient(subject: Subject) -> str:
    return f"patient {subject.code}"


def material_item_id(collection: Collection) -> str:
    return f"material {collection.din}"


def product_item_id(batch: ManufacturingBatch) -> str:
    return f"product {batch.coi.content}-{batch.number}"


def _domain_event(record: CustodyRecord) -> CustodyEvent:
    return CustodyEvent(
        item_id=record.item_id,
        from_holder=record.from_holder,
        to_holder=record.to_holder,
        actor=record.actor.get_username(),
        at=record.at,
        location=record.location,
        scanned_code=record.scanned_code,
    )


def _hand_over(
    *,
    actor: Actor,
    subject: Subject,
    item_id: str,
    expected: Identifier,
    from_holder: str | None,
    to_holder: str,
    at: datetime,
    location: str,
    scanned_code: str,
    step: str,
    shipment: Shipment | None = None,
) -> CustodyRecord:
    """Check the scan and the chain with the domain, then write the hand-over.

    A wrong scan refuses the step and carries its deviation, written after the rollback.
    """
    not_in_future(at, actor.now, item="at")
    history = [
        _domain_event(r) for r in CustodyRecord.objects.filter(item_id=item_id).select_related("actor").order_by("pk")
    ]
    event = CustodyEvent(item_id, from_holder, to_holder, actor.username, at, location, scanned_code)
    try:
        check_hand_over(history, event, expected=expected)
    except CustodyScanMismatch as mismatch:
        found = mismatch.deviation
        mismatch.after_rollback.append(
            lambda: deviation_open(
                actor=actor,
                subject=subject,
                kind=DeviationKind.SCAN_MISMATCH,
                code=found.reason_code,
                params={
                    "step": label(place_label(step)),
                    "expected": found.expected_code,
                    "scanned": found.scanned_code,
                },
                step=step,
                expected=found.expected_code,
                scanned=found.scanned_code,
                location=found.location,
                # A shipment created by the refused step was rolled back with it.
                shipment=shipment
                if shipment is not None and Shipment.objects.filter(pk=shipment.pk).exists()
                else None,
            )
        )
        raise
    record = CustodyRecord.objects.create(
        subject=subject,
        item_id=item_id,
        item_code=expected.content,
        from_holder=from_holder,
        to_holder=to_holder,
        actor_id=actor.recording_user_id,
        at=at,
        location=location,
        scanned_code=scanned_code.strip(),
        shipment=shipment,
        recorded_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.CUSTODY_HAND_OVER,
        entity="custody",
        entity_id=item_id,
        subject_code=subject.code,
        changes=[
            Change("from", None, from_holder),
            Change("to", None, to_holder),
            Change("at", None, at.isoformat()),
            Change("scanned", None, scanned_code.strip()),
        ],
    )
    return record


def place_label(step: str) -> str:
    """The name of the place in the chain where a scan is made, as a deviation says it."""
    for table in (STEP_LABELS, ACTION_LABELS):
        for key, msgid in table.items():
            if key.value == step:
                return msgid
    return step


# --- deviations --------------------------------------------------------------------------------


def deviation_open(
    *,
    actor: Actor,
    subject: Subject,
    kind: DeviationKind,
    code: str,
    params: dict[str, Any],
    step: str = "",
    expected: str = "",
    scanned: str = "",
    location: str = "",
    shipment: Shipment | None = None,
) -> Deviation:
    """Write one deviation (a code and its parameters, rendered in each reader's language) and its audit entry."""
    stored = params_to_json(params)
    deviation = Deviation.objects.create(
        subject=subject,
        kind=kind.value,
        code=code,
        step=step,
        expected=expected[:60],
        scanned=scanned[:60],
        params=stored,
        message=str(deviation_message(code, params)),
        actor_id=actor.user_id,
        at=actor.now,
        location=location[:200],
        shipment=shipment,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.DEVIATION_OPENED,
        entity="deviation",
        entity_id=str(deviation.pk),
        subject_code=subject.code,
        changes=[
            Change("kind", None, kind.value),
            Change("code", None, code),
            Change("expected", None, expected),
            Change("scanned", None, scanned),
            Change("message", None, deviation.message),
        ],
    )
    return deviation


def deviation_text(deviation: Deviation) -> Message:
    """The message of a stored deviation, to render in the reader's language."""
    return deviation_message(deviation.code, params_from_json(deviation.params or {}))


def deviation_owners_of(deviation: Deviation) -> DeviationOwners:
    """Who manages this deviation (by its kind, where it happened, and which way its shipment went)."""
    shipment = deviation.shipment  # None without a query when the deviation has no shipment
    to_lab = shipment.direction == Shipment.Direction.TO_LAB if shipment is not None else None
    return deviation_owners(DeviationKind(deviation.kind), deviation.step, to_lab)


DEVIATION_MOVE_EVENTS: dict[str, AuditEvent] = {
    "acknowledge": AuditEvent.DEVIATION_ACKNOWLEDGED,
    "comment": AuditEvent.DEVIATION_COMMENTED,
    "close": AuditEvent.DEVIATION_CLOSED,
    "reopen": AuditEvent.DEVIATION_REOPENED,
}


def _acting_role(actor: Actor) -> Role | None:
    try:
        return Role(actor.role)
    except ValueError:
        return None


def deviation_manage(*, actor: Actor, subject: Subject, deviation_id: int, move: str, text: str) -> Deviation:
    """One move in a deviation's life (acknowledge, comment, close, reopen) by a role that owns it.

    The deviation is found through its subject (another subject's: NotFound) and locked; the
    domain says whether the actor's role owns this move on it (AccessDenied naming who may) and
    whether the move is possible now (wrong status: Refused; a comment or reason missing:
    InvalidInput). Every move leaves a comment row (the acknowledgement's note, the comment, the
    closing or reopening reason); the deviation and the comment get one audit entry each, under
    the move's event.
    """
    deviation = Deviation.objects.select_for_update().filter(pk=deviation_id, subject=subject).first()
    if deviation is None:
        raise NotFound(
            "No deviation {deviation} for subject {subject}.",
            code="deviation_not_found",
            deviation=deviation_id,
            subject=subject.code,
        )
    deviation_authorise(_acting_role(actor), deviation_owners_of(deviation), move)
    before = DeviationStatus(deviation.status)
    after = deviation_move(before, move, text)
    text = text.strip()
    event = DEVIATION_MOVE_EVENTS[move]
    fields: dict[str, Any] = {}
    if move == "acknowledge":
        fields = {"acknowledged_at": actor.now, "acknowledged_by_id": actor.user_id}
    elif move == "close":
        fields = {"closed_at": actor.now, "closed_by_id": actor.user_id, "closing_reason": text}
    elif move == "reopen":
        # Open again, to be taken in charge anew; the earlier acknowledgement and closure stay in
        # the comments and the audit trail.
        fields = {
            "acknowledged_at": None,
            "acknowledged_by_id": None,
            "closed_at": None,
            "closed_by_id": None,
            "closing_reason": "",
        }
    if after is not before:
        _deviation_update(actor, subject, deviation, event, {"status": after.value, **fields}, reason=text)
    _deviation_comment(actor, subject, deviation, event, move, text)
    return deviation


def deviation_close_as_no_longer_applying(
    *, actor: Actor, deviation: Deviation, reason: str, cause: str = "no_longer_applies"
) -> Deviation:
    """Close a deviation that a correction made no longer apply (e.g. a corrected receipt time that
    brings the transit within the product's limit), inside the correction's transaction.

    The correcting service's own access check covers this: no owner check, since what closes it
    is the corrected record, not someone's judgement; the reason says which correction. The
    closing is recorded like any other (comment row, `logistics.deviation_closed` on both records,
    marked `closed_because: no_longer_applies`). A deviation already closed is left as it is.
    """
    if not reason.strip():
        raise InvalidInput("Write the {what}.", code="reason_required", item="reason", what=Message(N_("reason")))
    locked = Deviation.objects.select_for_update().select_related("subject").get(pk=deviation.pk)
    if locked.status == DeviationStatus.CLOSED:
        return locked
    reason = reason.strip()
    event = AuditEvent.DEVIATION_CLOSED
    fields = {
        "status": DeviationStatus.CLOSED.value,
        "closed_at": actor.now,
        "closed_by_id": actor.user_id,
        "closing_reason": reason,
    }
    _deviation_update(
        actor,
        locked.subject,
        locked,
        event,
        fields,
        reason=reason,
        extra=[Change("closed_because", None, cause)],
    )
    _deviation_comment(actor, locked.subject, locked, event, "close", reason)
    return locked


def _deviation_update(
    actor: Actor,
    subject: Subject,
    deviation: Deviation,
    event: AuditEvent,
    fields: dict[str, Any],
    *,
    reason: str,
    extra: list[Change] | None = None,
) -> None:
    changes = []
    for name, new in fields.items():
        old = getattr(deviation, name)
        setattr(deviation, name, new)
        if old != new:
            changes.append(Change(name, _audit_value(old), _audit_value(new)))
    deviation.save(update_fields=[name.removesuffix("_id") for name in fields])
    audit_record(
        actor=actor,
        event=event,
        entity="deviation",
        entity_id=str(deviation.pk),
        subject_code=subject.code,
        changes=[*changes, *(extra or [])],
        reason=reason,
    )


def _deviation_comment(
    actor: Actor, subject: Subject, deviation: Deviation, event: AuditEvent, move: str, text: str
) -> DeviationComment:
    comment = DeviationComment.objects.create(
        deviation=deviation, text=text, author_id=actor.recording_user_id, role=actor.role, move=move, at=actor.now
    )
    audit_record(
        actor=actor,
        event=event,
        entity="deviation_comment",
        entity_id=str(comment.pk),
        subject_code=subject.code,
        changes=[
            Change("deviation", None, deviation.pk),
            Change("move", None, move),
            Change("text", None, text),
        ],
    )
    return comment


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- collections and material shipments --------------------------------------------------------


@dataclass(frozen=True)
class CollectionInput:
    started_at: datetime
    ended_at: datetime
    volume_ml: float
    tnc_e9: float | None = None
    cd3_cells_e9: float | None = None


def collection_input_check(data: CollectionInput, now: datetime) -> None:
    """What a collection must say (new or corrected): it ends after it starts, not in the future,
    with volume and cell counts in their plausible ranges (`quantities`)."""
    if data.ended_at < data.started_at:
        raise InvalidInput(
            "The collection ends ({ended_at}) before it starts ({started_at}).",
            code="collection_times",
            item="ended_at",
            ended_at=data.ended_at,
            started_at=data.started_at,
        )
    not_in_future(data.ended_at, now, item="ended_at")
    collection_counts_check(volume_ml=data.volume_ml, tnc_e9=data.tnc_e9, cd3_cells_e9=data.cd3_cells_e9)


def collection_record(*, actor: Actor, subject: Subject, data: CollectionInput) -> Collection:
    """A new collection with its own DIN under the CoI; its custody starts at the apheresis unit."""
    coi = ChainOfIdentity.objects.filter(subject=subject).first()
    if coi is None:
        raise Refused("No chain-of-identity code (CoI) is allocated: schedule the apheresis first.", code="coi_missing")
    collection_input_check(data, actor.now)
    din = new_din(
        facility_number=DIN_FACILITY_NUMBER,
        year=data.ended_at.year,
        sequence_number=_next_number("din", DIN_FACILITY_NUMBER, data.ended_at.year),
    )
    number = Collection.objects.filter(subject=subject).count() + 1
    collection = Collection.objects.create(
        subject=subject,
        coi=coi,
        number=number,
        din=din.content,
        check_character=din.check_character,
        started_at=data.started_at,
        ended_at=data.ended_at,
        volume_ml=data.volume_ml,
        tnc_e9=data.tnc_e9,
        cd3_cells_e9=data.cd3_cells_e9,
        recorded_by_id=actor.recording_user_id,
        recorded_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.COLLECTION_RECORDED,
        entity="collection",
        entity_id=din.content,
        subject_code=subject.code,
        changes=[
            Change("din", None, din.content),
            Change("number", None, number),
            Change("started_at", None, data.started_at.isoformat()),
            Change("ended_at", None, data.ended_at.isoformat()),
            Change("volume_ml", None, data.volume_ml),
            Change("tnc_e9", None, data.tnc_e9),
            Change("cd3_cells_e9", None, data.cd3_cells_e9),
        ],
    )
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=material_item_id(collection),
        expected=din,
        from_holder=None,
        to_holder=holder_apheresis(subject.center),
        at=data.ended_at,
        location=subject.center.name,
        scanned_code=din.barcode_data(),
        step="collect_apheresis",
    )
    return collection


def _shipment_create(
    *,
    actor: Actor,
    subject: Subject,
    data: DispatchInput,
    direction: str,
    product_code: str,
    origin: Center,
    destination: Center,
    collection: Collection | None = None,
    batch: ManufacturingBatch | None = None,
) -> Shipment:
    if collection is not None:
        item_code = collection.din
    elif batch is not None:
        item_code = batch.coi.content
    else:
        raise ValueError("a shipment carries an apheresis collection or a manufactured batch")
    shipment = Shipment.objects.create(
        subject=subject,
        direction=direction,
        collection=collection,
        batch=batch,
        item_code=item_code,
        product_code=product_code,
        condition=data.condition,
        courier=data.courier.strip(),
        shipper_id=data.shipper_id.strip(),
        origin=origin,
        destination=destination,
        planned_departure_at=data.planned_departure_at,
        planned_arrival_at=data.planned_arrival_at,
        actual_departure_at=data.actual_departure_at,
        arrival_confirmed=data.arrival_confirmed,
        created_by_id=actor.recording_user_id,
        created_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.SHIPMENT_DISPATCHED,
        entity="shipment",
        entity_id=str(shipment.pk),
        subject_code=subject.code,
        changes=[
            Change("direction", None, shipment.direction),
            Change("item", None, shipment.item_code),
            Change("courier", None, shipment.courier),
            Change("shipper_id", None, shipment.shipper_id),
            Change("condition", None, shipment.condition),
            Change("planned_departure_at", None, shipment.planned_departure_at.isoformat()),
            Change("planned_arrival_at", None, shipment.planned_arrival_at.isoformat()),
            Change("actual_departure_at", None, shipment.actual_departure_at.isoformat()),
            Change("arrival_confirmed", None, shipment.arrival_confirmed),
        ],
    )
    return shipment


def material_dispatch(*, actor: Actor, subject: Subject, protocol: Protocol, data: DispatchInput) -> Shipment:
    """The latest collection leaves the apheresis unit with the courier, its DIN scanned."""
    dispatch_check(data, actor.now)
    collection = Collection.objects.filter(subject=subject).order_by("-number").first()
    if collection is None:
        raise Refused("No collection is recorded.", code="collection_missing")
    lab = subject.manufacturing_site
    if lab is None:
        raise Refused("No manufacturing lab is assigned.", code="lab_missing")
    # Fresh material travels under the starting material's limits; cryopreserved material under the
    # cryopreserved product's (the protocol has no separate cryopreserved-apheresis product yet).
    fresh = data.condition == Shipment.Condition.FRESH
    product = (protocol.starting_material if fresh else protocol.drug_product).code
    shipment = _shipment_create(
        actor=actor,
        subject=subject,
        data=data,
        direction=Shipment.Direction.TO_LAB,
        product_code=product,
        origin=subject.center,
        destination=lab,
        collection=collection,
    )
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=material_item_id(collection),
        expected=din_of(collection),
        from_holder=holder_apheresis(subject.center),
        to_holder=holder_courier(shipment.courier, shipment.shipper_id),
        at=data.actual_departure_at,
        location=subject.center.name,
        scanned_code=data.scanned_code,
        step="ship_material",
        shipment=shipment,
    )
    return shipment


def _arrive(actor: Actor, subject: Subject, shipment: Shipment, at: datetime) -> None:
    arrival_check(shipment.actual_departure_at, at, actor.now)
    shipment.actual_arrival_at = at
    shipment.save(update_fields=["actual_arrival_at"])
    audit_record(
        actor=actor,
        event=AuditEvent.SHIPMENT_ARRIVED,
        entity="shipment",
        entity_id=str(shipment.pk),
        subject_code=subject.code,
        changes=[Change("actual_arrival_at", None, at.isoformat())],
    )


def _in_transit(subject: Subject, direction: str) -> Shipment | None:
    return (
        Shipment.objects.filter(subject=subject, direction=direction, actual_arrival_at__isnull=True)
        .select_related("collection", "batch__coi", "destination", "origin")
        .order_by("-pk")
        .first()
    )


def material_receive(
    *, actor: Actor, subject: Subject, protocol: Protocol, scanned_code: str, received_at: datetime | None = None
) -> ManufacturingBatch:
    """The lab takes the material from the courier (DIN scanned); a batch is opened, status `received`.

    A transit time beyond the product's limit does not stop the receipt: it opens a deviation.
    """
    at = received_at or actor.now
    shipment = _in_transit(subject, Shipment.Direction.TO_LAB)
    if shipment is None or shipment.collection is None:
        raise Refused("No apheresis shipment to the lab is in transit.", code="shipment_missing")
    collection = shipment.collection
    lab = shipment.destination
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=material_item_id(collection),
        expected=din_of(collection),
        from_holder=holder_courier(shipment.courier, shipment.shipper_id),
        to_holder=holder_lab(lab),
        at=at,
        location=lab.name,
        scanned_code=scanned_code,
        step="receive_material",
        shipment=shipment,
    )
    _arrive(actor, subject, shipment, at)
    limits = protocol.product(shipment.product_code)
    hours = transit_hours_beyond_limit(collection.ended_at, at, limits.max_transit_hours)
    if hours is not None:
        deviation_open(
            actor=actor,
            subject=subject,
            kind=DeviationKind.TRANSIT_TIME,
            code="transit_time_exceeded",
            params={"hours": round(hours, 1), "limit": limits.max_transit_hours, "product": limits.code},
            step="receive_material",
            location=lab.name,
            shipment=shipment,
        )
    number = ManufacturingBatch.objects.filter(subject=subject).count() + 1
    batch = ManufacturingBatch.objects.create(
        subject=subject,
        coi=collection.coi,
        collection=collection,
        number=number,
        status=BatchStatus.RECEIVED,
        received_at=at,
    )
    _audit_batch(actor, subject, batch, None)
    return batch


# --- batches -----------------------------------------------------------------------------------


def _audit_batch(
    actor: Actor, subject: Subject, batch: ManufacturingBatch, old_status: str | None, **extra: Any
) -> None:
    audit_record(
        actor=actor,
        event=AuditEvent.BATCH_STATUS_CHANGED,
        entity="batch",
        entity_id=batch_label(batch),
        subject_code=subject.code,
        changes=[Change("status", old_status, batch.status), *(Change(k, None, v) for k, v in extra.items())],
    )


def _set_status(actor: Actor, subject: Subject, batch: ManufacturingBatch, status: BatchStatus, **extra: Any) -> None:
    old = batch.status
    batch.status = status
    batch.save()
    _audit_batch(actor, subject, batch, old, **extra)


def _batch_or_refuse(subject: Subject) -> ManufacturingBatch:
    batch = current_batch(subject)
    if batch is None:
        raise Refused(
            "No manufacturing batch exists: the lab has not recorded receipt of the material.", code="batch_missing"
        )
    return batch


def batch_start(*, actor: Actor, subject: Subject) -> ManufacturingBatch:
    """Production starts on the batch opened when the lab scanned the material in."""
    batch = _batch_or_refuse(subject)
    batch.started_at = actor.now
    _set_status(actor, subject, batch, BatchStatus.IN_PRODUCTION)
    return batch


def qc_result_record(*, actor: Actor, subject: Subject, protocol: Protocol, test_code: str, value: str) -> QcResult:
    """One release-test result; the batch moves to QC, or out of specification if a result does not conform."""
    batch = _batch_or_refuse(subject)
    if batch.status not in (BatchStatus.IN_PRODUCTION, BatchStatus.QC, BatchStatus.OUT_OF_SPECIFICATION):
        raise Refused(
            "QC results are recorded for a batch in production or QC, not “{status}”.",
            code="batch_not_in_production",
            status=batch.status,
        )
    specification = protocol.drug_product.release_specification
    judged = judge_qc_result(test_code, value, specification)
    spec = specification[test_code]
    result = QcResult.objects.create(
        batch=batch,
        test_code=test_code,
        value_text=judged.value_text,
        value_number=judged.value_number,
        unit=spec.unit,
        specification=str(spec.describe()),
        conforms=judged.conforms,
        recorded_by_id=actor.recording_user_id,
        recorded_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.QC_RESULT_RECORDED,
        entity="qc_result",
        entity_id=str(result.pk),
        subject_code=subject.code,
        changes=[
            Change("batch", None, batch_label(batch)),
            Change("test", None, test_code),
            Change("value", None, judged.value_text),
            Change("conforms", None, judged.conforms),
        ],
    )
    if batch.qc_started_at is None:
        batch.qc_started_at = actor.now
    verdict = qc_verdict(latest_qc_conformity(batch), specification)
    target = BatchStatus.OUT_OF_SPECIFICATION if verdict is QcVerdict.OUT_OF_SPECIFICATION else BatchStatus.QC
    if batch.status != target:
        _set_status(actor, subject, batch, target)
    else:
        batch.save(update_fields=["qc_started_at"])
    return result


def batch_release(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    password: str,
    scanned_code: str,
    otp_code: str = "",
) -> ElectronicSignature:
    """The qualified person signs the release; the product's custody starts at the lab (CoI scanned)."""
    batch = _batch_or_refuse(subject)
    conformity = latest_qc_conformity(batch)
    verdict = qc_verdict(conformity, protocol.drug_product.release_specification)
    under_exception = verdict is not QcVerdict.CONFORMS
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        otp_code=otp_code,
        meaning=RELEASE_MEANING,
        entity="batch",
        entity_id=batch_label(batch),
        subject_code=subject.code,
        content={
            "coi": batch.coi.content,
            "batch": batch.number,
            "din": batch.collection.din,
            "qc": conformity,
            "under_exception": under_exception,
        },
    )
    batch.released_at = actor.now
    batch.release_signature = signature
    batch.released_under_exception = under_exception
    _set_status(actor, subject, batch, BatchStatus.RELEASED, under_exception=under_exception)
    lab = subject.manufacturing_site or subject.center
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=None,
        to_holder=holder_lab(lab),
        at=actor.now,
        location=lab.name,
        scanned_code=scanned_code,
        step="release_product",
    )
    return signature


def batch_fail(*, actor: Actor, subject: Subject, reason: str) -> ManufacturingBatch:
    """The batch failed (or stays out of specification without an exception); a branch must follow."""
    batch = _batch_or_refuse(subject)
    batch.failed_at = actor.now
    batch.failure_reason = reason
    status = (
        BatchStatus.OUT_OF_SPECIFICATION if batch.status == BatchStatus.OUT_OF_SPECIFICATION else BatchStatus.FAILED
    )
    _set_status(actor, subject, batch, status, failure_reason=reason)
    return batch


def _decide(actor: Actor, subject: Subject, batch: ManufacturingBatch, branch: FailureBranch, reason: str) -> None:
    batch.branch = branch.value
    batch.branch_decided_at = actor.now
    batch.branch_decided_by_id = actor.user_id
    batch.branch_reason = reason
    batch.save()
    audit_record(
        actor=actor,
        event=AuditEvent.FAILURE_BRANCH_DECIDED,
        entity="batch",
        entity_id=batch_label(batch),
        subject_code=subject.code,
        changes=[Change("branch", None, branch.value)],
        reason=reason,
    )


def batch_remanufacture(*, actor: Actor, subject: Subject, reason: str) -> ManufacturingBatch:
    """Branch 'remanufacture': a new batch from the same collection's material, already at the lab."""
    failed = _batch_or_refuse(subject)
    _decide(actor, subject, failed, FailureBranch.REMANUFACTURE, reason)
    batch = ManufacturingBatch.objects.create(
        subject=subject,
        coi=failed.coi,
        collection=failed.collection,
        number=failed.number + 1,
        status=BatchStatus.IN_PRODUCTION,
        received_at=actor.now,
        started_at=actor.now,
    )
    _audit_batch(actor, subject, batch, None, remanufacture_of=failed.number)
    return batch


def batch_re_apheresis(*, actor: Actor, subject: Subject, reason: str) -> None:
    """Branch 're-apheresis': a new collection (new DIN, same CoI) will follow."""
    _decide(actor, subject, _batch_or_refuse(subject), FailureBranch.RE_APHERESIS, reason)


def batch_no_infusion(*, actor: Actor, subject: Subject, reason: str) -> None:
    """Branch 'no infusion': the decision on the batch; the subject leaves the study in the same step."""
    _decide(actor, subject, _batch_or_refuse(subject), FailureBranch.NO_INFUSION, reason)


def batch_document_oos_exception(
    *, actor: Actor, user: User, subject: Subject, password: str, justification: str, otp_code: str = ""
) -> ManufacturingBatch:
    """The investigator signs the request to infuse an out-of-specification product (documented exception)."""
    batch = _batch_or_refuse(subject)
    if batch.status != BatchStatus.OUT_OF_SPECIFICATION:
        raise Refused("An exception is documented only for a batch out of specification.", code="batch_not_oos")
    if len(justification.strip()) < 10:
        raise InvalidInput(
            "Write the medical justification of the exception.", code="justification_required", item="justification"
        )
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        otp_code=otp_code,
        meaning=OOS_EXCEPTION_MEANING,
        entity="batch",
        entity_id=batch_label(batch),
        subject_code=subject.code,
        content={"coi": batch.coi.content, "batch": batch.number, "justification": justification.strip()},
    )
    batch.oos_exception_signature = signature
    batch.oos_exception_justification = justification.strip()
    _decide(actor, subject, batch, FailureBranch.OOS_EXCEPTION, justification.strip())
    return batch


# --- product shipment, receipt, thaw, infusion -------------------------------------------------


def product_dispatch(*, actor: Actor, subject: Subject, protocol: Protocol, data: DispatchInput) -> Shipment:
    """The released product leaves the lab in LN2 vapour with the courier, its CoI scanned."""
    dispatch_check(data, actor.now)
    batch = _batch_or_refuse(subject)
    lab = subject.manufacturing_site or subject.center
    shipment = _shipment_create(
        actor=actor,
        subject=subject,
        data=data,
        direction=Shipment.Direction.TO_CENTER,
        product_code=protocol.drug_product.code,
        origin=lab,
        destination=subject.center,
        batch=batch,
    )
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_lab(lab),
        to_holder=holder_courier(shipment.courier, shipment.shipper_id),
        at=data.actual_departure_at,
        location=lab.name,
        scanned_code=data.scanned_code,
        step="ship_product",
        shipment=shipment,
    )
    return shipment


def storage_location_check(storage_location: str) -> None:
    """Where the product is stored is said (new or corrected)."""
    if not storage_location.strip():
        raise InvalidInput(
            "Give the storage location of the product.", code="storage_location_missing", item="storage_location"
        )
    if len(storage_location.strip()) > 100:
        raise InvalidInput(
            "The storage location is at most {size} characters.",
            code="storage_location_too_long",
            item="storage_location",
            size=100,
        )


def product_receive(
    *, actor: Actor, subject: Subject, scanned_code: str, storage_location: str, received_at: datetime | None = None
) -> ProductReceipt:
    """A pharmacist's receipt of the product, all of it: the courier hands the product over (CoI
    scanned against the batch in transit), the shipment arrives, the pharmacy records where it is stored.

    Three records, one audit entry each (custody, shipment, receipt); the pathway step adds its own.
    """
    storage_location_check(storage_location)
    at = received_at or actor.now
    shipment = _in_transit(subject, Shipment.Direction.TO_CENTER)
    if shipment is None or shipment.batch is None:
        raise Refused("No product shipment to the center is in transit.", code="shipment_missing")
    batch = shipment.batch
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_courier(shipment.courier, shipment.shipper_id),
        to_holder=holder_pharmacy(subject.center),
        at=at,
        location=subject.center.name,
        scanned_code=scanned_code,
        step="receive_product",
        shipment=shipment,
    )
    _arrive(actor, subject, shipment, at)
    receipt = ProductReceipt.objects.create(
        shipment=shipment,
        batch=batch,
        received_at=at,
        received_by_id=actor.recording_user_id,
        storage_location=storage_location.strip(),
        scanned_code=scanned_code.strip(),
    )
    audit_record(
        actor=actor,
        event=AuditEvent.PRODUCT_RECEIPT_RECORDED,
        entity="product_receipt",
        entity_id=str(receipt.pk),
        subject_code=subject.code,
        changes=[
            Change("batch", None, batch_label(batch)),
            Change("storage_location", None, receipt.storage_location),
            Change("received_at", None, at.isoformat()),
        ],
    )
    return receipt


def product_thaw(
    *, actor: Actor, subject: Subject, protocol: Protocol, scanned_code: str, thawed_at: datetime | None = None
) -> Thaw:
    """The pharmacy thaws the product (CoI scanned) and hands it to the bedside; the thaw clock starts."""
    at = thawed_at or actor.now
    batch = _batch_or_refuse(subject)
    if not ProductReceipt.objects.filter(batch=batch).exists():
        raise Refused("The product has not been received at the pharmacy.", code="product_not_received")
    if Thaw.objects.filter(batch=batch).exists():
        raise Refused(
            "This product has already been thawed: a thawed product is never refrozen.", code="already_thawed"
        )
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_pharmacy(subject.center),
        to_holder=holder_bedside(subject.center),
        at=at,
        location=subject.center.name,
        scanned_code=scanned_code,
        step="thaw",
    )
    # After the scan and the custody chain (a wrong bag is a deviation whatever the time): the thaw
    # follows the start of lymphodepletion and the receipt, and precedes any D0 (`domain.chronology`).
    milestones_check(subject, {Milestone.THAWED: (at, "thawed_at")}, now=actor.now)
    limit = protocol.drug_product.max_thaw_to_infusion_min
    thaw = Thaw.objects.create(
        batch=batch,
        thawed_at=at,
        thawed_by_id=actor.recording_user_id,
        scanned_code=scanned_code.strip(),
        max_thaw_to_infusion_min=limit,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.PRODUCT_THAWED,
        entity="thaw",
        entity_id=str(thaw.pk),
        subject_code=subject.code,
        changes=[
            Change("batch", None, batch_label(batch)),
            Change("thawed_at", None, at.isoformat()),
            Change("max_thaw_to_infusion_min", None, limit),
        ],
    )
    return thaw


@dataclass(frozen=True)
class BedsideCheck:
    """One person's part of the two-person identity check: who, their role, password, what they scanned."""

    user: User
    role: str
    password: str
    bag_code: str
    wristband_code: str
    otp_code: str = ""

    def scan(self) -> BedsideScan:
        role = Role(self.role) if self.role else None
        return BedsideScan(self.user.get_username(), role, self.bag_code, self.wristband_code)


def bedside_identity_check(*, actor: Actor, subject: Subject, checks: tuple[BedsideCheck, BedsideCheck]) -> None:
    """Both scans must match the product in force and this patient; a mismatch refuses the infusion
    and opens a deviation (written after the rollback)."""
    batch = current_batch(subject)
    coi = batch.coi.content if batch else None
    din = batch.collection.din if batch else None
    problems = bedside_mismatches([c.scan() for c in checks], subject_code=subject.code, coi=coi, din=din)
    if not problems:
        return
    error = IdentityMismatch(
        "Identity mismatch, infusion stopped: {problems}. A deviation is recorded.", problems=problems
    )
    scanned = " | ".join(f"{c.bag_code.strip()} / {c.wristband_code.strip()}" for c in checks)
    error.after_rollback.append(
        lambda: deviation_open(
            actor=actor,
            subject=subject,
            kind=DeviationKind.BEDSIDE_MISMATCH,
            code="identity_mismatch",
            params={"problems": problems},
            step="infuse",
            expected=subject.code,
            scanned=scanned,
            location=subject.center.name,
        )
    )
    raise error


def infusion_record(
    *, actor: Actor, subject: Subject, checks: tuple[BedsideCheck, BedsideCheck]
) -> ElectronicSignature:
    """Both checkers sign; custody ends with the patient; the infusion keeps both scans and signatures."""
    signatures = [
        signature_apply(
            actor=Actor(check.user.pk, check.user.get_username(), check.role, actor.center_code, actor.now),
            user=check.user,
            password=check.password,
            otp_code=check.otp_code,
            meaning=BEDSIDE_MEANING,
            entity="subject",
            entity_id=subject.code,
            subject_code=subject.code,
            content={"subject": subject.code, "bag": check.bag_code, "wristband": check.wristband_code},
        )
        for check in checks
    ]
    batch = _batch_or_refuse(subject)
    thaw = Thaw.objects.filter(batch=batch).order_by("-thawed_at").first()
    if thaw is None:
        raise Refused("The thaw is not recorded.", code="product_not_thawed")
    _hand_over(
        actor=actor,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_bedside(subject.center),
        to_holder=holder_patient(subject),
        at=actor.now,
        location=subject.center.name,
        scanned_code=checks[0].bag_code,
        step="infuse",
    )
    first, second = checks
    infusion = Infusion.objects.create(
        batch=batch,
        thaw=thaw,
        infused_at=actor.now,
        minutes_from_thaw=(actor.now - thaw.thawed_at).total_seconds() / 60,
        first_checker=first.user,
        first_bag_code=first.bag_code.strip(),
        first_wristband_code=first.wristband_code.strip(),
        first_signature=signatures[0],
        second_checker=second.user,
        second_bag_code=second.bag_code.strip(),
        second_wristband_code=second.wristband_code.strip(),
        second_signature=signatures[1],
    )
    audit_record(
        actor=actor,
        event=AuditEvent.INFUSION_RECORDED,
        entity="infusion",
        entity_id=str(infusion.pk),
        subject_code=subject.code,
        changes=[
            Change("batch", None, batch_label(batch)),
            Change("infused_at", None, actor.now.isoformat()),
            Change("minutes_from_thaw", None, round(infusion.minutes_from_thaw, 1)),
            Change("checkers", None, [first.user.get_username(), second.user.get_username()]),
        ],
    )
    return signatures[0]


# --- temperature logs --------------------------------------------------------------------------


def temperature_log_refused(error: TemperatureLogError, item: str = "file") -> InvalidInput:
    """A logger file that cannot be read with certainty, as the refusal of the import (the whole file)."""
    return InvalidInput(
        "Temperature file refused, nothing imported. {problem}", code=error.code, item=item, problem=error.message
    )


def temperature_log_import(
    *,
    actor: Actor,
    subject: Subject,
    shipment: Shipment,
    protocol: Protocol,
    content: bytes,
    file_name: str,
    logger_time_zone: str,
    replaces: TemperatureLog | None = None,
    reason: str = "",
) -> TemperatureLog:
    """Import a data-logger CSV for a shipment; excursions against the product's limits open deviations.

    A file that cannot be read with certainty is refused whole, with its line number: nothing is stored.
    A file imported again in place of a wrong one (`replaces`, with a reason) is a correction: both
    files stay, and the excursions are evaluated anew: one the new file shows again keeps its
    deviation, one it no longer shows has its deviation closed with the reason, a new one opens one.
    So is a reading outside what a logger can read (`quantities.LOGGER_TEMPERATURE_C`), a reading in
    the future, or a file whose readings never meet the shipment's transit.
    """
    if replaces is not None:
        if replaces.shipment_id != shipment.pk:
            raise InvalidInput(
                "The file replaced must be a log of the same shipment.",
                code="temperature_log_other_shipment",
                item="replaces",
            )
        if not reason.strip():
            raise InvalidInput(
                "A reason for the correction is required: the value was already saved.",
                code="reason_required",
                item="reason",
            )
    if len(content) > MAX_TEMPERATURE_FILE_BYTES:
        raise InvalidInput(
            "The file is larger than {megabytes} MB: is it a logger export?",
            code="temperature_log_too_large",
            item="file",
            megabytes=MAX_TEMPERATURE_FILE_BYTES // 1_000_000,
        )
    try:
        zone = ZoneInfo(logger_time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "Unknown time zone '{zone}'.", code="time_zone_unknown", item="logger_time_zone", zone=logger_time_zone
        ) from None
    try:
        log = parse_temperature_log(content, naive_time_zone=zone)
    except TemperatureLogError as error:
        raise temperature_log_refused(error) from None
    logger_period_check(
        log.readings[0].at,
        log.readings[-1].at,
        departed_at=shipment.actual_departure_at,
        arrived_at=shipment.actual_arrival_at,
        now=actor.now,
    )
    product = protocol.product(shipment.product_code)
    limits = TemperatureLimits(product.min_temperature_c, product.max_temperature_c)
    excursions = detect_excursions(log.readings, limits)
    temperatures = [r.temperature_c for r in log.readings]
    record = TemperatureLog.objects.create(
        shipment=shipment,
        file_name=file_name[:200],
        file_sha256=hashlib.sha256(content).hexdigest(),
        logger_time_zone=logger_time_zone,
        source_unit=log.source_unit.value,
        readings_json=json.dumps([[r.at.isoformat(), round(r.temperature_c, 3), r.line_number] for r in log.readings]),
        excursions_json=json.dumps([_excursion_json(e) for e in excursions]),
        min_temperature_c=min(temperatures),
        max_temperature_c=max(temperatures),
        limit_min_c=product.min_temperature_c,
        limit_max_c=product.max_temperature_c,
        reading_count=len(log.readings),
        uploaded_by_id=actor.recording_user_id,
        uploaded_at=actor.now,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.TEMPERATURE_LOG_IMPORTED,
        entity="temperature_log",
        entity_id=str(record.pk),
        subject_code=subject.code,
        changes=[
            Change("shipment", None, shipment.pk),
            Change("file", None, record.file_name),
            Change("sha256", None, record.file_sha256),
            Change("readings", None, record.reading_count),
            Change("excursions", None, len(excursions)),
            *([Change("replaces", None, replaces.pk)] if replaces is not None else []),
        ],
        reason=reason.strip() if replaces is not None else "",
        is_correction=replaces is not None,
    )
    kept = _excursion_deviations(replaces) if replaces is not None else {}
    found = set()
    for excursion in excursions:
        if excursion.tolerated:
            continue
        key = (excursion.side.value, params_to_json({"start": excursion.start})["start"])
        found.add(key)
        if key in kept:
            continue
        deviation_open(
            actor=actor,
            subject=subject,
            kind=DeviationKind.TEMPERATURE_EXCURSION,
            code=excursion.side.value,
            params={
                "product": product.code,
                "limit": excursion.limit_c,
                "worst_deviation": round(excursion.worst_deviation_c, 1),
                "duration": round(excursion.duration_min),
                "start": excursion.start,
                "line": excursion.first_line_number,
                "still_open": label(STILL_OPEN_AT_END) if excursion.open_at_end_of_log else "",
            },
            step="temperature_log",
            expected=f"{product.min_temperature_c:g}..{product.max_temperature_c:g} °C",
            scanned=f"{excursion.worst_temperature_c:g} °C",
            shipment=shipment,
        )
    if replaces is not None:
        for key, deviation in kept.items():
            if key not in found:
                deviation_close_as_no_longer_applying(
                    actor=actor,
                    deviation=deviation,
                    reason=reason,
                    cause=f"temperature_log {record.pk} replaces {replaces.pk}",
                )
    return record


def _excursion_deviations(log: TemperatureLog) -> dict[tuple[str, object], Deviation]:
    """The deviations still in force that a log's excursions opened, by (side, start)."""
    keys = {
        (e["side"], params_to_json({"start": datetime.fromisoformat(e["start"])})["start"])
        for e in json.loads(log.excursions_json)
    }
    deviations = (
        Deviation.objects.filter(shipment=log.shipment, kind=DeviationKind.TEMPERATURE_EXCURSION.value)
        .exclude(status=DeviationStatus.CLOSED.value)
        .select_related("subject")
    )
    return {(d.code, d.params.get("start")): d for d in deviations if (d.code, d.params.get("start")) in keys}


def _excursion_json(excursion: Any) -> dict[str, Any]:
    return {
        "side": excursion.side.value,
        "limit_c": excursion.limit_c,
        "start": excursion.start.isoformat(),
        "end": excursion.end.isoformat(),
        "duration_min": round(excursion.duration_min, 1),
        "worst_temperature_c": excursion.worst_temperature_c,
        "worst_deviation_c": round(excursion.worst_deviation_c, 2),
        "open_at_end_of_log": excursion.open_at_end_of_log,
        "first_line_number": excursion.first_line_number,
        "tolerated": excursion.tolerated,
    }
