"""Data-logger temperature files and excursions against a product's limits.

logistics.md §6 rule 4: time and temperature limits are per product and kept in data (the
protocol file), and the condition log of every hand-off is recorded; §1 (Cryoport) calls it the
"chain of condition". A shipper or freezer logger exports CSV in many dialects, and a misread
file could hide an excursion, so the parser accepts the usual variants and refuses anything else
with the line number instead of skipping it.

Excursion model (sample-and-hold, as logger software reports "time out of range"): an excursion
starts at the first reading outside the limits and ends at the first reading no longer on that
side; a reading equal to a limit is within it. The true start lies between the previous in-range
reading (`last_in_range_before`) and `start`, which bounds the worst case for QA.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Final

from cartrial.domain.errors import InvalidInput
from cartrial.domain.quantities import LOGGER_TEMPERATURE_C, plausible_check
from cartrial.domain.text import N_, Message

DEFAULT_TOLERATED_DURATION_MIN: Final = 0.0
"""No tolerance unless the protocol gives one: logistics.md §3 gives no tolerated excursion
duration for any product and §6 rule 4 keeps limits per product in data, so by default any
reading outside the limits is an excursion to assess."""

ABSOLUTE_ZERO_C: Final = -273.15

_ISO_TIMESTAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_DAY_FIRST_TIMESTAMP: Final = re.compile(
    r"(?P<day>\d{1,2})[/.](?P<month>\d{1,2})[/.](?P<year>\d{4})[ T]"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
)
_NUMBER: Final = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_FAHRENHEIT_MARKS: Final = ("°F", "DEGF", "DEG F", "(F)", "[F]", "FAHRENHEIT", "℉")


class TemperatureLogError(InvalidInput):
    """A logger file we cannot read with certainty; `line_number` is 1-based, as an editor shows."""

    code = "temperature_log_invalid"

    def __init__(
        self, msgid: str, /, *, line_number: int | None = None, code: str | None = None, **params: Any
    ) -> None:
        if line_number is None:
            super().__init__(msgid, code=code, **params)
        else:
            problem = Message(msgid, params)
            super().__init__(N_("Line {line_number}: {problem}"), code=code, line_number=line_number, problem=problem)
        self.line_number = line_number


class TemperatureLimitsError(InvalidInput):
    code = "temperature_limits_invalid"


class TemperatureUnit(StrEnum):
    CELSIUS = "°C"
    FAHRENHEIT = "°F"


@dataclass(frozen=True)
class TemperatureReading:
    """One logged value; the parser gives `at` in UTC so durations hold across clock changes."""

    at: datetime
    temperature_c: float
    line_number: int

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise InvalidInput("A temperature reading needs a time with its time zone.", item="at")


@dataclass(frozen=True)
class TemperatureLog:
    """Readings in time order, in °C whatever the file's unit (`source_unit` says which it was)."""

    readings: tuple[TemperatureReading, ...]
    source_unit: TemperatureUnit


@dataclass(frozen=True)
class TemperatureLimits:
    """A product's allowed range, limits included, and how long an excursion may last unreported."""

    min_temperature_c: float
    max_temperature_c: float
    tolerated_duration_min: float = DEFAULT_TOLERATED_DURATION_MIN

    def __post_init__(self) -> None:
        values = (self.min_temperature_c, self.max_temperature_c, self.tolerated_duration_min)
        if not all(math.isfinite(value) for value in values):
            raise TemperatureLimitsError("Temperature limits and tolerated duration must be numbers.")
        if self.min_temperature_c >= self.max_temperature_c:
            raise TemperatureLimitsError(
                "The minimum temperature ({minimum} °C) must be below the maximum ({maximum} °C).",
                minimum=self.min_temperature_c,
                maximum=self.max_temperature_c,
            )
        if self.tolerated_duration_min < 0:
            raise TemperatureLimitsError("The tolerated excursion duration cannot be negative.")


class ExcursionSide(StrEnum):
    ABOVE_MAX = "above_max"
    BELOW_MIN = "below_min"


@dataclass(frozen=True)
class TemperatureExcursion:
    """One run of readings on the same side outside the limits.

    `worst_deviation_c` is how far the worst reading went beyond the limit; `duration_min` how
    long the excursion lasted; `exposure_c_min` combines both (°C beyond the limit × minutes,
    each reading held until the next). `open_at_end_of_log`: the log stops during the excursion,
    so its end is unknown and it is never tolerated.
    """

    side: ExcursionSide
    limit_c: float
    start: datetime
    end: datetime
    last_in_range_before: datetime | None
    open_at_end_of_log: bool
    worst_temperature_c: float
    worst_deviation_c: float
    worst_at: datetime
    exposure_c_min: float
    reading_count: int
    first_line_number: int
    tolerated: bool

    @property
    def duration_min(self) -> float:
        return _minutes_between(self.start, self.end)


@dataclass(frozen=True)
class LoggingGap:
    """Two consecutive readings further apart than the logger interval allows: an unseen period."""

    start: datetime
    end: datetime
    line_number: int

    @property
    def duration_min(self) -> float:
        return _minutes_between(self.start, self.end)


def parse_temperature_log(content: str | bytes, *, naive_time_zone: tzinfo | None = None) -> TemperatureLog:
    """Parse a logger CSV of `timestamp, temperature`.

    Tolerated: `,`, `;` or tab separator (one per file); decimal comma (with `;`, tab, or quoted); an
    optional header line, whose `°F` marks the column as Fahrenheit (converted); UTF-8 BOM; blank
    lines; ISO-8601 timestamps with or without zone, or `dd/mm/yyyy hh:mm[:ss]`. Timestamps
    without zone are read in `naive_time_zone`, and refused when it is not given. Readings must
    be in strictly increasing time. Anything else is refused with its line number.
    """
    text = logger_file_text(content)
    lines = text.splitlines()
    first_line = next((line for line in lines if line.strip()), None)
    if first_line is None:
        raise TemperatureLogError("The file contains no temperature readings.", code="temperature_log_empty")
    separator = ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    unit = TemperatureUnit.CELSIUS
    readings: list[TemperatureReading] = []
    header_seen = False
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = _split(line, separator, line_number)
        is_first = not header_seen and not readings
        if is_first and not _looks_like_timestamp(fields[0]) and not _NUMBER.fullmatch(_clean_number(fields[1])):
            header_seen = True
            unit = _header_unit(fields[1])
            continue
        at = _parse_timestamp(fields[0], line_number, naive_time_zone).astimezone(UTC)
        temperature_c = _parse_temperature_c(fields[1], unit, line_number)
        if readings and at <= readings[-1].at:
            raise _order_error(at, readings[-1], line_number, local_time=not _has_zone(fields[0]))
        readings.append(TemperatureReading(at, temperature_c, line_number))
    if not readings:
        raise TemperatureLogError("The file has a header but no temperature readings.", code="temperature_log_empty")
    return TemperatureLog(tuple(readings), unit)


def detect_excursions(readings: Sequence[TemperatureReading], limits: TemperatureLimits) -> list[TemperatureExcursion]:
    """Every excursion outside `limits`, in time order, tolerated or not (all are reported)."""
    excursions: list[TemperatureExcursion] = []
    run: list[TemperatureReading] = []
    run_side: ExcursionSide | None = None
    last_in_range: datetime | None = None
    for reading in readings:
        side = _side(reading.temperature_c, limits)
        if run_side is not None and side != run_side:
            excursions.append(_excursion(run, run_side, limits, last_in_range, reading.at))
            run = []
        if side is None:
            last_in_range = reading.at
        else:
            run.append(reading)
        run_side = side
    if run_side is not None:
        excursions.append(_excursion(run, run_side, limits, last_in_range, None))
    return excursions


def find_logging_gaps(readings: Sequence[TemperatureReading], *, max_interval_min: float) -> list[LoggingGap]:
    """Intervals longer than `max_interval_min` between readings: an excursion could hide there."""
    if not max_interval_min > 0:
        raise TemperatureLimitsError("The maximum logging interval must be a positive number of minutes.")
    return [
        LoggingGap(previous.at, reading.at, reading.line_number)
        for previous, reading in itertools.pairwise(readings)
        if _minutes_between(previous.at, reading.at) > max_interval_min
    ]


def fahrenheit_to_celsius(temperature_f: float) -> float:
    return (temperature_f - 32.0) * 5.0 / 9.0


def logger_file_text(content: str | bytes) -> str:
    """The file's text: UTF-8 (BOM or not); Windows-1252 as fallback because logger software on Windows writes `°` so.

    Bytes neither encoding defines (0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in Windows-1252), or text
    holding a lone surrogate (possible in a JSON string, never in a file), mean this is not a logger's text.
    """
    try:
        if isinstance(content, bytes):
            try:
                return content.decode("utf-8-sig")
            except UnicodeDecodeError:
                return content.decode("cp1252")
        content.encode("utf-8")
    except UnicodeError:
        raise TemperatureLogError(
            "The file is not a text file in a known encoding (UTF-8 or Windows-1252): is it the logger's CSV export?",
            code="temperature_log_encoding",
        ) from None
    return content.removeprefix("\ufeff")


def _split(line: str, separator: str, line_number: int) -> list[str]:
    try:
        fields = [field.strip() for field in next(csv.reader([line], delimiter=separator))]
    except csv.Error:
        # The csv module's one refusal here: a field longer than its limit (131072 characters).
        raise TemperatureLogError(
            "a field is longer than {limit} characters: this is not a line of a logger's export.",
            line_number=line_number,
            code="temperature_log_columns",
            limit=csv.field_size_limit(),
        ) from None
    while len(fields) > 2 and not fields[-1]:
        fields.pop()
    if len(fields) == 2:
        return fields
    hint = separator == "," and len(fields) == 3 and fields[2].isdigit()
    if hint:
        raise TemperatureLogError(
            "expected 2 columns (time, temperature) separated by {separator}, found {count}. "
            "If the temperature has a decimal comma, the columns must be separated by ';'.",
            line_number=line_number,
            code="temperature_log_columns",
            separator=repr(separator),
            count=len(fields),
        )
    raise TemperatureLogError(
        "expected 2 columns (time, temperature) separated by {separator}, found {count}.",
        line_number=line_number,
        code="temperature_log_columns",
        separator=repr(separator),
        count=len(fields),
    )


def _header_unit(header: str) -> TemperatureUnit:
    """Fahrenheit only when the header says so: the format is defined in °C (logger exports)."""
    marks = header.upper().replace("º", "°")
    if any(mark in marks for mark in _FAHRENHEIT_MARKS):
        return TemperatureUnit.FAHRENHEIT
    return TemperatureUnit.CELSIUS


def _looks_like_timestamp(field: str) -> bool:
    return bool(_DAY_FIRST_TIMESTAMP.fullmatch(field) or _ISO_TIMESTAMP.match(field))


def _parse_timestamp(field: str, line_number: int, naive_time_zone: tzinfo | None) -> datetime:
    day_first = _DAY_FIRST_TIMESTAMP.fullmatch(field)
    try:
        if day_first:
            moment = _day_first(day_first, line_number)
        elif _ISO_TIMESTAMP.match(field):
            moment = datetime.fromisoformat(field)
        else:
            raise ValueError(field)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: a time at the very edge of the calendar (year 1 or 9999) that UTC cannot hold.
        raise TemperatureLogError(
            "time '{time}' is not ISO-8601 (2026-03-02T08:00:00+01:00) or dd/mm/yyyy hh:mm[:ss].",
            line_number=line_number,
            code="temperature_log_timestamp",
            time=field,
        ) from None
    if naive_time_zone is None:
        raise TemperatureLogError(
            "time '{time}' has no time zone: give the logger's time zone to read this file.",
            line_number=line_number,
            code="temperature_log_time_zone",
            time=field,
        )
    localised = moment.replace(tzinfo=naive_time_zone)
    try:
        instant = localised.astimezone(UTC)
        round_trip = instant.astimezone(naive_time_zone).replace(tzinfo=None)
    except OverflowError:
        raise TemperatureLogError(
            "time '{time}' is not ISO-8601 (2026-03-02T08:00:00+01:00) or dd/mm/yyyy hh:mm[:ss].",
            line_number=line_number,
            code="temperature_log_timestamp",
            time=field,
        ) from None
    if round_trip != moment:
        raise TemperatureLogError(
            "time '{time}' does not exist in the logger's time zone (clocks moved forward).",
            line_number=line_number,
            code="temperature_log_time_zone",
            time=field,
        )
    return localised


def _day_first(match: re.Match[str], line_number: int) -> datetime:
    day, month = int(match["day"]), int(match["month"])
    if month > 12 and day <= 12:
        raise TemperatureLogError(
            "month {month} does not exist: this looks like a month/day/year date. Export the log "
            "with day/month/year or ISO-8601 dates.",
            line_number=line_number,
            code="temperature_log_timestamp",
            month=month,
        )
    return datetime(int(match["year"]), month, day, int(match["hour"]), int(match["minute"]), int(match["second"] or 0))


def _clean_number(field: str) -> str:
    return field.replace("−", "-").replace(" ", "")


def _parse_temperature_c(field: str, unit: TemperatureUnit, line_number: int) -> float:
    number = _clean_number(field)
    if not _NUMBER.fullmatch(number):
        raise TemperatureLogError(
            "temperature '{value}' is not a number.", line_number=line_number, code="temperature_log_value", value=field
        )
    value = float(number.replace(",", "."))
    if not math.isfinite(value):
        raise TemperatureLogError(
            "temperature '{value}' is not a number.", line_number=line_number, code="temperature_log_value", value=field
        )
    temperature_c = fahrenheit_to_celsius(value) if unit is TemperatureUnit.FAHRENHEIT else value
    if temperature_c < ABSOLUTE_ZERO_C:
        raise TemperatureLogError(
            "temperature {value} {unit} is below absolute zero: the file or its unit is wrong.",
            line_number=line_number,
            code="temperature_log_value",
            value=field,
            unit=unit.value,
        )
    try:
        plausible_check(LOGGER_TEMPERATURE_C, temperature_c)
    except InvalidInput as error:
        # The catalogue's words, on the line they are about.
        raise TemperatureLogError(
            error.message.msgid, line_number=line_number, code=error.code, **error.message.params
        ) from None
    return temperature_c


def _has_zone(field: str) -> bool:
    return bool(re.search(r"(Z|[+-]\d{2}:?\d{2})$", field))


def _order_error(
    at: datetime, previous: TemperatureReading, line_number: int, *, local_time: bool
) -> TemperatureLogError:
    previous_line = previous.line_number
    if at == previous.at and local_time:
        error = TemperatureLogError(
            "this time repeats the one on line {previous} (a local hour repeated when clocks go back?): "
            "readings must be in increasing time.",
            line_number=line_number,
            code="temperature_log_order",
            previous=previous_line,
        )
    elif at == previous.at:
        error = TemperatureLogError(
            "this time repeats the one on line {previous}: readings must be in increasing time.",
            line_number=line_number,
            code="temperature_log_order",
            previous=previous_line,
        )
    elif local_time:
        error = TemperatureLogError(
            "this time is earlier than the one on line {previous} (a local hour repeated when clocks go back?): "
            "readings must be in increasing time.",
            line_number=line_number,
            code="temperature_log_order",
            previous=previous_line,
        )
    else:
        error = TemperatureLogError(
            "this time is earlier than the one on line {previous}: readings must be in increasing time.",
            line_number=line_number,
            code="temperature_log_order",
            previous=previous_line,
        )
    return error


def _side(temperature_c: float, limits: TemperatureLimits) -> ExcursionSide | None:
    if temperature_c > limits.max_temperature_c:
        return ExcursionSide.ABOVE_MAX
    if temperature_c < limits.min_temperature_c:
        return ExcursionSide.BELOW_MIN
    return None


def _excursion(
    run: Sequence[TemperatureReading],
    side: ExcursionSide,
    limits: TemperatureLimits,
    last_in_range: datetime | None,
    next_reading_at: datetime | None,
) -> TemperatureExcursion:
    limit_c = limits.max_temperature_c if side is ExcursionSide.ABOVE_MAX else limits.min_temperature_c

    def beyond_c(reading: TemperatureReading) -> float:
        return abs(reading.temperature_c - limit_c)

    worst = max(run, key=beyond_c)
    end = next_reading_at if next_reading_at is not None else run[-1].at
    held_until = [*(reading.at for reading in run[1:]), end]
    exposure_c_min = sum(
        beyond_c(reading) * _minutes_between(reading.at, until) for reading, until in zip(run, held_until, strict=True)
    )
    open_at_end = next_reading_at is None
    duration_min = _minutes_between(run[0].at, end)
    return TemperatureExcursion(
        side=side,
        limit_c=limit_c,
        start=run[0].at,
        end=end,
        last_in_range_before=last_in_range,
        open_at_end_of_log=open_at_end,
        worst_temperature_c=worst.temperature_c,
        worst_deviation_c=beyond_c(worst),
        worst_at=worst.at,
        exposure_c_min=exposure_c_min,
        reading_count=len(run),
        first_line_number=run[0].line_number,
        tolerated=not open_at_end and duration_min <= limits.tolerated_duration_min,
    )


def _minutes_between(start: datetime, end: datetime) -> float:
    """Elapsed minutes; through UTC, because Python subtracts same-zone times by wall clock."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 60.0
