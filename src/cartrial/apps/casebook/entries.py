"""What people send for a form, read into the eCRF engine's raw values: a page's posted fields and
the rows of a CSV import use the same field names (`item`, `item__unit`, `item__lower_limit`,
`item__upper_limit`, `group.ROW.item`), so both reach the engine in the one shape the API takes."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cartrial.domain.ecrf import FormDef, ItemDef, ItemType
from cartrial.domain.errors import InvalidInput


def _kind(item: ItemDef) -> str:
    return "multi" if item.type is ItemType.MULTI_CHOICE else "single"


def _posted_value(item: ItemDef, post: Any, name: str) -> Any:
    if _kind(item) == "multi":
        return [v for v in post.getlist(name) if v]
    raw = post.get(name, "").strip()
    if item.analyte:
        if raw == "":
            return None
        lab: dict[str, Any] = {"value": raw, "unit": post.get(f"{name}__unit", item.unit or "")}
        for limit in ("lower_limit", "upper_limit"):
            bound = post.get(f"{name}__{limit}", "").strip()
            if bound:
                lab[limit] = bound
        return lab
    return raw or None


def posted_items(form: FormDef, post: Any) -> dict[str, Any]:
    """A page's posted fields as the engine's raw values (the same shape the API receives)."""
    items: dict[str, Any] = {}
    for group in form.groups:
        if not group.repeating:
            for item in group.items:
                value = _posted_value(item, post, item.name)
                if value not in (None, []):
                    items[item.name] = value
            continue
        rows = []
        index = 0
        while any(f"{group.name}.{index}.{item.name}" in post for item in group.items):
            row = {item.name: _posted_value(item, post, f"{group.name}.{index}.{item.name}") for item in group.items}
            row = {k: v for k, v in row.items() if v not in (None, [])}
            if row:
                rows.append(row)
            index += 1
        if rows:
            items[group.name] = rows
    return items


class RowFields:
    """One CSV row with the posted-fields interface (`get`, `getlist`, `in`); a multiple choice is
    written `a;b` in its cell."""

    def __init__(self, row: Mapping[str, str]) -> None:
        self.row = {k.strip(): (v or "") for k, v in row.items() if k}

    def __contains__(self, name: object) -> bool:
        return name in self.row and self.row[str(name)].strip() != ""

    def get(self, name: str, default: str = "") -> str:
        return self.row.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return [part.strip() for part in self.row.get(name, "").split(";") if part.strip()]


@dataclass(frozen=True)
class ImportRow:
    """One form of one visit of one subject, read from line `line` of a CSV file."""

    line: int
    subject: str
    visit: str
    done_on: str
    items: dict[str, Any]


IMPORT_KEY_COLUMNS = ("subject", "visit", "done_on")
# A form's rows for the whole trial fit in far less; a larger body is refused before it is read
# (config/uploads.py) and here again on the bytes.
MAX_IMPORT_BYTES = 2_000_000


def import_rows(content: bytes, form: FormDef) -> list[ImportRow]:
    """The rows of a CSV file for one form: `subject,visit,done_on` then the item columns."""
    if len(content) > MAX_IMPORT_BYTES:
        raise InvalidInput(
            "The file is larger than {size} bytes.", code="import_too_large", item="file", size=MAX_IMPORT_BYTES
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.", code="import_encoding", item="file") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("subject", "visit") if c not in columns]
    if missing:
        raise InvalidInput(
            "The file has no column '{column}' (expected: subject, visit, done_on, then the items).",
            code="import_columns",
            item="file",
            column=missing[0],
        )
    known = {item.name for item in form.items} | {group.name for group in form.groups}
    for column in columns:
        base = column.split("__")[0].split(".")[0]
        if column not in IMPORT_KEY_COLUMNS and base not in known:
            raise InvalidInput(
                "The column '{column}' is not an item of the form {form}.",
                code="item_unknown",
                item=column,
                column=column,
                form=form.code,
            )
    rows = []
    for number, raw in enumerate(reader, start=2):
        fields = RowFields(raw)
        rows.append(
            ImportRow(
                line=number,
                subject=fields.get("subject").strip(),
                visit=fields.get("visit").strip(),
                done_on=fields.get("done_on").strip(),
                items=posted_items(form, fields),
            )
        )
    if not rows:
        raise InvalidInput("The file holds no row.", code="import_empty", item="file")
    return rows
