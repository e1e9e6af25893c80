"""Injection through filters (OWASP A03): hostile list filters, orderings and searches on every page
and API operation that takes no path parameter (walked from the URL configuration) are refused or
ignored - never a server error, never a leak of another center's subjects, of password hashes or of
database errors. Query parameters are read by name and matched against fixed choices; none is passed
to the ORM as a field name or a lookup.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from url_routes import all_routes

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

ROUTES = all_routes()
# Reads without a path parameter: the lists, dashboards, worklists, calendars and exports' lists.
LISTS = sorted(
    key
    for key, route in ROUTES.items()
    if "<" not in route.route and route.method in ("", "GET") and "logout" not in key
)
HOSTILE: dict[str, Any] = {
    "order": "password",
    "ordering": "-user__password",
    "sort": "identity__family_name",
    "center__in": "BDX,LIL,PAR",
    "center": "' OR 1=1 --",
    "state": "screening'); DROP TABLE subjects_subject; --",
    "status": ["open", "closed", "x' UNION SELECT password FROM accounts_user --"],
    "q": "%' OR '1'='1",
    "search": "\x00",
    "subject": "LIL-001",
    "subject__center__code": "LIL",
    "user__password__startswith": "argon2",
    "limit": "-1",
    "offset": "99999999999999999999",
    "page": "0",
    "from": "2026-13-45",
    "month": "9999-99",
    "week": "-1",
}
LEAKS = re.compile(
    r"argon2\$|pbkdf2_sha256\$|md5\$|Traceback \(most recent|OperationalError|ProgrammingError|syntax error at or near"
)
CODE = re.compile(r"\b(?:BDX|LIL|PAR|STR|MTL)-\d{3}\b")


@pytest.fixture
def subjects(world: Any) -> dict[str, str]:
    return {
        "own": world.new_subject("BDX", State.SCREENING).code,
        "other": world.new_subject("LIL", State.SCREENING).code,
    }


def test_the_walk_finds_the_lists() -> None:
    assert {"page subjects:list", "api GET /subjects", "api GET /queries", "page casebook:grid"} <= set(LISTS)


def test_hostile_filters_never_fail_nor_leak(world: Any, subjects: dict[str, str]) -> None:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    page, api = world.client_for("bdx.coordinator"), Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    hostile = {**HOSTILE, "subject": subjects["other"]}
    checked = []
    for key in LISTS:
        route = ROUTES[key]
        client = api if route.is_api else page
        response = client.get("/" + route.route, hostile)
        assert response.status_code < 500, (key, response.status_code)
        # 405: a route that only takes POST (the idle sign-out's session refresh) refuses the GET cleanly.
        assert response.status_code in (200, 302, 400, 403, 404, 405, 409, 422), (key, response.status_code)
        body = response.content.decode("utf-8", errors="replace")
        assert not LEAKS.search(body), (key, LEAKS.search(body))
        # bdx.coordinator sees BDX's subjects only, whatever the filters say.
        # (a filter's own value, echoed in its input field, is the request's, not a leak)
        shown = re.sub(r'value="[^"]*"', "", body)
        assert subjects["other"] not in set(CODE.findall(shown)), key
        if route.is_api and response.status_code == 422:
            assert response.json()["code"], key  # the API's one error format, naming the item
        checked.append(key)
    assert len(checked) == len(LISTS) > 30


def test_an_unknown_ordering_or_filter_does_not_change_the_list(world: Any, subjects: dict[str, str]) -> None:
    """Ignored, not applied: the list with hostile extras equals the plain list (same codes)."""
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    plain = api.get("/api/v1/subjects").json()["items"]
    extras = {k: v for k, v in HOSTILE.items() if k not in ("center", "state", "limit", "offset")}
    odd = api.get("/api/v1/subjects", extras)
    assert odd.status_code == 200
    assert [row["code"] for row in odd.json()["items"]] == [row["code"] for row in plain]
    assert subjects["own"] in {row["code"] for row in plain}
    injected = api.get("/api/v1/subjects", {"center": "' OR 1=1 --"})
    assert injected.status_code in (200, 422)
    if injected.status_code == 200:
        assert injected.json()["items"] == []
