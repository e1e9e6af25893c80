"""The tables export (`cartrial export csv`): one CSV and one Parquet file per table of the eCRF, the
data dictionary and a README, in the folder `out` (docs/exports.md, "Tables: CSV and Parquet per form").

The tables and their typed columns are the domain's (`domain/standards/tables.py`); this module reads
the saved forms of the request's subjects, a chunk of subjects at a time, and appends their rows to
each table's CSV file and Parquet writer (a row group every `ROW_GROUP_ROWS` rows), so memory stays
flat whatever the size of the study.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from types import MappingProxyType
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from cartrial.apps.casebook.selectors import SavedFormRow, saved_forms, subject_ids_in_code_order
from cartrial.apps.exports.request import ExportCounts, ExportRequest, Progress
from cartrial.apps.text import value_text
from cartrial.domain.ecrf import Label, shown
from cartrial.domain.standards.tables import (
    DICTIONARY,
    Cell,
    ColumnType,
    SavedForm,
    Table,
    dictionary_rows,
    form_tables,
    spreadsheet_safe,
    table_rows,
)
from cartrial.domain.text import N_, Message, ProtocolText
from cartrial.protocols import Protocol, active_protocol

SUBJECTS_PER_CHUNK = 200
# Rows held as Python tuples before they become an Arrow batch, and rows per Parquet row group.
BATCH_ROWS = 1_000
ROW_GROUP_ROWS = 10_000
README = "README.txt"
LANGUAGES = ("en", "fr")

ARROW_TYPES: Mapping[ColumnType, pa.DataType] = MappingProxyType(
    {
        ColumnType.INTEGER: pa.int64(),
        ColumnType.NUMBER: pa.float64(),
        ColumnType.TEXT: pa.string(),
        ColumnType.CHOICE: pa.string(),
        ColumnType.DATE: pa.date32(),
        ColumnType.DATETIME: pa.timestamp("us", tz="UTC"),
        ColumnType.BOOLEAN: pa.bool_(),
    }
)


def label_text(text: Label, language: str) -> str:
    """A protocol text or a msgid in `language` (the dictionary's and the files' labels)."""
    return value_text(shown(text), language)


def csv_cell(value: Cell) -> str:
    """One cell as the CSV writes it: empty when missing, ISO 8601 dates and UTC times, a decimal dot,
    true/false; text as it is (the csv module quotes as RFC 4180 says) but for a leading formula
    character, quoted with an apostrophe so that a spreadsheet shows it rather than runs it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        # Seconds, and microseconds only when there are some: the exact time either way.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return spreadsheet_safe(value) if isinstance(value, str) else str(value)


def arrow_schema(table: Table) -> pa.Schema:
    """The table's Parquet schema: each column typed, its labels and unit as field metadata."""
    fields = [
        pa.field(
            column.name,
            ARROW_TYPES[column.type],
            metadata={
                "label_en": label_text(column.label, "en"),
                "label_fr": label_text(column.label, "fr"),
                "unit": column.unit,
                "type": column.type.value,
            },
        )
        for column in table.columns
    ]
    return pa.schema(
        fields,
        metadata={"table": table.name, **{f"label_{lang}": label_text(table.label, lang) for lang in LANGUAGES}},
    )


class TableFiles:
    """One table's CSV and Parquet files, open while the export runs. The CSV is written row by row;
    the Parquet rows are turned into Arrow batches every `BATCH_ROWS` (compact, typed columns) and
    written as one row group every `ROW_GROUP_ROWS`, so no more than that is held per table."""

    def __init__(self, folder: Path, table: Table, stack: ExitStack) -> None:
        self.table = table
        self.schema = arrow_schema(table)
        self.rows = 0
        self._pending: list[tuple[Cell, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self._batched_rows = 0
        csv_file: IO[str] = stack.enter_context((folder / f"{table.name}.csv").open("w", encoding="utf-8", newline=""))
        self._csv = csv.writer(csv_file, lineterminator="\r\n")
        self._csv.writerow(table.column_names)
        self._parquet = stack.enter_context(pq.ParquetWriter(folder / f"{table.name}.parquet", self.schema))

    def add(self, row: tuple[Cell, ...]) -> None:
        self._csv.writerow([csv_cell(value) for value in row])
        self._pending.append(row)
        self.rows += 1
        if len(self._pending) >= BATCH_ROWS:
            self._batch()
            if self._batched_rows >= ROW_GROUP_ROWS:
                self.flush()

    def _batch(self) -> None:
        if not self._pending:
            return
        arrays = [
            pa.array([row[index] for row in self._pending], type=field.type) for index, field in enumerate(self.schema)
        ]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._batched_rows += len(self._pending)
        self._pending.clear()

    def flush(self) -> None:
        """Write what is held as one Parquet row group."""
        self._batch()
        if not self._batches:
            return
        self._parquet.write_table(pa.Table.from_batches(self._batches, schema=self.schema))
        self._batches.clear()
        self._batched_rows = 0


def _visit_order(protocol: Protocol) -> dict[str, int]:
    return {visit.code: index for index, visit in enumerate(protocol.visits)}


def _in_schedule_order(protocol: Protocol, records: Iterable[SavedFormRow]) -> list[SavedFormRow]:
    """One subject's forms in the order of the schedule's visits (unscheduled ones last), then of the
    protocol's forms."""
    visits = _visit_order(protocol)
    forms = {code: index for index, code in enumerate(protocol.forms)}
    return sorted(
        records,
        key=lambda r: (visits.get(r.visit_code, len(visits)), r.visit_code, forms.get(r.form_code, len(forms))),
    )


def tables_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """Write the folder `out`: `<table>.csv` and `<table>.parquet` per table of the active protocol's
    forms (every table, an empty one with its header), `data_dictionary.csv` and `.parquet`, and a
    README. Only the request's subjects; with `since`, only the forms changed after it."""
    protocol = active_protocol()
    tables = form_tables(protocol.forms)
    by_form: dict[str, list[Table]] = {}
    for table in tables:
        by_form.setdefault(table.form, []).append(table)
    out.mkdir()
    ordered = subject_ids_in_code_order(request.subject_ids)
    subjects_written = 0
    with ExitStack() as stack:
        files = {table.name: TableFiles(out, table, stack) for table in tables}
        progress(0, len(ordered))
        for start in range(0, len(ordered), SUBJECTS_PER_CHUNK):
            chunk = ordered[start : start + SUBJECTS_PER_CHUNK]
            records = saved_forms(chunk, updated_after=request.since)
            for _, subject_records in groupby(records, key=lambda r: r.subject_code):
                written = 0
                for record in _in_schedule_order(protocol, subject_records):
                    saved = SavedForm(**record._asdict())
                    for table in by_form.get(record.form_code, ()):
                        for row in table_rows(table, saved):
                            files[table.name].add(row)
                            written += 1
                subjects_written += 1 if written else 0
            progress(min(start + SUBJECTS_PER_CHUNK, len(ordered)), len(ordered))
        for each in files.values():
            each.flush()
        rows = sum(each.rows for each in files.values())
        dictionary = TableFiles(out, DICTIONARY, stack)
        for row in dictionary_rows(tables, label_text):
            dictionary.add(row)
        dictionary.flush()
    (out / README).write_text(readme_text(protocol, request, tables, files), encoding="utf-8")
    return ExportCounts(subjects=subjects_written, records=rows)


_README_PARAGRAPHS: tuple[str, ...] = (
    N_(
        "One CSV file and one Parquet file per table, holding the same rows. CSV: UTF-8, comma-separated, "
        "a header row of column names, quoted as RFC 4180 says, dates and times in ISO 8601 (times in UTC), "
        "a dot before the decimals, true or false for yes or no, an empty cell when a value is missing. "
        "Parquet: the same columns, typed (integer: int64, number: float64, text and choice: string, "
        "date: date32, datetime: timestamp in UTC, boolean: bool), labels and unit in each field's metadata."
    ),
    N_(
        "One table per form, one row per form saved at a visit of a subject; one table per repeating group "
        "of a form (form__group), one row per row of the group, numbered by row_number. A multiple choice "
        "is one true/false column per code (item__code). A lab result is its value in the item's unit, the "
        "lab's limits of normal (item__lower_limit, item__upper_limit) and, when the item accepts several "
        "units, the result and unit as the lab reported them (item__reported, item__reported_unit)."
    ),
    N_(
        "data_dictionary.csv and data_dictionary.parquet describe every column of every table: labels in "
        "English and French, type, unit, plausible range, code list, help and derivation."
    ),
)


def readme_text(
    protocol: Protocol, request: ExportRequest, tables: Sequence[Table], files: Mapping[str, TableFiles]
) -> str:
    """The README of the folder, in English then in French: what the files are, what the export holds."""
    title = ProtocolText(protocol.title)
    since = request.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if request.since is not None else None
    parts: list[str] = []
    for language in LANGUAGES:
        lines = [
            value_text(
                Message(
                    N_("Tables of the study {study} (protocol {code} version {version}), exported at {now} UTC."),
                    {
                        "study": title,
                        "code": protocol.code,
                        "version": protocol.version,
                        "now": request.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                    },
                ),
                language,
            ),
            value_text(
                Message(N_("Subjects in the export: {count}."), {"count": len(request.subject_ids)})
                if since is None
                else Message(
                    N_("Subjects in the export: {count}; only the forms changed after {since} UTC."),
                    {"count": len(request.subject_ids), "since": since},
                ),
                language,
            ),
            "",
        ]
        for paragraph in _README_PARAGRAPHS:
            lines += [value_text(Message(paragraph), language), ""]
        lines.append(value_text(Message(N_("Tables (rows):")), language))
        lines += [f"  {table.name}: {label_text(table.label, language)} ({files[table.name].rows})" for table in tables]
        parts.append("\n".join(lines))
    return "\n\n----\n\n".join(parts) + "\n"
