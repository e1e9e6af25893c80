"""The eligibility rule language: each operator, three-valued combination, refusals, properties."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain.eligibility import (
    KNOWN_SCREENING_ITEMS,
    Criterion,
    CriterionResult,
    ItemType,
    Outcome,
    RuleError,
    ScreeningItem,
    Verdict,
    evaluate,
    facts_from_calculator,
    overall_verdict,
    parse_criteria,
    validate_rules,
    verdict_from_answers,
)
from cartrial.domain.errors import InvalidInput
from cartrial.locale import render

TEXT = {"en": "criterion", "fr": "critère"}


def criterion(rule: Mapping[str, object] | None, criterion_id: str = "C01", kind: str = "inclusion") -> Criterion:
    return Criterion(id=criterion_id, kind=kind, text=TEXT, rule=rule)


def outcome_of(rule: Mapping[str, object], facts: Mapping[str, object]) -> Outcome:
    return evaluate([criterion(rule)], facts).results[0].outcome


MET, NOT_MET, MISSING = Outcome.MET, Outcome.NOT_MET, Outcome.MISSING


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ({"item": "infection_active", "equals": False}, False, MET),
        ({"item": "infection_active", "equals": False}, True, NOT_MET),
        ({"item": "sex", "equals": "female"}, "female", MET),
        ({"item": "sex", "equals": "female"}, "male", NOT_MET),
        ({"item": "sledai2k_lookback_days", "equals": 10}, 10, MET),
        ({"item": "sledai2k_lookback_days", "equals": 10}, 30, NOT_MET),
        ({"item": "sledai2k_lookback_days", "in": [10, 30]}, 30, MET),
        ({"item": "sledai2k_lookback_days", "in": [10, 30]}, 20, NOT_MET),
        ({"item": "sledai2k.score", "gte": 8}, 8, MET),
        ({"item": "sledai2k.score", "gte": 8}, 7, NOT_MET),
        ({"item": "sledai2k.score", "gt": 8}, 9, MET),
        ({"item": "sledai2k.score", "gt": 8}, 8, NOT_MET),
        ({"item": "sledai2k.score", "lte": 8}, 8, MET),
        ({"item": "sledai2k.score", "lte": 8}, 9, NOT_MET),
        ({"item": "sledai2k.score", "lt": 8}, 7, MET),
        ({"item": "sledai2k.score", "lt": 8}, 8, NOT_MET),
        ({"item": "egfr.egfr", "gte": 30}, 30.0, MET),
        ({"item": "egfr.egfr", "gte": 30}, 29.99, NOT_MET),
        ({"item": "egfr.egfr", "between": [30, 60]}, 45.5, MET),
        ({"item": "egfr.egfr", "between": [30, 60]}, 60.01, NOT_MET),
        ({"item": "organ_involvement", "contains": "renal"}, ["cardiorespiratory", "renal"], MET),
        ({"item": "organ_involvement", "contains": "renal"}, ["cardiorespiratory"], NOT_MET),
        ({"item": "organ_involvement", "contains_any": ["renal", "ophthalmic"]}, ["ophthalmic"], MET),
        ({"item": "organ_involvement", "contains_any": ["renal", "ophthalmic"]}, ["musculoskeletal"], NOT_MET),
        ({"item": "organ_involvement", "contains_any": ["renal"]}, [], NOT_MET),
        ({"item": "history.immunosuppressants", "count_gte": 2}, ["mycophenolate", "rituximab"], MET),
        ({"item": "history.immunosuppressants", "count_gte": 2}, ("mycophenolate",), NOT_MET),
        ({"item": "history.immunosuppressants", "count_gte": 2}, ["mycophenolate", "mycophenolate"], NOT_MET),
        ({"item": "history.biologics", "count_gte": 1}, [], NOT_MET),
        ({"item": "history.biologics", "count_lte": 1}, {"rituximab"}, MET),
        ({"item": "history.biologics", "count_lte": 1}, ["rituximab", "belimumab"], NOT_MET),
    ],
)
def test_each_operator_decides_met_or_not_met(rule: dict[str, object], value: object, expected: Outcome) -> None:
    assert outcome_of(rule, {rule["item"]: value}) is expected  # type: ignore[index]


@pytest.mark.parametrize(
    ("rule", "met", "not_met"),
    [
        ({"item": "age_years", "between": [18, 65]}, [18, 40, 65], [17, 66]),
        ({"item": "egfr.egfr", "gte": 30}, [30, 30.0, 30.01, 120], [29.99, 0]),
        ({"item": "cd3_per_ul", "gte": 100}, [100, 100.0, 1500], [99, 99.99]),
    ],
)
def test_protocol_thresholds_include_their_boundaries(rule: dict[str, object], met: list[float], not_met: list[float]):
    item = str(rule["item"])
    assert [outcome_of(rule, {item: v}) for v in met] == [MET] * len(met)
    assert [outcome_of(rule, {item: v}) for v in not_met] == [NOT_MET] * len(not_met)


A_MET = {"item": "prior_cart", "equals": False}
A_NOT_MET = {"item": "infection_active", "equals": False}
A_MISSING = {"item": "cd3_per_ul", "gte": 100}
FACTS = {"prior_cart": False, "infection_active": True}
BY_OUTCOME = {MET: A_MET, NOT_MET: A_NOT_MET, MISSING: A_MISSING}


@pytest.mark.parametrize(
    ("combinator", "parts", "expected"),
    [
        ("all", [MET, MET], MET),
        ("all", [MET, NOT_MET], NOT_MET),
        ("all", [MISSING, NOT_MET], NOT_MET),
        ("all", [MET, MISSING], MISSING),
        ("any", [NOT_MET, MET], MET),
        ("any", [MISSING, MET], MET),
        ("any", [NOT_MET, MISSING], MISSING),
        ("any", [NOT_MET, NOT_MET], NOT_MET),
    ],
)
def test_all_and_any_combine_as_kleene_logic(combinator: str, parts: list[Outcome], expected: Outcome) -> None:
    rule = {combinator: [BY_OUTCOME[part] for part in parts]}
    assert outcome_of(rule, FACTS) is expected


@pytest.mark.parametrize(("inner", "expected"), [(MET, NOT_MET), (NOT_MET, MET), (MISSING, MISSING)])
def test_not_swaps_met_and_not_met_and_keeps_missing(inner: Outcome, expected: Outcome) -> None:
    assert outcome_of({"not": BY_OUTCOME[inner]}, FACTS) is expected


def test_absent_or_none_item_is_missing_data_never_not_met() -> None:
    rule = {"item": "sledai2k.score", "gte": 8}
    assert outcome_of(rule, {}) is MISSING
    assert outcome_of(rule, {"sledai2k.score": None}) is MISSING
    verdict = evaluate([criterion(rule)], {"sledai2k.score": None})
    assert verdict.verdict is Verdict.INCOMPLETE
    assert str(verdict.results[0].explanation) == "SLEDAI-2K: not computed yet"


def test_an_empty_list_is_data_not_missing() -> None:
    assert outcome_of({"item": "history.biologics", "count_gte": 1}, {"history.biologics": []}) is NOT_MET


def test_one_failing_criterion_makes_the_subject_not_eligible_even_with_missing_data() -> None:
    criteria = [
        criterion({"item": "age_years", "between": [18, 65]}, "I01"),
        criterion({"item": "cd3_per_ul", "gte": 100}, "I06"),
        criterion({"item": "infection_active", "equals": False}, "E01", "exclusion"),
    ]
    verdict = evaluate(criteria, {"age_years": 40, "infection_active": True})
    assert verdict.verdict is Verdict.NOT_ELIGIBLE
    assert verdict.failed() == ["E01"]
    assert [r.outcome for r in verdict.results] == [MET, MISSING, NOT_MET]
    assert evaluate(criteria, {"age_years": 40, "infection_active": False}).verdict is Verdict.INCOMPLETE
    everything = {"age_years": 40, "infection_active": False, "cd3_per_ul": 450}
    assert evaluate(criteria, everything).verdict is Verdict.ELIGIBLE


def test_a_criterion_without_rule_waits_for_attestation() -> None:
    verdict = evaluate([criterion(None)], {"age_years": 40})
    assert verdict.results[0].outcome is MISSING
    assert verdict.verdict is Verdict.INCOMPLETE
    assert str(verdict.results[0].explanation) == "No rule in the protocol: to be attested by the investigator."
    french = render(verdict.results[0].explanation, "fr")
    assert french == "Pas de règle dans le protocole : à attester par l'investigateur."


def test_no_criteria_is_never_eligible() -> None:
    assert evaluate([], {"age_years": 40}).verdict is Verdict.INCOMPLETE


def test_the_result_records_the_values_used_and_says_why_in_words() -> None:
    rule = {
        "all": [
            {"item": "sledai2k.score", "gte": 8},
            {"item": "organ_involvement", "contains_any": ["renal", "neuropsychiatric"]},
        ]
    }
    facts = {"sledai2k.score": 6, "organ_involvement": ("renal",), "age_years": 40}
    result = evaluate([criterion(rule, "I03")], facts).results[0]
    assert result.outcome is NOT_MET
    assert result.values_used == {"sledai2k.score": 6, "organ_involvement": ["renal"]}
    assert str(result.explanation) == "SLEDAI-2K: 6, below the minimum of 8"
    assert render(result.explanation, "fr") == "SLEDAI-2K : 6, en dessous du minimum de 8"
    met = evaluate([criterion(rule, "I03")], {**facts, "sledai2k.score": 12}).results[0]
    assert str(met.explanation) == (
        "SLEDAI-2K: 12, at least 8 required: met; Organ involvement: Renal, including Renal"
    )
    assert render(met.explanation, "fr") == (
        "SLEDAI-2K : 12, au moins 8 requis : rempli ; Atteinte d'organe : Rénal, dont Rénal"
    )


def test_explanations_of_lists_counts_and_negations() -> None:
    count = evaluate(
        [criterion({"item": "history.immunosuppressants", "count_gte": 2})],
        {"history.immunosuppressants": ["mycophenolate", "mycophenolate"]},
    ).results[0]
    assert str(count.explanation) == "Immunosuppressants failed: Mycophenolate (1), below the minimum of 2"
    assert render(count.explanation, "fr") == (
        "Immunosuppresseurs en échec : Mycophénolate (1), en dessous du minimum de 2"
    )
    negated = evaluate([criterion({"not": {"item": "prior_cart", "equals": True}})], {"prior_cart": True}).results[0]
    assert str(negated.explanation) == "Prior CAR-T cell therapy: yes"
    assert render(negated.explanation, "fr") == "Traitement antérieur par CAR-T : oui"
    age = evaluate([criterion({"item": "age_years", "between": [18, 65]})], {"age_years": 66}).results[0]
    assert str(age.explanation) == "Age: 66 years, above the limit of 65 years"
    assert render(age.explanation, "fr") == "Âge : 66 ans, au-dessus de la limite de 65 ans"


def test_the_verdict_with_its_values_is_plain_json() -> None:
    rule = {"item": "history.biologics", "contains": "rituximab"}
    verdict = evaluate([criterion(rule)], {"history.biologics": frozenset({"rituximab", "belimumab"})})
    data = json.loads(json.dumps(verdict.as_dict()))
    assert data["verdict"] == "eligible"
    assert data["criteria"][0]["values_used"] == {"history.biologics": ["belimumab", "rituximab"]}


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ({"item": "age_years", "gte": 18}, "forty"),
        ({"item": "age_years", "gte": 18}, True),
        ({"item": "egfr.egfr", "gte": 30}, math.nan),
        ({"item": "infection_active", "equals": False}, 0),
        ({"item": "sex", "in": ["female", "male"]}, 1),
        ({"item": "history.biologics", "count_gte": 1}, "rituximab"),
        ({"item": "organ_involvement", "contains": "renal"}, [{"organ": "renal"}]),
    ],
)
def test_a_fact_of_the_wrong_type_is_refused_not_guessed(rule: dict[str, object], value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        evaluate([criterion(rule)], {str(rule["item"]): value})
    assert refused.value.code == "fact_invalid"
    assert str(rule["item"]) in str(refused.value)
    assert str(rule["item"]) in render(refused.value.message, "fr")


def refusal(rule: object) -> RuleError:
    criteria = [criterion({"item": "age_years", "gte": 18}, "I01"), criterion(rule, "I02")]  # type: ignore[arg-type]
    with pytest.raises(RuleError) as refused:
        validate_rules(criteria)
    assert refused.value.criterion_id == "I02"
    assert refused.value.criterion_index == 1
    assert str(refused.value).startswith("criterion I02: ")
    assert render(refused.value.message, "fr").startswith("critère I02 : ")
    return refused.value


def test_an_undeclared_item_is_refused_with_criterion_item_and_a_suggestion() -> None:
    error = refusal({"all": [{"item": "age_years", "gte": 18}, {"item": "sledai2k.scor", "gte": 8}]})
    assert error.code == "rule_unknown_item"
    assert error.location == "rule.all.1.item"
    assert str(error) == (
        "criterion I02: rule.all.1.item: item 'sledai2k.scor' is not a declared screening item; "
        "did you mean 'sledai2k.score'?"
    )
    assert render(error.message, "fr") == (
        "critère I02 : rule.all.1.item : l'item « sledai2k.scor » n'est pas un item de screening déclaré ; "
        "vouliez-vous dire « sledai2k.score » ?"
    )


def test_an_unknown_operator_is_refused_with_its_place_and_the_known_ones() -> None:
    error = refusal({"item": "age_years", "at_least": 18})
    assert error.code == "rule_unknown_operator"
    assert error.location == "rule.at_least"
    assert "'at_least' on item 'age_years' is not an operator" in str(error)
    assert "count_gte" in str(error)


def test_an_unknown_combinator_is_refused() -> None:
    error = refusal({"none_of": [{"item": "age_years", "gte": 18}]})
    assert error.code == "rule_unknown_operator"
    assert "'none_of'" in str(error)


@pytest.mark.parametrize(
    ("rule", "location", "words"),
    [
        ({"item": "age_years", "gte": "18"}, "rule.gte", "gte needs a finite number"),
        ({"item": "age_years", "gte": True}, "rule.gte", "gte needs a finite number"),
        ({"item": "age_years", "gte": math.inf}, "rule.gte", "gte needs a finite number"),
        ({"item": "age_years", "between": [18]}, "rule.between", "two finite numbers"),
        ({"item": "age_years", "between": [65, 18]}, "rule.between", "low ≤ high"),
        ({"item": "history.biologics", "count_gte": 1.5}, "rule.count_gte", "whole number ≥ 0"),
        ({"item": "history.biologics", "count_gte": -1}, "rule.count_gte", "whole number ≥ 0"),
        ({"item": "history.biologics", "contains": ["rituximab"]}, "rule.contains", "needs a text"),
        ({"item": "organ_involvement", "contains_any": []}, "rule.contains_any", "non-empty list of texts"),
        ({"item": "sex", "in": ["female", 1]}, "rule.in", "not mixed"),
        ({"item": "sex", "in": "female"}, "rule.in", "non-empty list"),
        ({"item": "sex", "equals": None}, "rule.equals", "a boolean, a finite number or a text"),
        ({"item": "infection_active", "equals": "no"}, "rule.equals", "has type boolean"),
        ({"item": "age_years", "equals": False}, "rule.equals", "has type integer"),
        ({"item": "sex", "equals": "f"}, "rule.equals", "'f' is not a value of item 'sex' (female, male)"),
        ({"item": "history.biologics", "contains": "mycophenolate"}, "rule.contains", "not a value of item"),
    ],
)
def test_a_wrong_operand_is_refused(rule: dict[str, object], location: str, words: str) -> None:
    error = refusal(rule)
    assert error.code == "rule_invalid_operand"
    assert error.location == location
    assert words in str(error)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"item": "prior_cart", "gte": 1}, "gte cannot test 'prior_cart', whose type is boolean"),
        ({"item": "age_years", "count_gte": 1}, "count_gte cannot test 'age_years', whose type is integer"),
        ({"item": "history.biologics", "equals": "rituximab"}, "whose type is list"),
        ({"item": "sex", "gte": 1}, "whose type is choice"),
    ],
)
def test_an_operator_that_cannot_test_the_item_type_is_refused(rule: dict[str, object], words: str) -> None:
    error = refusal(rule)
    assert error.code == "rule_type_mismatch"
    assert words in str(error)


def test_a_threshold_on_a_value_without_fixed_unit_is_refused() -> None:
    error = refusal({"item": "creatinine", "lte": 1.5})
    assert error.code == "rule_unit_ambiguous"
    assert "creatinine_unit" in str(error)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("age_years >= 18", "must be a mapping"),
        ({}, "found nothing"),
        ({"all": []}, "non-empty list of rules"),
        ({"any": {"item": "age_years", "gte": 18}}, "non-empty list of rules"),
        ({"all": [{"item": "age_years", "gte": 18}], "item": "sex"}, "'all' must stand alone"),
        ({"item": "age_years"}, "exactly one operator"),
        ({"item": "age_years", "gte": 18, "lte": 65}, "exactly one operator"),
        ({"item": 3, "gte": 18}, "must be an item name"),
        ({"not": ["age_years"]}, "must be a mapping"),
    ],
)
def test_a_malformed_rule_is_refused(rule: object, words: str) -> None:
    error = refusal(rule)
    assert error.code in ("rule_invalid", "rule_unknown_operator")
    assert words in str(error)


def test_a_rule_that_contains_itself_is_refused_by_depth() -> None:
    looping: dict[str, object] = {}
    looping["not"] = looping
    error = refusal(looping)
    assert error.code == "rule_invalid"
    assert "nested deeper than" in str(error)


def test_evaluate_refuses_an_unknown_operator_rather_than_call_it_missing() -> None:
    with pytest.raises(RuleError) as refused:
        evaluate([criterion({"item": "age_years", "over": 18})], {"age_years": 40})
    assert refused.value.code == "rule_unknown_operator"


def test_validate_rules_uses_the_catalogue_it_is_given() -> None:
    catalogue = {"weight_kg": ScreeningItem("weight_kg", ItemType.NUMBER, "body weight", unit="kg")}
    validate_rules([criterion({"item": "weight_kg", "gte": 40})], catalogue)
    with pytest.raises(RuleError) as refused:
        validate_rules([criterion({"item": "age_years", "gte": 18})], catalogue)
    assert refused.value.code == "rule_unknown_item"


def test_parse_criteria_refuses_a_rule_that_is_not_a_mapping_instead_of_dropping_it() -> None:
    raw = [
        {"id": "I01", "kind": "inclusion", "text": TEXT},
        {"id": "I02", "kind": "inclusion", "text": TEXT, "rule": ["age_years", ">=", 18]},
    ]
    with pytest.raises(RuleError) as refused:
        parse_criteria(raw)
    assert (refused.value.code, refused.value.criterion_index, refused.value.criterion_id) == ("rule_invalid", 1, "I02")
    assert parse_criteria(raw[:1])[0].rule is None


def test_the_declared_items_cover_screening_and_calculator_results() -> None:
    expected = {
        "age_years": ItemType.INTEGER,
        "sex": ItemType.CHOICE,
        "creatinine": ItemType.NUMBER,
        "creatinine_unit": ItemType.CHOICE,
        "cd3_per_ul": ItemType.NUMBER,
        "history.immunosuppressants": ItemType.LIST,
        "history.biologics": ItemType.LIST,
        "infection_active": ItemType.BOOLEAN,
        "prior_cart": ItemType.BOOLEAN,
        "sledai2k_descriptors": ItemType.LIST,
        "eular_acr_criteria": ItemType.LIST,
        "ana_titer": ItemType.INTEGER,
        "organ_involvement": ItemType.LIST,
        "sledai2k.score": ItemType.INTEGER,
        "sledai2k.clinical_score": ItemType.INTEGER,
        "eular_acr_2019.classified": ItemType.BOOLEAN,
        "egfr.egfr": ItemType.NUMBER,
    }
    assert {name: KNOWN_SCREENING_ITEMS[name].type for name in expected} == expected
    computed = {name: item.computed_by for name, item in KNOWN_SCREENING_ITEMS.items() if item.computed_by}
    assert computed["egfr.egfr"] == "egfr"
    assert computed["eular_acr_2019.classified"] == "eular-acr-2019"
    assert all(name.startswith(calculator.replace("-", "_") + ".") for name, calculator in computed.items())
    assert set(KNOWN_SCREENING_ITEMS["history.biologics"].choices) <= set(
        KNOWN_SCREENING_ITEMS["history.immunosuppressants"].choices
    )
    assert KNOWN_SCREENING_ITEMS["cd3_per_ul"].unit == "cells/µL"
    assert all(name == item.name for name, item in KNOWN_SCREENING_ITEMS.items())


def test_calculator_results_become_facts_under_the_calculator_name() -> None:
    result = {"entry_criterion_met": True, "score": 14, "clinical_criterion_met": True, "classified": True}
    facts = facts_from_calculator("eular-acr-2019", result)
    assert facts["eular_acr_2019.classified"] is True
    assert facts["eular_acr_2019.score"] == 14
    rule = {"item": "eular_acr_2019.classified", "equals": True}
    assert outcome_of(rule, facts) is MET


def test_verdict_from_answers_still_works() -> None:
    criteria = [criterion(None, "I01"), criterion({"item": "cd3_per_ul", "gte": 100}, "E01", "exclusion")]
    assert verdict_from_answers(criteria, {"I01": "met", "E01": "met"}).verdict is Verdict.ELIGIBLE
    partial = verdict_from_answers(criteria, {"I01": "met"})
    assert partial.verdict is Verdict.INCOMPLETE
    assert partial.results[1].values_used == {"attested": "missing"}
    assert verdict_from_answers(criteria, {"I01": "not_met"}).failed() == ["I01"]
    with pytest.raises(InvalidInput) as unknown:
        verdict_from_answers(criteria, {"I99": "met"})
    assert unknown.value.code == "unknown_criterion"
    with pytest.raises(InvalidInput) as invalid:
        verdict_from_answers(criteria, {"I01": "yes"})
    assert invalid.value.code == "invalid_answer"


# Properties, over a small catalogue of one item per type so generated rules are always valid.
CATALOGUE = {
    "n1": ScreeningItem("n1", ItemType.NUMBER, "a number"),
    "n2": ScreeningItem("n2", ItemType.INTEGER, "an integer"),
    "b1": ScreeningItem("b1", ItemType.BOOLEAN, "a boolean"),
    "c1": ScreeningItem("c1", ItemType.CHOICE, "a choice", choices=("x", "y", "z")),
    "l1": ScreeningItem("l1", ItemType.LIST, "a list", choices=("x", "y", "z")),
}
numbers = st.integers(-5, 5)
letters = st.sampled_from(("x", "y", "z"))
bounds = st.lists(numbers, min_size=2, max_size=2).map(sorted)
number_leaf = st.one_of(
    st.builds(
        lambda item, op, n: {"item": item, op: n},
        st.sampled_from(("n1", "n2")),
        st.sampled_from(("gte", "gt", "lte", "lt", "equals")),
        numbers,
    ),
    st.builds(lambda item, b: {"item": item, "between": b}, st.sampled_from(("n1", "n2")), bounds),
    st.builds(lambda item, v: {"item": item, "in": v}, st.sampled_from(("n1", "n2")), st.lists(numbers, min_size=1)),
)
leaf = st.one_of(
    number_leaf,
    st.builds(lambda v: {"item": "b1", "equals": v}, st.booleans()),
    st.builds(lambda v: {"item": "c1", "equals": v}, letters),
    st.builds(lambda v: {"item": "c1", "in": v}, st.lists(letters, min_size=1)),
    st.builds(lambda v: {"item": "l1", "contains": v}, letters),
    st.builds(lambda v: {"item": "l1", "contains_any": v}, st.lists(letters, min_size=1)),
    st.builds(lambda op, n: {"item": "l1", op: n}, st.sampled_from(("count_gte", "count_lte")), st.integers(0, 4)),
)
rules = st.recursive(
    leaf,
    lambda parts: st.one_of(
        st.builds(lambda ps: {"all": ps}, st.lists(parts, min_size=1, max_size=3)),
        st.builds(lambda ps: {"any": ps}, st.lists(parts, min_size=1, max_size=3)),
        st.builds(lambda p: {"not": p}, parts),
    ),
    max_leaves=8,
)
full_facts = st.fixed_dictionaries(
    {
        "n1": st.one_of(numbers, st.floats(-6, 6)),
        "n2": st.integers(-6, 6),
        "b1": st.booleans(),
        "c1": letters,
        "l1": st.lists(letters, max_size=4),
    }
)
criteria_lists = st.lists(st.tuples(rules, st.sampled_from(("inclusion", "exclusion"))), min_size=1, max_size=4).map(
    lambda pairs: [criterion(rule, f"C{i}", kind) for i, (rule, kind) in enumerate(pairs)]
)


def _partial_verdict(case: tuple[list[Criterion], dict[str, object], set[str]]) -> Verdict:
    criteria, facts, withheld = case
    return evaluate(criteria, {name: value for name, value in facts.items() if name not in withheld}).verdict


@pytest.mark.parametrize("verdict", list(Verdict), ids=lambda v: v.value)
def test_the_criteria_generator_reaches_each_partial_verdict(verdict: Verdict) -> None:
    """The property below asserts per partial verdict (eligible, not eligible, incomplete): each is reached,
    the incomplete one with some criteria decided (the case where completion must not reverse them)."""
    cases = st.tuples(criteria_lists, full_facts, st.sets(st.sampled_from(sorted(CATALOGUE))))

    def reached(case: tuple[list[Criterion], dict[str, object], set[str]]) -> bool:
        if _partial_verdict(case) is not verdict:
            return False
        criteria, facts, withheld = case
        partial = evaluate(criteria, {name: value for name, value in facts.items() if name not in withheld})
        return verdict is not Verdict.INCOMPLETE or any(r.outcome is not MISSING for r in partial.results)

    # Derandomized: the search is the same on every run, so it cannot fail at random (it once did, by
    # exhausting its budget before an incomplete case with a decided criterion came up).
    found = find(cases, reached, settings=settings(database=None, derandomize=True, max_examples=5000))
    assert _partial_verdict(found) is verdict


@settings(max_examples=200)
@given(criteria_lists, full_facts, st.sets(st.sampled_from(sorted(CATALOGUE))))
def test_adding_missing_data_settles_criteria_but_never_reverses_them(
    criteria: list[Criterion], facts: dict[str, object], withheld: set[str]
) -> None:
    validate_rules(criteria, CATALOGUE)
    partial = evaluate(criteria, {name: value for name, value in facts.items() if name not in withheld})
    complete = evaluate(criteria, facts)
    event(f"partial verdict {partial.verdict.value}")
    assert MISSING not in [r.outcome for r in complete.results]
    for before, after in zip(partial.results, complete.results, strict=True):
        if before.outcome is not MISSING:
            assert after.outcome is before.outcome
    if partial.verdict is Verdict.NOT_ELIGIBLE:
        assert complete.verdict is Verdict.NOT_ELIGIBLE
    if partial.verdict is Verdict.ELIGIBLE:
        assert complete.verdict is Verdict.ELIGIBLE


@settings(max_examples=200)
@given(criteria_lists, full_facts, st.sets(st.sampled_from(sorted(CATALOGUE))))
def test_the_verdict_is_eligible_iff_every_criterion_is_met(
    criteria: list[Criterion], facts: dict[str, object], withheld: set[str]
) -> None:
    verdict = evaluate(criteria, {name: None if name in withheld else value for name, value in facts.items()})
    outcomes = [r.outcome for r in verdict.results]
    assert (verdict.verdict is Verdict.ELIGIBLE) == all(o is MET for o in outcomes)
    assert (verdict.verdict is Verdict.NOT_ELIGIBLE) == any(o is NOT_MET for o in outcomes)
    assert verdict.verdict is overall_verdict(verdict.results)
    assert verdict.failed() == [r.criterion_id for r in verdict.results if r.outcome is NOT_MET]


@settings(max_examples=200)
@given(rules, full_facts, st.sets(st.sampled_from(sorted(CATALOGUE))))
def test_not_swaps_the_outcome_of_any_rule(rule: dict[str, object], facts: dict[str, object], withheld: set[str]):
    known = {name: value for name, value in facts.items() if name not in withheld}
    negated = {MET: NOT_MET, NOT_MET: MET, MISSING: MISSING}
    assert outcome_of({"not": rule}, known) is negated[outcome_of(rule, known)]


@given(st.lists(st.sampled_from(list(Outcome)), min_size=1))
def test_overall_verdict_of_answers_matches_the_rule_of_the_module(outcomes: list[Outcome]) -> None:
    results = [CriterionResult(f"C{i}", "inclusion", o) for i, o in enumerate(outcomes)]
    expected = (
        Verdict.NOT_ELIGIBLE if NOT_MET in outcomes else Verdict.INCOMPLETE if MISSING in outcomes else Verdict.ELIGIBLE
    )
    assert overall_verdict(results) is expected


@settings(max_examples=200)
@given(criteria_lists, full_facts, st.sets(st.sampled_from(sorted(CATALOGUE))))
def test_every_explanation_renders_whole_in_both_languages(
    criteria: list[Criterion], facts: dict[str, object], withheld: set[str]
) -> None:
    verdict = evaluate(criteria, {name: value for name, value in facts.items() if name not in withheld})
    for result in verdict.results:
        for language in ("en", "fr"):
            text = render(result.explanation, language)
            assert text and "{" not in text and "}" not in text and "Message(" not in text, text
