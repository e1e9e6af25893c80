"""The username django-axes counts failed logins under (AXES_USERNAME_CALLABLE).

Logins accept a username in any case, so the lock-out must count `BDX.Investigator` and
`bdx.investigator` as the same person; otherwise changing case would give five more tries.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from cartrial.domain.usernames import username_key


def username_for_lockout(request: HttpRequest | None, credentials: dict[str, Any] | None = None) -> str | None:
    """The typed username in its comparison form, from the credentials or else the login form."""
    typed = None
    if credentials:
        typed = credentials.get("username")
    elif request is not None:
        typed = getattr(request, "data", request.POST).get("username")
    return username_key(str(typed)) if typed else None
