"""Account writes: users, memberships, API tokens, electronic signatures. Each is audited."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import date, timedelta
from typing import Any

from django.contrib.sessions.models import Session
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q

from cartrial.apps import clock
from cartrial.apps.accounts import two_factor
from cartrial.apps.accounts.models import ApiToken, ElectronicSignature, Membership, User, membership_current
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record, changes_between
from cartrial.apps.trial.models import Center
from cartrial.domain.access_terms import access_end, access_last_day, token_expiry
from cartrial.domain.audit_chain import canonical_json
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.roles import Role

logger = logging.getLogger("cartrial.accounts")

# A token's last use is written at most this often: most API requests then write nothing, so
# reads do not queue behind a long import for SQLite's one write lock.
TOKEN_USE_RECORD_INTERVAL = timedelta(minutes=15)


class SignatureRefused(Refused):
    """A signature attempt failed (wrong password or code): recorded as `signature.failed`."""

    code = "signature_refused"


def user_create(
    *, actor: Actor, username: str, password: str, first_name: str, last_name: str, email: str = "", language: str = ""
) -> User:
    """Create a person's account (argon2-hashed password); a username taken in any case is refused.

    One person, one account: a second account in another case would sign and be locked out apart.
    """
    existing = User.objects.filter(username__iexact=username).values_list("username", flat=True).first()
    if existing is not None:
        raise _username_taken(username, existing)
    with transaction.atomic():
        user = User(username=username, first_name=first_name, last_name=last_name, email=email, language=language)
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # Created meanwhile by a concurrent request: the database constraint decided.
            taken = User.objects.filter(username__iexact=username).values_list("username", flat=True).first()
            raise _username_taken(username, taken or username) from None
        audit_record(
            actor=actor,
            event=AuditEvent.USER_CREATED,
            entity="user",
            entity_id=username,
            changes=changes_between(None, {"username": username, "first_name": first_name, "last_name": last_name}),
        )
    return user


def _username_taken(username: str, existing: str) -> InvalidInput:
    if existing == username:
        return InvalidInput(
            "The username '{username}' is taken.", code="duplicate_username", item="username", username=username
        )
    return InvalidInput(
        "The username '{username}' is taken: it is the account '{existing}' (usernames ignore case).",
        code="duplicate_username",
        item="username",
        username=username,
        existing=existing,
    )


def _role_fits_center(role: Role, center: Center) -> None:
    """The manufacturing role belongs to a manufacturing lab, and only it does."""
    if role is Role.MANUFACTURING and center.kind != Center.Kind.MANUFACTURING:
        raise InvalidInput(
            "The manufacturing role belongs to the manufacturing lab.", code="role_center_mismatch", item="role"
        )
    if role is not Role.MANUFACTURING and center.kind == Center.Kind.MANUFACTURING:
        raise InvalidInput(
            "At the manufacturing lab the role is 'manufacturing'.", code="role_center_mismatch", item="role"
        )


def membership_grant(*, actor: Actor, user: User, center: Center, role: Role) -> Membership:
    """Give `user` one role at `center` (one role per center)."""
    _role_fits_center(role, center)
    if Membership.objects.filter(user=user, center=center).exists():
        raise InvalidInput(
            "{username} already has a role at {center}.",
            code="duplicate_membership",
            item="center",
            username=user.username,
            center=center.code,
        )
    with transaction.atomic():
        membership = Membership.objects.create(user=user, center=center, role=role.value)
        audit_record(
            actor=actor,
            event=AuditEvent.MEMBERSHIP_GRANTED,
            entity="membership",
            entity_id=f"{user.username}@{center.code}",
            center_code=center.code,
            changes=[Change("role", None, role.value)],
        )
    return membership


def api_token_create(*, actor: Actor, user: User, label: str, days: int | None = None) -> str:
    """Create a bearer token for `user`, valid `days` days (None: the default lifetime,
    `domain.access_terms`); the clear token is returned once and never stored."""
    expires_at = token_expiry(actor.now, days)
    if not label.strip():
        raise InvalidInput("Say what the token is for (a label).", code="label_required", item="label")
    if not user.is_active:
        raise Refused(
            "{username} is suspended: no API token may be created for them.",
            code="user_suspended",
            item="user",
            username=user.username,
        )
    token = "ct_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        ApiToken.objects.create(
            user=user,
            label=label.strip(),
            prefix=token[:8],
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            created_at=actor.now,
            expires_at=expires_at,
        )
        audit_record(
            actor=actor,
            event=AuditEvent.API_TOKEN_CREATED,
            entity="api_token",
            entity_id=token[:8],
            changes=[
                Change("user", None, user.username),
                Change("label", None, label.strip()),
                Change("expires_at", None, expires_at.isoformat()),
            ],
        )
    return token


def api_token_revoke(*, actor: Actor, token: str) -> ApiToken:
    """Revoke a token, named by its id (`cartrial token list`) or given whole (a token that leaked):
    the next request that presents it is refused."""
    chosen = ApiToken.objects.select_related("user")
    if token.isdigit():
        chosen = chosen.filter(pk=int(token))
    else:
        chosen = chosen.filter(token_sha256=hashlib.sha256(token.encode()).hexdigest())
    with transaction.atomic():
        row = chosen.select_for_update(of=("self",)).first()
        if row is None:
            raise NotFound("No API token {token}.", code="api_token_not_found", token=_shown_token(token))
        if row.revoked:
            raise Refused(
                "API token {token} ({prefix}…) of {username} is already revoked.",
                code="api_token_already_revoked",
                token=row.pk,
                prefix=row.prefix,
                username=row.user.username,
            )
        row.revoked = True
        row.save(update_fields=["revoked"])
        audit_record(
            actor=actor,
            event=AuditEvent.API_TOKEN_REVOKED,
            entity="api_token",
            entity_id=row.prefix,
            changes=[Change("revoked", False, True)],
        )
    return row


def _shown_token(token: str) -> str:
    """A token as an error may show it: its id, or the first characters of a whole token."""
    return token if token.isdigit() else token[:8] + "…"


def api_token_authenticate(token: str) -> User | None:
    """The active user owning `token`, or None (unknown, revoked, expired, or its owner suspended);
    records the use at most once per interval."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    now = clock.now()
    row = (
        ApiToken.objects.select_related("user")
        .filter(token_sha256=digest, revoked=False, expires_at__gt=now, user__is_active=True)
        .first()
    )
    if row is None:
        return None
    _token_use_record(row)
    return row.user


def _token_use_record(row: ApiToken) -> None:
    """Write the token's last use when the recorded one is older than the interval (or absent).

    Most requests return without a statement. The UPDATE is conditional, so concurrent requests
    write once; not audited (usage metadata, not trial data). A failure (SQLite busy behind a
    long import) is logged and the request goes on: knowing the last use is not worth a refusal.
    """
    now = clock.now()
    threshold = now - TOKEN_USE_RECORD_INTERVAL
    if row.last_used_at is not None and row.last_used_at > threshold:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=threshold)
    try:
        with transaction.atomic():
            ApiToken.objects.filter(stale, pk=row.pk).update(last_used_at=now)
    except DatabaseError as error:
        logger.warning("API token %s: its use was not recorded (%s)", row.prefix, error)


def signature_apply(
    *,
    actor: Actor,
    user: User,
    password: str,
    meaning: str,
    entity: str,
    entity_id: str,
    content: Any,
    subject_code: str = "",
    otp_code: str = "",
) -> ElectronicSignature:
    """Sign `content` after re-entry of the password, and of the current code from the signer's
    authenticator app when they are enrolled (two-factor, `two_factor.signature_code_check`);
    must run inside the caller's transaction.

    A wrong password or code raises SignatureRefused; the caller records the refused attempt once
    its transaction has rolled back (a record written inside it would be rolled back too).
    """
    if not user.is_active or not user.check_password(password or ""):
        raise SignatureRefused(
            "Signature refused: the password of {username} is not correct.",
            code="wrong_password",
            item="password",
            username=user.get_username(),
        )
    two_factor.signature_code_check(user, otp_code)
    digest = hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
    signature = ElectronicSignature.objects.create(
        signer=user,
        signer_name=user.get_full_name() or user.get_username(),
        role=actor.role,
        center_code=actor.center_code,
        meaning=meaning,
        signed_at=actor.now,
        entity=entity,
        entity_id=entity_id,
        content_sha256=digest,
    )
    # The signature is a record of its own: one entry names it, and says what it signs. Audited under
    # the signed record, it would give that record a second entry in the same action (issue 8).
    audit_record(
        actor=actor,
        event=AuditEvent.SIGNATURE_APPLIED,
        entity="signature",
        entity_id=str(signature.pk),
        subject_code=subject_code,
        changes=[
            Change("signed", None, f"{entity} {entity_id}"),
            Change("meaning", None, meaning),
            Change("content_sha256", None, digest),
        ],
    )
    return signature


def signature_void(
    *,
    actor: Actor,
    signature: ElectronicSignature,
    reason: str,
    superseded_by: ElectronicSignature | None,
    subject_code: str = "",
) -> ElectronicSignature:
    """Void a signature whose record was corrected: kept, marked void (who, when, why), pointing to
    the signature of the corrected record (None when the record is to be signed again later, as a
    casebook reopened by an unlock). Runs inside the correction's transaction."""
    if signature.voided_at is not None:
        raise Refused("This signature was already voided.", code="signature_void")
    if not reason.strip():
        raise InvalidInput(
            "A reason for the correction is required: the value was already saved.",
            code="reason_required",
            item="reason",
        )
    signature.voided_at = actor.now
    signature.voided_by_id = actor.user_id
    signature.void_reason = reason.strip()
    signature.superseded_by = superseded_by
    signature.save(update_fields=["voided_at", "voided_by", "void_reason", "superseded_by"])
    audit_record(
        actor=actor,
        event=AuditEvent.SIGNATURE_VOIDED,
        entity="signature",
        entity_id=str(signature.pk),
        subject_code=subject_code,
        changes=[
            Change("signer", None, signature.signer_name),
            Change("meaning", None, signature.meaning),
            Change("voided_at", None, actor.now.isoformat()),
            Change("superseded_by", None, superseded_by.pk if superseded_by else None),
        ],
        reason=reason.strip(),
        is_correction=True,
    )
    return signature


# --- administration (issue 13): a person's account, roles, access end, suspension ------------------


def user_update(
    *, actor: Actor, user: User, username: str, first_name: str, last_name: str, email: str, language: str
) -> User:
    """Change a person's username, names, e-mail or language. A new username taken by another
    account in any case is refused, as at creation (one person, one account)."""
    username = username.strip()
    if not username:
        raise InvalidInput("A username is required.", code="username_required", item="username")
    existing = (
        User.objects.filter(username__iexact=username).exclude(pk=user.pk).values_list("username", flat=True).first()
    )
    if existing is not None:
        raise _username_taken(username, existing)
    before = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "language": user.language,
    }
    after = {
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "language": language,
    }
    changes = [c for c in changes_between(before, after) if c.old != c.new]
    if not changes:
        return user
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        for field, value in after.items():
            setattr(locked, field, value)
        try:
            with transaction.atomic():
                locked.save(update_fields=list(after))
        except IntegrityError:
            taken = User.objects.filter(username__iexact=username).exclude(pk=user.pk)
            raise _username_taken(username, taken.values_list("username", flat=True).first() or username) from None
        audit_record(
            actor=actor, event=AuditEvent.USER_CHANGED, entity="user", entity_id=before["username"], changes=changes
        )
    return locked


def _sessions_end(user: User) -> int:
    """Delete the user's web sessions (the next request is anonymous): the sessions table holds no
    user column, so each live session is decoded. How many were ended."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=clock.now()).iterator()
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def user_suspend(*, actor: Actor, user: User, reason: str) -> User:
    """Suspend a person at once: inactive (sign-in refused), their web sessions deleted, their API
    tokens refused (authentication asks for an active owner). Reinstating restores the tokens not
    revoked nor expired meanwhile; revoke them as well if they may have leaked."""
    if not reason.strip():
        raise InvalidInput("Say why the account is suspended.", code="reason_required", item="reason")
    if actor.user_id == user.pk:
        raise Refused("You cannot suspend your own account.", code="suspend_self", item="user")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.suspended_at is not None or not locked.is_active:
            raise Refused(
                "{username} is already suspended.", code="already_suspended", item="user", username=locked.username
            )
        locked.is_active = False
        locked.suspended_at = actor.now
        locked.suspension_reason = reason.strip()
        locked.save(update_fields=["is_active", "suspended_at", "suspension_reason"])
        sessions = _sessions_end(locked)
        audit_record(
            actor=actor,
            event=AuditEvent.USER_SUSPENDED,
            entity="user",
            entity_id=locked.username,
            changes=[Change("is_active", True, False), Change("sessions_ended", None, sessions)],
            reason=reason.strip(),
        )
    return locked


def user_reinstate(*, actor: Actor, user: User, reason: str) -> User:
    """Lift a suspension: the person signs in again and their tokens not revoked nor expired work again."""
    if not reason.strip():
        raise InvalidInput("Say why the account is reinstated.", code="reason_required", item="reason")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_active:
            raise Refused("{username} is not suspended.", code="not_suspended", item="user", username=locked.username)
        locked.is_active = True
        locked.suspended_at = None
        locked.suspension_reason = ""
        locked.save(update_fields=["is_active", "suspended_at", "suspension_reason"])
        audit_record(
            actor=actor,
            event=AuditEvent.USER_REINSTATED,
            entity="user",
            entity_id=locked.username,
            changes=[Change("is_active", False, True)],
            reason=reason.strip(),
        )
    return locked


def membership_change(
    *, actor: Actor, membership: Membership, role: Role, last_day: date | None, reason: str = ""
) -> Membership:
    """Change a person's role at a center, or the last day of their access there (None: no end).

    The end is stored as the instant the center's next day begins (its time zone): from then on
    the access entry point treats the membership as absent (no page, no API, no subject)."""
    center = membership.center
    _role_fits_center(role, center)
    ends_at = access_end(last_day, center.time_zone) if last_day is not None else None
    with transaction.atomic():
        locked = Membership.objects.select_for_update().select_related("user", "center").get(pk=membership.pk)
        changes = []
        if locked.role != role.value:
            changes.append(Change("role", locked.role, role.value))
        if locked.ends_at != ends_at:
            old = access_last_day(locked.ends_at, center.time_zone).isoformat() if locked.ends_at else None
            changes.append(Change("last_day", old, last_day.isoformat() if last_day else None))
        if not changes:
            return locked
        locked.role = role.value
        locked.ends_at = ends_at
        locked.save(update_fields=["role", "ends_at"])
        audit_record(
            actor=actor,
            event=AuditEvent.MEMBERSHIP_CHANGED,
            entity="membership",
            entity_id=f"{locked.user.username}@{center.code}",
            center_code=center.code,
            changes=changes,
            reason=reason.strip(),
        )
    return locked


def memberships_in_force(user: User) -> list[Membership]:
    """The user's memberships not ended at the one clock's now, by center code (the header's)."""
    rows = Membership.objects.filter(membership_current(clock.now()), user=user, center__active=True)
    return list(rows.select_related("center").order_by("center__code"))
