"""Corrections of stored records with a reason (issue 8, item 6): lab results, logistics times,
pathway dates, signed records; what follows a correction; access; the history on pages and by API.

Every correction goes through the API or the page, as a user would (access entry point, one
transaction); each refusal checks that nothing changed.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.models import ElectronicSignature
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify, entry_changes
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology import selectors as biology_selectors
from cartrial.apps.biology.entries import KineticEntry
from cartrial.apps.biology.services import kinetic_observations_record
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.services import LabObservationInput, screening_record
from cartrial.apps.logistics.models import (
    Collection,
    CustodyRecord,
    Deviation,
    Infusion,
    ManufacturingBatch,
    ProductReceipt,
    Shipment,
)
from cartrial.apps.subjects.models import EligibilityAssessment, PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD, DEMO_SCREENING_DATA
from cartrial.domain.corrections import CORRECTION_MEANING
from cartrial.domain.pathway import State, Step

pytestmark = pytest.mark.django_db


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _correct(client: Client, subject: Subject, **body: Any) -> Any:
    return client.post(f"/api/v1/subjects/{subject.code}/corrections", body, content_type="application/json")


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


def _corrections(entity: str, entity_id: object) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event="record.corrected", entity=entity, entity_id=str(entity_id)))


def _kinetic_result(world: Any, subject: Subject, day: int, value: float = 12.5) -> LabObservation:
    zone = ZoneInfo(subject.center.time_zone)
    assert subject.infusion_date is not None
    sampled_at = datetime.combine(subject.infusion_date + timedelta(days=day), time(9), zone)
    with transaction.atomic():
        recorded = kinetic_observations_record(
            actor=world.actor(f"{subject.center.code.lower()}.coordinator"),
            subject=subject,
            entries=[KineticEntry("car_t", sampled_at, value, "cells/µL", 0.02)],
        )
    return recorded.recorded[0]


# --- lab results ----------------------------------------------------------------------------------


def test_a_lab_result_is_corrected_with_a_reason_and_the_old_value_stays_in_the_trail(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    client = _api(world, "bdx.coordinator")

    response = _correct(
        client, subject, record="lab_observation", id=str(result.pk), field="value", value=21.5, reason="Typo: 21.5"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["record"], body["id"], body["values"]["value"]) == ("lab_observation", str(result.pk), 21.5)
    result.refresh_from_db()
    assert result.value == 21.5
    (entry,) = _corrections("lab_observation", result.pk)
    assert entry_changes(entry)[0] == {"field": "value", "old": 12.5, "new": 21.5}
    assert (entry.reason, entry.actor_username, entry.subject_code) == ("Typo: 21.5", "bdx.coordinator", subject.code)


def test_a_lab_results_sample_time_is_corrected_and_its_day_follows(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    assert subject.infusion_date is not None
    day9 = f"{subject.infusion_date + timedelta(days=9):%Y-%m-%d} 10:15"

    response = _correct(
        _api(world, "bdx.investigator"),
        subject,
        record="lab_observation",
        id=str(result.pk),
        field="sampled_at",
        value=day9,
        reason="Sample labelled with the wrong day",
    )

    assert response.status_code == 200, response.content
    result.refresh_from_db()
    local = result.sampled_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.date() - subject.infusion_date).days == 9 and (local.hour, local.minute) == (10, 15)
    (row,) = [r for r in biology_selectors.subject_kinetic_rows(subject=subject) if r.pk == result.pk]
    assert row.day == 9
    (entry,) = _corrections("lab_observation", result.pk)
    assert entry_changes(entry)[0]["field"] == "sampled_at"


def test_a_correction_without_a_reason_is_refused_and_nothing_changes(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    client = _api(world, "bdx.coordinator")

    body = _error(
        _correct(client, subject, record="lab_observation", id=str(result.pk), field="value", value=30, reason=" "),
        422,
        "reason_required",
    )

    assert body["item"] == "reason"
    result.refresh_from_db()
    assert result.value == 12.5
    assert _corrections("lab_observation", result.pk) == []
    _error(
        _correct(client, subject, record="lab_observation", id=str(result.pk), field="value", value=12.5, reason="x"),
        422,
        "no_change",
    )


def test_a_corrected_value_passes_the_checks_of_a_new_value(world: Any) -> None:
    """A kinetic result cannot be moved before D0, nor get a unit the model does not read."""
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    client = _api(world, "bdx.coordinator")
    assert subject.infusion_date is not None
    before_d0 = f"{subject.infusion_date - timedelta(days=2):%Y-%m-%d} 09:00"

    _error(
        _correct(
            client,
            subject,
            record="lab_observation",
            id=str(result.pk),
            field="sampled_at",
            value=before_d0,
            reason="r",
        ),
        422,
        "kinetics_before_infusion",
    )
    _error(
        _correct(client, subject, record="lab_observation", id=str(result.pk), field="unit", value="g/L", reason="r"),
        422,
        "kinetics_unknown_unit",
    )
    _error(
        _correct(client, subject, record="lab_observation", id=str(result.pk), field="value", value=-3, reason="r"),
        422,
        "kinetics_negative_value",
    )
    result.refresh_from_db()
    assert (result.value, result.unit) == (12.5, "cells/µL")


def test_a_screening_lab_correction_recomputes_the_verdict(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    sampled_at = clock.now() - timedelta(days=1)
    with transaction.atomic():
        saved = screening_record(
            actor=world.actor("bdx.coordinator"),
            subject=subject,
            protocol=world.protocol,
            data=DEMO_SCREENING_DATA,
            labs=[
                LabObservationInput("creatinine", 71.0, "umol/L", sampled_at, lower_limit=45, upper_limit=90),
                LabObservationInput("cd3", 80.0, "cells/µL", sampled_at, lower_limit=700.0, upper_limit=2100),
            ],
        )
    assert saved.assessment.verdict == "not_eligible"
    cd3 = LabObservation.objects.get(subject=subject, analyte="cd3")

    response = _correct(
        _api(world, "bdx.coordinator"),
        subject,
        record="lab_observation",
        id=str(cd3.pk),
        field="value",
        value=650,
        reason="Transcription error: the report says 650",
    )

    assert response.status_code == 200, response.content
    latest = EligibilityAssessment.objects.filter(subject=subject).order_by("-pk").first()
    assert latest is not None and latest.verdict == "eligible"
    assert response.json()["verdict"] == "eligible"


# --- logistics --------------------------------------------------------------------------------------


def _transit_deviations(subject: Subject) -> list[Deviation]:
    return list(Deviation.objects.filter(subject=subject, kind="transit_time").order_by("pk"))


def test_a_collection_end_correction_re_evaluates_the_transit_deviation(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    collection = Collection.objects.get(subject=subject)
    shipment = Shipment.objects.get(subject=subject, direction="to_lab")
    assert shipment.actual_arrival_at is not None
    assert _transit_deviations(subject) == []
    client = _api(world, "bdx.apheresis")
    original_start, original_end = collection.started_at, collection.ended_at
    earlier_end = shipment.actual_arrival_at - timedelta(hours=80)  # 80 h of transit: beyond the 72 h limit

    def correct(field: str, value: datetime, reason: str) -> Any:
        return _correct(
            client,
            subject,
            record="collection",
            id=str(collection.pk),
            field=field,
            value=value.isoformat(),
            reason=reason,
        )

    assert (
        correct("started_at", earlier_end - timedelta(hours=4), "Times of the other patient's sheet").status_code == 200
    )
    response = correct("ended_at", earlier_end, "Times of the other patient's sheet")
    assert response.status_code == 200, response.content

    (opened,) = _transit_deviations(subject)
    assert opened.status == "open" and opened.params["hours"] == 80.0
    collection.refresh_from_db()
    assert collection.ended_at == earlier_end
    custody = CustodyRecord.objects.get(item_id=f"material {collection.din}", from_holder__isnull=True)
    assert custody.at == earlier_end  # the hand-over at the end of collection follows

    assert correct("ended_at", original_end, "Back to the apheresis sheet").status_code == 200
    assert correct("started_at", original_start, "Back to the apheresis sheet").status_code == 200

    (closed,) = _transit_deviations(subject)
    assert closed.pk == opened.pk
    assert closed.status == "closed"
    assert closed.closed_at is not None and closed.closed_by_id == world.users["bdx.apheresis"].pk
    assert "Back to the apheresis sheet" in closed.closing_reason
    assert (
        AuditEntry.objects.filter(
            event="logistics.deviation_closed", entity="deviation", entity_id=str(closed.pk)
        ).count()
        == 1
    )


def test_a_lab_receipt_time_correction_opens_the_transit_deviation_it_implies(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    shipment = Shipment.objects.get(subject=subject, direction="to_lab")
    collection = Collection.objects.get(subject=subject)
    batch = ManufacturingBatch.objects.get(subject=subject)
    later = collection.ended_at + timedelta(hours=75)

    response = _correct(
        _api(world, "lab.manufacturing"),
        subject,
        record="lab_receipt",
        id=str(shipment.pk),
        field="received_at",
        value=later.isoformat(),
        reason="Receipt scanned in late, the log says 75 h",
    )

    assert response.status_code == 200, response.content
    shipment.refresh_from_db()
    batch.refresh_from_db()
    assert shipment.actual_arrival_at == later and batch.received_at == later
    (opened,) = _transit_deviations(subject)
    assert opened.status == "open" and opened.shipment_id == shipment.pk


def test_a_role_that_may_not_correct_gets_403_and_nothing_changes(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    collection = Collection.objects.get(subject=subject)

    response = _correct(
        _api(world, "bdx.coordinator"),
        subject,
        record="collection",
        id=str(collection.pk),
        field="volume_ml",
        value=250,
        reason="Wrong volume",
    )

    _error(response, 403, "access_denied")
    collection.refresh_from_db()
    assert collection.volume_ml == 210.0
    assert _corrections("collection", collection.pk) == []
    assert AuditEntry.objects.filter(event="access.refused", subject_code=subject.code).exists()


def test_another_center_gets_404(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    collection = Collection.objects.get(subject=subject)

    _error(
        _correct(
            _api(world, "lil.apheresis"),
            subject,
            record="collection",
            id=str(collection.pk),
            field="volume_ml",
            value=250,
            reason="Wrong volume",
        ),
        404,
        "not_found",
    )
    _error(
        _api(world, "lil.investigator").get(
            f"/api/v1/subjects/{subject.code}/corrections?record=collection&id={collection.pk}"
        ),
        404,
        "not_found",
    )
    collection.refresh_from_db()
    assert collection.volume_ml == 210.0


def test_a_record_of_another_subject_is_not_found_through_this_one(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    other = world.new_subject("BDX", State.MANUFACTURING)
    collection = Collection.objects.get(subject=other)

    _error(
        _correct(
            _api(world, "bdx.apheresis"),
            subject,
            record="collection",
            id=str(collection.pk),
            field="volume_ml",
            value=250,
            reason="Wrong volume",
        ),
        404,
        "not_found",
    )


# --- D0, a signed record ------------------------------------------------------------------------------


def test_correcting_d0_voids_the_bedside_signatures_signs_again_and_days_follow(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    infusion = Infusion.objects.get(batch__subject=subject)
    old_signatures = {infusion.first_signature_id, infusion.second_signature_id}
    event = PathwayEvent.objects.get(subject=subject, step=Step.INFUSE.value)
    old_d0 = subject.infusion_date
    assert old_d0 is not None
    new_d0 = old_d0 - timedelta(days=1)  # lymphodepletion started at D-5: D-4 is still in its window
    client = _api(world, "bdx.investigator")
    body = {"record": "infusion", "id": subject.code, "field": "infusion_date", "value": new_d0.isoformat()}

    _error(_correct(client, subject, **body, reason="Date of the pharmacy's sheet"), 422, "password_required")
    _error(
        _correct(client, subject, **body, reason="Date of the pharmacy's sheet", password="nope"), 409, "wrong_password"
    )
    subject.refresh_from_db()
    assert subject.infusion_date == old_d0
    assert not ElectronicSignature.objects.filter(pk__in=old_signatures, voided_at__isnull=False).exists()

    response = _correct(client, subject, **body, reason="Date of the pharmacy's sheet", password=DEMO_PASSWORD)

    assert response.status_code == 200, response.content
    subject.refresh_from_db()
    assert subject.infusion_date == new_d0
    voided = ElectronicSignature.objects.filter(pk__in=old_signatures)
    assert {s.voided_at is not None for s in voided} == {True}
    assert {s.void_reason for s in voided} == {"Date of the pharmacy's sheet"}
    assert {s.voided_by_id for s in voided} == {world.users["bdx.investigator"].pk}
    new_signature = ElectronicSignature.objects.get(pk=response.json()["signature"]["id"])
    assert {s.superseded_by_id for s in voided} == {new_signature.pk}
    assert (new_signature.meaning, new_signature.signer.username) == (CORRECTION_MEANING, "bdx.investigator")
    assert new_signature.voided_at is None
    event.refresh_from_db()
    assert event.signature_id == new_signature.pk
    (entry,) = _corrections("infusion", subject.code)
    assert entry_changes(entry)[0] == {"field": "infusion_date", "old": old_d0.isoformat(), "new": new_d0.isoformat()}
    assert entry.reason == "Date of the pharmacy's sheet"
    assert AuditEntry.objects.filter(event="signature.voided", subject_code=subject.code).count() == 2
    # Day numbers are computed from D0 on read: the D7 sample is now D8, on the biology page too.
    page = world.client_for("bdx.investigator").get(f"/biology/subjects/{subject.code}/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Infused on {new_d0:%Y-%m-%d} (D0)" in html
    assert ">D8<" in html and ">D7<" not in html
    (row,) = [r for r in biology_selectors.subject_kinetic_rows(subject=subject) if r.pk == result.pk]
    assert row.day == 8
    assert audit_verify().intact


def test_a_pharmacist_may_not_correct_d0_and_nothing_changes(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    old_d0 = subject.infusion_date
    assert old_d0 is not None
    signatures = ElectronicSignature.objects.count()

    _error(
        _correct(
            _api(world, "bdx.pharmacist"),
            subject,
            record="infusion",
            id=subject.code,
            field="infusion_date",
            value=(old_d0 - timedelta(days=1)).isoformat(),
            reason="Wrong date",
            password=DEMO_PASSWORD,
        ),
        403,
        "access_denied",
    )
    subject.refresh_from_db()
    assert subject.infusion_date == old_d0
    assert ElectronicSignature.objects.count() == signatures
    assert not ElectronicSignature.objects.filter(voided_at__isnull=False).exists()


def test_d0_outside_the_lymphodepletion_window_is_refused(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    old_d0 = subject.infusion_date
    assert old_d0 is not None

    _error(
        _correct(
            _api(world, "bdx.investigator"),
            subject,
            record="infusion",
            id=subject.code,
            field="infusion_date",
            value=(old_d0 + timedelta(days=3)).isoformat(),
            reason="Wrong date",
            password=DEMO_PASSWORD,
        ),
        409,
        "lymphodepletion_window",
    )
    subject.refresh_from_db()
    assert subject.infusion_date == old_d0


# --- the inclusion, a signed record --------------------------------------------------------------------


def test_a_screening_lab_after_inclusion_is_corrected_by_the_investigator_who_signs_again(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    cd3 = LabObservation.objects.get(subject=subject, analyte="cd3")
    include = PathwayEvent.objects.get(subject=subject, step=Step.INCLUDE.value)
    old_signature = include.signature
    assert old_signature is not None
    body = {"record": "lab_observation", "id": str(cd3.pk), "field": "value", "value": 700, "reason": "Lab re-issued"}

    _error(_correct(_api(world, "bdx.coordinator"), subject, **body, password=DEMO_PASSWORD), 403, "access_denied")
    cd3.refresh_from_db()
    assert cd3.value == 650.0

    response = _correct(_api(world, "bdx.investigator"), subject, **body, password=DEMO_PASSWORD)

    assert response.status_code == 200, response.content
    include.refresh_from_db()
    old_signature.refresh_from_db()
    assert old_signature.voided_at is not None and old_signature.superseded_by_id == include.signature_id
    assert include.signature is not None and include.signature.meaning == CORRECTION_MEANING
    assert response.json()["verdict"] == "eligible"
    assert Subject.objects.get(pk=subject.pk).state == State.INCLUDED.value


# --- history --------------------------------------------------------------------------------------------


def test_the_history_by_api_lists_old_new_who_when_why_and_voided_signatures(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    old_d0 = subject.infusion_date
    assert old_d0 is not None
    client = _api(world, "bdx.investigator")
    _correct(
        client,
        subject,
        record="infusion",
        id=subject.code,
        field="infusion_date",
        value=(old_d0 - timedelta(days=1)).isoformat(),
        reason="Date of the pharmacy's sheet",
        password=DEMO_PASSWORD,
    )

    response = _api(world, "cra.monitor").get(
        f"/api/v1/subjects/{subject.code}/corrections?record=infusion&id={subject.code}"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    (change,) = body["history"]
    assert (change["field"], change["old"], change["new"]) == (
        "infusion_date",
        old_d0.isoformat(),
        (old_d0 - timedelta(days=1)).isoformat(),
    )
    assert (change["by"], change["reason"]) == ("bdx.investigator", "Date of the pharmacy's sheet")
    voided = [s for s in body["signatures"] if s["voided_at"]]
    assert len(voided) == 2 and {s["void_reason"] for s in voided} == {"Date of the pharmacy's sheet"}
    assert [s["meaning"] for s in body["signatures"] if not s["voided_at"]] == [CORRECTION_MEANING]


def test_the_audit_chain_stays_intact_after_corrections(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING)
    collection = Collection.objects.get(subject=subject)
    response = _correct(
        _api(world, "bdx.apheresis"),
        subject,
        record="collection",
        id=str(collection.pk),
        field="volume_ml",
        value=230,
        reason="Volume read on the bag",
    )
    assert response.status_code == 200, response.content
    report = audit_verify()
    assert report.intact, report


# --- the other kinds of record ----------------------------------------------------------------------


def test_a_qc_result_after_release_is_corrected_by_the_qp_who_signs_the_release_again(world: Any) -> None:
    subject = world.new_subject("BDX", State.PRODUCT_RELEASED)
    batch = ManufacturingBatch.objects.get(subject=subject)
    old_release = batch.release_signature
    assert old_release is not None
    viability = batch.qc_results.get(test_code="viability")
    body = {"record": "qc_result", "id": str(viability.pk), "field": "value", "value": "91", "reason": "Report v2"}
    client = _api(world, "lab.manufacturing")

    _error(_correct(client, subject, **body), 422, "password_required")
    response = _correct(client, subject, **body, password=DEMO_PASSWORD)

    assert response.status_code == 200, response.content
    batch.refresh_from_db()
    old_release.refresh_from_db()
    viability.refresh_from_db()
    assert (viability.value_text, viability.conforms) == ("91", True)
    assert old_release.voided_at is not None and old_release.superseded_by_id == batch.release_signature_id
    assert batch.release_signature is not None and batch.release_signature.meaning == CORRECTION_MEANING
    assert batch.status == "released" and not batch.released_under_exception
    assert [s["id"] for s in response.json()["voided_signatures"]] == [old_release.pk]


def test_a_qc_result_before_release_is_judged_again_and_the_batch_status_follows(world: Any) -> None:
    from cartrial.domain.roles import Action

    subject = world.new_subject("BDX", State.MANUFACTURING)
    world.act("lab.manufacturing", subject, Action.RECORD_QC, test_code="viability", value="55")
    batch = ManufacturingBatch.objects.get(subject=subject)
    assert batch.status == "out_of_specification"
    result = batch.qc_results.get(test_code="viability")

    response = _correct(
        _api(world, "lab.manufacturing"),
        subject,
        record="qc_result",
        id=str(result.pk),
        field="value",
        value="75",
        reason="55 was the pre-wash count",
    )

    assert response.status_code == 200, response.content
    batch.refresh_from_db()
    assert batch.status == "qc"
    (entry,) = _corrections("qc_result", result.pk)
    assert entry_changes(entry) == [
        {"field": "value", "old": "55", "new": "75"},
        {"field": "conforms", "old": False, "new": True},
    ]
    _error(
        _correct(
            _api(world, "lab.manufacturing"),
            subject,
            record="qc_result",
            id=str(result.pk),
            field="value",
            value="seventy",
            reason="r",
        ),
        422,
        "qc_result_invalid",
    )


def test_a_couriers_name_is_corrected_and_the_custody_chain_follows(world: Any) -> None:
    subject = world.new_subject("BDX", State.PRODUCT_RECEIVED)
    shipment = Shipment.objects.get(subject=subject, direction="to_center")
    old_holder = f"courier {shipment.courier} · shipper {shipment.shipper_id}"
    new_holder = f"courier CryoTrans Sud · shipper {shipment.shipper_id}"

    response = _correct(
        _api(world, "lab.manufacturing"),
        subject,
        record="product_shipment",
        id=str(shipment.pk),
        field="courier",
        value="CryoTrans Sud",
        reason="Subcontracted courier",
    )

    assert response.status_code == 200, response.content
    records = CustodyRecord.objects.filter(shipment=shipment)
    assert not records.filter(to_holder=old_holder).exists() and not records.filter(from_holder=old_holder).exists()
    assert records.filter(to_holder=new_holder).count() == 1 and records.filter(from_holder=new_holder).count() == 1
    assert len(_corrections("custody", records.get(to_holder=new_holder).pk)) == 1


def test_a_departure_after_the_arrival_is_refused(world: Any) -> None:
    subject = world.new_subject("BDX", State.PRODUCT_RECEIVED)
    shipment = Shipment.objects.get(subject=subject, direction="to_center")
    assert shipment.actual_arrival_at is not None

    _error(
        _correct(
            _api(world, "lab.manufacturing"),
            subject,
            record="product_shipment",
            id=str(shipment.pk),
            field="actual_departure_at",
            value=(shipment.actual_arrival_at + timedelta(hours=1)).isoformat(),
            reason="r",
        ),
        422,
        "shipment_arrival_before_departure",
    )


def test_the_pharmacy_receipt_and_storage_are_corrected_and_the_arrival_follows(world: Any) -> None:
    subject = world.new_subject("BDX", State.PRODUCT_RECEIVED)
    receipt = ProductReceipt.objects.get(batch__subject=subject)
    client = _api(world, "bdx.pharmacist")
    earlier = receipt.received_at - timedelta(hours=2)

    assert (
        _correct(
            client,
            subject,
            record="product_receipt",
            id=str(receipt.pk),
            field="storage_location",
            value="PUI – cuve n°3",
            reason="Moved before the first entry was saved",
        ).status_code
        == 200
    )
    response = _correct(
        client,
        subject,
        record="product_receipt",
        id=str(receipt.pk),
        field="received_at",
        value=earlier.isoformat(),
        reason="Time of the delivery note",
    )

    assert response.status_code == 200, response.content
    receipt.refresh_from_db()
    assert (receipt.storage_location, receipt.received_at) == ("PUI – cuve n°3", earlier)
    assert receipt.shipment.actual_arrival_at == earlier
    assert CustodyRecord.objects.get(shipment=receipt.shipment, to_holder__startswith="BDX · pharmacy").at == earlier
    _error(
        _correct(
            client,
            subject,
            record="product_receipt",
            id=str(receipt.pk),
            field="storage_location",
            value=" ",
            reason="r",
        ),
        422,
        "value_missing",
    )


def test_a_thaw_time_correction_gives_the_minutes_from_thaw_again(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    infusion = Infusion.objects.get(batch__subject=subject)
    thaw = infusion.thaw
    earlier = thaw.thawed_at - timedelta(minutes=10)

    response = _correct(
        _api(world, "bdx.pharmacist"),
        subject,
        record="thaw",
        id=str(thaw.pk),
        field="thawed_at",
        value=earlier.isoformat(),
        reason="Thaw time from the water-bath log",
    )

    assert response.status_code == 200, response.content
    infusion.refresh_from_db()
    assert round(infusion.minutes_from_thaw) == 28
    assert len(_corrections("infusion", infusion.pk)) == 1


def test_a_consent_date_correction_recomputes_the_age_criterion(world: Any) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    consent = subject.consents.get()
    before = EligibilityAssessment.objects.filter(subject=subject).count()

    response = _correct(
        _api(world, "bdx.coordinator"),
        subject,
        record="consent",
        id=str(consent.pk),
        field="signed_on",
        value=(consent.signed_on - timedelta(days=3)).isoformat(),
        reason="Date on the signed form",
    )

    assert response.status_code == 200, response.content
    consent.refresh_from_db()
    assert EligibilityAssessment.objects.filter(subject=subject).count() == before + 1
    _error(
        _correct(
            _api(world, "bdx.coordinator"),
            subject,
            record="consent",
            id=str(consent.pk),
            field="signed_on",
            value=(clock.now().date() + timedelta(days=3)).isoformat(),
            reason="r",
        ),
        422,
        "date_in_future",
    )


def test_a_screening_item_after_inclusion_is_corrected_and_the_recomputed_verdict_is_signed(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    record = subject.screening_record
    include = PathwayEvent.objects.get(subject=subject, step=Step.INCLUDE.value)

    response = _correct(
        _api(world, "bdx.investigator"),
        subject,
        record="screening_data",
        id=str(record.pk),
        field="infection_active",
        value=True,
        reason="Active infection found on the screening report",
        password=DEMO_PASSWORD,
    )

    assert response.status_code == 200, response.content
    assert response.json()["verdict"] == "not_eligible"
    include.refresh_from_db()
    assert include.signature is not None and include.signature.meaning == CORRECTION_MEANING
    record.refresh_from_db()
    assert record.data_json["infection_active"] is True and record.revision == 2
    _error(
        _correct(
            _api(world, "bdx.investigator"),
            subject,
            record="screening_data",
            id=str(record.pk),
            field="ana_titer",
            value=-4,
            reason="r",
            password=DEMO_PASSWORD,
        ),
        422,
        "calculator_input_invalid",  # the screening data contract's refusal, as the form gets it
    )


def test_planned_apheresis_date_is_corrected_until_the_collection_gives_it(world: Any) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    assert subject.apheresis_date is not None
    client = _api(world, "bdx.apheresis")
    new = subject.apheresis_date + timedelta(days=2)

    response = _correct(
        client,
        subject,
        record="planned_apheresis",
        id=subject.code,
        field="apheresis_date",
        value=new.isoformat(),
        reason="Slot moved",
    )

    assert response.status_code == 200, response.content
    subject.refresh_from_db()
    assert subject.apheresis_date == new
    collected = world.new_subject("BDX", State.APHERESIS_COLLECTED)
    assert collected.apheresis_date is not None
    _error(
        _correct(
            client,
            collected,
            record="planned_apheresis",
            id=collected.code,
            field="apheresis_date",
            value=(collected.apheresis_date + timedelta(days=1)).isoformat(),
            reason="r",
        ),
        409,
        "correction_derived",
    )


def test_a_death_date_is_corrected_and_must_follow_d0(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    assert subject.infusion_date is not None
    died = subject.infusion_date + timedelta(days=10)
    event = world.step("bdx.investigator", subject, Step.RECORD_DEATH, death_date=died, reason="Septic shock")
    client = _api(world, "bdx.coordinator")

    response = _correct(
        client,
        subject,
        record="death",
        id=str(event.pk),
        field="death_date",
        value=(died + timedelta(days=1)).isoformat(),
        reason="Death certificate",
    )

    assert response.status_code == 200, response.content
    event.refresh_from_db()
    assert event.details["death_date"] == (died + timedelta(days=1)).isoformat()
    _error(
        _correct(
            client,
            subject,
            record="death",
            id=str(event.pk),
            field="death_date",
            value=(subject.infusion_date - timedelta(days=1)).isoformat(),
            reason="r",
        ),
        422,
        "dates_out_of_order",
    )


def test_the_history_page_shows_in_french_and_in_english(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    result = _kinetic_result(world, subject, day=7)
    _correct(
        _api(world, "bdx.coordinator"),
        subject,
        record="lab_observation",
        id=str(result.pk),
        field="value",
        value=21.5,
        reason="Faute de frappe",
    )
    url = f"/subjects/{subject.code}/corrections/lab_observation/{result.pk}/"

    english = world.client_for("bdx.coordinator")
    english.cookies.load({"django_language": "en"})
    page_en = english.get(url).content.decode()
    french = world.client_for("bdx.coordinator")
    french.cookies.load({"django_language": "fr"})
    page_fr = french.get(url).content.decode()

    assert "History of corrections" in page_en and "Historique des corrections" in page_fr
    coordinator = world.users["bdx.coordinator"].get_full_name()
    for page in (page_en, page_fr):
        assert "Faute de frappe" in page and coordinator in page
    assert "12.5 → 21.5" in page_en
    assert "12,5 → 21,5" in page_fr
    assert "value" in page_en and "valeur" in page_fr


def test_pages_offer_correct_only_to_roles_that_may(world: Any) -> None:
    subject = world.new_subject("BDX", State.INFUSED)
    _kinetic_result(world, subject, day=7)
    link = f"/subjects/{subject.code}/corrections/lab_observation/"

    coordinator = world.client_for("bdx.coordinator").get(f"/biology/subjects/{subject.code}/").content.decode()
    monitor = world.client_for("cra.monitor").get(f"/biology/subjects/{subject.code}/").content.decode()

    assert link in coordinator and 'data-correct="lab_observation"' in coordinator
    assert link in monitor and 'data-correct="lab_observation"' not in monitor  # history only


# --- a temperature log imported again ------------------------------------------------------------------


def test_a_re_imported_temperature_log_closes_the_excursions_it_no_longer_shows(world: Any) -> None:
    from cartrial.demo import logger_csv
    from cartrial.domain.errors import InvalidInput
    from cartrial.domain.roles import Action

    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    end = shipment.actual_departure_at + timedelta(hours=6)

    def log(excursion_c: float | None, **extra: Any) -> Any:
        content = logger_csv(
            shipment.actual_departure_at, end, low_c=3.0, high_c=6.0, fresh=True, excursion_c=excursion_c
        )
        return world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=content,
            logger_time_zone="UTC",
            **extra,
        )

    wrong = log(11.5)
    (excursion,) = Deviation.objects.filter(subject=subject, kind="temperature_excursion")
    with pytest.raises(InvalidInput) as no_reason:
        log(None, replaces=wrong.pk, reason=" ")
    assert no_reason.value.code == "reason_required"

    same = log(11.5, replaces=wrong.pk, reason="Same file exported again")
    assert Deviation.objects.filter(subject=subject, kind="temperature_excursion").count() == 1  # not opened twice
    excursion.refresh_from_db()
    assert excursion.status == "open"

    log(None, replaces=same.pk, reason="The first file was another shipper's logger")
    excursion.refresh_from_db()
    assert excursion.status == "closed"
    assert excursion.closing_reason == "The first file was another shipper's logger"
    imported = AuditEntry.objects.filter(subject_code=subject.code, event="logistics.temperature_log_imported")
    assert imported.last().reason == "The first file was another shipper's logger"  # type: ignore[union-attr]
    page = world.client_for("lil.apheresis").get(f"/logistics/subjects/{subject.code}/").content.decode()
    assert f'data-replaced="{wrong.pk}"' in page and f'data-replaced="{same.pk}"' in page
    assert "The first file was another shipper&#x27;s logger" in page
