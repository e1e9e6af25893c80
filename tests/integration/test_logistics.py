"""Chain of identity, custody and condition against the database: records, refusals, deviations, pages, API.

Every refusal case checks three things: the reason is given, nothing is half-written (state,
records and signatures unchanged), and the attempt is recorded (audit entry, deviation for scans).
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from cartrial.apps import clock
from cartrial.apps.accounts.models import ElectronicSignature
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.logistics import services as logistics
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    CustodyRecord,
    Deviation,
    Infusion,
    ManufacturingBatch,
    Shipment,
    TemperatureLog,
)
from cartrial.apps.logistics.selectors import subject_logistics
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD, logger_csv
from cartrial.domain.bedside import BedsideScan, IdentityMismatch, bedside_mismatches
from cartrial.domain.custody import CustodyEvent, CustodyRefused, CustodyScanMismatch, check_custody_chain
from cartrial.domain.errors import DomainError
from cartrial.domain.identity import parse_identifier
from cartrial.domain.manufacturing import BatchStatus, FailureBranch
from cartrial.domain.pathway import State, Step, TransitionRefused
from cartrial.domain.roles import Action, Role
from cartrial.locale import render

pytestmark = pytest.mark.django_db


def _subject_logistics(subject: Subject):  # type: ignore[no-untyped-def]
    from cartrial.apps.trial.protocol import protocol_in_force

    return subject_logistics(subject, protocol_in_force())


def _coi_scan(subject: Subject) -> str:
    return logistics.coi_of(ChainOfIdentity.objects.get(subject=subject)).barcode_data()


def _snapshot(subject: Subject) -> tuple:
    return (
        Subject.objects.get(pk=subject.pk).state,
        PathwayEvent.objects.filter(subject=subject).count(),
        CustodyRecord.objects.filter(subject=subject).count(),
        Shipment.objects.filter(subject=subject).count(),
        ManufacturingBatch.objects.filter(subject=subject).count(),
        list(ManufacturingBatch.objects.filter(subject=subject).values_list("status", flat=True)),
        TemperatureLog.objects.filter(shipment__subject=subject).count(),
        Infusion.objects.filter(batch__subject=subject).count(),
        ElectronicSignature.objects.count(),
    )


# --- the whole chain ---------------------------------------------------------------------------


def test_infused_subject_has_an_unbroken_chain_from_collection_to_patient(world) -> None:
    subject = world.new_subject("STR", State.INFUSED)
    coi = ChainOfIdentity.objects.get(subject=subject)
    collection = Collection.objects.get(subject=subject)
    # The CoI is allocated before the first apheresis; the collection has its own valid DIN.
    assert coi.allocated_at < collection.started_at
    assert parse_identifier(coi.content + coi.check_character).content == coi.content
    assert parse_identifier(collection.din + collection.check_character).content == collection.din
    assert collection.volume_ml == 210.0 and collection.cd3_cells_e9 == 4.2 and collection.tnc_e9 == 18.5
    # Custody: collection → courier → lab for the material; lab → courier → pharmacy → bedside → patient.
    records = list(CustodyRecord.objects.filter(subject=subject).order_by("pk"))
    material = [r for r in records if r.item_id.startswith("material")]
    product = [r for r in records if r.item_id.startswith("product")]
    holders = [r.to_holder for r in material]
    assert (
        holders[0] == "STR · apheresis unit"
        and holders[1].startswith("courier ")
        and holders[2] == "LAB · manufacturing"
    )
    assert [r.to_holder for r in product][-3:] == ["STR · pharmacy", "STR · bedside", f"patient {subject.code}"]
    events = [
        CustodyEvent(r.item_id, r.from_holder, r.to_holder, r.actor.username, r.at, r.location, r.scanned_code)
        for r in records
    ]
    expected = {
        material[0].item_id: logistics.din_of(collection),
        product[0].item_id: logistics.coi_of(coi),
    }
    positions = check_custody_chain(events, expected=expected)
    assert positions[product[0].item_id].holder == f"patient {subject.code}"
    # Batch released by the QP's e-signature, received, thawed, infused after a two-person check.
    batch = ManufacturingBatch.objects.get(subject=subject)
    assert batch.status == BatchStatus.RELEASED and batch.release_signature is not None
    assert batch.release_signature.signer == world.users["lab.manufacturing"]
    infusion = Infusion.objects.get(batch=batch)
    assert infusion.first_checker != infusion.second_checker
    assert 0 < infusion.minutes_from_thaw <= 30
    # Both shipments carry a temperature log without excursion; the facts come from the records.
    assert TemperatureLog.objects.filter(shipment__subject=subject).count() == 2
    assert not Deviation.objects.filter(subject=subject).exists()
    stored = Subject.objects.get(pk=subject.pk)
    assert not hasattr(stored, "product_received") and not hasattr(stored, "qc_passed")  # facts come from the records
    assert audit_verify().intact


def test_coi_allocation_is_unique_and_sequential(world) -> None:
    first = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    second = world.new_subject("LIL", State.APHERESIS_SCHEDULED)
    a, b = (ChainOfIdentity.objects.get(subject=s).content for s in (first, second))
    assert a != b and a[:9] == b[:9] and int(b[-6:]) == int(a[-6:]) + 1
    assert AuditEntry.objects.filter(subject_code=first.code, event="logistics.coi_allocated").count() == 1


# --- bad input: refused with the reason, nothing half-written, the attempt recorded -------------


def test_wrong_check_character_at_hand_over_is_refused_and_a_deviation(world) -> None:
    subject = world.new_subject("LIL", State.APHERESIS_COLLECTED)
    collection = Collection.objects.get(subject=subject)
    good = collection.din + collection.check_character
    wrong_k = "1" if collection.check_character != "1" else "2"
    before = _snapshot(subject)
    now = clock.now()
    with pytest.raises(CustodyScanMismatch) as refused:
        world.step(
            "lil.apheresis",
            subject,
            Step.SHIP_MATERIAL,
            courier="C",
            shipper_id="S1",
            condition="fresh",
            planned_departure_at=now,
            planned_arrival_at=now + timedelta(hours=20),
            scanned_code=good[:-1] + wrong_k,
        )
    assert "Contrôle d'identité" in render(refused.value.message, "fr")
    assert _snapshot(subject) == before
    deviation = Deviation.objects.get(subject=subject)
    assert (deviation.kind, deviation.code, deviation.step) == ("scan_mismatch", "scan_unreadable", "ship_material")
    assert deviation.expected == collection.din
    assert AuditEntry.objects.filter(subject_code=subject.code, event="pathway.step_refused").count() == 1
    assert AuditEntry.objects.filter(subject_code=subject.code, event="logistics.deviation_opened").count() == 1


def test_scan_of_another_patients_bag_is_refused_at_the_pharmacy(world) -> None:
    subject = world.new_subject("PAR", State.PRODUCT_SHIPPED)
    other = world.new_subject("PAR", State.PRODUCT_SHIPPED)
    before = _snapshot(subject)
    with pytest.raises(CustodyScanMismatch):
        world.step(
            "par.pharmacist", subject, Step.RECEIVE_PRODUCT, scanned_code=_coi_scan(other), storage_location="cuve 1"
        )
    assert _snapshot(subject) == before
    deviation = Deviation.objects.get(subject=subject)
    assert deviation.code == "scan_other_identifier"
    assert deviation.scanned == _coi_scan(other)
    # The right bag is then accepted.
    world.step(
        "par.pharmacist", subject, Step.RECEIVE_PRODUCT, scanned_code=_coi_scan(subject), storage_location="cuve 1"
    )
    assert Subject.objects.get(pk=subject.pk).state == State.PRODUCT_RECEIVED.value


def test_hand_over_out_of_order_is_refused(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    before = _snapshot(subject)
    with pytest.raises(CustodyRefused) as refused:
        world.act(
            "lab.manufacturing",
            subject,
            Action.RECEIVE_MATERIAL,
            scanned_code=shipment.collection.din + shipment.collection.check_character,
            received_at=shipment.actual_departure_at - timedelta(hours=1),
        )
    assert refused.value.code == "custody_out_of_order"
    assert _snapshot(subject) == before
    refusal = AuditEntry.objects.get(subject_code=subject.code, event="logistics.refused")
    assert "custody_out_of_order" in refusal.changes_json


def test_custody_gap_fork_and_not_held_are_refused_by_the_service(world) -> None:
    """Hand-overs that would break the chain never reach the database."""
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    collection = Collection.objects.get(subject=subject)
    kwargs = {
        "actor": world.actor("lab.manufacturing"),
        "subject": subject,
        "item_id": logistics.material_item_id(collection),
        "expected": logistics.din_of(collection),
        "location": "LAB",
        "scanned_code": collection.din + collection.check_character,
        "step": "test",
    }
    count = CustodyRecord.objects.count()
    for from_holder, code in (
        ("LIL · apheresis unit", "custody_fork"),  # already handed to the courier
        ("somebody else", "custody_gap"),
        (None, "custody_fork"),  # a second receipt at collection
    ):
        with pytest.raises(CustodyRefused) as refused:
            logistics._hand_over(from_holder=from_holder, to_holder="LAB · manufacturing", at=clock.now(), **kwargs)
        assert refused.value.code == code
    other = {**kwargs, "item_id": "material A999800000000"}
    with pytest.raises(CustodyRefused) as refused:
        logistics._hand_over(from_holder="X", to_holder="Y", at=clock.now(), **other)
    assert refused.value.code == "custody_not_held"
    assert CustodyRecord.objects.count() == count


CSV_BROKEN = "time;temperature\n2026-11-20T10:00:00Z;4,5\n2026-11-20T10:15:00Z;4,7\nnot a line\n"


def test_temperature_file_with_broken_line_is_refused_whole_with_its_line_number(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    with pytest.raises(DomainError) as refused:
        world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=CSV_BROKEN.encode(),
            logger_time_zone="Europe/Paris",
        )
    french = render(refused.value.message, "fr")
    assert "Ligne 4" in french and "rien n'est importé" in french
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()
    refusal = AuditEntry.objects.get(subject_code=subject.code, event="logistics.refused")
    assert "Line 4" in refusal.changes_json


def test_temperature_excursion_is_measured_and_opens_a_deviation(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    end = shipment.actual_departure_at + timedelta(hours=6)
    log = world.act(
        "lil.apheresis",
        subject,
        Action.IMPORT_TEMPERATURE_LOG,
        shipment=shipment.pk,
        file=logger_csv(shipment.actual_departure_at, end, low_c=3.0, high_c=6.0, fresh=True, excursion_c=11.5),
        logger_time_zone="UTC",
    )
    import json

    excursions = json.loads(log.excursions_json)
    assert len(excursions) == 1
    # Three readings 15 min apart at 11.5 °C, held until the next in-range reading: 45 min, 3.5 °C above 8 °C.
    assert excursions[0]["side"] == "above_max"
    assert excursions[0]["worst_deviation_c"] == 3.5 and excursions[0]["duration_min"] == 45.0
    deviation = Deviation.objects.get(subject=subject, kind="temperature_excursion")
    assert "3.5 °C" in deviation.message and "45 min" in deviation.message


def test_release_without_qc_is_refused_and_nothing_is_signed(world) -> None:
    subject = world.new_subject("PAR", State.MANUFACTURING)
    before = _snapshot(subject)
    with pytest.raises(TransitionRefused) as refused:
        world.step(
            "lab.manufacturing", subject, Step.RELEASE_PRODUCT, password=DEMO_PASSWORD, bag_code=_coi_scan(subject)
        )
    assert refused.value.code == "qc_not_passed" and "contrôle qualité" in render(refused.value.message, "fr")
    assert _snapshot(subject) == before
    assert AuditEntry.objects.filter(subject_code=subject.code, event="pathway.step_refused").count() == 1


def _qc(world, subject: Subject, **values: str) -> None:  # type: ignore[no-untyped-def]
    base = {
        "viability": "85",
        "car_expression": "30",
        "vector_copy_number": "2",
        "endotoxin": "0.5",
        "sterility": "negative",
        "mycoplasma": "negative",
    }
    for code, value in {**base, **values}.items():
        world.act("lab.manufacturing", subject, Action.RECORD_QC, test_code=code, value=value)


def test_out_of_specification_product_released_only_under_a_signed_exception(world) -> None:
    subject = world.new_subject("PAR", State.MANUFACTURING)
    _qc(world, subject, viability="62")
    batch = ManufacturingBatch.objects.get(subject=subject)
    assert batch.status == BatchStatus.OUT_OF_SPECIFICATION
    with pytest.raises(TransitionRefused):
        world.step(
            "lab.manufacturing", subject, Step.RELEASE_PRODUCT, password=DEMO_PASSWORD, bag_code=_coi_scan(subject)
        )
    # The investigator documents the exception (wrong password first: refused and recorded).
    with pytest.raises(Exception) as wrong:
        world.act(
            "par.investigator",
            subject,
            Action.DOCUMENT_OOS_EXCEPTION,
            password="nope",
            justification="Viability-only OOS; no alternative (CIBMTR 2020).",
        )
    assert getattr(wrong.value, "code", "") == "wrong_password"
    assert AuditEntry.objects.filter(subject_code=subject.code, event="signature.failed").count() == 1
    world.act(
        "par.investigator",
        subject,
        Action.DOCUMENT_OOS_EXCEPTION,
        password=DEMO_PASSWORD,
        justification="Viability-only OOS; no alternative (CIBMTR 2020).",
    )
    world.step("lab.manufacturing", subject, Step.RELEASE_PRODUCT, password=DEMO_PASSWORD, bag_code=_coi_scan(subject))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RELEASED and batch.released_under_exception
    assert batch.branch == FailureBranch.OOS_EXCEPTION


def test_failure_branches_remanufacture_re_apheresis_and_no_infusion(world) -> None:
    subject = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    failed = ManufacturingBatch.objects.get(subject=subject)
    assert failed.status == BatchStatus.OUT_OF_SPECIFICATION and failed.failure_reason
    world.step("lab.manufacturing", subject, Step.REMANUFACTURE, reason="Material left: 2nd run")
    second = ManufacturingBatch.objects.get(subject=subject, number=2)
    failed.refresh_from_db()
    assert failed.branch == FailureBranch.REMANUFACTURE and second.collection_id == failed.collection_id
    assert second.status == BatchStatus.IN_PRODUCTION
    # Second failure, then re-apheresis: a new collection with a new DIN under the same CoI.
    world.step("lab.manufacturing", subject, Step.FAIL_MANUFACTURING, reason="No expansion")
    world.step(
        "par.coordinator",
        subject,
        Step.REPEAT_APHERESIS,
        apheresis_date=clock.now().date() + timedelta(days=3),
        reason="New collection",
    )
    second.refresh_from_db()
    assert second.branch == FailureBranch.RE_APHERESIS
    now = clock.now()
    world.step(
        "par.apheresis",
        subject,
        Step.COLLECT_APHERESIS,
        started_at=now - timedelta(hours=4),
        ended_at=now - timedelta(hours=1),
        volume_ml=180.0,
    )
    collections = list(Collection.objects.filter(subject=subject).order_by("number"))
    assert len(collections) == 2 and collections[0].din != collections[1].din
    assert collections[0].coi_id == collections[1].coi_id
    # ...followed to its end: the new material travels, a third batch is made from it and released.
    new = collections[1]
    world.step(
        "par.apheresis",
        subject,
        Step.SHIP_MATERIAL,
        courier="C",
        shipper_id="S2",
        condition="fresh",
        planned_departure_at=now,
        planned_arrival_at=now + timedelta(hours=20),
        scanned_code=logistics.din_of(new).barcode_data(),
    )
    with pytest.raises(TransitionRefused) as refused:  # the lab has not scanned the new material in yet
        world.step("lab.manufacturing", subject, Step.START_MANUFACTURING)
    assert refused.value.code == "material_not_received"
    with clock.frozen_at(now + timedelta(minutes=2)):
        world.act(
            "lab.manufacturing",
            subject,
            Action.RECEIVE_MATERIAL,
            scanned_code=new.din + new.check_character,
            received_at=now + timedelta(minutes=1),
        )
    world.step("lab.manufacturing", subject, Step.START_MANUFACTURING)
    third = ManufacturingBatch.objects.get(subject=subject, number=3)
    assert third.collection_id == new.pk and third.status == BatchStatus.IN_PRODUCTION
    _qc(world, subject)
    world.step("lab.manufacturing", subject, Step.RELEASE_PRODUCT, password=DEMO_PASSWORD, bag_code=_coi_scan(subject))
    third.refresh_from_db()
    assert third.status == BatchStatus.RELEASED and not third.released_under_exception
    assert [b.branch for b in ManufacturingBatch.objects.filter(subject=subject).order_by("number")] == [
        FailureBranch.REMANUFACTURE,
        FailureBranch.RE_APHERESIS,
        "",
    ]


def test_no_infusion_decision_ends_the_pathway_with_the_batch_decision(world) -> None:
    subject = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    world.step("par.investigator", subject, Action.DECIDE_NO_INFUSION, reason="Patient prefers to stop")
    subject.refresh_from_db()
    assert subject.state == State.WITHDRAWN.value
    assert ManufacturingBatch.objects.get(subject=subject).branch == FailureBranch.NO_INFUSION


def _ship_product(world, subject: Subject, *, arrival_hours: float, confirmed: bool) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    world.step(
        "lab.manufacturing",
        subject,
        Step.SHIP_PRODUCT,
        courier="Cryo",
        shipper_id="DS-1",
        planned_departure_at=now,
        planned_arrival_at=now + timedelta(hours=arrival_hours),
        arrival_confirmed=confirmed,
        scanned_code=_coi_scan(subject),
    )


@pytest.mark.parametrize(
    ("arrival_hours", "confirmed", "allowed"), [(20, True, True), (20, False, False), (24 * 9, True, False)]
)
def test_lymphodepletion_gate_on_product_in_transit(world, arrival_hours, confirmed, allowed) -> None:
    subject = world.new_subject("PAR", State.PRODUCT_RELEASED)
    with clock.frozen_at(clock.now()):
        _ship_product(world, subject, arrival_hours=arrival_hours, confirmed=confirmed)
        planned_d0 = clock.now().date() + timedelta(days=5)
        if allowed:
            world.step("par.investigator", subject, Step.START_LYMPHODEPLETION, planned_infusion_date=planned_d0)
            assert Subject.objects.get(pk=subject.pk).state == State.LYMPHODEPLETION.value
        else:
            with pytest.raises(TransitionRefused) as refused:
                world.step("par.investigator", subject, Step.START_LYMPHODEPLETION, planned_infusion_date=planned_d0)
            assert refused.value.code == "product_not_available"


def _bedside(world, subject: Subject, bag: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return world.step(
        "str.investigator",
        subject,
        Step.INFUSE,
        infused_on=clock.now().astimezone(ZoneInfo(subject.center.time_zone)).date(),
        password=DEMO_PASSWORD,
        bag_code=_coi_scan(subject),
        wristband_code=subject.code,
        second_username="str.pharmacist",
        second_password=DEMO_PASSWORD,
        second_bag_code=bag,
        second_wristband_code=subject.code,
    )


def _thaw(world, subject: Subject) -> None:  # type: ignore[no-untyped-def]
    world.act("str.pharmacist", subject, Action.THAW, scanned_code=_coi_scan(subject))


def test_bedside_check_with_another_patients_bag_is_a_hard_stop_then_the_right_bag_infuses(world) -> None:
    subject = world.new_subject("STR", State.LYMPHODEPLETION)
    other = world.new_subject("STR", State.LYMPHODEPLETION)
    with clock.frozen_at(clock.now()):
        _thaw(world, subject)
        clock.advance(timedelta(minutes=10))
        before = _snapshot(subject)
        with pytest.raises(IdentityMismatch) as refused:
            _bedside(world, subject, _coi_scan(other))
        assert "Discordance d'identité" in render(refused.value.message, "fr")
        assert _snapshot(subject) == before
        deviation = Deviation.objects.get(subject=subject, kind="bedside_mismatch")
        assert _coi_scan(other) in deviation.scanned
        _bedside(world, subject, _coi_scan(subject))
    assert Subject.objects.get(pk=subject.pk).state == State.INFUSED.value
    infusion = Infusion.objects.get(batch__subject=subject)
    assert round(infusion.minutes_from_thaw) == 10


def test_infusion_refused_without_thaw_and_beyond_the_thaw_limit(world) -> None:
    subject = world.new_subject("STR", State.LYMPHODEPLETION)
    with clock.frozen_at(clock.now()):
        with pytest.raises(TransitionRefused) as refused:
            _bedside(world, subject, _coi_scan(subject))
        assert refused.value.code == "product_not_thawed"
        _thaw(world, subject)
        clock.advance(timedelta(minutes=31))
        with pytest.raises(TransitionRefused) as refused:
            _bedside(world, subject, _coi_scan(subject))
        assert refused.value.code == "thaw_limit_exceeded" and "30 min" in render(refused.value.message, "fr")
    assert not Infusion.objects.filter(batch__subject=subject).exists()
    # A thawed product is never refrozen nor thawed twice.
    with pytest.raises(DomainError) as again:
        _thaw(world, subject)
    assert again.value.code == "already_thawed"


# --- pages and API by role ---------------------------------------------------------------------


def test_each_role_reaches_the_logistics_pages_of_its_scope(world) -> None:
    subject = world.new_subject("STR", State.INFUSED)
    for username in ("str.apheresis", "str.pharmacist", "str.coordinator", "str.investigator", "lab.manufacturing"):
        client = world.client_for(username)
        page = client.get(f"/logistics/subjects/{subject.code}/")
        assert page.status_code == 200, username
        body = page.content.decode()
        assert "cartrial/vendor/plotly.min.js" in body
        # Every script and style sheet comes from this server (no CDN: hospital networks are closed).
        assert not re.search(r"""<(?:script|link)[^>]+(?:src|href)=["'](?:https?:)?//""", body)
        assert _subject_logistics(subject).coi.content in body.replace(" ", "")
        assert client.get("/logistics/").status_code == 200
    # Another center's staff cannot see it: 404, as if absent.
    assert world.client_for("bdx.pharmacist").get(f"/logistics/subjects/{subject.code}/").status_code == 404


def test_labels_pdf_for_center_staff_and_lab_not_for_sponsor(world) -> None:
    subject = world.new_subject("STR", State.PRODUCT_RECEIVED)
    response = world.client_for("str.pharmacist").get(f"/logistics/subjects/{subject.code}/labels.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    from cartrial.apps.logistics.presenters import label_specs

    specs = label_specs(_subject_logistics(subject), world.protocol, "fr")
    coi = ChainOfIdentity.objects.get(subject=subject)
    assert specs[0].eye_readable.check_character == coi.check_character
    assert parse_identifier(specs[0].barcode_data).content == coi.content
    din = Collection.objects.get(subject=subject)
    assert parse_identifier(specs[1].barcode_data).content == din.din  # flags checked by the parser
    assert len(specs) == 4  # product bag, collection bag, two tubes


def test_lab_records_receipt_and_qc_through_the_api_pharmacist_cannot(world) -> None:
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    collection = Collection.objects.get(subject=subject)

    def api(username: str):  # type: ignore[no-untyped-def]
        from django.test import Client

        token = api_token_create(actor=Actor.system(), user=world.users[username], label="t")
        return Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    lab = api("lab.manufacturing")
    url = f"/api/v1/logistics/subjects/{subject.code}/actions"
    bad = lab.post(
        f"{url}/receive_material", {"data": {"scanned_code": collection.din + "0"}}, content_type="application/json"
    )
    assert bad.status_code == 409 and bad.json()["code"] == "custody_scan_mismatch"
    ok = lab.post(
        f"{url}/receive_material",
        {"data": {"scanned_code": collection.din + collection.check_character}},
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.content
    pharmacist = api("lil.pharmacist")
    denied = pharmacist.post(
        f"{url}/record_qc", {"data": {"test_code": "viability", "value": "80"}}, content_type="application/json"
    )
    assert denied.status_code == 403
    detail = lab.get(f"/api/v1/logistics/subjects/{subject.code}").json()
    assert detail["collections"][0]["din"] == collection.din
    assert detail["custody"][-1]["to"] == "LAB · manufacturing"
    # The refused scan, and the transit time: this fixture's collection ended ~900 days before receipt (> 72 h).
    assert [d["code"] for d in detail["deviations"]] == ["scan_unreadable", "transit_time_exceeded"]
    assert "72 h limit of APHERESIS_FRESH" in detail["deviations"][1]["message"]
    assert api("bdx.pharmacist").get(f"/api/v1/logistics/subjects/{subject.code}").status_code == 404


def test_temperature_log_import_through_the_api_refuses_garbage_with_the_line(world) -> None:
    from django.test import Client

    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    token = api_token_create(actor=Actor.system(), user=world.users["lil.apheresis"], label="t")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="en")
    url = f"/api/v1/logistics/subjects/{subject.code}/temperature-logs"
    body = {"shipment": shipment.pk, "csv": CSV_BROKEN, "logger_time_zone": "Europe/Paris"}
    refused = client.post(url, body, content_type="application/json")
    # A file that cannot be read is invalid input: 422, as every refused input of the API.
    assert refused.status_code == 422 and "Line 4" in refused.json()["message"]
    good = "time;temperature\n2026-11-20T10:00:00Z;4,5\n2026-11-20T10:15:00Z;9,5\n2026-11-20T10:30:00Z;5,0\n"
    accepted = client.post(url, {**body, "csv": good}, content_type="application/json")
    assert accepted.status_code == 200
    logs = client.get(f"/api/v1/logistics/subjects/{subject.code}").json()["shipments"][0]["temperature_logs"]
    assert logs[0]["excursions"][0]["worst_deviation_c"] == 1.5 and logs[0]["excursions"][0]["duration_min"] == 15.0


def test_vein_to_vein_dashboard_and_api(world) -> None:
    for _ in range(2):
        world.new_subject("STR", State.INFUSED)
    page = world.client_for("str.coordinator").get("/logistics/")
    assert page.status_code == 200 and 'data-testid="v2v-table"' in page.content.decode()
    from django.test import Client

    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system(), user=world.users["str.coordinator"], label="t")
    data = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/logistics/vein-to-vein").json()
    row = data["centers"]["STR"]["apheresis_to_infusion"]
    assert row["n"] == 2 and row["min"] <= row["median"] <= row["max"]
    subjects = data["subjects"]
    assert all(
        s["apheresis_to_infusion"] == pytest.approx(s["apheresis_to_release"] + s["release_to_infusion"])
        for s in subjects
    )


# --- access: every logistics action × every role, on pages; out of scope is 404 -------------------

ROLE_USERS = {
    "investigator": "str.investigator",
    "coordinator": "str.coordinator",
    "apheresis": "str.apheresis",
    "pharmacist": "str.pharmacist",
    "manufacturing": "lab.manufacturing",
    "monitor": "cra.monitor",
    "data_manager": "dm.datamanager",
    "sponsor_admin": "sponsor.admin",
}


@pytest.mark.parametrize(
    "action", ["receive_material", "record_qc", "document_oos_exception", "decide_no_infusion", "thaw"]
)
def test_only_the_roles_of_an_action_may_post_it(world, action: str) -> None:
    from cartrial.domain.roles import roles_for

    subject = world.new_subject("STR", State.MATERIAL_SHIPPED)
    allowed = roles_for(Action(action))
    for role, username in ROLE_USERS.items():
        if username == "cra.monitor":
            continue  # the monitor is assigned to BDX and LIL only: STR is out of scope (404, below)
        before = _snapshot(subject)
        response = world.client_for(username).post(_action_url(subject, action), {})
        if Role(role) in allowed:
            assert response.status_code in (302, 422), (role, response.status_code)  # the form or the service answers
        else:
            assert response.status_code == 403, (role, response.status_code)
            assert _snapshot(subject) == before
            assert AuditEntry.objects.filter(
                subject_code=subject.code, event="access.refused", actor_username=username
            ).exists()
    assert world.client_for("cra.monitor").post(_action_url(subject, action), {}).status_code == 404
    assert world.client_for("bdx.pharmacist").post(_action_url(subject, action), {}).status_code == 404


def _action_url(subject: Subject, action: str) -> str:
    """Where the page posts an action: the lab's and pharmacy's actions are the logistics page's; the
    "no infusion" decision withdraws the subject, so it is a step of the pathway's page."""
    if action == Action.DECIDE_NO_INFUSION.value:
        return f"/subjects/{subject.code}/steps/{action}/"
    return f"/logistics/subjects/{subject.code}/actions/{action}/"


def test_sponsor_reads_the_logistics_page_pseudonymously_and_cannot_print_labels(world) -> None:
    subject = world.new_subject("STR", State.PRODUCT_RECEIVED)
    client = world.client_for("sponsor.admin")
    page = client.get(f"/logistics/subjects/{subject.code}/")
    assert page.status_code == 200 and "Testpatient" not in page.content.decode()
    assert client.get(f"/logistics/subjects/{subject.code}/labels.pdf").status_code == 403


def test_dashboard_query_count_does_not_grow_with_the_number_of_subjects(world, django_assert_max_num_queries) -> None:
    """The dashboard reads worklists, milestones and deviations in a fixed number of queries."""
    client = world.client_for("str.coordinator")
    world.new_subject("STR", State.INFUSED)
    client.get("/logistics/")  # warm the session and the protocol
    with django_assert_max_num_queries(15) as few:  # 14 + the header's alert badge
        assert client.get("/logistics/").status_code == 200
    for _ in range(3):
        world.new_subject("STR", State.INFUSED)
    world.new_subject("STR", State.MANUFACTURING)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/logistics/").status_code == 200


HOLDERS = ["LIL · apheresis unit", "courier C · shipper S", "LAB · manufacturing", "LIL · pharmacy"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, *HOLDERS]),  # who hands over
            st.sampled_from(HOLDERS),  # to whom
            st.sampled_from(["barcode", "typed", "wrong_k", "other", "coi"]),  # what is scanned
            st.integers(-90, 240),  # minutes after the previous attempt
        ),
        min_size=1,
        max_size=8,
    )
)
def test_whatever_is_attempted_the_stored_chain_stays_valid_and_every_bad_scan_is_a_deviation(world, attempts) -> None:
    """Arbitrary hand-over attempts: what is stored is always one continuous, ordered, correctly scanned chain."""
    from django.db import transaction

    subject = world.new_subject("LIL", State.APHERESIS_COLLECTED)
    collection = Collection.objects.get(subject=subject)
    din = logistics.din_of(collection)
    item = f"material {collection.din}-{CustodyRecord.objects.count()}"  # a fresh item per example
    scans = {
        "barcode": din.barcode_data(),
        "typed": din.typed_form,
        "wrong_k": din.content + ("1" if din.check_character != "1" else "2"),
        "other": "A999818123456N",
        "coi": _coi_scan(subject),
    }
    deviations_before = Deviation.objects.filter(subject=subject).count()
    bad_scans = 0
    moment = clock.now() - timedelta(days=2)
    for from_holder, to_holder, scan, minutes in attempts:
        moment += timedelta(minutes=minutes)
        if from_holder == to_holder:
            continue  # not a hand-over (the domain refuses it as invalid input)
        try:
            with transaction.atomic():
                logistics._hand_over(
                    actor=world.actor("lil.apheresis"),
                    subject=subject,
                    item_id=item,
                    expected=din,
                    from_holder=from_holder,
                    to_holder=to_holder,
                    at=moment,
                    location="LIL",
                    scanned_code=scans[scan],
                    step="property",
                )
        except CustodyScanMismatch as refused:
            bad_scans += 1
            for record in refused.after_rollback:
                with transaction.atomic():
                    record()
        except DomainError:
            pass
    stored = list(CustodyRecord.objects.filter(item_id=item).order_by("pk"))
    # The chain's checks below need stored hand-overs: steer towards examples that store more of them.
    event(f"{len(stored)} hand-over(s) stored, {bad_scans} bad scan(s)")
    target(float(len(stored)), label="hand-overs stored")
    events = [
        CustodyEvent(r.item_id, r.from_holder, r.to_holder, r.actor.username, r.at, r.location, r.scanned_code)
        for r in stored
    ]
    if events:
        check_custody_chain(events, expected={item: din})  # raises if the stored chain were broken
        assert stored[0].from_holder is None
        assert all(a.at <= b.at for a, b in itertools.pairwise(stored))
    assert Deviation.objects.filter(subject=subject).count() - deviations_before == bad_scans


def test_an_oversized_temperature_file_is_refused_before_parsing(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    with pytest.raises(DomainError) as refused:
        world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=b"2026-11-20T10:00:00Z,4.5\n" * 250_000,
            logger_time_zone="UTC",
        )
    assert refused.value.code == "temperature_log_too_large"
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()


def test_logistics_pages_in_french_by_default_and_in_english(world) -> None:
    subject = world.new_subject("STR", State.PRODUCT_RECEIVED)
    client = world.client_for("str.pharmacist")
    french = client.get(f"/logistics/subjects/{subject.code}/").content.decode()
    for text in ("Chaîne de traçabilité", "Expéditions et température", "Relevé de température", "Lot 1"):
        assert text in french
    assert "Chain of custody" not in french
    client.cookies["django_language"] = "en"
    english = client.get(f"/logistics/subjects/{subject.code}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in ("Chain of custody", "Shipments and temperature", "Temperature log", "Batch 1"):
        assert text in english


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 6), min_size=4, max_size=4), st.lists(st.integers(0, 4), min_size=2, max_size=2))
def test_bedside_check_passes_only_when_both_people_scanned_the_right_bag_and_wristband(
    world, bag_picks, band_picks
) -> None:
    subject = _bedside_subject(world)
    coi = ChainOfIdentity.objects.get(subject=subject)
    collection = Collection.objects.get(subject=subject)
    k = coi.check_character
    bags = [  # (scanned, is this patient's bag)
        (_coi_scan(subject), True),
        (coi.content + k, True),
        (collection.din + collection.check_character, True),  # the DIN of the collection it was made from
        (coi.content + ("1" if k != "1" else "2"), False),  # wrong check character
        ("CHA999926999999" + logistics.coi_of(ChainOfIdentity(content="CHA999926999999")).check_character, False),
        (subject.code, False),  # the subject code is a wristband, not a bag label
        ("", False),
    ]
    bands = [
        (subject.code, True),
        (subject.code.lower(), True),
        (coi.content + k, True),
        ("STR-999", False),
        ("", False),
    ]
    first = (bags[bag_picks[0]], bands[band_picks[0]])
    second = (bags[bag_picks[1]], bands[band_picks[1]])
    scans = (
        BedsideScan("str.pharmacist", Role.PHARMACIST, first[0][0], first[1][0]),
        BedsideScan("str.investigator", Role.INVESTIGATOR, second[0][0], second[1][0]),
    )
    all_right = first[0][1] and first[1][1] and second[0][1] and second[1][1]
    found = bedside_mismatches(scans, subject_code=subject.code, coi=coi.content, din=collection.din)
    assert (found == []) is all_right


def _bedside_subject(world) -> Subject:  # type: ignore[no-untyped-def]
    """One subject per test (hypothesis runs the body many times with the same `world` fixture)."""
    if not hasattr(world, "bedside_subject"):
        world.bedside_subject = world.new_subject("STR", State.PRODUCT_RECEIVED)
    return world.bedside_subject  # type: ignore[no-any-return]
