"""The project's gettext catalog, read without Django (CLI, domain tests); Django reads the same files.

`translator("fr")` returns a function msgid → French text from `fr/LC_MESSAGES/django.mo`, the
catalog pages use too, so a text has one translation wherever it is shown.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from cartrial.domain.text import Message, Translate

LOCALE_DIR = Path(__file__).resolve().parent
LANGUAGES = ("fr", "en")


@cache
def translator(language: str) -> Translate:
    """msgid → text in `language` (the msgid itself for English or an unknown language)."""
    if language == "en" or language not in LANGUAGES:
        return _identity
    catalog = gettext.translation("django", localedir=LOCALE_DIR, languages=[language], fallback=True)
    return catalog.gettext


def _identity(msgid: str) -> str:
    return msgid


def render(message: Message, language: str) -> str:
    """A domain message in `language`, outside Django."""
    return message.render(translator(language), language)
