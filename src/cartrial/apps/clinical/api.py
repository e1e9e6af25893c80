"""API: the calculators (calculators.md contract), the screening log as CSV, re-consent and consent withdrawal.

`POST /api/v1/calculators/NAME` takes the calculator's JSON input and answers its JSON output,
exactly as `cartrial calc NAME` does; bad input is a 422 whose `fields` name every offending key.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from cartrial.apps.accounts.access import AccessDenied, access_refusal_record, access_step, scope_for
from cartrial.apps.api import ApiError, _language
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical.views import screening_log_csv
from cartrial.apps.subjects import services as subject_services
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.selectors import subject_get
from cartrial.domain.pathway import Step
from cartrial.domain.scores.errors import CalculatorInputError, UnknownCalculatorError
from cartrial.domain.scores.registry import CALCULATOR_NAMES, calculate, describe
from cartrial.protocols import active_protocol

router = Router(tags=["calculators", "screening"])


def calculator_error(error: CalculatorInputError) -> ApiError:
    """422 with one entry per field (404 for a calculator name that is not in the contract)."""
    if isinstance(error, UnknownCalculatorError):
        return ApiError(404, error.code, str(error))
    return ApiError(422, error.code, str(error), error.field_errors)


@router.get("/calculators", response=list[dict[str, Any]], summary="Calculators of the contract")
def calculator_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [describe(name) for name in CALCULATOR_NAMES]


@router.get("/calculators/{name}", response=dict[str, Any], summary="One calculator: input schema and outputs")
def calculator_describe(request: HttpRequest, name: str) -> dict[str, Any]:
    try:
        return describe(name)
    except CalculatorInputError as error:
        raise calculator_error(error) from None


@router.post(
    "/calculators/{name}",
    response=dict[str, Any],
    summary="Compute a score (JSON in, JSON out; 422 with field errors on bad input)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}},
)
def calculator_compute(request: HttpRequest, name: str) -> dict[str, Any]:
    # The body is read raw: the contract, not a schema of ours, decides what is valid (unknown keys refused).
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        raise ApiError(422, "invalid_json", "The body is not JSON: send one JSON object.") from None
    try:
        return calculate(name, payload)
    except CalculatorInputError as error:
        raise calculator_error(error) from None


@router.get("/screening-log.csv", summary="Screening log of my centers as CSV (pseudonymous)")
def screening_log_export(request: HttpRequest, center: str | None = None) -> HttpResponse:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    if center is not None and center not in scope.center_codes.values():
        raise ApiError(404, "not_found", f"No center '{center}' in your scope.")
    return screening_log_csv(scope, center)


class ReconsentIn(Schema):
    language: str
    signed_on: date


class WithdrawalIn(Schema):
    withdrawn_on: date
    reason: str


def _subject_and_actor(request: HttpRequest, code: str, step: Step) -> tuple[Subject, Actor]:
    scope = scope_for(request.user)  # type: ignore[arg-type]
    try:
        subject = subject_get(scope=scope, code=code)
    except Subject.DoesNotExist:
        raise ApiError(404, "not_found", f"No subject '{code}' in your scope.") from None
    try:
        actor = access_step(
            scope,
            request.user,  # type: ignore[arg-type]
            step,
            center_id=subject.center_id,
            manufacturing_site_id=None,
            center_code=subject.center.code,
        )
    except AccessDenied as denied:
        access_refusal_record(scope, request.user, subject, f"{step.value} (consent)", denied)  # type: ignore[arg-type]
        raise
    return subject, actor


@router.post(
    "/subjects/{code}/consent/reconsent", response=dict[str, Any], summary="Record re-consent on the current version"
)
def consent_reconsent(request: HttpRequest, code: str, payload: ReconsentIn) -> dict[str, Any]:
    subject, actor = _subject_and_actor(request, code, Step.START_SCREENING)
    consent = subject_services.consent_reconsent(
        actor=actor,
        user=request.user,  # type: ignore[arg-type]
        subject=subject,
        protocol=active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None),
        language=payload.language,
        signed_on=payload.signed_on,
    )
    return {"document_version": consent.document_version, "language": consent.language, "signed_on": consent.signed_on}


@router.post("/subjects/{code}/consent/withdrawal", response=dict[str, Any], summary="Record the withdrawal of consent")
def consent_withdrawal(request: HttpRequest, code: str, payload: WithdrawalIn) -> dict[str, Any]:
    subject, actor = _subject_and_actor(request, code, Step.WITHDRAW)
    withdrawal = subject_services.consent_withdraw(
        actor=actor,
        user=request.user,  # type: ignore[arg-type]
        subject=subject,
        protocol=active_protocol(settings.CARTRIAL_PROTOCOL_FILE or None),
        withdrawn_on=payload.withdrawn_on,
        reason=payload.reason,
        ui_language=_language(request),
    )
    subject.refresh_from_db()
    return {
        "withdrawn_on": withdrawal.withdrawn_on,
        "stops": withdrawal.stops,
        "exited_study": withdrawal.exited_study,
        "state": subject.state,
    }
