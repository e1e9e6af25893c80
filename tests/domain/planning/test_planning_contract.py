"""The instance JSON of `cartrial plan`: read when valid, refused with the JSON path of the first
error otherwise; the plan JSON has exactly the contract's keys."""

from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any

import pytest
from planning_examples import instance_json, with_center

from cartrial.domain.errors import InvalidInput
from cartrial.domain.planning import (
    Plan,
    PlanStatus,
    instance_from_json,
    instance_to_json,
    plan_from_json,
    plan_greedy,
    plan_to_json,
)
from cartrial.domain.planning.generate import generated_instance


def test_a_valid_instance_is_read_into_the_planning_types() -> None:
    instance = instance_from_json(instance_json())
    assert instance.start_date == date(2027, 1, 4)
    assert instance.ld_to_infusion_gap_days == (2, 4)
    assert instance.facility("F1").manufacturing_days == 2
    assert instance.center("BDX").ship_days == {"F1": 1}
    assert [(p.id, p.weight) for p in instance.patients] == [("P1", 1), ("P2", 5)]


def test_weight_defaults_to_1_and_closed_dates_are_read() -> None:
    data = instance_json()
    del data["patients"][0]["weight"]
    data["facilities"][0]["closed_dates"] = ["2027-01-06"]
    instance = instance_from_json(data)
    assert instance.patients[0].weight == 1
    assert instance.facilities[0].closed_dates == frozenset({date(2027, 1, 6)})


def test_an_instance_written_is_read_back_the_same() -> None:
    instance = generated_instance(3, 30, 4, 2)
    assert instance_from_json(instance_to_json(instance)) == instance


def _changed(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(instance_json())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message", "code"),
    [
        (_changed(["centers", 0, "ship_days", "F2"], 1), "centers[0].ship_days.F2: no facility has the id F2.",
         "facility_unknown"),
        (_changed(["centers", 0, "ship_days"], {}), "centers[0].ship_days: the shipping days to facility F1 are "
         "missing.", "ship_days_missing"),
        (_changed(["patients", 1, "center"], "LIL"), "patients[1].center: no center has the id LIL.", "center_unknown"),
        (_changed(["centers", 0, "infusion_weekdays"], [1, 7]), "centers[0].infusion_weekdays[1]: 7 is greater than "
         "the maximum of 6", "instance_invalid"),
        (_changed(["facilities", 0, "lines"], 0), "facilities[0].lines: 0 is less than the minimum of 1",
         "instance_invalid"),
        (_changed(["centers", 0, "infusions_per_week"], -2), "centers[0].infusions_per_week: -2 is less than the "
         "minimum of 1", "instance_invalid"),
        (_changed(["ld_to_infusion_gap_days"], [5, 2]), "ld_to_infusion_gap_days: the smallest gap (5 days) is above "
         "the largest (2 days).", "gap_order"),
        (_changed(["patients", 0, "ready_date"], "2027-02-30"), "patients[0].ready_date: 2027-02-30 is not a calendar "
         "date (YYYY-MM-DD).", "date_invalid"),
        (_changed(["patients", 1, "id"], "P1"), "patients[1].id: the id P1 is used twice.", "id_duplicate"),
        (_changed(["horizon_days"], KeyError), "instance: 'horizon_days' is a required property", "instance_invalid"),
        (_changed(["centers", 0, "beds"], 3), "centers[0]: Additional properties are not allowed ('beds' was "
         "unexpected)", "instance_invalid"),
        (_changed(["patients", 0, "weight"], 1.5), "patients[0].weight: 1.5 is not of type 'integer'",
         "instance_invalid"),
    ],
)  # fmt: skip
def test_an_invalid_instance_is_refused_with_the_json_path(data: dict[str, Any], message: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        instance_from_json(data)
    assert str(refused.value) == message
    assert refused.value.code == code
    assert refused.value.item == message.split(":")[0]


def test_the_plan_has_exactly_the_contracts_keys_and_iso_dates() -> None:
    answer = plan_to_json(plan_greedy(instance_from_json(instance_json())))
    assert list(answer) == ["status", "objective_days", "lower_bound_days", "patients"]
    assert answer["lower_bound_days"] is None
    first = answer["patients"][0]
    assert list(first) == [
        "id", "facility", "apheresis", "manufacturing_start", "release", "product_arrival", "lymphodepletion_start",
        "infusion",
    ]  # fmt: skip
    assert first["apheresis"] == "2027-01-04"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first["infusion"])


def test_an_infeasible_plan_names_the_unplaced_patients() -> None:
    # Infusions on Mondays only, one a week, 21 days: only day 14 is reachable, for one patient.
    instance = instance_from_json(with_center(infusion_weekdays=[0], infusions_per_week=1) | {"horizon_days": 21})
    answer = plan_to_json(plan_greedy(instance))
    assert answer["status"] == "infeasible"
    assert (answer["objective_days"], answer["lower_bound_days"]) == (None, None)
    assert answer["unplaced"] == ["P2"]
    assert [p["id"] for p in answer["patients"]] == ["P1"]


def test_a_plan_written_is_read_back_the_same() -> None:
    plan = plan_greedy(instance_from_json(instance_json()))
    assert plan_from_json(plan_to_json(plan)) == plan
    infeasible = Plan(PlanStatus.INFEASIBLE, None, None, plan.patients[:1], ("P2",))
    assert plan_from_json(plan_to_json(infeasible)) == infeasible


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "done"}, "status: must be optimal, feasible or infeasible"),
        ({"objective_days": "12"}, "objective_days: must be an integer or null"),
        ({"patients": {}}, "patients: must be a list"),
    ],
)
def test_a_malformed_plan_is_refused_with_the_json_path(change: dict[str, Any], message: str) -> None:
    answer = plan_to_json(plan_greedy(instance_from_json(instance_json())))
    with pytest.raises(InvalidInput) as refused:
        plan_from_json(answer | change)
    assert str(refused.value) == message


def test_a_plan_date_that_is_not_a_date_is_refused_with_its_path() -> None:
    answer = plan_to_json(plan_greedy(instance_from_json(instance_json())))
    answer["patients"][1]["release"] = "soon"
    with pytest.raises(InvalidInput, match=r"^patients\[1\]\.release: soon is not a calendar date"):
        plan_from_json(answer)
