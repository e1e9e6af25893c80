"""API of alerts: the user's alerts (`?status=open|acknowledged`, `?kind=`), a page at a time, and
acknowledgement with a note. The same scope and rules as the notifications page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import WithJsonSchema

from cartrial.apps import clock, text
from cartrial.apps.access import require_somewhere
from cartrial.apps.alerts import selectors
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.presenters import alert_view
from cartrial.apps.alerts.views import alert_acknowledge_as
from cartrial.apps.api_contract import Page, PageQuery, changed_since, paged
from cartrial.domain.alerts import AlertKind, Severity
from cartrial.domain.roles import Action, Role

router = Router(tags=["alerts"])

# The filters, declared with their codes and checked by the selector (422 naming the item otherwise).
StatusCode = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "enum": list(selectors.STATUSES), "description": "Open or acknowledged only (default: both)"}
    ),
]
KindCode = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [k.value for k in AlertKind], "description": "One kind only"})
]


class AlertFilters(Schema):
    status: StatusCode | None = None
    kind: KindCode | None = None


class AcknowledgeIn(Schema):
    note: str = Field("", description="What was done or seen (kept with the acknowledgement)")


class AlertOut(Schema):
    id: int
    kind: AlertKind
    severity: Severity
    subject: str
    center: str
    message: str = Field(description="What happened, in the request's language")
    roles: list[Role] = Field(description="The roles that must act")
    link: str = Field(description="The page of the record")
    due_at: datetime | None
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str


def alert_out(alert: Alert, now: datetime, language: str) -> AlertOut:
    return AlertOut(
        id=alert.pk,
        kind=AlertKind(alert.kind),
        severity=Severity(alert.severity),
        subject=alert.subject.code,
        center=alert.center.code,
        message=alert_view(alert, now, language).what,
        roles=[Role(r) for r in alert.acting_roles],
        link=alert.link,
        due_at=alert.due_at,
        created_at=alert.created_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        note=alert.acknowledgement_note,
    )


@router.get(
    "", response=Page[AlertOut], summary="Your alerts (subjects of your scope, roles that must act), open first"
)
def alerts_list(request: HttpRequest, filters: Query[AlertFilters], page: Query[PageQuery]) -> Page[AlertOut]:
    """Open first, newest first within each. `since`: the alerts raised or acknowledged after it
    (the audit trail's `alert` entries)."""
    require_somewhere(request.user, Action.READ_ALERTS, "alerts")
    language, now = text.api_language(request), clock.now()
    alerts = changed_since(
        selectors.alerts_for(request.user, status=filters.status, kind=filters.kind), "alert", page.since
    )
    return paged(alerts, page, lambda a: alert_out(a, now, language))


@router.post(
    "/{alert_id}/acknowledge",
    response=AlertOut,
    summary="Acknowledge an alert (the roles that must act, the investigator)",
)
def alert_acknowledge(request: HttpRequest, alert_id: int, payload: AcknowledgeIn) -> AlertOut:
    alert = alert_acknowledge_as(request, alert_id, payload.note)
    return alert_out(alert, clock.now(), text.api_language(request))
