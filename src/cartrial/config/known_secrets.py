"""Secrets that are public because they ship with the code: the demo's password, the test suite's keys.

Each one is fine on a laptop demo or in the test suite and fatal on a server, where anyone who has
read the repository could sign in or forge a session. The production settings refuse them
(`cartrial.config.settings`), so they live here, read by the settings, the demo and the tests alike.
"""

from __future__ import annotations

# Every demo login's password (`cartrial demo` prints it).
DEMO_PASSWORD = "cartrial-demo-2026"
# The authenticator key (hex, TOTP) every demo login is enrolled with (`cartrial demo` prints it in
# base32 for an authenticator app; `cartrial otp demo-code` prints its current code).
DEMO_TOTP_KEY = "636172747269616c2d64656d6f2d746f74702d6b6579"
# The test suite's Django secret key (cartrial.config.test_settings).
TEST_SECRET_KEY = "cartrial-test-suite-only-7c1e9d2b4a6f8e0d3c5b7a9f1e3d5c7b9a1f3e5d7c9b"
# The test suite's identity encryption key (tests/conftest.py).
TEST_IDENTITY_KEY = "3q2sXo0n5JvC2xZb6c1Xr0m3b8t7pQv9wYzA1B2C3D4="
# The files in which `cartrial demo` keeps the keys it makes, in its working directory.
DEMO_IDENTITY_KEY_FILE = "cartrial-demo.key"
DEMO_SECRET_KEY_FILE = "cartrial-demo.secret"
