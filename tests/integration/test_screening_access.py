"""Screening and consent are read by the center's clinical staff and the sponsor's monitors, no one else.

Issue 8 found that the manufacturing lab could open screening and consent pages it has no use for.
Each page reading screening or consent now requires `Action.READ_SCREENING`. The expectation below is
written from the roles (the center's investigators and coordinators, the monitors and data managers
read them; the lab, apheresis, pharmacy and the sponsor's administrator do not), not from the access
table; every user here reaches the subject itself (it is the lab's too: its material was shipped).
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
