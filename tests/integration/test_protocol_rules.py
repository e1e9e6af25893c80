"""The protocol file's eligibility rules: evaluated on screening facts, and refused at load when broken.

Only loads YAML (no database): run with `-p no:django`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cartrial.domain.eligibility import Outcome, Verdict, evaluate, facts_from_calculator, validate_rules
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

PROTOCOL = load_protocol()
CRITERIA = PROTOCOL.criteria

# A screening that meets every criterion; calculator results shaped as calculators.md says.
ELIGIBLE_FACTS: dict[str, object] = {
    "age_years": 34,
    "sex": "female",
    "cd3_per_ul": 820,
    "organ_involvement": ["renal", "mucocutaneous"],
    "history.glucocorticoids_failed": True,
    "history.immunosuppressants": ["mycophenolate", "cyclophosphamide", "belimumab"],
    "history.biologics": ["belimumab"],
    "infection_active": False,
    "prior_cart": False,
    "prior_gene_therapy": False,
    **facts_from_calculator(
        "sledai2k",
        {"score": 12, "clinical_score": 8, "counted": [], "lookback_days": 10},
    ),
    **facts_from_calculator(
        "eular-acr-2019",
        {"entry_criterion_met": True, "score": 22, "clinical_criterion_met": True, "classified": True, "counted": []},
    ),
    **facts_from_calculator("egfr", {"egfr": 73.04, "unit": "mL/min/1.73m2", "equation": "CKD-EPI 2021"}),
}


def verdict_with(**changes: object):
    facts = dict(ELIGIBLE_FACTS)
    facts.update({name.replace("__", "."): value for name, value in changes.items()})
    return evaluate(CRITERIA, facts)


def test_every_criterion_of_the_protocol_has_a_valid_rule() -> None:
    assert [c.id for c in CRITERIA] == [
        "I01_AGE",
        "I02_EULAR_ACR",
        "I03_ACTIVE",
        "I04_REFRACTORY",
        "I05_EGFR",
        "I06_CD3",
        "E01_INFECTION",
        "E02_PRIOR_CART",
    ]
    assert all(c.rule is not None for c in CRITERIA)
    validate_rules(CRITERIA)


def test_a_patient_meeting_every_criterion_is_eligible() -> None:
    verdict = evaluate(CRITERIA, ELIGIBLE_FACTS)
    assert verdict.verdict is Verdict.ELIGIBLE
    assert [r.outcome for r in verdict.results] == [Outcome.MET] * len(CRITERIA)
    by_id = {r.criterion_id: r for r in verdict.results}
    assert str(by_id["I05_EGFR"].explanation) == (
        "eGFR (CKD-EPI 2021): 73.04 mL/min/1.73 m², at least 30 mL/min/1.73 m² required: met"
    )
    assert by_id["I05_EGFR"].values_used == {"egfr.egfr": 73.04}


@pytest.mark.parametrize(
    ("changes", "failing"),
    [
        ({"age_years": 17}, "I01_AGE"),
        ({"age_years": 66}, "I01_AGE"),
        ({"eular_acr_2019__classified": False}, "I02_EULAR_ACR"),
        ({"sledai2k__score": 7}, "I03_ACTIVE"),
        ({"organ_involvement": ["musculoskeletal", "mucocutaneous", "constitutional"]}, "I03_ACTIVE"),
        ({"history__glucocorticoids_failed": False}, "I04_REFRACTORY"),
        ({"history__immunosuppressants": ["belimumab"]}, "I04_REFRACTORY"),
        ({"history__biologics": []}, "I04_REFRACTORY"),
        ({"egfr__egfr": 29.99}, "I05_EGFR"),
        ({"cd3_per_ul": 99}, "I06_CD3"),
        ({"infection_active": True}, "E01_INFECTION"),
        ({"prior_cart": True}, "E02_PRIOR_CART"),
        ({"prior_gene_therapy": True}, "E02_PRIOR_CART"),
    ],
)
def test_one_failing_criterion_makes_the_patient_not_eligible(changes: dict[str, object], failing: str) -> None:
    verdict = verdict_with(**changes)
    assert verdict.verdict is Verdict.NOT_ELIGIBLE
    assert verdict.failed() == [failing]


@pytest.mark.parametrize(
    "changes",
    [
        {"age_years": 18},
        {"age_years": 65},
        {"egfr__egfr": 30.0},
        {"cd3_per_ul": 100},
        {"sledai2k__score": 8},
        {"organ_involvement": ["neuropsychiatric"]},
        {"history__immunosuppressants": ["azathioprine", "rituximab"], "history__biologics": ["rituximab"]},
    ],
)
def test_the_protocol_boundaries_are_inclusive(changes: dict[str, object]) -> None:
    assert verdict_with(**changes).verdict is Verdict.ELIGIBLE


@pytest.mark.parametrize(
    ("missing", "criterion_id"),
    [
        ("age_years", "I01_AGE"),
        ("sledai2k.score", "I03_ACTIVE"),
        ("history.biologics", "I04_REFRACTORY"),
        ("egfr.egfr", "I05_EGFR"),
        ("cd3_per_ul", "I06_CD3"),
        ("prior_gene_therapy", "E02_PRIOR_CART"),
    ],
)
def test_missing_data_leaves_the_verdict_incomplete_never_eligible(missing: str, criterion_id: str) -> None:
    facts = {name: value for name, value in ELIGIBLE_FACTS.items() if name != missing}
    verdict = evaluate(CRITERIA, facts)
    assert verdict.verdict is Verdict.INCOMPLETE
    assert [r.criterion_id for r in verdict.results if r.outcome is Outcome.MISSING] == [criterion_id]


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "broken_protocol.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            "{item: cd3_per_ul, gte: 100}",
            "{item: cd3_count, gte: 100}",
            "eligibility.criteria.5.rule",
            "criterion I06_CD3: rule.item: item 'cd3_count' is not a declared screening item",
        ),
        (
            "{item: sledai2k.score, gte: 8}",
            "{item: sledai2k.scores, gte: 8}",
            "eligibility.criteria.2.rule",
            "item 'sledai2k.scores' is not a declared screening item; did you mean 'sledai2k.score'?",
        ),
        (
            "{item: egfr.egfr, gte: 30}",
            "{item: egfr.egfr, at_least: 30}",
            "eligibility.criteria.4.rule",
            "criterion I05_EGFR: rule.at_least: 'at_least' on item 'egfr.egfr' is not an operator",
        ),
        (
            "{item: age_years, between: [18, 65]}",
            '{item: age_years, between: ["18", 65]}',
            "eligibility.criteria.0.rule",
            "criterion I01_AGE: rule.between: between needs [low, high], two finite numbers",
        ),
        (
            "{item: infection_active, equals: false}",
            "{item: infection_active, equals: 'no'}",
            "eligibility.criteria.6.rule",
            "item 'infection_active' has type boolean: 'no' never matches",
        ),
        (
            "{item: history.biologics, count_gte: 1}",
            "{item: history.biologics, count_gte: one}",
            "eligibility.criteria.3.rule",
            "criterion I04_REFRACTORY: rule.all.2.count_gte: count_gte needs a whole number ≥ 0",
        ),
        (
            "rule: {item: eular_acr_2019.classified, equals: true}",
            'rule: "eular_acr_2019.classified == true"',
            "eligibility.criteria.1.rule",
            "criterion I02_EULAR_ACR: rule: must be a mapping",
        ),
    ],
)
def test_a_broken_rule_stops_loading_naming_file_key_and_problem(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    path = broken_copy(tmp_path, old, new)
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.path == str(path)
    assert refused.value.key == key
    assert words in refused.value.problem
    assert str(refused.value).startswith(f"Protocol file {path}: at key '{key}': ")


def test_release_specification_is_protocol_data() -> None:
    from cartrial.protocols import load_protocol

    spec = load_protocol().product("CART_CRYO").release_specification
    assert set(spec) == {"viability", "car_expression", "vector_copy_number", "endotoxin", "sterility", "mycoplasma"}
    assert spec["viability"].minimum == 70 and spec["vector_copy_number"].maximum == 5


def test_a_broken_release_specification_stops_the_protocol(tmp_path) -> None:
    from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

    text = DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8").replace(
        'kind: numeric, unit: "%", minimum: 70}', 'kind: numeric, unit: "%"}'
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError) as error:
        load_protocol(broken)
    assert error.value.key == "products.1.release_specification"
    assert "minimum or a maximum" in error.value.problem


def test_the_pathway_products_are_named_by_their_role_in_the_protocol() -> None:
    from cartrial.protocols import load_protocol

    protocol = load_protocol()
    assert protocol.starting_material.code == "APHERESIS_FRESH"
    assert protocol.drug_product.code == "CART_CRYO"
    assert protocol.drug_product.max_thaw_to_infusion_min is not None


def test_a_protocol_with_two_drug_products_stops_loading(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path,
        "    condition: fresh\n    role: starting_material\n",
        "    condition: fresh\n    role: drug_product\n",
    )
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.key == "products"
    assert refused.value.problem == "exactly one product must have role 'starting_material' (found 0)"


def test_the_kinetics_model_preset_is_the_protocols(tmp_path: Path, settings: Any) -> None:
    from cartrial.apps.biology.selectors import kinetics_preset

    assert kinetics_preset().name == "sle-default"
    path = broken_copy(tmp_path, "kinetics_preset: sle-default", "kinetics_preset: stein2019")
    settings.CARTRIAL_PROTOCOL_FILE = str(path)
    assert kinetics_preset().name == "stein2019"


def test_capacities_shipping_to_a_lab_not_in_the_section_stop_loading(tmp_path: Path) -> None:
    path = broken_copy(
        tmp_path, "infusions_per_week: 1, ship_days: {LAB: 3}}", "infusions_per_week: 1, ship_days: {LYO: 3}}"
    )
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.key == "capacities.centers.4.ship_days.LYO"
    assert "LYO is not a manufacturing facility of this section" in refused.value.problem


def test_capacities_out_of_their_range_stop_loading(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "- {center: LAB, lines: 2,", "- {center: LAB, lines: 0,")
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.key.startswith("capacities.facilities.0")
