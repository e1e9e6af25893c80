"""API: the logistics dashboard, a subject's logistics record, the logistics actions and their
fields, temperature logs, labels, deviations, vein-to-vein figures.

The pathway steps themselves (collect, ship, release, receive, infuse...) stay at
`POST /subjects/{code}/transitions`; the same rules and errors as the pages apply here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from cartrial.apps import clock
from cartrial.apps.access import Scope, acting_role, reach_subject, scope_for
from cartrial.apps.api_contract import FieldValues, Page, PageQuery, described_by, paged
from cartrial.apps.form_description import FormFieldOut
from cartrial.apps.logistics import selectors
from cartrial.apps.logistics.forms import ACTIONS, action_form, action_perform, actions_available, deviation_perform
from cartrial.apps.logistics.labels import labels_pdf
from cartrial.apps.logistics.models import (
    CustodyRecord,
    Deviation,
    DeviationComment,
    ManufacturingBatch,
    QcResult,
    TemperatureLog,
    Thaw,
)
from cartrial.apps.logistics.presenters import DATA_ACTIONS, action_fields, action_label, label_specs
from cartrial.apps.logistics.services import deviation_owners_of, deviation_text, temperature_log_refused
from cartrial.apps.subjects.models import Subject
from cartrial.apps.text import api_language, form_invalid, render, tr
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.deviations import DeviationKind, DeviationStatus, deviation_moves_open_to
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.pathway import STATE_LABELS, State
from cartrial.domain.roles import Action
from cartrial.domain.temperature import TemperatureLogError, logger_file_text
from cartrial.domain.vein_to_vein import INTERVALS, IntervalSummary, step_durations, summarise

router = Router(tags=["logistics"])

ACTIONS_ENDPOINT = "/api/v1/logistics/actions"

# --- the logistics actions --------------------------------------------------------------------------

DataAction = Literal["receive_material", "record_qc", "document_oos_exception", "thaw"]


class ActionIn(Schema):
    data: FieldValues = Field(default_factory=dict, description=described_by(ACTIONS_ENDPOINT))


class TemperatureLogIn(Schema):
    shipment: int = Field(description="The shipment's id (`shipments[].id` of the subject's logistics record)")
    csv: str = Field(description="The data-logger file's text: one reading a line, time and °C (or °F)")
    file_name: str = "logger.csv"
    logger_time_zone: str = Field(description="The zone of the logger's clock, for times without one (Europe/Paris)")
    replaces: int | None = Field(default=None, description="A log of the same shipment this file corrects (a reason)")
    reason: str = ""


class ActionRecordOut(Schema):
    """The record the action wrote, named as the audit trail names it."""

    kind: Literal["batch", "qc_result", "temperature_log", "thaw"]
    id: int


class ActionOut(Schema):
    action: str
    subject: str
    state: str
    record: ActionRecordOut


class ActionFieldsOut(Schema):
    action: DataAction
    label: str = Field(description="In the request's language")
    fields: list[FormFieldOut]


class ActionsOut(Schema):
    """The actions sent to `POST /logistics/subjects/{code}/actions/{action}` and the fields of
    each one's `data` (the same form as the page's)."""

    actions: list[ActionFieldsOut]


_RECORD_KINDS: dict[type, Literal["batch", "qc_result", "temperature_log", "thaw"]] = {
    ManufacturingBatch: "batch",
    QcResult: "qc_result",
    TemperatureLog: "temperature_log",
    Thaw: "thaw",
}


@router.get("/actions", response=ActionsOut, summary="The logistics actions and each one's fields")
def logistics_action_fields(request: HttpRequest) -> ActionsOut:
    """Each field's type, unit and range from the form the page shows (a release test: its result's
    unit, plausible range and specification); labels and help in the request's language."""
    protocol, language = protocol_in_force(), api_language(request)
    return ActionsOut(
        actions=[
            ActionFieldsOut(
                action=action.value,  # type: ignore[arg-type]  # DATA_ACTIONS are the DataAction values
                label=action_label(action, language),
                fields=action_fields(action, protocol, language),
            )
            for action in DATA_ACTIONS
        ]
    )


def _perform(request: HttpRequest, code: str, action: Action, data: FieldValues, files: Any = None) -> ActionOut:
    reach = reach_subject(request.user, code, action)
    protocol = protocol_in_force()
    form = action_form(
        action, protocol, api_language(request), {k: "" if v is None else str(v) for k, v in data.items()}, files
    )
    unknown = sorted(set(data) - set(form.fields))
    if unknown:
        raise InvalidInput(
            "Unknown field(s) for {action}: {fields}.",
            code="unknown_field",
            item=unknown[0],
            action=action.value,
            fields=unknown,
        )
    if not form.is_valid():
        raise form_invalid(form, api_language(request))
    record = action_perform(action, form.cleaned_data, reach, protocol)
    reach.subject.refresh_from_db()
    return ActionOut(
        action=action.value,
        subject=reach.subject.code,
        state=reach.subject.state,
        record=ActionRecordOut(kind=_RECORD_KINDS[type(record)], id=record.pk),
    )


@router.post(
    "/subjects/{code}/actions/{action}",
    response=ActionOut,
    summary="A logistics action: receive_material, record_qc, document_oos_exception, thaw",
)
def logistics_action(request: HttpRequest, code: str, action: str, payload: ActionIn) -> ActionOut:
    try:
        chosen = Action(action)
    except ValueError:
        raise InvalidInput("'{action}' is not a logistics action.", code="unknown_action", action=action) from None
    if chosen not in ACTIONS or chosen is Action.IMPORT_TEMPERATURE_LOG:
        raise InvalidInput("'{action}' is not performed here.", code="unknown_action", action=action)
    return _perform(request, code, chosen, payload.data)


@router.post("/subjects/{code}/temperature-logs", response=ActionOut, summary="Import a data-logger CSV for a shipment")
def logistics_temperature_log(request: HttpRequest, code: str, payload: TemperatureLogIn) -> ActionOut:
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


# --- deviations ---------------------------------------------------------------------------------------

Move = Literal["acknowledge", "comment", "close", "reopen"]


class DeviationCommentOut(Schema):
    """One entry of a deviation's thread: the move it came with, its text, who wrote it, as what, when."""

    move: str
    text: str
    author: str
    role: str
    at: datetime


class DeviationOut(Schema):
    """A deviation as lists show it; `message` is in the request's language (`Accept-Language`)."""

    id: int
    subject: str
    center: str
    kind: DeviationKind
    code: str
    status: DeviationStatus
    message: str
    step: str
    location: str
    expected: str
    scanned: str
    opened_at: datetime
    opened_by: str | None
    age_hours: float
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    closing_reason: str
    comments: int
    moves: list[Move] = Field(description="The moves your role may make on it now (the page's buttons)")


class DeviationDetailOut(DeviationOut):
    thread: list[DeviationCommentOut]


class DeviationMoveIn(Schema):
    text: str = ""


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _comment(comment: DeviationComment) -> DeviationCommentOut:
    return DeviationCommentOut(
        move=comment.move, text=comment.text, author=comment.author.get_username(), role=comment.role, at=comment.at
    )


def _moves(scope: Scope, deviation: Deviation) -> list[Move]:
    role = acting_role(scope, Action.MANAGE_DEVIATION, deviation.subject)
    status = DeviationStatus(deviation.status)
    return deviation_moves_open_to(role, status, deviation_owners_of(deviation))  # type: ignore[return-value]


def _deviation(deviation: Deviation, scope: Scope, language: str, now: datetime, comments: int) -> DeviationOut:
    return DeviationOut(
        id=deviation.pk,
        subject=deviation.subject.code,
        center=deviation.subject.center.code,
        kind=DeviationKind(deviation.kind),
        code=deviation.code,
        status=DeviationStatus(deviation.status),
        message=render(deviation_text(deviation), language),
        step=deviation.step,
        location=deviation.location,
        expected=deviation.expected,
        scanned=deviation.scanned,
        opened_at=deviation.at,
        opened_by=_username(deviation.actor),
        age_hours=round(max(0.0, (now - deviation.at).total_seconds() / 3600), 1),
        acknowledged_at=deviation.acknowledged_at,
        acknowledged_by=_username(deviation.acknowledged_by),
        closed_at=deviation.closed_at,
        closed_by=_username(deviation.closed_by),
        closing_reason=deviation.closing_reason,
        comments=comments,
        moves=_moves(scope, deviation),
    )


@router.get(
    "/deviations",
    response=Page[DeviationOut],
    summary="Deviations of the subjects in your scope, oldest first",
    description=(
        "Filters: `status` (open, acknowledged, closed; all when absent), `center` (a subject's center "
        "code, e.g. BDX). `since`: the deviations an audit entry after it opened, moved or commented "
        "(entities `deviation` and `deviation_comment`). `message` is in the request's language; "
        "`age_hours` is the time since the deviation was opened; `moves` what your role may do now."
    ),
)
def logistics_deviations(
    request: HttpRequest,
    page: Query[PageQuery],
    status: DeviationStatus | None = None,
    center: str | None = None,
) -> Page[DeviationOut]:
    scope = scope_for(request.user)
    found = selectors.deviations_in_scope(scope, statuses=(status.value,) if status else None, center_code=center)
    found = selectors.deviations_changed_since(found, page.since)
    language, now = api_language(request), clock.now()
    return paged(found, page, lambda d: _deviation(d, scope, language, now, d.comment_count))


class DeviationCountsOut(Schema):
    """Deviations not closed at one center: by kind, and how many wait (open) or are dealt with."""

    center: str
    kinds: dict[str, int] = Field(description="By kind (scan_mismatch, bedside_mismatch, temperature_excursion...)")
    open: int
    acknowledged: int


class DeviationSummaryOut(Schema):
    centers: list[DeviationCountsOut]
    total: int = Field(description="Deviations not closed in your scope")


@router.get(
    "/deviations/counts", response=DeviationSummaryOut, summary="Deviations not closed per center, by kind and status"
)
def logistics_deviation_counts(request: HttpRequest) -> DeviationSummaryOut:
    counts = selectors.deviation_counts(scope_for(request.user))
    rows = [
        DeviationCountsOut(
            center=center,
            kinds={kind.value: counts[center].get(kind.value, 0) for kind in DeviationKind},
            open=counts[center].get(DeviationStatus.OPEN.value, 0),
            acknowledged=counts[center].get(DeviationStatus.ACKNOWLEDGED.value, 0),
        )
        for center in sorted(counts)
    ]
    return DeviationSummaryOut(centers=rows, total=sum(row.open + row.acknowledged for row in rows))


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
) -> DeviationDetailOut:
    reach = reach_subject(request.user, code, Action.MANAGE_DEVIATION)
    deviation = selectors.deviation_thread(deviation_perform(reach, deviation_id, move, payload.text))
    thread = list(deviation.comments.all())
    body = _deviation(deviation, reach.scope, api_language(request), reach.actor.now, len(thread))
    return DeviationDetailOut(**body.model_dump(), thread=[_comment(c) for c in thread])


# --- the dashboard ------------------------------------------------------------------------------------


class HolderOut(Schema):
    """The latest accepted hand-over of the subject's material or product."""

    item: str = Field(description="The DIN or CoI the item carries")
    holder: str = Field(description="Who holds it now")
    location: str
    at: datetime
    by: str


class WorklistRowOut(Schema):
    subject: str
    center: str
    state: State
    stage: str = Field(description="The stage, in the request's language")
    hint: str = Field(description="What is to be done next, in the request's language")
    since: datetime = Field(description="When the subject reached this stage")
    roles: list[str] = Field(description="The roles whose move it is")
    mine: bool = Field(description="One of your roles is among them")
    held_by: HolderOut | None = Field(description="Who holds its material or product and where; null before any")


@router.get(
    "/dashboard",
    response=Page[WorklistRowOut],
    summary="The logistics worklists: subjects at each stage, whose move it is, who holds what",
    description=(
        "The subjects of your scope from the scheduled apheresis to lymphodepletion, in the pathway's order "
        "then by code. `since`: those whose stage changed or whose material or product changed hands after it "
        "(the subject's state time and the custody records' own times)."
    ),
)
def logistics_dashboard(request: HttpRequest, page: Query[PageQuery]) -> Page[WorklistRowOut]:
    scope = scope_for(request.user)
    language = api_language(request)
    my_roles = set(scope.roles_by_center.values())
    roles_of = dict(selectors.WORKLISTS)
    subjects = selectors.worklist_subjects(scope, since=page.since)
    held = selectors.custody_latest([s.pk for s in subjects])

    def row(subject: Subject) -> WorklistRowOut:
        state = State(subject.state)
        return WorklistRowOut(
            subject=subject.code,
            center=subject.center.code,
            state=state,
            stage=tr(STATE_LABELS[state], language),
            hint=tr(selectors.WORKLIST_HINTS[state], language),
            since=subject.state_changed_at,
            roles=sorted(role.value for role in roles_of[state]),
            mine=bool(my_roles & roles_of[state]),
            held_by=_holder(held.get(subject.pk)),
        )

    return paged(subjects, page, row)


def _holder(record: CustodyRecord | None) -> HolderOut | None:
    if record is None:
        return None
    return HolderOut(
        item=record.item_code, holder=record.to_holder, location=record.location, at=record.at, by=record.actor.username
    )


# --- a subject's logistics record ---------------------------------------------------------------------


class CollectionOut(Schema):
    number: int
    din: str
    check_character: str
    started_at: datetime
    ended_at: datetime
    volume_ml: float
    tnc_e9: float | None
    cd3_cells_e9: float | None


class ExcursionOut(Schema):
    side: Literal["above_max", "below_min"]
    limit_c: float
    start: datetime
    end: datetime
    duration_min: float
    worst_temperature_c: float
    worst_deviation_c: float
    open_at_end_of_log: bool
    first_line_number: int
    tolerated: bool


class TemperatureLogOut(Schema):
    id: int = Field(description="Name it as `replaces` to import a corrected file in its place")
    file_name: str
    sha256: str
    readings: int
    min_c: float
    max_c: float
    limits_c: list[float] = Field(description="[lowest, highest] °C the product allows")
    excursions: list[ExcursionOut]
    replaced_by: int | None = Field(description="The log imported in its place, if corrected")
    replacement_reason: str | None


class ShipmentOut(Schema):
    id: int
    direction: Literal["to_lab", "to_center"]
    item: str
    product: str
    condition: str
    courier: str
    shipper_id: str
    planned_departure_at: datetime
    planned_arrival_at: datetime
    actual_departure_at: datetime
    actual_arrival_at: datetime | None
    arrival_confirmed: bool
    temperature_logs: list[TemperatureLogOut]


class CustodyOut(Schema):
    item: str
    from_holder: str | None = Field(serialization_alias="from", description="Null when the item enters custody")
    to: str
    who: str
    at: datetime
    where: str
    scanned: str


class QcOut(Schema):
    test: str
    value: str
    unit: str
    conforms: bool


class BatchOut(Schema):
    number: int
    status: str
    collection: int
    qc_verdict: str
    qc: list[QcOut]
    released_at: datetime | None
    released_by: str | None
    released_under_exception: bool
    branch: str | None
    storage_location: str | None
    thawed_at: datetime | None
    infused_at: datetime | None


class SubjectDeviationOut(Schema):
    id: int
    kind: DeviationKind
    code: str
    status: DeviationStatus
    at: datetime
    message: str
    expected: str
    scanned: str
    thread: list[DeviationCommentOut]
    moves: list[Move]


class TimelineStepOut(Schema):
    """One step from the end of the first apheresis to the infusion, as the page's timeline shows it."""

    label: str = Field(description="The milestone reached, in the request's language")
    start: datetime
    end: datetime
    days: float


class LogisticsOut(Schema):
    subject: str
    state: str
    time_zone: str = Field(description="The center's: times without an offset are read in it")
    coi: str | None
    coi_check_character: str | None
    actions: list[DataAction] = Field(
        description=f"What you may do now (`POST …/actions/{{action}}`; their fields: `GET {ACTIONS_ENDPOINT}`)"
    )
    collections: list[CollectionOut]
    shipments: list[ShipmentOut]
    custody: list[CustodyOut]
    batches: list[BatchOut]
    deviations: list[SubjectDeviationOut]
    timeline: list[TimelineStepOut]


@router.get(
    "/subjects/{code}",
    response=LogisticsOut,
    by_alias=True,
    summary="A subject's chain of identity, shipments, custody, batches and deviations",
)
def logistics_detail(request: HttpRequest, code: str) -> LogisticsOut:
    reach = reach_subject(request.user, code)
    subject = reach.subject
    data = selectors.subject_logistics(subject, protocol_in_force())
    language = api_language(request)
    replaced = selectors.temperature_logs_replaced(subject)
    points = sorted(
        ((tr(msgid, language), moment) for msgid, moment in selectors.timeline_points(subject)), key=lambda p: p[1]
    )
    return LogisticsOut(
        subject=subject.code,
        state=subject.state,
        time_zone=subject.center.time_zone,
        coi=data.coi.content if data.coi else None,
        coi_check_character=data.coi.check_character if data.coi else None,
        actions=[a.value for a in actions_available(reach.scope, subject, data)],  # type: ignore[misc]
        collections=[
            CollectionOut(
                number=c.number,
                din=c.din,
                check_character=c.check_character,
                started_at=c.started_at,
                ended_at=c.ended_at,
                volume_ml=c.volume_ml,
                tnc_e9=c.tnc_e9,
                cd3_cells_e9=c.cd3_cells_e9,
            )
            for c, _ in data.collections
        ],
        shipments=[_shipment(v, replaced) for v in data.shipments],
        custody=[
            CustodyOut(
                item=r.item_id,
                from_holder=r.from_holder,
                to=r.to_holder,
                who=r.actor.get_username(),
                at=r.at,
                where=r.location,
                scanned=r.scanned_code,
            )
            for r in data.custody
        ],
        batches=[_batch(b) for b in data.batches],
        deviations=[
            SubjectDeviationOut(
                id=d.pk,
                kind=DeviationKind(d.kind),
                code=d.code,
                status=DeviationStatus(d.status),
                at=d.at,
                message=render(deviation_text(d), language),
                expected=d.expected,
                scanned=d.scanned,
                thread=[_comment(c) for c in d.comments.all()],
                moves=_moves(reach.scope, d),
            )
            for d in data.deviations
        ],
        timeline=[
            TimelineStepOut(label=s.label, start=s.start, end=s.end, days=round(s.days, 2))
            for s in step_durations(points)
        ],
    )


def _shipment(view: selectors.ShipmentView, replaced: dict[int, dict[str, Any]]) -> ShipmentOut:
    s = view.shipment
    return ShipmentOut(
        id=s.pk,
        direction=s.direction,  # type: ignore[arg-type]
        item=s.item_code,
        product=s.product_code,
        condition=s.condition,
        courier=s.courier,
        shipper_id=s.shipper_id,
        planned_departure_at=s.planned_departure_at,
        planned_arrival_at=s.planned_arrival_at,
        actual_departure_at=s.actual_departure_at,
        actual_arrival_at=s.actual_arrival_at,
        arrival_confirmed=s.arrival_confirmed,
        temperature_logs=[
            TemperatureLogOut(
                id=log["log"].pk,
                file_name=log["log"].file_name,
                sha256=log["log"].file_sha256,
                readings=log["log"].reading_count,
                min_c=log["log"].min_temperature_c,
                max_c=log["log"].max_temperature_c,
                limits_c=[log["log"].limit_min_c, log["log"].limit_max_c],
                excursions=[ExcursionOut(**e) for e in log["excursions"]],
                replaced_by=int(replaced[log["log"].pk]["by"]) if log["log"].pk in replaced else None,
                replacement_reason=replaced[log["log"].pk]["reason"] if log["log"].pk in replaced else None,
            )
            for log in view.logs
        ],
    )


def _batch(view: selectors.BatchView) -> BatchOut:
    b = view.batch
    return BatchOut(
        number=b.number,
        status=b.status,
        collection=b.collection.number,
        qc_verdict=view.verdict,
        qc=[QcOut(test=q.test_code, value=q.value_text, unit=q.unit, conforms=q.conforms) for q in view.qc],
        released_at=b.released_at,
        released_by=b.release_signature.signer_name if b.release_signature else None,
        released_under_exception=b.released_under_exception,
        branch=b.branch or None,
        storage_location=view.receipt.storage_location if view.receipt else None,
        thawed_at=view.thaw.thawed_at if view.thaw else None,
        infused_at=view.infusion.infused_at if view.infusion else None,
    )


@router.get(
    "/subjects/{code}/labels.pdf",
    response={200: None},
    summary="Printable labels (PDF) of the subject's product and collections",
)
def logistics_labels(request: HttpRequest, code: str) -> HttpResponse:
    subject = reach_subject(request.user, code, Action.PRINT_LABELS).subject
    protocol = protocol_in_force()
    specs = label_specs(selectors.subject_logistics(subject, protocol), protocol, api_language(request))
    if not specs:
        raise NotFound("No chain-of-identity code is allocated yet.", code="no_coi")
    return HttpResponse(labels_pdf(specs, document_title=f"{subject.code} labels"), content_type="application/pdf")


# --- vein to vein -------------------------------------------------------------------------------------


class IntervalStatsOut(Schema):
    n: int = Field(description="Subjects who reached both ends")
    median: float | None
    min: float | None
    max: float | None


class IntervalsOut(Schema):
    apheresis_to_release: IntervalStatsOut
    release_to_infusion: IntervalStatsOut
    apheresis_to_infusion: IntervalStatsOut


class SubjectIntervalsOut(Schema):
    subject: str
    center: str
    apheresis_at: datetime | None
    release_at: datetime | None
    infusion_at: datetime | None
    apheresis_to_release: float | None
    release_to_infusion: float | None
    apheresis_to_infusion: float | None


class VeinToVeinOut(Schema):
    unit: Literal["days"]
    centers: dict[str, IntervalsOut] = Field(description="By center code, and `ALL` for the whole scope")
    subjects: list[SubjectIntervalsOut]


def _stats(summary: IntervalSummary) -> IntervalStatsOut:
    return IntervalStatsOut(n=summary.count, median=summary.median_days, min=summary.min_days, max=summary.max_days)


@router.get(
    "/vein-to-vein",
    response=VeinToVeinOut,
    summary="Median and range of apheresis → release → infusion times, per center and overall",
)
def logistics_vein_to_vein(request: HttpRequest) -> VeinToVeinOut:
    milestones = selectors.milestones_for(scope_for(request.user))
    summaries = summarise(milestones)
    return VeinToVeinOut(
        unit="days",
        centers={
            center: IntervalsOut(**{name: _stats(by_interval[name]) for name, _, _ in INTERVALS})
            for center, by_interval in summaries.items()
        },
        subjects=[
            SubjectIntervalsOut(
                subject=m.subject_code,
                center=m.center_code,
                apheresis_at=m.apheresis_at,
                release_at=m.release_at,
                infusion_at=m.infusion_at,
                **{name: m.interval_days(name) for name, _, _ in INTERVALS},
            )
            for m in milestones
        ],
    )
