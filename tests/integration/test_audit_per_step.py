"""What each step of the main path writes to the audit trail: one entry per record changed, one time.

Issue 8: "a step that changes several records writes one audit entry per record changed, not more",
and one inclusion took three different "now" values (the step's event, the chain of identity, the
signature). A subject is driven through every step of the main path (`world.step` / `world.act`,
the access entry point and the engine, as pages and API do) with a clock that moves by a millisecond
at each reading, so a service reading the clock instead of the action's `actor.now` shows.

For each action the rows of every trial table are compared before and after: each row created or
changed must be named by exactly one audit entry of the action (its entity and id; the subject's state
and its timeline event are the subject record), no entry may name a record twice or a record that did
not change, and every entry and every time the action wrote (but the times typed in its form) carries
the one instant of the action.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import models

from cartrial.apps import clock
from cartrial.apps.audit.models import AuditChainHead, AuditEntry
from cartrial.apps.logistics import services as logistics_services
from cartrial.demo import DEMO_PASSWORD, PathwayDriver, logger_csv
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db

# How the audit trail names a record of each table (entity, entity id).
RECORD_KEYS: dict[str, Callable[[Any], tuple[str, str]]] = {
    "subjects.subject": lambda row: ("subject", row.code),
    # The timeline event is the subject's: its state change and its event are one record (one entry).
    "subjects.pathwayevent": lambda row: ("subject", row.subject.code),
    "subjects.subjectidentity": lambda row: ("subject_identity", row.subject.code),
    "subjects.consent": lambda row: ("consent", str(row.pk)),
    "subjects.consentwithdrawal": lambda row: ("consent_withdrawal", str(row.pk)),
    "subjects.eligibilityassessment": lambda row: ("eligibility_assessment", str(row.pk)),
    "clinical.labobservation": lambda row: ("lab_observation", str(row.pk)),
    "clinical.screeningrecord": lambda row: ("screening_record", str(row.pk)),
    "accounts.electronicsignature": lambda row: ("signature", str(row.pk)),
    "logistics.chainofidentity": lambda row: ("chain_of_identity", row.content),
    "logistics.collection": lambda row: ("collection", logistics_services.din_of(row).content),
    "logistics.manufacturingbatch": lambda row: ("batch", logistics_services.batch_label(row)),
    "logistics.qcresult": lambda row: ("qc_result", str(row.pk)),
    "logistics.shipment": lambda row: ("shipment", str(row.pk)),
    "logistics.temperaturelog": lambda row: ("temperature_log", str(row.pk)),
    # A hand-over is named by the item handed over (one hand-over of an item per action).
    "logistics.custodyrecord": lambda row: ("custody", row.item_id),
    "logistics.productreceipt": lambda row: ("product_receipt", str(row.pk)),
    "logistics.thaw": lambda row: ("thaw", str(row.pk)),
    "logistics.infusion": lambda row: ("infusion", str(row.pk)),
    "logistics.deviation": lambda row: ("deviation", str(row.pk)),
    "logistics.deviationcomment": lambda row: ("deviation_comment", str(row.pk)),
    "casebook.visitrecord": lambda row: ("visit_record", str(row.pk)),
    "casebook.formrecord": lambda row: ("form_record", str(row.pk)),
    "casebook.query": lambda row: ("query", str(row.pk)),
    # A query's thread message is the query's (its move is recorded under the query).
    "casebook.querymessage": lambda row: ("query", str(row.query_id)),
    # The casebook signature is named by the e-signature it links (audited as `signature`).
    "casebook.casebooksignature": lambda row: ("signature", str(row.signature_id)),
    "alerts.alert": lambda row: ("alert", str(row.pk)),
    "safety.adverseevent": lambda row: ("adverse_event", str(row.pk)),
    # A lab value an AE covers is the AE's (its recording lists them as `lab_sources`).
    "safety.adverseeventlabsource": lambda row: ("adverse_event", str(row.adverse_event_id)),
    "safety.saereport": lambda row: ("sae_report", str(row.pk)),
    "safety.dltassessment": lambda row: ("dlt_assessment", str(row.pk)),
    "toxicity.toxicityassessment": lambda row: ("toxicity_assessment", str(row.pk)),
    "planning.booking": lambda row: ("booking", str(row.pk)),
    # Re-planning: a proposal and its subjects are audited under the proposal (docs/booking.md).
    "planning.replanproposal": lambda row: ("replan_proposal", str(row.pk)),
    "planning.replanitem": lambda row: ("replan_proposal", str(row.proposal_id)),
    "jobs.job": lambda row: ("job", str(row.pk)),
}
# Not trial records: the audit itself, number counters (their numbers are in the records they number),
# and set-up data no step changes (a step changing one fails below).
NOT_RECORDS = {
    "audit.auditentry",
    "audit.auditchainhead",
    "subjects.subjectcodecounter",
    "logistics.identifiercounter",
}
SET_UP = {
    "accounts.user",
    "accounts.membership",
    "accounts.apitoken",
    "trial.center",
    "trial.protocolversion",
    # The network's capacities (docs/booking.md): set up and corrected by the sponsor's administrator.
    "planning.facilitycapacity",
    "planning.centercapacity",
    "planning.shippingtime",
}


def _tables() -> list[type[models.Model]]:
    tables = [m for m in django_apps.get_models() if m.__module__.startswith("cartrial.")]
    labels = {m._meta.label_lower for m in tables}
    unknown = labels - set(RECORD_KEYS) - NOT_RECORDS - SET_UP
    assert not unknown, f"say how the audit trail names a record of {sorted(unknown)}"
    return [m for m in tables if m._meta.label_lower not in NOT_RECORDS]


Snapshot = dict[tuple[str, Any], dict[str, Any]]


def _snapshot() -> Snapshot:
    rows: Snapshot = {}
    for table in _tables():
        for values in table.objects.values():
            rows[(table._meta.label_lower, values["id"])] = values
    return rows


@dataclass
class Written:
    """What one action wrote: the records it changed and its audit entries."""

    what: str
    typed: set[datetime]
    changed: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # audit key -> tables, fields
    entries: list[AuditEntry] = field(default_factory=list)
    times: dict[str, datetime] = field(default_factory=dict)  # table.field -> instant written

    def problems(self) -> list[str]:
        found = []
        named = Counter((e.entity, e.entity_id) for e in self.entries)
        for key, count in named.items():
            if count > 1:
                events = [e.event for e in self.entries if (e.entity, e.entity_id) == key]
                found.append(f"{self.what}: {count} entries for the record {key}: {events}")
            if key not in self.changed:
                found.append(f"{self.what}: an entry for {key}, a record it did not change")
        for key, tables in self.changed.items():
            if key not in named:
                found.append(f"{self.what}: the record {key} changed ({tables}) without an audit entry")
        instants = {e.occurred_at for e in self.entries}
        if len(instants) > 1:
            found.append(f"{self.what}: its audit entries carry {len(instants)} times: {sorted(instants)}")
        for where, written in self.times.items():
            if written not in instants and written not in self.typed:
                found.append(f"{self.what}: {where} = {written}, not the action's time {sorted(instants)}")
        return found


@contextmanager
def ticking_clock(start: datetime) -> Iterator[None]:
    """The clock moves on by a millisecond at each reading: two readings in one action differ."""
    readings = iter(range(10**9))
    original = clock.now
    clock.now = lambda: start + timedelta(milliseconds=next(readings))  # type: ignore[assignment]
    try:
        yield
    finally:
        clock.now = original  # type: ignore[assignment]


class AuditedDriver(PathwayDriver):
    """The demo's main path through `world.step` / `world.act`, each action measured."""

    def __init__(self, world: Any, subject: Any, start: datetime) -> None:
        super().__init__(world.protocol, world.users, subject, start)
        self.world = world
        self.written: list[Written] = []

    def measured(self, what: str, moment: datetime, typed: dict[str, Any], work: Callable[[], Any]) -> None:
        before = _snapshot()
        since = AuditChainHead.objects.get(pk=1).last_sequence
        with ticking_clock(moment):
            work()
        after = _snapshot()
        result = Written(what, {v for v in typed.values() if isinstance(v, datetime)})
        result.entries = list(AuditEntry.objects.filter(sequence__gt=since).order_by("sequence"))
        for (table, pk), values in after.items():
            old = before.get((table, pk), {})
            fields = [name for name, value in values.items() if old.get(name, object()) != value]
            if not fields:
                continue
            row = django_apps.get_model(table).objects.get(pk=pk)
            result.changed.setdefault(RECORD_KEYS[table](row), []).append(f"{table}: {', '.join(fields)}")
            for name in fields:
                if isinstance(values[name], datetime):
                    result.times[f"{table}.{name}"] = values[name]
        self.written.append(result)

    def step(self, username: str, action: Step | Action, days_later: float, **data: Any) -> None:
        self.moment += timedelta(days=days_later)
        self.measured(action.value, self.moment, data, lambda: self.world.step(username, self.subject, action, **data))
        self.subject.refresh_from_db()

    def act(self, username: str, action: Action, moment: datetime, **data: Any) -> None:
        self.measured(action.value, moment, data, lambda: self.world.act(username, self.subject, action, **data))
        self.subject.refresh_from_db()

    def _screen(self, *, cd3_per_ul: float) -> None:
        sampled_at = {"sampled_at": self.moment - timedelta(hours=2)}  # as the driver types it
        screen = super()._screen
        self.measured("enter_screening_data", self.moment, sampled_at, lambda: screen(cd3_per_ul=cd3_per_ul))

    def at(self, username: str, days_later: float, action: Callable[[Any, Any, datetime], Any]) -> None:
        self.moment += timedelta(days=days_later)
        action(None, None, self.moment)

    def _receive_at_lab(self, actor: Any, user: Any, moment: datetime) -> None:
        shipment = self.subject.shipments.filter(direction="to_lab").order_by("-pk").first()
        assert shipment is not None and shipment.collection is not None
        scanned = logistics_services.din_of(shipment.collection).typed_form
        self.act("lab.manufacturing", Action.RECEIVE_MATERIAL, moment, scanned_code=scanned)
        log = logger_csv(shipment.actual_departure_at, moment, low_c=3.6, high_c=6.2, fresh=True)
        self.act(
            "lab.manufacturing",
            Action.IMPORT_TEMPERATURE_LOG,
            moment,
            shipment=shipment.pk,
            file=log,
            logger_time_zone="UTC",
        )

    def _record_qc(self, actor: Any, user: Any, moment: datetime, viability: str = "86") -> None:
        values = {"viability": viability, "car_expression": "38", "vector_copy_number": "1.9", "endotoxin": "0.5"}
        values |= {"sterility": "negative", "mycoplasma": "negative"}
        for code, value in values.items():
            self.act("lab.manufacturing", Action.RECORD_QC, moment, test_code=code, value=value)

    def _receive_product(self, days_later: float) -> None:
        self.step(
            f"{self.prefix}.pharmacist",
            Step.RECEIVE_PRODUCT,
            days_later,
            scanned_code=self._coi_scan(),
            storage_location="PUI – cuve azote n°2",
        )
        shipment = self.subject.shipments.filter(direction="to_center").order_by("-pk").first()
        assert shipment is not None
        log = logger_csv(shipment.actual_departure_at, self.moment, low_c=-178.0, high_c=-168.0, fresh=False)
        self.act(
            f"{self.prefix}.pharmacist",
            Action.IMPORT_TEMPERATURE_LOG,
            self.moment,
            shipment=shipment.pk,
            file=log,
            logger_time_zone="UTC",
        )

    def _infuse(self) -> None:
        self.moment += timedelta(days=5)
        self.act(
            f"{self.prefix}.pharmacist", Action.THAW, self.moment - timedelta(minutes=18), scanned_code=self._coi_scan()
        )
        typed = logistics_services.coi_of(self.subject.chain_of_identity).typed_form
        self.step(
            f"{self.prefix}.investigator",
            Step.INFUSE,
            0,
            infused_on=self.day(),
            password=DEMO_PASSWORD,
            bag_code=typed,
            wristband_code=self.subject.code,
            second_username=f"{self.prefix}.pharmacist",
            second_password=DEMO_PASSWORD,
            second_bag_code=self._coi_scan(),
            second_wristband_code=self.subject.code,
        )


MAIN_PATH = [
    Step.START_SCREENING,
    Step.CONFIRM_ELIGIBILITY,
    Step.INCLUDE,
    Step.SCHEDULE_APHERESIS,
    Step.COLLECT_APHERESIS,
    Step.SHIP_MATERIAL,
    Step.START_MANUFACTURING,
    Step.RELEASE_PRODUCT,
    Step.SHIP_PRODUCT,
    Step.RECEIVE_PRODUCT,
    Step.START_LYMPHODEPLETION,
    Step.INFUSE,
    Step.START_ACUTE_MONITORING,
    Step.START_FOLLOW_UP,
    Step.START_LONG_TERM_FOLLOW_UP,
    Step.COMPLETE,
]
ACTIONS = [Action.RECEIVE_MATERIAL, Action.IMPORT_TEMPERATURE_LOG, Action.RECORD_QC, Action.THAW]


@pytest.fixture
def driven(world: Any) -> AuditedDriver:
    start = clock.now() - timedelta(days=900)
    with clock.frozen_at(start):
        subject = world.new_subject("MTL")
    driver = AuditedDriver(world, subject, start)
    driver.advance_to(State.LONG_TERM_FOLLOW_UP)
    # Long-term follow-up ends 15 years after the infusion (the protocol's `long_term_follow_up_years`).
    driver.step("mtl.coordinator", Step.COMPLETE, 15 * 366)
    assert driver.subject.state == State.COMPLETED.value
    return driver


def test_every_step_of_the_main_path_writes_one_entry_per_record_changed_at_one_time(driven: AuditedDriver) -> None:
    taken = [w.what for w in driven.written]
    assert [s.value for s in MAIN_PATH] == [w for w in taken if w in {s.value for s in Step}]
    assert {a.value for a in ACTIONS} <= set(taken)
    problems = [problem for written in driven.written for problem in written.problems()]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("step", "records"),
    [
        # The investigator's signature, the chain of identity allocated at inclusion, the subject.
        (Step.INCLUDE, {"subject", "signature", "chain_of_identity"}),
        # The qualified person's signature, the batch released, the product in the lab's release custody.
        (Step.RELEASE_PRODUCT, {"subject", "signature", "batch", "custody"}),
        # The pharmacist takes the product from the courier: custody, shipment arrived, receipt, subject.
        (Step.RECEIVE_PRODUCT, {"subject", "custody", "shipment", "product_receipt"}),
        # Two bedside checkers sign, the infusion is recorded, the product leaves the pharmacy's custody.
        (Step.INFUSE, {"subject", "signature", "infusion", "custody"}),
    ],
    ids=lambda value: value.value if isinstance(value, Step) else "",
)
def test_the_records_of_the_steps_issue_8_names(driven: AuditedDriver, step: Step, records: set[str]) -> None:
    [written] = [w for w in driven.written if w.what == step.value]
    assert {entity for entity, _id in written.changed} == records, written.changed
    assert len(written.entries) == len(written.changed)
    [instant] = {e.occurred_at for e in written.entries}
    assert set(written.times.values()) <= {instant} | written.typed
    event = driven.subject.pathway_events.get(step=step.value)
    assert event.occurred_at == instant
