"""Forms of the pathway steps and of subject registration: one form per step, shared by pages and API.

Each step's form is named in the step table (`steps.py`), so the web page and the JSON API
validate the same fields and reach the same effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cartrial.apps.accounts.signing import otp_code_field
from cartrial.apps.fields import DATE_WIDGET, SCAN_HELP, CenterDateTimeField, center_wall_clock, plausible_number_field
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.corrections import CorrectableField, ValueType
from cartrial.domain.quantities import APHERESIS_CD3_E9, APHERESIS_TNC_E9, APHERESIS_VOLUME_ML
from cartrial.domain.scores.input_fields import BooleanInput, ChoiceInput, ChoiceListInput, InputField, IntegerInput
from cartrial.domain.screening import SCREENING_FIELDS
from cartrial.domain.text import format_number
from cartrial.protocols import Protocol

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class SubjectCreateForm(forms.Form):
    center = forms.ChoiceField(label=_("Center"))
    family_name = forms.CharField(label=_("Family name"), max_length=100)
    given_names = forms.CharField(label=_("Given names"), max_length=100)
    birth_date = forms.DateField(label=_("Birth date"), widget=DATE_WIDGET)
    hospital_number = forms.CharField(label=_("Hospital number (IPP)"), max_length=30)

    def __init__(self, *args: Any, center_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["center"]).choices = center_choices
        if len(center_choices) == 1:
            self.fields["center"].initial = center_choices[0][0]


class NoInputForm(forms.Form):
    reason = forms.CharField(label=_("Comment (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


class StartScreeningForm(forms.Form):
    document_version = forms.ChoiceField(label=_("Consent document version"))
    language = forms.ChoiceField(label=_("Language of the consent"), choices=[("fr", "Français"), ("en", "English")])
    signed_on = forms.DateField(label=_("Date the consent was signed"), widget=DATE_WIDGET)

    def __init__(self, *args: Any, protocol: Protocol, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = sorted({d.version for d in protocol.consent_documents}, reverse=True)
        cast(forms.ChoiceField, self.fields["document_version"]).choices = [(v, v) for v in versions]


class IncludeForm(forms.Form):
    password = forms.CharField(
        label=_("Your password (electronic signature)"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("By signing: “I confirm this patient meets all eligibility criteria”."),
    )
    otp_code = otp_code_field()


class ScheduleApheresisForm(forms.Form):
    apheresis_date = forms.DateField(label=_("Planned apheresis date"), widget=DATE_WIDGET)


class CollectApheresisForm(forms.Form):
    started_at = CenterDateTimeField(label=_("Collection started at (center time)"))
    ended_at = CenterDateTimeField(label=_("Collection ended at (center time)"))
    volume_ml = plausible_number_field(APHERESIS_VOLUME_ML.bounds(), label=_("Volume collected (mL)"))
    tnc_e9 = plausible_number_field(APHERESIS_TNC_E9.bounds(), label=_("Total nucleated cells (×10⁹)"), required=False)
    cd3_cells_e9 = plausible_number_field(
        APHERESIS_CD3_E9.bounds(), label=_("CD3+ cells collected (×10⁹)"), required=False
    )


class ShipMaterialForm(forms.Form):
    scanned_code = forms.CharField(label=_("Bag label scanned (DIN)"), max_length=40, help_text=SCAN_HELP)
    courier = forms.CharField(label=_("Courier"), max_length=100)
    shipper_id = forms.CharField(label=_("Shipper id"), max_length=40)
    condition = forms.ChoiceField(
        label=_("Condition"),
        choices=[("fresh", _("Fresh, 2–8 °C")), ("cryopreserved", _("Cryopreserved, LN2 vapour"))],
    )
    planned_departure_at = CenterDateTimeField(label=_("Planned departure (center time)"))
    planned_arrival_at = CenterDateTimeField(label=_("Planned arrival at the lab (center time)"))
    actual_departure_at = CenterDateTimeField(
        label=_("Actual departure (center time)"), required=False, help_text=_("Empty: now.")
    )


class StartManufacturingForm(forms.Form):
    reason = forms.CharField(label=_("Comment (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReleaseProductForm(forms.Form):
    bag_code = forms.CharField(label=_("Product bag label scanned (CoI)"), max_length=40, help_text=SCAN_HELP)
    password = forms.CharField(
        label=_("Your password (electronic signature of the qualified person)"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("By signing: “I release this batch for infusion (qualified person)”."),
    )
    otp_code = otp_code_field()


class RepeatApheresisForm(forms.Form):
    apheresis_date = forms.DateField(label=_("Planned apheresis date"), widget=DATE_WIDGET)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


class ShipProductForm(forms.Form):
    scanned_code = forms.CharField(label=_("Product bag label scanned (CoI)"), max_length=40, help_text=SCAN_HELP)
    courier = forms.CharField(label=_("Courier"), max_length=100)
    shipper_id = forms.CharField(label=_("Shipper id"), max_length=40)
    planned_departure_at = CenterDateTimeField(label=_("Planned departure (center time)"))
    planned_arrival_at = CenterDateTimeField(label=_("Planned arrival at the center (center time)"))
    actual_departure_at = CenterDateTimeField(
        label=_("Actual departure (center time)"), required=False, help_text=_("Empty: now.")
    )
    arrival_confirmed = forms.BooleanField(label=_("The courier confirmed the planned arrival"), required=False)


class ReceiveProductForm(forms.Form):
    scanned_code = forms.CharField(label=_("Product bag label scanned (CoI)"), max_length=40, help_text=SCAN_HELP)
    storage_location = forms.CharField(label=_("Storage location"), max_length=100)
    received_at = CenterDateTimeField(label=_("Received at (center time)"), required=False, help_text=_("Empty: now."))


class StartLymphodepletionForm(forms.Form):
    planned_infusion_date = forms.DateField(label=_("Planned infusion date (D0)"), widget=DATE_WIDGET)


class InfuseForm(forms.Form):
    infused_on = forms.DateField(label=_("Infusion date (D0)"), widget=DATE_WIDGET)
    bag_code = forms.CharField(label=_("Bag label you scanned (CoI or DIN)"), max_length=64)
    wristband_code = forms.CharField(label=_("Wristband you scanned (subject code or CoI)"), max_length=64)
    password = forms.CharField(label=_("Your password"), widget=forms.PasswordInput)
    otp_code = otp_code_field()
    second_username = forms.CharField(label=_("Second checker (username)"), max_length=150)
    second_bag_code = forms.CharField(label=_("Bag label scanned by the second checker"), max_length=64)
    second_wristband_code = forms.CharField(label=_("Wristband scanned by the second checker"), max_length=64)
    second_password = forms.CharField(label=_("Second checker's password"), widget=forms.PasswordInput)
    second_otp_code = otp_code_field(_("Second checker's code from their authenticator app (if enrolled)"))


class RecordDeathForm(forms.Form):
    death_date = forms.DateField(label=_("Date of death"), widget=DATE_WIDGET)
    reason = forms.CharField(label=_("Cause / circumstances"), widget=forms.Textarea(attrs={"rows": 2}))


class ConsentWithdrawalForm(forms.Form):
    withdrawn_on = forms.DateField(label=_("Date of the withdrawal"), widget=DATE_WIDGET)
    reason = forms.CharField(label=_("Reason (as the patient stated it)"), widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(
        label=_("I confirm: the withdrawal ends the participation."),
        required=False,
    )


class NoInfusionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


# --- corrections ----------------------------------------------------------------------------------

_TRISTATE = [("", _("Not assessed")), ("yes", _("Yes")), ("no", _("No"))]


class _TristateField(forms.ChoiceField):
    """A yes/no screening item that may stay unassessed; its value is read as True, False or None."""

    def __init__(self, *, label: StrOrPromise) -> None:
        super().__init__(label=label, required=False, choices=_TRISTATE)


class CorrectionForm(forms.Form):
    """One field of a stored record corrected: the new value (typed as its field), why, and the
    password when the record is signed. The reason is checked by the domain, like the API's."""

    reason = forms.CharField(
        label=_("Reason for the correction"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, spec: CorrectableField, signed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.fields["value"] = _value_field(spec)
        if isinstance(self.fields["value"], forms.MultipleChoiceField):
            self.fields["value_assessed"] = forms.BooleanField(
                label=_("Section assessed: unticked items are absent"), required=False
            )
        self.order_fields(["value", "value_assessed", "reason"])
        if signed:
            self.fields["password"] = forms.CharField(
                label=_("Your password (electronic signature of the corrected record)"),
                required=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                help_text=_("By signing: “I confirm the corrected record”. The signature it replaces is voided."),
            )
            self.fields["otp_code"] = otp_code_field()

    def corrected_value(self) -> object:
        """The value as the correction service reads it (a JSON-like value for a screening item)."""
        value = self.cleaned_data.get("value")
        if self.spec.type is not ValueType.SCREENING_ITEM:
            return value
        if isinstance(self.fields["value"], forms.MultipleChoiceField):
            return list(value or []) if (value or self.cleaned_data.get("value_assessed")) else None
        if isinstance(self.fields["value"], _TristateField):
            return {"yes": True, "no": False}.get(str(value or ""))
        return None if value in ("", None) else value


def _value_field(spec: CorrectableField) -> forms.Field:
    label = _("Corrected value")
    if spec.type is ValueType.INSTANT:
        return CenterDateTimeField(label=_("Corrected date and time (center time)"))
    if spec.type is ValueType.DATE:
        return forms.DateField(label=label, widget=DATE_WIDGET)
    if spec.type in (ValueType.NUMBER, ValueType.OPTIONAL_NUMBER):
        help_text = _("Empty: below the limit of quantification.") if spec.type is ValueType.OPTIONAL_NUMBER else ""
        return forms.CharField(
            label=label, required=False, help_text=help_text, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    if spec.type is ValueType.SCREENING_ITEM:
        return _screening_item_field(SCREENING_FIELDS[spec.name])
    return forms.CharField(label=label, required=False, max_length=100)


def _screening_item_field(item: InputField) -> forms.Field:
    inner = getattr(item, "inner", item)
    label = _("Corrected value")
    if isinstance(inner, ChoiceListInput):
        return forms.MultipleChoiceField(
            label=label,
            required=False,
            choices=[(c, gettext(clinical_label(c))) for c in inner.choices],
            widget=forms.CheckboxSelectMultiple(attrs={"class": "checks"}),
        )
    if isinstance(inner, ChoiceInput):
        return forms.ChoiceField(
            label=label,
            required=False,
            choices=[("", _("Not assessed"))] + [(c, gettext(clinical_label(c))) for c in inner.choices],
        )
    if isinstance(inner, BooleanInput):
        return _TristateField(label=label)
    if isinstance(inner, IntegerInput) and inner.choices:
        return forms.TypedChoiceField(label=label, choices=[(c, str(c)) for c in inner.choices], coerce=int)
    return forms.IntegerField(label=label, required=False)


def correction_initial(spec: CorrectableField, current: object, time_zone: str) -> dict[str, Any]:
    """The form's starting point: the value stored now, as its field shows it."""
    if spec.type is ValueType.INSTANT and isinstance(current, datetime):
        return {"value": center_wall_clock(current, time_zone)}
    if spec.type is ValueType.SCREENING_ITEM:
        if isinstance(current, bool):
            return {"value": "yes" if current else "no"}
        if isinstance(current, list):
            return {"value": current, "value_assessed": True}
    if isinstance(current, float):
        return {"value": format_number(current)}
    return {"value": "" if current is None else current}
