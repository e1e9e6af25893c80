"""Lab unit conversions of clinical.md §6, each expected value worked out from the stated factor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain import units
from cartrial.domain.units import Analyte, UnitConversionError, convert

FAST = settings(max_examples=80, deadline=None)


@pytest.mark.parametrize(
    ("analyte", "value", "from_unit", "to_unit", "expected"),
    [
        # creatinine: µmol/L = mg/dL × 88.4
        (Analyte.CREATININE, 1.0, "mg/dL", "umol/L", 88.4),
        (Analyte.CREATININE, 88.4, "umol/L", "mg/dL", 1.0),
        (Analyte.CREATININE, 0.7, "mg/dL", "umol/L", 61.88),  # 0.7 × 88.4
        # UPCR: 1 g/g = 10 000 / 88.4 = 113.122 mg/mmol; 1 mg/mmol = 0.008840 g/g
        (Analyte.UPCR, 1.0, "g/g", "mg/mmol", 113.122),
        (Analyte.UPCR, 1.0, "mg/mmol", "g/g", 0.00884),
        (Analyte.UPCR, 0.5, "g/g", "mg/mmol", 56.561),  # ≈ 56.6 in clinical.md
        (Analyte.UPCR, 50.0, "mg/mmol", "g/g", 0.442),  # ≈ 0.44 in clinical.md
        (Analyte.UPCR, 500.0, "mg/g", "g/g", 0.5),
        (Analyte.UPCR, 1.0, "mg/mg", "g/g", 1.0),
        # C3, C4, IgG: g/L = mg/dL × 0.01
        (Analyte.C3, 90.0, "mg/dL", "g/L", 0.9),  # BLISS "low C3" < 90 mg/dL
        (Analyte.C4, 16.0, "mg/dL", "g/L", 0.16),  # BLISS "low C4" < 16 mg/dL
        (Analyte.IGG, 700.0, "mg/dL", "g/L", 7.0),  # hypogammaglobulinaemia < 7 g/L
        (Analyte.IGG, 4.0, "g/L", "mg/dL", 400.0),
        # haemoglobin: g/L = g/dL × 10; mmol/L = g/dL × 0.6206
        (Analyte.HEMOGLOBIN, 10.0, "g/dL", "g/L", 100.0),
        (Analyte.HEMOGLOBIN, 10.0, "g/dL", "mmol/L", 6.206),
        (Analyte.HEMOGLOBIN, 6.206, "mmol/L", "g/dL", 10.0),
        (Analyte.HEMOGLOBIN, 80.0, "g/L", "mmol/L", 4.9648),  # 8.0 g/dL × 0.6206
    ],
)
def test_conversions(analyte: Analyte, value: float, from_unit: str, to_unit: str, expected: float) -> None:
    result = convert(analyte=analyte, value=value, from_unit=from_unit, to_unit=to_unit)
    assert result.value == pytest.approx(expected, rel=1e-4)
    assert result.unit == to_unit


def test_creatinine_factor_is_defined_once_as_88_4() -> None:
    assert units.CREATININE_UMOL_PER_MGDL == 88.4
    assert round(units.CREATININE_MOLAR_MASS_G_PER_MOL, 2) == 113.12


def test_micro_sign_spellings_mean_umol_per_l() -> None:
    for spelling in ("µmol/L", "μmol/L"):
        result = convert(analyte="creatinine", value=88.4, from_unit=spelling, to_unit="mg/dL")
        assert result.value == pytest.approx(1.0)
    assert convert(analyte="creatinine", value=1.0, from_unit="mg/dL", to_unit="µmol/L").unit == "umol/L"


def test_same_unit_is_the_identity() -> None:
    assert convert(analyte="c3", value=1.23, from_unit="g/L", to_unit="g/L").value == 1.23


@pytest.mark.parametrize(
    ("analyte", "value", "from_unit", "to_unit", "field"),
    [
        ("sodium", 140.0, "mmol/L", "mmol/L", "analyte"),
        ("creatinine", 1.0, "g/dL", "umol/L", "from"),
        ("hemoglobin", 10.0, "g/dL", "mg/mmol", "to"),
        ("igg", -1.0, "g/L", "mg/dL", "value"),
        ("igg", float("inf"), "g/L", "mg/dL", "value"),
    ],
)
def test_what_cannot_be_converted_is_refused(
    analyte: str, value: float, from_unit: str, to_unit: str, field: str
) -> None:
    with pytest.raises(UnitConversionError) as caught:
        convert(analyte=analyte, value=value, from_unit=from_unit, to_unit=to_unit)
    assert caught.value.field == field


@FAST
@given(data=st.data(), value=st.floats(min_value=0.0, max_value=1e6))
def test_converting_there_and_back_returns_the_value(data: st.DataObject, value: float) -> None:
    analyte = data.draw(st.sampled_from(list(Analyte)))
    accepted = units.units_for(analyte)
    there, back = data.draw(st.sampled_from(accepted)), data.draw(st.sampled_from(accepted))
    converted = convert(analyte=analyte, value=value, from_unit=back, to_unit=there).value
    returned = convert(analyte=analyte, value=converted, from_unit=there, to_unit=back).value
    assert returned == pytest.approx(value, rel=1e-12, abs=1e-12)
