"""2019 EULAR/ACR criteria against Aringer 2019 (clinical.md §2), hand-added totals in comments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.eular_acr_2019 import classify_eular_acr_2019

# Domain, weight and clinical flag of each criterion as printed in Aringer 2019 (clinical.md §2.2).
PUBLISHED = {
    "fever": ("constitutional", 2, True),
    "leukopenia": ("hematologic", 3, True),
    "thrombocytopenia": ("hematologic", 4, True),
    "autoimmune_hemolysis": ("hematologic", 4, True),
    "delirium": ("neuropsychiatric", 2, True),
    "psychosis": ("neuropsychiatric", 3, True),
    "seizure": ("neuropsychiatric", 5, True),
    "non_scarring_alopecia": ("mucocutaneous", 2, True),
    "oral_ulcers": ("mucocutaneous", 2, True),
    "subacute_cutaneous_lupus": ("mucocutaneous", 4, True),
    "discoid_lupus": ("mucocutaneous", 4, True),
    "acute_cutaneous_lupus": ("mucocutaneous", 6, True),
    "pleural_effusion": ("serosal", 5, True),
    "pericardial_effusion": ("serosal", 5, True),
    "acute_pericarditis": ("serosal", 6, True),
    "joint_involvement": ("musculoskeletal", 6, True),
    "proteinuria": ("renal", 4, True),
    "lupus_nephritis_class_2": ("renal", 8, True),
    "lupus_nephritis_class_5": ("renal", 8, True),
    "lupus_nephritis_class_3": ("renal", 10, True),
    "lupus_nephritis_class_4": ("renal", 10, True),
    "anticardiolipin": ("antiphospholipid_antibodies", 2, False),
    "anti_beta2gp1": ("antiphospholipid_antibodies", 2, False),
    "lupus_anticoagulant": ("antiphospholipid_antibodies", 2, False),
    "low_c3": ("complement_proteins", 3, False),
    "low_c4": ("complement_proteins", 3, False),
    "anti_dsdna": ("sle_specific_antibodies", 6, False),
    "anti_smith": ("sle_specific_antibodies", 6, False),
}

FAST = settings(max_examples=80, deadline=None)


def test_ana_negative_means_not_applied_whatever_else() -> None:
    result = classify_eular_acr_2019(ana_titer=0, criteria=["lupus_nephritis_class_4", "anti_dsdna"])
    assert result.entry_criterion_met is False
    assert (result.score, result.classified, result.counted) == (0, False, ())


@pytest.mark.parametrize(("titer", "met"), [(40, False), (79, False), (80, True), (160, True)])
def test_entry_criterion_is_ana_at_least_1_in_80(titer: int, met: bool) -> None:
    assert classify_eular_acr_2019(ana_titer=titer, criteria=[]).entry_criterion_met is met


def test_ten_immunologic_points_alone_do_not_classify() -> None:
    # anti-dsDNA 6 + (low C3 and low C4) 4 = 10 points, all immunologic → not classified.
    result = classify_eular_acr_2019(ana_titer=160, criteria=["anti_dsdna", "low_c3", "low_c4"])
    assert result.score == 10
    assert result.clinical_criterion_met is False
    assert result.classified is False


def test_adding_fever_classifies() -> None:
    # 6 + 4 + fever 2 = 12 ≥ 10 with a clinical criterion → classified.
    result = classify_eular_acr_2019(ana_titer=160, criteria=["anti_dsdna", "low_c3", "low_c4", "fever"])
    assert (result.score, result.classified) == (12, True)


def test_class_iv_nephritis_alone_classifies() -> None:
    # renal biopsy class IV = 10, clinical → classified.
    result = classify_eular_acr_2019(ana_titer=80, criteria=["lupus_nephritis_class_4"])
    assert (result.score, result.clinical_criterion_met, result.classified) == (10, True, True)


def test_haematologic_domain_counts_only_its_highest_criterion() -> None:
    # leukopenia 3, thrombocytopenia 4, haemolysis 4 share one domain → 4, not 11 → not classified.
    result = classify_eular_acr_2019(ana_titer=80, criteria=["leukopenia", "thrombocytopenia", "autoimmune_hemolysis"])
    assert result.score == 4
    assert result.classified is False
    assert [(c.domain, c.weight) for c in result.counted] == [("hematologic", 4)]
    assert {o.criterion for o in result.outweighed} == {"leukopenia", "autoimmune_hemolysis"}


def test_oral_ulcers_with_acute_cutaneous_lupus_and_proteinuria() -> None:
    # mucocutaneous: acute cutaneous 6 outweighs oral ulcers 2; renal proteinuria 4 → 6 + 4 = 10 → classified.
    result = classify_eular_acr_2019(ana_titer=80, criteria=["oral_ulcers", "acute_cutaneous_lupus", "proteinuria"])
    assert (result.score, result.classified) == (10, True)


def test_nine_points_do_not_classify() -> None:
    # seizure 5 + proteinuria 4 = 9 < 10.
    result = classify_eular_acr_2019(ana_titer=80, criteria=["seizure", "proteinuria"])
    assert (result.score, result.classified) == (9, False)


def test_seizure_weighs_five() -> None:
    # The primary publication gives 5; one teaching table's 4 is an error (clinical.md §2.2).
    assert classify_eular_acr_2019(ana_titer=80, criteria=["seizure"]).score == 5


def test_one_low_complement_weighs_3_and_both_together_4_as_one_criterion() -> None:
    assert classify_eular_acr_2019(ana_titer=80, criteria=["low_c4"]).score == 3
    both = classify_eular_acr_2019(ana_titer=80, criteria=["low_c3", "low_c4"])
    assert [(c.criterion, c.weight) for c in both.counted] == [("low_c3_and_low_c4", 4)]
    assert both.outweighed == ()


def test_every_criterion_met_totals_51() -> None:
    # clinical 2 + 4 + 5 + 6 + 6 + 6 + 10 = 39; immunologic 2 + 4 + 6 = 12; 39 + 12 = 51.
    result = classify_eular_acr_2019(ana_titer=1280, criteria=list(PUBLISHED))
    assert result.score == 51
    assert len(result.counted) == 10


def test_unknown_criterion_and_negative_titre_are_both_reported() -> None:
    with pytest.raises(CalculatorInputError) as caught:
        classify_eular_acr_2019(ana_titer=-80, criteria=["butterfly"])
    assert {e["field"] for e in caught.value.field_errors} == {"ana_titer", "criteria"}


criteria_sets = st.sets(st.sampled_from(list(PUBLISHED)))


def _published_score(criteria: set[str]) -> int:
    """Oracle from the published table: best weight per domain, low C3 + low C4 = 4."""
    best: dict[str, int] = {}
    for key in criteria:
        domain, weight, _ = PUBLISHED[key]
        best[domain] = max(best.get(domain, 0), weight)
    if {"low_c3", "low_c4"} <= criteria:
        best["complement_proteins"] = 4
    return sum(best.values())


@FAST
@given(criteria=criteria_sets)
def test_never_counts_two_criteria_of_one_domain(criteria: set[str]) -> None:
    result = classify_eular_acr_2019(ana_titer=80, criteria=criteria)
    domains = [c.domain for c in result.counted]
    assert len(domains) == len(set(domains))
    assert result.score == _published_score(criteria)
    assert result.classified == (result.score >= 10 and any(PUBLISHED[k][2] for k in criteria))


@FAST
@given(criteria=criteria_sets, extra=st.sampled_from(list(PUBLISHED)))
def test_adding_a_criterion_never_lowers_the_score(criteria: set[str], extra: str) -> None:
    before = classify_eular_acr_2019(ana_titer=80, criteria=criteria).score
    after = classify_eular_acr_2019(ana_titer=80, criteria=criteria | {extra}).score
    assert after >= before


@FAST
@given(criteria=criteria_sets, titer=st.integers(min_value=0, max_value=79))
def test_below_the_entry_titre_nothing_counts(criteria: set[str], titer: int) -> None:
    result = classify_eular_acr_2019(ana_titer=titer, criteria=criteria)
    assert (result.score, result.classified) == (0, False)
