"""Pages: a subject's time courses, the study dashboard, the safety dashboard. Each reads through the
one access entry point."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.dashboards import plots, selectors
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.dashboards import (
    AE_GRADES,
    DLT_DECISION_LABELS,
    DLT_DECISIONS,
    EPISODE_GRADES,
    FLOW_LABELS,
    FLOW_STAGES,
    PANELS,
)
from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action
from cartrial.domain.safety.sae_clock import REPORT_KIND_LABELS, ReportKind
from cartrial.domain.safety.terms import AESI_LABELS, AesiCategory, term_list
from cartrial.domain.toxicity import KIND_LABELS, ToxicityKind


def time_course_plots(courses: selectors.TimeCourses) -> list[str]:
    """One plot per panel (CAR-T, B cells, ..., prednisone), each with its series and the episode bands."""
    panels: dict[str, plots.TimeCoursePlot] = {}
    for series in courses.series:
        panel = panels.get(series.panel)
        if panel is None:
            panel = panels[series.panel] = plots.TimeCoursePlot(
                div_id=f"time-course-{series.panel}",
                title=_(PANELS[series.panel]),
                y_title=_(unit_label(series.unit)),
                log=series.log,
            )
        panel.add_series(series)
    for panel in panels.values():
        for band in courses.bands:
            panel.add_band(band)
    return [panel.html() for panel in panels.values()]


@login_required
@require_GET
def time_courses(request: HttpRequest, code: str) -> HttpResponse:
    """A subject's markers, disease activity and prednisone over days since infusion."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    courses = selectors.subject_time_courses(reach.subject, protocol_in_force(), clock.now())
    context = {
        "subject": reach.subject,
        "courses": courses,
        "plots": time_course_plots(courses) if courses.infused_on else [],
    }
    return render(request, "dashboards/time_courses.html", context)


@login_required
@require_GET
def study(request: HttpRequest) -> HttpResponse:
    """Inclusions per center, the flow, DORIS / LLDAS per visit and the swimmer plot of the user's centers."""
    scope = require_somewhere(request.user, Action.READ_STUDY_DASHBOARD, "study_dashboard")
    dashboard = selectors.study_dashboard(scope, protocol_in_force(), clock.now())
    context = {
        "dashboard": dashboard,
        "flow": [(stage, _(FLOW_LABELS[stage]), dashboard.flow[stage]) for stage in FLOW_STAGES],
        "swimmers": [(row, _(STATE_LABELS[State(row.state)])) for row in dashboard.swimmers],
        "inclusions_plot": plots.inclusions_plot(dashboard.inclusions),
        "flow_plot": plots.flow_plot(dashboard.flow),
        "rates_plot": plots.rates_plot(dashboard.rates),
        "swimmer_plot": plots.swimmer_plot(dashboard.swimmers),
    }
    return render(request, "dashboards/study.html", context)


def _term_label(code: str) -> str:
    term = term_list().terms.get(code)
    return term.label_in(get_language() or "fr") if term else code


def _rule_label(labels: Mapping[str, Mapping[str, str]], code: str, language: str) -> str:
    """A DLT rule's label from the protocol file, in the reader's language (English, else its code)."""
    label = labels.get(code, {})
    return label.get(language) or label.get("en") or code


@login_required
@require_GET
def safety(request: HttpRequest) -> HttpResponse:
    """AEs by term and grade, AESI, CRS / ICANS by maximum grade, SAE reports due and the DLT window
    of the subjects of the user's safety centers; pseudonymous codes only."""
    scope = require_somewhere(request.user, Action.READ_SAFETY, "safety_dashboard")
    dashboard = selectors.safety_dashboard(scope, protocol_in_force(), clock.now())
    language = (get_language() or "fr")[:2]
    term_labels = [_term_label(row.term) for row in dashboard.terms]
    kind_labels = [_(KIND_LABELS[ToxicityKind(row.kind)]) for row in dashboard.episodes]
    context = {
        "dashboard": dashboard,
        "terms": [
            (row, label, _(AESI_LABELS[AesiCategory(row.aesi)]) if row.aesi else "")
            for row, label in zip(dashboard.terms, term_labels, strict=True)
        ],
        "grades": AE_GRADES,
        "episode_grades": EPISODE_GRADES,
        "aesi": [(row, _(AESI_LABELS[AesiCategory(row.category)])) for row in dashboard.aesi],
        "episodes": list(zip(dashboard.episodes, kind_labels, strict=True)),
        "clocks": [
            (row, _term_label(row.term), _(REPORT_KIND_LABELS[ReportKind(row.kind)])) for row in dashboard.clocks
        ],
        "dlt": [
            (
                row,
                [
                    (
                        fact,
                        _term_label(fact.term),
                        dashboard.dlt_rules[fact.rule].get(
                            language, dashboard.dlt_rules[fact.rule].get("en", fact.rule)
                        ),
                        _(DLT_DECISION_LABELS[fact.decision]),
                    )
                    for fact in row.candidates
                ],
            )
            for row in dashboard.dlt
        ],
        "dlt_totals": {d: sum(row.count(d) for row in dashboard.dlt) for d in DLT_DECISIONS},
        "adverse_events_plot": plots.adverse_events_plot(dashboard.terms, term_labels),
        "episodes_plot": plots.episodes_plot(dashboard.episodes, kind_labels),
    }
    return render(request, "dashboards/safety.html", context)
