"""Revoking an API token from the command line: the next request presenting it is refused, the
revocation is audited, and a wrong or repeated revocation is one line, exit 2."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from django.test import Client
from typer.testing import CliRunner

from cartrial.apps.accounts.models import ApiToken
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor
from cartrial.cli import web

pytestmark = pytest.mark.django_db
runner = CliRunner()
app = typer.Typer()
web.register(app)


def _token(world: Any, username: str = "bdx.coordinator", label: str = "lab robot") -> str:
    return api_token_create(actor=Actor.system("test"), user=world.users[username], label=label)


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_a_revoked_token_is_refused_at_its_next_request(world: Any) -> None:
    token = _token(world)
    other = _token(world, "lil.coordinator", "monitoring")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/subjects").status_code == 200
    row = ApiToken.objects.get(prefix=token[:8])

    listed = _cli("token", "list", "BDX.coordinator")
    assert listed.exit_code == 0, listed.output
    assert f"{row.pk:>5}  {token[:8]}…  bdx.coordinator" in listed.output and "lab robot" in listed.output
    assert "lil.coordinator" not in listed.output and "used 20" in listed.output and "active" in listed.output

    revoked = _cli("token", "revoke", str(row.pk))
    assert revoked.exit_code == 0, revoked.output
    assert revoked.output.strip() == f"API token {row.pk} ({token[:8]}…) of bdx.coordinator revoked."
    assert api.get("/api/v1/subjects").status_code == 401
    assert Client(HTTP_AUTHORIZATION=f"Bearer {other}").get("/api/v1/subjects").status_code == 200
    assert "revoked" in _cli("token", "list", "bdx.coordinator").output

    entry = AuditEntry.objects.filter(event="api_token.revoked").get()
    assert (entry.entity_id, entry.actor_username) == (token[:8], "cli")
    assert token not in entry.changes_json
    assert audit_verify().intact


def test_a_leaked_token_is_revoked_by_giving_it_whole(world: Any) -> None:
    token = _token(world)
    assert _cli("token", "revoke", token).exit_code == 0
    assert ApiToken.objects.get(prefix=token[:8]).revoked


@pytest.mark.parametrize("which", ["999999", "ct_not-a-token-anyone-has"])
def test_an_unknown_or_repeated_revocation_is_one_line_exit_2(world: Any, which: str) -> None:
    unknown = _cli("token", "revoke", which)
    assert unknown.exit_code == 2 and unknown.output.strip().count("\n") == 0, unknown.output
    assert unknown.output.startswith("error: No API token ") and "[api_token_not_found]" in unknown.output
    assert "ct_not-a-token-anyone" not in unknown.output  # a token is never echoed whole
    token = _token(world)
    assert _cli("token", "revoke", token).exit_code == 0
    again = _cli("token", "revoke", token)
    assert again.exit_code == 2 and "is already revoked. [api_token_already_revoked]" in again.output
    assert AuditEntry.objects.filter(event="api_token.revoked").count() == 1


def test_the_list_shows_each_tokens_expiry_and_create_takes_a_lifetime(world: Any) -> None:
    from datetime import timedelta

    from cartrial.apps import clock

    created = _cli("token", "create", "bdx.coordinator", "--label", "weekly", "--days", "7")
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    row = ApiToken.objects.get(prefix=token[:8])
    assert row.expires_at == row.created_at + timedelta(days=7)
    listed = _cli("token", "list", "bdx.coordinator")
    assert f"expires {row.expires_at.isoformat(timespec='minutes')}  active" in listed.output
    with clock.frozen_at(row.expires_at):
        assert f"expires {row.expires_at.isoformat(timespec='minutes')}  expired" in _cli("token", "list").output
    too_long = _cli("token", "create", "bdx.coordinator", "--days", "366")
    assert too_long.exit_code != 0 and "token_lifetime_out_of_range" in too_long.output
    assert ApiToken.objects.count() == 1
