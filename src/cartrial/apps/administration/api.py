"""API of the administration pages: centers, accounts and their roles per center (with a last day
of access), suspension and reinstatement, API tokens (with an expiry), and the study's audit trail
with its CSV download (its own permission, `read_study_audit`)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from cartrial.apps.accounts import services as accounts
from cartrial.apps.accounts import two_factor
from cartrial.apps.accounts.models import ApiToken, Membership, User
from cartrial.apps.administration import selectors
from cartrial.apps.administration.views import (
    _administrator,
    _center,
    audit_csv_response,
    audit_reader_centers,
)
from cartrial.apps.api_contract import Page, PageQuery, changed_since, paged
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import entry_changes
from cartrial.apps.trial import services as trial
from cartrial.apps.trial.models import Center
from cartrial.domain.access_terms import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX, access_last_day
from cartrial.domain.errors import NotFound
from cartrial.domain.roles import Role

router = Router(tags=["administration"])

CenterKind = Literal["clinical", "manufacturing", "sponsor"]
Language = Literal["fr", "en"]
RoleCode = Literal[
    "investigator",
    "coordinator",
    "apheresis",
    "pharmacist",
    "manufacturing",
    "monitor",
    "data_manager",
    "sponsor_admin",
]


# --- centers ---------------------------------------------------------------------------------------


class CenterValuesIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    city: str = Field(max_length=100)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code, capitals (FR)")
    time_zone: str = Field(max_length=64, description="An IANA time zone (Europe/Paris)")
    language: Language
    kind: CenterKind
    active: bool = True


class CenterCreateIn(CenterValuesIn):
    code: str = Field(min_length=2, max_length=6, description="2 to 6 capital letters; prefixes subject codes")


class CenterAdminOut(Schema):
    code: str
    name: str
    city: str
    country: str
    time_zone: str
    language: str
    kind: CenterKind
    active: bool


def _center_out(center: Center) -> CenterAdminOut:
    return CenterAdminOut(
        code=center.code,
        name=center.name,
        city=center.city,
        country=center.country,
        time_zone=center.time_zone,
        language=center.language,
        kind=center.kind,  # type: ignore[arg-type]
        active=center.active,
    )


@router.get("/centers", response=Page[CenterAdminOut], summary="Every center and lab (sponsor's administrator)")
def admin_centers(request: HttpRequest, page: Query[PageQuery]) -> Page[CenterAdminOut]:
    _administrator(request)
    rows = changed_since(Center.objects.order_by("code"), "center", page.since, field="code")
    return paged(rows, page, _center_out)


@router.post(
    "/centers",
    response={201: CenterAdminOut},
    summary="Register a center (audited)",
    description="422 naming the item: a code that is not 2–6 capitals or is taken, an unknown time zone, a country "
    "that is not a two-letter code.",
)
def admin_center_create(request: HttpRequest, payload: CenterCreateIn) -> Status[CenterAdminOut]:
    actor = _administrator(request)
    values = payload.model_dump(exclude={"active"})
    return Status(201, _center_out(trial.center_create(actor=actor, **values)))


@router.put(
    "/centers/{code}",
    response=CenterAdminOut,
    summary="Change a center's values (audited; its code never changes)",
    description="409 `center_kind_in_use`: the kind changes only while nobody holds a role there and it has no "
    "subject. An inactive center gives nobody access.",
)
def admin_center_update(request: HttpRequest, code: str, payload: CenterValuesIn) -> CenterAdminOut:
    actor = _administrator(request)
    center = _center(code)
    return _center_out(trial.center_update(actor=actor, center=center, **payload.model_dump()))


# --- users and their roles ---------------------------------------------------------------------------


class MembershipOut(Schema):
    center: str
    role: RoleCode
    last_day: date | None = Field(description="The last day of access at the center (its time zone); null: no end")
    ends_at: datetime | None = Field(description="The instant access ends (the midnight after the last day)")
    in_force: bool = Field(description="False once the end has passed: the membership gives no access")


class UserAdminOut(Schema):
    username: str
    first_name: str
    last_name: str
    email: str
    language: str
    active: bool = Field(description="False while suspended")
    suspended_at: datetime | None
    suspension_reason: str
    second_factor_enrolled: bool = Field(description="An authenticator app is enrolled for two-factor sign-in")
    memberships: list[MembershipOut]


def _user_out(user: User, now: datetime) -> UserAdminOut:
    return UserAdminOut(
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        language=user.language,
        active=user.is_active,
        suspended_at=user.suspended_at,
        suspension_reason=user.suspension_reason,
        second_factor_enrolled=two_factor.authenticator(user) is not None,
        memberships=[_membership_out(m, now) for m in user.memberships.all()],
    )


def _membership_out(m: Membership, now: datetime) -> MembershipOut:
    return MembershipOut(
        center=m.center.code,
        role=m.role,  # type: ignore[arg-type]
        last_day=access_last_day(m.ends_at, m.center.time_zone) if m.ends_at else None,
        ends_at=m.ends_at,
        in_force=m.ends_at is None or now < m.ends_at,
    )


def _user(username: str) -> User:
    user = selectors.user_named(username)
    if user is None:
        raise NotFound("No user '{username}'.", code="not_found", item="username", username=username)
    return user


@router.get("/users", response=Page[UserAdminOut], summary="Every account with its roles per center")
def admin_users(request: HttpRequest, page: Query[PageQuery]) -> Page[UserAdminOut]:
    actor = _administrator(request)
    rows = selectors.users_with_memberships()
    if page.since is not None:
        changed = AuditEntry.objects.filter(occurred_at__gt=page.since, entity__in=["user", "membership"])
        names = {entity_id.partition("@")[0].lower() for entity_id in changed.values_list("entity_id", flat=True)}
        rows = [u for u in rows if u.username.lower() in names]  # type: ignore[assignment]
    return paged(rows, page, lambda u: _user_out(u, actor.now))


class UserValuesIn(Schema):
    username: str = Field(min_length=1, max_length=150, description="Unique whatever its case")
    first_name: str = Field(max_length=150)
    last_name: str = Field(max_length=150)
    email: str = Field("", max_length=254)
    language: Literal["", "fr", "en"] = ""


class UserCreateIn(UserValuesIn):
    password: str = Field(min_length=12, max_length=128, description="The initial password (never returned)")


@router.post(
    "/users",
    response={201: UserAdminOut},
    summary="Create an account (audited)",
    description="422 `duplicate_username` when the username is taken in any case (it names the existing account).",
)
def admin_user_create(request: HttpRequest, payload: UserCreateIn) -> Status[UserAdminOut]:
    actor = _administrator(request)
    user = accounts.user_create(actor=actor, **payload.model_dump())
    return Status(201, _user_out(_user(user.username), actor.now))


@router.put(
    "/users/{username}",
    response=UserAdminOut,
    summary="Change an account's username, names, e-mail or language (audited)",
    description="422 `duplicate_username` when the new username is another account's in any case.",
)
def admin_user_update(request: HttpRequest, username: str, payload: UserValuesIn) -> UserAdminOut:
    actor = _administrator(request)
    user = accounts.user_update(actor=actor, user=_user(username), **payload.model_dump())
    return _user_out(_user(user.username), actor.now)


class MembershipGrantIn(Schema):
    center: str = Field(min_length=2, max_length=8)
    role: RoleCode


class MembershipChangeIn(Schema):
    role: RoleCode
    last_day: date | None = Field(None, description="The last day of access at the center; null: no end")
    reason: str = Field("", max_length=500)


@router.post(
    "/users/{username}/memberships",
    response={201: UserAdminOut},
    summary="Grant a role at a center (one role per center; audited)",
    description="422 `role_center_mismatch`: the manufacturing role belongs to a lab and only it; "
    "`duplicate_membership`: the person already has a role there.",
)
def admin_membership_grant(request: HttpRequest, username: str, payload: MembershipGrantIn) -> Status[UserAdminOut]:
    actor = _administrator(request)
    user = _user(username)
    accounts.membership_grant(actor=actor, user=user, center=_center(payload.center), role=Role(payload.role))
    return Status(201, _user_out(_user(user.username), actor.now))


@router.put(
    "/users/{username}/memberships/{center}",
    response=UserAdminOut,
    summary="Change a role at a center, or the last day of access there (audited)",
    description="After the last day (midnight at the center) the membership gives no page, no API, no subject.",
)
def admin_membership_change(
    request: HttpRequest, username: str, center: str, payload: MembershipChangeIn
) -> UserAdminOut:
    actor = _administrator(request)
    user = _user(username)
    membership = Membership.objects.select_related("center").filter(user=user, center__code=center.upper()).first()
    if membership is None:
        raise NotFound(
            "No role of {username} at {center}.", code="not_found", item="center", username=username, center=center
        )
    accounts.membership_change(
        actor=actor, membership=membership, role=Role(payload.role), last_day=payload.last_day, reason=payload.reason
    )
    return _user_out(_user(user.username), actor.now)


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=500, description="Why: kept in the audit trail")


@router.post(
    "/users/{username}/suspension",
    response=UserAdminOut,
    summary="Suspend an account: its sessions end and its tokens are refused from the next request (audited)",
    description="409 `already_suspended`, `suspend_self`.",
)
def admin_user_suspend(request: HttpRequest, username: str, payload: ReasonIn) -> UserAdminOut:
    actor = _administrator(request)
    user = accounts.user_suspend(actor=actor, user=_user(username), reason=payload.reason)
    return _user_out(_user(user.username), actor.now)


@router.post(
    "/users/{username}/reinstatement",
    response=UserAdminOut,
    summary="Reinstate a suspended account: sign-in and its tokens not revoked nor expired work again (audited)",
    description="409 `not_suspended`.",
)
def admin_user_reinstate(request: HttpRequest, username: str, payload: ReasonIn) -> UserAdminOut:
    actor = _administrator(request)
    user = accounts.user_reinstate(actor=actor, user=_user(username), reason=payload.reason)
    return _user_out(_user(user.username), actor.now)


@router.post(
    "/users/{username}/two-factor-reset",
    response=UserAdminOut,
    summary="Reset a person's second factor (a lost phone): authenticator and recovery codes removed, "
    "they enrol again at their next sign-in (audited with the reason)",
    description="404 `user_not_found`; 422 `reason_required`.",
)
def admin_user_two_factor_reset(request: HttpRequest, username: str, payload: ReasonIn) -> UserAdminOut:
    actor = _administrator(request)
    user = two_factor.device_reset(actor=actor, username=_user(username).username, reason=payload.reason)
    return _user_out(_user(user.username), actor.now)


# --- API tokens --------------------------------------------------------------------------------------


class TokenOut(Schema):
    id: int
    prefix: str = Field(description="The token's first characters (the token itself is never stored)")
    label: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    revoked: bool
    usable: bool = Field(description="Neither revoked nor expired, and its owner not suspended")


def _token_out(row: ApiToken, now: datetime) -> TokenOut:
    return TokenOut(
        id=row.pk,
        prefix=row.prefix,
        label=row.label,
        owner=row.user.username,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked=row.revoked,
        usable=not row.revoked and now < row.expires_at and row.user.is_active,
    )


@router.get("/tokens", response=Page[TokenOut], summary="Every API token, newest first (optionally one owner's)")
def admin_tokens(request: HttpRequest, page: Query[PageQuery], owner: str = "") -> Page[TokenOut]:
    actor = _administrator(request)
    rows = changed_since(selectors.api_tokens(owner), "api_token", page.since, field="prefix")
    return paged(rows, page, lambda t: _token_out(t, actor.now))


class TokenCreateIn(Schema):
    owner: str = Field(min_length=1, max_length=150, description="The username the token acts as")
    label: str = Field(min_length=1, max_length=100, description="What the token is for")
    days: int = Field(TOKEN_DAYS_DEFAULT, ge=1, le=TOKEN_DAYS_MAX, description="How long it is valid, in days")


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself, returned this once: keep it, it is never shown again")


@router.post(
    "/tokens",
    response={201: TokenCreatedOut},
    summary="Create an API token for an account, with its expiry (audited); the token is returned once",
    description="409 `user_suspended`: no token for a suspended account.",
)
def admin_token_create(request: HttpRequest, payload: TokenCreateIn) -> Status[TokenCreatedOut]:
    actor = _administrator(request)
    token = accounts.api_token_create(actor=actor, user=_user(payload.owner), label=payload.label, days=payload.days)
    row = ApiToken.objects.select_related("user").get(token_sha256=hashlib.sha256(token.encode()).hexdigest())
    return Status(201, TokenCreatedOut(token=token, **_token_out(row, actor.now).model_dump()))


@router.post(
    "/tokens/{token_id}/revocation",
    response=TokenOut,
    summary="Revoke an API token: the next request presenting it is refused (audited)",
    description="409 `api_token_already_revoked`; 404 `api_token_not_found`.",
)
def admin_token_revoke(request: HttpRequest, token_id: int) -> TokenOut:
    actor = _administrator(request)
    row = accounts.api_token_revoke(actor=actor, token=str(token_id))
    return _token_out(row, actor.now)


# --- the study's audit trail --------------------------------------------------------------------------


class StudyAuditQuery(Schema):
    date_from: date | None = Field(None, description="From this UTC day")
    date_to: date | None = Field(None, description="To this UTC day (included)")
    center: str | None = Field(None, max_length=8, description="One of my centers")
    actor: str | None = Field(None, max_length=150, description="Who (username, any case)")
    event: AuditEvent | None = None
    entity: str | None = Field(None, max_length=48)
    subject: str | None = Field(None, max_length=32)


class AuditChangeOut(Schema):
    field: str
    old: str | int | float | bool | list[str | int | float | bool | None] | None = Field(
        description="The value before, as recorded (a structured value as its JSON text)"
    )
    new: str | int | float | bool | list[str | int | float | bool | None] | None = Field(
        description="The value after, as recorded (a structured value as its JSON text)"
    )


class StudyAuditOut(Schema):
    sequence: int
    occurred_at: datetime
    actor: str
    role: str
    center: str
    event: str
    entity: str
    entity_id: str
    subject: str
    changes: list[AuditChangeOut]
    reason: str
    entry_sha256: str


def _scalar(value: object) -> str | int | float | bool | list[str | int | float | bool | None] | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list) and all(v is None or isinstance(v, str | int | float | bool) for v in value):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _audit_out(entry: AuditEntry) -> StudyAuditOut:
    return StudyAuditOut(
        sequence=entry.sequence,
        occurred_at=entry.occurred_at,
        actor=entry.actor_username,
        role=entry.role,
        center=entry.center_code,
        event=entry.event,
        entity=entry.entity,
        entity_id=entry.entity_id,
        subject=entry.subject_code,
        changes=[
            AuditChangeOut(field=str(c.get("field")), old=_scalar(c.get("old")), new=_scalar(c.get("new")))
            for c in entry_changes(entry)
        ],
        reason=entry.reason,
        entry_sha256=entry.entry_hash,
    )


def _audit_filter(codes: set[str], query: StudyAuditQuery, since: datetime | None) -> selectors.AuditFilter:
    center = (query.center or "").strip().upper()
    if center and center not in codes:
        raise NotFound("No center '{center}' in your scope.", code="not_found", item="center", center=center)
    return selectors.AuditFilter(
        date_from=query.date_from,
        date_to=query.date_to,
        center=center,
        actor=query.actor or "",
        event=query.event.value if query.event else "",
        entity=(query.entity or "").strip(),
        subject=query.subject or "",
        since=since,
    )


@router.get(
    "/audit",
    response=Page[StudyAuditOut],
    summary="The study's audit trail, newest first, filtered (data managers, sponsor's administrator)",
    description="The entries about the subjects of my centers where my role reads the study's trail, those "
    "written at those centers, and the study's own (accounts, tokens, centers).",
)
def study_audit(request: HttpRequest, page: Query[PageQuery], filters: Query[StudyAuditQuery]) -> Page[StudyAuditOut]:
    codes = audit_reader_centers(request.user)
    return paged(selectors.study_audit_entries(codes, _audit_filter(codes, filters, page.since)), page, _audit_out)


@router.get(
    "/audit.csv",
    summary="The study's audit trail as CSV, with the same filters (cells safe in a spreadsheet)",
)
def study_audit_export(request: HttpRequest, filters: Query[StudyAuditQuery]) -> StreamingHttpResponse:
    codes = audit_reader_centers(request.user)
    return audit_csv_response(selectors.study_audit_entries(codes, _audit_filter(codes, filters, None)))
