"""The jobs worker outlives a database that is briefly unavailable (SQLite locked by a long
writer, PostgreSQL restarting): it waits, doubling, and starts again; `--once` gives up after a few
attempts with the error."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from typer.testing import CliRunner

from cartrial.cli import _register, app
from cartrial.cli.jobs import WORKER_ATTEMPTS_ONCE


def _worker(monkeypatch: pytest.MonkeyPatch, failures: int, *args: str) -> tuple[Any, list[float], list[str]]:
    calls: list[str] = []
    pauses: list[float] = []

    def db_worker(name: str, **options: Any) -> None:
        calls.append(name)
        if len(calls) <= failures:
            raise OperationalError("database is locked")

    monkeypatch.setattr("django.core.management.call_command", db_worker)
    monkeypatch.setattr("time.sleep", pauses.append)
    _register()
    return CliRunner().invoke(app, ["jobs", "worker", *args]), pauses, calls


def test_the_worker_waits_and_starts_again_when_the_database_is_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    result, pauses, calls = _worker(monkeypatch, 3, "--interval", "1")
    assert result.exit_code == 0, result.output
    assert calls == ["db_worker"] * 4
    assert pauses == [2.0, 4.0, 8.0]


def test_once_gives_up_after_a_few_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    result, pauses, calls = _worker(monkeypatch, 99, "--once")
    assert isinstance(result.exception, OperationalError)
    assert len(calls) == WORKER_ATTEMPTS_ONCE and len(pauses) == WORKER_ATTEMPTS_ONCE - 1
