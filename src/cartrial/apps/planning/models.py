"""The network's capacities and the subjects' bookings (issue 11; docs/booking.md).

Capacities are the planner's instance as data: a lab's lines and durations, a center's apheresis
and infusion days, the shipping days between them. A booking holds one subject's chain: the
manufacturing slot (facility, line, start), the apheresis slot (center, day) and the infusion bed
(center, ISO week). The capacity rows are what concurrent bookings lock (SELECT … FOR UPDATE).
"""

from __future__ import annotations

from django.db import models


class FacilityCapacity(models.Model):
    """A manufacturing facility (a lab center): its lines, durations and the weekdays no batch starts."""

    center = models.OneToOneField("trial.Center", on_delete=models.PROTECT, related_name="facility_capacity")
    lines = models.PositiveSmallIntegerField()
    manufacturing_days = models.PositiveSmallIntegerField()
    qc_days = models.PositiveSmallIntegerField()
    # Weekdays (0 = Monday) on which no batch starts, as a sorted list.
    closed_weekdays = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["center__code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(lines__gte=1), name="facility_lines_positive"),
            models.CheckConstraint(condition=models.Q(manufacturing_days__gte=1), name="facility_days_positive"),
        ]


class CenterCapacity(models.Model):
    """A treating center's apheresis slots per day and infusion beds per ISO week, on its weekdays."""

    center = models.OneToOneField("trial.Center", on_delete=models.PROTECT, related_name="capacity")
    apheresis_weekdays = models.JSONField(default=list)
    apheresis_per_day = models.PositiveSmallIntegerField()
    infusion_weekdays = models.JSONField(default=list)
    infusions_per_week = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["center__code"]


class ShippingTime(models.Model):
    """Days of transport between a center and a facility, each way (material and product)."""

    center = models.ForeignKey(CenterCapacity, on_delete=models.CASCADE, related_name="shipping_times")
    facility = models.ForeignKey(FacilityCapacity, on_delete=models.PROTECT, related_name="shipping_times")
    days = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["center__center__code", "facility__center__code"]
        constraints = [models.UniqueConstraint(fields=["center", "facility"], name="shipping_time_once")]


class Booking(models.Model):
    """One subject's reserved chain; a cancelled booking keeps its dates and frees its slots."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="bookings")
    center = models.ForeignKey(CenterCapacity, on_delete=models.PROTECT, related_name="bookings")
    facility = models.ForeignKey(FacilityCapacity, on_delete=models.PROTECT, related_name="bookings")
    line = models.PositiveSmallIntegerField()
    apheresis_date = models.DateField()
    manufacturing_start = models.DateField()
    release_date = models.DateField()
    product_arrival = models.DateField()
    lymphodepletion_start = models.DateField()
    infusion_date = models.DateField()
    infusion_week = models.CharField(max_length=8, help_text="ISO week of the infusion bed, e.g. 2026-W49")
    active = models.BooleanField(default=True)
    booked_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    booked_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["apheresis_date", "pk"]
        constraints = [
            # A subject holds one chain at a time; a re-booking cancels the old one first.
            models.UniqueConstraint(
                fields=["subject"], condition=models.Q(active=True), name="booking_one_active_per_subject"
            ),
            # The last guard against a double booking of a line on one start day (the lock is the first).
            models.UniqueConstraint(
                fields=["facility", "line", "manufacturing_start"],
                condition=models.Q(active=True),
                name="booking_line_start_once",
            ),
        ]


class ReplanProposal(models.Model):
    """New dates the planner proposes after an event (a failed batch, a late shipment, a moved
    visit, a coordinator's request); nothing moves until a coordinator accepts it."""

    class Trigger(models.TextChoices):
        QC_FAILURE = "qc_failure"
        SHIPMENT_LATE = "shipment_late"
        VISIT_MOVED = "visit_moved"
        MANUAL = "manual"

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        STALE = "stale"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    detail = models.TextField(blank=True, help_text="What happened, as recorded by the event")
    # The one center of its subjects; null when the proposal spans centers (the sponsor admin decides).
    center = models.ForeignKey("trial.Center", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    solver = models.CharField(max_length=24)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class ReplanItem(models.Model):
    """One affected subject of a proposal: the booking it replaces (its dates as they stood) and the
    new chain."""

    proposal = models.ForeignKey(ReplanProposal, on_delete=models.CASCADE, related_name="items")
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="replan_items")
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # {date name: ISO date} with the keys of `domain.planning.replan.PLAN_DATES`; `before` is empty
    # for a subject without a booking.
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    facility = models.CharField(max_length=16)
    line = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["proposal", "subject__code"]
