"""Token use is recorded at most once per interval, so most API requests write nothing (SQLite locks)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.db.models.query import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cartrial.apps import clock
from cartrial.apps.accounts.models import ApiToken
from cartrial.apps.accounts.services import TOKEN_USE_RECORD_INTERVAL, api_token_create
from cartrial.apps.audit.services import Actor

pytestmark = pytest.mark.django_db

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _token_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("UPDATE") and "accounts_apitoken" in q["sql"]
    ]


def _client(world: Any) -> tuple[Client, ApiToken]:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}"), ApiToken.objects.get(prefix=token[:8])


def test_requests_within_the_interval_write_the_token_once(world: Any) -> None:
    client, row = _client(world)
    assert timedelta(minutes=5) <= TOKEN_USE_RECORD_INTERVAL
    requests = 6
    step = TOKEN_USE_RECORD_INTERVAL / (requests + 1)
    with clock.frozen_at(START):
        with CaptureQueriesContext(connection) as queries:
            for _ in range(requests):
                assert client.get("/api/v1/centers").status_code == 200
                clock.advance(step)
        assert len(_token_writes(queries)) == 1, _token_writes(queries)
        row.refresh_from_db()
        assert row.last_used_at == START  # the first use, recorded at once

        # Past the interval since the recorded use: recorded again, once.
        clock.advance(TOKEN_USE_RECORD_INTERVAL - requests * step)
        later = clock.now()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/centers").status_code == 200
            assert client.get("/api/v1/centers").status_code == 200
        assert len(_token_writes(queries)) == 1
        row.refresh_from_db()
        assert row.last_used_at == later == START + TOKEN_USE_RECORD_INTERVAL


def test_a_failure_to_record_use_does_not_fail_the_request(
    world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, row = _client(world)
    update = QuerySet.update

    def locked(self: QuerySet[Any], **kwargs: Any) -> int:
        if self.model is ApiToken:
            raise OperationalError("database is locked")
        return update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", locked)
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/v1/centers")
    assert response.status_code == 200
    assert [c["code"] for c in response.json()["items"]] == ["BDX"]
    row.refresh_from_db()
    assert row.last_used_at is None
    assert any("database is locked" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
