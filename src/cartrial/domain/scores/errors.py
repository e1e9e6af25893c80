"""The one error every calculator raises on input it cannot score, with one entry per field.

A web form shows each entry beside its field, the API returns the list with a 422 and the
CLI prints the one-line message; so the field names are the contract's input keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from cartrial.domain.errors import InvalidInput


class CalculatorInputError(InvalidInput):
    """Input a calculator refuses: unknown key, wrong type, value out of range, unknown term."""

    code = "calculator_input_invalid"

    def __init__(self, field_errors: Sequence[tuple[str, str]], *, message: str | None = None) -> None:
        if not field_errors:
            raise ValueError("a CalculatorInputError needs at least one field error")
        self.field_errors: list[dict[str, str]] = [
            {"field": field, "message": _one_line(text)} for field, text in field_errors
        ]
        summary = "; ".join(
            f"{entry['field']}: {entry['message']}" if entry["field"] else entry["message"]
            for entry in self.field_errors
        )
        super().__init__(_one_line(message) if message is not None else f"invalid input: {summary}")

    @classmethod
    def for_field(cls, field: str, message: str) -> CalculatorInputError:
        """The common case of a single offending field."""
        return cls([(field, message)])


class UnknownCalculatorError(CalculatorInputError):
    """A calculator name that is not in the contract (the API may map it to 404)."""

    code = "unknown_calculator"


def _one_line(text: str) -> str:
    """Messages may quote user input; keep them on one line for stderr and logs."""
    return " ".join(text.split())
