"""Logistics reads: the facts the pathway guards read, a subject's logistics record, the vein-to-vein data.

Scoping: callers pass a subject already obtained through the scoped subject selector
(`access.reach_subject`), or a scope for lists; nothing here widens what a user sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypedDict
from zoneinfo import ZoneInfo

from django.db.models import Count, Prefetch, Q, QuerySet

from cartrial.apps.access import Scope, subject_filter, subjects_in_scope
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entity_ids_changed_since, entry_changes
from cartrial.apps.clinical.selectors import clinical_milestones
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    CustodyRecord,
    Deviation,
    DeviationComment,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    QcResult,
    Shipment,
    TemperatureLog,
    Thaw,
)
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.domain.chronology import Milestone, Moment
from cartrial.domain.deviations import DeviationStatus
from cartrial.domain.identity import ChainOfIdentityIdentifier, DonationIdentificationNumber
from cartrial.domain.manufacturing import BatchStatus, QcVerdict, ReleaseSpecification, qc_verdict
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Role
from cartrial.domain.text import N_
from cartrial.domain.vein_to_vein import Milestones

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations
from cartrial.protocols import Protocol


def release_specification(protocol: Protocol) -> ReleaseSpecification:
    """The release tests of the protocol in force, for the cryopreserved CAR-T product."""
    return protocol.drug_product.release_specification


def current_batch(subject: Subject) -> ManufacturingBatch | None:
    """The batch in force: the latest one (a remanufacture is the next number)."""
    return (
        ManufacturingBatch.objects.filter(subject=subject)
        .select_related("coi", "collection")
        .order_by("-number")
        .first()
    )


def subject_milestones(subject: Subject) -> dict[Milestone, Moment]:
    """Every known milestone of the subject (`domain.chronology`): the clinical ones and those of the
    logistics records of the current cycle (the latest collection, its shipment, the batch made from
    it, that batch's shipment, receipt and thaw), so a repeat apheresis is compared with its own cycle.
    """
    dates = clinical_milestones(subject)
    collection = Collection.objects.filter(subject=subject).order_by("-number").first()
    if collection is None:
        return dates
    dates[Milestone.COLLECTION_STARTED] = collection.started_at
    dates[Milestone.COLLECTION_ENDED] = collection.ended_at
    to_lab = Shipment.objects.filter(subject=subject, collection=collection).order_by("-pk").first()
    if to_lab is not None:
        dates[Milestone.MATERIAL_SHIPPED] = to_lab.actual_departure_at
        if to_lab.actual_arrival_at is not None:
            dates[Milestone.MATERIAL_RECEIVED] = to_lab.actual_arrival_at
    batch = current_batch(subject)
    if batch is None or batch.collection_id != collection.pk:
        return dates
    for milestone, moment in (
        (Milestone.MANUFACTURING_STARTED, batch.started_at),
        (Milestone.RELEASED, batch.released_at),
    ):
        if moment is not None:
            dates[milestone] = moment
    to_center = Shipment.objects.filter(subject=subject, batch=batch).order_by("-pk").first()
    if to_center is not None:
        dates[Milestone.PRODUCT_SHIPPED] = to_center.actual_departure_at
    receipt = ProductReceipt.objects.filter(batch=batch).order_by("-received_at").first()
    if receipt is not None:
        dates[Milestone.PRODUCT_RECEIVED] = receipt.received_at
    thaw = Thaw.objects.filter(batch=batch).order_by("-thawed_at").first()
    if thaw is not None:
        dates[Milestone.THAWED] = thaw.thawed_at
    return dates


def latest_qc_conformity(batch: ManufacturingBatch) -> dict[str, bool]:
    """The latest result of each release test: conforming or not."""
    return _latest_conformity(QcResult.objects.filter(batch=batch).order_by("recorded_at", "pk"))


def _latest_conformity(results: Iterable[QcResult]) -> dict[str, bool]:
    """Of results oldest first, the latest of each release test: conforming or not."""
    latest: dict[str, bool] = {}
    for result in results:
        latest[result.test_code] = result.conforms
    return latest


def _coi_identifier(coi: ChainOfIdentity) -> ChainOfIdentityIdentifier:
    content = coi.content
    return ChainOfIdentityIdentifier(content[2:7], content[7:9], content[9:15])


def _din_identifier(collection: Collection) -> DonationIdentificationNumber:
    content = collection.din
    return DonationIdentificationNumber(content[0:5], content[5:7], content[7:13])


def logistics_facts(
    subject: Subject, protocol: Protocol, *, now: datetime, planned_infusion_date: date | None = None
) -> dict[str, Any]:
    """The pathway facts that logistics records establish (names of `domain.pathway.Facts` fields).

    - material received at the lab: the latest collection has a batch (the lab scanned it in);
    - QC passed / OOS exception / released: the current (latest) batch's QC results and status;
    - product received: the current batch has a pharmacy receipt;
    - arrival confirmed before D0: the current batch is in transit with a courier-confirmed
      arrival, before the planned infusion date when one is given (local date at the center);
    - minutes since thaw, and the product's limit from the protocol.
    """
    collection = Collection.objects.filter(subject=subject).order_by("-number").first()
    batch = ManufacturingBatch.objects.filter(subject=subject).order_by("-number").first()
    facts: dict[str, Any] = {
        "material_received_at_lab": bool(
            collection and ManufacturingBatch.objects.filter(collection=collection).exists()
        ),
        "qc_passed": False,
        "oos_exception_documented": False,
        "product_released": False,
        "product_received": False,
        "product_arrival_confirmed_before_d0": False,
        "minutes_since_thaw": None,
        "max_thaw_to_infusion_min": _thaw_limit(protocol),
    }
    if batch is None:
        return facts
    facts["qc_passed"] = qc_verdict(latest_qc_conformity(batch), release_specification(protocol)) is QcVerdict.CONFORMS
    facts["oos_exception_documented"] = (
        batch.status == BatchStatus.OUT_OF_SPECIFICATION and batch.oos_exception_signature_id is not None
    )
    facts["product_released"] = batch.status == BatchStatus.RELEASED
    facts["product_received"] = ProductReceipt.objects.filter(batch=batch).exists()
    in_transit = (
        Shipment.objects.filter(
            batch=batch, direction=Shipment.Direction.TO_CENTER, actual_arrival_at__isnull=True, arrival_confirmed=True
        )
        .order_by("-pk")
        .first()
    )
    if in_transit is not None:
        arrival_day = in_transit.planned_arrival_at.astimezone(ZoneInfo(subject.center.time_zone)).date()
        facts["product_arrival_confirmed_before_d0"] = (
            planned_infusion_date is None or arrival_day < planned_infusion_date
        )
    thaw = Thaw.objects.filter(batch=batch).order_by("-thawed_at").first()
    if thaw is not None:
        facts["minutes_since_thaw"] = max(0.0, (now - thaw.thawed_at).total_seconds() / 60)
    return facts


def _thaw_limit(protocol: Protocol) -> float | None:
    try:
        return protocol.drug_product.max_thaw_to_infusion_min
    except KeyError:
        return None


@dataclass
class ShipmentView:
    shipment: Shipment
    logs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchView:
    batch: ManufacturingBatch
    qc: list[QcResult]
    verdict: str
    receipt: ProductReceipt | None
    thaw: Thaw | None
    infusion: Infusion | None


@dataclass
class SubjectLogistics:
    subject: Subject
    coi: ChainOfIdentity | None
    coi_eye_readable: tuple[str, str] | None
    collections: list[tuple[Collection, tuple[str, str]]]
    shipments: list[ShipmentView]
    custody: list[CustodyRecord]
    batches: list[BatchView]
    deviations: list[Deviation]


def subject_logistics(subject: Subject, protocol: Protocol) -> SubjectLogistics:
    """Everything logistics records about one (already scoped) subject, for pages and the API."""
    coi = ChainOfIdentity.objects.filter(subject=subject).first()
    coi_text = None
    if coi is not None:
        eye = _coi_identifier(coi).eye_readable()
        coi_text = (eye.text, eye.check_character)
    collections = []
    for collection in Collection.objects.filter(subject=subject).order_by("number"):
        eye = _din_identifier(collection).eye_readable()
        collections.append((collection, (eye.text, eye.check_character)))
    shipments = [
        ShipmentView(s, [temperature_log_view(log) for log in s.temperature_logs.all()])
        for s in Shipment.objects.filter(subject=subject)
        .select_related("origin", "destination")
        .prefetch_related("temperature_logs")
        .order_by("actual_departure_at", "pk")
    ]
    # Each batch's QC results, receipt, thaw and infusion are read for all batches at once (a fixed
    # number of queries, however many times the product was manufactured).
    batches = []
    for batch in (
        ManufacturingBatch.objects.filter(subject=subject)
        .select_related(
            "collection",
            "coi",
            "release_signature",
            "oos_exception_signature",
            "branch_decided_by",
            "infusion__first_checker",
            "infusion__second_checker",
        )
        .prefetch_related(_BATCH_QC, _BATCH_RECEIPTS, _BATCH_THAWS)
        .order_by("number")
    ):
        qc: list[QcResult] = batch.qc_in_order
        receipts: list[ProductReceipt] = batch.receipts_in_order
        thaws: list[Thaw] = batch.thaws_latest_first
        batches.append(
            BatchView(
                batch=batch,
                qc=qc,
                verdict=qc_verdict(_latest_conformity(qc), release_specification(protocol)).value,
                receipt=receipts[0] if receipts else None,
                thaw=thaws[0] if thaws else None,
                infusion=_infusion_of(batch),
            )
        )
    return SubjectLogistics(
        subject=subject,
        coi=coi,
        coi_eye_readable=coi_text,
        collections=collections,
        shipments=shipments,
        custody=list(CustodyRecord.objects.filter(subject=subject).select_related("actor").order_by("at", "pk")),
        batches=batches,
        deviations=list(
            Deviation.objects.filter(subject=subject)
            .select_related("actor", "acknowledged_by", "closed_by", "shipment")
            .prefetch_related(_THREAD)
            .order_by("at", "pk")
        ),
    )


def _infusion_of(batch: ManufacturingBatch) -> Infusion | None:
    """The batch's infusion, read with the batch (select_related), or None."""
    try:
        return batch.infusion
    except Infusion.DoesNotExist:
        return None


# A batch's records as the subject's logistics shows them (read for every batch in one query each).
_BATCH_QC = Prefetch(
    "qc_results",
    queryset=QcResult.objects.select_related("recorded_by").order_by("recorded_at", "pk"),
    to_attr="qc_in_order",
)
_BATCH_RECEIPTS = Prefetch("receipts", queryset=ProductReceipt.objects.order_by("pk"), to_attr="receipts_in_order")
_BATCH_THAWS = Prefetch("thaws", queryset=Thaw.objects.order_by("-thawed_at", "-pk"), to_attr="thaws_latest_first")
# A deviation's comments in the order they were written, with their authors.
_THREAD = Prefetch("comments", queryset=DeviationComment.objects.select_related("author").order_by("at", "pk"))
NOT_CLOSED = (DeviationStatus.OPEN.value, DeviationStatus.ACKNOWLEDGED.value)


class CommentCount(TypedDict):
    comment_count: int


def deviations_in_scope(
    scope: Scope, *, statuses: tuple[str, ...] | None = None, center_code: str | None = None
) -> QuerySet[WithAnnotations[Deviation, CommentCount]]:
    """The deviations of the subjects a scope may read, oldest first, with what a list shows
    (subject and center, who opened, acknowledged and closed it, its shipment, how many comments)."""
    queryset = Deviation.objects.filter(subject__in=Subject.objects.filter(subject_filter(scope)).values("pk"))
    if statuses is not None:
        queryset = queryset.filter(status__in=statuses)
    if center_code:
        queryset = queryset.filter(subject__center__code=center_code.strip().upper())
    return (
        queryset.select_related("subject__center", "actor", "acknowledged_by", "closed_by", "shipment")
        .annotate(comment_count=Count("comments"))
        .order_by("at", "pk")
    )


def deviations_changed_since[D: Deviation](deviations: QuerySet[D], since: datetime | None) -> QuerySet[D]:
    """`deviations` narrowed to those an audit entry after `since` opened or moved, or whose thread
    got a comment (a comment leaves the deviation's status as it was: its entry names the comment)."""
    if since is None:
        return deviations
    changed = {int(pk) for pk in entity_ids_changed_since("deviation", since)}
    commented = DeviationComment.objects.filter(
        pk__in=[int(pk) for pk in entity_ids_changed_since("deviation_comment", since)]
    ).values_list("deviation_id", flat=True)
    return deviations.filter(Q(pk__in=changed) | Q(pk__in=list(commented)))


def deviation_counts(scope: Scope) -> dict[str, dict[str, int]]:
    """Deviations not closed per center of the scope's subjects: by kind and by status, in one query."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        Deviation.objects.filter(
            subject__in=Subject.objects.filter(subject_filter(scope)).values("pk"), status__in=NOT_CLOSED
        )
        .values_list("subject__center__code", "kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for center, kind, status, n in rows:
        row = counts.setdefault(center, {})
        row[kind] = row.get(kind, 0) + n
        row[status] = row.get(status, 0) + n
    return counts


# The logistics worklists: the subjects at each stage and the roles whose move it is, in the
# pathway's order.
WORKLISTS: tuple[tuple[State, frozenset[Role]], ...] = (
    (State.APHERESIS_SCHEDULED, frozenset({Role.APHERESIS})),
    (State.APHERESIS_COLLECTED, frozenset({Role.APHERESIS})),
    (State.MATERIAL_SHIPPED, frozenset({Role.MANUFACTURING})),
    (State.MANUFACTURING, frozenset({Role.MANUFACTURING})),
    (State.MANUFACTURING_FAILED, frozenset({Role.MANUFACTURING, Role.INVESTIGATOR, Role.COORDINATOR})),
    (State.PRODUCT_RELEASED, frozenset({Role.MANUFACTURING})),
    (State.PRODUCT_SHIPPED, frozenset({Role.PHARMACIST})),
    (State.PRODUCT_RECEIVED, frozenset({Role.INVESTIGATOR, Role.COORDINATOR})),
    (State.LYMPHODEPLETION, frozenset({Role.PHARMACIST, Role.INVESTIGATOR})),
)
WORKLIST_HINTS: dict[State, str] = {
    State.APHERESIS_SCHEDULED: N_("Collect (a DIN is given to each collection)"),
    State.APHERESIS_COLLECTED: N_("Hand over to the courier (scan the DIN)"),
    State.MATERIAL_SHIPPED: N_("Receive at the lab (scan the DIN)"),
    State.MANUFACTURING: N_("QC results, then release by the QP"),
    State.MANUFACTURING_FAILED: N_("Decide: remanufacture, re-apheresis or no infusion"),
    State.PRODUCT_RELEASED: N_("Ship the product (scan the CoI)"),
    State.PRODUCT_SHIPPED: N_("Receive at the pharmacy (scan the CoI)"),
    State.PRODUCT_RECEIVED: N_("In storage: start lymphodepletion"),
    State.LYMPHODEPLETION: N_("Thaw, two-person bedside check, infuse"),
}


def worklist_subjects(scope: Scope, *, since: datetime | None = None) -> list[Subject]:
    """The subjects of the scope at a logistics stage (`WORKLISTS`), in the pathway's order then by
    code; with `since`, those whose stage changed or whose material or product changed hands after it
    (their own times: the state's change, the custody record's)."""
    order = {state.value: index for index, (state, _) in enumerate(WORKLISTS)}
    subjects = subjects_in_scope(scope).filter(state__in=list(order)).select_related("center")
    if since is not None:
        handed = CustodyRecord.objects.filter(recorded_at__gt=since).values("subject_id")
        subjects = subjects.filter(Q(state_changed_at__gt=since) | Q(pk__in=handed))
    return sorted(subjects, key=lambda s: (order[s.state], s.code))


def custody_latest(subject_ids: list[int]) -> dict[int, CustodyRecord]:
    """Each subject's latest accepted hand-over: who holds its material or product now, and where."""
    latest: dict[int, CustodyRecord] = {}
    for record in CustodyRecord.objects.filter(subject_id__in=subject_ids).order_by("at", "pk"):
        latest[record.subject_id] = record
    return latest


def deviation_thread(deviation: Deviation) -> Deviation:
    """One deviation again with its people, shipment and comments (after a move, to show it)."""
    return (
        Deviation.objects.select_related("actor", "acknowledged_by", "closed_by", "shipment", "subject__center")
        .prefetch_related(_THREAD)
        .get(pk=deviation.pk)
    )


def temperature_log_view(log: TemperatureLog) -> dict[str, Any]:
    return {
        "log": log,
        "readings": [(datetime.fromisoformat(at), c, line) for at, c, line in json.loads(log.readings_json)],
        "excursions": json.loads(log.excursions_json),
    }


def temperature_logs_replaced(subject: Subject) -> dict[int, dict[str, Any]]:
    """The subject's temperature logs replaced by a file imported again (a correction), each with
    the new log's id (`by`), the reason and when: read from the imports' audit entries."""
    replaced: dict[int, dict[str, Any]] = {}
    entries = AuditEntry.objects.filter(
        subject_code=subject.code, event=AuditEvent.TEMPERATURE_LOG_IMPORTED.value
    ).exclude(reason="")
    for entry in entries.order_by("sequence"):
        for change in entry_changes(entry):
            if change.get("field") == "replaces" and change.get("new") is not None:
                replaced[int(change["new"])] = {"by": entry.entity_id, "reason": entry.reason, "at": entry.occurred_at}
    return replaced


def shipment_get(subject: Subject, shipment_id: int) -> Shipment:
    """A shipment of an (already scoped) subject; Shipment.DoesNotExist otherwise."""
    return Shipment.objects.select_related("origin", "destination").get(pk=shipment_id, subject=subject)


def milestones_for(scope: Scope) -> list[Milestones]:
    """First apheresis end, release and infusion times of every subject in scope that reached an apheresis."""
    subjects = list(
        Subject.objects.filter(subject_filter(scope), collections__isnull=False)
        .select_related("center")
        .distinct()
        .order_by("center__code", "number")
    )
    ids = [s.pk for s in subjects]
    first_collection: dict[int, datetime] = {}
    for subject_id, ended_at in Collection.objects.filter(subject_id__in=ids, number=1).values_list(
        "subject_id", "ended_at"
    ):
        first_collection[subject_id] = ended_at
    released: dict[int, datetime | None] = {}  # never None (filtered): the column is nullable
    for subject_id, released_at in (
        ManufacturingBatch.objects.filter(subject_id__in=ids, released_at__isnull=False)
        .order_by("released_at")
        .values_list("subject_id", "released_at")
    ):
        released.setdefault(subject_id, released_at)
    infused: dict[int, datetime] = {}
    for subject_id, infused_at in Infusion.objects.filter(batch__subject_id__in=ids).values_list(
        "batch__subject_id", "infused_at"
    ):
        infused[subject_id] = infused_at
    return [
        Milestones(s.code, s.center.code, first_collection.get(s.pk), released.get(s.pk), infused.get(s.pk))
        for s in subjects
    ]


MILESTONE_LABELS: dict[str, str] = {
    "apheresis_end": N_("End of apheresis"),
    "left_for_lab": N_("Left for the lab"),
    "at_lab": N_("Received at the lab"),
    "production": N_("Production started"),
    "released": N_("Released"),
    "left_for_center": N_("Left for the center"),
    "at_pharmacy": N_("Received at the pharmacy"),
    "lymphodepletion": N_("Lymphodepletion started"),
    "thawed": N_("Thawed"),
    "infused": N_("Infused"),
}


def timeline_points(subject: Subject) -> list[tuple[str, datetime]]:
    """The patient's milestones from the end of the first apheresis to the infusion, from the records.

    After a failure branch the later milestones are those of the batch in force (the latest), so
    the total is the vein-to-vein time the patient actually lived.
    """
    first = Collection.objects.filter(subject=subject).order_by("number").first()
    if first is None:
        return []
    found: list[tuple[str, datetime | None]] = [("apheresis_end", first.ended_at)]
    batch = ManufacturingBatch.objects.filter(subject=subject).order_by("-number").first()
    collection = batch.collection if batch else Collection.objects.filter(subject=subject).order_by("-number").first()
    outbound = (
        Shipment.objects.filter(subject=subject, direction=Shipment.Direction.TO_LAB, collection=collection)
        .order_by("-pk")
        .first()
    )
    if outbound is not None:
        found += [("left_for_lab", outbound.actual_departure_at), ("at_lab", outbound.actual_arrival_at)]
    if batch is not None:
        found += [("production", batch.started_at), ("released", batch.released_at)]
        back = Shipment.objects.filter(batch=batch, direction=Shipment.Direction.TO_CENTER).order_by("-pk").first()
        if back is not None:
            found += [("left_for_center", back.actual_departure_at), ("at_pharmacy", back.actual_arrival_at)]
        lymphodepletion = (
            PathwayEvent.objects.filter(subject=subject, step=Step.START_LYMPHODEPLETION.value)
            .order_by("-occurred_at")
            .first()
        )
        if lymphodepletion is not None:
            found.append(("lymphodepletion", lymphodepletion.occurred_at))
        thaw = Thaw.objects.filter(batch=batch).order_by("-thawed_at").first()
        infusion = Infusion.objects.filter(batch=batch).first()
        found += [("thawed", thaw.thawed_at if thaw else None), ("infused", infusion.infused_at if infusion else None)]
    return [(MILESTONE_LABELS[key], moment) for key, moment in found if moment is not None]
