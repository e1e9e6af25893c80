"""API of the calendars: the events of a month or a week as the pages show them, and the iCalendar
feeds of a center and of a subject, with a token. Each read goes through the one access entry point
and the one collector of events (`selectors.calendar_events`)."""

from __future__ import annotations

import calendar
from datetime import date

from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema

from cartrial.apps import clock
from cartrial.apps.access import require_somewhere
from cartrial.apps.api_contract import Page, PageQuery, paged
from cartrial.apps.calendars import selectors
from cartrial.apps.calendars.feeds import center_feed, subject_feed
from cartrial.apps.calendars.ics import ics_response
from cartrial.apps.calendars.presenters import event_link, event_summary
from cartrial.apps.text import api_language
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.calendars import KIND_LABELS, CalendarEvent, EventKind, week_days
from cartrial.domain.roles import ROLE_LABELS, Action

router = Router(tags=["calendars"])
subjects_router = Router(tags=["calendars"])


class EventOut(Schema):
    """One dated event of a subject's pathway; `end` is inclusive (a one-day event ends on its start)."""

    uid: str = Field(description="Stable: the iCalendar feeds' UID of the same event")
    kind: EventKind
    label: str = Field(description="The kind, in the request's language")
    summary: str = Field(description="The line the page and the feeds show, in the request's language")
    start: date
    end: date
    subject: str
    center: str = Field(description="Where it happens (the lab for manufacturing)")
    subject_center: str
    planned: bool = Field(description="A date not done yet (planned, expected, a visit window)")
    booked: bool = Field(description="A planned date that holds a reserved slot or bed")
    late: bool = Field(description="A planned date already past")
    detail: str = Field(description="The visit code or the batch number, when the kind alone does not say")
    link: str = Field(description="The page of the record behind the event")


class ServiceOut(Schema):
    role: str
    label: str


class CalendarOut(Page[EventOut]):
    """The events of a period in calendar order, with the filters the page offers."""

    first_day: date
    last_day: date
    center: str | None = Field(description="The center chosen; null: all of yours")
    role: str | None = Field(description="The service chosen; null: all")
    centers: list[str] = Field(description="The centers you may choose (`center`)")
    services: list[ServiceOut] = Field(description="The services you may choose (`role`)")


def _event(event: CalendarEvent) -> EventOut:
    """An event in the active language."""
    return EventOut(
        uid=event.uid,
        kind=event.kind,
        label=gettext(KIND_LABELS[event.kind]),
        summary=event_summary(event),
        start=event.start,
        end=event.end,
        subject=event.subject,
        center=event.center,
        subject_center=event.subject_center,
        planned=event.planned,
        booked=event.booked,
        late=event.late,
        detail=event.detail,
        link=event_link(event),
    )


def _calendar(request: HttpRequest, first: date, last: date, center: str, role: str, page: PageQuery) -> CalendarOut:
    scope = require_somewhere(request.user, Action.READ_CALENDAR, "calendars")
    chosen_center = selectors.calendar_center(scope, center)
    chosen_role = selectors.calendar_role(scope, role)
    events = selectors.calendar_events(
        scope, first, last, chosen_center, chosen_role, protocol=protocol_in_force(), now=clock.now()
    )
    with translation.override(api_language(request)):
        window = paged(selectors.events_changed_since(events, page.since), page, _event)
        services = [ServiceOut(role=r.value, label=gettext(ROLE_LABELS[r])) for r in selectors.calendar_roles(scope)]
    return CalendarOut(
        items=window.items,
        total=window.total,
        next_offset=window.next_offset,
        first_day=first,
        last_day=last,
        center=chosen_center,
        role=chosen_role.value if chosen_role else None,
        centers=sorted(scope.center_codes.values()),
        services=services,
    )


_SINCE = (
    "`since`: the events of the subjects whose records (a collection, a shipment, a booking, a visit...) an "
    "audit entry after it created or changed."
)


@router.get(
    "/month",
    response=CalendarOut,
    summary="The events of a month of your calendar",
    description="`month` YYYY-MM (this month when absent); `center`, `role` (a service) as the page filters. " + _SINCE,
)
def calendar_month(
    request: HttpRequest, page: Query[PageQuery], month: str = "", center: str = "", role: str = ""
) -> CalendarOut:
    year, number = selectors.month_chosen(month, timezone.localdate(clock.now()))
    last = calendar.monthrange(year, number)[1]
    return _calendar(request, date(year, number, 1), date(year, number, last), center, role, page)


@router.get(
    "/week",
    response=CalendarOut,
    summary="The events of a week (Monday to Sunday) of your calendar",
    description="`week` YYYY-MM-DD, any day of the week (this week when absent); `center`, `role` as the page "
    "filters. " + _SINCE,
)
def calendar_week(
    request: HttpRequest, page: Query[PageQuery], week: str = "", center: str = "", role: str = ""
) -> CalendarOut:
    days = week_days(selectors.week_chosen(week, timezone.localdate(clock.now())))
    return _calendar(request, days[0], days[-1], center, role, page)


@router.get(
    "/center/{code}.ics",
    response={200: None},
    summary="A center's calendar as iCalendar (RFC 5545), pseudonymous codes only",
)
def center_calendar(request: HttpRequest, code: str) -> HttpResponse:
    with translation.override(api_language(request)):  # the summaries' kind labels
        content, filename = center_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)


@subjects_router.get(
    "/{code}/calendar.ics", response={200: None}, summary="A subject's calendar as iCalendar (RFC 5545)"
)
def subject_calendar(request: HttpRequest, code: str) -> HttpResponse:
    with translation.override(api_language(request)):
        content, filename = subject_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)
