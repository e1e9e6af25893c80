"""Reading permissions beyond seeing a subject: screening and consent, and the audit trail (issue 8).

Issue 8 found that the manufacturing lab could open screening and consent pages it has no use for, and
that every user who could see a subject could read its whole audit trail. Screening and consent pages
now require `Action.READ_SCREENING` (the center's investigators and coordinators, the monitors and data
managers), the audit trail `Action.READ_AUDIT` (investigators, monitors, data managers). The expectations
below are written from those roles, not read from the access table; every user here reaches the subject
itself (it is the lab's too: its material was shipped), so a 403 is the permission, not the scope.
(tests/integration/test_access_matrix.py covers the same rules across centers among all endpoints.)
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

READERS = {"bdx.investigator", "bdx.coordinator", "cra.monitor", "dm.datamanager"}
NOT_READERS = {"lab.manufacturing", "bdx.apheresis", "bdx.pharmacist", "sponsor.admin"}
AUDIT_READERS = {"bdx.investigator", "cra.monitor", "dm.datamanager"}

PAGES = {
    "screening page": "/subjects/{code}/eligibility/",
    "consent page": "/subjects/{code}/consent/",
    "screening log": "/screening-log/",
    "screening log CSV": "/screening-log.csv",
    "CONSORT": "/dashboard/consort/",
    "re-consent list": "/consent/reconsent/",
}
API = {"API screening log CSV": "/api/v1/screening-log.csv"}


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("username", sorted(READERS | NOT_READERS))
def test_screening_and_consent_pages_by_role(world: Any, username: str) -> None:
    subject = world.new_subject("BDX", State.MATERIAL_SHIPPED)
    page, api = world.client_for(username), _api(world, username)
    assert page.get(f"/subjects/{subject.code}/").status_code == 200  # every one of them reaches the subject
    reads = username in READERS
    answers = {name: page.get(url.format(code=subject.code)) for name, url in PAGES.items()}
    answers |= {name: api.get(url) for name, url in API.items()}
    assert {name: r.status_code for name, r in answers.items()} == {name: 200 if reads else 403 for name in answers}
    if reads:  # the pages show the subject (a refusal names it too, so only the readers' pages are checked)
        for name in ("screening page", "consent page", "screening log", "screening log CSV", "API screening log CSV"):
            assert subject.code in answers[name].content.decode(), name
    refusals = AuditEntry.objects.filter(event="access.refused", actor_username=username).count()
    assert refusals == (0 if reads else len(answers))


@pytest.mark.parametrize("username", sorted(READERS | NOT_READERS))
def test_the_audit_trail_by_role(world: Any, username: str) -> None:
    subject = world.new_subject("BDX", State.MATERIAL_SHIPPED)
    page, api = world.client_for(username), _api(world, username)
    assert page.get(f"/subjects/{subject.code}/").status_code == 200
    on_page = page.get(f"/subjects/{subject.code}/audit/")
    through_api = api.get(f"/api/v1/subjects/{subject.code}/audit")
    reads = username in AUDIT_READERS
    assert (on_page.status_code, through_api.status_code) == ((200, 200) if reads else (403, 403))
    if reads:
        assert "subject.created" in on_page.content.decode()
        assert {"subject.created", "pathway.step"} <= {row["event"] for row in through_api.json()["items"]}
    else:
        assert "subject.created" not in on_page.content.decode()
        assert through_api.json()["code"] == "access_denied"
