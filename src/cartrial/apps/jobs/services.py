"""Writes of jobs: request one (audited, queued in the same transaction), run it in the worker
(progress, then done or failed, audited on completion).

The queue is django-tasks' database backend (ADR 0005): `job_run.enqueue(job_id)` writes the
queue's row in the caller's transaction, so a job exists with its queued task or not at all, and a
worker never sees a task whose job was rolled back. A queued job waits in the database for the
next worker, across restarts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.registry import JobOutcome, job_kind
from cartrial.domain.audit_chain import canonical_json
from cartrial.domain.errors import DomainError
from cartrial.domain.text import N_, Message, message_data

logger = logging.getLogger("cartrial.jobs")

INTERRUPTED = Message(N_("Interrupted: the worker was stopped while the job ran; request it again."))

# The worker's name in the audit trail: it writes a job's completion on behalf of its requester.
WORKER_ACTOR = "jobs-worker"


def job_enqueue(*, actor: Actor, kind: str, parameters: Mapping[str, Any]) -> Job:
    """Record the request of a job of `kind` by `actor` and queue it, in one transaction.

    The kind checks the parameters first (or resolves them for `actor`): an invalid one is refused
    (InvalidInput naming it) and nothing is stored or queued. The caller has authorised `actor` for the kind's action.
    """
    from cartrial.apps.jobs.tasks import job_run

    job_type = job_kind(kind)
    checked = job_type.resolve(parameters, actor) if job_type.resolve is not None else job_type.check(parameters)
    with transaction.atomic():
        job = Job.objects.create(
            kind=job_type.code,
            parameters=checked,
            requested_by_id=actor.recording_user_id,
            requester_role=actor.role,
            created_at=actor.now,
        )
        job.task_id = str(job_run.enqueue(job.pk).id)
        job.save(update_fields=["task_id"])
        audit_record(
            actor=actor,
            event=AuditEvent.JOB_REQUESTED,
            entity="job",
            entity_id=str(job.pk),
            changes=[
                Change("kind", None, job.kind),
                Change("parameters", None, checked),
                Change("status", None, "queued"),
            ],
        )
    return job


class ProgressReporter:
    """The `progress` a job's work calls: stores the percentage and message on the job when they
    changed, at most once every `interval_s` seconds (a walk of 10⁶ entries calls it 10⁶ times,
    each with a new message; the page polls every two seconds, and each write is a commit). Not
    audited: progress is not trial data, the request and the outcome are."""

    def __init__(self, job_id: int, interval_s: float = 0.5) -> None:
        self.job_id = job_id
        self.interval_s = interval_s
        self._percent = -1
        self._message: dict[str, object] | None = None
        self._written_at = float("-inf")

    def __call__(self, percent: float, message: Message | None = None) -> None:
        moment = time.monotonic()
        whole = max(0, min(100, int(percent)))
        if whole < 100 and moment - self._written_at < self.interval_s:
            return  # the page would not see it: one write per interval at most, and the end
        data = message_data(message) if message is not None else {}
        if whole == self._percent and data == self._message:
            return
        Job.objects.filter(pk=self.job_id).update(progress_percent=whole, progress_message=data)
        self._percent, self._message, self._written_at = whole, data, moment

    def step(self, done: int, total: int, message: Message | None = None) -> None:
        """`done` of `total` units of work (entries walked, patients placed, days simulated)."""
        self(100.0 * done / total if total > 0 else 100.0, message)


def job_execute(job_id: int) -> str:
    """Run the queued job `job_id` (called by the queue's task in the worker); its status after.

    A job already taken (run twice by the queue) is left alone. Whatever the work raises, even the
    worker being stopped in the middle, the job ends `failed` with the error kept, then the
    exception goes on to the queue, which marks its own row failed too.
    """
    started = clock.now()
    taken = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=started, progress_percent=0
    )
    job = Job.objects.get(pk=job_id)
    if not taken:
        logger.warning("job %s is %s, not queued: not run again", job_id, job.status)
        return str(job.status)
    try:
        outcome = job_kind(job.kind).run(job.parameters, ProgressReporter(job.pk))
        result = json.loads(json.dumps(dict(outcome.result)))
    except BaseException as error:
        job_fail(job, error)
        raise
    job_finish(job, outcome, result)
    return str(Job.Status.DONE)


# What a job's end writes (the progress columns are the reporter's while the job runs).
_OUTCOME_FIELDS = [
    "status",
    "finished_at",
    "result",
    "result_file",
    "result_file_name",
    "result_file_type",
    "error",
    "error_message",
    "error_traceback",
]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def job_finish(job: Job, outcome: JobOutcome, result: dict[str, Any]) -> None:
    """Store the outcome of `job` and audit its completion (one entry: status, result digest, file)."""
    actor = Actor.system(WORKER_ACTOR)
    job.status = Job.Status.DONE
    job.progress_percent = 100
    job.result = result
    job.finished_at = actor.now
    changes = [
        Change("status", "running", "done"),
        Change("result_sha256", None, _sha256(canonical_json(result).encode("utf-8"))),
    ]
    if outcome.file is not None:
        job.result_file = outcome.file.content
        job.result_file_name = outcome.file.name
        job.result_file_type = outcome.file.content_type
        changes.append(
            Change("result_file", None, {"name": outcome.file.name, "sha256": _sha256(outcome.file.content)})
        )
    with transaction.atomic():
        job.save(update_fields=[*_OUTCOME_FIELDS, "progress_percent"])
        audit_record(actor=actor, event=AuditEvent.JOB_FINISHED, entity="job", entity_id=str(job.pk), changes=changes)


def job_fail(job: Job, error: BaseException) -> None:
    """Keep why `job` failed (the refusal's message data, or the exception and its traceback) and
    audit it; a failure never disappears with the worker's log."""
    actor = Actor.system(WORKER_ACTOR)
    job.status = Job.Status.FAILED
    job.finished_at = actor.now
    job.error = f"{type(error).__name__}: {error}".strip().rstrip(":")
    if isinstance(error, DomainError):
        job.error_message = message_data(error.message)
    elif isinstance(error, KeyboardInterrupt | SystemExit):
        # The worker was stopped in the middle (a second Ctrl-C or SIGTERM): not a bug of the job.
        job.error_message = message_data(INTERRUPTED)
    else:
        job.error_traceback = "".join(traceback.format_exception(error))
        logger.error("job %s (%s) failed", job.pk, job.kind, exc_info=error)
    with transaction.atomic():
        # Progress stays where the work stopped.
        job.save(update_fields=_OUTCOME_FIELDS)
        audit_record(
            actor=actor,
            event=AuditEvent.JOB_FINISHED,
            entity="job",
            entity_id=str(job.pk),
            changes=[Change("status", "running", "failed"), Change("error", None, job.error)],
        )
