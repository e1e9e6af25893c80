"""The audit trail page's values in the reader's language.

The trail keeps what was recorded, in the words of the time: codes, and English texts written by
the system (a signature's meaning, a refusal, a deviation). A value is shown translated wherever
the trail or the record behind it gives a code or message data to translate from; otherwise the
stored English is shown as written and marked `lang="en"` (a French page says it is not French).
What people wrote (reasons, comments) is shown as they wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entry_changes
from cartrial.apps.logistics.models import Deviation
from cartrial.apps.logistics.services import deviation_text
from cartrial.apps.logistics.templatetags.logistics_tags import holder
from cartrial.apps.text import current_language, render
from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.roles import ROLE_LABELS, Role
from cartrial.domain.text import message_from_data


@dataclass(frozen=True)
class Part:
    """A stretch of a shown value: plain text, a stored English text (`lang="en"`), or a code."""

    text: str
    lang: str = ""
    code: bool = False


Shown = list[Part]


def role_text(code: str) -> str:
    """A role's code as its label in the reader's language; another code (system) as itself."""
    try:
        return gettext(ROLE_LABELS[Role(code)])
    except ValueError:
        return code


def stored_english(text: str) -> Shown:
    """A text the system wrote in English: translated when it is a msgid of the catalog, else as written."""
    translated = gettext(text)
    if translated != text or current_language() == "en":
        return [Part(translated)]
    return [Part(text, lang="en")]


def refusal_text(refusal: Mapping[str, Any]) -> Shown:
    """A refused attempt: its message from message data in the reader's language; an entry written
    before message data was kept shows its code and the English message as recorded."""
    code = str(refusal.get("code", ""))
    data = refusal.get("message_data")
    if isinstance(data, Mapping) and "msgid" in data:
        what = str(refusal.get("what", ""))
        said = gettext("refused: %(message)s") % {"message": render(message_from_data(data))}
        return [Part(what, code=True), Part(" "), Part(said)] if what else [Part(said)]
    return [
        Part(code, code=True),
        Part(" " + gettext("refused") + " — "),
        Part(str(refusal.get("message", "")), lang="en"),
    ]


class _Deviations:
    """The deviations opened by a set of entries (one subject's trail, or a page of the study's),
    read once, for the messages of their opening entries."""

    def __init__(self, entries: list[AuditEntry]) -> None:
        self._ids = {
            int(e.entity_id)
            for e in entries
            if e.entity == "deviation" and e.event == AuditEvent.DEVIATION_OPENED and e.entity_id.isdigit()
        }
        self._by_id: dict[str, Deviation] | None = None

    def message(self, entry: AuditEntry, stored: str) -> Shown:
        if self._by_id is None:
            rows = Deviation.objects.filter(pk__in=self._ids) if self._ids else Deviation.objects.none()
            self._by_id = {str(d.pk): d for d in rows}
        deviation = self._by_id.get(entry.entity_id) if entry.entity == "deviation" else None
        if deviation is not None and deviation.message == stored and deviation.params:
            return [Part(render(deviation_text(deviation)))]
        return [Part(stored, lang="en")]


def _shown_by_field(entry: AuditEntry, deviations: _Deviations) -> dict[str, Callable[[Any], Shown]]:
    rules: dict[str, Callable[[Any], Shown]] = {
        "unit": lambda v: [Part(gettext(unit_label(str(v))))],
        "meaning": lambda v: stored_english(str(v)),
        "refusal": lambda v: refusal_text(v) if isinstance(v, Mapping) else [Part(str(v), lang="en")],
    }
    if entry.event == AuditEvent.CUSTODY_HAND_OVER:
        rules |= {"from": lambda v: [Part(holder(str(v)))], "to": lambda v: [Part(holder(str(v)))]}
    if entry.event == AuditEvent.MEMBERSHIP_GRANTED:
        rules["role"] = lambda v: [Part(role_text(str(v)))]
    if entry.event == AuditEvent.DEVIATION_OPENED:
        rules["message"] = lambda v: deviations.message(entry, str(v))
    return rules


def shown_value(entry: AuditEntry, field: str, value: Any, deviations: _Deviations) -> Shown | None:
    """One old or new value of an entry as the page shows it (None: no value)."""
    if value is None:
        return None
    if isinstance(value, Mapping) and "msgid" in value:  # a message recorded as its data (an edit check's)
        return [Part(render(message_from_data(value)))]
    rule = _shown_by_field(entry, deviations).get(field)
    return rule(value) if rule is not None else [Part(str(value))]


def audit_rows(entries: Iterable[AuditEntry]) -> list[dict[str, Any]]:
    """Audit entries (a subject's trail, a page of the study's) with their changes and the actor's
    role in the reader's language: the one rendering of the subject and study audit pages."""
    listed = list(entries)
    deviations = _Deviations(listed)
    rows = []
    for entry in listed:
        changes = entry_changes(entry)
        rows.append(
            {
                "entry": entry,
                "role": role_text(entry.role),
                "changes": [
                    {
                        "field": change.get("field"),
                        "old": shown_value(entry, str(change.get("field")), change.get("old"), deviations),
                        "new": shown_value(entry, str(change.get("field")), change.get("new"), deviations),
                    }
                    for change in changes
                ],
            }
        )
    return rows
