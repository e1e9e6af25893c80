"""An export as a background job (`export_data`), requested from the exports page or the API.

The requester's access is resolved when the job is requested (`resolve`): the stored parameters
hold exactly the subjects the requester could export then, and whose identity; the worker never
widens them, whoever queued the job. The file is kept on disk under CARTRIAL_EXPORT_DIR (an export
can be larger than a database row should hold) and served only to its requester.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

from cartrial.apps import clock
from cartrial.apps.access import scope_for
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.services import Actor
from cartrial.apps.exports.request import FOLDER_FORMATS, ExportFormat, ExportRequest
from cartrial.apps.exports.selectors import EXPORT_KIND, export_request_resolve, since_parse
from cartrial.apps.exports.services import export_run
from cartrial.apps.jobs.registry import JobKind, JobOutcome, ProgressReport, job_kind_register
from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.text import N_, Message


class ExportDataParameters(BaseModel):
    """What a request of `export_data` sends (`export_parameters` checks it and resolves the access)."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(description="The standard written")
    centers: list[str] = Field([], description="Center codes to export (none: every center you may export)")
    subject: str | None = Field(None, description="One subject's code")
    since: str | None = Field(
        None,
        description="Only what changed after this time: ISO 8601 with its offset (2026-11-01T08:00:00+01:00) "
        "or a date (midnight UTC)",
    )


class ExportDataResult(BaseModel):
    """What `export_job_run` returns."""

    format: ExportFormat
    file: str = Field(description="The download's file name")
    stored_as: str = Field(description="The kept file's name under CARTRIAL_EXPORT_DIR")
    sha256: str
    size: int = Field(description="Bytes")
    subjects: int
    records: int


ACCEPTED = frozenset(ExportDataParameters.model_fields)

# The download's name by format (a folder export is downloaded as one ZIP).
FILE_NAMES: dict[ExportFormat, str] = {
    ExportFormat.ODM: "odm.xml",
    ExportFormat.DEFINE: "define.xml",
    ExportFormat.DATASETJSON: "sdtm-datasetjson.zip",
    ExportFormat.FHIR: "fhir-bundle.json",
    ExportFormat.USDM: "usdm.json",
    ExportFormat.CSV: "tables.zip",
}


def export_dir() -> Path:
    """The folder of the kept exports (created on first use)."""
    folder = Path(settings.CARTRIAL_EXPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def export_format_parse(value: object) -> ExportFormat:
    """The format word of a request, or InvalidInput naming `format` with the accepted words."""
    try:
        return ExportFormat(str(value))
    except ValueError:
        raise InvalidInput(
            "'{value}' is not an export format ({accepted}).",
            code="export_format_unknown",
            item="format",
            value=value,
            accepted=", ".join(f.value for f in ExportFormat),
        ) from None


def export_parameters(parameters: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """The request's filters checked and its access resolved for `actor` (the job's `resolve`)."""
    unknown = sorted(set(parameters) - ACCEPTED)
    if unknown:
        raise InvalidInput(
            "Unknown export parameters: {names}.", code="export_parameters_invalid", item="parameters", names=unknown
        )
    export_format = export_format_parse(parameters.get("format"))
    centers = parameters.get("centers") or []
    if isinstance(centers, str):
        centers = [centers]
    if not isinstance(centers, list) or not all(isinstance(c, str) for c in centers):
        raise InvalidInput("Centers are a list of center codes.", code="export_centers_invalid", item="centers")
    subject = parameters.get("subject") or None
    since_text = parameters.get("since") or None
    since = since_parse(str(since_text)) if since_text else None
    user = User.objects.get(pk=actor.recording_user_id)
    request = export_request_resolve(
        scope=scope_for(user),
        export_format=export_format,
        center_codes=centers,
        subject_code=str(subject) if subject else None,
        since=since,
        now=actor.now,
        requested_by=actor.username,
    )
    return {
        "format": export_format.value,
        "centers": sorted(c.strip().upper() for c in centers),
        "subject": str(subject).strip().upper() if subject else None,
        "since": since.isoformat() if since else None,
        "subject_ids": sorted(request.subject_ids),
        "center_ids": sorted(request.center_ids),
        "identity_subject_ids": sorted(request.identity_subject_ids),
        "study_wide": request.study_wide,
        "requester": {
            "user_id": actor.user_id,
            "username": actor.username,
            "role": actor.role,
            "center_code": actor.center_code,
        },
    }


def export_job_run(parameters: Mapping[str, Any], progress: ProgressReport) -> JobOutcome:
    """Write the export into the kept folder, record it in the audit trail in the requester's
    name, and return where it is, its SHA-256 and size."""
    now = clock.now()
    export_format = ExportFormat(parameters["format"])
    requester = parameters["requester"]
    request = ExportRequest(
        format=export_format,
        subject_ids=frozenset(parameters["subject_ids"]),
        center_ids=frozenset(parameters["center_ids"]),
        identity_subject_ids=frozenset(parameters["identity_subject_ids"]),
        since=datetime.fromisoformat(parameters["since"]) if parameters.get("since") else None,
        now=now,
        requested_by=requester["username"],
        study_wide=bool(parameters["study_wide"]),
    )
    name = FILE_NAMES[export_format]
    stored_as = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}-{name}"

    def written(done: int, total: int) -> None:
        progress.step(done, total, Message(N_("{done} of {total} subjects written"), {"done": done, "total": total}))

    actor = Actor(
        user_id=requester["user_id"],
        username=requester["username"],
        role=requester["role"],
        center_code=requester["center_code"],
        now=now,
    )
    folder = export_format in FOLDER_FORMATS
    result = export_run(actor, request, export_dir() / stored_as, written, centers=parameters["centers"], zipped=folder)
    return JobOutcome(
        {
            "format": export_format.value,
            "file": name,
            "stored_as": stored_as,
            "sha256": result.sha256,
            "size": result.size,
            "subjects": result.counts.subjects,
            "records": result.counts.records,
        }
    )


def export_summary(result: Mapping[str, Any]) -> Message:
    return Message(
        N_("{format} export: {subjects} subjects, {records} records, {size} bytes."),
        {
            "format": result.get("format", ""),
            "subjects": result.get("subjects", 0),
            "records": result.get("records", 0),
            "size": result.get("size", 0),
        },
    )


def register() -> None:
    """The export's kind (called by `ExportsConfig.ready`)."""
    job_kind_register(
        JobKind(
            code=EXPORT_KIND,
            label=N_("Export the trial's data in a standard"),
            action=Action.EXPORT_DATA,
            run=export_job_run,
            resolve=export_parameters,
            summary=export_summary,
            result_view="exports:export_download",
            parameters_schema=ExportDataParameters,
            result_schema=ExportDataResult,
        )
    )
