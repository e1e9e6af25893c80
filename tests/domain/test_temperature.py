"""Logger files in their usual dialects, garbage refused by line, and excursion boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.temperature import (
    DEFAULT_TOLERATED_DURATION_MIN,
    ExcursionSide,
    TemperatureLimits,
    TemperatureLimitsError,
    TemperatureLogError,
    TemperatureReading,
    TemperatureUnit,
    detect_excursions,
    fahrenheit_to_celsius,
    find_logging_gaps,
    parse_temperature_log,
)

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
CRYO = TemperatureLimits(min_temperature_c=-196.0, max_temperature_c=-120.0)
FRESH = TemperatureLimits(min_temperature_c=2.0, max_temperature_c=8.0, tolerated_duration_min=30.0)


def series(*temperatures_c: float, step_min: float = 5.0) -> list[TemperatureReading]:
    return [
        TemperatureReading(T0 + timedelta(minutes=i * step_min), value, i + 1) for i, value in enumerate(temperatures_c)
    ]


# ---- parsing ---------------------------------------------------------------------------------

EXPECTED_UTC = [datetime(2026, 3, 2, 7, 0, tzinfo=UTC), datetime(2026, 3, 2, 7, 5, tzinfo=UTC)]


@pytest.mark.parametrize(
    "content",
    [
        "2026-03-02T08:00:00+01:00,-150.5\n2026-03-02T08:05:00+01:00,-149\n",
        "2026-03-02T07:00:00Z;-150,5\n2026-03-02T07:05:00Z;-149\n",
        "\ufeffTimestamp;Temperature (°C)\r\n\r\n2026-03-02 08:00:00;-150,5\r\n\r\n2026-03-02 08:05;-149,0\r\n",
        "Date/heure\tTempérature\n02/03/2026 08:00\t-150,5\n02/03/2026 08:05:00\t-149\n",
        '"time","temperature"\n"2026-03-02T08:00+01:00","-150.5"\n"2026-03-02T08:05+01:00","-149"\n',
        '2026-03-02T08:00+01:00,"-150,5"\n2026-03-02T08:05+01:00,"-149,0"\n',
        "2026-03-02T08:00:00.000+0100;−150,5;\n2026-03-02T08:05:00.000+0100;−149;\n",
        b"Time;Temp \xb0C\n2026-03-02T07:00Z;-150,5\n2026-03-02T07:05Z;-149\n",
        "\ufeff2026-03-02T08:00:00+01:00,-150.5\n\n\n2026-03-02T08:05:00+01:00,-149\n\n",
    ],
    ids=[
        "iso-comma",
        "utc-semicolon-decimal-comma",
        "bom-header-crlf-naive",
        "tab-day-first",
        "quoted",
        "quoted-decimal-comma",
        "unicode-minus-trailing-separator",
        "cp1252-bytes",
        "bom-no-header-blank-lines",
    ],
)
def test_usual_variants_give_the_same_readings(content: str | bytes) -> None:
    log = parse_temperature_log(content, naive_time_zone=PARIS)
    assert [reading.at for reading in log.readings] == EXPECTED_UTC
    assert [reading.temperature_c for reading in log.readings] == [-150.5, -149.0]
    assert log.source_unit is TemperatureUnit.CELSIUS


@pytest.mark.parametrize(
    "header", ["Time,Temp (°F)", "Time,Temperature °F", "time,degF", "Time,Temp [F]", "Time,Temp ºF"]
)
def test_fahrenheit_header_is_converted(header: str) -> None:
    log = parse_temperature_log(f"{header}\n2026-03-02T07:00Z,41\n2026-03-02T07:05Z,-238\n")
    assert log.source_unit is TemperatureUnit.FAHRENHEIT
    assert [r.temperature_c for r in log.readings] == pytest.approx([5.0, -150.0])


def test_fahrenheit_conversion_fixed_points() -> None:
    assert fahrenheit_to_celsius(32.0) == 0.0
    assert fahrenheit_to_celsius(212.0) == 100.0
    assert fahrenheit_to_celsius(-40.0) == -40.0


def test_line_numbers_count_blank_and_header_lines() -> None:
    log = parse_temperature_log("time;temp\n\n2026-03-02T07:00Z;5\n\n2026-03-02T07:05Z;6\n")
    assert [r.line_number for r in log.readings] == [3, 5]


@pytest.mark.parametrize(
    ("content", "line_number", "code"),
    [
        ("", None, "temperature_log_empty"),
        ("\n\n  \n", None, "temperature_log_empty"),
        ("time;temp\n", None, "temperature_log_empty"),
        ("2026-03-02T07:00Z;5\n2026-03-02T07:05Z;Err\n", 2, "temperature_log_value"),
        ("2026-03-02T07:00Z;5\n2026-03-02T07:05Z;\n", 2, "temperature_log_value"),
        ("2026-03-02T07:00Z;5\n2026-03-02T07:05Z;nan\n", 2, "temperature_log_value"),
        ("2026-03-02T07:00Z;5\n2026-03-02T07:05Z;1e3\n", 2, "temperature_log_value"),
        ("2026-03-02T07:00Z;-300\n", 1, "temperature_log_value"),
        ("2026-03-02T07:00Z,5,5\n", 1, "temperature_log_columns"),
        ("2026-03-02T07:00Z;5\n2026-03-02T07:05Z\n", 2, "temperature_log_columns"),
        ("2026-03-02T07:00Z;5;6\n", 1, "temperature_log_columns"),
        ("time;temp\n2026-03-02T07:00Z;5\nSerial;1234\n", 3, "temperature_log_timestamp"),
        ("2026-03-02T07:00Z;5\nyesterday;5\n", 2, "temperature_log_timestamp"),
        ("2026-03-02T07:00Z;5\n2026-02-30T07:00Z;5\n", 2, "temperature_log_timestamp"),
        ("2026-03-02;5\n", 1, "temperature_log_timestamp"),
        ("03/13/2026 08:00;5\n", 1, "temperature_log_timestamp"),
        ("2026-03-02 08:00;5\n", 1, "temperature_log_time_zone"),
        ("2026-03-02T07:05Z;5\n2026-03-02T07:00Z;5\n", 2, "temperature_log_order"),
        ("2026-03-02T07:05Z;5\n2026-03-02T08:05+01:00;6\n", 2, "temperature_log_order"),
    ],
)
def test_garbage_is_refused_with_its_line_number(content: str, line_number: int | None, code: str) -> None:
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log(content)
    assert refused.value.code == code
    assert refused.value.line_number == line_number
    assert isinstance(refused.value, InvalidInput)
    if line_number is not None:
        assert str(refused.value).startswith(f"Line {line_number}: ")


def test_local_times_across_daylight_saving_changes() -> None:
    spring_gap = "2026-03-29 01:59;5\n2026-03-29 02:30;5\n"
    with pytest.raises(TemperatureLogError, match="does not exist") as refused:
        parse_temperature_log(spring_gap, naive_time_zone=PARIS)
    assert refused.value.line_number == 2
    autumn_repeat = "2026-10-25 02:50;5\n2026-10-25 02:10;5\n"
    with pytest.raises(TemperatureLogError, match="clocks go back"):
        parse_temperature_log(autumn_repeat, naive_time_zone=PARIS)
    log = parse_temperature_log("2026-03-29 01:59;5\n2026-03-29 03:01;5\n", naive_time_zone=PARIS)
    assert log.readings[1].at - log.readings[0].at == timedelta(minutes=2)
    assert log.readings[0].at.tzinfo is UTC


def test_durations_are_elapsed_time_across_a_clock_change() -> None:
    # 01:50 and 03:10 Paris time on 2026-03-29 are 20 minutes apart, not 80.
    readings = [
        TemperatureReading(datetime(2026, 3, 29, 1, 50, tzinfo=PARIS), 9.0, 1),
        TemperatureReading(datetime(2026, 3, 29, 3, 10, tzinfo=PARIS), 5.0, 2),
    ]
    [excursion] = detect_excursions(readings, FRESH)
    assert excursion.duration_min == 20.0
    assert excursion.tolerated


def test_a_reading_without_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput):
        TemperatureReading(datetime(2026, 3, 2, 7, 0), 5.0, 1)


def test_zone_given_in_the_file_wins_over_the_logger_zone() -> None:
    log = parse_temperature_log("2026-03-02T07:00:00Z;5\n", naive_time_zone=timezone(timedelta(hours=5)))
    assert log.readings[0].at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


# ---- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "tolerated"),
    [(8.0, 2.0, 0.0), (2.0, 2.0, 0.0), (2.0, 8.0, -1.0), (float("nan"), 8.0, 0.0), (2.0, float("inf"), 0.0)],
)
def test_inconsistent_limits_are_refused(low: float, high: float, tolerated: float) -> None:
    with pytest.raises(TemperatureLimitsError):
        TemperatureLimits(low, high, tolerated)


def test_default_tolerance_is_none() -> None:
    assert DEFAULT_TOLERATED_DURATION_MIN == 0.0
    assert CRYO.tolerated_duration_min == 0.0


# ---- excursions ------------------------------------------------------------------------------


def test_readings_on_the_limits_are_within_them() -> None:
    assert detect_excursions(series(-120.0, -196.0, -150.0), CRYO) == []
    assert detect_excursions(series(2.0, 8.0, 5.0), FRESH) == []


def test_just_beyond_a_limit_is_an_excursion() -> None:
    [above] = detect_excursions(series(-150.0, -119.99, -150.0), CRYO)
    assert above.side is ExcursionSide.ABOVE_MAX
    assert above.worst_deviation_c == pytest.approx(0.01)
    [below] = detect_excursions(series(5.0, 1.99, 5.0), FRESH)
    assert below.side is ExcursionSide.BELOW_MIN
    assert below.limit_c == 2.0


def test_excursion_start_end_duration_and_worst_deviation() -> None:
    readings = series(-150.0, -130.0, -110.0, -100.0, -115.0, -125.0, -150.0)
    [excursion] = detect_excursions(readings, CRYO)
    assert excursion.start == T0 + timedelta(minutes=10)
    assert excursion.end == T0 + timedelta(minutes=25)
    assert excursion.last_in_range_before == T0 + timedelta(minutes=5)
    assert excursion.duration_min == 15.0
    assert excursion.worst_temperature_c == -100.0
    assert excursion.worst_deviation_c == 20.0
    assert excursion.worst_at == T0 + timedelta(minutes=15)
    # Each reading held 5 min: (10 + 20 + 5) °C beyond the limit × 5 min.
    assert excursion.exposure_c_min == pytest.approx(175.0)
    assert excursion.reading_count == 3
    assert excursion.first_line_number == 3
    assert not excursion.open_at_end_of_log
    assert not excursion.tolerated


def test_tolerated_duration_boundary() -> None:
    exactly = detect_excursions(series(5.0, 9.0, 9.0, 9.0, 5.0, step_min=10.0), FRESH)
    assert [e.duration_min for e in exactly] == [30.0]
    assert exactly[0].tolerated
    one_second_more = [
        *series(5.0, 9.0, step_min=10.0),
        TemperatureReading(T0 + timedelta(minutes=40, seconds=1), 5.0, 3),
    ]
    [longer] = detect_excursions(one_second_more, FRESH)
    assert longer.duration_min == pytest.approx(30 + 1 / 60)
    assert not longer.tolerated


def test_an_excursion_still_open_at_the_end_of_the_log_is_never_tolerated() -> None:
    [open_excursion] = detect_excursions(series(5.0, 9.0), FRESH)
    assert open_excursion.open_at_end_of_log
    assert open_excursion.duration_min == 0.0
    assert open_excursion.end == open_excursion.start
    assert not open_excursion.tolerated


def test_first_reading_out_of_range_has_no_previous_in_range_time() -> None:
    [excursion] = detect_excursions(series(9.0, 5.0), FRESH)
    assert excursion.last_in_range_before is None
    assert excursion.duration_min == 5.0


def test_crossing_from_one_side_to_the_other_gives_two_excursions() -> None:
    above, below = detect_excursions(series(5.0, 10.0, 0.0, 5.0), FRESH)
    assert (above.side, below.side) == (ExcursionSide.ABOVE_MAX, ExcursionSide.BELOW_MIN)
    assert above.end == below.start
    assert below.worst_deviation_c == 2.0
    assert not above.open_at_end_of_log


def test_several_excursions_are_reported_in_order() -> None:
    excursions = detect_excursions(series(5, 9, 5, 5, 12, 11, 5), FRESH)
    assert [e.worst_temperature_c for e in excursions] == [9, 12]
    assert [e.tolerated for e in excursions] == [True, True]


def test_no_readings_no_excursion() -> None:
    assert detect_excursions([], CRYO) == []


@given(st.lists(st.integers(-200, -100), max_size=60))
def test_every_out_of_range_reading_belongs_to_exactly_one_excursion(values: list[int]) -> None:
    readings = series(*[float(v) for v in values])
    excursions = detect_excursions(readings, CRYO)
    outside = [r for r in readings if not -196 <= r.temperature_c <= -120]
    assert sum(e.reading_count for e in excursions) == len(outside)
    for reading in outside:
        containing = [e for e in excursions if e.start <= reading.at and (reading.at < e.end or e.open_at_end_of_log)]
        assert len(containing) == 1
        assert containing[0].worst_deviation_c >= max(reading.temperature_c + 120, -196 - reading.temperature_c)


# ---- logging gaps ----------------------------------------------------------------------------


def test_logging_gaps_boundary() -> None:
    readings = [*series(-150.0, -150.0, step_min=15.0), TemperatureReading(T0 + timedelta(minutes=46), -150.0, 3)]
    [gap] = find_logging_gaps(readings, max_interval_min=15.0)
    assert (gap.start, gap.end, gap.line_number) == (T0 + timedelta(minutes=15), T0 + timedelta(minutes=46), 3)
    assert gap.duration_min == 31.0
    assert find_logging_gaps(readings, max_interval_min=31.0) == []
    with pytest.raises(TemperatureLimitsError):
        find_logging_gaps(readings, max_interval_min=0)


# ---- files that are not a logger's text; fuzzing: readings or a TemperatureLogError, never another error ----

# The five bytes Windows-1252 leaves undefined: a file holding one is neither UTF-8 nor Windows-1252 text.
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


@pytest.mark.parametrize("byte", CP1252_UNDEFINED, ids=lambda b: f"0x{b:02X}")
def test_bytes_of_no_known_encoding_are_refused_as_not_text(byte: int) -> None:
    content = b"Time;Temp \xb0C\n2026-03-02T07:00Z;-150,5\n2026-03-02T07:05Z;-149" + bytes([byte]) + b"\n"
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log(content)
    assert refused.value.code == "temperature_log_encoding"
    assert refused.value.line_number is None
    assert str(refused.value) == (
        "The file is not a text file in a known encoding (UTF-8 or Windows-1252): is it the logger's CSV export?"
    )


def test_text_with_characters_no_encoding_can_write_is_refused_as_not_text() -> None:
    """Text given as a string (the API's JSON) may hold a lone surrogate, which no file can contain."""
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log("2026-03-02T07:00Z;-150,5\n2026-03-02T07:05Z;-149\udc81\n")
    assert refused.value.code == "temperature_log_encoding"


@pytest.mark.parametrize("value", ["1" * 400, "-" + "9" * 400 + ",5"], ids=["huge", "huge-negative"])
def test_a_temperature_too_large_to_be_a_number_is_refused(value: str) -> None:
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log(f"2026-03-02T07:00Z;5\n2026-03-02T07:05Z;{value}\n")
    assert (refused.value.code, refused.value.line_number) == ("temperature_log_value", 2)


@pytest.mark.parametrize(
    ("time", "zone"),
    [("9999-12-31T23:00", ZoneInfo("America/Toronto")), ("0001-01-01T00:30+01:00", None)],
    ids=["past-year-9999-in-utc", "before-year-1-in-utc"],
)
def test_a_time_that_utc_cannot_hold_is_refused(time: str, zone: ZoneInfo | None) -> None:
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log(f"{time};5\n", naive_time_zone=zone)
    assert (refused.value.code, refused.value.line_number) == ("temperature_log_timestamp", 1)


@pytest.mark.parametrize("quote", ["", '"'], ids=["plain", "unclosed-quote"])
def test_a_cell_longer_than_the_csv_modules_limit_is_refused_with_its_line(quote: str) -> None:
    """The csv module stops at 131072 characters per field; files up to 5 MB are accepted."""
    with pytest.raises(TemperatureLogError) as refused:
        parse_temperature_log(f"2026-03-02T07:00Z;5\n2026-03-02T07:05Z;{quote}{'1' * 200_000}\n")
    assert (refused.value.code, refused.value.line_number) == ("temperature_log_columns", 2)


def _outcome(content: str | bytes, zone: ZoneInfo | None = PARIS) -> str:
    """What the parser made of `content`: 'parsed', or the code of its refusal. Any other exception escapes."""
    try:
        log = parse_temperature_log(content, naive_time_zone=zone)
    except TemperatureLogError as refused:
        return refused.code
    assert log.readings and all(r.at.tzinfo is UTC for r in log.readings)
    assert all(a.at < b.at for a, b in zip(log.readings, log.readings[1:], strict=False))
    return "parsed"


_TIMES = st.sampled_from(
    [
        "2026-03-02T08:00:00+01:00",
        "2026-03-29T02:30",  # does not exist in Paris (clocks move forward)
        "2026-10-25 02:30",  # happens twice in Paris
        "02/03/2026 08:00",
        "2.3.2026 08:00:05",
        "13/13/2026 08:00",
        "2026-02-30T07:00Z",
        "9999-12-31T23:59",
        "0001-01-01T00:00+14:00",
        "2026-03-02",
        "",
        "time",
    ]
)
# Readable values four times out of five, so that whole files are read too (the odd ones need one line).
_GOOD_TEMPERATURES = ["-150,5", "-149.0", "5", "−3,2", '"4,5"']
_TEMPERATURES = st.sampled_from(_GOOD_TEMPERATURES * 5 + ["1e3", "nan", "-300", "", "°C", "9" * 400])
_SEPARATORS = st.sampled_from([";", "\t"] * 8 + [",", "|", " ", ";;", ",,"])
_LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\n\n"])


@st.composite
def logger_files(draw: st.DrawFn) -> str | bytes:
    """Logger-like files: plausible and implausible times, numbers, separators and line ends, a header,
    a BOM, stray quotes, and as bytes in UTF-8, Windows-1252 or with a byte no encoding defines."""
    separator = draw(_SEPARATORS)
    ending = draw(_LINE_ENDS)
    lines = []
    if draw(st.booleans()):
        header = draw(
            st.sampled_from([("Time", "Temp (°C)"), ("timestamp", "temperature_f"), ("Horodatage", "Température")])
        )
        lines.append(separator.join(header))
    moment = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    for _ in range(draw(st.integers(0, 6))):
        moment += timedelta(minutes=draw(st.sampled_from([-5, 0, 5, 15])))
        time = draw(st.one_of(st.just(f"{moment:%Y-%m-%dT%H:%MZ}"), st.just(f"{moment:%d/%m/%Y %H:%M}"), _TIMES))
        fields = [time, draw(_TEMPERATURES)]
        if draw(st.integers(0, 29)) == 0:
            fields.append(draw(st.sampled_from(["", "x", '"'])))
        lines.append(draw(_SEPARATORS) if draw(st.integers(0, 29)) == 0 else separator.join(fields))
    text = ("\ufeff" if draw(st.booleans()) else "") + ending.join(lines) + draw(st.sampled_from(["", ending]))
    encoding = draw(st.sampled_from(["str", "utf-8", "cp1252", "str", "utf-8", "cp1252", "undefined-byte"]))
    if encoding == "str":
        return text
    data = text.encode("utf-8" if encoding == "utf-8" else "cp1252", errors="replace")
    if encoding == "undefined-byte":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + bytes([draw(st.sampled_from(CP1252_UNDEFINED))]) + data[cut:]
    return data


def test_the_file_generator_reaches_both_readings_and_refusals() -> None:
    """The fuzzing below is only worth something if its files are sometimes read and sometimes refused."""
    wide = settings(max_examples=5000, database=None)
    assert _outcome(find(logger_files(), lambda f: _outcome(f) == "parsed", settings=wide)) == "parsed"
    for code in (
        "temperature_log_encoding",
        "temperature_log_timestamp",
        "temperature_log_value",
        "temperature_log_order",
    ):
        assert _outcome(find(logger_files(), lambda f, code=code: _outcome(f) == code, settings=wide)) == code


@settings(max_examples=400, deadline=None)
@given(logger_files(), st.sampled_from([PARIS, ZoneInfo("America/Toronto"), ZoneInfo("Pacific/Kiritimati"), None]))
def test_logger_like_files_give_readings_or_a_refusal(content: str | bytes, zone: ZoneInfo | None) -> None:
    event(_outcome(content, zone))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_readings_or_a_refusal(content: bytes) -> None:
    event(_outcome(content))


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="utf-8") | st.sampled_from(';,\t\r\n\x85\u2028"0123456789:-TZ+/'), max_size=300
    )
)
def test_any_text_gives_readings_or_a_refusal(content: str) -> None:
    event(_outcome(content))
