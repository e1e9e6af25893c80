"""API: free slots, a subject's bookings (book, cancel with a reason), the lab's reservations and
the capacities. The same services, rules and errors as the pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from cartrial.apps import clock
from cartrial.apps.access import Scope, reach_center, reach_subject, require_somewhere, scope_for
from cartrial.apps.planning import replanning, selectors, services
from cartrial.apps.planning.models import Booking, ReplanProposal
from cartrial.apps.subjects.services import local_today
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.booking import BookingRequest, Chain
from cartrial.domain.planning import instance_to_json
from cartrial.domain.roles import Action

router = Router(tags=["planning"])
subjects_router = Router(tags=["planning"])


class BookingIn(Schema):
    apheresis: date
    facility: str
    manufacturing_start: date
    infusion: date


class CancelIn(Schema):
    reason: str


def chain_out(chain: Chain) -> dict[str, Any]:
    """A proposed chain with the `cartrial plan` contract's keys, and the line."""
    p = chain.plan
    return {
        "facility": p.facility,
        "line": chain.line,
        "apheresis": p.apheresis.isoformat(),
        "manufacturing_start": p.manufacturing_start.isoformat(),
        "release": p.release.isoformat(),
        "product_arrival": p.product_arrival.isoformat(),
        "lymphodepletion_start": p.lymphodepletion_start.isoformat(),
        "infusion": p.infusion.isoformat(),
    }


def booking_out(booking: Booking) -> dict[str, Any]:
    """A booking as the API shows it: its reservations, pseudonymous code only."""
    return {
        "id": booking.pk,
        "subject": booking.subject.code,
        "active": booking.active,
        **dict(services.booking_dates(booking)),
        "cancelled_at": booking.cancelled_at.isoformat() if booking.cancelled_at else None,
        "cancel_reason": booking.cancel_reason,
    }


@router.get("/slots", summary="The earliest free chains (apheresis, batch, infusion) at a center")
def slots(request: HttpRequest, center: str, ready: date | None = None, count: int = 5) -> list[dict[str, Any]]:
    reach = reach_center(request.user, center, Action.BOOK_SLOTS)
    day = max(ready or local_today(reach.center, reach.actor.now), local_today(reach.center, reach.actor.now))
    return [chain_out(c) for c in selectors.slots_free(protocol_in_force(), reach.center.code, day, min(count, 20))]


@router.get("/reservations", summary="Active manufacturing reservations of my labs (codes only)")
def reservations(request: HttpRequest) -> list[dict[str, Any]]:
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_reservations")
    return [booking_out(b) for b in selectors.manufacturing_reservations(scope)]


@router.get("/capacities", summary="The network's capacities (sponsor's administrator)")
def capacities(request: HttpRequest) -> dict[str, Any]:
    require_somewhere(request.user, Action.MANAGE_CAPACITIES, "planning_capacities")
    protocol = protocol_in_force()
    # The contract's JSON of the instance (one writer of it), without dates or patients: the network.
    network = instance_to_json(selectors.instance_build(protocol, clock.now().date(), 0))
    return {key: network[key] for key in ("lymphodepletion_days", "ld_to_infusion_gap_days", "facilities", "centers")}


@subjects_router.get("/{code}/bookings", summary="A subject's bookings, the active one first")
def subject_bookings(request: HttpRequest, code: str) -> list[dict[str, Any]]:
    reach = reach_subject(request.user, code, Action.READ_BOOKINGS)
    return [booking_out(b) for b in selectors.subject_bookings(reach.subject)]


@subjects_router.post("/{code}/bookings", response={201: dict[str, Any]}, summary="Book a subject's chain")
def booking_create(request: HttpRequest, code: str, payload: BookingIn) -> Status[dict[str, Any]]:
    reach_subject(request.user, code)
    reach = reach_subject(request.user, code, Action.BOOK_SLOTS)
    subject = reach.subject
    booking = reach.run(
        lambda: services.booking_make(
            actor=reach.actor,
            user_id=reach.user.pk,
            subject=subject,
            request=BookingRequest(
                subject.center.code,
                payload.apheresis,
                payload.facility.upper(),
                payload.manufacturing_start,
                payload.infusion,
            ),
            protocol=protocol_in_force(),
            today=local_today(subject.center, reach.actor.now),
        ),
        what=Action.BOOK_SLOTS.value,
    )
    return Status(201, booking_out(booking))


@subjects_router.delete("/{code}/bookings/{booking_id}", summary="Cancel a booking, with a reason")
def booking_delete(request: HttpRequest, code: str, booking_id: int, payload: CancelIn) -> dict[str, Any]:
    reach_subject(request.user, code)
    reach = reach_subject(request.user, code, Action.BOOK_SLOTS)
    booking = reach.run(
        lambda: services.booking_cancel(
            actor=reach.actor, subject=reach.subject, booking_id=booking_id, reason=payload.reason
        ),
        what=Action.BOOK_SLOTS.value,
    )
    return booking_out(booking)


# --- re-planning ------------------------------------------------------------------------------


class DecisionIn(Schema):
    reason: str


def proposal_out(scope: Scope, proposal: ReplanProposal) -> dict[str, Any]:
    """A proposal with its before/after dates per subject of the user's scope (codes only)."""
    return {
        "id": proposal.pk,
        "trigger": proposal.trigger,
        "detail": proposal.detail,
        "status": proposal.status,
        "center": proposal.center.code if proposal.center else None,
        "solver": proposal.solver,
        "created_at": proposal.created_at.isoformat(),
        "decided_at": proposal.decided_at.isoformat() if proposal.decided_at else None,
        "decision_reason": proposal.decision_reason,
        "subjects": [
            {
                "subject": row["subject"],
                "facility": row["facility"],
                "line": row["line"],
                "before": {d["name"]: d["before"] for d in row["dates"]},
                "after": {d["name"]: d["after"] for d in row["dates"]},
            }
            for row in replanning.proposal_rows(scope, proposal)
        ],
    }


@router.get("/proposals", summary="Re-planning proposals of my subjects, before/after dates")
def proposals(request: HttpRequest, status: str | None = None) -> list[dict[str, Any]]:
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_replanning")
    rows = replanning.proposals_visible(scope)
    if status:
        rows = rows.filter(status=status)
    return [proposal_out(scope, p) for p in rows[:100]]


@router.post("/proposals/{proposal_id}/accept", summary="Accept a proposal: re-book its subjects, with a reason")
def proposal_accept(request: HttpRequest, proposal_id: int, payload: DecisionIn) -> dict[str, Any]:
    proposal = replanning.decide(request.user, proposal_id, "accept", payload.reason, protocol_in_force())
    return proposal_out(scope_for(request.user), proposal)


@router.post("/proposals/{proposal_id}/reject", summary="Reject a proposal with a reason: nothing moves")
def proposal_reject(request: HttpRequest, proposal_id: int, payload: DecisionIn) -> dict[str, Any]:
    proposal = replanning.decide(request.user, proposal_id, "reject", payload.reason, protocol_in_force())
    return proposal_out(scope_for(request.user), proposal)
