"""Planning reads: the capacities as a planner's instance, what is booked, the free slots, a subject's
bookings. Reads of subjects are scoped by the acting user (access module)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import holidays
from django.db.models import QuerySet

from cartrial.apps.access import Scope, subjects_in_scope
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entry_changes
from cartrial.apps.planning.models import Booking, CenterCapacity, FacilityCapacity, ShippingTime
from cartrial.apps.subjects.models import Subject
from cartrial.domain.booking import Booked, Chain, ManufacturingSlot, lymphodepletion_from_window, slots_propose
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.pathway import State
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient
from cartrial.domain.planning.replan import instance_with_booked
from cartrial.domain.visits import Anchor, VisitPhase
from cartrial.protocols import Protocol

CAPACITY_ENTITIES: tuple[str, ...] = ("facility_capacity", "center_capacity", "shipping_time")
CapacityRecord = FacilityCapacity | CenterCapacity | ShippingTime

# Subjects waiting for a chain: included, apheresis not yet collected.
WAITING_STATES: frozenset[str] = frozenset({State.INCLUDED.value, State.APHERESIS_SCHEDULED.value})


def closed_dates(country: str, start: date, days: int) -> frozenset[date]:
    """Public holidays of `country` (the `holidays` package) from `start` over `days` days."""
    end = start + timedelta(days=days)
    calendar = holidays.country_holidays(country, years=range(start.year, end.year + 1))
    return frozenset(d for d in calendar if start <= d <= end)


def lymphodepletion_days(protocol: Protocol) -> int:
    """The length of lymphodepletion from the protocol in force (3 days when it does not say)."""
    return protocol.capacities.lymphodepletion_days if protocol.capacities else 3


def instance_build(protocol: Protocol, start: date, horizon_days: int, patients: Iterable[Patient] = ()) -> Instance:
    """The stored capacities as the planner's instance, with the holidays of each country over the
    horizon and the lymphodepletion rules of the protocol in force."""
    facilities = tuple(
        Facility(
            id=f.center.code,
            lines=f.lines,
            manufacturing_days=f.manufacturing_days,
            qc_days=f.qc_days,
            closed_weekdays=frozenset(f.closed_weekdays),
            closed_dates=closed_dates(f.center.country, start, horizon_days),
        )
        for f in FacilityCapacity.objects.select_related("center")
    )
    centers = tuple(
        Center(
            id=c.center.code,
            country=c.center.country,
            apheresis_weekdays=frozenset(c.apheresis_weekdays),
            apheresis_per_day=c.apheresis_per_day,
            infusion_weekdays=frozenset(c.infusion_weekdays),
            infusions_per_week=c.infusions_per_week,
            ship_days={s.facility.center.code: s.days for s in c.shipping_times.all()},
            closed_dates=closed_dates(c.center.country, start, horizon_days),
        )
        for c in CenterCapacity.objects.select_related("center").prefetch_related("shipping_times__facility__center")
    )
    ld_days = lymphodepletion_days(protocol)
    return Instance(
        start_date=start,
        horizon_days=horizon_days,
        facilities=facilities,
        centers=centers,
        patients=tuple(patients),
        lymphodepletion_days=ld_days,
        ld_to_infusion_gap_days=lymphodepletion_from_window(
            protocol.pathway_rules.lymphodepletion_window_days, ld_days
        ),
    )


def waiting_patients(scope: Scope, start: date) -> list[Patient]:
    """The subjects of the scope waiting for a chain (no active booking yet), ready from `start`."""
    booked = Booking.objects.filter(active=True).values("subject_id")
    subjects = subjects_in_scope(scope).filter(state__in=WAITING_STATES).exclude(pk__in=booked)
    return [Patient(id=s.code, center=s.center.code, ready_date=start) for s in subjects.select_related("center")]


def network_instance(scope: Scope, protocol: Protocol, start: date, horizon_days: int) -> Instance:
    """The instance a planner solves for the scope's waiting subjects from `start`, with what the
    active bookings already hold closed (a full apheresis day, an infusion week without a bed, a
    batch start without a free line), so that the plan proposes only slots still free."""
    instance = instance_build(protocol, start, horizon_days, waiting_patients(scope, start))
    return instance_with_booked(instance, booked_now())


def booked_now(*, exclude_subject: Subject | None = None, exclude_subject_ids: Iterable[int] = ()) -> Booked:
    """What the active bookings hold (the bookings of the subjects being re-planned left out)."""
    booked = Booked()
    rows = Booking.objects.filter(active=True).select_related("center__center", "facility__center")
    if exclude_subject is not None:
        rows = rows.exclude(subject=exclude_subject)
    excluded = list(exclude_subject_ids)
    if excluded:
        rows = rows.exclude(subject_id__in=excluded)
    for b in rows:
        booked.batches.append(ManufacturingSlot(b.facility.center.code, b.line, b.manufacturing_start))
        booked.apheresis[(b.center.center.code, b.apheresis_date)] += 1
        booked.infusions[(b.center.center.code, b.infusion_week)] += 1
    return booked


def slots_free(protocol: Protocol, center_code: str, ready: date, count: int = 5) -> list[Chain]:
    """The earliest free chains for a subject of `center_code` ready on `ready`."""
    instance = instance_build(protocol, ready, protocol.pathway_rules.planning_horizon_days)
    return slots_propose(instance, booked_now(), center_code, ready, count)


def subject_bookings(subject: Subject) -> QuerySet[Booking]:
    """A reached subject's bookings, the active one first, then the cancelled ones (newest first)."""
    return (
        Booking.objects.filter(subject=subject)
        .select_related("subject", "facility__center")
        .order_by("-active", "-booked_at", "-pk")
    )


def active_booking(subject: Subject) -> Booking | None:
    """The subject's active booking, if any."""
    return Booking.objects.filter(subject=subject, active=True).select_related("facility__center").first()


def manufacturing_reservations(scope: Scope) -> QuerySet[Booking]:
    """Active bookings of the labs in the scope (what the lab sees: slots, codes only)."""
    return (
        Booking.objects.filter(active=True, facility__center_id__in=scope.lab_center_ids)
        .select_related("subject", "facility__center")
        .order_by("manufacturing_start", "line", "pk")
    )


def apheresis_booking_check(subject: Subject, planned: date) -> None:
    """Scheduling the apheresis at a center whose capacities are set needs the subject's booking,
    on that day: apheresis is booked only against a reserved manufacturing slot. A center without
    capacities (not yet set up) schedules as before."""
    if not CenterCapacity.objects.filter(center_id=subject.center_id).exists():
        return
    booking = active_booking(subject)
    if booking is None:
        raise Refused(
            "Apheresis can be booked only against a reserved manufacturing slot: book the slots of {subject} "
            "first (booking page).",
            code="no_booking",
            item="apheresis_date",
            subject=subject.code,
        )
    if booking.apheresis_date != planned:
        raise InvalidInput(
            "The apheresis of {subject} is booked on {booked}, not {planned}: cancel and re-book to change it.",
            code="not_booked_day",
            item="apheresis_date",
            subject=subject.code,
            booked=booking.apheresis_date,
            planned=planned,
        )


@dataclass(frozen=True)
class CapacityChange:
    """One audited change of a capacity: who, when, why, old → new."""

    at: datetime
    username: str
    role: str
    entity: str
    entity_id: str
    changes: list[dict[str, Any]]
    reason: str


def capacity_entries(since: datetime | None = None) -> QuerySet[AuditEntry]:
    """The audit entries of the capacities, newest first (after `since` when given)."""
    rows = AuditEntry.objects.filter(entity__in=CAPACITY_ENTITIES)
    if since is not None:
        rows = rows.filter(occurred_at__gt=since)
    return rows.order_by("-sequence")


def capacity_change(entry: AuditEntry) -> CapacityChange:
    return CapacityChange(
        entry.occurred_at,
        entry.actor_username,
        entry.role,
        entry.entity,
        entry.entity_id,
        entry_changes(entry),
        entry.reason,
    )


def capacity_history(limit: int = 50) -> list[CapacityChange]:
    """The latest changes of the capacities from the audit trail (the one store of old values)."""
    return [capacity_change(r) for r in capacity_entries()[:limit]]


def capacity_record_of(kind: str, key: str) -> CapacityRecord | None:
    """A capacity record of `kind` (facility, center, shipping) by the code the API and the history
    name it with: the lab's or the center's code, or CENTER-LAB for a shipping time."""
    code = key.strip().upper()
    if kind == "facility":
        return FacilityCapacity.objects.select_related("center").filter(center__code=code).first()
    if kind == "center":
        return CenterCapacity.objects.select_related("center").filter(center__code=code).first()
    center, _, lab = code.partition("-")
    return (
        ShippingTime.objects.select_related("center__center", "facility__center")
        .filter(center__center__code=center, facility__center__code=lab)
        .first()
    )


def bookings_or_capacities_changed_since(since: datetime) -> bool:
    """Whether a booking or a capacity changed after `since` (what the free chains are computed from)."""
    return AuditEntry.objects.filter(occurred_at__gt=since, entity__in=(*CAPACITY_ENTITIES, "booking")).exists()


def booked_visit_dates(
    subject_ids: Sequence[int], protocol: Protocol
) -> dict[int, tuple[date | None, dict[str, date]]]:
    """The booked dates the casebook shows as visit targets (registered in `PlanningConfig.ready`):
    per subject with an active booking, the booked D0, the apheresis visit's booked day (the
    protocol's treatment visit anchored on inclusion) and the lymphodepletion visit's (the treatment
    visit before D0)."""
    treatment = [v for v in protocol.visits if v.phase is VisitPhase.TREATMENT]
    apheresis_visits = [v.code for v in treatment if v.anchor is Anchor.INCLUSION]
    lymphodepletion_visits = [v.code for v in treatment if v.anchor is Anchor.INFUSION and v.day < 0]
    rows = Booking.objects.filter(active=True, subject_id__in=list(subject_ids)).values_list(
        "subject_id", "apheresis_date", "lymphodepletion_start", "infusion_date"
    )
    return {
        sid: (d0, {**dict.fromkeys(apheresis_visits, aph), **dict.fromkeys(lymphodepletion_visits, ld)})
        for sid, aph, ld, d0 in rows
    }
