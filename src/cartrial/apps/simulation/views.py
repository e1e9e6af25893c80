"""The simulation page (issue 11): the sponsor's roles run a short simulation of the trial network in
the request and read the summary and the plots (PNG inline). No patient data is shown or read."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import require_somewhere
from cartrial.apps.simulation.forms import PAGE_MAXIMUM_MONTHS, PAGE_MAXIMUM_REPLICATIONS, SimulationForm
from cartrial.apps.simulation.runs import SimulationRequest, run_simulation, simulation_parameters
from cartrial.apps.text import render as render_text
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.simulation import SimulationResult
from cartrial.domain.simulation.figures import PLOTS, POLICY_LABELS
from cartrial.domain.simulation.model import BRANCHES
from cartrial.domain.text import N_

BRANCH_LABELS = {
    "remanufacture": N_("Failed batches: remanufactured"),
    "re_apheresis": N_("Failed batches: new apheresis"),
    "no_infusion": N_("Failed batches: no infusion"),
}
PLOT_TITLES = {
    "queue_length": N_("Patients waiting for apheresis"),
    "line_use": N_("Manufacturing lines in use"),
    "bed_use": N_("Infusions per week at each center"),
    "inclusion_to_infusion_days": N_("Days from inclusion to infusion"),
}


def _figure(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_rows(result: SimulationResult) -> list[tuple[str, list[str]]]:
    """The summary table: one row per figure (translated label), one value per policy."""
    s = result.summaries
    rows = [
        (_("Patients screened (mean)"), [_figure(x.arrivals_mean) for x in s]),
        (_("Screen failures (mean)"), [_figure(x.screen_failures_mean) for x in s]),
        (_("Infused (mean)"), [_figure(x.infused_mean) for x in s]),
        (_("Infused per month"), [_figure(x.infused_per_month_mean, 2) for x in s]),
        (_("No infusion (mean)"), [_figure(x.no_infusion_mean) for x in s]),
        (_("In progress at the end (mean)"), [_figure(x.in_progress_mean) for x in s]),
        (_("Days from inclusion to infusion, median"), [_figure(x.median_days) for x in s]),
        (_("Days from inclusion to infusion, 90th percentile"), [_figure(x.p90_days) for x in s]),
        (
            _("Days from inclusion to infusion, median of the urgent patients"),
            [_figure(x.urgent_median_days) for x in s],
        ),
        (_("Patients waiting for apheresis (mean)"), [_figure(x.queue_mean) for x in s]),
    ]
    rows += [(_(BRANCH_LABELS[b]), [str(x.failures[b]) for x in s]) for b in BRANCHES]
    rows += [
        (_("Line use at %(facility)s") % {"facility": f.id}, [f"{x.line_utilisation[f.id]:.0%}" for x in s])
        for f in result.parameters.facilities
    ]
    rows += [
        (_("Bed use at %(center)s") % {"center": c.id}, [f"{x.bed_utilisation[c.id]:.0%}" for x in s])
        for c in result.parameters.centers
    ]
    return rows


def plot_images(result: SimulationResult) -> list[tuple[str, str]]:
    """Each plot as (title, PNG data URI), its texts in the reader's language."""
    return [
        (_(PLOT_TITLES[name]), "data:image/png;base64," + base64.b64encode(draw(result, _)).decode("ascii"))
        for name, draw in PLOTS.items()
    ]


@login_required
@require_http_methods(["GET", "POST"])
def simulation(request: HttpRequest) -> HttpResponse:
    """GET: the form with the protocol's defaults; POST: run it and show the summary and the plots."""
    require_somewhere(request.user, Action.RUN_SIMULATION, "simulation")
    defaults = simulation_parameters(SimulationRequest())
    form = SimulationForm(request.POST or None, defaults=defaults)
    context: dict[str, Any] = {
        "form": form,
        "maximum_months": PAGE_MAXIMUM_MONTHS,
        "maximum_replications": PAGE_MAXIMUM_REPLICATIONS,
    }
    if request.method == "POST" and form.is_valid():
        try:
            result = run_simulation(
                SimulationRequest(
                    overrides=form.overrides(),
                    seed=form.cleaned_data["seed"],
                    replications=form.cleaned_data["replications"],
                    policies=form.policies(),
                )
            )
        except InvalidInput as error:
            form.add_error(None, render_text(error.message))
        else:
            context.update(
                result=result,
                policies=[_(POLICY_LABELS[x.policy]) for x in result.summaries],
                rows=summary_rows(result),
                plots=plot_images(result),
            )
    return render(request, "simulation/page.html", context)
