"""How long access lasts: an API token's lifetime, a membership's last day.

A token that never expires is a key nobody remembers handing out; a person who left a center keeps
its patients open until someone thinks of them. Both end by themselves, at an instant computed
here once, when the term is set, so that every check is a comparison with the one clock's `now`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cartrial.domain.errors import InvalidInput

# An API token lives this many days unless its creator asks for fewer or more, never more than the
# maximum: a script's token is renewed at least once a year.
TOKEN_DAYS_DEFAULT = 90
TOKEN_DAYS_MAX = 365


def token_expiry(created_at: datetime, days: int | None) -> datetime:
    """When a token created at `created_at` for `days` days (None: the default) stops working."""
    lifetime = TOKEN_DAYS_DEFAULT if days is None else days
    if not 1 <= lifetime <= TOKEN_DAYS_MAX:
        raise InvalidInput(
            "An API token lives from 1 to {maximum} days, not {days}.",
            code="token_lifetime_out_of_range",
            item="days",
            maximum=TOKEN_DAYS_MAX,
            days=lifetime,
        )
    return created_at + timedelta(days=lifetime)


# A last day of access beyond this is a typing error (and past the calendar's end once in UTC).
LAST_DAY_MAX = date(2999, 12, 31)


def access_end(last_day: date, time_zone: str) -> datetime:
    """The instant access given until `last_day` (included) ends: the next midnight at the center."""
    if last_day > LAST_DAY_MAX:
        raise InvalidInput(
            "A last day of access is at the latest {latest}, not {day}.",
            code="last_day_out_of_range",
            item="last_day",
            latest=LAST_DAY_MAX.isoformat(),
            day=last_day.isoformat(),
        )
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ZoneInfo(time_zone))


def access_last_day(ends_at: datetime, time_zone: str) -> date:
    """The last day of access at the center, for an end instant set by `access_end`."""
    return (ends_at.astimezone(ZoneInfo(time_zone)) - timedelta(microseconds=1)).date()


def still_valid(ends_at: datetime | None, now: datetime) -> bool:
    """Whether access (a membership, a token) that ends at `ends_at` (None: never) holds at `now`."""
    return ends_at is None or now < ends_at
