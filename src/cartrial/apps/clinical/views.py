"""Pages: screening data with the live verdict, calculators, screening log (CSV), CONSORT flow, re-consent list.

Adapters only: reach the subject through the access entry point, call one selector or service,
render. The consent page (re-consent, withdrawal that exits the study) is the pathway's.
"""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import Scope, reach_subject, require_somewhere
from cartrial.apps.clinical import selectors, services
from cartrial.apps.clinical.forms import CalculatorForm, ScreeningForm, screening_initial
from cartrial.apps.text import current_language, error_text, value_text
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.errors import DomainError
from cartrial.domain.lab_catalogue import ANALYTES
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.registry import (
    CALCULATORS,
    RESULT_LABELS,
    Calculator,
    calculate,
    calculate_readable,
    result_label,
)
from cartrial.domain.screening import SCREENING_FIELDS
from cartrial.domain.standards.tables import spreadsheet_safe
from cartrial.domain.text import N_, Message, label, protocol_text, render_value
from cartrial.locale import render as render_message
from cartrial.locale import translator
from cartrial.protocols import Protocol

SCREENING_EDIT_STATES = frozenset({State.SCREENING.value, State.ELIGIBLE.value})


def _criteria_rows(protocol: Protocol, verdict: dict[str, Any], language: str) -> list[dict[str, Any]]:
    texts = {c.id: protocol_text(c.text, language) for c in protocol.criteria}
    return [dict(row, text=texts.get(row["id"], "")) for row in verdict.get("criteria", [])]


# --- screening data and verdict -------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def screening_page(request: HttpRequest, code: str) -> HttpResponse:
    """Screening data in, verdict out: htmx posts on every change for a live preview; "save" stores."""
    saving = request.method == "POST" and request.POST.get("save") == "1"
    reach = reach_subject(request.user, code, Action.ENTER_SCREENING_DATA if saving else Action.READ_SCREENING)
    subject = reach.subject
    language = current_language()
    protocol = protocol_in_force()
    tz = subject.center.time_zone
    record = selectors.screening_record_get(subject=subject)
    stored_labs = selectors.screening_labs(subject=subject)
    if request.method == "POST":
        form = ScreeningForm(request.POST, protocol=protocol, language=language)
    else:
        form = ScreeningForm(initial=screening_initial(record, stored_labs, tz), protocol=protocol, language=language)
    error = None
    evaluation = None
    if saving and form.is_valid():
        try:
            reach.run(
                lambda: services.screening_record(
                    actor=reach.actor,
                    subject=subject,
                    protocol=protocol,
                    data=form.screening_data(),
                    labs=form.lab_inputs(tz),
                    attestations=form.attestations(),
                    reason=form.cleaned_data.get("reason") or "",
                ),
                what="enter_screening_data",
            )
        except CalculatorInputError as refused:
            for entry in refused.field_errors:
                name = entry["field"].split("[")[0]
                form.add_error(name if name in form.fields else None, entry["message"])
        except DomainError as refused:
            if refused.item and refused.item in form.fields:
                form.add_error(refused.item, error_text(refused))
            else:
                error = error_text(refused)
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
            error = error_text(refused)
    elif request.method == "GET":
        evaluation = selectors.screening_evaluation(subject=subject, protocol=protocol)
    preview = evaluation.as_dict() if evaluation else None
    context = {
        "stored_labs": [
            {"row": lab, "label": gettext(ANALYTES[lab.analyte].label) if lab.analyte in ANALYTES else lab.analyte}
            for lab in selectors.screening_lab_rows(subject=subject)
        ],
        "stored_items": _stored_items(record),
        "consents": list(subject.consents.order_by("signed_on", "pk")),
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
    return render(request, "clinical/screening.html", context, status=status)


def _stored_items(record: Any) -> list[dict[str, Any]]:
    """The saved screening items as a reader sees them (label, value), for their "Correct" controls."""
    if record is None:
        return []
    rows = []
    for name, spec in SCREENING_FIELDS.items():
        value = record.data_json.get(name)
        if value is None:
            shown = gettext("Not assessed")
        elif isinstance(value, list):
            shown = ", ".join(gettext(clinical_label(str(v))) for v in value) or gettext("none")
        elif isinstance(value, str):
            shown = gettext(clinical_label(value))
        else:
            shown = value_text(value)
        rows.append({"name": name, "label": gettext(spec.description), "value": shown})
    return rows


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
        many = value if isinstance(value, list) and not all(isinstance(item, int | float) for item in value) else None
        rows.append(
            {
                "key": key,
                "label": translate(result_label(calculator, key)),
                "contract": key in calculator.outputs,
                "items": None if many is None else [_shown(item, calculator, language) for item in many],
                "value": _shown(value, calculator, language) if many is None else None,
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
    language = current_language()
    form = CalculatorForm(request.POST if request.method == "POST" else None, inputs=dict(calculator.inputs))
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
    "in_screening": N_("In screening"),
    "screen_failed": N_("Screen failed"),
    "eligible": N_("Eligible, not yet included"),
    "included": N_("Included"),
    "exited_before_inclusion": N_("Left before inclusion"),
}


def _center_filter(request: HttpRequest, scope: Scope) -> str | None:
    chosen = request.GET.get("center") or None
    return chosen if chosen in scope.center_codes.values() else None


@login_required
def screening_log_page(request: HttpRequest) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_SCREENING, "screening_log")
    language = current_language()
    center = _center_filter(request, scope)
    protocol = protocol_in_force()
    texts = {c.id: protocol_text(c.text, language) for c in protocol.criteria}
    rows = [
        {
            "row": row,
            "outcome_label": gettext(OUTCOME_LABELS[row.outcome]),
            "state_label": gettext(STATE_LABELS[State(row.state)]),
            "failed": [(criterion, texts.get(criterion, criterion)) for criterion in row.failed_criteria],
        }
        for row in selectors.screening_log(scope=scope, center_code=center)
    ]
    context = {"rows": rows, "centers": sorted(scope.center_codes.values()), "center": center or ""}
    return render(request, "clinical/screening_log.html", context)


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet will not execute (formula injection)."""
    return spreadsheet_safe(str(value))


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
    scope = require_somewhere(request.user, Action.READ_SCREENING, "screening_log")
    return screening_log_csv(scope, _center_filter(request, scope))


@login_required
def consort_page(request: HttpRequest) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_SCREENING, "consort")
    language = current_language()
    center = _center_filter(request, scope)
    flow = selectors.consort_flow(scope=scope, center_code=center)
    texts = {c.id: protocol_text(c.text, language) for c in protocol_in_force().criteria}
    reasons = [(criterion, texts.get(criterion, criterion), count) for criterion, count in flow.failed_by_criterion]
    context = {"flow": flow, "reasons": reasons, "centers": sorted(scope.center_codes.values()), "center": center or ""}
    return render(request, "clinical/consort.html", context)


# --- consent: the re-consent list ----------------------------------------------------------------


@login_required
def reconsent_list(request: HttpRequest) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_SCREENING, "reconsent")
    protocol = protocol_in_force()
    center = _center_filter(request, scope)
    rows = [
        {"row": row, "state_label": gettext(STATE_LABELS[State(row.subject.state)])}
        for row in selectors.consent_reconsent_list(scope=scope, protocol=protocol, center_code=center)
    ]
    context = {
        "rows": rows,
        "current": sorted(protocol.current_consent_versions().items()),
        "centers": sorted(scope.center_codes.values()),
        "center": center or "",
    }
    return render(request, "clinical/reconsent.html", context)
