"""The events of a calendar, read from every app's records and scoped by the acting user.

`calendar_events` is the one function that collects a calendar: it reads the subjects the user may
see (the access module's filter), asks each source in `SOURCES` for their events (each source is one
query whatever the number of subjects), and keeps the kinds the user's role at each subject concerns.
A new source of dates (reservations of slots and beds) is one more function added to `SOURCES`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Q

from cartrial.apps import clock
from cartrial.apps.access import Scope, subject_filter
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.casebook.models import VisitRecord
from cartrial.apps.casebook.selectors import inclusion_dates
from cartrial.apps.logistics.models import Collection, ManufacturingBatch, Shipment, Thaw
from cartrial.apps.planning.models import Booking
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.subjects.services import local_today
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.calendars import (
    SERVICE_ROLES,
    CalendarEvent,
    EventKind,
    booked_pending,
    events_deduplicated,
    kinds_for,
    service_kinds,
)
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.pathway import FINAL_STATES, State, Step
from cartrial.domain.roles import Role
from cartrial.domain.visits import AnchorDates, VisitStatus, visit_schedule, visit_status
from cartrial.protocols import Protocol


@dataclass(frozen=True)
class Reading:
    """What every source reads: the subjects (by id), the protocol, the dates shown and the moment."""

    subjects: dict[int, Subject]
    protocol: Protocol
    start: date
    end: date
    now: datetime


Source = Callable[[Reading], Iterable[CalendarEvent]]

_zones: dict[str, ZoneInfo] = {}


def _local(moment: datetime, zone: str) -> date:
    """The calendar date of an instant where it happens (the center's or the lab's time zone)."""
    return moment.astimezone(_zones.setdefault(zone, ZoneInfo(zone))).date()


def _lab_zone(subject: Subject) -> str:
    site = subject.manufacturing_site
    return site.time_zone if site is not None else subject.center.time_zone


def _event(subject: Subject, kind: EventKind, start: date, end: date | None = None, **more: object) -> CalendarEvent:
    at_lab = kind in service_kinds(Role.MANUFACTURING) and subject.manufacturing_site is not None
    return CalendarEvent(
        kind=kind,
        start=start,
        end=end or start,
        subject=subject.code,
        center=subject.manufacturing_site.code if at_lab and subject.manufacturing_site else subject.center.code,
        subject_center=subject.center.code,
        **more,  # type: ignore[arg-type]
    )


def _today(subject: Subject, reading: Reading) -> date:
    return local_today(subject.center, reading.now)


def apheresis_events(reading: Reading) -> Iterator[CalendarEvent]:
    """Collections done, and the apheresis date planned while the subject awaits its collection (the
    first, or another after a failed batch). Once collected, the collection is the event, even when
    it started the evening before the planned day: the plan is not then shown as missed."""
    for subject_id, started_at in Collection.objects.filter(subject_id__in=reading.subjects).values_list(
        "subject_id", "started_at"
    ):
        subject = reading.subjects[subject_id]
        day = _local(started_at, subject.center.time_zone)
        yield _event(subject, EventKind.APHERESIS, day)
    for subject in reading.subjects.values():
        planned = subject.apheresis_date
        if planned is not None and subject.state == State.APHERESIS_SCHEDULED.value:
            yield _event(subject, EventKind.APHERESIS, planned, planned=True, late=planned < _today(subject, reading))


def shipment_events(reading: Reading) -> Iterator[CalendarEvent]:
    """Departures, and arrivals: the receipt or arrival recorded, else the planned arrival."""
    rows = Shipment.objects.filter(subject_id__in=reading.subjects).values_list(
        "subject_id",
        "direction",
        "actual_departure_at",
        "planned_arrival_at",
        "actual_arrival_at",
        "receipt__received_at",
        "destination__time_zone",
    )
    for subject_id, direction, departed, planned, arrived, received, zone in rows:
        subject = reading.subjects[subject_id]
        to_lab = direction == Shipment.Direction.TO_LAB
        origin_zone = subject.center.time_zone if to_lab else _lab_zone(subject)
        shipped = EventKind.MATERIAL_SHIPPED if to_lab else EventKind.PRODUCT_SHIPPED
        yield _event(subject, shipped, _local(departed, origin_zone))
        arrival = EventKind.MATERIAL_ARRIVAL if to_lab else EventKind.PRODUCT_ARRIVAL
        done = received or arrived
        if done is not None:
            yield _event(subject, arrival, _local(done, zone))
        else:
            day = _local(planned, zone)
            yield _event(subject, arrival, day, planned=True, late=day < _today(subject, reading))


def batch_events(reading: Reading) -> Iterator[CalendarEvent]:
    """Manufacturing starts and releases at the lab, one per batch."""
    rows = ManufacturingBatch.objects.filter(subject_id__in=reading.subjects).values_list(
        "subject_id", "number", "started_at", "released_at"
    )
    for subject_id, number, started, released in rows:
        subject = reading.subjects[subject_id]
        zone = _lab_zone(subject)
        if started is not None:
            yield _event(subject, EventKind.MANUFACTURING_START, _local(started, zone), detail=str(number))
        if released is not None:
            yield _event(subject, EventKind.PRODUCT_RELEASE, _local(released, zone), detail=str(number))


def thaw_events(reading: Reading) -> Iterator[CalendarEvent]:
    """Thaws at the pharmacy."""
    for subject_id, thawed in Thaw.objects.filter(batch__subject_id__in=reading.subjects).values_list(
        "batch__subject_id", "thawed_at"
    ):
        subject = reading.subjects[subject_id]
        yield _event(subject, EventKind.THAW, _local(thawed, subject.center.time_zone))


def treatment_events(reading: Reading) -> Iterator[CalendarEvent]:
    """The lymphodepletion window (from its start to the protocol's last day before the planned D0),
    D0 (done, or planned at lymphodepletion) and the days of daily CRS/ICANS assessment."""
    latest: dict[int, tuple[datetime, dict[str, str]]] = {}
    for subject_id, occurred, details in (
        PathwayEvent.objects.filter(subject_id__in=reading.subjects, step=Step.START_LYMPHODEPLETION.value)
        .order_by("occurred_at", "pk")
        .values_list("subject_id", "occurred_at", "details")
    ):
        latest[subject_id] = (occurred, details or {})
    rules = reading.protocol.pathway_rules
    last_ld_day = rules.lymphodepletion_window_days[1]
    for subject in reading.subjects.values():
        planned_d0: date | None = None
        if subject.pk in latest:
            occurred, details = latest[subject.pk]
            started = _local(occurred, subject.center.time_zone)
            raw = details.get("planned_infusion_date")
            planned_d0 = date.fromisoformat(raw) if raw else None
            end = max(started, planned_d0 + timedelta(days=last_ld_day)) if planned_d0 else started
            yield _event(subject, EventKind.LYMPHODEPLETION, started, end)
        if subject.infusion_date is not None:
            d0 = subject.infusion_date
            yield _event(subject, EventKind.INFUSION, d0)
            last = d0 + timedelta(days=rules.toxicity_assessment_days)
            yield _event(subject, EventKind.TOXICITY_ASSESSMENTS, d0, last)
        elif planned_d0 is not None:
            late = planned_d0 < _today(subject, reading)
            yield _event(subject, EventKind.INFUSION, planned_d0, planned=True, late=late)


def visit_events(reading: Reading) -> Iterator[CalendarEvent]:
    """The windows of the protocol visits not yet done nor declared missed, of the subjects whose
    pathway goes on (the casebook's schedule: inclusion and D0 anchors)."""
    active = {pk: s for pk, s in reading.subjects.items() if s.state not in {state.value for state in FINAL_STATES}}
    if not active:
        return
    inclusions = inclusion_dates(active)
    closed: dict[int, set[str]] = defaultdict(set)
    records = VisitRecord.objects.filter(subject_id__in=[pk for pk in active if pk in inclusions])
    for subject_id, code in records.values_list("subject_id", "visit_code"):
        closed[subject_id].add(code)
    for pk, subject in active.items():
        inclusion = inclusions.get(pk)
        if inclusion is None:
            continue
        today = _today(subject, reading)
        for scheduled in visit_schedule(reading.protocol.visits, AnchorDates(inclusion, subject.infusion_date)):
            if scheduled.earliest is None or scheduled.latest is None or scheduled.code in closed[pk]:
                continue
            if not (scheduled.earliest <= reading.end and scheduled.latest >= reading.start):
                continue
            late = visit_status(scheduled, today) is VisitStatus.OVERDUE
            yield _event(
                subject,
                EventKind.VISIT,
                scheduled.earliest,
                scheduled.latest,
                planned=True,
                detail=scheduled.code,
                late=late,
            )


def booking_events(reading: Reading) -> Iterator[CalendarEvent]:
    """The reservations of the active bookings (planning app) whose step is not done yet: the apheresis
    slot, the manufacturing slot at the lab, the lymphodepletion start (to the protocol's last
    lymphodepletion day before the booked D0, as once started) and the infusion bed; planned and
    booked, late once past."""
    last_ld_day = reading.protocol.pathway_rules.lymphodepletion_window_days[1]
    rows = Booking.objects.filter(active=True, subject_id__in=reading.subjects).values_list(
        "subject_id",
        "facility__center__code",
        "apheresis_date",
        "manufacturing_start",
        "lymphodepletion_start",
        "infusion_date",
    )
    for subject_id, lab, apheresis, start, ld_start, d0 in rows:
        subject = reading.subjects[subject_id]
        today = _today(subject, reading)
        ld_end = max(ld_start, d0 + timedelta(days=last_ld_day))
        for kind, first, last, where in (
            (EventKind.APHERESIS, apheresis, apheresis, subject.center.code),
            (EventKind.MANUFACTURING_START, start, start, lab),
            (EventKind.LYMPHODEPLETION, ld_start, ld_end, subject.center.code),
            (EventKind.INFUSION, d0, d0, subject.center.code),
        ):
            if booked_pending(kind, subject.state):
                yield CalendarEvent(
                    kind=kind,
                    start=first,
                    end=last,
                    subject=subject.code,
                    center=where,
                    subject_center=subject.center.code,
                    planned=True,
                    booked=True,
                    late=first < today,
                )


# Every source of calendar dates, each one query over the subjects read.
SOURCES: list[Source] = [
    apheresis_events,
    shipment_events,
    batch_events,
    thaw_events,
    treatment_events,
    visit_events,
    booking_events,
]


def _subject_kinds(scope: Scope, subject: Subject) -> frozenset[EventKind]:
    """The kinds the user's roles at this subject concern: their role at its center, and the lab's
    role where the subject's material went (the access filter already said the lab may see it)."""
    kinds: frozenset[EventKind] = frozenset()
    role = scope.role_at(subject.center_id)
    if role is not None and role is not Role.MANUFACTURING:
        kinds |= kinds_for(role)
    if subject.manufacturing_site_id in scope.lab_center_ids or getattr(subject, "reserved_at_lab", False):
        kinds |= kinds_for(Role.MANUFACTURING)
    return kinds


def _reserved_at(lab_ids: set[int] | None = None, lab_code: str | None = None) -> Exists:
    """The subject holds an active booking of a manufacturing slot at one of these labs (what the lab
    lists on its reservations page, before any material has reached it)."""
    bookings = Booking.objects.filter(subject_id=OuterRef("pk"), active=True)
    if lab_ids is not None:
        bookings = bookings.filter(facility__center_id__in=lab_ids)
    if lab_code is not None:
        bookings = bookings.filter(facility__center__code=lab_code)
    return Exists(bookings)


def calendar_events(
    scope: Scope,
    start: date,
    end: date,
    center: str | None = None,
    role: Role | None = None,
    *,
    subject: str | None = None,
    protocol: Protocol | None = None,
    now: datetime | None = None,
) -> list[CalendarEvent]:
    """The events between `start` and `end` (both included) of the subjects the user may see, each
    kept when the user's role at that subject concerns it; `center` keeps the subjects of a center
    (or manufactured at that lab), `role` one service's events, `subject` one subject's. The protocol
    in force and the clock's now unless given. A lab also sees the reserved manufacturing starts of the
    subjects booked at it, before their material reaches it."""
    visible = subject_filter(scope)
    queryset = Subject.objects.select_related("center", "manufacturing_site")
    if scope.lab_center_ids:
        queryset = queryset.annotate(reserved_at_lab=_reserved_at(scope.lab_center_ids))
        visible |= Q(reserved_at_lab=True)
    queryset = queryset.filter(visible)
    if center:
        code = center.strip().upper()
        queryset = queryset.filter(
            Q(center__code=code) | Q(manufacturing_site__code=code) | Q(_reserved_at(lab_code=code))
        )
    if subject:
        queryset = queryset.filter(code=subject.strip().upper())
    subjects = {s.pk: s for s in queryset}
    if not subjects:
        return []
    allowed = {pk: _subject_kinds(scope, s) for pk, s in subjects.items()}
    wanted = service_kinds(role) if role is not None else frozenset(EventKind)
    reading = Reading(subjects, protocol or protocol_in_force(), start, end, now or clock.now())
    events = [event for source in SOURCES for event in source(reading)]
    by_code = {s.code: allowed[pk] for pk, s in subjects.items()}
    return events_deduplicated(
        e for e in events if e.kind in by_code[e.subject] and e.kind in wanted and e.overlaps(start, end)
    )


# --- what the calendar pages and the API read: the period, the center and the service chosen -----------


def month_chosen(raw: str, today: date) -> tuple[int, int]:
    """The month asked for (YYYY-MM), this month when none."""
    if not raw:
        return today.year, today.month
    try:
        first = date.fromisoformat(f"{raw}-01")
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a month (YYYY-MM).", code="invalid_month", item="month", value=raw
        ) from None
    return first.year, first.month


def week_chosen(raw: str, today: date) -> date:
    """A day of the week asked for (YYYY-MM-DD), today when none."""
    if not raw:
        return today
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item="week", value=raw
        ) from None


def calendar_center(scope: Scope, raw: str) -> str | None:
    """The center chosen among the user's centers (None: all of them); another is not found."""
    code = raw.strip().upper()
    if not code:
        return None
    if code not in scope.center_codes.values():
        raise NotFound("No center '{center}' in your scope.", code="not_found", item="center", center=raw)
    return code


def calendar_roles(scope: Scope) -> list[Role]:
    """The services whose events the user sees somewhere (the role filter's choices)."""
    seen = set().union(*(kinds_for(role) for role in scope.roles_by_center.values()))
    return [role for role in SERVICE_ROLES if service_kinds(role) & seen]


def calendar_role(scope: Scope, raw: str) -> Role | None:
    """The service chosen among `calendar_roles` (None: all of them)."""
    if not raw:
        return None
    choices = calendar_roles(scope)
    for role in choices:
        if role.value == raw:
            return role
    raise InvalidInput(
        "'{value}' is not a service of your calendar; expected: {expected}.",
        code="invalid_role",
        item="role",
        value=raw,
        expected=[role.value for role in choices],
    )


# Entries that record an attempt refused, not a change of what a calendar shows.
_REFUSALS = frozenset(
    {
        AuditEvent.ACCESS_REFUSED.value,
        AuditEvent.STEP_REFUSED.value,
        AuditEvent.ACTION_REFUSED.value,
        AuditEvent.LOGISTICS_REFUSED.value,
        AuditEvent.SIGNATURE_FAILED.value,
    }
)


def events_changed_since(events: list[CalendarEvent], since: datetime | None) -> list[CalendarEvent]:
    """The events whose subject's records an audit entry after `since` created or changed (a
    collection, a shipment, a booking, a visit...): every event is derived from those records, so
    the events of a subject untouched since then are as they were."""
    if since is None:
        return events
    changed = set(
        AuditEntry.objects.filter(occurred_at__gt=since, subject_code__in={e.subject for e in events})
        .exclude(event__in=_REFUSALS)
        .values_list("subject_code", flat=True)
        .distinct()
    )
    return [e for e in events if e.subject in changed]
