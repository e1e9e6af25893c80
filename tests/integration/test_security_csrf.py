"""CSRF (OWASP A01/A08): every page of the URL configuration refuses a POST without the form's
token (403, nothing stored), no page view is exempt, and the JSON API, which authenticates by a
bearer token and no cookie, cannot be called with a logged-in browser's session cookie alone.

The pages and API operations are walked from the URL configuration (tests/integration/url_routes.py),
so a page or an operation added later is checked without being listed here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from url_routes import all_routes, sample_path

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

ROUTES = all_routes()
PAGES = sorted(key for key, route in ROUTES.items() if not route.is_api)
API_WRITES = sorted(key for key, route in ROUTES.items() if route.is_api and route.method != "GET")


def _values(subject: Subject) -> dict[str, str]:
    """Path parameters that reach real objects where a name allows (the subject, its center)."""
    return {
        "code": subject.code,
        "step": "withdraw",
        "visit": "D28",
        "form": "vitals",
        "action": "schedule_apheresis",
        "name": "sledai2k",
        "move": "close",
        "record": "adverse_event",
    }


def _stored() -> tuple[int, int, int]:
    """What any write leaves behind: every write is audited, steps leave events, registration subjects."""
    return AuditEntry.objects.count(), PathwayEvent.objects.count(), Subject.objects.count()


def test_the_walk_finds_pages_and_api_writes() -> None:
    assert "page subjects:step" in PAGES and "page login" in PAGES and "page set_language" in PAGES
    assert (
        "api POST /subjects/{code}/transitions" in API_WRITES
        and "api DELETE /subjects/{code}/bookings/{booking_id}" in API_WRITES
    )
    assert len(PAGES) >= 60 and len(API_WRITES) >= 45


@pytest.mark.parametrize("key", PAGES)
def test_every_page_refuses_a_post_without_the_csrf_token(world: Any, key: str) -> None:
    route = ROUTES[key]
    subject = world.new_subject("BDX")
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["bdx.investigator"])  # a role that may write most pages
    before = _stored()
    response = client.post(sample_path(route, _values(subject)), {"reason": "forged", "family_name": "Forged"})
    assert response.status_code == 403, (key, response.status_code)
    assert _stored() == before
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_no_page_view_is_exempt_from_csrf() -> None:
    exempt = sorted(key for key in PAGES if getattr(ROUTES[key].callback, "csrf_exempt", False))
    assert exempt == []
    # The API's operations are exempt (ninja's choice for a bearer-token API): the tests below prove
    # that a cookie gets nothing from them.
    assert all(getattr(ROUTES[key].callback, "csrf_exempt", False) for key in API_WRITES)


def test_the_token_makes_the_same_post_go_through(world: Any) -> None:
    """Control for the test above: the 403 was the CSRF check, not the request itself."""
    subject = world.new_subject("BDX")
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["bdx.coordinator"])
    form = client.get(f"/subjects/{subject.code}/steps/withdraw/")
    token = form.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        f"/subjects/{subject.code}/steps/withdraw/", {"reason": "patient's decision", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Subject.objects.get(pk=subject.pk).state == State.WITHDRAWN.value


@pytest.mark.parametrize("key", API_WRITES)
def test_a_session_cookie_alone_cannot_call_a_write_api_operation(world: Any, key: str) -> None:
    route = ROUTES[key]
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.investigator")  # logged in: the session cookie is sent
    assert client.get("/subjects/").status_code == 200
    before = _stored()
    response = client.generic(
        route.method,
        sample_path(route, _values(subject)),
        '{"step": "withdraw", "data": {"reason": "forged"}, "reason": "forged"}',
        content_type="application/json",
    )
    assert response.status_code == 401, (key, response.status_code, response.content[:200])
    assert response.json()["code"] == "unauthenticated"
    assert _stored() == before
    assert Subject.objects.get(pk=subject.pk).state == State.SCREENING.value


def test_the_api_answers_a_cookie_less_bearer_token(world: Any) -> None:
    """Control: the same kind of write with the user's token (no cookie) reaches the operation."""
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    subject = world.new_subject("BDX", State.SCREENING)
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.investigator"], label="t")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        f"/api/v1/subjects/{subject.code}/transitions",
        {"step": "withdraw", "data": {"reason": "patient's decision"}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert Subject.objects.get(pk=subject.pk).state == State.WITHDRAWN.value
