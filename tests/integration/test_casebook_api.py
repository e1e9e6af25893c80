"""The casebook through its API contract (issue 9): visits, form save with edit checks and automatic
queries, reasons for changes, history, manual queries, SDV, lock, unlock and casebook signature;
bad input refused with its item and nothing stored; lab items in the one lab store."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.models import FormRecord, Query, VisitRecord
from cartrial.apps.clinical.models import LabObservation
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

    def client(self, username: str) -> Client:
        if username not in self.clients:
            token = api_token_create(actor=Actor.system("test"), user=self.world.users[username], label="t")
            self.clients[username] = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self.clients[username]

    def get(self, username: str, path: str) -> Any:
        return self.client(username).get(f"/api/v1{path}")

    def send(self, method: str, username: str, path: str, body: dict[str, Any]) -> Any:
        client = self.client(username)
        return getattr(client, method)(f"/api/v1{path}", json.dumps(body), content_type="application/json")


@pytest.fixture
def api(world: Any) -> Api:
    return Api(world)


@pytest.fixture
def subject(world: Any) -> Subject:
    return world.new_subject("BDX", State.FOLLOW_UP)


def _d28(subject: Subject) -> str:
    assert subject.infusion_date is not None
    return (subject.infusion_date + timedelta(days=28)).isoformat()


def _visit_done(api: Api, subject: Subject, visit: str = "D28", done_on: str | None = None) -> None:
    response = api.send(
        "put", "bdx.coordinator", f"/subjects/{subject.code}/visits/{visit}", {"done_on": done_on or _d28(subject)}
    )
    assert response.status_code == 200, response.json()


def test_the_visits_of_a_subject_follow_the_contract(api: Api, subject: Subject, world: Any) -> None:
    response = api.get("bdx.coordinator", f"/subjects/{subject.code}/visits")
    assert response.status_code == 200
    visits = response.json()["items"]
    assert [v["code"] for v in visits] == [v.code for v in world.protocol.visits]
    d28 = next(v for v in visits if v["code"] == "D28")
    assert d28["target"] == _d28(subject)
    assert d28["status"] == "overdue"
    assert {"code", "status"} <= set(d28["forms"][0])
    _visit_done(api, subject)
    d28 = next(
        v for v in api.get("bdx.coordinator", f"/subjects/{subject.code}/visits").json()["items"] if v["code"] == "D28"
    )
    assert d28["status"] == "done"


def test_a_form_is_saved_checked_and_its_lab_items_go_to_the_lab_store(api: Api, subject: Subject) -> None:
    _visit_done(api, subject)
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    response = api.send("put", "bdx.coordinator", path, {"items": VITALS})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["form"], body["visit"], body["status"]) == ("vital_signs", "D28", "complete")
    assert body["protocol_version"] == subject.protocol_version.version
    assert body["items"]["temperature_c"] == 37.1
    assert api.get("bdx.coordinator", path).json()["items"] == body["items"]
    entries = AuditEntry.objects.filter(entity="form_record", event="casebook.form_saved")
    assert entries.count() == 1


def test_a_value_outside_its_range_is_refused_with_its_item_and_nothing_is_stored(api: Api, subject: Subject) -> None:
    _visit_done(api, subject)
    since = AuditEntry.objects.count()
    response = api.send(
        "put",
        "bdx.coordinator",
        f"/subjects/{subject.code}/visits/D28/forms/vital_signs",
        {"items": {**VITALS, "temperature_c": 47}},
    )
    assert response.status_code == 422
    assert response.json()["item"] == "temperature_c"
    assert FormRecord.objects.filter(subject=subject).count() == 0
    # Only the refusal is recorded.
    assert [e.event for e in AuditEntry.objects.filter(sequence__gt=since)] == ["action.refused"]


def test_a_change_needs_a_reason_and_is_in_the_history(api: Api, subject: Subject) -> None:
    _visit_done(api, subject)
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    assert api.send("put", "bdx.coordinator", path, {"items": VITALS}).status_code == 200
    refused = api.send("put", "bdx.coordinator", path, {"items": {**VITALS, "weight_kg": 62.0}})
    assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    assert api.get("bdx.coordinator", path).json()["items"]["weight_kg"] == 61.5
    changed = api.send(
        "put", "bdx.coordinator", path, {"items": {**VITALS, "weight_kg": 62.0}, "reason": "scale recalibrated"}
    )
    assert changed.status_code == 200
    history = api.get("cra.monitor", f"{path}/history").json()["items"]
    weight = [c for c in history if c["item"] == "weight_kg"]
    assert [(c["old"], c["new"], c["reason"]) for c in weight] == [(None, 61.5, ""), (61.5, 62.0, "scale recalibrated")]
    assert weight[-1]["user"] == "bdx.coordinator"


def test_an_edit_check_opens_a_query_that_closes_when_the_data_is_fixed(api: Api, subject: Subject) -> None:
    _visit_done(api, subject)
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    response = api.send("put", "bdx.coordinator", path, {"items": {**VITALS, "diastolic_bp_mmhg": 130}})
    assert response.status_code == 200
    opened = response.json()["queries_opened"]
    assert len(opened) == 1
    query = Query.objects.get(pk=opened[0])
    assert (query.origin, query.status, query.item) == ("edit_check", "open", "diastolic_bp_mmhg")
    fixed = api.send("put", "bdx.coordinator", path, {"items": VITALS, "reason": "typo: 130 for 76"})
    assert fixed.json()["queries_closed"] == opened
    query.refresh_from_db()
    assert query.status == "closed"
    assert [m.move for m in query.messages.all()] == ["raise", "resolve"]


def test_manual_query_lifecycle_sdv_lock_and_signature(api: Api, subject: Subject, world: Any) -> None:
    _visit_done(api, subject)
    path = f"/subjects/{subject.code}/visits/D28/forms/vital_signs"
    assert api.send("put", "bdx.coordinator", path, {"items": VITALS}).status_code == 200
    raised = api.send(
        "post",
        "cra.monitor",
        f"/subjects/{subject.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": "Source says 65 kg?"},
    )
    assert raised.status_code == 201 and raised.json()["status"] == "open"
    query_id = raised.json()["id"]
    # The center answers; the monitor may not answer, the coordinator may not close.
    assert api.send("post", "cra.monitor", f"/queries/{query_id}/answer", {"text": "x"}).status_code == 403
    assert (
        api.send("post", "bdx.coordinator", f"/queries/{query_id}/answer", {"text": "Weighed again: 61.5 kg"}).json()[
            "status"
        ]
        == "answered"
    )
    assert api.send("post", "bdx.coordinator", f"/queries/{query_id}/close", {"reason": "x"}).status_code == 403
    assert api.send("post", "cra.monitor", f"/queries/{query_id}/close", {"reason": ""}).status_code == 422
    assert (
        api.send("post", "cra.monitor", f"/queries/{query_id}/close", {"reason": "Answer accepted"}).json()["status"]
        == "closed"
    )
    assert api.get("cra.monitor", "/queries?status=open").json()["items"] == []
    # SDV of every item, then lock, then signature.
    from cartrial.apps.access import reach_subject
    from cartrial.apps.casebook import services
    from cartrial.domain.roles import Action

    record = FormRecord.objects.get(subject=subject, form_code="vital_signs")
    reach = reach_subject(world.users["cra.monitor"], subject.code, Action.VERIFY_SOURCE)
    reach.run(lambda: services.form_verify(actor=reach.actor, record=record, protocol=world.protocol))
    record.refresh_from_db()
    assert record.status == "verified"
    locker = reach_subject(world.users["dm.datamanager"], subject.code, Action.LOCK_DATA)
    locker.run(lambda: services.forms_lock(actor=locker.actor, records=[record]))
    locked = api.send("put", "bdx.coordinator", path, {"items": {**VITALS, "weight_kg": 60}, "reason": "late"})
    assert locked.status_code == 409 and locked.json()["code"] == "form_locked"
    signer = reach_subject(world.users["bdx.investigator"], subject.code, Action.SIGN_CASEBOOK)
    with pytest.raises(Exception) as wrong:
        signer.run(
            lambda: services.casebook_sign(actor=signer.actor, user=signer.user, subject=subject, password="nope")
        )
    assert getattr(wrong.value, "code", "") == "wrong_password"
    signature = signer.run(
        lambda: services.casebook_sign(actor=signer.actor, user=signer.user, subject=subject, password=DEMO_PASSWORD)
    )
    record.refresh_from_db()
    assert record.status == "signed" and signature.entity == "casebook"
    # Unlocking voids the signature; the changed item loses its verification.
    unlocker = reach_subject(world.users["dm.datamanager"], subject.code, Action.LOCK_DATA)
    unlocker.run(lambda: services.forms_unlock(actor=unlocker.actor, records=[record], reason="late source document"))
    signature.refresh_from_db()
    assert signature.voided_at is not None
    changed = api.send(
        "put", "bdx.coordinator", path, {"items": {**VITALS, "weight_kg": 60}, "reason": "late source document"}
    )
    assert changed.status_code == 200 and changed.json()["status"] == "complete"
    record.refresh_from_db()
    assert "weight_kg" not in record.verified_json and "temperature_c" in record.verified_json


def test_a_query_on_an_item_of_another_center_is_not_found(api: Api, world: Any) -> None:
    other = world.new_subject("PAR", State.FOLLOW_UP)
    response = api.send(
        "post",
        "cra.monitor",
        f"/subjects/{other.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": "?"},
    )
    assert response.status_code == 404
    assert Query.objects.count() == 0


def test_lab_items_are_stored_once_in_the_lab_store_and_corrected_there(api: Api, subject: Subject) -> None:
    _visit_done(api, subject)
    path = f"/subjects/{subject.code}/visits/D28/forms/haematology"
    definition = __import__("cartrial.protocols", fromlist=["active_protocol"]).active_protocol().forms["haematology"]
    lab_items = [i for i in definition.items if i.analyte]
    assert lab_items, "the haematology form has lab items"
    first = lab_items[0]
    value = (first.minimum + first.maximum) / 2 if first.minimum is not None and first.maximum is not None else 1.0
    before = LabObservation.objects.filter(subject=subject).count()
    response = api.send(
        "put",
        "bdx.coordinator",
        path,
        {"items": {first.name: {"value": value, "unit": first.unit, "lower_limit": 1.0, "upper_limit": 7.0}}},
    )
    assert response.status_code == 200, response.json()
    rows = LabObservation.objects.filter(subject=subject).order_by("-pk")
    assert rows.count() == before + 1
    assert (rows[0].analyte, rows[0].value, rows[0].upper_limit) == (first.analyte, value, 7.0)
    again = api.send(
        "put",
        "bdx.coordinator",
        path,
        {
            "items": {first.name: {"value": value, "unit": first.unit, "lower_limit": 1.0, "upper_limit": 8.0}},
            "reason": "range from the report",
        },
    )
    assert again.status_code == 200
    assert LabObservation.objects.filter(subject=subject).count() == before + 1
    assert LabObservation.objects.get(pk=rows[0].pk).upper_limit == 8.0


def _csv(api: Api, username: str, form: str, body: str, reason: str = "") -> Any:
    path = f"/api/v1/forms/{form}/import.csv" + (f"?reason={reason}" if reason else "")
    return api.client(username).post(path, body.encode("utf-8"), content_type="text/csv")


def test_a_csv_import_goes_through_the_same_engine_all_rows_or_none(api: Api, world: Any) -> None:
    first = world.new_subject("BDX", State.FOLLOW_UP)
    second = world.new_subject("BDX", State.FOLLOW_UP)
    header = (
        "subject,visit,done_on,temperature_c,heart_rate_bpm,systolic_bp_mmhg,diastolic_bp_mmhg,spo2_pct,weight_kg\n"
    )
    good = f"{first.code},D28,{_d28(first)},37.2,80,120,75,97,60\n"
    bad = f"{second.code},D28,{_d28(second)},37.0,80,120,75,97,600\n"
    refused = _csv(api, "bdx.coordinator", "vital_signs", header + good + bad)
    assert refused.status_code == 422
    assert (refused.json()["item"], refused.json()["code"]) == ("weight_kg", "item_range")
    assert "3" in refused.json()["message"]  # the line of the refused row
    assert FormRecord.objects.count() == 0
    fixed = bad.replace(",600", ",61")
    accepted = _csv(api, "bdx.coordinator", "vital_signs", header + good + fixed)
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["rows"] == 2
    assert FormRecord.objects.get(subject=first, visit_code="D28").values_json["weight_kg"] == 60
    unknown = _csv(api, "bdx.coordinator", "vital_signs", "subject,visit,weight\n" + f"{first.code},D28,60\n")
    assert unknown.status_code == 422 and unknown.json()["item"] == "weight"


def test_a_csv_row_of_a_subject_outside_the_scope_stores_nothing(api: Api, world: Any) -> None:
    own = world.new_subject("BDX", State.FOLLOW_UP)
    other = world.new_subject("PAR", State.FOLLOW_UP)
    header = "subject,visit,done_on,temperature_c\n"
    body = header + f"{own.code},D28,{_d28(own)},37.0\n" + f"{other.code},D28,{_d28(other)},37.0\n"
    response = _csv(api, "bdx.coordinator", "vital_signs", body)
    assert response.status_code == 404
    assert FormRecord.objects.count() == 0


def test_a_visit_counting_from_an_unknown_date_cannot_be_recorded(api: Api, world: Any) -> None:
    included = world.new_subject("BDX", State.INCLUDED)
    assert included.infusion_date is None
    day = (included.created_at + timedelta(days=1)).date().isoformat()
    response = api.send("put", "bdx.coordinator", f"/subjects/{included.code}/visits/D28", {"done_on": day})
    assert response.status_code == 409 and response.json()["code"] == "visit_anchor_unknown"
    missed = api.send("put", "bdx.coordinator", f"/subjects/{included.code}/visits/D28", {"missed": True, "reason": ""})
    assert missed.status_code == 422 and missed.json()["item"] == "reason"


def _inclusion_date(subject: Subject) -> str:
    from cartrial.apps.casebook.selectors import subject_anchors

    inclusion = subject_anchors(subject).inclusion
    assert inclusion is not None
    return inclusion.isoformat()


@pytest.mark.parametrize(
    ("case", "visit", "body", "code", "item"),
    [
        ("unit", "D28", {"items": {"platelets": {"value": 250, "unit": "mmol/L"}}}, "item_unit", "platelets"),
        ("visit before inclusion", "D1", {"done_on": "INCLUSION-1"}, "visit_date_before_inclusion", "visit_date"),
        ("visit in the future", "D1", {"done_on": "2999-01-01"}, "visit_date_in_future", "visit_date"),
    ],
)
def test_bad_input_is_refused_with_its_item_and_rule_and_nothing_is_stored(
    api: Api, subject: Subject, case: str, visit: str, body: dict[str, Any], code: str, item: str
) -> None:
    """Issue 9's bad input through the API: a unit the item does not accept, a visit dated before
    inclusion or in the future (the form's own date is the visit's)."""
    if "items" in body:
        _visit_done(api, subject)
        path = f"/subjects/{subject.code}/visits/{visit}/forms/haematology"
    else:
        path = f"/subjects/{subject.code}/visits/{visit}"
        if body["done_on"] == "INCLUSION-1":
            body = {"done_on": (date.fromisoformat(_inclusion_date(subject)) - timedelta(days=1)).isoformat()}
    visits_before = VisitRecord.objects.filter(subject=subject).count()
    labs_before = LabObservation.objects.filter(subject=subject).count()
    response = api.send("put", "bdx.coordinator", path, body)
    assert response.status_code == 422, case
    assert (response.json()["code"], response.json()["item"]) == (code, item), response.json()
    assert FormRecord.objects.filter(subject=subject, visit_code=visit, form_code="haematology").count() == 0
    assert VisitRecord.objects.filter(subject=subject).count() == visits_before
    assert LabObservation.objects.filter(subject=subject).count() == labs_before


def test_a_cross_form_check_is_judged_again_when_the_form_it_reads_is_saved(world: Any, subject: Subject) -> None:
    """A vital-signs check reading the chemistry's CRP (fever with a CRP under 10 mg/L) opens its query
    on the vital signs when the chemistry is saved, and closes it when the CRP is corrected."""
    import copy
    import dataclasses

    from cartrial.apps.access import reach_subject
    from cartrial.apps.casebook import services
    from cartrial.domain.ecrf import parse_forms
    from cartrial.domain.roles import Action

    raw = copy.deepcopy(list(world.protocol.raw["forms"]))
    vitals = next(form for form in raw if form["code"] == "vital_signs")
    vitals["edit_checks"].append(
        {
            "code": "fever_with_low_crp",
            "rule": {"any": [{"item": "temperature_c", "lt": 38}, {"item": "chemistry.crp", "gte": 10}]},
            "message": {"en": "Fever with a low CRP: check both", "fr": "Fièvre avec une CRP basse : vérifier"},
            "items": ["temperature_c"],
        }
    )
    protocol = dataclasses.replace(world.protocol, forms=parse_forms(raw))

    def save(form: str, items: dict[str, Any], reason: str = "") -> Any:
        reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
        return reach.run(
            lambda: services.form_save(
                actor=reach.actor,
                subject=reach.subject,
                protocol=protocol,
                visit_code="D28",
                form_code=form,
                items=items,
                reason=reason,
            )
        )

    def fever_queries() -> list[str]:
        rows = Query.objects.filter(subject=subject, form_code="vital_signs", check_code="fever_with_low_crp")
        return [q.status for q in rows]

    assert subject.infusion_date is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: services.visit_done_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code="D28",
            done_on=subject.infusion_date + timedelta(days=28),
        )
    )
    assert save("vital_signs", {**VITALS, "temperature_c": 38.9}).queries_opened == []  # CRP not known yet
    chemistry = {"creatinine": {"value": 70, "unit": "umol/L"}, "crp": {"value": 3, "unit": "mg/L"}}
    saved = save("chemistry", chemistry)
    assert [q.form_code for q in saved.queries_opened] == ["vital_signs"]
    assert fever_queries() == ["open"]
    fixed = save("chemistry", {**chemistry, "crp": {"value": 45, "unit": "mg/L"}}, reason="lab report: 45")
    assert [q.form_code for q in fixed.queries_closed] == ["vital_signs"]
    assert fever_queries() == ["closed"]
