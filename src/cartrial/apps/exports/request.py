"""What every export writer receives and returns: the one interface between the exports' runner
(job, page, API, CLI: `apps/exports/services.py`) and the writers of each standard.

A writer is `write(request, out, progress) -> ExportCounts`. It writes into `out`, a path that does
not exist yet, inside a temporary folder: one file for odm, define, fhir and usdm, a folder it
creates for datasetjson and csv. The runner renames it into place only when the writer returned
(nothing half-written), computes its SHA-256 and records the export in the audit trail.

The runner has already applied access: `request.subject_ids` are exactly the subjects the export
may hold (the caller's scope ∩ `--center` ∩ `--subject` ∩ changed since `--since`), and identity
(name, birth date) may be written only for subjects of `request.identity_subject_ids`. A writer
never widens either; it reads trial data with the apps' selectors and streams (memory flat as the
study grows: iterate subjects in chunks, write as it goes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

# `progress(done, total)`: units of work done (subjects written, usually); the runner shows it as a
# bar (CLI) or a job's percentage (page, API).
Progress = Callable[[int, int], None]


class ExportFormat(StrEnum):
    """The CLI's `cartrial export FORMAT` words, the API's `format` values (a contract)."""

    ODM = "odm"
    DEFINE = "define"
    DATASETJSON = "datasetjson"
    FHIR = "fhir"
    USDM = "usdm"
    CSV = "csv"


# Formats written as one folder (the others are one file).
FOLDER_FORMATS: frozenset[ExportFormat] = frozenset({ExportFormat.DATASETJSON, ExportFormat.CSV})


@dataclass(frozen=True)
class ExportRequest:
    """One export, its access already resolved.

    `subject_ids`: the subjects it holds (primary keys of `subjects.Subject`), in no order.
    `center_ids`: the centers asked for (all the caller reaches when no `--center`).
    `identity_subject_ids`: the subjects whose identity may be written (⊆ subject_ids; empty for the
    CLI and for sponsor roles). `since`: only what changed after it (None: everything).
    `now`: the one time of this export (file creation time, `AsOfDateTime`).
    `requested_by`: the username (or `system:cli`) written as the file's originator.
    `study_wide`: True when no center or subject filter narrowed the export (a study snapshot).
    """

    format: ExportFormat
    subject_ids: frozenset[int]
    center_ids: frozenset[int]
    identity_subject_ids: frozenset[int]
    since: datetime | None
    now: datetime
    requested_by: str
    study_wide: bool


@dataclass(frozen=True)
class ExportCounts:
    """What a writer wrote, for the job's result, the audit entry and the CLI's last line:
    `subjects` written and `records` (data points, rows or resources, as the standard counts them)."""

    subjects: int
    records: int


class ExportWriter(Protocol):
    def __call__(self, request: ExportRequest, out: Path, progress: Progress) -> ExportCounts: ...
