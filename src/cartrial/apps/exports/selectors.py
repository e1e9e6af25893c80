"""Which subjects an export holds: the caller's scope, the `--center` and `--subject` filters and
`--since`, resolved once into an `ExportRequest` (every writer relies on it, none widens it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet

from cartrial.apps.access import Scope, centers_for, identity_visible, subject_filter
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.exports.request import ExportFormat, ExportRequest
from cartrial.apps.jobs.models import Job
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import AccessDenied, InvalidInput, NotFound
from cartrial.domain.roles import Action

# The job kind of an export (registered by `apps/exports/jobs.py`).
EXPORT_KIND = "export_data"


def export_request_resolve(
    *,
    scope: Scope | None,
    export_format: ExportFormat,
    center_codes: Sequence[str] = (),
    subject_code: str | None = None,
    since: datetime | None = None,
    now: datetime,
    requested_by: str,
) -> ExportRequest:
    """The export `scope` may take (None: the server's own command line, every center and no
    identity). Refuses, naming the item, a center that does not exist (`center`), a center the
    caller may not export (`center`), a subject outside the export (`subject`), a `since` later
    than now (`since`)."""
    centers = {c.code.upper(): c for c in Center.objects.all()}
    allowed = set(centers_for(scope, Action.EXPORT_DATA)) if scope is not None else {c.pk for c in centers.values()}
    chosen: set[int] = set()
    for code in center_codes:
        center = centers.get(code.strip().upper())
        if center is None:
            raise InvalidInput(
                "No center has the code {center}.", code="export_center_unknown", item="center", center=code
            )
        if center.pk not in allowed:
            raise AccessDenied(
                "Your roles do not allow exporting the data of center {center}.",
                code="export_center_forbidden",
                item="center",
                center=center.code,
            )
        chosen.add(center.pk)
    center_ids = chosen or allowed
    if since is not None and since > now:
        raise InvalidInput(
            "The time {since} is after now: nothing can have changed since then.",
            code="export_since_future",
            item="since",
            since=since.isoformat(),
        )
    subjects = Subject.objects.filter(Q(center_id__in=center_ids) | Q(manufacturing_site_id__in=center_ids))
    if scope is not None:
        subjects = subjects.filter(subject_filter(scope))
    if subject_code:
        subjects = subjects.filter(code=subject_code.strip().upper())
        if not subjects.exists():
            raise NotFound(
                "No subject {subject} among the subjects you may export.",
                code="export_subject_unknown",
                item="subject",
                subject=subject_code,
            )
    if since is not None:
        changed = AuditEntry.objects.filter(occurred_at__gt=since).exclude(subject_code="").values("subject_code")
        subjects = subjects.filter(code__in=changed)
    chosen_subjects = list(subjects.only("pk", "center_id"))
    identity = (
        frozenset(s.pk for s in chosen_subjects if identity_visible(scope, s)) if scope is not None else frozenset()
    )
    return ExportRequest(
        format=export_format,
        subject_ids=frozenset(s.pk for s in chosen_subjects),
        center_ids=frozenset(center_ids),
        identity_subject_ids=identity,
        since=since,
        now=now,
        requested_by=requested_by,
        study_wide=not center_codes and not subject_code,
    )


def since_parse(text: str) -> datetime:
    """`--since` / `since=`: an ISO 8601 time with its offset (`2026-11-01T08:00:00+01:00`, `…Z`),
    or a date (midnight UTC). A time without an offset is refused: the centers are in several
    time zones and the audit trail is in UTC, so a bare time would be a guess."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "'{since}' is not an ISO 8601 time (2026-11-01T08:00:00+01:00, or a date 2026-11-01).",
            code="export_since_invalid",
            item="since",
            since=text,
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(
            "'{since}' has no time zone offset: add one (+01:00, Z).",
            code="export_since_without_offset",
            item="since",
            since=text,
        )
    return moment


def exports_of(scope: Scope) -> QuerySet[Job]:
    """The user's own exports, newest first. An export is its requester's alone, even for the
    sponsor's roles who follow every job: it may hold identity the others may not see."""
    return Job.objects.filter(kind=EXPORT_KIND, requested_by_id=scope.user_id).order_by("-created_at", "-pk")


def export_get(scope: Scope, job_id: int) -> Job:
    """The user's export `job_id`; NotFound for anyone else's (never saying it exists)."""
    job = exports_of(scope).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No export #{job} of yours.", code="export_not_found", job=job_id)
    return job


def export_file(scope: Scope, job_id: int) -> tuple[Path, str, str]:
    """The kept file of the user's finished export `job_id`: its path, download name and SHA-256;
    NotFound for anyone else's, an unfinished one, or a file no longer kept."""
    job = export_get(scope, job_id)
    result = job.result if job.status == Job.Status.DONE and isinstance(job.result, dict) else {}
    stored_as = str(result.get("stored_as", ""))
    path = Path(settings.CARTRIAL_EXPORT_DIR) / stored_as
    if not stored_as or Path(stored_as).name != stored_as or not path.is_file():
        raise NotFound("Export #{job} has no file to download.", code="export_file_missing", job=job_id)
    return path, str(result.get("file", stored_as)), str(result.get("sha256", ""))
