"""Subject reads, always scoped by the acting user (never `Subject.objects` in a view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from cartrial.apps.accounts.access import Scope, access_can_see_identity, access_subject_filter
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import EligibilityAssessment, PathwayEvent, Subject


def subject_list(*, scope: Scope, center_code: str | None = None, state: str | None = None) -> QuerySet[Subject]:
    """Subjects the user may see, with their center, optionally filtered."""
    queryset = Subject.objects.filter(access_subject_filter(scope)).select_related("center")
    if center_code:
        queryset = queryset.filter(center__code=center_code)
    if state:
        queryset = queryset.filter(state=state)
    return queryset.order_by("center__code", "number")


def subject_get(*, scope: Scope, code: str) -> Subject:
    """One subject by code within scope; Subject.DoesNotExist otherwise (the web answers 404)."""
    return (
        Subject.objects.filter(access_subject_filter(scope))
        .select_related("center", "manufacturing_site", "protocol_version")
        .prefetch_related(
            Prefetch("pathway_events", queryset=PathwayEvent.objects.select_related("actor", "signature")),
            "consents",
        )
        .get(code=code.upper())
    )


def subject_identity(*, scope: Scope, subject: Subject) -> dict[str, Any] | None:
    """Decrypted identity for the center's own staff; None for everyone else (pseudonymous view)."""
    if not access_can_see_identity(scope, subject.center_id):
        return None
    return identity_decrypt(subject.identity.ciphertext)


def subject_latest_assessment(*, subject: Subject) -> EligibilityAssessment | None:
    return subject.eligibility_assessments.order_by("-assessed_at", "-pk").first()


@dataclass(frozen=True)
class StateCount:
    state: str
    count: int


def subject_counts_by_state(*, scope: Scope) -> list[StateCount]:
    """How many subjects stand in each state (dashboard), one query."""
    rows = (
        Subject.objects.filter(access_subject_filter(scope)).values("state").annotate(n=Count("pk")).order_by("state")
    )
    return [StateCount(row["state"], row["n"]) for row in rows]
