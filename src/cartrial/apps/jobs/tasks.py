"""The one task of the queue: run a job. Its module path is what the queue's rows name."""

from __future__ import annotations

from django_tasks import task

from cartrial.apps.jobs.services import job_execute


@task()
def job_run(job_id: int) -> str:
    """Run the job `job_id` in the worker (`cartrial jobs worker`)."""
    return job_execute(job_id)
