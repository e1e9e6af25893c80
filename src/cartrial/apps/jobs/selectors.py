"""Reads of jobs, scoped by the reader: one's own jobs; every job for the sponsor's roles."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from cartrial.apps.access import Scope, centers_for
from cartrial.apps.jobs.models import Job
from cartrial.domain.errors import NotFound
from cartrial.domain.roles import Action


def reads_study_jobs(scope: Scope) -> bool:
    """Whether the reader follows every job of the study (a sponsor role somewhere)."""
    return bool(centers_for(scope, Action.READ_STUDY_JOBS))


def jobs_for(scope: Scope, *, status: str | None = None) -> QuerySet[Job]:
    """The jobs the reader may follow, newest first, with their requester."""
    jobs = Job.objects.select_related("requested_by").defer("result_file", "error_traceback")
    if not reads_study_jobs(scope):
        jobs = jobs.filter(requested_by_id=scope.user_id)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


def job_get(scope: Scope, job_id: Any) -> Job:
    """One job the reader may follow; NotFound otherwise (never saying it exists)."""
    try:
        number = int(job_id)
    except (TypeError, ValueError):
        number = 0
    job = jobs_for(scope).filter(pk=number).first()
    if job is None:
        raise NotFound("No job {job} in your scope.", code="not_found", job=job_id)
    return job


def job_file(scope: Scope, job_id: Any) -> Job:
    """A job with its file, for the download (the list leaves files out)."""
    job = job_get(scope, job_id)
    stored = Job.objects.only("result_file", "result_file_name", "result_file_type").get(pk=job.pk)
    if not stored.result_file:
        raise NotFound("Job {job} has no file.", code="not_found", job=job_id)
    return stored
