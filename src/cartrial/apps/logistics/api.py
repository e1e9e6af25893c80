"""API: a subject's logistics record, the logistics actions, labels, vein-to-vein figures.

The pathway steps themselves (collect, ship, release, receive, infuse...) stay at
`POST /subjects/{code}/transitions`; the same rules and errors as the pages apply here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, scope_for
from cartrial.apps.logistics import selectors
from cartrial.apps.logistics.forms import ACTIONS, action_form, action_perform, deviation_perform
from cartrial.apps.logistics.labels import labels_pdf
from cartrial.apps.logistics.models import Deviation
from cartrial.apps.logistics.presenters import label_specs
from cartrial.apps.logistics.services import deviation_text, temperature_log_refused
from cartrial.apps.text import api_language, form_invalid, render
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.deviations import DeviationStatus
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.temperature import TemperatureLogError, logger_file_text
from cartrial.domain.vein_to_vein import INTERVALS, summarise

router = Router(tags=["logistics"])


class ActionIn(Schema):
    data: dict[str, Any] = {}


class TemperatureLogIn(Schema):
    shipment: int
    csv: str
    file_name: str = "logger.csv"
    logger_time_zone: str
    replaces: int | None = Field(None, description="A log of the same shipment this file corrects (with a reason)")
    reason: str = ""


class ActionOut(Schema):
    action: str
    subject: str
    state: str
    record: dict[str, Any]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@router.get("/subjects/{code}", summary="A subject's chain of identity, shipments, custody, batches and deviations")
def logistics_detail(request: HttpRequest, code: str) -> dict[str, Any]:
    subject = reach_subject(request.user, code).subject
    data = selectors.subject_logistics(subject, protocol_in_force())
    language = api_language(request)
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
                "id": d.pk,
                "kind": d.kind,
                "code": d.code,
                "status": d.status,
                "at": _when(d.at),
                "message": render(deviation_text(d), language),
                "expected": d.expected,
                "scanned": d.scanned,
                "thread": [_comment(c) for c in d.comments.all()],
            }
            for d in data.deviations
        ],
    }


class DeviationOut(Schema):
    """A deviation as lists show it; `message` is in the request's language (`Accept-Language`)."""

    id: int
    subject: str
    center: str
    kind: str
    code: str
    status: str
    message: str
    step: str
    location: str
    expected: str
    scanned: str
    opened_at: str
    opened_by: str | None
    age_hours: float
    acknowledged_at: str | None
    acknowledged_by: str | None
    closed_at: str | None
    closed_by: str | None
    closing_reason: str
    comments: int


class DeviationCommentOut(Schema):
    """One entry of a deviation's thread: the move it came with, its text, who wrote it, as what, when."""

    move: str
    text: str
    author: str
    role: str
    at: str


class DeviationDetailOut(DeviationOut):
    thread: list[DeviationCommentOut]


class DeviationListOut(Schema):
    total: int
    deviations: list[DeviationOut]


class DeviationMoveIn(Schema):
    text: str = ""


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _comment(comment: Any) -> dict[str, Any]:
    return {
        "move": comment.move,
        "text": comment.text,
        "author": comment.author.get_username(),
        "role": comment.role,
        "at": _when(comment.at),
    }


def _deviation(deviation: Deviation, language: str, now: datetime, comments: int) -> dict[str, Any]:
    return {
        "id": deviation.pk,
        "subject": deviation.subject.code,
        "center": deviation.subject.center.code,
        "kind": deviation.kind,
        "code": deviation.code,
        "status": deviation.status,
        "message": render(deviation_text(deviation), language),
        "step": deviation.step,
        "location": deviation.location,
        "expected": deviation.expected,
        "scanned": deviation.scanned,
        "opened_at": _when(deviation.at),
        "opened_by": _username(deviation.actor),
        "age_hours": round(max(0.0, (now - deviation.at).total_seconds() / 3600), 1),
        "acknowledged_at": _when(deviation.acknowledged_at),
        "acknowledged_by": _username(deviation.acknowledged_by),
        "closed_at": _when(deviation.closed_at),
        "closed_by": _username(deviation.closed_by),
        "closing_reason": deviation.closing_reason,
        "comments": comments,
    }


@router.get(
    "/deviations",
    response=DeviationListOut,
    summary="Deviations of the subjects in your scope, oldest first",
    description=(
        "Filters: `status` (open, acknowledged, closed; all when absent), `center` (a subject's center "
        "code, e.g. BDX), `limit` (1–1000, default 200; `total` counts them all). `message` is in the "
        "request's language; `age_hours` is the time since the deviation was opened."
    ),
)
def logistics_deviations(
    request: HttpRequest, status: str | None = None, center: str | None = None, limit: int = 200
) -> dict[str, Any]:
    if status is not None and status not in set(DeviationStatus):
        raise InvalidInput(
            "Unknown deviation status '{status}'; expected: {expected}.",
            code="unknown_status",
            item="status",
            status=status,
            expected=", ".join(DeviationStatus),
        )
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000.", code="invalid_limit", item="limit")
    found = selectors.deviations_in_scope(
        scope_for(request.user), statuses=(status,) if status else None, center_code=center
    )
    language = api_language(request)
    now = clock.now()
    return {
        "total": found.count(),
        "deviations": [_deviation(d, language, now, d.comment_count) for d in found[:limit]],
    }


@router.post(
    "/subjects/{code}/deviations/{deviation_id}/{move}",
    response=DeviationDetailOut,
    summary="Acknowledge, comment, close or reopen a deviation",
    description=(
        "`move`: acknowledge (text optional), comment, close, reopen (text required: the comment or the "
        "reason). Only the roles that own the deviation may make each move (docs/logistics.md). Errors: "
        "422 `reason_required` or `unknown_move`, 409 `deviation_wrong_status`, 403 `deviation_not_owner` "
        "(the message names who may) or `access_denied`, 404 outside your scope or another subject's deviation."
    ),
)
def logistics_deviation_move(
    request: HttpRequest, code: str, deviation_id: int, move: str, payload: DeviationMoveIn
) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.MANAGE_DEVIATION)
    deviation = selectors.deviation_thread(deviation_perform(reach, deviation_id, move, payload.text))
    thread = list(deviation.comments.all())
    body = _deviation(deviation, api_language(request), reach.actor.now, len(thread))
    return {**body, "thread": [_comment(c) for c in thread]}


def _perform(request: HttpRequest, code: str, action: Action, data: dict[str, Any], files: Any = None) -> Any:
    reach = reach_subject(request.user, code, action)
    protocol = protocol_in_force()
    form = action_form(
        action, protocol, api_language(request), {k: "" if v is None else str(v) for k, v in data.items()}, files
    )
    unknown = sorted(set(data) - set(form.fields))
    if unknown:
        raise InvalidInput(
            "Unknown field(s) for {action}: {fields}.", code="unknown_field", action=action.value, fields=unknown
        )
    if not form.is_valid():
        raise form_invalid(form, api_language(request))
    record = action_perform(action, form.cleaned_data, reach, protocol)
    reach.subject.refresh_from_db()
    return ActionOut(
        action=action.value,
        subject=reach.subject.code,
        state=reach.subject.state,
        record={"id": getattr(record, "pk", None)},
    )


@router.post(
    "/subjects/{code}/actions/{action}",
    response=ActionOut,
    summary="A logistics action: receive_material, record_qc, document_oos_exception, thaw",
)
def logistics_action(request: HttpRequest, code: str, action: str, payload: ActionIn) -> Any:
    try:
        chosen = Action(action)
    except ValueError:
        raise InvalidInput("'{action}' is not a logistics action.", code="unknown_action", action=action) from None
    if chosen not in ACTIONS or chosen is Action.IMPORT_TEMPERATURE_LOG:
        raise InvalidInput("'{action}' is not performed here.", code="unknown_action", action=action)
    return _perform(request, code, chosen, payload.data)


@router.post("/subjects/{code}/temperature-logs", response=ActionOut, summary="Import a data-logger CSV for a shipment")
def logistics_temperature_log(request: HttpRequest, code: str, payload: TemperatureLogIn) -> Any:
    reach_subject(request.user, code, Action.IMPORT_TEMPERATURE_LOG)  # 404/403 before anything is said of the file
    try:
        # JSON can carry what no file holds (a lone surrogate): refused as the page refuses such a file.
        text = logger_file_text(payload.csv)
    except TemperatureLogError as error:
        raise temperature_log_refused(error, item="csv") from None
    upload = SimpleUploadedFile(payload.file_name, text.encode("utf-8"), content_type="text/csv")
    return _perform(
        request,
        code,
        Action.IMPORT_TEMPERATURE_LOG,
        {
            "shipment": payload.shipment,
            "logger_time_zone": payload.logger_time_zone,
            "replaces": payload.replaces,
            "reason": payload.reason,
        },
        files={"file": upload},
    )


@router.get("/subjects/{code}/labels.pdf", summary="Printable labels (PDF) of the subject's product and collections")
def logistics_labels(request: HttpRequest, code: str) -> HttpResponse:
    subject = reach_subject(request.user, code, Action.PRINT_LABELS).subject
    protocol = protocol_in_force()
    specs = label_specs(selectors.subject_logistics(subject, protocol), protocol, api_language(request))
    if not specs:
        raise NotFound("No chain-of-identity code is allocated yet.", code="no_coi")
    return HttpResponse(labels_pdf(specs, document_title=f"{subject.code} labels"), content_type="application/pdf")


@router.get("/vein-to-vein", summary="Median and range of apheresis → release → infusion times, per center and overall")
def logistics_vein_to_vein(request: HttpRequest) -> dict[str, Any]:
    milestones = selectors.milestones_for(scope_for(request.user))
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
