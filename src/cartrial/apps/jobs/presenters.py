"""A job as pages and the API show it: texts in the reader's language from stored message data."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.urls import reverse

from cartrial.apps import text
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.registry import job_kind
from cartrial.domain.errors import DomainError
from cartrial.domain.text import N_, message_from_data

STATUS_LABELS: dict[str, str] = {
    Job.Status.QUEUED: N_("Queued"),
    Job.Status.RUNNING: N_("Running"),
    Job.Status.DONE: N_("Finished"),
    Job.Status.FAILED: N_("Failed"),
}


def kind_label(code: str, language: str | None = None) -> str:
    """The kind's label; the code itself for a kind no longer registered (its app was removed)."""
    try:
        return text.tr(job_kind(code).label, language)
    except DomainError:
        return code


def progress_text(job: Job, language: str | None = None) -> str:
    return text.render(message_from_data(job.progress_message), language) if job.progress_message else ""


def summary_text(job: Job, language: str | None = None) -> str:
    """The outcome in one sentence: the kind's summary of its result, or the error."""
    if job.status == Job.Status.FAILED:
        # A refusal in the reader's language; a bug's exception as it was raised (computer text).
        return text.render(message_from_data(job.error_message), language) if job.error_message else job.error
    if job.status != Job.Status.DONE or job.result is None:
        return ""
    try:
        summary = job_kind(job.kind).summary
    except DomainError:
        summary = None
    return text.render(summary(job.result), language) if summary is not None else ""


@dataclass(frozen=True)
class JobView:
    job: Job
    kind: str
    status: str
    progress: str
    summary: str
    # The failure was a bug (no refusal message): its text is the exception's, shown as code.
    failed_by_bug: bool
    result_json: str = ""
    parameters_json: str = ""
    # The owning app's page of the finished job's result (a plan as a table), if its kind has one.
    result_url: str = ""


# A planning instance of 2,000 patients is a large parameter: the page shows its beginning.
SHOWN_JSON_CHARACTERS = 4000


def _shown_json(value: object) -> str:
    if not value:
        return ""
    shown = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return shown if len(shown) <= SHOWN_JSON_CHARACTERS else shown[:SHOWN_JSON_CHARACTERS] + "\n…"


def result_url(job: Job) -> str:
    """The URL of the page showing the finished job's result, from its kind's `result_view`."""
    if job.status != Job.Status.DONE:
        return ""
    try:
        view = job_kind(job.kind).result_view
    except DomainError:
        return ""
    return reverse(view, kwargs={"job_id": job.pk}) if view else ""


def job_view(job: Job, *, detail: bool = False) -> JobView:
    """A job for a page; `detail` adds its parameters and result as JSON (the job's page)."""
    return JobView(
        job=job,
        kind=kind_label(job.kind),
        status=text.tr(STATUS_LABELS[job.status]),
        progress=progress_text(job),
        summary=summary_text(job),
        failed_by_bug=job.status == Job.Status.FAILED and not job.error_message,
        result_json=_shown_json(job.result) if detail else "",
        parameters_json=_shown_json(job.parameters) if detail else "",
        result_url=result_url(job) if detail else "",
    )
