"""API of the calendars: the iCalendar feeds of a center and of a subject, with a token."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from ninja import Router

from cartrial.apps.calendars.feeds import center_feed, subject_feed
from cartrial.apps.calendars.ics import ics_response
from cartrial.apps.text import api_language

router = Router(tags=["calendars"])
subjects_router = Router(tags=["calendars"])


@router.get("/center/{code}.ics", summary="A center's calendar as iCalendar (RFC 5545), pseudonymous codes only")
def center_calendar(request: HttpRequest, code: str) -> HttpResponse:
    with translation.override(api_language(request)):  # the summaries' kind labels
        content, filename = center_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)


@subjects_router.get("/{code}/calendar.ics", summary="A subject's calendar as iCalendar (RFC 5545)")
def subject_calendar(request: HttpRequest, code: str) -> HttpResponse:
    with translation.override(api_language(request)):
        content, filename = subject_feed(request.user, code, request.build_absolute_uri)
    return ics_response(content, filename)
