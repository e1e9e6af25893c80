"""The eligibility verdict and its scores in the reader's language.

The domain words each explanation as a message; a stored verdict keeps it as English text (what is
signed) and as message data, rendered here from the project catalog. A verdict stored before the
message data existed is shown as its English text.
"""

from __future__ import annotations

from collections.abc import Mapping

from django import template
from django.utils import translation

from cartrial.domain.clinical_labels import clinical_label as domain_clinical_label
from cartrial.domain.scores.registry import CALCULATORS
from cartrial.domain.text import message_from_data
from cartrial.locale import render

register = template.Library()


def _language() -> str:
    return (translation.get_language() or "fr")[:2]


def _rendered(data: object, fallback: object = "") -> str:
    if isinstance(data, Mapping) and "msgid" in data:
        return render(message_from_data(data), _language())
    return str(fallback)


@register.filter
def explanation(criterion: Mapping[str, object]) -> str:
    """A stored criterion's explanation in the reader's language."""
    return _rendered(criterion.get("explanation_message"), criterion.get("explanation", ""))


@register.filter
def notes(evaluation: Mapping[str, object]) -> list[str]:
    """A stored evaluation's notes (scores not computed, values below quantification) in the reader's language."""
    stored = evaluation.get("notes_messages")
    if isinstance(stored, list):
        return [_rendered(note) for note in stored]
    english = evaluation.get("notes")
    return [str(note) for note in english] if isinstance(english, list) else []


@register.filter
def clinical_label(code: str) -> str:
    """A contract code (`organic_brain_syndrome`) as its label in the reader's language."""
    return translation.gettext(domain_clinical_label(str(code)))


@register.filter
def calculator_title(name: str) -> str:
    """A calculator's title in the reader's language (its contract name when unknown)."""
    calculator = CALCULATORS.get(str(name))
    return translation.gettext(calculator.title) if calculator else str(name)
