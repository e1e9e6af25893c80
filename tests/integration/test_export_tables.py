"""The tables export (`cartrial export csv`) on the demo study: one CSV and one Parquet file per table
with the same rows, typed Parquet columns, a dictionary of every column in both languages, values
read back as entered, and the center and `since` filters."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import transaction

from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.casebook.services import form_save
from cartrial.apps.exports import tables
from cartrial.apps.exports.formats import WRITERS
from cartrial.apps.exports.request import ExportCounts, ExportFormat
from cartrial.apps.exports.selectors import export_request_resolve
from cartrial.apps.exports.tables import README, tables_write
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DemoWorld, build_demo, demo_epoch
from cartrial.domain.ecrf import FormStatus, ItemType
from cartrial.locale import translator
from cartrial.protocols import active_protocol

# The types the Parquet files declare, as docs/exports.md promises them.
PARQUET_TYPES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "text": pa.string(),
    "choice": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}
NOW = demo_epoch() + timedelta(days=2)
TRICKY_TEXT = 'Paracétamol, 1 g "si besoin"\nle soir'


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[DemoWorld]:
    """The demo, built once for the module; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        world = build_demo(active_protocol(), today=demo_epoch())
        yield world
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("demo", "db")


def export(out: Path, **filters: Any) -> tuple[ExportCounts, list[tuple[int, int]]]:
    request = export_request_resolve(
        scope=None, export_format=ExportFormat.CSV, now=NOW, requested_by="test", **filters
    )
    calls: list[tuple[int, int]] = []
    counts = tables_write(request, out, lambda done, total: calls.append((done, total)))
    return counts, calls


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def dictionary(folder: Path) -> list[dict[str, str]]:
    return read_csv(folder / "data_dictionary.csv")


def table_names(folder: Path) -> list[str]:
    return list(dict.fromkeys(row["table"] for row in dictionary(folder)))


def parse(text: str, column_type: str) -> object:
    """A CSV cell read back with the column's declared type (independently of the writer)."""
    if text == "":
        return None
    readers: dict[str, Any] = {
        "integer": int,
        "number": float,
        "date": date.fromisoformat,
        "datetime": datetime.fromisoformat,
        "boolean": {"true": True, "false": False}.__getitem__,
    }
    return readers.get(column_type, str)(text)


def saved_records(**filters: Any) -> Any:
    return FormRecord.objects.exclude(status=FormStatus.NOT_STARTED.value).filter(**filters)


def test_the_csv_format_is_registered_for_the_runner() -> None:
    assert WRITERS[ExportFormat.CSV] is tables_write


def test_every_form_has_its_csv_and_parquet_holding_the_same_rows(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    counts, calls = export(out)
    protocol = active_protocol()
    expected_tables = []
    for form in protocol.forms.values():
        expected_tables.append(form.code)
        expected_tables += [f"{form.code}__{g.name}" for g in form.groups if g.repeating]
    assert table_names(out) == expected_tables
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.{ext}" for t in [*expected_tables, "data_dictionary"] for ext in ("csv", "parquet")] + [README]
    )
    types = {(row["table"], row["column"]): row["type"] for row in dictionary(out)}
    total = 0
    for name in expected_tables:
        rows = read_csv(out / f"{name}.csv")
        parquet = pq.read_table(out / f"{name}.parquet")
        assert parquet.num_rows == len(rows), name
        assert list(parquet.column_names) == list(rows[0] if rows else parquet.column_names)
        for csv_row, parquet_row in zip(rows, parquet.to_pylist(), strict=True):
            read_back = {column: parse(text, types[name, column]) for column, text in csv_row.items()}
            assert read_back == parquet_row, name
        total += len(rows)
    # One row per saved form; one per medication in the repeating group.
    for form in protocol.forms:
        assert len(read_csv(out / f"{form}.csv")) == saved_records(form_code=form).count(), form
    medications = sum(
        len(values.get("medications", []))
        for values in saved_records(form_code="concomitant_medications").values_list("values_json", flat=True)
    )
    assert medications > 0
    assert len(read_csv(out / "concomitant_medications__medications.csv")) == medications
    subjects = saved_records().values("subject").distinct().count()
    assert counts == ExportCounts(subjects=subjects, records=total)
    every = len(
        export_request_resolve(scope=None, export_format=ExportFormat.CSV, now=NOW, requested_by="t").subject_ids
    )
    assert calls[0] == (0, every) and calls[-1] == (every, every)
    # The README, in English then French, names each table with its label and its rows.
    english, french = (out / README).read_text(encoding="utf-8").split("\n----\n")
    vitals = saved_records(form_code="vital_signs").count()
    assert f"  vital_signs: Vital signs ({vitals})" in english and "data_dictionary.csv" in english
    assert f"  vital_signs: Signes vitaux ({vitals})" in french and "Sujets dans l'export" in french


def test_the_parquet_column_types_are_the_declared_ones(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    export(out)
    declared = dictionary(out)
    for name in table_names(out):
        schema = pq.read_schema(out / f"{name}.parquet")
        columns = [row for row in declared if row["table"] == name]
        assert [row["column"] for row in columns] == schema.names
        for row in columns:
            assert schema.field(row["column"]).type == PARQUET_TYPES[row["type"]], (name, row["column"])
    # What each kind of item became, checked on the trial's own items.
    vitals = pq.read_schema(out / "vital_signs.parquet")
    assert vitals.field("heart_rate_bpm").type == pa.int64() and vitals.field("temperature_c").type == pa.float64()
    assert vitals.field("updated_at").type == pa.timestamp("us", tz="UTC")
    infusion = pq.read_schema(out / "infusion.parquet")
    assert infusion.field("infusion_date").type == pa.date32()
    assert infusion.field("premedication__paracetamol").type == pa.bool_()
    medications = pq.read_schema(out / "concomitant_medications__medications.parquet")
    assert medications.field("route").type == pa.string() and medications.field("row_number").type == pa.int64()
    assert vitals.field("temperature_c").metadata[b"label_fr"] == "Température".encode()


def test_the_dictionary_lists_every_column_of_every_table_in_french_and_english(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    export(out)
    rows = dictionary(out)
    listed = [(row["table"], row["column"]) for row in rows]
    headers = []
    for name in table_names(out):
        with (out / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
            headers += [(name, column) for column in next(csv.reader(handle))]
    assert listed == headers
    assert all(row["label_en"] and row["label_fr"] for row in rows)
    by_column = {(row["table"], row["column"]): row for row in rows}
    # Protocol labels come from the protocol file; the keys' labels from the French catalog.
    for form in active_protocol().forms.values():
        for item in form.items:
            if item.type is not ItemType.MULTI_CHOICE and isinstance(item.label, Mapping):
                table = f"{form.code}__{item.group}" if form.group_of(item.name).repeating else form.code
                row = by_column[table, item.name]
                assert (row["label_en"], row["label_fr"]) == (item.label["en"], item.label["fr"])
    french = translator("fr")
    subject = by_column["vital_signs", "subject_code"]
    assert subject["label_fr"] == french("Subject code") != subject["label_en"] == "Subject code"
    temperature = by_column["vital_signs", "temperature_c"]
    assert (temperature["unit"], temperature["minimum"], temperature["maximum"]) == ("°C", "30.0", "45.0")
    assert "oral = Oral / " in by_column["concomitant_medications__medications", "route"]["codes"]
    assert by_column["chemistry", "egfr"]["derivation_fr"].startswith("DFG estimé")
    assert pq.read_table(out / "data_dictionary.parquet").num_rows == len(rows)


def save_medication(world: DemoWorld, text: str) -> FormRecord:
    """A coordinator adds a medication (a name with a comma, quotes and a line break) to a saved form."""
    record = (
        saved_records(form_code="concomitant_medications")
        .exclude(status__in=[FormStatus.LOCKED.value, FormStatus.SIGNED.value])
        .select_related("subject__center")
        .order_by("subject__code", "visit_code")
        .first()
    )
    assert record is not None
    subject = record.subject
    user = world.users[f"{subject.center.code.lower()}.coordinator"]
    actor = Actor(user.pk, user.username, "coordinator", subject.center.code, demo_epoch() + timedelta(days=1))
    new_row = {"medication": text, "dose": 12.5, "dose_unit": "mg", "route": "oral", "start_date": "2026-11-20"}
    form_save(
        actor=actor,
        subject=subject,
        protocol=active_protocol(),
        visit_code=record.visit_code,
        form_code="concomitant_medications",
        items={"medications": [*record.values_json["medications"], {**new_row, "ongoing": True}]},
        reason="Medication found in the hospital record",
    )
    record.refresh_from_db()
    return record


def test_a_value_entered_in_a_form_reads_back_identically_from_csv_and_parquet(tmp_path: Path, demo: DemoWorld) -> None:
    record = save_medication(demo, TRICKY_TEXT)
    out = tmp_path / "tables"
    export(out)
    key = {"subject_code": record.subject.code, "visit_code": record.visit_code}
    rows = [r for r in read_csv(out / "concomitant_medications__medications.csv") if r.items() >= key.items()]
    parquet = [
        r
        for r in pq.read_table(out / "concomitant_medications__medications.parquet").to_pylist()
        if r.items() >= key.items()
    ]
    assert len(rows) == len(parquet) == len(record.values_json["medications"])
    csv_last, parquet_last = rows[-1], parquet[-1]
    assert csv_last["medication"] == parquet_last["medication"] == TRICKY_TEXT
    assert csv_last["dose"] == "12.5" and parquet_last["dose"] == 12.5
    assert csv_last["start_date"] == "2026-11-20" and parquet_last["start_date"] == date(2026, 11, 20)
    assert csv_last["ongoing"] == "true" and parquet_last["ongoing"] is True
    assert csv_last["stop_date"] == "" and parquet_last["stop_date"] is None
    assert int(csv_last["row_number"]) == parquet_last["row_number"] == len(rows)
    assert int(csv_last["revision"]) == parquet_last["revision"] == record.revision >= 2
    assert parquet_last["updated_at"] == record.updated_at
    assert datetime.fromisoformat(csv_last["updated_at"]) == record.updated_at


def test_a_text_with_a_comma_quotes_and_a_line_break_is_quoted_as_rfc_4180_says(
    tmp_path: Path, demo: DemoWorld
) -> None:
    save_medication(demo, TRICKY_TEXT)
    out = tmp_path / "tables"
    export(out)
    raw = (out / "concomitant_medications__medications.csv").read_bytes().decode("utf-8")
    assert ',"Paracétamol, 1 g ""si besoin""\nle soir",12.5,mg,oral,2026-11-20,true,\r\n' in raw
    # Records end with CRLF; the line break inside the quoted field is the one entered.
    assert raw.count("\r\n") == len(read_csv(out / "concomitant_medications__medications.csv")) + 1


def test_a_text_a_spreadsheet_would_run_is_quoted_in_the_csv_and_exact_in_parquet(
    tmp_path: Path, demo: DemoWorld
) -> None:
    formula = '=HYPERLINK("http://example.invalid","aspirin")'
    record = save_medication(demo, formula)
    out = tmp_path / "tables"
    export(out)
    key = {"subject_code": record.subject.code, "visit_code": record.visit_code}
    csv_last = [r for r in read_csv(out / "concomitant_medications__medications.csv") if r.items() >= key.items()][-1]
    parquet = pq.read_table(out / "concomitant_medications__medications.parquet").to_pylist()
    parquet_last = [r for r in parquet if r.items() >= key.items()][-1]
    assert csv_last["medication"] == "'" + formula and parquet_last["medication"] == formula


def test_a_center_export_holds_only_that_centers_subjects(tmp_path: Path) -> None:
    centers = Counter(saved_records().values_list("subject__center__code", flat=True))
    center, _ = centers.most_common()[-1]
    assert len(centers) > 1
    out = tmp_path / "tables"
    counts, _ = export(out, center_codes=[center])
    seen: set[str] = set()
    for name in table_names(out):
        rows = read_csv(out / f"{name}.csv")
        assert {row["center_code"] for row in rows} <= {center}, name
        seen |= {row["subject_code"] for row in rows}
    expected = set(saved_records(subject__center__code=center).values_list("subject__code", flat=True))
    assert seen == expected and counts.subjects == len(expected)
    assert (
        len(read_csv(out / "vital_signs.csv"))
        == saved_records(form_code="vital_signs", subject__center__code=center).count()
    )


def test_since_holds_only_the_forms_changed_after_it(tmp_path: Path, demo: DemoWorld) -> None:
    since = demo_epoch() + timedelta(hours=12)
    record = save_medication(demo, "ramipril")
    changed = {
        (s, v, f)
        for s, v, f in saved_records(updated_at__gt=since).values_list("subject__code", "visit_code", "form_code")
    }
    assert (record.subject.code, record.visit_code, "concomitant_medications") in changed
    assert 0 < len(changed) < saved_records().count()
    out = tmp_path / "tables"
    counts, _ = export(out, since=since)
    exported = set()
    for form in active_protocol().forms:
        exported |= {(r["subject_code"], r["visit_code"], form) for r in read_csv(out / f"{form}.csv")}
    assert exported == changed
    assert counts.subjects == len({s for s, _, _ in changed})
    # The folder still holds every table (the unchanged ones empty, with their header and schema).
    assert pq.read_table(out / "infusion.parquet").num_rows == len(read_csv(out / "infusion.csv"))
    assert (out / "vital_signs.csv").read_text(encoding="utf-8").startswith("subject_code,center_code,visit_code")
    assert "only the forms changed after 2026-11-24 21:00:00 UTC" in (out / README).read_text(encoding="utf-8")


def test_an_export_of_no_subject_writes_every_table_empty(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    subject = Subject.objects.exclude(form_records__isnull=False).order_by("code").first()
    assert subject is not None
    counts, _ = export(out, subject_code=subject.code)
    assert counts == ExportCounts(subjects=0, records=0)
    for name in table_names(out):
        assert read_csv(out / f"{name}.csv") == [] and pq.read_table(out / f"{name}.parquet").num_rows == 0


def test_small_chunks_batches_and_row_groups_write_the_same_tables(tmp_path: Path, monkeypatch: Any) -> None:
    """The streaming path (several chunks of subjects, Arrow batches, row groups) on the demo's size:
    the files hold exactly what one chunk and one row group give."""
    whole = tmp_path / "whole"
    export(whole)
    monkeypatch.setattr(tables, "SUBJECTS_PER_CHUNK", 3)
    monkeypatch.setattr(tables, "BATCH_ROWS", 7)
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 20)
    streamed = tmp_path / "streamed"
    _, calls = export(streamed)
    assert len(calls) > 3 and [done for done, _ in calls] == sorted(done for done, _ in calls)
    for name in table_names(whole):
        assert (streamed / f"{name}.csv").read_bytes() == (whole / f"{name}.csv").read_bytes(), name
        assert pq.read_table(streamed / f"{name}.parquet").equals(pq.read_table(whole / f"{name}.parquet")), name
    vitals = pq.ParquetFile(streamed / "vital_signs.parquet").metadata
    # A row group every three batches of seven rows: 21 rows each, the rest in the last.
    assert vitals.num_row_groups == -(-vitals.num_rows // 21) > 1
