"""Forms for the pathway steps and subject registration; one form per step, shared by pages and API.

`STEP_HANDLERS` maps each step to its form and to the call of its named service, so the web
page and the JSON API validate the same fields and reach the same service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from cartrial.apps.accounts.models import User
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects import services
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import Step
from cartrial.protocols import Protocol

DATE_WIDGET = forms.DateInput(attrs={"type": "date"})


class SubjectCreateForm(forms.Form):
    center = forms.ChoiceField(label=_("Center"))
    family_name = forms.CharField(label=_("Family name"), max_length=100)
    given_names = forms.CharField(label=_("Given names"), max_length=100)
    birth_date = forms.DateField(label=_("Birth date"), widget=DATE_WIDGET)
    hospital_number = forms.CharField(label=_("Hospital number (IPP)"), max_length=30)

    def __init__(self, *args: Any, center_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["center"].choices = center_choices
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
        self.fields["document_version"].choices = [(v, v) for v in versions]


class IncludeForm(forms.Form):
    password = forms.CharField(
        label=_("Your password (electronic signature)"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("By signing: “I confirm this patient meets all eligibility criteria”."),
    )


class ScheduleApheresisForm(forms.Form):
    apheresis_date = forms.DateField(label=_("Planned apheresis date"), widget=DATE_WIDGET)


class CenterDateTimeField(forms.DateTimeField):
    """A date and time as typed at the center: kept naive unless it carries an offset.

    The handler attaches the center's time zone to a naive value (`_at_center`), so a nurse
    types the wall-clock time of her ward and the API may still send an ISO time with offset.
    """

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"})

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


SCAN_HELP = _("Scan the barcode, or type the code with its boxed check character.")


class CollectApheresisForm(forms.Form):
    started_at = CenterDateTimeField(label=_("Collection started at (center time)"))
    ended_at = CenterDateTimeField(label=_("Collection ended at (center time)"))
    volume_ml = forms.FloatField(label=_("Volume collected (mL)"), min_value=0.1)
    tnc_e9 = forms.FloatField(label=_("Total nucleated cells (×10⁹)"), min_value=0, required=False)
    cd3_cells_e9 = forms.FloatField(label=_("CD3+ cells collected (×10⁹)"), min_value=0, required=False)


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
    second_username = forms.CharField(label=_("Second checker (username)"), max_length=150)
    second_bag_code = forms.CharField(label=_("Bag label scanned by the second checker"), max_length=64)
    second_wristband_code = forms.CharField(label=_("Wristband scanned by the second checker"), max_length=64)
    second_password = forms.CharField(label=_("Second checker's password"), widget=forms.PasswordInput)


class RecordDeathForm(forms.Form):
    death_date = forms.DateField(label=_("Date of death"), widget=DATE_WIDGET)
    reason = forms.CharField(label=_("Cause / circumstances"), widget=forms.Textarea(attrs={"rows": 2}))


@dataclass(frozen=True)
class StepContext:
    actor: Actor
    user: User
    subject: Subject
    protocol: Protocol
    language: str


Handler = Callable[[dict[str, Any], StepContext], PathwayEvent]


def _common(ctx: StepContext) -> dict[str, Any]:
    return {
        "actor": ctx.actor,
        "user": ctx.user,
        "subject": ctx.subject,
        "protocol": ctx.protocol,
        "ui_language": ctx.language,
    }


def _infuse(data: dict[str, Any], ctx: StepContext) -> PathwayEvent:
    second = User.objects.filter(username=data["second_username"], is_active=True).first()
    if second is None:
        raise InvalidInput(f"Unknown user '{data['second_username']}'.", code="unknown_checker")
    checks = (
        services.BedsideCheck(ctx.user, data["password"], data["bag_code"], data["wristband_code"]),
        services.BedsideCheck(second, data["second_password"], data["second_bag_code"], data["second_wristband_code"]),
    )
    return services.subject_infuse(**_common(ctx), infused_on=data["infused_on"], checks=checks)


def _at_center_zone(value: datetime | None, center: Center) -> datetime | None:
    """A typed time as an aware instant: naive values are the wall-clock time at `center`."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(center.time_zone))


def _at_center(value: datetime | None, ctx: StepContext) -> datetime | None:
    return _at_center_zone(value, ctx.subject.center)


def _with_times(service: Callable[..., PathwayEvent], *fields: str, times: tuple[str, ...]) -> Handler:
    """Like `_with`, with the named fields read as center times."""

    def handler(data: dict[str, Any], ctx: StepContext) -> PathwayEvent:
        values = {name: data[name] for name in fields}
        values.update({name: _at_center(data.get(name), ctx) for name in times})
        return service(**_common(ctx), **values)

    return handler


def _with(service: Callable[..., PathwayEvent], *fields: str) -> Handler:
    def handler(data: dict[str, Any], ctx: StepContext) -> PathwayEvent:
        return service(**_common(ctx), **{name: data[name] for name in fields})

    return handler


STEP_HANDLERS: dict[Step, tuple[type[forms.Form], Handler]] = {
    Step.START_SCREENING: (
        StartScreeningForm,
        _with(services.subject_start_screening, "document_version", "language", "signed_on"),
    ),
    Step.CONFIRM_ELIGIBILITY: (NoInputForm, _with(services.subject_confirm_eligibility)),
    Step.FAIL_SCREENING: (ReasonForm, _with(services.subject_fail_screening, "reason")),
    Step.INCLUDE: (IncludeForm, _with(services.subject_include, "password")),
    Step.SCHEDULE_APHERESIS: (ScheduleApheresisForm, _with(services.subject_schedule_apheresis, "apheresis_date")),
    Step.COLLECT_APHERESIS: (
        CollectApheresisForm,
        _with_times(
            services.subject_collect_apheresis, "volume_ml", "tnc_e9", "cd3_cells_e9", times=("started_at", "ended_at")
        ),
    ),
    Step.SHIP_MATERIAL: (
        ShipMaterialForm,
        _with_times(
            services.subject_ship_material,
            "courier",
            "shipper_id",
            "condition",
            "scanned_code",
            times=("planned_departure_at", "planned_arrival_at", "actual_departure_at"),
        ),
    ),
    Step.START_MANUFACTURING: (StartManufacturingForm, _with(services.subject_start_manufacturing, "reason")),
    Step.RELEASE_PRODUCT: (ReleaseProductForm, _with(services.subject_release_product, "password", "bag_code")),
    Step.FAIL_MANUFACTURING: (ReasonForm, _with(services.subject_fail_manufacturing, "reason")),
    Step.REMANUFACTURE: (ReasonForm, _with(services.subject_remanufacture, "reason")),
    Step.REPEAT_APHERESIS: (
        RepeatApheresisForm,
        _with(services.subject_repeat_apheresis, "apheresis_date", "reason"),
    ),
    Step.SHIP_PRODUCT: (
        ShipProductForm,
        _with_times(
            services.subject_ship_product,
            "courier",
            "shipper_id",
            "scanned_code",
            "arrival_confirmed",
            times=("planned_departure_at", "planned_arrival_at", "actual_departure_at"),
        ),
    ),
    Step.RECEIVE_PRODUCT: (
        ReceiveProductForm,
        _with_times(services.subject_receive_product, "scanned_code", "storage_location", times=("received_at",)),
    ),
    Step.START_LYMPHODEPLETION: (
        StartLymphodepletionForm,
        _with(services.subject_start_lymphodepletion, "planned_infusion_date"),
    ),
    Step.INFUSE: (InfuseForm, _infuse),
    Step.START_ACUTE_MONITORING: (NoInputForm, _with(services.subject_start_acute_monitoring, "reason")),
    Step.START_FOLLOW_UP: (NoInputForm, _with(services.subject_start_follow_up, "reason")),
    Step.START_LONG_TERM_FOLLOW_UP: (NoInputForm, _with(services.subject_start_long_term_follow_up, "reason")),
    Step.COMPLETE: (NoInputForm, _with(services.subject_complete, "reason")),
    Step.WITHDRAW: (ReasonForm, _with(services.subject_withdraw, "reason")),
    Step.MARK_LOST_TO_FOLLOW_UP: (ReasonForm, _with(services.subject_mark_lost_to_follow_up, "reason")),
    Step.RECORD_DEATH: (RecordDeathForm, _with(services.subject_record_death, "reason", "death_date")),
}


def step_form(step: Step, protocol: Protocol, data: Any = None) -> forms.Form:
    """The form of `step`, bound to `data` when given."""
    form_class = STEP_HANDLERS[step][0]
    if form_class is StartScreeningForm:
        return StartScreeningForm(data, protocol=protocol)
    return form_class(data)
