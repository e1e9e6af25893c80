"""Template helpers of the logistics pages: times in the center's zone with UTC beside, the panel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext

from cartrial.apps.logistics.selectors import subject_logistics
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.deviations import DeviationStatus
from cartrial.domain.manufacturing import BATCH_STATUS_LABELS, BatchStatus
from cartrial.domain.text import N_

register = template.Library()


@register.filter
def local_utc(value: datetime | None, time_zone: str) -> str:
    """`2026-11-20 14:05 CET (13:05 UTC)`: local time for people, UTC for shipments across zones."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(time_zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({value.astimezone(UTC):%H:%M} UTC)"


@register.simple_tag
def boxed(text: str, check_character: str) -> str:
    """An eye-readable code with its check character in a box, as printed on the label."""
    return format_html('<span class="code-eye">{}</span> <span class="check-box">{}</span>', text, check_character)


@register.inclusion_tag("logistics/_panel_summary.html", takes_context=True)
def logistics_panel(context: dict[str, Any]) -> dict[str, Any]:
    subject = context["subject"]
    data = subject_logistics(subject, protocol_in_force())
    last = data.custody[-1] if data.custody else None
    batch = data.batches[-1] if data.batches else None
    return {
        "subject": subject,
        "data": data,
        "holder": last,
        "batch": batch,
        "open_deviations": sum(d.status != DeviationStatus.CLOSED for d in data.deviations),
        "time_zone": subject.center.time_zone,
    }


@register.filter
def batch_status(value: str) -> str:
    """A batch status in the user's language."""
    return gettext(BATCH_STATUS_LABELS[BatchStatus(value)])


# Custody holders are recorded as stable English codes ("BDX · pharmacy"); people read them translated.
_HOLDER_PARTS = (
    ("· apheresis unit", N_("· apheresis unit")),
    ("· manufacturing", N_("· manufacturing")),
    ("· pharmacy", N_("· pharmacy")),
    ("· bedside", N_("· bedside")),
    (" · shipper ", N_(" · shipper ")),
)
_HOLDER_PREFIXES = (
    ("courier ", N_("courier ")),
    ("material ", N_("material ")),
    ("product ", N_("product ")),
    ("patient ", N_("patient ")),
)


@register.filter
def holder(value: str | None) -> str:
    """A custody holder or item as recorded (stable codes), shown in the user's language."""
    if value is None:
        return "—"
    text = value
    for recorded, msgid in _HOLDER_PARTS:
        text = text.replace(recorded, gettext(msgid))
    for recorded, msgid in _HOLDER_PREFIXES:
        if text.startswith(recorded):
            text = gettext(msgid) + text[len(recorded) :]
    return text
