"""SLEDAI-2K against the Gladman 2002 item table (clinical.md §1), never against its own output."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores import sledai2k
from cartrial.domain.scores.errors import CalculatorInputError

# The 24 items and weights as printed in the SLEDAI-2K table (Gladman 2002; medicalcriteria.com).
PUBLISHED_WEIGHTS = {
    "seizure": 8, "psychosis": 8, "organic_brain_syndrome": 8, "visual_disturbance": 8,
    "cranial_nerve_disorder": 8, "lupus_headache": 8, "cva": 8, "vasculitis": 8,
    "arthritis": 4, "myositis": 4, "urinary_casts": 4, "hematuria": 4, "proteinuria": 4, "pyuria": 4,
    "rash": 2, "alopecia": 2, "mucosal_ulcers": 2, "pleurisy": 2, "pericarditis": 2,
    "low_complement": 2, "increased_dna_binding": 2,
    "fever": 1, "thrombocytopenia": 1, "leukopenia": 1,
}  # fmt: skip

FAST = settings(max_examples=60, deadline=None)


@pytest.mark.parametrize(("descriptor", "weight"), PUBLISHED_WEIGHTS.items())
def test_each_descriptor_scores_its_published_weight(descriptor: str, weight: int) -> None:
    assert sledai2k.score_sledai2k(descriptors=[descriptor]).score == weight


def test_no_descriptor_scores_zero() -> None:
    result = sledai2k.score_sledai2k(descriptors=[])
    assert (result.score, result.clinical_score, result.counted) == (0, 0, ())


def test_all_24_descriptors_score_105_and_clinical_101() -> None:
    # 8 × 8 + 6 × 4 + 7 × 2 + 3 × 1 = 64 + 24 + 14 + 3 = 105; minus the two serology items (2 + 2) = 101.
    result = sledai2k.score_sledai2k(descriptors=list(PUBLISHED_WEIGHTS))
    assert result.score == 105
    assert result.clinical_score == 101


def test_the_public_example_totals_16_not_14() -> None:
    # arthritis 4 + proteinuria 4 + rash 2 + mucosal ulcers 2 + low complement 2 + DNA binding 2 = 16;
    # clinical SLEDAI drops the last two: 16 - 4 = 12 (clinical.md §1.2 pitfall).
    result = sledai2k.score_sledai2k(
        descriptors=[
            "arthritis", "proteinuria", "rash", "mucosal_ulcers", "low_complement", "increased_dna_binding",
        ]
    )  # fmt: skip
    assert (result.score, result.clinical_score) == (16, 12)


def test_serology_only_scores_4_with_clinical_zero() -> None:
    # low complement 2 + increased DNA binding 2 = 4; both are serology, so cSLEDAI = 0.
    result = sledai2k.score_sledai2k(descriptors=["low_complement", "increased_dna_binding"])
    assert (result.score, result.clinical_score) == (4, 0)


def test_seizure_and_fever_score_9() -> None:
    # seizure 8 + fever 1 = 9, no serology, so cSLEDAI = 9.
    result = sledai2k.score_sledai2k(descriptors=["seizure", "fever"])
    assert (result.score, result.clinical_score) == (9, 9)


def test_counted_lists_present_descriptors_in_table_order_with_weights() -> None:
    result = sledai2k.score_sledai2k(descriptors=["fever", "low_complement", "seizure"])
    assert [(c.descriptor, c.weight) for c in result.counted] == [
        ("seizure", 8),
        ("low_complement", 2),
        ("fever", 1),
    ]


def test_a_descriptor_counts_once_however_often_it_is_listed() -> None:
    assert sledai2k.score_sledai2k(descriptors=["rash", "rash"]).score == 2


@pytest.mark.parametrize("lookback_days", [10, 30])
def test_lookback_window_is_stored_with_the_score(lookback_days: int) -> None:
    result = sledai2k.score_sledai2k(descriptors=["rash"], lookback_days=lookback_days)
    assert result.lookback_days == lookback_days
    assert result.score == 2  # Touma 2010: same items and weights over 30 days


def test_default_lookback_is_10_days_and_the_arthritis_rule_is_reported() -> None:
    result = sledai2k.score_sledai2k(descriptors=[])
    assert result.lookback_days == 10
    assert result.arthritis_rule == ">2"


@pytest.mark.parametrize("lookback_days", [0, 7, 11, 29, 31])
def test_other_lookback_windows_are_refused(lookback_days: int) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        sledai2k.score_sledai2k(descriptors=[], lookback_days=lookback_days)
    assert caught.value.field_errors[0]["field"] == "lookback_days"


def test_unknown_descriptor_is_an_error_not_ignored() -> None:
    with pytest.raises(InvalidInput) as caught:
        sledai2k.score_sledai2k(descriptors=["rash", "nephritis"])
    assert "nephritis" in str(caught.value)


# Glossary thresholds: the boundary value itself never counts (all strict in SLEDAI-2K).


@pytest.mark.parametrize(("protein_g_per_24h", "present"), [(0.5, False), (0.49, False), (0.51, True)])
def test_proteinuria_needs_more_than_half_a_gram(protein_g_per_24h: float, present: bool) -> None:
    assert sledai2k.proteinuria_present(protein_g_per_24h=protein_g_per_24h) is present


@pytest.mark.parametrize(("cells", "present"), [(5, False), (6, True), (0, False)])
def test_hematuria_and_pyuria_need_more_than_5_per_hpf(cells: int, present: bool) -> None:
    assert sledai2k.hematuria_present(rbc_per_hpf=cells) is present
    assert sledai2k.pyuria_present(wbc_per_hpf=cells) is present


@pytest.mark.parametrize(("temperature_c", "present"), [(38.0, False), (38.1, True), (37.9, False)])
def test_fever_needs_more_than_38(temperature_c: float, present: bool) -> None:
    assert sledai2k.fever_present(temperature_c=temperature_c) is present


@pytest.mark.parametrize(("platelets", "present"), [(100.0, False), (99.9, True), (150.0, False)])
def test_thrombocytopenia_below_100(platelets: float, present: bool) -> None:
    assert sledai2k.thrombocytopenia_present(platelets_10e9_per_l=platelets) is present


@pytest.mark.parametrize(("wbc", "present"), [(3.0, False), (2.99, True), (5.0, False)])
def test_leukopenia_below_3(wbc: float, present: bool) -> None:
    assert sledai2k.leukopenia_present(wbc_10e9_per_l=wbc) is present


@pytest.mark.parametrize(
    ("joints", "rule", "present"),
    [(1, ">2", False), (2, ">2", False), (3, ">2", True), (1, ">=2", False), (2, ">=2", True), (3, ">=2", True)],
)
def test_arthritis_joint_count_under_each_reading(joints: int, rule: sledai2k.ArthritisRule, present: bool) -> None:
    # clinical.md §1.4: exactly 2 inflamed joints → 0 points with ">2", 4 points with ">=2".
    assert sledai2k.arthritis_present(inflamed_joint_count=joints, rule=rule) is present


def test_arthritis_defaults_to_more_than_two_joints() -> None:
    assert sledai2k.ARTHRITIS_RULE == ">2"
    assert sledai2k.arthritis_present(inflamed_joint_count=2) is False


def test_negative_joint_count_is_refused() -> None:
    with pytest.raises(CalculatorInputError):
        sledai2k.arthritis_present(inflamed_joint_count=-1)


descriptor_sets = st.sets(st.sampled_from(list(PUBLISHED_WEIGHTS)))


@FAST
@given(present=descriptor_sets, extra=st.sampled_from(list(PUBLISHED_WEIGHTS)))
def test_adding_a_descriptor_never_lowers_the_score(present: set[str], extra: str) -> None:
    before = sledai2k.score_sledai2k(descriptors=present)
    after = sledai2k.score_sledai2k(descriptors=present | {extra})
    assert after.score >= before.score
    assert after.clinical_score >= before.clinical_score
    expected_gain = 0 if extra in present else PUBLISHED_WEIGHTS[extra]
    assert after.score - before.score == expected_gain


@FAST
@given(present=descriptor_sets)
def test_score_is_the_sum_of_published_weights_and_serology_is_the_only_gap(present: set[str]) -> None:
    result = sledai2k.score_sledai2k(descriptors=present)
    assert result.score == sum(PUBLISHED_WEIGHTS[d] for d in present)
    assert 0 <= result.clinical_score <= result.score <= 105
    serology = present & {"low_complement", "increased_dna_binding"}
    assert result.score - result.clinical_score == 2 * len(serology)
