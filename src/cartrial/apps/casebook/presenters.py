"""How the one eCRF engine's forms look on a page: fields from the protocol's item definitions, and a
page's posted fields read back into the engine's raw values (the API sends the same raw values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy, ngettext

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


# A mark per visit status for the wide study grid, where a word per cell would not fit: the colour
# and the mark together, the word in the cell's title and in the legend under the grid.
VISIT_STATUS_MARKS: dict[VisitStatus, str] = {
    VisitStatus.NOT_APPLICABLE: "·",
    VisitStatus.UPCOMING: "○",
    VisitStatus.DUE: "◐",
    VisitStatus.OVERDUE: "!",
    VisitStatus.DONE: "✓",
    VisitStatus.DONE_OUT_OF_WINDOW: "✓!",
    VisitStatus.MISSED: "✗",
}


def visit_status_view(status: VisitStatus) -> dict[str, str]:
    return {
        "code": status.value,
        "label": gettext(VISIT_STATUS_LABELS[status]),
        "css": VISIT_STATUS_CLASSES[status],
        "mark": VISIT_STATUS_MARKS[status],
    }


def visit_status_legend() -> list[dict[str, str]]:
    """Every visit status with its colour and mark, in the schedule's order of events."""
    return [visit_status_view(status) for status in VISIT_STATUS_MARKS]


def form_label(protocol: Any, form_code: str) -> str:
    """The form's label from the protocol in the page's language (its code if the protocol lost it)."""
    form = protocol.forms.get(form_code)
    return text_of(form.label) if form is not None else form_code


def item_label(protocol: Any, form_code: str, item: str) -> str:
    """An item's (or a repeating group's) label from the protocol, in the page's language."""
    form = protocol.forms.get(form_code)
    if form is None:
        return item
    if form.has_item(item):
        return text_of(form.item(item).label)
    group = next((g for g in form.groups if g.name == item), None)
    return text_of(group.label) if group is not None else item


def shown_number(value: Any) -> Any:
    """A number as people write it: 210 rather than 210.0 (the template localises the decimal mark)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def form_status_view(status: FormStatus) -> dict[str, str]:
    return {"code": status.value, "label": gettext(status.label), "css": FORM_STATUS_CLASSES[status]}


def query_status_label(status: str) -> str:
    return gettext(QUERY_STATUS_LABELS[QueryStatus(status)])


def query_move_label(move: str) -> str:
    """A step of a query's thread; its raising reads "Query raised" ("Raised" alone is a biology flag)."""
    if move == QueryMove.RAISE.value:
        return gettext("Query raised")
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
    derived: bool = False
    # (code, label, definition) of each choice; the definition is "" when the code list has none.
    choice_rows: list[tuple[str, str, str]] = field(default_factory=list)
    verified: dict[str, Any] | None = None
    queries: list[Any] = field(default_factory=list)

    @property
    def badge(self) -> dict[str, str]:
        """A derived yes/no endpoint as a badge; a derived score as its number."""
        if isinstance(self.value, bool) or self.value is None:
            return endpoint_badge(self.value)
        return {"code": "score", "text": shown_value(self.value), "css": "score"}

    @property
    def shown(self) -> str:
        """The value as a person reads it: a code list's label rather than its code."""
        labels = dict(self.choices)
        if self.kind == "choice":
            return labels.get(self.value, shown_value(self.value))
        if self.kind == "multi" and isinstance(self.value, list):
            return ", ".join(labels.get(v, str(v)) for v in self.value) or "—"
        return shown_value(self.value)


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
        minimum=shown_number(item.minimum),
        maximum=shown_number(item.maximum),
        required=bool(item.required),
        choices=[(code, text_of(label)) for code, label in (item.codelist or ())],
        value=shown_number(value),
        lab=bool(item.analyte),
        derived=item.derived is not None,
        choice_rows=[
            (code, text_of(label), text_of(item.choice_help[code]) if code in item.choice_help else "")
            for code, label in (item.codelist or ())
        ],
        verified=verified.get(item.name),
        queries=[q for q in queries if q.item == item.name],
    )
    if isinstance(value, Mapping):
        view.value = shown_number(value.get("value"))
        view.unit_value = str(value.get("unit") or item.unit or "")
        view.lower_limit = shown_number(value.get("lower_limit"))
        view.upper_limit = shown_number(value.get("upper_limit"))
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


def shown_value(value: Any) -> str:
    """A stored value as a person reads it in the history: a lab result with its unit and range,
    a list joined, yes or no, a number without a useless decimal."""
    from django.utils.formats import localize

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, Mapping) and "value" in value:
        text = f"{localize(shown_number(value['value']))} {value.get('unit') or ''}".strip()
        low, high = value.get("lower_limit"), value.get("upper_limit")
        if low is not None or high is not None:
            bounds = "–".join(localize(shown_number(b)) if b is not None else "" for b in (low, high))
            text += f" ({bounds})"
        return text
    if isinstance(value, list):
        return ", ".join(shown_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {shown_value(v)}" for k, v in value.items())
    return str(localize(shown_number(value)))


def page_links(page: int, pages: int) -> list[int | None]:
    """The page numbers a pager shows: the first, the last and two on each side of the current one;
    None marks a gap ('…')."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    links: list[int | None] = []
    for number in shown:
        if links and links[-1] is not None and number - links[-1] > 1:
            links.append(None)
        links.append(number)
    return links


_QUERIED = '<sup class="q">?</sup>'


def grid_cells(subject_code: str, visits: Iterable[Any], visit_url: str) -> SafeString:
    """The cells of one subject's row of the study grid as HTML, built here rather than by template
    tags: a page holds thousands of cells (issue 9's 200 ms). `visit_url` is the visit page's URL with
    `{subject}` and `{visit}` in place of the codes (reversed once per page). Every text is escaped."""
    statuses: dict[VisitStatus, dict[str, str]] = {}
    cells = []
    for visit in visits:
        if visit.status not in statuses:
            statuses[visit.status] = visit_status_view(visit.status)
        view = statuses[visit.status]
        named = f"{visit.code} : {view['label']}"
        title = named + (f" ({visit.target.isoformat()})" if visit.target else "")
        if visit.open_queries:
            title += " · " + ngettext("%(n)s open query", "%(n)s open queries", visit.open_queries) % {
                "n": visit.open_queries
            }
        href = visit_url.replace("{subject}", quote(subject_code)).replace("{visit}", quote(visit.code))
        cells.append(
            f'<td><a href="{escape(href)}" class="st {escape(view["css"])}" title="{escape(title)}" '
            f'aria-label="{escape(named)}" data-status="{escape(view["code"])}">{escape(view["mark"])}'
            f"{_QUERIED if visit.open_queries else ''}</a></td>"
        )
    return SafeString("".join(cells))


def endpoint_badge(value: bool | None) -> dict[str, str]:
    """An endpoint met, not met, or not assessable (an input missing), as the pages show it."""
    if value is None:
        return {"code": "none", "text": gettext("Not assessable"), "css": "badge-none"}
    return {
        "code": "yes" if value else "no",
        "text": gettext("Yes") if value else gettext("No"),
        "css": "badge-" + ("yes" if value else "no"),
    }


def activity_view(visit: Any, label: str = "") -> dict[str, Any]:
    """One visit's stored lupus activity as a page row: the scores as numbers, the endpoints as badges."""
    return {
        "visit": visit,
        "label": label or visit.code,
        "sledai": shown_value(visit.sledai),
        "clinical_sledai": shown_value(visit.clinical_sledai),
        "pga": shown_value(visit.pga),
        "prednisone": shown_value(visit.prednisone_mg_per_day),
        "badges": [(key, endpoint_badge(getattr(visit, key))) for key in ("doris", "drug_free_doris", "lldas", "sri4")],
    }


# What the monitor checks of each item against the source document (shown beside the values, and
# given by the API with a form's verification).
SOURCE_CHECKLIST = (
    gettext_lazy("The source document is identified (medical record, lab report) and dated on the visit day."),
    gettext_lazy("The value and its unit match the source."),
    gettext_lazy("For a lab result, the lab's reference range matches the report."),
    gettext_lazy("Nothing in the source is missing from the form (an adverse event, a medication)."),
)
