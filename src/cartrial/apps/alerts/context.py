"""Template context: the number of open alerts of the user, for the badge of the top navigation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from cartrial.apps.alerts.selectors import open_alert_count


def open_alerts(request: HttpRequest) -> dict[str, Any]:
    """One query (a COUNT over the user's memberships); nothing for an anonymous visitor."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"open_alert_count": 0}
    return {"open_alert_count": open_alert_count(user)}
