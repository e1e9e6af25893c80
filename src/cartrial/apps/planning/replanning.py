"""Re-planning (issue 11, item 4; docs/booking.md "Re-planning"): after a failed batch, a late
shipment, a moved visit or a coordinator's request, the planner proposes new chains for the
subjects affected, the other bookings held as used capacity. A proposal moves nothing: a coordinator
of the subject's center (the sponsor's administrator for a proposal across centers) accepts it, which
re-books atomically under the booking's locks, or rejects it with a reason. Every step is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from cartrial.apps.access import (
    Reach,
    Scope,
    centers_for,
    reach_network,
    require_at,
    require_somewhere,
    subjects_in_scope,
)
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record, audited_attempt
from cartrial.apps.logistics.models import Shipment
from cartrial.apps.planning.models import Booking, CenterCapacity, FacilityCapacity, ReplanItem, ReplanProposal
from cartrial.apps.planning.selectors import booked_now, instance_build
from cartrial.apps.planning.services import booking_dates, booking_row_create
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.booking import BookingRequest, ManufacturingSlot, booking_check
from cartrial.domain.errors import DomainError, InvalidInput, NotFound, Refused
from cartrial.domain.planning.instance import Patient, PatientPlan
from cartrial.domain.planning.replan import PLAN_DATE_LABELS, PLAN_DATES, replan
from cartrial.domain.roles import Action
from cartrial.protocols import Protocol

# The solver's time limit for a proposal: a handful of patients, answered while the event is recorded.
REPLAN_TIME_LIMIT_S = 3.0


def plan_dates(plan: PatientPlan) -> dict[str, str]:
    """A chain's dates by their contract names, as ISO strings."""
    return {name: getattr(plan, name).isoformat() for name in PLAN_DATES}


def booking_plan_dates(booking: Booking) -> dict[str, str]:
    """A booking's dates by the same names as a proposed chain."""
    values = dict(booking_dates(booking))
    return {name: values[name] for name in PLAN_DATES}


def replan_propose(
    *,
    actor: Actor,
    user_id: int | None,
    affected: Sequence[Subject],
    trigger: str,
    detail: str,
    protocol: Protocol,
    today: date,
) -> ReplanProposal | None:
    """Propose new chains for the `affected` subjects from `today`, every other booking held; None
    when no center of theirs has capacities or no chain can be found. Pending proposals of the same
    subjects become stale (the newest answer replaces them)."""
    candidates = [s for s in affected if CenterCapacity.objects.filter(center_id=s.center_id).exists()]
    if not candidates:
        return None
    horizon = protocol.pathway_rules.planning_horizon_days
    instance = instance_build(protocol, today, horizon)
    booked = booked_now(exclude_subject_ids=[s.pk for s in candidates])
    patients = [Patient(id=s.code, center=s.center.code, ready_date=today) for s in candidates]
    answer = replan(instance, booked, patients, time_limit_s=REPLAN_TIME_LIMIT_S)
    if not answer.chains:
        return None
    pending = ReplanProposal.objects.filter(
        status=ReplanProposal.Status.PENDING, items__subject__in=candidates
    ).distinct()
    for old in pending:
        _mark_stale(actor, old, "superseded")
    centers = {s.center_id for s in candidates if s.code in answer.chains}
    proposal = ReplanProposal.objects.create(
        trigger=trigger,
        detail=detail,
        center_id=next(iter(centers)) if len(centers) == 1 else None,
        solver=answer.solver,
        created_at=actor.now,
        created_by_id=user_id,
    )
    for subject in candidates:
        if subject.code not in answer.chains:
            continue
        plan, line = answer.chains[subject.code]
        booking = Booking.objects.filter(subject=subject, active=True).select_related("facility__center").first()
        ReplanItem.objects.create(
            proposal=proposal,
            subject=subject,
            booking=booking,
            before=booking_plan_dates(booking) if booking else {},
            after=plan_dates(plan),
            facility=plan.facility,
            line=line,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.REPLAN_PROPOSED,
            entity="replan_proposal",
            entity_id=str(proposal.pk),
            subject_code=subject.code,
            changes=[Change("trigger", None, trigger)]
            + [
                Change(name, (booking_plan_dates(booking) if booking else {}).get(name), value)
                for name, value in plan_dates(plan).items()
            ],
            reason=detail,
        )
    return proposal


def replan_request(reach: Reach, reason: str, protocol: Protocol) -> ReplanProposal:
    """A coordinator asks new dates for a subject reached for `BOOK_SLOTS` (the booking page's
    "Propose new dates", the API): in one transaction, a refusal recorded after the rollback; refused
    when no chain can be proposed (no capacities at its center, none free within the horizon)."""
    subject = reach.subject
    proposal = reach.run(
        lambda: replan_propose(
            actor=reach.actor,
            user_id=reach.user.pk,
            affected=[subject],
            trigger=ReplanProposal.Trigger.MANUAL,
            detail=reason,
            protocol=protocol,
            today=local_today(subject.center, reach.actor.now),
        ),
        what=Action.BOOK_SLOTS.value,
    )
    if proposal is None:
        raise InvalidInput(
            "No new dates can be proposed for {subject}: no capacities at its center or no free chain "
            "within the planning horizon.",
            code="no_proposal",
            item="propose",
            subject=subject.code,
        )
    return proposal


def replan_propose_quietly(**kwargs: Any) -> ReplanProposal | None:
    """`replan_propose` for an event's service (a failed batch): the event is recorded even when no
    proposal can be made; a refusal of the planner never rolls the event back."""
    try:
        with transaction.atomic():
            return replan_propose(**kwargs)
    except DomainError:
        return None


def late_shipments_replan(*, actor: Actor, protocol: Protocol) -> list[ReplanProposal]:
    """The daily scan's re-planning: a shipment whose planned arrival has passed without arrival is
    late, and its booked subject gets new dates proposed, once per shipment (nothing moves before a
    coordinator accepts them)."""
    late = (
        Shipment.objects.filter(
            actual_arrival_at__isnull=True, planned_arrival_at__lt=actor.now, subject__bookings__active=True
        )
        .select_related("subject__center")
        .distinct()
        .order_by("planned_arrival_at", "pk")
    )
    proposals: list[ReplanProposal] = []
    for shipment in late:
        planned = shipment.planned_arrival_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        detail = LATE_SHIPMENT_DETAIL.format(shipment=shipment.pk, at=planned)
        if ReplanProposal.objects.filter(trigger=ReplanProposal.Trigger.SHIPMENT_LATE, detail=detail).exists():
            continue
        subject = shipment.subject
        proposal = replan_propose_quietly(
            actor=actor,
            user_id=None,
            affected=[subject],
            trigger=ReplanProposal.Trigger.SHIPMENT_LATE,
            detail=detail,
            protocol=protocol,
            today=local_today(subject.center, actor.now),
        )
        if proposal is not None:
            proposals.append(proposal)
    return proposals


# The detail of a proposal the scan made: it names the shipment, so one late shipment proposes once.
LATE_SHIPMENT_DETAIL = "Shipment {shipment} not arrived by its planned arrival ({at} UTC)"


def _mark_stale(actor: Actor, proposal: ReplanProposal, why: str) -> None:
    ReplanProposal.objects.filter(pk=proposal.pk).update(status=ReplanProposal.Status.STALE, decided_at=actor.now)
    audit_record(
        actor=actor,
        event=AuditEvent.REPLAN_STALE,
        entity="replan_proposal",
        entity_id=str(proposal.pk),
        subject_code="",
        changes=[Change("status", ReplanProposal.Status.PENDING.value, ReplanProposal.Status.STALE.value)],
        reason=why,
    )


def _stale(actor: Actor, proposal: ReplanProposal, why: str, subject: str) -> Refused:
    """The refusal of a proposal overtaken by events: nothing moves, and it is marked stale after the
    rollback (its dates no longer fit)."""
    refusal = Refused(
        "Proposal {proposal} is stale: {why} ({subject}). Nothing was moved; propose new dates again.",
        code="replan_stale",
        item="proposal",
        proposal=proposal.pk,
        why=why,
        subject=subject,
    )
    refusal.after_rollback.append(lambda: _mark_stale(actor, proposal, f"{subject}: {why}"))
    return refusal


def _pending(proposal_id: int) -> ReplanProposal:
    proposal = ReplanProposal.objects.select_for_update().filter(pk=proposal_id).first()
    if proposal is None:
        raise NotFound("No re-planning proposal {proposal}.", code="not_found", proposal=proposal_id)
    if proposal.status != ReplanProposal.Status.PENDING:
        raise Refused(
            "Proposal {proposal} is already {status}: only a pending proposal can be decided.",
            code="replan_decided",
            item="proposal",
            proposal=proposal.pk,
            status=proposal.status,
        )
    return proposal


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput("A reason for the decision is required.", code="reason_required", item="reason")
    return reason.strip()


def replan_accept(
    *, actor: Actor, user_id: int, proposal_id: int, reason: str, protocol: Protocol, today: date
) -> ReplanProposal:
    """Accept a proposal: each subject's booking is cancelled and its new chain booked, all or
    nothing, under the locks of `booking_make` (subjects, then labs, then centers). A proposal whose
    booking changed or whose slots were taken meanwhile is refused and marked stale."""
    why = _reason(reason)
    proposal = _pending(proposal_id)
    items = list(proposal.items.select_related("subject__center").order_by("subject_id"))
    locked = {item.subject_id: subjects.subject_lock(item.subject) for item in items}
    facilities = {
        f.center.code: f
        for f in FacilityCapacity.objects.select_for_update(of=("self",))
        .select_related("center")
        .filter(center__code__in={i.facility for i in items})
        .order_by("center__code")
    }
    centers = {
        c.center_id: c
        for c in CenterCapacity.objects.select_for_update(of=("self",))
        .filter(center_id__in={s.center_id for s in locked.values()})
        .order_by("center__code")
    }
    for item in items:
        current = Booking.objects.filter(subject_id=item.subject_id, active=True).first()
        if (current.pk if current else None) != item.booking_id:
            raise _stale(actor, proposal, "the booking changed since the proposal", item.subject.code)
        if date.fromisoformat(item.after["apheresis"]) < today:
            raise _stale(actor, proposal, "the proposed apheresis is in the past", item.subject.code)
        if current is not None:
            current.active = False
            current.cancelled_at = actor.now
            current.cancel_reason = f"Re-planning {proposal.pk}: {why}"
            current.save(update_fields=["active", "cancelled_at", "cancel_reason"])
            audit_record(
                actor=actor,
                event=AuditEvent.BOOKING_CANCELLED,
                entity="booking",
                entity_id=str(current.pk),
                subject_code=item.subject.code,
                changes=[Change("active", True, False)],
                reason=current.cancel_reason,
            )
    horizon = max(date.fromisoformat(i.after["infusion"]) for i in items)
    instance = instance_build(protocol, today, (horizon - today).days + 1)
    booked = booked_now()
    for item in items:
        subject = locked[item.subject_id]
        after = item.after
        request = BookingRequest(
            subject.center.code,
            date.fromisoformat(after["apheresis"]),
            item.facility,
            date.fromisoformat(after["manufacturing_start"]),
            date.fromisoformat(after["infusion"]),
        )
        try:
            chain = booking_check(instance, booked, request)
        except DomainError as broken:
            raise _stale(actor, proposal, str(broken), subject.code) from None
        plan = chain.plan
        booking = booking_row_create(
            subject, centers[subject.center_id], facilities[item.facility], chain, user_id, actor.now
        )
        booked.batches.append(ManufacturingSlot(item.facility, chain.line, plan.manufacturing_start))
        booked.apheresis[(subject.center.code, plan.apheresis)] += 1
        booked.infusions[(subject.center.code, booking.infusion_week)] += 1
        audit_record(
            actor=actor,
            event=AuditEvent.BOOKING_MADE,
            entity="booking",
            entity_id=str(booking.pk),
            subject_code=subject.code,
            changes=[Change(name, None, value) for name, value in booking_dates(booking)],
            reason=f"Re-planning {proposal.pk}",
        )
    return _decide(actor, user_id, proposal, ReplanProposal.Status.ACCEPTED, why, AuditEvent.REPLAN_ACCEPTED)


def replan_reject(*, actor: Actor, user_id: int, proposal_id: int, reason: str) -> ReplanProposal:
    """Reject a proposal with a reason: nothing moves."""
    why = _reason(reason)
    proposal = _pending(proposal_id)
    return _decide(actor, user_id, proposal, ReplanProposal.Status.REJECTED, why, AuditEvent.REPLAN_REJECTED)


def _decide(
    actor: Actor, user_id: int, proposal: ReplanProposal, status: str, reason: str, event: AuditEvent
) -> ReplanProposal:
    proposal.status = status
    proposal.decided_at = actor.now
    proposal.decided_by_id = user_id
    proposal.decision_reason = reason
    proposal.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    codes = list(proposal.items.values_list("subject__code", flat=True))
    audit_record(
        actor=actor,
        event=event,
        entity="replan_proposal",
        entity_id=str(proposal.pk),
        subject_code=codes[0] if len(codes) == 1 else "",
        changes=[Change("status", ReplanProposal.Status.PENDING.value, status), Change("subjects", None, codes)],
        reason=reason,
    )
    return proposal


# --- reads ------------------------------------------------------------------------------------


def proposals_visible(scope: Scope, *, subject: Subject | None = None) -> QuerySet[ReplanProposal]:
    """The proposals with at least one subject in the user's scope (a subject's, when given)."""
    reached = subjects_in_scope(scope)
    if subject is not None:
        reached = reached.filter(pk=subject.pk)
    return (
        ReplanProposal.objects.filter(items__subject__in=reached)
        .distinct()
        .select_related("center")
        .order_by("-created_at", "-pk")
    )


def proposal_visible(scope: Scope, proposal_id: int) -> ReplanProposal:
    """One proposal the user may see; NotFound otherwise (another center's proposal is not shown)."""
    proposal = proposals_visible(scope).filter(pk=proposal_id).first()
    if proposal is None:
        raise NotFound("No re-planning proposal {proposal}.", code="not_found", proposal=proposal_id)
    return proposal


def proposal_rows(scope: Scope, proposal: ReplanProposal) -> list[dict[str, Any]]:
    """The before/after difference of a proposal per subject of the scope and per date."""
    reached = set(subjects_in_scope(scope).values_list("pk", flat=True))
    rows = []
    for item in proposal.items.select_related("subject"):
        if item.subject_id not in reached:
            continue
        dates = [
            {
                "name": name,
                "label": PLAN_DATE_LABELS[name],
                "before": item.before.get(name),
                "after": item.after[name],
                "shift_days": (date.fromisoformat(item.after[name]) - date.fromisoformat(item.before[name])).days
                if item.before.get(name)
                else None,
            }
            for name in PLAN_DATES
        ]
        rows.append({"subject": item.subject.code, "facility": item.facility, "line": item.line, "dates": dates})
    return rows


def can_decide(scope: Scope, proposal: ReplanProposal) -> bool:
    """Whether the user may accept or reject `proposal` (to show the buttons)."""
    if proposal.center_id is None:
        return bool(centers_for(scope, Action.DECIDE_NETWORK_REPLAN))
    return proposal.center_id in centers_for(scope, Action.DECIDE_REPLAN)


def decision_reach(user: Any, proposal_id: int) -> tuple[ReplanProposal, Actor]:
    """The proposal a user decides, and the actor deciding: a coordinator of its center, or the
    sponsor's administrator for a proposal across centers. Another center's proposal is not found."""
    scope = require_somewhere(user, Action.READ_BOOKINGS, "planning_replanning")
    proposal = proposal_visible(scope, proposal_id)
    if proposal.center is None:
        _scope, actor = reach_network(user, Action.DECIDE_NETWORK_REPLAN, "planning_replanning")
        return proposal, actor
    return proposal, require_at(user, proposal.center.pk, Action.DECIDE_REPLAN, "planning_replanning")


def decide(user: Any, proposal_id: int, decision: str, reason: str, protocol: Protocol) -> ReplanProposal:
    """Accept or reject a proposal for a page or the API: access first, then the service in one
    transaction, a refusal recorded after the rollback."""
    proposal, actor = decision_reach(user, proposal_id)
    if decision not in ("accept", "reject"):
        raise InvalidInput("{item} must be accept or reject.", code="invalid_choice", item="decision")
    center = proposal.center
    today = local_today(center, actor.now) if center is not None else actor.now.date()

    def work() -> ReplanProposal:
        if decision == "accept":
            return replan_accept(
                actor=actor, user_id=user.pk, proposal_id=proposal.pk, reason=reason, protocol=protocol, today=today
            )
        return replan_reject(actor=actor, user_id=user.pk, proposal_id=proposal.pk, reason=reason)

    return audited_attempt(
        actor=actor,
        event=AuditEvent.ACTION_REFUSED,
        entity="replan_proposal",
        entity_id=str(proposal.pk),
        what=(Action.DECIDE_REPLAN if center is not None else Action.DECIDE_NETWORK_REPLAN).value,
        subject_code="",
        work=work,
    )
