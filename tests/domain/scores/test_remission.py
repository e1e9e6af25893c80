"""DORIS 2021 remission and LLDAS (clinical.md §3.2, §3.3, suggested cases of §3.5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores import remission
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.remission import assess_doris_2021, assess_lldas

FAST = settings(max_examples=60, deadline=None)

SEROLOGY = ["low_complement", "increased_dna_binding"]
CLINICAL_DESCRIPTORS = [
    "seizure", "psychosis", "organic_brain_syndrome", "visual_disturbance", "cranial_nerve_disorder",
    "lupus_headache", "cva", "vasculitis", "arthritis", "myositis", "urinary_casts", "hematuria",
    "proteinuria", "pyuria", "rash", "alopecia", "mucosal_ulcers", "pleurisy", "pericarditis",
    "fever", "thrombocytopenia", "leukopenia",
]  # fmt: skip


def _doris(descriptors: list[str], pga: float, pred: float, stable: bool = True) -> remission.DorisAssessment:
    return assess_doris_2021(
        sledai_descriptors=descriptors, pga=pga, prednisone_mg_per_day=pred, maintenance_therapy_stable=stable
    )


def _lldas(
    descriptors: list[str],
    pga: float,
    pred: float,
    *,
    previous: list[str] | None = None,
    hemolytic_anemia: bool = False,
    gi_activity: bool = False,
    standard: bool = True,
) -> remission.LldasAssessment:
    return assess_lldas(
        sledai_descriptors=descriptors,
        previous_sledai_descriptors=descriptors if previous is None else previous,
        hemolytic_anemia=hemolytic_anemia,
        gi_activity=gi_activity,
        pga=pga,
        prednisone_mg_per_day=pred,
        standard_maintenance_only=standard,
    )


def _codes(assessment: remission.DorisAssessment | remission.LldasAssessment) -> list[str]:
    return [u.code for u in assessment.unmet]


# clinical.md §3.5 row 1: cSLEDAI 0, SLEDAI 4 (low C3 + dsDNA), PGA 0.3, pred 5, stable MMF.
def test_serology_only_patient_is_in_doris_remission_and_lldas() -> None:
    doris = _doris(SEROLOGY, 0.3, 5.0)
    assert (doris.remission, doris.clinical_sledai) == (True, 0)
    lldas = _lldas(SEROLOGY, 0.3, 5.0)
    assert (lldas.lldas, lldas.sledai) == (True, 4)


# Row 2: PGA 0.5 is not < 0.5.
def test_pga_of_exactly_half_fails_doris_but_not_lldas() -> None:
    doris = _doris([], 0.5, 0.0)
    assert doris.remission is False
    assert _codes(doris) == ["pga"]
    assert _lldas([], 0.5, 0.0).lldas is True


def test_pga_just_below_half_meets_doris() -> None:
    assert _doris([], 0.49, 0.0).remission is True


# Row 3: prednisone exactly 5 mg/day, under each reading of the DORIS bound.
def test_prednisone_exactly_5_meets_doris_with_the_inclusive_default() -> None:
    assert remission.DORIS_PRED_INCLUSIVE is True
    assert remission.DORIS_PRED_MAX_MG == 5
    assert _doris([], 0.3, 5.0).remission is True


def test_prednisone_exactly_5_fails_doris_under_the_strict_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remission, "DORIS_PRED_INCLUSIVE", False)
    doris = _doris([], 0.3, 5.0)
    assert doris.remission is False
    assert _codes(doris) == ["prednisone_mg_per_day"]


def test_prednisone_above_5_fails_doris() -> None:
    assert _codes(_doris([], 0.3, 5.1)) == ["prednisone_mg_per_day"]


# Row 4: SLEDAI-2K 4 from proteinuria only, PGA 0.8, pred 5.
def test_proteinuria_alone_fails_both_doris_and_lldas() -> None:
    doris = _doris(["proteinuria"], 0.8, 5.0)
    assert (doris.remission, doris.clinical_sledai) == (False, 4)
    assert _codes(doris) == ["clinical_sledai", "pga"]
    lldas = _lldas(["proteinuria"], 0.8, 5.0)
    assert lldas.lldas is False
    assert _codes(lldas) == ["major_organ_activity"]


# Row 5: SLEDAI-2K 4 from arthritis only, PGA 1.0, pred 7.5.
def test_arthritis_alone_fails_doris_and_meets_lldas() -> None:
    assert _doris(["arthritis"], 1.0, 7.5).remission is False
    lldas = _lldas(["arthritis"], 1.0, 7.5)
    assert (lldas.lldas, lldas.sledai) == (True, 4)


def test_unstable_maintenance_fails_doris() -> None:
    assert _codes(_doris([], 0.0, 0.0, stable=False)) == ["maintenance_therapy_stable"]


@pytest.mark.parametrize(
    ("pga", "pred", "expected"),
    [(1.0, 7.5, []), (1.1, 7.5, ["pga"]), (1.0, 7.6, ["prednisone_mg_per_day"])],
)
def test_lldas_pga_and_prednisone_bounds_are_inclusive(pga: float, pred: float, expected: list[str]) -> None:
    assert _codes(_lldas([], pga, pred)) == expected


def test_lldas_needs_sledai_at_most_4() -> None:
    # rash 2 + alopecia 2 + thrombocytopenia 1 = 5 > 4, none of them a major organ.
    lldas = _lldas(["rash", "alopecia", "thrombocytopenia"], 0.5, 0.0)
    assert (lldas.sledai, _codes(lldas)) == (5, ["sledai"])


def test_fever_is_major_organ_activity_for_lldas() -> None:
    assert _codes(_lldas(["fever"], 0.5, 0.0)) == ["major_organ_activity"]


def test_a_feature_absent_at_the_previous_assessment_fails_lldas() -> None:
    lldas = _lldas(["rash"], 0.5, 0.0, previous=[])
    assert _codes(lldas) == ["new_features"]
    assert lldas.new_features == ("rash",)


def test_a_feature_that_was_already_there_is_not_new() -> None:
    assert _lldas(["rash"], 0.5, 0.0, previous=["rash", "alopecia"]).lldas is True


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"hemolytic_anemia": True}, "hemolytic_anemia"),
        ({"gi_activity": True}, "gi_activity"),
        ({"standard": False}, "standard_maintenance_only"),
    ],
)
def test_lldas_non_sledai_criteria(kwargs: dict[str, bool], code: str) -> None:
    assert _codes(_lldas([], 0.5, 0.0, **kwargs)) == [code]


@pytest.mark.parametrize(
    ("pga", "pred", "field"), [(3.1, 0.0, "pga"), (-0.1, 0.0, "pga"), (0.5, -1.0, "prednisone_mg_per_day")]
)
def test_out_of_range_pga_or_prednisone_is_refused(pga: float, pred: float, field: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        _doris([], pga, pred)
    assert [e["field"] for e in caught.value.field_errors] == [field]


def test_unknown_descriptors_name_their_field() -> None:
    with pytest.raises(CalculatorInputError) as caught:
        _lldas(["rash"], 0.5, 0.0, previous=["malar"])
    assert [e["field"] for e in caught.value.field_errors] == ["previous_sledai_descriptors"]


@FAST
@given(serology=st.sets(st.sampled_from(SEROLOGY)), pga=st.floats(0.0, 0.49), pred=st.floats(0.0, 5.0))
def test_serology_never_changes_doris(serology: set[str], pga: float, pred: float) -> None:
    assert _doris(sorted(serology), pga, pred).remission is True


@FAST
@given(clinical=st.sets(st.sampled_from(CLINICAL_DESCRIPTORS), min_size=1), pga=st.floats(0.0, 3.0))
def test_any_clinical_descriptor_excludes_doris_remission(clinical: set[str], pga: float) -> None:
    doris = _doris(sorted(clinical), pga, 0.0)
    assert doris.remission is False
    assert "clinical_sledai" in _codes(doris)
