"""The booking rules without a database: the lymphodepletion gap from the protocol's window, a line's
busy days, the order of the checks, the proposals skipping holidays and full days."""

from __future__ import annotations

from datetime import date

import pytest

from cartrial.domain.booking import (
    Booked,
    BookingRequest,
    ManufacturingSlot,
    booking_check,
    free_line,
    iso_week,
    lymphodepletion_from_window,
    slots_propose,
)
from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.planning.instance import Center, Facility, Instance

LAB = Facility("LAB", lines=1, manufacturing_days=10, qc_days=7, closed_weekdays=frozenset({5, 6}))
BDX = Center(
    "BDX",
    "FR",
    apheresis_weekdays=frozenset({0, 2}),
    apheresis_per_day=1,
    infusion_weekdays=frozenset({0, 1, 2, 3}),
    infusions_per_week=2,
    ship_days={"LAB": 1},
    closed_dates=frozenset({date(2026, 12, 7)}),
)
INSTANCE = Instance(date(2026, 12, 7), 60, (LAB,), (BDX,), (), 3, (1, 3))


def test_the_gap_to_d0_follows_the_window_of_lymphodepletion_starts() -> None:
    # Starts D-5..D-3 over 3 days: the last day is D-3..D-1, 3 to 1 days before D0.
    assert lymphodepletion_from_window((-5, -3), 3) == (1, 3)
    assert lymphodepletion_from_window((-6, -4), 2) == (3, 5)


def test_a_line_is_busy_for_the_manufacturing_days_only() -> None:
    batches = [ManufacturingSlot("LAB", 1, date(2026, 12, 8))]
    assert free_line(LAB, batches, date(2026, 12, 17)) is None  # day 10 of the culture
    assert free_line(LAB, batches, date(2026, 12, 18)) == 1  # QC does not hold the line
    assert free_line(LAB, batches, date(2026, 11, 28)) == 1  # its 10 days end as the other starts
    assert free_line(LAB, batches, date(2026, 11, 29)) is None


def test_the_manufacturing_slot_is_checked_before_the_apheresis() -> None:
    booked = Booked(batches=[ManufacturingSlot("LAB", 1, date(2026, 12, 10))])
    # The apheresis day is also wrong (a Tuesday), but the missing batch slot is what is said.
    with pytest.raises(Refused) as refused:
        booking_check(
            INSTANCE, booked, BookingRequest("BDX", date(2026, 12, 8), "LAB", date(2026, 12, 10), date(2027, 1, 4))
        )
    assert refused.value.code == "no_manufacturing_slot"


def test_a_valid_request_gives_the_whole_chain() -> None:
    chain = booking_check(
        INSTANCE, Booked(), BookingRequest("BDX", date(2026, 12, 9), "LAB", date(2026, 12, 10), date(2026, 12, 31))
    )
    plan = chain.plan
    assert (plan.release, plan.product_arrival, plan.lymphodepletion_start) == (
        date(2026, 12, 27),
        date(2026, 12, 28),
        date(2026, 12, 28),
    )
    assert chain.line == 1 and iso_week(plan.infusion) == "2026-W53"


def test_a_holiday_is_refused_as_such() -> None:
    with pytest.raises(InvalidInput) as refused:
        booking_check(
            INSTANCE, Booked(), BookingRequest("BDX", date(2026, 12, 7), "LAB", date(2026, 12, 8), date(2026, 12, 28))
        )
    assert (refused.value.code, refused.value.item) == ("holiday", "apheresis")


def test_proposals_skip_holidays_full_days_and_busy_lines() -> None:
    booked = Booked(batches=[ManufacturingSlot("LAB", 1, date(2026, 12, 10))])
    booked.apheresis[("BDX", date(2026, 12, 9))] = 1
    first = slots_propose(INSTANCE, booked, "BDX", date(2026, 12, 7), 1)[0].plan
    # Monday the 7th is closed, Wednesday the 9th full: Monday the 14th, its batch once the line is free.
    assert (first.apheresis, first.manufacturing_start) == (date(2026, 12, 14), date(2026, 12, 21))


def test_a_center_without_capacities_gets_no_proposal() -> None:
    """A center the instance does not hold (no capacities set up) has no slot to propose."""
    assert "TLS" not in {c.id for c in INSTANCE.centers}
    assert slots_propose(INSTANCE, Booked(), "TLS", date(2026, 12, 7)) == []
