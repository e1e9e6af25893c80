"""Pages: a subject's kinetics (flags, plots, results), its panel on the subject page, entry, import, cohort.

Adapters only: the subject is reached through the scoped selector (404 outside the user's
scope); entering results needs the authority of the follow-up steps (investigator or
coordinator of the subject's center), checked by the access module; sponsor roles read the
same pages pseudonymously (subject codes only, no identity is ever shown here).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import Reach, can, reach_subject, scope_for
from cartrial.apps.biology import plots, selectors, services
from cartrial.apps.biology.entries import CSV_COLUMNS, parse_csv
from cartrial.apps.biology.forms import ImportForm, SampleForm
from cartrial.apps.biology.presenters import MARKER_TITLES, NOT_USED_REASONS, flag_views
from cartrial.apps.text import error_text
from cartrial.domain.errors import DomainError
from cartrial.domain.kinetics import OBSERVED_MARKERS
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action


def _marker_plots(kinetics: selectors.SubjectKinetics, *, compact: bool, prefix: str) -> list[dict[str, Any]]:
    assessment = kinetics.assessment
    if assessment is None:
        return []
    rows = kinetics.usable_rows
    population = assessment.population.band
    fit = assessment.fit
    x_max = plots.x_limit(rows, float(population.days[-1]), minimum=60.0 if compact else 120.0)
    return [
        {
            "marker": marker,
            "html": plots.subject_marker_plot(
                marker,
                [row for row in rows if row.marker == marker],
                population=population,
                fitted=fit.band if fit.converged else None,
                expected=fit.expected[marker] if fit.converged and fit.expected is not None else None,
                x_max=x_max,
                div_id=f"{prefix}-{marker}",
                height=210 if compact else 330,
                legend=not compact,
            ),
        }
        for marker in OBSERVED_MARKERS
    ]


def _kinetics_context(reach: Reach, *, compact: bool) -> dict[str, Any]:
    subject = reach.subject
    kinetics = selectors.subject_kinetics(subject=subject)
    assessment = kinetics.assessment
    zone = ZoneInfo(subject.center.time_zone)
    return {
        "subject": subject,
        "scope": reach.scope,
        "state_label": gettext(STATE_LABELS[State(subject.state)]),
        "kinetics": kinetics,
        "assessment": assessment,
        "fit": assessment.fit if assessment else None,
        "flags": flag_views(assessment.flags) if assessment else [],
        "plots": _marker_plots(kinetics, compact=compact, prefix="panel" if compact else "kinetics"),
        "rows": [
            {
                "row": row,
                "title": gettext(MARKER_TITLES[row.marker]) if row.marker in MARKER_TITLES else row.marker,
                "not_used": NOT_USED_REASONS.get(row.not_used_because, ""),
            }
            for row in reversed(kinetics.rows)
        ],
        "time_zone": zone.key,
        "today_day": kinetics.days_since_infusion,
        "can_enter": can(reach.scope, Action.ENTER_KINETIC_RESULTS, subject),
        "population": assessment.population if assessment else None,
    }


@login_required
def subject_kinetics_page(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "biology/subject.html", _kinetics_context(reach_subject(request.user, code), compact=False))


@login_required
def subject_panel(request: HttpRequest, code: str) -> HttpResponse:
    """The subject page's panel, fetched by htmx after the page is shown (the fit costs ~0.5 s)."""
    reach = reach_subject(request.user, code)
    return render(request, "biology/_panel_content.html", _kinetics_context(reach, compact=True))


def _recorded_message(request: HttpRequest, result: services.KineticsRecorded) -> None:
    text = _("%(n)d result(s) recorded.") % {"n": len(result.recorded)}
    if result.skipped_duplicates:
        text += " " + _("%(n)d already recorded, skipped.") % {"n": result.skipped_duplicates}
    messages.success(request, text, extra_tags="ok")


@login_required
@require_http_methods(["GET", "POST"])
def observation_entry(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code, Action.ENTER_KINETIC_RESULTS, record=request.method == "POST")
    subject = reach.subject
    preset = selectors.kinetics_preset()
    form = SampleForm(request.POST if request.method == "POST" else None, preset=preset)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            entries = form.entries(ZoneInfo(subject.center.time_zone))
            result = reach.run(
                lambda: services.kinetic_observations_record(actor=reach.actor, subject=subject, entries=entries)
            )
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            _recorded_message(request, result)
            return redirect("biology:subject", code=subject.code)
    context = {
        "subject": subject,
        "form": form,
        "error": error,
        "time_zone": subject.center.time_zone,
        "rows": form.marker_rows(),
    }
    return render(request, "biology/entry.html", context, status=422 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def observation_import(request: HttpRequest, code: str) -> HttpResponse:
    reach = reach_subject(request.user, code, Action.ENTER_KINETIC_RESULTS, record=request.method == "POST")
    subject = reach.subject
    posted = request.method == "POST"
    form = ImportForm(request.POST if posted else None, request.FILES if posted else None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            entries = parse_csv(
                form.content(),
                subject_code=subject.code,
                preset=selectors.kinetics_preset(),
                zone=ZoneInfo(subject.center.time_zone),
            )
            result = reach.run(
                lambda: services.kinetic_observations_record(actor=reach.actor, subject=subject, entries=entries)
            )
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            _recorded_message(request, result)
            return redirect("biology:subject", code=subject.code)
    context = {
        "subject": subject,
        "form": form,
        "error": error,
        "columns": ",".join(CSV_COLUMNS),
        "example": render_to_string("biology/_csv_example.txt", {"code": subject.code}),
        "time_zone": subject.center.time_zone,
    }
    return render(request, "biology/import.html", context, status=422 if error else 200)


@login_required
def cohort_page(request: HttpRequest) -> HttpResponse:
    """The trial's infused patients in the user's scope against the prior and each other."""
    scope = scope_for(request.user)
    chosen = request.GET.get("center") or None
    center = chosen if chosen in scope.center_codes.values() else None
    cohort = selectors.cohort_kinetics(scope=scope, center_code=center)
    band = cohort.population.band
    with_data = [patient for patient in cohort.patients if any(patient.series.values())]
    all_rows = [row for patient in with_data for rows in patient.series.values() for row in rows]
    x_max = plots.x_limit(all_rows, float(band.days[-1]), minimum=180.0)
    figures = []
    if with_data:
        figures = [
            plots.cohort_marker_plot(marker, with_data, population=band, x_max=x_max, div_id=f"cohort-{marker}")
            for marker in ("b_cells", "anti_dsdna", "car_t")
        ]
    context = {
        "patients": [
            {
                "patient": patient,
                "state_label": gettext(STATE_LABELS[State(patient.subject.state)]),
                "raised": flag_views(patient.raised),
                "count": sum(len(rows) for rows in patient.series.values()),
            }
            for patient in cohort.patients
        ],
        "figures": figures,
        "peak_plot": plots.peak_plot(with_data, cohort.preset, div_id="cohort-peak") if with_data else "",
        "reappearance_plot": plots.reappearance_plot(
            with_data, cohort.population.reappearance, div_id="cohort-reappearance"
        )
        if with_data
        else "",
        "reappearance": cohort.population.reappearance,
        "population_patients": cohort.population.patients,
        "preset": cohort.preset.name,
        "centers": sorted(scope.center_codes.values()),
        "center": center or "",
    }
    return render(request, "biology/cohort.html", context)
