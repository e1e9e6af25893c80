"""API: the calculators (calculators.md contract), screening data with its verdict, the screening log (CSV).

`POST /api/v1/calculators/NAME` takes the calculator's JSON input and answers its JSON output,
exactly as `cartrial calc NAME` does; bad input is a 422 whose `fields` name every offending key.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.clinical.services import LabObservationInput, screening_record
from cartrial.apps.clinical.views import screening_log_csv
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.roles import Action
from cartrial.domain.scores.registry import CALCULATOR_NAMES, calculate, describe

router = Router(tags=["calculators", "screening"])


@router.get("/calculators", response=list[dict[str, Any]], summary="Calculators of the contract")
def calculator_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [describe(name) for name in CALCULATOR_NAMES]


@router.get("/calculators/{name}", response=dict[str, Any], summary="One calculator: input schema and outputs")
def calculator_describe(request: HttpRequest, name: str) -> dict[str, Any]:
    return describe(name)


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
        raise InvalidInput("The body is not JSON: send one JSON object.", code="invalid_json") from None
    return calculate(name, payload)


@router.get("/screening-log.csv", summary="Screening log of my centers as CSV (pseudonymous)")
def screening_log_export(request: HttpRequest, center: str | None = None) -> HttpResponse:
    scope = require_somewhere(request.user, Action.READ_SCREENING, "screening_log")
    if center is not None and center not in scope.center_codes.values():
        raise NotFound("No center '{center}' in your scope.", code="not_found", center=center)
    return screening_log_csv(scope, center)


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


@router.post(
    "/subjects/{code}/eligibility",
    response=EligibilityOut,
    summary="Record screening data and labs; answers the verdict computed from them (per criterion, values used)",
)
def subject_eligibility(request: HttpRequest, code: str, payload: EligibilityIn) -> EligibilityOut:
    reach = reach_subject(request.user, code, Action.ENTER_SCREENING_DATA)
    saved = reach.run(
        lambda: screening_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=protocol_in_force(),
            data=payload.data,
            labs=[LabObservationInput(**lab.dict()) for lab in payload.labs],
            attestations=payload.attestations,
            reason=payload.reason,
        ),
        what="enter_screening_data",
    )
    result = saved.assessment.result_json
    return EligibilityOut(
        verdict=saved.assessment.verdict, criteria=result["criteria"], scores=result["scores"], notes=result["notes"]
    )
