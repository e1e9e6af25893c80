"""Sessions, redirects and guessing (OWASP A01, A07): the session key changes at sign-in (fixation),
`next=` and `back=` never send anyone to another site (open redirects), and an API token cannot be
guessed (256 random bits, stored as a SHA-256 digest, every wrong one refused alike).

The lockout of passwords after five failures is proven in test_security.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from cartrial.apps.accounts.models import ApiToken
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
# Other sites, written the ways browsers read them as another host.
ELSEWHERE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "http://testserver.evil.example/",
    " //evil.example",
    "javascript:alert(1)",
]


def _is_here(location: str) -> bool:
    """A redirect target on this site: a path, not a scheme-relative or backslashed address."""
    return location.startswith("/") and not location.startswith(("//", "/\\")) and "evil" not in location


# --- session fixation ---------------------------------------------------------------------------


def test_sign_in_replaces_a_planted_session_key(world: Any) -> None:
    """An attacker who makes a victim's browser carry a session key of their choosing gains nothing:
    signing in issues a new key and the planted one is gone from the store."""
    planted = SessionStore()
    planted["planted"] = True
    planted.create()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key
    response = client.post(LOGIN, {"username": "bdx.coordinator", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    issued = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert issued and issued != planted.session_key
    assert not Session.objects.filter(session_key=planted.session_key).exists()
    # The attacker's copy of the planted key is not signed in.
    attacker = Client()
    attacker.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key
    assert attacker.get("/subjects/").status_code == 302
    assert client.get("/subjects/").status_code == 200


def test_sign_out_ends_the_session_in_the_store(world: Any) -> None:
    client = Client()
    response = client.post(LOGIN, {"username": "bdx.coordinator", "password": DEMO_PASSWORD})
    key = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=key).exists()
    assert client.post("/accounts/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.get("/subjects/").status_code == 302


def test_the_session_cookie_is_not_readable_by_scripts_and_stays_on_this_site() -> None:
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax" and settings.CSRF_COOKIE_SAMESITE == "Lax"


# --- open redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ELSEWHERE)
def test_sign_in_never_redirects_to_another_site(world: Any, target: str) -> None:
    response = Client().post(
        f"{LOGIN}?next={target}", {"username": "bdx.coordinator", "password": DEMO_PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/subjects/", response["Location"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_sign_in_form_does_not_carry_another_site_as_next(world: Any, target: str) -> None:
    body = Client().get(LOGIN, {"next": target}).content.decode()
    assert "evil.example" not in body or 'value="' + target not in body
    assert f'href="{target}"' not in body


def test_sign_in_keeps_a_next_of_this_site(world: Any) -> None:
    """Control: a path of this site is honoured, so the refusals above are the host check."""
    response = Client().post(LOGIN, {"username": "bdx.coordinator", "password": DEMO_PASSWORD, "next": "/logistics/"})
    assert response.status_code == 302 and response["Location"] == "/logistics/"


@pytest.mark.parametrize("target", ELSEWHERE)
def test_sign_out_never_redirects_to_another_site(world: Any, target: str) -> None:
    client = world.client_for("bdx.coordinator")
    response = client.post("/accounts/logout/", {"next": target})
    assert response.status_code == 302 and _is_here(response["Location"]), response["Location"]
    assert client.get("/subjects/").status_code == 302  # signed out all the same


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_language_switch_never_redirects_to_another_site(world: Any, target: str) -> None:
    response = world.client_for("bdx.coordinator").post("/i18n/setlang/", {"language": "en", "next": target})
    assert response.status_code == 302 and _is_here(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_the_corrections_back_link_stays_on_this_site(world: Any, target: str) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    client = world.client_for("bdx.investigator")
    path = f"/subjects/{subject.code}/corrections/planned_apheresis/{subject.code}/"
    page = client.get(path, {"back": target})
    assert page.status_code == 200
    body = page.content.decode()
    links = re.findall(r'(?:href|action)="([^"]*)"', body)
    assert links and not [link for link in links if "evil" in link or link.startswith("javascript:")]
    assert f'href="/subjects/{subject.code}/"' in body  # the back link falls back to the subject page


# --- API tokens cannot be guessed ---------------------------------------------------------------


def test_tokens_are_random_and_stored_only_as_digests(world: Any) -> None:
    tokens = [
        api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t") for _ in range(3)
    ]
    assert len(set(tokens)) == 3
    for token in tokens:
        assert token.startswith("ct_") and len(token) >= 3 + 43  # 32 random bytes, base64url
        row = ApiToken.objects.get(token_sha256=hashlib.sha256(token.encode()).hexdigest())
        stored = " ".join(str(value) for value in row.__dict__.values())
        assert token not in stored and token[8:] not in stored
    audit = " ".join(AuditEntry.objects.values_list("changes_json", flat=True))
    assert not any(token[8:] in audit for token in tokens)


def test_guessed_and_altered_tokens_are_all_refused_alike(world: Any) -> None:
    """500 guesses (bounded), the real token with one character changed, its prefix alone, a revoked
    one: all 401 with the same body; the real one works (control). Guessing 256 random bits is the
    defence (no rate limit is needed at 2^-256 per guess; docs/security.md)."""
    from cartrial.apps.accounts.services import api_token_revoke

    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    revoked = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="r")
    api_token_revoke(actor=Actor.system("test"), token=revoked)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    guesses = ["ct_" + secrets.token_urlsafe(32) for _ in range(500)]
    bodies = set()
    for guess in [*guesses, altered, token[:8], token.upper(), revoked, "", "ct_"]:
        response = Client(HTTP_AUTHORIZATION=f"Bearer {guess}").get("/api/v1/subjects")
        assert response.status_code == 401, guess
        bodies.add(response.content)
    assert len(bodies) == 1  # nothing tells a near miss from a wild guess
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/subjects").status_code == 200
