"""Two-factor sign-in in Chromium: an investigator enrols (reads the key the page shows, as an
authenticator app would from the QR code), signs in again with a code, then stays idle: the
warning shows a minute before the end of a short session, "stay signed in" renews it, and the
page signs out at the end. Nothing is refused by the Content-Security-Policy on the way."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from cartrial.demo import DEMO_PASSWORD, build_centers_and_users
from cartrial.domain.totp import STEP_SECONDS, totp_code
from cartrial.protocols import active_protocol

pytestmark = pytest.mark.django_db(transaction=True)

# A session of 70 seconds: the warning shows after 10 seconds without activity (one minute before).
SESSION_SECONDS = 70
CSP_MESSAGE = re.compile(r"Refused to|violates the following Content Security Policy", re.IGNORECASE)


@pytest.fixture
def two_factor_on(settings: Any) -> None:
    settings.CARTRIAL_TWO_FACTOR_REQUIRED = True
    settings.SESSION_COOKIE_AGE = SESSION_SECONDS
    build_centers_and_users(active_protocol())


def _next_code(key: bytes, username: str) -> str:
    """The code an app shows now, or at the next step when this step's code was used (never twice)."""
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    step = max(int(time.time() // STEP_SECONDS), device.last_t + 1)
    return totp_code(key, step * STEP_SECONDS)


def test_enrol_sign_in_with_a_code_and_the_idle_warning(two_factor_on: None, live_server, new_page) -> None:
    base = live_server.url
    page = new_page("en")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "bdx.investigator")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/two-factor/enrol/"))
    assert page.locator("[data-testid=otp-qr] svg").count() == 1
    secret = page.locator("[data-testid=otp-secret]").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.fill("#id_otp_code", totp_code(key, time.time()))
    page.click("main button[type=submit]")
    assert page.locator("[data-testid=recovery-codes] li").count() == 10
    page.click("[data-testid=otp-continue]")
    page.wait_for_url(f"{base}/subjects/")

    # Sign out, sign in again: the password, then a code.
    page.click("#logout-form button")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "bdx.investigator")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/two-factor/code/"))
    page.fill("#id_otp_code", "000000")
    page.click("main form button[type=submit]")
    assert page.locator("[data-testid=otp-error]").is_visible()
    time.sleep(1.5)  # the throttle's delay after one wrong code
    page.fill("#id_otp_code", _next_code(key, "bdx.investigator"))
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/subjects/")

    # Idle: the warning one minute before the end; "stay signed in" renews the session.
    warning = page.locator("[data-testid=idle-warning]")
    assert not warning.is_visible()
    warning.wait_for(state="visible", timeout=(SESSION_SECONDS - 60 + 5) * 1000)
    with page.expect_response(re.compile(r"/accounts/session/refresh/")) as refreshed:
        page.click("[data-testid=idle-stay]")
    assert refreshed.value.status == 200
    assert not warning.is_visible()
    # Without a click this time, the page signs out at the end of the session.
    warning.wait_for(state="visible", timeout=(SESSION_SECONDS - 60 + 5) * 1000)
    page.wait_for_url(re.compile(r"/accounts/login/"), timeout=(60 + 10) * 1000)
    page.goto(f"{base}/subjects/")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    assert not [line for line in console if CSP_MESSAGE.search(line)], console
