"""Booking one subject's vein-to-vein chain against the network's capacities (issue 11, item 3).

A booking reserves three things at once: a manufacturing slot (facility, line, start date), an
apheresis slot (center, date) and an infusion bed (center, ISO week). The rules are the planner's
(`cartrial.domain.planning.instance`, docs/booking.md): this module checks one requested chain
against the capacities and what is already booked (`Booked`), and proposes the earliest free
chains. Apheresis is booked only against a free manufacturing slot: a request whose batch cannot
start is refused before anything else, so no apheresis is ever booked without its batch.

The app calls `booking_check` under a lock of the capacity rows, so that two coordinators asking
for the last slot at once are answered one after the other, from the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.planning.instance import Center, Facility, Instance, PatientPlan
from cartrial.domain.text import N_, label

WEEKDAY_NAMES: tuple[str, ...] = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)


def iso_week(day: date) -> str:
    """The ISO week of `day` as `2026-W49`: infusion beds are counted per center and ISO week."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class ManufacturingSlot:
    """A line of a facility held from `start` for the facility's manufacturing days."""

    facility: str
    line: int
    start: date


@dataclass
class Booked:
    """What is already reserved: batches per facility, apheresis per (center, day), infusions per
    (center, ISO week)."""

    batches: list[ManufacturingSlot] = field(default_factory=list)
    apheresis: Counter[tuple[str, date]] = field(default_factory=Counter)
    infusions: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass(frozen=True)
class BookingRequest:
    """What a coordinator asks for: the subject's center, apheresis day, facility, batch start and D0."""

    center: str
    apheresis: date
    facility: str
    manufacturing_start: date
    infusion: date


@dataclass(frozen=True)
class Chain:
    """A booked (or proposed) chain: the plan's dates for one subject and the line that holds the batch."""

    plan: PatientPlan
    line: int


def lymphodepletion_from_window(window_days: tuple[int, int], lymphodepletion_days: int) -> tuple[int, int]:
    """The planner's gap (days from the last lymphodepletion day to D0) from the protocol's window
    of lymphodepletion starts: a start from D-5 to D-3 over 3 days ends D-3 to D-1, a gap of 1 to 3."""
    low, high = window_days
    return (-high - (lymphodepletion_days - 1), -low - (lymphodepletion_days - 1))


def free_line(facility: Facility, batches: Iterable[ManufacturingSlot], start: date) -> int | None:
    """The first line of `facility` free for a batch started on `start` (None: every line is busy)."""
    end = start + timedelta(days=facility.manufacturing_days)
    busy = {
        b.line
        for b in batches
        if b.facility == facility.id and b.start < end and start < b.start + timedelta(days=facility.manufacturing_days)
    }
    return next((line for line in range(1, facility.lines + 1) if line not in busy), None)


def _center_day_check(center: Center, day: date, weekdays: frozenset[int], item: str, what: str) -> None:
    if day in center.closed_dates:
        raise InvalidInput(
            "{what} on {day}: {center} is closed that day (public holiday).",
            code="holiday",
            item=item,
            what=label(what),
            day=day,
            center=center.id,
        )
    if day.weekday() not in weekdays:
        raise InvalidInput(
            "{what} on {day}: {center} does not do it on a {weekday}.",
            code="wrong_weekday",
            item=item,
            what=label(what),
            day=day,
            center=center.id,
            weekday=label(WEEKDAY_NAMES[day.weekday()]),
        )


def _facility_day_check(facility: Facility, day: date) -> None:
    if day in facility.closed_dates or day.weekday() in facility.closed_weekdays:
        raise InvalidInput(
            "No batch may start at {facility} on {day} (closed day).",
            code="facility_closed",
            item="manufacturing_start",
            facility=facility.id,
            day=day,
        )


def booking_check(instance: Instance, booked: Booked, request: BookingRequest) -> Chain:
    """The chain of `request` if every capacity and rule allows it; otherwise the first broken rule,
    naming the item. The manufacturing slot comes first: no apheresis without its batch."""
    centers = {c.id: c for c in instance.centers}
    facilities = {f.id: f for f in instance.facilities}
    center = centers.get(request.center)
    if center is None:
        raise InvalidInput("No capacities are set for center {center}.", code="no_capacities", center=request.center)
    facility = facilities.get(request.facility)
    if facility is None or request.facility not in center.ship_days:
        raise InvalidInput(
            "{facility} does not manufacture for {center}.",
            code="unknown_facility",
            item="facility",
            facility=request.facility,
            center=center.id,
        )
    ship = center.ship_days[facility.id]
    arrival = request.apheresis + timedelta(days=ship)
    if request.manufacturing_start < arrival:
        raise InvalidInput(
            "The batch cannot start on {start}: the material arrives at {facility} on {arrival}.",
            code="order",
            item="manufacturing_start",
            start=request.manufacturing_start,
            facility=facility.id,
            arrival=arrival,
        )
    _facility_day_check(facility, request.manufacturing_start)
    line = free_line(facility, booked.batches, request.manufacturing_start)
    if line is None:
        raise Refused(
            "No manufacturing slot is free at {facility} on {start}: apheresis can be booked only against "
            "a reserved manufacturing slot. Choose another proposed date.",
            code="no_manufacturing_slot",
            item="manufacturing_start",
            facility=facility.id,
            start=request.manufacturing_start,
        )
    _center_day_check(center, request.apheresis, center.apheresis_weekdays, "apheresis", N_("Apheresis"))
    if booked.apheresis[(center.id, request.apheresis)] >= center.apheresis_per_day:
        raise Refused(
            "Every apheresis slot of {center} on {day} is taken ({capacity} a day).",
            code="apheresis_full",
            item="apheresis",
            center=center.id,
            day=request.apheresis,
            capacity=center.apheresis_per_day,
        )
    release = request.manufacturing_start + timedelta(days=facility.manufacturing_days + facility.qc_days)
    product_arrival = release + timedelta(days=ship)
    low_gap = instance.ld_to_infusion_gap_days[0]
    earliest = max(product_arrival, release + timedelta(days=instance.lymphodepletion_days - 1 + low_gap))
    if request.infusion < earliest:
        raise InvalidInput(
            "The infusion cannot be on {infusion}: the earliest possible day is {earliest} (product release "
            "{release}, arrival {arrival}, lymphodepletion {days} days).",
            code="order",
            item="infusion",
            infusion=request.infusion,
            earliest=earliest,
            release=release,
            arrival=product_arrival,
            days=instance.lymphodepletion_days,
        )
    _center_day_check(center, request.infusion, center.infusion_weekdays, "infusion", N_("Infusion"))
    week = iso_week(request.infusion)
    if booked.infusions[(center.id, week)] >= center.infusions_per_week:
        raise Refused(
            "Every infusion bed of {center} in week {week} is taken ({capacity} a week).",
            code="infusion_full",
            item="infusion",
            center=center.id,
            week=week,
            capacity=center.infusions_per_week,
        )
    # Lymphodepletion as late as the gap allows: the shortest wait between chemotherapy and D0.
    ld_start = request.infusion - timedelta(days=instance.lymphodepletion_days - 1 + low_gap)
    plan = PatientPlan(
        id="",
        facility=facility.id,
        apheresis=request.apheresis,
        manufacturing_start=request.manufacturing_start,
        release=release,
        product_arrival=product_arrival,
        lymphodepletion_start=ld_start,
        infusion=request.infusion,
    )
    return Chain(plan, line)


def _days(start: date, horizon_end: date) -> Iterator[date]:
    day = start
    while day <= horizon_end:
        yield day
        day += timedelta(days=1)


def slots_propose(instance: Instance, booked: Booked, center_id: str, ready: date, count: int = 5) -> list[Chain]:
    """The `count` earliest free chains for a subject of `center_id` ready on `ready`: for each free
    apheresis day, the earliest free batch start at each facility, then the earliest free bed."""
    center = next((c for c in instance.centers if c.id == center_id), None)
    if center is None:
        return []
    end = instance.start_date + timedelta(days=instance.horizon_days)
    found: list[Chain] = []
    for apheresis in _days(max(ready, instance.start_date), end):
        if (
            apheresis in center.closed_dates
            or apheresis.weekday() not in center.apheresis_weekdays
            or booked.apheresis[(center.id, apheresis)] >= center.apheresis_per_day
        ):
            continue
        for facility in instance.facilities:
            chain = _earliest_chain(instance, booked, center, facility, apheresis, end)
            if chain is not None:
                found.append(chain)
                break
        if len(found) >= count:
            break
    return found


def _earliest_chain(
    instance: Instance, booked: Booked, center: Center, facility: Facility, apheresis: date, end: date
) -> Chain | None:
    if facility.id not in center.ship_days:
        return None
    ship = center.ship_days[facility.id]
    for start in _days(apheresis + timedelta(days=ship), end):
        if start in facility.closed_dates or start.weekday() in facility.closed_weekdays:
            continue
        if free_line(facility, booked.batches, start) is None:
            continue
        release = start + timedelta(days=facility.manufacturing_days + facility.qc_days)
        earliest = max(
            release + timedelta(days=ship),
            release + timedelta(days=instance.lymphodepletion_days - 1 + instance.ld_to_infusion_gap_days[0]),
        )
        for infusion in _days(earliest, end):
            request = BookingRequest(center.id, apheresis, facility.id, start, infusion)
            try:
                return booking_check(instance, booked, request)
            except (InvalidInput, Refused):
                continue
        return None
    return None


@dataclass(frozen=True)
class FacilityCapacities:
    """A lab's capacities as the protocol states them (initial values, then edited in the app)."""

    center: str
    lines: int
    manufacturing_days: int
    qc_days: int
    closed_weekdays: frozenset[int] = frozenset()


@dataclass(frozen=True)
class CenterCapacities:
    """A treating center's apheresis and infusion capacities and its shipping days to each lab."""

    center: str
    apheresis_weekdays: frozenset[int]
    apheresis_per_day: int
    infusion_weekdays: frozenset[int]
    infusions_per_week: int
    ship_days: dict[str, int]


@dataclass(frozen=True)
class NetworkCapacities:
    """The `capacities:` section of the protocol: the network's initial capacities."""

    lymphodepletion_days: int
    facilities: tuple[FacilityCapacities, ...]
    centers: tuple[CenterCapacities, ...]


def capacities_parse(data: Mapping[str, Any]) -> NetworkCapacities:
    """The protocol's `capacities:` (already valid against the schema); a center shipping to a lab
    the section does not list is refused naming the key."""
    facilities = tuple(
        FacilityCapacities(
            center=str(f["center"]),
            lines=int(f["lines"]),
            manufacturing_days=int(f["manufacturing_days"]),
            qc_days=int(f["qc_days"]),
            closed_weekdays=frozenset(int(d) for d in f.get("closed_weekdays", [])),
        )
        for f in data.get("facilities", [])
    )
    known = {f.center for f in facilities}
    centers = []
    for index, c in enumerate(data.get("centers", [])):
        for lab in c["ship_days"]:
            if lab not in known:
                raise InvalidInput(
                    "{item}: {lab} is not a manufacturing facility of this section.",
                    code="unknown_facility",
                    item=f"capacities.centers.{index}.ship_days.{lab}",
                    lab=lab,
                )
        centers.append(
            CenterCapacities(
                center=str(c["center"]),
                apheresis_weekdays=frozenset(int(d) for d in c["apheresis_weekdays"]),
                apheresis_per_day=int(c["apheresis_per_day"]),
                infusion_weekdays=frozenset(int(d) for d in c["infusion_weekdays"]),
                infusions_per_week=int(c["infusions_per_week"]),
                ship_days={str(k): int(v) for k, v in c["ship_days"].items()},
            )
        )
    return NetworkCapacities(int(data.get("lymphodepletion_days", 3)), facilities, tuple(centers))
