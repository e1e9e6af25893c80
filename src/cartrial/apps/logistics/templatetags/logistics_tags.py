"""Template helpers of the logistics pages: times in the center's zone with UTC beside, the panel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import template
from django.utils import translation
from django.utils.html import format_html

from cartrial.apps.logistics.selectors import subject_logistics
from cartrial.domain.manufacturing import BATCH_STATUS_LABELS, BatchStatus

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
    data = subject_logistics(subject)
    last = data.custody[-1] if data.custody else None
    batch = data.batches[-1] if data.batches else None
    return {
        "subject": subject,
        "data": data,
        "holder": last,
        "batch": batch,
        "open_deviations": len(data.deviations),
        "time_zone": subject.center.time_zone,
    }


@register.filter
def batch_status(value: str) -> str:
    """A batch status in the user's language."""
    return translation.gettext(BATCH_STATUS_LABELS[BatchStatus(value)])


DEVIATION_KIND_LABELS = {
    "scan_mismatch": {"en": "Scanned code does not match", "fr": "Code scanné discordant"},
    "bedside_mismatch": {"en": "Bedside identity mismatch", "fr": "Discordance d'identité au lit du patient"},
    "temperature_excursion": {"en": "Temperature excursion", "fr": "Excursion de température"},
    "transit_time": {"en": "Transit time beyond the limit", "fr": "Durée de transport au-delà de la limite"},
}


@register.filter
def deviation_kind(value: str) -> str:
    """A deviation's kind in the user's language."""
    language = (translation.get_language() or "fr")[:2]
    labels = DEVIATION_KIND_LABELS.get(value, {"en": value})
    return labels.get(language, labels["en"])


@register.simple_tag
def deviation_message(deviation: Any) -> str:
    """The deviation's message in the user's language (both are recorded)."""
    language = (translation.get_language() or "fr")[:2]
    return str(deviation.message_fr if language == "fr" and deviation.message_fr else deviation.message)


_HOLDER_FR = (
    ("· apheresis unit", "· unité d'aphérèse"),
    ("· manufacturing", "· fabrication"),
    ("· pharmacy", "· pharmacie"),
    ("· bedside", "· lit du patient"),
    (" · shipper ", " · conteneur "),
)


@register.filter
def holder(value: str | None) -> str:
    """A custody holder or item as recorded (English codes), shown in the user's language."""
    if value is None:
        return "—"
    if (translation.get_language() or "fr")[:2] != "fr":
        return value
    text = value
    for english, french in _HOLDER_FR:
        text = text.replace(english, french)
    for english, french in (("courier ", "transporteur "), ("material ", "matériel "), ("product ", "produit ")):
        if text.startswith(english):
            text = french + text[len(english) :]
    return text
