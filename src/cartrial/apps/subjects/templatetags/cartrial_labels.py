"""Labels for stored codes (verdicts, criterion outcomes), in the user's language."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.roles import ROLE_LABELS, Role

register = template.Library()


@register.filter
def verdict_label(code: str) -> str:
    return {
        "eligible": _("Eligible"),
        "not_eligible": _("Not eligible"),
        "incomplete": _("Incomplete (missing data)"),
    }.get(code, code)


@register.filter
def outcome_label(code: str) -> str:
    return {"met": _("Met"), "not_met": _("Not met"), "missing": _("Missing data")}.get(code, code)


@register.filter
def get_item(mapping: dict[str, str], key: str) -> str:
    """`mapping[key]` in a template (criterion texts by id)."""
    return mapping.get(key, "")


@register.filter
def role_label(code: str) -> str:
    """A role code as its label in the current language ('coordinator' → 'Coordinateur (ARC/TEC)')."""
    try:
        return _(ROLE_LABELS[Role(code)])
    except ValueError:
        return code


@register.filter
def unit(code: str | None) -> str:
    """A stored unit as the reader's language writes it ('cells/µL' → 'cellules/µL'); stored data keeps the code."""
    return _(unit_label(str(code))) if code else ""


@register.filter
def memberships_summary(memberships: Iterable[Any]) -> str:
    """The user's memberships in a few words for the top bar ('Data manager · 5 centers'): the full
    list (`memberships_list`) would push the navigation into one column."""
    rows = list(memberships)
    if len(rows) <= 1:
        return memberships_list(rows)
    roles = sorted({m.role for m in rows})
    centers = len({m.center.code for m in rows})
    if len(roles) == 1:
        count = ngettext("%(count)d center", "%(count)d centers", centers) % {"count": centers}
        return f"{role_label(roles[0])} · {count}"
    return (
        ngettext("%(count)d role", "%(count)d roles", len(roles)) % {"count": len(roles)}
        + " · "
        + ngettext("%(count)d center", "%(count)d centers", centers) % {"count": centers}
    )


@register.filter
def memberships_list(memberships: Iterable[Any]) -> str:
    """Every membership as 'BDX · Coordinator (CRA/TEC)', comma-separated."""
    return ", ".join(f"{m.center.code} · {role_label(m.role)}" for m in memberships)
