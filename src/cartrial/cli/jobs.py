"""`cartrial jobs worker [--once]` runs the queue of long jobs; `cartrial jobs list` shows the jobs.

Production (PostgreSQL) runs `cartrial jobs worker` as its own service beside the web server (one
or more: each task is claimed by one worker under a row lock). On SQLite, `cartrial serve` and
`cartrial demo` start one beside gunicorn. A job queued while no worker runs waits in the database:
the next worker, after a restart too, runs it. docs/jobs.md.
"""

from __future__ import annotations

from typing import Annotated

import typer

# A worker meeting an unavailable database waits (doubling, up to this) and starts again; `--once`
# gives up after a few attempts (a script expects an answer).
WORKER_PAUSE_MAX_S = 30.0
WORKER_ATTEMPTS_ONCE = 3


def register(app: typer.Typer) -> None:
    """Attach the `jobs` group to the `cartrial` application."""
    jobs_app = typer.Typer(name="jobs", help="Long jobs: the worker that runs them, the list.", no_args_is_help=True)
    jobs_app.command("worker")(worker_command)
    jobs_app.command("list")(list_command)
    app.add_typer(jobs_app, name="jobs")


def worker_command(
    once: Annotated[bool, typer.Option("--once", help="Run every job queued now, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 1.0,
) -> None:
    """Run queued jobs as they come (Ctrl-C: finish the job in hand, then stop; twice: stop now,
    the job is recorded as failed). A database that is briefly unavailable (SQLite locked by a long
    writer, PostgreSQL restarting) does not stop the worker: it waits and starts again, so queued
    jobs are not left waiting for someone to notice."""
    from cartrial.cli.web import _django

    _django()
    import logging
    import time

    from django.core.management import call_command
    from django.db import OperationalError, connections

    logger = logging.getLogger("cartrial.jobs")
    failures = 0
    while True:
        try:
            call_command("db_worker", batch=once, interval=interval, reload=False, startup_delay=False, verbosity=1)
            return
        except OperationalError as error:
            failures += 1
            if once and failures >= WORKER_ATTEMPTS_ONCE:
                raise
            pause = min(WORKER_PAUSE_MAX_S, interval * 2**failures)
            logger.warning("jobs worker: the database is unavailable (%s); trying again in %.0f s", error, pause)
            connections.close_all()
            time.sleep(pause)


def list_command(
    status: Annotated[
        str | None, typer.Option(help="Only jobs in this status (queued, running, done, failed).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Every job of the database, newest first: id, kind, status, progress, requester, times (UTC)."""
    from cartrial.cli.web import _django, _fail

    _django()
    from cartrial.apps.jobs.models import Job

    if status is not None and status not in Job.Status.values:
        _fail(f"error: --status {status!r} is not one of {', '.join(Job.Status.values)} [invalid_status]")
    jobs = (
        Job.objects.select_related("requested_by")
        .defer("result_file", "error_traceback")
        .order_by("-created_at", "-id")
    )
    if status:
        jobs = jobs.filter(status=status)
    for job in jobs[:limit]:
        finished = job.finished_at.isoformat(timespec="seconds") if job.finished_at else "-"
        line = (
            f"{job.pk:>6}  {job.kind:<20} {job.status:<8} {job.progress_percent:>3}%  "
            f"{job.requested_by.get_username():<20} {job.created_at.isoformat(timespec='seconds')}  {finished}"
        )
        typer.echo(f"{line}  {job.error}" if job.error else line)
