"""Which subjects an export holds: the caller's scope, the `--center` and `--subject` filters and
`--since`, resolved once into an `ExportRequest` (every writer relies on it, none widens it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Q

from cartrial.apps.access import Scope, centers_for, identity_visible, subject_filter
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.exports.request import ExportFormat, ExportRequest
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import AccessDenied, InvalidInput, NotFound
from cartrial.domain.roles import Action


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
