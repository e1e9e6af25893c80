"""French rendering of the domain's eligibility explanations (display only; the signed text stays English)."""

from __future__ import annotations

import pytest

from cartrial.apps.clinical.templatetags.clinical_text import explanation_in, fact_value
from cartrial.domain.eligibility import evaluate
from cartrial.protocols import active_protocol


@pytest.mark.parametrize(
    ("english", "french"),
    [
        (
            "Met: age_years is 46 years, which is between 18 and 65 inclusive",
            "Rempli : age_years = 46 ans, compris entre 18 et 65 inclus",
        ),
        ("Not met: cd3_per_ul is 85.0 cells/µL, which is < 100", "Non rempli : cd3_per_ul = 85.0 cells/µL, < 100"),
        (
            "Missing data: sledai2k.score is missing; organ_involvement is missing",
            "Donnée manquante : sledai2k.score manquant; organ_involvement manquant",
        ),
        ("Met: infection_active is false, which is false", "Rempli : infection_active = faux, égal à faux"),
        (
            "Not met: history.immunosuppressants is [rituximab], which has 1 distinct entry, not at least 2",
            "Non rempli : history.immunosuppressants = [rituximab], 1 élément(s) distinct(s), moins de 2",
        ),
        (
            "Met: organ_involvement is [renal], which includes renal",
            "Rempli : organ_involvement = [renal], inclut renal",
        ),
        (
            "Not met: organ_involvement is [musculoskeletal], which includes none of renal, cardiorespiratory",
            "Non rempli : organ_involvement = [musculoskeletal], n'inclut aucun de renal, cardiorespiratory",
        ),
        ("No rule in the protocol: to be attested", "Pas de règle dans le protocole : à attester"),
    ],
)
def test_french_rendering(english: str, french: str) -> None:
    assert explanation_in(english, "fr") == french
    assert explanation_in(english, "en") == english


def test_every_protocol_explanation_loses_its_english_words_in_french() -> None:
    criteria = active_protocol().criteria
    facts = {
        "age_years": 70,
        "eular_acr_2019.classified": True,
        "sledai2k.score": 4,
        "organ_involvement": ["renal"],
        "history.glucocorticoids_failed": True,
        "history.immunosuppressants": ["rituximab"],
        "history.biologics": ["rituximab"],
        "cd3_per_ul": 150.0,
        "infection_active": False,
        "prior_cart": False,
    }
    for result in evaluate(criteria, facts).results:
        french = explanation_in(result.explanation, "fr")
        for word in (" which ", " is ", "Met:", "missing", "includes", "distinct entr"):
            assert word not in french, (result.criterion_id, french)


def test_fact_values_read_naturally() -> None:
    assert fact_value(None) == "—" and fact_value(["renal", "cardiorespiratory"]) == "renal, cardiorespiratory"
    assert fact_value([]) == "∅" and fact_value(12) == "12"
