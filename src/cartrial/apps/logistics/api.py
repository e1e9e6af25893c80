"""API: a subject's logistics record, the logistics actions, labels, vein-to-vein figures.

The pathway steps themselves (collect, ship, release, receive, infuse...) stay at
`POST /subjects/{code}/transitions`; the same rules and errors as the pages apply here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from cartrial.apps.accounts.access import (
    AccessDenied,
    access_logistics_action,
    access_refusal_record,
    scope_for,
)
from cartrial.apps.api import ApiError, _language
from cartrial.apps.logistics import selectors
from cartrial.apps.logistics.forms import ACTION_HANDLERS, ActionContext, action_form
from cartrial.apps.logistics.labels import labels_pdf
from cartrial.apps.logistics.presenters import label_specs
from cartrial.apps.subjects import selectors as subject_selectors
from cartrial.apps.subjects.models import Subject
from cartrial.domain.logistics_actions import LogisticsAction
from cartrial.domain.vein_to_vein import INTERVALS, summarise
from cartrial.protocols import Protocol, active_protocol

router = Router(tags=["logistics"])


def _protocol() -> Protocol:
    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)


def _get(request: HttpRequest, code: str) -> Subject:
    try:
        return subject_selectors.subject_get(scope=scope_for(request.user), code=code)  # type: ignore[arg-type]
    except Subject.DoesNotExist:
        raise ApiError(404, "not_found", f"No subject '{code}' in your scope.") from None


class ActionIn(Schema):
    data: dict[str, Any] = {}


class TemperatureLogIn(Schema):
    shipment: int
    csv: str
    file_name: str = "logger.csv"
    logger_time_zone: str


class ActionOut(Schema):
    action: str
    subject: str
    state: str
    record: dict[str, Any]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@router.get("/subjects/{code}", summary="A subject's chain of identity, shipments, custody, batches and deviations")
def logistics_detail(request: HttpRequest, code: str) -> dict[str, Any]:
    subject = _get(request, code)
    data = selectors.subject_logistics(subject)
    return {
        "subject": subject.code,
        "state": subject.state,
        "coi": data.coi.content if data.coi else None,
        "coi_check_character": data.coi.check_character if data.coi else None,
        "collections": [
            {
                "number": c.number,
                "din": c.din,
                "check_character": c.check_character,
                "started_at": _when(c.started_at),
                "ended_at": _when(c.ended_at),
                "volume_ml": c.volume_ml,
                "tnc_e9": c.tnc_e9,
                "cd3_cells_e9": c.cd3_cells_e9,
            }
            for c, _ in data.collections
        ],
        "shipments": [
            {
                "id": v.shipment.pk,
                "direction": v.shipment.direction,
                "item": v.shipment.item_code,
                "product": v.shipment.product_code,
                "condition": v.shipment.condition,
                "courier": v.shipment.courier,
                "shipper_id": v.shipment.shipper_id,
                "planned_departure_at": _when(v.shipment.planned_departure_at),
                "planned_arrival_at": _when(v.shipment.planned_arrival_at),
                "actual_departure_at": _when(v.shipment.actual_departure_at),
                "actual_arrival_at": _when(v.shipment.actual_arrival_at),
                "arrival_confirmed": v.shipment.arrival_confirmed,
                "temperature_logs": [
                    {
                        "file_name": log["log"].file_name,
                        "sha256": log["log"].file_sha256,
                        "readings": log["log"].reading_count,
                        "min_c": log["log"].min_temperature_c,
                        "max_c": log["log"].max_temperature_c,
                        "limits_c": [log["log"].limit_min_c, log["log"].limit_max_c],
                        "excursions": log["excursions"],
                    }
                    for log in v.logs
                ],
            }
            for v in data.shipments
        ],
        "custody": [
            {
                "item": r.item_id,
                "from": r.from_holder,
                "to": r.to_holder,
                "who": r.actor.get_username(),
                "at": _when(r.at),
                "where": r.location,
                "scanned": r.scanned_code,
            }
            for r in data.custody
        ],
        "batches": [
            {
                "number": b.batch.number,
                "status": b.batch.status,
                "collection": b.batch.collection.number,
                "qc_verdict": b.verdict,
                "qc": [
                    {"test": q.test_code, "value": q.value_text, "unit": q.unit, "conforms": q.conforms} for q in b.qc
                ],
                "released_at": _when(b.batch.released_at),
                "released_by": b.batch.release_signature.signer_name if b.batch.release_signature else None,
                "released_under_exception": b.batch.released_under_exception,
                "branch": b.batch.branch or None,
                "storage_location": b.receipt.storage_location if b.receipt else None,
                "thawed_at": _when(b.thaw.thawed_at) if b.thaw else None,
                "infused_at": _when(b.infusion.infused_at) if b.infusion else None,
            }
            for b in data.batches
        ],
        "deviations": [
            {
                "kind": d.kind,
                "code": d.code,
                "at": _when(d.at),
                "message": d.message,
                "expected": d.expected,
                "scanned": d.scanned,
            }
            for d in data.deviations
        ],
    }


def _perform(request: HttpRequest, code: str, action: LogisticsAction, data: dict[str, Any], files: Any = None) -> Any:
    subject = _get(request, code)
    scope = scope_for(request.user)  # type: ignore[arg-type]
    try:
        actor = access_logistics_action(
            scope,
            request.user,  # type: ignore[arg-type]
            action,
            center_id=subject.center_id,
            manufacturing_site_id=subject.manufacturing_site_id,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{action.value}", denied)  # type: ignore[arg-type]
        raise
    language = _language(request)
    form = action_form(action, language, {k: "" if v is None else str(v) for k, v in data.items()}, files)
    unknown = sorted(set(data) - set(form.fields))
    if unknown:
        raise ApiError(422, "unknown_field", f"Unknown field(s) for {action.value}: {', '.join(unknown)}")
    if not form.is_valid():
        fields = [{"field": name, "message": " ".join(str(m) for m in msgs)} for name, msgs in form.errors.items()]
        raise ApiError(422, "invalid_input", "The action's data is not valid.", fields)
    context = ActionContext(actor, request.user, subject, _protocol(), language)  # type: ignore[arg-type]
    record = ACTION_HANDLERS[action][1](form.cleaned_data, context)
    subject.refresh_from_db()
    return ActionOut(
        action=action.value, subject=subject.code, state=subject.state, record={"id": getattr(record, "pk", None)}
    )


@router.post(
    "/subjects/{code}/actions/{action}",
    response=ActionOut,
    summary="A logistics action: receive_material, record_qc, document_oos_exception, decide_no_infusion, thaw",
)
def logistics_action(request: HttpRequest, code: str, action: str, payload: ActionIn) -> Any:
    try:
        chosen = LogisticsAction(action)
    except ValueError:
        raise ApiError(422, "unknown_action", f"'{action}' is not a logistics action.") from None
    if chosen not in ACTION_HANDLERS or chosen is LogisticsAction.IMPORT_TEMPERATURE_LOG:
        raise ApiError(422, "unknown_action", f"'{action}' is not performed here.")
    return _perform(request, code, chosen, payload.data)


@router.post("/subjects/{code}/temperature-logs", response=ActionOut, summary="Import a data-logger CSV for a shipment")
def logistics_temperature_log(request: HttpRequest, code: str, payload: TemperatureLogIn) -> Any:
    upload = SimpleUploadedFile(payload.file_name, payload.csv.encode("utf-8"), content_type="text/csv")
    return _perform(
        request,
        code,
        LogisticsAction.IMPORT_TEMPERATURE_LOG,
        {"shipment": payload.shipment, "logger_time_zone": payload.logger_time_zone},
        files={"file": upload},
    )


@router.get("/subjects/{code}/labels.pdf", summary="Printable labels (PDF) of the subject's product and collections")
def logistics_labels(request: HttpRequest, code: str) -> HttpResponse:
    subject = _get(request, code)
    scope = scope_for(request.user)  # type: ignore[arg-type]
    access_logistics_action(
        scope,
        request.user,  # type: ignore[arg-type]
        LogisticsAction.PRINT_LABELS,
        center_id=subject.center_id,
        manufacturing_site_id=subject.manufacturing_site_id,
        center_code=subject.center.code,
    )
    specs = label_specs(selectors.subject_logistics(subject), _protocol(), _language(request))
    if not specs:
        raise ApiError(404, "no_coi", "No chain-of-identity code is allocated yet.")
    return HttpResponse(labels_pdf(specs, document_title=f"{subject.code} labels"), content_type="application/pdf")


@router.get("/vein-to-vein", summary="Median and range of apheresis → release → infusion times, per center and overall")
def logistics_vein_to_vein(request: HttpRequest) -> dict[str, Any]:
    milestones = selectors.milestones_for(scope_for(request.user))  # type: ignore[arg-type]
    summaries = summarise(milestones)
    return {
        "unit": "days",
        "centers": {
            center: {
                name: {"n": s.count, "median": s.median_days, "min": s.min_days, "max": s.max_days}
                for name, s in ((n, by_interval[n]) for n, _, _ in INTERVALS)
            }
            for center, by_interval in summaries.items()
        },
        "subjects": [
            {
                "subject": m.subject_code,
                "center": m.center_code,
                "apheresis_at": _when(m.apheresis_at),
                "release_at": _when(m.release_at),
                "infusion_at": _when(m.infusion_at),
                **{name: m.interval_days(name) for name, _, _ in INTERVALS},
            }
            for m in milestones
        ],
    }
