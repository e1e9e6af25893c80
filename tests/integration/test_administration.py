"""Administration in the app (issue 13, item 2): centers, users and their roles per center, an end
to a person's access, suspension, API tokens with an expiry, and the study's audit trail with its
CSV download. Every write is audited; the access entry point enforces what is set here."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.models import ApiToken, Membership, User
from cartrial.apps.accounts.services import api_token_create, user_create
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor, audit_record
from cartrial.apps.trial.models import Center
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.access_terms import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX

pytestmark = pytest.mark.django_db

ADMIN = "sponsor.admin"


def _api(world: Any, username: str, days: int | None = None) -> tuple[Client, str]:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test", days=days)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}"), token


def _events_after(sequence: int) -> list[str]:
    return list(AuditEntry.objects.filter(sequence__gt=sequence).order_by("sequence").values_list("event", flat=True))


def _signs_in(username: str) -> bool:
    """Whether the login page lets `username` in with the right password (a redirect: signed in)."""
    response = Client().post("/accounts/login/", {"username": username, "password": DEMO_PASSWORD})
    return response.status_code == 302


def _last() -> int:
    entry = AuditEntry.objects.order_by("-sequence").first()
    return entry.sequence if entry else 0


# --- centers --------------------------------------------------------------------------------------


def test_the_administrator_registers_and_edits_a_center_audited(world: Any) -> None:
    page = world.client_for(ADMIN)
    since = _last()
    values = {
        "code": "NTE",
        "name": "CHU de Nantes",
        "city": "Nantes",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "language": "fr",
        "kind": "clinical",
    }
    response = page.post("/administration/centers/", values)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Center.objects.get(code="NTE").name == "CHU de Nantes"
    assert "CHU de Nantes" in page.get("/administration/centers/").content.decode()

    edit = page.post("/administration/centers/NTE/", {**values, "time_zone": "Europe/Brussels", "active": "on"})
    assert edit.status_code == 302
    assert Center.objects.get(code="NTE").time_zone == "Europe/Brussels"
    assert _events_after(since) == ["center.created", "center.changed"]
    changed = AuditEntry.objects.get(event="center.changed")
    assert json.loads(changed.changes_json) == [{"field": "time_zone", "old": "Europe/Paris", "new": "Europe/Brussels"}]
    assert changed.actor_username == ADMIN and changed.role == "sponsor_admin"


def test_a_bad_center_is_refused_naming_the_item_and_nothing_stored(world: Any) -> None:
    api, _ = _api(world, ADMIN)
    since = _last()
    body = {
        "code": "nt",
        "name": "x",
        "city": "",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "language": "fr",
        "kind": "clinical",
    }
    response = api.post("/api/v1/administration/centers", body, content_type="application/json")
    assert response.status_code == 422 and response.json()["item"] == "code"
    response = api.post(
        "/api/v1/administration/centers",
        {**body, "code": "NTE", "time_zone": "Mars/Olympus"},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["item"] == "time_zone"
    assert not Center.objects.filter(code__in=["NT", "NTE"]).exists()
    assert _events_after(since) == []


def test_a_center_kind_does_not_change_under_its_roles(world: Any) -> None:
    api, _ = _api(world, ADMIN)
    body = {
        "name": "Lab",
        "city": "X",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "language": "fr",
        "kind": "clinical",
    }
    response = api.put("/api/v1/administration/centers/LAB", body, content_type="application/json")
    assert response.status_code == 409 and response.json()["code"] == "center_kind_in_use"
    assert Center.objects.get(code="LAB").kind == "manufacturing"


# --- users and roles ------------------------------------------------------------------------------


def test_usernames_are_unique_whatever_their_case_on_create_and_rename(world: Any) -> None:
    page = world.client_for(ADMIN)
    api, _ = _api(world, ADMIN)
    response = page.post(
        "/administration/users/",
        {"username": "BDX.Coordinator", "first_name": "J", "last_name": "M", "password": "a-long-password-1"},
    )
    assert response.status_code == 422
    assert "bdx.coordinator" in response.content.decode()
    assert User.objects.filter(username__iexact="bdx.coordinator").count() == 1

    body = {"username": "LIL.Coordinator", "first_name": "J", "last_name": "M", "email": "", "language": ""}
    renamed = api.put("/api/v1/administration/users/bdx.investigator2", body, content_type="application/json")
    assert renamed.status_code == 422 and renamed.json()["code"] == "duplicate_username"
    assert User.objects.filter(username="bdx.investigator2").exists()

    created = api.post(
        "/api/v1/administration/users",
        {"username": "nte.investigator", "first_name": "N", "last_name": "T", "password": "a-long-password-1"},
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["memberships"] == []
    again = api.post(
        "/api/v1/administration/users",
        {"username": "NTE.INVESTIGATOR", "first_name": "N", "last_name": "T", "password": "a-long-password-1"},
        content_type="application/json",
    )
    assert again.status_code == 422 and again.json()["code"] == "duplicate_username"


def test_granting_and_changing_a_role_is_audited_and_takes_effect(world: Any) -> None:
    api, _ = _api(world, ADMIN)
    since = _last()
    grant = api.post(
        "/api/v1/administration/users/bdx.coordinator/memberships",
        {"center": "LIL", "role": "monitor"},
        content_type="application/json",
    )
    assert grant.status_code == 201
    assert {"center": "LIL", "role": "monitor"}.items() <= grant.json()["memberships"][1].items()
    mismatch = api.post(
        "/api/v1/administration/users/bdx.coordinator/memberships",
        {"center": "LAB", "role": "coordinator"},
        content_type="application/json",
    )
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "role_center_mismatch"
    change = api.put(
        "/api/v1/administration/users/bdx.coordinator/memberships/LIL",
        {"role": "data_manager", "reason": "moved"},
        content_type="application/json",
    )
    assert change.status_code == 200
    assert Membership.objects.get(user__username="bdx.coordinator", center__code="LIL").role == "data_manager"
    assert _events_after(since) == ["membership.granted", "membership.changed"]


def test_an_ended_membership_gives_404_and_403_like_none(world: Any) -> None:
    """After its last day (midnight at the center), the membership is as if it did not exist: the
    subject is not found, the center's pages refuse, the API too; before it, everything works."""
    subject = world.new_subject("BDX")
    page, api = world.client_for("bdx.coordinator"), _api(world, "bdx.coordinator")[0]
    admin, _ = _api(world, ADMIN)
    today = clock.now().astimezone(ZoneInfo("Europe/Paris")).date()
    ended = admin.put(
        "/api/v1/administration/users/bdx.coordinator/memberships/BDX",
        {"role": "coordinator", "last_day": (today + timedelta(days=2)).isoformat(), "reason": "leaves"},
        content_type="application/json",
    )
    assert ended.status_code == 200 and ended.json()["memberships"][0]["in_force"] is True
    assert page.get(f"/subjects/{subject.code}/").status_code == 200
    assert api.get(f"/api/v1/subjects/{subject.code}").status_code == 200

    with clock.frozen_at(clock.now() + timedelta(days=4)):
        assert page.get(f"/subjects/{subject.code}/").status_code == 404
        assert api.get(f"/api/v1/subjects/{subject.code}").status_code == 404
        # The page a person with no role anywhere gets: the ended membership counts for nothing.
        nobody = user_create(
            actor=Actor.system("test"), username="no.role", password=DEMO_PASSWORD, first_name="N", last_name="R"
        )
        stranger = Client()
        stranger.force_login(nobody)
        assert page.get("/subjects/new/").status_code == stranger.get("/subjects/new/").status_code
        assert api.get("/api/v1/subjects").json()["items"] == []
        listed = admin.get("/api/v1/administration/users?limit=1000").json()["items"]
        coordinator = next(u for u in listed if u["username"] == "bdx.coordinator")
        assert coordinator["memberships"][0]["in_force"] is False


def test_the_end_of_access_is_midnight_at_the_center(world: Any) -> None:
    """MTL is in America/Toronto: its last day ends at its own midnight, not UTC's."""
    admin, _ = _api(world, ADMIN)
    response = admin.put(
        "/api/v1/administration/users/mtl.coordinator/memberships/MTL",
        {"role": "coordinator", "last_day": "2027-01-10"},
        content_type="application/json",
    )
    membership = response.json()["memberships"][0]
    assert membership["last_day"] == "2027-01-10"
    assert datetime.fromisoformat(membership["ends_at"]) == datetime(2027, 1, 11, 5, 0, tzinfo=UTC)
    user = world.users["mtl.coordinator"]
    from cartrial.apps.access import scope_for

    with clock.frozen_at(datetime(2027, 1, 11, 4, 59, tzinfo=UTC)):
        assert scope_for(user).center_codes
    with clock.frozen_at(datetime(2027, 1, 11, 5, 0, tzinfo=UTC)):
        assert not scope_for(user).center_codes


# --- suspension -----------------------------------------------------------------------------------


def test_a_suspended_users_session_and_token_are_refused_on_the_next_request(world: Any) -> None:
    subject = world.new_subject("BDX")
    page = world.client_for("bdx.coordinator")
    api, _ = _api(world, "bdx.coordinator")
    assert page.get(f"/subjects/{subject.code}/").status_code == 200
    assert api.get(f"/api/v1/subjects/{subject.code}").status_code == 200
    session_key = page.session.session_key
    assert Session.objects.filter(session_key=session_key).exists()
    since = _last()

    admin = world.client_for(ADMIN)
    response = admin.post("/administration/users/bdx.coordinator/", {"action": "suspend", "reason": "left the team"})
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=session_key).exists()  # deleted, not only refused
    assert Session.objects.filter(session_key=admin.session.session_key).exists()  # the admin's stays

    refused = page.get(f"/subjects/{subject.code}/")
    assert refused.status_code == 302 and "/accounts/login/" in refused["Location"]
    assert api.get(f"/api/v1/subjects/{subject.code}").status_code == 401
    assert not _signs_in("bdx.coordinator")
    entry = AuditEntry.objects.get(sequence__gt=since, event="user.suspended")
    assert entry.reason == "left the team" and entry.actor_username == ADMIN

    reinstated = admin.post("/administration/users/bdx.coordinator/", {"action": "reinstate", "reason": "back"})
    assert reinstated.status_code == 302
    assert api.get(f"/api/v1/subjects/{subject.code}").status_code == 200  # the token was not revoked
    assert _signs_in("bdx.coordinator")
    assert _events_after(since) == ["user.suspended", "login.failed", "user.reinstated"]


def test_suspension_needs_a_reason_and_not_oneself(world: Any) -> None:
    api, _ = _api(world, ADMIN)
    empty = api.post(
        "/api/v1/administration/users/bdx.coordinator/suspension", {"reason": ""}, content_type="application/json"
    )
    assert empty.status_code == 422
    own = api.post(
        "/api/v1/administration/users/sponsor.admin/suspension", {"reason": "x"}, content_type="application/json"
    )
    assert own.status_code == 409 and own.json()["code"] == "suspend_self"
    assert User.objects.get(username="bdx.coordinator").is_active


# --- API tokens -----------------------------------------------------------------------------------


def test_a_token_expires_by_default_and_an_expired_token_is_refused(world: Any) -> None:
    api, token = _api(world, "bdx.coordinator")
    row = ApiToken.objects.get(prefix=token[:8])
    assert row.expires_at == row.created_at + timedelta(days=TOKEN_DAYS_DEFAULT)
    assert api.get("/api/v1/centers").status_code == 200
    with clock.frozen_at(row.expires_at - timedelta(seconds=1)):
        assert api.get("/api/v1/centers").status_code == 200
    with clock.frozen_at(row.expires_at):
        response = api.get("/api/v1/centers")
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_a_token_lifetime_beyond_the_maximum_is_refused(world: Any) -> None:
    admin, _ = _api(world, ADMIN)
    count = ApiToken.objects.count()
    response = admin.post(
        "/api/v1/administration/tokens",
        {"owner": "bdx.coordinator", "label": "script", "days": TOKEN_DAYS_MAX + 1},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "days"
    assert ApiToken.objects.count() == count
    made = admin.post(
        "/api/v1/administration/tokens",
        {"owner": "bdx.coordinator", "label": "script", "days": 7},
        content_type="application/json",
    )
    assert made.status_code == 201
    body = made.json()
    assert body["token"].startswith(body["prefix"]) and body["owner"] == "bdx.coordinator" and body["usable"]
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) == created + timedelta(days=7)
    assert Client(HTTP_AUTHORIZATION=f"Bearer {body['token']}").get("/api/v1/centers").status_code == 200


def test_tokens_are_listed_and_revoked_from_the_page(world: Any) -> None:
    api, token = _api(world, "bdx.coordinator")
    row = ApiToken.objects.get(prefix=token[:8])
    admin = world.client_for(ADMIN)
    listed = admin.get("/administration/tokens/").content.decode()
    assert f"{row.prefix}…" in listed and "bdx.coordinator" in listed and row.expires_at.strftime("%Y-%m-%d") in listed
    assert token not in listed
    since = _last()
    response = admin.post("/administration/tokens/", {"token": row.pk})
    assert response.status_code == 302
    assert api.get("/api/v1/centers").status_code == 401
    assert _events_after(since) == ["api_token.revoked"]
    again = admin.post("/administration/tokens/", {"token": row.pk})
    assert again.status_code == 409


def test_a_token_created_on_the_user_page_is_shown_once(world: Any) -> None:
    admin = world.client_for(ADMIN)
    response = admin.post(
        "/administration/users/bdx.coordinator/", {"action": "token_create", "label": "nightly", "days": "30"}
    )
    assert response.status_code == 201
    body = response.content.decode()
    start = body.index("ct_")
    token = body[start : body.index("<", start)]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/centers").status_code == 200
    assert token not in admin.get("/administration/users/bdx.coordinator/").content.decode()


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["bdx.coordinator", "dm.datamanager", "cra.monitor", "lab.manufacturing"])
def test_only_the_sponsor_administrator_administers(world: Any, username: str) -> None:
    page = world.client_for(username)
    api, _ = _api(world, username)
    since = _last()
    for path in (
        "/administration/users/",
        "/administration/centers/",
        "/administration/tokens/",
        "/administration/users/bdx.coordinator/",
    ):
        assert page.get(path).status_code == 403, path
    assert api.get("/api/v1/administration/users").status_code == 403
    suspended = api.post(
        "/api/v1/administration/users/bdx.investigator/suspension", {"reason": "x"}, content_type="application/json"
    )
    assert suspended.status_code == 403
    assert User.objects.get(username="bdx.investigator").is_active
    assert set(_events_after(since)) == {"access.refused"}


def test_the_top_bar_offers_administration_to_the_administrator_only(world: Any) -> None:
    admin = world.client_for(ADMIN).get("/subjects/").content.decode()
    assert 'data-testid="administration-nav"' in admin and 'data-testid="study-audit-nav"' in admin
    manager = world.client_for("dm.datamanager").get("/subjects/").content.decode()
    assert 'data-testid="administration-nav"' not in manager and 'data-testid="study-audit-nav"' in manager
    coordinator = world.client_for("bdx.coordinator").get("/subjects/").content.decode()
    assert "administration-nav" not in coordinator and "study-audit-nav" not in coordinator


# --- the study's audit trail ----------------------------------------------------------------------


def test_the_study_audit_trail_filters_and_pages(world: Any) -> None:
    bdx, lil = world.new_subject("BDX"), world.new_subject("LIL")
    page = world.client_for("dm.datamanager")
    everything = page.get("/administration/audit/")
    assert everything.status_code == 200
    body = everything.content.decode()
    assert bdx.code in body and lil.code in body
    only_bdx = page.get("/administration/audit/", {"subject": bdx.code}).content.decode()
    assert bdx.code in only_bdx and lil.code not in only_bdx
    api, _ = _api(world, "dm.datamanager")
    by_center = api.get("/api/v1/administration/audit", {"center": "LIL", "limit": 1000}).json()
    assert by_center["total"] > 0
    assert all(e["subject"].startswith("LIL-") or e["center"] == "LIL" for e in by_center["items"])
    by_event = api.get("/api/v1/administration/audit", {"event": "subject.created"}).json()
    assert {e["subject"] for e in by_event["items"]} >= {bdx.code, lil.code}
    assert all(e["event"] == "subject.created" for e in by_event["items"])
    by_actor = api.get("/api/v1/administration/audit", {"actor": "LIL.Coordinator"}).json()
    assert by_actor["total"] > 0 and {e["actor"] for e in by_actor["items"]} == {"lil.coordinator"}
    future = (clock.now().date() + timedelta(days=2)).isoformat()
    assert api.get("/api/v1/administration/audit", {"date_from": future}).json()["total"] == 0
    window = api.get("/api/v1/administration/audit", {"limit": 2}).json()
    assert len(window["items"]) == 2 and window["next_offset"] == 2
    assert window["items"][0]["sequence"] > window["items"][1]["sequence"]  # newest first


def test_the_study_audit_trail_keeps_to_the_readers_centers(world: Any) -> None:
    """The data manager is at the five clinical centers, not the lab: a subject of another center
    (a new one, TLS, where they have no role) never shows; a center outside theirs is not found."""
    system = Actor.system("test")
    from cartrial.apps.trial.services import center_create

    tls = center_create(
        actor=system, code="TLS", name="T", city="T", country="FR", time_zone="Europe/Paris", language="fr"
    )
    coordinator = user_create(
        actor=system, username="tls.coordinator", password=DEMO_PASSWORD, first_name="T", last_name="C"
    )
    from cartrial.apps.accounts.services import membership_grant
    from cartrial.domain.roles import Role

    membership_grant(actor=system, user=coordinator, center=tls, role=Role.COORDINATOR)
    audit_record(
        actor=Actor(coordinator.pk, "tls.coordinator", "coordinator", "TLS", clock.now()),
        event=AuditEvent.SUBJECT_CREATED,
        entity="subject",
        entity_id="TLS-001",
        subject_code="TLS-001",
        center_code="TLS",
    )
    api, _ = _api(world, "dm.datamanager")
    seen = api.get("/api/v1/administration/audit", {"limit": 1000}).json()
    assert "TLS-001" not in {e["subject"] for e in seen["items"]}
    assert "TLS" not in {e["center"] for e in seen["items"]}
    assert api.get("/api/v1/administration/audit", {"center": "TLS"}).status_code == 404
    admin_seen = _api(world, ADMIN)[0].get("/api/v1/administration/audit", {"subject": "TLS-001"}).json()
    assert admin_seen["total"] == 0  # the sponsor's administrator is not a member at TLS either


@pytest.mark.parametrize("username", ["bdx.investigator", "cra.monitor", "lab.manufacturing", "bdx.pharmacist"])
def test_the_study_audit_trail_is_its_own_permission(world: Any, username: str) -> None:
    page = world.client_for(username)
    api, _ = _api(world, username)
    assert page.get("/administration/audit/").status_code == 403
    assert page.get("/administration/audit.csv").status_code == 403
    assert api.get("/api/v1/administration/audit").status_code == 403
    assert api.get("/api/v1/administration/audit.csv").status_code == 403


def test_the_csv_download_holds_the_filtered_entries_with_formulas_neutralised(world: Any) -> None:
    subject = world.new_subject("BDX")
    actor = Actor(world.users["bdx.coordinator"].pk, "bdx.coordinator", "coordinator", "BDX", clock.now())
    audit_record(
        actor=actor,
        event=AuditEvent.RECORD_CORRECTED,
        entity="subject",
        entity_id=subject.code,
        subject_code=subject.code,
        reason='=HYPERLINK("http://evil.invalid","x")',
    )
    page = world.client_for(ADMIN)
    response = page.get("/administration/audit.csv", {"subject": subject.code})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    assert rows[0][:3] == ["sequence", "occurred_at_utc", "actor"]
    expected = list(AuditEntry.objects.filter(subject_code=subject.code).order_by("-sequence"))
    assert [int(r[0]) for r in rows[1:]] == [e.sequence for e in expected]
    assert {r[8] for r in rows[1:]} == {subject.code}
    corrected = next(r for r in rows[1:] if r[5] == "record.corrected")
    assert corrected[10] == '\'=HYPERLINK("http://evil.invalid","x")'
    assert corrected[11] == expected[0].entry_hash
    api, _ = _api(world, "dm.datamanager")
    via_api = api.get("/api/v1/administration/audit.csv", {"subject": subject.code})
    assert via_api.status_code == 200
    assert list(csv.reader(io.StringIO(b"".join(via_api.streaming_content).decode("utf-8")))) == rows


def test_every_administration_write_keeps_the_chain_intact(world: Any) -> None:
    admin, _ = _api(world, ADMIN)
    admin.post(
        "/api/v1/administration/users/bdx.coordinator/suspension", {"reason": "x"}, content_type="application/json"
    )
    admin.post(
        "/api/v1/administration/users/bdx.coordinator/reinstatement", {"reason": "y"}, content_type="application/json"
    )
    admin.put(
        "/api/v1/administration/users/bdx.coordinator/memberships/BDX",
        {"role": "coordinator", "last_day": date(2030, 1, 1).isoformat()},
        content_type="application/json",
    )
    assert audit_verify().intact


def test_edge_values_are_refused_or_answered_never_a_server_error(world: Any) -> None:
    """Values at the calendar's edges and a label with spaces: a named refusal or an answer, no 500."""
    admin, _ = _api(world, ADMIN)
    far = admin.put(
        "/api/v1/administration/users/bdx.coordinator/memberships/BDX",
        {"role": "coordinator", "last_day": "9999-12-31"},
        content_type="application/json",
    )
    assert far.status_code == 422 and far.json()["item"] == "last_day"
    assert Membership.objects.get(user__username="bdx.coordinator", center__code="BDX").ends_at is None
    padded = admin.post(
        "/api/v1/administration/tokens",
        {"owner": "bdx.coordinator", "label": "  nightly  ", "days": 3},
        content_type="application/json",
    )
    assert padded.status_code == 201 and padded.json()["label"] == "nightly"
    last = admin.get("/api/v1/administration/audit", {"date_from": "0001-01-01", "date_to": "9999-12-31"})
    assert last.status_code == 200 and last.json()["total"] > 0
