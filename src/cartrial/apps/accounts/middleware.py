"""Two-factor sign-in in force: nothing but the sign-in pages before the second factor.

A person who gave the password is signed in (Django's session) but not verified until a code is
given (django-otp's `OTPMiddleware` says `request.user.is_verified()`). Until then every page
redirects to the code page, or to the enrolment page for a person whose role requires the second
factor and who has no authenticator yet: no URL gets around it. The API is not concerned (a
bearer token, never the session: docs/adr/0007-two-factor-sign-in.md).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse

from cartrial.apps.accounts import two_factor

# Pages a person between the password and the code may open.
OPEN_BEFORE_SECOND_FACTOR = frozenset({"login", "logout", "set_language", "otp_verify", "otp_enrol"})


class TwoFactorMiddleware:
    """Redirects a session signed in with the password alone to the code or enrolment page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        redirect = second_factor_redirect(request)
        return redirect if redirect is not None else self.get_response(request)


def second_factor_redirect(request: HttpRequest) -> HttpResponse | None:
    """Where a signed-in person must go before this request, or None when it may proceed."""
    user = getattr(request, "user", None)
    if not two_factor.enforced() or user is None or not user.is_authenticated or user.is_verified():
        return None
    if request.path_info.startswith("/api/"):
        return None
    try:
        name = resolve(request.path_info).url_name
    except Resolver404:
        name = None
    if name in OPEN_BEFORE_SECOND_FACTOR:
        return None
    if two_factor.authenticator(user) is not None:
        target = "otp_verify"
    elif two_factor.required_for(user):
        target = "otp_enrol"
    else:
        return None
    url = reverse(target)
    if request.method == "GET":
        url += "?" + urlencode({"next": request.get_full_path()})
    response = HttpResponseRedirect(url)
    if request.headers.get("HX-Request"):
        response["HX-Redirect"] = url
    return response
