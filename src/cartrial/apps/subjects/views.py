"""Pages for subjects: list, registration, the subject page with its pathway, step forms, audit.

Views are adapters: they resolve the user's scope, call one selector or service, and render.
Anything outside the user's scope answers 404; a refused step shows the domain's reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_http_methods

from cartrial.apps.accounts.access import (
    AccessDenied,
    Scope,
    access_create_subject,
    access_creator_centers,
    access_refusal_record,
    access_step,
    acting_role_for_step,
    scope_for,
)
from cartrial.apps.audit.selectors import audit_entries_for_subject, entry_changes
from cartrial.apps.subjects import selectors, services
from cartrial.apps.subjects.forms import STEP_HANDLERS, StepContext, SubjectCreateForm, step_form
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import DomainError
from cartrial.domain.pathway import (
    STATE_LABELS,
    State,
    Step,
    TransitionRefused,
    is_final,
    next_step,
    state_label,
    step_label,
    steps_from,
)
from cartrial.domain.roles import role_label
from cartrial.protocols import Protocol, active_protocol


def _language() -> str:
    return (translation.get_language() or "fr")[:2]


def _protocol() -> Protocol:
    from django.conf import settings

    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)


def _subject_or_404(scope: Scope, code: str) -> Subject:
    try:
        return selectors.subject_get(scope=scope, code=code)
    except Subject.DoesNotExist:
        raise Http404("No such subject") from None


def _message(error: DomainError, language: str) -> str:
    return error.message_in(language) if isinstance(error, TransitionRefused) else error.message


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("subjects:list")


@login_required
def subject_list(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    language = _language()
    state_filter = request.GET.get("state") or None
    if state_filter and state_filter not in {s.value for s in State}:
        state_filter = None
    center_filter = request.GET.get("center") or None
    subjects = selectors.subject_list(scope=scope, center_code=center_filter, state=state_filter)
    rows = []
    for subject in subjects.select_related("identity"):
        identity = selectors.subject_identity(scope=scope, subject=subject)
        upcoming = next_step(State(subject.state))
        rows.append(
            {
                "subject": subject,
                "state_label": state_label(State(subject.state), language),
                "next_step": step_label(upcoming, language) if upcoming else "—",
                "name": f"{identity['family_name'].upper()} {identity['given_names']}" if identity else None,
            }
        )
    context = {
        "rows": rows,
        "states": [(s.value, STATE_LABELS[s].get(language, STATE_LABELS[s]["en"])) for s in State],
        "centers": sorted(scope.center_codes.values()),
        "state_filter": state_filter or "",
        "center_filter": center_filter or "",
        "can_create": access_creator_centers(scope).exists(),
        "counts": selectors.subject_counts_by_state(scope=scope),
    }
    return render(request, "subjects/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def subject_create(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    centers = list(access_creator_centers(scope))
    if not centers:
        return HttpResponseForbidden("Your role cannot register subjects.")
    choices = [(c.code, f"{c.code} – {c.name}") for c in centers]
    form = SubjectCreateForm(request.POST or None, center_choices=choices)
    if request.method == "POST" and form.is_valid():
        center = Center.objects.get(code=form.cleaned_data["center"])
        try:
            actor = access_create_subject(scope, request.user, center)
            subject = services.subject_create(
                actor=actor,
                center=center,
                manufacturing_site=Center.objects.filter(kind=Center.Kind.MANUFACTURING, active=True).first(),
                identity=services.IdentityInput(
                    family_name=form.cleaned_data["family_name"],
                    given_names=form.cleaned_data["given_names"],
                    birth_date=form.cleaned_data["birth_date"],
                    hospital_number=form.cleaned_data["hospital_number"],
                ),
                protocol=_protocol(),
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            return redirect("subjects:detail", code=subject.code)
    return render(request, "subjects/create.html", {"form": form})


def _step_buttons(scope: Scope, subject: Subject, language: str) -> list[dict[str, Any]]:
    """The steps the pathway allows now and this user's role may perform."""
    buttons = []
    for step in steps_from(State(subject.state)):
        if acting_role_for_step(scope, step, subject.center_id, subject.manufacturing_site_id) is None:
            continue
        buttons.append(
            {
                "step": step.value,
                "label": step_label(step, language),
                "main": step is next_step(State(subject.state)),
                "exit": step in (Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH),
            }
        )
    return buttons


@login_required
def subject_detail(request: HttpRequest, code: str) -> HttpResponse:
    scope = scope_for(request.user)
    subject = _subject_or_404(scope, code)
    language = _language()
    protocol = _protocol()
    identity = selectors.subject_identity(scope=scope, subject=subject)
    assessment = selectors.subject_latest_assessment(subject=subject)
    criteria_text = {c.id: c.text.get(language, c.text["en"]) for c in protocol.criteria}
    facts = services.subject_facts(subject, protocol)
    timeline = [
        {
            "event": event,
            "step_label": step_label(Step(event.step), language),
            "state_label": state_label(State(event.to_state), language),
            "role_label": role_label_safe(event.role, language),
        }
        for event in subject.pathway_events.all()
    ]
    context = {
        "subject": subject,
        "identity": identity,
        "state_label": state_label(State(subject.state), language),
        "final": is_final(State(subject.state)),
        "timeline": timeline,
        "consents": list(subject.consents.all()),
        "consent_current": facts.consent_current,
        "assessment": assessment,
        "criteria_text": criteria_text,
        "buttons": _step_buttons(scope, subject, language),
        "can_assess": subject.state in (State.PRE_SCREENING.value, State.SCREENING.value)
        and acting_role_for_step(scope, Step.CONFIRM_ELIGIBILITY, subject.center_id, None) is not None,
        "time_zone": subject.center.time_zone,
    }
    return render(request, "subjects/detail.html", context)


def role_label_safe(role: str, language: str) -> str:
    from cartrial.domain.roles import Role

    try:
        return role_label(Role(role), language)
    except ValueError:
        return role


@login_required
@require_http_methods(["GET", "POST"])
def subject_step(request: HttpRequest, code: str, step: str) -> HttpResponse:
    """GET: the form of one step (an htmx fragment). POST: perform it."""
    scope = scope_for(request.user)
    subject = _subject_or_404(scope, code)
    language = _language()
    try:
        chosen = Step(step)
    except ValueError:
        raise Http404("No such step") from None
    protocol = _protocol()
    form = step_form(chosen, protocol, request.POST if request.method == "POST" else None)
    error = None
    if request.method == "POST":
        try:
            actor = access_step(
                scope,
                request.user,
                chosen,
                center_id=subject.center_id,
                manufacturing_site_id=subject.manufacturing_site_id,
                center_code=subject.center.code,
            )
        except AccessDenied as denied:
            access_refusal_record(scope, request.user, subject, f"{chosen.value}", denied)  # type: ignore[arg-type]
            return HttpResponseForbidden(denied.message)
        if form.is_valid():
            handler = STEP_HANDLERS[chosen][1]
            try:
                handler(form.cleaned_data, StepContext(actor, request.user, subject, protocol, language))
            except DomainError as refusal:
                error = _message(refusal, language)
            else:
                target = reverse("subjects:detail", kwargs={"code": subject.code})
                if request.headers.get("HX-Request"):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
    context = {
        "subject": subject,
        "step": chosen.value,
        "step_label": step_label(chosen, language),
        "form": form,
        "error": error,
    }
    template = "subjects/_step_form.html" if request.headers.get("HX-Request") else "subjects/step_page.html"
    return render(request, template, context, status=422 if error or form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def subject_eligibility(request: HttpRequest, code: str) -> HttpResponse:
    """Screening data with the computed verdict shown live (the clinical app's screening page)."""
    from cartrial.apps.clinical.views import screening_page

    return screening_page(request, code)


@login_required
def subject_audit(request: HttpRequest, code: str) -> HttpResponse:
    scope = scope_for(request.user)
    subject = _subject_or_404(scope, code)
    entries = [{"entry": e, "changes": entry_changes(e)} for e in audit_entries_for_subject(subject.code)]
    return render(request, "subjects/audit.html", {"subject": subject, "entries": entries})
