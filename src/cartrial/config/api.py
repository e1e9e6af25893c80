"""The JSON API root (django-ninja): token authentication, the one error format, every app's router.

Errors are JSON `{"code": <stable machine code>, "message": <in the request's language>}` (plus
`item` when one input item is refused, `fields` for field-by-field validation) with a status
chosen by the error's class: 401 without a valid token, 403 for a role that may not act, 404 for
anything outside the user's scope, 409 for a rule that refuses (a pathway guard, a wrong stage),
422 for invalid input, 503 `database_unavailable` (with `Retry-After`) when the database cannot
be reached. Any other exception is a bug: answered 500 `server_error` in the same format and
logged with its traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.log import log_response
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.security import HttpBearer

from cartrial.apps.accounts.services import api_token_authenticate
from cartrial.apps.api_contract import ERROR_STATUSES, ErrorOut
from cartrial.apps.text import FormInvalid, api_language, error_text, render
from cartrial.config.errors import database_unavailable, unavailable_response
from cartrial.domain.errors import AccessDenied, DomainError, InvalidInput, NotFound
from cartrial.domain.scores.errors import CalculatorInputError, UnknownCalculatorError
from cartrial.domain.text import N_, Message


class TokenAuth(HttpBearer):
    """`Authorization: Bearer ct_...`; tokens are created with `cartrial token create USERNAME`."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class CartrialAPI(NinjaAPI):
    """The API whose OpenAPI schema declares, on every operation, the error answers the handlers
    below give (`ErrorOut`): a client learns every response it may get from the schema alone."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error.pop("$defs", {}))
        components["ErrorOut"] = error
        reference = {"$ref": "#/components/schemas/ErrorOut"}
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(
                        status, {"description": description, "content": {"application/json": {"schema": reference}}}
                    )
        return schema


api = CartrialAPI(
    title="cartrial API",
    version="1",
    description="Centers, subjects and pathway transitions of the CAR-T trial. Token authentication.",
    auth=TokenAuth(),
    docs_url="/docs",
    urls_namespace="api",
)


def error_status(error: DomainError) -> int:
    """The HTTP status of a refusal, by its class."""
    if isinstance(error, AccessDenied):
        return 403
    if isinstance(error, NotFound | UnknownCalculatorError):
        return 404
    if isinstance(error, InvalidInput):
        return 422
    return 409


@api.exception_handler(DomainError)
def _domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
    body: dict[str, Any] = {"code": exc.code, "message": error_text(exc, api_language(request))}
    if exc.item:
        body["item"] = exc.item
    if isinstance(exc, FormInvalid):
        body["fields"] = exc.fields
    elif isinstance(exc, CalculatorInputError) and exc.field_errors:
        body["fields"] = exc.field_errors
    return api.create_response(request, body, status=error_status(exc))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"code": "unauthenticated", "message": "A valid API token is required."}, status=401
    )


def _field_name(loc: Any) -> str:
    """The field as the client named it: ninja's location is (source, [body parameter,] field...)."""
    parts = [str(p) for p in loc]
    # A JSON body is parsed into one named parameter (`payload`), which the client never sees.
    drop = 2 if parts[:1] == ["body"] and len(parts) > 2 else 1
    return ".".join(parts[drop:])


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja's own refusals (e.g. a body that is not JSON) in the API's one error format.
    code = "bad_request" if exc.status_code == 400 else f"http_{exc.status_code}"
    return api.create_response(request, {"code": code, "message": str(exc)}, status=exc.status_code)


# The schema's refusals in the reader's language: pydantic says them in English only. Its error
# types and context (`ge`, `expected`...) are stable; a type not listed keeps pydantic's words.
_SCHEMA_REFUSALS: dict[str, str] = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not expected here."),
    "greater_than_equal": N_("Must be at least {ge}."),
    "less_than_equal": N_("Must be at most {le}."),
    "greater_than": N_("Must be above {gt}."),
    "less_than": N_("Must be below {lt}."),
    "literal_error": N_("Must be one of: {expected}."),
    "enum": N_("Must be one of: {expected}."),
    "union_tag_invalid": N_("Must be one of: {expected_tags}."),
    "timezone_aware": N_("Give the time with its offset (e.g. +01:00 or Z)."),
    "datetime_parsing": N_("Enter a date and time (ISO 8601, e.g. 2026-12-01T08:30:00+01:00)."),
    "datetime_from_date_parsing": N_("Enter a date and time (ISO 8601, e.g. 2026-12-01T08:30:00+01:00)."),
    "date_parsing": N_("Enter a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": N_("Enter a date (YYYY-MM-DD)."),
    "int_type": N_("Enter a whole number."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_type": N_("Enter a number."),
    "float_parsing": N_("Enter a number."),
    "bool_type": N_("Enter true or false."),
    "bool_parsing": N_("Enter true or false."),
    "string_type": N_("Enter a text."),
    "string_too_long": N_("At most {max_length} characters."),
    "too_short": N_("At least {min_length} items."),
    "too_long": N_("At most {max_length} items."),
    "list_type": N_("Enter a list."),
    "model_type": N_("Enter an object."),
    "dict_type": N_("Enter an object."),
}


def _schema_refusal(error: dict[str, Any], language: str) -> str:
    msgid = _SCHEMA_REFUSALS.get(str(error.get("type", "")))
    if msgid is None:
        return str(error.get("msg", ""))
    return render(Message(msgid, dict(error.get("ctx") or {})), language)


@api.exception_handler(NinjaValidationError)
def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    language = api_language(request)
    fields = [
        {"field": _field_name(err.get("loc", [])), "message": _schema_refusal(err, language)} for err in exc.errors
    ]
    message = render(Message(N_("The request is not valid: see each field.")), language)
    return api.create_response(request, {"code": "invalid_input", "message": message, "fields": fields}, status=422)


# Django answers these itself with a 4xx (and logs them as it should): not bugs.
_DJANGO_REQUEST_ERRORS = (PermissionDenied, SuspiciousOperation, BadRequest, MultiPartParserError)


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Only what no handler above (nor ninja's own, e.g. Http404) claims: a bug. Logged on
    # `django.request` with the traceback, as Django logs a page's 500; the client gets JSON
    # without the details.
    if isinstance(exc, _DJANGO_REQUEST_ERRORS):
        raise exc
    if database_unavailable(exc):
        # Not a bug: the database restarted or the connection was cut; logged, and the client
        # is told to try again (the transaction was rolled back, or its commit is unknown).
        unavailable = unavailable_response(request)
        log_response("Database unavailable: %s", request.path, response=unavailable, request=request, exception=exc)
        return unavailable
    response = api.create_response(
        request, {"code": "server_error", "message": "Internal server error; it has been logged."}, status=500
    )
    log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exc)
    return response


def _register_routers() -> None:
    from cartrial.apps.administration.api import router as administration_router
    from cartrial.apps.alerts.api import router as alerts_router
    from cartrial.apps.biology.api import cohort_router as kinetics_router
    from cartrial.apps.biology.api import router as biology_router
    from cartrial.apps.calendars.api import router as calendars_router
    from cartrial.apps.calendars.api import subjects_router as calendars_subjects_router
    from cartrial.apps.casebook.api import forms_router, queries_router
    from cartrial.apps.casebook.api import router as casebook_router
    from cartrial.apps.casebook.api import study_router as casebook_study_router
    from cartrial.apps.clinical.api import router as clinical_router
    from cartrial.apps.dashboards.api import router as dashboards_router
    from cartrial.apps.dashboards.api import subjects_router as dashboards_subjects_router
    from cartrial.apps.exports.api import router as exports_router
    from cartrial.apps.jobs.api import router as jobs_router
    from cartrial.apps.logistics.api import router as logistics_router
    from cartrial.apps.pathway.api import centers_router, changes_router
    from cartrial.apps.pathway.api import router as pathway_router
    from cartrial.apps.planning.api import router as planning_router
    from cartrial.apps.planning.api import subjects_router as planning_subjects_router
    from cartrial.apps.safety.api import router as safety_router
    from cartrial.apps.safety.api import terms_router
    from cartrial.apps.toxicity.api import router as toxicity_router

    api.add_router("/centers", centers_router)
    api.add_router("/subjects", pathway_router)
    api.add_router("/changes", changes_router)
    api.add_router("", clinical_router)
    api.add_router("/logistics", logistics_router)
    api.add_router("/subjects", biology_router)
    api.add_router("/kinetics", kinetics_router)
    api.add_router("/subjects", casebook_router)
    api.add_router("/queries", queries_router)
    api.add_router("/forms", forms_router)
    api.add_router("/casebook", casebook_study_router)
    api.add_router("/dashboards", dashboards_router)
    api.add_router("/subjects", dashboards_subjects_router)
    api.add_router("/alerts", alerts_router)
    api.add_router("/subjects", safety_router)
    api.add_router("", terms_router)
    api.add_router("/subjects", toxicity_router)
    api.add_router("/calendars", calendars_router)
    api.add_router("/subjects", calendars_subjects_router)
    api.add_router("/jobs", jobs_router)
    api.add_router("/exports", exports_router)
    api.add_router("/planning", planning_router)
    api.add_router("/subjects", planning_subjects_router)
    api.add_router("/administration", administration_router)


_register_routers()
