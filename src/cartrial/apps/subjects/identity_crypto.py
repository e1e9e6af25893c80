"""Encryption of identity data at rest: Fernet (AES-128-CBC + HMAC-SHA256), keys from the environment.

`CARTRIAL_IDENTITY_KEY` holds one or more comma-separated Fernet keys, newest first; a new key
is put in front to rotate, old ones stay until every row has been re-encrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _keys() -> list[str]:
    raw = settings.CARTRIAL_IDENTITY_KEY
    return [key.strip() for key in raw.split(",") if key.strip()] if raw else []


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


def identity_key_count() -> int:
    """How many keys CARTRIAL_IDENTITY_KEY holds (the first encrypts, all decrypt)."""
    return len(_keys())


def identity_under_newest_key(ciphertext: str) -> bool:
    """True when the newest key alone opens this ciphertext: it needs no re-encryption."""
    _cipher()
    try:
        Fernet(_keys()[0].encode()).decrypt(ciphertext.encode("ascii"))
    except InvalidToken:
        return False
    return True


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


def hospital_number_digests(center_code: str, hospital_number_key: str) -> list[str]:
    """Keyed digests (HMAC-SHA256) of a center's hospital number, one per configured key, newest first.

    The hospital number is stored encrypted with a random IV, so duplicates cannot be found by
    comparing ciphertexts; a keyed digest can (a blind index) without revealing the number to
    anyone without the key. The first digest is the one stored; the others find rows stored
    before a key rotation.
    """
    _cipher()  # the same configuration error as encryption when no key is set
    message = f"{center_code}\x1f{hospital_number_key}".encode()
    return [
        hmac.new(
            hashlib.sha256(b"cartrial hospital number index\x1f" + key.encode()).digest(), message, "sha256"
        ).hexdigest()
        for key in _keys()
    ]
