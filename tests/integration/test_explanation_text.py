"""The stored verdict shown in the reader's language: explanations and notes from their message data."""

from __future__ import annotations

import json

from django.utils import translation

from cartrial.apps.clinical.templatetags.clinical_text import calculator_title, clinical_label, explanation, notes
from cartrial.domain.eligibility import evaluate
from cartrial.domain.screening import evaluate_screening
from cartrial.protocols import active_protocol

CRITERIA = active_protocol().criteria


def stored(facts: dict[str, object]) -> dict[str, object]:
    """The verdict as the database keeps it (JSON), to show it as a page does."""
    return json.loads(json.dumps(evaluate(CRITERIA, facts).as_dict()))


def test_a_stored_explanation_is_shown_in_french_and_in_english() -> None:
    age = next(c for c in stored({"age_years": 72})["criteria"] if c["id"] == "I01_AGE")  # type: ignore[union-attr]
    assert age["explanation"] == "Age: 72 years, above the limit of 65 years"
    with translation.override("fr"):
        assert explanation(age) == "Âge : 72 ans, au-dessus de la limite de 65 ans"
    with translation.override("en"):
        assert explanation(age) == "Age: 72 years, above the limit of 65 years"


def test_a_verdict_stored_before_message_data_shows_its_english_text() -> None:
    old = {"id": "I01_AGE", "explanation": "Met: age_years is 46 years, which is between 18 and 65 inclusive"}
    with translation.override("fr"):
        assert explanation(old) == old["explanation"]


def test_notes_and_score_names_read_in_french() -> None:
    evaluation = json.loads(json.dumps(evaluate_screening(CRITERIA, {}, {}, age_years=40).as_dict()))
    with translation.override("fr"):
        assert notes(evaluation)[0] == ("SLEDAI-2K : calcul impossible, il manque Descripteurs SLEDAI-2K présents")
        assert calculator_title("egfr") == "DFGe, CKD-EPI 2021 (sans critère ethnique, créatinine)"
        assert clinical_label("organic_brain_syndrome") == "Syndrome cérébral organique"
    assert notes({"notes": ["an old note"]}) == ["an old note"]
