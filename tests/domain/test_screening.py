"""Screening data → facts → scores → verdict against the protocol's criteria (hand-worked values)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain.eligibility import Criterion, Outcome, Verdict, parse_criteria
from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.screening import (
    LabFact,
    age_in_completed_years,
    evaluate_screening,
    screening_data_parse,
)
from cartrial.locale import render
from cartrial.protocols import active_protocol

CRITERIA = active_protocol().criteria

# A refractory lupus nephritis patient: SLEDAI-2K = proteinuria 4 + hematuria 4 + low complement 2
# + increased DNA binding 2 = 12; EULAR/ACR: class IV nephritis 10 + anti-dsDNA 6 + low C3 and C4 4 = 20.
ELIGIBLE_DATA = {
    "sex": "female",
    "ana_titer": 320,
    "eular_acr_criteria": ["lupus_nephritis_class_4", "anti_dsdna", "low_c3", "low_c4"],
    "sledai2k_descriptors": ["proteinuria", "hematuria", "low_complement", "increased_dna_binding"],
    "sledai2k_lookback_days": 30,
    "organ_involvement": ["renal"],
    "glucocorticoids_failed": True,
    "immunosuppressants_failed": ["mycophenolate", "rituximab"],
    "infection_active": False,
    "prior_cart": False,
    "prior_gene_therapy": False,
}
# 88.4 µmol/L = 1.0 mg/dL: a 50-year-old woman has eGFR 68.63 (clinical.md §6.1).
LABS = {
    "creatinine": LabFact("creatinine", 88.4, "umol/L", 45, 90),
    "cd3": LabFact("cd3", 650.0, "cells/µL", 700, 2100),
}


def _outcomes(evaluation) -> dict[str, Outcome]:
    return {r.criterion_id: r.outcome for r in evaluation.verdict.results}


def test_complete_data_gives_an_eligible_verdict_with_the_scores_used() -> None:
    evaluation = evaluate_screening(CRITERIA, screening_data_parse(ELIGIBLE_DATA), LABS, age_years=50)
    assert evaluation.verdict.verdict is Verdict.ELIGIBLE
    assert evaluation.facts["sledai2k.score"] == 12
    assert evaluation.facts["eular_acr_2019.score"] == 20
    assert evaluation.facts["eular_acr_2019.classified"] is True
    assert evaluation.facts["egfr.egfr"] == 68.63
    assert evaluation.facts["history.biologics"] == ["rituximab"]
    active = next(r for r in evaluation.verdict.results if r.criterion_id == "I03_ACTIVE")
    assert active.values_used == {"sledai2k.score": 12, "organ_involvement": ["renal"]}
    assert str(active.explanation) == (
        "SLEDAI-2K: 12, at least 8 required: met; Organ involvement: Renal, including Renal"
    )
    assert evaluation.notes == ()


def test_one_failed_criterion_names_the_value_that_failed() -> None:
    labs = {**LABS, "cd3": LabFact("cd3", 99.0, "cells/µL")}
    evaluation = evaluate_screening(CRITERIA, screening_data_parse(ELIGIBLE_DATA), labs, age_years=50)
    assert evaluation.verdict.verdict is Verdict.NOT_ELIGIBLE
    assert evaluation.verdict.failed() == ["I06_CD3"]
    failed = next(r for r in evaluation.verdict.results if r.criterion_id == "I06_CD3")
    assert failed.values_used == {"cd3_per_ul": 99.0}
    assert str(failed.explanation) == "CD3+ T cells: 99 cells/µL, below the minimum of 100 cells/µL"
    assert render(failed.explanation, "fr") == (
        "Lymphocytes T CD3+ : 99 cellules/µL, en dessous du minimum de 100 cellules/µL"
    )


def test_a_score_is_never_computed_from_partial_data() -> None:
    data = screening_data_parse({**ELIGIBLE_DATA, "sledai2k_descriptors": None, "sex": None})
    evaluation = evaluate_screening(CRITERIA, data, LABS, age_years=50)
    outcomes = _outcomes(evaluation)
    assert outcomes["I03_ACTIVE"] is Outcome.MISSING
    assert outcomes["I05_EGFR"] is Outcome.MISSING
    assert "sledai2k.score" not in evaluation.facts and "egfr.egfr" not in evaluation.facts
    notes = [str(note) for note in evaluation.notes]
    assert "SLEDAI-2K not computed: missing SLEDAI-2K descriptors present" in notes
    assert "eGFR, CKD-EPI 2021 (race-free, creatinine) not computed: missing Sex" in notes
    assert "DFGe, CKD-EPI 2021 (sans critère ethnique, créatinine) : calcul impossible, il manque Sexe" in [
        render(note, "fr") for note in evaluation.notes
    ]
    assert evaluation.verdict.verdict is Verdict.INCOMPLETE
    scores = {s.calculator: s for s in evaluation.scores}
    assert not scores["sledai2k"].computed and scores["sledai2k"].missing_inputs == ("descriptors",)


def test_an_empty_list_means_none_present_not_missing() -> None:
    data = screening_data_parse({**ELIGIBLE_DATA, "sledai2k_descriptors": [], "immunosuppressants_failed": []})
    evaluation = evaluate_screening(CRITERIA, data, LABS, age_years=50)
    assert evaluation.facts["sledai2k.score"] == 0
    assert _outcomes(evaluation)["I03_ACTIVE"] is Outcome.NOT_MET
    assert _outcomes(evaluation)["I04_REFRACTORY"] is Outcome.NOT_MET


def test_creatinine_below_loq_is_said_and_leaves_egfr_missing() -> None:
    labs = {**LABS, "creatinine": LabFact("creatinine", None, "umol/L")}
    evaluation = evaluate_screening(CRITERIA, screening_data_parse(ELIGIBLE_DATA), labs, age_years=50)
    assert _outcomes(evaluation)["I05_EGFR"] is Outcome.MISSING
    assert [str(note) for note in evaluation.notes] == [
        "Creatinine reported below the limit of quantification: eGFR not computed.",
        "eGFR, CKD-EPI 2021 (race-free, creatinine) not computed: missing Serum creatinine",
    ]


def test_age_out_of_the_equation_range_is_not_computed_and_said() -> None:
    evaluation = evaluate_screening(CRITERIA, screening_data_parse(ELIGIBLE_DATA), LABS, age_years=17)
    assert _outcomes(evaluation)["I01_AGE"] is Outcome.NOT_MET
    # CKD-EPI 2021 is an adult equation (≥ 18 years): no eGFR, and the reason is kept.
    assert "egfr.egfr" not in evaluation.facts
    assert _outcomes(evaluation)["I05_EGFR"] is Outcome.MISSING
    note = next(str(note) for note in evaluation.notes if str(note).startswith("eGFR"))
    assert note == (
        "eGFR, CKD-EPI 2021 (race-free, creatinine) not computed: "
        "invalid input: age_years: must be from 18 to 120, got 17"
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ana_titer": -80}, "ana_titer"),
        ({"sledai2k_descriptors": ["rash", "butterfly"]}, "sledai2k_descriptors[1]"),
        ({"eular_acr_criteria": ["anti_smith", "anti_smith"]}, "eular_acr_criteria[1]"),
        ({"infection_active": "no"}, "infection_active"),
        ({"sledai2k_lookback_days": 14}, "sledai2k_lookback_days"),
        ({"sex": "f"}, "sex"),
        ({"immunosuppressants_failed": ["hydroxychloroquine"]}, "immunosuppressants_failed[0]"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_bad_screening_input_names_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(CalculatorInputError) as refused:
        screening_data_parse(payload)
    assert field in [entry["field"] for entry in refused.value.field_errors]


def test_attestation_only_for_criteria_without_a_rule() -> None:
    criteria = parse_criteria(
        [
            {
                "id": "I01",
                "kind": "inclusion",
                "text": {"en": "a", "fr": "a"},
                "rule": {"item": "age_years", "gte": 18},
            },
            {"id": "E09", "kind": "exclusion", "text": {"en": "no other disease", "fr": "pas d'autre maladie"}},
        ]
    )
    evaluation = evaluate_screening(criteria, {}, {}, age_years=40, attestations={"E09": "met"})
    assert evaluation.verdict.verdict is Verdict.ELIGIBLE
    assert evaluation.verdict.results[1].values_used == {"attested": "met"}
    with pytest.raises(InvalidInput) as refused:
        evaluate_screening(criteria, {}, {}, age_years=40, attestations={"I01": "met"})
    assert refused.value.code == "criterion_computed"
    with pytest.raises(InvalidInput):
        evaluate_screening(criteria, {}, {}, age_years=40, attestations={"E09": "yes"})
    unattested = evaluate_screening(criteria, {}, {}, age_years=40)
    assert unattested.verdict.verdict is Verdict.INCOMPLETE


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1988, 4, 12), date(2026, 4, 11), 37),
        (date(1988, 4, 12), date(2026, 4, 12), 38),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
    ],
)
def test_age_in_completed_years(birth: date, on: date, age: int) -> None:
    assert age_in_completed_years(birth, on) == age


def test_age_before_birth_is_refused() -> None:
    with pytest.raises(ValueError):
        age_in_completed_years(date(2000, 1, 2), date(2000, 1, 1))


items = st.fixed_dictionaries(
    {},
    optional={
        "sex": st.none() | st.sampled_from(["female", "male"]),
        "ana_titer": st.none() | st.integers(0, 5120),
        "sledai2k_descriptors": st.none()
        | st.lists(st.sampled_from(["rash", "arthritis", "proteinuria"]), unique=True),
        "infection_active": st.none() | st.booleans(),
        "immunosuppressants_failed": st.none()
        | st.lists(st.sampled_from(["rituximab", "azathioprine", "belimumab"]), unique=True),
    },
)


def _decided_before_completion(first: dict[str, object]) -> int:
    """How many criteria the partial data (no labs, no age) already decides."""
    before = evaluate_screening(CRITERIA, screening_data_parse(first), {}, age_years=None)
    return sum(r.outcome is not Outcome.MISSING for r in before.verdict.results)


def test_the_items_generator_reaches_criteria_decided_before_completion() -> None:
    """The property below asserts only on criteria decided before the data is completed: some are."""
    found = find(items, lambda first: _decided_before_completion(first) >= 2, settings=settings(database=None))
    assert _decided_before_completion(found) >= 2


@given(items, items)
def test_adding_data_never_reverses_a_decided_criterion(first: dict[str, object], more: dict[str, object]) -> None:
    """Filling in items that were missing can settle a criterion, never flip met ↔ not met."""
    before = evaluate_screening(CRITERIA, screening_data_parse(first), {}, age_years=None)
    event(f"{_decided_before_completion(first)} criteria decided before completion")
    completed = {
        **{k: v for k, v in more.items() if v is not None},
        **{k: v for k, v in first.items() if v is not None},
    }
    after = evaluate_screening(CRITERIA, screening_data_parse(completed), LABS, age_years=40)
    for old, new in zip(before.verdict.results, after.verdict.results, strict=True):
        if old.outcome is not Outcome.MISSING:
            assert new.outcome is old.outcome, (old, new)


def test_criteria_without_rules_are_passed_through() -> None:
    criterion = Criterion("X", "inclusion", {"en": "x", "fr": "x"})
    evaluation = evaluate_screening([criterion], {}, {}, age_years=None)
    assert evaluation.verdict.results[0].outcome is Outcome.MISSING
