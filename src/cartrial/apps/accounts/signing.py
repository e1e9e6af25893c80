"""The second factor at electronic signature, declared once for every form and API payload that signs.

Each signature re-enters the password and, for a signer enrolled in two-factor sign-in, the code
the authenticator app shows now (`services.signature_apply`). The pages' forms take the field from
`otp_code_field`, the raw-POST pages include `accounts/_signature_code.html` and read
`posted_code`, the API payloads inherit `SignatureCodeIn`: one name (`otp_code`), one label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Field, Schema

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

OTP_CODE_FIELD = "otp_code"
OTP_CODE_MAX_LENGTH = 20


def otp_code_field(label: StrOrPromise | None = None) -> forms.CharField:
    """The code field of a signing form; optional here, required by the service for an enrolled signer."""
    return forms.CharField(
        label=label or _("Code from your authenticator app (if you enrolled one)"),
        required=False,
        max_length=OTP_CODE_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def posted_code(request: HttpRequest, name: str = OTP_CODE_FIELD) -> str:
    """The code a raw-POST signing page received (`accounts/_signature_code.html`)."""
    return str(request.POST.get(name, ""))[:OTP_CODE_MAX_LENGTH]


class SignatureCodeIn(Schema):
    """Base of the API payloads that sign: the signer's current code when enrolled."""

    otp_code: str = Field(
        "",
        max_length=OTP_CODE_MAX_LENGTH,
        description="The code the signer's authenticator app shows now, when the signer is enrolled in "
        "two-factor sign-in (refused as `wrong_otp_code` when missing or wrong)",
    )
