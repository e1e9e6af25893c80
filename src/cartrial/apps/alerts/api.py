"""API of alerts: the user's alerts (`?status=open|acknowledged`, `?kind=`) and acknowledgement."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from cartrial.apps import clock, text
from cartrial.apps.access import require_somewhere
from cartrial.apps.alerts import selectors
from cartrial.apps.alerts.presenters import alert_document
from cartrial.apps.alerts.views import alert_acknowledge_as
from cartrial.domain.roles import Action

router = Router(tags=["alerts"])


class AcknowledgeIn(Schema):
    note: str = ""


@router.get("", summary="Your alerts (subjects of your scope, roles that must act), open first")
def alerts_list(request: HttpRequest, status: str | None = None, kind: str | None = None) -> dict[str, Any]:
    require_somewhere(request.user, Action.READ_ALERTS, "alerts")
    language, now = text.api_language(request), clock.now()
    return {
        "alerts": [
            alert_document(a, now, language) for a in selectors.alerts_for(request.user, status=status, kind=kind)
        ]
    }


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an alert (the roles that must act, the investigator)")
def alert_acknowledge(request: HttpRequest, alert_id: int, payload: AcknowledgeIn) -> dict[str, Any]:
    alert = alert_acknowledge_as(request, alert_id, payload.note)
    return alert_document(alert, clock.now(), text.api_language(request))
