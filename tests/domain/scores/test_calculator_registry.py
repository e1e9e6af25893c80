"""The JSON contract of calculators.md: exact names and keys, strict validation, real JSON Schemas."""

from __future__ import annotations

import copy
import gettext

import jsonschema
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores.errors import CalculatorInputError, UnknownCalculatorError
from cartrial.domain.scores.input_fields import ChoiceInput, ChoiceListInput, RecordListInput
from cartrial.domain.scores.registry import (
    CALCULATOR_NAMES,
    CALCULATORS,
    RESULT_LABELS,
    Calculator,
    calculate,
    calculate_readable,
    describe,
    result_label,
)
from cartrial.domain.text import Message
from cartrial.locale import LOCALE_DIR, render

# Transcribed from calculators.md: name → (input keys, output keys).
CONTRACT = {
    "sledai2k": ({"descriptors", "lookback_days"}, {"score", "clinical_score", "counted", "lookback_days"}),
    "eular-acr-2019": (
        {"ana_titer", "criteria"},
        {"entry_criterion_met", "score", "clinical_criterion_met", "classified", "counted"},
    ),
    "egfr": ({"creatinine", "creatinine_unit", "age_years", "sex"}, {"egfr", "unit", "equation"}),
    "crs": (
        {"fever", "antipyretic_or_anticytokine_given", "hypotension", "hypoxia", "death_from_crs"},
        {"grade"},
    ),
    "ice": ({"orientation", "naming", "command", "writing", "attention"}, {"score"}),
    "icans": ({"ice_score", "consciousness", "seizure", "motor_weakness", "cerebral_edema"}, {"grade"}),
    "ctcae-lab": ({"term", "value", "unit", "lln"}, {"grade"}),
    "doris": (
        {"sledai_descriptors", "pga", "prednisone_mg_per_day", "maintenance_therapy_stable"},
        {"remission", "clinical_sledai", "unmet"},
    ),
    "lldas": (
        {
            "sledai_descriptors",
            "previous_sledai_descriptors",
            "hemolytic_anemia",
            "gi_activity",
            "pga",
            "prednisone_mg_per_day",
            "standard_maintenance_only",
        },
        {"lldas", "sledai", "unmet"},
    ),
    "sri4": (
        {"baseline_sledai", "current_sledai", "new_bilag_a", "new_bilag_b", "baseline_pga", "current_pga"},
        {"responder", "unmet"},
    ),
    "icaht": ({"anc"}, {"early_grade", "late_grade"}),
    "units": ({"analyte", "value", "from", "to"}, {"value", "unit"}),
}

# One valid input per calculator with the contract output it must give, worked from the sources.
EXAMPLES: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    # seizure 8 + fever 1 = 9, no serology.
    "sledai2k": (
        {"descriptors": ["seizure", "fever"]},
        {"score": 9, "clinical_score": 9, "lookback_days": 10,
         "counted": [{"descriptor": "seizure", "weight": 8}, {"descriptor": "fever", "weight": 1}]},
    ),
    # anti-dsDNA 6 + low C3 & C4 4 + fever 2 = 12, with a clinical criterion.
    "eular-acr-2019": (
        {"ana_titer": 160, "criteria": ["anti_dsdna", "low_c3", "low_c4", "fever"]},
        {"entry_criterion_met": True, "score": 12, "clinical_criterion_met": True, "classified": True,
         "counted": [
             {"domain": "constitutional", "criterion": "fever", "weight": 2},
             {"domain": "complement_proteins", "criterion": "low_c3_and_low_c4", "weight": 4},
             {"domain": "sle_specific_antibodies", "criterion": "anti_dsdna", "weight": 6},
         ]},
    ),
    # 88.4 µmol/L = 1.0 mg/dL, woman of 50 → 68.63 (CRAN egfr vignette).
    "egfr": (
        {"creatinine": 88.4, "creatinine_unit": "umol/L", "age_years": 50, "sex": "female"},
        {"egfr": 68.63, "unit": "mL/min/1.73m2", "equation": "CKD-EPI 2021"},
    ),
    # fever + one vasopressor (3) + low flow (2) → 3.
    "crs": (
        {"fever": True, "antipyretic_or_anticytokine_given": False, "hypotension": "one_vasopressor",
         "hypoxia": "low_flow", "death_from_crs": False},
        {"grade": 3},
    ),
    # 4 + 3 + 1 + 0 + 1 = 9.
    "ice": ({"orientation": 4, "naming": 3, "command": 1, "writing": 0, "attention": 1}, {"score": 9}),
    # ICE 5 (grade 2) and wakes to voice (grade 2) → 2.
    "icans": (
        {"ice_score": 5, "consciousness": "awakens_to_voice", "seizure": "none", "motor_weakness": "none",
         "cerebral_edema": "none"},
        {"grade": 2},
    ),
    # ANC 0.8 × 10^9/L: < 1.0 and ≥ 0.5 → grade 3.
    "ctcae-lab": ({"term": "neutrophil_count_decreased", "value": 0.8, "unit": "10^9/L", "lln": 1.8}, {"grade": 3}),
    # serology only: cSLEDAI 0, PGA 0.3 < 0.5, pred 5 ≤ 5, stable → remission.
    "doris": (
        {"sledai_descriptors": ["low_complement", "increased_dna_binding"], "pga": 0.3,
         "prednisone_mg_per_day": 5, "maintenance_therapy_stable": True},
        {"remission": True, "clinical_sledai": 0, "unmet": []},
    ),
    # arthritis only (4), not new, PGA 1.0, pred 7.5 → LLDAS.
    "lldas": (
        {"sledai_descriptors": ["arthritis"], "previous_sledai_descriptors": ["arthritis"],
         "hemolytic_anemia": False, "gi_activity": False, "pga": 1.0, "prednisone_mg_per_day": 7.5,
         "standard_maintenance_only": True},
        {"lldas": True, "sledai": 4, "unmet": []},
    ),
    # 12 → 8 (−4), PGA +0.2 → responder.
    "sri4": (
        {"baseline_sledai": 12, "current_sledai": 8, "new_bilag_a": 0, "new_bilag_b": 0,
         "baseline_pga": 1.0, "current_pga": 1.2},
        {"responder": True, "unmet": []},
    ),
    # ≤ 500 on days 3-7 (5 days) → early 1; late 800 and 1200 → 2.
    "icaht": (
        {"anc": [{"day": d, "anc_per_ul": 400 if 3 <= d <= 7 else 2000} for d in range(31)]
         + [{"day": 45, "anc_per_ul": 800}, {"day": 60, "anc_per_ul": 1200}]},
        {"early_grade": 1, "late_grade": 2},
    ),
    # 0.7 mg/dL × 88.4 = 61.88 µmol/L.
    "units": (
        {"analyte": "creatinine", "value": 0.7, "from": "mg/dL", "to": "umol/L"},
        {"value": 61.88, "unit": "umol/L"},
    ),
}  # fmt: skip


def test_calculator_names_are_exactly_the_contract() -> None:
    assert set(CALCULATOR_NAMES) == set(CONTRACT)
    assert set(CALCULATORS) == set(CONTRACT)


@pytest.mark.parametrize("name", CONTRACT)
def test_input_keys_are_exactly_the_contract(name: str) -> None:
    assert set(CALCULATORS[name].inputs) == CONTRACT[name][0]


@pytest.mark.parametrize("name", CONTRACT)
def test_every_contract_output_key_is_present_with_its_value(name: str) -> None:
    payload, expected = EXAMPLES[name]
    output = calculate(name, payload)
    assert CONTRACT[name][1] <= set(output)
    assert {key: output[key] for key in expected} == expected


def test_output_types_follow_the_contract() -> None:
    eular = calculate("eular-acr-2019", EXAMPLES["eular-acr-2019"][0])
    assert all(isinstance(eular[k], bool) for k in ("entry_criterion_met", "clinical_criterion_met", "classified"))
    sledai = calculate("sledai2k", EXAMPLES["sledai2k"][0])
    assert type(sledai["score"]) is int
    assert type(calculate("egfr", EXAMPLES["egfr"][0])["egfr"]) is float


@pytest.mark.parametrize("name", CONTRACT)
def test_input_schema_is_valid_json_schema_and_accepts_the_example(name: str) -> None:
    schema = describe(name)["input_schema"]
    assert isinstance(schema, dict)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(EXAMPLES[name][0], schema)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == CONTRACT[name][0]


@pytest.mark.parametrize("name", CONTRACT)
def test_describe_gives_title_description_and_contract_outputs(name: str) -> None:
    description = describe(name)
    assert description["title"]
    assert description["description"]
    assert description["source"]
    assert set(description["outputs"]) == CONTRACT[name][1]


def test_lookback_days_defaults_to_10_and_only_it_is_optional() -> None:
    assert calculate("sledai2k", {"descriptors": []})["lookback_days"] == 10
    assert calculate("sledai2k", {"descriptors": [], "lookback_days": 30})["lookback_days"] == 30
    optional = [(name, key) for name, c in CALCULATORS.items() for key, spec in c.inputs.items() if not spec.required]
    assert optional == [("sledai2k", "lookback_days")]


def _fields(name: str, payload: object) -> list[str]:
    with pytest.raises(CalculatorInputError) as caught:
        calculate(name, payload)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert "\n" not in str(error) and "\n" not in render(error.message, "fr")
    assert all(set(e) == {"field", "message"} for e in error.field_errors)
    # The API's English field errors are the translatable field messages, rendered.
    assert [e["message"] for e in error.field_errors] == [" ".join(str(m).split()) for _, m in error.field_messages]
    return [e["field"] for e in error.field_errors]


def _with(name: str, **changes: object) -> dict[str, object]:
    payload = copy.deepcopy(EXAMPLES[name][0])
    payload.update(changes)
    return payload


def test_unknown_key_is_an_error() -> None:
    assert _fields("ice", _with("ice", memory=1)) == ["memory"]


@pytest.mark.parametrize("name", CONTRACT)
def test_every_missing_required_key_is_an_error(name: str) -> None:
    for key, spec in CALCULATORS[name].inputs.items():
        if spec.required:
            payload = copy.deepcopy(EXAMPLES[name][0])
            del payload[key]
            assert _fields(name, payload) == [key]


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("ice", "command", True),  # bool is not int
        ("ice", "naming", 2.0),  # 2.0 is not an integer
        ("ice", "naming", "2"),
        ("egfr", "age_years", True),  # bool is not a number
        ("egfr", "creatinine", "1.0"),
        ("crs", "fever", 1),  # 1 is not a boolean
        ("crs", "fever", "true"),
        ("sledai2k", "descriptors", "seizure"),  # a string is not a list
        ("sledai2k", "lookback_days", None),
        ("icaht", "anc", {"day": 1, "anc_per_ul": 300}),
    ],
)
def test_wrong_types_are_errors(name: str, key: str, value: object) -> None:
    assert _fields(name, _with(name, **{key: value})) == [key]


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("ice", "orientation", 5),
        ("ice", "attention", -1),
        ("icans", "ice_score", 11),
        ("egfr", "age_years", 16),
        ("egfr", "creatinine", 0),
        ("doris", "pga", 3.5),
        ("lldas", "prednisone_mg_per_day", -2.5),
        ("sri4", "new_bilag_a", -1),  # negative count
        ("sri4", "new_bilag_b", -3),
        ("sri4", "baseline_sledai", 106),
        ("eular-acr-2019", "ana_titer", -80),
        ("sledai2k", "lookback_days", 14),
        ("ctcae-lab", "lln", 0),
        ("units", "value", -1),
    ],
)
def test_out_of_range_values_are_errors(name: str, key: str, value: object) -> None:
    assert _fields(name, _with(name, **{key: value})) == [key]


@pytest.mark.parametrize(
    ("name", "key", "value", "field"),
    [
        ("sledai2k", "descriptors", ["seizure", "malar_rash"], "descriptors[1]"),
        ("sledai2k", "descriptors", ["rash", "rash"], "descriptors[1]"),
        ("eular-acr-2019", "criteria", ["fever", 3], "criteria[1]"),
        ("crs", "hypoxia", "nasal_cannula", "hypoxia"),
        ("icans", "consciousness", "drowsy", "consciousness"),
        ("egfr", "creatinine_unit", "mmol/L", "creatinine_unit"),
        ("ctcae-lab", "unit", "cells/uL", "unit"),
        ("ctcae-lab", "term", "neutropenia", "term"),
        ("units", "from", "furlong", "from"),
    ],
)
def test_unknown_descriptors_terms_and_units_are_errors(name: str, key: str, value: object, field: str) -> None:
    assert _fields(name, _with(name, **{key: value})) == [field]


def test_cross_field_errors_come_from_the_score() -> None:
    # haemoglobin unit for a neutrophil count; g/dL is a unit, but not one of creatinine.
    assert _fields("ctcae-lab", _with("ctcae-lab", unit="g/dL")) == ["unit"]
    assert _fields("units", _with("units", **{"from": "g/dL"})) == ["from"]
    assert _fields("icans", _with("icans", consciousness="unarousable")) == ["ice_score"]


def test_icaht_record_errors_name_the_item() -> None:
    payload = {"anc": [{"day": 1, "anc_per_ul": 300}, {"day": "2", "anc_per_ul": 300, "lab": "x"}]}
    assert sorted(_fields("icaht", payload)) == ["anc[1].day", "anc[1].lab"]


def test_nan_and_infinity_are_errors() -> None:
    assert _fields("egfr", _with("egfr", creatinine=float("nan"))) == ["creatinine"]
    assert _fields("units", _with("units", value=float("inf"))) == ["value"]


def test_all_errors_are_reported_at_once() -> None:
    assert sorted(_fields("ice", {"orientation": 9, "naming": True, "extra": 1})) == [
        "attention",
        "command",
        "extra",
        "naming",
        "orientation",
        "writing",
    ]


def test_payload_must_be_an_object() -> None:
    assert _fields("ice", [1, 2, 3]) == [""]


def test_unknown_calculator_is_its_own_error() -> None:
    with pytest.raises(UnknownCalculatorError) as caught:
        calculate("sledai", {})
    assert caught.value.field_errors[0]["field"] == "name"
    assert isinstance(caught.value, CalculatorInputError)


def test_icaht_says_when_a_window_has_no_data() -> None:
    output = calculate("icaht", {"anc": [{"day": 10, "anc_per_ul": 300}]})
    assert output["late_grade"] is None
    assert any("late ICAHT not graded" in line for line in output["explanation"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CONTRACT)), data=st.data())
def test_any_json_either_computes_or_is_refused_as_input_never_crashes(name: str, data: st.DataObject) -> None:
    # "A 500 is a bug": replace some keys of a valid input by arbitrary JSON values (or add junk keys).
    payload = copy.deepcopy(EXAMPLES[name][0])
    for key in data.draw(st.lists(st.sampled_from([*payload, "junk"]), max_size=3)):
        payload[key] = data.draw(json_values)
    try:
        output = calculate(name, payload)
    except CalculatorInputError as error:
        event("refused as input")
        assert error.field_errors
    else:
        event("computed")
        assert CONTRACT[name][1] <= set(output)


# --- what the calculator pages show: labels from the catalog, explanations in the reader's language --

FRENCH = gettext.translation("django", localedir=LOCALE_DIR, languages=["fr"])


def _translated(msgid: str) -> bool:
    return msgid in FRENCH._catalog  # type: ignore[attr-defined]


def _texts_of(calculator: Calculator) -> list[str]:
    """Every msgid the calculator's page shows: title, description, fields, units, choices, outputs."""
    texts = [calculator.title, calculator.description, *calculator.outputs.values()]
    fields = list(calculator.inputs.values())
    for spec in list(fields):
        if isinstance(spec, RecordListInput):
            fields += list(spec.fields.values())
    for spec in fields:
        texts += [spec.label, spec.description] + ([spec.unit] if spec.unit else [])
        if isinstance(spec, ChoiceInput | ChoiceListInput):
            texts += [spec.choice_label(choice) for choice in spec.choices if "_" in choice or choice.isalpha()]
    return texts


@pytest.mark.parametrize("name", CONTRACT)
def test_every_text_of_a_calculator_page_is_in_the_french_catalog(name: str) -> None:
    untranslated = [text for text in _texts_of(CALCULATORS[name]) if not _translated(text)]
    assert untranslated == []


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


@pytest.mark.parametrize("name", CONTRACT)
def test_every_output_key_of_a_result_has_a_translated_label(name: str) -> None:
    calculator = CALCULATORS[name]
    output = calculate(name, EXAMPLES[name][0])
    for key in _keys(output):
        text = result_label(calculator, key)
        assert text in (*calculator.outputs.values(), *RESULT_LABELS.values()), key
        assert _translated(text), key


def test_the_json_keeps_the_codes_while_the_page_reads_labels() -> None:
    payload = {"ana_titer": 160, "criteria": ["anti_dsdna", "low_c3", "low_c4", "oral_ulcers", "acute_cutaneous_lupus"]}
    assert calculate("eular-acr-2019", payload)["explanation"] == [
        "mucocutaneous: acute_cutaneous_lupus +6",
        "complement_proteins: low_c3_and_low_c4 +4",
        "sle_specific_antibodies: anti_dsdna +6",
        "mucocutaneous: oral_ulcers not counted, acute_cutaneous_lupus weighs as much or more",
        "total 16 (≥ 10 needed) and a clinical criterion is met",
    ]
    readable = calculate_readable("eular-acr-2019", payload)["explanation"]
    assert isinstance(readable, list)
    assert [render(line, "fr") for line in readable] == [
        "Cutanéo-muqueux : Lupus cutané aigu +6",
        "Protéines du complément : C3 bas et C4 bas +4",
        "Anticorps spécifiques du LES : Anticorps anti-ADN natif +6",
        "Cutanéo-muqueux : Ulcérations buccales non compté, Lupus cutané aigu pèse autant ou plus",
        "total 16 (≥ 10 requis) et un critère clinique est rempli",
    ]
    assert render(readable[1], "en") == "Complement proteins: Low C3 and low C4 +4"


def test_a_reason_names_the_finding_by_its_label_on_the_page_and_its_code_in_the_json() -> None:
    payload = dict(EXAMPLES["crs"][0], hypotension="one_vasopressor", hypoxia="high_flow")
    assert calculate("crs", payload)["reason"] == "hypotension: one_vasopressor and hypoxia: high_flow"
    reason = calculate_readable("crs", payload)["reason"]
    assert isinstance(reason, Message)
    assert render(reason, "fr") == (
        "hypotension : Un vasopresseur (avec ou sans vasopressine) et "
        "hypoxie : Haut débit : > 6 L/min, masque facial, masque à haute concentration ou Venturi"
    )
    icans = calculate("icans", EXAMPLES["icans"][0])
    assert icans["domains"][1] == {"domain": "consciousness", "grade": 2, "finding": "awakens_to_voice"}  # type: ignore[index]


def test_a_field_error_reads_in_french_on_the_page_and_in_english_in_the_api() -> None:
    with pytest.raises(CalculatorInputError) as caught:
        calculate("egfr", dict(EXAMPLES["egfr"][0], age_years=12))
    error = caught.value
    assert error.field_errors == [{"field": "age_years", "message": "must be from 18 to 120, got 12"}]
    assert [(field, render(m, "fr")) for field, m in error.field_messages] == [
        ("age_years", "doit être de 18 à 120, reçu 12")
    ]
    assert str(error) == "invalid input: age_years: must be from 18 to 120, got 12"
    assert render(error.message, "fr") == "saisie invalide : age_years : doit être de 18 à 120, reçu 12"
    assert error.item == "age_years"
