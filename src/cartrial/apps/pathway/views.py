"""Pages of the patient's pathway: the subject list, registration, the subject page, step forms,
consent, the audit trail.

Adapters only: every page reaches its subject through the access entry point (404 outside the
user's scope, 403 recorded for a role that may not act), steps go through the engine, and a
refusal is shown in the user's language.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
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
from cartrial.apps.audit.selectors import audit_entries_for_subject
from cartrial.apps.clinical import services as clinical
from cartrial.apps.pathway import corrections, steps
from cartrial.apps.pathway.audit_trail import audit_rows
from cartrial.apps.pathway.forms import CorrectionForm, SubjectCreateForm, correction_initial
from cartrial.apps.pathway.selectors import latest_assessment, local_date, step_choices, subject_facts
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import Consent, ConsentWithdrawal, PathwayEvent, Subject
from cartrial.apps.text import current_language, error_text, value_text
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.corrections import (
    SIGNED_RECORDS,
    CorrectableField,
    CorrectableRecord,
    ValueType,
    correctable,
    correction_action,
)
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step, is_final, next_step
from cartrial.domain.roles import ACTION_LABELS, ROLE_LABELS, Action, Role
from cartrial.domain.text import protocol_text


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
    form = SubjectCreateForm(request.POST if request.method == "POST" else None, center_choices=choices)
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
    return [
        {"step": choice.action.value, "label": _action_label(choice.action), "main": choice.main, "exit": choice.exit}
        for choice in step_choices(scope, subject)
    ]


@login_required
def subject_detail(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code)
    scope, subject = reach.scope, reach.subject
    language = current_language()
    protocol = protocol_in_force()
    facts = subject_facts(subject, protocol, now=reach.actor.now)
    # The events and consents are read once each, with who recorded them: the page's queries do not
    # grow with the subject's history (tests/integration/test_subject_page_queries.py).
    events = list(subject.pathway_events.select_related("actor", "signature").order_by("occurred_at", "pk"))
    consents = list(subject.consents.select_related("obtained_by").order_by("recorded_at", "pk"))
    dates = _timeline_dates(subject, events, consents)
    timeline = [
        {
            "event": event,
            "step_label": gettext(STEP_LABELS[Step(event.step)]),
            "state_label": _state_label(event.to_state),
            "role_label": _role_label(event.role),
            "date": dates.get(event.pk),
            "meaning": gettext(event.signature.meaning) if event.signature else "",
        }
        for event in events
    ]
    context = {
        "subject": subject,
        "identity": reach.identity,
        # The scope read to reach the subject, reused by the page's correction links (not read again).
        "scope": scope,
        "state_label": _state_label(subject.state),
        "final": is_final(State(subject.state)),
        "timeline": timeline,
        "consents": consents,
        "consent_current": facts.consent_current,
        "assessment": latest_assessment(subject),
        "criteria_text": {c.id: protocol_text(c.text, language) for c in protocol.criteria},
        "buttons": _step_buttons(scope, subject),
        "can_assess": subject.state in (State.PRE_SCREENING.value, State.SCREENING.value)
        and can(scope, Action.ENTER_SCREENING_DATA, subject),
        "can_read_screening": can(scope, Action.READ_SCREENING, subject),
        "can_read_audit": can(scope, Action.READ_AUDIT, subject),
        "can_read_casebook": can(scope, Action.READ_CASEBOOK, subject),
        "can_read_safety": can(scope, Action.READ_SAFETY, subject),
        "can_read_bookings": can(scope, Action.READ_BOOKINGS, subject),
        "can_read_toxicity": subject.infusion_date is not None and can(scope, Action.READ_TOXICITY, subject),
        "time_zone": subject.center.time_zone,
    }
    return render(request, "subjects/detail.html", context)


def _timeline_dates(subject: Subject, events: list[PathwayEvent], consents: list[Consent]) -> dict[int, dict[str, Any]]:
    """The correctable date each step set, by timeline event: consent, planned apheresis, D0, death.

    Only the step that set the date in force carries it (the latest of its kind); the planned
    apheresis date is the collection's once collected, corrected on the logistics page. `events`
    are the subject's, oldest first, and `consents` all of its consents (the page read them).
    """
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for event in events:
        latest[event.step] = (event.pk, event.details)
    dates: dict[int, dict[str, Any]] = {}
    first_consent = min(consents, key=lambda c: (c.signed_on, c.pk), default=None)
    if Step.START_SCREENING.value in latest and first_consent is not None:
        dates[latest[Step.START_SCREENING.value][0]] = {
            "label": gettext("consent signed on"),
            "value": first_consent.signed_on,
            "kind": "consent",
            "id": first_consent.pk,
        }
    scheduled = [latest[s][0] for s in (Step.SCHEDULE_APHERESIS.value, Step.REPEAT_APHERESIS.value) if s in latest]
    if scheduled and subject.apheresis_date and not subject.collections.exists():
        dates[max(scheduled)] = {
            "label": gettext("planned apheresis date"),
            "value": subject.apheresis_date,
            "kind": "planned_apheresis",
            "id": subject.code,
        }
    if Step.INFUSE.value in latest and subject.infusion_date:
        dates[latest[Step.INFUSE.value][0]] = {
            "label": gettext("infusion date (D0)"),
            "value": subject.infusion_date,
            "kind": "infusion",
            "id": subject.code,
        }
    if Step.RECORD_DEATH.value in latest:
        pk, details = latest[Step.RECORD_DEATH.value]
        dates[pk] = {"label": gettext("date of death"), "value": details.get("death_date"), "kind": "death", "id": pk}
    return dates


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
    entries = audit_rows(audit_entries_for_subject(reach.subject.code))
    return render(request, "subjects/audit.html", {"subject": reach.subject, "entries": entries})


# --- corrections ----------------------------------------------------------------------------------


def _shown(spec: CorrectableField | None, value: object, time_zone: str) -> str:
    """A stored or audited value as a person reads it: times at the center (and UTC), labels, numbers."""
    if value is None or value == "":
        return "—"
    if spec is not None and spec.type is ValueType.INSTANT:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(moment, datetime):
            local = moment.astimezone(ZoneInfo(time_zone))
            return f"{local:%Y-%m-%d %H:%M} ({moment.astimezone(UTC):%H:%M} UTC)"
    if isinstance(value, list):
        return ", ".join(gettext(clinical_label(str(v))) for v in value) if value else gettext("none")
    if isinstance(value, str) and spec is not None and spec.type is ValueType.UNIT:
        return gettext(unit_label(value))
    if isinstance(value, str):
        return gettext(clinical_label(value)) if spec is not None and spec.type is ValueType.SCREENING_ITEM else value
    return value_text(value)


def _field_label(record: CorrectableRecord, name: str) -> str:
    for spec in record.fields:
        if spec.name == name:
            return gettext(spec.label)
    return name


def _spec(record: CorrectableRecord, name: str) -> CorrectableField | None:
    return next((spec for spec in record.fields if spec.name == name), None)


def _back(request: HttpRequest, subject: Subject) -> str:
    """The page the person came from (a path of this site only), else the subject page."""
    back = request.GET.get("back", "")
    if back.startswith("/") and not back.startswith("//") and url_has_allowed_host_and_scheme(back, allowed_hosts=None):
        return back
    return reverse("subjects:detail", kwargs={"code": subject.code})


@login_required
@require_http_methods(["GET", "POST"])
def record_corrections(request: HttpRequest, code: str, record: str, record_id: str) -> HttpResponse:
    """One stored record: its values, a form per field for whoever may correct it, and its history
    (old → new, who, when, why; the signatures that covered it, voided ones with who, when, why)."""
    try:
        kind = correctable(record)
    except InvalidInput:
        raise Http404("No such kind of record") from None
    history = corrections.correction_history(request.user, code, kind=record, record_id=record_id)
    reach, target = history.reach, history.target
    subject = reach.subject
    time_zone = subject.center.time_zone
    signed = target.signed is not None
    may_correct = can(reach.scope, correction_action(kind, target.signed), subject)
    bound: dict[str, CorrectionForm] = {}
    error = None
    if request.method == "POST":
        if not may_correct:
            # The entry point refuses and records the attempt (403).
            reach_subject(request.user, code, correction_action(kind, target.signed))
        name = request.POST.get("field", "")
        spec = _spec(kind, name)
        if spec is None:
            raise Http404("No such field")
        form = CorrectionForm(request.POST, spec=spec, signed=signed)
        bound[name] = form
        if form.is_valid():
            try:
                corrections.correction_apply(
                    request.user,
                    code,
                    kind=record,
                    record_id=record_id,
                    field=name,
                    value=form.corrected_value(),
                    reason=form.cleaned_data.get("reason") or "",
                    password=form.cleaned_data.get("password") or "",
                    otp_code=form.cleaned_data.get("otp_code") or "",
                    protocol=protocol_in_force(),
                )
            except (AccessDenied, NotFound):
                raise
            except DomainError as refusal:
                if refusal.item in ("value", "reason", "password", "otp_code") or refusal.item == name:
                    form.add_error("value" if refusal.item == name else refusal.item, error_text(refusal))
                else:
                    error = error_text(refusal)
            else:
                messages.success(request, gettext("Corrected: {field}.").format(field=_field_label(kind, name)))
                target_url = reverse(
                    "subjects:correction",
                    kwargs={"code": subject.code, "record": record, "record_id": target.record_id},
                )
                return redirect(f"{target_url}?{urlencode({'back': _back(request, subject)})}")
    fields = [
        {
            "name": spec.name,
            "label": gettext(spec.label),
            "unit": spec.unit,
            "value": _shown(spec, target.values.get(spec.name), time_zone),
            "form": bound.get(spec.name)
            or CorrectionForm(
                spec=spec, signed=signed, initial=correction_initial(spec, target.values.get(spec.name), time_zone)
            ),
            "open": spec.name in bound or request.GET.get("field") == spec.name,
        }
        for spec in kind.fields
    ]
    entries = [
        {
            "entry": entry,
            "field": _field_label(kind, entry.field),
            "old": _shown(_spec(kind, entry.field), entry.old, time_zone),
            "new": _shown(_spec(kind, entry.field), entry.new, time_zone),
            "role": _role_label(entry.role),
            "follows": [
                {
                    "field": f.get("field"),
                    "old": _shown(None, f.get("old"), time_zone),
                    "new": _shown(None, f.get("new"), time_zone),
                }
                for f in entry.follows
            ],
        }
        for entry in history.entries
    ]
    signatures = [
        {"signature": s, "meaning": gettext(s.meaning), "role": _role_label(s.role)} for s in history.signatures
    ]
    context = {
        "subject": subject,
        "record": kind,
        "record_label": gettext(kind.label),
        "record_id": target.record_id,
        "signed_label": gettext(SIGNED_RECORDS[target.signed].label) if target.signed else "",
        "covered_by_label": gettext(SIGNED_RECORDS[kind.covered_by].label) if kind.covered_by else "",
        "may_correct": may_correct,
        "fields": fields,
        "entries": entries,
        "signatures": signatures,
        "error": error,
        "time_zone": time_zone,
        "back": _back(request, subject),
    }
    status = 422 if error or any(f.errors for f in bound.values()) else 200
    return render(request, "subjects/corrections.html", context, status=status)
