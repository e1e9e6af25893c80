"""Job pages: the list (one's own jobs; every job for the sponsor's roles) with the kinds one may
start, a job's page with its progress bar (htmx polls the fragment until the job ends), its file."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from cartrial.apps import text
from cartrial.apps.access import actor_somewhere, centers_for, require_somewhere
from cartrial.apps.jobs import selectors, services
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.presenters import STATUS_LABELS, job_view
from cartrial.apps.jobs.registry import job_kind, job_kinds
from cartrial.domain.errors import AccessDenied, DomainError, NotFound
from cartrial.domain.roles import Action

LIST_SIZE = 200


@login_required
@require_http_methods(["GET", "POST"])
def job_list(request: HttpRequest) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    error = ""
    if request.method == "POST":
        try:
            kind = job_kind(request.POST.get("kind", ""))
            actor = actor_somewhere(request.user, kind.action, "jobs")
            job = services.job_enqueue(actor=actor, kind=kind.code, parameters={})
        except (AccessDenied, NotFound):
            raise
        except DomainError as refusal:
            error = text.error_text(refusal)
        else:
            return redirect("jobs:detail", job_id=job.pk)
    status = request.GET.get("status") or None
    status = status if status in Job.Status.values else None
    return render(
        request,
        "jobs/list.html",
        {
            "rows": [job_view(j) for j in selectors.jobs_for(scope, status=status).defer("parameters")[:LIST_SIZE]],
            "status": status or "",
            "statuses": [(value, text.tr(STATUS_LABELS[value])) for value in Job.Status.values],
            "startable": [(k.code, k.label) for k in job_kinds() if k.offered and centers_for(scope, k.action)],
            "study_wide": selectors.reads_study_jobs(scope),
            "error": error,
        },
    )


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return render(request, "jobs/detail.html", {"v": job_view(selectors.job_get(scope, job_id), detail=True)})


@login_required
@require_GET
def job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress fragment htmx polls every two seconds; it stops polling once the job ended."""
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return render(request, "jobs/_progress.html", {"v": job_view(selectors.job_get(scope, job_id), detail=True)})


@login_required
@require_GET
def job_file(request: HttpRequest, job_id: int) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return file_response(selectors.job_file(scope, job_id))


def file_response(job: Job) -> HttpResponse:
    """A job's file as a download (pages and the API)."""
    response = HttpResponse(
        bytes(job.result_file or b""), content_type=job.result_file_type or "application/octet-stream"
    )
    response["Content-Disposition"] = f'attachment; filename="{job.result_file_name}"'
    return response
