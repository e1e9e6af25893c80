"""The demo trial: the situation announced by the Bordeaux center, plus synthetic patients elsewhere.

Bordeaux (RESO) has included its first patient and has a second in screening. Every other
center holds synthetic patients at each later stage of the pathway, so that every page shows
something. Everything is built through the real services, with the clock moved back so dates
look like a trial that started in early 2025. All demo patients are marked synthetic.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import api_token_create, membership_grant, user_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook import services as casebook
from cartrial.apps.casebook.models import FormRecord, Query, VisitRecord
from cartrial.apps.clinical import services as clinical_services
from cartrial.apps.clinical.services import LabObservationInput
from cartrial.apps.logistics import services as logistics_services
from cartrial.apps.pathway.corrections import correction_apply
from cartrial.apps.pathway.steps import step_perform
from cartrial.apps.planning import selectors as planning_selectors
from cartrial.apps.planning.models import Booking
from cartrial.apps.planning.services import booking_make, capacities_load
from cartrial.apps.safety import services as safety_services
from cartrial.apps.safety.models import AdverseEvent
from cartrial.apps.safety.selectors import lab_grade_proposals
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import IdentityInput
from cartrial.apps.toxicity import services as toxicity_services
from cartrial.apps.trial.models import Center
from cartrial.apps.trial.services import center_create, protocol_register
from cartrial.config.known_secrets import DEMO_PASSWORD
from cartrial.domain.booking import BookingRequest
from cartrial.domain.casebook import QueryMove
from cartrial.domain.corrections import RecordKind
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action, Role
from cartrial.domain.safety.adverse_events import ActionTaken, AdverseEventData, Outcome, Relatedness, Seriousness
from cartrial.domain.safety.sae_clock import ReportKind
from cartrial.domain.scores.crs import Hypotension, Hypoxia
from cartrial.domain.scores.icans import CerebralEdema, Consciousness, MotorWeakness, Seizure
from cartrial.domain.toxicity import AssessmentInputs
from cartrial.domain.visits import Anchor
from cartrial.protocols import Protocol

CENTERS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("BDX", "CHU de Bordeaux – RESO", "Bordeaux", "FR", "Europe/Paris", "fr", Center.Kind.CLINICAL),
    ("LIL", "CHU de Lille", "Lille", "FR", "Europe/Paris", "fr", Center.Kind.CLINICAL),
    ("PAR", "AP-HP Paris – Hôpital Pitié-Salpêtrière", "Paris", "FR", "Europe/Paris", "fr", Center.Kind.CLINICAL),
    ("STR", "Hôpitaux universitaires de Strasbourg", "Strasbourg", "FR", "Europe/Paris", "fr", Center.Kind.CLINICAL),
    (
        "MTL",
        "CHUM – Centre hospitalier de l'Université de Montréal",
        "Montréal",
        "CA",
        "America/Toronto",
        "fr",
        Center.Kind.CLINICAL,
    ),
    (
        "LAB",
        "Laboratoire de production CAR-T (synthétique)",
        "Paris",
        "FR",
        "Europe/Paris",
        "fr",
        Center.Kind.MANUFACTURING,
    ),
)

# (username, first name, last name, [(center, role)])
USERS: tuple[tuple[str, str, str, tuple[tuple[str, Role], ...]], ...] = (
    ("bdx.investigator", "Claire", "Dubois", (("BDX", Role.INVESTIGATOR),)),
    ("bdx.investigator2", "Marc", "Lefèvre", (("BDX", Role.INVESTIGATOR),)),
    ("bdx.coordinator", "Julie", "Martin", (("BDX", Role.COORDINATOR),)),
    ("bdx.apheresis", "Nadia", "Roux", (("BDX", Role.APHERESIS),)),
    ("bdx.pharmacist", "Paul", "Girard", (("BDX", Role.PHARMACIST),)),
    ("lil.investigator", "Hugo", "Lambert", (("LIL", Role.INVESTIGATOR),)),
    ("lil.coordinator", "Emma", "Petit", (("LIL", Role.COORDINATOR),)),
    ("lil.apheresis", "Léa", "Moreau", (("LIL", Role.APHERESIS),)),
    ("lil.pharmacist", "Louis", "Fournier", (("LIL", Role.PHARMACIST),)),
    ("par.investigator", "Sophie", "Bernard", (("PAR", Role.INVESTIGATOR),)),
    ("par.coordinator", "Inès", "Garnier", (("PAR", Role.COORDINATOR),)),
    ("par.apheresis", "Karim", "Benali", (("PAR", Role.APHERESIS),)),
    ("par.pharmacist", "Chloé", "Faure", (("PAR", Role.PHARMACIST),)),
    ("str.investigator", "Thomas", "Schmitt", (("STR", Role.INVESTIGATOR),)),
    ("str.coordinator", "Anne", "Klein", (("STR", Role.COORDINATOR),)),
    ("str.apheresis", "Lucas", "Weber", (("STR", Role.APHERESIS),)),
    ("str.pharmacist", "Camille", "Muller", (("STR", Role.PHARMACIST),)),
    ("mtl.investigator", "Geneviève", "Tremblay", (("MTL", Role.INVESTIGATOR),)),
    ("mtl.coordinator", "Olivier", "Gagnon", (("MTL", Role.COORDINATOR),)),
    ("mtl.apheresis", "Sarah", "Roy", (("MTL", Role.APHERESIS),)),
    ("mtl.pharmacist", "Mathieu", "Côté", (("MTL", Role.PHARMACIST),)),
    ("lab.manufacturing", "Isabelle", "Mercier", (("LAB", Role.MANUFACTURING),)),
    ("cra.monitor", "Antoine", "Blanc", (("BDX", Role.MONITOR), ("LIL", Role.MONITOR))),
    (
        "dm.datamanager",
        "Laura",
        "Chevalier",
        tuple((c, Role.DATA_MANAGER) for c in ("BDX", "LIL", "PAR", "STR", "MTL")),
    ),
    (
        "sponsor.admin",
        "Pierre",
        "Rousseau",
        tuple((c, Role.SPONSOR_ADMIN) for c in ("BDX", "LIL", "PAR", "STR", "MTL")),
    ),
)

# Synthetic patients per center and the state each should reach (in pathway order).
STAGED: tuple[tuple[str, State], ...] = (
    ("LIL", State.APHERESIS_SCHEDULED),
    ("LIL", State.APHERESIS_COLLECTED),
    ("LIL", State.MATERIAL_SHIPPED),
    ("LIL", State.SCREEN_FAILED),
    ("PAR", State.MANUFACTURING),
    ("PAR", State.PRODUCT_RELEASED),
    ("PAR", State.MANUFACTURING_FAILED),
    ("PAR", State.PRODUCT_SHIPPED),
    ("STR", State.PRODUCT_RECEIVED),
    ("STR", State.LYMPHODEPLETION),
    ("STR", State.INFUSED),
    ("STR", State.ACUTE_MONITORING),
    ("MTL", State.FOLLOW_UP),
    ("MTL", State.LONG_TERM_FOLLOW_UP),
    ("MTL", State.COMPLETED),
    ("MTL", State.WITHDRAWN),
)

# Days from the start of screening to each state along the demo's main path (see PathwayDriver.advance_to).
DAYS_TO_REACH: dict[State, float] = {
    State.APHERESIS_SCHEDULED: 3.1,
    State.APHERESIS_COLLECTED: 10.1,
    State.MATERIAL_SHIPPED: 10.3,
    State.SCREEN_FAILED: 0.1,
    State.MANUFACTURING: 11.3,
    State.PRODUCT_RELEASED: 25.3,
    State.MANUFACTURING_FAILED: 23.3,
    State.PRODUCT_SHIPPED: 27.3,
    State.PRODUCT_RECEIVED: 28.3,
    State.LYMPHODEPLETION: 30.3,
    State.INFUSED: 35.3,
    State.ACUTE_MONITORING: 35.4,
    State.FOLLOW_UP: 63.4,
    State.LONG_TERM_FOLLOW_UP: 766.4,
    State.COMPLETED: 766.4,
    State.WITHDRAWN: 133.4,
}

SYNTHETIC_NAMES = (
    ("Durand", "Amélie"),
    ("Leroy", "Sandrine"),
    ("Moreau", "Nathalie"),
    ("Simon", "Aurélie"),
    ("Laurent", "Céline"),
    ("Michel", "Élodie"),
    ("Garcia", "Manon"),
    ("David", "Pauline"),
    ("Bertrand", "Justine"),
    ("Robin", "Mélanie"),
    ("Morel", "Laure"),
    ("Fontaine", "Océane"),
    ("Chevallier", "Margaux"),
    ("Gauthier", "Agathe"),
    ("Perrin", "Lucie"),
    ("Mathieu", "Noémie"),
    ("Lemaire", "Anaïs"),
    ("Renard", "Hélène"),
)


@dataclass
class DemoWorld:
    centers: dict[str, Center]
    users: dict[str, User]
    api_token: str


# The demo users' e-mail addresses: a reserved domain (RFC 2606), so no alert e-mail can leave.
DEMO_MAIL_DOMAIN = "demo.cartrial.invalid"


def build_centers_and_users(protocol: Protocol) -> tuple[dict[str, Center], dict[str, User]]:
    """Centers, the lab, users with one role per center, and the protocol registration."""
    system = Actor.system("demo")
    protocol_register(actor=system, protocol=protocol)
    centers = {
        code: center_create(
            actor=system, code=code, name=name, city=city, country=country, time_zone=tz, language=lang, kind=kind
        )
        for code, name, city, country, tz, lang, kind in CENTERS
    }
    users = {}
    for username, first, last, roles in USERS:
        user = user_create(
            actor=system,
            username=username,
            password=DEMO_PASSWORD,
            first_name=first,
            last_name=last,
            email=f"{username}@{DEMO_MAIL_DOMAIN}",
        )
        for center_code, role in roles:
            membership_grant(actor=system, user=user, center=centers[center_code], role=role)
        users[username] = user
    return centers, users


# Synthetic screening findings of a refractory lupus nephritis (SLEDAI-2K 12, EULAR/ACR 20 points).
DEMO_SCREENING_DATA: dict[str, object] = {
    "sex": "female",
    "ana_titer": 640,
    "eular_acr_criteria": ["lupus_nephritis_class_4", "anti_dsdna", "low_c3", "low_c4", "joint_involvement"],
    "sledai2k_descriptors": ["proteinuria", "hematuria", "low_complement", "increased_dna_binding"],
    "sledai2k_lookback_days": 30,
    "organ_involvement": ["renal", "musculoskeletal"],
    "glucocorticoids_failed": True,
    "immunosuppressants_failed": ["mycophenolate", "cyclophosphamide", "belimumab"],
    "infection_active": False,
    "prior_cart": False,
    "prior_gene_therapy": False,
}


def _in_order(*moves: Callable[[], None]) -> Callable[[], None]:
    """One entry of a subject's plan made of several moves, run one after the other."""

    def run() -> None:
        for move in moves:
            move()

    return run


class PathwayDriver:
    """Moves one subject along the main path with the roles of its center, dates back-dated."""

    def __init__(
        self,
        protocol: Protocol,
        users: dict[str, User],
        subject: Subject,
        start: datetime,
        *,
        excursion_c: float | None = None,
    ) -> None:
        self.protocol = protocol
        # A temperature (°C) reached for 45 min during the material's transit: a demo excursion.
        self.excursion_c = excursion_c
        # Manufacturing and shipping take a little longer for some patients, so vein-to-vein times vary.
        self.spread_days = (subject.number % 4) * 0.6
        self.users = users
        self.subject = subject
        self.moment = start
        self.prefix = subject.center.code.lower()

    def _actor(self, username: str) -> tuple[Actor, User]:
        user = self.users[username]
        membership = user.memberships.select_related("center").first()
        assert membership is not None
        return Actor(user.pk, username, membership.role, membership.center.code, clock.now()), user

    def step(self, username: str, action: Step | Action, days_later: float, **data: Any) -> None:
        """Take a pathway step as `username`, `days_later` after the previous move, with the clock there."""
        self.moment += timedelta(days=days_later)
        with clock.frozen_at(self.moment), transaction.atomic():
            actor, user = self._actor(username)
            step_perform(actor=actor, user=user, subject=self.subject, action=action, data=data, protocol=self.protocol)
        self.subject.refresh_from_db()

    def day(self) -> date:
        return self.moment.astimezone(ZoneInfo(self.subject.center.time_zone)).date()

    def advance_to(self, target: State) -> None:
        """Perform the main-path steps until `target` (or a failure branch) is reached."""
        p = self.prefix
        doc = self.protocol.current_consent_versions()
        plan: list[tuple[State, Callable[[], None]]] = [
            (
                State.SCREENING,
                lambda: self.step(
                    f"{p}.coordinator",
                    Step.START_SCREENING,
                    0,
                    document_version=doc["fr"],
                    language="fr",
                    signed_on=self.day(),
                ),
            ),
            (
                State.ELIGIBLE,
                _in_order(
                    lambda: self._screen(cd3_per_ul=650.0),
                    lambda: self.step(f"{p}.investigator", Step.CONFIRM_ELIGIBILITY, 0.1),
                ),
            ),
            (State.INCLUDED, lambda: self.step(f"{p}.investigator", Step.INCLUDE, 2, password=DEMO_PASSWORD)),
            (
                State.APHERESIS_SCHEDULED,
                lambda: self.step(
                    f"{p}.coordinator", Step.SCHEDULE_APHERESIS, 1, apheresis_date=self.day() + timedelta(days=7)
                ),
            ),
            (State.APHERESIS_COLLECTED, lambda: self._collect(7)),
            (State.MATERIAL_SHIPPED, lambda: self._ship_material(0.2)),
            (
                State.MANUFACTURING,
                _in_order(
                    lambda: self.at("lab.manufacturing", 0.9, self._receive_at_lab),
                    lambda: self.step("lab.manufacturing", Step.START_MANUFACTURING, 0.1),
                ),
            ),
            (
                State.PRODUCT_RELEASED,
                _in_order(
                    lambda: self.at("lab.manufacturing", 13.5 + self.spread_days, self._record_qc),
                    lambda: self.step(
                        "lab.manufacturing",
                        Step.RELEASE_PRODUCT,
                        0.5,
                        password=DEMO_PASSWORD,
                        bag_code=self._coi_scan(),
                    ),
                ),
            ),
            (State.PRODUCT_SHIPPED, lambda: self._ship_product(2 + self.spread_days / 2)),
            (State.PRODUCT_RECEIVED, lambda: self._receive_product(1)),
            (
                State.LYMPHODEPLETION,
                lambda: self.step(
                    f"{p}.investigator",
                    Step.START_LYMPHODEPLETION,
                    2,
                    planned_infusion_date=self.day() + timedelta(days=5),
                ),
            ),
            (State.INFUSED, lambda: self._infuse()),
            (State.ACUTE_MONITORING, lambda: self.step(f"{p}.investigator", Step.START_ACUTE_MONITORING, 0.1)),
            (State.FOLLOW_UP, lambda: self.step(f"{p}.coordinator", Step.START_FOLLOW_UP, 28)),
            (State.LONG_TERM_FOLLOW_UP, lambda: self.step(f"{p}.coordinator", Step.START_LONG_TERM_FOLLOW_UP, 703)),
        ]
        if target is State.SCREEN_FAILED:
            plan[1] = (
                State.SCREEN_FAILED,
                _in_order(
                    lambda: self._screen(cd3_per_ul=80.0),
                    lambda: self.step(
                        f"{p}.investigator",
                        Step.FAIL_SCREENING,
                        0.1,
                        reason="CD3+ sous 100/µL à la sélection (synthétique)",
                    ),
                ),
            )
        if target is State.MANUFACTURING_FAILED:
            plan[7] = (
                State.MANUFACTURING_FAILED,
                _in_order(
                    lambda: self.at("lab.manufacturing", 11.5, partial(self._record_qc, viability="55")),
                    lambda: self.step(
                        "lab.manufacturing",
                        Step.FAIL_MANUFACTURING,
                        0.5,
                        reason="Expansion insuffisante : viabilité 55 %, hors spécification (synthétique)",
                    ),
                ),
            )
        if target is State.COMPLETED:
            # The interventional study ends after the M24 visit; long-term follow-up (15 years after an
            # integrating vector) continues under its own protocol for this synthetic patient.
            self._follow(plan, State.FOLLOW_UP)
            self.step(f"{p}.coordinator", Step.COMPLETE, 703)
            return
        if target is State.WITHDRAWN:
            self._follow(plan, State.FOLLOW_UP)
            # After the M3 visit (D90 ± 7), the lupus still active: no response to the CAR-T.
            self.step(
                f"{p}.investigator",
                Step.WITHDRAW,
                70,
                reason="Absence de réponse à M3 ; décision de la patiente (synthétique)",
            )
            return
        self._follow(plan, target)

    def _follow(self, plan: list[tuple[State, Callable[[], None]]], target: State) -> None:
        for reached, action in plan:
            action()
            if reached is target:
                return

    def _screen(self, *, cd3_per_ul: float) -> None:
        """The coordinator enters the screening data and labs; the verdict is computed from them."""
        sampled_at = self.moment - timedelta(hours=2)
        with clock.frozen_at(self.moment), transaction.atomic():
            actor, _user = self._actor(f"{self.prefix}.coordinator")
            clinical_services.screening_record(
                actor=actor,
                subject=self.subject,
                protocol=self.protocol,
                data=DEMO_SCREENING_DATA,
                labs=[
                    LabObservationInput("creatinine", 71.0, "umol/L", sampled_at, lower_limit=45, upper_limit=90),
                    LabObservationInput("cd3", cd3_per_ul, "cells/µL", sampled_at, lower_limit=700.0, upper_limit=2100),
                ],
            )

    def at(self, username: str, days_later: float, action: Callable[[Actor, User, datetime], Any]) -> None:
        """Run a logistics action as `username`, `days_later` after the previous one, with the clock there."""
        self.moment += timedelta(days=days_later)
        with clock.frozen_at(self.moment), transaction.atomic():
            actor, user = self._actor(username)
            action(actor, user, self.moment)
        self.subject.refresh_from_db()

    def _collect(self, days_later: float) -> None:
        moment = self.moment + timedelta(days=days_later)
        self.step(
            f"{self.prefix}.apheresis",
            Step.COLLECT_APHERESIS,
            days_later,
            started_at=moment - timedelta(hours=4, minutes=10),
            ended_at=moment - timedelta(minutes=20),
            volume_ml=210.0,
            tnc_e9=18.5,
            cd3_cells_e9=4.2,
        )

    def _ship_material(self, days_later: float) -> None:
        collection = self.subject.collections.order_by("-number").first()
        assert collection is not None
        moment = self.moment + timedelta(days=days_later)
        self.step(
            f"{self.prefix}.apheresis",
            Step.SHIP_MATERIAL,
            days_later,
            courier="BioLogistics Express (synthetic)",
            shipper_id=f"BLX-{collection.din[-4:]}",
            condition="fresh",
            planned_departure_at=moment,
            planned_arrival_at=moment + timedelta(hours=20),
            actual_departure_at=moment,
            scanned_code=logistics_services.din_of(collection).barcode_data(),
        )

    def _receive_at_lab(self, actor: Actor, user: User, moment: datetime) -> None:
        shipment = self.subject.shipments.filter(direction="to_lab").order_by("-pk").first()
        assert shipment is not None and shipment.collection is not None
        logistics_services.material_receive(
            actor=actor,
            subject=self.subject,
            protocol=self.protocol,
            scanned_code=logistics_services.din_of(shipment.collection).typed_form,
        )
        logistics_services.temperature_log_import(
            actor=actor,
            subject=self.subject,
            protocol=self.protocol,
            shipment=shipment,
            content=logger_csv(
                shipment.actual_departure_at, moment, low_c=3.6, high_c=6.2, excursion_c=self.excursion_c, fresh=True
            ),
            file_name=f"logger-{shipment.shipper_id}.csv",
            logger_time_zone="UTC",
        )

    def _record_qc(self, actor: Actor, user: User, moment: datetime, viability: str = "86") -> None:
        values = {
            "viability": viability,
            "car_expression": "38",
            "vector_copy_number": "1.9",
            "endotoxin": "0.5",
            "sterility": "negative",
            "mycoplasma": "negative",
        }
        for code, value in values.items():
            logistics_services.qc_result_record(
                actor=actor, subject=self.subject, protocol=self.protocol, test_code=code, value=value
            )

    def _coi_scan(self) -> str:
        coi = self.subject.chain_of_identity
        return logistics_services.coi_of(coi).barcode_data()

    def _ship_product(self, days_later: float) -> None:
        moment = self.moment + timedelta(days=days_later)
        self.step(
            "lab.manufacturing",
            Step.SHIP_PRODUCT,
            days_later,
            courier="CryoTrans (synthetic)",
            shipper_id=f"DS-{self.subject.chain_of_identity.content[-4:]}",
            planned_departure_at=moment,
            planned_arrival_at=moment + timedelta(hours=22),
            actual_departure_at=moment,
            arrival_confirmed=True,
            scanned_code=self._coi_scan(),
        )

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
        with clock.frozen_at(self.moment), transaction.atomic():
            actor, _user = self._actor(f"{self.prefix}.pharmacist")
            logistics_services.temperature_log_import(
                actor=actor,
                subject=self.subject,
                protocol=self.protocol,
                shipment=shipment,
                content=logger_csv(shipment.actual_departure_at, self.moment, low_c=-178.0, high_c=-168.0, fresh=False),
                file_name=f"dryshipper-{shipment.shipper_id}.csv",
                logger_time_zone="UTC",
            )

    def _infuse(self) -> None:
        self.moment += timedelta(days=5)
        with clock.frozen_at(self.moment - timedelta(minutes=18)), transaction.atomic():
            actor, _user = self._actor(f"{self.prefix}.pharmacist")
            logistics_services.product_thaw(
                actor=actor, subject=self.subject, protocol=self.protocol, scanned_code=self._coi_scan()
            )
        typed = logistics_services.coi_of(self.subject.chain_of_identity).typed_form
        self.step(
            f"{self.prefix}.investigator",
            Step.INFUSE,
            0,
            # D0 is the center's local date (a UTC date can be the next day in Montréal).
            infused_on=self.day(),
            password=DEMO_PASSWORD,
            bag_code=typed,
            wristband_code=self.subject.code,
            second_username=f"{self.prefix}.pharmacist",
            second_password=DEMO_PASSWORD,
            second_bag_code=self._coi_scan(),
            second_wristband_code=self.subject.code,
        )


def logger_csv(
    start: datetime, end: datetime, *, low_c: float, high_c: float, fresh: bool, excursion_c: float | None = None
) -> bytes:
    """A synthetic data-logger file every 15 min between two instants, in the dialect of the shipper.

    Fresh shippers write `dd/mm/yyyy hh:mm;5,1` with a `°C` header, their clock set to UTC (a logger
    on local time repeats an hour when clocks go back, which the parser rightly refuses); dry shippers
    write ISO-8601 UTC with a comma. `excursion_c` puts three readings at that temperature mid-way.
    """
    readings = []
    moment = start
    index = 0
    span = max(1, int((end - start).total_seconds() // 900))
    while moment <= end:
        wave = (index % 8) / 7
        value = low_c + (high_c - low_c) * wave
        if excursion_c is not None and span // 2 <= index < span // 2 + 3:
            value = excursion_c
        readings.append((moment, value))
        moment += timedelta(minutes=15)
        index += 1
    if fresh:
        lines = ["Horodatage;Température (°C)"] + [
            f"{at.astimezone(UTC):%d/%m/%Y %H:%M};{value:.1f}".replace(".", ",") for at, value in readings
        ]
    else:
        lines = ["timestamp,temperature_c"] + [
            f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ},{value:.1f}" for at, value in readings
        ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _new_subject(
    protocol: Protocol,
    centers: dict[str, Center],
    users: dict[str, User],
    center_code: str,
    index: int,
    moment: datetime,
) -> Subject:
    family, given = SYNTHETIC_NAMES[index % len(SYNTHETIC_NAMES)]
    user = users[f"{center_code.lower()}.coordinator"]
    with clock.frozen_at(moment):
        actor = Actor(user.pk, user.username, Role.COORDINATOR.value, center_code, clock.now())
        return subject_services.subject_create(
            actor=actor,
            center=centers[center_code],
            manufacturing_site=centers["LAB"],
            identity=IdentityInput(
                family, given, date(1980 + index % 20, 1 + index % 12, 1 + index % 27), f"{center_code}{700000 + index}"
            ),
            protocol=protocol,
            synthetic=True,
        )


def build_demo(
    protocol: Protocol, *, today: datetime | None = None, staged: tuple[tuple[str, State], ...] = STAGED
) -> DemoWorld:
    """The whole demo in one transaction: nothing half-built if a step fails.

    `staged` (a part of `STAGED`, keeping the Lille collected and Paris released subjects the
    deviations need) builds a smaller trial for tests that read every page.
    """
    today = today or clock.now()
    with transaction.atomic():
        centers, users = build_centers_and_users(protocol)
        # Bordeaux: the first patient included, a second one in screening (the center's announcement).
        first = _new_subject(protocol, centers, users, "BDX", 0, today - timedelta(days=20))
        PathwayDriver(protocol, users, first, today - timedelta(days=20)).advance_to(State.INCLUDED)
        second = _new_subject(protocol, centers, users, "BDX", 1, today - timedelta(days=3))
        PathwayDriver(protocol, users, second, today - timedelta(days=3)).advance_to(State.SCREENING)
        # The other centers: synthetic patients at every later stage, older ones further along.
        for index, (center_code, target) in enumerate(staged, start=2):
            # Each patient reached its stage a few days ago, so dates look like a running trial.
            start = today - timedelta(days=DAYS_TO_REACH[target] + 3 + index % 5)
            subject = _new_subject(protocol, centers, users, center_code, index, start)
            # One shipment of the demo has a temperature excursion (11.5 °C in a 2–8 °C shipper).
            excursion = 11.5 if target is State.PRODUCT_RELEASED else None
            PathwayDriver(protocol, users, subject, start, excursion_c=excursion).advance_to(target)
        token = api_token_create(actor=Actor.system("demo"), user=users["bdx.coordinator"], label="demo")
        seed_kinetics_demo(users, today)
        seed_casebook_demo(protocol, users, today)
        seed_safety_demo(protocol, users, today)
        seed_deviations_demo(protocol, users, today)
        # The network's capacities last: the subjects above were scheduled before booking existed;
        # from now on apheresis at a center is booked against a manufacturing slot (docs/booking.md).
        capacities_load(actor=Actor.system("demo", now=today), protocol=protocol)
        seed_bookings_demo(protocol, users, today)
    return DemoWorld(centers=centers, users=users, api_token=token)


def seed_bookings_demo(protocol: Protocol, users: dict[str, User], today: datetime) -> list[Booking]:
    """Book the chains of the subjects waiting for apheresis (included, not yet collected), in the
    order of their codes, as their center's coordinator through the booking service, so the booking
    pages, the lab's reservations and the calendars show real reservations. A subject whose apheresis
    was scheduled before the capacities existed keeps that day when a chain starts on it; otherwise it
    takes the earliest free chain, and its coordinator corrects the planned apheresis date to the
    booked day with a reason (as at a center that has just set up its capacities)."""
    booked: list[Booking] = []
    waiting = Subject.objects.filter(state__in=planning_selectors.WAITING_STATES).select_related("center")
    with clock.frozen_at(today):
        for subject in waiting.order_by("center__code", "number"):
            day = today.astimezone(ZoneInfo(subject.center.time_zone)).date()
            scheduled = subject.apheresis_date
            chains = planning_selectors.slots_free(protocol, subject.center.code, max(scheduled or day, day), 1)
            if scheduled is not None and not (chains and chains[0].plan.apheresis == scheduled):
                chains = planning_selectors.slots_free(protocol, subject.center.code, day, 1)
            if not chains:
                continue
            plan = chains[0].plan
            username = f"{subject.center.code.lower()}.coordinator"
            user = users[username]
            actor = Actor(user.pk, username, Role.COORDINATOR.value, subject.center.code, today)
            request = BookingRequest(
                subject.center.code, plan.apheresis, plan.facility, plan.manufacturing_start, plan.infusion
            )
            booked.append(
                booking_make(
                    actor=actor, user_id=user.pk, subject=subject, request=request, protocol=protocol, today=day
                )
            )
            if scheduled is not None and scheduled != plan.apheresis:
                correction_apply(
                    user,
                    subject.code,
                    kind=RecordKind.PLANNED_APHERESIS.value,
                    record_id=subject.code,
                    field="apheresis_date",
                    value=plan.apheresis.isoformat(),
                    reason="Moved to the apheresis slot booked against the network's capacities.",
                    protocol=protocol,
                )
    return booked


def demo_epoch() -> datetime:
    """A fixed 'today' for reproducible demo data in tests."""
    return datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def seed_kinetics_demo(users: dict[str, User], today: datetime) -> None:
    """Synthetic CAR-T, B-cell and anti-dsDNA results for every infused demo subject (issue 5).

    Each subject is one virtual patient drawn from the protocol's model preset
    (`model.kinetics_preset`, `sle-default`; seeded by its code),
    sampled at the protocol's usual days up to today, with the preset's log-normal residual
    error and the assays' limits of quantification (CAR-T 0.02 cells/µL, B cells 1 cell/µL,
    anti-dsDNA 10 IU/mL). Two depart from the expected course so that the flags show: the
    subject in acute monitoring expands poorly (CAR-T peak 1.5 cells/µL, prior 30), and the
    one in long-term follow-up loses its CAR-T early (B cells back by about D28) with an
    autoreactive regenerated repertoire (anti-dsDNA rises again).
    """
    import zlib
    from zoneinfo import ZoneInfo

    import numpy as np

    from cartrial.apps.biology.entries import KineticEntry
    from cartrial.apps.biology.selectors import kinetics_preset
    from cartrial.apps.biology.services import kinetic_observations_record
    from cartrial.domain.kinetics import ModelParameters, simulate_markers
    from cartrial.domain.kinetics.parameters import sample_patients

    preset = kinetics_preset()
    loq = {"car_t": 0.02, "b_cells": 1.0, "anti_dsdna": 10.0}
    sample_days = (0, 1, 3, 5, 7, 10, 14, 21, 28, 42, 60, 90, 120, 180, 270, 365, 455, 545, 635, 730)
    departures = {
        State.ACUTE_MONITORING: {"car_t_peak": 1.5},
        State.LONG_TERM_FOLLOW_UP: {
            "car_t_memory_fraction": 0.0005,
            "car_t_fast_decline_per_day": 0.5,
            "precursor_transit_days": 10.0,
            "regenerated_autoreactivity": 1.5,
        },
    }
    infused = Subject.objects.filter(synthetic=True, infusion_date__isnull=False).select_related("center")
    for subject in infused.order_by("center__code", "number"):
        assert subject.infusion_date is not None
        zone = ZoneInfo(subject.center.time_zone)
        last_moment = subject.state_changed_at if subject.state in (State.COMPLETED, State.WITHDRAWN) else today
        rng = np.random.default_rng(zlib.crc32(subject.code.encode()))
        columns = sample_patients(preset, 1, rng).as_columns()
        for name, departure in departures.get(State(subject.state), {}).items():
            columns[name] = np.array([departure])
        start = datetime.combine(subject.infusion_date, datetime.min.time(), zone).replace(hour=8)
        moments = [start + timedelta(days=day) for day in sample_days if start + timedelta(days=day) <= last_moment]
        if not moments:
            continue
        days = np.array([float(day) for day in sample_days[: len(moments)]])
        simulated = simulate_markers(ModelParameters.from_columns(columns), days)
        user = users[f"{subject.center.code.lower()}.coordinator"]
        for index, moment in enumerate(moments):
            entries = []
            for marker in ("car_t", "b_cells", "anti_dsdna"):
                level = float(simulated[marker][0, index]) * float(
                    np.exp(preset.residual_sd_log[marker] * rng.standard_normal())
                )
                below = level < loq[marker]
                value = None if below else float(f"{level:.3g}")
                unit = preset.car_t_unit if marker == "car_t" else ("cells/µL" if marker == "b_cells" else "IU/mL")
                entries.append(KineticEntry(marker, moment, value, unit, loq[marker]))
            with clock.frozen_at(min(moment + timedelta(hours=6), today)), transaction.atomic():
                actor = Actor(user.pk, user.username, Role.COORDINATOR.value, subject.center.code, clock.now())
                kinetic_observations_record(actor=actor, subject=subject, entries=entries)


def seed_deviations_demo(protocol: Protocol, users: dict[str, User], today: datetime) -> None:
    """Deviations at each point of their life, opened by the real steps and managed by their owners.

    Lille: a DIN mistyped at the hand-over to the courier two days ago, closed by the apheresis
    unit, and again this morning, still open. Paris: the demo's temperature excursion of the
    material, taken in charge by the lab and commented by the center.
    """
    from cartrial.apps.audit.events import AuditEvent
    from cartrial.apps.audit.services import audited_attempt
    from cartrial.apps.logistics.models import Deviation
    from cartrial.domain.errors import DomainError

    def actor_of(username: str) -> tuple[Actor, User]:
        user = users[username]
        membership = user.memberships.select_related("center").first()
        assert membership is not None
        return Actor(user.pk, username, membership.role, membership.center.code, clock.now()), user

    def mistyped_din(subject: Subject, moment: datetime) -> Deviation:
        collection = subject.collections.order_by("-number").first()
        assert collection is not None
        wrong = "1" if collection.check_character != "1" else "2"
        with clock.frozen_at(moment), contextlib.suppress(DomainError):
            actor, user = actor_of(f"{subject.center.code.lower()}.apheresis")
            audited_attempt(
                actor=actor,
                event=AuditEvent.STEP_REFUSED,
                entity="subject",
                entity_id=subject.code,
                what=Step.SHIP_MATERIAL.value,
                subject_code=subject.code,
                work=lambda: step_perform(
                    actor=actor,
                    user=user,
                    subject=subject,
                    action=Step.SHIP_MATERIAL,
                    data={
                        "courier": "BioLogistics Express (synthetic)",
                        "shipper_id": f"BLX-{collection.din[-4:]}",
                        "condition": "fresh",
                        "planned_departure_at": moment,
                        "planned_arrival_at": moment + timedelta(hours=20),
                        "actual_departure_at": moment,
                        "scanned_code": collection.din + wrong,
                    },
                    protocol=protocol,
                ),
            )
        return Deviation.objects.filter(subject=subject).latest("pk")

    def move(username: str, deviation: Deviation, what: str, text: str, moment: datetime) -> None:
        with clock.frozen_at(moment), transaction.atomic():
            actor, _ = actor_of(username)
            logistics_services.deviation_manage(
                actor=actor, subject=deviation.subject, deviation_id=deviation.pk, move=what, text=text
            )

    collected = Subject.objects.get(center__code="LIL", state=State.APHERESIS_COLLECTED, synthetic=True)
    first = today - timedelta(days=2)
    closed = mistyped_din(collected, first)
    move("lil.apheresis", closed, "acknowledge", "", first + timedelta(minutes=5))
    move(
        "lil.apheresis",
        closed,
        "close",
        "Caractère de contrôle saisi à la main depuis l'étiquette ; le transporteur est reparti sans la poche, "
        "rien n'a été remis.",
        first + timedelta(hours=2),
    )
    mistyped_din(collected, today - timedelta(hours=5))
    excursion = Deviation.objects.get(subject__center__code="PAR", kind="temperature_excursion")
    move(
        "lab.manufacturing",
        excursion,
        "acknowledge",
        "Matériel reçu à 6 °C ; viabilité contrôlée avant la production.",
        excursion.at + timedelta(hours=3),
    )
    move(
        "par.coordinator",
        excursion,
        "comment",
        "La camionnette du transporteur est restée 45 min à l'entrée de l'hôpital ; le transporteur a été prévenu.",
        excursion.at + timedelta(hours=20),
    )


# --- the casebook (issue 9) ---------------------------------------------------------------------

# A curve of one value over the days since D0 (negative before it): (day, level) points, joined by
# straight lines, flat before the first point and after the last.
Curve = tuple[tuple[float, float], ...]

# The SLEDAI-2K descriptors of the demo subjects at screening (renal and serological activity).
SLEDAI_AT_SCREENING = ["proteinuria", "hematuria", "low_complement", "increased_dna_binding"]

# The usual course after CD19 CAR-T with fludarabine/cyclophosphamide lymphodepletion in SLE
# (Mackensen 2022, Müller 2024): neutrophil nadir in the first week, recovery by D14–D28, IgG
# falling with B-cell aplasia, complement and proteinuria normalising over months.
COURSE: dict[str, Curve] = {
    "anc": (
        (-40, 4.2),
        (-5, 4.0),
        (0, 2.6),
        (3, 1.1),
        (5, 0.45),
        (7, 0.35),
        (10, 1.0),
        (14, 1.9),
        (21, 2.6),
        (28, 3.1),
        (90, 3.6),
        (365, 4.0),
    ),
    "lymphocytes": (
        (-40, 1.1),
        (-5, 1.0),
        (0, 0.12),
        (5, 0.15),
        (7, 0.6),
        (10, 1.3),
        (14, 1.0),
        (28, 0.8),
        (90, 1.0),
        (365, 1.4),
    ),
    "platelets": (
        (-40, 235),
        (0, 190),
        (5, 150),
        (7, 118),
        (10, 105),
        (14, 135),
        (21, 170),
        (28, 195),
        (90, 225),
        (365, 240),
    ),
    "haemoglobin": ((-40, 116), (0, 110), (7, 101), (14, 99), (28, 106), (90, 118), (180, 124), (365, 127)),
    "creatinine": ((-40, 84), (28, 80), (90, 74), (180, 70), (365, 68)),
    "alt": ((-40, 22), (3, 28), (7, 48), (14, 36), (28, 25), (365, 21)),
    "ast": ((-40, 24), (3, 30), (7, 44), (14, 33), (28, 26), (365, 22)),
    "bilirubin": ((-40, 8), (365, 8)),
    "crp": ((-40, 3), (0, 3), (1, 10), (2, 8), (4, 4), (7, 3)),
    "ferritin": ((-40, 160), (0, 180), (2, 290), (5, 340), (10, 240), (28, 170), (90, 120)),
    "ldh": ((-40, 190), (0, 195), (5, 240), (10, 250), (21, 205), (28, 190)),
    "c3": ((-40, 0.58), (28, 0.72), (90, 0.86), (180, 1.02), (365, 1.08)),
    "c4": ((-40, 0.07), (28, 0.11), (90, 0.17), (180, 0.21), (365, 0.22)),
    "igg": ((-40, 11.5), (7, 10.8), (28, 9.2), (90, 7.4), (180, 6.6), (365, 6.9), (730, 8.8)),
    "upcr": ((-40, 168), (28, 95), (60, 62), (90, 41), (180, 22), (365, 14), (730, 11)),
    "prednisone": ((-40, 10), (20, 10), (28, 7.5), (60, 5), (90, 2.5), (120, 0)),
    "pga": ((-40, 2.1), (28, 1.2), (90, 0.6), (180, 0.3), (270, 0.2)),
}
# Cytokine release syndrome of grade 1 in one subject: fever D1–D3, CRP and ferritin peaks.
CRS_COURSE: dict[str, Curve] = {
    "temperature_c": ((0, 37.0), (1, 38.7), (2, 39.3), (3, 38.5), (4, 37.4), (5, 37.0)),
    "crp": ((0, 3), (1, 45), (2, 118), (3, 86), (4, 30), (5, 12), (7, 6), (10, 3)),
    "ferritin": (
        (0, 180),
        (1, 520),
        (2, 1450),
        (3, 1850),
        (4, 1300),
        (5, 900),
        (7, 600),
        (10, 420),
        (14, 300),
        (28, 210),
        (90, 130),
    ),
}
# Febrile neutropenia (the demo's serious adverse event): a second, deeper fall of the neutrophils
# in week 3 (late ICAHT), fever D19–D23 while they are below 0.5 × 10⁹/L, recovery under G-CSF by D28.
FEBRILE_NEUTROPENIA_COURSE: dict[str, Curve] = {
    "anc": (
        (-40, 4.2),
        (-5, 4.0),
        (0, 2.6),
        (3, 1.1),
        (5, 0.45),
        (7, 0.35),
        (10, 1.0),
        (14, 1.3),
        (17, 0.55),
        (19, 0.2),
        (21, 0.1),
        (23, 0.2),
        (25, 0.9),
        (28, 2.4),
        (90, 3.6),
        (365, 4.0),
    ),
}
# The fever of the febrile neutropenia, after the CRS's (days from D0, °C).
FEBRILE_NEUTROPENIA_FEVER: Curve = ((18.5, 37.0), (19.5, 38.6), (22.5, 38.7), (23.5, 37.1))
FEBRILE_NEUTROPENIA_DAYS = (19, 24)  # onset, end (the fever's days, G-CSF and antibiotics until D24)
# A subject who does not respond: SLEDAI-2K and PGA stay high, proteinuria and low complement
# persist and prednisone is raised back to 15 mg/day before M3 (withdrawn after M3).
NON_RESPONSE_COURSE: dict[str, Curve] = {
    "c3": ((-40, 0.58), (28, 0.6), (90, 0.52)),
    "c4": ((-40, 0.07), (90, 0.06)),
    "upcr": ((-40, 168), (28, 150), (90, 185)),
    "prednisone": ((-40, 10), (60, 10), (75, 15), (120, 15)),
    "pga": ((-40, 2.1), (28, 1.9), (90, 2.2)),
}
SLEDAI_WITHOUT_RESPONSE = ["arthritis", *SLEDAI_AT_SCREENING]
# Lupus flaring back after an early loss of CAR-T (the demo's long-term follow-up subject, whose
# anti-dsDNA rises again in the kinetics seed): complement falls, proteinuria and prednisone return.
FLARE_COURSE: dict[str, Curve] = {
    "c3": ((-40, 0.58), (28, 0.72), (90, 0.86), (180, 1.0), (270, 0.95), (365, 0.84), (545, 0.7), (730, 0.78)),
    "c4": ((-40, 0.07), (90, 0.16), (180, 0.2), (365, 0.12), (545, 0.08), (730, 0.1)),
    "igg": ((-40, 11.5), (28, 9.4), (90, 8.0), (180, 8.6), (365, 10.4), (730, 11.8)),
    "upcr": ((-40, 168), (28, 95), (90, 41), (180, 24), (270, 20), (365, 28), (545, 52), (730, 38)),
    "prednisone": ((-40, 10), (20, 10), (28, 7.5), (60, 5), (90, 2.5), (120, 0), (455, 0), (545, 7.5), (730, 5)),
    "pga": ((-40, 2.1), (28, 1.2), (90, 0.6), (180, 0.3), (365, 0.8), (545, 1.4), (730, 0.9)),
}
# Reference ranges of the demo's labs (adult women, units of the forms).
REFERENCE_RANGES: dict[str, tuple[float, float]] = {
    "anc": (1.8, 7.5),
    "lymphocytes": (1.0, 4.0),
    "platelets": (150, 400),
    "haemoglobin": (120, 160),
    "creatinine": (45, 90),
    "alt": (0, 35),
    "ast": (0, 35),
    "bilirubin": (0, 21),
    "crp": (0, 5),
    "ferritin": (15, 150),
    "ldh": (135, 214),
    "c3": (0.9, 1.8),
    "c4": (0.1, 0.4),
    "igg": (7, 16),
    "upcr": (0, 15),
}
# Decimals of each value as the lab reports it.
DECIMALS: dict[str, int] = {
    "anc": 2,
    "lymphocytes": 2,
    "platelets": 0,
    "haemoglobin": 0,
    "creatinine": 0,
    "alt": 0,
    "ast": 0,
    "bilirubin": 0,
    "crp": 0,
    "ferritin": 0,
    "ldh": 0,
    "c3": 2,
    "c4": 2,
    "igg": 1,
    "upcr": 0,
}
# The protocol's dose of the product (products: CART_CRYO dose_cells_per_kg), as the infusion form records it.
DEMO_DOSE_CELLS_PER_KG = 1_000_000


def _on_curve(curve: Curve, day: float) -> float:
    if day <= curve[0][0]:
        return curve[0][1]
    for (day_a, level_a), (day_b, level_b) in itertools.pairwise(curve):
        if day <= day_b:
            return level_a + (level_b - level_a) * (day - day_a) / (day_b - day_a)
    return curve[-1][1]


class CasebookCourse:
    """One demo subject's clinical course, drawn once from its code (the same demo every time)."""

    def __init__(
        self,
        subject: Subject,
        *,
        crs: bool = False,
        flare: bool = False,
        icans: bool = False,
        febrile_neutropenia: bool = False,
        non_responder: bool = False,
    ) -> None:
        # Demo values, not secrets: a seeded generator gives the same demo every time.
        self.rng = random.Random(zlib.crc32(f"casebook-{subject.code}".encode()))  # noqa: S311
        self.curves = {
            **COURSE,
            **(CRS_COURSE if crs else {}),
            **(FLARE_COURSE if flare else {}),
            **(FEBRILE_NEUTROPENIA_COURSE if febrile_neutropenia else {}),
            **(NON_RESPONSE_COURSE if non_responder else {}),
        }
        if febrile_neutropenia:
            before = self.curves.get("temperature_c", ((0, 37.0),))
            self.curves["temperature_c"] = (*before, *FEBRILE_NEUTROPENIA_FEVER)
        self.crs, self.flare, self.icans = crs, flare, icans
        self.febrile_neutropenia, self.non_responder = febrile_neutropenia, non_responder
        self.weight_kg = round(self.rng.uniform(54, 74), 1)
        self.systolic = self.rng.randint(110, 126)
        self.heart_rate = self.rng.randint(66, 80)
        # The subject's own level of each lab, around the usual course.
        self.factor = {name: self.rng.uniform(0.88, 1.12) for name in COURSE}
        self.hydroxychloroquine_since = date(2015 + self.rng.randint(0, 6), self.rng.randint(1, 12), 1)
        self.prednisone_since = date(2023, self.rng.randint(1, 12), 1)

    def level(self, name: str, day: float) -> float:
        return _on_curve(self.curves[name], day) * self.factor.get(name, 1.0) * self.rng.uniform(0.94, 1.06)

    def lab(self, name: str, day: float) -> dict[str, float]:
        low, high = REFERENCE_RANGES[name]
        value = round(max(self.level(name, day), 0.01 if DECIMALS[name] else 1), DECIMALS[name])
        return {"value": value, "lower_limit": low, "upper_limit": high}

    def forms(self, form_code: str, day: float, done_on: date, infused_on: date | None) -> dict[str, object]:
        """Plausible values of one form at `day` after D0 (the kinetic markers are left to their seed)."""
        labs: dict[str, tuple[str, ...]] = {
            "haematology": ("anc", "lymphocytes", "platelets", "haemoglobin"),
            "chemistry": ("creatinine", "alt", "ast", "bilirubin", "crp", "ferritin", "ldh"),
            "immunology": ("c3", "c4", "igg"),
            "urinalysis": ("upcr",),
        }
        if form_code in labs:
            return {name: self.lab(name, day) for name in labs[form_code]}
        if form_code == "vital_signs":
            temperature = _on_curve(self.curves["temperature_c"], day) if "temperature_c" in self.curves else 36.9
            fever = max(temperature - 37.0, 0.0)
            return {
                "temperature_c": round(temperature + self.rng.uniform(-0.3, 0.2), 1),
                "heart_rate_bpm": round(self.heart_rate + 14 * fever + self.rng.randint(-4, 4)),
                "systolic_bp_mmhg": self.systolic + self.rng.randint(-6, 6) - round(6 * fever),
                "diastolic_bp_mmhg": round(self.systolic * 0.63) + self.rng.randint(-4, 4) - round(4 * fever),
                "spo2_pct": float(self.rng.choice((97, 98, 98, 99))),
                "weight_kg": round(self.weight_kg - (1.5 if 0 < day < 30 else 0) + self.rng.uniform(-0.6, 0.6), 1),
            }
        if form_code == "sle_activity":
            return {
                "sledai2k_descriptors": self._sledai(day),
                "physician_global_assessment": round(self.level("pga", day), 1),
                "prednisone_mg_per_day": self.prednisone(day),
                "immunosuppressants": ["mycophenolate"] if day < -5 else [],
                # The answers DORIS and LLDAS need: no haemolysis or GI lupus in the demo course.
                "maintenance_therapy_stable": True,
                "standard_maintenance_only": True,
                "hemolytic_anemia": False,
                "gi_activity": False,
            }
        if form_code == "concomitant_medications":
            return {"medications": self._medications(day, done_on, infused_on)}
        if form_code == "lymphodepletion":
            return {
                "regimen": "flu_cy",
                "fludarabine_mg_per_m2_per_day": 25,
                "cyclophosphamide_mg_per_m2_per_day": 250,
                "days": 3,
                "start_date": done_on,
            }
        raise KeyError(form_code)

    def prednisone(self, day: float) -> float:
        """Tapered in steps of 2.5 mg/day, as prescribed."""
        return round(_on_curve(self.curves["prednisone"], day) / 2.5) * 2.5

    def _sledai(self, day: float) -> list[str]:
        if day < 0:
            return list(SLEDAI_AT_SCREENING)
        if self.non_responder:
            return list(SLEDAI_WITHOUT_RESPONSE)
        if self.flare and day >= 500:
            return ["arthritis", "low_complement", "increased_dna_binding"]
        if self.flare and day >= 330:
            return ["increased_dna_binding"]
        if day <= 100:
            return ["low_complement"]
        return []

    def _medications(self, day: float, done_on: date, infused_on: date | None) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [
            {
                "medication": "hydroxychloroquine",
                "dose": 200,
                "dose_unit": "mg",
                "route": "oral",
                "start_date": self.hydroxychloroquine_since,
                "ongoing": True,
            },
            {
                "medication": "ramipril",
                "dose": 5,
                "dose_unit": "mg",
                "route": "oral",
                "start_date": date(2022, 3, 1),
                "ongoing": True,
            },
        ]
        prednisone = self.prednisone(day)
        if prednisone > 0:
            rows.append(
                {
                    "medication": "prednisone",
                    "dose": prednisone,
                    "dose_unit": "mg",
                    "route": "oral",
                    "start_date": self.prednisone_since,
                    "ongoing": True,
                }
            )
        elif infused_on is not None:
            rows.append(
                {
                    "medication": "prednisone",
                    "dose": 2.5,
                    "dose_unit": "mg",
                    "route": "oral",
                    "start_date": self.prednisone_since,
                    "ongoing": False,
                    "stop_date": infused_on + timedelta(days=115),
                }
            )
        if day < -5:
            rows.append(
                {
                    "medication": "mycophenolate mofetil",
                    "dose": 1000,
                    "dose_unit": "mg",
                    "route": "oral",
                    "start_date": date(2021, 6, 1),
                    "ongoing": True,
                }
            )
            return rows
        assert infused_on is not None
        started = infused_on - timedelta(days=5)
        # Antiviral and anti-Pneumocystis prophylaxis after lymphodepletion (6 and 12 months).
        for medication, dose, stop_day in (("valaciclovir", 500, 360), ("sulfamethoxazole/trimethoprim", 800, 180)):
            stop = infused_on + timedelta(days=stop_day)
            row: dict[str, object] = {
                "medication": medication,
                "dose": dose,
                "dose_unit": "mg",
                "route": "oral",
                "start_date": started,
                "ongoing": done_on <= stop,
            }
            if done_on > stop:
                row["stop_date"] = stop
            rows.append(row)
        if self.icans and done_on >= infused_on + timedelta(days=ICANS_DAYS[0]):
            # The grade 2 ICANS's dexamethasone, D5–D6.
            rows.append(
                {
                    "medication": "dexamethasone",
                    "dose": 10,
                    "dose_unit": "mg",
                    "route": "intravenous",
                    "start_date": infused_on + timedelta(days=ICANS_DAYS[0]),
                    "ongoing": False,
                    "stop_date": infused_on + timedelta(days=ICANS_DAYS[1]),
                }
            )
        onset, end = (infused_on + timedelta(days=d) for d in FEBRILE_NEUTROPENIA_DAYS)
        if self.febrile_neutropenia and done_on >= onset:
            # The febrile neutropenia's treatment in hospital: a broad-spectrum antibiotic and G-CSF.
            for medication, dose, dose_unit, route in (
                ("piperacillin/tazobactam", 4, "g", "intravenous"),
                ("filgrastim", 300, "ug", "subcutaneous"),
            ):
                rows.append(
                    {
                        "medication": medication,
                        "dose": dose,
                        "dose_unit": dose_unit,
                        "route": route,
                        "start_date": onset,
                        "ongoing": done_on <= end,
                        **({"stop_date": end} if done_on > end else {}),
                    }
                )
        return rows


@dataclass
class CasebookSeeder:
    """Enters the casebook of the demo subjects as their centers, monitor and data manager would."""

    protocol: Protocol
    users: dict[str, User]
    today: datetime

    def actor(self, username: str, center_code: str) -> tuple[Actor, User]:
        """The user's actor at the subject's center, at the frozen clock's now."""
        user = self.users[username]
        membership = user.memberships.get(center__code=center_code)
        return Actor(user.pk, username, membership.role, center_code, clock.now()), user

    def before_today(self, moment: datetime) -> datetime:
        return min(moment, self.today - timedelta(minutes=30))

    def act(self, username: str, subject: Subject, moment: datetime, work: Callable[[Actor, User], Any]) -> Any:
        """One user action: the clock at `moment` (never after today), one transaction."""
        with clock.frozen_at(self.before_today(moment)), transaction.atomic():
            actor, user = self.actor(username, subject.center.code)
            return work(actor, user)

    def evening(self, subject: Subject, day: date, hour: int = 17) -> datetime:
        return datetime.combine(day, datetime.min.time(), ZoneInfo(subject.center.time_zone)).replace(hour=hour)

    def visit(
        self,
        subject: Subject,
        course: CasebookCourse,
        visit_code: str,
        done_on: date,
        infused_on: date | None,
        *,
        values: dict[str, dict[str, object]] | None = None,
    ) -> datetime:
        """The coordinator records the visit done and enters each of its forms; returns when."""
        definition = next(v for v in self.protocol.visits if v.code == visit_code)
        coordinator = f"{subject.center.code.lower()}.coordinator"
        moment = self.evening(subject, done_on) + timedelta(minutes=course.rng.randint(0, 90))
        self.act(
            coordinator,
            subject,
            moment,
            lambda actor, _: casebook.visit_done_record(
                actor=actor, subject=subject, protocol=self.protocol, visit_code=visit_code, done_on=done_on
            ),
        )
        day = float((done_on - infused_on).days) if infused_on else -40.0
        for index, form_code in enumerate(definition.forms):
            items = (values or {}).get(form_code) or self.items(subject, course, form_code, day, done_on, infused_on)
            self.act(
                coordinator,
                subject,
                moment + timedelta(minutes=4 * (index + 1)),
                partial(self._save, subject, visit_code, form_code, items),
            )
        return moment + timedelta(minutes=4 * len(definition.forms))

    def items(
        self,
        subject: Subject,
        course: CasebookCourse,
        form_code: str,
        day: float,
        done_on: date,
        infused_on: date | None,
    ) -> dict[str, object]:
        if form_code == "infusion":
            infusion = subject.pathway_events.get(step=Step.INFUSE.value)
            local = infusion.occurred_at.astimezone(ZoneInfo(subject.center.time_zone))
            return {
                "dose_cells_per_kg": DEMO_DOSE_CELLS_PER_KG,
                "premedication": ["paracetamol", "antihistamine"],
                "infusion_date": done_on,
                "infusion_start_time": f"{local - timedelta(minutes=20):%H:%M}",
            }
        return course.forms(form_code, day, done_on, infused_on)

    def _save(
        self,
        subject: Subject,
        visit_code: str,
        form_code: str,
        items: Mapping[str, object],
        actor: Actor,
        _: User,
        reason: str = "",
    ) -> Any:
        return casebook.form_save(
            actor=actor,
            subject=subject,
            protocol=self.protocol,
            visit_code=visit_code,
            form_code=form_code,
            items=_json_ready(items),
            reason=reason,
        )

    def correct(
        self,
        subject: Subject,
        visit_code: str,
        form_code: str,
        changes: Mapping[str, object],
        reason: str,
        moment: datetime,
        username: str = "",
    ) -> Any:
        """A later change of some items of a saved form, with its reason."""
        record = FormRecord.objects.get(subject=subject, visit_code=visit_code, form_code=form_code)
        items = {**record.values_json, **changes}
        items.pop("egfr", None)
        return self.act(
            username or f"{subject.center.code.lower()}.coordinator",
            subject,
            moment,
            partial(self._save, subject, visit_code, form_code, items, reason=reason),
        )

    def raise_query(self, username: str, subject: Subject, where: str, text: str, moment: datetime) -> Any:
        visit_code, form_code, item = where.split("/")
        return self.act(
            username,
            subject,
            moment,
            lambda actor, _: casebook.query_raise(
                actor=actor,
                subject=subject,
                protocol=self.protocol,
                visit_code=visit_code,
                form_code=form_code,
                item=item,
                text=text,
            ),
        )

    def move_query(self, username: str, query: Any, move: str, text: str, moment: datetime) -> None:
        self.act(
            username,
            query.subject,
            moment,
            lambda actor, _: casebook.query_move(actor=actor, query=query, move=QueryMove(move), text=text),
        )

    def verify(
        self,
        subject: Subject,
        visit_code: str,
        form_codes: Iterable[str],
        moment: datetime,
        items: Iterable[str] | None = None,
    ) -> None:
        chosen = None if items is None else list(items)
        for form_code in form_codes:
            record = FormRecord.objects.get(subject=subject, visit_code=visit_code, form_code=form_code)
            self.act("cra.monitor", subject, moment, partial(_form_verify, self.protocol, record, chosen))

    def lock(self, subject: Subject, visit_codes: Iterable[str], moment: datetime) -> int:
        """The data manager locks the visits' complete forms that no query holds open."""
        held = {(q.visit_code, q.form_code) for q in Query.objects.filter(subject=subject).exclude(status="closed")}
        records = [
            r
            for r in FormRecord.objects.filter(subject=subject, visit_code__in=list(visit_codes)).order_by("pk")
            if (r.visit_code, r.form_code) not in held and r.status in ("complete", "verified")
        ]
        if records:
            self.act(
                "dm.datamanager", subject, moment, lambda actor, _: casebook.forms_lock(actor=actor, records=records)
            )
        return len(records)


def _json_ready(items: Mapping[str, object]) -> dict[str, object]:
    """Dates as ISO texts, as a page or the API sends them."""

    def plain(value: object) -> object:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: plain(value) for name, value in items.items()}


def seed_casebook_demo(protocol: Protocol, users: dict[str, User], today: datetime) -> None:
    """The casebook of the demo subjects, entered, queried, verified, locked and signed by the right users.

    Every infused subject has its visits from lymphodepletion to the last one due (before today,
    or before it completed or withdrew) recorded done on a date of their window, `DEMO_VISITS`
    only so that the demo builds in seconds; the Bordeaux and Lille subjects their screening and
    apheresis visits. Each form holds plausible values (`CasebookCourse`, seeded by the subject's
    code): the neutrophil nadir of week 1, a grade 1 CRS (fever D1–D3, CRP and ferritin peaks) in
    all but the subject in acute monitoring, IgG falling with B-cell aplasia, complement, proteinuria
    and SLEDAI-2K improving over months and prednisone tapered, while the long-term subject flares
    back after M12, the completed subject's neutrophils fall again in week 3 with a fever (the
    febrile neutropenia of `seed_safety_demo`) and the withdrawn subject does not respond (its lupus
    activity at M3 as at screening, or worse). The screening visit's lupus activity form of every
    infused subject is entered (the baseline of SRI-4 and LLDAS). The immunology form's kinetic
    markers (anti-dsDNA, B cells, CAR-T) are left blank: `seed_kinetics_demo` stores those results.
    Two visits are done late and one missed; typing errors open automatic queries, most of them
    corrected with a reason (the query closes itself); the data manager asks manual queries of the
    infused subjects and the monitor (Bordeaux and Lille only) of the screening and apheresis visits
    it verifies; the early visits of the long-term subject are locked, and the completed subject's
    casebook is locked whole and signed by its investigator.
    """
    seeder = CasebookSeeder(protocol, users, today)
    infused = {
        State(s.state): s
        for s in Subject.objects.filter(synthetic=True, infusion_date__isnull=False).select_related("center")
    }
    moments: dict[tuple[str, str], datetime] = {}
    for state, subject in sorted(infused.items(), key=lambda pair: pair[1].code):
        moments |= _casebook_follow_up(seeder, subject, casebook_course(subject, state), state)
    included = Subject.objects.filter(
        synthetic=True,
        center__code__in=("BDX", "LIL"),
        state__in=(State.INCLUDED, State.APHERESIS_COLLECTED, State.MATERIAL_SHIPPED),
    ).select_related("center")
    for subject in included.order_by("code"):
        moments |= _casebook_before_infusion(seeder, subject, CasebookCourse(subject))
    # The other included subjects awaiting infusion: their screening and apheresis visits took place
    # on the pathway's dates, their forms left to enter.
    waiting = (
        Subject.objects.filter(synthetic=True, infusion_date__isnull=True, pathway_events__step=Step.INCLUDE.value)
        .exclude(pk__in=[s.pk for s in included])
        .select_related("center")
        .distinct()
    )
    for subject in waiting.order_by("code"):
        moments |= _visits_done_without_forms(seeder, subject, _pathway_visits(subject))
    # The review's story needs the subjects of the full demo; a smaller staged demo (the French pages
    # crawl) gets the entered casebook without it.
    reviewed = {State.LONG_TERM_FOLLOW_UP, State.COMPLETED, State.WITHDRAWN, State.FOLLOW_UP, State.ACUTE_MONITORING}
    if reviewed | set(LATE_VISITS) <= set(infused):
        _casebook_review(seeder, infused, included, moments)


# The safety and efficacy story of the infused subjects (issue 10, item 7): a grade 1 CRS in all but
# the subject whose CAR-T barely expand, a grade 2 ICANS in one, the febrile neutropenia (the SAE) in
# one, and one subject who does not respond (withdrawn after M3).
CRS_STATES = frozenset({State.INFUSED, State.FOLLOW_UP, State.LONG_TERM_FOLLOW_UP, State.COMPLETED, State.WITHDRAWN})
ICANS_STATE = State.FOLLOW_UP
FEBRILE_NEUTROPENIA_STATE = State.COMPLETED
NON_RESPONDER_STATE = State.WITHDRAWN


def casebook_course(subject: Subject, state: State) -> CasebookCourse:
    """The clinical course of an infused demo subject, by the state it reached (its part of the story)."""
    return CasebookCourse(
        subject,
        crs=state in CRS_STATES,
        flare=state is State.LONG_TERM_FOLLOW_UP,
        icans=state is ICANS_STATE,
        febrile_neutropenia=state is FEBRILE_NEUTROPENIA_STATE,
        non_responder=state is NON_RESPONDER_STATE,
    )


def _local_date(subject: Subject, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(subject.center.time_zone)).date()


# Visits done out of their window, the one missed, and typing errors at entry (demo scenario).
LATE_VISITS: dict[State, dict[str, int]] = {State.FOLLOW_UP: {"D14": 3}, State.LONG_TERM_FOLLOW_UP: {"M12": 20}}
# The visits of the infused subjects the demo enters (the others stay to be entered): all of them
# would double the time the demo takes to build.
DEMO_VISITS = frozenset({"LD", "D0", "D1", "D2", "D3", "D5", "D7", "D14", "D28", "M3", "M6", "M12", "M24"})
# The flaring subject's M18 visit too (the flare's query is there).
DEMO_FLARE_VISITS = DEMO_VISITS | {"M18"}
MISSED_VISITS: dict[State, tuple[str, str]] = {
    State.WITHDRAWN: ("M2", "La patiente n'est pas venue et n'a pas pu être jointe par téléphone."),
}
BLOOD_PRESSURE_TYPOS: dict[State, str] = {
    State.LONG_TERM_FOLLOW_UP: "D5",
    State.COMPLETED: "M3",
    State.ACUTE_MONITORING: "D2",
}


def _casebook_follow_up(
    seeder: CasebookSeeder, subject: Subject, course: CasebookCourse, state: State
) -> dict[tuple[str, str], datetime]:
    """Every visit due from LD on, as the center's coordinator enters them; returns when each was entered."""
    infused_on = subject.infusion_date
    assert infused_on is not None
    ended = subject.state_changed_at if state in (State.COMPLETED, State.WITHDRAWN) else seeder.today
    last_day = _local_date(subject, ended)
    plan: list[tuple[str, date]] = []
    # The visits that took place but whose forms the demo leaves to enter (a center's backlog),
    # and the screening and apheresis visits of the pathway's dates.
    unentered = _pathway_visits(subject)
    for visit in seeder.protocol.visits:
        missed = MISSED_VISITS.get(state, ("",))[0] == visit.code
        entered_visits = DEMO_FLARE_VISITS if course.flare else DEMO_VISITS
        if course.febrile_neutropenia:
            entered_visits |= {"D21"}  # the blood count of the febrile neutropenia
        if visit.anchor is not Anchor.INFUSION:
            continue
        target = infused_on + timedelta(days=visit.day)
        if not (visit.code in entered_visits or missed):
            if target < last_day:
                unentered.append((visit.code, target))
            continue
        reach = min(visit.window_before_days, visit.window_after_days, 2 if visit.day < 60 else 10)
        done_on = target + timedelta(days=LATE_VISITS.get(state, {}).get(visit.code, 0) or seeder_jitter(course, reach))
        if target < last_day and done_on < last_day:
            plan.append((visit.code, done_on))
    entered = _visits_done_without_forms(seeder, subject, unentered)
    # The screening visit's lupus activity: the baseline of SRI-4 and LLDAS.
    screened_on = next(done_on for visit_code, done_on in unentered if visit_code == "SCR")
    activity = course.forms("sle_activity", float((screened_on - infused_on).days), screened_on, infused_on)
    seeder.act(
        f"{subject.center.code.lower()}.coordinator",
        subject,
        entered[(subject.code, "SCR")] + timedelta(minutes=10),
        partial(seeder._save, subject, "SCR", "sle_activity", activity),
    )
    for index, (visit_code, done_on) in enumerate(plan):
        day = float((done_on - infused_on).days)
        if MISSED_VISITS.get(state, ("",))[0] == visit_code:
            reason = MISSED_VISITS[state][1]
            entered[(subject.code, visit_code)] = seeder.act(
                f"{subject.center.code.lower()}.coordinator",
                subject,
                seeder.evening(subject, done_on + timedelta(days=3)),
                partial(_visit_missed, seeder.protocol, subject, visit_code, reason),
            )
            continue
        values: dict[str, dict[str, object]] = {}
        if BLOOD_PRESSURE_TYPOS.get(state) == visit_code:
            vitals = course.forms("vital_signs", day, done_on, infused_on)
            # Systolic and diastolic typed the wrong way round: the edit check opens a query.
            vitals["systolic_bp_mmhg"], vitals["diastolic_bp_mmhg"] = (
                vitals["diastolic_bp_mmhg"],
                vitals["systolic_bp_mmhg"],
            )
            values["vital_signs"] = vitals
        if state is State.WITHDRAWN and visit_code == "D28":
            medications = course.forms("concomitant_medications", day, done_on, infused_on)
            rows = list(medications["medications"])  # type: ignore[call-overload]
            # Ondansetron for nausea at D0–D2, its stop date typed a year early.
            rows.append(
                {
                    "medication": "ondansetron",
                    "dose": 8,
                    "dose_unit": "mg",
                    "route": "oral",
                    "start_date": infused_on,
                    "ongoing": False,
                    "stop_date": infused_on + timedelta(days=2) - timedelta(days=365),
                }
            )
            values["concomitant_medications"] = {"medications": rows}
        if state is State.INFUSED and index == len(plan) - 1:
            # The last blood count's platelets are not back from the lab yet: a draft.
            blood = course.forms("haematology", day, done_on, infused_on)
            blood.pop("platelets")
            values["haematology"] = blood
        entered[(subject.code, visit_code)] = seeder.visit(
            subject, course, visit_code, done_on, infused_on, values=values
        )
    return entered


def _visits_done_without_forms(
    seeder: CasebookSeeder, subject: Subject, visits: list[tuple[str, date]]
) -> dict[tuple[str, str], datetime]:
    """The coordinator records each visit done on its date; its forms stay to be entered."""
    coordinator = f"{subject.center.code.lower()}.coordinator"
    return {
        (subject.code, visit_code): seeder.act(
            coordinator,
            subject,
            seeder.evening(subject, done_on),
            partial(_visit_done, seeder.protocol, subject, visit_code, done_on),
        )
        for visit_code, done_on in visits
    }


def _visit_done(
    protocol: Protocol, subject: Subject, visit_code: str, done_on: date, actor: Actor, _: User
) -> datetime:
    return casebook.visit_done_record(
        actor=actor, subject=subject, protocol=protocol, visit_code=visit_code, done_on=done_on
    ).recorded_at


def _form_verify(protocol: Protocol, record: FormRecord, items: list[str] | None, actor: Actor, _: User) -> FormRecord:
    return casebook.form_verify(actor=actor, record=record, protocol=protocol, items=items)


def _visit_missed(
    protocol: Protocol, subject: Subject, visit_code: str, reason: str, actor: Actor, _: User
) -> datetime:
    return casebook.visit_missed_record(
        actor=actor, subject=subject, protocol=protocol, visit_code=visit_code, reason=reason
    ).recorded_at


def seeder_jitter(course: CasebookCourse, reach: int) -> int:
    """Days from the target a visit took place, inside its window."""
    return course.rng.randint(-reach, reach) if reach > 0 else 0


def _casebook_before_infusion(
    seeder: CasebookSeeder, subject: Subject, course: CasebookCourse
) -> dict[tuple[str, str], datetime]:
    """The screening visit on the day screening started, and the apheresis visit once collected."""
    return {
        (subject.code, visit_code): seeder.visit(subject, course, visit_code, done_on, None)
        for visit_code, done_on in _pathway_visits(subject)
    }


def _pathway_visits(subject: Subject) -> list[tuple[str, date]]:
    """The screening visit on the day screening started, the apheresis visit on the day of collection
    (once collected): the visits the pathway's own dates place."""
    events = {e.step: e.occurred_at for e in subject.pathway_events.all()}
    visits = [("SCR", _local_date(subject, events[Step.START_SCREENING.value]))]
    if Step.COLLECT_APHERESIS.value in events:
        visits.append(("APH", _local_date(subject, events[Step.COLLECT_APHERESIS.value])))
    return visits


def _casebook_review(
    seeder: CasebookSeeder,
    infused: dict[State, Subject],
    included: Iterable[Subject],
    entered: dict[tuple[str, str], datetime],
) -> None:
    """Corrections, queries, source-data verification, locks and the signature, in their order."""

    def after(subject: Subject, visit_code: str, days: float) -> datetime:
        return entered[(subject.code, visit_code)] + timedelta(days=days)

    def coordinator(subject: Subject) -> str:
        return f"{subject.center.code.lower()}.coordinator"

    def automatic(subject: Subject, visit_code: str, check_code: str) -> list[Query]:
        return list(Query.objects.filter(subject=subject, visit_code=visit_code, check_code=check_code))

    # Blood pressures typed the wrong way round, put right the next day (the query closes itself);
    # the one of yesterday's visit in Strasbourg is still open.
    for state in (State.LONG_TERM_FOLLOW_UP, State.COMPLETED):
        subject, visit_code = infused[state], BLOOD_PRESSURE_TYPOS[state]
        record = FormRecord.objects.get(subject=subject, visit_code=visit_code, form_code="vital_signs")
        values = record.values_json
        seeder.correct(
            subject,
            visit_code,
            "vital_signs",
            {"systolic_bp_mmhg": values["diastolic_bp_mmhg"], "diastolic_bp_mmhg": values["systolic_bp_mmhg"]},
            "Systolique et diastolique saisies à l'envers (dossier de soins).",
            after(subject, visit_code, 1),
        )
    # A stop date a year before its start: corrected with the reason.
    withdrawn = infused[State.WITHDRAWN]
    record = FormRecord.objects.get(subject=withdrawn, visit_code="D28", form_code="concomitant_medications")
    rows = [dict(row) for row in record.values_json["medications"]]
    rows[-1]["stop_date"] = (date.fromisoformat(rows[-1]["start_date"]) + timedelta(days=2)).isoformat()
    seeder.correct(
        withdrawn,
        "D28",
        "concomitant_medications",
        {"medications": rows},
        "Année de la date d'arrêt mal saisie.",
        after(withdrawn, "D28", 2),
    )
    # Visits done late: the center explains, the data manager accepts one explanation.
    for state, late in LATE_VISITS.items():
        subject = infused[state]
        for visit_code in late:
            for query in automatic(subject, visit_code, "visit_date_window"):
                seeder.move_query(
                    coordinator(subject),
                    query,
                    "answer",
                    "La patiente était absente ; visite reportée avec l'accord de l'investigateur.",
                    after(subject, visit_code, 2),
                )
                if state is State.LONG_TERM_FOLLOW_UP:
                    seeder.move_query(
                        "dm.datamanager", query, "close", "Explication acceptée.", after(subject, visit_code, 6)
                    )
    # The data manager's questions on the infused subjects.
    crs = infused[State.FOLLOW_UP]
    query = seeder.raise_query(
        "dm.datamanager",
        crs,
        "D3/chemistry/ferritin",
        "Ferritine au-dessus de 1 500 µg/L avec fièvre : merci de confirmer la valeur et de déclarer le CRS "
        "en événement indésirable.",
        after(crs, "D3", 2),
    )
    seeder.move_query(
        coordinator(crs),
        query,
        "answer",
        "Valeur confirmée sur le compte rendu du laboratoire ; CRS de grade 1 de J1 à J3 déclaré "
        "en événement indésirable.",
        after(crs, "D3", 3),
    )
    seeder.move_query("dm.datamanager", query, "close", "Réponse acceptée.", after(crs, "D3", 4))
    flare = infused[State.LONG_TERM_FOLLOW_UP]
    query = seeder.raise_query(
        "dm.datamanager",
        flare,
        "M18/sle_activity/prednisone_mg_per_day",
        "Prednisone reprise à 7,5 mg/jour : merci de confirmer et de déclarer la poussée en événement indésirable.",
        after(flare, "M18", 5),
    )
    seeder.move_query(
        coordinator(flare),
        query,
        "answer",
        "Confirmé : prednisone reprise pour arthrite sur décision de l'investigateur ; événement indésirable déclaré.",
        after(flare, "M18", 8),
    )
    query = seeder.raise_query(
        "dm.datamanager",
        withdrawn,
        "D28/immunology/c3",
        "C3 plus bas qu'à J14 : merci de vérifier l'unité rendue par le laboratoire (g/L).",
        after(withdrawn, "D28", 4),
    )
    seeder.move_query(coordinator(withdrawn), query, "answer", "Unité vérifiée : g/L.", after(withdrawn, "D28", 5))
    seeder.move_query("dm.datamanager", query, "close", "Réponse acceptée.", after(withdrawn, "D28", 6))
    acute = infused[State.ACUTE_MONITORING]
    seeder.raise_query(
        "dm.datamanager",
        acute,
        "D1/haematology/platelets",
        "Plaquettes à J1 bien plus basses qu'à J0 sans saignement rapporté : merci de vérifier "
        "le compte rendu du laboratoire.",
        after(acute, "D1", 1),
    )
    # The early visits of the long-term subject are locked; the completed subject's casebook is
    # locked whole, then signed by its investigator.
    seeder.lock(flare, ("LD", "D0", "D1", "D2", "D3", "D5", "D7"), after(flare, "D28", 10))
    completed = infused[State.COMPLETED]
    closed_at = completed.state_changed_at
    visit_codes = list(FormRecord.objects.filter(subject=completed).values_list("visit_code", flat=True).distinct())
    seeder.lock(completed, visit_codes, closed_at + timedelta(days=1))
    investigator = f"{completed.center.code.lower()}.investigator"
    seeder.act(
        investigator,
        completed,
        closed_at + timedelta(days=2),
        lambda actor, user: casebook.casebook_sign(actor=actor, user=user, subject=completed, password=DEMO_PASSWORD),
    )
    _casebook_monitoring(seeder, list(included), entered)


def _casebook_monitoring(
    seeder: CasebookSeeder, included: list[Subject], entered: dict[tuple[str, str], datetime]
) -> None:
    """The monitor's visit to Bordeaux and Lille: a query answered by a correction, SDV, and a lock."""
    by_state = {State(s.state): s for s in included}
    first = by_state.get(State.INCLUDED)
    if first is not None:
        start = entered[(first.code, "SCR")] + timedelta(days=10)
        query = seeder.raise_query(
            "cra.monitor",
            first,
            "SCR/vital_signs/weight_kg",
            "Le dossier de soins donne un autre poids le jour de la sélection : merci de vérifier.",
            start,
        )
        record = FormRecord.objects.get(subject=first, visit_code="SCR", form_code="vital_signs")
        weight = round(float(record.values_json["weight_kg"]) + 2.0, 1)
        seeder.correct(
            first,
            "SCR",
            "vital_signs",
            {"weight_kg": weight},
            "Erreur de transcription : valeur du dossier de soins.",
            start + timedelta(hours=20),
        )
        seeder.move_query(
            "bdx.coordinator",
            query,
            "answer",
            f"Corrigé à {weight} kg d'après le dossier de soins.",
            start + timedelta(hours=20, minutes=5),
        )
        seeder.move_query(
            "cra.monitor", query, "close", "Correction vérifiée sur la source.", start + timedelta(days=1)
        )
        seeder.verify(first, "SCR", ("vital_signs", "haematology", "urinalysis"), start + timedelta(days=1, hours=1))
        # Part of the chemistry only: the liver tests' report was not in the file.
        seeder.verify(first, "SCR", ("chemistry",), start + timedelta(days=1, hours=1), items=("creatinine", "egfr"))
    collected = by_state.get(State.APHERESIS_COLLECTED)
    if collected is not None:
        seeder.raise_query(
            "cra.monitor",
            collected,
            "SCR/sle_activity/prednisone_mg_per_day",
            "Le courrier d'adressage donne 15 mg/jour de prednisone à la sélection : merci de vérifier.",
            entered[(collected.code, "APH")] + timedelta(days=1),
        )
        seeder.verify(
            collected, "SCR", ("vital_signs", "haematology"), entered[(collected.code, "APH")] + timedelta(days=1)
        )
    shipped = by_state.get(State.MATERIAL_SHIPPED)
    if shipped is not None:
        moment = entered[(shipped.code, "APH")] + timedelta(days=1)
        seeder.verify(shipped, "APH", ("vital_signs", "haematology"), moment)
        seeder.lock(shipped, ("APH",), moment + timedelta(days=1))


# --- safety and toxicity (issue 10) --------------------------------------------------------------

# The ICE score on the days of the grade 2 ICANS (awake, ICE 3–6), treated with dexamethasone; the
# other days score 10.
ICANS_ICE_SCORES: dict[int, int] = {5: 4, 6: 6}
ICANS_DAYS = (5, 6)
CRS_DAYS = (1, 3)


def seed_safety_demo(protocol: Protocol, users: dict[str, User], today: datetime) -> None:
    """The infused subjects' CRS/ICANS assessments and adverse events, recorded by their center.

    The coordinator assesses CRS and ICANS every evening from D0 to D14 (up to today) with the
    temperature of the day's vital signs where the visit took them, the course's otherwise: the
    grade 1 CRS of D1–D3 (fever, no hypotension, no hypoxia) in every subject but the one whose CAR-T
    barely expand, and in one subject a grade 2 ICANS on D5–D6 (awake, ICE 4 then 6) treated with
    dexamethasone; each episode is an adverse event whose relatedness the investigator signs. The
    subject with the deepest neutrophil nadir has the serious adverse event, a febrile neutropenia
    (grade 3, hospitalisation) from D19: recorded the night the site learnt of it, the initial report
    sent within 24 h, the investigator's signed causality, a follow-up report, the outcome corrected
    to recovered and the final report, every report of its clock on time. The week-1
    neutropenia episode proposed from the blood counts (grade 4 at its nadir, over by D14) is
    accepted as one AE and a grade 1 headache recorded. No AE meets a DLT rule of the protocol
    (cytopenia resolved before D28, CRS grade 1, ICANS grade 2): none to decide.
    """
    seeder = CasebookSeeder(protocol, users, today)
    infused = {
        State(s.state): s
        for s in Subject.objects.filter(synthetic=True, infusion_date__isnull=False).select_related("center")
    }
    for state, subject in sorted(infused.items(), key=lambda pair: pair[1].code):
        _toxicity_assessments(seeder, subject, casebook_course(subject, state))
        if state in CRS_STATES:
            _episode_adverse_event(seeder, subject, "cytokine_release_syndrome", 1, CRS_DAYS, Relatedness.DEFINITE)
        if state is ICANS_STATE:
            _episode_adverse_event(seeder, subject, "icans", 2, ICANS_DAYS, Relatedness.PROBABLE)
    if FEBRILE_NEUTROPENIA_STATE in infused:
        _febrile_neutropenia(seeder, infused[FEBRILE_NEUTROPENIA_STATE])
    if State.FOLLOW_UP in infused:
        _neutropenia_from_labs(seeder, infused[State.FOLLOW_UP])
    if State.ACUTE_MONITORING in infused:
        _headache(seeder, infused[State.ACUTE_MONITORING])


def _center_user(subject: Subject, role: str) -> str:
    return f"{subject.center.code.lower()}.{role}"


def _vital_temperatures(subject: Subject) -> dict[date, float]:
    """The temperature of each vital signs form, by the date of its visit."""
    done_on: dict[str, date] = {
        code: day
        for code, day in VisitRecord.objects.filter(subject=subject).values_list("visit_code", "done_on")
        if day is not None
    }
    return {
        done_on[record.visit_code]: float(record.values_json["temperature_c"])
        for record in FormRecord.objects.filter(subject=subject, form_code="vital_signs")
        if record.visit_code in done_on and "temperature_c" in record.values_json
    }


def _toxicity_assessments(seeder: CasebookSeeder, subject: Subject, course: CasebookCourse) -> None:
    """The coordinator's CRS/ICANS assessment of each evening from D0 to D14, up to today."""
    infused_on = subject.infusion_date
    assert infused_on is not None
    # Demo values, not secrets: seeded by the subject's code.
    rng = random.Random(zlib.crc32(f"toxicity-{subject.code}".encode()))  # noqa: S311
    temperatures = _vital_temperatures(subject)
    fever: Curve = course.curves.get("temperature_c", ((0, 36.9),))
    icans = course.icans
    ended = subject.state_changed_at if subject.state in (State.COMPLETED, State.WITHDRAWN) else seeder.today
    for day in range(seeder.protocol.pathway_rules.toxicity_assessment_days + 1):
        assessed_on = infused_on + timedelta(days=day)
        moment = seeder.evening(subject, assessed_on, hour=19) + timedelta(minutes=rng.randint(0, 45))
        if moment >= min(ended, seeder.today - timedelta(minutes=30)):
            break
        temperature = temperatures.get(assessed_on, round(_on_curve(fever, day) + rng.uniform(-0.3, 0.2), 1))
        inputs = AssessmentInputs(
            temperature_c=temperature,
            hypotension=Hypotension.NONE,
            hypoxia=Hypoxia.NONE,
            ice_score=ICANS_ICE_SCORES.get(day, 10) if icans else 10,
            consciousness=Consciousness.NORMAL,
            seizure=Seizure.NONE,
            motor_weakness=MotorWeakness.NONE,
            cerebral_edema=CerebralEdema.NONE,
            tocilizumab_given=False,
            corticosteroids_given=icans and day in ICANS_ICE_SCORES,
        )
        seeder.act(
            _center_user(subject, "coordinator"),
            subject,
            moment,
            partial(_assessment_record, seeder.protocol, subject, assessed_on, inputs),
        )


def _assessment_record(
    protocol: Protocol, subject: Subject, assessed_on: date, inputs: AssessmentInputs, actor: Actor, _: User
) -> Any:
    return toxicity_services.toxicity_assessment_record(
        actor=actor, subject=subject, protocol=protocol, assessed_on=assessed_on, inputs=inputs
    )


def _ae_record(protocol: Protocol, subject: Subject, data: AdverseEventData, actor: Actor, _: User) -> AdverseEvent:
    return safety_services.adverse_event_record(actor=actor, subject=subject, protocol=protocol, data=data)


def _relatedness(
    subject: Subject, ae: AdverseEvent, cart: Relatedness, lymphodepletion: Relatedness, actor: Actor, user: User
) -> AdverseEvent:
    return safety_services.relatedness_assess(
        actor=actor,
        user=user,
        subject=subject,
        ae=ae,
        cart=cart,
        lymphodepletion=lymphodepletion,
        password=DEMO_PASSWORD,
    )


def _episode_adverse_event(
    seeder: CasebookSeeder, subject: Subject, term: str, grade: int, days: tuple[int, int], cart: Relatedness
) -> None:
    """The episode recorded as an AE the day after it resolved; the investigator assesses it the next morning."""
    infused_on = subject.infusion_date
    assert infused_on is not None
    start, end = (infused_on + timedelta(days=d) for d in days)
    recorded_at = seeder.evening(subject, end + timedelta(days=1), hour=20)
    if recorded_at >= seeder.today - timedelta(hours=14):
        return  # not resolved yet: the centre records it once the episode is over
    data = AdverseEventData(
        term=term,
        grade=grade,
        start_date=start,
        end_date=end,
        serious=False,
        seriousness_criteria=frozenset(),
        awareness_at=None,
        action=ActionTaken.TREATMENT,
        outcome=Outcome.RECOVERED,
    )
    ae = seeder.act(
        _center_user(subject, "coordinator"), subject, recorded_at, partial(_ae_record, seeder.protocol, subject, data)
    )
    seeder.act(
        _center_user(subject, "investigator"),
        subject,
        recorded_at + timedelta(hours=13),
        partial(_relatedness, subject, ae, cart, Relatedness.UNLIKELY),
    )


def _febrile_neutropenia(seeder: CasebookSeeder, subject: Subject) -> None:
    """The SAE and its reporting clock: initial, follow-up and final reports, each on time."""
    infused_on = subject.infusion_date
    assert infused_on is not None
    onset, end = (infused_on + timedelta(days=d) for d in FEBRILE_NEUTROPENIA_DAYS)
    coordinator = _center_user(subject, "coordinator")
    # Admitted in the evening with 38.6 °C and neutrophils below 0.5 × 10⁹/L; the site knows at 21:00.
    aware = seeder.evening(subject, onset, hour=21)
    data = AdverseEventData(
        term="febrile_neutropenia",
        grade=3,
        start_date=onset,
        end_date=None,
        serious=True,
        seriousness_criteria=frozenset({Seriousness.HOSPITALISATION}),
        awareness_at=aware,
        action=ActionTaken.HOSPITALISATION,
        outcome=Outcome.NOT_RECOVERED,
    )
    ae = seeder.act(
        coordinator,
        subject,
        aware + timedelta(hours=1, minutes=30),
        partial(_ae_record, seeder.protocol, subject, data),
    )
    initial_sent = aware + timedelta(hours=13, minutes=30)
    _sae_report(seeder, subject, ae, ReportKind.INITIAL, initial_sent)
    seeder.act(
        _center_user(subject, "investigator"),
        subject,
        initial_sent + timedelta(hours=2),
        partial(_relatedness, subject, ae, Relatedness.POSSIBLE, Relatedness.PROBABLE),
    )
    _sae_report(seeder, subject, ae, ReportKind.FOLLOW_UP, initial_sent + timedelta(days=4))
    # Apyrexial and neutrophils back above 1 × 10⁹/L: home on D24; the outcome put right with its reason.
    recovered_at = seeder.evening(subject, end + timedelta(days=1), hour=10)
    seeder.act(
        coordinator,
        subject,
        recovered_at,
        lambda actor, _: safety_services.adverse_event_correct(
            actor=actor,
            subject=subject,
            protocol=seeder.protocol,
            ae=ae,
            changes={"outcome": Outcome.RECOVERED, "end_date": end},
            reason="Apyrexie et neutrophiles > 1 G/L : sortie d'hospitalisation à J24.",
        ),
    )
    _sae_report(seeder, subject, ae, ReportKind.FINAL, recovered_at + timedelta(hours=1))


def _sae_report(seeder: CasebookSeeder, subject: Subject, ae: AdverseEvent, kind: ReportKind, sent: datetime) -> None:
    """The coordinator records a report sent to the sponsor a few minutes after sending it."""
    seeder.act(
        _center_user(subject, "coordinator"),
        subject,
        sent + timedelta(minutes=15),
        lambda actor, _: safety_services.sae_report_record(
            actor=actor, subject=subject, ae=AdverseEvent.objects.get(pk=ae.pk), kind=kind, sent_at=sent
        ),
    )


def _neutropenia_from_labs(seeder: CasebookSeeder, subject: Subject) -> None:
    """The first neutropenia episode of the blood counts (the week-1 nadir), accepted as one AE as the
    page proposes it, the evening after the blood count that ends it (or its last one, if ongoing)."""
    proposal = next(
        (
            p
            for p in lab_grade_proposals(subject, seeder.protocol)
            if p.term == "neutrophil_count_decreased" and p.grade >= 2
        ),
        None,
    )
    if proposal is None:
        return
    seen_on = proposal.end or proposal.grades[-1].lab.sampled_on
    accepted_at = seeder.evening(subject, seen_on + timedelta(days=1), hour=18)
    if accepted_at >= seeder.today - timedelta(minutes=30):
        return
    record_id, item = proposal.lab.source
    seeder.act(
        _center_user(subject, "coordinator"),
        subject,
        accepted_at,
        lambda actor, _: safety_services.lab_proposal_accept(
            actor=actor, subject=subject, protocol=seeder.protocol, record_id=record_id, item=item
        ),
    )


def _headache(seeder: CasebookSeeder, subject: Subject) -> None:
    """A grade 1 headache on D1, gone the next day, recorded at the D2 visit."""
    infused_on = subject.infusion_date
    assert infused_on is not None
    recorded_at = seeder.evening(subject, infused_on + timedelta(days=2), hour=18)
    if recorded_at >= seeder.today - timedelta(minutes=30):
        return
    data = AdverseEventData(
        term="headache",
        grade=1,
        start_date=infused_on + timedelta(days=1),
        end_date=infused_on + timedelta(days=2),
        serious=False,
        seriousness_criteria=frozenset(),
        awareness_at=None,
        action=ActionTaken.NONE,
        outcome=Outcome.RECOVERED,
    )
    seeder.act(
        _center_user(subject, "coordinator"), subject, recorded_at, partial(_ae_record, seeder.protocol, subject, data)
    )
