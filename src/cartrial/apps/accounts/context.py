"""Template context: the user's memberships for the header (center, role)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from cartrial.apps.accounts.services import memberships_in_force


def memberships(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"my_memberships": []}
    return {"my_memberships": memberships_in_force(user)}


def language_for(user: object) -> str:
    """The language to show after login: the user's preference, else their first center's."""
    preferred = getattr(user, "language", "")
    if preferred:
        return str(preferred)
    memberships_manager = getattr(user, "memberships", None)
    if memberships_manager is not None:
        first = memberships_manager.select_related("center").order_by("center__code").first()
        if first is not None:
            return str(first.center.language)
    return str(settings.LANGUAGE_CODE)


def session_expiry(request: HttpRequest) -> dict[str, Any]:
    """Seconds a signed-in page's session lasts without activity: static/cartrial/idle.js warns a
    minute before and signs out at the end."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"session_seconds": int(settings.SESSION_COOKIE_AGE)}
