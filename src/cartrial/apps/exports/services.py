"""The exports' runner: one writer per format, run into a temporary place, renamed into place only
when it finished, hashed, and recorded in the audit trail — the same for the command line, the
pages and the API (as a background job).

Nothing half-written: the writer writes inside a temporary folder beside the target; any failure
(a refusal, a full disk, a bug) removes it and leaves the target as it was. A folder export (the
SDTM datasets, the tables) is hashed through its manifest: one `SHA-256  name` line per file,
sorted, whose own SHA-256 is the export's.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record
from cartrial.apps.exports.formats import WRITERS
from cartrial.apps.exports.request import FOLDER_FORMATS, ExportCounts, ExportFormat, ExportRequest, Progress
from cartrial.domain.errors import InvalidInput, Refused

MANIFEST_NAME = "SHA256SUMS"
_CHUNK = 1 << 20


class ExportWriteFailed(Refused):
    """The export could not be written where asked (a full disk, no permission): nothing was left."""

    code = "export_write_failed"


@dataclass(frozen=True)
class ExportResult:
    """What an export produced: where, its SHA-256, its size in bytes, and the writer's counts."""

    path: Path
    sha256: str
    size: int
    counts: ExportCounts


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read by chunks (an export can be larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_manifest(folder: Path) -> tuple[str, int]:
    """Write the folder's manifest; its SHA-256 and the folder's size."""
    lines, size = [], 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines.append(f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}\n")
        size += path.stat().st_size
    manifest = "".join(lines).encode("utf-8")
    (folder / MANIFEST_NAME).write_bytes(manifest)
    return hashlib.sha256(manifest).hexdigest(), size + len(manifest)


def _target_check(target: Path, export_format: ExportFormat, *, folder: bool) -> None:
    """Refuse, before any work, a target that cannot receive this export (a folder, or one file)."""
    if not target.parent.is_dir():
        raise InvalidInput(
            "The folder {folder} does not exist.",
            code="export_out_folder_missing",
            item="out",
            folder=str(target.parent),
        )
    if folder:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InvalidInput(
                "{path} exists and is not an empty folder: a {format} export is a folder of its own.",
                code="export_out_exists",
                item="out",
                path=str(target),
                format=export_format.value,
            )
    elif target.is_dir():
        raise InvalidInput(
            "{path} is a folder: a {format} export is one file.",
            code="export_out_is_folder",
            item="out",
            path=str(target),
            format=export_format.value,
        )


def _write_failed(target: Path, error: OSError) -> ExportWriteFailed:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportWriteFailed(
            "No space left to write the export to {path}: nothing was written.",
            code="export_disk_full",
            item="out",
            path=str(target),
        )
    return ExportWriteFailed(
        "The export could not be written to {path} ({reason}): nothing was written.",
        item="out",
        path=str(target),
        reason=error.strerror or str(error),
    )


def export_write(request: ExportRequest, target: Path, progress: Progress, *, zipped: bool = False) -> ExportResult:
    """Run the writer of `request.format` and put its output at `target`, whole or not at all.

    `zipped` packs a folder export into one ZIP file at `target` (a download is one file); the
    manifest is inside and the SHA-256 is then the ZIP's own."""
    writer = WRITERS.get(request.format)
    if writer is None:
        raise InvalidInput(
            "The {format} export is not available.", code="export_format_unknown", item="format", format=request.format
        )
    target = target.absolute()
    folder_format = request.format in FOLDER_FORMATS
    _target_check(target, request.format, folder=folder_format and not zipped)
    scratch = Path(tempfile.mkdtemp(prefix=".cartrial-export-", dir=target.parent))
    try:
        out = scratch / target.name
        counts = writer(request, out, progress)
        if folder_format:
            sha256, size = _folder_manifest(out)
            if zipped:
                packed = scratch / f"{target.name}.zip"
                with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for path in sorted(p for p in out.rglob("*") if p.is_file()):
                        archive.write(path, (Path(target.stem) / path.relative_to(out)).as_posix())
                out = packed
        if not folder_format or zipped:
            sha256, size = file_sha256(out), out.stat().st_size
        if target.is_dir():
            target.rmdir()  # an empty folder named by the caller: the export takes its place
        os.replace(out, target)
    except OSError as error:
        raise _write_failed(target, error) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(path=target, sha256=sha256, size=size, counts=counts)


def export_run(
    actor: Actor, request: ExportRequest, target: Path, progress: Progress, *, centers: list[str], zipped: bool = False
) -> ExportResult:
    """Write the export (`export_write`) and record it in the audit trail; an export that cannot be
    recorded is removed, so no file leaves without its audit entry."""
    result = export_write(request, target, progress, zipped=zipped)
    try:
        with transaction.atomic():
            export_record(actor, request, result, centers=centers)
    except BaseException:
        if result.path.is_dir():
            shutil.rmtree(result.path, ignore_errors=True)
        else:
            result.path.unlink(missing_ok=True)
        raise
    return result


def export_record(actor: Actor, request: ExportRequest, result: ExportResult, *, centers: list[str]) -> None:
    """The export in the audit trail (inside the caller's transaction): who exported what (format,
    filters, how many subjects, with identity or not), when, and the SHA-256 of what left."""
    audit_record(
        actor=actor,
        event=AuditEvent.EXPORT_CREATED,
        entity="export",
        entity_id=f"{request.format.value}:{result.sha256[:16]}",
        changes=[
            Change("format", None, request.format.value),
            Change("centers", None, centers),
            Change("since", None, request.since.isoformat() if request.since else None),
            Change("subjects", None, result.counts.subjects),
            Change("records", None, result.counts.records),
            Change("identity_subjects", None, len(request.identity_subject_ids)),
            Change("file", None, {"name": result.path.name, "sha256": result.sha256, "size": result.size}),
        ],
    )
