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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from cartrial.domain.errors import InvalidInput
from cartrial.domain.kinetics import OBSERVED_MARKERS, Preset
from cartrial.domain.kinetics.observations import observed_units
from cartrial.domain.lab_catalogue import ANALYTES, normalise_unit
from cartrial.locale import translator

CSV_COLUMNS: tuple[str, ...] = ("subject", "marker", "sampled_at", "value", "unit", "loq")
REQUIRED_CSV_COLUMNS: tuple[str, ...] = ("marker", "sampled_at", "value", "unit")
# Files from a spreadsheet hold a few thousand rows at most; a bigger upload is a wrong file.
MAX_CSV_BYTES = 2_000_000

_CENSORED_WORDS = {"<loq", "< loq", "<lq", "< lq", "<ldq", "< ldq", "bql", "nd"}
_BELOW = re.compile(r"^<\s*([0-9]+(?:[.,][0-9]+)?)$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{2}/\d{2}/\d{4}$")
_FRENCH_DATETIME = re.compile(r"^(\d{2})/(\d{2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")


class KineticEntryRefused(InvalidInput):
    """One entered result cannot be used; the message names the line (CSV) or result (API)."""

    code = "kinetics_entry_invalid"

    def __init__(self, message: str, *, code: str, line: int | None = None, where: str = "") -> None:
        prefix = ""
        if line is not None:
            prefix = _("Line %(line)d: ") % {"line": line}
        elif where:
            prefix = _("%(where)s: ") % {"where": where}
        super().__init__(prefix + message, code=code)
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


def marker_label(marker: str, language: str) -> str:
    """The marker's name as the catalogue spells it in that language."""
    return translator(language)(ANALYTES[marker].label)


def _number(raw: str, *, field: str, french: bool, fail: _Fail) -> float:
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if french or ("," in text and "." not in text):
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        raise fail(
            _("the %(field)s must be a number, got “%(raw)s”.") % {"field": field, "raw": raw}, "not_a_number"
        ) from None
    if not math.isfinite(number):
        raise fail(
            _("the %(field)s must be a finite number, got “%(raw)s”.") % {"field": field, "raw": raw}, "not_a_number"
        )
    if number < 0:
        raise fail(_("the %(field)s cannot be negative (%(raw)s).") % {"field": field, "raw": raw}, "negative_value")
    return number


class _Fail:
    """Builds refusals that all carry the same line or result number."""

    def __init__(self, line: int | None, where: str) -> None:
        self.line = line
        self.where = where

    def __call__(self, message: str, code: str) -> KineticEntryRefused:
        return KineticEntryRefused(message, code=f"kinetics_{code}", line=self.line, where=self.where)


def parse_sample_time(raw: str, zone: ZoneInfo, fail: _Fail) -> datetime:
    """An aware datetime from ISO or French text; naive text is read in the center's zone."""
    text = raw.strip()
    if not text:
        raise fail(_("the sample time is missing."), "missing_time")
    if _DATE_ONLY.match(text):
        raise fail(
            _("the sample time “%(raw)s” has no time of day; give it as YYYY-MM-DD HH:MM.") % {"raw": raw},
            "missing_time",
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
            _("the sample time “%(raw)s” is not a date and time (YYYY-MM-DD HH:MM).") % {"raw": raw}, "bad_time"
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def parse_entry(
    fields: Mapping[str, object],
    preset: Preset,
    zone: ZoneInfo,
    *,
    line: int | None = None,
    where: str = "",
    french_numbers: bool = False,
) -> KineticEntry:
    """Check one result given as text or numbers (CSV row, API object, form row)."""
    fail = _Fail(line, where)
    marker = str(fields.get("marker") or "").strip().lower()
    if marker not in OBSERVED_MARKERS:
        raise fail(
            _("unknown marker “%(marker)s”; use one of %(known)s.")
            % {"marker": fields.get("marker") or "", "known": ", ".join(OBSERVED_MARKERS)},
            "unknown_marker",
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
            _("the unit is missing; report %(marker)s in %(unit)s.") % {"marker": marker, "unit": expected_unit},
            "unknown_unit",
        )
    if normalise_unit(unit) != normalise_unit(expected_unit):
        raise fail(
            _("unit “%(unit)s” is not accepted for %(marker)s; report it in %(expected)s.")
            % {"unit": unit, "marker": marker, "expected": expected_unit},
            "unknown_unit",
        )
    raw_loq = fields.get("loq")
    loq: float | None = None
    if raw_loq is not None and str(raw_loq).strip():
        loq = _number(str(raw_loq), field=_("limit of quantification"), french=french_numbers, fail=fail)
        if loq <= 0:
            raise fail(_("the limit of quantification must be above 0."), "bad_loq")
    raw_value = fields.get("value")
    value: float | None
    text = "" if raw_value is None else str(raw_value).strip()
    below = _BELOW.match(text)
    if not text or text.lower() in _CENSORED_WORDS:
        value = None
        if loq is None:
            raise fail(_("the value is missing and no limit of quantification is given."), "missing_value")
    elif below:
        stated = _number(below.group(1), field=_("limit of quantification"), french=french_numbers, fail=fail)
        if loq is not None and not math.isclose(stated, loq):
            raise fail(
                _("the value says below %(stated)s but the LoQ column says %(loq)s.") % {"stated": stated, "loq": loq},
                "bad_loq",
            )
        if stated <= 0:
            raise fail(_("the limit of quantification must be above 0."), "bad_loq")
        value, loq = None, stated
    else:
        value = _number(text, field=_("value"), french=french_numbers, fail=fail)
        if value == 0 and loq is None:
            raise fail(
                _("a value of 0 needs the assay's limit of quantification (it is then below it)."), "missing_value"
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
                _("the file is larger than %(size)d bytes.") % {"size": MAX_CSV_BYTES}, code="kinetics_file_too_large"
            )
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise KineticEntryRefused(_("the file is not UTF-8 text."), code="kinetics_bad_file") from None
    else:
        text = content
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if not header_line:
        raise KineticEntryRefused(_("the file is empty."), code="kinetics_bad_file")
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    entries: list[KineticEntry] = []
    for number, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            unknown = [name for name in header if name not in CSV_COLUMNS]
            missing = [name for name in REQUIRED_CSV_COLUMNS if name not in header]
            if unknown or missing:
                problems = []
                if missing:
                    problems.append(_("missing column(s) %(columns)s") % {"columns": ", ".join(missing)})
                if unknown:
                    problems.append(_("unknown column(s) %(columns)s") % {"columns": ", ".join(unknown)})
                raise KineticEntryRefused(
                    "; ".join(problems)
                    + ". "
                    + _("Expected columns: %(columns)s.") % {"columns": ",".join(CSV_COLUMNS)},
                    code="kinetics_bad_header",
                    line=number,
                )
            continue
        if len(row) != len(header):
            raise KineticEntryRefused(
                _("%(found)d fields where the header has %(expected)d.") % {"found": len(row), "expected": len(header)},
                code="kinetics_bad_row",
                line=number,
            )
        fields = dict(zip(header, row, strict=True))
        named = fields.get("subject", "").strip()
        if "subject" in fields and named.upper() != subject_code.upper():
            raise KineticEntryRefused(
                _("this row is for subject “%(named)s”, not %(code)s; import each subject's results from its own page.")
                % {"named": named, "code": subject_code},
                code="kinetics_other_subject",
                line=number,
            )
        entries.append(parse_entry(fields, preset, zone, line=number, french_numbers=delimiter == ";"))
    if not entries:
        raise KineticEntryRefused(_("the file has no result rows."), code="kinetics_bad_file")
    return entries


def entries_from_objects(
    objects: Sequence[Mapping[str, object]], *, subject_code: str, preset: Preset, zone: ZoneInfo
) -> list[KineticEntry]:
    """Results given as JSON objects (API), numbered from 1 in the refusals.

    An object may name its `subject`; it must then be the subject of the URL.
    """
    if not objects:
        raise KineticEntryRefused(_("there are no results to record."), code="kinetics_missing_value")
    entries = []
    for index, item in enumerate(objects, start=1):
        where = _("Result %(n)d") % {"n": index}
        named = str(item.get("subject") or "").strip()
        if named and named.upper() != subject_code.upper():
            raise KineticEntryRefused(
                _("this result is for subject “%(named)s”, not %(code)s.") % {"named": named, "code": subject_code},
                code="kinetics_other_subject",
                where=where,
            )
        entries.append(parse_entry(item, preset, zone, where=where))
    return entries
