"""Logistics pages: the dashboard (worklists per role, vein-to-vein plots), one subject's chain of
identity, custody and condition with the actions of each role, and the printable labels.

Adapters only: scope from the access module, reads from selectors, writes through services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from cartrial.apps import clock
from cartrial.apps.access import Reach, Scope, acting_role, can, reach_subject, scope_for
from cartrial.apps.logistics import selectors
from cartrial.apps.logistics.forms import (
    ACTIONS,
    DeviationMoveForm,
    action_form,
    action_perform,
    actions_available,
    deviation_perform,
)
from cartrial.apps.logistics.labels import labels_pdf
from cartrial.apps.logistics.models import Deviation
from cartrial.apps.logistics.plots import temperature_plot, timeline_plot, vein_to_vein_plot
from cartrial.apps.logistics.presenters import DeviationView, deviation_age, deviation_view, label_specs
from cartrial.apps.logistics.services import deviation_owners_of, deviation_text
from cartrial.apps.text import current_language, error_text
from cartrial.apps.text import render as render_text
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.deviations import (
    DEVIATION_MOVES,
    KIND_LABELS,
    KIND_SHORT_LABELS,
    MOVE_LABELS,
    STATUS_LABELS,
    DeviationKind,
    DeviationStatus,
)
from cartrial.domain.errors import DomainError, NotFound
from cartrial.domain.manufacturing import BATCH_STATUS_LABELS, BRANCH_LABELS, BatchStatus, FailureBranch
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step, next_step, steps_from
from cartrial.domain.roles import ACTION_LABELS, Action
from cartrial.domain.text import N_, protocol_text
from cartrial.domain.vein_to_vein import INTERVAL_LABELS, INTERVALS, step_durations, summarise

QC_WORDS = {"negative": N_("negative"), "positive": N_("positive")}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    language = current_language()
    my_roles = set(scope.roles_by_center.values())
    subjects = selectors.worklist_subjects(scope)
    worklists = []
    for state, roles in selectors.WORKLISTS:
        rows = [s for s in subjects if s.state == state.value]
        worklists.append(
            {
                "state": state.value,
                "label": gettext(STATE_LABELS[state]),
                "hint": gettext(selectors.WORKLIST_HINTS[state]),
                "mine": bool(my_roles & roles),
                "rows": rows,
            }
        )
    worklists.sort(key=lambda w: not w["mine"])
    milestones = selectors.milestones_for(scope)
    summaries = summarise(milestones)
    table = [
        {
            "center": center,
            "intervals": [summaries[center][name] for name, _, _ in INTERVALS],
        }
        for center in sorted(c for c in summaries if c != "ALL") + (["ALL"] if "ALL" in summaries else [])
    ]
    context = {
        "worklists": worklists,
        "interval_labels": [gettext(INTERVAL_LABELS[name]) for name, _, _ in INTERVALS],
        "table": table,
        "v2v_plot": vein_to_vein_plot(summaries, language) if milestones else "",
        "milestones": milestones,
        **_deviations_to_manage(scope),
    }
    return render(request, "logistics/dashboard.html", context)


# The dashboard lists the oldest deviations not closed, up to this many (the counts cover them all).
DASHBOARD_DEVIATIONS = 50


def _deviations_to_manage(scope: Scope) -> dict[str, Any]:
    """Deviations not closed in the user's scope: counts per center by kind and status, and the
    oldest ones with their age; whether the user's role is the one to take each in charge.

    Two queries whatever the number of deviations (the counts, and the bounded list)."""
    now = clock.now()
    counts = selectors.deviation_counts(scope)
    kinds = list(DeviationKind)
    table = [
        {
            "center": center,
            "kinds": [(kind.value, counts[center].get(kind.value, 0)) for kind in kinds],
            "open": counts[center].get(DeviationStatus.OPEN.value, 0),
            "acknowledged": counts[center].get(DeviationStatus.ACKNOWLEDGED.value, 0),
        }
        for center in sorted(counts)
    ]
    waiting = selectors.deviations_in_scope(scope, statuses=selectors.NOT_CLOSED)[:DASHBOARD_DEVIATIONS]
    rows = []
    for deviation in waiting:
        role = acting_role(scope, Action.MANAGE_DEVIATION, deviation.subject)
        owners = deviation_owners_of(deviation)
        rows.append(
            {
                "deviation": deviation,
                "kind_label": gettext(KIND_LABELS[DeviationKind(deviation.kind)]),
                "status_label": gettext(STATUS_LABELS[DeviationStatus(deviation.status)]),
                "message": render_text(deviation_text(deviation)),
                "age": render_text(deviation_age(deviation.at, now)),
                "to_take_in_charge": deviation.status == DeviationStatus.OPEN
                and role is not None
                and role in owners.roles_for("acknowledge"),
            }
        )
    total = sum(
        row.get(DeviationStatus.OPEN.value, 0) + row.get(DeviationStatus.ACKNOWLEDGED.value, 0)
        for row in counts.values()
    )
    return {
        "deviation_kinds": [(gettext(KIND_SHORT_LABELS[kind]), gettext(KIND_LABELS[kind])) for kind in kinds],
        "deviation_table": table,
        "deviations_waiting": rows,
        "deviations_total": total,
        "deviations_more": max(0, total - len(rows)),
    }


def _page_context(
    reach: Reach, *, forms: dict[str, Any] | None = None, deviation_refusal: tuple[int, str, str] | None = None
) -> dict[str, Any]:
    scope, subject = reach.scope, reach.subject
    language = current_language()
    protocol = protocol_in_force()
    data = selectors.subject_logistics(subject, protocol)
    time_zone = subject.center.time_zone
    bound = forms or {}
    action_forms = [
        {
            "action": action.value,
            "label": gettext(ACTION_LABELS[action]),
            "form": bound.get(action.value) or action_form(action, protocol, language),
        }
        for action in actions_available(scope, subject, data)
    ]
    can_import = can(scope, Action.IMPORT_TEMPERATURE_LOG, subject)
    replaced = selectors.temperature_logs_replaced(subject)
    shipments = []
    for view in data.shipments:
        plots = [
            temperature_plot(
                log["readings"],
                limit_min_c=log["log"].limit_min_c,
                limit_max_c=log["log"].limit_max_c,
                excursions=log["excursions"],
                time_zone=time_zone,
                language=language,
                div_id=f"temperature-{log['log'].pk}",
            )
            for log in view.logs
        ]
        form = bound.get(f"temperature-{view.shipment.pk}") or action_form(
            Action.IMPORT_TEMPERATURE_LOG,
            protocol,
            language,
            initial={"shipment": view.shipment.pk, "logger_time_zone": time_zone},
        )
        if view.logs:
            # A file imported again in place of a wrong one: which one, and why (a correction).
            form.fields["replaces"].widget.choices = [("", "—")] + [
                (log["log"].pk, log["log"].file_name) for log in view.logs if log["log"].pk not in replaced
            ]
        else:
            form.fields.pop("replaces", None)
            form.fields.pop("reason", None)
        shipments.append(
            {
                "shipment": view.shipment,
                "logs": [(log, plot, replaced.get(log["log"].pk)) for log, plot in zip(view.logs, plots, strict=True)],
                "limits": _limits(view.shipment.product_code),
                "form": form,
            }
        )
    points = sorted(
        ((gettext(msgid), moment) for msgid, moment in selectors.timeline_points(subject)), key=lambda p: p[1]
    )
    steps = step_durations(points)
    specification = selectors.release_specification(protocol)
    batches = [
        {
            "view": b,
            "status_label": gettext(BATCH_STATUS_LABELS[BatchStatus(b.batch.status)]),
            "branch_label": gettext(BRANCH_LABELS[FailureBranch(b.batch.branch)]) if b.batch.branch else "",
            "qc": [
                {
                    "result": r,
                    "label": protocol_text(specification[r.test_code].label, language)
                    if r.test_code in specification
                    else r.test_code,
                    "spec": render_text(specification[r.test_code].describe()) if r.test_code in specification else "",
                    "value": gettext(QC_WORDS[r.value_text]) if r.value_text in QC_WORDS else r.value_text,
                }
                for r in b.qc
            ],
        }
        for b in data.batches
    ]
    step_buttons = [
        {"step": step.value, "label": gettext(STEP_LABELS[step]), "main": step is next_step(State(subject.state))}
        for step in steps_from(State(subject.state))
        if step not in (Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH) and can(scope, step, subject)
    ]
    if State(subject.state) is State.MANUFACTURING_FAILED and can(scope, Action.DECIDE_NO_INFUSION, subject):
        step_buttons.append(
            {
                "step": Action.DECIDE_NO_INFUSION.value,
                "label": gettext(ACTION_LABELS[Action.DECIDE_NO_INFUSION]),
                "main": False,
            }
        )
    can_print = data.coi is not None and can(scope, Action.PRINT_LABELS, subject)
    return {
        "subject": subject,
        "data": data,
        "state_label": gettext(STATE_LABELS[State(subject.state)]),
        "time_zone": time_zone,
        "actions": action_forms,
        "shipments": shipments,
        "can_import": can_import,
        "batches": batches,
        "steps": steps,
        "total_days": sum(s.days for s in steps),
        "timeline_plot": timeline_plot(steps, time_zone, language) if steps else "",
        "can_print": can_print,
        "step_buttons": step_buttons,
        "deviations": _deviation_views(reach, data.deviations, deviation_refusal),
    }


def _deviation_views(
    reach: Reach, deviations: list[Deviation], refusal: tuple[int, str, str] | None
) -> list[DeviationView]:
    """The subject's deviations, those not closed first, each with the moves the user may make;
    a refused move keeps its reason and the text typed on its own deviation."""
    role = acting_role(reach.scope, Action.MANAGE_DEVIATION, reach.subject)
    refused_id, error, text = refusal or (None, "", "")
    ordered = sorted(deviations, key=lambda d: (d.status == DeviationStatus.CLOSED, d.at, d.pk))
    return [
        deviation_view(d, role, error=error, text=text) if d.pk == refused_id else deviation_view(d, role)
        for d in ordered
    ]


def _limits(product_code: str) -> str:
    try:
        product = protocol_in_force().product(product_code)
    except KeyError:
        return product_code
    return f"{product.code}: {product.min_temperature_c:g} … {product.max_temperature_c:g} °C"


@login_required
def subject_page(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code)
    return render(request, "logistics/subject.html", _page_context(reach))


@login_required
@require_POST
def subject_action(request: HttpRequest, code: str, action: str) -> HttpResponse:
    """Perform one logistics action; a refusal re-renders the page with the reason (422)."""
    try:
        chosen = Action(action)
    except ValueError:
        raise Http404("No such action") from None
    if chosen not in ACTIONS:
        raise Http404("No such action")
    reach = reach_subject(request.user, code, chosen)
    protocol = protocol_in_force()
    language = current_language()
    form = action_form(chosen, protocol, language, request.POST, request.FILES)
    key = chosen.value
    if chosen is Action.IMPORT_TEMPERATURE_LOG:
        key = f"temperature-{request.POST.get('shipment', '')}"
    error = None
    if form.is_valid():
        try:
            action_perform(chosen, form.cleaned_data, reach, protocol)
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            messages.success(request, gettext(ACTION_LABELS[chosen]) + " ✓")
            return redirect("logistics:subject", code=reach.subject.code)
    if error is None and chosen is Action.IMPORT_TEMPERATURE_LOG and "shipment" in form.errors:
        # No (valid) shipment chosen: no shipment's import form is there to mark the field, so the
        # page says it (a post without a shipment answered 422 showing no reason at all).
        error = f"{form.fields['shipment'].label}: {' '.join(str(e) for e in form.errors['shipment'])}"
    reach.subject.refresh_from_db()
    context = _page_context(reach, forms={key: form})
    context["error"] = error
    context["error_action"] = key
    return render(request, "logistics/subject.html", context, status=422)


@login_required
def subject_labels(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code, Action.PRINT_LABELS)
    specs = label_specs(
        selectors.subject_logistics(reach.subject, protocol_in_force()), protocol_in_force(), current_language()
    )
    if not specs:
        raise Http404("No chain-of-identity code allocated yet")
    pdf = labels_pdf(specs, document_title=f"{reach.subject.code} labels")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{reach.subject.code}-labels.pdf"'
    return response


@login_required
@require_POST
def deviation_move(request: HttpRequest, code: str, deviation_id: int, move: str) -> HttpResponse:
    """One move on a deviation. htmx gets the deviation again (422 with the reason when refused);
    without JavaScript, back to the page at the deviation, or the page with the reason (422)."""
    if move not in DEVIATION_MOVES:
        raise Http404("No such move")
    reach = reach_subject(request.user, code, Action.MANAGE_DEVIATION)
    form = DeviationMoveForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            deviation_perform(reach, deviation_id, move, form.cleaned_data["text"])
        except NotFound:
            raise
        except DomainError as refusal:
            error = error_text(refusal)
    else:
        error = " ".join(str(message) for messages_ in form.errors.values() for message in messages_)
    text = request.POST.get("text", "") if error else ""
    if request.headers.get("HX-Request"):
        deviation = Deviation.objects.filter(pk=deviation_id, subject=reach.subject).first()
        if deviation is None:
            raise Http404("No such deviation")
        role = acting_role(reach.scope, Action.MANAGE_DEVIATION, reach.subject)
        context = {
            "v": deviation_view(selectors.deviation_thread(deviation), role, error=error, text=text),
            "subject": reach.subject,
            "time_zone": reach.subject.center.time_zone,
        }
        return render(request, "logistics/_deviation.html", context, status=422 if error else 200)
    if not error:
        messages.success(request, gettext(MOVE_LABELS[move]) + " ✓")
        target = reverse("logistics:subject", kwargs={"code": reach.subject.code})
        return redirect(f"{target}#deviation-{deviation_id}")
    reach.subject.refresh_from_db()
    context = _page_context(reach, deviation_refusal=(deviation_id, error, text))
    return render(request, "logistics/subject.html", context, status=422)
