"""Logistics writes: chain of identity, collections, shipments, custody, batches, receipt, thaw, infusion.

Two kinds of function:
- record functions (`*_in_step`) run inside the transaction of a pathway step (the subjects
  services call them from `_perform_step`'s `before_apply`), so the step and its records are
  written together or not at all;
- actions outside the pathway (receipt at the lab, QC results, temperature logs, OOS exception,
  thaw) run in their own transaction through `_action`, which records a refusal after rollback.

Every hand-over goes through `_hand_over`, which checks the scanned code and the continuity of
the chain with `domain/custody.py` before writing the record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import SignatureRefused, signature_apply
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record, audit_refusal
from cartrial.apps.logistics.errors import LogisticsRefused, ScanRefused, refuse
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    CustodyRecord,
    Deviation,
    IdentifierCounter,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    QcResult,
    Shipment,
    TemperatureLog,
    Thaw,
)
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.custody import (
    CustodyEvent,
    CustodyFork,
    CustodyGap,
    CustodyNotHeld,
    CustodyOutOfOrder,
    CustodyRefused,
    CustodyScanMismatch,
    ScanDeviation,
    check_hand_over,
)
from cartrial.domain.errors import DomainError
from cartrial.domain.identity import (
    ChainOfIdentityIdentifier,
    DonationIdentificationNumber,
    Identifier,
    new_coi,
    new_din,
)
from cartrial.domain.manufacturing import (
    BatchStatus,
    FailureBranch,
    QcVerdict,
    ReleaseSpecification,
    judge_qc_result,
    qc_verdict,
)
from cartrial.domain.pathway import State
from cartrial.domain.temperature import (
    TemperatureLimits,
    TemperatureLogError,
    detect_excursions,
    parse_temperature_log,
)
from cartrial.protocols import Protocol, active_protocol

# ICCBBA validation FINs only (logistics.md §2, §6 rule 7): production identifiers need ICCBBA
# registration, and issuing CoIs a registration as a CoI issuing organisation.
COI_FACILITY_NUMBER = "A9999"
DIN_FACILITY_NUMBER = "A9998"
# Products whose limits apply to what travels (protocol `products:`).
FRESH_APHERESIS_PRODUCT = "APHERESIS_FRESH"
CRYOPRESERVED_PRODUCT = "CART_CRYO"
# A hand-over time may be a little ahead of the server clock (a scanner's clock), never more.
CLOCK_TOLERANCE = timedelta(minutes=5)
# A logger reading every minute for 30 days is ~40 000 lines (~1.5 MB); anything far larger is not a log.
MAX_TEMPERATURE_FILE_BYTES = 5_000_000

RELEASE_MEANING = "I release this batch for infusion (qualified person)"
OOS_EXCEPTION_MEANING = "I request infusion of this out-of-specification product under a documented exception"
BEDSIDE_MEANING = "I verified the product's and the patient's identity at the bedside"

T = TypeVar("T")


# --- identifiers -------------------------------------------------------------------------------


def coi_of(coi: ChainOfIdentity) -> ChainOfIdentityIdentifier:
    content = coi.content
    return ChainOfIdentityIdentifier(content[2:7], content[7:9], content[9:15])


def din_of(collection: Collection) -> DonationIdentificationNumber:
    content = collection.din
    return DonationIdentificationNumber(content[0:5], content[5:7], content[7:13])


def _next_number(kind: str, facility_number: str, year: int) -> int:
    IdentifierCounter.objects.get_or_create(kind=kind, facility_number=facility_number, year=year % 100)
    counter = IdentifierCounter.objects.select_for_update().get(
        kind=kind, facility_number=facility_number, year=year % 100
    )
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def coi_ensure_in_step(*, actor: Actor, user: User, subject: Subject, now: datetime) -> ChainOfIdentity:
    """The subject's CoI, allocated now if it has none (before the first apheresis)."""
    existing = ChainOfIdentity.objects.filter(subject=subject).first()
    if existing is not None:
        return existing
    identifier = new_coi(
        facility_number=COI_FACILITY_NUMBER,
        year=now.year,
        sequence_number=_next_number("coi", COI_FACILITY_NUMBER, now.year),
    )
    coi = ChainOfIdentity.objects.create(
        subject=subject,
        content=identifier.content,
        check_character=identifier.check_character,
        allocated_at=now,
        allocated_by=user,
    )
    audit_record(
        actor=actor,
        event=AuditEvent.COI_ALLOCATED,
        entity="chain_of_identity",
        entity_id=coi.content,
        subject_code=subject.code,
        changes=[Change("coi", None, coi.content), Change("check_character", None, coi.check_character)],
        now=now,
    )
    return coi


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
    user: User,
    subject: Subject,
    item_id: str,
    expected: Identifier,
    from_holder: str | None,
    to_holder: str,
    at: datetime,
    location: str,
    scanned_code: str,
    step: str,
    language: str,
    now: datetime,
    shipment: Shipment | None = None,
) -> CustodyRecord:
    """Check the scan and the chain with the domain, then write the hand-over; refusals are typed."""
    if at > now + CLOCK_TOLERANCE:
        raise refuse(
            "custody_time_future",
            language,
            en=f"The hand-over time {at:%Y-%m-%d %H:%M} UTC is in the future.",
            fr=f"L'heure de la remise ({at:%Y-%m-%d %H:%M} UTC) est dans le futur.",
        )
    history_rows = list(CustodyRecord.objects.filter(item_id=item_id).select_related("actor").order_by("pk"))
    history = [_domain_event(r) for r in history_rows]
    event = CustodyEvent(item_id, from_holder, to_holder, user.get_username(), at, location, scanned_code)
    try:
        check_hand_over(history, event, expected=expected)
    except CustodyScanMismatch as mismatch:
        raise ScanRefused(mismatch.deviation, step=step, language=language) from None
    except CustodyRefused as broken:
        raise _custody_refusal(broken, history_rows, event, language) from None
    record = CustodyRecord.objects.create(
        subject=subject,
        item_id=item_id,
        item_code=expected.content,
        from_holder=from_holder,
        to_holder=to_holder,
        actor=user,
        at=at,
        location=location,
        scanned_code=scanned_code.strip(),
        shipment=shipment,
        recorded_at=now,
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
        now=now,
    )
    return record


def _custody_refusal(
    broken: CustodyRefused, history: list[CustodyRecord], event: CustodyEvent, language: str
) -> LogisticsRefused:
    holder = history[-1].to_holder if history else "—"
    since = f"{history[-1].at:%Y-%m-%d %H:%M} UTC" if history else "—"
    french = {
        CustodyGap: f"Rupture de la chaîne de traçabilité : l'article est chez « {holder} » depuis {since}, "
        f"pas chez « {event.from_holder} » ; la remise intermédiaire manque.",
        CustodyFork: f"« {event.from_holder} » a déjà remis cet article : il serait à deux endroits.",
        CustodyNotHeld: "Personne ne détient cet article : sa traçabilité commence à sa réception au recueil.",
        CustodyOutOfOrder: f"Cette remise ({event.at:%Y-%m-%d %H:%M} UTC) est antérieure à la précédente "
        f"({since}) : les remises doivent se suivre dans le temps.",
    }
    return LogisticsRefused(
        broken.code, en=broken.message, fr=french.get(type(broken), broken.message), language=language
    )


# --- refusals and deviations recorded after rollback -------------------------------------------


def deviation_open(
    *,
    actor: Actor,
    user: User | None,
    subject: Subject,
    kind: str,
    code: str,
    message: str,
    message_fr: str = "",
    step: str = "",
    expected: str = "",
    scanned: str = "",
    location: str = "",
    shipment: Shipment | None = None,
    now: datetime | None = None,
) -> Deviation:
    """Write one deviation (message in English and French) and its audit entry, in the caller's transaction."""
    now = now or clock.now()
    with transaction.atomic():
        deviation = Deviation.objects.create(
            subject=subject,
            kind=kind,
            code=code,
            step=step,
            expected=expected[:60],
            scanned=scanned[:60],
            message=message,
            message_fr=message_fr or message,
            actor=user,
            at=now,
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
                Change("kind", None, kind),
                Change("code", None, code),
                Change("expected", None, expected),
                Change("scanned", None, scanned),
                Change("message", None, message),
            ],
            now=now,
        )
    return deviation


def scan_deviation_record(*, actor: Actor, user: User, subject: Subject, refusal: ScanRefused) -> Deviation:
    """The deviation of a refused scan, written after the refused step rolled back."""
    found: ScanDeviation = refusal.deviation
    return deviation_open(
        actor=actor,
        user=user,
        subject=subject,
        kind=Deviation.Kind.SCAN_MISMATCH,
        code=found.reason_code,
        message=refusal.message_in("en"),
        message_fr=refusal.message_in("fr"),
        step=refusal.step,
        expected=found.expected_code,
        scanned=found.scanned_code,
        location=found.location,
    )


def _action(*, actor: Actor, user: User, subject: Subject, action: str, body: Callable[[], T]) -> T:
    """Run a logistics action atomically; a refusal is recorded after the rollback (and a deviation for a scan)."""
    try:
        with transaction.atomic():
            return body()
    except DomainError as refusal:
        message = refusal.message_in("en") if isinstance(refusal, LogisticsRefused) else refusal.message
        audit_refusal(
            actor=actor,
            event=AuditEvent.SIGNATURE_FAILED
            if isinstance(refusal, SignatureRefused)
            else AuditEvent.LOGISTICS_REFUSED,
            entity="subject",
            entity_id=subject.code,
            code=refusal.code,
            message=f"{action}: {message}",
            subject_code=subject.code,
        )
        if isinstance(refusal, ScanRefused):
            scan_deviation_record(actor=actor, user=user, subject=subject, refusal=refusal)
        raise


def _require_state(subject: Subject, states: set[State], action_en: str, action_fr: str, language: str) -> None:
    current = Subject.objects.select_for_update().get(pk=subject.pk).state
    if current not in {s.value for s in states}:
        raise refuse(
            "logistics_wrong_state",
            language,
            en=f"{action_en} is not possible at the subject's current stage ({current}).",
            fr=f"{action_fr} n'est pas possible au stade actuel du patient ({current}).",
        )


# --- collections and material shipments --------------------------------------------------------


@dataclass(frozen=True)
class CollectionInput:
    started_at: datetime
    ended_at: datetime
    volume_ml: float
    tnc_e9: float | None = None
    cd3_cells_e9: float | None = None


def collection_record_in_step(
    *, actor: Actor, user: User, subject: Subject, data: CollectionInput, language: str, now: datetime
) -> Collection:
    """A new collection with its own DIN under the CoI; its custody starts at the apheresis unit."""
    coi = ChainOfIdentity.objects.filter(subject=subject).first()
    if coi is None:
        raise refuse(
            "coi_missing",
            language,
            en="No chain-of-identity code (CoI) is allocated: schedule the apheresis first.",
            fr="Aucun code de chaîne d'identité (CoI) n'est attribué : programmer d'abord l'aphérèse.",
        )
    if data.ended_at < data.started_at:
        raise refuse(
            "collection_times",
            language,
            en="The collection ends before it starts.",
            fr="Le recueil finit avant de commencer.",
        )
    if data.ended_at > now + CLOCK_TOLERANCE:
        raise refuse(
            "collection_future",
            language,
            en="The collection end time is in the future.",
            fr="La fin du recueil est dans le futur.",
        )
    if data.volume_ml <= 0 or any(v is not None and v < 0 for v in (data.tnc_e9, data.cd3_cells_e9)):
        raise refuse(
            "collection_values",
            language,
            en="Volume must be positive and cell counts cannot be negative.",
            fr="Le volume doit être positif et les numérations ne peuvent pas être négatives.",
        )
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
        recorded_by=user,
        recorded_at=now,
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
        now=now,
    )
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=material_item_id(collection),
        expected=din,
        from_holder=None,
        to_holder=holder_apheresis(subject.center),
        at=data.ended_at,
        location=subject.center.name,
        scanned_code=din.barcode_data(),
        step="collect_apheresis",
        language=language,
        now=now,
    )
    return collection


@dataclass(frozen=True)
class DispatchInput:
    courier: str
    shipper_id: str
    planned_departure_at: datetime
    planned_arrival_at: datetime
    actual_departure_at: datetime
    scanned_code: str
    condition: str = Shipment.Condition.FRESH
    arrival_confirmed: bool = False


def _check_dispatch(data: DispatchInput, language: str) -> None:
    if not data.courier.strip() or not data.shipper_id.strip():
        raise refuse(
            "shipment_incomplete",
            language,
            en="Give the courier and the shipper id.",
            fr="Indiquer le transporteur et l'identifiant du conteneur.",
        )
    if data.planned_arrival_at < data.planned_departure_at:
        raise refuse(
            "shipment_times",
            language,
            en="The planned arrival is before the planned departure.",
            fr="L'arrivée prévue précède le départ prévu.",
        )


def material_dispatch_in_step(
    *, actor: Actor, user: User, subject: Subject, data: DispatchInput, language: str, now: datetime
) -> Shipment:
    """The latest collection leaves the apheresis unit with the courier, its DIN scanned."""
    _check_dispatch(data, language)
    collection = Collection.objects.filter(subject=subject).order_by("-number").first()
    if collection is None:
        raise refuse(
            "collection_missing", language, en="No collection is recorded.", fr="Aucun recueil n'est enregistré."
        )
    lab = subject.manufacturing_site
    if lab is None:
        raise refuse(
            "lab_missing",
            language,
            en="No manufacturing lab is assigned.",
            fr="Aucun laboratoire de production attribué.",
        )
    product = FRESH_APHERESIS_PRODUCT if data.condition == Shipment.Condition.FRESH else CRYOPRESERVED_PRODUCT
    shipment = Shipment.objects.create(
        subject=subject,
        direction=Shipment.Direction.TO_LAB,
        collection=collection,
        item_code=collection.din,
        product_code=product,
        condition=data.condition,
        courier=data.courier.strip(),
        shipper_id=data.shipper_id.strip(),
        origin=subject.center,
        destination=lab,
        planned_departure_at=data.planned_departure_at,
        planned_arrival_at=data.planned_arrival_at,
        actual_departure_at=data.actual_departure_at,
        arrival_confirmed=data.arrival_confirmed,
        created_by=user,
        created_at=now,
    )
    _audit_shipment(actor, subject, shipment, now)
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=material_item_id(collection),
        expected=din_of(collection),
        from_holder=holder_apheresis(subject.center),
        to_holder=holder_courier(shipment.courier, shipment.shipper_id),
        at=data.actual_departure_at,
        location=subject.center.name,
        scanned_code=data.scanned_code,
        step="ship_material",
        language=language,
        now=now,
        shipment=shipment,
    )
    return shipment


def _audit_shipment(actor: Actor, subject: Subject, shipment: Shipment, now: datetime) -> None:
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
        now=now,
    )


def _arrive(actor: Actor, subject: Subject, shipment: Shipment, at: datetime, now: datetime, language: str) -> None:
    if at < shipment.actual_departure_at:
        raise refuse(
            "shipment_arrival_before_departure",
            language,
            en="The arrival time is before the departure.",
            fr="L'heure d'arrivée précède le départ.",
        )
    shipment.actual_arrival_at = at
    shipment.save(update_fields=["actual_arrival_at"])
    audit_record(
        actor=actor,
        event=AuditEvent.SHIPMENT_ARRIVED,
        entity="shipment",
        entity_id=str(shipment.pk),
        subject_code=subject.code,
        changes=[Change("actual_arrival_at", None, at.isoformat())],
        now=now,
    )


def _in_transit(subject: Subject, direction: str) -> Shipment | None:
    return (
        Shipment.objects.filter(subject=subject, direction=direction, actual_arrival_at__isnull=True)
        .order_by("-pk")
        .first()
    )


def material_receive_at_lab(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    scanned_code: str,
    received_at: datetime | None = None,
    language: str = "en",
) -> ManufacturingBatch:
    """The lab takes the material from the courier (DIN scanned); a batch is opened, status `received`."""

    def body() -> ManufacturingBatch:
        now = clock.now()
        at = received_at or now
        _require_state(subject, {State.MATERIAL_SHIPPED}, "Receipt at the lab", "La réception au laboratoire", language)
        shipment = _in_transit(subject, Shipment.Direction.TO_LAB)
        if shipment is None or shipment.collection is None:
            raise refuse(
                "shipment_missing",
                language,
                en="No apheresis shipment to the lab is in transit.",
                fr="Aucune expédition d'aphérèse vers le laboratoire n'est en transit.",
            )
        collection = shipment.collection
        lab = shipment.destination
        _hand_over(
            actor=actor,
            user=user,
            subject=subject,
            item_id=material_item_id(collection),
            expected=din_of(collection),
            from_holder=holder_courier(shipment.courier, shipment.shipper_id),
            to_holder=holder_lab(lab),
            at=at,
            location=lab.name,
            scanned_code=scanned_code,
            step="receive_material",
            language=language,
            now=now,
            shipment=shipment,
        )
        _arrive(actor, subject, shipment, at, now, language)
        limits = protocol.product(shipment.product_code)
        hours = (at - collection.ended_at).total_seconds() / 3600
        if limits.max_transit_hours is not None and hours > limits.max_transit_hours:
            deviation_open(
                actor=actor,
                user=user,
                subject=subject,
                kind=Deviation.Kind.TRANSIT_TIME,
                code="transit_time_exceeded",
                message=f"Material received {hours:.1f} h after the end of collection, beyond the "
                f"{limits.max_transit_hours:g} h limit of {limits.code}.",
                message_fr=f"Matériel reçu {hours:.1f} h après la fin du recueil, au-delà de la limite de "
                f"{limits.max_transit_hours:g} h de {limits.code}.",
                step="receive_material",
                location=lab.name,
                shipment=shipment,
                now=now,
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
        _audit_batch(actor, subject, batch, None, now)
        return batch

    return _action(actor=actor, user=user, subject=subject, action="receive_material", body=body)


# --- batches -----------------------------------------------------------------------------------


def current_batch(subject: Subject) -> ManufacturingBatch | None:
    return (
        ManufacturingBatch.objects.filter(subject=subject)
        .select_related("coi", "collection")
        .order_by("-number")
        .first()
    )


def _audit_batch(
    actor: Actor, subject: Subject, batch: ManufacturingBatch, old_status: str | None, now: datetime, **extra: Any
) -> None:
    audit_record(
        actor=actor,
        event=AuditEvent.BATCH_STATUS_CHANGED,
        entity="batch",
        entity_id=f"{batch.coi.content}-{batch.number}",
        subject_code=subject.code,
        changes=[Change("status", old_status, batch.status), *(Change(k, None, v) for k, v in extra.items())],
        now=now,
    )


def _set_status(
    actor: Actor, subject: Subject, batch: ManufacturingBatch, status: BatchStatus, now: datetime, **extra: Any
) -> None:
    old = batch.status
    batch.status = status
    batch.save()
    _audit_batch(actor, subject, batch, old, now, **extra)


def _batch_or_refuse(subject: Subject, language: str) -> ManufacturingBatch:
    batch = current_batch(subject)
    if batch is None:
        raise refuse(
            "batch_missing",
            language,
            en="No manufacturing batch exists: the lab has not recorded receipt of the material.",
            fr="Aucun lot de fabrication : le laboratoire n'a pas enregistré la réception du matériel.",
        )
    return batch


def batch_start_in_step(*, actor: Actor, subject: Subject, language: str, now: datetime) -> ManufacturingBatch:
    batch = _batch_or_refuse(subject, language)
    batch.started_at = now
    _set_status(actor, subject, batch, BatchStatus.IN_PRODUCTION, now)
    return batch


def qc_result_record(
    *, actor: Actor, user: User, subject: Subject, test_code: str, value: str, language: str = "en"
) -> QcResult:
    """One release-test result; the batch moves to QC, or out of specification if a result does not conform."""

    def body() -> QcResult:
        now = clock.now()
        _require_state(subject, {State.MANUFACTURING}, "Recording QC", "La saisie du contrôle qualité", language)
        batch = _batch_or_refuse(subject, language)
        if batch.status not in (BatchStatus.IN_PRODUCTION, BatchStatus.QC, BatchStatus.OUT_OF_SPECIFICATION):
            raise refuse(
                "batch_not_in_production",
                language,
                en=f"QC results are recorded for a batch in production or QC, not '{batch.status}'.",
                fr=f"Les résultats de CQ se saisissent pour un lot en production ou en CQ, pas « {batch.status} ».",
            )
        specification = release_specification()
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
            recorded_by=user,
            recorded_at=now,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.QC_RESULT_RECORDED,
            entity="batch",
            entity_id=f"{batch.coi.content}-{batch.number}",
            subject_code=subject.code,
            changes=[
                Change("test", None, test_code),
                Change("value", None, judged.value_text),
                Change("conforms", None, judged.conforms),
            ],
            now=now,
        )
        if batch.qc_started_at is None:
            batch.qc_started_at = now
        verdict = qc_verdict(latest_qc_conformity(batch), release_specification())
        target = BatchStatus.OUT_OF_SPECIFICATION if verdict is QcVerdict.OUT_OF_SPECIFICATION else BatchStatus.QC
        if batch.status != target:
            _set_status(actor, subject, batch, target, now)
        else:
            batch.save(update_fields=["qc_started_at"])
        return result

    return _action(actor=actor, user=user, subject=subject, action="record_qc", body=body)


def release_specification() -> ReleaseSpecification:
    """The release tests of the protocol in force, for the cryopreserved CAR-T product."""
    protocol = active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)
    return protocol.product(CRYOPRESERVED_PRODUCT).release_specification


def latest_qc_conformity(batch: ManufacturingBatch) -> dict[str, bool]:
    latest: dict[str, bool] = {}
    for result in QcResult.objects.filter(batch=batch).order_by("recorded_at", "pk"):
        latest[result.test_code] = result.conforms
    return latest


def batch_release_in_step(
    *, actor: Actor, user: User, subject: Subject, password: str, scanned_code: str, language: str, now: datetime
) -> ManufacturingBatch:
    """The qualified person signs the release; the product's custody starts at the lab (CoI scanned)."""
    batch = _batch_or_refuse(subject, language)
    verdict = qc_verdict(latest_qc_conformity(batch), release_specification())
    under_exception = verdict is not QcVerdict.CONFORMS
    signature = signature_apply(
        actor=actor,
        user=user,
        password=password,
        meaning=RELEASE_MEANING,
        entity="batch",
        entity_id=f"{batch.coi.content}-{batch.number}",
        subject_code=subject.code,
        content={
            "coi": batch.coi.content,
            "batch": batch.number,
            "din": batch.collection.din,
            "qc": latest_qc_conformity(batch),
            "under_exception": under_exception,
        },
    )
    batch.released_at = now
    batch.release_signature = signature
    batch.released_under_exception = under_exception
    _set_status(actor, subject, batch, BatchStatus.RELEASED, now, under_exception=under_exception)
    lab = subject.manufacturing_site or subject.center
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=None,
        to_holder=holder_lab(lab),
        at=now,
        location=lab.name,
        scanned_code=scanned_code,
        step="release_product",
        language=language,
        now=now,
    )
    return batch


def batch_fail_in_step(
    *, actor: Actor, subject: Subject, reason: str, language: str, now: datetime
) -> ManufacturingBatch:
    batch = _batch_or_refuse(subject, language)
    batch.failed_at = now
    batch.failure_reason = reason
    status = (
        BatchStatus.OUT_OF_SPECIFICATION if batch.status == BatchStatus.OUT_OF_SPECIFICATION else BatchStatus.FAILED
    )
    _set_status(actor, subject, batch, status, now, failure_reason=reason)
    return batch


def _decide(
    actor: Actor,
    user: User,
    subject: Subject,
    batch: ManufacturingBatch,
    branch: FailureBranch,
    reason: str,
    now: datetime,
) -> None:
    batch.branch = branch.value
    batch.branch_decided_at = now
    batch.branch_decided_by = user
    batch.branch_reason = reason
    batch.save()
    audit_record(
        actor=actor,
        event=AuditEvent.FAILURE_BRANCH_DECIDED,
        entity="batch",
        entity_id=f"{batch.coi.content}-{batch.number}",
        subject_code=subject.code,
        changes=[Change("branch", None, branch.value)],
        reason=reason,
        now=now,
    )


def batch_remanufacture_in_step(
    *, actor: Actor, user: User, subject: Subject, reason: str, language: str, now: datetime
) -> ManufacturingBatch:
    """Branch 'remanufacture': a new batch from the same collection's material, already at the lab."""
    failed = _batch_or_refuse(subject, language)
    _decide(actor, user, subject, failed, FailureBranch.REMANUFACTURE, reason, now)
    batch = ManufacturingBatch.objects.create(
        subject=subject,
        coi=failed.coi,
        collection=failed.collection,
        number=failed.number + 1,
        status=BatchStatus.IN_PRODUCTION,
        received_at=now,
        started_at=now,
    )
    _audit_batch(actor, subject, batch, None, now, remanufacture_of=failed.number)
    return batch


def batch_re_apheresis_in_step(
    *, actor: Actor, user: User, subject: Subject, reason: str, language: str, now: datetime
) -> None:
    """Branch 're-apheresis': a new collection (new DIN, same CoI) will follow."""
    _decide(actor, user, subject, _batch_or_refuse(subject, language), FailureBranch.RE_APHERESIS, reason, now)


def batch_no_infusion_in_step(
    *, actor: Actor, user: User, subject: Subject, reason: str, language: str, now: datetime
) -> None:
    """Branch 'no infusion': the decision on the batch; the subject leaves the study in the same step."""
    _decide(actor, user, subject, _batch_or_refuse(subject, language), FailureBranch.NO_INFUSION, reason, now)


def batch_document_oos_exception(
    *, actor: Actor, user: User, subject: Subject, password: str, justification: str, language: str = "en"
) -> ManufacturingBatch:
    """The investigator signs the request to infuse an out-of-specification product (documented exception)."""

    def body() -> ManufacturingBatch:
        now = clock.now()
        _require_state(
            subject, {State.MANUFACTURING}, "An OOS exception", "Une dérogation hors spécification", language
        )
        batch = _batch_or_refuse(subject, language)
        if batch.status != BatchStatus.OUT_OF_SPECIFICATION:
            raise refuse(
                "batch_not_oos",
                language,
                en="An exception is documented only for a batch out of specification.",
                fr="Une dérogation ne se documente que pour un lot hors spécification.",
            )
        if len(justification.strip()) < 10:
            raise refuse(
                "justification_required",
                language,
                en="Write the medical justification of the exception.",
                fr="Rédiger la justification médicale de la dérogation.",
            )
        signature = signature_apply(
            actor=actor,
            user=user,
            password=password,
            meaning=OOS_EXCEPTION_MEANING,
            entity="batch",
            entity_id=f"{batch.coi.content}-{batch.number}",
            subject_code=subject.code,
            content={"coi": batch.coi.content, "batch": batch.number, "justification": justification.strip()},
        )
        batch.oos_exception_signature = signature
        batch.oos_exception_justification = justification.strip()
        _decide(actor, user, subject, batch, FailureBranch.OOS_EXCEPTION, justification.strip(), now)
        return batch

    return _action(actor=actor, user=user, subject=subject, action="document_oos_exception", body=body)


# --- product shipment, receipt, thaw, infusion -------------------------------------------------


def product_dispatch_in_step(
    *, actor: Actor, user: User, subject: Subject, data: DispatchInput, language: str, now: datetime
) -> Shipment:
    """The released product leaves the lab in LN2 vapour with the courier, its CoI scanned."""
    _check_dispatch(data, language)
    batch = _batch_or_refuse(subject, language)
    lab = subject.manufacturing_site or subject.center
    shipment = Shipment.objects.create(
        subject=subject,
        direction=Shipment.Direction.TO_CENTER,
        batch=batch,
        item_code=batch.coi.content,
        product_code=CRYOPRESERVED_PRODUCT,
        condition=Shipment.Condition.CRYOPRESERVED,
        courier=data.courier.strip(),
        shipper_id=data.shipper_id.strip(),
        origin=lab,
        destination=subject.center,
        planned_departure_at=data.planned_departure_at,
        planned_arrival_at=data.planned_arrival_at,
        actual_departure_at=data.actual_departure_at,
        arrival_confirmed=data.arrival_confirmed,
        created_by=user,
        created_at=now,
    )
    _audit_shipment(actor, subject, shipment, now)
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_lab(lab),
        to_holder=holder_courier(shipment.courier, shipment.shipper_id),
        at=data.actual_departure_at,
        location=lab.name,
        scanned_code=data.scanned_code,
        step="ship_product",
        language=language,
        now=now,
        shipment=shipment,
    )
    return shipment


def product_receive_in_step(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    scanned_code: str,
    storage_location: str,
    received_at: datetime,
    language: str,
    now: datetime,
) -> ProductReceipt:
    """The pharmacy takes the product from the courier (CoI scanned) and stores it."""
    if not storage_location.strip():
        raise refuse(
            "storage_location_missing",
            language,
            en="Give the storage location of the product.",
            fr="Indiquer l'emplacement de stockage du produit.",
        )
    shipment = _in_transit(subject, Shipment.Direction.TO_CENTER)
    if shipment is None or shipment.batch is None:
        raise refuse(
            "shipment_missing",
            language,
            en="No product shipment to the center is in transit.",
            fr="Aucune expédition de produit vers le centre n'est en transit.",
        )
    batch = shipment.batch
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_courier(shipment.courier, shipment.shipper_id),
        to_holder=holder_pharmacy(subject.center),
        at=received_at,
        location=subject.center.name,
        scanned_code=scanned_code,
        step="receive_product",
        language=language,
        now=now,
        shipment=shipment,
    )
    _arrive(actor, subject, shipment, received_at, now, language)
    receipt = ProductReceipt.objects.create(
        shipment=shipment,
        batch=batch,
        received_at=received_at,
        received_by=user,
        storage_location=storage_location.strip(),
        scanned_code=scanned_code.strip(),
    )
    audit_record(
        actor=actor,
        event=AuditEvent.PRODUCT_RECEIPT_RECORDED,
        entity="batch",
        entity_id=f"{batch.coi.content}-{batch.number}",
        subject_code=subject.code,
        changes=[
            Change("storage_location", None, receipt.storage_location),
            Change("received_at", None, received_at.isoformat()),
        ],
        now=now,
    )
    return receipt


def product_thaw(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    protocol: Protocol,
    scanned_code: str,
    thawed_at: datetime | None = None,
    language: str = "en",
) -> Thaw:
    """The pharmacy thaws the product (CoI scanned) and hands it to the bedside; the thaw clock starts."""

    def body() -> Thaw:
        now = clock.now()
        at = thawed_at or now
        _require_state(subject, {State.LYMPHODEPLETION}, "Thawing", "La décongélation", language)
        batch = _batch_or_refuse(subject, language)
        if not ProductReceipt.objects.filter(batch=batch).exists():
            raise refuse(
                "product_not_received",
                language,
                en="The product has not been received at the pharmacy.",
                fr="Le produit n'a pas été réceptionné à la pharmacie.",
            )
        if Thaw.objects.filter(batch=batch).exists():
            raise refuse(
                "already_thawed",
                language,
                en="This product has already been thawed: a thawed product is never refrozen.",
                fr="Ce produit a déjà été décongelé : un produit décongelé n'est jamais recongelé.",
            )
        _hand_over(
            actor=actor,
            user=user,
            subject=subject,
            item_id=product_item_id(batch),
            expected=coi_of(batch.coi),
            from_holder=holder_pharmacy(subject.center),
            to_holder=holder_bedside(subject.center),
            at=at,
            location=subject.center.name,
            scanned_code=scanned_code,
            step="thaw",
            language=language,
            now=now,
        )
        limit = protocol.product(CRYOPRESERVED_PRODUCT).max_thaw_to_infusion_min
        thaw = Thaw.objects.create(
            batch=batch, thawed_at=at, thawed_by=user, scanned_code=scanned_code.strip(), max_thaw_to_infusion_min=limit
        )
        audit_record(
            actor=actor,
            event=AuditEvent.PRODUCT_THAWED,
            entity="batch",
            entity_id=f"{batch.coi.content}-{batch.number}",
            subject_code=subject.code,
            changes=[Change("thawed_at", None, at.isoformat()), Change("max_thaw_to_infusion_min", None, limit)],
            now=now,
        )
        return thaw

    return _action(actor=actor, user=user, subject=subject, action="thaw", body=body)


@dataclass(frozen=True)
class BedsideScan:
    user: User
    bag_code: str
    wristband_code: str


def bedside_mismatches(subject: Subject, scans: tuple[BedsideScan, BedsideScan]) -> list[str]:
    """What does not match: the bag must carry the subject's CoI (or its collection's DIN), the
    wristband the subject's code or CoI. Empty when both people scanned the right bag and patient."""
    from cartrial.domain.identity import IdentifierError, parse_identifier

    batch = current_batch(subject)
    coi = batch.coi.content if batch else None
    din = batch.collection.din if batch else None
    problems = []
    for scan in scans:
        who = scan.user.get_username()
        try:
            bag = parse_identifier(scan.bag_code).content
        except IdentifierError:
            bag = None
        if bag is None or bag not in {coi, din}:
            problems.append(f"{who} scanned bag '{scan.bag_code.strip()}' (expected CoI {coi})")
        wristband = scan.wristband_code.strip().upper()
        try:
            wristband_identity = parse_identifier(scan.wristband_code).content
        except IdentifierError:
            wristband_identity = wristband
        if wristband != subject.code and wristband_identity != coi:
            problems.append(f"{who} scanned wristband '{scan.wristband_code.strip()}' (expected {subject.code})")
    return problems


def infusion_record_in_step(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    scans: tuple[BedsideScan, BedsideScan],
    signatures: tuple[Any, Any],
    language: str,
    now: datetime,
) -> Infusion:
    """Custody ends with the patient; the infusion keeps both checkers' scans and signatures."""
    batch = _batch_or_refuse(subject, language)
    thaw = Thaw.objects.filter(batch=batch).order_by("-thawed_at").first()
    if thaw is None:
        raise refuse(
            "product_not_thawed", language, en="The thaw is not recorded.", fr="La décongélation n'est pas enregistrée."
        )
    _hand_over(
        actor=actor,
        user=user,
        subject=subject,
        item_id=product_item_id(batch),
        expected=coi_of(batch.coi),
        from_holder=holder_bedside(subject.center),
        to_holder=holder_patient(subject),
        at=now,
        location=subject.center.name,
        scanned_code=scans[0].bag_code,
        step="infuse",
        language=language,
        now=now,
    )
    first, second = scans
    infusion = Infusion.objects.create(
        batch=batch,
        thaw=thaw,
        infused_at=now,
        minutes_from_thaw=(now - thaw.thawed_at).total_seconds() / 60,
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
        entity="batch",
        entity_id=f"{batch.coi.content}-{batch.number}",
        subject_code=subject.code,
        changes=[
            Change("infused_at", None, now.isoformat()),
            Change("minutes_from_thaw", None, round(infusion.minutes_from_thaw, 1)),
            Change("checkers", None, [first.user.get_username(), second.user.get_username()]),
        ],
        now=now,
    )
    return infusion


# --- temperature logs --------------------------------------------------------------------------


def temperature_log_import(
    *,
    actor: Actor,
    user: User,
    subject: Subject,
    shipment: Shipment,
    protocol: Protocol,
    content: bytes,
    file_name: str,
    logger_time_zone: str,
    language: str = "en",
) -> TemperatureLog:
    """Import a data-logger CSV for a shipment; excursions against the product's limits open deviations.

    A file that cannot be read with certainty is refused whole, with its line number: nothing is stored.
    """

    def body() -> TemperatureLog:
        now = clock.now()
        if len(content) > MAX_TEMPERATURE_FILE_BYTES:
            megabytes = MAX_TEMPERATURE_FILE_BYTES // 1_000_000
            raise refuse(
                "temperature_log_too_large",
                language,
                en=f"The file is larger than {megabytes} MB: is it a logger export?",
                fr=f"Le fichier dépasse {megabytes} Mo : est-ce un export d'enregistreur ?",
            )
        try:
            zone = ZoneInfo(logger_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise refuse(
                "time_zone_unknown",
                language,
                en=f"Unknown time zone '{logger_time_zone}'.",
                fr=f"Fuseau horaire inconnu « {logger_time_zone} ».",
            ) from None
        try:
            log = parse_temperature_log(content, naive_time_zone=zone)
        except TemperatureLogError as error:
            raise LogisticsRefused(
                error.code,
                en=f"Temperature file refused, nothing imported. {error.message}",
                fr=f"Fichier de température refusé, rien n'est importé. "
                f"{'Ligne ' + str(error.line_number) + ' : ' if error.line_number else ''}{error.message}",
                language=language,
            ) from None
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
            readings_json=json.dumps(
                [[r.at.isoformat(), round(r.temperature_c, 3), r.line_number] for r in log.readings]
            ),
            excursions_json=json.dumps([_excursion_json(e) for e in excursions]),
            min_temperature_c=min(temperatures),
            max_temperature_c=max(temperatures),
            limit_min_c=product.min_temperature_c,
            limit_max_c=product.max_temperature_c,
            reading_count=len(log.readings),
            uploaded_by=user,
            uploaded_at=now,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.TEMPERATURE_LOG_IMPORTED,
            entity="shipment",
            entity_id=str(shipment.pk),
            subject_code=subject.code,
            changes=[
                Change("file", None, record.file_name),
                Change("sha256", None, record.file_sha256),
                Change("readings", None, record.reading_count),
                Change("excursions", None, len(excursions)),
            ],
            now=now,
        )
        for excursion in excursions:
            if excursion.tolerated:
                continue
            side = "above" if excursion.side.value == "above_max" else "below"
            deviation_open(
                actor=actor,
                user=user,
                subject=subject,
                kind=Deviation.Kind.TEMPERATURE_EXCURSION,
                code=excursion.side.value,
                message=f"{product.code}: {side} the {excursion.limit_c:g} °C limit by up to "
                f"{excursion.worst_deviation_c:.1f} °C for {excursion.duration_min:.0f} min "
                f"from {excursion.start:%Y-%m-%d %H:%M} UTC (file line {excursion.first_line_number})"
                + (", still out of range at the end of the log" if excursion.open_at_end_of_log else "")
                + ".",
                message_fr=f"{product.code} : {'au-dessus de' if side == 'above' else 'en dessous de'} la limite de "
                f"{excursion.limit_c:g} °C, jusqu'à {excursion.worst_deviation_c:.1f} °C d'écart pendant "
                f"{excursion.duration_min:.0f} min à partir du {excursion.start:%Y-%m-%d %H:%M} UTC "
                f"(ligne {excursion.first_line_number} du fichier)"
                + (", toujours hors limites à la fin du relevé" if excursion.open_at_end_of_log else "")
                + ".",
                step="temperature_log",
                expected=f"{product.min_temperature_c:g}..{product.max_temperature_c:g} °C",
                scanned=f"{excursion.worst_temperature_c:g} °C",
                shipment=shipment,
                now=now,
            )
        return record

    return _action(actor=actor, user=user, subject=subject, action="import_temperature_log", body=body)


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
