"""The calendar's pure parts: the month and week grids, which kinds each role sees, the stable UID,
one event per UID with the done one winning, range events on every day of their range."""

from __future__ import annotations

from datetime import date

from cartrial.domain.calendars import (
    CalendarEvent,
    EventKind,
    events_by_day,
    events_deduplicated,
    kinds_for,
    month_shift,
    month_weeks,
    week_days,
)
from cartrial.domain.roles import Role


def _event(kind: EventKind, start: date, end: date | None = None, **more: object) -> CalendarEvent:
    return CalendarEvent(kind, start, end or start, "BDX-001", "BDX", "BDX", **more)  # type: ignore[arg-type]


def test_a_month_is_whole_weeks_from_monday_covering_every_day_of_it() -> None:
    weeks = month_weeks(2026, 2)  # February 2026 starts on a Sunday
    assert all(len(week) == 7 and week[0].weekday() == 0 for week in weeks)
    days = [day for week in weeks for day in week]
    assert days[0] == date(2026, 1, 26) and days[-1] == date(2026, 3, 1)
    assert {d for d in days if d.month == 2} == {date(2026, 2, n) for n in range(1, 29)}


def test_the_week_of_a_day_runs_monday_to_sunday_across_a_year_end() -> None:
    assert week_days(date(2026, 1, 1)) == [date(2025, 12, 29 + n) for n in range(3)] + [
        date(2026, 1, n) for n in range(1, 5)
    ]


def test_months_shift_across_years() -> None:
    assert month_shift(2026, 1, -1) == (2025, 12)
    assert month_shift(2026, 12, 1) == (2027, 1)
    assert month_shift(2026, 5, -17) == (2024, 12)


def test_each_service_sees_its_kinds_and_the_clinical_team_and_sponsor_everything() -> None:
    assert kinds_for(Role.APHERESIS) == {EventKind.APHERESIS, EventKind.MATERIAL_SHIPPED}
    assert kinds_for(Role.PHARMACIST) == {EventKind.PRODUCT_ARRIVAL, EventKind.THAW, EventKind.INFUSION}
    assert EventKind.MANUFACTURING_START in kinds_for(Role.MANUFACTURING)
    assert EventKind.VISIT not in kinds_for(Role.MANUFACTURING)
    for role in (Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR_ADMIN):
        assert kinds_for(role) == set(EventKind)


def test_the_uid_is_kind_subject_date_and_detail() -> None:
    assert _event(EventKind.INFUSION, date(2026, 3, 2)).uid == "infusion-BDX-001-2026-03-02@cartrial"
    assert _event(EventKind.VISIT, date(2026, 3, 2), detail="M3").uid == "visit-BDX-001-2026-03-02-M3@cartrial"


def test_a_done_event_replaces_the_planned_one_of_the_same_day() -> None:
    planned = _event(EventKind.APHERESIS, date(2026, 3, 2), planned=True)
    done = _event(EventKind.APHERESIS, date(2026, 3, 2))
    other = _event(EventKind.APHERESIS, date(2026, 3, 9), planned=True)
    assert events_deduplicated([planned, other, done]) == [done, other]
    assert events_deduplicated([done, planned]) == [done]


def test_a_range_event_is_on_every_day_of_its_range_only() -> None:
    window = _event(EventKind.VISIT, date(2026, 3, 2), date(2026, 3, 4), detail="M3")
    days = [date(2026, 3, n) for n in range(1, 6)]
    placed = events_by_day([window], days)
    assert [day.day for day in days if placed[day]] == [2, 3, 4]
    assert window.overlaps(date(2026, 3, 4), date(2026, 3, 10)) and not window.overlaps(
        date(2026, 3, 5), date(2026, 3, 9)
    )
