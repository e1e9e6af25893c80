"""Logistics pages: the dashboard (worklists per role, vein-to-vein plots), one subject's chain of
identity, custody and condition with the actions of each role, and the printable labels.

Adapters only: scope from the access module, reads from selectors, writes through services.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_POST

from cartrial.apps.accounts.access import (
    AccessDenied,
    Scope,
    access_logistics_action,
    access_refusal_record,
    acting_role_for_logistics,
    acting_role_for_step,
    scope_for,
)
from cartrial.apps.logistics import selectors
from cartrial.apps.logistics.forms import ACTION_HANDLERS, ActionContext, action_form
from cartrial.apps.logistics.labels import labels_pdf
from cartrial.apps.logistics.models import Deviation
from cartrial.apps.logistics.plots import temperature_plot, timeline_plot, vein_to_vein_plot
from cartrial.apps.logistics.presenters import label_specs
from cartrial.apps.subjects import selectors as subject_selectors
from cartrial.apps.subjects.models import Subject
from cartrial.domain.errors import DomainError
from cartrial.domain.logistics_actions import ACTION_LABELS, LogisticsAction
from cartrial.domain.manufacturing import BATCH_STATUS_LABELS, BRANCH_LABELS, BatchStatus
from cartrial.domain.pathway import State, Step, TransitionRefused, next_step, state_label, step_label, steps_from
from cartrial.domain.roles import Role
from cartrial.domain.vein_to_vein import INTERVAL_LABELS, INTERVALS, step_durations, summarise
from cartrial.locale import render as render_message
from cartrial.locale import translator
from cartrial.protocols import Protocol, active_protocol

# The logistics worklists: the subjects at each stage and the role whose move it is.
WORKLISTS: tuple[tuple[State, frozenset[Role]], ...] = (
    (State.APHERESIS_SCHEDULED, frozenset({Role.APHERESIS})),
    (State.APHERESIS_COLLECTED, frozenset({Role.APHERESIS})),
    (State.MATERIAL_SHIPPED, frozenset({Role.MANUFACTURING})),
    (State.MANUFACTURING, frozenset({Role.MANUFACTURING})),
    (State.MANUFACTURING_FAILED, frozenset({Role.MANUFACTURING, Role.INVESTIGATOR, Role.COORDINATOR})),
    (State.PRODUCT_RELEASED, frozenset({Role.MANUFACTURING})),
    (State.PRODUCT_SHIPPED, frozenset({Role.PHARMACIST})),
    (State.PRODUCT_RECEIVED, frozenset({Role.INVESTIGATOR, Role.COORDINATOR})),
    (State.LYMPHODEPLETION, frozenset({Role.PHARMACIST, Role.INVESTIGATOR})),
)

WORKLIST_HINTS: dict[State, dict[str, str]] = {
    State.APHERESIS_SCHEDULED: {
        "en": "Collect (a DIN is given to each collection)",
        "fr": "Recueillir (un DIN par recueil)",
    },
    State.APHERESIS_COLLECTED: {
        "en": "Hand over to the courier (scan the DIN)",
        "fr": "Remettre au transporteur (scanner le DIN)",
    },
    State.MATERIAL_SHIPPED: {
        "en": "Receive at the lab (scan the DIN)",
        "fr": "Réceptionner au laboratoire (scanner le DIN)",
    },
    State.MANUFACTURING: {
        "en": "QC results, then release by the QP",
        "fr": "Résultats de CQ, puis libération par la PQ",
    },
    State.MANUFACTURING_FAILED: {
        "en": "Decide: remanufacture, re-apheresis or no infusion",
        "fr": "Décider : refabrication, nouvelle aphérèse ou pas de perfusion",
    },
    State.PRODUCT_RELEASED: {"en": "Ship the product (scan the CoI)", "fr": "Expédier le produit (scanner le CoI)"},
    State.PRODUCT_SHIPPED: {
        "en": "Receive at the pharmacy (scan the CoI)",
        "fr": "Réceptionner à la pharmacie (scanner le CoI)",
    },
    State.PRODUCT_RECEIVED: {"en": "In storage: start lymphodepletion", "fr": "En stock : débuter la lymphodéplétion"},
    State.LYMPHODEPLETION: {
        "en": "Thaw, two-person bedside check, infuse",
        "fr": "Décongeler, double contrôle au lit, perfuser",
    },
}


QC_WORDS_FR = {"negative": "négatif", "positive": "positif"}


def _language() -> str:
    return (translation.get_language() or "fr")[:2]


def _protocol() -> Protocol:
    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)


def _subject_or_404(scope: Scope, code: str) -> Subject:
    try:
        return subject_selectors.subject_get(scope=scope, code=code)
    except Subject.DoesNotExist:
        raise Http404("No such subject") from None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language()
    my_roles = set(scope.roles_by_center.values())
    subjects = list(
        subject_selectors.subject_list(scope=scope).filter(state__in=[state.value for state, _ in WORKLISTS])
    )
    worklists = []
    for state, roles in WORKLISTS:
        rows = [s for s in subjects if s.state == state.value]
        worklists.append(
            {
                "state": state.value,
                "label": state_label(state, language),
                "hint": WORKLIST_HINTS[state].get(language, WORKLIST_HINTS[state]["en"]),
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
    deviations = list(
        Deviation.objects.filter(subject__in=subject_selectors.subject_list(scope=scope))
        .select_related("subject__center", "actor")
        .order_by("-at", "-pk")[:20]
    )
    context = {
        "worklists": worklists,
        "interval_labels": [
            translator(language)(INTERVAL_LABELS[name]) for name, _, _ in INTERVALS
        ],
        "table": table,
        "v2v_plot": vein_to_vein_plot(summaries, language) if milestones else "",
        "milestones": milestones,
        "deviations": deviations,
    }
    return render(request, "logistics/dashboard.html", context)


def _available_actions(scope: Scope, subject: Subject, data: selectors.SubjectLogistics) -> list[LogisticsAction]:
    state = State(subject.state)
    batch = data.batches[-1].batch if data.batches else None
    wanted: list[LogisticsAction] = []
    if state is State.MATERIAL_SHIPPED:
        wanted.append(LogisticsAction.RECEIVE_MATERIAL)
    if state is State.MANUFACTURING and batch is not None:
        wanted.append(LogisticsAction.RECORD_QC)
        if batch.status == BatchStatus.OUT_OF_SPECIFICATION and batch.oos_exception_signature_id is None:
            wanted.append(LogisticsAction.DOCUMENT_OOS_EXCEPTION)
    if state is State.MANUFACTURING_FAILED:
        wanted.append(LogisticsAction.DECIDE_NO_INFUSION)
    if state is State.LYMPHODEPLETION and batch is not None and not data.batches[-1].thaw:
        wanted.append(LogisticsAction.THAW)
    return [
        action
        for action in wanted
        if acting_role_for_logistics(scope, action, subject.center_id, subject.manufacturing_site_id) is not None
    ]


def _page_context(
    request: HttpRequest, subject: Subject, scope: Scope, *, forms: dict[str, Any] | None = None
) -> dict[str, Any]:
    language = _language()
    data = selectors.subject_logistics(subject)
    time_zone = subject.center.time_zone
    actions = _available_actions(scope, subject, data)
    bound = forms or {}
    action_forms = [
        {
            "action": action.value,
            "label": ACTION_LABELS[action].get(language, ACTION_LABELS[action]["en"]),
            "form": bound.get(action.value) or action_form(action, language),
        }
        for action in actions
    ]
    can_import = (
        acting_role_for_logistics(
            scope, LogisticsAction.IMPORT_TEMPERATURE_LOG, subject.center_id, subject.manufacturing_site_id
        )
        is not None
    )
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
        shipments.append(
            {
                "shipment": view.shipment,
                "logs": list(zip(view.logs, plots, strict=True)),
                "limits": _limits(view.shipment.product_code),
                "form": bound.get(f"temperature-{view.shipment.pk}")
                or action_form(
                    LogisticsAction.IMPORT_TEMPERATURE_LOG,
                    language,
                    initial={"shipment": view.shipment.pk, "logger_time_zone": time_zone},
                ),
            }
        )
    points = sorted(selectors.timeline_points(subject, language), key=lambda p: p[1])
    steps = step_durations(points)
    specification = selectors.release_specification()
    batches = [
        {
            "view": b,
            "status_label": translator(language)(BATCH_STATUS_LABELS[BatchStatus(b.batch.status)]),
            "branch_label": translator(language)(BRANCH_LABELS[b.batch.branch]) if b.batch.branch else "",  # type: ignore[index]
            "qc": [
                {
                    "result": r,
                    "label": specification[r.test_code].label.get(language, r.test_code),
                    "spec": render_message(specification[r.test_code].describe(), language),
                    "value": QC_WORDS_FR.get(r.value_text, r.value_text) if language == "fr" else r.value_text,
                }
                for r in b.qc
            ],
        }
        for b in data.batches
    ]
    step_buttons = [
        {"step": step.value, "label": step_label(step, language), "main": step is next_step(State(subject.state))}
        for step in steps_from(State(subject.state))
        if step not in (Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH)
        and acting_role_for_step(scope, step, subject.center_id, subject.manufacturing_site_id) is not None
    ]
    can_print = data.coi is not None and (
        acting_role_for_logistics(scope, LogisticsAction.PRINT_LABELS, subject.center_id, subject.manufacturing_site_id)
        is not None
    )
    return {
        "subject": subject,
        "data": data,
        "state_label": state_label(State(subject.state), language),
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
    }


def _limits(product_code: str) -> str:
    try:
        product = _protocol().product(product_code)
    except KeyError:
        return product_code
    return f"{product.code}: {product.min_temperature_c:g} … {product.max_temperature_c:g} °C"


@login_required
def subject_page(request: HttpRequest, code: str) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    subject = _subject_or_404(scope, code)
    return render(request, "logistics/subject.html", _page_context(request, subject, scope))


@login_required
@require_POST
def subject_action(request: HttpRequest, code: str, action: str) -> HttpResponse:
    """Perform one logistics action; a refusal re-renders the page with the reason (422)."""
    scope = scope_for(request.user)  # type: ignore[arg-type]
    subject = _subject_or_404(scope, code)
    language = _language()
    try:
        chosen = LogisticsAction(action)
    except ValueError:
        raise Http404("No such action") from None
    if chosen not in ACTION_HANDLERS:
        raise Http404("No such action")
    try:
        actor = access_logistics_action(
            scope,
            request.user,  # type: ignore[arg-type]
            chosen,
            center_id=subject.center_id,
            manufacturing_site_id=subject.manufacturing_site_id,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{chosen.value}", denied)  # type: ignore[arg-type]
        return HttpResponseForbidden(denied.message)
    form = action_form(chosen, language, request.POST, request.FILES)
    key = chosen.value
    if chosen is LogisticsAction.IMPORT_TEMPERATURE_LOG:
        key = f"temperature-{request.POST.get('shipment', '')}"
    error = None
    if form.is_valid():
        context = ActionContext(actor, request.user, subject, _protocol(), language)  # type: ignore[arg-type]
        try:
            ACTION_HANDLERS[chosen][1](form.cleaned_data, context)
        except DomainError as refusal:
            error = refusal.message_in(language) if isinstance(refusal, TransitionRefused) else refusal.message
        else:
            messages.success(request, ACTION_LABELS[chosen].get(language, ACTION_LABELS[chosen]["en"]) + " ✓")
            return redirect("logistics:subject", code=subject.code)
    subject.refresh_from_db()
    context = _page_context(request, subject, scope, forms={key: form})
    context["error"] = error
    context["error_action"] = key
    return render(request, "logistics/subject.html", context, status=422)


@login_required
def subject_labels(request: HttpRequest, code: str) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    subject = _subject_or_404(scope, code)
    try:
        access_logistics_action(
            scope,
            request.user,  # type: ignore[arg-type]
            LogisticsAction.PRINT_LABELS,
            center_id=subject.center_id,
            manufacturing_site_id=subject.manufacturing_site_id,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        return HttpResponseForbidden(denied.message)
    specs = label_specs(selectors.subject_logistics(subject), _protocol(), _language())
    if not specs:
        raise Http404("No chain-of-identity code allocated yet")
    pdf = labels_pdf(specs, document_title=f"{subject.code} labels")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{subject.code}-labels.pdf"'
    return response
