"""Long jobs on the database queue: request (audited, queued in the same transaction), the worker
runs it (progress stored while it runs, done or failed audited), a queued job survives a restart,
the pages and the API show it to whom they should.

The worker is the real one (`cartrial jobs worker --once`, django-tasks-db's `db_worker`), so these
tests commit (transactional): the worker reads what the request committed, as in production.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django_tasks_db.models import DBTaskResult
from typer.testing import CliRunner

from cartrial.apps.access import actor_somewhere
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.jobs import registry
from cartrial.apps.jobs.kinds import AUDIT_VERIFY
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.registry import JobFile, JobKind, JobOutcome, ProgressReport
from cartrial.apps.jobs.services import WORKER_ACTOR, job_enqueue
from cartrial.domain.audit_chain import canonical_json
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.text import N_, Message

pytestmark = pytest.mark.django_db(transaction=True)

SPONSOR = "sponsor.admin"


def _cli(*args: str) -> Any:
    from cartrial.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def _work_once() -> None:
    """What a worker started after the request does: run every queued job, then stop."""
    result = _cli("jobs", "worker", "--once")
    assert result.exit_code == 0, result.output


def _events_after(sequence: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(sequence__gt=sequence).order_by("sequence"))


def _last_sequence() -> int:
    last = AuditEntry.objects.order_by("-sequence").first()
    return last.sequence if last else 0


# --- kinds registered by the tests, as an app above the jobs app would register its own -----------


def _progress_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    """Reports a quarter done, then reads what the page would read meanwhile."""
    progress.step(1, 4, Message(N_("{done} of {total} audit entries checked"), {"done": 1, "total": 4}))
    seen = Job.objects.get(kind="test_progress", status=Job.Status.RUNNING)
    return JobOutcome(
        {"seen_percent": seen.progress_percent, "seen_message": seen.progress_message, "n": parameters["n"]},
        JobFile("plan.json", "application/json", b'{"ok": true}'),
    )


def _progress_check(parameters: Mapping[str, Any]) -> dict[str, Any]:
    n = parameters.get("n")
    if not isinstance(n, int) or n < 1:
        raise InvalidInput("{item} must be a whole number of at least 1.", code="job_parameters_invalid", item="n")
    return {"n": n}


def _failing_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    progress(40)
    raise ValueError("the solver ran out of patience")


def _refused_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    raise InvalidInput("No job kind '{kind}'; known kinds: {known}.", code="job_kind_unknown", kind="x", known=["y"])


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for kind in (
        JobKind("test_progress", N_("Long jobs"), Action.VERIFY_AUDIT_TRAIL, _progress_run, check=_progress_check),
        JobKind("test_failing", N_("Long jobs"), Action.VERIFY_AUDIT_TRAIL, _failing_run),
        JobKind("test_refused", N_("Long jobs"), Action.VERIFY_AUDIT_TRAIL, _refused_run),
    ):
        monkeypatch.setitem(registry._KINDS, kind.code, kind)
    yield


def _enqueue(world: Any, kind: str, parameters: Mapping[str, Any] | None = None, username: str = SPONSOR) -> Job:
    actor = actor_somewhere(world.users[username], Action.VERIFY_AUDIT_TRAIL, "jobs")
    return job_enqueue(actor=actor, kind=kind, parameters=parameters or {})


# --- end to end: the audit-chain walk --------------------------------------------------------------


def test_audit_verify_job_from_the_page_to_done_with_progress_and_audit(world: Any) -> None:
    client = world.client_for(SPONSOR)
    since = _last_sequence()
    response = client.post("/jobs/", {"kind": AUDIT_VERIFY})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    # Requested: stored, audited, queued in the queue's table, nothing run yet.
    assert (job.status, job.requested_by.username, job.requester_role) == ("queued", SPONSOR, "sponsor_admin")
    [requested] = _events_after(since)
    assert (requested.event, requested.actor_username, requested.entity_id) == ("job.requested", SPONSOR, str(job.pk))
    task = DBTaskResult.objects.get(id=job.task_id)
    assert (task.status, task.task_path) == ("READY", "cartrial.apps.jobs.tasks.job_run")
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-status="queued"' in page and 'hx-trigger="every 2s"' in page
    entries_at_request = _last_sequence()

    _work_once()

    job.refresh_from_db()
    assert (job.status, job.progress_percent) == ("done", 100)
    assert job.started_at is not None and job.finished_at is not None and job.started_at <= job.finished_at
    # Progress was reported by entries walked: its last message names them all.
    assert job.progress_message["params"] == {"done": entries_at_request, "total": entries_at_request}
    assert job.result == {
        "intact": True,
        "checked": entries_at_request,
        "head": AuditEntry.objects.get(sequence=entries_at_request).entry_hash,
        "first_break": None,
    }
    finished = _events_after(entries_at_request)
    assert [(e.event, e.actor_username) for e in finished] == [("job.finished", WORKER_ACTOR)]
    changes = {c["field"]: c for c in json.loads(finished[0].changes_json)}
    assert (changes["status"]["old"], changes["status"]["new"]) == ("running", "done")
    # The trail keeps the result's digest: the stored result can be shown to be the one audited.
    assert changes["result_sha256"]["new"] == hashlib.sha256(canonical_json(job.result).encode()).hexdigest()
    assert DBTaskResult.objects.get(id=job.task_id).status == "SUCCESSFUL"
    assert audit_verify().intact
    # The progress fragment stops polling once the job ended and says the outcome in French.
    fragment = client.get(f"/jobs/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in fragment and 'data-status="done"' in fragment
    assert f"Piste d'audit intacte : {entries_at_request} entrées vérifiées" in fragment.replace("&#x27;", "'")
    answer = client.get(f"/api/v1/jobs/{job.pk}")  # session login is not the API's: a token is
    assert answer.status_code == 401


def test_a_broken_chain_is_the_jobs_result_not_its_failure(world: Any) -> None:
    job = _enqueue(world, AUDIT_VERIFY)
    victim = AuditEntry.objects.filter(event="membership.granted").order_by("sequence").first()
    assert victim is not None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        cursor.execute("UPDATE audit_auditentry SET reason = 'edited' WHERE id = %s", [victim.pk])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")
    _work_once()
    job.refresh_from_db()
    assert job.status == "done"
    assert job.result["intact"] is False and job.result["first_break"]["sequence"] == victim.sequence
    assert job.result["checked"] == victim.sequence - 1


# --- progress, files, failures ----------------------------------------------------------------------


def test_progress_is_stored_while_the_job_runs_and_a_file_is_kept(world: Any, test_kinds: None) -> None:
    job = _enqueue(world, "test_progress", {"n": 3})
    assert job.parameters == {"n": 3}
    _work_once()
    job.refresh_from_db()
    assert job.status == "done"
    # What a reader saw in the middle of the run: 25 % and the message as data (any language).
    assert job.result["seen_percent"] == 25
    assert job.result["seen_message"]["params"] == {"done": 1, "total": 4}
    assert (job.result_file_name, bytes(job.result_file)) == ("plan.json", b'{"ok": true}')
    finished = AuditEntry.objects.filter(event="job.finished", entity_id=str(job.pk)).get()
    assert "plan.json" in finished.changes_json
    page = world.client_for(SPONSOR).get(f"/jobs/{job.pk}/").content.decode()
    assert "&quot;n&quot;: 3" in page and "&quot;seen_percent&quot;: 25" in page  # parameters, result
    download = world.client_for(SPONSOR).get(f"/jobs/{job.pk}/file/")
    assert download.status_code == 200 and download.content == b'{"ok": true}'
    assert download["Content-Disposition"] == 'attachment; filename="plan.json"'


def test_invalid_parameters_are_refused_and_nothing_is_stored_or_queued(world: Any, test_kinds: None) -> None:
    since = _last_sequence()
    with pytest.raises(InvalidInput) as refused:
        _enqueue(world, "test_progress", {"n": 0})
    assert (refused.value.code, refused.value.item) == ("job_parameters_invalid", "n")
    with pytest.raises(InvalidInput) as unknown:
        _enqueue(world, "no_such_kind")
    assert unknown.value.code == "job_kind_unknown" and AUDIT_VERIFY in str(unknown.value)
    with pytest.raises(InvalidInput) as extra:
        _enqueue(world, AUDIT_VERIFY, {"depth": 3})
    assert extra.value.item == "parameters"
    assert Job.objects.count() == 0 and DBTaskResult.objects.count() == 0 and _events_after(since) == []


def test_a_failing_job_ends_failed_with_its_error_kept_and_audited(world: Any, test_kinds: None) -> None:
    job = _enqueue(world, "test_failing")
    _work_once()
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert job.error == "ValueError: the solver ran out of patience"
    assert "_failing_run" in job.error_traceback  # where it failed, for whoever fixes it
    assert job.progress_percent == 40  # where it stopped
    finished = AuditEntry.objects.get(event="job.finished", entity_id=str(job.pk))
    changes = {c["field"]: c["new"] for c in json.loads(finished.changes_json)}
    assert finished.actor_username == WORKER_ACTOR
    assert changes == {"status": "failed", "error": "ValueError: the solver ran out of patience"}
    task = DBTaskResult.objects.get(id=job.task_id)
    assert task.status == "FAILED" and task.exception_class_path == "builtins.ValueError"
    page = world.client_for(SPONSOR).get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-status="failed"' in page
    assert "<code>ValueError: the solver ran out of patience</code>" in page  # computer text, any language
    # The next job still runs: one failure does not stop the worker.
    after = _enqueue(world, "test_progress", {"n": 1})
    _work_once()
    after.refresh_from_db()
    assert after.status == "done"


def test_a_refusal_inside_a_job_is_kept_as_message_data_shown_in_each_language(world: Any, test_kinds: None) -> None:
    job = _enqueue(world, "test_refused")
    _work_once()
    job.refresh_from_db()
    assert job.status == "failed" and job.error_message["msgid"] == "No job kind '{kind}'; known kinds: {known}."
    assert job.error_traceback == ""
    token_client = world.client_for(SPONSOR)
    french = token_client.get(f"/jobs/{job.pk}/progress/").content.decode().replace("&#x27;", "'")
    assert "Aucun type de tâche « x »" in french


# --- a restart: the queue lives in the database ---------------------------------------------------


def test_a_job_queued_before_a_restart_is_run_by_the_next_worker(world: Any) -> None:
    job = _enqueue(world, AUDIT_VERIFY)
    # The server stops: nothing of it remains but the database.
    connections.close_all()
    from django_tasks import task_backends

    del task_backends["default"]  # the queue's backend object goes too: a new one is made
    assert Job.objects.get(pk=job.pk).status == "queued"
    assert DBTaskResult.objects.get(id=job.task_id).status == "READY"
    _work_once()
    assert Job.objects.get(pk=job.pk).status == "done"


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="another process reaches the test database")
def test_a_worker_process_started_later_runs_the_queued_job(world: Any) -> None:
    """A real restart on PostgreSQL: the job is queued here; another process, the worker, runs it."""
    job = _enqueue(world, AUDIT_VERIFY)
    settings = connection.settings_dict
    host = f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    url = f"postgres://{settings['USER']}:{settings['PASSWORD']}@{host}/{settings['NAME']}"
    environment = {**os.environ, "DATABASE_URL": url}
    cartrial = Path(sys.executable).with_name("cartrial")
    subprocess.run([str(cartrial), "jobs", "worker", "--once"], env=environment, check=True, timeout=300)
    job.refresh_from_db()
    assert job.status == "done" and job.result["intact"] is True


# --- who sees what; the CLI list --------------------------------------------------------------------


def test_a_coordinator_follows_only_their_own_jobs_and_the_sponsor_every_one(world: Any, test_kinds: None) -> None:
    sponsor_job = _enqueue(world, AUDIT_VERIFY)
    coordinator = world.users["bdx.coordinator"]
    mine = job_enqueue(
        actor=world.actor("bdx.coordinator"), kind="test_progress", parameters={"n": 1}
    )  # as an app above would, after its own access check
    coordinator_page = world.client_for("bdx.coordinator").get("/jobs/").content.decode()
    assert f'data-job="{mine.pk}"' in coordinator_page and f'data-job="{sponsor_job.pk}"' not in coordinator_page
    assert world.client_for("bdx.coordinator").get(f"/jobs/{sponsor_job.pk}/").status_code == 404
    sponsor_page = world.client_for(SPONSOR).get("/jobs/").content.decode()
    assert f'data-job="{mine.pk}"' in sponsor_page and f'data-job="{sponsor_job.pk}"' in sponsor_page
    # The coordinator is not offered, and may not start, the audit-chain walk.
    assert f"start-{AUDIT_VERIFY}" not in coordinator_page and f"start-{AUDIT_VERIFY}" in sponsor_page
    since = _last_sequence()
    refused = world.client_for("bdx.coordinator").post("/jobs/", {"kind": AUDIT_VERIFY})
    assert refused.status_code == 403 and Job.objects.count() == 2
    assert [e.event for e in _events_after(since)] == ["access.refused"]
    assert coordinator.jobs.count() == 1


def test_cli_lists_the_jobs_newest_first(world: Any) -> None:
    first = _enqueue(world, AUDIT_VERIFY)
    second = _enqueue(world, AUDIT_VERIFY)
    _work_once()
    listing = _cli("jobs", "list")
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert [int(line.split()[0]) for line in lines] == [second.pk, first.pk]
    assert all(f"{AUDIT_VERIFY}" in line and " done " in line and "100%" in line for line in lines)
    assert _cli("jobs", "list", "--status", "queued").output == ""
    bad = _cli("jobs", "list", "--status", "paused")
    assert bad.exit_code == 2 and "invalid_status" in bad.output


def test_api_requests_and_reads_a_job(world: Any) -> None:
    from django.test import Client

    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system("test"), user=world.users[SPONSOR], label="jobs")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    created = api.post("/api/v1/jobs", {"kind": AUDIT_VERIFY}, content_type="application/json")
    assert created.status_code == 202 and created.json()["status"] == "queued"
    job_id = created.json()["id"]
    refused = api.post("/api/v1/jobs", {"kind": AUDIT_VERIFY, "parameters": {"x": 1}}, content_type="application/json")
    # The kind's schema (no parameters) refuses it first, naming the parameter as sent.
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_input"
    assert [f["field"] for f in refused.json()["fields"]] == ["parameters.x"]
    _work_once()
    answer = api.get(f"/api/v1/jobs/{job_id}").json()
    assert answer["status"] == "done" and answer["progress"]["percent"] == 100
    assert answer["result"]["intact"] is True and answer["requested_by"] == SPONSOR
    assert answer["summary"].startswith("Audit trail intact:")
    listed = api.get("/api/v1/jobs").json()["items"]
    assert [j["id"] for j in listed] == [job_id]
    # A list stays light: a planning instance and its plan are read from the job itself.
    assert listed[0]["parameters"] is None and listed[0]["result"] is None and listed[0]["status"] == "done"
    assert json.loads(json.dumps(answer)) == answer


def test_serve_starts_one_worker_beside_the_server_on_sqlite_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo on SQLite needs no worker service: `cartrial serve`/`demo` start one; on PostgreSQL
    production runs its own (`--worker` forces one, `--no-worker` none)."""
    from cartrial.cli import web

    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "Popen", started.append)
    web._start_jobs_worker(None)
    assert len(started) == (1 if connection.vendor == "sqlite" else 0)
    web._start_jobs_worker(False)
    web._start_jobs_worker(True)
    assert len(started) == (2 if connection.vendor == "sqlite" else 1)
    assert all(Path(argv[0]).name == "cartrial" and argv[1:] == ["jobs", "worker"] for argv in started)


def test_progress_is_written_when_it_changed_at_most_once_per_interval(
    world: Any, test_kinds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk reports every entry; the job row is written twice a second at most (each write commits)."""
    from cartrial.apps.jobs import services

    job = _enqueue(world, AUDIT_VERIFY)
    now = [100.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: now[0])
    report = services.ProgressReporter(job.pk, interval_s=0.5)

    def stored() -> tuple[int, object]:
        row = Job.objects.get(pk=job.pk)
        return row.progress_percent, row.progress_message.get("params")

    def said(done: int) -> Message:
        return Message(N_("{done} of {total} audit entries checked"), {"done": done, "total": 8})

    report.step(1, 8, said(1))
    assert stored() == (12, {"done": 1, "total": 8})
    now[0] += 0.1
    report.step(2, 8, said(2))
    assert stored() == (12, {"done": 1, "total": 8})  # too soon: not written
    now[0] += 0.5
    report.step(3, 8, said(3))
    assert stored() == (37, {"done": 3, "total": 8})
    now[0] += 5
    report(250)  # clamped to 100
    assert stored() == (100, None)


def test_a_worker_stopped_in_the_middle_leaves_the_job_failed_as_interrupted(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C or SIGTERM ends the worker inside the job (SystemExit): the job says so."""
    from cartrial.apps.jobs.services import INTERRUPTED, job_execute

    def stopped(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
        progress(10)
        raise SystemExit(1)

    monkeypatch.setitem(
        registry._KINDS, "test_stopped", JobKind("test_stopped", N_("Long jobs"), Action.READ_JOBS, stopped)
    )
    job = _enqueue(world, "test_stopped")
    with pytest.raises(SystemExit):
        job_execute(job.pk)
    job.refresh_from_db()
    assert (job.status, job.progress_percent) == ("failed", 10)
    assert job.error_message == {"msgid": INTERRUPTED.msgid, "params": {}} and job.error_traceback == ""
    assert job_execute(job.pk) == "failed"  # run again by the queue: left alone


def test_a_large_parameter_is_shown_by_its_beginning(world: Any, test_kinds: None) -> None:
    from cartrial.apps.jobs.presenters import SHOWN_JSON_CHARACTERS, job_view

    job = Job(kind="test_progress", parameters={"instance": "x" * 10_000}, status="queued", progress_percent=0)
    shown = job_view(job, detail=True).parameters_json
    assert len(shown) == SHOWN_JSON_CHARACTERS + 2 and shown.endswith("\n…")
    assert job_view(job).parameters_json == ""  # the list shows none
