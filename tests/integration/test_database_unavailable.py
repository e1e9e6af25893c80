"""When the database cannot be reached (restarted, connection cut), pages and the API answer 503
with `Retry-After`, in the reader's language, drawn without the database: not a bug's 500, not
gunicorn's bare error. Found by the fault drills (benchmarks/faults/postgres_restart.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError, connections
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import Subject

pytestmark = pytest.mark.django_db

CUT = "server closed the connection unexpectedly"


@contextmanager
def _database_down() -> Iterator[None]:
    """Every query fails as it does when PostgreSQL restarts under the server."""
    with mock.patch.object(connections["default"], "cursor", side_effect=OperationalError(CUT)):
        yield


def _token_client(world: Any, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="test")
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def test_a_page_says_the_database_is_unavailable_without_asking_it(world: Any) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world.users["bdx.coordinator"])
    with _database_down():
        # Signed in: the session itself is in the database, and so is what the usual page shows.
        response = client.get("/subjects/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "The database cannot be reached just now." in page
    assert CUT not in page and "Traceback" not in page


def test_a_database_lost_while_saving_the_session_is_503_not_400(world: Any) -> None:
    from django.contrib.sessions.models import Session

    client = Client(raise_request_exception=False)
    client.force_login(world.users["bdx.coordinator"])
    # The page is computed, then the database goes as the session is saved (on every request).
    with mock.patch.object(Session, "save", side_effect=OperationalError(CUT)):
        response = client.get("/subjects/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert "The database cannot be reached just now." in response.content.decode()


def test_the_page_is_in_french_for_a_french_reader(world: Any) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world.users["bdx.coordinator"])
    with _database_down():
        response = client.get("/subjects/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 503
    assert "La base de données est injoignable pour le moment." in response.content.decode()


def test_the_api_answers_503_json_and_nothing_is_stored(world: Any) -> None:
    client = _token_client(world)
    before = Subject.objects.count()
    payload = {
        "center": "BDX",
        "family_name": "Martin",
        "given_names": "Anne",
        "birth_date": "1980-01-02",
        "hospital_number": "DB-DOWN-1",
    }
    with _database_down():
        response = client.post("/api/v1/subjects", payload, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert body["message"].startswith("The database cannot be reached just now.")
    assert CUT not in response.content.decode()
    assert Subject.objects.count() == before
    # The database back, the same request is served.
    assert client.post("/api/v1/subjects", payload, content_type="application/json").status_code == 201


def test_the_api_answer_is_in_french_when_asked(world: Any) -> None:
    client = _token_client(world, HTTP_ACCEPT_LANGUAGE="fr")
    with _database_down():
        response = client.get("/api/v1/subjects")
    assert response.status_code == 503
    assert response.json()["message"].startswith("La base de données est injoignable pour le moment.")


def test_a_bug_is_still_a_500(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("cartrial.apps.pathway.api.subjects_in_scope", broken)
    response = _token_client(world).get("/api/v1/subjects")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
