"""The logistics API as the pages offer it: the dashboard's worklists with who holds what, the fields of
each action, the record an action wrote, a subject's record with the actions open now, deviations
read incrementally (`since`) and counted per center; the same scope and roles as the pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import reach_subject
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.logistics.forms import deviation_perform
from cartrial.apps.logistics.models import Collection, Deviation, ManufacturingBatch, QcResult, Shipment
from cartrial.apps.subjects.models import Subject
from cartrial.domain.custody import CustodyScanMismatch
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db

T0 = clock.now().replace(microsecond=0)


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system(), user=world.users[username], label="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _receive(world: Any, subject: Subject) -> ManufacturingBatch:
    collection = Collection.objects.get(subject=subject)
    world.act(
        "lab.manufacturing", subject, Action.RECEIVE_MATERIAL, scanned_code=collection.din + collection.check_character
    )
    return ManufacturingBatch.objects.get(subject=subject)


def _scan_mismatch(world: Any, center: str) -> tuple[Subject, Deviation]:
    """The apheresis unit hands the bag over with a mistyped check character: a deviation is opened."""
    subject = world.new_subject(center, State.APHERESIS_COLLECTED)
    collection = Collection.objects.get(subject=subject)
    wrong = "1" if collection.check_character != "1" else "2"
    with pytest.raises(CustodyScanMismatch):
        world.step(
            f"{center.lower()}.apheresis",
            subject,
            Step.SHIP_MATERIAL,
            courier="C",
            shipper_id="S1",
            condition="fresh",
            planned_departure_at=clock.now(),
            planned_arrival_at=clock.now() + timedelta(hours=20),
            scanned_code=collection.din + wrong,
        )
    return subject, Deviation.objects.get(subject=subject)


# --- the dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_lists_each_stage_whose_move_and_who_holds_the_material_in_scope(world) -> None:
    with clock.frozen_at(T0):
        shipped = world.new_subject("LIL", State.MATERIAL_SHIPPED)
        collected = world.new_subject("LIL", State.APHERESIS_COLLECTED)
        world.new_subject("BDX", State.MATERIAL_SHIPPED)  # another center's
        world.new_subject("LIL", State.INFUSED)  # past the logistics stages
    coordinator = _api(world, "lil.coordinator", HTTP_ACCEPT_LANGUAGE="fr")
    listed = coordinator.get("/api/v1/logistics/dashboard")
    assert listed.status_code == 200, listed.content
    body = listed.json()
    # The pathway's order: collected (the apheresis unit's move) before shipped (the lab's).
    assert [row["subject"] for row in body["items"]] == [collected.code, shipped.code]
    assert body["total"] == 2 and body["next_offset"] is None
    row = body["items"][1]
    assert (row["state"], row["roles"], row["mine"], row["center"]) == (
        "material_shipped",
        ["manufacturing"],
        False,
        "LIL",
    )
    assert row["stage"] == "Matériel expédié au laboratoire" and "DIN" in row["hint"]
    assert row["held_by"]["holder"].startswith("courier ") and row["held_by"]["by"] == "lil.apheresis"
    assert row["held_by"]["item"] == Collection.objects.get(subject=shipped).din
    # The lab sees only what reached it (the shipped material), and it is its move.
    lab = _api(world, "lab.manufacturing").get("/api/v1/logistics/dashboard").json()
    lab_rows = {r["subject"]: r for r in lab["items"]}
    assert shipped.code in lab_rows and collected.code not in lab_rows and lab_rows[shipped.code]["mine"] is True
    window = coordinator.get("/api/v1/logistics/dashboard", {"limit": 1}).json()
    assert [r["subject"] for r in window["items"]] == [collected.code] and window["next_offset"] == 1


def test_the_dashboard_since_holds_the_subjects_whose_stage_or_holder_changed_after_it(world) -> None:
    with clock.frozen_at(T0):
        shipped = world.new_subject("LIL", State.MATERIAL_SHIPPED)
        world.new_subject("LIL", State.APHERESIS_COLLECTED)
    cut = T0 + timedelta(hours=1)
    coordinator = _api(world, "lil.coordinator")
    assert coordinator.get("/api/v1/logistics/dashboard", {"since": cut.isoformat()}).json()["items"] == []
    with clock.frozen_at(T0 + timedelta(hours=2)):
        _receive(world, shipped)  # the lab scans the bag in: it holds the material now
    changed = coordinator.get("/api/v1/logistics/dashboard", {"since": cut.isoformat()}).json()
    assert [r["subject"] for r in changed["items"]] == [shipped.code] and changed["total"] == 1
    assert changed["items"][0]["held_by"]["holder"] == "LAB · manufacturing"
    everything = coordinator.get("/api/v1/logistics/dashboard", {"since": (T0 - timedelta(days=1000)).isoformat()})
    assert everything.json()["total"] == 2


# --- the actions' fields, and the record an action wrote --------------------------------------------


def test_the_action_fields_are_the_pages_forms_with_units_and_ranges(world) -> None:
    described = _api(world, "lab.manufacturing", HTTP_ACCEPT_LANGUAGE="fr").get("/api/v1/logistics/actions")
    assert described.status_code == 200
    actions = {a["action"]: a for a in described.json()["actions"]}
    assert list(actions) == ["receive_material", "record_qc", "document_oos_exception", "thaw"]
    fields = {f["name"]: f for f in actions["record_qc"]["fields"]}
    choices = {c["value"]: c for c in fields["test_code"]["choices"]}
    assert fields["test_code"]["type"] == "choice" and fields["value"]["max_length"] == 32
    assert (choices["viability"]["unit"], choices["viability"]["minimum"], choices["viability"]["maximum"]) == (
        "%",
        0.0,
        100.0,
    )
    assert choices["viability"]["specification"] == "≥ 70 %" and choices["sterility"]["specification"] == "négatif"
    received_at = next(f for f in actions["receive_material"]["fields"] if f["name"] == "received_at")
    assert (received_at["type"], received_at["required"], received_at["label"]) == (
        "datetime",
        False,
        "Reçu à (heure du laboratoire)",
    )
    password = next(f for f in actions["document_oos_exception"]["fields"] if f["name"] == "password")
    assert password["type"] == "password"
    schema = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]["ActionIn"]
    assert "GET /api/v1/logistics/actions" in schema["properties"]["data"]["description"]


def test_an_action_answers_its_record_and_refuses_an_unknown_field_by_name(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    collection = Collection.objects.get(subject=subject)
    url = f"/api/v1/logistics/subjects/{subject.code}/actions"
    lab = _api(world, "lab.manufacturing")
    scan = collection.din + collection.check_character
    unknown = lab.post(
        f"{url}/receive_material", {"data": {"scanned_code": scan, "colour": "red"}}, content_type="application/json"
    )
    assert unknown.status_code == 422 and (unknown.json()["code"], unknown.json()["item"]) == (
        "unknown_field",
        "colour",
    )
    assert not ManufacturingBatch.objects.filter(subject=subject).exists()
    missing = lab.post(f"{url}/receive_material", {"data": {}}, content_type="application/json")
    assert missing.status_code == 422 and [f["field"] for f in missing.json()["fields"]] == ["scanned_code"]
    # The subject's record says what the lab may do now; a coordinator may not.
    assert lab.get(f"/api/v1/logistics/subjects/{subject.code}").json()["actions"] == ["receive_material"]
    assert _api(world, "lil.coordinator").get(f"/api/v1/logistics/subjects/{subject.code}").json()["actions"] == []
    received = lab.post(f"{url}/receive_material", {"data": {"scanned_code": scan}}, content_type="application/json")
    assert received.status_code == 200, received.content
    batch = ManufacturingBatch.objects.get(subject=subject)
    assert received.json()["record"] == {"kind": "batch", "id": batch.pk}
    world.step("lab.manufacturing", subject, Step.START_MANUFACTURING)
    qc = lab.post(
        f"{url}/record_qc", {"data": {"test_code": "viability", "value": 85}}, content_type="application/json"
    )
    assert qc.status_code == 200 and qc.json()["record"] == {"kind": "qc_result", "id": QcResult.objects.get().pk}
    # The wrong role is refused (403); another center's staff do not find the subject (404).
    pharmacist = _api(world, "lil.pharmacist").post(
        f"{url}/record_qc", {"data": {"test_code": "viability", "value": 85}}, content_type="application/json"
    )
    assert pharmacist.status_code == 403 and pharmacist.json()["code"] == "access_denied"
    other = _api(world, "bdx.coordinator").get(f"/api/v1/logistics/subjects/{subject.code}")
    assert other.status_code == 404 and other.json()["code"] == "not_found"


def test_the_subject_record_names_the_temperature_logs_and_the_one_that_replaced_another(world) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    client = _api(world, "lil.apheresis")
    url = f"/api/v1/logistics/subjects/{subject.code}/temperature-logs"
    good = "time;temperature\n2026-11-20T10:00:00Z;4,5\n2026-11-20T10:15:00Z;5,0\n"
    body = {"shipment": shipment.pk, "csv": good, "logger_time_zone": "Europe/Paris"}
    first = client.post(url, body, content_type="application/json")
    assert first.status_code == 200 and first.json()["record"]["kind"] == "temperature_log"
    first_id = first.json()["record"]["id"]
    no_reason = client.post(url, {**body, "replaces": first_id}, content_type="application/json")
    assert no_reason.status_code == 422 and no_reason.json()["item"] == "reason"
    second = client.post(url, {**body, "replaces": first_id, "reason": "wrong logger"}, content_type="application/json")
    assert second.status_code == 200, second.content
    record = client.get(f"/api/v1/logistics/subjects/{subject.code}").json()
    logs = {log["id"]: log for log in record["shipments"][0]["temperature_logs"]}
    assert logs[first_id]["replaced_by"] == second.json()["record"]["id"]
    assert logs[first_id]["replacement_reason"] == "wrong logger"
    assert logs[second.json()["record"]["id"]]["replaced_by"] is None
    assert record["time_zone"] == "Europe/Paris" and record["timeline"][0]["days"] >= 0
    assert record["custody"][0]["from"] is None and record["custody"][1]["from"] == "LIL · apheresis unit"


# --- deviations ---------------------------------------------------------------------------------------


def test_deviations_since_holds_those_opened_moved_or_commented_after_it(world) -> None:
    with clock.frozen_at(T0):
        lil, lil_deviation = _scan_mismatch(world, "LIL")
        _bdx, bdx_deviation = _scan_mismatch(world, "BDX")
    monitor = _api(world, "cra.monitor")
    cut = T0 + timedelta(hours=1)

    def since(moment: Any) -> list[int]:
        found = monitor.get("/api/v1/logistics/deviations", {"since": moment.isoformat()})
        assert found.status_code == 200, found.content
        return [d["id"] for d in found.json()["items"]]

    assert since(T0 - timedelta(hours=1)) == [lil_deviation.pk, bdx_deviation.pk]
    assert since(cut) == []
    with clock.frozen_at(T0 + timedelta(hours=2)):
        # A comment leaves the status as it was: the deviation is read again all the same.
        reach = reach_subject(world.users["lil.coordinator"], lil.code, Action.MANAGE_DEVIATION)
        deviation_perform(reach, lil_deviation.pk, "comment", "Printer reset.")
    assert since(cut) == [lil_deviation.pk]
    with clock.frozen_at(T0 + timedelta(hours=3)):
        reach = reach_subject(world.users["bdx.apheresis"], _bdx.code, Action.MANAGE_DEVIATION)
        deviation_perform(reach, bdx_deviation.pk, "acknowledge", "")
    assert since(cut) == [lil_deviation.pk, bdx_deviation.pk]
    assert since(T0 + timedelta(hours=2, minutes=30)) == [bdx_deviation.pk]
    window = monitor.get("/api/v1/logistics/deviations", {"limit": 1, "offset": 1}).json()
    assert [d["id"] for d in window["items"]] == [bdx_deviation.pk] and window["next_offset"] is None


def test_deviation_counts_per_center_in_scope(world) -> None:
    _scan_mismatch(world, "LIL")
    _scan_mismatch(world, "BDX")
    counts = _api(world, "cra.monitor").get("/api/v1/logistics/deviations/counts").json()
    assert [row["center"] for row in counts["centers"]] == ["BDX", "LIL"] and counts["total"] == 2
    lil = counts["centers"][1]
    assert (lil["kinds"]["scan_mismatch"], lil["kinds"]["temperature_excursion"], lil["open"], lil["acknowledged"]) == (
        1,
        0,
        1,
        0,
    )
    own = _api(world, "lil.coordinator").get("/api/v1/logistics/deviations/counts").json()
    assert [row["center"] for row in own["centers"]] == ["LIL"] and own["total"] == 1
