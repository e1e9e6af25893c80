"""Time-based one-time codes (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), written out here.

django-otp verifies the codes at sign-in; this computes the code an authenticator app shows, for
the demo (`cartrial otp demo-code` with the demo's published key) and for the tests, which so check
django-otp against an independent computation rather than against itself.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

STEP_SECONDS = 30
DIGITS = 6


def totp_code(key: bytes, at: float) -> str:
    """The code for `key` at Unix time `at` (RFC 6238 with RFC 4226's dynamic truncation)."""
    counter = int(at // STEP_SECONDS)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 10**DIGITS:0{DIGITS}d}"
