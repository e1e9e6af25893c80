"""The eCRF engine on the trial's own forms: conversions, refusals with their item, conditions, edit checks."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.ecrf import (
    FormContext,
    FormDef,
    FormStatus,
    ItemType,
    edit_check_findings,
    form_values_check,
    parse_forms,
    required_check,
)
from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores.egfr import Sex, estimate_egfr_ckd_epi_2021
from cartrial.domain.scores.sledai2k import DESCRIPTOR_KEYS
from cartrial.protocols import DEFAULT_PROTOCOL_FILE

RAW_FORMS: list[dict[str, Any]] = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))["forms"]
FORMS = parse_forms(RAW_FORMS)
CONTEXT = FormContext(visit_code="D28", sex="female", age_years=50, inclusion_date=date(2026, 2, 1))
VITALS = {
    "temperature_c": 37.2,
    "heart_rate_bpm": 72,
    "systolic_bp_mmhg": 120,
    "diastolic_bp_mmhg": 80,
    "spo2_pct": 98,
    "weight_kg": 64.5,
}


def refused(form: str, raw: dict[str, object], context: FormContext = CONTEXT) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        form_values_check(FORMS[form], raw, context)
    return error.value


def test_valid_vital_signs_are_kept_with_their_types_and_nothing_missing() -> None:
    cleaned = form_values_check(
        FORMS["vital_signs"], {**VITALS, "heart_rate_bpm": "72", "temperature_c": "37,2"}, CONTEXT
    )
    assert cleaned.values == {**VITALS, "spo2_pct": 98.0}
    assert isinstance(cleaned.values["heart_rate_bpm"], int)
    assert cleaned.missing == ()


@pytest.mark.parametrize(
    ("item", "low", "high"),
    [
        ("temperature_c", 30, 45),
        ("heart_rate_bpm", 20, 250),
        ("systolic_bp_mmhg", 50, 260),
        ("diastolic_bp_mmhg", 20, 160),
        ("spo2_pct", 50, 100),
        ("weight_kg", 25, 250),
    ],
)
def test_vital_sign_ranges_hold_at_their_bounds_and_refuse_beyond(item: str, low: float, high: float) -> None:
    form = FORMS["vital_signs"]
    assert (form.item(item).minimum, form.item(item).maximum) == (low, high)
    for bound in (low, high):
        assert form_values_check(form, {item: bound}, CONTEXT).values[item] == bound
    step = 1 if form.item(item).type is ItemType.INTEGER else 0.1
    for outside in (low - step, high + step):
        error = refused("vital_signs", {item: outside})
        assert (error.code, error.item) == ("item_range", item)
        assert (error.params["minimum"], error.params["maximum"]) == (low, high)
        assert error.params["unit"] == form.item(item).unit


def test_each_refusal_code_names_its_item() -> None:
    cases: list[tuple[str, dict[str, object], str, str]] = [
        ("vital_signs", {"pulse": 70}, "item_unknown", "pulse"),
        ("vital_signs", {"heart_rate_bpm": "fast"}, "item_type", "heart_rate_bpm"),
        ("vital_signs", {"heart_rate_bpm": 72.5}, "item_type", "heart_rate_bpm"),
        ("vital_signs", {"temperature_c": True}, "item_type", "temperature_c"),
        ("vital_signs", {"temperature_c": 46}, "item_range", "temperature_c"),
        ("chemistry", {"creatinine": {"value": 80, "unit": "mmol/L"}}, "item_unit", "creatinine"),
        ("chemistry", {"creatinine": {"value": 80, "weight": 1}}, "item_unknown", "creatinine.weight"),
        ("lymphodepletion", {"regimen": "bendamustine"}, "item_choice", "regimen"),
        ("sle_activity", {"sledai2k_descriptors": ["rash", "sunburn"]}, "item_choice", "sledai2k_descriptors"),
        ("infusion", {"infusion_date": "2026-02-30"}, "item_type", "infusion_date"),
        ("infusion", {"infusion_start_time": "25:10"}, "item_type", "infusion_start_time"),
        ("infusion", {"infusion_date": "2026-01-20"}, "item_date", "infusion_date"),
        (
            "haematology",
            {"platelets": {"value": 200, "lower_limit": 400, "upper_limit": 150}},
            "item_reference_range",
            "platelets.upper_limit",
        ),
        (
            "concomitant_medications",
            {"medications": [{"medication": "x", "colour": "red"}]},
            "item_unknown",
            "medications.0.colour",
        ),
        ("concomitant_medications", {"medications": [{"route": "rectal"}]}, "item_choice", "medications.0.route"),
        ("concomitant_medications", {"medications": {"medication": "x"}}, "item_type", "medications"),
    ]
    for form, raw, code, item in cases:
        error = refused(form, raw)
        assert (error.code, error.item) == (code, item), (form, raw)


def test_the_first_refused_item_is_the_one_named() -> None:
    error = refused("vital_signs", {"temperature_c": 20, "heart_rate_bpm": 999})
    assert error.item == "temperature_c"


def test_a_lab_accepts_a_number_in_its_unit_or_a_value_with_another_accepted_unit() -> None:
    form = FORMS["chemistry"]
    plain = form_values_check(form, {"creatinine": 88.4}, CONTEXT).values["creatinine"]
    assert plain == {"value": 88.4, "unit": "umol/L", "lower_limit": None, "upper_limit": None}
    reported = {"value": 1.0, "unit": "mg/dL", "lower_limit": 0.5, "upper_limit": 1.1}
    kept = form_values_check(form, {"creatinine": reported}, CONTEXT).values["creatinine"]
    assert kept == reported
    micro = form_values_check(form, {"creatinine": {"value": 80, "unit": "µmol/L"}}, CONTEXT).values["creatinine"]
    assert micro == {"value": 80.0, "unit": "umol/L", "lower_limit": None, "upper_limit": None}


def test_a_lab_range_is_the_analytes_in_the_unit_entered() -> None:
    form = FORMS["chemistry"]
    assert form_values_check(form, {"creatinine": {"value": 25, "unit": "mg/dL"}}, CONTEXT).values
    error = refused("chemistry", {"creatinine": {"value": 26, "unit": "mg/dL"}})
    assert (error.code, error.item, error.params["maximum"], error.params["unit"]) == (
        "item_range",
        "creatinine",
        25,
        "mg/dL",
    )
    # 26 is a plausible creatinine in µmol/L (a child's), only the unit decided.
    assert form_values_check(form, {"creatinine": 26}, CONTEXT).values["creatinine"]


def test_egfr_is_derived_from_creatinine_age_and_sex_whatever_the_creatinine_unit() -> None:
    expected = estimate_egfr_ckd_epi_2021(creatinine=1.0, creatinine_unit="mg/dL", age_years=50, sex=Sex.FEMALE)
    assert round(expected.egfr_ml_per_min_per_1_73m2, 2) == 68.63  # clinical.md §6.1
    form = FORMS["chemistry"]
    in_umol = form_values_check(form, {"creatinine": 88.4}, CONTEXT).values
    in_mg = form_values_check(form, {"creatinine": {"value": 1.0, "unit": "mg/dL"}}, CONTEXT).values
    assert in_umol["egfr"] == in_mg["egfr"] == 68.6
    # A value typed into the derived item is replaced by the computed one.
    assert form_values_check(form, {"creatinine": 88.4, "egfr": 120}, CONTEXT).values["egfr"] == 68.6
    male = FormContext(sex="male", age_years=65)
    assert form_values_check(form, {"creatinine": {"value": 1.2, "unit": "mg/dL"}}, male).values["egfr"] == 67.1


def test_egfr_is_not_derived_without_age_sex_or_an_adult() -> None:
    form = FORMS["chemistry"]
    for context in (FormContext(), FormContext(sex="female"), FormContext(sex="female", age_years=12)):
        assert "egfr" not in form_values_check(form, {"creatinine": 88.4}, context).values


def test_sledai_descriptors_code_list_is_the_scores_keys() -> None:
    assert FORMS["sle_activity"].item("sledai2k_descriptors").codes == DESCRIPTOR_KEYS
    cleaned = form_values_check(FORMS["sle_activity"], {"sledai2k_descriptors": ["rash", "arthritis", "rash"]}, CONTEXT)
    assert cleaned.values["sledai2k_descriptors"] == ["arthritis", "rash"]


def test_a_hidden_item_is_dropped_and_not_required() -> None:
    form = FORMS["lymphodepletion"]
    raw = {"regimen": "cy_only", "fludarabine_mg_per_m2_per_day": 30, "days": 3, "start_date": "2026-03-01"}
    cleaned = form_values_check(form, raw, CONTEXT)
    assert "fludarabine_mg_per_m2_per_day" not in cleaned.values
    assert cleaned.missing == ("cyclophosphamide_mg_per_m2_per_day",)
    full = {**raw, "regimen": "flu_cy", "cyclophosphamide_mg_per_m2_per_day": 500}
    assert form_values_check(form, full, CONTEXT).values["fludarabine_mg_per_m2_per_day"] == 30


def test_stop_date_is_required_unless_ongoing_row_by_row() -> None:
    row = {
        "medication": "hydroxychloroquine",
        "dose": 200,
        "dose_unit": "mg",
        "route": "oral",
        "start_date": "2025-06-01",
    }
    raw = {
        "medications": [
            {**row, "ongoing": True},
            {**row, "ongoing": "no"},
            {**row, "ongoing": False, "stop_date": "2026-03-01"},
        ]
    }
    cleaned = form_values_check(FORMS["concomitant_medications"], raw, CONTEXT)
    assert cleaned.missing == ("medications.1.stop_date",)
    rows = cleaned.values["medications"]
    assert isinstance(rows, list) and rows[2]["stop_date"] == "2026-03-01" and rows[1]["ongoing"] is False
    with pytest.raises(InvalidInput) as error:
        required_check(FORMS["concomitant_medications"], cleaned)
    assert (error.value.code, error.value.item) == ("item_required", "medications.1.stop_date")
    # An ongoing medication's stop date is not shown, so it is dropped.
    ongoing = form_values_check(
        FORMS["concomitant_medications"],
        {"medications": [{**row, "ongoing": True, "stop_date": "2026-01-01"}]},
        CONTEXT,
    )
    assert "stop_date" not in ongoing.values["medications"][0]  # type: ignore[index]


def test_a_draft_lists_missing_required_items_and_complete_needs_none() -> None:
    cleaned = form_values_check(FORMS["vital_signs"], {"temperature_c": 37}, CONTEXT)
    assert cleaned.missing == ("heart_rate_bpm", "systolic_bp_mmhg", "diastolic_bp_mmhg")
    with pytest.raises(InvalidInput) as error:
        required_check(FORMS["vital_signs"], cleaned)
    assert (error.value.code, error.value.item) == ("item_required", "heart_rate_bpm")
    required_check(FORMS["vital_signs"], form_values_check(FORMS["vital_signs"], VITALS, CONTEXT))


def test_diastolic_not_below_systolic_is_a_finding_on_diastolic() -> None:
    form = FORMS["vital_signs"]
    fine = form_values_check(form, VITALS, CONTEXT).values
    assert edit_check_findings(form, fine, CONTEXT) == []
    for diastolic in (120, 130):
        values = form_values_check(form, {**VITALS, "diastolic_bp_mmhg": diastolic}, CONTEXT).values
        [finding] = edit_check_findings(form, values, CONTEXT)
        assert (finding.code, finding.item) == ("diastolic_below_systolic", "diastolic_bp_mmhg")
        assert str(finding.message) == (
            "Diastolic pressure must be below systolic pressure: Diastolic blood pressure: "
            f"{diastolic} mmHg, not below Systolic blood pressure (120 mmHg)"
        )
    # Missing systolic: nothing to compare, no finding.
    partial = form_values_check(form, {"diastolic_bp_mmhg": 90}, CONTEXT).values
    assert edit_check_findings(form, partial, CONTEXT) == []


def test_stop_before_start_is_a_finding_on_that_row() -> None:
    form = FORMS["concomitant_medications"]
    row = {"medication": "prednisone", "dose": 5, "dose_unit": "mg", "route": "oral", "ongoing": False}
    raw = {
        "medications": [
            {**row, "start_date": "2026-01-01", "stop_date": "2026-01-01"},
            {**row, "start_date": "2026-02-01", "stop_date": "2026-01-15"},
        ]
    }
    values = form_values_check(form, raw, CONTEXT).values
    [finding] = edit_check_findings(form, values, CONTEXT)
    assert (finding.code, finding.item) == ("stop_not_before_start", "medications.1.stop_date")


def test_the_visit_date_outside_the_window_is_a_finding() -> None:
    window = FormContext(
        visit_code="LD", earliest=date(2026, 3, 1), latest=date(2026, 3, 3), inclusion_date=date(2026, 2, 1)
    )
    form = FORMS["lymphodepletion"]
    raw = {"regimen": "cy_only", "cyclophosphamide_mg_per_m2_per_day": 500, "days": 3}
    for day, expected in (
        ("2026-03-01", []),
        ("2026-03-03", []),
        ("2026-03-04", ["start_date"]),
        ("2026-02-28", ["start_date"]),
    ):
        values = form_values_check(form, {**raw, "start_date": day}, window).values
        assert [f.item for f in edit_check_findings(form, values, window) if f.code == "visit_date_window"] == expected
    # A form without a visit-date item uses the visit's date.
    vitals = form_values_check(FORMS["vital_signs"], VITALS, CONTEXT).values
    late = FormContext(visit_code="D28", earliest=date(2026, 3, 1), latest=date(2026, 3, 7), done_on=date(2026, 3, 9))
    [finding] = edit_check_findings(FORMS["vital_signs"], vitals, late)
    assert (finding.code, finding.item) == ("visit_date_window", "")
    assert "2026-03-09" in str(finding.message)


def test_rules_may_read_another_forms_item() -> None:
    raw = copy.deepcopy(RAW_FORMS)
    vitals = next(form for form in raw if form["code"] == "vital_signs")
    vitals["edit_checks"].append(
        {
            "code": "fever_without_crp",
            "rule": {"any": [{"item": "temperature_c", "lt": 38}, {"item": "chemistry.crp", "gte": 0}]},
            "message": {"en": "Fever: measure CRP", "fr": "Fièvre : doser la CRP"},
            "items": ["temperature_c"],
        }
    )
    form = parse_forms(raw)["vital_signs"]
    values = form_values_check(form, {**VITALS, "temperature_c": 39}, CONTEXT).values
    without = edit_check_findings(form, values, CONTEXT)
    assert [f.code for f in without] == []  # CRP not known: missing, not a finding
    no_crp = FormContext(other_forms={"chemistry": {"crp": None}})
    assert edit_check_findings(form, values, no_crp) == []
    with_crp = FormContext(other_forms={"chemistry": {"crp": {"value": 40, "unit": "mg/L"}}})
    assert edit_check_findings(form, values, with_crp) == []
    afebrile = form_values_check(form, VITALS, CONTEXT).values
    assert edit_check_findings(form, afebrile, CONTEXT) == []


def test_an_amendment_adding_an_item_keeps_old_values_valid() -> None:
    old_values = form_values_check(FORMS["vital_signs"], VITALS, CONTEXT).values
    raw = copy.deepcopy(RAW_FORMS)
    vitals = next(form for form in raw if form["code"] == "vital_signs")
    vitals["groups"][0]["items"].append(
        {
            "name": "respiratory_rate_per_min",
            "type": "integer",
            "unit": "/min",
            "minimum": 4,
            "maximum": 80,
            "label": {"en": "Respiratory rate", "fr": "Fréquence respiratoire"},
        }
    )
    amended: FormDef = parse_forms(raw)["vital_signs"]
    again = form_values_check(amended, old_values, CONTEXT)
    assert again.values == old_values and again.missing == ()
    assert edit_check_findings(amended, again.values, CONTEXT) == []


def test_form_status_labels_are_msgids() -> None:
    assert [status.value for status in FormStatus] == [
        "not_started",
        "draft",
        "complete",
        "verified",
        "locked",
        "signed",
    ]
    assert FormStatus.VERIFIED.label == "Verified"


_NUMERIC = [
    (form.code, item.name)
    for form in FORMS.values()
    for item in form.items
    if item.type in (ItemType.INTEGER, ItemType.NUMBER)
    and item.minimum is not None
    and item.maximum is not None
    and not form.group_of(item.name).repeating
    and item.shown_when is None
]


@given(st.sampled_from(_NUMERIC), st.floats(min_value=-1e6, max_value=1e9, allow_nan=False))
def test_a_number_is_accepted_exactly_when_it_lies_in_the_items_range(case: tuple[str, str], number: float) -> None:
    form_code, name = case
    item = FORMS[form_code].item(name)
    value: float | int = round(number) if item.type is ItemType.INTEGER else number
    assert item.minimum is not None and item.maximum is not None
    inside = item.minimum <= value <= item.maximum
    try:
        cleaned = form_values_check(FORMS[form_code], {name: value}, CONTEXT)
    except InvalidInput as error:
        event("refused")
        assert not inside
        assert (error.code, error.item) == ("item_range", name)
        return
    event("accepted")
    assert inside
    assert cleaned.values[name] == value


@given(st.sampled_from(["umol/L", "mg/dL"]), st.floats(min_value=0, max_value=3000, allow_nan=False))
def test_creatinine_is_accepted_within_the_catalogue_range_of_its_unit(unit: str, number: float) -> None:
    limits = {"umol/L": (5, 2000), "mg/dL": (0.05, 25)}[unit]
    try:
        form_values_check(FORMS["chemistry"], {"creatinine": {"value": number, "unit": unit}}, CONTEXT)
    except InvalidInput as error:
        event(f"refused in {unit}")
        assert error.code == "item_range" and not limits[0] <= number <= limits[1]
        return
    event(f"accepted in {unit}")
    assert limits[0] <= number <= limits[1]
