"""The simulated trial network's parameters (issue 11): centers, facilities, rates and durations.

Every default is documented here and in docs/simulation.md. The protocol's own figures (the
lymphodepletion days and the gap to D0, the apheresis day after inclusion) replace the defaults
through `with_protocol` (the adapters read the protocol file; the domain never does), and a JSON
object overrides any of them through `parameters_from_json`, which names the JSON path of a bad value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

import holidays

from cartrial.domain.errors import InvalidInput


@dataclass(frozen=True)
class CenterParameters:
    """A treating center: its patients arrive at `arrivals_per_month` (Poisson), apheresis on its
    weekdays with `apheresis_per_day` slots, infusions on its weekdays within `infusions_per_week`
    beds, `ship_days` to and from each facility."""

    id: str
    country: str = "FR"
    arrivals_per_month: float = 1.0
    apheresis_weekdays: frozenset[int] = frozenset({1, 3})
    apheresis_per_day: int = 1
    infusion_weekdays: frozenset[int] = frozenset({0, 1, 2, 3})
    infusions_per_week: int = 1
    ship_days: Mapping[str, int] = field(default_factory=lambda: {"LAB": 1})


@dataclass(frozen=True)
class FacilityParameters:
    """A manufacturing facility: `lines` batches at once; nominal manufacturing and QC days (the actual
    ones are drawn around them); no batch starts on a `closed_weekdays` day (0 = Monday)."""

    id: str
    country: str = "FR"
    lines: int = 2
    manufacturing_days: int = 10
    qc_days: int = 7
    closed_weekdays: frozenset[int] = frozenset({5, 6})


def _default_centers() -> tuple[CenterParameters, ...]:
    # The demo's network: four French centers one day from the lab, Montreal three days away.
    french = [
        CenterParameters(id=code, arrivals_per_month=rate, ship_days={"LAB": 1})
        for code, rate in (("BDX", 1.5), ("LIL", 1.2), ("PAR", 2.0), ("STR", 1.0))
    ]
    return (*french, CenterParameters(id="MTL", country="CA", arrivals_per_month=0.8, ship_days={"LAB": 3}))


@dataclass(frozen=True)
class SimulationParameters:
    """One simulated network. Rates are probabilities in [0, 1]; durations are whole days; a
    triangular spread (low, high) is added to a nominal duration (mode = the nominal)."""

    start_date: date = date(2027, 1, 4)
    months: int = 12
    centers: tuple[CenterParameters, ...] = field(default_factory=_default_centers)
    facilities: tuple[FacilityParameters, ...] = (FacilityParameters(id="LAB"),)
    # Share of screened patients who are not included (eligibility not met).
    screen_failure_rate: float = 0.3
    # Days from the start of screening to inclusion (or screen failure): triangular (min, mode, max).
    screening_days: tuple[int, int, int] = (7, 14, 28)
    # The patient is ready for apheresis this many days after inclusion (the protocol's APH visit day).
    apheresis_after_inclusion_days: int = 7
    # Actual manufacturing and QC days = nominal + triangular(low, 0, high), rounded to a whole day.
    manufacturing_spread_days: tuple[int, int] = (-1, 3)
    qc_spread_days: tuple[int, int] = (-1, 4)
    # Share of batches failing QC (commercial CAR-T: ~2-7 % out of specification; 4 % by default).
    manufacturing_failure_rate: float = 0.04
    # A failed batch's branch: remanufacture from the retained material, a new apheresis, or no
    # infusion. Shares of the failures; they sum to 1. Assumptions, not trial figures.
    remanufacture_share: float = 0.5
    re_apheresis_share: float = 0.3
    no_infusion_share: float = 0.2
    # A new apheresis is possible this many days after the failure (recovery of the lymphocytes).
    re_apheresis_delay_days: int = 14
    # After this many failed batches of one patient, no infusion.
    max_manufacturing_attempts: int = 3
    # Fresh material (72 h) must start manufacturing at most this many days after arriving at the lab.
    max_material_wait_days: int = 1
    # Lymphodepletion days and the gap from its last day to D0 (min, max): from the protocol's window.
    lymphodepletion_days: int = 3
    ld_to_infusion_gap_days: tuple[int, int] = (1, 3)
    # Share of patients with an urgent disease (weight `urgent_weight` in the optimiser's objective).
    urgent_share: float = 0.2
    urgent_weight: int = 3
    # The optimised policy re-plans the patients waiting for an apheresis date this often (days).
    replan_every_days: int = 7
    cpsat_time_limit_s: float = 5.0
    # How far ahead a booking may go (days); a patient not placed within it waits for the next day.
    planning_horizon_days: int = 180
    # No apheresis, batch start or infusion on a public holiday of the center's or facility's country.
    public_holidays: bool = True

    @property
    def days(self) -> int:
        """The simulated horizon in days (a month is 30.44 days)."""
        return math.ceil(self.months * 30.44)


# Plausibility ranges, declared once: (minimum, maximum) per scalar parameter.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "months": (1, 120),
    "screen_failure_rate": (0, 1),
    "apheresis_after_inclusion_days": (0, 90),
    "manufacturing_failure_rate": (0, 1),
    "remanufacture_share": (0, 1),
    "re_apheresis_share": (0, 1),
    "no_infusion_share": (0, 1),
    "re_apheresis_delay_days": (0, 180),
    "max_manufacturing_attempts": (1, 10),
    "max_material_wait_days": (0, 14),
    "lymphodepletion_days": (1, 14),
    "urgent_share": (0, 1),
    "urgent_weight": (1, 100),
    "replan_every_days": (1, 60),
    "cpsat_time_limit_s": (0.1, 600),
    "planning_horizon_days": (30, 730),
}
CENTER_RANGES: dict[str, tuple[float, float]] = {
    "arrivals_per_month": (0, 100),
    "apheresis_per_day": (1, 20),
    "infusions_per_week": (1, 50),
}
FACILITY_RANGES: dict[str, tuple[float, float]] = {
    "lines": (1, 100),
    "manufacturing_days": (1, 60),
    "qc_days": (0, 60),
}
# The whole-day lists and maps: each element's (minimum, maximum).
SCREENING_DAYS_RANGE: tuple[int, int] = (0, 365)
SPREAD_DAYS_RANGE: tuple[int, int] = (-30, 60)
GAP_DAYS_RANGE: tuple[int, int] = (0, 30)
SHIP_DAYS_RANGE: tuple[int, int] = (0, 30)


def with_protocol(
    parameters: SimulationParameters, *, lymphodepletion_window_days: tuple[int, int], apheresis_day: int | None
) -> SimulationParameters:
    """The protocol's figures in place of the defaults.

    The protocol's `lymphodepletion_window_days` [low, high] (e.g. [-5, -3]) is read as the
    Erlangen scheme, lymphodepletion given from D{low} to D{high} (high - low + 1 days), and as the
    window in which it may start (the pathway's guard): started on day s, its last day is
    s + days - 1, so the gap to D0 goes from 1 - high - days (start on D{high}) to 1 - low - days
    (start on D{low}): [1, 3] for [-5, -3]. `apheresis_day` is the APH visit's day after inclusion.
    """
    low, high = lymphodepletion_window_days
    days = high - low + 1
    gap = (max(0, 1 - high - days), max(0, 1 - low - days))
    changed = replace(parameters, lymphodepletion_days=days, ld_to_infusion_gap_days=gap)
    if apheresis_day is not None and apheresis_day >= 0:
        changed = replace(changed, apheresis_after_inclusion_days=apheresis_day)
    return changed


def _refuse(path: str, rule: str) -> InvalidInput:
    return InvalidInput(
        "Simulation parameter {item}: {rule}.", code="simulation_parameter_invalid", item=path, rule=rule
    )


def _number(value: Any, path: str, bounds: tuple[float, float], *, whole: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(path, "must be a number")
    if whole and value != int(value):
        raise _refuse(path, "must be a whole number")
    low, high = bounds
    if not low <= value <= high:
        raise _refuse(path, f"must be between {low:g} and {high:g}, got {value:g}")
    return value


def _weekdays(value: Any, path: str) -> frozenset[int]:
    if not isinstance(value, list) or not value or not all(isinstance(d, int) and 0 <= d <= 6 for d in value):
        raise _refuse(path, "must be a non-empty list of weekdays 0 (Monday) to 6 (Sunday)")
    return frozenset(value)


def _int_pair(value: Any, path: str, bounds: tuple[int, int], *, ordered: bool = True) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _refuse(path, "must be a list of two whole numbers")
    pair = tuple(int(_number(v, f"{path}[{i}]", bounds, whole=True)) for i, v in enumerate(value))
    if ordered and pair[0] > pair[1]:
        raise _refuse(path, "must be in increasing order")
    return pair[0], pair[1]


def _center(value: Any, path: str, base: CenterParameters | None) -> CenterParameters:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"].strip():
        raise _refuse(path, "must be an object with an 'id'")
    center = base or CenterParameters(id=value["id"])
    known = {f.name for f in fields(CenterParameters)}
    changes: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in known:
            raise _refuse(where, "unknown key")
        if key in CENTER_RANGES:
            number = _number(item, where, CENTER_RANGES[key], whole=key != "arrivals_per_month")
            changes[key] = number if key == "arrivals_per_month" else int(number)
        elif key in ("apheresis_weekdays", "infusion_weekdays"):
            changes[key] = _weekdays(item, where)
        elif key == "ship_days":
            if not isinstance(item, dict) or not item:
                raise _refuse(where, "must be an object of facility id → days")
            changes[key] = {
                str(k): int(_number(v, f"{where}.{k}", SHIP_DAYS_RANGE, whole=True)) for k, v in item.items()
            }
        elif key in ("id", "country"):
            if not isinstance(item, str) or not item.strip():
                raise _refuse(where, "must be a non-empty text")
            changes[key] = item.strip()
    return replace(center, **changes)


def _facility(value: Any, path: str, base: FacilityParameters | None) -> FacilityParameters:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"].strip():
        raise _refuse(path, "must be an object with an 'id'")
    facility = base or FacilityParameters(id=value["id"])
    known = {f.name for f in fields(FacilityParameters)}
    changes: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in known:
            raise _refuse(where, "unknown key")
        if key in FACILITY_RANGES:
            changes[key] = int(_number(item, where, FACILITY_RANGES[key], whole=True))
        elif key == "closed_weekdays":
            if not isinstance(item, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in item):
                raise _refuse(where, "must be a list of weekdays 0 (Monday) to 6 (Sunday)")
            changes[key] = frozenset(item)
        elif key in ("id", "country"):
            if not isinstance(item, str) or not item.strip():
                raise _refuse(where, "must be a non-empty text")
            changes[key] = item.strip()
    return replace(facility, **changes)


def parameters_from_json(data: Any, base: SimulationParameters | None = None) -> SimulationParameters:
    """`base` (the defaults) with the values of a JSON object; a bad value is refused with its JSON
    path (e.g. `centers[2].infusions_per_week`) and the rule. `centers` and `facilities` replace the
    lists (a listed id already in `base` keeps its unlisted values)."""
    parameters = base or SimulationParameters()
    if not isinstance(data, dict):
        raise _refuse("$", "must be a JSON object")
    known = {f.name for f in fields(SimulationParameters)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise _refuse(key, "unknown key")
        if key in PARAMETER_RANGES:
            whole = key not in {"cpsat_time_limit_s"} and not key.endswith(("_rate", "_share"))
            number = _number(value, key, PARAMETER_RANGES[key], whole=whole)
            changes[key] = int(number) if whole else float(number)
        elif key == "start_date":
            try:
                changes[key] = date.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                changes[key] = None
            if changes[key] is None:
                raise _refuse(key, "must be an ISO date (YYYY-MM-DD)")
        elif key == "screening_days":
            if not isinstance(value, list) or len(value) != 3:
                raise _refuse(key, "must be a list [min, mode, max] of days")
            triple = tuple(
                int(_number(v, f"{key}[{i}]", SCREENING_DAYS_RANGE, whole=True)) for i, v in enumerate(value)
            )
            if not triple[0] <= triple[1] <= triple[2]:
                raise _refuse(key, "must be in increasing order (min ≤ mode ≤ max)")
            changes[key] = triple
        elif key in ("manufacturing_spread_days", "qc_spread_days"):
            pair = _int_pair(value, key, SPREAD_DAYS_RANGE)
            if pair[0] > 0 or pair[1] < 0:
                raise _refuse(key, "must be [low ≤ 0, high ≥ 0]")
            changes[key] = pair
        elif key == "public_holidays":
            if not isinstance(value, bool):
                raise _refuse(key, "must be true or false")
            changes[key] = value
        elif key == "ld_to_infusion_gap_days":
            changes[key] = _int_pair(value, key, GAP_DAYS_RANGE)
        elif key == "centers":
            if not isinstance(value, list) or not value:
                raise _refuse(key, "must be a non-empty list")
            centers = {c.id: c for c in parameters.centers}
            changes[key] = tuple(
                _center(item, f"centers[{i}]", centers.get(str(item.get("id"))) if isinstance(item, dict) else None)
                for i, item in enumerate(value)
            )
        elif key == "facilities":
            if not isinstance(value, list) or not value:
                raise _refuse(key, "must be a non-empty list")
            facilities = {f.id: f for f in parameters.facilities}
            changes[key] = tuple(
                _facility(
                    item, f"facilities[{i}]", facilities.get(str(item.get("id"))) if isinstance(item, dict) else None
                )
                for i, item in enumerate(value)
            )
    result = replace(parameters, **changes)
    parameters_check(result)
    return result


def parameters_check(parameters: SimulationParameters) -> None:
    """Rules across parameters: unique ids, every center ships to every facility, the branch shares
    sum to 1, the nominal durations stay ≥ 1 day with their spread."""
    for kind, ids in (
        ("centers", [c.id for c in parameters.centers]),
        ("facilities", [f.id for f in parameters.facilities]),
    ):
        if len(set(ids)) != len(ids):
            raise _refuse(kind, "ids must be unique")
    if not parameters.centers or not parameters.facilities:
        raise _refuse("centers", "at least one center and one facility are needed")
    facility_ids = {f.id for f in parameters.facilities}
    for index, center in enumerate(parameters.centers):
        missing = facility_ids - set(center.ship_days)
        if missing:
            raise _refuse(f"centers[{index}].ship_days", f"has no shipping days to {', '.join(sorted(missing))}")
    countries = holidays.list_supported_countries()
    places: list[tuple[str, str]] = [(f"centers[{i}].country", c.country) for i, c in enumerate(parameters.centers)]
    places += [(f"facilities[{i}].country", f.country) for i, f in enumerate(parameters.facilities)]
    for where, country in places:
        if country not in countries:
            raise _refuse(where, f"unknown country code {country!r} (ISO 3166-1 alpha-2)")
    shares = parameters.remanufacture_share + parameters.re_apheresis_share + parameters.no_infusion_share
    if abs(shares - 1) > 1e-9:
        raise _refuse("remanufacture_share", f"the three failure branch shares must sum to 1, got {shares:g}")
    for index, facility in enumerate(parameters.facilities):
        if facility.manufacturing_days + parameters.manufacturing_spread_days[0] < 1:
            raise _refuse(f"facilities[{index}].manufacturing_days", "with its spread, must stay ≥ 1 day")
        if facility.qc_days + parameters.qc_spread_days[0] < 0:
            raise _refuse(f"facilities[{index}].qc_days", "with its spread, must stay ≥ 0 days")
    if not parameters.screening_days[0] <= parameters.screening_days[1] <= parameters.screening_days[2]:
        raise _refuse("screening_days", "must be in increasing order (min ≤ mode ≤ max)")
