"""The one error every calculator raises on input it cannot score, with one entry per field.

A web form shows each entry beside its field (translated: `field_messages`), the API returns the
list with a 422 (`field_errors`, English, part of the contract) and the CLI prints the one-line
message; so the field names are the contract's input keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, Message, joined

FieldError = tuple[str, Message]


class CalculatorInputError(InvalidInput):
    """Input a calculator refuses: unknown key, wrong type, value out of range, unknown term.

    Each field error is (path, message), the path naming the input key (`anc[2].day`); `item` is
    the path when a single field is at fault.
    """

    code = "calculator_input_invalid"

    def __init__(self, field_errors: Sequence[FieldError]) -> None:
        if not field_errors:
            raise ValueError("a CalculatorInputError needs at least one field error")
        self.field_messages: list[FieldError] = list(field_errors)
        self.field_errors: list[dict[str, str]] = [
            {"field": field, "message": _one_line(str(message))} for field, message in field_errors
        ]
        problems = [
            Message(N_("{field}: {problem}"), {"field": field, "problem": message}) if field else message
            for field, message in field_errors
        ]
        only = field_errors[0][0] if len(field_errors) == 1 and field_errors[0][0] else None
        super().__init__(N_("invalid input: {problems}"), item=only, problems=joined(problems))

    def __str__(self) -> str:
        return _one_line(super().__str__())

    @classmethod
    def for_field(cls, field: str, message: Message) -> CalculatorInputError:
        """The common case of a single offending field."""
        return cls([(field, message)])


class UnknownCalculatorError(CalculatorInputError):
    """A calculator name that is not in the contract (the API may map it to 404)."""

    code = "unknown_calculator"


def _one_line(text: str) -> str:
    """Messages may quote user input; keep them on one line for stderr and logs."""
    return " ".join(text.split())
