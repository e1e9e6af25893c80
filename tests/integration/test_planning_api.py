"""The planning API as the pages offer it: capacities changed with a reason (all or nothing) and their
history, free chains, bookings and reservations as pages read since a time, new dates asked for a
subject; the same rules, refusals and scope as the pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.planning import services
from cartrial.apps.planning.models import CenterCapacity, FacilityCapacity, ReplanProposal
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

# A Monday: BDX does apheresis on Mondays and Wednesdays, the lab starts no batch on weekends.
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def network(world) -> Iterator[Any]:
    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        yield world


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="planning")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _change(client: Client, kind: str, record: str, values: dict[str, Any], reason: str = "new room") -> Any:
    body = {"kind": kind, "record": record, "values": values, "reason": reason}
    return client.post("/api/v1/planning/capacities", body, content_type="application/json")


def _book(world: Any, subject: Any) -> dict[str, Any]:
    """Book the subject's earliest free chain through the API; its booking."""
    client = _api(world, f"{subject.center.code.lower()}.coordinator")
    chain = client.get("/api/v1/planning/slots", {"center": subject.center.code, "count": 1}).json()["items"][0]
    body = {k: chain[k] for k in ("apheresis", "facility", "manufacturing_start", "infusion")}
    booked = client.post(f"/api/v1/subjects/{subject.code}/bookings", body, content_type="application/json")
    assert booked.status_code == 201, booked.content
    return dict(booked.json())


# --- capacities -----------------------------------------------------------------------------------------


def test_capacities_change_with_a_reason_all_or_nothing(network) -> None:
    admin = _api(network, "sponsor.admin")
    changed = _change(admin, "facility", "lab", {"lines": 3, "qc_days": 6})
    assert changed.status_code == 200, changed.content
    lab = next(f for f in changed.json()["facilities"] if f["id"] == "LAB")
    assert (lab["lines"], lab["qc_days"], lab["closed_weekdays"]) == (3, 6, [5, 6])
    # One value out of its range refuses them all, names it, and the refusal is recorded.
    refused = _change(admin, "facility", "LAB", {"qc_days": 5, "lines": 80})
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["item"]) == ("value_out_of_range", "lines")
    stored = FacilityCapacity.objects.get(center__code="LAB")
    assert (stored.lines, stored.qc_days) == (3, 6)
    assert AuditEntry.objects.filter(event=AuditEvent.ACTION_REFUSED.value, entity="facility").count() == 1
    # A value a center has not, weekdays outside the week, no reason: each named.
    not_a_center_value = _change(admin, "center", "BDX", {"lines": 2})
    assert not_a_center_value.status_code == 422 and not_a_center_value.json()["item"] == "lines"
    bad_day = _change(admin, "center", "BDX", {"apheresis_weekdays": [0, 7]})
    assert bad_day.status_code == 422 and bad_day.json()["code"] == "invalid_weekdays"
    no_reason = _change(admin, "center", "BDX", {"apheresis_per_day": 2}, reason=" ")
    assert no_reason.status_code == 422 and no_reason.json()["item"] == "reason"
    days = _change(admin, "center", "BDX", {"apheresis_weekdays": [0, 2, 4], "apheresis_per_day": 2})
    bdx = next(c for c in days.json()["centers"] if c["id"] == "BDX")
    assert (bdx["apheresis_weekdays"], bdx["apheresis_per_day"]) == ([0, 2, 4], 2)
    shipping = _change(admin, "shipping", "BDX-LAB", {"days": 2})
    assert next(c for c in shipping.json()["centers"] if c["id"] == "BDX")["ship_days"] == {"LAB": 2}
    unknown = _change(admin, "shipping", "BDX-XYZ", {"days": 2})
    assert unknown.status_code == 404 and unknown.json()["item"] == "record"
    assert CenterCapacity.objects.get(center__code="BDX").apheresis_per_day == 2
    coordinator = _change(_api(network, "bdx.coordinator"), "center", "BDX", {"apheresis_per_day": 3})
    assert coordinator.status_code == 403 and CenterCapacity.objects.get(center__code="BDX").apheresis_per_day == 2


def test_the_capacity_history_is_a_page_read_since_a_time(network) -> None:
    admin = _api(network, "sponsor.admin", HTTP_ACCEPT_LANGUAGE="fr")
    with clock.frozen_at(MONDAY + timedelta(hours=1)):
        assert _change(admin, "facility", "LAB", {"lines": 3}).status_code == 200
    cut = MONDAY + timedelta(hours=2)
    with clock.frozen_at(MONDAY + timedelta(hours=3)):
        assert _change(admin, "facility", "LAB", {"qc_days": 6}, reason="faster assay").status_code == 200
    recent = admin.get("/api/v1/planning/capacities/history", {"since": cut.isoformat()}).json()
    assert recent["total"] == 1
    (entry,) = recent["items"]
    assert (entry["username"], entry["entity"], entry["record"], entry["reason"]) == (
        "sponsor.admin",
        "facility_capacity",
        "LAB",
        "faster assay",
    )
    assert entry["changes"] == [{"field": "qc_days", "old": 7, "new": 6}]
    everything = admin.get("/api/v1/planning/capacities/history", {"limit": 2}).json()
    # Newest first: the two changes, then the set-up of the protocol's capacities (one per record).
    assert [e["changes"][0]["field"] for e in everything["items"]] == ["qc_days", "lines"]
    assert everything["total"] == 2 + 6 and everything["next_offset"] == 2
    assert _api(network, "bdx.coordinator").get("/api/v1/planning/capacities/history").status_code == 403


# --- free chains, bookings, reservations -----------------------------------------------------------------


def test_free_chains_are_a_page_read_again_when_a_booking_or_a_capacity_changed(network) -> None:
    coordinator = _api(network, "bdx.coordinator")
    three = coordinator.get("/api/v1/planning/slots", {"center": "BDX", "count": 3, "limit": 2}).json()
    assert len(three["items"]) == 2 and three["total"] == 3 and three["next_offset"] == 2
    assert three["items"][0]["apheresis"] == "2026-12-07" and three["items"][0]["facility"] == "LAB"
    too_many = coordinator.get("/api/v1/planning/slots", {"center": "BDX", "count": 21})
    assert too_many.status_code == 422 and [f["field"] for f in too_many.json()["fields"]] == ["count"]
    assert coordinator.get("/api/v1/planning/slots", {"center": "LIL"}).status_code == 404
    assert _api(network, "bdx.apheresis").get("/api/v1/planning/slots", {"center": "BDX"}).status_code == 403
    cut = MONDAY + timedelta(hours=1)
    unchanged = coordinator.get("/api/v1/planning/slots", {"center": "BDX", "since": cut.isoformat()}).json()
    assert unchanged == {"items": [], "total": 0, "next_offset": None}
    with clock.frozen_at(MONDAY + timedelta(hours=2)):
        _book(network, network.new_subject("BDX", State.INCLUDED))
        again = coordinator.get("/api/v1/planning/slots", {"center": "BDX", "since": cut.isoformat()}).json()
    # BDX collects one apheresis a day: the booked Monday is no longer free.
    assert again["total"] == 5 and again["items"][0]["apheresis"] != "2026-12-07"


def test_bookings_and_reservations_are_pages_read_since_a_time(network) -> None:
    first, second = network.new_subject("BDX", State.INCLUDED), network.new_subject("BDX", State.INCLUDED)
    with clock.frozen_at(MONDAY + timedelta(hours=1)):
        booked_first = _book(network, first)
    cut = MONDAY + timedelta(hours=2)
    with clock.frozen_at(MONDAY + timedelta(hours=3)):
        booked_second = _book(network, second)
    lab = _api(network, "lab.manufacturing")
    every = lab.get("/api/v1/planning/reservations").json()
    assert [b["id"] for b in every["items"]] == [booked_first["id"], booked_second["id"]]
    assert {b["subject"] for b in every["items"]} == {first.code, second.code}
    recent = lab.get("/api/v1/planning/reservations", {"since": cut.isoformat()}).json()
    assert [b["id"] for b in recent["items"]] == [booked_second["id"]]
    coordinator = _api(network, "bdx.coordinator")
    url = f"/api/v1/subjects/{first.code}/bookings"
    assert coordinator.get(url, {"since": cut.isoformat()}).json()["items"] == []
    with clock.frozen_at(MONDAY + timedelta(hours=4)):
        cancelled = coordinator.delete(
            f"{url}/{booked_first['id']}", {"reason": "moved"}, content_type="application/json"
        )
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"] is not None
    changed = coordinator.get(url, {"since": cut.isoformat()}).json()["items"]
    assert [(b["id"], b["active"], b["cancel_reason"]) for b in changed] == [(booked_first["id"], False, "moved")]
    assert _api(network, "lil.coordinator").get(url).status_code == 404
    assert _api(network, "cra.monitor").get(url).status_code == 403


# --- re-planning -------------------------------------------------------------------------------------------


def test_a_coordinator_asks_new_dates_and_reads_the_subjects_proposals(network) -> None:
    subject = network.new_subject("BDX", State.INCLUDED)
    url = f"/api/v1/subjects/{subject.code}/proposals"
    assert _api(network, "bdx.apheresis").post(url, {"reason": "x"}, content_type="application/json").status_code == 403
    assert (
        _api(network, "lil.coordinator").post(url, {"reason": "x"}, content_type="application/json").status_code == 404
    )
    coordinator = _api(network, "bdx.coordinator")
    asked = coordinator.post(url, {"reason": "The patient asked for a later date"}, content_type="application/json")
    assert asked.status_code == 201, asked.content
    proposal = asked.json()
    assert (proposal["trigger"], proposal["status"], proposal["detail"], proposal["can_decide"]) == (
        "manual",
        "pending",
        "The patient asked for a later date",
        True,
    )
    (row,) = proposal["subjects"]
    assert row["subject"] == subject.code and row["before"]["apheresis"] is None and row["after"]["apheresis"]
    assert ReplanProposal.objects.get().created_by == network.users["bdx.coordinator"]
    listed = coordinator.get("/api/v1/planning/proposals", {"subject": subject.code, "status": "pending"}).json()
    assert [p["id"] for p in listed["items"]] == [proposal["id"]]
    other = network.new_subject("BDX", State.INCLUDED)
    assert coordinator.get("/api/v1/planning/proposals", {"subject": other.code}).json()["items"] == []
    assert coordinator.get("/api/v1/planning/proposals", {"subject": "LIL-001"}).status_code == 404
    cut = MONDAY + timedelta(hours=1)
    assert coordinator.get("/api/v1/planning/proposals", {"since": cut.isoformat()}).json()["items"] == []
    with clock.frozen_at(MONDAY + timedelta(hours=2)):
        decided = coordinator.post(
            f"/api/v1/planning/proposals/{proposal['id']}/reject",
            {"reason": "not now"},
            content_type="application/json",
        )
    assert decided.status_code == 200 and decided.json()["status"] == "rejected"
    again = coordinator.get("/api/v1/planning/proposals", {"since": cut.isoformat()}).json()["items"]
    assert [(p["id"], p["status"], p["can_decide"]) for p in again] == [(proposal["id"], "rejected", True)]
    bad = coordinator.get("/api/v1/planning/proposals", {"status": "forgotten"})
    assert bad.status_code == 422 and [f["field"] for f in bad.json()["fields"]] == ["status"]


def test_no_new_dates_without_capacities_is_refused_naming_the_request(world) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    refused = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/proposals", {"reason": "x"}, content_type="application/json"
    )
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["item"]) == ("no_proposal", "propose")
    assert not ReplanProposal.objects.exists()
