"""Typed domain errors: each carries a stable machine code and a message a coordinator understands."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal the domain can give; adapters map it to a form error, 4xx or exit 2."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidInput(DomainError):
    """Input that can never be valid (wrong type, out of range, unknown key)."""

    code = "invalid_input"
