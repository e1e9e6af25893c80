"""Labels for stored codes (verdicts, criterion outcomes), in the user's language."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

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
