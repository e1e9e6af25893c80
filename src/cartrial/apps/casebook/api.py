"""API of the casebook: the study grid and worklist, a subject's casebook (visits, forms, queries,
SDV, lock, signature), a form's definition, history and CSV import.

The same rules and words as the pages: every subject is reached through the access entry point
with the action the page needs, the same services do the work (one transaction, audited), and the
same selectors read. Lists are pages (`limit`, `offset`, `since`); texts follow Accept-Language;
errors are the one `ErrorOut`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from typing import Literal

from django.http import HttpRequest
from django.utils import translation
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from cartrial.apps import clock, text
from cartrial.apps.access import Scope, centers_for, reach_subject, require_somewhere
from cartrial.apps.accounts.signing import SignatureCodeIn
from cartrial.apps.api_contract import FieldValue, Page, PageQuery, changed_since, described_by, paged
from cartrial.apps.casebook import entries, presenters, selectors, services
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, VisitRecord
from cartrial.apps.casebook.models import Query as CasebookQuery
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.casebook import QueryMove, QueryOrigin, QueryStatus
from cartrial.domain.ecrf import FormDef, FormStatus, ItemDef, ItemType, lab_range
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.text import message_from_data
from cartrial.domain.visits import VisitStatus, is_unscheduled
from cartrial.protocols import Protocol

router = Router(tags=["casebook"])  # /subjects/{code}/...
study_router = Router(tags=["casebook"])  # /casebook: the study grid, the worklist
queries_router = Router(tags=["casebook"])  # /queries
forms_router = Router(tags=["casebook"])  # /forms

FORM_DEFINITION = "/api/v1/forms/{form}"


@contextmanager
def _speaking(request: HttpRequest) -> Iterator[str]:
    """The request's language (Accept-Language) active while an answer's texts are rendered."""
    language = text.api_language(request)
    with translation.override(language):
        yield language


# --- a form's values --------------------------------------------------------------------------


class LabResult(Schema):
    """A lab item's result as the lab reported it: the value in `unit`, and the lab's normal range."""

    model_config = ConfigDict(extra="forbid")

    value: float | str | None = Field(None, description="The result, in `unit`")
    unit: str | None = Field(None, description="One of the item's `units` (its default `unit` when omitted)")
    lower_limit: float | str | None = Field(None, description="The lab's lower limit of normal, in `unit`")
    upper_limit: float | str | None = Field(None, description="The lab's upper limit of normal, in `unit`")


# An item's value: a JSON scalar (a date as YYYY-MM-DD), a multiple choice's codes, or a lab result
# (a bare number is a lab result in the item's default unit); a repeating group is a list of rows.
type ItemValue = FieldValue | list[str] | LabResult
type RowValues = dict[str, ItemValue]
type FormValue = ItemValue | list[RowValues]
type FormValues = dict[str, FormValue]

_VALUES_DESCRIPTION = (
    described_by(FORM_DEFINITION) + " A multiple choice is a list of codes; a lab item a number in its default unit "
    "or a `LabResult`; a repeating group (by its name) a list of rows, each an object of its items."
)


def _raw(values: Mapping[str, FormValue]) -> dict[str, object]:
    """The values as the engine reads them (plain JSON: a lab result as a mapping)."""

    def plain(value: object) -> object:
        if isinstance(value, LabResult):
            return value.model_dump(exclude_unset=True)
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: plain(value) for name, value in values.items()}


# --- schemas ----------------------------------------------------------------------------------


class VisitFormOut(Schema):
    code: str
    label: str
    status: FormStatus


class VisitOut(Schema):
    code: str
    label: str
    phase: str
    target: date | None
    earliest: date | None
    latest: date | None
    status: VisitStatus
    done_on: date | None
    missed_reason: str
    open_queries: int = Field(description="Queries on the visit's forms not closed yet")
    unscheduled: bool
    forms: list[VisitFormOut]


class VisitIn(Schema):
    done_on: date | None = Field(None, description="The day the visit took place (not with `missed`)")
    missed: bool = False
    reason: str = Field("", description="Why the visit was missed; why a recorded date changes")


class UnscheduledVisitIn(Schema):
    done_on: date


class VisitRecordOut(Schema):
    visit: str
    outcome: Literal["done", "missed"]
    done_on: date | None
    reason: str
    recorded_at: datetime


class ActivityVisitOut(Schema):
    """One visit's stored lupus activity (null: not assessable), with the keys of `cartrial endpoints`
    (its PGA and prednisone are items of the form)."""

    code: str
    sledai: int | None
    clinical_sledai: int | None
    doris: bool | None
    drug_free_doris: bool | None
    lldas: bool | None
    sri4: bool | None
    protocol_version: str


class DiseaseActivityOut(Schema):
    visits: list[ActivityVisitOut]
    doris_sustained_from: str | None


class FormRefOut(Schema):
    code: str
    label: str


class VisitDetailOut(Schema):
    subject: str
    visit: VisitOut
    record: VisitRecordOut | None
    activity: ActivityVisitOut | None
    forms_to_add: list[FormRefOut] = Field(description="Forms an unscheduled visit may collect (any of the protocol)")


class SignatureOut(Schema):
    signer: str
    role: str
    center: str
    signed_at: datetime
    meaning: str = Field(description="What the signer attested, in the request's language")
    content_sha256: str
    forms_signed: int


class CasebookOut(Schema):
    subject: str
    signature: SignatureOut | None = Field(description="The casebook's signature in force (none, or voided)")
    meaning: str = Field(description="What signing the casebook attests, in the request's language")


class SignIn(SignatureCodeIn):
    password: str = Field(description="The signer's password, entered again (21 CFR Part 11)")


class UnlockIn(Schema):
    reason: str = ""


class FormStatusOut(Schema):
    visit: str
    form: str
    status: FormStatus


class FormsChangedOut(Schema):
    forms: list[FormStatusOut]


class FormIn(Schema):
    items: FormValues = Field(description=_VALUES_DESCRIPTION)
    reason: str = Field("", description="Why: required for every change of a saved value")


class FormOut(Schema):
    form: str
    visit: str
    status: FormStatus
    protocol_version: str | None
    revision: int | None
    frozen: bool = Field(description="Locked or signed: its values may not change")
    items: FormValues = Field(description=_VALUES_DESCRIPTION)
    verified_items: list[str]
    updated_at: datetime | None


class FormSavedOut(FormOut):
    changed: list[str]
    queries_opened: list[int]
    queries_closed: list[int]


class ItemChangeOut(Schema):
    item: str
    old: FormValue
    new: FormValue
    user: str
    at: datetime
    reason: str
    role: str
    center: str
    after_lock: bool = Field(description="A correction after the form had been locked")


class VerifiedItemOut(Schema):
    name: str = Field(description="An item, or a repeating group as one")
    label: str
    value: FormValue
    verified_by: str | None
    verified_at: datetime | None


class VerificationOut(Schema):
    form: str
    visit: str
    status: FormStatus
    items: list[VerifiedItemOut]
    checklist: list[str] = Field(description="What the monitor checks of each item against the source")


class VerifyIn(Schema):
    items: list[str] | None = Field(
        None, description="The items verified against the source; omitted: every filled item (the form page's button)"
    )


class QueryMessageOut(Schema):
    move: QueryMove
    text: str
    by: str
    at: datetime


class QueryOut(Schema):
    id: int
    status: QueryStatus
    subject: str
    center: str
    visit: str
    form: str
    item: str
    origin: QueryOrigin
    check: str | None = Field(description="The edit check of an automatic query")
    text: str
    raised_at: datetime
    updated_at: datetime
    thread: list[QueryMessageOut]


class QueryIn(Schema):
    visit: str
    form: str
    item: str
    text: str


class QueryTextIn(Schema):
    text: str = ""


class QueryCloseIn(Schema):
    reason: str = ""


class CenterQueriesOut(Schema):
    center: str
    count: int = Field(description="Queries not closed")
    over_30_days: int
    oldest_days: int


class QueriesSummaryOut(Schema):
    centers: list[CenterQueriesOut]


class GridRowOut(Schema):
    subject: str
    center: str
    visits: list[VisitOut]


class WorklistEntryOut(Schema):
    section: Literal["overdue", "due", "upcoming"] = Field(
        description="Overdue, due now (window open), or opening within 7 days"
    )
    subject: str
    center: str
    visit: str
    label: str
    status: VisitStatus
    target: date
    earliest: date
    latest: date


class FormsImportOut(Schema):
    form: str
    rows: int
    changed: int = Field(description="Rows whose form changed (a row identical to the saved form changes nothing)")
    queries_opened: list[int]


class CodeOut(Schema):
    code: str
    label: str
    help: str | None


class LabUnitRangeOut(Schema):
    unit: str
    minimum: float | None
    maximum: float | None


class ItemDefOut(Schema):
    name: str
    group: str
    type: ItemType
    label: str
    help: str | None
    lab: bool = Field(description="A lab result: a number in `unit`, or a `LabResult` in one of `units`")
    analyte: str | None
    unit: str | None = Field(description="The unit of a number (a lab result's default unit)")
    units: list[str] = Field(description="The units a lab result may be entered in")
    minimum: float | None = Field(description="The plausible range's lower bound, in `unit` (bounds included)")
    maximum: float | None
    ranges: list[LabUnitRangeOut] = Field(description="A lab result's plausible range in each accepted unit")
    required: bool
    conditional: bool = Field(description="Shown or required only when a rule of the protocol holds")
    codelist: list[CodeOut]
    derived: str | None = Field(description="Computed by the engine (never sent): the derivation's name")
    visit_date: bool
    pattern: str | None


class GroupDefOut(Schema):
    name: str
    label: str
    repeating: bool = Field(description="Sent as a list of rows under the group's name")
    items: list[ItemDefOut]


class EditCheckOut(Schema):
    code: str
    message: str
    items: list[str]


class FormDefinitionOut(Schema):
    code: str
    label: str
    visits: list[str] = Field(description="The scheduled visits collecting it (an unscheduled visit may collect any)")
    groups: list[GroupDefOut]
    edit_checks: list[EditCheckOut]


# --- adapters ---------------------------------------------------------------------------------


def _visit_out(row: selectors.VisitRow, protocol: Protocol) -> VisitOut:
    return VisitOut(
        code=row.code,
        label=presenters.text_of(row.label),
        phase=row.phase,
        target=row.target,
        earliest=row.earliest,
        latest=row.latest,
        status=row.status,
        done_on=row.done_on,
        missed_reason=row.missed_reason,
        open_queries=row.open_queries,
        unscheduled=row.unscheduled,
        forms=[
            VisitFormOut(code=code, label=presenters.form_label(protocol, code), status=status)
            for code, status in row.forms
        ],
    )


def _visit_record_out(row: VisitRecord) -> VisitRecordOut:
    return VisitRecordOut(
        visit=row.visit_code,
        outcome="done" if row.outcome == VisitRecord.Outcome.DONE else "missed",
        done_on=row.done_on,
        reason=row.missed_reason,
        recorded_at=row.recorded_at,
    )


def _activity_out(visit: selectors.ActivityVisit) -> ActivityVisitOut:
    return ActivityVisitOut(
        code=visit.code,
        sledai=visit.sledai,
        clinical_sledai=visit.clinical_sledai,
        doris=visit.doris,
        drug_free_doris=visit.drug_free_doris,
        lldas=visit.lldas,
        sri4=visit.sri4,
        protocol_version=visit.protocol_version,
    )


def _form_out(record: FormRecord | None, visit: str, form: str) -> FormOut:
    if record is None:
        return FormOut(
            form=form,
            visit=visit,
            status=FormStatus.NOT_STARTED,
            protocol_version=None,
            revision=None,
            frozen=False,
            items={},
            verified_items=[],
            updated_at=None,
        )
    return FormOut(
        form=record.form_code,
        visit=record.visit_code,
        status=FormStatus(record.status),
        protocol_version=record.protocol_version.version,
        revision=record.revision,
        frozen=services.frozen(record),
        items=record.values_json,
        verified_items=sorted(record.verified_json),
        updated_at=record.updated_at,
    )


def _forms_changed(records: list[FormRecord]) -> FormsChangedOut:
    return FormsChangedOut(
        forms=[FormStatusOut(visit=r.visit_code, form=r.form_code, status=FormStatus(r.status)) for r in records]
    )


def _signature_out(found: CasebookSignature) -> SignatureOut:
    signature = found.signature
    return SignatureOut(
        signer=signature.signer_name,
        role=signature.role,
        center=signature.center_code,
        signed_at=signature.signed_at,
        meaning=translation.gettext(signature.meaning),
        content_sha256=signature.content_sha256,
        forms_signed=found.forms_signed,
    )


def query_out(query: CasebookQuery, language: str) -> QueryOut:
    """A query as the API shows it: an edit check's text in the request's language (its stored
    English text is for the audit trail), in its thread too."""
    question = query.text
    if query.message_json:
        question = text.render(message_from_data(query.message_json), language)
    return QueryOut(
        id=query.pk,
        status=QueryStatus(query.status),
        subject=query.subject.code,
        center=query.subject.center.code,
        visit=query.visit_code,
        form=query.form_code,
        item=query.item,
        origin=QueryOrigin(query.origin),
        check=query.check_code or None,
        text=question,
        raised_at=query.raised_at,
        updated_at=query.updated_at,
        thread=[
            QueryMessageOut(
                move=QueryMove(m.move),
                text=question if query.message_json and m.move == QueryMove.RAISE.value else m.text,
                by=m.by_name,
                at=m.at,
            )
            for m in query.messages.all()
        ],
    )


def _center_of(scope: Scope, center: str | None) -> str | None:
    """A center filter among the centers where the user reads the casebook; 404 for any other."""
    if center is None:
        return None
    if center not in {scope.center_codes[c] for c in centers_for(scope, Action.READ_CASEBOOK)}:
        raise NotFound("No center '{center}' in your scope.", code="not_found", center=center)
    return center


# --- the study: grid and worklist -------------------------------------------------------------


@study_router.get("/grid", response=Page[GridRowOut], summary="The study grid: each subject's visits and forms")
def study_grid(request: HttpRequest, page: Query[PageQuery], center: str | None = None) -> Page[GridRowOut]:
    """The included subjects of your centers (by center and number) × the protocol's visits, each with
    its status, open queries and forms' statuses. `since`: only the subjects whose visits, forms or
    queries changed after it (the audit trail's `visit_record`, `form_record` and `query` entries)."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "casebook")
    protocol = protocol_in_force()
    changed = None if page.since is None else selectors.casebook_changed_since(page.since)
    rows, total = selectors.study_grid_window(
        scope,
        protocol,
        clock.now(),
        offset=page.offset,
        limit=page.limit,
        center_code=_center_of(scope, center),
        subject_codes=changed,
    )
    with _speaking(request):
        items = [
            GridRowOut(
                subject=row.subject.code,
                center=row.subject.center.code,
                visits=[_visit_out(visit, protocol) for visit in row.visits],
            )
            for row in rows
        ]
    following = page.offset + page.limit
    return Page[GridRowOut](items=items, total=total, next_offset=following if following < total else None)


@study_router.get("/worklist", response=Page[WorklistEntryOut], summary="Visits overdue, due now, coming this week")
def worklist(request: HttpRequest, page: Query[PageQuery], center: str | None = None) -> Page[WorklistEntryOut]:
    """The worklist of your centers: overdue visits, then those due now (window open), then those
    whose window opens within 7 days; in each, earliest target first. `since`: only the visits of
    subjects whose casebook changed after it (audit trail); a visit falling due as days pass is not a
    change: read the whole list for that."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "worklist")
    protocol = protocol_in_force()
    changed = None if page.since is None else selectors.casebook_changed_since(page.since)
    work = selectors.center_worklist(
        scope, protocol, clock.now(), center_code=_center_of(scope, center), subject_codes=changed
    )
    sections: list[tuple[Literal["overdue", "due", "upcoming"], list[selectors.WorklistRow]]] = [
        ("overdue", work.overdue),
        ("due", work.due),
        ("upcoming", work.upcoming),
    ]
    rows = [(section, row) for section, found in sections for row in found]
    with _speaking(request):
        return paged(
            rows,
            page,
            lambda pair: WorklistEntryOut(
                section=pair[0],
                subject=pair[1].subject.code,
                center=pair[1].subject.center.code,
                visit=pair[1].visit.code,
                label=presenters.text_of(pair[1].label),
                status=pair[1].visit.status,
                target=pair[1].visit.target,
                earliest=pair[1].visit.earliest,
                latest=pair[1].visit.latest,
            ),
        )


# --- a subject's casebook ---------------------------------------------------------------------


@router.get("/{code}/visits", response=Page[VisitOut], summary="A subject's visits: dates, window, status and forms")
def visits_list(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[VisitOut]:
    """In protocol order, unscheduled visits last. `since`: only the visits whose record, forms or
    queries changed after it (the audit trail's `visit_record`, `form_record` and `query` entries)."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    protocol = protocol_in_force()
    rows = selectors.subject_visit_rows(
        reach.subject, protocol, selectors.subject_today(reach.subject, reach.actor.now)
    )
    if page.since is not None:
        changed = selectors.visits_changed_since(reach.subject, page.since)
        rows = [row for row in rows if row.code in changed]
    with _speaking(request):
        return paged(rows, page, lambda row: _visit_out(row, protocol))


@router.get(
    "/{code}/disease-activity",
    response=DiseaseActivityOut,
    summary="A subject's lupus activity by visit: SLEDAI-2K, clinical SLEDAI, DORIS, drug-free DORIS, LLDAS, SRI-4",
)
def disease_activity(request: HttpRequest, code: str) -> DiseaseActivityOut:
    """The scores stored with each lupus activity form (keys of `cartrial endpoints`, null when not
    assessable), with the protocol version each form was captured under."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    activity = selectors.disease_activity(reach.subject, protocol_in_force())
    return DiseaseActivityOut(
        visits=[_activity_out(v) for v in activity.visits], doris_sustained_from=activity.doris_sustained_from
    )


@router.get("/{code}/casebook", response=CasebookOut, summary="A subject's casebook signature and what it attests")
def casebook_read(request: HttpRequest, code: str) -> CasebookOut:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    signature = services.casebook_signature_in_force(reach.subject)
    with _speaking(request):
        return CasebookOut(
            subject=reach.subject.code,
            signature=_signature_out(signature) if signature else None,
            meaning=translation.gettext(services.CASEBOOK_SIGNATURE_MEANING),
        )


@router.post("/{code}/casebook/lock", response=FormsChangedOut, summary="Lock every saved form of the casebook")
def casebook_lock(request: HttpRequest, code: str) -> FormsChangedOut:
    """The data manager locks each saved form not locked yet (all or none: a draft refuses, 409)."""
    reach = reach_subject(request.user, code, Action.LOCK_DATA)
    locked = reach.run(
        lambda: services.subject_forms_lock(actor=reach.actor, subject=reach.subject), what="lock subject"
    )
    return _forms_changed(locked)


@router.post(
    "/{code}/casebook/signature",
    response={201: SignatureOut},
    summary="The investigator signs the casebook (every form locked), password entered again",
)
def casebook_sign(request: HttpRequest, code: str, payload: SignIn) -> Status[SignatureOut]:
    reach = reach_subject(request.user, code, Action.SIGN_CASEBOOK)
    reach.run(
        lambda: services.casebook_sign(
            actor=reach.actor,
            user=reach.user,
            subject=reach.subject,
            password=payload.password,
            otp_code=payload.otp_code,
        ),
        what="sign casebook",
    )
    signed = services.casebook_signature_in_force(reach.subject)
    assert signed is not None  # just created, in force
    with _speaking(request):
        return Status(201, _signature_out(signed))


@router.post(
    "/{code}/visits/unscheduled",
    response={201: VisitRecordOut},
    summary="Add an unscheduled visit done on a date (its code: U1, U2...)",
)
def unscheduled_visit_add(request: HttpRequest, code: str, payload: UnscheduledVisitIn) -> Status[VisitRecordOut]:
    reach = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
    row = reach.run(
        lambda: services.unscheduled_visit_record(
            actor=reach.actor, subject=reach.subject, protocol=protocol_in_force(), done_on=payload.done_on
        ),
        what="unscheduled visit",
    )
    return Status(201, _visit_record_out(row))


@router.get("/{code}/visits/{visit}", response=VisitDetailOut, summary="One visit: window, status, forms, record")
def visit_read(request: HttpRequest, code: str, visit: str) -> VisitDetailOut:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    protocol = protocol_in_force()
    selectors.visit_definition(protocol, visit)
    today = selectors.subject_today(reach.subject, reach.actor.now)
    row = next((r for r in selectors.subject_visit_rows(reach.subject, protocol, today) if r.code == visit), None)
    if row is None:  # an unscheduled code not recorded yet
        raise NotFound("No visit '{visit}' in the protocol.", code="visit_unknown", item="visit", visit=visit)
    record = selectors.visit_record_get(reach.subject, visit)
    activity = next((v for v in selectors.disease_activity(reach.subject, protocol).visits if v.code == visit), None)
    with _speaking(request):
        to_add = (
            sorted(
                (FormRefOut(code=c, label=presenters.form_label(protocol, c)) for c in protocol.forms),
                key=lambda f: f.label,
            )
            if is_unscheduled(visit)
            else []
        )
        return VisitDetailOut(
            subject=reach.subject.code,
            visit=_visit_out(row, protocol),
            record=_visit_record_out(record) if record else None,
            activity=_activity_out(activity) if activity else None,
            forms_to_add=to_add,
        )


@router.put("/{code}/visits/{visit}", response=VisitRecordOut, summary="Record a visit as done on a date, or missed")
def visit_record(request: HttpRequest, code: str, visit: str, payload: VisitIn) -> VisitRecordOut:
    reach = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
    protocol = protocol_in_force()
    if payload.missed:
        row = reach.run(
            lambda: services.visit_missed_record(
                actor=reach.actor, subject=reach.subject, protocol=protocol, visit_code=visit, reason=payload.reason
            ),
            what="visit missed",
        )
        return _visit_record_out(row)
    done_on = payload.done_on
    if done_on is None:
        raise InvalidInput("'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item="done_on", value="")
    row = reach.run(
        lambda: services.visit_done_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code=visit,
            done_on=done_on,
            reason=payload.reason,
        ),
        what="visit date",
    )
    return _visit_record_out(row)


@router.post("/{code}/visits/{visit}/lock", response=FormsChangedOut, summary="Lock the forms of a visit")
def visit_lock(request: HttpRequest, code: str, visit: str) -> FormsChangedOut:
    reach = reach_subject(request.user, code, Action.LOCK_DATA)
    selectors.visit_definition(protocol_in_force(), visit)
    locked = reach.run(
        lambda: services.visit_forms_lock(actor=reach.actor, subject=reach.subject, visit_code=visit), what="lock"
    )
    return _forms_changed(locked)


@router.post(
    "/{code}/visits/{visit}/unlock", response=FormsChangedOut, summary="Unlock the forms of a visit, with a reason"
)
def visit_unlock(request: HttpRequest, code: str, visit: str, payload: UnlockIn) -> FormsChangedOut:
    """The casebook's signature, if any, is voided."""
    reach = reach_subject(request.user, code, Action.LOCK_DATA)
    selectors.visit_definition(protocol_in_force(), visit)
    unlocked = reach.run(
        lambda: services.visit_forms_unlock(
            actor=reach.actor, subject=reach.subject, visit_code=visit, reason=payload.reason
        ),
        what="unlock",
    )
    return _forms_changed(unlocked)


@router.get("/{code}/visits/{visit}/forms/{form}", response=FormOut, summary="A form of a visit: status, items")
def form_get(request: HttpRequest, code: str, visit: str, form: str) -> FormOut:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    services.form_definition(protocol_in_force(), visit, form)
    return _form_out(selectors.form_record_get(reach.subject, visit, form), visit, form)


@router.put(
    "/{code}/visits/{visit}/forms/{form}",
    response=FormSavedOut,
    summary="Save a form's items (a reason for every change after the first save); 409 when locked",
)
def form_put(request: HttpRequest, code: str, visit: str, form: str, payload: FormIn) -> FormSavedOut:
    reach = reach_subject(request.user, code, Action.ENTER_FORM_DATA)
    protocol = protocol_in_force()
    saved = reach.run(
        lambda: services.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code=visit,
            form_code=form,
            items=_raw(payload.items),
            reason=payload.reason,
        ),
        what=f"save {visit}/{form}",
    )
    return FormSavedOut(
        **_form_out(saved.record, visit, form).model_dump(),
        changed=saved.changed,
        queries_opened=[q.pk for q in saved.queries_opened],
        queries_closed=[q.pk for q in saved.queries_closed],
    )


@router.post("/{code}/visits/{visit}/forms/{form}/lock", response=FormOut, summary="Lock a saved form")
def form_lock(request: HttpRequest, code: str, visit: str, form: str) -> FormOut:
    reach = reach_subject(request.user, code, Action.LOCK_DATA)
    services.form_definition(protocol_in_force(), visit, form)
    record = selectors.form_record_saved(reach.subject, visit, form)
    reach.run(lambda: services.forms_lock(actor=reach.actor, records=[record]), what="lock")
    return _form_out(record, visit, form)


@router.post(
    "/{code}/visits/{visit}/forms/{form}/unlock", response=FormOut, summary="Unlock a locked form, with a reason"
)
def form_unlock(request: HttpRequest, code: str, visit: str, form: str, payload: UnlockIn) -> FormOut:
    """The casebook's signature, if any, is voided; the casebook's other signed forms are locked again."""
    reach = reach_subject(request.user, code, Action.LOCK_DATA)
    services.form_definition(protocol_in_force(), visit, form)
    record = selectors.form_record_saved(reach.subject, visit, form)
    reach.run(lambda: services.forms_unlock(actor=reach.actor, records=[record], reason=payload.reason), what="unlock")
    return _form_out(record, visit, form)


def _verification_out(record: FormRecord | None, definition: FormDef, visit: str, form: str) -> VerificationOut:
    values = record.values_json if record else {}
    verified = record.verified_json if record else {}
    protocol = protocol_in_force()
    items = []
    for name in definition.value_names():
        stamp = verified.get(name) or {}
        items.append(
            VerifiedItemOut(
                name=name,
                label=presenters.item_label(protocol, form, name),
                value=values.get(name),
                verified_by=stamp.get("by"),
                verified_at=stamp.get("at"),
            )
        )
    return VerificationOut(
        form=form,
        visit=visit,
        status=FormStatus(record.status) if record else FormStatus.NOT_STARTED,
        items=items,
        checklist=[str(line) for line in presenters.SOURCE_CHECKLIST],
    )


@router.get(
    "/{code}/visits/{visit}/forms/{form}/verification",
    response=VerificationOut,
    summary="Source-data verification of a form: each item's value and who verified it, the checklist",
)
def verification_read(request: HttpRequest, code: str, visit: str, form: str) -> VerificationOut:
    reach = reach_subject(request.user, code, Action.VERIFY_SOURCE, record=False)
    definition = services.form_definition(protocol_in_force(), visit, form)
    with _speaking(request):
        return _verification_out(selectors.form_record_get(reach.subject, visit, form), definition, visit, form)


@router.post(
    "/{code}/visits/{visit}/forms/{form}/verification",
    response=VerificationOut,
    summary="The monitor verifies items against the source (a changed item loses its verification)",
)
def form_verify(request: HttpRequest, code: str, visit: str, form: str, payload: VerifyIn) -> VerificationOut:
    reach = reach_subject(request.user, code, Action.VERIFY_SOURCE)
    protocol = protocol_in_force()
    definition = services.form_definition(protocol, visit, form)
    record = selectors.form_record_saved(reach.subject, visit, form)
    reach.run(
        lambda: services.form_verify(actor=reach.actor, record=record, protocol=protocol, items=payload.items),
        what="verify",
    )
    with _speaking(request):
        return _verification_out(record, definition, visit, form)


@router.get(
    "/{code}/visits/{visit}/forms/{form}/history",
    response=Page[ItemChangeOut],
    summary="Every change of the form's items, oldest first: old → new, who, when, why",
)
def form_history(request: HttpRequest, code: str, visit: str, form: str, page: Query[PageQuery]) -> Page[ItemChangeOut]:
    """The changes are audit entries: `since` keeps those made after it."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    record = selectors.form_record_get(reach.subject, visit, form)
    if record is None:
        raise NotFound("No saved form {form} at {visit}.", code="not_found", form=form, visit=visit)
    changes = selectors.form_history(record)
    if page.since is not None:
        changes = [c for c in changes if c.at > page.since]
    return paged(
        changes,
        page,
        lambda c: ItemChangeOut(
            item=c.item,
            old=c.old,
            new=c.new,
            user=c.user,
            at=c.at,
            reason=c.reason,
            role=c.role,
            center=c.center_code,
            after_lock=c.after_lock,
        ),
    )


@router.get(
    "/{code}/visits/{visit}/forms/{form}/queries",
    response=Page[QueryOut],
    summary="The queries on a form's items, oldest first",
)
def form_queries(request: HttpRequest, code: str, visit: str, form: str, page: Query[PageQuery]) -> Page[QueryOut]:
    """`since`: only the queries raised or moved after it (the audit trail's `query` entries)."""
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    services.form_definition(protocol_in_force(), visit, form)
    queries = changed_since(selectors.form_queries(reach.subject, visit, form), "query", page.since)
    language = text.api_language(request)
    return paged(queries.select_related("subject__center"), page, lambda q: query_out(q, language))


@router.post("/{code}/queries", response={201: QueryOut}, summary="Raise a query on an item of a form")
def query_raise(request: HttpRequest, code: str, payload: QueryIn) -> Status[QueryOut]:
    reach = reach_subject(request.user, code, Action.RAISE_QUERY)
    protocol = protocol_in_force()
    query = reach.run(
        lambda: services.query_raise(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol,
            visit_code=payload.visit,
            form_code=payload.form,
            item=payload.item,
            text=payload.text,
        ),
        what="raise query",
    )
    return Status(201, query_out(query, text.api_language(request)))


# --- the query inbox --------------------------------------------------------------------------


@queries_router.get("", response=Page[QueryOut], summary="Queries on the subjects of your scope, oldest first")
def queries_list(
    request: HttpRequest, page: Query[PageQuery], status: QueryStatus | None = None, center: str | None = None
) -> Page[QueryOut]:
    """`since`: only the queries raised or moved after it (the audit trail's `query` entries)."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    rows = selectors.queries_in_scope(scope, status=status.value if status else None, center_code=center)
    rows = changed_since(rows, "query", page.since).prefetch_related("messages")
    language = text.api_language(request)
    return paged(rows, page, lambda q: query_out(q, language))


@queries_router.get(
    "/summary", response=QueriesSummaryOut, summary="Queries not closed per center: count, over 30 days, oldest"
)
def queries_summary(
    request: HttpRequest, status: QueryStatus | None = None, center: str | None = None
) -> QueriesSummaryOut:
    """The inbox's table: of the queries listed with the same filters, those not closed, per center."""
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    rows = selectors.queries_in_scope(scope, status=status.value if status else None, center_code=center)
    return QueriesSummaryOut(
        centers=[
            CenterQueriesOut(
                center=found.center, count=found.count, over_30_days=found.over_30_days, oldest_days=found.oldest_days
            )
            for found in selectors.queries_by_center(rows, clock.now())
        ]
    )


def _move(request: HttpRequest, query_id: int, move: QueryMove, words: str, action: Action) -> QueryOut:
    scope = require_somewhere(request.user, Action.READ_CASEBOOK, "queries")
    found = selectors.query_get(scope, query_id)
    reach = reach_subject(request.user, found.subject.code, action)
    query = reach.run(
        lambda: services.query_move(actor=reach.actor, query=found, move=move, text=words), what=f"query {move.value}"
    )
    return query_out(query, text.api_language(request))


@queries_router.post("/{query_id}/answer", response=QueryOut, summary="The center answers a query")
def query_answer(request: HttpRequest, query_id: int, payload: QueryTextIn) -> QueryOut:
    return _move(request, query_id, QueryMove.ANSWER, payload.text, Action.ANSWER_QUERY)


@queries_router.post(
    "/{query_id}/close", response=QueryOut, summary="The monitor or data manager closes a query, with a reason"
)
def query_close(request: HttpRequest, query_id: int, payload: QueryCloseIn) -> QueryOut:
    return _move(request, query_id, QueryMove.CLOSE, payload.reason, Action.CLOSE_QUERY)


@queries_router.post("/{query_id}/reopen", response=QueryOut, summary="The monitor or data manager reopens a query")
def query_reopen(request: HttpRequest, query_id: int, payload: QueryTextIn) -> QueryOut:
    return _move(request, query_id, QueryMove.REOPEN, payload.text, Action.CLOSE_QUERY)


# --- forms: definitions, CSV import -------------------------------------------------------------


def _item_out(item: ItemDef) -> ItemDefOut:
    ranges = []
    if item.is_lab:
        ranges = [
            LabUnitRangeOut(unit=unit, minimum=low, maximum=high)
            for unit in item.units
            for low, high in [lab_range(item, unit)]
        ]
    return ItemDefOut(
        name=item.name,
        group=item.group,
        type=item.type,
        label=presenters.text_of(item.label),
        help=presenters.text_of(item.help) if item.help else None,
        lab=item.is_lab,
        analyte=item.analyte,
        unit=item.unit or None,
        units=list(item.units),
        minimum=item.minimum,
        maximum=item.maximum,
        ranges=ranges,
        required=item.required,
        conditional=item.shown_when is not None or item.required_when is not None,
        codelist=[
            CodeOut(
                code=code,
                label=presenters.text_of(label),
                help=presenters.text_of(item.choice_help[code]) if code in item.choice_help else None,
            )
            for code, label in item.codelist
        ],
        derived=item.derived,
        visit_date=item.visit_date,
        pattern=item.pattern,
    )


@forms_router.get(
    "/{form}",
    response=FormDefinitionOut,
    summary="A form of the protocol: its items with type, unit, plausible range, code list",
)
def form_describe(request: HttpRequest, form: str) -> FormDefinitionOut:
    """What a form's `items` hold (`PUT /api/v1/subjects/{code}/visits/{visit}/forms/{form}`), as the
    protocol in force declares it; labels in the request's language. Every user may read it."""
    protocol = protocol_in_force()
    definition = protocol.forms.get(form)
    if definition is None:
        raise NotFound("No form '{form}' in the protocol.", code="form_unknown", item="form", form=form)
    with _speaking(request):
        return FormDefinitionOut(
            code=definition.code,
            label=presenters.text_of(definition.label),
            visits=[visit.code for visit in protocol.visits if definition.code in visit.forms],
            groups=[
                GroupDefOut(
                    name=group.name,
                    label=presenters.text_of(group.label),
                    repeating=group.repeating,
                    items=[_item_out(item) for item in group.items],
                )
                for group in definition.groups
            ],
            edit_checks=[
                EditCheckOut(code=check.code, message=presenters.text_of(check.message), items=list(check.items))
                for check in definition.edit_checks
            ],
        )


@forms_router.post(
    "/{form}/import.csv",
    response=FormsImportOut,
    summary="Import one form for many visits (CSV: subject, visit, done_on, then the item columns): all rows or none",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def forms_import(request: HttpRequest, form: str, reason: str = "") -> FormsImportOut:
    """The same engine as the pages and the form PUT: each row is one form of one visit; a row
    refused names its line and item, and nothing of the file is stored."""
    protocol = protocol_in_force()
    definition = protocol.forms.get(form)
    if definition is None:
        raise NotFound("No form '{form}' in the protocol.", code="form_unknown", item="form", form=form)
    rows = entries.import_rows(request.body, definition)
    reaches = {}
    for row in rows:
        if row.subject not in reaches:
            reaches[row.subject] = reach_subject(request.user, row.subject, Action.ENTER_FORM_DATA)
    first = next(iter(reaches.values()))
    now = first.actor.now

    def work() -> list[services.FormSaved]:
        saved = []
        for row in rows:
            reach = reaches[row.subject]
            actor = replace(reach.actor, now=now)
            try:
                if row.done_on:
                    services.visit_done_record(
                        actor=actor,
                        subject=reach.subject,
                        protocol=protocol,
                        visit_code=row.visit,
                        done_on=_date(row.done_on, "done_on"),
                        reason=reason,
                    )
                saved.append(
                    services.form_save(
                        actor=actor,
                        subject=reach.subject,
                        protocol=protocol,
                        visit_code=row.visit,
                        form_code=form,
                        items=row.items,
                        reason=reason,
                    )
                )
            except (AccessDenied, NotFound):
                raise
            except DomainError as error:
                raise InvalidInput(
                    "Line {line}: {problem}", code=error.code, item=error.item, line=row.line, problem=error.message
                ) from None
        return saved

    saved = first.run(work, what=f"import {form}")
    return FormsImportOut(
        form=form,
        rows=len(rows),
        changed=sum(1 for s in saved if s.changed),
        queries_opened=[q.pk for s in saved for q in s.queries_opened],
    )


def _date(value: str | None, item: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            "'{value}' is not a date (YYYY-MM-DD).", code="invalid_date", item=item, value=value
        ) from None
