"""Kinetic results as entered (form, API, CSV): parsed into `KineticEntry` with precise refusals.

One parser for every way in, so a page, the API and a CSV file refuse the same input with the
same words. Rules (documented in README "Expected biology"):
- markers: `car_t`, `b_cells`, `anti_dsdna` (the kinetic markers of `domain/lab_catalogue.py`);
- units: the one the model compares with (`domain.kinetics.observations.observed_units`), with
  the usual spellings of "micro" (µ, μ, u); any other unit is refused, naming the expected one;
- sample time: an ISO date and time (`2026-03-05 08:30`, `2026-03-05T08:30:00+01:00`) or a
  French one (`05/03/2026 08:30`); without an offset it is read in the center's time zone;
  a date without a time is refused (the time of day places the sample before or after infusion);
- value: a number, empty or `< LoQ` for a result below the limit of quantification (then the
  LoQ is required), or `< 0.5` (the LoQ is then 0.5); a decimal comma is accepted.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cartrial.domain.errors import InvalidInput
from cartrial.domain.kinetics import OBSERVED_MARKERS, Preset
from cartrial.domain.kinetics.observations import observed_units
from cartrial.domain.lab_catalogue import ANALYTES, normalise_unit
from cartrial.domain.text import N_, Message

CSV_COLUMNS: tuple[str, ...] = ("subject", "marker", "sampled_at", "value", "unit", "loq")
REQUIRED_CSV_COLUMNS: tuple[str, ...] = ("marker", "sampled_at", "value", "unit")
# Files from a spreadsheet hold a few thousand rows at most; a bigger upload is a wrong file.
MAX_CSV_BYTES = 2_000_000

_CENSORED_WORDS = {"<loq", "< loq", "<lq", "< lq", "<ldq", "< ldq", "bql", "nd"}
_BELOW = re.compile(r"^<\s*([0-9]+(?:[.,][0-9]+)?)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{2}/\d{2}/\d{4}$")
LOQ = N_("limit of quantification")
_FRENCH_DATETIME = re.compile(r"^(\d{2})/(\d{2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")


LINE_PREFIX = N_("Line {line}: {problem}")
RESULT_PREFIX = N_("Result {index}: {problem}")
MARKER_PREFIX = N_("{marker}: {problem}")


class KineticEntryRefused(InvalidInput):
    """One entered result cannot be used; the message names the line (CSV) or result (API)."""

    code = "kinetics_entry_invalid"

    def __init__(
        self,
        msgid: str,
        /,
        *,
        code: str,
        line: int | None = None,
        index: int | None = None,
        marker_title: str | None = None,
        **params: object,
    ) -> None:
        problem = Message(msgid, params)
        if line is not None:
            super().__init__(LINE_PREFIX, code=code, line=line, problem=problem)
        elif index is not None:
            super().__init__(RESULT_PREFIX, code=code, index=index, problem=problem)
        elif marker_title is not None:
            super().__init__(MARKER_PREFIX, code=code, marker=Message(marker_title), problem=problem)
        else:
            super().__init__(msgid, code=code, item=None, **params)  # a whole entry or file: no single item
        self.line = line


@dataclass(frozen=True)
class KineticEntry:
    """One result ready for the store: aware sample time, the model's unit, value or None (< LoQ)."""

    marker: str
    sampled_at: datetime
    value: float | None
    unit: str
    loq: float | None
    line: int | None = None


def marker_label(marker: str) -> str:
    """The marker's name as the catalogue spells it (a msgid)."""
    return ANALYTES[marker].label


def _number(raw: str, *, field: str, french: bool, fail: _Fail) -> float:
    """A non-negative finite number; `field` is a msgid naming what it is."""
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if french or ("," in text and "." not in text):
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        raise fail(
            N_("the {field} must be a number, got “{raw}”."), "not_a_number", field=Message(field), raw=raw
        ) from None
    if not math.isfinite(number):
        raise fail(
            N_("the {field} must be a finite number, got “{raw}”."), "not_a_number", field=Message(field), raw=raw
        )
    if number < 0:
        raise fail(N_("the {field} cannot be negative ({raw})."), "negative_value", field=Message(field), raw=raw)
    return number


class _Fail:
    """Builds refusals that all carry the same line or result number."""

    def __init__(self, line: int | None, index: int | None, marker_title: str | None = None) -> None:
        self.line = line
        self.index = index
        self.marker_title = marker_title

    def __call__(self, msgid: str, code: str, **params: object) -> KineticEntryRefused:
        return KineticEntryRefused(
            msgid, code=f"kinetics_{code}", line=self.line, index=self.index, marker_title=self.marker_title, **params
        )


def parse_sample_time(raw: str, zone: ZoneInfo, fail: _Fail) -> datetime:
    """An aware datetime from ISO or French text; naive text is read in the center's zone."""
    text = raw.strip()
    if not text:
        raise fail(N_("the sample time is missing."), "missing_time")
    if _DATE_ONLY.match(text):
        raise fail(
            N_("the sample time “{raw}” has no time of day; give it as YYYY-MM-DD HH:MM."), "missing_time", raw=raw
        )
    french = _FRENCH_DATETIME.match(text)
    try:
        if french:
            day, month, year, hour, minute, second = french.groups()
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            N_("the sample time “{raw}” is not a date and time (YYYY-MM-DD HH:MM)."), "bad_time", raw=raw
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def parse_entry(
    fields: Mapping[str, object],
    preset: Preset,
    zone: ZoneInfo,
    *,
    line: int | None = None,
    index: int | None = None,
    marker_title: str | None = None,
    french_numbers: bool = False,
) -> KineticEntry:
    """Check one result given as text or numbers (CSV row, API object, form row)."""
    fail = _Fail(line, index, marker_title)
    marker = str(fields.get("marker") or "").strip().lower()
    if marker not in OBSERVED_MARKERS:
        raise fail(
            N_("unknown marker “{marker}”; use one of {known}."),
            "unknown_marker",
            marker=fields.get("marker") or "",
            known=", ".join(OBSERVED_MARKERS),
        )
    raw_time = fields.get("sampled_at")
    if isinstance(raw_time, datetime):
        sampled_at = raw_time if raw_time.tzinfo is not None else raw_time.replace(tzinfo=zone)
    else:
        sampled_at = parse_sample_time(str(raw_time or ""), zone, fail)
    expected_unit = observed_units(preset)[marker]
    unit = str(fields.get("unit") or "").strip()
    if not unit:
        raise fail(
            N_("the unit is missing; report {marker} in {unit}."), "unknown_unit", marker=marker, unit=expected_unit
        )
    if normalise_unit(unit) != normalise_unit(expected_unit):
        raise fail(
            N_("unit “{unit}” is not accepted for {marker}; report it in {expected}."),
            "unknown_unit",
            unit=unit,
            marker=marker,
            expected=expected_unit,
        )
    raw_loq = fields.get("loq")
    loq: float | None = None
    if raw_loq is not None and str(raw_loq).strip():
        loq = _number(str(raw_loq), field=LOQ, french=french_numbers, fail=fail)
        if loq <= 0:
            raise fail(N_("the limit of quantification must be above 0."), "bad_loq")
    raw_value = fields.get("value")
    value: float | None
    text = "" if raw_value is None else str(raw_value).strip()
    below = _BELOW.match(text)
    if not text or text.lower() in _CENSORED_WORDS:
        value = None
        if loq is None:
            raise fail(N_("the value is missing and no limit of quantification is given."), "missing_value")
    elif below:
        stated = _number(below.group(1), field=LOQ, french=french_numbers, fail=fail)
        if loq is not None and not math.isclose(stated, loq):
            raise fail(
                N_("the value says below {stated} but the LoQ column says {loq}."), "bad_loq", stated=stated, loq=loq
            )
        if stated <= 0:
            raise fail(N_("the limit of quantification must be above 0."), "bad_loq")
        value, loq = None, stated
    else:
        value = _number(text, field=N_("value"), french=french_numbers, fail=fail)
        if value == 0 and loq is None:
            raise fail(
                N_("a value of 0 needs the assay's limit of quantification (it is then below it)."), "missing_value"
            )
    return KineticEntry(marker, sampled_at, value, expected_unit, loq, line)


def parse_csv(content: bytes | str, *, subject_code: str, preset: Preset, zone: ZoneInfo) -> list[KineticEntry]:
    """Every row of a CSV file, or the first refusal naming its line (the header is line 1).

    Comma- or semicolon-separated (a semicolon file may use decimal commas); a `subject` column,
    when present, must name the page's subject on every row.
    """
    if isinstance(content, bytes):
        if len(content) > MAX_CSV_BYTES:
            raise KineticEntryRefused(
                "the file is larger than {size} bytes.", code="kinetics_file_too_large", size=MAX_CSV_BYTES
            )
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise KineticEntryRefused("the file is not UTF-8 text.", code="kinetics_bad_file") from None
    else:
        text = content
    # A lone carriage return (old Mac line end, or a stray byte) would stop the csv module inside a
    # field; every line end is made a newline first, so the file is read the same way it is shown.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if not header_line:
        raise KineticEntryRefused("the file is empty.", code="kinetics_bad_file")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header: list[str] | None = None
    entries: list[KineticEntry] = []
    for number, row in enumerate(_csv_rows(text, delimiter), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            unknown = [name for name in header if name not in CSV_COLUMNS]
            missing = [name for name in REQUIRED_CSV_COLUMNS if name not in header]
            if unknown or missing:
                problems = []
                if missing:
                    problems.append(Message(N_("missing column(s) {columns}"), {"columns": ", ".join(missing)}))
                if unknown:
                    problems.append(Message(N_("unknown column(s) {columns}"), {"columns": ", ".join(unknown)}))
                raise KineticEntryRefused(
                    "{problems}. Expected columns: {columns}.",
                    code="kinetics_bad_header",
                    line=number,
                    problems=problems,
                    columns=",".join(CSV_COLUMNS),
                )
            continue
        if len(row) != len(header):
            raise KineticEntryRefused(
                "{found} fields where the header has {expected}.",
                code="kinetics_bad_row",
                line=number,
                found=len(row),
                expected=len(header),
            )
        fields = dict(zip(header, row, strict=True))
        named = fields.get("subject", "").strip()
        if "subject" in fields and named.upper() != subject_code.upper():
            raise KineticEntryRefused(
                "this row is for subject “{named}”, not {subject}; import each subject's results from its own page.",
                code="kinetics_other_subject",
                line=number,
                named=named,
                subject=subject_code,
            )
        entries.append(parse_entry(fields, preset, zone, line=number, french_numbers=delimiter == ";"))
    if not entries:
        raise KineticEntryRefused("the file has no result rows.", code="kinetics_bad_file")
    return entries


def _csv_rows(text: str, delimiter: str) -> Iterator[list[str]]:
    """The rows of the file; the csv module's one refusal (a field longer than its limit) names its line."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise KineticEntryRefused(
                "a field is longer than {limit} characters.",
                code="kinetics_bad_row",
                line=number + 1,
                limit=csv.field_size_limit(),
            ) from None
        number += 1
        yield row


def entries_from_objects(
    objects: Sequence[Mapping[str, object]], *, subject_code: str, preset: Preset, zone: ZoneInfo
) -> list[KineticEntry]:
    """Results given as JSON objects (API), numbered from 1 in the refusals.

    An object may name its `subject`; it must then be the subject of the URL.
    """
    if not objects:
        raise KineticEntryRefused("there are no results to record.", code="kinetics_missing_value")
    entries = []
    for index, item in enumerate(objects, start=1):
        named = str(item.get("subject") or "").strip()
        if named and named.upper() != subject_code.upper():
            raise KineticEntryRefused(
                "this result is for subject “{named}”, not {subject}.",
                code="kinetics_other_subject",
                index=index,
                named=named,
                subject=subject_code,
            )
        entries.append(parse_entry(item, preset, zone, index=index))
    return entries
