"""The two iCalendar feeds (a center's, a subject's), shared by the pages and the API: each reached
through the access module, each over a window wide enough for a calendar client to plan with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from cartrial.apps import clock
from cartrial.apps.access import reach_center, reach_subject
from cartrial.apps.calendars.ics import ics_calendar
from cartrial.apps.calendars.presenters import event_link
from cartrial.apps.calendars.selectors import calendar_events
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.calendars import CalendarEvent
from cartrial.domain.roles import Action

# A center's feed: the last quarter and the coming year (what a service plans with).
CENTER_PAST_DAYS = 92
CENTER_FUTURE_DAYS = 400
# A subject's feed: the whole trial, long-term follow-up included.
SUBJECT_SPAN_DAYS = 16 * 366


def center_feed(user: Any, code: str, absolute: Callable[[str], str]) -> tuple[bytes, str]:
    """The feed of a center of the user's scope (a lab: the subjects manufactured there), and its
    file name."""
    reach = reach_center(user, code, Action.READ_CALENDAR)
    now = clock.now()
    today = timezone.localdate(now)
    events = calendar_events(
        reach.scope,
        today - timedelta(days=CENTER_PAST_DAYS),
        today + timedelta(days=CENTER_FUTURE_DAYS),
        center=reach.center.code,
        protocol=protocol_in_force(),
        now=now,
    )
    return _feed(events, f"cartrial {reach.center.code}", now, absolute), f"{reach.center.code}.ics"


def subject_feed(user: Any, code: str, absolute: Callable[[str], str]) -> tuple[bytes, str]:
    """The feed of one subject of the user's scope, with the kinds the user's role concerns."""
    reach = reach_subject(user, code, Action.READ_CALENDAR, record=False)
    now = clock.now()
    today = timezone.localdate(now)
    events = calendar_events(
        reach.scope,
        today - timedelta(days=SUBJECT_SPAN_DAYS),
        today + timedelta(days=SUBJECT_SPAN_DAYS),
        subject=reach.subject.code,
        protocol=protocol_in_force(),
        now=now,
    )
    return _feed(events, f"cartrial {reach.subject.code}", now, absolute), f"{reach.subject.code}.ics"


def _feed(events: list[CalendarEvent], name: str, now: Any, absolute: Callable[[str], str]) -> bytes:
    return ics_calendar(events, name=name, now=now, link=lambda event: absolute(event_link(event)))
