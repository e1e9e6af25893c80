"""Shipments of apheresis material and of the frozen product: what a dispatch and an arrival must say.

Pure rules the logistics records obey: a courier and a shipper id, a planned arrival after the
planned departure, an arrival after the departure, a transit time within the product's limit
(beyond it the material is still received, and a deviation is opened), and a data-logger file
whose readings meet the transit and are not in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cartrial.domain.errors import InvalidInput

# A time typed or scanned may be a little ahead of the server clock (a scanner's clock), never more.
CLOCK_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class DispatchInput:
    courier: str
    shipper_id: str
    planned_departure_at: datetime
    planned_arrival_at: datetime
    actual_departure_at: datetime
    scanned_code: str
    condition: str = "fresh"
    arrival_confirmed: bool = False


def dispatch_check(data: DispatchInput, now: datetime) -> None:
    """A dispatch names its courier and container, and its times are in order and not in the future."""
    if not data.courier.strip():
        raise InvalidInput("Give the courier.", code="shipment_incomplete", item="courier")
    if not data.shipper_id.strip():
        raise InvalidInput("Give the shipper id.", code="shipment_incomplete", item="shipper_id")
    if data.planned_arrival_at < data.planned_departure_at:
        raise InvalidInput(
            "The planned arrival ({arrival}) is before the planned departure ({departure}).",
            code="shipment_times",
            item="planned_arrival_at",
            arrival=data.planned_arrival_at,
            departure=data.planned_departure_at,
        )
    not_in_future(data.actual_departure_at, now, item="actual_departure_at")


def not_in_future(at: datetime, now: datetime, *, item: str) -> None:
    """A time something happened: at most the clock's tolerance ahead of now."""
    if at > now + CLOCK_TOLERANCE:
        raise InvalidInput(
            "The time {at} UTC is in the future.", code="time_in_future", item=item, at=at.replace(tzinfo=None)
        )


def arrival_check(departed_at: datetime, arrived_at: datetime, now: datetime) -> None:
    """An arrival after the departure, not in the future."""
    if arrived_at < departed_at:
        raise InvalidInput(
            "The arrival time ({arrival}) is before the departure ({departure}).",
            code="shipment_arrival_before_departure",
            item="received_at",
            arrival=arrived_at,
            departure=departed_at,
        )
    not_in_future(arrived_at, now, item="received_at")


def logger_period_check(
    first_reading_at: datetime,
    last_reading_at: datetime,
    *,
    departed_at: datetime,
    arrived_at: datetime | None,
    now: datetime,
) -> None:
    """A data-logger file belongs to its shipment: no reading in the future (beyond the clock's
    tolerance), and its readings overlap the transit (departure to arrival, or to now in transit).

    A logger is started while packing and stopped after unpacking, so readings may begin before the
    departure and end after the arrival; a file that never meets the transit is another shipment's,
    or its clock or time zone is wrong.
    """
    if last_reading_at > now + CLOCK_TOLERANCE:
        raise InvalidInput(
            "The readings run until {last} UTC, in the future: check the logger's clock and time zone.",
            code="temperature_log_in_future",
            item="file",
            last=last_reading_at.astimezone(UTC).replace(tzinfo=None),
        )
    transit_end = arrived_at or now
    if last_reading_at < departed_at or first_reading_at > transit_end:
        raise InvalidInput(
            "The readings ({first} to {last} UTC) do not cover the shipment's transit ({departed} to {arrived} UTC): "
            "is it the logger of this shipment?",
            code="temperature_log_outside_shipment",
            item="file",
            first=first_reading_at.astimezone(UTC).replace(tzinfo=None),
            last=last_reading_at.astimezone(UTC).replace(tzinfo=None),
            departed=departed_at.astimezone(UTC).replace(tzinfo=None),
            arrived=transit_end.astimezone(UTC).replace(tzinfo=None),
        )


def transit_hours_beyond_limit(
    collection_ended_at: datetime, received_at: datetime, limit_hours: float | None
) -> float | None:
    """Hours from the end of collection to receipt when beyond the product's limit, else None."""
    hours = (received_at - collection_ended_at).total_seconds() / 3600
    if limit_hours is not None and hours > limit_hours:
        return hours
    return None
