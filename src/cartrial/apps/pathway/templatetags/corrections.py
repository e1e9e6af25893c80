"""The "Correct" control beside a stored value, on every subject page (docs/corrections.md).

`{% correction_link subject "collection" collection.pk %}` links to the record's correction page:
"Correct" for a role that may correct that kind of record, "History" for the others; "corrected"
is added when the record has been corrected. The user's scope and the subject's corrected records
are read once per request.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from cartrial.apps.access import Scope, can, scope_for
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.subjects.models import Subject
from cartrial.domain.corrections import CORRECTABLE, RecordKind

register = template.Library()


class _Seen:
    """What one request knows: the user's scope and, per subject, the records corrected."""

    def __init__(self, user: Any, scope: Scope | None) -> None:
        self.scope: Scope = scope if scope is not None else scope_for(user)
        self.corrected: dict[int, set[tuple[str, str]]] = {}

    def corrected_of(self, subject: Subject) -> set[tuple[str, str]]:
        if subject.pk not in self.corrected:
            rows = AuditEntry.objects.filter(
                subject_code=subject.code, event=AuditEvent.RECORD_CORRECTED.value
            ).values_list("entity", "entity_id")
            self.corrected[subject.pk] = {(entity, entity_id) for entity, entity_id in rows}
        return self.corrected[subject.pk]


def _seen(context: template.Context) -> _Seen | None:
    request = context.get("request")
    if request is None:
        return None
    seen = getattr(request, "_cartrial_corrections", None)
    if seen is None:
        # A page that reached its subject passes the scope it read (`scope` in its context): not read twice.
        seen = _Seen(request.user, context.get("scope"))
        request._cartrial_corrections = seen
    return seen


@register.simple_tag(takes_context=True)
def correction_link(
    context: template.Context, subject: Subject, kind: str, record_id: object, field: str = ""
) -> SafeString | str:
    """A link to correct the record (or read its history), marked when it was corrected; `field`
    opens that field's form."""
    seen = _seen(context)
    if seen is None:
        return ""
    record = CORRECTABLE[RecordKind(kind)]
    url = reverse("subjects:correction", args=[subject.code, kind, str(record_id)])
    request = context["request"]
    url += "?" + urlencode({"back": request.path} | ({"field": field} if field else {}))
    corrected = (kind, str(record_id)) in seen.corrected_of(subject)
    marker = format_html(' <span class="chip corrected">{}</span>', gettext("corrected")) if corrected else ""
    if can(seen.scope, record.action, subject):
        return format_html(
            '<a class="correct-link" data-correct="{}" href="{}">{}</a>{}', kind, url, gettext("Correct"), marker
        )
    return format_html(
        '<a class="history-link" data-history="{}" href="{}">{}</a>{}', kind, url, gettext("History"), marker
    )
