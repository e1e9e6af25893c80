"""Whether the navigation offers the study and safety dashboards: from the memberships the page already
lists (no query of its own)."""

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


@register.filter
def reads_safety_dashboard(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles may read safety data somewhere (the safety dashboard's action)."""
    allowed = roles_for(Action.READ_SAFETY)
    return any(Role(m.role) in allowed for m in memberships)


@register.filter
def manages_capacities(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles sets the network's capacities up (the sponsor's administrator)."""
    allowed = roles_for(Action.MANAGE_CAPACITIES)
    return any(Role(m.role) in allowed for m in memberships)


@register.filter
def follows_reservations(memberships: Iterable[Any]) -> bool:
    """True for the lab: its manufacturing reservations have a page of their own."""
    return any(Role(m.role) is Role.MANUFACTURING for m in memberships)


@register.filter
def follows_replanning(memberships: Iterable[Any]) -> bool:
    """True for who books chains or decides re-planning proposals: the proposals have a page."""
    allowed = roles_for(Action.BOOK_SLOTS) | roles_for(Action.DECIDE_REPLAN) | roles_for(Action.DECIDE_NETWORK_REPLAN)
    return any(Role(m.role) in allowed for m in memberships)


@register.filter
def plans_network(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles plans the network's calendar (the planner page)."""
    allowed = roles_for(Action.PLAN_NETWORK)
    return any(Role(m.role) in allowed for m in memberships)


@register.filter
def exports_data(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles exports the trial's data (the exports page)."""
    allowed = roles_for(Action.EXPORT_DATA)
    return any(Role(m.role) in allowed for m in memberships)
