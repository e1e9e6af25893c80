"""CKD-EPI 2021 against test vectors worked out by hand from Inker 2021 (clinical.md §6.1).

Each vector: eGFR = 142 × min(Scr/κ,1)^α × max(Scr/κ,1)^-1.2 × 0.9938^age × (1.012 if female),
κ = 0.7 F / 0.9 M, α = -0.241 F / -0.302 M. Factors below were worked out step by step;
the last three rows also match the CRAN `egfr` vignette (68.6335, 67.11141, 36.79633).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores.egfr import Sex, estimate_egfr_ckd_epi_2021
from cartrial.domain.scores.errors import CalculatorInputError

FAST = settings(max_examples=60, deadline=None)

VECTORS = [
    # F 40, 0.7: Scr/κ = 1 → both power terms 1; 0.9938^40 = e^(40 × ln 0.9938 = -0.24877) = 0.77976;
    # 142 × 0.77976 × 1.012 = 112.054 → 112.05
    (Sex.FEMALE, 40, 0.7, 112.05),
    # F 40, 1.0: Scr/κ = 1.42857, ^-1.2 = e^(-1.2 × 0.35667) = 0.65180; 112.054 × 0.65180 = 73.038 → 73.04
    (Sex.FEMALE, 40, 1.0, 73.04),
    # M 40, 0.9: Scr/κ = 1; 142 × 0.77976 = 110.726 → 110.73
    (Sex.MALE, 40, 0.9, 110.73),
    # M 60, 1.5: 1.6667^-1.2 = e^(-1.2 × 0.51083) = 0.54173; 0.9938^60 = 0.68856; 142 × 0.54173 × 0.68856 = 52.967
    (Sex.MALE, 60, 1.5, 52.97),
    # F 30, 2.0: 2.85714^-1.2 = e^(-1.2 × 1.04982) = 0.28371; 0.9938^30 = 0.82979;
    # 142 × 0.28371 × 0.82979 × 1.012 = 33.831
    (Sex.FEMALE, 30, 2.0, 33.83),
    # F 25, 0.5: Scr/κ = 0.71429 < 1 → ^-0.241 = e^(-0.241 × -0.33647) = 1.08447; 0.9938^25 = 0.85600;
    # 142 × 1.08447 × 0.85600 × 1.012 = 133.401
    (Sex.FEMALE, 25, 0.5, 133.40),
    # F 50, 1.0: 0.65180 × 0.9938^50 (0.73274) × 142 × 1.012 = 68.633
    (Sex.FEMALE, 50, 1.0, 68.63),
    # M 65, 1.2: 1.33333^-1.2 = e^(-1.2 × 0.28768) = 0.70807; 0.9938^65 = 0.66747; 142 × 0.70807 × 0.66747 = 67.111
    (Sex.MALE, 65, 1.2, 67.11),
    # F 72, 1.5: 2.14286^-1.2 = e^(-1.2 × 0.76214) = 0.40069; 0.9938^72 = 0.63904;
    # 142 × 0.40069 × 0.63904 × 1.012 = 36.796
    (Sex.FEMALE, 72, 1.5, 36.80),
]


@pytest.mark.parametrize(("sex", "age", "scr", "expected"), VECTORS)
def test_published_vectors_in_mg_per_dl(sex: Sex, age: int, scr: float, expected: float) -> None:
    result = estimate_egfr_ckd_epi_2021(creatinine=scr, creatinine_unit="mg/dL", age_years=age, sex=sex)
    assert round(result.egfr_ml_per_min_per_1_73m2, 2) == expected
    assert result.equation == "CKD-EPI 2021"


def test_micromoles_are_converted_with_88_4() -> None:
    # CRAN egfr vignette: 88.4 µmol/L → 1.0 mg/dL → 68.63 for a 50-year-old woman.
    result = estimate_egfr_ckd_epi_2021(creatinine=88.4, creatinine_unit="umol/L", age_years=50, sex=Sex.FEMALE)
    assert result.creatinine_mg_per_dl == pytest.approx(1.0)
    assert round(result.egfr_ml_per_min_per_1_73m2, 2) == 68.63


def test_micro_sign_spelling_is_the_same_unit() -> None:
    # 61.88 µmol/L = 0.7 mg/dL (61.88 / 88.4); F 40 → 112.05 as above.
    result = estimate_egfr_ckd_epi_2021(creatinine=61.88, creatinine_unit="µmol/L", age_years=40, sex=Sex.FEMALE)
    assert round(result.egfr_ml_per_min_per_1_73m2, 2) == 112.05


@pytest.mark.parametrize("sex", list(Sex))
def test_equation_is_continuous_at_kappa(sex: Sex) -> None:
    kappa = 0.7 if sex is Sex.FEMALE else 0.9
    at = estimate_egfr_ckd_epi_2021(creatinine=kappa, creatinine_unit="mg/dL", age_years=40, sex=sex)
    just_below = estimate_egfr_ckd_epi_2021(creatinine=kappa - 1e-9, creatinine_unit="mg/dL", age_years=40, sex=sex)
    just_above = estimate_egfr_ckd_epi_2021(creatinine=kappa + 1e-9, creatinine_unit="mg/dL", age_years=40, sex=sex)
    assert just_below.egfr_ml_per_min_per_1_73m2 == pytest.approx(at.egfr_ml_per_min_per_1_73m2)
    assert just_above.egfr_ml_per_min_per_1_73m2 == pytest.approx(at.egfr_ml_per_min_per_1_73m2)


@pytest.mark.parametrize(("age", "valid"), [(17.99, False), (18, True), (120, True), (120.5, False)])
def test_adults_only(age: float, valid: bool) -> None:
    if valid:
        estimate_egfr_ckd_epi_2021(creatinine=1.0, creatinine_unit="mg/dL", age_years=age, sex=Sex.MALE)
    else:
        with pytest.raises(CalculatorInputError) as caught:
            estimate_egfr_ckd_epi_2021(creatinine=1.0, creatinine_unit="mg/dL", age_years=age, sex=Sex.MALE)
        assert caught.value.field_errors[0]["field"] == "age_years"


@pytest.mark.parametrize(
    ("creatinine", "unit", "field"),
    [
        (0.0, "mg/dL", "creatinine"),
        (-1.0, "umol/L", "creatinine"),
        (41.0, "mg/dL", "creatinine"),
        (1.0, "mmol/L", "creatinine_unit"),
    ],
)
def test_impossible_creatinine_is_refused(creatinine: float, unit: str, field: str) -> None:
    with pytest.raises(CalculatorInputError) as caught:
        estimate_egfr_ckd_epi_2021(creatinine=creatinine, creatinine_unit=unit, age_years=40, sex=Sex.MALE)
    assert caught.value.field_errors[0]["field"] == field


creatinine = st.floats(min_value=0.2, max_value=15.0)
age = st.floats(min_value=18, max_value=100)


@FAST
@given(scr=creatinine, higher=creatinine, age_years=age, sex=st.sampled_from(list(Sex)))
def test_higher_creatinine_never_raises_egfr(scr: float, higher: float, age_years: float, sex: Sex) -> None:
    low, high = sorted((scr, higher))
    at_low = estimate_egfr_ckd_epi_2021(creatinine=low, creatinine_unit="mg/dL", age_years=age_years, sex=sex)
    at_high = estimate_egfr_ckd_epi_2021(creatinine=high, creatinine_unit="mg/dL", age_years=age_years, sex=sex)
    assert at_high.egfr_ml_per_min_per_1_73m2 <= at_low.egfr_ml_per_min_per_1_73m2


@FAST
@given(scr=creatinine, age_years=age, sex=st.sampled_from(list(Sex)))
def test_each_year_of_age_multiplies_by_0_9938(scr: float, age_years: float, sex: Sex) -> None:
    now = estimate_egfr_ckd_epi_2021(creatinine=scr, creatinine_unit="mg/dL", age_years=age_years, sex=sex)
    older = estimate_egfr_ckd_epi_2021(creatinine=scr, creatinine_unit="mg/dL", age_years=age_years + 1, sex=sex)
    assert older.egfr_ml_per_min_per_1_73m2 == pytest.approx(now.egfr_ml_per_min_per_1_73m2 * 0.9938)
