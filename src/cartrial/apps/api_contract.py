"""The JSON API's shared contract: the one error body, pages of a list, changes since a time.

Every endpoint answers errors in one body (`ErrorOut`), declared on every operation of the
OpenAPI schema by `config/api.py`; every list is a `Page` read with `PageQuery` (`limit`,
`offset`, and `since`: only what an audit entry after that instant created or changed); every
value whose fields depend on the protocol (a form's items, a step's fields) is an object of
JSON scalars whose exact fields an endpoint describes (`described_by`). Keeping these in one
module keeps the API one shape for its clients, whichever app answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db.models import Model, QuerySet
from ninja import Field, Schema
from pydantic import AwareDatetime, field_validator

from cartrial.apps.audit.selectors import entity_ids_changed_since

LIMIT_DEFAULT = 100
LIMIT_MAX = 1000
# No list holds a billion items; a larger offset would overflow the database's integer (a 500
# found by the schema fuzzing: `offset=3086586986713942327296`).
OFFSET_MAX = 1_000_000_000

# The statuses every operation may answer with an `ErrorOut`, and when (config/api.py maps the
# error classes onto them; the OpenAPI schema declares them all on every operation).
ERROR_STATUSES: dict[int, str] = {
    400: "The request cannot be read (not JSON, not a form upload)",
    401: "No valid API token (Authorization: Bearer ct_...)",
    403: "Your role may not do this at this center",
    404: "Not found, or outside your centers",
    409: "A rule of the trial refuses it now (a pathway guard, a wrong stage, a conflict)",
    413: "The request is larger than this operation accepts (refused before it is read; `item` names the file)",
    422: "Invalid input: `item` or `fields` name what is refused, and why",
    500: "A bug: logged with its traceback; the body says nothing more",
    503: "The database cannot be reached for a moment: try again after `Retry-After` seconds",
}

# A value a client may send for a field the protocol declares (a form item, a step's field):
# numbers in the field's unit, text, a date or date-time as ISO text, a yes/no, or nothing.
type FieldValue = str | int | float | bool | None
type FieldValues = dict[str, FieldValue]


class FieldErrorOut(Schema):
    field: str = Field(description="The field refused, as the client named it")
    message: str = Field(description="Why, in the request's language")


class ErrorOut(Schema):
    """Every refusal, whatever the endpoint."""

    code: str = Field(description="A stable machine code (e.g. `unknown_center`, `invalid_input`)")
    message: str = Field(description="The refusal in the request's language (Accept-Language: fr or en)")
    item: str | None = Field(None, description="The one input item refused, when there is one")
    fields: list[FieldErrorOut] | None = Field(None, description="Field-by-field refusals of a form")


def described_by(endpoint: str) -> str:
    """The OpenAPI description of a value whose fields the protocol declares."""
    return f"JSON scalars keyed by field name; each field's type, unit and plausible range: `GET {endpoint}`."


class PageQuery(Schema):
    """How much of a list to read: a window (`limit`, `offset`) and, for incremental reads, `since`."""

    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description=f"At most this many items (1 to {LIMIT_MAX})")
    offset: int = Field(
        0,
        ge=0,
        le=OFFSET_MAX,
        description=f"Skip this many items (the previous page's `next_offset`; at most {OFFSET_MAX})",
    )
    since: AwareDatetime | None = Field(
        None,
        description="Only what was created or changed after this instant (ISO 8601 with its offset, "
        "e.g. 2026-12-01T08:00:00+01:00): the audit trail says what changed",
    )

    @field_validator("since")
    @classmethod
    def _since_in_utc(cls, since: datetime | None) -> datetime | None:
        """The instant in UTC: the database compares times in UTC, and PostgreSQL refuses an offset
        beyond ±15:59 that ISO 8601 allows (found by the schema fuzz: 500 on +21:48)."""
        if since is None:
            return None
        try:
            return since.astimezone(UTC)
        except OverflowError:
            raise ValueError("the instant is before year 1 in UTC") from None


class Page[T](Schema):
    """One window of a list, in a stable order."""

    items: list[T]
    total: int = Field(description="How many items the whole list holds (with the same filters)")
    next_offset: int | None = Field(description="The `offset` of the next page; null on the last one")


def paged[R, T](rows: Sequence[R] | QuerySet[Any], page: PageQuery, out: Callable[[R], T]) -> Page[T]:
    """The window `page` asks of `rows` (a list or a query set in a stable order), each row made
    an item by `out`. A query set is counted and sliced by the database."""
    total = rows.count() if isinstance(rows, QuerySet) else len(rows)
    window = list(rows[page.offset : page.offset + page.limit])
    following = page.offset + page.limit
    return Page[T](items=[out(r) for r in window], total=total, next_offset=following if following < total else None)


def changed_since[M: Model](
    rows: QuerySet[M], entity: str, since: datetime | None, *, field: str = "pk"
) -> QuerySet[M]:
    """`rows` narrowed to those an audit entry of `entity` after `since` created or changed
    (unchanged when `since` is None). `field` is the model field the entries name as entity id."""
    if since is None:
        return rows
    return rows.filter(**{f"{field}__in": list(entity_ids_changed_since(entity, since))})
