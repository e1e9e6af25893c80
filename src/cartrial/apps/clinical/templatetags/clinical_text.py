"""The eligibility explanations in the reader's language.

The domain words each criterion's explanation in English, and that text is what is stored,
hashed and signed. A French page shows the same sentence rendered in French here, phrase by
phrase (the phrases are the finite set `domain/eligibility.py` produces); anything unknown is
left as written rather than guessed.
"""

from __future__ import annotations

import re

from django import template
from django.utils import translation

register = template.Library()

_FRENCH: tuple[tuple[str, str], ...] = (
    (r"^Met: ", "Rempli : "),
    (r"^Not met: ", "Non rempli : "),
    (r"^Missing data: ", "Donnée manquante : "),
    (r"^No rule in the protocol: to be attested$", "Pas de règle dans le protocole : à attester"),
    (r"^attested by the investigator$", "attesté par l'investigateur"),
    (r"(\S+) is missing", r"\1 manquant"),
    (r"(\S+) is (.*?), which ", r"\1 = \2, "),
    (r", is between (\S+) and (\S+) inclusive", r", compris entre \1 et \2 inclus"),
    (r", is outside (\S+) to (\S+)", r", hors de l'intervalle \1 à \2"),
    (r", is one of ", ", parmi "),
    (r", is none of ", ", hors de "),
    (r", is not ", ", différent de "),
    (r", is ([≥>≤<]) ", r", \1 "),
    (r", is ", ", égal à "),
    (r", does not include ", ", n'inclut pas "),
    (r", includes none of ", ", n'inclut aucun de "),
    (r", includes ", ", inclut "),
    (r", has (\d+) distinct entr(?:y|ies), not at least (\d+)", r", \1 élément(s) distinct(s), moins de \2"),
    (r", has (\d+) distinct entr(?:y|ies), not at most (\d+)", r", \1 élément(s) distinct(s), plus de \2"),
    (r", has (\d+) distinct entr(?:y|ies), at least (\d+)", r", \1 élément(s) distinct(s), au moins \2"),
    (r", has (\d+) distinct entr(?:y|ies), at most (\d+)", r", \1 élément(s) distinct(s), au plus \2"),
    (r"\bnot \(", "non ("),
    (r"\btrue\b", "vrai"),
    (r"\bfalse\b", "faux"),
    (r"(\d) years\b", r"\1 ans"),
)


def explanation_in(text: str, language: str) -> str:
    """`text` (an English explanation from the domain) in `language` ("fr" or "en")."""
    if not language.startswith("fr"):
        return text
    for pattern, replacement in _FRENCH:
        text = re.sub(pattern, replacement, text)
    return text


@register.filter
def explanation(text: str) -> str:
    return explanation_in(str(text), translation.get_language() or "fr")


@register.filter
def fact_value(value: object) -> str:
    """A fact as a reader expects it: yes/no for booleans, lists without brackets, — when missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(translation.gettext("Yes") if value else translation.gettext("No"))
    if isinstance(value, list | tuple):
        return ", ".join(str(entry) for entry in value) or "∅"
    return str(value)
