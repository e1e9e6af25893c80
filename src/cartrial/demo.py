"""The demo trial: the situation announced by the Bordeaux center, plus synthetic patients elsewhere.

Bordeaux (RESO) has included its first patient and has a second in screening. Every other
center holds synthetic patients at each later stage of the pathway, so that every page shows
something. Everything is built through the real services, with the clock moved back so dates
look like a trial that started in early 2025. All demo patients are marked synthetic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import api_token_create, membership_grant, user_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical import services as clinical_services
from cartrial.apps.clinical.services import LabObservationInput
from cartrial.apps.logistics import services as logistics_services
from cartrial.apps.pathway.steps import step_perform
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import IdentityInput
from cartrial.apps.trial.models import Center
from cartrial.apps.trial.services import center_create, protocol_register
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action, Role
from cartrial.protocols import Protocol

DEMO_PASSWORD = "cartrial-demo-2026"

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
    State.WITHDRAWN: 123.4,
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
        user = user_create(actor=system, username=username, password=DEMO_PASSWORD, first_name=first, last_name=last)
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
                lambda: (
                    self._screen(cd3_per_ul=650.0),
                    self.step(f"{p}.investigator", Step.CONFIRM_ELIGIBILITY, 0.1),
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
                lambda: (
                    self.at("lab.manufacturing", 0.9, self._receive_at_lab),
                    self.step("lab.manufacturing", Step.START_MANUFACTURING, 0.1),
                ),
            ),
            (
                State.PRODUCT_RELEASED,
                lambda: (
                    self.at("lab.manufacturing", 13.5 + self.spread_days, self._record_qc),
                    self.step(
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
                lambda: (
                    self._screen(cd3_per_ul=80.0),
                    self.step(
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
                lambda: (
                    self.at("lab.manufacturing", 11.5, lambda a, u, m: self._record_qc(a, u, m, viability="55")),
                    self.step(
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
            self.step(f"{p}.investigator", Step.WITHDRAW, 60, reason="Décision de la patiente (synthétique)")
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
        seed_deviations_demo(protocol, users, today)
    return DemoWorld(centers=centers, users=users, api_token=token)


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
        for name, value in departures.get(State(subject.state), {}).items():
            columns[name] = np.array([value])
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
