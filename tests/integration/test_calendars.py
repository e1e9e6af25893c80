"""Calendars (issue 11, item 5): the events each role's calendar holds, scoped by the user's centers;
the month and week pages in French; the iCalendar feeds parsed back, pseudonymous only; the month
page's reads in a fixed number of queries whatever the number of subjects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar

from cartrial.apps import clock
from cartrial.apps.access import scope_for
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.calendars.selectors import calendar_events
from cartrial.apps.logistics.models import Collection, ManufacturingBatch, Thaw
from cartrial.apps.subjects.models import Subject
from cartrial.domain.calendars import CalendarEvent, EventKind
from cartrial.domain.pathway import State
from cartrial.domain.roles import Role

pytestmark = pytest.mark.django_db

# Who sees what, from the issue: the apheresis unit its aphereses (and the material it ships), the lab
# the material's arrival, its batch starts, releases and shipments out, the pharmacy the product's
# arrival, thaws and infusions; the clinical team everything of its center.
APHERESIS_KINDS = {EventKind.APHERESIS, EventKind.MATERIAL_SHIPPED}
LAB_KINDS = {
    EventKind.MATERIAL_ARRIVAL,
    EventKind.MANUFACTURING_START,
    EventKind.PRODUCT_RELEASE,
    EventKind.PRODUCT_SHIPPED,
}
PHARMACY_KINDS = {EventKind.PRODUCT_ARRIVAL, EventKind.THAW, EventKind.INFUSION}
CLINICAL_ONLY_KINDS = {EventKind.LYMPHODEPLETION, EventKind.VISIT, EventKind.TOXICITY_ASSESSMENTS}
# Pinned: a change here is a change of the month page's reads, to be explained. Session, user and
# memberships (the scope); the subjects; one query per source (collections, shipments with their
# receipts, batches, thaws, lymphodepletions, inclusions, visits, bookings); the header's memberships
# and alert badge; the session's save (three statements).
MONTH_QUERIES = 17


def _events(world: Any, username: str, **filters: Any) -> list[CalendarEvent]:
    today = clock.now().date()
    return calendar_events(
        scope_for(world.users[username]),
        today - timedelta(days=2000),
        today + timedelta(days=2000),
        protocol=world.protocol,
        now=clock.now(),
        **filters,
    )


def _kinds(events: list[CalendarEvent], subject: Subject) -> set[EventKind]:
    return {e.kind for e in events if e.subject == subject.code}


def _local(moment: Any, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


# The pathway is driven at the clock's time of day; at night its apheresis starts the evening before
# the day it was planned for (in Paris), which must not show the plan as missed.
@pytest.mark.parametrize("hour_utc", [22, 10], ids=["night", "day"])
def test_each_role_sees_its_services_events_on_the_dates_recorded(world: Any, hour_utc: int) -> None:
    with clock.frozen_at(datetime(2026, 6, 10, hour_utc, 30, tzinfo=UTC)):
        subject = world.new_subject("BDX", State.FOLLOW_UP)
    apheresis = [
        e for e in _events(world, "bdx.coordinator") if e.kind is EventKind.APHERESIS and e.subject == subject.code
    ]
    assert [e.planned for e in apheresis] == [False]
    everything = _kinds(_events(world, "bdx.coordinator"), subject)
    assert everything == APHERESIS_KINDS | LAB_KINDS | PHARMACY_KINDS | CLINICAL_ONLY_KINDS
    assert _kinds(_events(world, "bdx.investigator"), subject) == everything
    assert _kinds(_events(world, "bdx.apheresis"), subject) == APHERESIS_KINDS
    assert _kinds(_events(world, "lab.manufacturing"), subject) == LAB_KINDS
    assert _kinds(_events(world, "bdx.pharmacist"), subject) == PHARMACY_KINDS
    # The pharmacy sees no manufacturing start, the lab no visit.
    assert EventKind.MANUFACTURING_START not in _kinds(_events(world, "bdx.pharmacist"), subject)
    assert EventKind.VISIT not in _kinds(_events(world, "lab.manufacturing"), subject)

    events = {e.kind: e for e in _events(world, "bdx.coordinator") if e.subject == subject.code}
    collection = Collection.objects.get(subject=subject)
    batch = ManufacturingBatch.objects.get(subject=subject)
    thaw = Thaw.objects.get(batch=batch)
    assert events[EventKind.APHERESIS].start == _local(collection.started_at, "Europe/Paris")
    # Done, not planned: the apheresis collected, the material and the product received.
    assert not any(
        events[k].planned for k in (EventKind.APHERESIS, EventKind.MATERIAL_ARRIVAL, EventKind.PRODUCT_ARRIVAL)
    )
    assert events[EventKind.MANUFACTURING_START].start == _local(batch.started_at, "Europe/Paris")
    assert events[EventKind.MANUFACTURING_START].center == "LAB"
    assert events[EventKind.PRODUCT_RELEASE].start == _local(batch.released_at, "Europe/Paris")
    assert events[EventKind.THAW].start == _local(thaw.thawed_at, "Europe/Paris")
    assert events[EventKind.INFUSION].start == subject.infusion_date
    toxicity = events[EventKind.TOXICITY_ASSESSMENTS]
    assert (toxicity.start, toxicity.end) == (subject.infusion_date, subject.infusion_date + timedelta(days=14))
    lymphodepletion = events[EventKind.LYMPHODEPLETION]
    assert lymphodepletion.start < subject.infusion_date and lymphodepletion.end <= subject.infusion_date
    assert all(e.subject_center == "BDX" for e in events.values())


def test_visit_windows_are_the_casebooks_schedule_and_leave_once_done(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    visits = {e.detail: e for e in _events(world, "bdx.coordinator") if e.kind is EventKind.VISIT}
    m12 = next(v for v in world.protocol.visits if v.code == "M12")
    target = subject.infusion_date + timedelta(days=m12.day)
    assert visits["M12"].start == target - timedelta(days=m12.window_before_days)
    assert visits["M12"].end == target + timedelta(days=m12.window_after_days)
    assert visits["M12"].planned
    overdue = [code for code, e in visits.items() if e.late]
    assert overdue and all(visits[code].end < clock.now().date() for code in overdue)


def test_dates_not_yet_done_are_planned_and_late_once_past(world: Any) -> None:
    """Material shipped 900 days ago and never received: its arrival is the shipment's planned one,
    late; the lab does not see the subject's visits."""
    subject = world.new_subject("BDX", State.MATERIAL_SHIPPED)
    arrival = next(e for e in _events(world, "lab.manufacturing") if e.subject == subject.code)
    assert (arrival.kind, arrival.planned, arrival.late, arrival.center) == (
        EventKind.MATERIAL_ARRIVAL,
        True,
        True,
        "LAB",
    )
    assert arrival.start == _local(subject.shipments.get().planned_arrival_at, "Europe/Paris")


def test_a_center_sees_only_its_subjects_and_the_lab_those_it_manufactures(world: Any) -> None:
    bdx = world.new_subject("BDX", State.PRODUCT_RELEASED)
    lil = world.new_subject("LIL", State.PRODUCT_RELEASED)
    coordinator = {e.subject for e in _events(world, "bdx.coordinator")}
    assert bdx.code in coordinator and lil.code not in coordinator
    lab = {e.subject for e in _events(world, "lab.manufacturing")}
    assert {bdx.code, lil.code} <= lab
    # The center filter keeps one center's subjects; the role filter one service's events.
    assert {e.subject for e in _events(world, "lab.manufacturing", center="LIL")} == {lil.code}
    pharmacy_view = _events(world, "bdx.coordinator", role=Role.MANUFACTURING)
    assert pharmacy_view and {e.kind for e in pharmacy_view} <= LAB_KINDS


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def test_month_and_week_pages_in_french_with_today_marked_and_chips_per_kind(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "fr"
    d0 = subject.infusion_date
    page = client.get("/calendars/", {"month": _month(d0)}, HTTP_ACCEPT_LANGUAGE="fr")
    assert page.status_code == 200
    body = page.content.decode()
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre"]
    months += ["novembre", "décembre"]
    assert f"{months[d0.month - 1]} {d0.year}" in body.lower()
    assert '<th scope="col">lun</th>' in body and '<th scope="col">dim</th>' in body
    assert f'data-kind="infusion" data-subject="{subject.code}"' in body
    assert "Perfusion (J0)" in body
    previous = d0.replace(day=1) - timedelta(days=1)
    assert f"?month={_month(previous)}" in body
    # Today is marked on this month's page only.
    today = clock.now().date()
    now_page = client.get("/calendars/").content.decode()
    assert f'data-day="{today.isoformat()}" aria-current="date"' in now_page
    assert 'aria-current="date"' not in body or _month(d0) == _month(today)

    week = client.get("/calendars/week/", {"week": d0.isoformat()}, HTTP_ACCEPT_LANGUAGE="fr")
    assert week.status_code == 200
    text = week.content.decode()
    monday = d0 - timedelta(days=d0.weekday())
    assert f'data-day="{monday.isoformat()}"' in text
    assert f'data-day="{(monday + timedelta(days=6)).isoformat()}"' in text
    assert f'data-day="{(monday + timedelta(days=7)).isoformat()}"' not in text
    assert "Semaine du" in text
    assert f"?week={(monday + timedelta(days=7)).isoformat()}" in text
    assert f'data-kind="infusion" data-subject="{subject.code}"' in text


def test_the_pages_refuse_a_bad_month_and_a_center_outside_the_scope(world: Any) -> None:
    """A page answers a refused input with the page of refusals (409) naming the item and the rule."""
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    month = client.get("/calendars/", {"month": "2026-13"})
    assert month.status_code == 409 and "'2026-13' is not a month (YYYY-MM)." in unescape(month.content.decode())
    week = client.get("/calendars/week/", {"week": "tomorrow"})
    assert week.status_code == 409 and "'tomorrow' is not a date (YYYY-MM-DD)." in unescape(week.content.decode())
    assert client.get("/calendars/", {"center": "LIL"}).status_code == 404
    role = client.get("/calendars/", {"role": "monitor"})
    assert role.status_code == 409 and "'monitor' is not a service of your calendar" in unescape(role.content.decode())


def _parse(content: bytes) -> list[Any]:
    feed = Calendar.from_ical(content)
    assert feed["VERSION"] == "2.0" and feed["PRODID"]
    return list(feed.walk("VEVENT"))


def test_the_center_feed_parses_back_with_stable_uids_dates_and_no_identity(world: Any) -> None:
    subject = world.new_subject("BDX", State.LYMPHODEPLETION)
    client = world.client_for("bdx.coordinator")
    response = client.get("/calendars/center/BDX.ics", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    events = _parse(response.content)
    mine = [e for e in events if str(e["SUMMARY"]).startswith(subject.code)]
    assert {str(e["CATEGORIES"].cats[0]) for e in mine} >= {"apheresis", "lymphodepletion", "infusion"}
    for event in events:
        assert type(event["DTSTART"].dt) is date and type(event["DTEND"].dt) is date
        assert event["DTEND"].dt > event["DTSTART"].dt
        assert event["DTSTAMP"]
    uids = [str(e["UID"]) for e in events]
    assert len(uids) == len(set(uids))
    again = _parse(client.get("/calendars/center/BDX.ics").content)
    assert uids == [str(e["UID"]) for e in again]
    infusion = next(e for e in mine if "infusion" in e["CATEGORIES"].cats)
    assert str(infusion["UID"]) == f"infusion-{subject.code}-{infusion['DTSTART'].dt.isoformat()}@cartrial"
    body = response.content.decode()
    assert "Testpatient" not in body and "IPP" not in body
    # The summary in the user's language.
    french = world.client_for("bdx.coordinator")
    french.cookies["django_language"] = "fr"
    summaries = [str(e["SUMMARY"]) for e in _parse(french.get("/calendars/center/BDX.ics").content)]
    assert any(s.startswith(f"{subject.code} · Aphérèse") for s in summaries)


def test_the_subject_feed_and_the_api_feeds_with_a_token(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    detail = world.client_for("bdx.pharmacist").get(f"/subjects/{subject.code}/").content.decode()
    assert f'href="/subjects/{subject.code}/calendar.ics" data-testid="subject-calendar-link"' in detail
    page = world.client_for("bdx.pharmacist").get(f"/subjects/{subject.code}/calendar.ics")
    assert page.status_code == 200
    kinds = {str(e["CATEGORIES"].cats[0]) for e in _parse(page.content)}
    assert kinds == {k.value for k in PHARMACY_KINDS}
    assert "Testpatient" not in page.content.decode()
    token = api_token_create(actor=Actor.system("test"), user=world.users["lab.manufacturing"], label="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="fr")
    feed = api.get(f"/api/v1/subjects/{subject.code}/calendar.ics")
    assert feed.status_code == 200
    summaries = {str(e["SUMMARY"]) for e in _parse(feed.content)}
    assert any(s.startswith(f"{subject.code} · Début de fabrication") for s in summaries)
    assert api.get("/api/v1/calendars/center/LAB.ics").status_code == 200
    assert api.get("/api/v1/calendars/center/BDX.ics").status_code == 404
    assert Client().get("/api/v1/calendars/center/LAB.ics").status_code == 401


def _queries(client: Client, month: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/calendars/", {"month": month})
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_month_page_takes_as_many_queries_at_2_and_at_6_subjects(world: Any) -> None:
    subjects = [world.new_subject("BDX", State.FOLLOW_UP) for _ in range(2)]
    month = _month(subjects[0].infusion_date)
    client = world.client_for("bdx.coordinator")
    client.get("/calendars/")  # the first request of a session writes its traces
    counts = {2: _queries(client, month)}
    subjects += [world.new_subject("BDX", State.FOLLOW_UP) for _ in range(4)]
    body = client.get("/calendars/", {"month": month}).content.decode()
    assert all(f'data-subject="{s.code}"' in body for s in subjects)
    counts[6] = _queries(client, month)
    assert counts[2] == counts[6] == MONTH_QUERIES


# A Monday: BDX does apheresis on Mondays and Wednesdays (protocol capacities).
BOOKING_MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _booked(world: Any, subject: Subject, who: str = "bdx.coordinator") -> Any:
    """The subject's earliest free chain, booked through the service as its center's coordinator."""
    from cartrial.apps.access import reach_subject
    from cartrial.apps.planning import selectors as planning
    from cartrial.apps.planning import services as booking
    from cartrial.domain.booking import BookingRequest
    from cartrial.domain.roles import Action

    plan = planning.slots_free(world.protocol, subject.center.code, clock.now().date(), 1)[0].plan
    reach = reach_subject(world.users[who], subject.code, Action.BOOK_SLOTS)
    request = BookingRequest(subject.center.code, plan.apheresis, "LAB", plan.manufacturing_start, plan.infusion)
    return reach.run(
        lambda: booking.booking_make(
            actor=reach.actor,
            user_id=reach.user.pk,
            subject=subject,
            request=request,
            protocol=world.protocol,
            today=clock.now().date(),
        )
    )


@pytest.fixture
def booked_world(world: Any) -> Any:
    from django.db import transaction

    from cartrial.apps.planning.services import capacities_load

    with clock.frozen_at(BOOKING_MONDAY):
        with transaction.atomic():
            capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        world.booked = world.new_subject("BDX", State.INCLUDED)
        world.booking = _booked(world, world.booked)
        yield world


def _reserved(events: list[CalendarEvent], subject: Subject) -> dict[EventKind, CalendarEvent]:
    return {e.kind: e for e in events if e.subject == subject.code and e.booked}


def test_the_reservations_are_booked_events_for_each_service(booked_world: Any) -> None:
    world, booking, subject = booked_world, booked_world.booking, booked_world.booked
    coordinator = _reserved(_events(world, "bdx.coordinator"), subject)
    assert {k: (e.start, e.center) for k, e in coordinator.items()} == {
        EventKind.APHERESIS: (booking.apheresis_date, "BDX"),
        EventKind.MANUFACTURING_START: (booking.manufacturing_start, "LAB"),
        EventKind.LYMPHODEPLETION: (booking.lymphodepletion_start, "BDX"),
        EventKind.INFUSION: (booking.infusion_date, "BDX"),
    }
    assert all(e.planned and not e.late for e in coordinator.values())
    # Each service its own reservation: the lab before any material reached it.
    assert set(_reserved(_events(world, "bdx.apheresis"), subject)) == {EventKind.APHERESIS}
    assert set(_reserved(_events(world, "lab.manufacturing"), subject)) == {EventKind.MANUFACTURING_START}
    assert set(_reserved(_events(world, "lab.manufacturing", center="LAB"), subject)) == {EventKind.MANUFACTURING_START}
    assert set(_reserved(_events(world, "bdx.pharmacist"), subject)) == {EventKind.INFUSION}
    assert _reserved(_events(world, "lil.coordinator"), subject) == {}


def test_a_booked_date_leaves_once_its_step_is_done_and_a_cancelled_booking_shows_nothing(booked_world: Any) -> None:
    from cartrial.apps.planning.models import Booking

    world, subject = booked_world, booked_world.booked
    Subject.objects.filter(pk=subject.pk).update(state=State.MATERIAL_SHIPPED.value)
    left = _reserved(_events(world, "bdx.coordinator"), subject)
    assert set(left) == {EventKind.MANUFACTURING_START, EventKind.LYMPHODEPLETION, EventKind.INFUSION}
    Subject.objects.filter(pk=subject.pk).update(state=State.LYMPHODEPLETION.value)
    assert _reserved(_events(world, "bdx.coordinator"), subject) == {}
    Subject.objects.filter(pk=subject.pk).update(state=State.INCLUDED.value)
    Booking.objects.filter(pk=booked_world.booking.pk).update(active=False)
    assert _reserved(_events(world, "bdx.coordinator"), subject) == {}


def test_booked_chips_on_the_page_and_in_the_feed_with_stable_uids(booked_world: Any) -> None:
    world, booking, subject = booked_world, booked_world.booking, booked_world.booked
    with clock.frozen_at(BOOKING_MONDAY):
        client = world.client_for("bdx.coordinator")
        page = client.get("/calendars/", {"month": _month(booking.apheresis_date)}, HTTP_ACCEPT_LANGUAGE="en")
        body = unescape(page.content.decode())
        assert 'class="chip kind-apheresis booked"' in body
        assert f'data-subject="{subject.code}" data-booked="true">{subject.code} · Apheresis · booked</a>' in body
        # A reservation links to the booking page (the lab's slot to its reservations); the legend shows
        # the three styles.
        assert f'href="/planning/subjects/{subject.code}/" title="{subject.code} · Apheresis (booked)"' in body
        assert 'href="/planning/reservations/" title="' in body
        legend = body[body.index('data-testid="calendar-legend"') :]
        assert '<span class="chip booked">booked</span>' in legend
        feed = client.get("/calendars/center/BDX.ics", HTTP_ACCEPT_LANGUAGE="en")
        again = client.get("/calendars/center/BDX.ics", HTTP_ACCEPT_LANGUAGE="en")
    mine = [e for e in _parse(feed.content) if "booked" in e["CATEGORIES"].cats]
    by_kind = {str(e["CATEGORIES"].cats[0]): e for e in mine}
    assert set(by_kind) == {"apheresis", "manufacturing_start", "lymphodepletion", "infusion"}
    infusion = by_kind["infusion"]
    assert str(infusion["UID"]) == f"infusion-{subject.code}-{booking.infusion_date.isoformat()}@cartrial"
    assert infusion["DTSTART"].dt == booking.infusion_date
    assert str(infusion["STATUS"]) == "CONFIRMED"
    assert str(infusion["SUMMARY"]) == f"{subject.code} · Infusion (D0) (booked)"
    assert sorted(str(e["UID"]) for e in mine) == sorted(
        str(e["UID"]) for e in _parse(again.content) if "booked" in e["CATEGORIES"].cats
    )


def test_the_month_page_with_bookings_takes_as_many_queries_at_2_and_at_6_subjects(booked_world: Any) -> None:
    world = booked_world
    with clock.frozen_at(BOOKING_MONDAY):
        month = _month(world.booking.apheresis_date)
        client = world.client_for("sponsor.admin")
        client.get("/calendars/")
        waiting = [world.new_subject("PAR", State.INCLUDED)]
        for subject in waiting:
            _booked(world, subject, "par.coordinator")
        counts = {2: _queries(client, month)}
        more = [world.new_subject("PAR", State.INCLUDED) for _ in range(4)]
        for subject in more:
            _booked(world, subject, "par.coordinator")
        body = client.get("/calendars/", {"month": month}).content.decode()
        assert all(f'data-subject="{s.code}" data-booked="true"' in body for s in waiting + more)
        counts[6] = _queries(client, month)
    assert counts[2] == counts[6] == MONTH_QUERIES
