"""Pages of the patient's pathway: the subject list, registration, the subject page, step forms,
consent, the audit trail.

Adapters only: every page reaches its subject through the access entry point (404 outside the
user's scope, 403 recorded for a role that may not act), steps go through the engine, and a
refusal is shown in the user's language.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import (
    Scope,
    can,
    creator_centers,
    reach_center,
    reach_subject,
    scope_for,
    subject_identity,
    subjects_in_scope,
)
from cartrial.apps.audit.selectors import audit_entries_for_subject, entry_changes
from cartrial.apps.clinical import services as clinical
from cartrial.apps.pathway import steps
from cartrial.apps.pathway.forms import SubjectCreateForm
from cartrial.apps.pathway.selectors import latest_assessment, local_date, subject_facts
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import ConsentWithdrawal, Subject
from cartrial.apps.text import current_language, error_text
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step, is_final, next_step, steps_from
from cartrial.domain.roles import ACTION_LABELS, ROLE_LABELS, Action, Role
from cartrial.domain.text import protocol_text

EXIT_STEPS = (Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH)


def _state_label(state: str) -> str:
    return gettext(STATE_LABELS[State(state)])


def _role_label(role: str) -> str:
    try:
        return gettext(ROLE_LABELS[Role(role)])
    except ValueError:
        return role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("subjects:list")


@login_required
def subject_list(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    state_filter = request.GET.get("state") or None
    if state_filter and state_filter not in {s.value for s in State}:
        state_filter = None
    center_filter = request.GET.get("center") or None
    queryset = subjects_in_scope(scope, center_code=center_filter, state=state_filter).select_related("identity")
    rows = []
    for subject in queryset:
        identity = subject_identity(scope, subject)
        upcoming = next_step(State(subject.state))
        rows.append(
            {
                "subject": subject,
                "state_label": _state_label(subject.state),
                "next_step": gettext(STEP_LABELS[upcoming]) if upcoming else "—",
                "name": f"{identity['family_name'].upper()} {identity['given_names']}" if identity else None,
            }
        )
    counts = subjects_in_scope(scope).order_by().values("state").annotate(count=Count("pk")).order_by("state")
    context = {
        "rows": rows,
        "states": [(s.value, gettext(STATE_LABELS[s])) for s in State],
        "centers": sorted(scope.center_codes.values()),
        "state_filter": state_filter or "",
        "center_filter": center_filter or "",
        "can_create": creator_centers(scope).exists(),
        "counts": list(counts),
    }
    return render(request, "subjects/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def subject_create(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    centers = list(creator_centers(scope))
    choices = [(c.code, f"{c.code} – {c.name}") for c in centers]
    form = SubjectCreateForm(request.POST or None, center_choices=choices)
    if request.method == "POST" and form.is_valid():
        reach = reach_center(request.user, form.cleaned_data["center"], Action.REGISTER_SUBJECT)
        try:
            subject = subjects.subject_create(
                actor=reach.actor,
                center=reach.center,
                identity=subjects.IdentityInput(
                    family_name=form.cleaned_data["family_name"],
                    given_names=form.cleaned_data["given_names"],
                    birth_date=form.cleaned_data["birth_date"],
                    hospital_number=form.cleaned_data["hospital_number"],
                ),
                protocol=protocol_in_force(),
            )
        except DomainError as error:
            form.add_error(error.item if error.item in form.fields else None, error_text(error))
        else:
            return redirect("subjects:detail", code=subject.code)
    elif not centers:
        # Nobody without a role that registers subjects gets a form: the refusal is recorded.
        reach_center(request.user, next(iter(scope.center_codes.values()), "—"), Action.REGISTER_SUBJECT)
    return render(request, "subjects/create.html", {"form": form}, status=422 if form.errors else 200)


def _step_buttons(scope: Scope, subject: Subject) -> list[dict[str, Any]]:
    """The steps the pathway allows now and this user's role may perform."""
    state = State(subject.state)
    buttons = [
        {
            "step": step.value,
            "label": gettext(STEP_LABELS[step]),
            "main": step is next_step(state),
            "exit": step in EXIT_STEPS,
        }
        for step in steps_from(state)
        if can(scope, step, subject)
    ]
    if state is State.MANUFACTURING_FAILED and can(scope, Action.DECIDE_NO_INFUSION, subject):
        buttons.append(
            {
                "step": Action.DECIDE_NO_INFUSION.value,
                "label": gettext(ACTION_LABELS[Action.DECIDE_NO_INFUSION]),
                "main": False,
                "exit": True,
            }
        )
    return buttons


@login_required
def subject_detail(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code)
    scope, subject = reach.scope, reach.subject
    language = current_language()
    protocol = protocol_in_force()
    facts = subject_facts(subject, protocol, now=reach.actor.now)
    timeline = [
        {
            "event": event,
            "step_label": gettext(STEP_LABELS[Step(event.step)]),
            "state_label": _state_label(event.to_state),
            "role_label": _role_label(event.role),
        }
        for event in subject.pathway_events.select_related("actor", "signature").order_by("occurred_at", "pk")
    ]
    context = {
        "subject": subject,
        "identity": reach.identity,
        "state_label": _state_label(subject.state),
        "final": is_final(State(subject.state)),
        "timeline": timeline,
        "consents": list(subject.consents.all()),
        "consent_current": facts.consent_current,
        "assessment": latest_assessment(subject),
        "criteria_text": {c.id: protocol_text(c.text, language) for c in protocol.criteria},
        "buttons": _step_buttons(scope, subject),
        "can_assess": subject.state in (State.PRE_SCREENING.value, State.SCREENING.value)
        and can(scope, Action.ENTER_SCREENING_DATA, subject),
        "can_read_screening": can(scope, Action.READ_SCREENING, subject),
        "can_read_audit": can(scope, Action.READ_AUDIT, subject),
        "time_zone": subject.center.time_zone,
    }
    return render(request, "subjects/detail.html", context)


def _chosen_step(step: str) -> Step | Action:
    for kind in (Step, Action):
        try:
            chosen = kind(step)
        except ValueError:
            continue
        if chosen in steps.STEPS:
            return chosen
    raise Http404("No such step")


def _action_label(action: Step | Action) -> str:
    return gettext(STEP_LABELS[action] if isinstance(action, Step) else ACTION_LABELS[action])


@login_required
@require_http_methods(["GET", "POST"])
def subject_step(request: HttpRequest, code: str, step: str) -> HttpResponse:
    """GET: the form of one step (an htmx fragment). POST: perform it."""
    chosen = _chosen_step(step)
    reach = reach_subject(request.user, code, chosen if request.method == "POST" else None)
    protocol = protocol_in_force()
    form = steps.step_form(chosen, protocol, request.POST if request.method == "POST" else None)
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            steps.step_run(reach, chosen, form.cleaned_data, protocol)
        except DomainError as refusal:
            # Invalid input is shown at its field; a refusal of the step itself (a guard, a wrong
            # signature, an identity mismatch) above the form, where the person acting reads it first.
            if isinstance(refusal, InvalidInput) and refusal.item in form.fields:
                form.add_error(refusal.item, error_text(refusal))
            else:
                error = error_text(refusal)
        else:
            target = reverse("subjects:detail", kwargs={"code": reach.subject.code})
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
    context = {
        "subject": reach.subject,
        "step": chosen.value,
        "step_label": _action_label(chosen),
        "form": form,
        "error": error,
    }
    template = "subjects/_step_form.html" if request.headers.get("HX-Request") else "subjects/step_page.html"
    return render(request, template, context, status=422 if error or form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def consent_page(request: HttpRequest, code: str) -> HttpResponse:
    """Re-consent on the current version, or record the withdrawal of consent (and what it stops)."""
    what = request.POST.get("action") if request.method == "POST" else None
    action = {"reconsent": Action.RECORD_RECONSENT, "withdraw": Action.WITHDRAW_CONSENT}.get(what or "")
    reach = reach_subject(request.user, code, action or Action.READ_SCREENING)
    subject = reach.subject
    protocol = protocol_in_force()
    error = None
    if action is not None:
        try:
            on_date = _posted_date(request.POST.get("date", ""))
            if action is Action.RECORD_RECONSENT:
                reach.run(
                    lambda: clinical.consent_reconsent(
                        actor=reach.actor,
                        subject=subject,
                        protocol=protocol,
                        language=request.POST.get("language", "fr"),
                        signed_on=on_date,
                    )
                )
            else:
                if request.POST.get("confirm") != "yes":
                    raise InvalidInput(
                        "Tick the confirmation: the withdrawal ends the participation.",
                        code="confirmation_required",
                        item="confirm",
                    )
                steps.consent_withdraw(
                    reach, {"withdrawn_on": on_date, "reason": request.POST.get("reason", "")}, protocol
                )
        except DomainError as refused:
            error = error_text(refused)
        else:
            return redirect("subjects:detail", code=subject.code)
    context = {
        "subject": subject,
        "consents": list(subject.consents.select_related("obtained_by")),
        "consent_current": subject_facts(subject, protocol, now=reach.actor.now).consent_current,
        "current": sorted(protocol.current_consent_versions().items()),
        "withdrawal": ConsentWithdrawal.objects.filter(subject=subject).first(),
        "final": is_final(State(subject.state)),
        "error": error,
        "today": local_date(subject, reach.actor.now).isoformat(),
    }
    return render(request, "clinical/consent.html", context, status=422 if error else 200)


def _posted_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("Give the date (YYYY-MM-DD).", code="invalid_date", item="date") from None


@login_required
def subject_audit(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code, Action.READ_AUDIT)
    entries = [{"entry": e, "changes": entry_changes(e)} for e in audit_entries_for_subject(reach.subject.code)]
    return render(request, "subjects/audit.html", {"subject": reach.subject, "entries": entries})
