"""Form fields the apps share: times typed at a center, scanned codes, numbers with plausible bounds.

A nurse types the wall-clock time of her ward; the API may send an ISO time with an offset.
`CenterDateTimeField` keeps a naive value naive and `at_center` attaches the center's zone, so
the same form serves both and the stored instant is right whatever the zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, overload
from zoneinfo import ZoneInfo

from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
SCAN_HELP = _("Scan the barcode, or type the code with its boxed check character.")


class CenterDateTimeField(forms.DateTimeField):
    """A date and time as typed at the center: kept naive unless it carries an offset."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        text = str(value).strip().replace(" ", "T", 1)
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(_("Enter a date and time (YYYY-MM-DD HH:MM)."), code="invalid")
        return parsed


def center_wall_clock(value: datetime, time_zone: str) -> datetime:
    """A stored instant as the center's wall-clock time, naive: what a `CenterDateTimeField` shows.

    Given an aware value, Django would show it in the server's zone (UTC); typed back, it would then be
    read as the center's time and move by the zone's offset at each save.
    """
    return value.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


@overload
def at_center(value: datetime, time_zone: str) -> datetime: ...
@overload
def at_center(value: None, time_zone: str) -> None: ...
def at_center(value: datetime | None, time_zone: str) -> datetime | None:
    """A typed time as an aware instant: a naive value is the wall-clock time in `time_zone`."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(time_zone))


def _attribute(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def plausible_number_field(
    bounds: tuple[float, float], *, label: Any, required: bool = True, integer: bool = False
) -> forms.Field:
    """A number whose browser bounds (`min`/`max`) are the catalogue's plausible range
    (`domain/quantities.py`, `domain/lab_catalogue.py`). The form itself does not refuse a value
    outside: the domain does, in its own words and on this field, for the page and the API alike."""
    low, high = bounds
    attrs = {"min": _attribute(low), "max": _attribute(high), "step": "1" if integer else "any"}
    field_class = forms.IntegerField if integer else forms.FloatField
    return field_class(label=label, required=required, widget=forms.NumberInput(attrs=attrs))
