"""How the one eCRF engine's forms look on a page: fields from the protocol's item definitions, and a
page's posted fields read back into the engine's raw values (the API sends the same raw values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext

from cartrial.apps.text import current_language, render
from cartrial.domain.casebook import QUERY_MOVE_LABELS, QUERY_STATUS_LABELS, QueryMove, QueryStatus
from cartrial.domain.ecrf import FormDef, FormStatus, GroupDef, ItemDef, ItemType
from cartrial.domain.text import Message, protocol_text
from cartrial.domain.visits import VISIT_STATUS_LABELS, VisitStatus

# The page's colour of each status (CSS classes of cartrial.css).
VISIT_STATUS_CLASSES: dict[VisitStatus, str] = {
    VisitStatus.NOT_APPLICABLE: "st-na",
    VisitStatus.UPCOMING: "st-upcoming",
    VisitStatus.DUE: "st-due",
    VisitStatus.OVERDUE: "st-overdue",
    VisitStatus.DONE: "st-done",
    VisitStatus.DONE_OUT_OF_WINDOW: "st-late",
    VisitStatus.MISSED: "st-missed",
}
FORM_STATUS_CLASSES: dict[FormStatus, str] = {
    FormStatus.NOT_STARTED: "fs-none",
    FormStatus.DRAFT: "fs-draft",
    FormStatus.COMPLETE: "fs-complete",
    FormStatus.VERIFIED: "fs-verified",
    FormStatus.LOCKED: "fs-locked",
    FormStatus.SIGNED: "fs-signed",
}


def text_of(texts: Any) -> str:
    """A protocol text ({en, fr}), a domain message or a msgid in the page's language."""
    if isinstance(texts, Message):
        return render(texts)
    if isinstance(texts, Mapping):
        return protocol_text(texts, current_language())
    return gettext(str(texts)) if texts else ""


def visit_status_view(status: VisitStatus) -> dict[str, str]:
    return {"code": status.value, "label": gettext(VISIT_STATUS_LABELS[status]), "css": VISIT_STATUS_CLASSES[status]}


def form_status_view(status: FormStatus) -> dict[str, str]:
    return {"code": status.value, "label": gettext(status.label), "css": FORM_STATUS_CLASSES[status]}


def query_status_label(status: str) -> str:
    return gettext(QUERY_STATUS_LABELS[QueryStatus(status)])


def query_move_label(move: str) -> str:
    return gettext(QUERY_MOVE_LABELS[QueryMove(move)])


@dataclass
class FieldView:
    """One item as a page shows it: label, help, unit, range, the value and its verification."""

    name: str
    input_name: str
    kind: str
    label: str
    help: str
    unit: str
    units: list[str]
    minimum: Any
    maximum: Any
    required: bool
    choices: list[tuple[str, str]]
    value: Any
    unit_value: str = ""
    lower_limit: Any = None
    upper_limit: Any = None
    lab: bool = False
    verified: dict[str, Any] | None = None
    queries: list[Any] = field(default_factory=list)


@dataclass
class GroupView:
    name: str
    label: str
    repeating: bool
    rows: list[list[FieldView]]
    fields: list[FieldView]


def _kind(item: ItemDef) -> str:
    return {
        ItemType.INTEGER: "number",
        ItemType.NUMBER: "number",
        ItemType.TEXT: "text",
        ItemType.DATE: "date",
        ItemType.BOOLEAN: "boolean",
        ItemType.CHOICE: "choice",
        ItemType.MULTI_CHOICE: "multi",
    }[item.type]


def _field(item: ItemDef, input_name: str, value: Any, verified: Mapping[str, Any], queries: list[Any]) -> FieldView:
    units = list(item.units or ((item.unit,) if item.unit else ()))
    view = FieldView(
        name=item.name,
        input_name=input_name,
        kind=_kind(item),
        label=text_of(item.label),
        help=text_of(item.help) if item.help else "",
        unit=item.unit or "",
        units=units,
        minimum=item.minimum,
        maximum=item.maximum,
        required=bool(item.required),
        choices=[(code, text_of(label)) for code, label in (item.codelist or ())],
        value=value,
        lab=bool(item.analyte),
        verified=verified.get(item.name),
        queries=[q for q in queries if q.item == item.name],
    )
    if isinstance(value, Mapping):
        view.value = value.get("value")
        view.unit_value = str(value.get("unit") or item.unit or "")
        view.lower_limit = value.get("lower_limit")
        view.upper_limit = value.get("upper_limit")
    else:
        view.unit_value = item.unit or ""
    return view


def form_view(
    form: FormDef, values: Mapping[str, Any], verified: Mapping[str, Any], queries: list[Any]
) -> list[GroupView]:
    """The form's groups with their fields and current values; a repeating group shows its rows
    and one empty row to add."""
    groups = []
    for group in form.groups:
        groups.append(_group_view(group, values, verified, queries))
    return groups


def _group_view(
    group: GroupDef, values: Mapping[str, Any], verified: Mapping[str, Any], queries: list[Any]
) -> GroupView:
    if not group.repeating:
        fields = [_field(item, item.name, values.get(item.name), verified, queries) for item in group.items]
        return GroupView(group.name, text_of(group.label), False, [], fields)
    stored = values.get(group.name) or []
    rows = []
    for index, row in enumerate([*stored, {}]):
        rows.append(
            [_field(item, f"{group.name}.{index}.{item.name}", row.get(item.name), {}, []) for item in group.items]
        )
    header = [_field(item, item.name, None, {}, []) for item in group.items]
    return GroupView(group.name, text_of(group.label), True, rows, header)
