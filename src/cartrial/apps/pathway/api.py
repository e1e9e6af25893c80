"""API: centers, subjects, their steps and timeline, pathway transitions, consent, the audit trail,
corrections, and the feed of changes (the same rules as the pages).

Every list is a `Page` read with `limit`, `offset` and `since`; each list says in its docstring
what `since` reads. Values whose fields a form declares (a step's data) are JSON scalars that
`GET /api/v1/subjects/{code}/steps/{step}` describes; values read back from the audit trail are
the JSON values it recorded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from cartrial.apps.access import (
    can,
    reach_center,
    reach_subject,
    require_somewhere,
    scope_for,
    subject_identity,
    subjects_in_scope,
)
from cartrial.apps.accounts.models import ElectronicSignature
from cartrial.apps.accounts.signing import SignatureCodeIn
from cartrial.apps.api_contract import FieldValues, Page, PageQuery, described_by, paged
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_entries_for_subject, entry_changes
from cartrial.apps.clinical import services as clinical
from cartrial.apps.form_description import FormFieldOut, form_fields
from cartrial.apps.pathway import corrections, steps
from cartrial.apps.pathway.selectors import (
    audit_changes,
    centers_changed_since,
    step_choices,
    subject_facts,
    subjects_changed_since,
    timeline_events,
)
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import ConsentWithdrawal, PathwayEvent, Subject
from cartrial.apps.text import api_language, form_invalid, tr
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.apps.trial.selectors import center_list
from cartrial.domain.corrections import RecordKind, ValueType, correction_action, stored_form
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step, is_final, next_step
from cartrial.domain.roles import ACTION_LABELS, Action

router = Router(tags=["subjects"])
centers_router = Router(tags=["centers"])
changes_router = Router(tags=["changes"])

# A value as the audit trail recorded it: JSON, whatever the record (a number, a text, a list of
# codes, a refusal with its message data).
type AuditValue = str | int | float | bool | list[AuditValue] | dict[str, AuditValue] | None
# A stored record's field value: a number, a text, a date or date-time as ISO text, a yes/no, a list
# of codes (a screening item's choices), or nothing.
type CorrectionValue = str | int | float | bool | list[str] | None

_STEP_FORM = "/api/v1/subjects/{code}/steps/{step}"
_RECORD = "/api/v1/subjects/{code}/corrections?record={record}&id={id}"


# --- centers ---------------------------------------------------------------------------------------


class CenterOut(Schema):
    code: str
    name: str
    city: str
    country: str
    time_zone: str
    language: str
    kind: str
    my_role: str


@centers_router.get("", response=Page[CenterOut], summary="Centers where I have a role")
def centers(request: HttpRequest, page: Query[PageQuery]) -> Page[CenterOut]:
    """By code. `since`: the centers created or changed after it (audit entity `center`) and those
    where my role was granted after it (entity `membership`)."""
    scope = scope_for(request.user)
    rows = centers_changed_since(center_list(center_ids=scope.center_ids), request.user.get_username(), page.since)
    return paged(
        rows,
        page,
        lambda c: CenterOut(
            code=c.code,
            name=c.name,
            city=c.city,
            country=c.country,
            time_zone=c.time_zone,
            language=c.language,
            kind=c.kind,
            my_role=scope.roles_by_center[c.pk].value,
        ),
    )


# --- subjects --------------------------------------------------------------------------------------


class IdentityOut(Schema):
    family_name: str
    given_names: str
    birth_date: str
    hospital_number: str


class SubjectOut(Schema):
    code: str
    center: str
    state: str
    state_label: str
    next_step: str | None
    synthetic: bool
    created_at: datetime
    state_changed_at: datetime
    infusion_date: date | None
    identity: IdentityOut | None = None


class SubjectIn(Schema):
    center: str
    family_name: str
    given_names: str
    birth_date: date
    hospital_number: str


def _out(subject: Subject, language: str, identity: dict[str, Any] | None = None) -> SubjectOut:
    upcoming = next_step(State(subject.state))
    return SubjectOut(
        code=subject.code,
        center=subject.center.code,
        state=subject.state,
        state_label=tr(STATE_LABELS[State(subject.state)], language),
        next_step=upcoming.value if upcoming else None,
        synthetic=subject.synthetic,
        created_at=subject.created_at,
        state_changed_at=subject.state_changed_at,
        infusion_date=subject.infusion_date,
        identity=IdentityOut(**identity) if identity else None,
    )


@router.get("", response=Page[SubjectOut], summary="Subjects in my scope")
def subject_list(
    request: HttpRequest, page: Query[PageQuery], center: str | None = None, state: str | None = None
) -> Page[SubjectOut]:
    """By center, then number; pseudonymous (the identity is read one subject at a time). `since`: the
    subjects about which the audit trail holds an entry after it (the subject or any of its records
    created or changed)."""
    if state is not None and state not in {s.value for s in State}:
        raise InvalidInput("'{state}' is not a state of the pathway.", code="unknown_state", item="state", state=state)
    language = api_language(request)
    scope = scope_for(request.user)
    rows = subjects_changed_since(subjects_in_scope(scope, center_code=center, state=state), page.since)
    return paged(rows, page, lambda s: _out(s, language))


@router.post("", response={201: SubjectOut}, summary="Register a subject (coordinator or investigator)")
def subject_create(request: HttpRequest, payload: SubjectIn) -> Status[SubjectOut]:
    reach = reach_center(request.user, payload.center, Action.REGISTER_SUBJECT)
    subject = subjects.subject_create(
        actor=reach.actor,
        center=reach.center,
        identity=subjects.IdentityInput(
            payload.family_name, payload.given_names, payload.birth_date, payload.hospital_number
        ),
        protocol=protocol_in_force(),
    )
    return Status(201, _out(subject, api_language(request), subject_identity(reach.scope, subject)))


@router.get("/{code}", response=SubjectOut, summary="One subject (identity only for the center's staff)")
def subject_detail(request: HttpRequest, code: str) -> SubjectOut:
    reach = reach_subject(request.user, code)
    return _out(reach.subject, api_language(request), reach.identity)


class TimelineEventOut(Schema):
    id: int
    step: str
    step_label: str
    from_state: str
    to_state: str
    state_label: str
    occurred_at: datetime
    role: str
    center: str
    reason: str
    signature_meaning: str | None = Field(description="What the person signed, when the step carries a signature")


def _step_label(action: str, language: str) -> str:
    try:
        return tr(STEP_LABELS[Step(action)], language)
    except ValueError:
        return tr(ACTION_LABELS[Action(action)], language)


@router.get("/{code}/timeline", response=Page[TimelineEventOut], summary="The subject's pathway timeline")
def subject_timeline(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[TimelineEventOut]:
    """The steps taken, oldest first, as the subject's page shows them. `since`: the steps taken
    after it (their own time) and those whose record was corrected after it (audit entities
    `pathway_event` and `death`)."""
    reach = reach_subject(request.user, code)
    language = api_language(request)

    def out(event: PathwayEvent) -> TimelineEventOut:
        return TimelineEventOut(
            id=event.pk,
            step=event.step,
            step_label=_step_label(event.step, language),
            from_state=event.from_state,
            to_state=event.to_state,
            state_label=tr(STATE_LABELS[State(event.to_state)], language),
            occurred_at=event.occurred_at,
            role=event.role,
            center=event.center_code,
            reason=event.reason,
            signature_meaning=tr(event.signature.meaning, language) if event.signature else None,
        )

    return paged(timeline_events(reach.subject, page.since), page, out)


# --- steps and transitions ------------------------------------------------------------------------


class PathwayStepOut(Schema):
    step: str
    label: str
    main: bool = Field(description="The pathway's next step")
    exit: bool = Field(description="A step that ends the participation (withdrawal, lost to follow-up, death)")


@router.get(
    "/{code}/steps", response=Page[PathwayStepOut], summary="Steps the pathway allows now and my role may perform"
)
def subject_steps(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[PathwayStepOut]:
    """The steps the subject's page offers, in the pathway's order. `since`: they follow from the
    subject's state, so they are listed only when the state changed after it (`state_changed_at`)."""
    reach = reach_subject(request.user, code)
    language = api_language(request)
    choices = step_choices(reach.scope, reach.subject)
    if page.since is not None and reach.subject.state_changed_at <= page.since:
        choices = []
    return paged(
        choices,
        page,
        lambda c: PathwayStepOut(
            step=c.action.value, label=_step_label(c.action.value, language), main=c.main, exit=c.exit
        ),
    )


class PathwayStepFormOut(Schema):
    step: str
    label: str
    offered: bool = Field(description="Whether the subject's page offers the step to me now")
    fields: list[FormFieldOut]


def _chosen(step: str) -> Step | Action:
    for kind in (Step, Action):
        try:
            chosen = kind(step)
        except ValueError:
            continue
        if chosen in steps.STEPS:
            return chosen
    raise InvalidInput("'{step}' is not a step of the pathway.", code="unknown_step", item="step", step=step)


@router.get("/{code}/steps/{step}", response=PathwayStepFormOut, summary="A step's form: the fields its `data` takes")
def subject_step_form(request: HttpRequest, code: str, step: str) -> PathwayStepFormOut:
    """The fields of a step's form, as the step's page shows them (labels in the request's language):
    what `POST /api/v1/subjects/{code}/transitions` takes as `data`. 404 for an unknown step."""
    reach = reach_subject(request.user, code)
    try:
        chosen = _chosen(step)
    except InvalidInput:
        raise NotFound("'{step}' is not a step of the pathway.", code="unknown_step", item="step", step=step) from None
    language = api_language(request)
    fields = form_fields(steps.step_form(chosen, protocol_in_force()), language)
    return PathwayStepFormOut(
        step=chosen.value,
        label=_step_label(chosen.value, language),
        offered=any(c.action is chosen for c in step_choices(reach.scope, reach.subject)),
        fields=fields,
    )


class TransitionIn(Schema):
    step: str = Field(description="A step of the pathway (or an action that takes one)")
    data: FieldValues = Field(default_factory=dict, description=described_by(_STEP_FORM))


@router.post("/{code}/transitions", response=SubjectOut, summary="Perform a pathway step")
def subject_transition(request: HttpRequest, code: str, payload: TransitionIn) -> SubjectOut:
    reach_subject(request.user, code)  # 404 before anything is said about the step
    chosen = _chosen(payload.step)
    reach = reach_subject(request.user, code, chosen)
    protocol = protocol_in_force()
    language = api_language(request)
    form = steps.step_form(chosen, protocol, {k: _form_value(v) for k, v in payload.data.items()})
    unknown = sorted(set(payload.data) - set(form.fields))
    if unknown:
        raise InvalidInput(
            "Unknown field(s) for {step}: {fields}.", code="unknown_field", step=chosen.value, fields=unknown
        )
    if not form.is_valid():
        raise form_invalid(form, language)
    steps.step_run(reach, chosen, form.cleaned_data, protocol)
    reach.subject.refresh_from_db()
    return _out(reach.subject, language, reach.identity)


def _form_value(value: str | int | float | bool | None) -> str:
    """JSON values as an HTML form would send them (booleans as 'on' or absent)."""
    if value is True:
        return "on"
    if value is False or value is None:
        return ""
    return str(value)


# --- consent ---------------------------------------------------------------------------------------


class ReconsentOut(Schema):
    document_version: str
    language: str
    signed_on: date


class ConsentRecordOut(ReconsentOut):
    id: int
    obtained_by: str
    recorded_at: datetime


class ConsentDocumentVersionOut(Schema):
    language: str
    version: str


class ConsentWithdrawalRecordOut(Schema):
    withdrawn_on: date
    reason: str
    stops: list[str] = Field(description="The steps and data collection the withdrawal stopped")
    exited_study: bool
    recorded_at: datetime


class ConsentStatusOut(Schema):
    consents: list[ConsentRecordOut] = Field(description="Every consent signed, oldest first")
    current_versions: list[ConsentDocumentVersionOut]
    consent_current: bool = Field(description="The latest consent is the current version in its language")
    reconsent_due: bool = Field(description="Re-consent on the current version is offered")
    withdrawal: ConsentWithdrawalRecordOut | None
    final: bool = Field(description="The subject's participation has ended")


class ReconsentIn(Schema):
    language: str
    signed_on: date


class ConsentWithdrawalIn(Schema):
    withdrawn_on: date
    reason: str


class ConsentWithdrawalOut(Schema):
    withdrawn_on: date
    stops: list[str]
    exited_study: bool
    state: str


@router.get("/{code}/consent", response=ConsentStatusOut, summary="The subject's consents and withdrawal")
def consent_read(request: HttpRequest, code: str) -> ConsentStatusOut:
    """What the consent page shows: the consents signed, the current versions, whether re-consent is
    due, the withdrawal (screening readers)."""
    reach = reach_subject(request.user, code, Action.READ_SCREENING)
    subject = reach.subject
    protocol = protocol_in_force()
    signed = list(subject.consents.select_related("obtained_by").order_by("signed_on", "pk"))
    current = subject_facts(subject, protocol, now=reach.actor.now).consent_current
    withdrawal = ConsentWithdrawal.objects.filter(subject=subject).first()
    final = is_final(State(subject.state))
    return ConsentStatusOut(
        consents=[
            ConsentRecordOut(
                id=c.pk,
                document_version=c.document_version,
                language=c.language,
                signed_on=c.signed_on,
                obtained_by=c.obtained_by.get_username(),
                recorded_at=c.recorded_at,
            )
            for c in signed
        ],
        current_versions=[
            ConsentDocumentVersionOut(language=language, version=version)
            for language, version in sorted(protocol.current_consent_versions().items())
        ],
        consent_current=current,
        reconsent_due=bool(signed) and not current and withdrawal is None and not final,
        withdrawal=ConsentWithdrawalRecordOut(
            withdrawn_on=withdrawal.withdrawn_on,
            reason=withdrawal.reason,
            stops=[str(s) for s in withdrawal.stops],
            exited_study=withdrawal.exited_study,
            recorded_at=withdrawal.recorded_at,
        )
        if withdrawal
        else None,
        final=final,
    )


@router.post("/{code}/consent/reconsent", response=ReconsentOut, summary="Record re-consent on the current version")
def consent_reconsent(request: HttpRequest, code: str, payload: ReconsentIn) -> ReconsentOut:
    reach = reach_subject(request.user, code, Action.RECORD_RECONSENT)
    consent = reach.run(
        lambda: clinical.consent_reconsent(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol_in_force(),
            language=payload.language,
            signed_on=payload.signed_on,
        )
    )
    return ReconsentOut(
        document_version=consent.document_version, language=consent.language, signed_on=consent.signed_on
    )


@router.post("/{code}/consent/withdrawal", response=ConsentWithdrawalOut, summary="Record the withdrawal of consent")
def consent_withdrawal(request: HttpRequest, code: str, payload: ConsentWithdrawalIn) -> ConsentWithdrawalOut:
    reach = reach_subject(request.user, code, Action.WITHDRAW_CONSENT)
    steps.consent_withdraw(reach, {"withdrawn_on": payload.withdrawn_on, "reason": payload.reason}, protocol_in_force())
    reach.subject.refresh_from_db()
    withdrawal = ConsentWithdrawal.objects.get(subject=reach.subject)
    return ConsentWithdrawalOut(
        withdrawn_on=withdrawal.withdrawn_on,
        stops=[str(s) for s in withdrawal.stops],
        exited_study=withdrawal.exited_study,
        state=reach.subject.state,
    )


# --- audit trail -----------------------------------------------------------------------------------


class AuditFieldChangeOut(Schema):
    field: str
    old: AuditValue = Field(description="The value before, as the audit trail recorded it (null: none)")
    new: AuditValue = Field(description="The value after, as the audit trail recorded it (null: none)")


class AuditOut(Schema):
    sequence: int
    occurred_at: datetime
    actor: str
    role: str
    center: str
    event: str
    changes: list[AuditFieldChangeOut]
    reason: str
    entry_hash: str


def _changes(raw: list[dict[str, Any]]) -> list[AuditFieldChangeOut]:
    return [AuditFieldChangeOut(field=str(c.get("field")), old=c.get("old"), new=c.get("new")) for c in raw]


@router.get("/{code}/audit", response=Page[AuditOut], summary="The subject's audit trail")
def subject_audit(request: HttpRequest, code: str, page: Query[PageQuery]) -> Page[AuditOut]:
    """Oldest first (by sequence). `since`: the entries written after it (their own time)."""
    reach = reach_subject(request.user, code, Action.READ_AUDIT)
    entries = audit_entries_for_subject(reach.subject.code)
    if page.since is not None:
        entries = entries.filter(occurred_at__gt=page.since)
    return paged(
        entries,
        page,
        lambda e: AuditOut(
            sequence=e.sequence,
            occurred_at=e.occurred_at,
            actor=e.actor_username,
            role=e.role,
            center=e.center_code,
            event=e.event,
            changes=_changes(entry_changes(e)),
            reason=e.reason,
            entry_hash=e.entry_hash,
        ),
    )


# --- corrections -----------------------------------------------------------------------------------


class RecordCorrectionIn(SignatureCodeIn):
    record: str = Field(description="Kind of record: " + ", ".join(k.value for k in RecordKind))
    id: str = Field(description="The record's id (the subject's code for planned_apheresis and infusion)")
    field: str = Field(description="The field corrected (see docs/corrections.md for each kind's fields)")
    value: CorrectionValue = Field(
        None,
        description="The corrected value, typed as its field (`GET " + _RECORD + "` lists the record's fields "
        "and types): a number, text, a date (YYYY-MM-DD) or a date and time (ISO; without an offset, the "
        "center's time), a yes/no or a list of codes for a screening item; null empties an optional value",
    )
    reason: str = Field("", description="Why: required (422 reason_required)")
    password: str = Field("", description="Your password, when the record is signed: you sign the corrected record")


class RecordSignatureOut(Schema):
    id: int
    signer: str
    signer_name: str
    role: str
    meaning: str
    signed_at: datetime
    content_sha256: str
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str
    superseded_by: int | None


class RecordCorrectionOut(Schema):
    record: str
    id: str
    values: dict[str, CorrectionValue] = Field(description=described_by(_RECORD))
    signed_by: str | None
    field: str
    old: CorrectionValue
    new: CorrectionValue
    reason: str
    verdict: str | None
    signature: RecordSignatureOut | None
    voided_signatures: list[RecordSignatureOut]


class RecordHistoryEntryOut(Schema):
    at: datetime
    by: str
    name: str
    role: str
    center: str
    field: str
    old: AuditValue = Field(description="The value before, as the audit trail recorded it")
    new: AuditValue = Field(description="The value after, as the audit trail recorded it")
    reason: str
    follows: list[AuditFieldChangeOut] = Field(description="What changed with it in the same record")


class CorrectableFieldOut(Schema):
    name: str
    label: str
    type: ValueType = Field(
        description="How `value` is read: `instant` a date and time, `date`, `number`, `optional_number` "
        "(null: none), `text`, `unit` (a unit's code), `reported` (a QC result as reported), `screening_item` "
        "(as `GET /api/v1/screening-fields` describes it)"
    )
    unit: str


class RecordHistoryOut(Schema):
    record: str
    id: str
    values: dict[str, CorrectionValue] = Field(description="The record's values now, by field (see `fields`)")
    fields: list[CorrectableFieldOut] = Field(description="The fields a correction may change")
    may_correct: bool = Field(description="Whether my role may correct this record")
    signed_by: str | None
    history: list[RecordHistoryEntryOut]
    signatures: list[RecordSignatureOut]


def _signature_out(signature: ElectronicSignature) -> RecordSignatureOut:
    return RecordSignatureOut(
        id=signature.pk,
        signer=signature.signer.get_username(),
        signer_name=signature.signer_name,
        role=signature.role,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
        content_sha256=signature.content_sha256,
        voided_at=signature.voided_at,
        voided_by=signature.voided_by.get_username() if signature.voided_by else None,
        void_reason=signature.void_reason,
        superseded_by=signature.superseded_by_id,
    )


def _values(target: corrections.Target) -> dict[str, CorrectionValue]:
    return {name: _correction_value(value) for name, value in target.values.items()}


def _correction_value(value: object) -> CorrectionValue:
    stored = stored_form(value)
    if isinstance(stored, list):
        return [str(item) for item in stored]
    if stored is None or isinstance(stored, str | int | float | bool):
        return stored
    return str(stored)


@router.post(
    "/{code}/corrections",
    response=RecordCorrectionOut,
    summary="Correct a stored record (with a reason; a signed record is signed again)",
    description=(
        "Correct one field of one stored record of the subject, with the checks of a new value. The old value "
        "stays in the audit trail with who, when and why. A record covered by a signature (the inclusion, the "
        "QP's release, the bedside check for D0) is corrected only by a role that may sign it, who re-enters "
        "their password: the old signature is voided and the corrected record signed. 422 `reason_required`, "
        "`no_change`, `password_required` or the value's own refusal; 403 for a role that may not correct it; "
        "404 outside your scope or for a record of another subject. Kinds and fields: docs/corrections.md."
    ),
)
def correction_create(request: HttpRequest, code: str, payload: RecordCorrectionIn) -> RecordCorrectionOut:
    done = corrections.correction_apply(
        request.user,
        code,
        kind=payload.record,
        record_id=payload.id,
        field=payload.field,
        value=payload.value,
        reason=payload.reason,
        password=payload.password,
        otp_code=payload.otp_code,
        protocol=protocol_in_force(),
    )
    return RecordCorrectionOut(
        record=done.target.record.kind.value,
        id=done.target.record_id,
        values=_values(done.target),
        signed_by=done.target.signed.value if done.target.signed else None,
        field=done.field,
        old=_correction_value(done.old),
        new=_correction_value(done.new),
        reason=done.reason,
        verdict=done.verdict,
        signature=_signature_out(done.signature) if done.signature else None,
        voided_signatures=[_signature_out(s) for s in done.voided],
    )


@router.get(
    "/{code}/corrections",
    response=RecordHistoryOut,
    summary="A stored record's fields, corrections and signatures",
    description="The record's correctable fields and values, whether my role may correct it, old → new, who, "
    "when and why for each correction, and the signatures that covered it (voided ones with who, when and why). "
    "Readable by whoever may see the record.",
)
def correction_list(request: HttpRequest, code: str, record: str, id: str) -> RecordHistoryOut:
    history = corrections.correction_history(request.user, code, kind=record, record_id=id)
    target = history.target
    language = api_language(request)
    return RecordHistoryOut(
        record=target.record.kind.value,
        id=target.record_id,
        values=_values(target),
        fields=[
            CorrectableFieldOut(name=f.name, label=tr(f.label, language), type=f.type, unit=f.unit)
            for f in target.record.fields
        ],
        may_correct=can(history.reach.scope, correction_action(target.record, target.signed), history.reach.subject),
        signed_by=target.signed.value if target.signed else None,
        history=[
            RecordHistoryEntryOut(
                at=e.at,
                by=e.username,
                name=e.name,
                role=e.role,
                center=e.center,
                field=e.field,
                old=e.old,
                new=e.new,
                reason=e.reason,
                follows=_changes(e.follows),
            )
            for e in history.entries
        ],
        signatures=[_signature_out(s) for s in history.signatures],
    )


# --- the feed of changes ---------------------------------------------------------------------------


class AuditCursorQuery(Schema):
    after: int | None = Field(None, ge=0, description="Only the entries after this sequence number (a cursor)")


class AuditFeedEntryOut(Schema):
    sequence: int = Field(description="The entry's place in the audit trail: the cursor for `after`")
    occurred_at: datetime
    event: str
    entity: str
    entity_id: str
    subject: str = Field(description="The subject's code")
    center: str = Field(description="The center where the action was taken")


@changes_router.get(
    "", response=Page[AuditFeedEntryOut], summary="What changed about the subjects whose trail I may read"
)
def audit_changes_list(
    request: HttpRequest, page: Query[PageQuery], cursor: Query[AuditCursorQuery]
) -> Page[AuditFeedEntryOut]:
    """The audit entries about the subjects of my centers where my role reads the audit trail
    (investigators, monitors, data managers), oldest first: which record changed, when, where, never
    the values. `since`: the entries written after it (their own time); `after`: those after a
    sequence number, a cursor that never moves (the last `sequence` read)."""
    scope = require_somewhere(request.user, Action.READ_AUDIT, "changes")

    def out(entry: AuditEntry) -> AuditFeedEntryOut:
        return AuditFeedEntryOut(
            sequence=entry.sequence,
            occurred_at=entry.occurred_at,
            event=entry.event,
            entity=entry.entity,
            entity_id=entry.entity_id,
            subject=entry.subject_code,
            center=entry.center_code,
        )

    return paged(audit_changes(scope, since=page.since, after=cursor.after), page, out)
