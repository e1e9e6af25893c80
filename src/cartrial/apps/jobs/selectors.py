"""Reads of jobs, scoped by the reader: one's own jobs; every job for the sponsor's roles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from cartrial.apps.access import Scope, centers_for
from cartrial.apps.jobs.models import Job
from cartrial.domain.errors import NotFound
from cartrial.domain.roles import Action


def reads_study_jobs(scope: Scope) -> bool:
    """Whether the reader follows every job of the study (a sponsor role somewhere)."""
    return bool(centers_for(scope, Action.READ_STUDY_JOBS))


def jobs_for(scope: Scope, *, status: str | None = None, since: datetime | None = None) -> QuerySet[Job]:
    """The jobs the reader may follow, newest first, with their requester; with `since`, those
    created, started or finished after it (a job is not audited as it runs: its own times say
    when it last changed)."""
    jobs = Job.objects.select_related("requested_by").defer("result_file", "error_traceback")
    if not reads_study_jobs(scope):
        jobs = jobs.filter(requested_by_id=scope.user_id)
    if status:
        jobs = jobs.filter(status=status)
    if since is not None:
        jobs = jobs.filter(Q(created_at__gt=since) | Q(started_at__gt=since) | Q(finished_at__gt=since))
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
