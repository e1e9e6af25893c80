"""Fault drill 3: an export written to a full disk.

    PYTHONPATH=src python benchmarks/faults/full_disk.py [--subjects 40]

Subjects are registered through the API, then two ways to fill the disk, each leaving room for
half of the export: a real full file system (a tmpfs, mounted when the drill runs as root and
may mount; otherwise said and skipped) and, for anyone, a file-size limit on the exporting
process (RLIMIT_FSIZE: a write past it fails as on a full disk). In each,
`cartrial export odm` (one file) and `cartrial export csv` (a folder) are run into the full
place, then an export requested through the API is run by `cartrial jobs worker --once` with its
export folder there. First, the same exports into a folder with room show they work and are
larger than the room left. Passes when each export fails with one clear line (exit 1, the reason
named), the job ends `failed` with the reason kept, its file cannot be downloaded, nothing is
left in the full place (no truncated file, no scratch), and the database is untouched by the
command-line exports (audit entries and chain head unchanged; the job's own failure is audited).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from faultkit import App, Registrations, Verdict, request, say, stack


@contextlib.contextmanager
def _tmpfs(limit_kib: int) -> Iterator[Path | None]:
    """A tmpfs of `limit_kib` KiB, or None when this user may not mount one."""
    folder = Path(tempfile.mkdtemp(prefix="cartrial-fault-full-"))
    mounted = False
    if os.geteuid() == 0:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={limit_kib}k,mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        mounted = result.returncode == 0
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        folder.rmdir()


EXPORTS_RECORDED = "SELECT count(*) FROM audit_auditentry WHERE event = 'export.created'"


def _audit_state(app: App) -> tuple[int, int]:
    return app.cluster.query(
        "SELECT (SELECT count(*) FROM audit_auditentry), (SELECT last_sequence FROM audit_auditchainhead)"
    )[0]


def _exports_cli(app: App, verdict: Verdict, place: Path, how: str, limit: int | None, expected_code: str) -> None:
    for export_format, name in (("odm", "odm.xml"), ("csv", "tables")):
        before = _audit_state(app)
        result = app.cli("export", export_format, "--out", str(place / name), file_size_limit=limit)
        after = _audit_state(app)
        lines = result.stderr.strip().splitlines()
        say(f"{how}: cartrial export {export_format} -> exit {result.returncode}: {lines[-1] if lines else ''}")
        verdict.check(
            result.returncode == 1 and len(lines) == 1 and expected_code in lines[0],
            f"{how}, {export_format}: exit 1 with one line naming the reason ({expected_code})",
        )
        left = sorted(p.name for p in place.iterdir())
        verdict.check(not left, f"{how}, {export_format}: nothing left in the full place ({left})")
        verdict.check(after == before, f"{how}, {export_format}: the database is untouched (audit {after})")


def _export_job(app: App, verdict: Verdict, token: str, place: Path, how: str, limit: int | None) -> None:
    exports_before = app.cluster.query(EXPORTS_RECORDED)[0][0]
    answer = request("POST", app.base + "/api/v1/exports", token=token, payload={"format": "odm"})
    job_id = (answer.json() or {}).get("id")
    verdict.check(
        answer.status == 202 and job_id is not None, f"{how}: export requested through the API ({answer.kind})"
    )
    if job_id is None:
        return
    worker = app.cli(
        "jobs", "worker", "--once", extra={"CARTRIAL_EXPORT_DIR": str(place)}, file_size_limit=limit, timeout=300
    )
    status, error = app.cluster.query("SELECT status, error FROM jobs_job WHERE id = %s", job_id)[0]
    seen = (request("GET", f"{app.base}/api/v1/exports/{job_id}", token=token).json() or {}).get("status")
    download = request("GET", f"{app.base}/api/v1/exports/{job_id}/file", token=token)
    reason = error.strip().splitlines()[0] if error.strip() else ""
    say(f"{how}: export job {job_id} (worker exit {worker.returncode}) -> {status}: {reason}")
    verdict.check(status == "failed" and seen == "failed", f"{how}: the export job is marked failed (API: {seen})")
    verdict.check(bool(error.strip()), f"{how}: the job keeps the reason")
    verdict.check(download.status != 200, f"{how}: its file cannot be downloaded ({download.kind})")
    left = sorted(p.name for p in place.iterdir())
    verdict.check(not left, f"{how}: nothing left in the full export folder ({left})")
    created = app.cluster.query(EXPORTS_RECORDED)[0][0] - exports_before
    verdict.check(created == 0, f"{how}: no export recorded as made ({created})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40, help="subjects registered to export (default 40)")
    options = parser.parse_args()
    verdict = Verdict()
    with stack(budget_s=900) as (_cluster, app):
        token = app.token("bdx.investigator")
        coordinator = app.token("bdx.coordinator")
        app.serve()
        registered = 0
        for number in range(options.subjects):
            payload = Registrations.payload(9, number)
            answer = request("POST", app.base + "/api/v1/subjects", token=coordinator, payload=payload)
            registered += answer.status == 201
        say(f"{registered} subjects registered through the API")
        room = Path(tempfile.mkdtemp(prefix="cartrial-fault-room-", dir=app.workdir))
        largest: list[int] = []
        for export_format, name in (("odm", "odm.xml"), ("csv", "tables")):
            result = app.cli("export", export_format, "--out", str(room / name))
            files = [p for p in (room / name).rglob("*") if p.is_file()] if (room / name).is_dir() else [room / name]
            largest.append(max((p.stat().st_size for p in files if p.exists()), default=0))
            verdict.check(result.returncode == 0, f"with room, cartrial export {export_format} works")
        # Room for half of the smallest export's largest file (whole pages of 4 KiB, at least 8 KiB).
        limit_kib = max(8, min(largest) // 2 // 4096 * 4)
        limit = limit_kib * 1024
        verdict.check(min(largest) > limit, f"the exports are larger than the room left ({largest} > {limit} bytes)")
        with _tmpfs(limit_kib) as full:
            if full is None:
                say("a tmpfs cannot be mounted here (not root, or no permission): the full file system is skipped")
            else:
                say(f"a full file system: tmpfs of {limit_kib} KiB at {full}")
                _exports_cli(app, verdict, full, "full tmpfs", None, "export_disk_full")
                _export_job(app, verdict, token, full, "full tmpfs", None)
        capped = Path(tempfile.mkdtemp(prefix="cartrial-fault-capped-", dir=app.workdir))
        say(f"a file-size limit of {limit_kib} KiB on the exporting process (RLIMIT_FSIZE)")
        _exports_cli(app, verdict, capped, "file-size limit", limit, "export_write_failed")
        _export_job(app, verdict, token, capped, "file-size limit", limit)
        intact, head = app.audit_verify()
        verdict.check(intact, f"cartrial audit verify: {head}")
    verdict.exit("full disk drill")


if __name__ == "__main__":
    main()
