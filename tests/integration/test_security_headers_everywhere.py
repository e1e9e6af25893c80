"""Security headers on every page and API operation of the URL configuration (OWASP A05), whatever
the answer (200, 403, 404, 405): the strict Content-Security-Policy naming no other origin and
refusing framing, nosniff, a same-origin Referrer-Policy, X-Frame-Options DENY and the
Cross-Origin-Opener-Policy. The policy itself and its nonce: test_security_headers.py; HSTS in
production: test_production_settings.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from url_routes import all_routes, sample_path

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def _assert_headers(key: str, response: Any) -> None:
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"], key
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"], key
    every_source = [value for values in policy.values() for value in values]
    assert not [v for v in every_source if v.startswith(("http:", "https:", "*")) or "unsafe" in v], key
    assert response["X-Content-Type-Options"] == "nosniff", key
    assert response["Referrer-Policy"] == "same-origin", key
    assert response["X-Frame-Options"] == "DENY", key
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", key


def test_every_page_and_operation_carries_the_headers(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.investigator"], label="t")
    page, api = world.client_for("bdx.investigator"), Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    values = {"code": subject.code, "step": "withdraw", "visit": "D28", "form": "vital_signs", "name": "sledai2k"}
    statuses = set()
    routes = all_routes()
    for key, route in routes.items():
        if "logout" in key:
            continue
        path = sample_path(route, values)
        response = api.generic(route.method, path) if route.is_api else page.get(path)
        statuses.add(response.status_code)
        _assert_headers(key, response)
        # Anonymous: the redirect to the sign-in page, the API's 401.
        _assert_headers(key, Client().generic(route.method or "GET", path))
    assert {200, 404} <= statuses and len(routes) > 150
