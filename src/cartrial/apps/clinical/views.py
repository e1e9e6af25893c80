"""Pages: screening data with the live verdict, calculators, screening log (CSV), CONSORT flow, consent.

Adapters only: resolve the scope, call one selector or service, render. Out-of-scope subjects
answer 404; a role that may not act answers 403 and the attempt is recorded.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cartrial.apps import clock
from cartrial.apps.accounts.access import (
    AccessDenied,
    Scope,
    access_refusal_record,
    access_step,
    scope_for,
)
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical import selectors, services
from cartrial.apps.clinical.forms import CalculatorForm, ScreeningForm, screening_initial
from cartrial.apps.subjects import selectors as subject_selectors
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Subject
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.errors import DomainError
from cartrial.domain.pathway import State, Step, TransitionRefused, is_final, state_label
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.registry import (
    CALCULATORS,
    RESULT_LABELS,
    Calculator,
    calculate,
    calculate_readable,
    result_label,
)
from cartrial.domain.text import N_, Message, label, render_value
from cartrial.locale import render as render_message
from cartrial.locale import translator
from cartrial.protocols import Protocol, active_protocol

SCREENING_EDIT_STATES = frozenset({State.SCREENING.value, State.ELIGIBLE.value})


def _language() -> str:
    return (translation.get_language() or "fr")[:2]


def _protocol() -> Protocol:
    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)


def _subject_or_404(scope: Scope, code: str) -> Subject:
    try:
        return subject_selectors.subject_get(scope=scope, code=code)
    except Subject.DoesNotExist:
        raise Http404("No such subject") from None


def _acting(request: HttpRequest, scope: Scope, subject: Subject, step: Step, what: str) -> Actor | HttpResponse:
    """The actor for `step` at the subject's center, or a recorded 403."""
    try:
        return access_step(
            scope,
            request.user,  # type: ignore[arg-type]
            step,
            center_id=subject.center_id,
            manufacturing_site_id=None,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{what}", denied)  # type: ignore[arg-type]
        return HttpResponseForbidden(denied.message)


def _criteria_rows(protocol: Protocol, verdict: dict[str, Any], language: str) -> list[dict[str, Any]]:
    texts = {c.id: c.text.get(language, c.text["en"]) for c in protocol.criteria}
    return [dict(row, text=texts.get(row["id"], "")) for row in verdict.get("criteria", [])]


# --- screening data and verdict -------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def screening_page(request: HttpRequest, code: str) -> HttpResponse:
    """Screening data in, verdict out: htmx posts on every change for a live preview; "save" stores."""
    scope = scope_for(request.user)  # type: ignore[arg-type]
    subject = _subject_or_404(scope, code)
    language = _language()
    protocol = _protocol()
    tz = subject.center.time_zone
    record = selectors.screening_record_get(subject=subject)
    stored_labs = selectors.screening_labs(subject=subject)
    saving = request.method == "POST" and request.POST.get("save") == "1"
    if request.method == "POST":
        form = ScreeningForm(request.POST, protocol=protocol, language=language)
    else:
        form = ScreeningForm(initial=screening_initial(record, stored_labs, tz), protocol=protocol, language=language)
    error = None
    evaluation = None
    if saving:
        acting = _acting(request, scope, subject, Step.CONFIRM_ELIGIBILITY, "confirm_eligibility (screening data)")
        if isinstance(acting, HttpResponse):
            return acting
        if form.is_valid():
            try:
                services.screening_record(
                    actor=acting,
                    user=request.user,  # type: ignore[arg-type]
                    subject=subject,
                    protocol=protocol,
                    data=form.screening_data(),
                    labs=form.lab_inputs(tz),
                    attestations=form.attestations(),
                    reason=form.cleaned_data.get("reason") or "",
                )
            except CalculatorInputError as refused:
                for entry in refused.field_errors:
                    name = entry["field"].split("[")[0]
                    form.add_error(name if name in form.fields else None, entry["message"])
            except DomainError as refused:
                error = refused.message
            else:
                return redirect("subjects:detail", code=subject.code)
    elif request.method == "POST" and form.is_valid():
        try:
            evaluation = selectors.screening_evaluation(
                subject=subject,
                protocol=protocol,
                data=form.screening_data(),
                labs=form.lab_facts(tz, stored_labs),
                attestations=form.attestations(),
            )
        except DomainError as refused:
            error = refused.message
    elif request.method == "GET":
        evaluation = selectors.screening_evaluation(subject=subject, protocol=protocol)
    preview = evaluation.as_dict() if evaluation else None
    context = {
        "subject": subject,
        "form": form,
        "sections": form.sections(),
        "preview": preview,
        "criteria_rows": _criteria_rows(protocol, preview, language) if preview else [],
        "error": error,
        "record": record,
        "editable": subject.state in SCREENING_EDIT_STATES,
        "age_years": selectors.subject_age_at_consent(subject=subject),
        "live": request.method == "POST" and not saving,
    }
    status = 422 if (form.is_bound and form.errors) or error else 200
    if request.headers.get("HX-Request") and not saving:
        return render(request, "clinical/_verdict.html", context, status=status)
    return render(request, "subjects/eligibility.html", context, status=status)


# --- calculators ---------------------------------------------------------------------------------


def _calculator_header(calculator: Calculator) -> dict[str, str]:
    """Name, title and description in the user's language (the source is a citation, as written)."""
    return {
        "name": calculator.name,
        "title": gettext(calculator.title),
        "description": gettext(calculator.description),
        "source": calculator.source,
    }


@login_required
def calculator_list(request: HttpRequest) -> HttpResponse:
    calculators = [_calculator_header(calculator) for calculator in CALCULATORS.values()]
    return render(request, "clinical/calculators.html", {"calculators": calculators})


_RECORD_PATH = re.compile(r"^(?P<key>\w+)\[(?P<index>\d+)\]")


def _field_error(path: str, problem: Message, language: str) -> tuple[str, str]:
    """The form field a calculator's field error belongs to, and the error in words (`anc[1].day` is line 2)."""
    record = _RECORD_PATH.match(path)
    if record is None:
        return path, render_message(problem, language)
    line = Message(N_("Line {line_number}: {problem}"), {"line_number": int(record["index"]) + 1, "problem": problem})
    return record["key"], render_message(line, language)


def _shown(value: object, calculator: Calculator, language: str) -> str:
    """One output value as a person reads it: codes by their label, numbers in the reader's notation."""
    translate = translator(language)
    if isinstance(value, str):
        return translate(clinical_label(value))
    if isinstance(value, dict):
        return ", ".join(
            render_message(
                Message(
                    N_("{name}: {value}"),
                    {"name": label(RESULT_LABELS.get(key, key)), "value": _shown(item, calculator, language)},
                ),
                language,
            )
            for key, item in value.items()
        )
    if isinstance(value, list) and all(isinstance(item, int | float) for item in value):
        return render_value(value, translate, language) if value else "—"
    return "—" if value is None else render_value(value, translate, language)


def _result_rows(calculator: Calculator, result: dict[str, object], language: str) -> list[dict[str, object]]:
    """Each output key with its label, whether the contract fixes it, and its value (a list for lists)."""
    translate = translator(language)
    rows = []
    for key, value in result.items():
        many = isinstance(value, list) and not all(isinstance(item, int | float) for item in value)
        rows.append(
            {
                "key": key,
                "label": translate(result_label(calculator, key)),
                "contract": key in calculator.outputs,
                "items": [_shown(item, calculator, language) for item in value] if many else None,  # type: ignore[union-attr]
                "value": None if many else _shown(value, calculator, language),
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def calculator_page(request: HttpRequest, name: str) -> HttpResponse:
    """One calculator: a form generated from its contract, what counted in the user's language, and the JSON."""
    calculator = CALCULATORS.get(name)
    if calculator is None:
        raise Http404("No such calculator")
    language = _language()
    form = CalculatorForm(request.POST or None, inputs=dict(calculator.inputs))
    result = None
    rows: list[dict[str, object]] = []
    payload = None
    if request.method == "POST" and form.is_valid():
        payload = form.payload()
        try:
            rows = _result_rows(calculator, calculate_readable(name, payload), language)
            result = calculate(name, payload)
        except CalculatorInputError as refused:
            for path, problem in refused.field_messages:
                field, words = _field_error(path, problem, language)
                form.add_error(field if field in form.fields else None, words)
    context = {
        "calculator": _calculator_header(calculator),
        "form": form,
        "rows": rows,
        "payload_json": json.dumps(payload, ensure_ascii=False) if payload is not None else "",
        "result_json": json.dumps(result, ensure_ascii=False) if result is not None else "",
    }
    return render(request, "clinical/calculator.html", context, status=422 if form.errors else 200)


# --- screening log, CONSORT flow --------------------------------------------------------------------

OUTCOME_LABELS = {
    "in_screening": {"en": "In screening", "fr": "En screening"},
    "screen_failed": {"en": "Screen failed", "fr": "Échec de screening"},
    "eligible": {"en": "Eligible, not yet included", "fr": "Éligible, pas encore inclus"},
    "included": {"en": "Included", "fr": "Inclus"},
    "exited_before_inclusion": {"en": "Left before inclusion", "fr": "Sorti avant inclusion"},
}


def _center_filter(request: HttpRequest, scope: Scope) -> str | None:
    chosen = request.GET.get("center") or None
    return chosen if chosen in scope.center_codes.values() else None


@login_required
def screening_log_page(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language()
    center = _center_filter(request, scope)
    protocol = _protocol()
    texts = {c.id: c.text.get(language, c.text["en"]) for c in protocol.criteria}
    rows = [
        {
            "row": row,
            "outcome_label": OUTCOME_LABELS[row.outcome][language if language in ("en", "fr") else "en"],
            "state_label": state_label(State(row.state), language),
            "failed": [(criterion, texts.get(criterion, criterion)) for criterion in row.failed_criteria],
        }
        for row in selectors.screening_log(scope=scope, center_code=center)
    ]
    context = {"rows": rows, "centers": sorted(scope.center_codes.values()), "center": center or ""}
    return render(request, "clinical/screening_log.html", context)


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet will not execute (formula injection): leading = + - @ are quoted."""
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def screening_log_csv(scope: Scope, center: str | None) -> HttpResponse:
    """The screening log as CSV (pseudonymous: codes only), shared by the page button and the API."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="screening-log.csv"'
    writer = csv.writer(response)
    writer.writerow(
        ["center", "subject", "screened_at_utc", "outcome", "state", "latest_verdict", "failed_criteria", "reason"]
    )
    for row in selectors.screening_log(scope=scope, center_code=center):
        writer.writerow(
            [
                _csv_cell(value)
                for value in (
                    row.center_code,
                    row.subject_code,
                    row.screened_at.isoformat(),
                    row.outcome,
                    row.state,
                    row.verdict,
                    ";".join(row.failed_criteria),
                    row.failure_reason,
                )
            ]
        )
    return response


@login_required
def screening_log_export(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    return screening_log_csv(scope, _center_filter(request, scope))


@login_required
def consort_page(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language()
    center = _center_filter(request, scope)
    flow = selectors.consort_flow(scope=scope, center_code=center)
    texts = {c.id: c.text.get(language, c.text["en"]) for c in _protocol().criteria}
    reasons = [(criterion, texts.get(criterion, criterion), count) for criterion, count in flow.failed_by_criterion]
    context = {"flow": flow, "reasons": reasons, "centers": sorted(scope.center_codes.values()), "center": center or ""}
    return render(request, "clinical/consort.html", context)


# --- consent: re-consent list and action, withdrawal -------------------------------------------------


@login_required
def reconsent_list(request: HttpRequest) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language()
    protocol = _protocol()
    center = _center_filter(request, scope)
    rows = [
        {"row": row, "state_label": state_label(State(row.subject.state), language)}
        for row in selectors.consent_reconsent_list(scope=scope, protocol=protocol, center_code=center)
    ]
    context = {
        "rows": rows,
        "current": sorted(protocol.current_consent_versions().items()),
        "centers": sorted(scope.center_codes.values()),
        "center": center or "",
    }
    return render(request, "clinical/reconsent.html", context)


def _message(error: DomainError, language: str) -> str:
    return error.message_in(language) if isinstance(error, TransitionRefused) else error.message


@login_required
@require_http_methods(["GET", "POST"])
def consent_page(request: HttpRequest, code: str) -> HttpResponse:
    """Re-consent on the current version, or record the withdrawal of consent (and what it stops)."""
    scope = scope_for(request.user)  # type: ignore[arg-type]
    subject = _subject_or_404(scope, code)
    language = _language()
    protocol = _protocol()
    facts = subject_services.subject_facts(subject, protocol)
    error = None
    action = request.POST.get("action")
    if request.method == "POST" and action in ("reconsent", "withdraw"):
        step = Step.START_SCREENING if action == "reconsent" else Step.WITHDRAW
        acting = _acting(request, scope, subject, step, f"{step.value} (consent {action})")
        if isinstance(acting, HttpResponse):
            return acting
        try:
            signed_on = date.fromisoformat(request.POST.get("date", ""))
        except ValueError:
            error = translation.gettext("Give the date (YYYY-MM-DD).")
        else:
            if action == "withdraw" and request.POST.get("confirm") != "yes":
                error = translation.gettext("Tick the confirmation: the withdrawal ends the participation.")
        if error is None:
            try:
                if action == "reconsent":
                    subject_services.consent_reconsent(
                        actor=acting,
                        user=request.user,  # type: ignore[arg-type]
                        subject=subject,
                        protocol=protocol,
                        language=request.POST.get("language", "fr"),
                        signed_on=signed_on,
                    )
                else:
                    subject_services.consent_withdraw(
                        actor=acting,
                        user=request.user,  # type: ignore[arg-type]
                        subject=subject,
                        protocol=protocol,
                        withdrawn_on=signed_on,
                        reason=request.POST.get("reason", ""),
                        ui_language=language,
                    )
            except DomainError as refused:
                error = _message(refused, language)
            else:
                return redirect("subjects:detail", code=subject.code)
    # The reverse one-to-one raises an AttributeError subclass when there is no withdrawal.
    withdrawal = getattr(subject, "consent_withdrawal", None)
    context = {
        "subject": subject,
        "consents": list(subject.consents.all()),
        "consent_current": facts.consent_current,
        "current": sorted(protocol.current_consent_versions().items()),
        "withdrawal": withdrawal,
        "final": is_final(State(subject.state)),
        "error": error,
        "today": clock.now().astimezone(ZoneInfo(subject.center.time_zone)).date().isoformat(),
    }
    return render(request, "clinical/consent.html", context, status=422 if error else 200)
