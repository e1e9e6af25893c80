"""Logistics writes, continued: corrections of stored records with a reason (docs/corrections.md).

A correction of a collection, a shipment, a receipt, a thaw or a QC result passes the checks of
a new record (the same functions as `services.py`), replaces the value, and keeps old → new with
the reason in the audit trail. What was derived from the value follows in the same transaction:
- the custody hand-over made at that time (and the courier's name as a holder) follows, and the
  item's whole custody chain is checked again (times never go backwards);
- the receipt time at the lab is also the shipment's arrival and the batch's receipt;
- the transit time from the end of collection to the lab is evaluated again: a transit deviation
  that no longer applies is closed with the correction's reason, one that now applies is opened;
- a thaw time gives the infusion's minutes from thaw again;
- a QC result is judged again against the specification, and the batch's QC status follows;
  a released batch is signed again by the QP (`batch_release_resign`).
Each function runs inside the caller's transaction (the pathway app's `Reach.run`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import signature_apply, signature_void
from cartrial.apps.audit.services import Actor, Change, audit_correction
from cartrial.apps.logistics.models import (
    Collection,
    CustodyRecord,
    Deviation,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    QcResult,
    Shipment,
    Thaw,
)
from cartrial.apps.logistics.selectors import latest_qc_conformity
from cartrial.apps.logistics.services import (
    CollectionInput,
    _domain_event,
    _set_status,
    batch_label,
    coi_of,
    collection_input_check,
    deviation_close_as_no_longer_applying,
    deviation_open,
    din_of,
    holder_bedside,
    holder_courier,
    holder_lab,
    holder_pharmacy,
    material_item_id,
    product_item_id,
    storage_location_check,
)
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Subject
from cartrial.domain.corrections import CORRECTION_MEANING, correction_check
from cartrial.domain.custody import check_custody_chain
from cartrial.domain.deviations import DeviationKind, DeviationStatus
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.identity import Identifier
from cartrial.domain.manufacturing import BatchStatus, QcVerdict, judge_qc_result, qc_verdict
from cartrial.domain.shipping import (
    DispatchInput,
    arrival_check,
    dispatch_check,
    not_in_future,
    transit_hours_beyond_limit,
)
from cartrial.protocols import Protocol

# --- what follows: custody, deviations -----------------------------------------------------------


def _custody_follow(actor: Actor, subject: Subject, record: CustodyRecord, reason: str, **values: Any) -> None:
    """A hand-over follows the corrected record it was made with (its time, the courier's name)."""
    changes = [
        Change(name, getattr(record, name), value) for name, value in values.items() if getattr(record, name) != value
    ]
    if not changes:
        return
    for change in changes:
        setattr(record, change.field, change.new)
    record.save(update_fields=[c.field for c in changes])
    audit_correction(
        actor=actor,
        entity="custody",
        entity_id=str(record.pk),
        field=changes[0].field,
        old=changes[0].old,
        new=changes[0].new,
        reason=reason,
        subject_code=subject.code,
        follows=changes[1:],
    )


def _custody_chain_check(item_id: str, expected: Identifier) -> None:
    """The item's custody chain as corrected passes the rules a new hand-over passes."""
    records = CustodyRecord.objects.filter(item_id=item_id).select_related("actor").order_by("pk")
    check_custody_chain([_domain_event(r) for r in records], expected={item_id: expected})


def transit_deviation_reevaluate(
    *, actor: Actor, subject: Subject, protocol: Protocol, shipment: Shipment, reason: str, cause: str
) -> None:
    """The transit time from the end of collection to the lab, with corrected times: a deviation
    that no longer applies is closed, one that now applies is opened (as at receipt)."""
    collection = shipment.collection
    if collection is None or shipment.actual_arrival_at is None:
        return
    limits = protocol.product(shipment.product_code)
    hours = transit_hours_beyond_limit(collection.ended_at, shipment.actual_arrival_at, limits.max_transit_hours)
    in_force = Deviation.objects.filter(
        subject=subject, kind=DeviationKind.TRANSIT_TIME.value, shipment=shipment
    ).exclude(status=DeviationStatus.CLOSED.value)
    if hours is None:
        for deviation in in_force.select_related("subject"):
            deviation_close_as_no_longer_applying(actor=actor, deviation=deviation, reason=reason, cause=cause)
    elif not in_force.exists():
        deviation_open(
            actor=actor,
            subject=subject,
            kind=DeviationKind.TRANSIT_TIME,
            code="transit_time_exceeded",
            params={"hours": round(hours, 1), "limit": limits.max_transit_hours, "product": limits.code},
            step="receive_material",
            location=shipment.destination.name,
            shipment=shipment,
        )


# --- collections ---------------------------------------------------------------------------------


def collection_correct(
    *, actor: Actor, subject: Subject, protocol: Protocol, collection: Collection, field: str, value: Any, reason: str
) -> Collection:
    """Correct a collection's times, volume or cell counts (checked as a new collection)."""
    current = CollectionInput(
        collection.started_at, collection.ended_at, collection.volume_ml, collection.tnc_e9, collection.cd3_cells_e9
    )
    collection_input_check(replace(current, **{field: value}), actor.now)
    old = getattr(collection, field)
    correction_check(old, value, reason)
    setattr(collection, field, value)
    collection.save(update_fields=[field])
    audit_correction(
        actor=actor,
        entity="collection",
        entity_id=str(collection.pk),
        field=field,
        old=old,
        new=value,
        reason=reason,
        subject_code=subject.code,
    )
    if field != "ended_at":
        return collection
    item_id = material_item_id(collection)
    start = CustodyRecord.objects.filter(item_id=item_id, from_holder__isnull=True).order_by("pk").first()
    if start is not None:
        _custody_follow(actor, subject, start, reason, at=value)
        _custody_chain_check(item_id, din_of(collection))
    latest = Collection.objects.filter(subject=subject).order_by("-number").first()
    local_day = value.astimezone(ZoneInfo(subject.center.time_zone)).date()
    if latest is not None and latest.pk == collection.pk and subject.apheresis_date != local_day:
        # The apheresis date is the day the latest collection ended.
        subject_services.subject_date_correct(
            actor=actor, subject=subject, field="apheresis_date", value=local_day, reason=reason
        )
    cause = f"collection {collection.pk} ended_at"
    for shipment in Shipment.objects.filter(collection=collection, direction=Shipment.Direction.TO_LAB).select_related(
        "collection", "destination"
    ):
        transit_deviation_reevaluate(
            actor=actor, subject=subject, protocol=protocol, shipment=shipment, reason=reason, cause=cause
        )
    return collection


# --- shipments and receipts ----------------------------------------------------------------------


def _item(shipment: Shipment) -> tuple[str, Identifier]:
    if shipment.collection is not None:
        return material_item_id(shipment.collection), din_of(shipment.collection)
    batch = shipment.batch
    if batch is None:
        raise NotFound("This shipment carries nothing known.", code="not_found")
    return product_item_id(batch), coi_of(batch.coi)


def shipment_correct(
    *, actor: Actor, subject: Subject, shipment: Shipment, field: str, value: Any, reason: str
) -> Shipment:
    """Correct a shipment's planned or actual times, courier or shipper id (checked as a dispatch)."""
    data = DispatchInput(
        courier=shipment.courier,
        shipper_id=shipment.shipper_id,
        planned_departure_at=shipment.planned_departure_at,
        planned_arrival_at=shipment.planned_arrival_at,
        actual_departure_at=shipment.actual_departure_at,
        scanned_code="",
        condition=shipment.condition,
        arrival_confirmed=shipment.arrival_confirmed,
    )
    change: dict[str, Any] = {field: value.strip() if isinstance(value, str) else value}
    corrected = replace(data, **change)
    dispatch_check(corrected, actor.now)
    if shipment.actual_arrival_at is not None:
        arrival_check(corrected.actual_departure_at, shipment.actual_arrival_at, actor.now)
    new = getattr(corrected, field)
    old = getattr(shipment, field)
    correction_check(old, new, reason)
    old_courier = holder_courier(shipment.courier, shipment.shipper_id)
    setattr(shipment, field, new)
    shipment.save(update_fields=[field])
    kind = "material_shipment" if shipment.direction == Shipment.Direction.TO_LAB else "product_shipment"
    audit_correction(
        actor=actor,
        entity=kind,
        entity_id=str(shipment.pk),
        field=field,
        old=old,
        new=new,
        reason=reason,
        subject_code=subject.code,
    )
    courier = holder_courier(shipment.courier, shipment.shipper_id)
    for record in CustodyRecord.objects.filter(shipment=shipment).order_by("pk"):
        if record.to_holder == old_courier:  # the hand-over to the courier at departure
            _custody_follow(actor, subject, record, reason, to_holder=courier, at=shipment.actual_departure_at)
        elif record.from_holder == old_courier:  # the courier hands over at arrival
            _custody_follow(actor, subject, record, reason, from_holder=courier)
    item_id, expected = _item(shipment)
    _custody_chain_check(item_id, expected)
    return shipment


def _arrival_follow(
    actor: Actor, subject: Subject, shipment: Shipment, received_at: datetime, receiver: str, reason: str
) -> None:
    """The shipment arrived when the receipt says, and the courier's hand-over was then."""
    arrival_check(shipment.actual_departure_at, received_at, actor.now)
    old = shipment.actual_arrival_at
    shipment.actual_arrival_at = received_at
    shipment.save(update_fields=["actual_arrival_at"])
    kind = "material_shipment" if shipment.direction == Shipment.Direction.TO_LAB else "product_shipment"
    audit_correction(
        actor=actor,
        entity=kind,
        entity_id=str(shipment.pk),
        field="actual_arrival_at",
        old=old,
        new=received_at,
        reason=reason,
        subject_code=subject.code,
    )
    for record in CustodyRecord.objects.filter(shipment=shipment, to_holder=receiver).order_by("pk"):
        _custody_follow(actor, subject, record, reason, at=received_at)
    item_id, expected = _item(shipment)
    _custody_chain_check(item_id, expected)


def lab_receipt_correct(
    *, actor: Actor, subject: Subject, protocol: Protocol, shipment: Shipment, received_at: datetime, reason: str
) -> Shipment:
    """Correct when the lab received the material: the shipment's arrival, the custody hand-over and
    the batch opened at receipt follow; the transit time is evaluated again."""
    if shipment.direction != Shipment.Direction.TO_LAB or shipment.actual_arrival_at is None:
        raise NotFound("No receipt of material at the lab is recorded for this shipment.", code="not_found")
    old = shipment.actual_arrival_at
    arrival_check(shipment.actual_departure_at, received_at, actor.now)
    correction_check(old, received_at, reason)
    audit_correction(
        actor=actor,
        entity="lab_receipt",
        entity_id=str(shipment.pk),
        field="received_at",
        old=old,
        new=received_at,
        reason=reason,
        subject_code=subject.code,
    )
    _arrival_follow(actor, subject, shipment, received_at, holder_lab(shipment.destination), reason)
    opened = (
        ManufacturingBatch.objects.filter(collection=shipment.collection, received_at=old).order_by("number").first()
    )
    if opened is not None:
        opened.received_at = received_at
        opened.save(update_fields=["received_at"])
        audit_correction(
            actor=actor,
            entity="batch",
            entity_id=batch_label(opened),
            field="received_at",
            old=old,
            new=received_at,
            reason=reason,
            subject_code=subject.code,
        )
    transit_deviation_reevaluate(
        actor=actor,
        subject=subject,
        protocol=protocol,
        shipment=shipment,
        reason=reason,
        cause=f"lab_receipt {shipment.pk} received_at",
    )
    return shipment


def product_receipt_correct(
    *, actor: Actor, subject: Subject, receipt: ProductReceipt, field: str, value: Any, reason: str
) -> ProductReceipt:
    """Correct when the pharmacy received the product (the shipment's arrival and the hand-over
    follow) or where it is stored."""
    if field == "storage_location":
        storage_location_check(str(value))
        value = str(value).strip()
    old = getattr(receipt, field)
    if field == "received_at":
        arrival_check(receipt.shipment.actual_departure_at, value, actor.now)
    correction_check(old, value, reason)
    setattr(receipt, field, value)
    receipt.save(update_fields=[field])
    audit_correction(
        actor=actor,
        entity="product_receipt",
        entity_id=str(receipt.pk),
        field=field,
        old=old,
        new=value,
        reason=reason,
        subject_code=subject.code,
    )
    if field == "received_at":
        _arrival_follow(actor, subject, receipt.shipment, value, holder_pharmacy(subject.center), reason)
    return receipt


# --- thaw ----------------------------------------------------------------------------------------


def thaw_correct(*, actor: Actor, subject: Subject, thaw: Thaw, thawed_at: datetime, reason: str) -> Thaw:
    """Correct the thaw time: the hand-over to the bedside follows, and the infusion's minutes from thaw."""
    not_in_future(thawed_at, actor.now, item="value")
    old = thaw.thawed_at
    correction_check(old, thawed_at, reason)
    thaw.thawed_at = thawed_at
    thaw.save(update_fields=["thawed_at"])
    audit_correction(
        actor=actor,
        entity="thaw",
        entity_id=str(thaw.pk),
        field="thawed_at",
        old=old,
        new=thawed_at,
        reason=reason,
        subject_code=subject.code,
    )
    batch = thaw.batch
    item_id = product_item_id(batch)
    for record in CustodyRecord.objects.filter(item_id=item_id, to_holder=holder_bedside(subject.center)).order_by(
        "pk"
    ):
        if record.at == old:
            _custody_follow(actor, subject, record, reason, at=thawed_at)
    _custody_chain_check(item_id, coi_of(batch.coi))
    infusion = Infusion.objects.filter(thaw=thaw).first()
    if infusion is not None:
        minutes = (infusion.infused_at - thawed_at).total_seconds() / 60
        audit_correction(
            actor=actor,
            entity="infusion",
            entity_id=str(infusion.pk),
            field="minutes_from_thaw",
            old=round(infusion.minutes_from_thaw, 1),
            new=round(minutes, 1),
            reason=reason,
            subject_code=subject.code,
        )
        infusion.minutes_from_thaw = minutes
        infusion.save(update_fields=["minutes_from_thaw"])
    return thaw


# --- QC results and the release ------------------------------------------------------------------

_QC_STATUSES = (BatchStatus.IN_PRODUCTION, BatchStatus.QC, BatchStatus.OUT_OF_SPECIFICATION)


def qc_result_correct(
    *, actor: Actor, subject: Subject, protocol: Protocol, result: QcResult, value: Any, reason: str
) -> QcResult:
    """Correct a QC result as the lab reported it: judged again against the specification (as a new
    result); before release the batch's QC status follows; after it the caller has the QP sign again."""
    specification = protocol.drug_product.release_specification
    judged = judge_qc_result(result.test_code, "" if value is None else str(value), specification)
    old = result.value_text
    correction_check(old, judged.value_text, reason)
    follows = [Change("conforms", result.conforms, judged.conforms)] if result.conforms != judged.conforms else []
    result.value_text, result.value_number, result.conforms = judged.value_text, judged.value_number, judged.conforms
    result.save(update_fields=["value_text", "value_number", "conforms"])
    audit_correction(
        actor=actor,
        entity="qc_result",
        entity_id=str(result.pk),
        field="value",
        old=old,
        new=judged.value_text,
        reason=reason,
        subject_code=subject.code,
        follows=follows,
    )
    batch = result.batch
    # Before the QP decides: the status follows the results (a failed or released batch keeps its own).
    if batch.failed_at is None and batch.status in _QC_STATUSES and batch.status != BatchStatus.IN_PRODUCTION:
        verdict = qc_verdict(latest_qc_conformity(batch), specification)
        target = BatchStatus.OUT_OF_SPECIFICATION if verdict is QcVerdict.OUT_OF_SPECIFICATION else BatchStatus.QC
        if batch.status != target:
            _set_status(actor, subject, batch, target)
    return result


def release_content(batch: ManufacturingBatch, protocol: Protocol) -> tuple[dict[str, Any], bool]:
    """What the QP signs at release: the batch, its DIN and its QC conformity; and whether out of spec."""
    conformity = latest_qc_conformity(batch)
    verdict = qc_verdict(conformity, protocol.drug_product.release_specification)
    under_exception = verdict is not QcVerdict.CONFORMS
    content = {
        "coi": batch.coi.content,
        "batch": batch.number,
        "din": batch.collection.din,
        "qc": conformity,
        "under_exception": under_exception,
    }
    return content, under_exception


def batch_release_resign(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    batch: ManufacturingBatch,
    password: str,
    reason: str,
    correction: dict[str, Any],
    otp_code: str = "",
) -> tuple[ElectronicSignature, list[ElectronicSignature]]:
    """The QP signs the release of the corrected batch; the old release signature is voided."""
    old = batch.release_signature
    if old is None:
        raise InvalidInput("This batch was not released: nothing to sign again.", code="not_signed")
    content, under_exception = release_content(batch, protocol)
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        otp_code=otp_code,
        meaning=CORRECTION_MEANING,
        entity="batch",
        entity_id=batch_label(batch),
        subject_code=subject.code,
        content=content | {"correction": correction},
    )
    signature_void(actor=actor, signature=old, reason=reason, superseded_by=signature, subject_code=subject.code)
    follows = []
    if batch.released_under_exception != under_exception:
        follows.append(Change("released_under_exception", batch.released_under_exception, under_exception))
    audit_correction(
        actor=actor,
        entity="batch",
        entity_id=batch_label(batch),
        field="release_signature",
        old=old.pk,
        new=signature.pk,
        reason=reason,
        subject_code=subject.code,
        follows=follows,
    )
    batch.release_signature = signature
    batch.released_under_exception = under_exception
    batch.save(update_fields=["release_signature", "released_under_exception"])
    return signature, [old]
