"""Forms of the logistics actions, shared by pages and the API (same fields, same service)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cartrial.apps.accounts.models import User
from cartrial.apps.audit.services import Actor
from cartrial.apps.logistics import services
from cartrial.apps.logistics.models import Shipment
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.forms import SCAN_HELP, CenterDateTimeField, _at_center_zone
from cartrial.apps.subjects.models import Subject
from cartrial.domain.logistics_actions import LogisticsAction
from cartrial.locale import render
from cartrial.protocols import Protocol


class ReceiveMaterialForm(forms.Form):
    scanned_code = forms.CharField(label=_("Bag label scanned (DIN)"), max_length=40, help_text=SCAN_HELP)
    received_at = CenterDateTimeField(label=_("Received at (lab time)"), required=False, help_text=_("Empty: now."))


class QcResultForm(forms.Form):
    test_code = forms.ChoiceField(label=_("Release test"))
    value = forms.CharField(
        label=_("Result"), max_length=32, help_text=_("A number in the test's unit, or negative / positive.")
    )

    def __init__(self, *args: Any, language: str = "en", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["test_code"].choices = [
            (spec.code, f"{spec.label.get(language, spec.label['en'])} ({render(spec.describe(), language)})")
            for spec in services.release_specification().values()
        ]


class TemperatureLogForm(forms.Form):
    shipment = forms.IntegerField(widget=forms.HiddenInput)
    file = forms.FileField(label=_("Data-logger file (CSV: time, °C)"))
    logger_time_zone = forms.CharField(
        label=_("Time zone of the logger's clock"),
        max_length=64,
        help_text=_("Used for times written without a zone, e.g. Europe/Paris or UTC."),
    )


class OosExceptionForm(forms.Form):
    justification = forms.CharField(
        label=_("Medical justification of the exception"), widget=forms.Textarea(attrs={"rows": 3})
    )
    password = forms.CharField(
        label=_("Your password (electronic signature)"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_(
            "By signing: “I request infusion of this out-of-specification product under a documented exception”."
        ),
    )


class NoInfusionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))


class ThawForm(forms.Form):
    scanned_code = forms.CharField(label=_("Product bag label scanned (CoI)"), max_length=40, help_text=SCAN_HELP)
    thawed_at = CenterDateTimeField(label=_("Thawed at (center time)"), required=False, help_text=_("Empty: now."))


@dataclass(frozen=True)
class ActionContext:
    actor: Actor
    user: User
    subject: Subject
    protocol: Protocol
    language: str
    files: Any = None


def _receive(data: dict[str, Any], ctx: ActionContext) -> Any:
    return services.material_receive_at_lab(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        protocol=ctx.protocol,
        scanned_code=data["scanned_code"],
        received_at=_at_center_zone(data.get("received_at"), ctx.subject.manufacturing_site or ctx.subject.center),
        language=ctx.language,
    )


def _qc(data: dict[str, Any], ctx: ActionContext) -> Any:
    return services.qc_result_record(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        test_code=data["test_code"],
        value=data["value"],
        language=ctx.language,
    )


def _temperature(data: dict[str, Any], ctx: ActionContext) -> Any:
    try:
        shipment = Shipment.objects.get(pk=data["shipment"], subject=ctx.subject)
    except Shipment.DoesNotExist:
        from cartrial.apps.logistics.errors import refuse

        raise refuse(
            "shipment_missing", ctx.language, en="No such shipment.", fr="Cette expédition n'existe pas."
        ) from None
    upload = data["file"]
    content = upload.read() if hasattr(upload, "read") else bytes(upload)
    return services.temperature_log_import(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        shipment=shipment,
        protocol=ctx.protocol,
        content=content,
        file_name=getattr(upload, "name", "logger.csv"),
        logger_time_zone=data["logger_time_zone"],
        language=ctx.language,
    )


def _oos(data: dict[str, Any], ctx: ActionContext) -> Any:
    return services.batch_document_oos_exception(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        password=data["password"],
        justification=data["justification"],
        language=ctx.language,
    )


def _no_infusion(data: dict[str, Any], ctx: ActionContext) -> Any:
    return subject_services.subject_decide_no_infusion(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        protocol=ctx.protocol,
        reason=data["reason"],
        ui_language=ctx.language,
    )


def _thaw(data: dict[str, Any], ctx: ActionContext) -> Any:
    return services.product_thaw(
        actor=ctx.actor,
        user=ctx.user,
        subject=ctx.subject,
        protocol=ctx.protocol,
        scanned_code=data["scanned_code"],
        thawed_at=_at_center_zone(data.get("thawed_at"), ctx.subject.center),
        language=ctx.language,
    )


ACTION_HANDLERS: dict[LogisticsAction, tuple[type[forms.Form], Callable[[dict[str, Any], ActionContext], Any]]] = {
    LogisticsAction.RECEIVE_MATERIAL: (ReceiveMaterialForm, _receive),
    LogisticsAction.RECORD_QC: (QcResultForm, _qc),
    LogisticsAction.IMPORT_TEMPERATURE_LOG: (TemperatureLogForm, _temperature),
    LogisticsAction.DOCUMENT_OOS_EXCEPTION: (OosExceptionForm, _oos),
    LogisticsAction.DECIDE_NO_INFUSION: (NoInfusionForm, _no_infusion),
    LogisticsAction.THAW: (ThawForm, _thaw),
}


def action_form(
    action: LogisticsAction, language: str, data: Any = None, files: Any = None, initial: Any = None
) -> forms.Form:
    form_class = ACTION_HANDLERS[action][0]
    if form_class is QcResultForm:
        return QcResultForm(data, files, language=language, initial=initial)
    return form_class(data, files, initial=initial)
