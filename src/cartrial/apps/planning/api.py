"""API: free slots, a subject's bookings (book, cancel with a reason, ask new dates), the lab's
reservations, the capacities (read, change with a reason, their history) and the re-planning
proposals. The same services, rules and errors as the pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from cartrial.apps import clock
from cartrial.apps.access import (
    Scope,
    reach_center,
    reach_network,
    reach_subject,
    require_somewhere,
    scope_for,
)
from cartrial.apps.api_contract import Page, PageQuery, changed_since, paged
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.planning import replanning, selectors, services
from cartrial.apps.planning.models import Booking, ReplanProposal
from cartrial.apps.subjects.services import local_today
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.booking import BookingRequest, Chain
from cartrial.domain.errors import NotFound
from cartrial.domain.roles import Action

router = Router(tags=["planning"])
subjects_router = Router(tags=["planning"])

# The most free chains one request proposes (each is a search over the planning horizon).
SLOTS_MAX = 20


# --- free chains and bookings -------------------------------------------------------------------------


class ChainOut(Schema):
    """A free chain (the `cartrial plan` contract's keys) and the manufacturing line it would hold."""

    facility: str
    line: int
    apheresis: date
    manufacturing_start: date
    release: date
    product_arrival: date
    lymphodepletion_start: date
    infusion: date


class BookingIn(Schema):
    apheresis: date
    facility: str
    manufacturing_start: date
    infusion: date


class CancelIn(Schema):
    reason: str


class BookingOut(Schema):
    """A booking and its reservations, pseudonymous code only."""

    id: int
    subject: str
    active: bool
    facility: str
    line: int
    apheresis: date
    manufacturing_start: date
    release: date
    product_arrival: date
    lymphodepletion_start: date
    infusion: date
    infusion_week: str = Field(description="The ISO week of the infusion bed, e.g. 2026-W49")
    booked_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str


def chain_out(chain: Chain) -> ChainOut:
    p = chain.plan
    return ChainOut(
        facility=p.facility,
        line=chain.line,
        apheresis=p.apheresis,
        manufacturing_start=p.manufacturing_start,
        release=p.release,
        product_arrival=p.product_arrival,
        lymphodepletion_start=p.lymphodepletion_start,
        infusion=p.infusion,
    )


def booking_out(booking: Booking) -> BookingOut:
    return BookingOut(
        id=booking.pk,
        subject=booking.subject.code,
        active=booking.active,
        facility=booking.facility.center.code,
        line=booking.line,
        apheresis=booking.apheresis_date,
        manufacturing_start=booking.manufacturing_start,
        release=booking.release_date,
        product_arrival=booking.product_arrival,
        lymphodepletion_start=booking.lymphodepletion_start,
        infusion=booking.infusion_date,
        infusion_week=booking.infusion_week,
        booked_at=booking.booked_at,
        cancelled_at=booking.cancelled_at,
        cancel_reason=booking.cancel_reason,
    )


@router.get(
    "/slots",
    response=Page[ChainOut],
    summary="The earliest free chains (apheresis, batch, infusion) at a center",
    description=(
        "`count` chains (1 to 20) from `ready` (today at the center when absent or past), computed at each "
        "request from the capacities and the active bookings. `since`: the chains when a booking or a "
        "capacity changed after it (the audit trail), else an empty page: nothing to read again."
    ),
)
def slots(
    request: HttpRequest,
    center: str,
    page: Query[PageQuery],
    ready: date | None = None,
    count: Annotated[int, Field(ge=1, le=SLOTS_MAX, description="How many chains (1 to 20)")] = 5,
) -> Page[ChainOut]:
    reach = reach_center(request.user, center, Action.BOOK_SLOTS)
    today = local_today(reach.center, reach.actor.now)
    chains: list[Chain] = []
    if page.since is None or selectors.bookings_or_capacities_changed_since(page.since):
        chains = selectors.slots_free(protocol_in_force(), reach.center.code, max(ready or today, today), count)
    return paged(chains, page, chain_out)


@router.get(
    "/reservations",
    response=Page[BookingOut],
    summary="Active manufacturing reservations of my labs (codes only)",
    description="By batch start and line. `since`: those an audit entry of the booking after it made or cancelled.",
)
def reservations(request: HttpRequest, page: Query[PageQuery]) -> Page[BookingOut]:
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_reservations")
    rows = changed_since(selectors.manufacturing_reservations(scope), "booking", page.since)
    return paged(rows, page, booking_out)


@subjects_router.get(
    "/{code}/bookings",
    response=Page[BookingOut],
    summary="A subject's bookings, the active one first",
    description="`since`: the bookings an audit entry after it made or cancelled.",
)
def subject_bookings(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[BookingOut]:
    reach = reach_subject(request.user, code, Action.READ_BOOKINGS)
    rows = changed_since(selectors.subject_bookings(reach.subject), "booking", page.since)
    return paged(rows, page, booking_out)


@subjects_router.post("/{code}/bookings", response={201: BookingOut}, summary="Book a subject's chain")
def booking_create(request: HttpRequest, code: str, payload: BookingIn) -> Status[BookingOut]:
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


@subjects_router.delete("/{code}/bookings/{booking_id}", response=BookingOut, summary="Cancel a booking, with a reason")
def booking_delete(request: HttpRequest, code: str, booking_id: int, payload: CancelIn) -> BookingOut:
    reach_subject(request.user, code)
    reach = reach_subject(request.user, code, Action.BOOK_SLOTS)
    booking = reach.run(
        lambda: services.booking_cancel(
            actor=reach.actor, subject=reach.subject, booking_id=booking_id, reason=payload.reason
        ),
        what=Action.BOOK_SLOTS.value,
    )
    return booking_out(booking)


# --- capacities -----------------------------------------------------------------------------------------

CapacityKind = Literal["facility", "center", "shipping"]


class FacilityCapacityOut(Schema):
    id: str = Field(description="The lab's code: `record` to change it (kind facility)")
    lines: int
    manufacturing_days: int
    qc_days: int
    closed_weekdays: list[int] = Field(description="No batch starts on these weekdays (0 = Monday)")


class CenterCapacityOut(Schema):
    id: str = Field(description="The center's code: `record` to change it (kind center)")
    country: str
    apheresis_weekdays: list[int]
    apheresis_per_day: int
    infusion_weekdays: list[int]
    infusions_per_week: int
    ship_days: dict[str, int] = Field(
        description="Days of transport each way by lab code; `record` CENTER-LAB to change one (kind shipping)"
    )


class CapacitiesOut(Schema):
    lymphodepletion_days: int
    ld_to_infusion_gap_days: list[int] = Field(description="[fewest, most] days from lymphodepletion's end to D0")
    facilities: list[FacilityCapacityOut]
    centers: list[CenterCapacityOut]


class CapacityValuesIn(Schema):
    """The values to change; only those given change (each within its range: docs/booking.md)."""

    lines: int | None = None
    manufacturing_days: int | None = None
    qc_days: int | None = None
    closed_weekdays: list[int] | None = None
    apheresis_weekdays: list[int] | None = None
    apheresis_per_day: int | None = None
    infusion_weekdays: list[int] | None = None
    infusions_per_week: int | None = None
    days: int | None = Field(default=None, description="A shipping time's days each way")


class CapacityChangeIn(Schema):
    kind: CapacityKind
    record: str = Field(description="The lab's or the center's code (BDX), or CENTER-LAB for a shipping time")
    values: CapacityValuesIn
    reason: str = Field(description="Why: required, kept in the audit trail with the old and new values")


def _capacities() -> CapacitiesOut:
    """The stored capacities as the planner reads them (its instance, without dates or patients)."""
    network = selectors.instance_build(protocol_in_force(), clock.now().date(), 0)
    return CapacitiesOut(
        lymphodepletion_days=network.lymphodepletion_days,
        ld_to_infusion_gap_days=list(network.ld_to_infusion_gap_days),
        facilities=[
            FacilityCapacityOut(
                id=f.id,
                lines=f.lines,
                manufacturing_days=f.manufacturing_days,
                qc_days=f.qc_days,
                closed_weekdays=sorted(f.closed_weekdays),
            )
            for f in network.facilities
        ],
        centers=[
            CenterCapacityOut(
                id=c.id,
                country=c.country,
                apheresis_weekdays=sorted(c.apheresis_weekdays),
                apheresis_per_day=c.apheresis_per_day,
                infusion_weekdays=sorted(c.infusion_weekdays),
                infusions_per_week=c.infusions_per_week,
                ship_days=dict(c.ship_days),
            )
            for c in network.centers
        ],
    )


@router.get("/capacities", response=CapacitiesOut, summary="The network's capacities (sponsor's administrator)")
def capacities(request: HttpRequest) -> CapacitiesOut:
    require_somewhere(request.user, Action.MANAGE_CAPACITIES, "planning_capacities")
    return _capacities()


@router.post(
    "/capacities",
    response=CapacitiesOut,
    summary="Change a capacity record's values, with a reason (sponsor's administrator)",
    description=(
        "All the values given or none. 422 naming the item: a value out of its range, weekdays outside 0–6, a "
        "field the record has not (`lines` of a center), no reason; 404: no such record."
    ),
)
def capacities_change(request: HttpRequest, payload: CapacityChangeIn) -> CapacitiesOut:
    _scope, actor = reach_network(request.user, Action.MANAGE_CAPACITIES, "planning_capacities")
    record = selectors.capacity_record_of(payload.kind, payload.record)
    if record is None:
        raise NotFound("No capacity record '{record}'.", code="not_found", item="record", record=payload.record)
    services.capacities_change(
        actor=actor,
        kind=payload.kind,
        record=record,
        values=payload.values.model_dump(exclude_unset=True),
        reason=payload.reason,
    )
    return _capacities()


class FieldChangeOut(Schema):
    field: str = Field(description="The value changed; ship_days.LAB for a shipping time set with its center")
    old: int | list[int] | None
    new: int | list[int] | None


class CapacityChangeOut(Schema):
    at: datetime
    username: str
    role: str
    entity: Literal["facility_capacity", "center_capacity", "shipping_time"]
    record: str = Field(description="The lab's or center's code, or CENTER-LAB")
    changes: list[FieldChangeOut]
    reason: str


@router.get(
    "/capacities/history",
    response=Page[CapacityChangeOut],
    summary="Who changed which capacity, when, why, old → new (newest first)",
    description="Read from the audit trail; `since`: the changes made after it.",
)
def capacity_history(request: HttpRequest, page: Query[PageQuery]) -> Page[CapacityChangeOut]:
    require_somewhere(request.user, Action.MANAGE_CAPACITIES, "planning_capacities")

    def out(entry: AuditEntry) -> CapacityChangeOut:
        change = selectors.capacity_change(entry)
        return CapacityChangeOut(
            at=change.at,
            username=change.username,
            role=change.role,
            entity=change.entity,  # type: ignore[arg-type]
            record=change.entity_id,
            changes=[FieldChangeOut(field=c["field"], old=c.get("old"), new=c.get("new")) for c in change.changes],
            reason=change.reason,
        )

    return paged(selectors.capacity_entries(page.since), page, out)


# --- re-planning ------------------------------------------------------------------------------------------

ProposalStatus = Literal["pending", "accepted", "rejected", "stale"]


class DecisionIn(Schema):
    reason: str


class ProposalRequestIn(Schema):
    reason: str = Field(default="", description="What happened (kept as the proposal's detail)")


class PlanDatesOut(Schema):
    """A chain's dates; null where the subject had no booking before."""

    apheresis: date | None
    manufacturing_start: date | None
    release: date | None
    product_arrival: date | None
    lymphodepletion_start: date | None
    infusion: date | None


class ProposalSubjectOut(Schema):
    subject: str
    facility: str
    line: int
    before: PlanDatesOut
    after: PlanDatesOut


class ProposalOut(Schema):
    """A proposal with its before/after dates per subject of your scope (codes only)."""

    id: int
    trigger: Literal["qc_failure", "shipment_late", "visit_moved", "manual"]
    detail: str
    status: ProposalStatus
    center: str | None = Field(description="Its subjects' one center; null across centers")
    solver: str
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str
    can_decide: bool = Field(description="You may accept or reject it")
    subjects: list[ProposalSubjectOut]


def proposal_out(scope: Scope, proposal: ReplanProposal) -> ProposalOut:
    return ProposalOut(
        id=proposal.pk,
        trigger=proposal.trigger,  # type: ignore[arg-type]
        detail=proposal.detail,
        status=proposal.status,  # type: ignore[arg-type]
        center=proposal.center.code if proposal.center else None,
        solver=proposal.solver,
        created_at=proposal.created_at,
        decided_at=proposal.decided_at,
        decision_reason=proposal.decision_reason,
        can_decide=replanning.can_decide(scope, proposal),
        subjects=[
            ProposalSubjectOut(
                subject=row["subject"],
                facility=row["facility"],
                line=row["line"],
                before=PlanDatesOut(**{d["name"]: d["before"] for d in row["dates"]}),
                after=PlanDatesOut(**{d["name"]: d["after"] for d in row["dates"]}),
            )
            for row in replanning.proposal_rows(scope, proposal)
        ],
    )


@router.get(
    "/proposals",
    response=Page[ProposalOut],
    summary="Re-planning proposals of my subjects, before/after dates, newest first",
    description=(
        "Filters: `status`, `subject` (one subject's, as its booking page shows them). `since`: the proposals "
        "an audit entry after it made, decided or marked stale."
    ),
)
def proposals(
    request: HttpRequest,
    page: Query[PageQuery],
    status: ProposalStatus | None = None,
    subject: str | None = None,
) -> Page[ProposalOut]:
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_replanning")
    reached = reach_subject(request.user, subject, Action.READ_BOOKINGS, record=False).subject if subject else None
    rows = replanning.proposals_visible(scope, subject=reached)
    if status:
        rows = rows.filter(status=status)
    rows = changed_since(rows, "replan_proposal", page.since)
    return paged(rows, page, lambda p: proposal_out(scope, p))


@subjects_router.post(
    "/{code}/proposals",
    response={201: ProposalOut},
    summary="Ask new dates for a subject: a proposal, nothing moves until a coordinator accepts it",
)
def proposal_request(request: HttpRequest, code: str, payload: ProposalRequestIn) -> Status[ProposalOut]:
    reach_subject(request.user, code)
    reach = reach_subject(request.user, code, Action.BOOK_SLOTS)
    proposal = replanning.replan_request(reach, payload.reason, protocol_in_force())
    return Status(201, proposal_out(reach.scope, proposal))


@router.post(
    "/proposals/{proposal_id}/accept",
    response=ProposalOut,
    summary="Accept a proposal: re-book its subjects, with a reason",
)
def proposal_accept(request: HttpRequest, proposal_id: int, payload: DecisionIn) -> ProposalOut:
    proposal = replanning.decide(request.user, proposal_id, "accept", payload.reason, protocol_in_force())
    return proposal_out(scope_for(request.user), proposal)


@router.post(
    "/proposals/{proposal_id}/reject",
    response=ProposalOut,
    summary="Reject a proposal with a reason: nothing moves",
)
def proposal_reject(request: HttpRequest, proposal_id: int, payload: DecisionIn) -> ProposalOut:
    proposal = replanning.decide(request.user, proposal_id, "reject", payload.reason, protocol_in_force())
    return proposal_out(scope_for(request.user), proposal)
