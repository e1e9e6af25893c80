"""The pathway's API beyond registration and transitions (issue 12, item 8): pages read since an
instant, a step's form, the timeline, the consent read, the corrections' fields, and the feed of
changes of the audit trail (scoped to the subjects whose trail the caller may read, without values).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import Client
from ninja import Schema

import cartrial.apps
from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create, membership_grant
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import Subject
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action, Role

pytestmark = pytest.mark.django_db


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _get(client: Client, path: str, **query: object) -> Any:
    response = client.get(f"{path}?{urlencode(query)}" if query else path)
    assert response.status_code == 200, response.content
    return response.json()


def _last_sequence() -> int:
    entry = AuditEntry.objects.order_by("-sequence").first()
    return entry.sequence if entry else 0


# --- pages and since ------------------------------------------------------------------------------


def test_the_subject_list_is_a_page_read_since_a_cut(world: Any) -> None:
    start = clock.now()
    with clock.frozen_at(start - timedelta(hours=3)):
        first = world.new_subject("BDX")
    with clock.frozen_at(start - timedelta(hours=1)):
        second = world.new_subject("BDX")
    client = _api(world, "bdx.coordinator")
    whole = _get(client, "/api/v1/subjects")
    assert [s["code"] for s in whole["items"]] == [first.code, second.code]
    assert whole["total"] == 2 and whole["next_offset"] is None
    window = _get(client, "/api/v1/subjects", limit=1)
    assert [s["code"] for s in window["items"]] == [first.code] and window["next_offset"] == 1
    cut = (start - timedelta(hours=2)).isoformat()
    assert [s["code"] for s in _get(client, "/api/v1/subjects", since=cut)["items"]] == [second.code]
    # A step on the first subject after the cut brings it back: any change of the subject counts.
    with clock.frozen_at(start - timedelta(minutes=30)):
        world.step(
            "bdx.coordinator",
            first,
            Step.START_SCREENING,
            document_version="1.0",
            language="fr",
            signed_on=start.date() - timedelta(days=1),
        )
    later = (start - timedelta(minutes=45)).isoformat()
    assert [s["code"] for s in _get(client, "/api/v1/subjects", since=later)["items"]] == [first.code]
    assert _get(client, "/api/v1/subjects", since=clock.now().isoformat())["items"] == []


def test_centers_since_lists_a_role_granted_after_the_cut(world: Any) -> None:
    client = _api(world, "bdx.coordinator")
    cut = clock.now()
    assert _get(client, "/api/v1/centers", since=cut.isoformat())["items"] == []
    with transaction.atomic(), clock.frozen_at(cut + timedelta(seconds=1)):
        membership_grant(
            actor=Actor.system("test"),
            user=world.users["bdx.coordinator"],
            center=world.centers["LIL"],
            role=Role.MONITOR,
        )
    since = _get(client, "/api/v1/centers", since=cut.isoformat())
    assert [(c["code"], c["my_role"]) for c in since["items"]] == [("LIL", "monitor")]
    assert [c["code"] for c in _get(client, "/api/v1/centers")["items"]] == ["BDX", "LIL"]


def test_steps_are_listed_since_the_state_changed_and_with_the_no_infusion_decision(world: Any) -> None:
    subject = world.new_subject("BDX", State.MANUFACTURING_FAILED)
    investigator = _api(world, "bdx.investigator")
    steps = _get(investigator, f"/api/v1/subjects/{subject.code}/steps")["items"]
    offered = {s["step"]: s for s in steps}
    assert offered[Action.DECIDE_NO_INFUSION.value]["exit"] is True
    assert offered[Step.WITHDRAW.value]["exit"] is True and offered[Step.WITHDRAW.value]["main"] is False
    changed = subject.state_changed_at
    before = (changed - timedelta(seconds=1)).isoformat()
    after = (changed + timedelta(seconds=1)).isoformat()
    assert _get(investigator, f"/api/v1/subjects/{subject.code}/steps", since=before)["items"] == steps
    assert _get(investigator, f"/api/v1/subjects/{subject.code}/steps", since=after)["items"] == []
    coordinator = _api(world, "bdx.coordinator")
    assert Action.DECIDE_NO_INFUSION.value not in {
        s["step"] for s in _get(coordinator, f"/api/v1/subjects/{subject.code}/steps")["items"]
    }


# --- a step's form ---------------------------------------------------------------------------------


def test_a_steps_form_lists_the_fields_its_data_takes(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _api(world, "bdx.coordinator")
    form = _get(client, f"/api/v1/subjects/{subject.code}/steps/start_screening")
    assert form["step"] == "start_screening" and form["offered"] is True
    fields = {f["name"]: f for f in form["fields"]}
    assert list(fields) == ["document_version", "language", "signed_on"]
    assert fields["signed_on"]["type"] == "date" and fields["signed_on"]["required"] is True
    assert fields["document_version"]["type"] == "choice"
    versions = {c["value"] for c in fields["document_version"]["choices"]}
    assert versions == {d.version for d in world.protocol.consent_documents}
    french = _get(
        _api(world, "bdx.coordinator", HTTP_ACCEPT_LANGUAGE="fr"),
        f"/api/v1/subjects/{subject.code}/steps/start_screening",
    )
    assert french["fields"][2]["label"] != fields["signed_on"]["label"]
    collect = _get(client, f"/api/v1/subjects/{subject.code}/steps/collect_apheresis")
    assert collect["offered"] is False
    volume = next(f for f in collect["fields"] if f["name"] == "volume_ml")
    assert volume["type"] == "number" and volume["minimum"] is not None and volume["maximum"] > volume["minimum"]
    started = next(f for f in collect["fields"] if f["name"] == "started_at")
    assert started["type"] == "datetime"
    include = _get(client, f"/api/v1/subjects/{subject.code}/steps/include")
    assert include["fields"][0]["type"] == "password"


def test_a_steps_form_refusals(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _api(world, "bdx.coordinator")
    unknown = client.get(f"/api/v1/subjects/{subject.code}/steps/teleport")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_step"
    assert unknown.json()["item"] == "step"
    outside = _api(world, "lil.coordinator").get(f"/api/v1/subjects/{subject.code}/steps/start_screening")
    assert outside.status_code == 404 and outside.json()["code"] == "not_found"


# --- timeline, consent -----------------------------------------------------------------------------


def test_the_timeline_is_the_steps_taken_read_since_a_cut(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    client = _api(world, "bdx.pharmacist", HTTP_ACCEPT_LANGUAGE="fr")
    timeline = _get(client, f"/api/v1/subjects/{subject.code}/timeline")
    steps = [e["step"] for e in timeline["items"]]
    assert steps == [Step.START_SCREENING.value, Step.CONFIRM_ELIGIBILITY.value, Step.INCLUDE.value]
    include = timeline["items"][-1]
    assert include["to_state"] == State.INCLUDED.value and include["state_label"] == "Inclus"
    assert include["signature_meaning"] and include["role"] == Role.INVESTIGATOR.value
    cut = clock.now()
    assert _get(client, f"/api/v1/subjects/{subject.code}/timeline", since=cut.isoformat())["items"] == []
    with clock.frozen_at(cut + timedelta(seconds=1)):
        world.step("bdx.coordinator", subject, Step.WITHDRAW, reason="Moving abroad")
    after = _get(client, f"/api/v1/subjects/{subject.code}/timeline", since=cut.isoformat())["items"]
    assert [e["step"] for e in after] == [Step.WITHDRAW.value] and after[0]["reason"] == "Moving abroad"
    outside = _api(world, "lil.coordinator").get(f"/api/v1/subjects/{subject.code}/timeline")
    assert outside.status_code == 404


def test_the_consent_read_shows_what_the_consent_page_shows(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    status = _get(_api(world, "cra.monitor"), f"/api/v1/subjects/{subject.code}/consent")
    assert [(c["document_version"], c["language"]) for c in status["consents"]] == [("1.0", "fr")]
    assert status["consent_current"] is True and status["reconsent_due"] is False
    assert status["withdrawal"] is None and status["final"] is False
    assert {v["language"] for v in status["current_versions"]} == set(world.protocol.current_consent_versions())
    pharmacist = _api(world, "bdx.pharmacist").get(f"/api/v1/subjects/{subject.code}/consent")
    assert pharmacist.status_code == 403 and pharmacist.json()["code"] == "access_denied"
    outside = _api(world, "lil.coordinator").get(f"/api/v1/subjects/{subject.code}/consent")
    assert outside.status_code == 404
    today = clock.now().date().isoformat()
    coordinator = _api(world, "bdx.coordinator")
    withdrawn = coordinator.post(
        f"/api/v1/subjects/{subject.code}/consent/withdrawal",
        {"withdrawn_on": today, "reason": "Moving abroad"},
        content_type="application/json",
    )
    assert withdrawn.status_code == 200
    after = _get(coordinator, f"/api/v1/subjects/{subject.code}/consent")
    assert after["withdrawal"]["reason"] == "Moving abroad" and after["withdrawal"]["exited_study"] is True
    assert after["final"] is True and after["reconsent_due"] is False


# --- audit trail, corrections -----------------------------------------------------------------------


def test_the_audit_trail_is_a_page_of_typed_changes_read_since_a_cut(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _api(world, "bdx.investigator")
    trail = _get(client, f"/api/v1/subjects/{subject.code}/audit")
    created = trail["items"][0]
    assert created["event"] == "subject.created"
    assert {"field": "state", "old": None, "new": State.PRE_SCREENING.value} in created["changes"]
    cut = clock.now()
    with clock.frozen_at(cut + timedelta(seconds=1)):
        world.step("bdx.coordinator", subject, Step.WITHDRAW, reason="Changed her mind")
    since = _get(client, f"/api/v1/subjects/{subject.code}/audit", since=cut.isoformat())
    assert [e["event"] for e in since["items"]] == ["pathway.step"] and since["total"] == 1
    assert {"field": "step", "old": None, "new": "withdraw"} in since["items"][0]["changes"]


def test_the_correction_history_says_the_records_fields_and_who_may_correct(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    consent = subject.consents.get()
    path = f"/api/v1/subjects/{subject.code}/corrections?record=consent&id={consent.pk}"
    coordinator = _api(world, "bdx.coordinator").get(path).json()
    assert coordinator["fields"] == [
        {"name": "signed_on", "label": "date the consent was signed", "type": "date", "unit": ""}
    ]
    assert coordinator["values"] == {"signed_on": consent.signed_on.isoformat()}
    assert coordinator["may_correct"] is True
    monitor = _api(world, "cra.monitor").get(path).json()
    assert monitor["may_correct"] is False and monitor["values"] == coordinator["values"]


# --- the feed of changes ---------------------------------------------------------------------------


def test_the_feed_holds_only_the_subjects_whose_trail_i_may_read(world: Any) -> None:
    own = world.new_subject("BDX", State.SCREENING)
    other = world.new_subject("LIL", State.SCREENING)
    feed = _get(_api(world, "bdx.investigator"), "/api/v1/changes", limit=1000)
    expected = AuditEntry.objects.filter(subject_code=own.code).order_by("sequence")
    assert [e["sequence"] for e in feed["items"]] == [e.sequence for e in expected]
    assert feed["total"] == expected.count() and {e["subject"] for e in feed["items"]} == {own.code}
    assert other.code not in str(feed)
    first = feed["items"][0]
    assert set(first) == {"sequence", "occurred_at", "event", "entity", "entity_id", "subject", "center"}
    assert (first["event"], first["entity"], first["entity_id"]) == ("subject.created", "subject", own.code)
    # The monitor reads both centers' trails; the lab and the pharmacist none.
    monitor = _get(_api(world, "cra.monitor"), "/api/v1/changes", limit=1000)
    assert {e["subject"] for e in monitor["items"]} == {own.code, other.code}
    pharmacist = _api(world, "bdx.pharmacist")
    before = _last_sequence()
    refused = pharmacist.get("/api/v1/changes")
    assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
    entry = AuditEntry.objects.get(sequence__gt=before)
    assert (entry.event, entry.entity, entry.entity_id) == ("access.refused", "page", "changes")


def test_the_feed_cut_by_since_and_by_a_sequence_cursor(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _api(world, "dm.datamanager")
    cursor = _last_sequence()
    cut = clock.now()
    assert _get(client, "/api/v1/changes", after=cursor)["items"] == []
    with clock.frozen_at(cut + timedelta(seconds=1)):
        world.step(
            "bdx.coordinator",
            subject,
            Step.START_SCREENING,
            document_version="1.0",
            language="fr",
            signed_on=cut.date() - timedelta(days=1),
        )
    after = _get(client, "/api/v1/changes", after=cursor)["items"]
    assert [e["event"] for e in after] == ["consent.recorded", "pathway.step"]
    assert all(e["subject"] == subject.code and e["center"] == "BDX" for e in after)
    assert _get(client, "/api/v1/changes", since=cut.isoformat())["items"] == after
    assert _get(client, "/api/v1/changes", after=after[0]["sequence"])["items"] == after[1:]
    # The cursor and the window together: one entry per page, the next page's offset given.
    first = _get(client, "/api/v1/changes", after=cursor, limit=1)
    assert first["items"] == after[:1] and first["next_offset"] == 1
    bad = client.get("/api/v1/changes?after=-1")
    assert bad.status_code == 422 and [f["field"] for f in bad.json()["fields"]] == ["after"]


def test_the_feed_never_shows_a_value(world: Any) -> None:
    subject = world.new_subject("BDX")
    assert Subject.objects.filter(pk=subject.pk).exists()
    body = _api(world, "bdx.investigator").get("/api/v1/changes").content.decode()
    assert "Testpatient" not in body and "IPP" not in body and "recorded (encrypted)" not in body
    assert '"changes"' not in body and '"old"' not in body and '"new"' not in body


def test_no_two_api_schemas_share_a_name() -> None:
    """The OpenAPI schema names a body by its class: two classes of one name would share one
    description (the first one's), so a client would read the wrong fields."""
    modules: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(cartrial.apps.__path__):
        try:
            module = importlib.import_module(f"cartrial.apps.{info.name}.api")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, Schema) and value.__module__ == module.__name__:
                modules.setdefault(value.__name__, []).append(module.__name__)
    assert {name: where for name, where in modules.items() if len(where) > 1} == {}
