"""The JSON API root (django-ninja): token authentication, one error format, routers per app.

Errors: every refusal is JSON `{"code": <stable machine code>, "message": <words>}` with a 4xx
status: 401 without a valid token, 403 for a role that may not act, 404 for anything outside
the user's scope, 409 for a refused pathway step, 422 for invalid input. A bug answers 500
`server_error` in the same format and is logged with its traceback.
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
from ninja.security import HttpBearer

from cartrial.apps.accounts.access import AccessDenied
from cartrial.apps.accounts.services import api_token_authenticate
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.pathway import TransitionRefused


class TokenAuth(HttpBearer):
    """`Authorization: Bearer ct_...`; tokens are created with `cartrial token create USERNAME`."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="cartrial API",
    version="1",
    description="Centers, subjects and pathway transitions of the CAR-T trial. Token authentication.",
    auth=TokenAuth(),
    docs_url="/docs",
    urls_namespace="api",
)


class ApiError(Exception):
    """An error with an HTTP status and a stable code, raised by endpoints."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []


def _language(request: HttpRequest) -> str:
    header = request.headers.get("Accept-Language", "en")
    return "fr" if header.lower().startswith("fr") else "en"


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return api.create_response(request, body, status=exc.status)


@api.exception_handler(AccessDenied)
def _access_denied(request: HttpRequest, exc: AccessDenied) -> HttpResponse:
    return api.create_response(request, {"code": exc.code, "message": exc.message}, status=403)


@api.exception_handler(TransitionRefused)
def _refused(request: HttpRequest, exc: TransitionRefused) -> HttpResponse:
    return api.create_response(request, {"code": exc.code, "message": exc.message_in(_language(request))}, status=409)


@api.exception_handler(InvalidInput)
def _invalid(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    return api.create_response(request, {"code": exc.code, "message": exc.message}, status=422)


@api.exception_handler(DomainError)
def _domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, {"code": exc.code, "message": exc.message}, status=409)


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


@api.exception_handler(NinjaValidationError)
def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields = [{"field": _field_name(err.get("loc", [])), "message": str(err.get("msg", ""))} for err in exc.errors]
    return api.create_response(
        request, {"code": "invalid_input", "message": "The request body is not valid.", "fields": fields}, status=422
    )


# Django answers these itself with a 4xx (and logs them as it should): not bugs.
_DJANGO_REQUEST_ERRORS = (PermissionDenied, SuspiciousOperation, BadRequest, MultiPartParserError)


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Only what no handler above (nor ninja's own, e.g. Http404) claims: a bug. Logged on
    # `django.request` with the traceback, as Django logs a page's 500; the client gets JSON
    # without the details.
    if isinstance(exc, _DJANGO_REQUEST_ERRORS):
        raise exc
    response = api.create_response(
        request, {"code": "server_error", "message": "Internal server error; it has been logged."}, status=500
    )
    log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exc)
    return response


def _register_routers() -> None:
    from cartrial.apps.clinical.api import router as clinical_router
    from cartrial.apps.logistics.api import router as logistics_router
    from cartrial.apps.subjects.api import router as subjects_router
    from cartrial.apps.trial.api import router as trial_router

    api.add_router("/centers", trial_router)
    api.add_router("/subjects", subjects_router)
    api.add_router("", clinical_router)
    api.add_router("/logistics", logistics_router)
    api.add_router("/subjects", "cartrial.apps.biology.api.router")


_register_routers()
