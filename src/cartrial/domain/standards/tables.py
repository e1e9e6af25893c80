"""The eCRF as plain tables, for those who just want tables: one table per form and one per
repeating group, typed columns, and the data dictionary that says what every column holds.

Tables (from the protocol's forms, in file order):
- `<form>`: one row per form saved at a visit of a subject (a form not started has no row). Its
  columns are the keys (`KEY_COLUMNS`: subject, center, visit, form status, revision, last change,
  protocol version) then the items of the form's non-repeating groups.
- `<form>__<group>`: one row per row of a repeating group, with the same keys, `row_number` (1 for
  the first row of the group at that visit) and the group's items. A form saved with no row (no
  concomitant medication) has its row in `<form>` and none here.

Columns of an item (`ColumnPart`):
- a single value (integer, number, text, date, boolean, choice code): one column named as the item;
- a multiple choice: one boolean column per code, `<item>__<code>` (true: ticked). The engine stores
  no empty choice, so an item always shown reads false for every code when nothing was ticked; an
  item a rule may hide (`shown_when`) leaves them empty instead, as nothing tells a hidden item
  from an unticked one;
- a lab result: `<item>` in the item's unit (converted as the rules read it, `values.lab_number`),
  `<item>__lower_limit` and `<item>__upper_limit` (the lab's reference range) and, when the item
  accepts several units, `<item>__reported` and `<item>__reported_unit` (the result as the lab
  reported it, the limits being in that unit).

A stored value that does not fit its column (saved under an older protocol version whose item had
another type) stops the export with `table_value_type` naming it: the tables never change a value.
An item a later protocol version removed is not in the tables (they follow the active protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from cartrial.domain import lab_catalogue
from cartrial.domain.ecrf.definitions import FormDef, FormStatus, GroupDef, ItemDef, ItemType, Label, shown
from cartrial.domain.ecrf.values import lab_number
from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards.derivations import derivation_text
from cartrial.domain.text import N_, Message

# The folder's data dictionary is a table too; no form may take its name.
DICTIONARY_TABLE = "data_dictionary"
# Joins a form's code and a repeating group's name, an item's name and a code or a lab part.
SEPARATOR = "__"


class ColumnType(StrEnum):
    """A column's type: how the CSV writes it and the Parquet type it has (`apps/exports/tables.py`)."""

    INTEGER = "integer"
    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class ColumnPart(StrEnum):
    """What of a saved form a column reads."""

    SUBJECT = "subject"
    CENTER = "center"
    VISIT = "visit"
    STATUS = "status"
    REVISION = "revision"
    UPDATED_AT = "updated_at"
    PROTOCOL_VERSION = "protocol_version"
    ROW_NUMBER = "row_number"
    VALUE = "value"
    CODE_TICKED = "code_ticked"
    LAB_VALUE = "lab_value"
    LAB_REPORTED = "lab_reported"
    LAB_REPORTED_UNIT = "lab_reported_unit"
    LAB_LOWER_LIMIT = "lab_lower_limit"
    LAB_UPPER_LIMIT = "lab_upper_limit"


@dataclass(frozen=True)
class Column:
    """One column of a table and what the data dictionary says of it."""

    name: str
    type: ColumnType
    label: Label
    part: ColumnPart
    # The item it reads (None for the keys and the row number) and, for a multiple choice, the code.
    source: ItemDef | None = None
    code: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    codelist: tuple[tuple[str, Label], ...] = ()
    help: Label | None = None
    derivation: Label | None = None

    @property
    def item(self) -> str:
        """The name of the item the column reads ("" for the keys and the row number)."""
        return self.source.name if self.source is not None else ""


@dataclass(frozen=True)
class Table:
    """One table: a form, or a repeating group of a form (`group` set)."""

    name: str
    form: str
    group: str | None
    label: Label
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class SavedForm:
    """One form saved at one visit of one subject, as the casebook stores it (plain data)."""

    subject_code: str
    center_code: str
    visit_code: str
    form_code: str
    status: str
    revision: int
    updated_at: datetime
    protocol_version: str
    values: Mapping[str, object]


_STATUS_CODES: tuple[tuple[str, Label], ...] = tuple(
    (status.value, Message(status.label)) for status in FormStatus if status is not FormStatus.NOT_STARTED
)

KEY_COLUMNS: tuple[Column, ...] = (
    Column("subject_code", ColumnType.TEXT, Message(N_("Subject code")), ColumnPart.SUBJECT),
    Column("center_code", ColumnType.TEXT, Message(N_("Center code")), ColumnPart.CENTER),
    Column("visit_code", ColumnType.TEXT, Message(N_("Visit code")), ColumnPart.VISIT),
    Column("form_status", ColumnType.CHOICE, Message(N_("Form status")), ColumnPart.STATUS, codelist=_STATUS_CODES),
    Column(
        "revision",
        ColumnType.INTEGER,
        Message(N_("Revision of the form (1 at the first save, one more at each change)")),
        ColumnPart.REVISION,
    ),
    Column("updated_at", ColumnType.DATETIME, Message(N_("Last change of the form (UTC)")), ColumnPart.UPDATED_AT),
    Column(
        "protocol_version",
        ColumnType.TEXT,
        Message(N_("Protocol version the form was captured under")),
        ColumnPart.PROTOCOL_VERSION,
    ),
)
ROW_NUMBER_COLUMN = Column(
    "row_number",
    ColumnType.INTEGER,
    Message(N_("Row of the group at this visit (1 for the first)")),
    ColumnPart.ROW_NUMBER,
)

_VALUE_TYPES: Mapping[ItemType, ColumnType] = MappingProxyType(
    {
        ItemType.INTEGER: ColumnType.INTEGER,
        ItemType.NUMBER: ColumnType.NUMBER,
        ItemType.TEXT: ColumnType.TEXT,
        ItemType.DATE: ColumnType.DATE,
        ItemType.BOOLEAN: ColumnType.BOOLEAN,
        ItemType.CHOICE: ColumnType.CHOICE,
    }
)


def _part_label(msgid: str, item: ItemDef, **params: object) -> Message:
    return Message(msgid, {"item": shown(item.label), **params})


def _item_columns(item: ItemDef) -> tuple[Column, ...]:
    """The columns of one item (module doc)."""
    derivation = derivation_text(item.derived) if item.derived is not None else None
    if item.type is ItemType.MULTI_CHOICE:
        return tuple(
            Column(
                f"{item.name}{SEPARATOR}{code}",
                ColumnType.BOOLEAN,
                _part_label(N_("{item}: {choice}"), item, choice=shown(text)),
                ColumnPart.CODE_TICKED,
                source=item,
                code=code,
                help=item.choice_help.get(code, item.help),
                derivation=derivation,
            )
            for code, text in item.codelist
        )
    if not item.is_lab:
        single = Column(
            item.name,
            _VALUE_TYPES[item.type],
            item.label,
            ColumnPart.VALUE,
            source=item,
            unit=item.unit,
            minimum=item.minimum,
            maximum=item.maximum,
            codelist=item.codelist,
            help=item.help,
            derivation=derivation,
        )
        return (single,)
    assert item.analyte is not None
    minimum, maximum = lab_catalogue.ANALYTES[item.analyte].ranges[item.unit]
    several_units = len(item.units) > 1
    limits_unit = "" if several_units else item.unit
    columns = [
        Column(
            item.name,
            ColumnType.NUMBER,
            item.label,
            ColumnPart.LAB_VALUE,
            source=item,
            unit=item.unit,
            minimum=item.minimum if item.minimum is not None else float(minimum),
            maximum=item.maximum if item.maximum is not None else float(maximum),
            help=item.help,
        )
    ]
    if several_units:
        columns += [
            Column(
                f"{item.name}{SEPARATOR}reported",
                ColumnType.NUMBER,
                _part_label(N_("{item}: the result as the lab reported it"), item),
                ColumnPart.LAB_REPORTED,
                source=item,
            ),
            Column(
                f"{item.name}{SEPARATOR}reported_unit",
                ColumnType.TEXT,
                _part_label(N_("{item}: the unit the lab reported ({units})"), item, units=", ".join(item.units)),
                ColumnPart.LAB_REPORTED_UNIT,
                source=item,
            ),
        ]
    limit_label = (
        N_("{item}: lower limit of normal of the lab, in the reported unit")
        if several_units
        else N_("{item}: lower limit of normal of the lab")
    )
    upper_label = (
        N_("{item}: upper limit of normal of the lab, in the reported unit")
        if several_units
        else N_("{item}: upper limit of normal of the lab")
    )
    columns += [
        Column(
            f"{item.name}{SEPARATOR}lower_limit",
            ColumnType.NUMBER,
            _part_label(limit_label, item),
            ColumnPart.LAB_LOWER_LIMIT,
            source=item,
            unit=limits_unit,
        ),
        Column(
            f"{item.name}{SEPARATOR}upper_limit",
            ColumnType.NUMBER,
            _part_label(upper_label, item),
            ColumnPart.LAB_UPPER_LIMIT,
            source=item,
            unit=limits_unit,
        ),
    ]
    return tuple(columns)


def _table(name: str, form: FormDef, group: GroupDef | None, columns: Sequence[Column]) -> Table:
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise InvalidInput(
                "Table {table} would have two columns named {column}: rename an item of form {form}.",
                code="table_column_duplicate",
                item=f"{name}.{column.name}",
                table=name,
                column=column.name,
                form=form.code,
            )
        seen.add(column.name)
    label: Label = (
        form.label
        if group is None
        else Message(N_("{form}: {group}"), {"form": shown(form.label), "group": shown(group.label)})
    )
    return Table(name, form.code, group.name if group is not None else None, label, tuple(columns))


def form_tables(forms: Mapping[str, FormDef]) -> tuple[Table, ...]:
    """The tables of the protocol's forms, in file order: each form's, then its repeating groups'."""
    tables: list[Table] = []
    for form in forms.values():
        items = [
            column
            for group in form.groups
            if not group.repeating
            for item in group.items
            for column in _item_columns(item)
        ]
        tables.append(_table(form.code, form, None, [*KEY_COLUMNS, *items]))
        for group in form.groups:
            if group.repeating:
                rows = [column for item in group.items for column in _item_columns(item)]
                name = f"{form.code}{SEPARATOR}{group.name}"
                tables.append(_table(name, form, group, [*KEY_COLUMNS, ROW_NUMBER_COLUMN, *rows]))
    names = [table.name for table in tables]
    for name in names:
        if names.count(name) > 1 or name == DICTIONARY_TABLE:
            raise InvalidInput(
                "Two tables would be named {table}: rename a form or a repeating group.",
                code="table_name_duplicate",
                item=name,
                table=name,
            )
    return tuple(tables)


# --- rows ----------------------------------------------------------------------------------------

# A cell: None (missing), int, float, str, bool, date or datetime, as the column's type says.
Cell = int | float | str | bool | date | datetime | None


def table_rows(table: Table, saved: SavedForm) -> Iterator[tuple[Cell, ...]]:
    """The rows `saved` gives `table` (one for a form's table, one per row for a group's table), each
    a tuple of typed cells in the table's column order. InvalidInput `table_value_type` names a value
    its column cannot hold."""
    if table.group is None:
        yield tuple(_cell(column, saved, saved.values, 0) for column in table.columns)
        return
    rows = saved.values.get(table.group)
    if rows is None:
        return
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise _wrong_type(saved, table.group, rows, "list")
    for index, row in enumerate(rows):
        yield tuple(_cell(column, saved, row, index + 1) for column in table.columns)


_KEY_CELLS: Mapping[ColumnPart, Callable[[SavedForm], Cell]] = MappingProxyType(
    {
        ColumnPart.SUBJECT: lambda saved: saved.subject_code,
        ColumnPart.CENTER: lambda saved: saved.center_code,
        ColumnPart.VISIT: lambda saved: saved.visit_code,
        ColumnPart.STATUS: lambda saved: saved.status,
        ColumnPart.REVISION: lambda saved: saved.revision,
        ColumnPart.UPDATED_AT: lambda saved: saved.updated_at,
        ColumnPart.PROTOCOL_VERSION: lambda saved: saved.protocol_version,
    }
)
_LAB_KEYS: Mapping[ColumnPart, str] = MappingProxyType(
    {
        ColumnPart.LAB_REPORTED: "value",
        ColumnPart.LAB_REPORTED_UNIT: "unit",
        ColumnPart.LAB_LOWER_LIMIT: "lower_limit",
        ColumnPart.LAB_UPPER_LIMIT: "upper_limit",
    }
)


def _cell(column: Column, saved: SavedForm, scope: Mapping[str, object], row_number: int) -> Cell:
    key = _KEY_CELLS.get(column.part)
    if key is not None:
        return key(saved)
    if column.part is ColumnPart.ROW_NUMBER:
        return row_number
    item = column.source
    assert item is not None, column.name
    value = scope.get(item.name)
    if column.part is ColumnPart.CODE_TICKED:
        if value is None:
            # The engine stores no empty choice: unticked, unless a rule may have hidden the item.
            return None if item.shown_when is not None else False
        if not isinstance(value, list) or not set(map(str, value)) <= set(item.codes):
            raise _wrong_type(saved, column.item, value, "multi_choice")
        return column.code in value
    if value is None:
        return None
    if column.part is ColumnPart.VALUE:
        return _typed(column.type, saved, column.item, value)
    if not isinstance(value, Mapping):
        raise _wrong_type(saved, column.item, value, "lab result")
    if column.part is ColumnPart.LAB_VALUE:
        number = lab_number(item, value)
        if number is None:
            raise _wrong_type(saved, column.item, value, "lab result")
        return number
    return _typed(column.type, saved, column.item, value.get(_LAB_KEYS[column.part]))


def _typed(column_type: ColumnType, saved: SavedForm, item: str, value: object) -> Cell:
    """A stored value as its column's type, never altered: InvalidInput when it is not of that type."""
    if value is None:
        return None
    if column_type is ColumnType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif column_type is ColumnType.NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif column_type is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif column_type is ColumnType.DATE:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    elif isinstance(value, str):
        return value
    raise _wrong_type(saved, item, value, column_type.value)


def _wrong_type(saved: SavedForm, item: str, value: object, expected: str) -> InvalidInput:
    return InvalidInput(
        "Subject {subject}, visit {visit}, form {form}: the stored value {value} of {name} is not of type "
        "{type}; the tables never change a value, so the export stops.",
        code="table_value_type",
        item=f"{saved.subject_code}.{saved.visit_code}.{saved.form_code}.{item}",
        subject=saved.subject_code,
        visit=saved.visit_code,
        form=saved.form_code,
        value=repr(value),
        name=item,
        type=expected,
    )


# --- the data dictionary ---------------------------------------------------------------------------

# Renders a label in a language ("en", "fr"): the adapter's translation of the catalog.
RenderLabel = Callable[[Label, str], str]

DICTIONARY_COLUMNS: tuple[Column, ...] = (
    Column("table", ColumnType.TEXT, Message(N_("Table (file name without its extension)")), ColumnPart.VALUE),
    Column("column", ColumnType.TEXT, Message(N_("Column")), ColumnPart.VALUE),
    Column("label_en", ColumnType.TEXT, Message(N_("Label in English")), ColumnPart.VALUE),
    Column("label_fr", ColumnType.TEXT, Message(N_("Label in French")), ColumnPart.VALUE),
    Column("type", ColumnType.TEXT, Message(N_("Type of the column")), ColumnPart.VALUE),
    Column("unit", ColumnType.TEXT, Message(N_("Unit")), ColumnPart.VALUE),
    Column("minimum", ColumnType.NUMBER, Message(N_("Lowest plausible value (included)")), ColumnPart.VALUE),
    Column("maximum", ColumnType.NUMBER, Message(N_("Highest plausible value (included)")), ColumnPart.VALUE),
    Column(
        "codes",
        ColumnType.TEXT,
        Message(N_("Code list of a choice: code = English label / French label, separated by semicolons")),
        ColumnPart.VALUE,
    ),
    Column("help_en", ColumnType.TEXT, Message(N_("Help shown on the form, in English")), ColumnPart.VALUE),
    Column("help_fr", ColumnType.TEXT, Message(N_("Help shown on the form, in French")), ColumnPart.VALUE),
    Column(
        "derivation_en", ColumnType.TEXT, Message(N_("How a derived value is computed, in English")), ColumnPart.VALUE
    ),
    Column(
        "derivation_fr", ColumnType.TEXT, Message(N_("How a derived value is computed, in French")), ColumnPart.VALUE
    ),
)
DICTIONARY = Table(
    DICTIONARY_TABLE, "", None, Message(N_("Data dictionary: every column of every table")), DICTIONARY_COLUMNS
)


def dictionary_rows(tables: Sequence[Table], render: RenderLabel) -> Iterator[tuple[Cell, ...]]:
    """One row per column of every table, in the order of `DICTIONARY_COLUMNS`."""
    for table in tables:
        for column in table.columns:
            codes = "; ".join(f"{code} = {render(text, 'en')} / {render(text, 'fr')}" for code, text in column.codelist)
            yield (
                table.name,
                column.name,
                render(column.label, "en"),
                render(column.label, "fr"),
                column.type.value,
                column.unit or None,
                column.minimum,
                column.maximum,
                codes or None,
                render(column.help, "en") if column.help is not None else None,
                render(column.help, "fr") if column.help is not None else None,
                render(column.derivation, "en") if column.derivation is not None else None,
                render(column.derivation, "fr") if column.derivation is not None else None,
            )


# A spreadsheet opening a CSV runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """Text for a CSV cell that a spreadsheet will show, never run: a leading formula character is
    quoted with an apostrophe (OWASP's advice). Every CSV the trial writes goes through it; the
    exact value stays in the Parquet file and the API."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
