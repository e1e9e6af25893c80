"""Typed refusals of the kinetics model; each names the offending item so a user can fix it."""

from __future__ import annotations

from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, Message


class KineticsInputError(InvalidInput):
    """Base of every bad input to the kinetics model (parameters, presets, observations)."""

    code = "kinetics_invalid_input"


class UnknownPreset(KineticsInputError):
    """A preset name the model does not define."""

    code = "kinetics_unknown_preset"


class UnknownParameter(KineticsInputError):
    """A parameter name absent from the preset's parameter table."""

    code = "kinetics_unknown_parameter"


class ParameterOutOfRange(KineticsInputError):
    """A parameter value outside its physical range (or not a finite number)."""

    code = "kinetics_parameter_out_of_range"

    def __init__(self, msgid: str, /, *, parameter: str, **params: Any) -> None:
        super().__init__(msgid, item=parameter, **params)
        self.parameter = parameter


class InvalidObservation(KineticsInputError):
    """An observation that cannot be used: bad time, marker, unit, value or limit of quantification."""

    code = "kinetics_invalid_observation"

    def __init__(self, msgid: str, /, *, row: int | None = None, **params: Any) -> None:
        if row is None:
            super().__init__(msgid, **params)
        else:
            super().__init__(N_("Observation {row}: {problem}"), row=row, problem=Message(msgid, params))
        self.row = row


class InvalidSimulationRequest(KineticsInputError):
    """A simulation or cohort request that cannot be run (non-positive horizon, step or size)."""

    code = "kinetics_invalid_request"
