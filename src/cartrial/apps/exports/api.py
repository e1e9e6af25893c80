"""API of the exports: request one (a background job, 202), follow one's own, download the file.

The same rules as the page: `Action.EXPORT_DATA` somewhere, the requester's access resolved when
asking, the file served to its requester only, with its SHA-256 in `X-Content-SHA256`.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from ninja import Query, Router, Schema, Status

from cartrial.apps import text
from cartrial.apps.access import actor_somewhere, require_somewhere
from cartrial.apps.api_contract import Page, PageQuery, paged
from cartrial.apps.exports.request import ExportFormat
from cartrial.apps.exports.selectors import EXPORT_KIND, export_file, export_get, exports_of
from cartrial.apps.jobs import services
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.presenters import progress_text, summary_text
from cartrial.domain.roles import Action

router = Router(tags=["exports"])


class ExportIn(Schema):
    format: ExportFormat
    centers: list[str] = []
    subject: str | None = None
    since: str | None = None


class ExportOut(Schema):
    id: int
    format: str
    centers: list[str]
    subject: str | None
    since: str | None
    status: str
    progress_percent: int
    progress: str
    summary: str
    requested_at: datetime
    finished_at: datetime | None
    subjects: int | None
    records: int | None
    size: int | None
    sha256: str | None
    file_url: str | None


def _export_out(job: Job, language: str) -> ExportOut:
    parameters = job.parameters if isinstance(job.parameters, dict) else {}
    result = job.result if isinstance(job.result, dict) else {}
    done = job.status == Job.Status.DONE
    return ExportOut(
        id=job.pk,
        format=str(parameters.get("format", "")),
        centers=list(parameters.get("centers", [])),
        subject=parameters.get("subject"),
        since=parameters.get("since"),
        status=job.status,
        progress_percent=job.progress_percent,
        progress=progress_text(job, language),
        summary=summary_text(job, language),
        requested_at=job.created_at,
        finished_at=job.finished_at,
        subjects=result.get("subjects") if done else None,
        records=result.get("records") if done else None,
        size=result.get("size") if done else None,
        sha256=result.get("sha256") if done else None,
        file_url=reverse("api:export_download", kwargs={"job_id": job.pk}) if done else None,
    )


@router.post("", response={202: ExportOut}, summary="Request an export (a background job)")
def export_request(request: HttpRequest, payload: ExportIn) -> Status[ExportOut]:
    actor = actor_somewhere(request.user, Action.EXPORT_DATA, "exports")
    parameters = {"format": payload.format.value, "centers": payload.centers, "subject": payload.subject}
    parameters["since"] = payload.since
    job = services.job_enqueue(actor=actor, kind=EXPORT_KIND, parameters=parameters)
    return Status(202, _export_out(job, text.api_language(request)))


@router.get("", response=Page[ExportOut], summary="Your exports, newest first")
def export_list(request: HttpRequest, page: Query[PageQuery]) -> Page[ExportOut]:
    scope = require_somewhere(request.user, Action.EXPORT_DATA, "exports")
    jobs = exports_of(scope)
    if page.since is not None:
        # A job is not audited as it runs: its own times say when it last changed.
        jobs = jobs.filter(Q(created_at__gt=page.since) | Q(started_at__gt=page.since) | Q(finished_at__gt=page.since))
    language = text.api_language(request)
    return paged(jobs, page, lambda job: _export_out(job, language))


@router.get("/{job_id}", response=ExportOut, summary="One of your exports: progress, SHA-256")
def export_read(request: HttpRequest, job_id: int) -> ExportOut:
    scope = require_somewhere(request.user, Action.EXPORT_DATA, "exports")
    return _export_out(export_get(scope, job_id), text.api_language(request))


@router.get(
    "/{job_id}/file",
    response={200: None},
    summary="Download your finished export (SHA-256 in X-Content-SHA256)",
)
def export_download(request: HttpRequest, job_id: int) -> FileResponse:
    scope = require_somewhere(request.user, Action.EXPORT_DATA, "exports")
    path, name, sha256 = export_file(scope, job_id)
    response = FileResponse(path.open("rb"), as_attachment=True, filename=name)
    response["X-Content-SHA256"] = sha256
    return response
