"""Adverse-event rules: the term list and its search, the refusals (item and rule named), AESI."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from cartrial.domain.errors import InvalidInput
from cartrial.domain.safety.adverse_events import (
    ActionTaken,
    AdverseEventData,
    Outcome,
    Relatedness,
    Seriousness,
    adverse_event_check,
)
from cartrial.domain.safety.terms import AesiCategory, term_get, term_list, term_search

CONSENT = date(2026, 3, 1)
TODAY = date(2026, 6, 1)
AE = AdverseEventData(
    term="febrile_neutropenia",
    grade=3,
    start_date=date(2026, 5, 10),
    end_date=date(2026, 5, 14),
    serious=True,
    seriousness_criteria=frozenset({Seriousness.HOSPITALISATION}),
    awareness_at=datetime(2026, 5, 10, 9, 30, tzinfo=UTC),
    outcome=Outcome.RECOVERED,
    action=ActionTaken.HOSPITALISATION,
)


def refusal(data: AdverseEventData) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        adverse_event_check(data, consent_date=CONSENT, today=TODAY)
    return caught.value


def test_the_term_list_covers_car_t_in_lupus_with_grades_and_soc() -> None:
    terms = term_list().terms
    assert term_list().version == "5.0"
    assert len(terms) >= 60
    assert terms["febrile_neutropenia"].grades == (3, 4, 5)
    assert terms["death_nos"].grades == (5,)
    assert terms["neutrophil_count_decreased"].grades == (1, 2, 3, 4)
    # Hypogammaglobulinaemia has no CTCAE v5.0 term: listed, flagged as not CTCAE, AESI.
    hypogamma = terms["hypogammaglobulinemia"]
    assert not hypogamma.ctcae_term and hypogamma.aesi is AesiCategory.HYPOGAMMAGLOBULINEMIA
    assert all(t.soc and t.label["en"] and t.label["fr"] and t.grades for t in terms.values())
    assert all(set(t.grades) <= {1, 2, 3, 4, 5} for t in terms.values())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("anemie", "anemia"),  # French without the accent
        ("ANÉMIE", "anemia"),
        ("febrile neutro", "febrile_neutropenia"),
        ("neutropénie fébrile", "febrile_neutropenia"),
        ("relargage", "cytokine_release_syndrome"),
        ("zona", "herpes_zoster"),
        ("10016288", "febrile_neutropenia"),
    ],
)
def test_search_finds_terms_in_french_or_english_whatever_the_case_or_accents(query: str, expected: str) -> None:
    assert expected in [t.code for t in term_search(query)]


def test_search_of_nothing_known_finds_nothing() -> None:
    assert term_search("xylophone") == []


def test_a_valid_serious_ae_passes_and_gives_its_term() -> None:
    assert adverse_event_check(AE, consent_date=CONSENT, today=TODAY).code == "febrile_neutropenia"


def test_end_before_start_is_refused_at_end_date() -> None:
    error = refusal(replace(AE, end_date=date(2026, 5, 9)))
    assert (error.code, error.item) == ("end_before_start", "end_date")
    assert "2026-05-09" in str(error) and "2026-05-10" in str(error)


def test_grade_outside_the_terms_grades_is_refused_at_grade() -> None:
    error = refusal(replace(AE, grade=2))
    assert (error.code, error.item) == ("grade_not_allowed", "grade")
    assert "allows 3, 4, 5" in str(error)
    death = replace(
        AE, term="death_nos", grade=4, outcome=Outcome.FATAL, seriousness_criteria=frozenset({Seriousness.DEATH})
    )
    assert refusal(death).item == "grade"


def test_serious_without_criterion_is_refused_at_seriousness_criteria() -> None:
    error = refusal(replace(AE, seriousness_criteria=frozenset()))
    assert (error.code, error.item) == ("serious_without_criterion", "seriousness_criteria")


def test_start_before_consent_is_refused_and_so_is_an_ae_without_consent() -> None:
    error = refusal(replace(AE, start_date=date(2026, 2, 28), end_date=None, outcome=Outcome.NOT_RECOVERED))
    assert (error.code, error.item) == ("start_before_consent", "start_date")
    with pytest.raises(InvalidInput) as caught:
        adverse_event_check(AE, consent_date=None, today=TODAY)
    assert caught.value.code == "start_before_consent"


def test_serious_needs_awareness_and_grade5_goes_with_a_fatal_outcome() -> None:
    assert refusal(replace(AE, awareness_at=None)).item == "awareness_at"
    assert refusal(replace(AE, grade=5)).code == "grade5_outcome"
    assert refusal(replace(AE, end_date=None)).code == "end_date_missing"


def test_aesi_comes_from_the_term() -> None:
    assert term_get("cytokine_release_syndrome").aesi is AesiCategory.CRS
    assert term_get("icans").aesi is AesiCategory.ICANS
    assert term_get("herpes_zoster").aesi is AesiCategory.INFECTION
    assert term_get("hemophagocytic_lymphohistiocytosis").aesi is AesiCategory.HLH_MAS
    assert term_get("myelodysplastic_syndrome").aesi is AesiCategory.SECOND_MALIGNANCY
    assert term_get("nausea").aesi is None


def test_relatedness_possible_and_above_counts_as_related() -> None:
    assert [r.related for r in Relatedness] == [False, False, True, True, True]


def test_an_unknown_term_is_refused_at_term() -> None:
    error = refusal(replace(AE, term="broken_leg_of_the_table"))
    assert (error.code, error.item) == ("term_unknown", "term")
