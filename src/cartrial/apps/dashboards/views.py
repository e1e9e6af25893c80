"""Pages: a subject's time courses, the study dashboard. Both read through the one access entry point."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.dashboards import plots, selectors
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.dashboards import FLOW_LABELS, FLOW_STAGES, PANELS
from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action


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
    courses = selectors.subject_time_courses(reach.subject, protocol_in_force())
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
