"""The catalogue of numeric inputs: every item declared once with a unit, a plausible range and a
label in both languages; values outside are refused with the item, the value and the range."""

from __future__ import annotations

import math

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.lab_catalogue import ANALYTES, CATALOGUE, validate_lab_value
from cartrial.domain.manufacturing import judge_qc_result, parse_release_specification
from cartrial.domain.quantities import (
    ANA_TITER,
    APHERESIS_VOLUME_ML,
    QC_PHYSICAL_LIMITS,
    QUANTITIES,
    collection_counts_check,
    plausible_check,
)
from cartrial.domain.screening import SCREENING_FIELDS
from cartrial.domain.text import Message
from cartrial.locale import render
from cartrial.protocols import active_protocol


def test_the_refusal_names_the_item_the_value_and_the_range_in_both_languages() -> None:
    with pytest.raises(InvalidInput) as refused:
        plausible_check(APHERESIS_VOLUME_ML, 1e9, item="volume_ml")
    assert refused.value.code == "value_implausible" and refused.value.item == "volume_ml"
    assert str(refused.value) == "Apheresis volume: 1000000000 mL is outside the plausible range 10–1000 mL."
    assert render(refused.value.message, "fr") == (
        "Volume d'aphérèse : 1000000000 mL est hors de la plage plausible 10–1000 mL."
    )
    assert render(refused.value.message, "fr").count("1000000000") == 1


def test_a_decimal_value_keeps_its_decimals_and_the_french_comma() -> None:
    with pytest.raises(InvalidInput) as refused:
        plausible_check(APHERESIS_VOLUME_ML, 1000.5)
    assert "1000.5 mL" in str(refused.value) and "1000,5 mL" in render(refused.value.message, "fr")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "12"])
def test_what_is_not_a_number_is_refused_as_such(value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        plausible_check(APHERESIS_VOLUME_ML, value)  # type: ignore[arg-type]
    assert refused.value.code == "value_not_a_number"


def test_an_integer_item_refuses_a_fraction() -> None:
    with pytest.raises(InvalidInput, match="whole number"):
        plausible_check(ANA_TITER, 80.5)
    assert plausible_check(ANA_TITER, 80) == 80.0


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_a_value_is_accepted_exactly_when_it_lies_in_the_range_bounds_included(value: float) -> None:
    inside = APHERESIS_VOLUME_ML.minimum <= value <= APHERESIS_VOLUME_ML.maximum
    event("inside" if inside else "outside")
    if inside:
        assert plausible_check(APHERESIS_VOLUME_ML, value) == value
    else:
        with pytest.raises(InvalidInput):
            plausible_check(APHERESIS_VOLUME_ML, value)


def test_the_bounds_themselves_are_plausible() -> None:
    for quantity in [*QUANTITIES.values(), *(spec.quantity(unit) for spec in CATALOGUE for unit in spec.units)]:
        assert plausible_check(quantity, quantity.minimum) == quantity.minimum
        assert plausible_check(quantity, quantity.maximum) == quantity.maximum


def test_every_item_has_a_label_a_unique_code_and_a_finite_range() -> None:
    # Labels are msgids: `cartrial translations check` (in ./run test) fails on one without French.
    items = [*QUANTITIES.values(), *(spec.quantity(unit) for spec in CATALOGUE for unit in spec.units)]
    assert len({q.code for q in QUANTITIES.values()}) == len(QUANTITIES)
    for quantity in items:
        assert quantity.label.strip()
        assert math.isfinite(quantity.minimum) and quantity.minimum < quantity.maximum
    assert render(Message(APHERESIS_VOLUME_ML.label), "fr") == "Volume d'aphérèse"


def test_collection_counts_cd3_cannot_exceed_the_nucleated_cells() -> None:
    collection_counts_check(volume_ml=210, tnc_e9=18.5, cd3_cells_e9=4.2)
    with pytest.raises(InvalidInput) as refused:
        collection_counts_check(volume_ml=210, tnc_e9=10, cd3_cells_e9=12)
    assert refused.value.item == "cd3_cells_e9" and "cannot exceed" in str(refused.value)
    with pytest.raises(InvalidInput) as refused:
        collection_counts_check(volume_ml=210, tnc_e9=1e9, cd3_cells_e9=None)
    assert refused.value.item == "tnc_e9"


# --- lab values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "unit", "value", "words"),
    [
        ("creatinine", "umol/L", 1e9, "Creatinine: 1000000000 umol/L is outside the plausible range 5–2000 umol/L."),
        ("creatinine", "mg/dL", 300, "Creatinine: 300 mg/dL is outside the plausible range 0.05–25 mg/dL."),
        ("cd3", "cells/µL", 1e9, "CD3+ T cells: 1000000000 cells/µL is outside the plausible range 0–20000"),
        ("car_t", "cells/uL", 1e9, "CAR-T cells (transgene): 1000000000 cells/µL"),
    ],
)
def test_a_lab_value_outside_its_range_in_its_unit_is_refused(
    analyte: str, unit: str, value: float, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_lab_value(analyte=analyte, value=value, unit=unit)
    assert refused.value.code == "value_implausible" and words in str(refused.value)


def test_a_creatinine_plausible_in_one_unit_is_judged_in_its_own_unit() -> None:
    # 88 is a normal creatinine in µmol/L and an impossible one in mg/dL.
    assert validate_lab_value(analyte="creatinine", value=88, unit="µmol/L").value == 88
    with pytest.raises(InvalidInput):
        validate_lab_value(analyte="creatinine", value=88, unit="mg/dL")


def test_reference_limits_and_loq_are_checked_too_the_loq_may_be_below_any_patient() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_lab_value(analyte="cd3", value=650, unit="cells/µL", upper_limit=1e9)
    assert refused.value.item == "upper_limit"
    assert "CD3+ T cells (upper limit of normal): 1000000000 cells/µL" in str(refused.value)
    # A creatinine assay's LoQ of 2 µmol/L is below any patient's value, and fine.
    assert validate_lab_value(analyte="creatinine", value=None, unit="umol/L", limit_of_quantification=2).value is None
    with pytest.raises(InvalidInput) as refused:
        validate_lab_value(analyte="creatinine", value=None, unit="umol/L", limit_of_quantification=1e9)
    assert refused.value.item == "limit_of_quantification"


def test_every_analyte_declares_a_range_for_each_of_its_units() -> None:
    for spec in CATALOGUE:
        assert spec.units, spec.code
        for unit in spec.units:
            quantity = spec.quantity(unit)
            assert quantity.unit == unit and quantity.label == spec.label
        low, high = spec.bounds()
        assert low == min(r[0] for r in spec.ranges.values()) and high == max(r[1] for r in spec.ranges.values())
    assert ANALYTES["car_t"].units == ("copies/µg", "cells/µL")


# --- release tests: physical limits, not the specification -----------------------------------------

SPECIFICATION = active_protocol().product("CART_CRYO").release_specification


def test_a_viability_of_150_percent_is_refused_not_judged() -> None:
    with pytest.raises(InvalidInput) as refused:
        judge_qc_result("viability", "150", SPECIFICATION)
    assert str(refused.value) == "Viability: 150 % is outside the plausible range 0–100 %."
    assert render(refused.value.message, "fr") == "Viabilité : 150 % est hors de la plage plausible 0–100 %."
    # 100 % is physically possible, and conforms to "≥ 70 %".
    assert judge_qc_result("viability", "100", SPECIFICATION).conforms is True


def test_each_numeric_release_test_of_the_protocol_has_physical_limits_containing_its_specification() -> None:
    for spec in SPECIFICATION.values():
        if spec.kind.value != "numeric":
            assert spec.plausible is None
            continue
        assert spec.plausible is not None and spec.plausible.unit == spec.unit
        for limit in (spec.minimum, spec.maximum):
            assert limit is None or spec.plausible.contains(limit)
    assert SPECIFICATION["viability"].plausible is QC_PHYSICAL_LIMITS["%"]


def _numeric(unit: str, **extra: object) -> list[dict[str, object]]:
    return [{"code": "potency", "label": {"en": "Potency", "fr": "Activité"}, "kind": "numeric", "unit": unit, **extra}]


def test_a_release_test_in_an_unknown_unit_needs_its_own_plausible_range() -> None:
    with pytest.raises(InvalidInput, match="no physical limits are known for the unit 'IFN-γ pg/mL'"):
        parse_release_specification(_numeric("IFN-γ pg/mL", minimum=100))
    parsed = parse_release_specification(_numeric("IFN-γ pg/mL", minimum=100, plausible=[0, 100000]))
    assert parsed["potency"].plausible is not None and parsed["potency"].plausible.maximum == 100000
    with pytest.raises(InvalidInput):
        judge_qc_result("potency", "200000", parsed)


@pytest.mark.parametrize("plausible", [[5, 1], [0], "0-100", [0, True]])
def test_a_malformed_plausible_range_is_refused(plausible: object) -> None:
    with pytest.raises(InvalidInput, match="plausible must be"):
        parse_release_specification(_numeric("IFN-γ pg/mL", minimum=100, plausible=plausible))


def test_a_specification_limit_outside_the_physical_limits_is_refused() -> None:
    with pytest.raises(InvalidInput, match="lies outside what a result can be"):
        parse_release_specification(_numeric("%", minimum=150))


# --- one declaration, several readers ----------------------------------------------------------------


def test_the_screening_contract_reads_the_ana_titre_range_from_the_catalogue() -> None:
    field = SCREENING_FIELDS["ana_titer"]
    schema = field.json_schema()
    bounds = schema["anyOf"][0]  # type: ignore[index]
    assert (bounds["minimum"], bounds["maximum"]) == (ANA_TITER.minimum, ANA_TITER.maximum)
