"""Template context: the user's memberships for the header (center, role)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def memberships(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"my_memberships": []}
    return {"my_memberships": list(user.memberships.select_related("center").order_by("center__code"))}
