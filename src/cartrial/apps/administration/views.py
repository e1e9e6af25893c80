"""Pages of the sponsor's administrator: centers, people and their roles, suspensions, API tokens;
and the study's audit trail (its own permission), with its CSV download.

Adapters only: every page passes the access entry point, every write is a service of the app that
owns the record (accounts for people, roles and tokens; trial for centers), audited there."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from cartrial.apps.access import centers_for, reach_network, require_somewhere
from cartrial.apps.accounts import services as accounts
from cartrial.apps.accounts import two_factor
from cartrial.apps.accounts.models import ApiToken, Membership
from cartrial.apps.administration import forms as admin_forms
from cartrial.apps.administration import selectors
from cartrial.apps.audit.services import Actor
from cartrial.apps.pathway.audit_trail import audit_rows
from cartrial.apps.text import error_text
from cartrial.apps.trial import services as trial
from cartrial.apps.trial.models import Center
from cartrial.domain.access_terms import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX, access_last_day
from cartrial.domain.errors import DomainError, InvalidInput, NotFound
from cartrial.domain.roles import Action, Role

PAGE = "administration"
AUDIT_PAGE = "study_audit"
AUDIT_PAGE_SIZE = 100


def _administrator(request: HttpRequest) -> Actor:
    """The sponsor's administrator acting (AccessDenied, recorded, for anyone else)."""
    return reach_network(request.user, Action.ADMINISTER, PAGE)[1]


def _refusal(error: DomainError) -> tuple[str, str | None, int]:
    return error_text(error), error.item, 422 if isinstance(error, InvalidInput) else 409


def _center(code: str) -> Center:
    center = Center.objects.filter(code=code.strip().upper()).first()
    if center is None:
        raise NotFound("No center '{center}'.", code="not_found", item="center", center=code)
    return center


@login_required
@require_http_methods(["GET", "POST"])
def centers_page(request: HttpRequest) -> HttpResponse:
    """Every center and the lab; a POST registers a center."""
    actor = _administrator(request)
    form = admin_forms.CenterCreateForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                center = trial.center_create(
                    actor=actor, **{k: v for k, v in form.cleaned_data.items() if k != "active"}
                )
            except DomainError as refusal:
                error, _item, status = _refusal(refusal)
            else:
                messages.success(
                    request, gettext("Center %(code)s registered.") % {"code": center.code}, extra_tags="ok"
                )
                return redirect("administration:centers")
        else:
            status = 422
    context = {"centers": Center.objects.order_by("code"), "form": form, "error": error}
    return render(request, "administration/centers.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def center_page(request: HttpRequest, code: str) -> HttpResponse:
    """One center's values; a POST changes them (its code never changes)."""
    actor = _administrator(request)
    center = _center(code)
    initial = {f: getattr(center, f) for f in ("name", "city", "country", "time_zone", "language", "kind", "active")}
    form = admin_forms.CenterForm(request.POST if request.method == "POST" else None, initial=initial)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                trial.center_update(actor=actor, center=center, **form.cleaned_data)
            except DomainError as refusal:
                error, _item, status = _refusal(refusal)
            else:
                messages.success(request, gettext("Center %(code)s saved.") % {"code": center.code}, extra_tags="ok")
                return redirect("administration:centers")
        else:
            status = 422
    return render(
        request, "administration/center.html", {"center": center, "form": form, "error": error}, status=status
    )


def _membership_rows(memberships: Any, now: Any) -> list[dict[str, Any]]:
    rows = []
    for m in memberships:
        last_day = access_last_day(m.ends_at, m.center.time_zone) if m.ends_at else None
        rows.append({"membership": m, "last_day": last_day, "ended": m.ends_at is not None and m.ends_at <= now})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def users_page(request: HttpRequest) -> HttpResponse:
    """Every account with its roles per center; a POST creates an account."""
    actor = _administrator(request)
    form = admin_forms.UserCreateForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = accounts.user_create(actor=actor, **data)
            except DomainError as refusal:
                error, item, status = _refusal(refusal)
                if item in form.fields:
                    form.add_error(item, error)
            else:
                messages.success(
                    request, gettext("Account %(username)s created.") % {"username": user.username}, extra_tags="ok"
                )
                return redirect("administration:user", username=user.username)
        else:
            status = 422
    users = [
        {"user": u, "memberships": _membership_rows(u.memberships.all(), actor.now)}
        for u in selectors.users_with_memberships()
    ]
    return render(request, "administration/users.html", {"users": users, "form": form, "error": error}, status=status)


def _user_forms(user: Any, data: Any = None, action: str = "") -> dict[str, forms.Form]:
    """The user page's forms, the one posted bound to `data`."""
    made: dict[str, forms.Form] = {
        "edit": admin_forms.UserForm(
            initial={f: getattr(user, f) for f in ("username", "first_name", "last_name", "email", "language")}
        ),
        "grant": admin_forms.MembershipGrantForm(),
        "suspend": admin_forms.ReasonForm(),
        "reinstate": admin_forms.ReasonForm(),
        "otp_reset": admin_forms.ReasonForm(),
        "token_create": admin_forms.TokenCreateForm(initial={"days": TOKEN_DAYS_DEFAULT}),
    }
    if action == "edit":
        made["edit"] = admin_forms.UserForm(data)
    elif action == "grant":
        made["grant"] = admin_forms.MembershipGrantForm(data)
    elif action in ("suspend", "reinstate", "otp_reset"):
        made[action] = admin_forms.ReasonForm(data)
    elif action == "token_create":
        made["token_create"] = admin_forms.TokenCreateForm(data)
    elif action == "change":
        made["change"] = admin_forms.MembershipChangeForm(data)
    return made


def _user_action(actor: Actor, user: Any, action: str, form: forms.Form) -> str:
    """Run the posted action through its service; what to say when done (a new token: itself)."""
    data = form.cleaned_data
    if action == "edit":
        user = accounts.user_update(actor=actor, user=user, **data)
        return gettext("Account %(username)s saved.") % {"username": user.username}
    if action == "grant":
        center = _center(data["center"])
        accounts.membership_grant(actor=actor, user=user, center=center, role=Role(data["role"]))
        return gettext("Role granted at %(center)s.") % {"center": center.code}
    if action == "change":
        membership = (
            Membership.objects.select_related("center").filter(user=user, center__code=data["center"].upper()).first()
        )
        if membership is None:
            raise NotFound(
                "No role of {username} at {center}.",
                code="not_found",
                item="center",
                username=user.username,
                center=data["center"],
            )
        accounts.membership_change(
            actor=actor,
            membership=membership,
            role=Role(data["role"]),
            last_day=data["last_day"],
            reason=data["reason"],
        )
        return gettext("Role at %(center)s saved.") % {"center": membership.center.code}
    if action == "suspend":
        accounts.user_suspend(actor=actor, user=user, reason=data["reason"])
        return gettext("%(username)s is suspended: their sessions and API tokens are refused from now on.") % {
            "username": user.username
        }
    if action == "reinstate":
        accounts.user_reinstate(actor=actor, user=user, reason=data["reason"])
        return gettext("%(username)s is reinstated.") % {"username": user.username}
    if action == "otp_reset":
        two_factor.device_reset(actor=actor, username=user.username, reason=data["reason"])
        return gettext(
            "The second factor of %(username)s is reset: they enrol an authenticator app at their next sign-in."
        ) % {"username": user.username}
    raise NotFound("No action '{action}'.", code="not_found", item="action", action=action)


@login_required
@require_http_methods(["GET", "POST"])
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    """One account: its details, roles per center (with their last day), suspension, API tokens.
    Each POST names its `action`; a new token is shown once, on the page that created it."""
    actor = _administrator(request)
    user = selectors.user_named(username)
    if user is None:
        raise NotFound("No user '{username}'.", code="not_found", item="username", username=username)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    made = _user_forms(user, request.POST, action)
    error, status, new_token = "", 200, ""
    if action:
        form = made.get(action)
        if form is None:
            raise NotFound("No action '{action}'.", code="not_found", item="action", action=action)
        if not form.is_valid():
            status = 422
        elif action == "token_create":
            try:
                new_token = accounts.api_token_create(
                    actor=actor, user=user, label=form.cleaned_data["label"], days=form.cleaned_data["days"]
                )
            except DomainError as refusal:
                error, _item, status = _refusal(refusal)
            else:
                status = 201
                made["token_create"] = admin_forms.TokenCreateForm(initial={"days": TOKEN_DAYS_DEFAULT})
        else:
            try:
                said = _user_action(actor, user, action, form)
            except DomainError as refusal:
                error, _item, status = _refusal(refusal)
            else:
                messages.success(request, said, extra_tags="ok")
                user.refresh_from_db()
                return redirect("administration:user", username=user.username)
    context = {
        "person": user,
        "memberships": _membership_rows(user.memberships.all(), actor.now),
        "tokens": selectors.api_tokens(user.username),
        "second_factor": {
            "enrolled": two_factor.authenticator(user) is not None,
            "codes_left": two_factor.recovery_codes_left(user),
            "required": two_factor.required_for(user),
        },
        "forms": made,
        "centers": Center.objects.filter(active=True).order_by("code"),
        "roles": admin_forms.role_choices(),
        "error": error,
        "new_token": new_token,
        "now": actor.now,
        "token_days_max": TOKEN_DAYS_MAX,
    }
    return render(request, "administration/user.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    """Every API token (prefix, label, owner, created, last used, expiry, revoked); a POST revokes one."""
    actor = _administrator(request)
    error, status = "", 200
    if request.method == "POST":
        token_id = request.POST.get("token", "")
        if not token_id.isdigit() or not ApiToken.objects.filter(pk=int(token_id)).exists():
            raise NotFound("No API token {token}.", code="api_token_not_found", item="token", token=token_id)
        try:
            row = accounts.api_token_revoke(actor=actor, token=token_id)
        except DomainError as refusal:
            error, _item, status = _refusal(refusal)
        else:
            messages.success(
                request, gettext("API token %(prefix)s… revoked.") % {"prefix": row.prefix}, extra_tags="ok"
            )
            if request.POST.get("back") == "user":
                return redirect("administration:user", username=row.user.username)
            return redirect("administration:tokens")
    context = {"tokens": selectors.api_tokens(request.GET.get("user", "")), "now": actor.now, "error": error}
    return render(request, "administration/tokens.html", context, status=status)


def _audit_filter(
    request: HttpRequest, center_codes: set[str]
) -> tuple[admin_forms.AuditFilterForm, selectors.AuditFilter]:
    """The filters asked for; a center outside the reader's is as unknown (404)."""
    form = admin_forms.AuditFilterForm(request.GET)
    if not form.is_valid():
        field = next(iter(form.errors))
        raise InvalidInput(
            "The filter '{item}' is not valid: {why}",
            code="invalid_input",
            item=field,
            why=" ".join(str(m) for m in form.errors[field]),
        )
    data = form.cleaned_data
    center = (data["center"] or "").strip().upper()
    if center and center not in center_codes:
        raise NotFound("No center '{center}' in your scope.", code="not_found", item="center", center=center)
    chosen = selectors.AuditFilter(
        date_from=data["date_from"],
        date_to=data["date_to"],
        center=center,
        actor=data["actor"] or "",
        event=data["event"] or "",
        entity=(data["entity"] or "").strip(),
        subject=data["subject"] or "",
    )
    return form, chosen


def audit_reader_centers(user: Any) -> set[str]:
    """The codes of the centers where the user's role reads the study's audit trail (AccessDenied,
    recorded, when none)."""
    scope = require_somewhere(user, Action.READ_STUDY_AUDIT, AUDIT_PAGE)
    return {scope.center_codes[cid] for cid in centers_for(scope, Action.READ_STUDY_AUDIT)}


@login_required
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    """The study's audit trail, newest first, filtered and paginated; rendered as a subject's trail is."""
    codes = audit_reader_centers(request.user)
    form, chosen = _audit_filter(request, codes)
    entries = selectors.study_audit_entries(codes, chosen)
    offset = form.cleaned_data.get("offset") or 0
    total = entries.count()
    window = list(entries[offset : offset + AUDIT_PAGE_SIZE])
    query = request.GET.copy()
    query.pop("offset", None)
    context = {
        "form": form,
        "entries": audit_rows(window),
        "show_subject": True,
        "total": total,
        "first": offset + 1 if window else 0,
        "last": offset + len(window),
        "previous": max(offset - AUDIT_PAGE_SIZE, 0) if offset else None,
        "next": offset + AUDIT_PAGE_SIZE if offset + AUDIT_PAGE_SIZE < total else None,
        "query": query.urlencode(),
        "centers": sorted(codes),
    }
    return render(request, "administration/audit.html", context)


def audit_csv_response(entries: Any) -> StreamingHttpResponse:
    """The filtered entries as a CSV download, streamed (shared by the page and the API)."""
    response = StreamingHttpResponse(selectors.audit_csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="study-audit.csv"'
    return response


@login_required
@require_GET
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The study's audit trail as filtered on the page, as CSV (cells safe in a spreadsheet)."""
    codes = audit_reader_centers(request.user)
    _form, chosen = _audit_filter(request, codes)
    return audit_csv_response(selectors.study_audit_entries(codes, chosen))
