"""The calendars' month and week through the API: the events the pages show (the same collector and
scope), in the request's language, as a page read since a time; the same refusals as the pages, as
JSON (422 naming the item, 404 for a center outside the scope)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import scope_for
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.calendars.selectors import calendar_events
from cartrial.apps.logistics.models import Collection
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db

T0 = clock.now().replace(microsecond=0)
LAB_KINDS = {"material_arrival", "manufacturing_start", "product_release", "product_shipped"}


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="calendar")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def test_the_month_holds_the_pages_events_in_the_requests_language(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    world.new_subject("LIL", State.FOLLOW_UP)  # another center's
    d0 = subject.infusion_date
    client = _api(world, "bdx.coordinator", HTTP_ACCEPT_LANGUAGE="fr")
    month = client.get("/api/v1/calendars/month", {"month": _month(d0)})
    assert month.status_code == 200, month.content
    body = month.json()
    first, last = d0.replace(day=1), (d0.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    assert (body["first_day"], body["last_day"]) == (first.isoformat(), last.isoformat())
    expected = calendar_events(scope_for(world.users["bdx.coordinator"]), first, last, protocol=world.protocol)
    assert [e["uid"] for e in body["items"]] == [e.uid for e in expected] and body["total"] == len(expected)
    assert {e["subject"] for e in body["items"]} == {subject.code}
    infusion = next(e for e in body["items"] if e["kind"] == "infusion")
    assert (infusion["start"], infusion["label"], infusion["link"]) == (
        d0.isoformat(),
        "Perfusion (J0)",
        f"/subjects/{subject.code}/",
    )
    assert infusion["summary"] == f"{subject.code} · Perfusion (J0)" and not infusion["planned"]
    assert body["centers"] == ["BDX"] and body["center"] is None and body["role"] is None
    assert "manufacturing" in {s["role"] for s in body["services"]}
    window = client.get("/api/v1/calendars/month", {"month": _month(d0), "limit": 1}).json()
    assert len(window["items"]) == 1 and window["next_offset"] == (1 if body["total"] > 1 else None)


def test_the_week_is_monday_to_sunday_and_filters_as_the_page(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    d0 = subject.infusion_date
    monday = d0 - timedelta(days=d0.weekday())
    client = _api(world, "bdx.coordinator")
    week = client.get("/api/v1/calendars/week", {"week": d0.isoformat()}).json()
    assert (week["first_day"], week["last_day"]) == (monday.isoformat(), (monday + timedelta(days=6)).isoformat())
    assert "infusion" in {e["kind"] for e in week["items"]}
    assert all(e["start"] <= week["last_day"] and e["end"] >= week["first_day"] for e in week["items"])
    lab_service = client.get("/api/v1/calendars/week", {"week": d0.isoformat(), "role": "manufacturing"}).json()
    assert lab_service["role"] == "manufacturing" and {e["kind"] for e in lab_service["items"]} <= LAB_KINDS
    # The lab reads only its service's events of the subjects it manufactures.
    lab = _api(world, "lab.manufacturing").get("/api/v1/calendars/week", {"week": d0.isoformat()}).json()
    assert {e["kind"] for e in lab["items"]} <= LAB_KINDS


def test_a_bad_period_or_service_is_refused_naming_it_and_another_center_is_not_found(world: Any) -> None:
    client = _api(world, "bdx.coordinator")
    month = client.get("/api/v1/calendars/month", {"month": "2026-13"})
    assert month.status_code == 422 and (month.json()["code"], month.json()["item"]) == ("invalid_month", "month")
    week = client.get("/api/v1/calendars/week", {"week": "tomorrow"})
    assert week.status_code == 422 and (week.json()["code"], week.json()["item"]) == ("invalid_date", "week")
    role = client.get("/api/v1/calendars/month", {"role": "monitor"})
    assert role.status_code == 422 and role.json()["item"] == "role"
    other = client.get("/api/v1/calendars/month", {"center": "LIL"})
    assert other.status_code == 404 and (other.json()["code"], other.json()["item"]) == ("not_found", "center")
    assert client.get("/api/v1/calendars/month", {"center": "bdx"}).json()["center"] == "BDX"
    assert Client().get("/api/v1/calendars/month").status_code == 401


def test_since_holds_the_events_of_the_subjects_whose_records_changed_after_it(world: Any) -> None:
    with clock.frozen_at(T0):
        received = world.new_subject("BDX", State.MATERIAL_SHIPPED)
        untouched = world.new_subject("BDX", State.MATERIAL_SHIPPED)
    departed = received.shipments.get().actual_departure_at.astimezone(ZoneInfo("Europe/Paris")).date()
    client = _api(world, "bdx.coordinator")
    cut = T0 + timedelta(hours=1)

    def week(**since: str) -> list[tuple[str, str]]:
        found = client.get("/api/v1/calendars/week", {"week": departed.isoformat(), **since})
        assert found.status_code == 200, found.content
        return [(e["subject"], e["kind"]) for e in found.json()["items"]]

    assert {subject for subject, _ in week()} == {received.code, untouched.code}
    assert week(since=cut.isoformat()) == []
    with clock.frozen_at(T0 + timedelta(hours=2)):
        collection = Collection.objects.get(subject=received)
        world.act(
            "lab.manufacturing",
            received,
            Action.RECEIVE_MATERIAL,
            scanned_code=collection.din + collection.check_character,
        )
    changed = week(since=cut.isoformat())
    assert changed and {subject for subject, _ in changed} == {received.code}
    assert (received.code, "material_shipped") in changed
