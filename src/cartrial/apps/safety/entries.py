"""One reading of an AE's entered values (a page's posted fields, an API body) into the domain's
shape, so both refuse the same value with the same code and item."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cartrial.domain.errors import InvalidInput
from cartrial.domain.safety.adverse_events import ActionTaken, AdverseEventData, Outcome, Seriousness, choice

TRUE_WORDS = {"true", "on", "1", "yes", "oui"}


def _required(raw: Mapping[str, Any], item: str) -> Any:
    value = raw.get(item)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput("{item}: a value is required.", code="item_required", item=item)
    return value


def read_date(value: Any, item: str) -> date | None:
    """A date `YYYY-MM-DD` (empty: None)."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item=item, value=value
        ) from None


def read_instant(value: Any, item: str, time_zone: str) -> datetime | None:
    """A date and time in ISO form; without an offset it is the center's wall-clock time."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date and time (YYYY-MM-DDTHH:MM).", code="invalid_datetime", item=item, value=value
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(time_zone))


def read_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_WORDS


def read_grade(value: Any) -> int:
    try:
        number = float(str(_required({"grade": value}, "grade")).strip())
    except ValueError:
        number = -1
    if not number.is_integer():
        raise InvalidInput(
            "{item}: '{value}' is not a CTCAE grade (1 to 5).", code="item_type", item="grade", value=value
        )
    return int(number)


def read_criteria(values: Iterable[Any]) -> frozenset[Seriousness]:
    return frozenset(Seriousness(choice(Seriousness, v, "seriousness_criteria")) for v in values if str(v).strip())


def read_fields(raw: Mapping[str, Any], time_zone: str, criteria: Iterable[Any]) -> dict[str, Any]:
    """The fields present in `raw`, read (for a correction: only what is given)."""
    readers: dict[str, Callable[[Any], Any]] = {
        "term": lambda v: str(v).strip(),
        "grade": read_grade,
        "start_date": lambda v: read_date(_required({"start_date": v}, "start_date"), "start_date"),
        "end_date": lambda v: read_date(v, "end_date"),
        "serious": read_bool,
        "awareness_at": lambda v: read_instant(v, "awareness_at", time_zone),
        "action": lambda v: ActionTaken(choice(ActionTaken, v, "action")),
        "outcome": lambda v: Outcome(choice(Outcome, v, "outcome")),
    }
    fields = {key: reader(raw[key]) for key, reader in readers.items() if key in raw}
    if "seriousness_criteria" in raw or criteria:
        fields["seriousness_criteria"] = read_criteria(criteria)
    return fields


def read_adverse_event(raw: Mapping[str, Any], time_zone: str, criteria: Iterable[Any]) -> AdverseEventData:
    """A new AE from its entered values: every item the form asks for."""
    for item in ("term", "grade", "start_date", "action", "outcome"):
        _required(raw, item)
    fields = read_fields(raw, time_zone, criteria)
    return AdverseEventData(
        term=fields["term"],
        grade=fields["grade"],
        start_date=fields["start_date"],
        end_date=fields.get("end_date"),
        serious=fields.get("serious", False),
        seriousness_criteria=fields.get("seriousness_criteria", frozenset()),
        awareness_at=fields.get("awareness_at"),
        action=fields["action"],
        outcome=fields["outcome"],
    )
