"""Reading a subject's lab observations (the caller has resolved the subject within scope)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.models import Subject


def lab_observations(*, subject: Subject, analytes: Iterable[str] | None = None) -> QuerySet[LabObservation]:
    """The subject's results, oldest first, optionally for some analytes only."""
    queryset = LabObservation.objects.filter(subject=subject)
    if analytes is not None:
        queryset = queryset.filter(analyte__in=list(analytes))
    return queryset.order_by("sampled_at", "pk")


def latest_lab_values(*, subject: Subject) -> dict[str, LabObservation]:
    """The most recent result of each analyte (screening facts, dashboards)."""
    latest: dict[str, LabObservation] = {}
    for row in lab_observations(subject=subject):
        latest[row.analyte] = row
    return latest
