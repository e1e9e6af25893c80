"""The `cartrial plan` contract as JSON: the instance read (checked against `instance.schema.json`,
then against the rules the schema cannot say) and the plan written, with exactly the contract's keys.

A refusal names the JSON path of the first error (`centers[2].ship_days.F1: ...`) so the sender can
find it in the file; nothing of a refused file is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from cartrial.domain.errors import InvalidInput
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient, PatientPlan, Plan, PlanStatus
from cartrial.domain.text import N_

PLAN_DATE_KEYS = (
    "apheresis",
    "manufacturing_start",
    "release",
    "product_arrival",
    "lymphodepletion_start",
    "infusion",
)


@cache
def instance_schema() -> dict[str, Any]:
    """The JSON Schema of an instance (docs/planning.md documents it key by key)."""
    text = resources.files("cartrial.domain.planning").joinpath("instance.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def json_path(parts: Iterable[object]) -> str:
    """`["centers", 2, "ship_days", "F1"]` → `centers[2].ship_days.F1`; the root is `instance`."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "instance"


def _refuse(path: Sequence[object], msgid: str, code: str, **params: object) -> InvalidInput:
    return InvalidInput(msgid, code=code, item=json_path(path), **params)


def instance_from_json(data: Mapping[str, Any]) -> Instance:
    """Read an instance from its JSON, or refuse it with the JSON path of the first error."""
    validator = jsonschema.Draft202012Validator(instance_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise _refuse(list(error.absolute_path), N_("{item}: {detail}"), "instance_invalid", detail=error.message)
    facilities = tuple(_facility(item, ["facilities", i]) for i, item in enumerate(data["facilities"]))
    _unique(facilities, "facilities")
    facility_ids = {facility.id for facility in facilities}
    centers = tuple(_center(item, ["centers", i], facility_ids) for i, item in enumerate(data["centers"]))
    _unique(centers, "centers")
    center_ids = {center.id for center in centers}
    patients = tuple(_patient(item, ["patients", i], center_ids) for i, item in enumerate(data["patients"]))
    _unique(patients, "patients")
    minimum, maximum = data["ld_to_infusion_gap_days"]
    if minimum > maximum:
        raise _refuse(
            ["ld_to_infusion_gap_days"],
            N_("{item}: the smallest gap ({minimum} days) is above the largest ({maximum} days)."),
            "gap_order",
            minimum=minimum,
            maximum=maximum,
        )
    return Instance(
        start_date=_date(data["start_date"], ["start_date"]),
        horizon_days=data["horizon_days"],
        facilities=facilities,
        centers=centers,
        patients=patients,
        lymphodepletion_days=data["lymphodepletion_days"],
        ld_to_infusion_gap_days=(minimum, maximum),
    )


def _date(text: str, path: list[object]) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _refuse(
            path, N_("{item}: {value} is not a calendar date (YYYY-MM-DD)."), "date_invalid", value=text
        ) from None


def _dates(items: Sequence[str], path: list[object]) -> frozenset[date]:
    return frozenset(_date(text, [*path, i]) for i, text in enumerate(items))


def _unique(items: Sequence[Facility | Center | Patient], key: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise _refuse([key, i, "id"], N_("{item}: the id {value} is used twice."), "id_duplicate", value=item.id)
        seen.add(item.id)


def _facility(item: Mapping[str, Any], path: list[object]) -> Facility:
    return Facility(
        id=item["id"],
        lines=item["lines"],
        manufacturing_days=item["manufacturing_days"],
        qc_days=item["qc_days"],
        closed_weekdays=frozenset(item["closed_weekdays"]),
        closed_dates=_dates(item.get("closed_dates", []), [*path, "closed_dates"]),
    )


def _center(item: Mapping[str, Any], path: list[object], facility_ids: set[str]) -> Center:
    ship_days: dict[str, int] = dict(item["ship_days"])
    for facility_id in ship_days:
        if facility_id not in facility_ids:
            raise _refuse(
                [*path, "ship_days", facility_id], N_("{item}: no facility has the id {value}."), "facility_unknown",
                value=facility_id,
            )  # fmt: skip
    missing = sorted(facility_ids - set(ship_days))
    if missing:
        raise _refuse(
            [*path, "ship_days"], N_("{item}: the shipping days to facility {value} are missing."), "ship_days_missing",
            value=missing[0],
        )  # fmt: skip
    return Center(
        id=item["id"],
        country=item["country"],
        apheresis_weekdays=frozenset(item["apheresis_weekdays"]),
        apheresis_per_day=item["apheresis_per_day"],
        infusion_weekdays=frozenset(item["infusion_weekdays"]),
        infusions_per_week=item["infusions_per_week"],
        ship_days=ship_days,
        closed_dates=_dates(item.get("closed_dates", []), [*path, "closed_dates"]),
    )


def _patient(item: Mapping[str, Any], path: list[object], center_ids: set[str]) -> Patient:
    if item["center"] not in center_ids:
        raise _refuse(
            [*path, "center"], N_("{item}: no center has the id {value}."), "center_unknown", value=item["center"]
        )
    return Patient(
        id=item["id"],
        center=item["center"],
        ready_date=_date(item["ready_date"], [*path, "ready_date"]),
        weight=item.get("weight", 1),
    )


def instance_to_json(instance: Instance) -> dict[str, Any]:
    """The instance as the contract's JSON (what `instance_from_json` reads back)."""
    return {
        "start_date": instance.start_date.isoformat(),
        "horizon_days": instance.horizon_days,
        "facilities": [
            {
                "id": f.id,
                "lines": f.lines,
                "manufacturing_days": f.manufacturing_days,
                "qc_days": f.qc_days,
                "closed_weekdays": sorted(f.closed_weekdays),
                **({"closed_dates": sorted(d.isoformat() for d in f.closed_dates)} if f.closed_dates else {}),
            }
            for f in instance.facilities
        ],
        "centers": [
            {
                "id": c.id,
                "country": c.country,
                "apheresis_weekdays": sorted(c.apheresis_weekdays),
                "apheresis_per_day": c.apheresis_per_day,
                "infusion_weekdays": sorted(c.infusion_weekdays),
                "infusions_per_week": c.infusions_per_week,
                "ship_days": dict(c.ship_days),
                **({"closed_dates": sorted(d.isoformat() for d in c.closed_dates)} if c.closed_dates else {}),
            }
            for c in instance.centers
        ],
        "patients": [
            {"id": p.id, "center": p.center, "ready_date": p.ready_date.isoformat(), "weight": p.weight}
            for p in instance.patients
        ],
        "lymphodepletion_days": instance.lymphodepletion_days,
        "ld_to_infusion_gap_days": list(instance.ld_to_infusion_gap_days),
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The contract's plan: status, objective_days, lower_bound_days, patients (ISO dates), and the
    `unplaced` patients' ids when, and only when, the status is infeasible."""
    answer: dict[str, Any] = {
        "status": plan.status,
        "objective_days": plan.objective_days,
        "lower_bound_days": plan.lower_bound_days,
        "patients": [
            {"id": p.id, "facility": p.facility, **{key: getattr(p, key).isoformat() for key in PLAN_DATE_KEYS}}
            for p in plan.patients
        ],
    }
    if plan.status == PlanStatus.INFEASIBLE:
        answer["unplaced"] = list(plan.unplaced)
    return answer


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """Read a plan written by `plan_to_json` (for `cartrial plan --check`), refusing a malformed one
    with the JSON path of the error; whether it keeps the rules is the checker's question."""
    if not isinstance(data, Mapping):
        raise _refuse([], N_("{item}: {detail}"), "plan_invalid", detail="a plan is a JSON object")
    for key in ("status", "objective_days", "lower_bound_days", "patients"):
        if key not in data:
            raise _refuse([], N_("{item}: {detail}"), "plan_invalid", detail=f"{key!r} is a required property")
    if data["status"] not in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE, PlanStatus.INFEASIBLE):
        raise _refuse(
            ["status"], N_("{item}: {detail}"), "plan_invalid", detail="must be optimal, feasible or infeasible"
        )
    for key in ("objective_days", "lower_bound_days"):
        if data[key] is not None and (not isinstance(data[key], int) or isinstance(data[key], bool)):
            raise _refuse([key], N_("{item}: {detail}"), "plan_invalid", detail="must be an integer or null")
    if not isinstance(data["patients"], list):
        raise _refuse(["patients"], N_("{item}: {detail}"), "plan_invalid", detail="must be a list")
    patients = []
    for i, row in enumerate(data["patients"]):
        path: list[object] = ["patients", i]
        if not isinstance(row, Mapping):
            raise _refuse(path, N_("{item}: {detail}"), "plan_invalid", detail="must be an object")
        for key in ("id", "facility", *PLAN_DATE_KEYS):
            if not isinstance(row.get(key), str):
                raise _refuse([*path, key], N_("{item}: {detail}"), "plan_invalid", detail="must be a string")
        dates = {key: _date(row[key], [*path, key]) for key in PLAN_DATE_KEYS}
        patients.append(PatientPlan(id=row["id"], facility=row["facility"], **dates))
    unplaced = data.get("unplaced", [])
    if not isinstance(unplaced, list) or not all(isinstance(item, str) for item in unplaced):
        raise _refuse(["unplaced"], N_("{item}: {detail}"), "plan_invalid", detail="must be a list of patient ids")
    return Plan(
        status=data["status"],
        objective_days=data["objective_days"],
        lower_bound_days=data["lower_bound_days"],
        patients=tuple(patients),
        unplaced=tuple(unplaced),
    )
