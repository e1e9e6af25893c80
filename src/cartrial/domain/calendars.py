"""Calendars of the vein-to-vein pathway (issue 11, item 5): what an event is, who it concerns, the
month and week grids, and the stable identity of an event in an iCalendar feed.

An event is a date (or a range of dates) in a subject's pathway or follow-up: an apheresis, a
shipment, a batch start, a release, a product arrival, the lymphodepletion window, a thaw, D0, a
visit window, the days of daily CRS/ICANS assessment. It carries the subject's pseudonymous code
only, never an identity. Each kind concerns one service (the apheresis unit, the manufacturing lab,
the pharmacy, the clinical team); the center's clinical staff and the sponsor's roles see every kind.

Pure: no Django.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from cartrial.domain.pathway import State
from cartrial.domain.roles import SPONSOR_ROLES, Role
from cartrial.domain.text import N_


class EventKind(StrEnum):
    """What happens on a calendar day; stable codes (UIDs of the .ics feeds, CSS classes)."""

    APHERESIS = "apheresis"
    MATERIAL_SHIPPED = "material_shipped"
    MATERIAL_ARRIVAL = "material_arrival"
    MANUFACTURING_START = "manufacturing_start"
    PRODUCT_RELEASE = "product_release"
    PRODUCT_SHIPPED = "product_shipped"
    PRODUCT_ARRIVAL = "product_arrival"
    LYMPHODEPLETION = "lymphodepletion"
    THAW = "thaw"
    INFUSION = "infusion"
    VISIT = "visit"
    TOXICITY_ASSESSMENTS = "toxicity_assessments"


KIND_LABELS: dict[EventKind, str] = {
    EventKind.APHERESIS: N_("Apheresis"),
    EventKind.MATERIAL_SHIPPED: N_("Apheresis material shipped"),
    EventKind.MATERIAL_ARRIVAL: N_("Material arrival at the lab"),
    EventKind.MANUFACTURING_START: N_("Manufacturing start"),
    EventKind.PRODUCT_RELEASE: N_("Product release"),
    EventKind.PRODUCT_SHIPPED: N_("Product shipped"),
    EventKind.PRODUCT_ARRIVAL: N_("Product arrival at the pharmacy"),
    EventKind.LYMPHODEPLETION: N_("Lymphodepletion window"),
    EventKind.THAW: N_("Thaw"),
    EventKind.INFUSION: N_("Infusion (D0)"),
    EventKind.VISIT: N_("Visit window"),
    EventKind.TOXICITY_ASSESSMENTS: N_("Daily CRS/ICANS assessments"),
}

# The service each kind concerns (the role that acts on that day).
KIND_ROLE: dict[EventKind, Role] = {
    EventKind.APHERESIS: Role.APHERESIS,
    EventKind.MATERIAL_SHIPPED: Role.APHERESIS,
    EventKind.MATERIAL_ARRIVAL: Role.MANUFACTURING,
    EventKind.MANUFACTURING_START: Role.MANUFACTURING,
    EventKind.PRODUCT_RELEASE: Role.MANUFACTURING,
    EventKind.PRODUCT_SHIPPED: Role.MANUFACTURING,
    EventKind.PRODUCT_ARRIVAL: Role.PHARMACIST,
    EventKind.LYMPHODEPLETION: Role.INVESTIGATOR,
    EventKind.THAW: Role.PHARMACIST,
    EventKind.INFUSION: Role.PHARMACIST,
    EventKind.VISIT: Role.INVESTIGATOR,
    EventKind.TOXICITY_ASSESSMENTS: Role.INVESTIGATOR,
}

# Roles that see every kind of their centers' subjects: the clinical team plans the whole pathway;
# the sponsor's roles follow it (pseudonymous codes only, as everywhere in a calendar).
ALL_KINDS_ROLES: frozenset[Role] = frozenset({Role.INVESTIGATOR, Role.COORDINATOR}) | SPONSOR_ROLES

# The services a user may choose to look at (the role filter of the calendar pages).
SERVICE_ROLES: tuple[Role, ...] = (Role.APHERESIS, Role.MANUFACTURING, Role.PHARMACIST, Role.INVESTIGATOR)


def kinds_for(role: Role) -> frozenset[EventKind]:
    """The kinds of events a role's calendar shows: every kind for the clinical team and the sponsor,
    its own service's kinds for the apheresis unit, the lab and the pharmacy."""
    if role in ALL_KINDS_ROLES:
        return frozenset(EventKind)
    return frozenset(kind for kind, owner in KIND_ROLE.items() if owner is role)


def service_kinds(role: Role) -> frozenset[EventKind]:
    """The kinds a service owns (the role filter: "the pharmacy's view" of a coordinator)."""
    return frozenset(kind for kind, owner in KIND_ROLE.items() if owner is role)


@dataclass(frozen=True)
class CalendarEvent:
    """One dated event of a subject's pathway; `end` is inclusive (a one-day event has end == start).

    `center` is where it happens (the lab for manufacturing), `subject_center` the subject's center;
    `planned` marks a date not yet done (a planned apheresis, an expected arrival, a visit window);
    `booked` marks a planned date that holds a reservation (a slot or a bed of the planning app);
    `detail` names what the kind alone does not (the visit code, the batch number); `late` marks a
    planned date already past (an overdue visit, an expected arrival not confirmed)."""

    kind: EventKind
    start: date
    end: date
    subject: str
    center: str
    subject_center: str
    planned: bool = False
    detail: str = ""
    late: bool = False
    booked: bool = False

    @property
    def role(self) -> Role:
        return KIND_ROLE[self.kind]

    @property
    def uid(self) -> str:
        """Stable across exports (kind, subject, date, detail): a calendar client updates the event in
        place instead of duplicating it."""
        detail = f"-{self.detail}" if self.detail else ""
        return f"{self.kind.value}-{self.subject}-{self.start.isoformat()}{detail}@cartrial"

    def overlaps(self, start: date, end: date) -> bool:
        return self.start <= end and self.end >= start


def _certainty(event: CalendarEvent) -> int:
    """Done (0) before booked (1) before merely planned (2)."""
    return 2 if event.planned and not event.booked else 1 if event.planned else 0


def events_deduplicated(events: Iterable[CalendarEvent]) -> list[CalendarEvent]:
    """One event per UID, the done one winning over a booked one, a booked one over one merely planned
    (an apheresis collected on its booked day is one event; a booked apheresis is the scheduled one), in
    calendar order."""
    kept: dict[str, CalendarEvent] = {}
    for event in events:
        current = kept.get(event.uid)
        if current is None or _certainty(event) < _certainty(current):
            kept[event.uid] = event
    return sorted(kept.values(), key=lambda e: (e.start, e.end, e.subject, e.kind.value, e.detail))


_BEFORE_COLLECTION: frozenset[State] = frozenset({State.INCLUDED, State.APHERESIS_SCHEDULED})
_BEFORE_MANUFACTURING: frozenset[State] = _BEFORE_COLLECTION | {State.APHERESIS_COLLECTED, State.MATERIAL_SHIPPED}
_BEFORE_LYMPHODEPLETION: frozenset[State] = _BEFORE_MANUFACTURING | {
    State.MANUFACTURING,
    State.PRODUCT_RELEASED,
    State.MANUFACTURING_FAILED,
    State.PRODUCT_SHIPPED,
    State.PRODUCT_RECEIVED,
}

# A booked date stands until the step it reserves is done: the reserved apheresis slot until the
# collection, the manufacturing slot until a batch starts, the lymphodepletion start and the infusion
# bed until lymphodepletion starts (its own planned D0 then takes over).
BOOKED_PENDING: dict[EventKind, frozenset[State]] = {
    EventKind.APHERESIS: _BEFORE_COLLECTION,
    EventKind.MANUFACTURING_START: _BEFORE_MANUFACTURING,
    EventKind.LYMPHODEPLETION: _BEFORE_LYMPHODEPLETION,
    EventKind.INFUSION: _BEFORE_LYMPHODEPLETION,
}


def booked_pending(kind: EventKind, state: str) -> bool:
    """Whether a booked date of this kind still stands for a subject in `state` (step not done yet)."""
    return kind in BOOKED_PENDING and state in {s.value for s in BOOKED_PENDING[kind]}


def month_weeks(year: int, month: int) -> list[list[date]]:
    """The weeks (Monday first) covering a month, each of seven days (days of the next and previous
    months included)."""
    return calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)


def week_days(day: date) -> list[date]:
    """The seven days, Monday first, of the ISO week holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=n) for n in range(7)]


def month_shift(year: int, month: int, delta: int) -> tuple[int, int]:
    """The month `delta` months away (negative: earlier)."""
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def events_by_day(events: Iterable[CalendarEvent], days: list[date]) -> dict[date, list[CalendarEvent]]:
    """Each day of the grid with the events on it (a range event on every day of its range)."""
    grid: dict[date, list[CalendarEvent]] = {day: [] for day in days}
    for event in events:
        for day in days:
            if event.start <= day <= event.end:
                grid[day].append(event)
    return grid
