"""API: subjects, their allowed steps, pathway transitions, consent and the audit trail (same rules as pages)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.responses import Status

from cartrial.apps.access import can, reach_center, reach_subject, scope_for, subject_identity, subjects_in_scope
from cartrial.apps.accounts.models import ElectronicSignature
from cartrial.apps.audit.selectors import audit_entries_for_subject, entry_changes
from cartrial.apps.clinical import services as clinical
from cartrial.apps.pathway import corrections, steps
from cartrial.apps.subjects import services as subjects
from cartrial.apps.subjects.models import ConsentWithdrawal, Subject
from cartrial.apps.text import api_language, form_invalid, tr
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.apps.trial.selectors import center_list
from cartrial.domain.corrections import RecordKind, stored_form
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import STATE_LABELS, STEP_LABELS, State, Step, next_step, steps_from
from cartrial.domain.roles import Action

router = Router(tags=["subjects"])
centers_router = Router(tags=["centers"])


class CenterOut(Schema):
    code: str
    name: str
    city: str
    country: str
    time_zone: str
    language: str
    kind: str
    my_role: str


@centers_router.get("", response=list[CenterOut], summary="Centers where I have a role")
def centers(request: HttpRequest) -> list[CenterOut]:
    scope = scope_for(request.user)
    return [
        CenterOut(
            code=c.code,
            name=c.name,
            city=c.city,
            country=c.country,
            time_zone=c.time_zone,
            language=c.language,
            kind=c.kind,
            my_role=scope.roles_by_center[c.pk].value,
        )
        for c in center_list(center_ids=scope.center_ids)
    ]


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


class StepOut(Schema):
    step: str
    label: str


class TransitionIn(Schema):
    step: str
    data: dict[str, Any] = {}


class AuditOut(Schema):
    sequence: int
    occurred_at: datetime
    actor: str
    role: str
    center: str
    event: str
    changes: list[dict[str, Any]]
    reason: str
    entry_hash: str


class CorrectionIn(Schema):
    record: str = Field(description="Kind of record: " + ", ".join(k.value for k in RecordKind))
    id: str = Field(description="The record's id (the subject's code for planned_apheresis and infusion)")
    field: str = Field(description="The field corrected (see docs/corrections.md for each kind's fields)")
    value: Any = Field(
        None,
        description="The corrected value: a number, text, a date (YYYY-MM-DD) or a date and time "
        "(ISO; without an offset, the center's time); null empties an optional number",
    )
    reason: str = Field("", description="Why: required (422 reason_required)")
    password: str = Field("", description="Your password, when the record is signed: you sign the corrected record")


class SignatureOut(Schema):
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


class CorrectionOut(Schema):
    record: str
    id: str
    values: dict[str, Any]
    signed_by: str | None
    field: str
    old: Any
    new: Any
    reason: str
    verdict: str | None
    signature: SignatureOut | None
    voided_signatures: list[SignatureOut]


class HistoryEntryOut(Schema):
    at: datetime
    by: str
    name: str
    role: str
    center: str
    field: str
    old: Any
    new: Any
    reason: str
    follows: list[dict[str, Any]]


class HistoryOut(Schema):
    record: str
    id: str
    values: dict[str, Any]
    signed_by: str | None
    history: list[HistoryEntryOut]
    signatures: list[SignatureOut]


class ReconsentIn(Schema):
    language: str
    signed_on: date


class WithdrawalIn(Schema):
    withdrawn_on: date
    reason: str


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


@router.get("", response=list[SubjectOut], summary="Subjects in my scope")
def subject_list(request: HttpRequest, center: str | None = None, state: str | None = None) -> list[SubjectOut]:
    if state is not None and state not in {s.value for s in State}:
        raise InvalidInput("'{state}' is not a state of the pathway.", code="unknown_state", item="state", state=state)
    language = api_language(request)
    scope = scope_for(request.user)
    return [_out(s, language) for s in subjects_in_scope(scope, center_code=center, state=state)]


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


@router.get("/{code}/steps", response=list[StepOut], summary="Steps the pathway allows now and my role may perform")
def subject_steps(request: HttpRequest, code: str) -> list[StepOut]:
    reach = reach_subject(request.user, code)
    language = api_language(request)
    return [
        StepOut(step=s.value, label=tr(STEP_LABELS[s], language))
        for s in steps_from(State(reach.subject.state))
        if can(reach.scope, s, reach.subject)
    ]


def _chosen(step: str) -> Step | Action:
    for kind in (Step, Action):
        try:
            chosen = kind(step)
        except ValueError:
            continue
        if chosen in steps.STEPS:
            return chosen
    raise InvalidInput("'{step}' is not a step of the pathway.", code="unknown_step", item="step", step=step)


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


def _form_value(value: Any) -> Any:
    """JSON values as an HTML form would send them (booleans as 'on' or absent)."""
    if value is True:
        return "on"
    if value is False or value is None:
        return ""
    return str(value)


@router.post("/{code}/consent/reconsent", response=dict[str, Any], summary="Record re-consent on the current version")
def consent_reconsent(request: HttpRequest, code: str, payload: ReconsentIn) -> dict[str, Any]:
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
    return {"document_version": consent.document_version, "language": consent.language, "signed_on": consent.signed_on}


@router.post("/{code}/consent/withdrawal", response=dict[str, Any], summary="Record the withdrawal of consent")
def consent_withdrawal(request: HttpRequest, code: str, payload: WithdrawalIn) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.WITHDRAW_CONSENT)
    steps.consent_withdraw(reach, {"withdrawn_on": payload.withdrawn_on, "reason": payload.reason}, protocol_in_force())
    reach.subject.refresh_from_db()
    withdrawal = ConsentWithdrawal.objects.get(subject=reach.subject)
    return {
        "withdrawn_on": withdrawal.withdrawn_on,
        "stops": withdrawal.stops,
        "exited_study": withdrawal.exited_study,
        "state": reach.subject.state,
    }


@router.get("/{code}/audit", response=list[AuditOut], summary="The subject's audit trail")
def subject_audit(request: HttpRequest, code: str) -> list[AuditOut]:
    reach = reach_subject(request.user, code, Action.READ_AUDIT)
    return [
        AuditOut(
            sequence=e.sequence,
            occurred_at=e.occurred_at,
            actor=e.actor_username,
            role=e.role,
            center=e.center_code,
            event=e.event,
            changes=entry_changes(e),
            reason=e.reason,
            entry_hash=e.entry_hash,
        )
        for e in audit_entries_for_subject(reach.subject.code)
    ]


def _signature_out(signature: ElectronicSignature) -> SignatureOut:
    return SignatureOut(
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


def _values(target: corrections.Target) -> dict[str, Any]:
    return {name: stored_form(value) for name, value in target.values.items()}


@router.post(
    "/{code}/corrections",
    response=CorrectionOut,
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
def correction_create(request: HttpRequest, code: str, payload: CorrectionIn) -> CorrectionOut:
    done = corrections.correction_apply(
        request.user,
        code,
        kind=payload.record,
        record_id=payload.id,
        field=payload.field,
        value=payload.value,
        reason=payload.reason,
        password=payload.password,
        protocol=protocol_in_force(),
    )
    return CorrectionOut(
        record=done.target.record.kind.value,
        id=done.target.record_id,
        values=_values(done.target),
        signed_by=done.target.signed.value if done.target.signed else None,
        field=done.field,
        old=stored_form(done.old),
        new=stored_form(done.new),
        reason=done.reason,
        verdict=done.verdict,
        signature=_signature_out(done.signature) if done.signature else None,
        voided_signatures=[_signature_out(s) for s in done.voided],
    )


@router.get(
    "/{code}/corrections",
    response=HistoryOut,
    summary="A stored record's corrections and signatures",
    description="Old → new, who, when and why for each correction of the record, and the signatures that "
    "covered it (voided ones with who, when and why). Readable by whoever may see the record.",
)
def correction_list(request: HttpRequest, code: str, record: str, id: str) -> HistoryOut:
    history = corrections.correction_history(request.user, code, kind=record, record_id=id)
    target = history.target
    return HistoryOut(
        record=target.record.kind.value,
        id=target.record_id,
        values=_values(target),
        signed_by=target.signed.value if target.signed else None,
        history=[
            HistoryEntryOut(
                at=e.at,
                by=e.username,
                name=e.name,
                role=e.role,
                center=e.center,
                field=e.field,
                old=e.old,
                new=e.new,
                reason=e.reason,
                follows=e.follows,
            )
            for e in history.entries
        ],
        signatures=[_signature_out(s) for s in history.signatures],
    )
