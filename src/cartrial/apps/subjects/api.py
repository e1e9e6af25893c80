"""API: subjects, their allowed steps, pathway transitions, eligibility and audit (same rules as pages)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from cartrial.apps.accounts.access import (
    AccessDenied,
    access_create_subject,
    access_refusal_record,
    access_step,
    acting_role_for_step,
    scope_for,
)
from cartrial.apps.api import ApiError, _language
from cartrial.apps.audit.selectors import audit_entries_for_subject, entry_changes
from cartrial.apps.subjects import selectors, services
from cartrial.apps.subjects.forms import STEP_HANDLERS, StepContext, step_form
from cartrial.apps.subjects.models import Subject
from cartrial.apps.trial.models import Center
from cartrial.domain.pathway import State, Step, next_step, state_label, step_label, steps_from
from cartrial.protocols import Protocol, active_protocol

router = Router(tags=["subjects"])


def _protocol() -> Protocol:
    return active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None)


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


class ScreeningLabIn(Schema):
    analyte: str
    value: float | None
    unit: str
    sampled_at: datetime
    lower_limit: float | None = None
    upper_limit: float | None = None
    limit_of_quantification: float | None = None


class EligibilityIn(Schema):
    """Screening data (keys of `domain.screening.SCREENING_FIELDS`, null = not assessed) and labs."""

    data: dict[str, Any]
    labs: list[ScreeningLabIn] = []
    attestations: dict[str, str] = {}
    reason: str = ""


class EligibilityOut(Schema):
    verdict: str
    criteria: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    notes: list[str]


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


def _out(subject: Subject, language: str, identity: dict[str, Any] | None = None) -> SubjectOut:
    upcoming = next_step(State(subject.state))
    return SubjectOut(
        code=subject.code,
        center=subject.center.code,
        state=subject.state,
        state_label=state_label(State(subject.state), language),
        next_step=upcoming.value if upcoming else None,
        synthetic=subject.synthetic,
        created_at=subject.created_at,
        state_changed_at=subject.state_changed_at,
        infusion_date=subject.infusion_date,
        identity=IdentityOut(**identity) if identity else None,
    )


def _get(request: HttpRequest, code: str) -> Subject:
    try:
        return selectors.subject_get(scope=scope_for(request.user), code=code)  # type: ignore[arg-type]
    except Subject.DoesNotExist:
        raise ApiError(404, "not_found", f"No subject '{code}' in your scope.") from None


@router.get("", response=list[SubjectOut], summary="Subjects in my scope")
def subject_list(request: HttpRequest, center: str | None = None, state: str | None = None) -> list[SubjectOut]:
    if state is not None and state not in {s.value for s in State}:
        raise ApiError(422, "unknown_state", f"'{state}' is not a state of the pathway.")
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language(request)
    return [_out(s, language) for s in selectors.subject_list(scope=scope, center_code=center, state=state)]


@router.post("", response={201: SubjectOut}, summary="Register a subject (coordinator or investigator)")
def subject_create(request: HttpRequest, payload: SubjectIn) -> Status[SubjectOut]:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    center = Center.objects.filter(code=payload.center, pk__in=scope.center_ids).first()
    if center is None:
        raise ApiError(404, "not_found", f"No center '{payload.center}' in your scope.")
    actor = access_create_subject(scope, request.user, center)  # type: ignore[arg-type]
    subject = services.subject_create(
        actor=actor,
        center=center,
        manufacturing_site=Center.objects.filter(kind=Center.Kind.MANUFACTURING, active=True).first(),
        identity=services.IdentityInput(
            payload.family_name, payload.given_names, payload.birth_date, payload.hospital_number
        ),
        protocol=_protocol(),
    )
    identity = selectors.subject_identity(scope=scope, subject=subject)
    return Status(201, _out(subject, _language(request), identity))


@router.get("/{code}", response=SubjectOut, summary="One subject (identity only for the center's staff)")
def subject_detail(request: HttpRequest, code: str) -> SubjectOut:
    subject = _get(request, code)
    identity = selectors.subject_identity(scope=scope_for(request.user), subject=subject)  # type: ignore[arg-type]
    return _out(subject, _language(request), identity)


@router.get("/{code}/steps", response=list[StepOut], summary="Steps the pathway allows now and my role may perform")
def subject_steps(request: HttpRequest, code: str) -> list[StepOut]:
    subject = _get(request, code)
    scope = scope_for(request.user)  # type: ignore[arg-type]
    language = _language(request)
    return [
        StepOut(step=s.value, label=step_label(s, language))
        for s in steps_from(State(subject.state))
        if acting_role_for_step(scope, s, subject.center_id, subject.manufacturing_site_id) is not None
    ]


@router.post("/{code}/transitions", response=SubjectOut, summary="Perform a pathway step")
def subject_transition(request: HttpRequest, code: str, payload: TransitionIn) -> SubjectOut:
    subject = _get(request, code)
    scope = scope_for(request.user)  # type: ignore[arg-type]
    try:
        step = Step(payload.step)
    except ValueError:
        raise ApiError(422, "unknown_step", f"'{payload.step}' is not a step of the pathway.") from None
    try:
        actor = access_step(
            scope,
            request.user,  # type: ignore[arg-type]
            step,
            center_id=subject.center_id,
            manufacturing_site_id=subject.manufacturing_site_id,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{step.value}", denied)  # type: ignore[arg-type]
        raise
    protocol = _protocol()
    form = step_form(step, protocol, {k: _form_value(v) for k, v in payload.data.items()})
    unknown = sorted(set(payload.data) - set(form.fields))
    if unknown:
        raise ApiError(422, "unknown_field", f"Unknown field(s) for {step.value}: {', '.join(unknown)}")
    if not form.is_valid():
        fields = [{"field": name, "message": " ".join(str(m) for m in msgs)} for name, msgs in form.errors.items()]
        raise ApiError(422, "invalid_input", "The step's data is not valid.", fields)
    language = _language(request)
    STEP_HANDLERS[step][1](form.cleaned_data, StepContext(actor, request.user, subject, protocol, language))  # type: ignore[arg-type]
    subject.refresh_from_db()
    identity = selectors.subject_identity(scope=scope, subject=subject)
    return _out(subject, language, identity)


def _form_value(value: Any) -> Any:
    """JSON values as an HTML form would send them (booleans as 'on' or absent)."""
    if value is True:
        return "on"
    if value is False or value is None:
        return ""
    return str(value)


@router.post(
    "/{code}/eligibility",
    response=EligibilityOut,
    summary="Record screening data and labs; answers the verdict computed from them (per criterion, values used)",
)
def subject_eligibility(request: HttpRequest, code: str, payload: EligibilityIn) -> EligibilityOut:
    subject = _get(request, code)
    scope = scope_for(request.user)  # type: ignore[arg-type]
    try:
        actor = access_step(
            scope,
            request.user,  # type: ignore[arg-type]
            Step.CONFIRM_ELIGIBILITY,
            center_id=subject.center_id,
            manufacturing_site_id=None,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{Step.CONFIRM_ELIGIBILITY.value}", denied)  # type: ignore[arg-type]
        raise
    from cartrial.apps.clinical.api import calculator_error
    from cartrial.apps.clinical.services import LabObservationInput, screening_record
    from cartrial.domain.scores.errors import CalculatorInputError

    try:
        saved = screening_record(
            actor=actor,
            user=request.user,  # type: ignore[arg-type]
            subject=subject,
            protocol=_protocol(),
            data=payload.data,
            labs=[LabObservationInput(**lab.dict()) for lab in payload.labs],
            attestations=payload.attestations,
            reason=payload.reason,
        )
    except CalculatorInputError as error:
        raise calculator_error(error) from None
    result = saved.assessment.result_json
    return EligibilityOut(
        verdict=saved.assessment.verdict, criteria=result["criteria"], scores=result["scores"], notes=result["notes"]
    )


@router.get("/{code}/audit", response=list[AuditOut], summary="The subject's audit trail")
def subject_audit(request: HttpRequest, code: str) -> list[AuditOut]:
    subject = _get(request, code)
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
        for e in audit_entries_for_subject(subject.code)
    ]
