"""Pages' side of the one error model: a refusal raised by a view becomes a page in the user's language.

`NotFound` answers 404 (nothing is said about other centers), `AccessDenied` 403 with why (the
attempt was recorded by the access entry point), any other refusal that reached here 409. A view
that can show the refusal in its own form catches it itself; this middleware is the floor.

When the database cannot be reached (restarted, connection cut mid-transaction, a lock or
serialization failure), the answer is 503 with `Retry-After`, not a bug's 500: a page drawn
without the database (the usual page asks it who is signed in) or, under /api/, the API's JSON
error `database_unavailable`. Found by the fault drills (benchmarks/faults/, docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from cartrial.apps.text import api_language, error_text
from cartrial.apps.text import render as render_message
from cartrial.domain.errors import AccessDenied, DomainError, NotFound
from cartrial.domain.text import N_, Message

logger = logging.getLogger("cartrial.pages")


class DomainErrorMiddleware:
    """Render a `DomainError` that escaped a page view (API errors have their own handler)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/") or not isinstance(exception, DomainError):
            return None
        if isinstance(exception, NotFound):
            return not_found(request, exception)
        status = 403 if isinstance(exception, AccessDenied) else 409
        return _page(request, status, error_text(exception))


def _page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def forbidden(request: HttpRequest, exception: Any = None) -> HttpResponse:
    message = error_text(exception) if isinstance(exception, DomainError) else ""
    return _page(request, 403, message)


def not_found(request: HttpRequest, exception: Any = None) -> HttpResponse:
    return _page(request, 404, "")


RETRY_AFTER_SECONDS = 30
DATABASE_UNAVAILABLE = N_(
    "The database cannot be reached just now. Try again in a minute; if you were saving, "
    "check whether it was saved before entering it again."
)


def database_unavailable(error: BaseException | None) -> bool:
    """A failure of the database connection, not of the code: retrying later can succeed."""
    return isinstance(error, OperationalError | InterfaceError)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with `Retry-After`, drawn without the database: JSON under /api/, else a plain page."""
    if request.path.startswith("/api/"):
        language = api_language(request)
        body = {"code": "database_unavailable", "message": render_message(Message(DATABASE_UNAVAILABLE), language)}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json; charset=utf-8")
    else:
        message = render_message(Message(DATABASE_UNAVAILABLE))
        page = render_to_string("unavailable.html", {"message": message})  # no request: no context processor
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler, called while the exception is being handled (so it is known here)."""
    if database_unavailable(sys.exc_info()[1]):
        return unavailable_response(request)
    try:
        return _page(request, 500, "")
    except Exception:
        # The usual page itself failed (it asks the database who is signed in): a plain one.
        logger.exception("the error page could not be drawn")
        return HttpResponse(render_to_string("unavailable.html", {"status": 500}), status=500)
