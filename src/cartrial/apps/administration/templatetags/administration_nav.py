"""Whether the navigation offers the administration and the study's audit trail: from the
memberships the page already lists (no query of its own)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from cartrial.domain.roles import Action, Role, roles_for

register = template.Library()


@register.filter
def administers(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles administers centers, users and tokens (the sponsor's administrator)."""
    allowed = roles_for(Action.ADMINISTER)
    return any(Role(m.role) in allowed for m in memberships)


@register.filter
def reads_study_audit(memberships: Iterable[Any]) -> bool:
    """True when one of the user's roles reads the study's audit trail."""
    allowed = roles_for(Action.READ_STUDY_AUDIT)
    return any(Role(m.role) in allowed for m in memberships)
