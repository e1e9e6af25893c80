"""What a clinician reads for each criterion: exact sentences in English and French, for every operator.

The sentences come from the item's label, its value with its unit and the rule; no item key, no
Python literal and no list brackets reach the page, whatever the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from cartrial.domain.eligibility import (
    EULAR_ACR_2019_CRITERIA,
    KNOWN_SCREENING_ITEMS,
    SLEDAI2K_DESCRIPTORS,
    Criterion,
    Outcome,
    evaluate,
)
from cartrial.domain.scores import eular_acr_2019, sledai2k
from cartrial.domain.scores.registry import CALCULATORS
from cartrial.domain.screening import SCREENING_FIELDS
from cartrial.locale import render
from cartrial.protocols import active_protocol

MET, NOT_MET, MISSING = Outcome.MET, Outcome.NOT_MET, Outcome.MISSING


def explained(rule: Mapping[str, object], facts: Mapping[str, object]) -> tuple[Outcome, str, str]:
    result = evaluate([Criterion("C01", "inclusion", {"en": "c", "fr": "c"}, rule)], facts).results[0]
    return result.outcome, render(result.explanation, "en"), render(result.explanation, "fr")


@pytest.mark.parametrize(
    ("rule", "facts", "outcome", "english", "french"),
    [
        # between: inside, below, above (the protocol's age criterion)
        (
            {"item": "age_years", "between": [18, 65]},
            {"age_years": 40},
            MET,
            "Age: 40 years, between 18 years and 65 years",
            "Âge : 40 ans, entre 18 ans et 65 ans",
        ),
        (
            {"item": "age_years", "between": [18, 65]},
            {"age_years": 72},
            NOT_MET,
            "Age: 72 years, above the limit of 65 years",
            "Âge : 72 ans, au-dessus de la limite de 65 ans",
        ),
        (
            {"item": "age_years", "between": [18, 65]},
            {"age_years": 17},
            NOT_MET,
            "Age: 17 years, below the minimum of 18 years",
            "Âge : 17 ans, en dessous du minimum de 18 ans",
        ),
        # thresholds
        (
            {"item": "sledai2k.score", "gte": 8},
            {"sledai2k.score": 10},
            MET,
            "SLEDAI-2K: 10, at least 8 required: met",
            "SLEDAI-2K : 10, au moins 8 requis : rempli",
        ),
        (
            {"item": "egfr.egfr", "gte": 30},
            {"egfr.egfr": 29.5},
            NOT_MET,
            "eGFR (CKD-EPI 2021): 29.5 mL/min/1.73 m², below the minimum of 30 mL/min/1.73 m²",
            "DFGe (CKD-EPI 2021) : 29,5 mL/min/1,73 m², en dessous du minimum de 30 mL/min/1,73 m²",
        ),
        (
            {"item": "sledai2k.score", "gt": 8},
            {"sledai2k.score": 8},
            NOT_MET,
            "SLEDAI-2K: 8, not more than 8",
            "SLEDAI-2K : 8, pas plus de 8",
        ),
        (
            {"item": "sledai2k.score", "gt": 8},
            {"sledai2k.score": 9},
            MET,
            "SLEDAI-2K: 9, more than 8 required: met",
            "SLEDAI-2K : 9, plus de 8 requis : rempli",
        ),
        (
            {"item": "cd3_per_ul", "lte": 2000},
            {"cd3_per_ul": 650.0},
            MET,
            "CD3+ T cells: 650 cells/µL, within the limit of 2000 cells/µL",
            "Lymphocytes T CD3+ : 650 cellules/µL, dans la limite de 2000 cellules/µL",
        ),
        (
            {"item": "sledai2k.score", "lt": 4},
            {"sledai2k.score": 2},
            MET,
            "SLEDAI-2K: 2, below 4 as required",
            "SLEDAI-2K : 2, en dessous de 4 comme requis",
        ),
        (
            {"item": "sledai2k.score", "lt": 4},
            {"sledai2k.score": 4},
            NOT_MET,
            "SLEDAI-2K: 4, not below 4",
            "SLEDAI-2K : 4, pas en dessous de 4",
        ),
        # equals: a boolean in words, a choice by its label, a number with its unit
        (
            {"item": "infection_active", "equals": False},
            {"infection_active": False},
            MET,
            "Active infection: no",
            "Infection active : non",
        ),
        (
            {"item": "infection_active", "equals": False},
            {"infection_active": True},
            NOT_MET,
            "Active infection: yes",
            "Infection active : oui",
        ),
        (
            {"item": "sex", "equals": "female"},
            {"sex": "male"},
            NOT_MET,
            "Sex: Male (Female expected)",
            "Sexe : Homme (attendu : Femme)",
        ),
        (
            {"item": "sledai2k_lookback_days", "equals": 30},
            {"sledai2k_lookback_days": 30},
            MET,
            "SLEDAI-2K look-back: 30 days",
            "Période de référence SLEDAI-2K : 30 jours",
        ),
        (
            {"item": "sledai2k_lookback_days", "in": [10, 30]},
            {"sledai2k_lookback_days": 20},
            NOT_MET,
            "SLEDAI-2K look-back: 20 days (expected: one of 10 days, 30 days)",
            "Période de référence SLEDAI-2K : 20 jours (attendu : une valeur parmi 10 jours, 30 jours)",
        ),
        # lists: treatments and organs by name
        (
            {"item": "organ_involvement", "contains": "renal"},
            {"organ_involvement": ["musculoskeletal"]},
            NOT_MET,
            "Organ involvement: Musculoskeletal, without Renal",
            "Atteinte d'organe : Musculo-squelettique, sans Rénal",
        ),
        (
            {"item": "organ_involvement", "contains_any": ["renal", "neuropsychiatric"]},
            {"organ_involvement": ["neuropsychiatric", "mucocutaneous"]},
            MET,
            "Organ involvement: Neuropsychiatric, Mucocutaneous, including Neuropsychiatric",
            "Atteinte d'organe : Neuropsychiatrique, Cutanéo-muqueux, dont Neuropsychiatrique",
        ),
        (
            {"item": "organ_involvement", "contains_any": ["renal", "neuropsychiatric"]},
            {"organ_involvement": []},
            NOT_MET,
            "Organ involvement: none listed; at least one of Renal, Neuropsychiatric required",
            "Atteinte d'organe : néant ; au moins un élément requis parmi Rénal, Neuropsychiatrique",
        ),
        (
            {"item": "history.immunosuppressants", "count_gte": 2},
            {"history.immunosuppressants": ["mycophenolate", "rituximab"]},
            MET,
            "Immunosuppressants failed: Mycophenolate, Rituximab (2), at least 2 required: met",
            "Immunosuppresseurs en échec : Mycophénolate, Rituximab (2), au moins 2 requis : rempli",
        ),
        (
            {"item": "history.biologics", "count_lte": 1},
            {"history.biologics": ["rituximab", "belimumab"]},
            NOT_MET,
            "Biologics failed: Rituximab, Belimumab (2), above the limit of 1",
            "Biothérapies en échec : Rituximab, Bélimumab (2), au-dessus de la limite de 1",
        ),
        # not: folded into the comparison, so the sentence says what the rule wants
        (
            {"not": {"item": "sledai2k.score", "gte": 20}},
            {"sledai2k.score": 10},
            MET,
            "SLEDAI-2K: 10, below 20 as required",
            "SLEDAI-2K : 10, en dessous de 20 comme requis",
        ),
        (
            {"not": {"item": "age_years", "between": [18, 65]}},
            {"age_years": 40},
            NOT_MET,
            "Age: 40 years, between 18 years and 65 years, which the rule excludes",
            "Âge : 40 ans, entre 18 ans et 65 ans, ce que la règle exclut",
        ),
        (
            {"not": {"item": "age_years", "between": [18, 65]}},
            {"age_years": 70},
            MET,
            "Age: 70 years, not between 18 years and 65 years, as required",
            "Âge : 70 ans, hors de l'intervalle de 18 ans à 65 ans, comme requis",
        ),
        (
            {"not": {"item": "sledai2k_lookback_days", "in": [10]}},
            {"sledai2k_lookback_days": 10},
            NOT_MET,
            "SLEDAI-2K look-back: 10 days, which the rule excludes",
            "Période de référence SLEDAI-2K : 10 jours, ce que la règle exclut",
        ),
        (
            {"not": {"item": "organ_involvement", "contains": "renal"}},
            {"organ_involvement": ["ophthalmic"]},
            MET,
            "Organ involvement: Ophthalmic, without Renal",
            "Atteinte d'organe : Ophtalmologique, sans Rénal",
        ),
        (
            {"not": {"item": "history.immunosuppressants", "contains": "cyclophosphamide"}},
            {"history.immunosuppressants": ["cyclophosphamide"]},
            NOT_MET,
            "Immunosuppressants failed: Cyclophosphamide, including Cyclophosphamide, which the rule excludes",
            "Immunosuppresseurs en échec : Cyclophosphamide, dont Cyclophosphamide, ce que la règle exclut",
        ),
        (
            {"not": {"item": "organ_involvement", "contains_any": ["renal"]}},
            {"organ_involvement": ["mucocutaneous"]},
            MET,
            "Organ involvement: Mucocutaneous, none of Renal",
            "Atteinte d'organe : Cutanéo-muqueux, aucun élément parmi Rénal",
        ),
        (
            {"not": {"item": "sex", "equals": "male"}},
            {"sex": "male"},
            NOT_MET,
            "Sex: Male, which the rule excludes",
            "Sexe : Homme, ce que la règle exclut",
        ),
        (
            {"not": {"item": "history.immunosuppressants", "count_gte": 3}},
            {"history.immunosuppressants": ["mycophenolate"]},
            MET,
            "Immunosuppressants failed: Mycophenolate (1), within the limit of 2",
            "Immunosuppresseurs en échec : Mycophénolate (1), dans la limite de 2",
        ),
        # all / any: the parts that decide, joined; missing data named by what is missing
        (
            {"all": [{"item": "prior_cart", "equals": False}, {"item": "prior_gene_therapy", "equals": False}]},
            {"prior_cart": False},
            MISSING,
            "Prior gene therapy: not entered yet",
            "Thérapie génique antérieure : pas encore renseignée",
        ),
        (
            {"any": [{"item": "cd3_per_ul", "gte": 100}, {"item": "egfr.egfr", "gte": 60}]},
            {"egfr.egfr": 45.0, "cd3_per_ul": 80},
            NOT_MET,
            "CD3+ T cells: 80 cells/µL, below the minimum of 100 cells/µL; "
            "eGFR (CKD-EPI 2021): 45 mL/min/1.73 m², below the minimum of 60 mL/min/1.73 m²",
            "Lymphocytes T CD3+ : 80 cellules/µL, en dessous du minimum de 100 cellules/µL ; "
            "DFGe (CKD-EPI 2021) : 45 mL/min/1,73 m², en dessous du minimum de 60 mL/min/1,73 m²",
        ),
        (
            {"not": {"any": [{"item": "prior_cart", "equals": True}, {"item": "infection_active", "equals": True}]}},
            {"prior_cart": False, "infection_active": False},
            MET,
            "Prior CAR-T cell therapy: no; Active infection: no",
            "Traitement antérieur par CAR-T : non ; Infection active : non",
        ),
        (
            {"item": "cd3_per_ul", "gte": 100},
            {},
            MISSING,
            "CD3+ T cells: not measured yet",
            "Lymphocytes T CD3+ : pas encore mesurés",
        ),
    ],
)
def test_each_operator_reads_as_a_sentence_in_both_languages(
    rule: dict[str, object], facts: dict[str, object], outcome: Outcome, english: str, french: str
) -> None:
    assert explained(rule, facts) == (outcome, english, french)


# The demo protocol's criteria under three sets of facts: everything met, everything failed, nothing known.
ALL_MET = {
    "age_years": 46,
    "eular_acr_2019.classified": True,
    "sledai2k.score": 12,
    "organ_involvement": ["renal"],
    "history.glucocorticoids_failed": True,
    "history.immunosuppressants": ["mycophenolate", "rituximab"],
    "history.biologics": ["rituximab"],
    "egfr.egfr": 68.63,
    "cd3_per_ul": 650.0,
    "infection_active": False,
    "prior_cart": False,
    "prior_gene_therapy": False,
}
ALL_FAILED = {
    "age_years": 72,
    "eular_acr_2019.classified": False,
    "sledai2k.score": 4,
    "organ_involvement": [],
    "history.glucocorticoids_failed": False,
    "history.immunosuppressants": [],
    "history.biologics": [],
    "egfr.egfr": 21.0,
    "cd3_per_ul": 40.0,
    "infection_active": True,
    "prior_cart": True,
    "prior_gene_therapy": True,
}
RAW = re.compile(r"\b(True|False|None)\b|[\[\]{}_]")


@pytest.mark.parametrize(("facts", "outcome"), [(ALL_MET, MET), (ALL_FAILED, NOT_MET), ({}, MISSING)])
def test_no_explanation_of_the_protocol_shows_a_key_or_a_python_literal(facts: dict[str, object], outcome: Outcome):
    criteria = active_protocol().criteria
    results = evaluate(criteria, facts).results
    assert [r.outcome for r in results] == [outcome] * len(criteria)
    for result in results:
        for language in ("en", "fr"):
            text = render(result.explanation, language)
            assert not RAW.search(text), (result.criterion_id, language, text)
            assert not any(name in text for name in KNOWN_SCREENING_ITEMS), (result.criterion_id, language, text)
        assert render(result.explanation, "fr") != render(result.explanation, "en")


def test_every_screening_item_has_a_label_and_a_missing_sentence_in_french() -> None:
    for name, item in KNOWN_SCREENING_ITEMS.items():
        assert item.label, name
        # Only the missing sentence is read: the value is absent, so the operand is never compared.
        outcome, english, french = explained({"item": name, "equals": True}, {})
        assert (outcome, english) == (MISSING, item.missing)
        assert french != english, name


def test_the_sle_lists_of_screening_are_the_score_modules_keys() -> None:
    """One source: the screening items, the screening data contract and the calculators offer the same keys."""
    assert SLEDAI2K_DESCRIPTORS == sledai2k.DESCRIPTOR_KEYS == tuple(d.key for d in sledai2k.DESCRIPTORS)
    assert EULAR_ACR_2019_CRITERIA == eular_acr_2019.CRITERION_KEYS == tuple(c.key for c in eular_acr_2019.CRITERIA)
    assert KNOWN_SCREENING_ITEMS["sledai2k_descriptors"].choices == sledai2k.DESCRIPTOR_KEYS
    assert KNOWN_SCREENING_ITEMS["eular_acr_criteria"].choices == eular_acr_2019.CRITERION_KEYS
    assert SCREENING_FIELDS["sledai2k_descriptors"].inner.choices == sledai2k.DESCRIPTOR_KEYS  # type: ignore[attr-defined]
    assert SCREENING_FIELDS["eular_acr_criteria"].inner.choices == eular_acr_2019.CRITERION_KEYS  # type: ignore[attr-defined]
    assert CALCULATORS["sledai2k"].inputs["descriptors"].choices == sledai2k.DESCRIPTOR_KEYS  # type: ignore[attr-defined]
    assert CALCULATORS["eular-acr-2019"].inputs["criteria"].choices == eular_acr_2019.CRITERION_KEYS  # type: ignore[attr-defined]
