"""Every read and action of the casebook's pages through the API (issue 12, item 8): the study grid,
the worklist, a visit, the casebook's lock and signature, an unscheduled visit, a form's
definition, lock, unlock, verification and queries, the query inbox's summary; lists as pages
with `since` (a change before the cut left out, one after it in); the same refusals as the pages
(422 naming the item, 404 outside the scope, 403 for a role that may not act)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.models import FormRecord, Query, VisitRecord
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

VITALS = {
    "temperature_c": 37.1,
    "heart_rate_bpm": 78,
    "systolic_bp_mmhg": 122,
    "diastolic_bp_mmhg": 76,
    "spo2_pct": 98,
    "weight_kg": 61.5,
}


class Api:
    """Token clients per user, JSON in and out."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.clients: dict[str, Client] = {}

    def client(self, username: str, **headers: str) -> Client:
        key = username + repr(sorted(headers.items()))
        if key not in self.clients:
            token = api_token_create(actor=Actor.system("test"), user=self.world.users[username], label="t")
            self.clients[key] = Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)
        return self.clients[key]

    def get(self, username: str, path: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client(username, **headers).get(f"/api/v1{path}", params or {})

    def send(self, method: str, username: str, path: str, body: dict[str, Any] | None = None) -> Any:
        client = self.client(username)
        return getattr(client, method)(f"/api/v1{path}", json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def api(world: Any) -> Api:
    return Api(world)


@pytest.fixture
def subject(world: Any) -> Subject:
    return world.new_subject("BDX", State.FOLLOW_UP)


def _day(subject: Subject, days: int) -> str:
    assert subject.infusion_date is not None
    return (subject.infusion_date + timedelta(days=days)).isoformat()


def _refused(response: Any, status: int, code: str, item: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if item is not None:
        assert body.get("item") == item or item in [f["field"] for f in body.get("fields") or []], body
    return body


def _vitals_saved(api: Api, subject: Subject, visit: str = "D28", days: int = 28) -> str:
    """The visit done and its vital signs saved by the center's coordinator; the form's path."""
    base = f"/subjects/{subject.code}/visits/{visit}"
    assert api.send("put", "bdx.coordinator", base, {"done_on": _day(subject, days)}).status_code == 200
    saved = api.send("put", "bdx.coordinator", f"{base}/forms/vital_signs", {"items": VITALS})
    assert saved.status_code == 200, saved.json()
    return f"{base}/forms/vital_signs"


def _before_the_cut(work: Any) -> datetime:
    """Run `work` an hour ago (the clock frozen there); the cut, half an hour ago."""
    now = clock.now()
    with clock.frozen_at(now - timedelta(hours=1)):
        work()
    return now - timedelta(minutes=30)


# --- the form's definition ----------------------------------------------------------------------


def test_a_forms_definition_gives_each_items_type_unit_range_and_code_list(api: Api) -> None:
    response = api.get("cra.monitor", "/forms/vital_signs")
    assert response.status_code == 200
    body = response.json()
    items = {item["name"]: item for group in body["groups"] for item in group["items"]}
    assert set(VITALS) <= set(items)
    temperature = items["temperature_c"]
    assert (temperature["type"], temperature["unit"]) == ("number", "°C")
    assert temperature["minimum"] < 37 < temperature["maximum"]
    assert "D28" in body["visits"]
    haematology = api.get("cra.monitor", "/forms/haematology").json()
    platelets = next(i for g in haematology["groups"] for i in g["items"] if i["name"] == "platelets")
    assert platelets["lab"] is True and platelets["unit"] in platelets["units"]
    assert {r["unit"] for r in platelets["ranges"]} == set(platelets["units"])
    medications = api.get("cra.monitor", "/forms/concomitant_medications").json()
    group = medications["groups"][0]
    assert group["repeating"] is True
    french = api.get("cra.monitor", "/forms/concomitant_medications", HTTP_ACCEPT_LANGUAGE="fr").json()
    route = next(i for i in french["groups"][0]["items"] if i["name"] == "route")
    assert route["type"] == "choice" and {"code": "oral", "label": "Orale", "help": None} in route["codelist"]
    _refused(api.get("cra.monitor", "/forms/vital_sings"), 404, "form_unknown", "form")


def test_a_form_takes_lab_results_multiple_choices_and_repeating_rows_as_typed(api: Api, subject: Subject) -> None:
    base = f"/subjects/{subject.code}/visits/D28"
    assert api.send("put", "bdx.coordinator", base, {"done_on": _day(subject, 28)}).status_code == 200
    rows = [
        {
            "medication": "hydroxychloroquine",
            "dose": 200,
            "dose_unit": "mg",
            "route": "oral",
            "start_date": "2020-01-01",
            "ongoing": True,
        }
    ]
    saved = api.send(
        "put", "bdx.coordinator", f"{base}/forms/concomitant_medications", {"items": {"medications": rows}}
    )
    assert saved.status_code == 200, saved.json()
    assert saved.json()["items"]["medications"][0]["route"] == "oral"
    lab = {"platelets": {"value": 250, "unit": "10^9/L", "lower_limit": 150, "upper_limit": 400}}
    labs = api.send("put", "bdx.coordinator", f"{base}/forms/haematology", {"items": lab})
    assert labs.status_code == 200, labs.json()
    assert labs.json()["items"]["platelets"]["upper_limit"] == 400
    # A key a lab result does not have is refused, naming the item; nothing stored.
    typo = {"platelets": {"value": 250, "unit": "10^9/L", "upper": 400}}
    refused = api.send("put", "bdx.coordinator", f"{base}/forms/haematology", {"items": typo, "reason": "x"})
    body = _refused(refused, 422, "invalid_input")
    assert any(f["field"].startswith("items.platelets") for f in body["fields"]), body
    assert (
        FormRecord.objects.get(subject=subject, form_code="haematology").values_json["platelets"]["upper_limit"] == 400
    )


# --- a subject's visits, a visit --------------------------------------------------------------------


def test_the_visits_are_a_page_and_since_keeps_the_visits_changed_after_it(api: Api, subject: Subject) -> None:
    everything = api.get("bdx.coordinator", f"/subjects/{subject.code}/visits").json()
    assert everything["total"] == len(everything["items"]) and everything["next_offset"] is None
    first = api.get("bdx.coordinator", f"/subjects/{subject.code}/visits", {"limit": 2}).json()
    assert [v["code"] for v in first["items"]] == [v["code"] for v in everything["items"][:2]]
    assert first["next_offset"] == 2 and first["total"] == everything["total"]
    cut = _before_the_cut(lambda: _vitals_saved(api, subject))
    base = f"/subjects/{subject.code}/visits"
    assert api.send("put", "bdx.coordinator", f"{base}/M2", {"missed": True, "reason": "travelling"}).status_code == 200
    changed = api.get("bdx.coordinator", base, {"since": cut.isoformat()}).json()
    assert [v["code"] for v in changed["items"]] == ["M2"] and changed["total"] == 1
    # A query raised on D28's form after the cut brings D28 back.
    raised = api.send(
        "post",
        "cra.monitor",
        f"/subjects/{subject.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": "Source says 65 kg?"},
    )
    assert raised.status_code == 201
    again = api.get("bdx.coordinator", base, {"since": cut.isoformat()}).json()
    assert [v["code"] for v in again["items"]] == ["D28", "M2"]
    assert again["items"][0]["open_queries"] == 1


def test_a_visit_reads_as_its_page_shows_it_and_its_forms_lock_and_unlock(
    api: Api, subject: Subject, world: Any
) -> None:
    _vitals_saved(api, subject)
    path = f"/subjects/{subject.code}/visits/D28"
    visit = api.get("cra.monitor", path)
    assert visit.status_code == 200
    body = visit.json()
    assert (body["visit"]["code"], body["visit"]["status"]) == ("D28", "done")
    assert body["record"]["done_on"] == _day(subject, 28) and body["forms_to_add"] == []
    assert {f["code"]: f["status"] for f in body["visit"]["forms"]}["vital_signs"] == "complete"
    assert api.get("cra.monitor", f"/subjects/{subject.code}/visits/D99").status_code == 404
    # Only the data manager locks; a refusal is recorded.
    since = AuditEntry.objects.order_by("-sequence").first().sequence  # type: ignore[union-attr]
    _refused(api.send("post", "bdx.coordinator", f"{path}/lock"), 403, "access_denied")
    assert [e.event for e in AuditEntry.objects.filter(sequence__gt=since)] == ["access.refused"]
    locked = api.send("post", "dm.datamanager", f"{path}/lock")
    assert locked.status_code == 200, locked.json()
    assert locked.json()["forms"] == [{"visit": "D28", "form": "vital_signs", "status": "locked"}]
    _refused(api.send("post", "dm.datamanager", f"{path}/lock"), 409, "nothing_to_lock")
    _refused(api.send("post", "dm.datamanager", f"{path}/unlock", {"reason": " "}), 422, "reason_required", "reason")
    unlocked = api.send("post", "dm.datamanager", f"{path}/unlock", {"reason": "late source document"})
    assert unlocked.json()["forms"][0]["status"] == "complete"
    other = world.new_subject("PAR", State.FOLLOW_UP)
    _refused(api.send("post", "cra.monitor", f"/subjects/{other.code}/visits/D28/lock"), 404, "not_found")


def test_an_unscheduled_visit_is_added_under_the_next_code(api: Api, subject: Subject) -> None:
    path = f"/subjects/{subject.code}/visits/unscheduled"
    added = api.send("post", "bdx.coordinator", path, {"done_on": _day(subject, 40)})
    assert added.status_code == 201, added.json()
    assert (added.json()["visit"], added.json()["outcome"]) == ("U1", "done")
    assert api.send("post", "bdx.coordinator", path, {"done_on": _day(subject, 41)}).json()["visit"] == "U2"
    visit = api.get("bdx.coordinator", f"/subjects/{subject.code}/visits/U1").json()
    assert visit["visit"]["unscheduled"] is True and "vital_signs" in {f["code"] for f in visit["forms_to_add"]}
    _refused(api.send("post", "bdx.coordinator", path, {}), 422, "invalid_input", "done_on")
    _refused(api.send("post", "bdx.coordinator", path, {"done_on": "2999-01-01"}), 422, "visit_date_in_future")
    _refused(api.send("post", "cra.monitor", path, {"done_on": _day(subject, 42)}), 403, "access_denied")
    assert VisitRecord.objects.filter(subject=subject).count() == 2


# --- the casebook: lock and signature ---------------------------------------------------------------


def test_the_casebook_is_locked_then_signed_with_the_password_again(api: Api, subject: Subject) -> None:
    _vitals_saved(api, subject)
    casebook = f"/subjects/{subject.code}/casebook"
    unsigned = api.get("cra.monitor", casebook).json()
    assert unsigned["signature"] is None and "complete and accurate" in unsigned["meaning"]
    _refused(
        api.send("post", "bdx.investigator", f"{casebook}/signature", {"password": DEMO_PASSWORD}),
        409,
        "casebook_not_locked",
    )
    _refused(api.send("post", "cra.monitor", f"{casebook}/lock"), 403, "access_denied")
    locked = api.send("post", "dm.datamanager", f"{casebook}/lock")
    assert [f["status"] for f in locked.json()["forms"]] == ["locked"]
    _refused(api.send("post", "bdx.investigator", f"{casebook}/signature", {"password": "nope"}), 409, "wrong_password")
    _refused(
        api.send("post", "bdx.coordinator", f"{casebook}/signature", {"password": DEMO_PASSWORD}), 403, "access_denied"
    )
    signed = api.send("post", "bdx.investigator", f"{casebook}/signature", {"password": DEMO_PASSWORD})
    assert signed.status_code == 201, signed.json()
    assert signed.json()["forms_signed"] == 1 and len(signed.json()["content_sha256"]) == 64
    french = api.get("cra.monitor", casebook, HTTP_ACCEPT_LANGUAGE="fr").json()
    assert french["signature"]["signer"] == signed.json()["signer"] and "complètes" in french["signature"]["meaning"]
    assert FormRecord.objects.get(subject=subject).status == "signed"


# --- a form: lock, unlock, verification, queries, history -------------------------------------------


def test_a_form_is_verified_against_the_source_by_the_monitor(api: Api, subject: Subject) -> None:
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    _refused(api.send("post", "cra.monitor", f"{path}/verification", {}), 422, "form_not_started", "form")
    _vitals_saved(api, subject)
    read = api.get("cra.monitor", f"{path}/verification")
    assert read.status_code == 200
    assert len(read.json()["checklist"]) == 4 and all(i["verified_by"] is None for i in read.json()["items"])
    _refused(api.send("post", "cra.monitor", f"{path}/verification", {"items": []}), 422, "nothing_verified", "verify")
    _refused(api.send("post", "cra.monitor", f"{path}/verification", {"items": ["weight"]}), 422, "item_unknown")
    _refused(api.get("bdx.coordinator", f"{path}/verification"), 403, "access_denied")
    _refused(api.send("post", "dm.datamanager", f"{path}/verification", {}), 403, "access_denied")
    one = api.send("post", "cra.monitor", f"{path}/verification", {"items": ["weight_kg"]}).json()
    stamps = {i["name"]: i["verified_by"] for i in one["items"]}
    assert stamps["weight_kg"] == "cra.monitor" and stamps["temperature_c"] is None and one["status"] == "complete"
    every = api.send("post", "cra.monitor", f"{path}/verification", {}).json()
    assert every["status"] == "verified" and all(i["verified_by"] for i in every["items"] if i["value"] is not None)
    assert api.get("cra.monitor", path).json()["verified_items"] == sorted(VITALS)


def test_a_form_is_locked_and_unlocked_by_the_data_manager(api: Api, subject: Subject) -> None:
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    _refused(api.send("post", "dm.datamanager", f"{path}/lock"), 422, "form_not_started", "form")
    _vitals_saved(api, subject)
    _refused(api.send("post", "cra.monitor", f"{path}/lock"), 403, "access_denied")
    locked = api.send("post", "dm.datamanager", f"{path}/lock").json()
    assert (locked["status"], locked["frozen"]) == ("locked", True)
    _refused(
        api.send("put", "bdx.coordinator", path, {"items": VITALS | {"weight_kg": 60}, "reason": "x"}),
        409,
        "form_locked",
    )
    _refused(api.send("post", "dm.datamanager", f"{path}/unlock", {}), 422, "reason_required", "reason")
    unlocked = api.send("post", "dm.datamanager", f"{path}/unlock", {"reason": "late source"}).json()
    assert (unlocked["status"], unlocked["frozen"]) == ("complete", False)
    _refused(api.send("post", "dm.datamanager", f"{path}/unlock", {"reason": "again"}), 409, "form_not_locked")


def test_a_forms_queries_and_the_inbox_are_pages_read_since_a_time(api: Api, subject: Subject, world: Any) -> None:
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"

    def first_query() -> None:
        _vitals_saved(api, subject)
        body = {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": "Source says 65 kg?"}
        assert api.send("post", "cra.monitor", f"/subjects/{subject.code}/queries", body).status_code == 201

    cut = _before_the_cut(first_query)
    first = Query.objects.get(subject=subject)
    second = api.send(
        "post",
        "cra.monitor",
        f"/subjects/{subject.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "spo2_pct", "text": "Pulse oximeter calibrated?"},
    ).json()
    listed = api.get("bdx.coordinator", f"{path}/queries").json()
    assert [q["id"] for q in listed["items"]] == [first.pk, second["id"]] and listed["total"] == 2
    recent = api.get("bdx.coordinator", f"{path}/queries", {"since": cut.isoformat()}).json()
    assert [q["id"] for q in recent["items"]] == [second["id"]]
    inbox = api.get("cra.monitor", "/queries", {"since": cut.isoformat(), "status": "open"}).json()
    assert [q["id"] for q in inbox["items"]] == [second["id"]]
    # Answering the first query after the cut makes it a change.
    assert api.send("post", "bdx.coordinator", f"/queries/{first.pk}/answer", {"text": "61.5 kg"}).status_code == 200
    inbox = api.get("cra.monitor", "/queries", {"since": cut.isoformat()}).json()
    assert {q["id"] for q in inbox["items"]} == {first.pk, second["id"]}
    assert inbox["items"][0]["thread"][-1]["move"] == "answer"
    summary = api.get("cra.monitor", "/queries/summary").json()
    assert summary["centers"] == [{"center": "BDX", "count": 2, "over_30_days": 0, "oldest_days": 0}]
    assert api.get("cra.monitor", "/queries/summary", {"status": "open"}).json()["centers"][0]["count"] == 1
    _refused(api.get("cra.monitor", "/queries", {"status": "pending"}), 422, "invalid_input", "status")
    _refused(api.get("bdx.pharmacist", "/queries/summary"), 403, "access_denied")
    other = world.new_subject("PAR", State.FOLLOW_UP)
    _refused(api.get("cra.monitor", f"/subjects/{other.code}/visits/D28/forms/vital_signs/queries"), 404, "not_found")


def test_a_forms_history_is_a_page_read_since_a_time(api: Api, subject: Subject) -> None:
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    cut = _before_the_cut(lambda: _vitals_saved(api, subject))
    changed = api.send("put", "bdx.coordinator", path, {"items": VITALS | {"weight_kg": 62.0}, "reason": "scale"})
    assert changed.status_code == 200
    history = api.get("cra.monitor", f"{path}/history").json()
    assert history["total"] == len(VITALS) + 1
    recent = api.get("cra.monitor", f"{path}/history", {"since": cut.isoformat()}).json()
    assert [(c["item"], c["old"], c["new"], c["reason"]) for c in recent["items"]] == [
        ("weight_kg", 61.5, 62.0, "scale")
    ]
    _refused(api.get("cra.monitor", f"/subjects/{subject.code}/visits/M2/forms/vital_signs/history"), 404, "not_found")


# --- the study grid and the worklist ----------------------------------------------------------------


def test_the_study_grid_gives_each_subjects_visits_and_forms_within_the_scope(
    api: Api, subject: Subject, world: Any
) -> None:
    quiet = world.new_subject("BDX", State.FOLLOW_UP)
    elsewhere = world.new_subject("PAR", State.FOLLOW_UP)
    cut = _before_the_cut(lambda: _vitals_saved(api, quiet))
    _vitals_saved(api, subject)
    grid = api.get("cra.monitor", "/casebook/grid")
    assert grid.status_code == 200
    rows = {row["subject"]: row for row in grid.json()["items"]}
    assert {subject.code, quiet.code} <= set(rows) and elsewhere.code not in rows  # the monitor: BDX, LIL
    d28 = next(v for v in rows[subject.code]["visits"] if v["code"] == "D28")
    assert d28["status"] == "done" and {f["code"]: f["status"] for f in d28["forms"]}["vital_signs"] == "complete"
    recent = api.get("cra.monitor", "/casebook/grid", {"since": cut.isoformat()}).json()
    assert [row["subject"] for row in recent["items"]] == [subject.code] and recent["total"] == 1
    window = api.get("dm.datamanager", "/casebook/grid", {"limit": 1, "center": "BDX"}).json()
    assert len(window["items"]) == 1 and window["total"] == 2 and window["next_offset"] == 1
    _refused(api.get("cra.monitor", "/casebook/grid", {"center": "PAR"}), 404, "not_found")
    _refused(api.get("bdx.pharmacist", "/casebook/grid"), 403, "access_denied")


def test_the_worklist_gives_the_overdue_visits_of_the_centers_subjects(api: Api, subject: Subject, world: Any) -> None:
    later = world.new_subject("BDX", State.FOLLOW_UP)
    cut = _before_the_cut(lambda: None)
    response = api.get("bdx.coordinator", "/casebook/worklist")
    assert response.status_code == 200
    entries = response.json()["items"]
    assert {e["subject"] for e in entries} == {subject.code, later.code}
    assert {e["section"] for e in entries} <= {"overdue", "due", "upcoming"}
    d28 = next(e for e in entries if e["subject"] == subject.code and e["visit"] == "D28")
    assert (d28["section"], d28["status"], d28["label"]) == ("overdue", "overdue", "Day 28")
    _vitals_saved(api, later)
    recent = api.get("bdx.coordinator", "/casebook/worklist", {"since": cut.isoformat()}).json()["items"]
    assert {e["subject"] for e in recent} == {later.code} and "D28" not in {e["visit"] for e in recent}
    french = api.get("bdx.coordinator", "/casebook/worklist", HTTP_ACCEPT_LANGUAGE="fr").json()["items"]
    assert "J28" in {e["label"] for e in french}
    _refused(api.get("bdx.coordinator", "/casebook/worklist", {"center": "LIL"}), 404, "not_found")
    _refused(api.get("sponsor.admin", "/casebook/worklist"), 403, "access_denied")
