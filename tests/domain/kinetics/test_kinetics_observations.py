"""Observation validation: every bad record is refused with a precise, typed message."""

from __future__ import annotations

import pytest

from cartrial.domain.errors import InvalidInput
from cartrial.domain.kinetics import InvalidObservation, parse_observations, preset_named

SLE = preset_named("sle-default")


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"marker": "b_cells", "day": "14", "value": "0.5", "unit": "cells/µL", "loq": "1"}
    return base | changes


def test_a_good_record_is_parsed_with_its_censoring() -> None:
    (below,) = parse_observations([record()], SLE)
    assert (below.marker, below.day, below.value, below.loq, below.censored) == ("b_cells", 14.0, 0.5, 1.0, True)
    assert below.upper_bound == 1.0
    (empty,) = parse_observations([record(value="")], SLE)
    assert empty.censored and empty.value is None and empty.upper_bound == 1.0
    (measured,) = parse_observations([record(value=12, loq=None)], SLE)
    assert not measured.censored and measured.upper_bound == 12.0


@pytest.mark.parametrize("spelling", ["cells/µL", "cells/μL", "cells/uL", " Cells/UL "])
def test_micro_sign_spellings_are_the_same_unit(spelling: str) -> None:
    (observation,) = parse_observations([record(unit=spelling)], SLE)
    assert observation.unit == "cells/µL"


def test_records_are_sorted_by_day() -> None:
    observations = parse_observations([record(day="28"), record(day="0"), record(day="7.5")], SLE)
    assert [o.day for o in observations] == [0.0, 7.5, 28.0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"day": "-2"}, "before the infusion"),
        ({"day": ""}, "day .* is missing"),
        ({"day": None}, "day .* is missing"),
        ({"day": "D14"}, "must be a number"),
        ({"day": "nan"}, "must be finite"),
        ({"marker": "il6"}, "unknown marker 'il6'"),
        ({"unit": "10^9/L"}, "report it in cells/µL"),
        ({"marker": "anti_dsdna", "unit": "cells/µL"}, "report it in IU/mL"),
        ({"value": "", "loq": ""}, "no limit of quantification"),
        ({"value": "-3"}, "cannot be negative"),
        ({"value": "0", "loq": None}, "needs the assay's limit"),
        ({"loq": "0"}, "must be > 0"),
        ({"value": True}, "must be a number"),
    ],
)
def test_bad_records_are_refused_precisely(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidObservation, match=message) as refused:
        parse_observations([record(), record(**changes)], SLE)
    assert refused.value.row == 2
    assert str(refused.value).startswith("Observation 2:")
    assert isinstance(refused.value, InvalidInput)


def test_missing_columns_and_empty_input_are_refused() -> None:
    with pytest.raises(InvalidObservation, match="missing column"):
        parse_observations([{"marker": "car_t", "day": 1, "value": 3}], SLE)
    with pytest.raises(InvalidObservation, match="no observations"):
        parse_observations([], SLE)


def test_car_t_unit_follows_the_preset() -> None:
    car_t = record(marker="car_t", unit="copies/µg", value="1000", loq="10")
    assert parse_observations([car_t], preset_named("stein2019"))[0].unit == "copies/µg"
    with pytest.raises(InvalidObservation, match="report it in cells/µL"):
        parse_observations([car_t], SLE)
