"""Usernames are unique whatever their case: one person, one account, one lock-out counter."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import Client

from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import user_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.errors import InvalidInput

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _login(client: Client, username: str, password: str) -> Any:
    return client.post(LOGIN, {"username": username, "password": password})


def test_the_database_refuses_a_username_differing_only_in_case(world: Any) -> None:
    assert User.objects.filter(username="lil.coordinator").exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="LIL.Coordinator", first_name="Twin")
    assert User.objects.filter(username__iexact="lil.coordinator").count() == 1


def test_user_create_refuses_it_naming_the_existing_account(world: Any) -> None:
    entries = AuditEntry.objects.count()
    with pytest.raises(InvalidInput) as refused:
        user_create(
            actor=Actor.system("test"),
            username="LIL.Coordinator",
            password="a long enough secret",
            first_name="Twin",
            last_name="Account",
        )
    assert refused.value.code == "duplicate_username"
    assert "'lil.coordinator'" in str(refused.value) and "LIL.Coordinator" in str(refused.value)
    assert User.objects.filter(username__iexact="lil.coordinator").count() == 1
    assert AuditEntry.objects.count() == entries


def test_user_create_still_accepts_a_new_name(world: Any) -> None:
    user = user_create(
        actor=Actor.system("test"), username="Lil.Nurse", password="a long enough secret", first_name="N", last_name="L"
    )
    assert user.username == "Lil.Nurse"  # kept as typed, compared without case


@pytest.mark.parametrize("typed", ["LIL.Coordinator", "lil.COORDINATOR", "Lil.Coordinator"])
def test_login_accepts_the_username_in_any_case(world: Any, typed: str) -> None:
    client = Client()
    response = _login(client, typed, DEMO_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/subjects/"
    assert int(client.session["_auth_user_id"]) == world.users["lil.coordinator"].pk


def test_failures_in_any_case_count_for_the_same_person(world: Any) -> None:
    spellings = ["bdx.investigator", "BDX.Investigator", "bdx.INVESTIGATOR", "Bdx.Investigator", "BDX.INVESTIGATOR"]
    assert len(spellings) == settings.AXES_FAILURE_LIMIT
    for typed in spellings:
        assert _login(Client(), typed, "wrong password").status_code != 302
    for typed in ("bdx.investigator", "Bdx.Investigator"):  # the right password, every spelling: locked
        client = Client()
        locked = _login(client, typed, DEMO_PASSWORD)
        assert locked.status_code != 302
        assert "_auth_user_id" not in client.session
    assert _login(Client(), "bdx.coordinator", DEMO_PASSWORD).status_code == 302  # a colleague is not locked


def test_a_success_in_another_case_resets_the_count(world: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(Client(), "BDX.Pharmacist", "wrong password").status_code != 302
    assert _login(Client(), "bdx.pharmacist", DEMO_PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(Client(), "bdx.PHARMACIST", "wrong password").status_code != 302
    assert _login(Client(), "Bdx.Pharmacist", DEMO_PASSWORD).status_code == 302


def test_cli_token_create_finds_the_user_in_any_case(world: Any) -> None:
    from typer.testing import CliRunner

    from cartrial.apps.accounts.models import ApiToken
    from cartrial.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["token", "create", "LIL.Coordinator", "--label", "case"])
    assert result.exit_code == 0, result.output
    assert ApiToken.objects.get(label="case").user == world.users["lil.coordinator"]
