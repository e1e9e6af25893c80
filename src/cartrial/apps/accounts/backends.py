"""Passwords refused in production: the demo's, published with the code, signs no one in and may
not be chosen (`settings.CARTRIAL_REFUSED_PASSWORDS`, empty outside production).

A production database built by mistake with `cartrial demo`, or an account given the demo's
password by hand, would otherwise open the trial to anyone who read the README.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

from cartrial.apps.accounts.models import User

logger = logging.getLogger("cartrial.accounts")


def password_refused(password: str | None) -> bool:
    """True for a password production refuses (compared in constant time)."""
    refused: list[str] = settings.CARTRIAL_REFUSED_PASSWORDS
    return password is not None and any(hmac.compare_digest(password, known) for known in refused)


class PasswordBackend(ModelBackend):
    """Django's username-and-password sign-in, except with a refused password."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if password_refused(password):
            logger.warning("sign-in refused for %r: the demo's password is refused in production", username)
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class RefusedPasswordValidator:
    """AUTH_PASSWORD_VALIDATORS: nobody may choose a refused password."""

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        if password_refused(password):
            raise ValidationError(
                _("This password is published with cartrial's demo: choose another one."), code="password_refused"
            )

    def get_help_text(self) -> str:
        return _("Your password cannot be the demo's password.")
