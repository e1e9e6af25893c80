"""The screening form (page) and the calculator forms generated from the registry's input description."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.clinical.services import LabObservationInput
from cartrial.apps.fields import CenterDateTimeField, at_center, center_wall_clock, plausible_number_field
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.eligibility import (
    EULAR_ACR_2019_CRITERIA,
    IMMUNOSUPPRESSANTS,
    ORGAN_DOMAINS,
    SLEDAI2K_DESCRIPTORS,
)
from cartrial.domain.lab_catalogue import ANALYTES, unit_label
from cartrial.domain.quantities import ANA_TITER
from cartrial.domain.scores.input_fields import (
    BooleanInput,
    ChoiceInput,
    ChoiceListInput,
    InputField,
    IntegerInput,
    NumberInput,
    RecordListInput,
)
from cartrial.domain.screening import LabFact
from cartrial.domain.text import protocol_text
from cartrial.protocols import Protocol

TRISTATE = [("", _("Not assessed")), ("yes", _("Yes")), ("no", _("No"))]

# (list item, its "section complete" checkbox, label, choices)
LIST_SECTIONS = (
    ("sledai2k_descriptors", _("SLEDAI-2K descriptors present over the look-back"), SLEDAI2K_DESCRIPTORS),
    (
        "eular_acr_criteria",
        _("2019 EULAR/ACR criteria ever present (no likelier cause than SLE)"),
        EULAR_ACR_2019_CRITERIA,
    ),
    ("organ_involvement", _("Organ domains with active lupus (BILAG-2004)"), ORGAN_DOMAINS),
    ("immunosuppressants_failed", _("Treatments failed, each ≥ 3 months at adequate dose"), IMMUNOSUPPRESSANTS),
)
BOOLEAN_ITEMS = (
    ("glucocorticoids_failed", _("Inadequate response to glucocorticoids")),
    ("infection_active", _("Active infection at screening")),
    ("prior_cart", _("Any CAR-T cell therapy before")),
    ("prior_gene_therapy", _("Any gene therapy before")),
)
LABS = (
    ("creatinine", _("Serum creatinine (IDMS)"), [(u, _(unit_label(u))) for u in ("umol/L", "mg/dL")]),
    ("cd3", _("CD3+ T cells"), [("cells/µL", _(unit_label("cells/µL")))]),
)


def _complete_name(item: str) -> str:
    return f"{item}_complete"


class ScreeningForm(forms.Form):
    """Screening data and labs; an item left empty is missing data, never "absent"."""

    sex = forms.ChoiceField(
        label=_("Sex (for CKD-EPI 2021)"),
        required=False,
        choices=[("", _("Not assessed")), ("female", _("Female")), ("male", _("Male"))],
    )
    # The catalogue's range (domain/quantities.py), checked here too so the page lists every error at once.
    ana_titer = forms.IntegerField(
        label=_("Highest ANA titre ever, 1:N (0 if negative)"),
        required=False,
        min_value=int(ANA_TITER.minimum),
        max_value=int(ANA_TITER.maximum),
    )
    sledai2k_lookback_days = forms.TypedChoiceField(
        label=_("SLEDAI-2K look-back"),
        choices=[(10, _("10 days")), (30, _("30 days"))],
        coerce=int,
        initial=30,
    )
    reason = forms.CharField(
        label=_("Reason for the correction (required once saved)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, protocol: Protocol, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item, label, choices in LIST_SECTIONS:
            self.fields[item] = forms.MultipleChoiceField(
                label=label,
                required=False,
                choices=[(choice, gettext(clinical_label(choice))) for choice in choices],
                widget=forms.CheckboxSelectMultiple(attrs={"class": "checks"}),
            )
            self.fields[_complete_name(item)] = forms.BooleanField(
                label=_("Section assessed: unticked items are absent"), required=False
            )
        for item, label in BOOLEAN_ITEMS:
            self.fields[item] = forms.ChoiceField(label=label, required=False, choices=TRISTATE)
        for analyte, label, units in LABS:
            # The browser's bounds span every unit offered; the domain checks the value in its unit.
            bounds = ANALYTES[analyte].bounds()
            self.fields[f"{analyte}_value"] = plausible_number_field(bounds, label=label, required=False)
            self.fields[f"{analyte}_unit"] = forms.ChoiceField(label=_("Unit"), choices=units, required=False)
            self.fields[f"{analyte}_lower_limit"] = plausible_number_field(
                bounds, label=_("Lab's lower limit of normal"), required=False
            )
            self.fields[f"{analyte}_upper_limit"] = plausible_number_field(
                bounds, label=_("Lab's upper limit of normal"), required=False
            )
            # Typed as the wall-clock time of the center and kept naive until `at_center`: Django's own
            # DateTimeField would read it in the server's zone (UTC) and the time would move at each save.
            self.fields[f"{analyte}_sampled_at"] = CenterDateTimeField(
                label=_("Sampled at (center time)"), required=False
            )
        for criterion in protocol.criteria:
            if criterion.rule is None:
                self.fields[f"attest_{criterion.id}"] = forms.ChoiceField(
                    label=f"{criterion.id} — {protocol_text(criterion.text, language)}",
                    required=False,
                    choices=[("missing", _("Missing data")), ("met", _("Met")), ("not_met", _("Not met"))],
                )
        self.attestation_fields = [name for name in self.fields if name.startswith("attest_")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for analyte, _label, _units in LABS:
            value = cleaned.get(f"{analyte}_value")
            if value is not None and cleaned.get(f"{analyte}_sampled_at") is None:
                self.add_error(f"{analyte}_sampled_at", _("Give the time the sample was taken."))
            if value is not None and not cleaned.get(f"{analyte}_unit"):
                self.add_error(f"{analyte}_unit", _("Give the unit of the value."))
            low, high = cleaned.get(f"{analyte}_lower_limit"), cleaned.get(f"{analyte}_upper_limit")
            if low is not None and high is not None and low > high:
                self.add_error(f"{analyte}_upper_limit", _("The upper limit is below the lower limit."))
        for item, _label, _choices in LIST_SECTIONS:
            if cleaned.get(item) and not cleaned.get(_complete_name(item)):
                self.add_error(
                    _complete_name(item),
                    _("Items are ticked but the section is not marked assessed: tick it when the list is complete."),
                )
        return cleaned

    def screening_data(self) -> dict[str, object]:
        """The cleaned form as the screening data contract (None = not assessed)."""
        cleaned = self.cleaned_data
        data: dict[str, object] = {
            "sex": cleaned.get("sex") or None,
            "ana_titer": cleaned.get("ana_titer"),
            "sledai2k_lookback_days": cleaned.get("sledai2k_lookback_days") or 10,
        }
        for item, _label, _choices in LIST_SECTIONS:
            data[item] = list(cleaned.get(item) or []) if cleaned.get(_complete_name(item)) else None
        for item, _label in BOOLEAN_ITEMS:
            answer = cleaned.get(item)
            data[item] = True if answer == "yes" else False if answer == "no" else None
        return data

    def attestations(self) -> dict[str, str]:
        answers = {name.removeprefix("attest_"): self.cleaned_data.get(name) for name in self.attestation_fields}
        return {criterion: answer for criterion, answer in answers.items() if answer and answer != "missing"}

    def lab_inputs(self, time_zone: str) -> list[LabObservationInput]:
        """The labs entered, with the center's time zone attached to the typed wall-clock time."""
        labs = []
        for analyte, _label, _units in LABS:
            value = self.cleaned_data.get(f"{analyte}_value")
            sampled_at = self.cleaned_data.get(f"{analyte}_sampled_at")
            if value is None or sampled_at is None:
                continue
            labs.append(
                LabObservationInput(
                    analyte=analyte,
                    value=value,
                    unit=self.cleaned_data[f"{analyte}_unit"],
                    sampled_at=at_center(sampled_at, time_zone),
                    lower_limit=self.cleaned_data.get(f"{analyte}_lower_limit"),
                    upper_limit=self.cleaned_data.get(f"{analyte}_upper_limit"),
                )
            )
        return labs

    def lab_facts(self, time_zone: str, stored: dict[str, LabObservation]) -> dict[str, LabFact]:
        """The labs as the preview reads them: the typed ones, else what is stored."""
        facts = {
            analyte: LabFact(row.analyte, row.value, row.unit, row.lower_limit, row.upper_limit)
            for analyte, row in stored.items()
        }
        for item in self.lab_inputs(time_zone):
            facts[item.analyte] = LabFact(item.analyte, item.value, item.unit, item.lower_limit, item.upper_limit)
        return facts

    def sections(self) -> list[dict[str, Any]]:
        """Fields grouped as the page shows them."""

        def pick(*names: str) -> list[forms.BoundField]:
            return [self[name] for name in names if name in self.fields]

        return [
            {"title": _("Patient and serology"), "fields": pick("sex", "ana_titer")},
            {
                "title": _("SLEDAI-2K (disease activity)"),
                "fields": pick("sledai2k_lookback_days", "sledai2k_descriptors", "sledai2k_descriptors_complete"),
            },
            {
                "title": _("2019 EULAR/ACR classification"),
                "fields": pick("eular_acr_criteria", "eular_acr_criteria_complete"),
            },
            {"title": _("Organ involvement"), "fields": pick("organ_involvement", "organ_involvement_complete")},
            {
                "title": _("Treatment history"),
                "fields": pick(
                    "glucocorticoids_failed", "immunosuppressants_failed", "immunosuppressants_failed_complete"
                ),
            },
            {
                "title": _("Infection and prior therapies"),
                "fields": pick("infection_active", "prior_cart", "prior_gene_therapy"),
            },
            *[
                {
                    "title": label,
                    "lab": True,
                    "fields": pick(
                        f"{analyte}_value",
                        f"{analyte}_unit",
                        f"{analyte}_lower_limit",
                        f"{analyte}_upper_limit",
                        f"{analyte}_sampled_at",
                    ),
                }
                for analyte, label, _units in LABS
            ],
            {
                "title": _("Criteria without a rule (investigator's attestation)"),
                "fields": pick(*self.attestation_fields),
            },
        ]


def screening_initial(
    record: ScreeningRecord | None, labs: dict[str, LabObservation], time_zone: str
) -> dict[str, Any]:
    """The form's initial values from what is stored."""
    initial: dict[str, Any] = {}
    if record is not None:
        data = record.data_json
        initial.update(
            {
                "sex": data.get("sex") or "",
                "ana_titer": data.get("ana_titer"),
                "sledai2k_lookback_days": data.get("sledai2k_lookback_days", 10),
            }
        )
        for item, _label, _choices in LIST_SECTIONS:
            if data.get(item) is not None:
                initial[item] = data[item]
                initial[_complete_name(item)] = True
        for item, _label in BOOLEAN_ITEMS:
            initial[item] = {True: "yes", False: "no"}.get(data.get(item), "")
        for criterion, answer in record.attestations_json.items():
            initial[f"attest_{criterion}"] = answer
    for analyte, row in labs.items():
        initial.update(
            {
                f"{analyte}_value": row.value,
                f"{analyte}_unit": row.unit,
                f"{analyte}_lower_limit": row.lower_limit,
                f"{analyte}_upper_limit": row.upper_limit,
                f"{analyte}_sampled_at": center_wall_clock(row.sampled_at, time_zone),
            }
        )
    return initial


# --- calculators -------------------------------------------------------------------------------


def _field_label(spec: InputField) -> str:
    """The input's label in the user's language, with its unit ("Age (years)")."""
    text = gettext(spec.label or spec.description)
    return f"{text} ({gettext(spec.unit)})" if spec.unit else text


def _form_field(spec: InputField) -> forms.Field:
    """A form field for one calculator input, from its declaration (label, unit, range, choices)."""
    label = _field_label(spec)
    help_text = gettext(spec.description) if spec.label else ""
    if isinstance(spec, BooleanInput):
        return forms.BooleanField(label=label, required=False, help_text=help_text)
    if isinstance(spec, IntegerInput):
        if spec.choices is not None:
            unit = f" {gettext(spec.unit)}" if spec.unit else ""
            return forms.TypedChoiceField(
                label=gettext(spec.label or spec.description),
                choices=[(c, f"{c}{unit}") for c in spec.choices],
                coerce=int,
                initial=spec.default,
                help_text=help_text,
            )
        return forms.IntegerField(
            label=label,
            required=spec.required and not spec.nullable,
            initial=spec.default,
            help_text=_("Leave empty if it cannot be performed.") if spec.nullable else help_text,
        )
    if isinstance(spec, NumberInput):
        return forms.FloatField(
            label=label, required=spec.required, widget=forms.NumberInput(attrs={"step": "any"}), help_text=help_text
        )
    if isinstance(spec, ChoiceInput):
        choices = [(c, gettext(spec.choice_label(c))) for c in spec.choices]
        # Choices with their own labels say it all; the description names the codes for API users.
        return forms.ChoiceField(label=label, choices=choices, help_text="" if spec.choice_labels else help_text)
    if isinstance(spec, ChoiceListInput):
        return forms.MultipleChoiceField(
            label=label,
            required=False,
            choices=[(c, gettext(spec.choice_label(c))) for c in spec.choices],
            widget=forms.CheckboxSelectMultiple(attrs={"class": "checks"}),
            help_text=help_text,
        )
    if isinstance(spec, RecordListInput):
        columns = ", ".join(_field_label(column) for column in spec.fields.values())
        return forms.CharField(
            label=label,
            widget=forms.Textarea(attrs={"rows": 4}),
            help_text=_("One record per line: %(keys)s (comma-separated)") % {"keys": columns},
        )
    raise TypeError(f"no form field for {type(spec).__name__}")


class CalculatorForm(forms.Form):
    """Fields generated from the calculator's contract; the registry does the real validation."""

    def __init__(self, *args: Any, inputs: dict[str, InputField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inputs = inputs
        for key, spec in inputs.items():
            self.fields[key] = _form_field(spec)

    def payload(self) -> dict[str, object]:
        """The cleaned form as the calculator's JSON input."""
        payload: dict[str, object] = {}
        for key, spec in self.inputs.items():
            value = self.cleaned_data.get(key)
            if isinstance(spec, RecordListInput):
                payload[key] = _records(str(value or ""), list(spec.fields))
            elif isinstance(spec, ChoiceListInput):
                payload[key] = list(value or [])
            elif isinstance(spec, IntegerInput) and value is None and not spec.nullable and not spec.required:
                continue
            else:
                payload[key] = value
        return payload


def _records(text: str, keys: list[str]) -> object:
    """Lines of comma-separated numbers as records; anything else goes to the registry as typed (it refuses)."""
    if text.strip().startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    records: list[object] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        record: dict[str, object] = {}
        for key, part in zip(keys, parts, strict=False):
            try:
                number = float(part)
                record[key] = int(number) if number.is_integer() else number
            except ValueError:
                record[key] = part
        if len(parts) != len(keys):
            record["_extra"] = line
        records.append(record)
    return records
