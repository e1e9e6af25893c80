"""The logistics actions outside the pathway steps: one form and one service call per action.

`ACTIONS` is shared by the pages and the API, so both validate the same fields and reach the
same service. The steps themselves (collect, ship, release, receive, infuse...) are the pathway's
(`apps/pathway/steps.py`); the "no infusion" decision is a step too (it withdraws the subject).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from cartrial.apps.access import Reach, Scope, can
from cartrial.apps.accounts.signing import otp_code_field
from cartrial.apps.fields import SCAN_HELP, CenterDateTimeField, at_center
from cartrial.apps.logistics import services
from cartrial.apps.logistics.models import Deviation, Shipment, TemperatureLog
from cartrial.apps.logistics.selectors import SubjectLogistics, release_specification
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import subject_lock
from cartrial.apps.text import render
from cartrial.domain.errors import NotFound
from cartrial.domain.manufacturing import BatchStatus
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action, action_state_check
from cartrial.domain.text import protocol_text
from cartrial.protocols import Protocol


class ReceiveMaterialForm(forms.Form):
    scanned_code = forms.CharField(label=_("Bag label scanned (DIN)"), max_length=40, help_text=SCAN_HELP)
    received_at = CenterDateTimeField(label=_("Received at (lab time)"), required=False, help_text=_("Empty: now."))


class QcResultForm(forms.Form):
    test_code = forms.ChoiceField(label=_("Release test"))
    value = forms.CharField(
        label=_("Result"), max_length=32, help_text=_("A number in the test's unit, or negative / positive.")
    )

    def __init__(self, *args: Any, protocol: Protocol, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["test_code"]).choices = [
            (spec.code, f"{protocol_text(spec.label, language)} ({render(spec.describe(), language)})")
            for spec in release_specification(protocol).values()
        ]


class TemperatureLogForm(forms.Form):
    shipment = forms.IntegerField(widget=forms.HiddenInput)
    file = forms.FileField(label=_("Data-logger file (CSV: time, °C)"))
    logger_time_zone = forms.CharField(
        label=_("Time zone of the logger's clock"),
        max_length=64,
        help_text=_("Used for times written without a zone, e.g. Europe/Paris or UTC."),
    )
    replaces = forms.IntegerField(
        label=_("In place of the file imported before"),
        required=False,
        widget=forms.Select(choices=[("", "—")]),
        help_text=_("Only to correct a wrong file: its excursions are evaluated anew with this one."),
    )
    reason = forms.CharField(
        label=_("Reason for the correction"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when the file replaces another."),
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
    otp_code = otp_code_field()


class ThawForm(forms.Form):
    scanned_code = forms.CharField(label=_("Product bag label scanned (CoI)"), max_length=40, help_text=SCAN_HELP)
    thawed_at = CenterDateTimeField(label=_("Thawed at (center time)"), required=False, help_text=_("Empty: now."))


Handler = Callable[[dict[str, Any], Reach, Protocol], Any]


def _receive(data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    lab = reach.subject.manufacturing_site or reach.subject.center
    return services.material_receive(
        actor=reach.actor,
        subject=reach.subject,
        protocol=protocol,
        scanned_code=data["scanned_code"],
        received_at=at_center(data.get("received_at"), lab.time_zone),
    )


def _qc(data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    return services.qc_result_record(
        actor=reach.actor, subject=reach.subject, protocol=protocol, test_code=data["test_code"], value=data["value"]
    )


def _temperature(data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    shipment = Shipment.objects.filter(pk=data["shipment"], subject=reach.subject).first()
    if shipment is None:
        raise NotFound("No such shipment.", code="shipment_missing", item="shipment")
    replaces = None
    if data.get("replaces"):
        replaces = TemperatureLog.objects.filter(pk=data["replaces"], shipment__subject=reach.subject).first()
        if replaces is None:
            raise NotFound("No such temperature log.", code="temperature_log_missing", item="replaces")
    upload = data["file"]
    content = upload.read() if hasattr(upload, "read") else bytes(upload)
    return services.temperature_log_import(
        actor=reach.actor,
        subject=reach.subject,
        shipment=shipment,
        protocol=protocol,
        content=content,
        file_name=getattr(upload, "name", "logger.csv"),
        logger_time_zone=data["logger_time_zone"],
        replaces=replaces,
        reason=data.get("reason") or "",
    )


def _oos(data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    return services.batch_document_oos_exception(
        actor=reach.actor,
        user=reach.user,
        subject=reach.subject,
        password=data["password"],
        otp_code=data.get("otp_code", ""),
        justification=data["justification"],
    )


def _thaw(data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    return services.product_thaw(
        actor=reach.actor,
        subject=reach.subject,
        protocol=protocol,
        scanned_code=data["scanned_code"],
        thawed_at=at_center(data.get("thawed_at"), reach.subject.center.time_zone),
    )


@dataclass(frozen=True)
class LogisticsAction:
    form: type[forms.Form]
    handler: Handler


ACTIONS: dict[Action, LogisticsAction] = {
    Action.RECEIVE_MATERIAL: LogisticsAction(ReceiveMaterialForm, _receive),
    Action.RECORD_QC: LogisticsAction(QcResultForm, _qc),
    Action.IMPORT_TEMPERATURE_LOG: LogisticsAction(TemperatureLogForm, _temperature),
    Action.DOCUMENT_OOS_EXCEPTION: LogisticsAction(OosExceptionForm, _oos),
    Action.THAW: LogisticsAction(ThawForm, _thaw),
}


def actions_available(scope: Scope, subject: Subject, data: SubjectLogistics) -> list[Action]:
    """The logistics actions the user may take on the subject now (the page's forms, the API's
    `actions`): by the subject's stage and its current batch, and the user's role."""
    state = State(subject.state)
    batch = data.batches[-1].batch if data.batches else None
    wanted: list[Action] = []
    if state is State.MATERIAL_SHIPPED:
        wanted.append(Action.RECEIVE_MATERIAL)
    if state is State.MANUFACTURING and batch is not None:
        wanted.append(Action.RECORD_QC)
        if batch.status == BatchStatus.OUT_OF_SPECIFICATION and batch.oos_exception_signature_id is None:
            wanted.append(Action.DOCUMENT_OOS_EXCEPTION)
    if state is State.LYMPHODEPLETION and batch is not None and not data.batches[-1].thaw:
        wanted.append(Action.THAW)
    return [action for action in wanted if can(scope, action, subject)]


def action_form(
    action: Action,
    protocol: Protocol,
    language: str,
    data: Any = None,
    files: Any = None,
    initial: Any = None,
) -> forms.Form:
    """The form of a logistics action, bound to `data` when given."""
    form_class = ACTIONS[action].form
    if form_class is QcResultForm:
        return QcResultForm(data, files, protocol=protocol, language=language, initial=initial)
    return form_class(data, files, initial=initial)


def action_perform(action: Action, data: dict[str, Any], reach: Reach, protocol: Protocol) -> Any:
    """Perform a logistics action for a reached subject: the subject locked, the action in its place
    in the pathway, the service called; all in one transaction, a refusal recorded after the rollback."""

    def work() -> Any:
        locked = subject_lock(reach.subject)
        action_state_check(action, State(locked.state))
        return ACTIONS[action].handler(data, reach, protocol)

    return reach.run(work)


class DeviationMoveForm(forms.Form):
    """The one field of every move on a deviation: the note, the comment, or the reason."""

    text = forms.CharField(
        label=_("Comment or reason"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required to comment, close or reopen; optional to acknowledge."),
    )


def deviation_perform(reach: Reach, deviation_id: int, move: str, text: str) -> Deviation:
    """One move on a deviation of a subject reached for `MANAGE_DEVIATION`: one transaction, the
    owner check and the move's rules in the service, a refusal recorded after the rollback."""
    return reach.run(
        lambda: services.deviation_manage(
            actor=reach.actor, subject=reach.subject, deviation_id=deviation_id, move=move, text=text
        ),
        what=f"{move} deviation {deviation_id}",
    )
