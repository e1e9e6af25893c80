"""Rendering the domain's messages with Django's gettext: the adapters' half of the one mechanism.

Pages render in the language Django activated for the request (the user's choice, else the
center's French); API answers in the request's `Accept-Language` (English by default); both
read the one catalog of `cartrial/locale`. See `cartrial.domain.text` for how texts are marked.
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest
from django.utils import translation

from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.text import Message, render_value

LANGUAGES = ("fr", "en")


def current_language() -> str:
    """The language of the page being rendered (Django's active language)."""
    language = (translation.get_language() or "fr")[:2]
    return language if language in LANGUAGES else "en"


def api_language(request: HttpRequest) -> str:
    """The language of an API answer: `Accept-Language: fr…` gives French, anything else English."""
    header = request.headers.get("Accept-Language", "en")
    return "fr" if header.lower().startswith("fr") else "en"


def tr(msgid: str, language: str | None = None) -> str:
    """One label (msgid) in `language` (default: the page's)."""
    if language is None:
        return translation.gettext(msgid)
    with translation.override(language):
        return translation.gettext(msgid)


def render(message: Message, language: str | None = None) -> str:
    """A domain message in `language` (default: the page's)."""
    language = language or current_language()
    with translation.override(language):
        return message.render(translation.gettext, language)


def error_text(error: DomainError, language: str | None = None) -> str:
    """What a refusal says to the person who tried, in their language."""
    return render(error.message, language)


def value_text(value: object, language: str | None = None) -> str:
    """A parameter-like value (number, date, label message) as text in `language`."""
    language = language or current_language()
    with translation.override(language):
        return render_value(value, translation.gettext, language)


class FormInvalid(InvalidInput):
    """A form (step, action, calculator) refused some fields; `fields` says which and why."""

    code = "invalid_input"
    fields: list[dict[str, str]]


def form_invalid(form: forms.Form, language: str | None = None) -> FormInvalid:
    """The refusal of an invalid bound form, its field messages in `language` (the API's)."""
    with translation.override(language or current_language()):
        fields = [
            {"field": name, "message": " ".join(str(m) for m in messages)} for name, messages in form.errors.items()
        ]
    error = FormInvalid(
        "The data is not valid: {fields}.",
        item=fields[0]["field"] if fields else None,
        fields=[f["field"] for f in fields],
    )
    error.fields = fields
    return error
