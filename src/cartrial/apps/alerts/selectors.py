"""Reads of alerts, scoped by the reading user: the alerts of the centers where the user holds a
role the alert names (the roles that must act), and every alert of a center for its investigators.

The scope is one `EXISTS` over the user's memberships, so the list and the badge's count are one
query each whatever the number of centers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat, StrIndex

from cartrial.apps import clock
from cartrial.apps.accounts.models import Membership, membership_current
from cartrial.apps.alerts.models import Alert
from cartrial.domain.alerts import AlertKind
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.roles import Role

STATUSES = ("open", "acknowledged")


def _reader_membership(user: Any) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(
            membership_current(clock.now()), user_id=user.pk, center_id=OuterRef("center_id"), center__active=True
        )
        .annotate(named=StrIndex(OuterRef("roles"), Concat(Value(","), F("role"), Value(","))))
        .filter(Q(role=Role.INVESTIGATOR.value) | Q(named__gt=0))
    )


def alerts_for(user: Any, *, status: str | None = None, kind: str | None = None) -> QuerySet[Alert]:
    """The user's alerts, open first (newest first within each), optionally by status and kind."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Alert.objects.none()
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            "Unknown alert status '{status}' (accepted: {accepted}).",
            code="invalid_status",
            item="status",
            status=status,
            accepted=list(STATUSES),
        )
    if kind is not None and kind not in {k.value for k in AlertKind}:
        raise InvalidInput(
            "Unknown alert kind '{kind}' (accepted: {accepted}).",
            code="invalid_kind",
            item="kind",
            kind=kind,
            accepted=[k.value for k in AlertKind],
        )
    queryset = Alert.objects.filter(Exists(_reader_membership(user)))
    if status is not None:
        queryset = queryset.filter(acknowledged_at__isnull=status == "open")
    if kind is not None:
        queryset = queryset.filter(kind=kind)
    return queryset.select_related("subject", "center", "acknowledged_by").order_by(
        F("acknowledged_at").asc(nulls_first=True), "-created_at", "-pk"
    )


def open_alert_count(user: Any) -> int:
    """The badge: the user's unacknowledged alerts (one COUNT query)."""
    return alerts_for(user, status="open").count()


def alert_get(user: Any, alert_id: int) -> Alert:
    """An alert of the user's scope; NotFound otherwise (never revealing that it exists)."""
    alert = alerts_for(user).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No alert {alert} in your scope.", code="not_found", alert=alert_id)
    return alert


def keys_raised(kind: AlertKind, subject_ids: Iterable[int]) -> set[tuple[int, str]]:
    """(subject id, key) of every alert of `kind` ever raised on these subjects, acknowledged or not:
    for a raiser whose stages are alerted once for good (an SAE report due, then overdue), not only
    while open. One query (a system read, not a user's)."""
    return set(Alert.objects.filter(kind=kind.value, subject_id__in=list(subject_ids)).values_list("subject_id", "key"))
