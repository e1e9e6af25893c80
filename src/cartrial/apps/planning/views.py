"""Pages: the network's capacities (set-up by the sponsor's administrator, every change with a
reason) and a subject's booking page (free chains proposed, book, cancel with a reason).

Adapters only: access through the entry point, writes through the services, refusals shown with
the rule's words (the API says the same)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cartrial.apps import clock
from cartrial.apps.access import Reach, Scope, can, reach_network, reach_subject, require_somewhere, scope_narrowed
from cartrial.apps.jobs.selectors import job_get, jobs_for
from cartrial.apps.jobs.services import job_enqueue
from cartrial.apps.planning import replanning, selectors, services
from cartrial.apps.planning.forms import PlanForm
from cartrial.apps.planning.jobs import PLAN_NETWORK, plan_network_summary
from cartrial.apps.planning.models import CenterCapacity, FacilityCapacity, ReplanProposal, ShippingTime
from cartrial.apps.subjects.services import local_today
from cartrial.apps.text import error_text
from cartrial.apps.text import render as render_message
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.booking import WEEKDAY_NAMES, BookingRequest
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.planning import Instance, instance_to_json
from cartrial.domain.roles import Action
from cartrial.domain.text import N_


def _weekdays(days: list[int]) -> str:
    return ", ".join(gettext(WEEKDAY_NAMES[d]) for d in days) or "—"


# The history names each record and value as the tables above do, in the user's language.
ENTITY_LABELS: dict[str, str] = {
    "facility_capacity": N_("Facility"),
    "center_capacity": N_("Center"),
    "shipping_time": N_("Shipping days"),
}
FIELD_LABELS: dict[str, str] = {
    "lines": N_("Lines"),
    "manufacturing_days": N_("Manufacturing (days)"),
    "qc_days": N_("QC (days)"),
    "closed_weekdays": N_("No batch start on"),
    "apheresis_weekdays": N_("Apheresis weekdays"),
    "apheresis_per_day": N_("Apheresis slots per day"),
    "infusion_weekdays": N_("Infusion weekdays"),
    "infusions_per_week": N_("Infusion beds per week"),
    "days": N_("Days each way"),
}


def _history_value(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if field.endswith("weekdays") and isinstance(value, list):
        return _weekdays(value)
    return str(value)


def _history_rows(history: list[selectors.CapacityChange]) -> list[dict[str, Any]]:
    """Each change with its record and values labelled (weekdays by name, shipping days by lab)."""
    rows = []
    for h in history:
        changes = []
        for c in h.changes:
            field = str(c["field"])
            if field.startswith("ship_days."):
                label = f"{gettext(FIELD_LABELS['days'])} ({field.partition('.')[2]})"
            else:
                label = gettext(FIELD_LABELS[field]) if field in FIELD_LABELS else field
            changes.append(
                {"label": label, "old": _history_value(field, c["old"]), "new": _history_value(field, c["new"])}
            )
        entity = gettext(ENTITY_LABELS[h.entity]) if h.entity in ENTITY_LABELS else h.entity
        rows.append({"change": h, "entity": entity, "changes": changes})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def capacities_page(request: HttpRequest) -> HttpResponse:
    """The capacities of the network; a POST changes one record's values with a reason."""
    _scope, actor = reach_network(request.user, Action.MANAGE_CAPACITIES, "planning_capacities")
    error, error_item, status = "", None, 200
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        if kind not in services.CAPACITY_RECORDS:
            raise NotFound("No capacity record '{record}'.", code="not_found", record=kind)
        model, fields = services.CAPACITY_RECORDS[kind]
        # Not a record's number (text, thousands of digits): no such record, as for an unknown number.
        raw = request.POST.get("id", "").strip()
        record = model.objects.filter(pk=int(raw) if raw.isdecimal() and len(raw) <= 18 else 0).first()
        if record is None:
            raise NotFound("No capacity record '{record}'.", code="not_found", record=request.POST.get("id", ""))
        values = {name: request.POST[name] for name in fields if name in request.POST}
        try:
            services.capacities_change(
                actor=actor, kind=kind, record=record, values=values, reason=request.POST.get("reason", "")
            )
        except DomainError as refusal:
            error, error_item = error_text(refusal), refusal.item
            status = 422 if isinstance(refusal, InvalidInput) else 409
        else:
            messages.success(request, gettext("Capacities saved."), extra_tags="ok")
            return redirect("planning:capacities")
    context = {
        "facilities": FacilityCapacity.objects.select_related("center"),
        "centers": [
            {"row": c, "apheresis": _weekdays(c.apheresis_weekdays), "infusion": _weekdays(c.infusion_weekdays)}
            for c in CenterCapacity.objects.select_related("center")
        ],
        "shipping": ShippingTime.objects.select_related("center__center", "facility__center"),
        "history": _history_rows(selectors.capacity_history()),
        "weekday_help": ", ".join(f"{i} = {gettext(n)}" for i, n in enumerate(WEEKDAY_NAMES)),
        "lymphodepletion_days": selectors.lymphodepletion_days(protocol_in_force()),
        "error": error,
        "error_item": error_item,
    }
    return render(request, "planning/capacities.html", context, status=status)


def _booking_context(reach: Reach, error: str = "") -> dict[str, Any]:
    subject = reach.subject
    protocol = protocol_in_force()
    today = local_today(subject.center, reach.actor.now)
    active = selectors.active_booking(subject)
    may_book = can(reach.scope, Action.BOOK_SLOTS, subject)
    waiting = subject.state in selectors.WAITING_STATES
    return {
        "subject": subject,
        "bookings": selectors.subject_bookings(subject),
        "active": active,
        "proposals": selectors.slots_free(protocol, subject.center.code, today)
        if may_book and waiting and not active
        else [],
        "can_book": may_book and waiting,
        "can_propose": may_book,
        "replans": _proposal_cards(reach.scope, replanning.proposals_visible(reach.scope, subject=subject)[:10]),
        "error": error,
    }


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput("“{raw}” is not a date (YYYY-MM-DD).", code="item_type", item=name, raw=raw) from None


def _booking_id(raw: str) -> int:
    if not raw.strip().isdecimal():
        raise InvalidInput("“{raw}” is not a booking number.", code="item_type", item="cancel", raw=raw)
    return int(raw)


@login_required
@require_http_methods(["GET", "POST"])
def booking_page(request: HttpRequest, code: str) -> HttpResponse:
    """A subject's bookings and the free chains; a POST books one or cancels the active one."""
    if request.method == "GET":
        reach = reach_subject(request.user, code, Action.READ_BOOKINGS, record=False)
        return render(request, "planning/booking.html", _booking_context(reach))
    reach = reach_subject(request.user, code, Action.BOOK_SLOTS)
    subject = reach.subject
    post = request.POST
    try:
        if post.get("propose"):
            replanning.replan_request(reach, post.get("reason", ""), protocol_in_force())
            messages.success(
                request, gettext("New dates proposed: nothing moves until a coordinator accepts them."), extra_tags="ok"
            )
        elif post.get("cancel"):
            booking_id = _booking_id(post["cancel"])
            reach.run(
                lambda: services.booking_cancel(
                    actor=reach.actor, subject=subject, booking_id=booking_id, reason=post.get("reason", "")
                ),
                what=Action.BOOK_SLOTS.value,
            )
            messages.success(request, gettext("Booking cancelled: its slots are free again."), extra_tags="ok")
        else:
            booking_request = BookingRequest(
                subject.center.code,
                _date("apheresis", post.get("apheresis", "")),
                post.get("facility", "").upper(),
                _date("manufacturing_start", post.get("manufacturing_start", "")),
                _date("infusion", post.get("infusion", "")),
            )
            reach.run(
                lambda: services.booking_make(
                    actor=reach.actor,
                    user_id=reach.user.pk,
                    subject=subject,
                    request=booking_request,
                    protocol=protocol_in_force(),
                    today=local_today(subject.center, reach.actor.now),
                ),
                what=Action.BOOK_SLOTS.value,
            )
            messages.success(
                request, gettext("Booked: apheresis, manufacturing slot and infusion bed."), extra_tags="ok"
            )
    except DomainError as refusal:
        status = 422 if isinstance(refusal, InvalidInput) else 409
        return render(request, "planning/booking.html", _booking_context(reach, error_text(refusal)), status=status)
    return redirect("planning:booking", code=subject.code)


@login_required
@require_http_methods(["GET"])
def reservations_page(request: HttpRequest) -> HttpResponse:
    """The lab's manufacturing reservations: which line holds which subject's batch, codes only."""
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_reservations")
    return render(request, "planning/reservations.html", {"bookings": selectors.manufacturing_reservations(scope)})


# --- re-planning ------------------------------------------------------------------------------


def _proposal_cards(scope: Scope, proposals: Iterable[ReplanProposal]) -> list[dict[str, Any]]:
    return [
        {"proposal": p, "rows": replanning.proposal_rows(scope, p), "can_decide": replanning.can_decide(scope, p)}
        for p in proposals
    ]


@login_required
@require_http_methods(["GET", "POST"])
def replanning_page(request: HttpRequest) -> HttpResponse:
    """The re-planning proposals of the user's subjects, before/after per date; a POST accepts or
    rejects one with a reason (nothing moves before)."""
    scope = require_somewhere(request.user, Action.READ_BOOKINGS, "planning_replanning")
    error, status = "", 200
    if request.method == "POST":
        try:
            proposal = replanning.decide(
                request.user,
                int(request.POST.get("proposal", "0") or 0),
                request.POST.get("decision", ""),
                request.POST.get("reason", ""),
                protocol_in_force(),
            )
        except DomainError as refusal:
            error, status = error_text(refusal), 422 if isinstance(refusal, InvalidInput) else 409
            if isinstance(refusal, NotFound | AccessDenied):
                raise
        else:
            done = (
                gettext("Proposal accepted: the new dates are booked.")
                if proposal.status == ReplanProposal.Status.ACCEPTED
                else gettext("Proposal rejected: nothing moved.")
            )
            messages.success(request, done, extra_tags="ok")
            return redirect("planning:replanning")
    context = {"cards": _proposal_cards(scope, replanning.proposals_visible(scope)[:50]), "error": error}
    return render(request, "planning/replanning.html", context, status=status)


# --- the planner page: plan the network's waiting subjects as a background job ---------------------


def _network_summary(instance: Instance) -> dict[str, Any]:
    """What the page shows of the instance: waiting patients per center, the capacities."""
    waiting = Counter(p.center for p in instance.patients)
    return {
        "instance": instance,
        "centers": [
            {
                "row": c,
                "waiting": waiting.get(c.id, 0),
                "apheresis": _weekdays(sorted(c.apheresis_weekdays)),
                "infusion": _weekdays(sorted(c.infusion_weekdays)),
                "shipping": ", ".join(f"{f} {d}" for f, d in sorted(c.ship_days.items())),
            }
            for c in instance.centers
        ],
        "facilities": [{"row": f, "closed": _weekdays(sorted(f.closed_weekdays))} for f in instance.facilities],
        "gap": instance.ld_to_infusion_gap_days,
    }


@login_required
@require_http_methods(["GET", "POST"])
def plan_page(request: HttpRequest) -> HttpResponse:
    """The network's waiting subjects and capacities; a POST requests `plan_network` on them (or on
    an uploaded instance) and sends the user to the job's page, which shows the progress."""
    scope, actor = reach_network(request.user, Action.PLAN_NETWORK, "planning_plan")
    protocol = protocol_in_force()
    # Bound on every POST, even an empty one: it answers 422 and must mark what is missing.
    form = PlanForm(request.POST if request.method == "POST" else None, request.FILES or None)
    start, horizon = clock.now().date(), protocol.pathway_rules.planning_horizon_days
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        start, horizon = data["start_date"] or start, data["horizon_days"] or horizon
        if data["instance"] is not None:
            parameters: dict[str, Any] = {"source": "upload", "instance": data["instance"]}
        else:
            built = selectors.network_instance(scope_narrowed(scope, Action.PLAN_NETWORK), protocol, start, horizon)
            parameters = {"source": "network", "instance": instance_to_json(built)}
        parameters |= {"solver": data["solver"], "time_limit_s": data["time_limit_s"]}
        try:
            job = job_enqueue(actor=actor, kind=PLAN_NETWORK, parameters=parameters)
        except InvalidInput as refusal:
            error, status = error_text(refusal), 422
        else:
            return redirect("jobs:detail", job_id=job.pk)
    elif request.method == "POST":
        status = 422
    instance = selectors.network_instance(scope_narrowed(scope, Action.PLAN_NETWORK), protocol, start, horizon)
    context = {
        "form": form,
        "error": error,
        "start": start,
        "horizon": horizon,
        "recent": [j for j in jobs_for(scope).filter(kind=PLAN_NETWORK).defer("parameters", "result")[:10]],
        **_network_summary(instance),
    }
    return render(request, "planning/plan.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def plan_result(request: HttpRequest, job_id: int) -> HttpResponse:
    """A finished `plan_network` job: the plan per patient (codes only), its objective against
    greedy's, the bound and gap, the checker's verdict; the plan JSON is the job's file."""
    scope = require_somewhere(request.user, Action.PLAN_NETWORK, "planning_plan")
    job = job_get(scope, job_id)
    if job.kind != PLAN_NETWORK:
        raise NotFound("No plan {job} in your scope.", code="not_found", job=job_id)
    if job.status != job.Status.DONE:
        return redirect("jobs:detail", job_id=job.pk)
    result = job.result or {}
    plan = result.get("plan") or {}
    return render(
        request,
        "planning/plan_result.html",
        {
            "job": job,
            "result": result,
            "plan": plan,
            "greedy": result.get("greedy") or {},
            "check": result.get("check") or [],
            "summary": render_message(plan_network_summary(result)),
        },
    )
