"""Pages' side of the one error model: a refusal raised by a view becomes a page in the user's language.

`NotFound` answers 404 (nothing is said about other centers), `AccessDenied` 403 with why (the
attempt was recorded by the access entry point), any other refusal that reached here 409. A view
that can show the refusal in its own form catches it itself; this middleware is the floor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cartrial.apps.text import error_text
from cartrial.domain.errors import AccessDenied, DomainError, NotFound

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


def server_error(request: HttpRequest) -> HttpResponse:
    return _page(request, 500, "")
