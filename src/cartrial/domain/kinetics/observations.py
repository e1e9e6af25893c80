"""One subject's measurements after infusion, checked before they reach a fit or a flag.

Each observation is (marker, day since infusion, value, unit, limit of quantification). A value
below the LoQ, or no value with a LoQ ("< LoQ" on the report), is censored: the fit uses the
probability of being below the LoQ, never a made-up number (kinetics.md §4.2, M3 likelihood).
Units are not converted here (conversions live in `cartrial.domain.units`); a unit other than
the marker's own is refused with the expected one named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cartrial.domain.kinetics.errors import InvalidObservation
from cartrial.domain.kinetics.parameters import Preset
from cartrial.domain.text import N_, label

# Markers a subject's data can inform, with their clinical units (clinical.md §6).
OBSERVED_MARKERS: tuple[str, ...] = ("car_t", "b_cells", "anti_dsdna")
OBSERVATION_COLUMNS: tuple[str, ...] = ("marker", "day", "value", "unit", "loq")

# Lab reports write "micro" as µ (micro sign), μ (Greek mu) or u; all are the same unit.
_MICRO_SPELLINGS = ("µ", "μ")


def _unit_key(unit: str) -> str:
    key = unit.strip()
    for micro in _MICRO_SPELLINGS:
        key = key.replace(micro, "u")
    return key.lower()


def observed_units(preset: Preset) -> dict[str, str]:
    """The unit each observed marker must be reported in under this preset."""
    return {"car_t": preset.car_t_unit, "b_cells": "cells/µL", "anti_dsdna": "IU/mL"}


@dataclass(frozen=True)
class Observation:
    """One measurement; `value` is None when the report only says "below the LoQ"."""

    marker: str
    day: float
    value: float | None
    unit: str
    loq: float | None

    @property
    def censored(self) -> bool:
        """True when the measurement is only known to be below its limit of quantification."""
        return self.value is None or (self.loq is not None and self.value < self.loq)

    @property
    def upper_bound(self) -> float:
        """The value, or the LoQ for a censored measurement (the most it can be)."""
        if self.censored:
            assert self.loq is not None
            return self.loq
        assert self.value is not None
        return self.value


# The numbers of an observation, as a refusal names them.
_FIELD_NAMES = {
    "day": N_("day (days since infusion)"),
    "loq": N_("limit of quantification"),
    "value": N_("value"),
}


def _number(raw: object, *, field: str, row: int, required: bool) -> float | None:
    name = label(_FIELD_NAMES[field])
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise InvalidObservation("the {field} is missing.", row=row, field=name)
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidObservation("the {field} must be a number, got {raw}.", row=row, field=name, raw=repr(raw))
    try:
        number = float(raw)
    except ValueError:
        raise InvalidObservation(
            "the {field} must be a number, got {raw}.", row=row, field=name, raw=repr(raw)
        ) from None
    if not math.isfinite(number):
        raise InvalidObservation("the {field} must be finite, got {raw}.", row=row, field=name, raw=repr(raw))
    return number


def parse_observation(fields: Mapping[str, object], preset: Preset, *, row: int) -> Observation:
    """Check one record (as read from a CSV row or JSON object) and build the observation."""
    missing = [column for column in ("marker", "day", "value", "unit") if column not in fields]
    if missing:
        raise InvalidObservation("missing column(s): {columns}.", row=row, columns=missing)
    marker = str(fields["marker"] or "").strip()
    if marker not in OBSERVED_MARKERS:
        raise InvalidObservation(
            "unknown marker '{marker}'; use one of {known}.", row=row, marker=marker, known=list(OBSERVED_MARKERS)
        )
    day = _number(fields["day"], field="day", row=row, required=True)
    assert day is not None
    if day < 0:
        raise InvalidObservation(
            "day {day} is before the infusion; days count from infusion (day 0).", row=row, day=day
        )
    expected_unit = observed_units(preset)[marker]
    unit = str(fields["unit"] or "").strip()
    if _unit_key(unit) != _unit_key(expected_unit):
        raise InvalidObservation(
            "unit '{unit}' is not accepted for {marker}; report it in {expected}.",
            row=row,
            unit=unit,
            marker=marker,
            expected=expected_unit,
        )
    loq = _number(fields.get("loq"), field="loq", row=row, required=False)
    if loq is not None and loq <= 0:
        raise InvalidObservation("the limit of quantification must be > 0, got {loq}.", row=row, loq=loq)
    value = _number(fields["value"], field="value", row=row, required=False)
    if value is None and loq is None:
        raise InvalidObservation("the value is missing and no limit of quantification is given.", row=row)
    if value is not None and value < 0:
        raise InvalidObservation(
            "a {marker} level cannot be negative, got {value}.", row=row, marker=marker, value=value
        )
    if value == 0 and loq is None:
        raise InvalidObservation(
            "a value of 0 needs the assay's limit of quantification (it is then below it).", row=row
        )
    return Observation(marker=marker, day=day, value=value, unit=expected_unit, loq=loq)


def parse_observations(records: Iterable[Mapping[str, object]], preset: Preset) -> tuple[Observation, ...]:
    """Check every record (rows numbered from 1) and return the observations sorted by day."""
    observations = [parse_observation(record, preset, row=row) for row, record in enumerate(records, start=1)]
    if not observations:
        raise InvalidObservation("there are no observations to fit.")
    return tuple(sorted(observations, key=lambda observation: (observation.day, observation.marker)))
