"""Planning writes: capacities loaded from the protocol and corrected with a reason, bookings made
and cancelled. One function per use case, inside the caller's transaction, audited with the
actor's one `now`.

Concurrency: a booking locks the facility's and the center's capacity rows (SELECT … FOR UPDATE,
always in that order) before it reads what is booked, so two coordinators asking for the last
slot are answered one after the other: the second sees the first's booking and is refused with
the rule's message. The partial unique constraint on (facility, line, start) is the last guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_correction, audit_record, audited_attempt
from cartrial.apps.planning.models import Booking, CenterCapacity, FacilityCapacity, ShippingTime
from cartrial.apps.planning.selectors import WAITING_STATES, CapacityRecord, booked_now, instance_build
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.booking import BookingRequest, Chain, booking_check, iso_week
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.roles import Action
from cartrial.protocols import Protocol

# Each capacity field with its plausibility range (unit: days, lines, slots): one declaration,
# read by the set-up page, the correction service and the API.
CAPACITY_RANGES: dict[str, tuple[int, int, str]] = {
    "lines": (1, 50, "lines"),
    "manufacturing_days": (1, 60, "days"),
    "qc_days": (0, 60, "days"),
    "apheresis_per_day": (1, 20, "slots"),
    "infusions_per_week": (1, 50, "beds"),
    "days": (0, 14, "days"),
}
WEEKDAY_FIELDS: frozenset[str] = frozenset({"closed_weekdays", "apheresis_weekdays", "infusion_weekdays"})
FACILITY_FIELDS = ("lines", "manufacturing_days", "qc_days", "closed_weekdays")
CENTER_FIELDS = ("apheresis_weekdays", "apheresis_per_day", "infusion_weekdays", "infusions_per_week")
# The capacity records a person changes (the page's `kind`), each with its fields.
CAPACITY_RECORDS: dict[str, tuple[type[CapacityRecord], tuple[str, ...]]] = {
    "facility": (FacilityCapacity, FACILITY_FIELDS),
    "center": (CenterCapacity, CENTER_FIELDS),
    "shipping": (ShippingTime, ("days",)),
}


def capacities_load(*, actor: Actor, protocol: Protocol) -> int:
    """Store the protocol's initial capacities for the centers that exist and have none yet (set-up,
    run by the demo and `cartrial demo`); returns how many rows were created. Never overwrites."""
    if protocol.capacities is None:
        return 0
    created = 0
    centers = {c.code: c for c in Center.objects.all()}
    for f in protocol.capacities.facilities:
        center = centers.get(f.center)
        if center is None or FacilityCapacity.objects.filter(center=center).exists():
            continue
        row = FacilityCapacity.objects.create(
            center=center,
            lines=f.lines,
            manufacturing_days=f.manufacturing_days,
            qc_days=f.qc_days,
            closed_weekdays=sorted(f.closed_weekdays),
        )
        _audit_set(actor, "facility_capacity", center.code, {n: getattr(row, n) for n in FACILITY_FIELDS})
        created += 1
    facilities = {f.center.code: f for f in FacilityCapacity.objects.select_related("center")}
    for c in protocol.capacities.centers:
        center = centers.get(c.center)
        if center is None or CenterCapacity.objects.filter(center=center).exists():
            continue
        capacity = CenterCapacity.objects.create(
            center=center,
            apheresis_weekdays=sorted(c.apheresis_weekdays),
            apheresis_per_day=c.apheresis_per_day,
            infusion_weekdays=sorted(c.infusion_weekdays),
            infusions_per_week=c.infusions_per_week,
        )
        values: dict[str, Any] = {n: getattr(capacity, n) for n in CENTER_FIELDS}
        for lab, days in c.ship_days.items():
            if lab in facilities:
                ShippingTime.objects.create(center=capacity, facility=facilities[lab], days=days)
                values[f"ship_days.{lab}"] = days
        _audit_set(actor, "center_capacity", center.code, values)
        created += 1
    return created


def _audit_set(actor: Actor, entity: str, entity_id: str, values: dict[str, Any]) -> None:
    audit_record(
        actor=actor,
        event=AuditEvent.CAPACITY_SET,
        entity=entity,
        entity_id=entity_id,
        changes=[Change(name, None, value) for name, value in values.items()],
        center_code="",
    )


def capacity_value_parse(name: str, raw: object) -> Any:
    """A capacity field's value from a form or the API: weekdays as a list of 0–6, counts within
    their declared range; refused naming the item and the rule."""
    if name in WEEKDAY_FIELDS:
        items = raw if isinstance(raw, list | tuple) else [p for p in str(raw).replace(" ", "").split(",") if p]
        try:
            days = sorted({int(d) for d in items})
        except (TypeError, ValueError):
            raise InvalidInput(
                "{item}: weekdays are numbers from 0 (Monday) to 6 (Sunday).", code="invalid_weekdays", item=name
            ) from None
        if any(not 0 <= d <= 6 for d in days):
            raise InvalidInput(
                "{item}: weekdays are numbers from 0 (Monday) to 6 (Sunday).", code="invalid_weekdays", item=name
            )
        if not days and name != "closed_weekdays":
            raise InvalidInput("{item}: at least one weekday is needed.", code="invalid_weekdays", item=name)
        return days
    if name not in CAPACITY_RANGES:
        raise InvalidInput("{item} is not a capacity.", code="unknown_item", item=name)
    low, high, unit = CAPACITY_RANGES[name]
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput("{item} must be a whole number.", code="not_a_number", item=name) from None
    if not low <= value <= high:
        raise InvalidInput(
            "{item} must be from {minimum} to {maximum} {unit}.",
            code="value_out_of_range",
            item=name,
            minimum=low,
            maximum=high,
            unit=unit,
        )
    return value


def capacity_correct(
    *, actor: Actor, record: FacilityCapacity | CenterCapacity | ShippingTime, field: str, raw: object, reason: str
) -> None:
    """Change one capacity with a reason (the audit trail keeps old → new); nothing stored on a refusal."""
    allowed = {
        FacilityCapacity: FACILITY_FIELDS,
        CenterCapacity: CENTER_FIELDS,
        ShippingTime: ("days",),
    }[type(record)]
    if field not in allowed:
        raise InvalidInput("{item} is not a capacity.", code="unknown_item", item=field)
    if not reason.strip():
        raise InvalidInput("A reason for the change is required.", code="reason_required", item="reason")
    value = capacity_value_parse(field, raw)
    locked = type(record).objects.select_for_update().get(pk=record.pk)
    old = getattr(locked, field)
    if old == value:
        return
    setattr(locked, field, value)
    locked.save(update_fields=[field])
    audit_correction(
        actor=actor,
        entity=_entity(locked),
        entity_id=_entity_id(locked),
        field=field,
        old=old,
        new=value,
        reason=reason,
        subject_code="",
    )


def capacities_change(
    *, actor: Actor, kind: str, record: CapacityRecord, values: Mapping[str, object], reason: str
) -> None:
    """Change some values of one capacity record with one reason (the page's form, the API's body):
    all of them or none; a refusal (a value out of its range, a field the record has not, no reason)
    is recorded after the rollback, naming the record."""

    def work() -> None:
        for name, raw in values.items():
            capacity_correct(actor=actor, record=record, field=name, raw=raw, reason=reason)

    audited_attempt(
        actor=actor,
        event=AuditEvent.ACTION_REFUSED,
        entity=kind,
        entity_id=str(record.pk),
        what=Action.MANAGE_CAPACITIES.value,
        subject_code="",
        work=work,
    )


def _entity(record: FacilityCapacity | CenterCapacity | ShippingTime) -> str:
    if isinstance(record, FacilityCapacity):
        return "facility_capacity"
    return "center_capacity" if isinstance(record, CenterCapacity) else "shipping_time"


def _entity_id(record: FacilityCapacity | CenterCapacity | ShippingTime) -> str:
    if isinstance(record, ShippingTime):
        return f"{record.center.center.code}-{record.facility.center.code}"
    return record.center.code


def booking_row_create(
    subject: Subject, center: CenterCapacity, facility: FacilityCapacity, chain: Chain, user_id: int, now: datetime
) -> Booking:
    """The booking row of a checked chain (booking and re-planning book alike; the checks and the
    locks are the caller's)."""
    plan = chain.plan
    return Booking.objects.create(
        subject=subject,
        center=center,
        facility=facility,
        line=chain.line,
        apheresis_date=plan.apheresis,
        manufacturing_start=plan.manufacturing_start,
        release_date=plan.release,
        product_arrival=plan.product_arrival,
        lymphodepletion_start=plan.lymphodepletion_start,
        infusion_date=plan.infusion,
        infusion_week=iso_week(plan.infusion),
        booked_by_id=user_id,
        booked_at=now,
    )


def booking_make(
    *, actor: Actor, user_id: int, subject: Subject, request: BookingRequest, protocol: Protocol, today: date
) -> Booking:
    """Book the chain of `request` for a subject waiting for it: checked against the capacities and
    what is booked, under a lock of the capacity rows (see the module's docstring)."""
    locked = subjects.subject_lock(subject)
    if locked.state not in WAITING_STATES:
        raise Refused(
            "{subject} cannot be booked now: only an included subject whose apheresis is not collected yet.",
            code="not_waiting",
            subject=locked.code,
        )
    if Booking.objects.filter(subject=locked, active=True).exists():
        raise Refused(
            "{subject} already holds a booking: cancel it first, with a reason.",
            code="already_booked",
            subject=locked.code,
        )
    if request.apheresis < today:
        raise InvalidInput(
            "The apheresis cannot be booked in the past ({day}).",
            code="date_in_past",
            item="apheresis",
            day=request.apheresis,
        )
    horizon = protocol.pathway_rules.planning_horizon_days
    if request.apheresis > today + timedelta(days=horizon):
        raise InvalidInput(
            "The apheresis is more than {days} days ahead ({day}).",
            code="beyond_horizon",
            item="apheresis",
            days=horizon,
            day=request.apheresis,
        )
    facility = FacilityCapacity.objects.select_for_update().filter(center__code=request.facility).first()
    center = CenterCapacity.objects.select_for_update().filter(center=locked.center).first()
    if center is None:
        raise InvalidInput(
            "No capacities are set for center {center}.", code="no_capacities", center=locked.center.code
        )
    if facility is None:
        raise InvalidInput(
            "{facility} does not manufacture for {center}.",
            code="unknown_facility",
            item="facility",
            facility=request.facility,
            center=locked.center.code,
        )
    instance = instance_build(protocol, today, (request.infusion - today).days + 1)
    chain = booking_check(instance, booked_now(), request)
    try:
        with transaction.atomic():
            booking = booking_row_create(locked, center, facility, chain, user_id, actor.now)
    except IntegrityError:
        raise Refused(
            "No manufacturing slot is free at {facility} on {start}: apheresis can be booked only against "
            "a reserved manufacturing slot. Choose another proposed date.",
            code="no_manufacturing_slot",
            item="manufacturing_start",
            facility=request.facility,
            start=request.manufacturing_start,
        ) from None
    audit_record(
        actor=actor,
        event=AuditEvent.BOOKING_MADE,
        entity="booking",
        entity_id=str(booking.pk),
        subject_code=locked.code,
        changes=[Change(name, None, value) for name, value in booking_dates(booking)],
    )
    return booking


def booking_dates(booking: Booking) -> Sequence[tuple[str, Any]]:
    """A booking's reservations as the audit trail and the API name them."""
    return (
        ("facility", booking.facility.center.code),
        ("line", booking.line),
        ("apheresis", booking.apheresis_date.isoformat()),
        ("manufacturing_start", booking.manufacturing_start.isoformat()),
        ("release", booking.release_date.isoformat()),
        ("product_arrival", booking.product_arrival.isoformat()),
        ("lymphodepletion_start", booking.lymphodepletion_start.isoformat()),
        ("infusion", booking.infusion_date.isoformat()),
        ("infusion_week", booking.infusion_week),
    )


def booking_cancel(*, actor: Actor, subject: Subject, booking_id: int, reason: str) -> Booking:
    """Cancel a subject's active booking with a reason: its slots become free again."""
    if not reason.strip():
        raise InvalidInput("A reason for the change is required.", code="reason_required", item="reason")
    locked = subjects.subject_lock(subject)
    booking = Booking.objects.select_for_update().filter(pk=booking_id, subject=locked, active=True).first()
    if booking is None:
        raise InvalidInput(
            "{subject} has no active booking {booking}.",
            code="not_found",
            item="booking",
            subject=locked.code,
            booking=booking_id,
        )
    booking.active = False
    booking.cancelled_at = actor.now
    booking.cancel_reason = reason.strip()
    booking.save(update_fields=["active", "cancelled_at", "cancel_reason"])
    audit_record(
        actor=actor,
        event=AuditEvent.BOOKING_CANCELLED,
        entity="booking",
        entity_id=str(booking.pk),
        subject_code=locked.code,
        changes=[Change("active", True, False)],
        reason=reason.strip(),
    )
    return booking
