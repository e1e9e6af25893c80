"""Alerts as a reader sees them: the message, who must act, severity, age and due, in the page's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import translation

from cartrial.apps import text
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.services import alert_text
from cartrial.domain.alerts import SEVERITY_LABELS, Severity, alert_spec
from cartrial.domain.roles import ROLE_LABELS, Role


@dataclass(frozen=True)
class AlertView:
    alert: Alert
    kind: str
    what: str
    who: str
    severity: str
    age_days: int
    overdue: bool


def alert_view(alert: Alert, now: datetime, language: str | None = None) -> AlertView:
    """One alert in `language` (default: the page's)."""
    language = language or text.current_language()
    with translation.override(language):
        return AlertView(
            alert=alert,
            kind=translation.gettext(alert_spec(alert.kind).label),
            what=text.render(alert_text(alert), language),
            who=", ".join(translation.gettext(ROLE_LABELS[Role(r)]) for r in alert.acting_roles),
            severity=translation.gettext(SEVERITY_LABELS[Severity(alert.severity)]),
            age_days=max(0, (now - alert.created_at).days),
            overdue=alert.due_at is not None and alert.acknowledged_at is None and alert.due_at < now,
        )
