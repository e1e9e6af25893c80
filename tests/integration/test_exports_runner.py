"""The exports' runner, the same for every format (issue 12, items 6 and 7, and "Bad input"): access
resolved once (center, subject, since, identity), the file written whole or not at all, hashed,
audited; the CLI's contract (exit 2 with one line on bad input, 1 when it cannot write); the export
as a background job from the page and the API, downloaded by its requester only.

The writers of each standard are tested in their own modules; here a small writer stands in for
them, so what is tested is the runner alone.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cartrial.apps import clock
from cartrial.apps.access import scope_for
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor
from cartrial.apps.exports import formats
from cartrial.apps.exports.request import ExportCounts, ExportFormat, ExportRequest, Progress
from cartrial.apps.exports.selectors import export_request_resolve, since_parse
from cartrial.apps.exports.services import MANIFEST_NAME, ExportWriteFailed, export_write
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.services import job_execute
from cartrial.apps.subjects.models import Subject
from cartrial.domain.errors import AccessDenied, InvalidInput, NotFound

pytestmark = pytest.mark.django_db


def _subject_codes(request: ExportRequest) -> list[str]:
    return sorted(Subject.objects.filter(pk__in=request.subject_ids).values_list("code", flat=True))


def _lines_writer(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """One line per exported subject (with its name when identity is allowed), like a real writer."""
    subjects = list(Subject.objects.filter(pk__in=request.subject_ids).order_by("code"))
    with out.open("w", encoding="utf-8") as handle:
        for done, subject in enumerate(subjects, start=1):
            handle.write(f"{subject.code} identity={subject.pk in request.identity_subject_ids}\n")
            progress(done, len(subjects))
    return ExportCounts(subjects=len(subjects), records=len(subjects))


def _folder_writer(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    out.mkdir()
    (out / "dm.json").write_text(json.dumps(_subject_codes(request)), encoding="utf-8")
    (out / "ae.json").write_text("[]", encoding="utf-8")
    return ExportCounts(subjects=len(request.subject_ids), records=2)


def _full_disk_writer(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    out.write_text("half of it", encoding="utf-8")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def writers(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setitem(formats.WRITERS, ExportFormat.ODM, _lines_writer)
    monkeypatch.setitem(formats.WRITERS, ExportFormat.CSV, _folder_writer)
    settings.CARTRIAL_EXPORT_DIR = tmp_path / "kept"
    yield


def _request(world: Any, **filters: Any) -> ExportRequest:
    username = filters.pop("username", None)
    scope = scope_for(world.users[username]) if username else None
    return export_request_resolve(
        scope=scope,
        export_format=filters.pop("export_format", ExportFormat.ODM),
        now=clock.now(),
        requested_by=username or "test",
        **filters,
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".cartrial-export-"))


# --- access, filters, since -------------------------------------------------------------------------


def test_a_center_exports_only_its_subjects_and_sees_identity_of_its_own(world: Any) -> None:
    bdx, lil = world.new_subject("BDX"), world.new_subject("LIL")
    everything = _request(world)
    assert {bdx.pk, lil.pk} <= everything.subject_ids and everything.identity_subject_ids == frozenset()
    assert everything.study_wide
    mine = _request(world, username="bdx.investigator")
    assert bdx.pk in mine.subject_ids and lil.pk not in mine.subject_ids
    assert mine.identity_subject_ids == frozenset(mine.subject_ids)
    sponsor = _request(world, username="dm.datamanager", center_codes=["lil"])
    assert lil.pk in sponsor.subject_ids and bdx.pk not in sponsor.subject_ids
    assert sponsor.identity_subject_ids == frozenset() and not sponsor.study_wide


def test_an_unknown_or_forbidden_center_or_subject_is_refused_by_name(world: Any) -> None:
    lil = world.new_subject("LIL")
    with pytest.raises(InvalidInput) as unknown:
        _request(world, center_codes=["XYZ"])
    assert (unknown.value.code, unknown.value.item) == ("export_center_unknown", "center")
    with pytest.raises(AccessDenied) as forbidden:
        _request(world, username="bdx.investigator", center_codes=["LIL"])
    assert (forbidden.value.code, forbidden.value.item) == ("export_center_forbidden", "center")
    with pytest.raises(NotFound) as outside:
        _request(world, username="bdx.investigator", subject_code=lil.code)
    assert (outside.value.code, outside.value.item) == ("export_subject_unknown", "subject")
    with pytest.raises(InvalidInput) as future:
        _request(world, since=clock.now() + timedelta(days=1))
    assert future.value.item == "since"


def test_since_keeps_only_the_subjects_changed_after_it(world: Any) -> None:
    cut = clock.now()
    # Written an hour before the cut (the audit trail is append-only: its times are never moved).
    with clock.frozen_at(cut - timedelta(hours=1)):
        before = world.new_subject("BDX")
    after = world.new_subject("BDX")
    assert AuditEntry.objects.filter(subject_code=before.code, occurred_at__gt=cut - timedelta(seconds=1)).count() == 0
    request = _request(world, since=cut - timedelta(seconds=1))
    assert after.pk in request.subject_ids and before.pk not in request.subject_ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00+01:00", datetime(2026, 11, 1, 7, tzinfo=UTC)),
        ("2026-11-01T08:00:00Z", datetime(2026, 11, 1, 8, tzinfo=UTC)),
    ],
)
def test_since_reads_iso_times_with_offset_and_dates(text: str, expected: datetime) -> None:
    assert since_parse(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("yesterday", "export_since_invalid"),
        ("2026-13-01", "export_since_invalid"),
        ("2026-11-01T08:00:00", "export_since_without_offset"),
    ],
)
def test_a_malformed_since_is_refused_naming_since(text: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        since_parse(text)
    assert (refused.value.code, refused.value.item) == (code, "since")


# --- whole or nothing, hashed --------------------------------------------------------------------------


def test_a_file_export_is_written_whole_with_its_sha256(world: Any, writers: None, tmp_path: Path) -> None:
    world.new_subject("BDX")
    target = tmp_path / "study.xml"
    seen: list[tuple[int, int]] = []
    result = export_write(_request(world), target, lambda done, total: seen.append((done, total)))
    content = target.read_bytes()
    assert result.sha256 == hashlib.sha256(content).hexdigest() and result.size == len(content)
    assert result.counts.subjects == content.count(b"\n") >= 1
    assert seen[-1][0] == seen[-1][1] == result.counts.subjects
    assert _leftovers(tmp_path) == []


def test_a_folder_export_is_hashed_through_its_manifest(world: Any, writers: None, tmp_path: Path) -> None:
    world.new_subject("BDX")
    target = tmp_path / "tables"
    result = export_write(_request(world, export_format=ExportFormat.CSV), target, lambda d, t: None)
    manifest = (target / MANIFEST_NAME).read_bytes()
    assert result.sha256 == hashlib.sha256(manifest).hexdigest()
    listed = dict(reversed(line.split("  ")) for line in manifest.decode().splitlines())
    assert set(listed) == {"ae.json", "dm.json"}
    assert listed["dm.json"] == hashlib.sha256((target / "dm.json").read_bytes()).hexdigest()


def test_a_full_disk_leaves_nothing_half_written(
    world: Any, writers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(formats.WRITERS, ExportFormat.ODM, _full_disk_writer)
    target = tmp_path / "study.xml"
    target.write_text("the previous export", encoding="utf-8")
    with pytest.raises(ExportWriteFailed) as failed:
        export_write(_request(world), target, lambda d, t: None)
    assert (failed.value.code, failed.value.item) == ("export_disk_full", "out")
    assert target.read_text(encoding="utf-8") == "the previous export"
    assert _leftovers(tmp_path) == []


def test_an_out_that_cannot_receive_the_export_is_refused_before_any_work(
    world: Any, writers: None, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("keep me", encoding="utf-8")
    cases = [
        (ExportFormat.CSV, tmp_path / "full", "export_out_exists"),
        (ExportFormat.ODM, tmp_path / "full", "export_out_is_folder"),
        (ExportFormat.ODM, tmp_path / "missing" / "study.xml", "export_out_folder_missing"),
    ]
    for export_format, target, code in cases:
        with pytest.raises(InvalidInput) as refused:
            export_write(_request(world, export_format=export_format), target, lambda d, t: None)
        assert (refused.value.code, refused.value.item) == (code, "out")
    assert (tmp_path / "full" / "other.txt").read_text(encoding="utf-8") == "keep me"


# --- the command line -------------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    from cartrial.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def test_cli_writes_the_export_prints_one_line_and_records_it(world: Any, writers: None, tmp_path: Path) -> None:
    subject = world.new_subject("LIL")
    target = tmp_path / "lil.xml"
    result = _cli("export", "odm", "--center", "LIL", "--out", str(target))
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest in result.output and result.output.count("\n") == 1
    assert f"{subject.code} identity=False" in target.read_text(encoding="utf-8")
    entry = AuditEntry.objects.filter(event="export.created").latest("sequence")
    changes = {c["field"]: c["new"] for c in json.loads(entry.changes_json)}
    assert entry.actor_username.startswith("cli:")
    assert changes["file"]["sha256"] == digest and changes["centers"] == ["LIL"] and changes["format"] == "odm"
    assert audit_verify().intact


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["odm", "--center", "XYZ"], "export_center_unknown"),
        (["odm", "--since", "last week"], "export_since_invalid"),
        (["odm", "--subject", "BDX-999"], "export_subject_unknown"),
        (["sas", "--center", "BDX"], "export_format_unknown"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    world: Any, writers: None, tmp_path: Path, args: list[str], code: str
) -> None:
    target = tmp_path / "out.xml"
    result = _cli("export", *args, "--out", str(target))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and f"[{code}]" in result.output
    assert not target.exists() and _leftovers(tmp_path) == []


def test_cli_full_disk_exits_1_and_writes_nothing(
    world: Any, writers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(formats.WRITERS, ExportFormat.ODM, _full_disk_writer)
    before = AuditEntry.objects.filter(event="export.created").count()
    result = _cli("export", "odm", "--out", str(tmp_path / "out.xml"))
    assert result.exit_code == 1 and "[export_disk_full]" in result.output
    assert not (tmp_path / "out.xml").exists()
    assert AuditEntry.objects.filter(event="export.created").count() == before


# --- as a job: the page, the API, the download ---------------------------------------------------------


def _run_queued() -> None:
    for job in Job.objects.filter(status=Job.Status.QUEUED):
        job_execute(job.pk)


def test_page_requests_an_export_job_and_only_its_requester_downloads_it(world: Any, writers: None) -> None:
    own = world.new_subject("BDX")
    other = world.new_subject("LIL")
    page = world.client_for("bdx.investigator")
    assert page.get("/exports/").status_code == 200
    response = page.post("/exports/", {"format": "odm", "center": "", "subject": "", "since": ""})
    assert response.status_code == 302
    _run_queued()
    job = Job.objects.get(kind="export_data")
    assert job.status == Job.Status.DONE, job.error
    download = page.get(f"/exports/{job.pk}/file/")
    content = b"".join(download.streaming_content)
    assert download["X-Content-SHA256"] == hashlib.sha256(content).hexdigest() == job.result["sha256"]
    assert f"{own.code} identity=True".encode() in content and other.code.encode() not in content
    entry = AuditEntry.objects.filter(event="export.created").latest("sequence")
    assert entry.actor_username == "bdx.investigator"
    # The data manager follows every job, but an export is its requester's alone.
    assert world.client_for("dm.datamanager").get(f"/exports/{job.pk}/file/").status_code == 404
    listing = page.get("/exports/").content.decode()
    assert job.result["sha256"] in listing


def test_page_refuses_a_forbidden_center_and_names_it(world: Any, writers: None) -> None:
    page = world.client_for("bdx.investigator")
    response = page.post("/exports/", {"format": "odm", "center": "LIL"})
    assert response.status_code == 403
    assert not Job.objects.filter(kind="export_data").exists()


def test_a_role_without_exports_reaches_neither_the_page_nor_the_api(world: Any) -> None:
    assert world.client_for("bdx.coordinator").get("/exports/").status_code == 403
    assert world.client_for("lab.manufacturing").get("/exports/").status_code == 403


def _api(world: Any, username: str) -> Any:
    from django.test import Client

    from cartrial.apps.accounts.services import api_token_create

    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_api_requests_follows_and_downloads_an_export(world: Any, writers: None) -> None:
    world.new_subject("PAR")
    client = _api(world, "dm.datamanager")
    response = client.post("/api/v1/exports", {"format": "csv", "centers": ["PAR"]}, content_type="application/json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued" and response.json()["file_url"] is None
    _run_queued()
    body = client.get(f"/api/v1/exports/{job_id}").json()
    assert body["status"] == "done" and body["format"] == "csv" and body["centers"] == ["PAR"]
    download = client.get(body["file_url"])
    content = b"".join(download.streaming_content)
    assert hashlib.sha256(content).hexdigest() == body["sha256"] == download["X-Content-SHA256"]
    assert content[:2] == b"PK"  # a folder export downloads as one ZIP
    listing = client.get("/api/v1/exports?limit=1").json()
    assert [e["id"] for e in listing["items"]] == [job_id] and listing["next_offset"] is None
    assert listing["total"] == 1


@pytest.mark.parametrize(
    ("body", "status", "item"),
    [
        ({"format": "sas"}, 422, None),
        ({"format": "odm", "since": "noon"}, 422, "since"),
        ({"format": "odm", "centers": ["XYZ"]}, 422, "center"),
        ({"format": "odm", "centers": ["LIL"]}, 403, "center"),
    ],
)
def test_api_refuses_bad_requests_naming_the_item(
    world: Any, writers: None, body: dict[str, Any], status: int, item: str | None
) -> None:
    client = _api(world, "bdx.investigator")
    response = client.post("/api/v1/exports", body, content_type="application/json")
    assert response.status_code == status, response.content
    if item is not None:
        assert response.json()["item"] == item
    assert not Job.objects.filter(kind="export_data").exists()


@pytest.mark.django_db(transaction=True)
def test_outside_any_test_transaction_the_cli_and_the_worker_record_their_exports(
    world: Any, writers: None, tmp_path: Path
) -> None:
    """As in production (no surrounding transaction): each export's audit entry is committed."""
    world.new_subject("BDX")
    result = _cli("export", "odm", "--out", str(tmp_path / "study.xml"))
    assert result.exit_code == 0, result.output
    page = world.client_for("dm.datamanager")
    assert page.post("/exports/", {"format": "csv"}).status_code == 302
    _run_queued()
    job = Job.objects.get(kind="export_data")
    assert job.status == Job.Status.DONE, job.error
    recorded = AuditEntry.objects.filter(event="export.created").order_by("sequence")
    assert [e.actor_username.split(":")[0] for e in recorded] == ["cli", "dm.datamanager"]
    assert audit_verify().intact


def test_an_export_that_cannot_be_recorded_is_removed(
    world: Any, writers: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cartrial.apps.exports import services

    def unrecordable(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(services, "export_record", unrecordable)
    target = tmp_path / "study.xml"
    with pytest.raises(RuntimeError):
        services.export_run(Actor.system("test"), _request(world), target, lambda d, t: None, centers=[])
    assert not target.exists() and _leftovers(tmp_path) == []
