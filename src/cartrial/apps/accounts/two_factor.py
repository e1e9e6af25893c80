"""Two-factor sign-in (TOTP through django-otp, docs/adr/0007-two-factor-sign-in.md).

A person holding a role of `domain.roles.TWO_FACTOR_ROLES` at any center enrols an authenticator
app (a TOTP device) before anything else, then gives a code at each sign-in and at each
electronic signature. Recovery codes (django-otp static tokens, each usable once) replace a code
when the phone is not at hand. Every enrolment, refused code, recovery code use, renewal of the
recovery codes and reset is audited. Wrong codes are throttled by django-otp (exponential
back-off per device: 1, 2, 4, 8 ... seconds after consecutive failures).

Everything is switched by one setting, `CARTRIAL_TWO_FACTOR_REQUIRED`, that production forces on.
API tokens are not concerned: a token is created by a person already signed in (or an operator
on the server) and is itself the product of that sign-in.
"""

from __future__ import annotations

import hmac
import math
from base64 import b32encode
from binascii import unhexlify
from datetime import datetime
from typing import Any

import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cartrial.apps import clock
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.services import Actor, Change, audit_record, audit_refusal
from cartrial.domain.errors import InvalidInput, NotFound, Refused
from cartrial.domain.roles import two_factor_required

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "authenticator"
RECOVERY_NAME = "recovery"


class WrongCode(InvalidInput):
    """A one-time code that is missing, wrong, throttled or refused."""

    code = "wrong_otp_code"


def enforced() -> bool:
    """Whether two-factor sign-in is in force (always in production)."""
    return bool(getattr(settings, "CARTRIAL_TWO_FACTOR_REQUIRED", False))


def required_for(user: User) -> bool:
    """True when `user` must enrol: two-factor is in force and one of their roles requires it."""
    return enforced() and two_factor_required(user.memberships.values_list("role", flat=True))


def authenticator(user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if enrolled."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def applies_to(user: User) -> bool:
    """True when `user` gives a code at sign-in and signature: in force and enrolled."""
    return enforced() and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def _refused_key(device: TOTPDevice) -> bool:
    """A key published with the code (the demo's) opens nothing in production."""
    refused: list[str] = getattr(settings, "CARTRIAL_REFUSED_TOTP_KEYS", [])
    return any(hmac.compare_digest(device.key, known) for known in refused)


def _actor(user: User) -> Actor:
    """The actor of a person's own account action (no center, no role)."""
    return Actor(user_id=user.pk, username=user.get_username(), role="", center_code="", now=clock.now())


def pending_device(user: User) -> TOTPDevice:
    """The authenticator being enrolled: a fresh secret, kept unconfirmed until a code proves the app
    holds it. Not audited: it opens nothing until confirmed (`enrol_confirm` records the enrolment)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// address as an inline SVG QR code, drawn here (no external service)."""
    return str(segno.make(device.config_url, error="m").svg_inline(scale=5, border=2, dark="#111", light="#fff"))


def secret_for_typing(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for an app that cannot scan the QR code."""
    return secret_for_typing_key(device.key)


def secret_for_typing_key(key_hex: str) -> str:
    """A hex TOTP key in base32, in groups of four (what authenticator apps accept typed)."""
    text = b32encode(unhexlify(key_hex.encode())).decode("ascii").rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _normalised(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _check_allowed(device: Any) -> None:
    """Refuses while django-otp throttles the device after wrong codes."""
    allowed, data = device.verify_is_allowed()
    if not allowed:
        until: datetime | None = (data or {}).get("locked_until")
        wait = max(1, math.ceil((until - timezone.now()).total_seconds())) if until else 1
        raise WrongCode("Too many wrong codes: try again in {seconds} seconds.", item="otp_code", seconds=wait)


def _recovery_codes_create(user: User) -> list[str]:
    """Replace the user's recovery codes by RECOVERY_CODE_COUNT new ones (inside a transaction)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def enrol_confirm(*, user: User, device: TOTPDevice, code: str) -> list[str]:
    """Confirm the authenticator with a first code; returns the recovery codes (shown once).

    A wrong code is audited as `otp.failed` and refused; the pending secret stays for a new try.
    """
    if device.user_id != user.pk or device.confirmed:
        raise Refused("This enrolment is no longer pending: start again.", code="otp_enrolment_stale")
    _check_allowed(device)
    if not device.verify_token(_normalised(code)):
        _refusal(user, "enrolment", "wrong code at enrolment")
        raise WrongCode("The code is not correct: type the 6 digits the app shows now.", item="otp_code")
    actor = _actor(user)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _recovery_codes_create(user)
        audit_record(
            actor=actor,
            event=AuditEvent.OTP_ENROLLED,
            entity="user",
            entity_id=user.get_username(),
            changes=[Change("authenticator", None, "enrolled"), Change("recovery_codes", None, len(codes))],
        )
    return codes


def sign_in_verify(*, user: User, code: str) -> Any:
    """The device that accepts `code` at sign-in: the authenticator's code, or a recovery code
    (then consumed and audited). A wrong code is audited as `otp.failed` and refused."""
    device = authenticator(user)
    if device is None:
        raise NotFound("No authenticator is enrolled for {username}.", code="otp_not_enrolled", username=user.username)
    _refuse_published_key(user, device)
    try:
        _check_allowed(device)
    except WrongCode:
        _refusal(user, "sign-in", "code refused while throttled after wrong codes")
        raise
    typed = _normalised(code)
    # An app's code is 6 digits; a recovery code is 8 letters and digits (never 6 digits).
    app_code = len(typed) == 6 and typed.isdigit()
    if app_code and device.verify_token(typed):
        return device
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if recovery is not None and not app_code:
        _check_allowed(recovery)
        if recovery.verify_token(typed):
            left = recovery.token_set.count()
            with transaction.atomic():
                audit_record(
                    actor=_actor(user),
                    event=AuditEvent.OTP_RECOVERY_CODE_USED,
                    entity="user",
                    entity_id=user.get_username(),
                    changes=[Change("recovery_codes_left", left + 1, left)],
                )
            return recovery
    _refusal(user, "sign-in", "wrong code at sign-in")
    raise WrongCode("The code is not correct.", item="otp_code")


def recovery_codes_renew(*, user: User) -> list[str]:
    """New recovery codes for an enrolled user (the old ones stop working); audited."""
    if authenticator(user) is None:
        raise Refused("Enrol an authenticator app first.", code="otp_not_enrolled")
    with transaction.atomic():
        codes = _recovery_codes_create(user)
        audit_record(
            actor=_actor(user),
            event=AuditEvent.OTP_RECOVERY_CODES_RENEWED,
            entity="user",
            entity_id=user.get_username(),
            changes=[Change("recovery_codes", None, len(codes))],
        )
    return codes


def recovery_codes_left(user: User) -> int:
    """How many recovery codes the user has not used yet."""
    return int(StaticToken.objects.filter(device__user=user, device__confirmed=True).count())


def device_reset(*, actor: Actor, username: str, reason: str) -> User:
    """Remove a person's authenticator and recovery codes (a lost phone): at the next sign-in they
    enrol again. Done by a sponsor administrator (the administration page, the API, the CLI); audited
    with the reason."""
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise NotFound("No user {username}.", code="user_not_found", item="username", username=username)
    if not reason.strip():
        raise InvalidInput("A reason is required to reset a second factor.", code="reason_required", item="reason")
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0] + StaticDevice.objects.filter(user=user).delete()[0]
        audit_record(
            actor=actor,
            event=AuditEvent.OTP_RESET,
            entity="user",
            entity_id=user.get_username(),
            changes=[Change("authenticator", "enrolled" if removed else None, None)],
            reason=reason.strip(),
        )
    return user


def signature_code_check(user: User, code: str) -> None:
    """At an electronic signature, the signer's current code when they are enrolled.

    Runs inside the signature's transaction: a refusal rolls back django-otp's count of wrong
    codes too, so the count is written again after the rollback (`after_rollback`), and the
    caller's `audited_attempt` records the refusal as `signature.failed`.
    """
    if not enforced():
        return
    device = authenticator(user)
    if device is None:
        return
    from cartrial.apps.accounts.services import SignatureRefused

    if _refused_key(device):
        raise SignatureRefused(
            "Signature refused: the authenticator of {username} was enrolled by the demo; ask for a reset.",
            code="wrong_otp_code",
            item="otp_code",
            username=user.get_username(),
        )
    allowed, _ = device.verify_is_allowed()
    typed = _normalised(code)
    if allowed and typed and typed.isdigit() and device.verify_token(typed):
        return
    if not allowed:
        raise SignatureRefused(
            "Signature refused: too many wrong codes for {username}; wait a minute.",
            code="wrong_otp_code",
            item="otp_code",
            username=user.get_username(),
        )
    refusal = SignatureRefused(
        "Signature refused: the code from the authenticator app of {username} is missing or not correct.",
        code="wrong_otp_code",
        item="otp_code",
        username=user.get_username(),
    )
    device_id = device.pk
    refusal.after_rollback.append(lambda: _throttle_increment(device_id))
    raise refusal


def _throttle_increment(device_id: int) -> None:
    device = TOTPDevice.objects.filter(pk=device_id).first()
    if device is not None:
        device.throttle_increment(commit=True)


def _refuse_published_key(user: User, device: TOTPDevice) -> None:
    if _refused_key(device):
        _refusal(user, "sign-in", "authenticator enrolled by the demo")
        raise Refused(
            "This authenticator was enrolled by the demo with a published key: ask a sponsor administrator "
            "to reset it (`cartrial otp reset`).",
            code="otp_key_refused",
        )


def _refusal(user: User, where: str, message: str) -> None:
    audit_refusal(
        actor=_actor(user),
        event=AuditEvent.OTP_FAILED,
        entity="user",
        entity_id=user.get_username(),
        code="wrong_otp_code",
        message=f"{where}: {message}",
    )


def demo_enrol(user: User, key_hex: str) -> None:
    """Enrol a demo user with the demo's published key (no recovery codes); refused in production."""
    if settings.CARTRIAL_PRODUCTION:
        raise Refused("The demo's authenticator key is refused in production.", code="otp_key_refused")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=True, key=key_hex)
        audit_record(
            actor=Actor.system("demo"),
            event=AuditEvent.OTP_ENROLLED,
            entity="user",
            entity_id=user.get_username(),
            changes=[Change("authenticator", None, "enrolled with the demo's key")],
        )
