"""API of long jobs: the reader's jobs, one job (progress, result, error), its file, and a request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status

from cartrial.apps import text
from cartrial.apps.access import actor_somewhere, require_somewhere
from cartrial.apps.jobs import selectors, services
from cartrial.apps.jobs.presenters import job_document
from cartrial.apps.jobs.registry import job_kind
from cartrial.apps.jobs.views import LIST_SIZE, file_response
from cartrial.domain.roles import Action

router = Router(tags=["jobs"])


class JobIn(Schema):
    kind: str
    parameters: dict[str, Any] = {}


@router.get("", summary="Your jobs (every job of the study for the sponsor's roles), newest first")
def jobs_list(request: HttpRequest, status: str | None = None) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    language = text.api_language(request)
    jobs = selectors.jobs_for(scope, status=status).defer("parameters")[:LIST_SIZE]
    return {"jobs": [job_document(j, language, detail=False) for j in jobs]}


@router.post("", response={202: dict[str, Any]}, summary="Request a job of a registered kind (queued)")
def job_request(request: HttpRequest, payload: JobIn) -> Status[dict[str, Any]]:
    kind = job_kind(payload.kind)
    actor = actor_somewhere(request.user, kind.action, "jobs")
    job = services.job_enqueue(actor=actor, kind=kind.code, parameters=payload.parameters)
    return Status(202, job_document(job, text.api_language(request)))


@router.get("/{job_id}", summary="One job: status, progress (percent, message), result or error")
def job_get(request: HttpRequest, job_id: int) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return job_document(selectors.job_get(scope, job_id), text.api_language(request))


@router.get("/{job_id}/file", summary="The file a job produced (a plot, a plan)")
def job_file(request: HttpRequest, job_id: int) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_JOBS, "jobs")
    return file_response(selectors.job_file(scope, job_id))
