"""The eCRF as tables (domain/standards/tables.py): columns of each kind of item, rows from the values
the engine stores, the refusals, and the data dictionary."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import yaml

from cartrial.domain.ecrf import FormContext, form_values_check, parse_forms
from cartrial.domain.ecrf.definitions import Label, shown
from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards.tables import (
    DICTIONARY_COLUMNS,
    KEY_COLUMNS,
    ColumnPart,
    ColumnType,
    SavedForm,
    Table,
    dictionary_rows,
    form_tables,
    spreadsheet_safe,
    table_rows,
)
from cartrial.domain.text import render_value
from cartrial.locale import translator
from cartrial.protocols import DEFAULT_PROTOCOL_FILE

FORMS_YAML = """
- code: trial_form
  label: {en: Trial form, fr: Formulaire d'essai}
  groups:
    - name: main
      label: {en: Main, fr: Principal}
      items:
        - {name: count, type: integer, minimum: 0, maximum: 10, label: {en: Count, fr: Nombre}}
        - {name: weight_kg, type: number, unit: kg, label: {en: Weight, fr: Poids}, help: {en: Dry, fr: Sec}}
        - {name: seen_on, type: date, label: {en: Seen on, fr: Vu le}}
        - {name: fever, type: boolean, label: {en: Fever, fr: Fièvre}}
        - {name: grade, type: choice, label: {en: Grade, fr: Grade},
           codelist: [{code: low, label: {en: Low, fr: Bas}}, {code: high, label: {en: High, fr: Haut}}]}
        - {name: signs, type: multi_choice, label: {en: Signs, fr: Signes},
           codelist: [{code: rash, label: {en: Rash, fr: Éruption}}, {code: pain, label: {en: Pain, fr: Douleur}}]}
        - {name: fever_signs, type: multi_choice, shown_when: {item: fever, equals: true},
           label: {en: Fever signs, fr: Signes de fièvre},
           codelist: [{code: chills, label: {en: Chills, fr: Frissons}}]}
        - {name: haemoglobin, type: number, analyte: hemoglobin, unit: g/L, units: [g/L, g/dL],
           label: {en: Haemoglobin, fr: Hémoglobine}}
        - {name: creatinine, type: number, analyte: creatinine, unit: umol/L,
           label: {en: Creatinine, fr: Créatinine}}
        - {name: egfr, type: number, unit: mL/min/1.73m2, derived: egfr_ckd_epi_2021,
           label: {en: eGFR, fr: DFGe}}
    - name: drugs
      label: {en: Drugs, fr: Médicaments}
      repeating: true
      items:
        - {name: drug, type: text, label: {en: Drug, fr: Médicament}}
        - {name: started_on, type: date, label: {en: Started on, fr: Débuté le}}
"""
FORMS = parse_forms(yaml.safe_load(FORMS_YAML))
FORM = FORMS["trial_form"]
CONTEXT = FormContext(visit_code="D28", sex="female", age_years=50)
UPDATED_AT = datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)


def saved(values: dict[str, Any]) -> SavedForm:
    return SavedForm("BDX-001", "BDX", "D28", "trial_form", "complete", 3, UPDATED_AT, "1.0", values)


def cells(table: Table, values: dict[str, Any]) -> list[dict[str, object]]:
    return [dict(zip(table.column_names, row, strict=True)) for row in table_rows(table, saved(values))]


def test_a_form_gives_its_table_and_one_table_per_repeating_group() -> None:
    tables = form_tables(FORMS)
    assert [t.name for t in tables] == ["trial_form", "trial_form__drugs"]
    main, drugs = tables
    keys = ["subject_code", "center_code", "visit_code", "form_status", "revision", "updated_at", "protocol_version"]
    assert list(main.column_names) == [
        *keys,
        "count",
        "weight_kg",
        "seen_on",
        "fever",
        "grade",
        "signs__rash",
        "signs__pain",
        "fever_signs__chills",
        "haemoglobin",
        "haemoglobin__reported",
        "haemoglobin__reported_unit",
        "haemoglobin__lower_limit",
        "haemoglobin__upper_limit",
        "creatinine",
        "creatinine__lower_limit",
        "creatinine__upper_limit",
        "egfr",
    ]
    assert list(drugs.column_names) == [*keys, "row_number", "drug", "started_on"]
    types = {c.name: c.type for c in main.columns}
    assert types["count"] is ColumnType.INTEGER and types["weight_kg"] is ColumnType.NUMBER
    assert types["seen_on"] is ColumnType.DATE and types["fever"] is ColumnType.BOOLEAN
    assert types["grade"] is ColumnType.CHOICE and types["signs__rash"] is ColumnType.BOOLEAN
    assert types["updated_at"] is ColumnType.DATETIME and types["haemoglobin__reported_unit"] is ColumnType.TEXT
    units = {c.name: c.unit for c in main.columns}
    # The limits of a lab accepting several units are in the unit reported, so they declare none.
    assert (units["haemoglobin"], units["haemoglobin__lower_limit"], units["creatinine__upper_limit"]) == (
        "g/L",
        "",
        "umol/L",
    )
    ranges = {c.name: (c.minimum, c.maximum) for c in main.columns}
    assert ranges["count"] == (0.0, 10.0)
    assert ranges["haemoglobin"] == (10.0, 250.0)  # the lab catalogue's range in the item's unit


def test_values_checked_by_the_engine_come_out_typed_and_unchanged() -> None:
    entered = {
        "count": "7",
        "weight_kg": "64,5",
        "seen_on": "2026-11-02",
        "fever": "yes",
        "grade": "high",
        "signs": ["pain"],
        "fever_signs": ["chills"],
        "haemoglobin": {"value": 12.5, "unit": "g/dL", "lower_limit": 12, "upper_limit": 16},
        "creatinine": {"value": 70, "unit": "umol/L", "lower_limit": 45, "upper_limit": 90},
        "drugs": [
            {"drug": 'paracetamol, 1 g "if needed"\nat night', "started_on": "2026-10-01"},
            {"drug": "ramipril"},
        ],
    }
    values = form_values_check(FORM, entered, CONTEXT).values
    main, drugs = form_tables(FORMS)
    [row] = cells(main, values)
    assert row["subject_code"] == "BDX-001" and row["revision"] == 3 and row["updated_at"] == UPDATED_AT
    assert row["count"] == 7 and isinstance(row["count"], int)
    assert row["weight_kg"] == 64.5 and row["seen_on"] == date(2026, 11, 2) and row["fever"] is True
    assert row["grade"] == "high"
    assert (row["signs__rash"], row["signs__pain"]) == (False, True)
    assert row["fever_signs__chills"] is True
    # The lab: in the item's unit as the rules read it, and as reported with the lab's limits.
    assert row["haemoglobin"] == pytest.approx(125.0)
    assert (row["haemoglobin__reported"], row["haemoglobin__reported_unit"]) == (12.5, "g/dL")
    assert (row["haemoglobin__lower_limit"], row["haemoglobin__upper_limit"]) == (12.0, 16.0)
    assert row["creatinine"] == 70.0 and row["creatinine__upper_limit"] == 90.0
    assert row["egfr"] == values["egfr"] and isinstance(row["egfr"], float)
    rows = cells(drugs, values)
    assert [(r["row_number"], r["drug"], r["started_on"]) for r in rows] == [
        (1, 'paracetamol, 1 g "if needed"\nat night', date(2026, 10, 1)),
        (2, "ramipril", None),
    ]
    assert all(r["visit_code"] == "D28" and r["form_status"] == "complete" for r in rows)


def test_a_multiple_choice_left_empty_is_unticked_unless_a_rule_may_hide_it() -> None:
    values = form_values_check(FORM, {"fever": False}, CONTEXT).values
    assert "signs" not in values and "fever_signs" not in values  # the engine stores no empty choice
    [row] = cells(form_tables(FORMS)[0], values)
    assert (row["signs__rash"], row["signs__pain"]) == (False, False)
    # A rule may hide this one: the stored values cannot tell hidden from unticked.
    assert row["fever_signs__chills"] is None
    assert row["count"] is None and row["haemoglobin"] is None and row["haemoglobin__reported_unit"] is None


def test_a_form_saved_without_rows_has_its_form_row_and_no_group_row() -> None:
    main, drugs = form_tables(FORMS)
    assert len(cells(main, {})) == 1
    assert cells(drugs, {}) == []


@pytest.mark.parametrize(
    ("values", "item"),
    [
        ({"count": 2.5}, "count"),
        ({"count": True}, "count"),
        ({"weight_kg": "64.5"}, "weight_kg"),
        ({"seen_on": "02/11/2026"}, "seen_on"),
        ({"fever": "yes"}, "fever"),
        ({"signs": ["itch"]}, "signs"),
        ({"haemoglobin": 12.5}, "haemoglobin"),
        ({"drugs": {"drug": "x"}}, "drugs"),
    ],
)
def test_a_stored_value_its_column_cannot_hold_stops_the_export_naming_it(values: dict[str, Any], item: str) -> None:
    with pytest.raises(InvalidInput) as error:
        for table in form_tables(FORMS):
            list(table_rows(table, saved(values)))
    assert error.value.code == "table_value_type"
    assert error.value.item == f"BDX-001.D28.trial_form.{item}"


def test_an_integer_stored_as_a_whole_float_is_kept_as_that_integer() -> None:
    [row] = cells(form_tables(FORMS)[0], {"count": 4.0, "weight_kg": 64})
    assert row["count"] == 4 and isinstance(row["count"], int)
    assert row["weight_kg"] == 64.0 and isinstance(row["weight_kg"], float)


def test_an_item_named_as_a_key_column_is_refused_naming_the_table_and_column() -> None:
    clash = yaml.safe_load(FORMS_YAML)
    clash[0]["groups"][0]["items"][0]["name"] = "revision"
    with pytest.raises(InvalidInput) as error:
        form_tables(parse_forms(clash))
    assert (error.value.code, error.value.item) == ("table_column_duplicate", "trial_form.revision")


def test_a_form_and_a_group_giving_the_same_table_name_are_refused() -> None:
    clash = yaml.safe_load(FORMS_YAML)
    other = {**clash[0], "code": "trial_form__drugs", "groups": [clash[0]["groups"][0]]}
    with pytest.raises(InvalidInput) as error:
        form_tables(parse_forms([*clash, other]))
    assert (error.value.code, error.value.item) == ("table_name_duplicate", "trial_form__drugs")


def render(text: Label, language: str) -> str:
    return render_value(shown(text), translator(language), language)


def test_the_dictionary_has_one_row_per_column_with_both_languages_codes_and_derivation() -> None:
    tables = form_tables(FORMS)
    rows = [
        dict(zip((c.name for c in DICTIONARY_COLUMNS), row, strict=True)) for row in dictionary_rows(tables, render)
    ]
    assert [(r["table"], r["column"]) for r in rows] == [(t.name, c) for t in tables for c in t.column_names]
    by_column = {(r["table"], r["column"]): r for r in rows}
    weight = by_column["trial_form", "weight_kg"]
    assert (weight["label_en"], weight["label_fr"], weight["type"], weight["unit"]) == (
        "Weight",
        "Poids",
        "number",
        "kg",
    )
    assert (weight["help_en"], weight["help_fr"]) == ("Dry", "Sec")
    assert by_column["trial_form", "grade"]["codes"] == "low = Low / Bas; high = High / Haut"
    assert by_column["trial_form", "signs__pain"]["label_fr"] == "Signes : Douleur"
    assert by_column["trial_form", "count"]["minimum"] == 0.0 and by_column["trial_form", "count"]["maximum"] == 10.0
    egfr = by_column["trial_form", "egfr"]
    assert egfr["derivation_en"] is not None and "CKD-EPI 2021" in str(egfr["derivation_en"])
    assert egfr["derivation_fr"] is not None and egfr["derivation_fr"] != egfr["derivation_en"]
    assert by_column["trial_form", "weight_kg"]["derivation_en"] is None
    status = by_column["trial_form", "form_status"]
    assert status["codes"] == (
        "draft = Draft / Brouillon; complete = Complete / Complet; verified = Verified / Vérifié; "
        "locked = Locked / Gelé; signed = Signed / Signé"
    )
    # The keys' labels are the catalog's: translated, so the French differs from the English.
    for key in KEY_COLUMNS:
        row = by_column["trial_form", key.name]
        assert row["label_fr"] and row["label_fr"] != row["label_en"], key.name


def test_every_table_of_the_trial_protocol_is_built_and_every_item_has_its_columns() -> None:
    forms = parse_forms(yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))["forms"])
    tables = form_tables(forms)
    read = {(t.form, c.item) for t in tables for c in t.columns if c.part not in _KEY_PARTS}
    assert read == {(form.code, item.name) for form in forms.values() for item in form.items}
    multi = [c for t in tables for c in t.columns if c.part is ColumnPart.CODE_TICKED]
    assert {c.item for c in multi} == {"sledai2k_descriptors", "immunosuppressants", "premedication"}


_KEY_PARTS = {c.part for c in KEY_COLUMNS} | {ColumnPart.ROW_NUMBER}


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_leading_formula_character_is_quoted_for_spreadsheets(start: str) -> None:
    assert spreadsheet_safe(f"{start}SUM(A1)") == f"'{start}SUM(A1)"


@pytest.mark.parametrize("text", ["aspirin", "", "1 = 1", "a-b", "'quoted"])
def test_text_without_a_leading_formula_character_is_written_as_entered(text: str) -> None:
    assert spreadsheet_safe(text) == text
