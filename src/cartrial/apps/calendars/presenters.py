"""What the calendar pages and feeds show of an event: its label in the user's language, its link to
the record, the month and week grids with the events of each day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.urls import reverse
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from cartrial.domain.calendars import KIND_LABELS, CalendarEvent, EventKind, events_by_day

# Where the record of each kind is read: the logistics page, the subject's pathway, the casebook
# visit, the toxicity days.
_LOGISTICS = frozenset(
    {
        EventKind.APHERESIS,
        EventKind.MATERIAL_SHIPPED,
        EventKind.MATERIAL_ARRIVAL,
        EventKind.MANUFACTURING_START,
        EventKind.PRODUCT_RELEASE,
        EventKind.PRODUCT_SHIPPED,
        EventKind.PRODUCT_ARRIVAL,
        EventKind.THAW,
    }
)


def event_link(event: CalendarEvent) -> str:
    """The page of the record behind the event (the page itself checks who may open it)."""
    if event.booked:
        # A reservation: the lab's reservations for its slot, the subject's booking page otherwise.
        if event.kind is EventKind.MANUFACTURING_START:
            return reverse("planning:reservations")
        return reverse("planning:booking", args=[event.subject])
    if event.kind in _LOGISTICS:
        return reverse("logistics:subject", args=[event.subject])
    if event.kind is EventKind.VISIT:
        return reverse("casebook:visit", args=[event.subject, event.detail])
    if event.kind is EventKind.TOXICITY_ASSESSMENTS:
        return reverse("toxicity:subject", args=[event.subject])
    return reverse("subjects:detail", args=[event.subject])


def event_summary(event: CalendarEvent) -> str:
    """The one line of an event, in the active language: pseudonymous code, kind, detail, booked or
    planned."""
    text = f"{event.subject} · {_(KIND_LABELS[event.kind])}"
    if event.detail:
        text += f" {event.detail}"
    if event.booked:
        text += f" ({_('booked')})"
    elif event.planned:
        text += f" ({_('planned')})"
    return text


@dataclass(frozen=True)
class Chip:
    event: CalendarEvent
    label: str
    summary: str
    link: str


@dataclass
class Day:
    day: date
    in_period: bool
    today: bool
    heading: str
    chips: list[Chip] = field(default_factory=list)


def chip(event: CalendarEvent) -> Chip:
    return Chip(event, _(KIND_LABELS[event.kind]), event_summary(event), event_link(event))


def calendar_days(events: list[CalendarEvent], days: list[date], *, today: date, month: int | None) -> list[Day]:
    """The days of a grid with their chips; `month` None: every day belongs (a week)."""
    placed = events_by_day(events, days)
    return [
        Day(
            day=day,
            in_period=month is None or day.month == month,
            today=day == today,
            heading=str(day.day) if month is not None else date_format(day, "j F"),
            chips=[chip(event) for event in placed[day]],
        )
        for day in days
    ]


def weekday_names() -> list[str]:
    """Monday to Sunday, abbreviated, in the active language."""
    return [str(WEEKDAYS_ABBR[n]) for n in range(7)]


def kind_legend() -> list[tuple[str, str]]:
    """Each kind's code (its chip's colour) and label."""
    return [(kind.value, _(KIND_LABELS[kind])) for kind in EventKind]
