"""Pages: the month and week views of the user's calendar, and the iCalendar feeds of a center and a
subject. Each reads through the one access entry point."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from cartrial.apps import clock
from cartrial.apps.access import require_somewhere
from cartrial.apps.calendars import presenters
from cartrial.apps.calendars.feeds import center_feed, subject_feed
from cartrial.apps.calendars.ics import ics_response
from cartrial.apps.calendars.selectors import (
    calendar_center,
    calendar_events,
    calendar_role,
    calendar_roles,
    month_chosen,
    week_chosen,
)
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.calendars import month_shift, month_weeks, week_days
from cartrial.domain.roles import ROLE_LABELS, Action


def _page(request: HttpRequest, days: list[date], *, month: int | None, context: dict[str, object]) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_CALENDAR, "calendars")
    center = calendar_center(scope, request.GET.get("center", ""))
    role = calendar_role(scope, request.GET.get("role", ""))
    now = clock.now()
    events = calendar_events(scope, days[0], days[-1], center, role, protocol=protocol_in_force(), now=now)
    grid = presenters.calendar_days(events, days, today=timezone.localdate(now), month=month)
    context.update(
        {
            "weeks": [grid[i : i + 7] for i in range(0, len(grid), 7)],
            "weekdays": presenters.weekday_names(),
            "legend": presenters.kind_legend(),
            "centers": sorted(scope.center_codes.values()),
            "center": center or "",
            "roles": [(r.value, _(ROLE_LABELS[r])) for r in calendar_roles(scope)],
            "role": role.value if role else "",
            "event_count": len(events),
        }
    )
    return render(request, "calendars/calendar.html", context)


@login_required
@require_GET
def month_view(request: HttpRequest) -> HttpResponse:
    """A month of the user's calendar (`?month=YYYY-MM`, this month by default)."""
    today = timezone.localdate(clock.now())
    year, month = month_chosen(request.GET.get("month", ""), today)
    weeks = month_weeks(year, month)
    previous, following = month_shift(year, month, -1), month_shift(year, month, 1)
    return _page(
        request,
        [day for week in weeks for day in week],
        month=month,
        context={
            "view": "month",
            "title": date_format(date(year, month, 1), "YEAR_MONTH_FORMAT"),
            "previous": {"month": f"{previous[0]:04d}-{previous[1]:02d}"},
            "next": {"month": f"{following[0]:04d}-{following[1]:02d}"},
            "period": f"{year:04d}-{month:02d}",
        },
    )


@login_required
@require_GET
def week_view(request: HttpRequest) -> HttpResponse:
    """The ISO week holding `?week=YYYY-MM-DD` (this week by default)."""
    day = week_chosen(request.GET.get("week", ""), timezone.localdate(clock.now()))
    days = week_days(day)
    return _page(
        request,
        days,
        month=None,
        context={
            "view": "week",
            "title": _("Week of %(day)s") % {"day": date_format(days[0], "DATE_FORMAT")},
            "previous": {"week": (days[0] - timedelta(days=7)).isoformat()},
            "next": {"week": (days[0] + timedelta(days=7)).isoformat()},
            "period": days[0].isoformat(),
            "month_of_week": days[0].strftime("%Y-%m"),
        },
    )


@login_required
@require_GET
def center_ics(request: HttpRequest, code: str) -> HttpResponse:
    """The iCalendar feed of a center of the user's scope."""
    content, filename = center_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)


@login_required
@require_GET
def subject_ics(request: HttpRequest, code: str) -> HttpResponse:
    """The iCalendar feed of one subject."""
    content, filename = subject_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)
