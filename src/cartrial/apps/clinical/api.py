"""API: the calculators (calculators.md contract) and the screening log as CSV.

`POST /api/v1/calculators/NAME` takes the calculator's JSON input and answers its JSON output,
exactly as `cartrial calc NAME` does; bad input is a 422 whose `fields` name every offending key.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from cartrial.apps.accounts.access import scope_for
from cartrial.apps.api import ApiError
from cartrial.apps.clinical.views import screening_log_csv
from cartrial.domain.scores.errors import CalculatorInputError, UnknownCalculatorError
from cartrial.domain.scores.registry import CALCULATOR_NAMES, calculate, describe

router = Router(tags=["calculators", "screening"])


def calculator_error(error: CalculatorInputError) -> ApiError:
    """422 with one entry per field (404 for a calculator name that is not in the contract)."""
    if isinstance(error, UnknownCalculatorError):
        return ApiError(404, error.code, error.message)
    return ApiError(422, error.code, error.message, error.field_errors)


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
