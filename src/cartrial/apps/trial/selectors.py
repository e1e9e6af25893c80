"""Reading trial set-up."""

from __future__ import annotations

from django.db.models import QuerySet

from cartrial.apps.trial.models import Center, ProtocolVersion


def center_list(*, center_ids: set[int]) -> QuerySet[Center]:
    """The centers among `center_ids` (the acting user's scope)."""
    return Center.objects.filter(pk__in=center_ids).order_by("code")


def protocol_version_current(*, study_code: str, version: str) -> ProtocolVersion | None:
    return ProtocolVersion.objects.filter(study_code=study_code, version=version).first()
