"""Whether the navigation offers the simulation page: from the memberships the page already lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from cartrial.domain.roles import Action, Role, roles_for

register = template.Library()


@register.filter
def runs_simulation(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles may run the network simulation somewhere."""
    allowed = roles_for(Action.RUN_SIMULATION)
    return any(Role(m.role) in allowed for m in memberships)
