"""How large a request may be, declared once per kind of upload, and refused before it is read.

Every request that carries a body is measured by its `Content-Length` before any middleware or
view reads a byte of it (the CSRF check reads a form's fields, so this middleware comes before
it): a body longer than its endpoint accepts is answered 413 at once, nothing parsed, nothing
written. Endpoints that take a file name their kind below (the file's own maximum, checked again
by the form or service on the file itself); every other endpoint accepts an ordinary form or JSON
body of at most `BODY_MAXIMUM_BYTES`. A request without a `Content-Length` (chunked) has an empty
body for Django's WSGI handler, so it cannot carry more than it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils import translation

from cartrial.apps.biology.entries import MAX_CSV_BYTES
from cartrial.apps.casebook.entries import MAX_IMPORT_BYTES
from cartrial.apps.logistics.services import MAX_TEMPERATURE_FILE_BYTES
from cartrial.apps.planning.forms import UPLOAD_MAXIMUM_BYTES
from cartrial.apps.text import api_language
from cartrial.apps.text import render as render_message
from cartrial.domain.text import N_, Message

# An ordinary form or JSON body (a form's values, a step's fields): far below this.
BODY_MAXIMUM_BYTES = 1_000_000
# Around a file: a multipart form's boundaries and other fields, or a JSON string's escapes
# (a file sent as JSON text may double in size: `\n`, `\"`, `\u00b0`).
MULTIPART_ALLOWANCE_BYTES = 64_000


@dataclass(frozen=True)
class UploadKind:
    """A kind of file people send, its own maximum, and the request that carries it."""

    item: str  # the input item named in the refusal
    file_bytes: int
    request_bytes: int


def _multipart(item: str, file_bytes: int) -> UploadKind:
    return UploadKind(item, file_bytes, file_bytes + MULTIPART_ALLOWANCE_BYTES)


KINETICS_CSV_PAGE = _multipart("file", MAX_CSV_BYTES)
KINETICS_CSV_BODY = UploadKind("body", MAX_CSV_BYTES, MAX_CSV_BYTES)
FORM_IMPORT_CSV_BODY = UploadKind("body", MAX_IMPORT_BYTES, MAX_IMPORT_BYTES)
TEMPERATURE_LOG_PAGE = _multipart("file", MAX_TEMPERATURE_FILE_BYTES)
TEMPERATURE_LOG_JSON = UploadKind("csv", MAX_TEMPERATURE_FILE_BYTES, 2 * MAX_TEMPERATURE_FILE_BYTES)
PLANNING_INSTANCE_PAGE = _multipart("instance", UPLOAD_MAXIMUM_BYTES)
ORDINARY_BODY = UploadKind("body", BODY_MAXIMUM_BYTES, BODY_MAXIMUM_BYTES)

# Each endpoint that takes a file, by its URL name (pages and API).
UPLOAD_KINDS: dict[str, UploadKind] = {
    "biology:import": KINETICS_CSV_PAGE,
    "api:observations_import": KINETICS_CSV_BODY,
    "api:forms_import": FORM_IMPORT_CSV_BODY,
    "logistics:action": TEMPERATURE_LOG_PAGE,
    "api:logistics_temperature_log": TEMPERATURE_LOG_JSON,
    "planning:plan": PLANNING_INSTANCE_PAGE,
}

# The largest request any endpoint accepts: Django's own limit on a body read whole, a backstop
# behind the middleware (settings.DATA_UPLOAD_MAX_MEMORY_SIZE).
LARGEST_REQUEST_BYTES = max(kind.request_bytes for kind in (*UPLOAD_KINDS.values(), ORDINARY_BODY))

# Below this no endpoint refuses a body: its URL is not even looked up.
SMALLEST_REQUEST_BYTES = min(kind.request_bytes for kind in (*UPLOAD_KINDS.values(), ORDINARY_BODY))

TOO_LARGE = N_("Larger than {megabytes} MB, the most accepted here for '{item}': refused unread, nothing was stored.")


def upload_kind(path: str) -> UploadKind:
    """What the endpoint at `path` accepts (an ordinary body when it takes no file)."""
    try:
        view_name = resolve(path).view_name
    except Resolver404:
        return ORDINARY_BODY
    return UPLOAD_KINDS.get(view_name, ORDINARY_BODY)


def declared_length(request: HttpRequest) -> int:
    """The body's length as the client declared it (0 when absent or not a number, as Django reads it)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class UploadLimitMiddleware:
    """Refuse a body longer than its endpoint accepts, from its declared length, before reading it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = declared_length(request)
        if length > SMALLEST_REQUEST_BYTES:
            kind = upload_kind(request.path_info)
            if length > kind.request_bytes:
                return _refused(request, kind)
        return self.get_response(request)


def _refused(request: HttpRequest, kind: UploadKind) -> HttpResponse:
    megabytes = f"{kind.file_bytes / 1_000_000:g}"
    message = Message(TOO_LARGE, {"megabytes": megabytes, "item": kind.item})
    if request.path_info.startswith("/api/"):
        body = {
            "code": "request_too_large",
            "message": render_message(message, api_language(request)),
            "item": kind.item,
        }
        response: HttpResponse = JsonResponse(body, status=413)
    else:
        # Before the session and locale middlewares: the language as they would choose it, no user.
        language = translation.get_language_from_request(request)
        request.user = AnonymousUser()
        with translation.override(language):
            context = {"status": 413, "message": render_message(message, language)}
            response = render(request, "error.html", context, status=413)
    return response
