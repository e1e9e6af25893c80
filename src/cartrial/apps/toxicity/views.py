"""Pages: a subject's toxicity (daily assessment form, day-by-day grades, episodes, ICAHT) and the
correction page of one day's assessment with its history.

Adapters only: the subject is reached through the access entry point (404 outside the user's scope,
403 for a role that may not read or record); the inputs are parsed by the domain and recorded by
the services, so the page and the API refuse with the same words. Sponsor roles read the same page
pseudonymously (subject codes only: no identity is shown here).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import Reach, can, reach_subject
from cartrial.apps.text import error_text
from cartrial.apps.toxicity import plots, selectors, services
from cartrial.apps.toxicity.api import icaht_out
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.quantities import BODY_TEMPERATURE_C, ICE_SCORE_POINTS
from cartrial.domain.roles import Action
from cartrial.domain.text import N_
from cartrial.domain.toxicity import CHOICES, INPUT_NAMES, KIND_LABELS, assessment_inputs_parse

# How the inputs read on the form (msgids), in form order.
INPUT_LABELS: dict[str, str] = {
    "temperature_c": BODY_TEMPERATURE_C.label,
    "hypotension": N_("Hypotension"),
    "hypoxia": N_("Oxygen support (hypoxia)"),
    "ice_score": ICE_SCORE_POINTS.label,
    "consciousness": N_("Depressed level of consciousness"),
    "seizure": N_("Seizure"),
    "motor_weakness": N_("Motor findings"),
    "cerebral_edema": N_("Raised intracranial pressure / cerebral oedema"),
    "tocilizumab_given": N_("Tocilizumab given"),
    "corticosteroids_given": N_("Corticosteroids given"),
}


def _fields(values: dict[str, Any], error_item: str | None) -> list[dict[str, Any]]:
    """The form's fields: label, kind, unit and range (from the one declaration), choices, value."""
    fields = []
    for name in INPUT_NAMES:
        field: dict[str, Any] = {
            "name": name,
            "label": gettext(INPUT_LABELS[name]),
            "value": values.get(name),
            "error": name == error_item,
        }
        if name == "temperature_c":
            field |= {
                "kind": "number",
                "unit": "°C",
                "min": BODY_TEMPERATURE_C.minimum,
                "max": BODY_TEMPERATURE_C.maximum,
            }
            field |= {"step": "0.1", "required": True}
        elif name == "ice_score":
            field |= {"kind": "number", "unit": gettext("points (empty: not performed)"), "step": "1"}
            field |= {"min": ICE_SCORE_POINTS.minimum, "max": ICE_SCORE_POINTS.maximum, "required": False}
        elif name in CHOICES:
            field |= {
                "kind": "choice",
                "choices": [(code, gettext(text)) for code, text in CHOICES[name].items()],
                "value": values.get(name) or next(iter(CHOICES[name])),
            }
        else:
            field |= {"kind": "boolean", "value": values.get(name) in (True, "on", "true", "yes")}
        fields.append(field)
    return fields


def _posted(request: HttpRequest) -> dict[str, Any]:
    raw: dict[str, Any] = {name: request.POST.get(name, "") for name in INPUT_NAMES}
    raw["tocilizumab_given"] = "tocilizumab_given" in request.POST
    raw["corticosteroids_given"] = "corticosteroids_given" in request.POST
    return raw


def _grade_css(grade: int) -> str:
    return f"g{grade}"


def _page_context(reach: Reach, *, values: dict[str, Any], error: str, error_item: str | None) -> dict[str, Any]:
    subject = reach.subject
    protocol = protocol_in_force()
    toxicity = selectors.subject_toxicity(subject, protocol, reach.actor.now)
    by_day = {a.day: a for a in toxicity.assessments}
    last_day = max([0, *toxicity.days_due.required, *by_day])
    days = [
        {
            "day": day,
            "assessment": by_day.get(day),
            "crs_css": _grade_css(by_day[day].crs_grade) if day in by_day else "",
            "icans_css": _grade_css(by_day[day].icans_grade) if day in by_day else "",
            "due": day in toxicity.days_due.missing,
        }
        for day in range(0, last_day + 1)
        if day in by_day or day in toxicity.days_due.required
    ]
    return {
        "subject": subject,
        "toxicity": toxicity,
        "days": days,
        "episodes": [{"episode": e, "label": gettext(KIND_LABELS[e.kind])} for e in toxicity.episodes],
        "icaht": icaht_out(toxicity.icaht),
        "strip": plots.grade_strip(toxicity.assessments, last_day=last_day, missing=toxicity.days_due.missing)
        if subject.infusion_date
        else "",
        "fields": _fields(values, error_item),
        "assessed_on": values.get("assessed_on") or reach.actor.now.date().isoformat(),
        "assessed_on_error": error_item == "assessed_on",
        "error": error,
        "can_record": can(reach.scope, Action.RECORD_TOXICITY_ASSESSMENT, subject),
        "assessment_days": protocol.pathway_rules.toxicity_assessment_days,
    }


@login_required
@require_http_methods(["GET", "POST"])
def subject_page(request: HttpRequest, code: str) -> HttpResponse:
    """The toxicity page; a POST records the day's assessment (coordinators, investigators)."""
    if request.method == "GET":
        reach = reach_subject(request.user, code, Action.READ_TOXICITY, record=False)
        return render(request, "toxicity/subject.html", _page_context(reach, values={}, error="", error_item=None))
    reach = reach_subject(request.user, code, Action.RECORD_TOXICITY_ASSESSMENT)
    raw = _posted(request)
    assessed_on_text = request.POST.get("assessed_on", "").strip()
    try:

        def work() -> ToxicityAssessment:
            try:
                assessed_on = date.fromisoformat(assessed_on_text)
            except ValueError:
                raise InvalidInput(
                    "“{raw}” is not a date (YYYY-MM-DD).", code="item_type", item="assessed_on", raw=assessed_on_text
                ) from None
            return services.toxicity_assessment_record(
                actor=reach.actor,
                subject=reach.subject,
                protocol=protocol_in_force(),
                assessed_on=assessed_on,
                inputs=assessment_inputs_parse(raw),
            )

        assessment = reach.run(work, what=Action.RECORD_TOXICITY_ASSESSMENT.value)
    except DomainError as refusal:
        context = _page_context(
            reach, values=raw | {"assessed_on": assessed_on_text}, error=error_text(refusal), error_item=refusal.item
        )
        return render(
            request, "toxicity/subject.html", context, status=422 if isinstance(refusal, InvalidInput) else 409
        )
    messages.success(
        request,
        gettext("D%(day)d recorded: CRS grade %(crs)d, ICANS grade %(icans)d.")
        % {"day": assessment.day, "crs": assessment.crs_grade, "icans": assessment.icans_grade},
        extra_tags="ok",
    )
    return redirect("toxicity:subject", code=reach.subject.code)


@login_required
@require_http_methods(["GET", "POST"])
def assessment_page(request: HttpRequest, code: str, day: int) -> HttpResponse:
    """One day's assessment: its inputs and grades, its corrections (who, when, why), the correction form."""
    reader = reach_subject(request.user, code, Action.READ_TOXICITY, record=False)
    assessment = selectors.assessment_get(reader.subject, day)
    values: dict[str, Any] = assessment.inputs()
    error, error_item, reason = "", None, ""
    if request.method == "POST":
        reach = reach_subject(request.user, code, Action.CORRECT_TOXICITY_ASSESSMENT)
        values = _posted(request)
        reason = request.POST.get("reason", "")
        try:
            done = reach.run(
                lambda: services.toxicity_assessment_correct(
                    actor=reach.actor,
                    subject=reach.subject,
                    protocol=protocol_in_force(),
                    day=day,
                    inputs=assessment_inputs_parse(values),
                    reason=reason,
                ),
                what=Action.CORRECT_TOXICITY_ASSESSMENT.value,
            )
        except DomainError as refusal:
            error, error_item = error_text(refusal), refusal.item
        else:
            messages.success(
                request,
                gettext("D%(day)d corrected: CRS grade %(crs)d, ICANS grade %(icans)d.")
                % {"day": day, "crs": done.assessment.crs_grade, "icans": done.assessment.icans_grade},
                extra_tags="ok",
            )
            return redirect("toxicity:assessment", code=reach.subject.code, day=day)
    context = {
        "subject": reader.subject,
        "assessment": assessment,
        "rows": [(gettext(INPUT_LABELS[name]), value) for name, value in assessment.inputs().items()],
        "history": selectors.assessment_history(reader.subject, assessment),
        "fields": _fields(values, error_item),
        "reason": reason,
        "reason_error": error_item == "reason",
        "error": error,
        "can_correct": can(reader.scope, Action.CORRECT_TOXICITY_ASSESSMENT, reader.subject),
        "time_zone": reader.subject.center.time_zone,
    }
    return render(request, "toxicity/assessment.html", context, status=422 if error else 200)
