"""iCalendar (RFC 5545) feeds of a calendar, with the `icalendar` package: all-day events with stable
UIDs, a summary of the pseudonymous code and the kind in the user's language, never an identity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.http import HttpResponse
from icalendar import Calendar, Event

from cartrial.apps.calendars.presenters import event_summary
from cartrial.domain.calendars import CalendarEvent

PRODID = "-//cartrial//calendars//EN"


def ics_calendar(
    events: list[CalendarEvent], *, name: str, now: datetime, link: Callable[[CalendarEvent], str]
) -> bytes:
    """The feed's bytes: one VEVENT per event, DTSTART/DTEND as dates (DTEND the day after the last)."""
    feed = Calendar()
    feed.add("prodid", PRODID)
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("x-wr-calname", name)
    for item in events:
        vevent = Event()
        vevent.add("uid", item.uid)
        vevent.add("dtstamp", now)
        vevent.add("dtstart", item.start)
        vevent.add("dtend", item.end + timedelta(days=1))
        vevent.add("summary", event_summary(item))
        vevent.add("categories", [item.kind.value, "booked"] if item.booked else [item.kind.value])
        if item.planned:
            # A reservation holds; a date merely planned may still move.
            vevent.add("status", "CONFIRMED" if item.booked else "TENTATIVE")
        vevent.add("location", item.center)
        vevent.add("transp", "TRANSPARENT")
        vevent.add("url", link(item))
        feed.add_component(vevent)
    content: bytes = feed.to_ical()
    return content


def ics_response(content: bytes, filename: str) -> HttpResponse:
    """The feed as a download a calendar client can also subscribe to."""
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
