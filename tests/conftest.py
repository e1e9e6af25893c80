"""Test set-up shared by every test: a test identity key and a fast password hasher.

Settings are imported by pytest-django before this file, so values are set on the live
settings object; the crypto and hashers read them at call time.
"""

from __future__ import annotations

import os

import pytest

TEST_IDENTITY_KEY = "3q2sXo0n5JvC2xZb6c1Xr0m3b8t7pQv9wYzA1B2C3D4="


def pytest_configure(config: pytest.Config) -> None:
    try:
        from django.conf import settings
    except ImportError:
        return
    if not settings.configured:
        return
    settings.CARTRIAL_IDENTITY_KEY = os.environ.get("CARTRIAL_IDENTITY_KEY") or TEST_IDENTITY_KEY
    # Argon2 is the production hasher (tested in test_security); MD5 keeps fixtures fast.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]
