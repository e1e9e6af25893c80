"""How long access lasts: a token's lifetime, the end of a membership at the center's midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.access_terms import (
    LAST_DAY_MAX,
    TOKEN_DAYS_DEFAULT,
    TOKEN_DAYS_MAX,
    access_end,
    access_last_day,
    still_valid,
    token_expiry,
)
from cartrial.domain.errors import InvalidInput

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_a_token_lives_the_default_unless_told_and_never_past_the_maximum() -> None:
    assert token_expiry(NOW, None) == NOW + timedelta(days=TOKEN_DAYS_DEFAULT)
    assert token_expiry(NOW, 1) == NOW + timedelta(days=1)
    assert token_expiry(NOW, TOKEN_DAYS_MAX) == NOW + timedelta(days=TOKEN_DAYS_MAX)
    for days in (0, -1, TOKEN_DAYS_MAX + 1):
        with pytest.raises(InvalidInput) as refused:
            token_expiry(NOW, days)
        assert refused.value.item == "days" and refused.value.code == "token_lifetime_out_of_range"


def test_access_ends_at_the_centers_midnight_across_clock_changes() -> None:
    # Paris goes back one hour on 25 October 2026: the midnight after the 25th is 23:00 UTC.
    assert access_end(date(2026, 10, 25), "Europe/Paris") == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert access_end(date(2026, 10, 24), "Europe/Paris") == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert access_end(date(2027, 1, 10), "America/Toronto") == datetime(2027, 1, 11, 5, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput) as refused:
        access_end(LAST_DAY_MAX + timedelta(days=1), "Europe/Paris")
    assert refused.value.item == "last_day"


def test_validity_is_a_comparison_with_now() -> None:
    end = access_end(date(2026, 12, 3), "Europe/Paris")
    assert still_valid(None, NOW)
    assert still_valid(end, end - timedelta(microseconds=1))
    assert not still_valid(end, end)


@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=LAST_DAY_MAX),
    zone=st.sampled_from(["Europe/Paris", "America/Toronto", "Pacific/Auckland", "UTC"]),
)
def test_the_last_day_is_read_back_as_set(day: date, zone: str) -> None:
    end = access_end(day, zone)
    event(f"zone {zone}, end at {end.astimezone(UTC):%H}h UTC")
    assert access_last_day(end, zone) == day
    assert access_last_day(end.astimezone(UTC), zone) == day
