"""Login (with the user's language applied), the second factor (code, enrolment, recovery codes),
the idle-session refresh, and logout."""

from __future__ import annotations

import django_otp
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from cartrial.apps.accounts import two_factor
from cartrial.apps.accounts.context import language_for
from cartrial.apps.accounts.models import User
from cartrial.apps.text import error_text
from cartrial.domain.errors import DomainError


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        language = language_for(form.get_user())
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax", httponly=False)
        return response


class LogoutView(auth_views.LogoutView):
    pass


def _next(request: HttpRequest) -> str:
    """The page asked for before the second factor, if it is one of this site's."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, require_https=request.is_secure()):
        return wanted
    return reverse(settings.LOGIN_REDIRECT_URL)


def _verified(request: HttpRequest, device: object) -> None:
    """The session now carries the second factor; a new session key (no fixation across the step)."""
    django_otp.login(request, device)
    request.session.cycle_key()


@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    """The code from the authenticator app (or a recovery code) after the password."""
    user: User = request.user  # type: ignore[assignment]
    if user.is_verified():  # type: ignore[attr-defined]
        return HttpResponseRedirect(_next(request))
    if two_factor.authenticator(user) is None:
        return redirect(f"{reverse('otp_enrol')}?next={_next(request)}")
    error = None
    if request.method == "POST":
        try:
            device = two_factor.sign_in_verify(user=user, code=request.POST.get("otp_code", ""))
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            _verified(request, device)
            return HttpResponseRedirect(_next(request))
    context = {"error": error, "next": _next(request), "hide_nav": True}
    return render(request, "accounts/otp_verify.html", context, status=422 if error else 200)


@login_required
def otp_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code drawn here, confirm with a first code, then
    keep the recovery codes shown once."""
    user: User = request.user  # type: ignore[assignment]
    if two_factor.authenticator(user) is not None:
        # Enrolled already: a new phone goes through a reset, never around the current code.
        return redirect("otp_security" if user.is_verified() else "otp_verify")  # type: ignore[attr-defined]
    device = two_factor.pending_device(user)
    error = None
    if request.method == "POST":
        try:
            codes = two_factor.enrol_confirm(user=user, device=device, code=request.POST.get("otp_code", ""))
        except DomainError as refusal:
            error = error_text(refusal)
        else:
            _verified(request, device)
            context = {"codes": codes, "next": _next(request), "first": True}
            return render(request, "accounts/recovery_codes.html", context)
    context = {
        "qr_svg": two_factor.qr_svg(device),
        "secret": two_factor.secret_for_typing(device),
        "required": two_factor.required_for(user),
        "error": error,
        "next": _next(request),
        "hide_nav": True,
    }
    return render(request, "accounts/otp_enrol.html", context, status=422 if error else 200)


@login_required
def otp_security(request: HttpRequest) -> HttpResponse:
    """One's second factor: enrolled or not, recovery codes left, new recovery codes."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        codes = two_factor.recovery_codes_renew(user=user)
        return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": reverse("otp_security")})
    context = {
        "enrolled": two_factor.authenticator(user) is not None,
        "codes_left": two_factor.recovery_codes_left(user),
        "required": two_factor.required_for(user),
        "enforced": two_factor.enforced(),
    }
    return render(request, "accounts/otp_security.html", context)


@require_POST
def session_refresh(request: HttpRequest) -> HttpResponse:
    """ "Stay signed in" of the idle warning: this request itself renews the session (saved on every
    request); answers how long it now lasts, or 401 once it has ended."""
    if not request.user.is_authenticated:
        return JsonResponse({"code": "unauthenticated", "message": "The session has ended."}, status=401)
    return JsonResponse({"seconds": int(settings.SESSION_COOKIE_AGE)})
