"""Text shown to people, kept translatable: the one translation mechanism is gettext.

Every user-visible text in code is an English msgid, marked where it is written: `N_("...")`
for labels and templates, or the literal first argument of a `DomainError` (see errors.py).
The French text lives in one gettext catalog (`cartrial/locale/fr/LC_MESSAGES/django.po`),
read by Django for pages and API answers, and by `cartrial.locale.translator` elsewhere.

A `Message` is a msgid with its parameters; it is rendered in a language only by an adapter
(page, API, CLI), through a `translate` function, so the domain never chooses a language.
Parameters may themselves be messages (a state's label inside a refusal) or lists of them.
Numbers are written the way the reader's language writes them (a decimal comma in French).

Protocol texts (criterion wording, form labels) are data of the versioned protocol file and carry
their own translations there (`protocol_text`): they change with an amendment, not a release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

Translate = Callable[[str], str]


def N_(msgid: str) -> str:
    """Mark a text for the catalog without translating it now (rendered later by an adapter)."""
    return msgid


def _untranslated(msgid: str) -> str:
    return msgid


@dataclass(frozen=True)
class Message:
    """A msgid (English, `{name}` placeholders) and its parameters, rendered later in a language."""

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, translate: Translate = _untranslated, language: str = "en") -> str:
        """The text in the language of `translate`; unknown placeholders are left as written."""
        values = {name: render_value(value, translate, language) for name, value in self.params.items()}
        for template in (translate(self.msgid), self.msgid):
            try:
                return template.format_map(_Defaulting(values))
            except (ValueError, IndexError, AttributeError):
                # A broken placeholder must not hide the message: try English, then the raw text.
                continue
        return self.msgid

    def __str__(self) -> str:
        return self.render()


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class ProtocolText:
    """A text of the protocol file (`{en, fr}`) used as a parameter of a message: shown in the reader's
    language, e.g. the protocol's name of a release test inside a refusal."""

    texts: Mapping[str, str]

    def __str__(self) -> str:
        return protocol_text(self.texts, "en")


def render_value(value: object, translate: Translate = _untranslated, language: str = "en") -> str:
    """One parameter as text: messages translated, lists joined, numbers in the reader's notation."""
    if isinstance(value, Message):
        return value.render(translate, language)
    if isinstance(value, ProtocolText):
        return protocol_text(value.texts, language)
    if isinstance(value, bool):
        return translate(N_("yes") if value else N_("no"))
    if isinstance(value, float | int):
        return format_number(value, language)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(render_value(item, translate, language) for item in value)
    return str(value)


def format_number(value: float, language: str = "en") -> str:
    """A number as a clinician reads it: no trailing zeros, a decimal comma in French."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if "e" in text and isinstance(value, float):
        text = f"{value:.6g}"
    return text.replace(".", ",") if language == "fr" else text


def label(msgid: str) -> Message:
    """A translatable label used as a parameter of another message."""
    return Message(msgid)


def labels(msgids: Sequence[str]) -> list[Message]:
    return [Message(m) for m in msgids]


def joined(parts: Sequence[Message]) -> Message:
    """Several sentences read as one, separated by semicolons (the French catalog spaces them)."""
    if not parts:
        raise ValueError("nothing to join")
    result = parts[0]
    for part in parts[1:]:
        result = Message(N_("{before}; {after}"), {"before": result, "after": part})
    return result


def message_data(message: Message) -> dict[str, object]:
    """A message as JSON-ready data, so a stored record can be shown again in any language.

    Dates are stored as they are shown (they read the same in every language), numbers and
    booleans as themselves (their wording depends on the reader), messages recursively.
    """
    return {"msgid": message.msgid, "params": {name: _param_data(value) for name, value in message.params.items()}}


def _param_data(value: object) -> object:
    if isinstance(value, Message):
        return message_data(value)
    if isinstance(value, ProtocolText):
        return {"protocol_text": dict(value.texts)}
    if isinstance(value, list | tuple):
        return [_param_data(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return render_value(value)


def message_from_data(data: Mapping[str, object]) -> Message:
    """The message stored by `message_data`."""
    params = data.get("params")
    values = params if isinstance(params, Mapping) else {}
    return Message(str(data.get("msgid", "")), {str(name): _param_value(value) for name, value in values.items()})


def _param_value(value: object) -> object:
    if isinstance(value, Mapping) and "msgid" in value:
        return message_from_data(value)
    if isinstance(value, Mapping) and isinstance(value.get("protocol_text"), Mapping):
        return ProtocolText({str(k): str(v) for k, v in value["protocol_text"].items()})
    if isinstance(value, list):
        return [_param_value(item) for item in value]
    return value


def protocol_text(texts: Mapping[str, str], language: str) -> str:
    """A text of the protocol file in `language` (English when the file lacks that language)."""
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


def params_to_json(params: Mapping[str, object]) -> dict[str, object]:
    """Message parameters as JSON, to store a message and render it later in each reader's language.

    A label or nested message is kept as {"msgid": ..., "params": ...}; times as text.
    """
    return {name: _to_json(value) for name, value in params.items()}


def _to_json(value: object) -> object:
    if isinstance(value, Message):
        return {"msgid": value.msgid, "params": params_to_json(value.params)}
    if isinstance(value, ProtocolText):
        return {"protocol_text": dict(value.texts)}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


def params_from_json(stored: Mapping[str, object]) -> dict[str, object]:
    """The inverse of `params_to_json`: stored labels back as messages."""
    return {name: _from_json(value) for name, value in stored.items()}


def _from_json(value: object) -> object:
    if isinstance(value, dict) and "msgid" in value:
        nested = value.get("params", {})
        return Message(str(value["msgid"]), params_from_json(nested if isinstance(nested, dict) else {}))
    if isinstance(value, dict) and isinstance(value.get("protocol_text"), dict):
        return ProtocolText({str(k): str(v) for k, v in value["protocol_text"].items()})
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
