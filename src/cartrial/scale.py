"""A synthetic study of N subjects for benchmarks and load tests (`cartrial demo --scale N`).

The normal demo goes through the per-subject services: right for a few patients, far too slow for
ten thousand. Here the shared part (protocol, centers, the demo's users and their password) is
built through the real services, then the subjects are generated in chunks and written with
`bulk_create`, each chunk in one transaction: the subject, its identity (encrypted with the
identity key like the services do), consent, screening, eligibility, pathway events in pathway
order, the logistics of its product (CoI, collection, shipments, custody, batch, QC, receipt,
thaw, infusion, signatures), its visits, forms and their lab observations, a CRS for some of the
infused, and one audit entry per record, hashed in sequence with `domain.audit_chain` like
`audit_record` does. The chain head moves with each chunk, so the trail verifies at any point.

Deterministic: the same N and seed give the same study (times follow the clock at the build).
Values come from the demo's clinical course and pass the eCRF engine's checks of the protocol's
items before they are stored. All subjects are marked synthetic.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.color import no_style
from django.db import connection, models, transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import ElectronicSignature, User
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.casebook.services import FORM_LAB_CONTEXT, LAB_SAMPLE_LOCAL_TIME, form_definition
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    CustodyRecord,
    IdentifierCounter,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    QcResult,
    Shipment,
    Thaw,
)
from cartrial.apps.logistics.services import (
    BEDSIDE_MEANING,
    COI_FACILITY_NUMBER,
    DIN_FACILITY_NUMBER,
    RELEASE_MEANING,
    holder_apheresis,
    holder_bedside,
    holder_courier,
    holder_lab,
    holder_pharmacy,
)
from cartrial.apps.safety.models import AdverseEvent
from cartrial.apps.subjects.identity_crypto import hospital_number_digests, identity_encrypt
from cartrial.apps.subjects.models import (
    Consent,
    EligibilityAssessment,
    PathwayEvent,
    Subject,
    SubjectCodeCounter,
    SubjectIdentity,
)
from cartrial.apps.subjects.services import protocol_version_of
from cartrial.apps.trial.models import Center, ProtocolVersion
from cartrial.demo import (
    DEMO_SCREENING_DATA,
    SYNTHETIC_NAMES,
    CasebookCourse,
    build_centers_and_users,
)
from cartrial.domain.audit_chain import CHAINED_FIELDS, ChainedContent, canonical_json, chained_row, entry_hash
from cartrial.domain.casebook import saved_status
from cartrial.domain.ecrf import CleanedValues, FormContext, FormDef, form_values_check
from cartrial.domain.ecrf.values import lab_range
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.identity import new_coi, new_din
from cartrial.domain.lab_catalogue import normalise_unit
from cartrial.domain.pathway import State, Step
from cartrial.domain.patient_identity import hospital_number_key, patient_identity_check
from cartrial.domain.screening import LabFact, evaluate_screening
from cartrial.domain.visits import Anchor
from cartrial.protocols import Protocol

CLINICAL_CENTERS = ("BDX", "LIL", "PAR", "STR", "MTL")
LAB_CENTER = "LAB"

# Where the synthetic subjects stand (share of the study): most are followed up after their
# infusion, as in a trial that has been recruiting for two years.
STATE_MIX: tuple[tuple[State, int], ...] = (
    (State.SCREENING, 6),
    (State.SCREEN_FAILED, 8),
    (State.INCLUDED, 5),
    (State.APHERESIS_SCHEDULED, 5),
    (State.APHERESIS_COLLECTED, 3),
    (State.MATERIAL_SHIPPED, 3),
    (State.MANUFACTURING, 6),
    (State.PRODUCT_RELEASED, 3),
    (State.PRODUCT_SHIPPED, 3),
    (State.PRODUCT_RECEIVED, 2),
    (State.LYMPHODEPLETION, 2),
    (State.ACUTE_MONITORING, 8),
    (State.FOLLOW_UP, 31),
    (State.LONG_TERM_FOLLOW_UP, 5),
    (State.COMPLETED, 8),
)

# Days a subject stays in a state after reaching it, at most (its reach is drawn below that), so
# that the next step is not yet due: the sponsor sees a study in progress.
STAY_DAYS: dict[State, float] = {
    State.SCREENING: 0.05,
    State.FOLLOW_UP: 700.0,
    State.ACUTE_MONITORING: 27.0,
    State.LONG_TERM_FOLLOW_UP: 365.0,
    State.COMPLETED: 300.0,
}

# The casebook's visits older than this are verified by the monitor and locked by the data manager.
REVIEWED_AFTER_DAYS = 90

QC_RESULTS: tuple[tuple[str, str, float | None, str, str], ...] = (
    ("viability", "86", 86.0, "%", "≥ 70 %"),
    ("car_expression", "38", 38.0, "%", "≥ 10 %"),
    ("vector_copy_number", "1.9", 1.9, "copies/cell", "≤ 5 copies/cell"),
    ("endotoxin", "0.5", 0.5, "EU/mL", "≤ 5 EU/mL"),
    ("sterility", "negative", None, "", "negative"),
    ("mycoplasma", "negative", None, "", "negative"),
)
INCLUSION_MEANING = "I confirm this patient meets all eligibility criteria"
STORAGE_LOCATION = "PUI – cuve azote n°2"


@dataclass(frozen=True)
class Who:
    """A user acting in one role at one center (the audit entry's actor)."""

    user_id: int
    username: str
    role: str
    center_code: str
    full_name: str


@dataclass
class ScaleReport:
    """What was built: subjects and rows per table, the audit head, the API token of the coordinator."""

    subjects: int
    rows: dict[str, int]
    head_hash: str
    api_token: str


class _Ids:
    """Primary keys given here (rows are written with them, so the audit entries can name them)."""

    def __init__(self) -> None:
        self._next: dict[type[models.Model], int] = {}

    def take(self, model: type[models.Model]) -> int:
        if model not in self._next:
            top = model._default_manager.aggregate(top=models.Max("pk"))["top"] or 0
            self._next[model] = top + 1
        value = self._next[model]
        self._next[model] = value + 1
        return value


class _Trail:
    """The audit entries of a chunk, chained from the stored head exactly as `audit_record` chains them."""

    def __init__(self, last_sequence: int, last_hash: str) -> None:
        self.sequence = last_sequence
        self.last_hash = last_hash
        self.entries: list[tuple[Any, ...]] = []

    def add(
        self,
        who: Who | None,
        at: datetime,
        event: str,
        entity: str,
        entity_id: object,
        subject_code: str,
        center_code: str,
        changes: list[tuple[str, Any, Any]],
        reason: str = "",
    ) -> None:
        self.sequence += 1
        content = ChainedContent(
            sequence=self.sequence,
            occurred_at=at,
            actor_id=who.user_id if who else None,
            actor_username=who.username if who else "demo",
            role=who.role if who else "system",
            center_code=center_code,
            event=event,
            entity=entity,
            entity_id=str(entity_id),
            subject_code=subject_code,
            changes_json=canonical_json([{"field": f, "old": _plain(o), "new": _plain(n)} for f, o, n in changes]),
            reason=reason,
            previous_hash=self.last_hash,
        )
        digest = entry_hash(content)
        self.entries.append(chained_row(content, digest))
        self.last_hash = digest


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# The order rows are written in (a row after those it refers to).
WRITE_ORDER: tuple[type[models.Model], ...] = (
    Subject,
    SubjectIdentity,
    Consent,
    ScreeningRecord,
    EligibilityAssessment,
    ElectronicSignature,
    PathwayEvent,
    LabObservation,
    VisitRecord,
    FormRecord,
    ChainOfIdentity,
    Collection,
    ManufacturingBatch,
    QcResult,
    Shipment,
    CustodyRecord,
    ProductReceipt,
    Thaw,
    Infusion,
    AdverseEvent,
    AuditEntry,
)


@dataclass
class _Chunk:
    rows: dict[type[models.Model], list[models.Model]] = field(default_factory=dict)
    # The two tables of millions of rows, kept as plain rows (columns of `PLAIN_COLUMNS`): a model
    # instance per row would cost more than everything else.
    plain: dict[type[models.Model], list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, row: models.Model) -> models.Model:
        self.rows.setdefault(type(row), []).append(row)
        return row


@dataclass
class _World:
    protocol: Protocol
    version: ProtocolVersion
    centers: dict[str, Center]
    people: dict[str, Who]
    today: datetime
    ids: _Ids
    counters: dict[tuple[str, str, int], int]


class _SubjectBuilder:
    """Writes one subject's records along the main path up to its target state, in time order."""

    def __init__(self, world: _World, chunk: _Chunk, trail: _Trail, index: int, number: int, rng: random.Random):
        self.w, self.chunk, self.trail, self.rng = world, chunk, trail, rng
        self.center = world.centers[CLINICAL_CENTERS[index % len(CLINICAL_CENTERS)]]
        self.lab = world.centers[LAB_CENTER]
        self.zone = ZoneInfo(self.center.time_zone)
        self.code = f"{self.center.code}-{number:03d}"
        self.number = number
        self.index = index
        self.prefix = self.center.code.lower()

    # -- helpers -------------------------------------------------------------------------------

    def who(self, role: str) -> Who:
        return self.w.people[f"{self.prefix}.{role}"]

    def local(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def audit(
        self, who: Who | None, at: datetime, event: str, entity: str, entity_id: object, changes: list[Any], **kw: Any
    ) -> None:
        center = kw.pop("center_code", self.center.code)
        self.trail.add(who, at, event, entity, entity_id, self.code, center, changes, **kw)

    def new[M: models.Model](self, model: type[M], **values: Any) -> M:
        row = model(pk=self.w.ids.take(model), **values)
        self.chunk.add(row)
        return row

    def step(
        self,
        who: Who,
        at: datetime,
        step: Step,
        target: State,
        *,
        details: dict[str, Any] | None = None,
        dates: dict[str, date] | None = None,
        signature: ElectronicSignature | None = None,
        reason: str = "",
    ) -> None:
        source = self.subject.state
        changes: list[Any] = [("state", source, target.value)]
        for name, value in (dates or {}).items():
            old = getattr(self.subject, name)
            if old != value:
                changes.append((name, old, value))
                setattr(self.subject, name, value)
        self.subject.state, self.subject.state_changed_at = target.value, at
        self.new(
            PathwayEvent,
            subject=self.subject,
            step=step.value,
            from_state=source,
            to_state=target.value,
            occurred_at=at,
            actor_id=who.user_id,
            role=who.role,
            center_code=who.center_code,
            reason=reason,
            details={k: _plain(v) for k, v in (details or {}).items()},
            signature=signature,
        )
        self.audit(who, at, "pathway.step", "subject", self.code, [*changes, ("step", None, step.value)], reason=reason)

    def sign(self, who: Who, at: datetime, meaning: str, entity: str, entity_id: str) -> ElectronicSignature:
        digest = hashlib.sha256(canonical_json([entity, entity_id, meaning, at.isoformat()]).encode()).hexdigest()
        signature = self.new(
            ElectronicSignature,
            signer_id=who.user_id,
            signer_name=who.full_name,
            role=who.role,
            center_code=who.center_code,
            meaning=meaning,
            signed_at=at,
            entity=entity,
            entity_id=entity_id,
            content_sha256=digest,
        )
        self.audit(
            who,
            at,
            "signature.applied",
            "signature",
            signature.pk,
            [("signed", None, f"{entity} {entity_id}"), ("meaning", None, meaning), ("content_sha256", None, digest)],
            center_code=who.center_code,
        )
        return signature

    def identifier_number(self, kind: str, facility: str, year: int) -> int:
        key = (kind, facility, year % 100)
        self.w.counters[key] = self.w.counters.get(key, 0) + 1
        return self.w.counters[key]

    def lab_row(
        self,
        who: Who,
        at: datetime,
        analyte: str,
        value: float,
        unit: str,
        low: float | None,
        high: float | None,
        sampled_at: datetime,
        context: str,
    ) -> int:
        pk = self.w.ids.take(LabObservation)
        self.chunk.plain.setdefault(LabObservation, []).append(
            (
                pk,
                self.subject.pk,
                analyte,
                value,
                unit,
                low,
                high,
                None,
                sampled_at,
                context,
                who.user_id,
                at,
                self.w.version.pk,
            )
        )
        self.audit(
            who,
            at,
            "lab_observation.recorded",
            "lab_observation",
            pk,
            [
                ("analyte", None, analyte),
                ("value", None, value),
                ("unit", None, unit),
                ("lower_limit", None, low),
                ("upper_limit", None, high),
                ("limit_of_quantification", None, None),
                ("sampled_at", None, sampled_at.isoformat()),
            ],
        )
        return pk

    # -- the path ------------------------------------------------------------------------------

    def build(self, target: State, start: datetime) -> None:
        coordinator, investigator = self.who("coordinator"), self.who("investigator")
        family, given = SYNTHETIC_NAMES[self.index % len(SYNTHETIC_NAMES)]
        birth = self.birth = date(1962 + self.index % 40, 1 + self.index % 12, 1 + self.index % 27)
        fields = patient_identity_check(
            family_name=family,
            given_names=given,
            birth_date=birth,
            hospital_number=f"{self.center.code}{800000 + self.index}",
            today=self.local(start),
        ).as_stored()
        self.subject = self.new(
            Subject,
            center=self.center,
            manufacturing_site=self.lab,
            number=self.number,
            code=self.code,
            state=State.PRE_SCREENING.value,
            protocol_version=self.w.version,
            synthetic=True,
            created_at=start,
            state_changed_at=start,
        )
        self.new(
            SubjectIdentity,
            subject=self.subject,
            ciphertext=identity_encrypt(fields),
            hospital_number_digest=hospital_number_digests(
                self.center.code, hospital_number_key(fields["hospital_number"])
            )[0],
        )
        self.audit(
            coordinator,
            start,
            "subject.created",
            "subject",
            self.code,
            [
                ("code", None, self.code),
                ("state", None, State.PRE_SCREENING.value),
                ("protocol_version", None, self.w.protocol.version),
                ("synthetic", None, True),
                ("identity", None, "recorded (encrypted)"),
            ],
        )
        # Screening starts with the consent, signed that day.
        moment = start
        doc = self.w.protocol.current_consent_versions()["fr"]
        signed_on = self.local(moment)
        consent = self.new(
            Consent,
            subject=self.subject,
            document_version=doc,
            language="fr",
            signed_on=signed_on,
            obtained_by_id=coordinator.user_id,
            recorded_at=moment,
        )
        self.audit(
            coordinator,
            moment,
            "consent.recorded",
            "consent",
            consent.pk,
            [("document_version", None, doc), ("language", None, "fr"), ("signed_on", None, signed_on.isoformat())],
        )
        self.step(
            coordinator,
            moment,
            Step.START_SCREENING,
            State.SCREENING,
            details={"consent_version": doc, "consent_language": "fr", "consent_signed_on": signed_on.isoformat()},
        )
        self.screened_on = signed_on
        if target is State.SCREENING:
            return
        failed = target is State.SCREEN_FAILED
        assessment = self.screen(coordinator, moment, birth, signed_on, cd3=80.0 if failed else 650.0)
        moment += timedelta(days=0.1)
        if failed:
            self.step(
                investigator,
                moment,
                Step.FAIL_SCREENING,
                State.SCREEN_FAILED,
                reason="CD3+ sous 100/µL à la sélection (synthétique)",
            )
            return
        self.step(
            investigator,
            moment,
            Step.CONFIRM_ELIGIBILITY,
            State.ELIGIBLE,
            details={"assessment_id": assessment.pk, "verdict": "eligible"},
        )
        moment += timedelta(days=2)
        signature = self.sign(investigator, moment, INCLUSION_MEANING, "subject", self.code)
        self.coi_allocate(investigator, moment)
        self.step(
            investigator,
            moment,
            Step.INCLUDE,
            State.INCLUDED,
            signature=signature,
            details={"assessment_id": assessment.pk, "meaning": INCLUSION_MEANING, "signed_verdict": "eligible"},
        )
        if target is State.INCLUDED:
            return
        moment += timedelta(days=1)
        self.step(
            coordinator,
            moment,
            Step.SCHEDULE_APHERESIS,
            State.APHERESIS_SCHEDULED,
            dates={"apheresis_date": self.local(moment) + timedelta(days=7)},
        )
        if target is State.APHERESIS_SCHEDULED:
            return
        for reached, move in self.logistics_plan():
            moment = move(moment)
            if reached is target:
                return
        infused_on = self.subject.infusion_date
        assert infused_on is not None
        moment += timedelta(days=0.1)
        self.step(investigator, moment, Step.START_ACUTE_MONITORING, State.ACUTE_MONITORING)
        if self.rng.random() < 0.3:
            self.crs(infused_on)
        if target is not State.ACUTE_MONITORING:
            moment += timedelta(days=28)
            self.step(coordinator, moment, Step.START_FOLLOW_UP, State.FOLLOW_UP)
            if target is State.LONG_TERM_FOLLOW_UP:
                moment += timedelta(days=703)
                self.step(coordinator, moment, Step.START_LONG_TERM_FOLLOW_UP, State.LONG_TERM_FOLLOW_UP)
            elif target is State.COMPLETED:
                moment += timedelta(days=703)
                self.step(coordinator, moment, Step.COMPLETE, State.COMPLETED)
        self.casebook(infused_on, moment if target is State.COMPLETED else self.w.today)

    def screen(self, who: Who, moment: datetime, birth: date, signed_on: date, cd3: float) -> EligibilityAssessment:
        data = dict(DEMO_SCREENING_DATA)
        record = self.new(
            ScreeningRecord,
            subject=self.subject,
            data_json=data,
            attestations_json={},
            revision=1,
            recorded_by_id=who.user_id,
            first_recorded_at=moment,
            updated_at=moment,
            protocol_version=self.w.version,
        )
        self.audit(
            who,
            moment,
            "screening.data_recorded",
            "screening_record",
            record.pk,
            [*((k, None, v) for k, v in data.items()), ("attestations", None, {})],
        )
        sampled = moment - timedelta(hours=2)
        self.lab_row(who, moment, "creatinine", 71.0, "umol/L", 45.0, 90.0, sampled, "screening")
        self.lab_row(who, moment, "cd3", cd3, "cells/µL", 700.0, 2100.0, sampled, "screening")
        labs = {
            "creatinine": LabFact("creatinine", 71.0, "umol/L", 45.0, 90.0, sampled.date()),
            "cd3": LabFact("cd3", cd3, "cells/µL", 700.0, 2100.0, sampled.date()),
        }
        age = signed_on.year - birth.year - ((signed_on.month, signed_on.day) < (birth.month, birth.day))
        evaluation = evaluate_screening(self.w.protocol.criteria, data, labs, age_years=age, attestations={})
        verdict = evaluation.verdict
        assessment = self.new(
            EligibilityAssessment,
            subject=self.subject,
            verdict=verdict.verdict.value,
            result_json=evaluation.as_dict(),
            assessed_by_id=who.user_id,
            assessed_at=moment,
            protocol_version=self.w.version,
        )
        self.audit(
            who,
            moment,
            "eligibility.assessed",
            "eligibility_assessment",
            assessment.pk,
            [("verdict", None, verdict.verdict.value), ("failed", None, verdict.failed())],
        )
        return assessment

    def coi_allocate(self, who: Who, moment: datetime) -> None:
        number = self.identifier_number("coi", COI_FACILITY_NUMBER, moment.year)
        identifier = new_coi(facility_number=COI_FACILITY_NUMBER, year=moment.year, sequence_number=number)
        self.coi = self.new(
            ChainOfIdentity,
            subject=self.subject,
            content=identifier.content,
            check_character=identifier.check_character,
            allocated_at=moment,
            allocated_by_id=who.user_id,
        )
        self.coi_identifier = identifier
        self.audit(
            who,
            moment,
            "logistics.coi_allocated",
            "chain_of_identity",
            identifier.content,
            [("coi", None, identifier.content), ("check_character", None, identifier.check_character)],
        )

    def custody(
        self,
        who: Who,
        at: datetime,
        item_id: str,
        item_code: str,
        giver: str | None,
        taker: str,
        location: str,
        scanned: str,
        shipment: Shipment | None = None,
    ) -> None:
        self.new(
            CustodyRecord,
            subject=self.subject,
            item_id=item_id,
            item_code=item_code,
            from_holder=giver,
            to_holder=taker,
            actor_id=who.user_id,
            at=at,
            location=location,
            scanned_code=scanned,
            shipment=shipment,
            recorded_at=at,
        )
        self.audit(
            who,
            at,
            "logistics.custody_hand_over",
            "custody",
            item_id,
            [("from", None, giver), ("to", None, taker), ("at", None, at.isoformat()), ("scanned", None, scanned)],
            center_code=who.center_code,
        )

    def dispatch(
        self,
        who: Who,
        at: datetime,
        *,
        direction: str,
        giver: str,
        item: tuple[str, str, str],
        product: tuple[str, str],
        carrier: tuple[str, str, float],
        **link: Any,
    ) -> Shipment:
        """A shipment leaves: its row, its audit entry, and the custody handed from `giver` to the
        courier, as `logistics.services` writes them. `item` is (custody item, code, scanned code),
        `product` (product code, condition), `carrier` (courier, shipper id, hours planned)."""
        item_id, item_code, scanned = item
        product_code, condition = product
        courier, shipper, hours = carrier
        origin, destination = (self.center, self.lab) if direction == "to_lab" else (self.lab, self.center)
        arrival = at + timedelta(hours=hours)
        shipment = self.new(
            Shipment,
            subject=self.subject,
            direction=direction,
            item_code=item_code,
            product_code=product_code,
            condition=condition,
            courier=courier,
            shipper_id=shipper,
            origin=origin,
            destination=destination,
            planned_departure_at=at,
            planned_arrival_at=arrival,
            actual_departure_at=at,
            created_by_id=who.user_id,
            created_at=at,
            **link,
        )
        changes = [
            ("direction", None, direction),
            ("item", None, item_code),
            ("courier", None, courier),
            ("shipper_id", None, shipper),
            ("condition", None, condition),
            ("planned_departure_at", None, at.isoformat()),
            ("planned_arrival_at", None, arrival.isoformat()),
        ]
        self.audit(who, at, "logistics.shipment_dispatched", "shipment", shipment.pk, changes, center_code=origin.code)
        self.custody(
            who, at, item_id, item_code, giver, holder_courier(courier, shipper), origin.name, scanned, shipment
        )
        return shipment

    def arrive(self, who: Who, at: datetime, shipment: Shipment) -> None:
        """A shipment arrives at its destination (its arrival time and audit entry)."""
        shipment.actual_arrival_at = at
        changes = [("actual_arrival_at", None, at.isoformat())]
        self.audit(
            who,
            at,
            "logistics.shipment_arrived",
            "shipment",
            shipment.pk,
            changes,
            center_code=shipment.destination.code,
        )

    def logistics_plan(self) -> list[tuple[State, Callable[[datetime], datetime]]]:
        return [
            (State.APHERESIS_COLLECTED, self.collect),
            (State.MATERIAL_SHIPPED, self.ship_material),
            (State.MANUFACTURING, self.manufacture),
            (State.PRODUCT_RELEASED, self.release),
            (State.PRODUCT_SHIPPED, self.ship_product),
            (State.PRODUCT_RECEIVED, self.receive),
            (State.LYMPHODEPLETION, self.lymphodeplete),
            (State.INFUSED, self.infuse),
        ]

    def collect(self, moment: datetime) -> datetime:
        moment += timedelta(days=7)
        who = self.who("apheresis")
        started, ended = moment - timedelta(hours=4, minutes=10), moment - timedelta(minutes=20)
        number = self.identifier_number("din", DIN_FACILITY_NUMBER, ended.year)
        din = new_din(facility_number=DIN_FACILITY_NUMBER, year=ended.year, sequence_number=number)
        volume = round(self.rng.uniform(180, 240), 1)
        self.collection = self.new(
            Collection,
            subject=self.subject,
            coi=self.coi,
            number=1,
            din=din.content,
            check_character=din.check_character,
            started_at=started,
            ended_at=ended,
            volume_ml=volume,
            tnc_e9=18.5,
            cd3_cells_e9=4.2,
            recorded_by_id=who.user_id,
            recorded_at=moment,
        )
        self.din = din
        self.audit(
            who,
            moment,
            "logistics.collection_recorded",
            "collection",
            din.content,
            [
                ("din", None, din.content),
                ("number", None, 1),
                ("started_at", None, started.isoformat()),
                ("ended_at", None, ended.isoformat()),
                ("volume_ml", None, volume),
                ("tnc_e9", None, 18.5),
                ("cd3_cells_e9", None, 4.2),
            ],
        )
        self.material = f"material {din.content}"
        self.custody(
            who,
            moment,
            self.material,
            din.content,
            None,
            holder_apheresis(self.center),
            self.center.name,
            din.barcode_data(),
        )
        self.step(
            who,
            moment,
            Step.COLLECT_APHERESIS,
            State.APHERESIS_COLLECTED,
            dates={"apheresis_date": self.local(ended)},
            details={"volume_ml": volume, "tnc_e9": 18.5, "cd3_cells_e9": 4.2},
        )
        self.collected_on = self.local(ended)
        return moment

    def ship_material(self, moment: datetime) -> datetime:
        moment += timedelta(days=0.2)
        who = self.who("apheresis")
        shipper = f"BLX-{self.din.content[-4:]}"
        courier = "BioLogistics Express (synthetic)"
        self.to_lab = self.dispatch(
            who,
            moment,
            direction="to_lab",
            giver=holder_apheresis(self.center),
            item=(self.material, self.din.content, self.din.barcode_data()),
            product=("APHERESIS_FRESH", "fresh"),
            carrier=(courier, shipper, 20),
            collection=self.collection,
        )
        self.step(
            who,
            moment,
            Step.SHIP_MATERIAL,
            State.MATERIAL_SHIPPED,
            details={"courier": courier, "shipper_id": shipper, "condition": "fresh"},
        )
        return moment

    def manufacture(self, moment: datetime) -> datetime:
        moment += timedelta(days=0.9)
        who = self.w.people["lab.manufacturing"]
        self.arrive(who, moment, self.to_lab)
        self.custody(
            who,
            moment,
            self.material,
            self.din.content,
            holder_courier(self.to_lab.courier, self.to_lab.shipper_id),
            holder_lab(self.lab),
            self.lab.name,
            self.din.typed_form,
            self.to_lab,
        )
        self.batch_label = f"{self.coi.content}-1"
        self.batch = self.new(
            ManufacturingBatch,
            subject=self.subject,
            coi=self.coi,
            collection=self.collection,
            number=1,
            status="received",
            received_at=moment,
        )
        self.audit(
            who,
            moment,
            "logistics.batch_status_changed",
            "batch",
            self.batch_label,
            [("status", None, "received")],
            center_code=LAB_CENTER,
        )
        moment += timedelta(days=0.1)
        self.batch.status, self.batch.started_at = "in_production", moment
        self.audit(
            who,
            moment,
            "logistics.batch_status_changed",
            "batch",
            self.batch_label,
            [("status", "received", "in_production")],
            center_code=LAB_CENTER,
        )
        self.step(who, moment, Step.START_MANUFACTURING, State.MANUFACTURING)
        return moment

    def release(self, moment: datetime) -> datetime:
        moment += timedelta(days=13.5 + (self.number % 4) * 0.6)
        who = self.w.people["lab.manufacturing"]
        self.batch.status, self.batch.qc_started_at = "qc", moment
        self.audit(
            who,
            moment,
            "logistics.batch_status_changed",
            "batch",
            self.batch_label,
            [("status", "in_production", "qc")],
            center_code=LAB_CENTER,
        )
        for test, text, number, unit, specification in QC_RESULTS:
            row = self.new(
                QcResult,
                batch=self.batch,
                test_code=test,
                value_text=text,
                value_number=number,
                unit=unit,
                specification=specification,
                conforms=True,
                recorded_by_id=who.user_id,
                recorded_at=moment,
            )
            self.audit(
                who,
                moment,
                "logistics.qc_result_recorded",
                "qc_result",
                row.pk,
                [
                    ("batch", None, self.batch_label),
                    ("test", None, test),
                    ("value", None, text),
                    ("conforms", None, True),
                ],
                center_code=LAB_CENTER,
            )
        moment += timedelta(days=0.5)
        signature = self.sign(who, moment, RELEASE_MEANING, "batch", self.batch_label)
        self.batch.status, self.batch.released_at, self.batch.release_signature = "released", moment, signature
        self.audit(
            who,
            moment,
            "logistics.batch_status_changed",
            "batch",
            self.batch_label,
            [("status", "qc", "released"), ("under_exception", None, False)],
            center_code=LAB_CENTER,
        )
        self.product = f"product {self.batch_label}"
        self.custody(
            who,
            moment,
            self.product,
            self.coi.content,
            None,
            holder_lab(self.lab),
            self.lab.name,
            self.coi_identifier.barcode_data(),
        )
        self.step(
            who,
            moment,
            Step.RELEASE_PRODUCT,
            State.PRODUCT_RELEASED,
            signature=signature,
            details={"meaning": RELEASE_MEANING},
        )
        return moment

    def ship_product(self, moment: datetime) -> datetime:
        moment += timedelta(days=2 + (self.number % 4) * 0.3)
        who = self.w.people["lab.manufacturing"]
        courier, shipper = "CryoTrans (synthetic)", f"DS-{self.coi.content[-4:]}"
        self.to_center = self.dispatch(
            who,
            moment,
            direction="to_center",
            giver=holder_lab(self.lab),
            item=(self.product, self.coi.content, self.coi_identifier.barcode_data()),
            product=("CART_CRYO", "cryopreserved"),
            carrier=(courier, shipper, 22),
            batch=self.batch,
            arrival_confirmed=True,
        )
        self.step(
            who,
            moment,
            Step.SHIP_PRODUCT,
            State.PRODUCT_SHIPPED,
            details={"courier": courier, "shipper_id": shipper, "arrival_confirmed": True},
        )
        return moment

    def receive(self, moment: datetime) -> datetime:
        moment += timedelta(days=1)
        who = self.who("pharmacist")
        self.arrive(who, moment, self.to_center)
        receipt = self.new(
            ProductReceipt,
            shipment=self.to_center,
            batch=self.batch,
            received_at=moment,
            received_by_id=who.user_id,
            storage_location=STORAGE_LOCATION,
            scanned_code=self.coi_identifier.barcode_data(),
        )
        self.audit(
            who,
            moment,
            "logistics.product_received",
            "product_receipt",
            receipt.pk,
            [
                ("batch", None, self.batch_label),
                ("storage_location", None, STORAGE_LOCATION),
                ("received_at", None, moment.isoformat()),
            ],
        )
        self.custody(
            who,
            moment,
            self.product,
            self.coi.content,
            holder_courier(self.to_center.courier, self.to_center.shipper_id),
            holder_pharmacy(self.center),
            self.center.name,
            self.coi_identifier.barcode_data(),
            self.to_center,
        )
        self.step(
            who, moment, Step.RECEIVE_PRODUCT, State.PRODUCT_RECEIVED, details={"storage_location": STORAGE_LOCATION}
        )
        return moment

    def lymphodeplete(self, moment: datetime) -> datetime:
        moment += timedelta(days=2)
        planned = self.local(moment) + timedelta(days=5)
        self.step(
            self.who("investigator"),
            moment,
            Step.START_LYMPHODEPLETION,
            State.LYMPHODEPLETION,
            details={"planned_infusion_date": planned.isoformat()},
        )
        self.ld_on = self.local(moment)
        return moment

    def infuse(self, moment: datetime) -> datetime:
        moment += timedelta(days=5)
        pharmacist, investigator = self.who("pharmacist"), self.who("investigator")
        thawed_at = moment - timedelta(minutes=18)
        thaw = self.new(
            Thaw,
            batch=self.batch,
            thawed_at=thawed_at,
            thawed_by_id=pharmacist.user_id,
            scanned_code=self.coi_identifier.barcode_data(),
            max_thaw_to_infusion_min=30.0,
        )
        self.audit(
            pharmacist,
            thawed_at,
            "logistics.product_thawed",
            "thaw",
            thaw.pk,
            [
                ("batch", None, self.batch_label),
                ("thawed_at", None, thawed_at.isoformat()),
                ("max_thaw_to_infusion_min", None, 30),
            ],
        )
        self.custody(
            pharmacist,
            thawed_at,
            self.product,
            self.coi.content,
            holder_pharmacy(self.center),
            holder_bedside(self.center),
            self.center.name,
            self.coi_identifier.barcode_data(),
        )
        first = self.sign(investigator, moment, BEDSIDE_MEANING, "subject", self.code)
        second = self.sign(pharmacist, moment, BEDSIDE_MEANING, "subject", self.code)
        infusion = self.new(
            Infusion,
            batch=self.batch,
            thaw=thaw,
            infused_at=moment,
            minutes_from_thaw=18.0,
            first_checker_id=investigator.user_id,
            first_bag_code=self.coi_identifier.typed_form,
            first_wristband_code=self.code,
            first_signature=first,
            second_checker_id=pharmacist.user_id,
            second_bag_code=self.coi_identifier.barcode_data(),
            second_wristband_code=self.code,
            second_signature=second,
        )
        checkers = [investigator.username, pharmacist.username]
        self.audit(
            investigator,
            moment,
            "logistics.infusion_recorded",
            "infusion",
            infusion.pk,
            [
                ("batch", None, self.batch_label),
                ("infused_at", None, moment.isoformat()),
                ("minutes_from_thaw", None, 18.0),
                ("checkers", None, checkers),
            ],
        )
        self.custody(
            investigator,
            moment,
            self.product,
            self.coi.content,
            holder_bedside(self.center),
            f"patient {self.code}",
            self.center.name,
            self.coi_identifier.typed_form,
        )
        self.step(
            investigator,
            moment,
            Step.INFUSE,
            State.INFUSED,
            signature=first,
            dates={"infusion_date": self.local(moment)},
            details={"checkers": checkers},
        )
        return moment

    def crs(self, infused_on: date) -> None:
        """A grade 1–2 cytokine release syndrome in the first days, recorded by the coordinator."""
        who = self.who("coordinator")
        grade = self.rng.choice((1, 1, 2))
        start = infused_on + timedelta(days=self.rng.randint(1, 3))
        end = start + timedelta(days=self.rng.randint(1, 4))
        at = datetime.combine(end + timedelta(days=1), time(14, 0), tzinfo=self.zone)
        if at > self.w.today:
            return
        event = self.new(
            AdverseEvent,
            subject=self.subject,
            term="cytokine_release_syndrome",
            ctcae_version="5.0",
            grade=grade,
            serious=False,
            seriousness_criteria=[],
            start_date=start,
            end_date=end,
            action="treatment",
            outcome="recovered",
            aesi="crs",
            recorded_by_id=who.user_id,
            recorded_at=at,
        )
        self.audit(
            who,
            at,
            "safety.adverse_event_recorded",
            "adverse_event",
            event.pk,
            [
                ("term", None, "cytokine_release_syndrome"),
                ("grade", None, grade),
                ("start_date", None, start),
                ("end_date", None, end),
                ("serious", None, False),
                ("seriousness_criteria", None, []),
                ("action", None, "treatment"),
                ("outcome", None, "recovered"),
            ],
        )

    # -- the casebook --------------------------------------------------------------------------

    def casebook(self, infused_on: date, until: datetime) -> None:
        """The visits done up to `until` (screening, apheresis, then every infusion-anchored visit),
        their forms as the coordinator saves them, the monitor's verification and the data
        manager's lock of the older ones."""
        course = CasebookCourse(self.subject)
        last_day = self.local(min(until, self.w.today))
        plan: list[tuple[str, date]] = [("SCR", self.screened_on), ("APH", self.collected_on)]
        for visit in self.w.protocol.visits:
            if visit.anchor is not Anchor.INFUSION:
                continue
            target = infused_on + timedelta(days=visit.day)
            reach = min(visit.window_before_days, visit.window_after_days, 2 if visit.day < 60 else 10)
            done_on = target + timedelta(days=course.rng.randint(-reach, reach) if reach > 0 else 0)
            if visit.code == "LD":
                done_on = self.ld_on
            if done_on < last_day:
                plan.append((visit.code, done_on))
        for visit_code, done_on in plan:
            self.visit(course, visit_code, done_on, infused_on)

    def visit(self, course: CasebookCourse, visit_code: str, done_on: date, infused_on: date) -> None:
        coordinator = self.who("coordinator")
        entered = datetime.combine(done_on, time(18, 0), tzinfo=self.zone)
        if entered > self.w.today:
            return
        row = self.new(
            VisitRecord,
            subject=self.subject,
            visit_code=visit_code,
            outcome="done",
            done_on=done_on,
            missed_reason="",
            recorded_by_id=coordinator.user_id,
            recorded_at=entered,
        )
        self.audit(
            coordinator,
            entered,
            "casebook.visit_recorded",
            "visit_record",
            row.pk,
            [
                ("visit", None, visit_code),
                ("outcome", None, "done"),
                ("done_on", None, done_on),
                ("missed_reason", None, ""),
            ],
        )
        definition = next(v for v in self.w.protocol.visits if v.code == visit_code)
        reviewed = (self.w.today.date() - done_on).days > REVIEWED_AFTER_DAYS
        day = float((done_on - infused_on).days)
        others: dict[str, dict[str, object]] = {}
        for offset, form_code in enumerate(definition.forms):
            try:
                raw = course.forms(form_code, day, done_on, infused_on)
            except KeyError:
                continue  # a form the demo's course does not fill (the infusion's own form)
            form = form_definition(self.w.protocol, visit_code, form_code)
            context = FormContext(
                visit_code=visit_code,
                done_on=done_on,
                infusion_date=infused_on,
                sex="female",
                age_years=done_on.year
                - self.birth.year
                - ((done_on.month, done_on.day) < (self.birth.month, self.birth.day)),
                other_forms=dict(others),
            )
            try:
                cleaned = lab_form_values(form, raw) or form_values_check(form, raw, context)
            except InvalidInput:
                continue  # never for the demo's course; a form that would be refused is not stored
            values = dict(cleaned.values)
            others[form_code] = values
            saved_at = entered + timedelta(minutes=4 * (offset + 1))
            links: dict[str, int] = {}
            for item in form.items:
                lab = values.get(item.name)
                if not item.analyte or not isinstance(lab, dict) or lab.get("value") is None:
                    continue
                links[item.name] = self.lab_row(
                    coordinator,
                    saved_at,
                    item.analyte,
                    lab["value"],
                    str(lab.get("unit") or item.unit),
                    lab.get("lower_limit"),
                    lab.get("upper_limit"),
                    datetime.combine(done_on, LAB_SAMPLE_LOCAL_TIME, tzinfo=self.zone),
                    FORM_LAB_CONTEXT,
                )
            status = saved_status(cleaned.missing, {}, values).value
            record = self.new(
                FormRecord,
                subject=self.subject,
                visit_code=visit_code,
                form_code=form_code,
                status=status,
                values_json=values,
                verified_json={},
                observations_json=links,
                protocol_version=self.w.version,
                revision=1,
                created_by_id=coordinator.user_id,
                created_at=saved_at,
                updated_at=saved_at,
            )
            self.audit(
                coordinator,
                saved_at,
                "casebook.form_saved",
                "form_record",
                record.pk,
                [
                    ("form", None, f"{visit_code}/{form_code}"),
                    *((k, None, v) for k, v in values.items()),
                    ("status", None, status),
                ],
            )
            if reviewed and status == "complete":
                self.review(record, done_on)

    def review(self, record: FormRecord, done_on: date) -> None:
        monitor, manager = self.w.people["cra.monitor"], self.w.people["dm.datamanager"]
        verified_at = datetime.combine(done_on + timedelta(days=30), time(10, 0), tzinfo=self.zone)
        names = [n for n, v in record.values_json.items() if v not in (None, "", [])]
        stamp = {"by": monitor.username, "at": verified_at.isoformat()}
        record.verified_json = dict.fromkeys(names, stamp)
        record.status, record.updated_at = "verified", verified_at
        self.audit(
            monitor,
            verified_at,
            "casebook.form_verified",
            "form_record",
            record.pk,
            [("verified", None, names), ("status", "complete", "verified")],
        )
        locked_at = verified_at + timedelta(days=14)
        record.status, record.updated_at = "locked", locked_at
        self.audit(
            manager, locked_at, "casebook.form_locked", "form_record", record.pk, [("status", "verified", "locked")]
        )


def lab_form_values(form: FormDef, raw: Mapping[str, object]) -> CleanedValues | None:
    """The eCRF engine's cleaned values of a form made of lab results only (no derived item), every
    result given in the item's unit within its plausible range: what `form_values_check` returns for
    it, at a fraction of the cost (the scale test compares both). None for any other form (a derived
    item, an item not given) or value:
    the caller then runs the engine itself."""
    names = {item.name for item in form.items}
    if set(raw) != names or any(group.repeating for group in form.groups):
        return None
    values: dict[str, object] = {}
    for item in form.items:
        entry = raw[item.name]
        if item.analyte is None or item.derived is not None or not isinstance(entry, Mapping):
            return None
        if set(entry) != {"value", "lower_limit", "upper_limit"}:
            return None
        unit = normalise_unit(item.unit) if item.unit else ""
        if unit not in item.units:
            return None
        minimum, maximum = lab_range(item, unit)
        numbers: dict[str, float | str] = {"unit": unit}
        for key in ("value", "lower_limit", "upper_limit"):
            number = entry[key]
            if isinstance(number, bool) or not isinstance(number, float | int) or not minimum <= number <= maximum:
                return None
            numbers[key] = number
        if float(numbers["lower_limit"]) > float(numbers["upper_limit"]):
            return None
        values[item.name] = numbers
    return CleanedValues(values, ())


def _state_for(rng: random.Random) -> State:
    states, weights = zip(*STATE_MIX, strict=True)
    return State(rng.choices(states, weights=weights)[0])


# Days from the start of screening to reaching each state along the main path built above.
_REACHED: dict[State, float] = {
    State.SCREENING: 0.0,
    State.SCREEN_FAILED: 0.1,
    State.INCLUDED: 2.1,
    State.APHERESIS_SCHEDULED: 3.1,
    State.APHERESIS_COLLECTED: 10.1,
    State.MATERIAL_SHIPPED: 10.3,
    State.MANUFACTURING: 11.3,
    State.PRODUCT_RELEASED: 27.1,
    State.PRODUCT_SHIPPED: 30.0,
    State.PRODUCT_RECEIVED: 31.0,
    State.LYMPHODEPLETION: 33.0,
    State.ACUTE_MONITORING: 38.2,
    State.FOLLOW_UP: 66.2,
    State.LONG_TERM_FOLLOW_UP: 769.2,
    State.COMPLETED: 769.2,
}


def _people(centers: dict[str, Center], users: dict[str, User]) -> dict[str, Who]:
    """Each demo user in the role of its first membership (the one the demo acts in)."""
    people = {}
    for username, user in users.items():
        membership = user.memberships.select_related("center").order_by("pk").first()
        assert membership is not None
        people[username] = Who(user.pk, username, membership.role, membership.center.code, user.get_full_name())
    return people


def _refuse_non_empty() -> None:
    if Center.objects.exists() or Subject.objects.exists() or AuditEntry.objects.exists():
        raise Refused(
            "The database already holds a study: the synthetic study is built into an empty database only.",
            code="database_not_empty",
        )


# The columns of the plain rows (in the order the builder fills them).
PLAIN_COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    LabObservation: (
        "id",
        "subject_id",
        "analyte",
        "value",
        "unit",
        "lower_limit",
        "upper_limit",
        "limit_of_quantification",
        "sampled_at",
        "context",
        "recorded_by_id",
        "recorded_at",
        "protocol_version_id",
    ),
    AuditEntry: ("id", *CHAINED_FIELDS, "entry_hash"),
}


def _write(chunk: _Chunk, trail: _Trail, ids: _Ids, batch_size: int) -> dict[str, int]:
    """Write the chunk's rows in dependency order (COPY on PostgreSQL, bulk inserts elsewhere) and
    move the chain head to the chunk's last entry, in the caller's transaction."""
    written: dict[str, int] = {}
    chunk.plain[AuditEntry] = [(ids.take(AuditEntry), *entry) for entry in trail.entries]
    postgresql = connection.vendor == "postgresql"
    for model in WRITE_ORDER:
        rows = chunk.rows.get(model, [])
        plain = chunk.plain.get(model, [])
        if postgresql and rows:
            fields = model._meta.concrete_fields
            as_json = [isinstance(f, models.JSONField) for f in fields]
            names = [f.attname for f in fields]
            plain = [
                tuple(
                    json.dumps(getattr(row, name)) if is_json else getattr(row, name)
                    for name, is_json in zip(names, as_json, strict=True)
                )
                for row in rows
            ]
            _copy(model, [str(f.column) for f in fields], plain)
        elif postgresql and plain:
            _copy(model, list(PLAIN_COLUMNS[model]), plain)
        elif plain:
            rows = [model(**dict(zip(PLAIN_COLUMNS[model], row, strict=True))) for row in plain]
        if rows and not postgresql:
            model._default_manager.bulk_create(rows, batch_size=batch_size)
        if rows or plain:
            written[model._meta.label] = len(rows or plain)
    AuditChainHead.objects.filter(pk=1).update(last_sequence=trail.sequence, last_hash=trail.last_hash)
    return written


def _copy(model: type[models.Model], columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL's COPY of rows whose every column is set here (ids included): the bulk path."""
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    # Table and column names come from the models, nothing from input.
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _chunks(count: int, size: int) -> Iterator[range]:
    for first in range(0, count, size):
        yield range(first, min(first + size, count))


def build_scale(
    protocol: Protocol,
    subjects: int,
    *,
    seed: int = 13,
    chunk_size: int = 100,
    today: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScaleReport:
    """Build the synthetic study of `subjects` subjects into the empty database (refuses another).

    Memory stays flat: one chunk of subjects is generated, written and committed at a time.
    `progress(done, total)` is told after each chunk.
    """
    if subjects < 1:
        raise InvalidInput("The number of subjects must be at least 1.", code="scale_too_small", item="scale")
    _refuse_non_empty()
    today = (today or clock.now()).astimezone(UTC)
    with transaction.atomic():
        centers, users = build_centers_and_users(protocol)
        token = api_token_create(actor=Actor.system("demo", now=today), user=users["bdx.coordinator"], label="scale")
    world = _World(
        protocol=protocol,
        version=protocol_version_of(protocol),
        centers=centers,
        people=_people(centers, users),
        today=today,
        ids=_Ids(),
        counters={},
    )
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not a secret: the same study every time)
    numbers = dict.fromkeys(CLINICAL_CENTERS, 0)
    rows: dict[str, int] = {}
    for block in _chunks(subjects, chunk_size):
        with transaction.atomic():
            head = AuditChainHead.objects.select_for_update().get(pk=1)
            trail = _Trail(head.last_sequence, head.last_hash)
            chunk = _Chunk()
            for index in block:
                center_code = CLINICAL_CENTERS[index % len(CLINICAL_CENTERS)]
                numbers[center_code] += 1
                subject_rng = random.Random(rng.getrandbits(64))  # noqa: S311
                target = _state_for(subject_rng)
                stay = subject_rng.uniform(0, STAY_DAYS.get(target, 0.8))
                start = today - timedelta(days=_REACHED[target] + stay + 1, minutes=subject_rng.randint(0, 600))
                _SubjectBuilder(world, chunk, trail, index, numbers[center_code], subject_rng).build(target, start)
            for label, count in _write(chunk, trail, world.ids, batch_size=2000).items():
                rows[label] = rows.get(label, 0) + count
        if progress is not None:
            progress(block.stop, subjects)
    _finish(world, numbers)
    head_hash = AuditChainHead.objects.get(pk=1).last_hash
    return ScaleReport(subjects=subjects, rows=rows, head_hash=head_hash, api_token=token)


def _finish(world: _World, numbers: dict[str, int]) -> None:
    """The counters the services continue from (subject codes, CoI and DIN numbers) and, on
    PostgreSQL, the id sequences past the ids given here."""
    with transaction.atomic():
        for code, last in numbers.items():
            SubjectCodeCounter.objects.update_or_create(center=world.centers[code], defaults={"last_number": last})
        for (kind, facility, year), last in world.counters.items():
            IdentifierCounter.objects.update_or_create(
                kind=kind, facility_number=facility, year=year, defaults={"last_number": last}
            )
        statements = connection.ops.sequence_reset_sql(no_style(), list(WRITE_ORDER))
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
