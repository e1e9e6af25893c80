"""The simulation page (issue 11): the sponsor's roles run a short simulation of the trial network in
the request and read the summary and the plots (PNG inline). No patient data is shown or read."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cartrial.apps.access import actor_somewhere, require_somewhere
from cartrial.apps.jobs.selectors import job_file, job_get
from cartrial.apps.jobs.services import job_enqueue
from cartrial.apps.simulation.forms import PAGE_MAXIMUM_MONTHS, PAGE_MAXIMUM_REPLICATIONS, SimulationForm
from cartrial.apps.simulation.jobs import SIMULATE_NETWORK, plots_read
from cartrial.apps.simulation.runs import (
    SimulationRequest,
    run_simulation,
    simulation_parameters,
    simulation_request_to_json,
)
from cartrial.apps.text import render as render_text
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.simulation import SimulationResult
from cartrial.domain.simulation.figures import PLOTS, POLICY_LABELS
from cartrial.domain.simulation.model import BRANCHES, result_document
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


def summary_rows(document: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The summary table from the result's JSON document (the page's run, a background job's
    result): one row per figure (translated label), one value per policy."""
    s = list(document["policies"].values())
    rows = [
        (_("Patients screened (mean)"), [_figure(x["arrivals_mean"]) for x in s]),
        (_("Screen failures (mean)"), [_figure(x["screen_failures_mean"]) for x in s]),
        (_("Infused (mean)"), [_figure(x["infused_mean"]) for x in s]),
        (_("Infused per month"), [_figure(x["infused_per_month_mean"], 2) for x in s]),
        (_("No infusion (mean)"), [_figure(x["no_infusion_mean"]) for x in s]),
        (_("In progress at the end (mean)"), [_figure(x["in_progress_mean"]) for x in s]),
        (_("Days from inclusion to infusion, median"), [_figure(x["median_days_inclusion_to_infusion"]) for x in s]),
        (
            _("Days from inclusion to infusion, 90th percentile"),
            [_figure(x["p90_days_inclusion_to_infusion"]) for x in s],
        ),
        (
            _("Days from inclusion to infusion, median of the urgent patients"),
            [_figure(x["urgent_median_days_inclusion_to_infusion"]) for x in s],
        ),
        (_("Patients waiting for apheresis (mean)"), [_figure(x["queue_mean"]) for x in s]),
    ]
    rows += [(_(BRANCH_LABELS[b]), [str(x["failures"][b]) for x in s]) for b in BRANCHES]
    first = s[0] if s else {"line_utilisation": {}, "bed_utilisation": {}}
    rows += [
        (_("Line use at %(facility)s") % {"facility": f}, [f"{x['line_utilisation'][f]:.0%}" for x in s])
        for f in first["line_utilisation"]
    ]
    rows += [
        (_("Bed use at %(center)s") % {"center": c}, [f"{x['bed_utilisation'][c]:.0%}" for x in s])
        for c in first["bed_utilisation"]
    ]
    return rows


def policy_labels(document: Mapping[str, Any]) -> list[str]:
    """The policies' column heads, in the reader's language."""
    return [_(POLICY_LABELS[p]) for p in document["policies"]]


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
    form = SimulationForm(request.POST if request.method == "POST" else None, defaults=defaults)
    context: dict[str, Any] = {
        "form": form,
        "maximum_months": PAGE_MAXIMUM_MONTHS,
        "maximum_replications": PAGE_MAXIMUM_REPLICATIONS,
    }
    if request.method == "POST" and form.is_valid():
        simulation_request = SimulationRequest(
            overrides=form.overrides(),
            seed=form.cleaned_data["seed"],
            replications=form.cleaned_data["replications"],
            policies=form.policies(),
        )
        try:
            if form.cleaned_data["background"]:
                actor = actor_somewhere(request.user, Action.RUN_SIMULATION, "simulation")
                job = job_enqueue(
                    actor=actor, kind=SIMULATE_NETWORK, parameters=simulation_request_to_json(simulation_request)
                )
                return redirect("jobs:detail", job_id=job.pk)
            result = run_simulation(simulation_request)
        except InvalidInput as error:
            form.add_error(None, render_text(error.message))
        else:
            context.update(
                result=result,
                policies=policy_labels(result_document(result)),
                rows=summary_rows(result_document(result)),
                plots=plot_images(result),
            )
    return render(request, "simulation/page.html", context)


@login_required
@require_http_methods(["GET"])
def job_result(request: HttpRequest, job_id: int) -> HttpResponse:
    """A finished `simulate_network` job: its summary table and plots (in the reader's language,
    from the job's file); a job not yet finished sends the reader to its progress page."""
    scope = require_somewhere(request.user, Action.RUN_SIMULATION, "simulation")
    job = job_get(scope, job_id)
    if job.kind != SIMULATE_NETWORK:
        raise NotFound("No simulation {job} in your scope.", code="not_found", job=job_id)
    if job.status != job.Status.DONE:
        return redirect("jobs:detail", job_id=job.pk)
    document = job.result or {}
    plots = plots_read(bytes(job_file(scope, job.pk).result_file or b""), (get_language() or "en")[:2])
    return render(
        request,
        "simulation/job_result.html",
        {
            "job": job,
            "document": document,
            "policies": policy_labels(document),
            "rows": summary_rows(document),
            "plots": [
                (_(PLOT_TITLES[name]), "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
                for name, png in plots.items()
            ],
        },
    )
