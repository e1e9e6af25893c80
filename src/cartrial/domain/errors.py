"""The one error model: a stable machine code, its parameters, and a message in the user's language.

A `DomainError` is raised with a literal English msgid (its translation is in the gettext
catalog) and keyword parameters: `InvalidInput("{item} must be at most {maximum} {unit}.",
code="value_out_of_range", item=..., maximum=..., unit=...)`. Adapters render it once each:
pages as a form or page error, the API as `{"code", "message"}` (+ `"item"`) with a 4xx status
chosen by the error's class, the CLI as one line and exit 2. `str(error)` is the English text,
which is also what the audit trail keeps.

`item` names the input item the error is about (a form field, an API key, a CSV column), so
forms put the message on that field and the API says which item was refused.

`after_rollback` holds records that must exist even though the refused change was rolled back
(the deviation opened by a wrong scan): the code that runs the action writes them after the
rollback, in their own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cartrial.domain.text import Message


class DomainError(Exception):
    """Base of every refusal; subclasses choose how adapters answer (422, 409, 404, 403)."""

    code: str = "domain_error"

    def __init__(self, msgid: str, /, *, code: str | None = None, item: str | None = None, **params: object) -> None:
        # "{item}" in a msgid names the refused item itself.
        named = item is not None and "{item}" in msgid
        self.message = Message(msgid, {"item": item, **params} if named else params)
        self.params = params
        self.item = item
        self.after_rollback: list[Callable[[], Any]] = []
        if code is not None:
            self.code = code
        super().__init__(self.message.render())

    def __str__(self) -> str:
        return self.message.render()


class InvalidInput(DomainError):
    """Input that can never be valid (wrong type, out of range, unknown key, dates out of order): 422."""

    code = "invalid_input"


class Refused(DomainError):
    """Valid input that a rule of the trial refuses now (wrong state, guard not met, locked): 409."""

    code = "refused"


class NotFound(DomainError):
    """Nothing by that name in the user's scope: 404 (never says whether it exists elsewhere)."""

    code = "not_found"


class AccessDenied(DomainError):
    """The user's role may not do this here: 403, and the attempt is recorded."""

    code = "access_denied"
