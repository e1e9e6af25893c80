"""The lupus activity form's derived items: the endpoints of `cartrial endpoints` on the form's own
values, each left empty when an input it needs is missing; SRI-4's new BILAG domains; the form's
definition refused when a derivation lacks what it reads."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cartrial.domain.ecrf import FormContext, derived_values, form_values_check, parse_forms
from cartrial.domain.ecrf.definitions import FormDefinitionError
from cartrial.domain.endpoints import endpoints_report
from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores import sledai2k
from cartrial.domain.scores.sri4 import new_bilag_domains
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

RAW_FORMS: list[dict[str, Any]] = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))["forms"]
FORM = parse_forms(RAW_FORMS)["sle_activity"]
DERIVED = ("sledai2k_score", "clinical_sledai_score", "doris", "drug_free_doris", "lldas", "sri4")
# The contract's names of the derived items.
CONTRACT = dict(zip(DERIVED, ("sledai", "clinical_sledai", "doris", "drug_free_doris", "lldas", "sri4"), strict=True))

# The worked example of docs/endpoints.md, as the form records it (BILAG grades give the counts).
SCREENING = {
    "sledai2k_descriptors": ["arthritis", "rash", "proteinuria", "low_complement", "increased_dna_binding"],
    "physician_global_assessment": 2.0,
    "prednisone_mg_per_day": 20,
    "bilag_renal": "b",
    "bilag_musculoskeletal": "c",
}
COMMON = {
    "maintenance_therapy_stable": True,
    "standard_maintenance_only": True,
    "hemolytic_anemia": False,
    "gi_activity": False,
}
VISITS: list[tuple[str, dict[str, Any]]] = [
    (
        "M1",
        {
            "sledai2k_descriptors": ["arthritis", "low_complement"],
            "physician_global_assessment": 1.0,
            "prednisone_mg_per_day": 10,
            "immunosuppressants": ["mycophenolate"],
            "bilag_renal": "c",
        },
    ),
    (
        "M3",
        {
            "sledai2k_descriptors": ["low_complement", "increased_dna_binding"],
            "physician_global_assessment": 0.3,
            "prednisone_mg_per_day": 5,
            "immunosuppressants": ["mycophenolate"],
            "bilag_musculoskeletal": "b",
        },
    ),
    ("M6", {"physician_global_assessment": 0.0, "prednisone_mg_per_day": 0}),
    ("M12", {"physician_global_assessment": 0.2, "prednisone_mg_per_day": 0, "bilag_renal": "a"}),
]


def _series() -> list[tuple[str, dict[str, object]]]:
    """Each visit's values as the engine derives them, each with the baseline and the visit before."""
    baseline = form_values_check(FORM, SCREENING, FormContext(visit_code="SCR")).values
    rows, previous = [], baseline
    for code, values in VISITS:
        context = FormContext(visit_code=code, baseline_values=baseline, previous_values=previous)
        cleaned = form_values_check(FORM, {**values, **COMMON}, context).values
        rows.append((code, cleaned))
        previous = cleaned
    return rows


def test_the_derived_items_are_the_endpoints_command_on_the_same_inputs() -> None:
    """One example fed to both: the form's derivations and `cartrial endpoints` agree visit by visit."""
    rows = _series()
    payload = {
        "baseline": {
            "sledai_descriptors": SCREENING["sledai2k_descriptors"],
            "pga": SCREENING["physician_global_assessment"],
        },
        "visits": [
            {
                "code": code,
                "sledai_descriptors": values.get("sledai2k_descriptors", []),
                "pga": values["physician_global_assessment"],
                "prednisone_mg_per_day": values["prednisone_mg_per_day"],
                **COMMON,
                "new_bilag_a": values["new_bilag_a"],
                "new_bilag_b": values["new_bilag_b"],
                "immunosuppressants": values.get("immunosuppressants", []),
            }
            for code, values in rows
        ],
    }
    report = endpoints_report(payload)
    derived = [{"code": code, **{CONTRACT[name]: values[name] for name in DERIVED}} for code, values in rows]
    assert derived == report["visits"]
    # The example's own reading (docs/endpoints.md): DORIS from M3, drug-free at M6, SRI-4 lost at M12.
    assert [(r["code"], r["doris"], r["drug_free_doris"], r["sri4"]) for r in derived] == [
        ("M1", False, False, True),
        ("M3", True, False, True),
        ("M6", True, True, True),
        ("M12", True, True, False),
    ]
    assert [(values["new_bilag_a"], values["new_bilag_b"]) for _, values in rows] == [(0, 0), (0, 1), (0, 0), (1, 0)]


def test_at_the_baseline_visit_sri4_lldas_and_new_bilag_are_not_assessable() -> None:
    values = form_values_check(FORM, {**SCREENING, **COMMON}, FormContext(visit_code="SCR")).values
    assert (values["sledai2k_score"], values["clinical_sledai_score"], values["doris"]) == (14, 10, False)
    assert not {"sri4", "lldas", "new_bilag_a", "new_bilag_b"} & set(values)


def test_each_endpoint_is_left_empty_when_one_of_its_inputs_is_missing() -> None:
    baseline = form_values_check(FORM, SCREENING, FormContext(visit_code="SCR")).values
    context = FormContext(visit_code="M6", baseline_values=baseline, previous_values=baseline)
    full = {"physician_global_assessment": 0.0, "prednisone_mg_per_day": 0, **COMMON}
    assert all(form_values_check(FORM, full, context).values[name] is not None for name in DERIVED)
    without_stable = {k: v for k, v in full.items() if k != "maintenance_therapy_stable"}
    values = form_values_check(FORM, without_stable, context).values
    assert "doris" not in values and "drug_free_doris" not in values and values["lldas"] is True
    without_gi = {k: v for k, v in full.items() if k != "gi_activity"}
    values = form_values_check(FORM, without_gi, context).values
    assert "lldas" not in values and values["doris"] is True
    no_pga = form_values_check(FORM, {"prednisone_mg_per_day": 0, **COMMON}, context).values
    assert not set(DERIVED) & set(no_pga)
    no_baseline = form_values_check(FORM, full, FormContext(visit_code="M6")).values
    assert "sri4" not in no_baseline and "lldas" not in no_baseline and no_baseline["doris"] is True


def test_a_submitted_derived_value_is_replaced_and_stored_values_are_derived_again() -> None:
    context = FormContext(visit_code="SCR")
    values = form_values_check(FORM, {**SCREENING, "sledai2k_score": 0, "doris": True}, context).values
    assert values["sledai2k_score"] == 14 and "doris" not in values
    baseline = values
    m6 = form_values_check(
        FORM,
        {"physician_global_assessment": 0.0, "prednisone_mg_per_day": 0, **COMMON},
        FormContext(visit_code="M6", baseline_values=baseline),
    ).values
    assert m6["sri4"] is True
    # The baseline corrected to a low activity: the stored M6 is no longer a 4-point reduction.
    quieter = {**baseline, "sledai2k_descriptors": ["rash"]}
    again = derived_values(FORM, m6, FormContext(visit_code="M6", baseline_values=quieter))
    assert again["sri4"] is False
    assert {k: v for k, v in again.items() if k not in DERIVED} == {k: v for k, v in m6.items() if k not in DERIVED}


def test_a_pga_outside_0_to_3_is_refused_naming_the_item_and_the_range() -> None:
    with pytest.raises(InvalidInput) as refused:
        form_values_check(FORM, {"physician_global_assessment": 4, "prednisone_mg_per_day": 5}, FormContext())
    assert (refused.value.code, refused.value.item) == ("item_range", "physician_global_assessment")
    assert (refused.value.params["minimum"], refused.value.params["maximum"]) == (0, 3)


def test_values_captured_before_the_new_items_stay_valid_and_complete() -> None:
    """The form as version 1.0 captured it (no BILAG, no maintenance answers): nothing refused, nothing
    missing; the scores that need no new answer are derived, the others are left empty."""
    old = {"sledai2k_descriptors": ["rash"], "physician_global_assessment": 0.5, "prednisone_mg_per_day": 5}
    cleaned = form_values_check(FORM, old, FormContext(visit_code="M3"))
    assert cleaned.missing == ()
    assert {k: cleaned.values[k] for k in old} == {**old, "prednisone_mg_per_day": 5.0}
    assert (cleaned.values["sledai2k_score"], cleaned.values["clinical_sledai_score"]) == (2, 2)
    assert "doris" not in cleaned.values and "lldas" not in cleaned.values


@pytest.mark.parametrize(
    ("baseline", "current", "counts"),
    [
        ({"renal": "C"}, {"renal": "A"}, (1, 0)),
        ({"renal": "A"}, {"renal": "A"}, (0, 0)),
        ({"renal": "B"}, {"renal": "A"}, (1, 0)),
        ({"renal": "E"}, {"renal": "B"}, (0, 1)),
        ({"renal": "D"}, {"renal": "B"}, (0, 1)),
        ({"renal": "A"}, {"renal": "B"}, (0, 0)),
        ({"renal": "B"}, {"renal": "B"}, (0, 0)),
        ({}, {"renal": "A"}, (0, 0)),
        ({"renal": "C", "mucocutaneous": "D"}, {"renal": "B", "mucocutaneous": "B"}, (0, 2)),
    ],
)
def test_new_bilag_domains_follow_sri4(
    baseline: dict[str, str], current: dict[str, str], counts: tuple[int, int]
) -> None:
    assert new_bilag_domains(baseline=baseline, current=current) == counts


def test_every_descriptor_shows_its_definition_and_arthritis_follows_the_rule() -> None:
    helps = FORM.item("sledai2k_descriptors").choice_help
    assert set(helps) == set(sledai2k.DESCRIPTOR_KEYS)
    arthritis = str(helps["arthritis"])
    assert ("More than 2" in arthritis) == (sledai2k.ARTHRITIS_RULE == ">2")


def _activity(raw: list[dict[str, Any]]) -> dict[str, Any]:
    return next(form for form in raw if form["code"] == "sle_activity")


def test_a_cross_visit_derivation_needs_a_baseline_visit() -> None:
    raw = copy.deepcopy(RAW_FORMS)
    del _activity(raw)["baseline_visit"]
    with pytest.raises(FormDefinitionError) as refused:
        parse_forms(raw)
    assert refused.value.key.endswith("baseline_visit") and "baseline" in refused.value.problem


def test_a_derivation_whose_items_the_form_lacks_is_refused() -> None:
    raw = copy.deepcopy(RAW_FORMS)
    groups = _activity(raw)["groups"]
    groups[1]["items"] = [i for i in groups[1]["items"] if i["name"] != "maintenance_therapy_stable"]
    with pytest.raises(FormDefinitionError) as refused:
        parse_forms(raw)
    assert "maintenance_therapy_stable" in refused.value.problem and "'doris'" in refused.value.problem


def test_the_baseline_visit_must_collect_the_form(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    _activity(data["forms"])["baseline_visit"] = "D0"
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.key.endswith(".baseline_visit") and "D0" in refused.value.problem
