"""Response headers Django 5.2 does not set itself: a strict Content-Security-Policy with a
per-request nonce, and `Cache-Control: no-store` on what an authenticated user sees.

CSP: everything from this origin only (hospital networks are closed, nothing comes from a CDN);
no inline script runs unless it carries the request's nonce, no inline event handler at all;
nothing may frame the pages (clickjacking), forms post only here, no plugins, no <base>.
Plotly and htmx set styles through the DOM (allowed); a style *element* is refused unless it
carries the nonce, except two that plotly.js inserts, allowed by their hashes: the empty one it
then fills through the CSSOM (the empty string's hash: no content can be injected that way) and
the map library's stylesheet bundled in plotly.min.js (that exact text; a test recomputes it from
the installed plotly, so an upgrade that changes it fails loudly).

Static files get a policy of their own (`static_file_headers`, through whitenoise).

No-store: pages and API answers of a logged-in user show identity and trial data; a shared
hospital workstation's cache or back button must not show them to the next person. Static files
(served by whitenoise before this middleware) and pages of anonymous visitors (the login page)
stay cacheable.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

# sha256 of the empty string, base64: the empty <style> element plotly.js inserts before filling it.
EMPTY_STYLE_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
# sha256 of the maplibre stylesheet plotly.js (4.1.1) inserts when it loads.
PLOTLY_MAP_STYLE_HASH = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"


def content_security_policy(nonce: str) -> str:
    """The policy for one response, allowing the inline scripts and styles that carry `nonce`."""
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": f"'self' 'nonce-{nonce}' {EMPTY_STYLE_HASH} {PLOTLY_MAP_STYLE_HASH}",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeadersMiddleware:
    """Sets the nonce on the request (`request.csp_nonce`) and the headers on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        # Read back by the `csp_nonce` context processor; HttpRequest declares no such attribute.
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(nonce))
        user = getattr(request, "user", None)  # the session's, or the API token's (set by the endpoint's auth)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


# Static files (served by whitenoise, which answers before the middleware): nothing in them may
# run or load anything when opened on their own (an SVG, a source map); as page resources the
# pages' own policy applies.
STATIC_FILES_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def static_file_headers(headers: Any, path: str, url: str) -> None:
    """WHITENOISE_ADD_HEADERS_FUNCTION: the static files' Content-Security-Policy."""
    headers["Content-Security-Policy"] = STATIC_FILES_POLICY


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """Template context: `csp_nonce` for the few inline <script>/<style> elements that must stay."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
