"""Forms of the kinetics pages: one blood sample (up to three markers) and a CSV import.

Both only collect text; `entries.parse_entry` / `entries.parse_csv` apply the one set of rules
shared with the API.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cartrial.apps.biology.entries import MAX_CSV_BYTES, KineticEntry, KineticEntryRefused, parse_entry
from cartrial.apps.biology.presenters import MARKER_TITLES
from cartrial.apps.fields import CenterDateTimeField, at_center
from cartrial.domain.kinetics import OBSERVED_MARKERS, Preset
from cartrial.domain.lab_catalogue import ANALYTES, unit_label


class SampleForm(forms.Form):
    """One sample time and, for each kinetic marker measured on it, value or "< LoQ", unit and LoQ."""

    # The center's wall-clock time, kept naive until `at_center` (Django's DateTimeField reads it in UTC).
    sampled_at = CenterDateTimeField(
        label=_("Sample date and time (center's time zone)"),
        error_messages={"required": _("Give the sample date and time.")},
    )

    def __init__(self, *args: Any, preset: Preset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preset = preset
        for marker in OBSERVED_MARKERS:
            units = ANALYTES[marker].units
            preferred = preset.car_t_unit if marker == "car_t" else units[0]
            ordered = (preferred, *[u for u in units if u != preferred])
            self.fields[f"{marker}_value"] = forms.CharField(
                label=_("Value"),
                required=False,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": _("e.g. 12.5")}),
            )
            self.fields[f"{marker}_below_loq"] = forms.BooleanField(label=_("< LoQ"), required=False)
            self.fields[f"{marker}_unit"] = forms.ChoiceField(
                label=_("Unit"), choices=[(u, _(unit_label(u))) for u in ordered], initial=preferred
            )
            self.fields[f"{marker}_loq"] = forms.CharField(
                label=_("LoQ"),
                required=False,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": _("assay limit")}),
            )

    def marker_rows(self) -> list[dict[str, object]]:
        """Bound fields grouped per marker for the template."""
        return [
            {
                "marker": marker,
                "title": gettext(MARKER_TITLES[marker]),
                "value": self[f"{marker}_value"],
                "below_loq": self[f"{marker}_below_loq"],
                "unit": self[f"{marker}_unit"],
                "loq": self[f"{marker}_loq"],
            }
            for marker in OBSERVED_MARKERS
        ]

    def entries(self, zone: ZoneInfo) -> list[KineticEntry]:
        """The markers filled in, as entries; a refusal names the marker. Call after is_valid()."""
        moment = self.cleaned_data["sampled_at"]
        entries = []
        for marker in OBSERVED_MARKERS:
            value = (self.cleaned_data.get(f"{marker}_value") or "").strip()
            below = self.cleaned_data.get(f"{marker}_below_loq")
            loq = (self.cleaned_data.get(f"{marker}_loq") or "").strip()
            if not value and not below and not loq:
                continue
            if below and value:
                raise KineticEntryRefused(
                    "give either a value or “< LoQ”, not both.",
                    code="kinetics_value_and_censored",
                    marker_title=MARKER_TITLES[marker],
                )
            fields = {
                "marker": marker,
                "sampled_at": at_center(moment, zone.key),
                "value": "" if below else value,
                "unit": self.cleaned_data.get(f"{marker}_unit") or "",
                "loq": loq,
            }
            entries.append(parse_entry(fields, self.preset, zone, marker_title=MARKER_TITLES[marker]))
        if not entries:
            raise KineticEntryRefused(
                "fill in at least one marker (a value, or “< LoQ” with the LoQ).", code="kinetics_missing_value"
            )
        return entries


class ImportForm(forms.Form):
    """A CSV file, or its text pasted."""

    file = forms.FileField(label=_("CSV file"), required=False)
    text = forms.CharField(
        label=_("…or paste the CSV text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
    )

    def content(self) -> bytes:
        """The file's bytes or the pasted text; a form error when neither or too large."""
        upload = self.cleaned_data.get("file")
        if upload is not None:
            if upload.size > MAX_CSV_BYTES:
                raise KineticEntryRefused(
                    "the file is larger than {size} bytes.", code="kinetics_file_too_large", size=MAX_CSV_BYTES
                )
            data: bytes = upload.read()
            return data
        text = self.cleaned_data.get("text") or ""
        if not text.strip():
            raise KineticEntryRefused("choose a CSV file or paste its text.", code="kinetics_bad_file")
        return text.encode("utf-8")
