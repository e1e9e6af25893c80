"""Encryption of identity data at rest: Fernet (AES-128-CBC + HMAC-SHA256), keys from the environment.

`CARTRIAL_IDENTITY_KEY` holds one or more comma-separated Fernet keys, newest first; a new key
is put in front to rotate, old ones stay until every row has been re-encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _cipher() -> MultiFernet:
    raw = settings.CARTRIAL_IDENTITY_KEY
    if not raw:
        raise ImproperlyConfigured(
            "CARTRIAL_IDENTITY_KEY is not set: identity data cannot be encrypted. "
            "Generate one with `cartrial keygen` and put it in the environment."
        )
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in raw.split(",") if key.strip()])
    except ValueError as error:
        raise ImproperlyConfigured(f"CARTRIAL_IDENTITY_KEY is not a valid Fernet key: {error}") from None


def new_identity_key() -> str:
    """A fresh key for CARTRIAL_IDENTITY_KEY."""
    return Fernet.generate_key().decode()


def identity_encrypt(fields: dict[str, Any]) -> str:
    return _cipher().encrypt(json.dumps(fields, sort_keys=True).encode("utf-8")).decode("ascii")


def identity_decrypt(ciphertext: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_cipher().decrypt(ciphertext.encode("ascii")))
    except InvalidToken:
        raise ImproperlyConfigured("Identity data cannot be decrypted with the configured key(s).") from None
    return data
