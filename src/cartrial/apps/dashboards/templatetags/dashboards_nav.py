"""Whether the navigation offers the study dashboard: from the memberships the page already lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from cartrial.domain.roles import Action, Role, roles_for

register = template.Library()


@register.filter
def reads_study_dashboard(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles may read the study dashboard somewhere."""
    allowed = roles_for(Action.READ_STUDY_DASHBOARD)
    return any(Role(m.role) in allowed for m in memberships)
