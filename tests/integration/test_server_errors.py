"""A 500 is a bug: every one is written to the server log with its traceback, pages and API alike."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor

pytestmark = pytest.mark.django_db

BUG = "selector bug 7f3a: division by zero in the subject list"


@contextmanager
def _server_log() -> Iterator[io.StringIO]:
    """What the log handlers configured by the settings write for `django.request` (stderr in production).

    Their streams are swapped for one buffer; pytest's own capture handlers are left alone.
    """
    written = io.StringIO()
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    logger: logging.Logger | None = logging.getLogger("django.request")
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not type(handler).__module__.startswith("_pytest"):
                swapped.append((handler, handler.stream))
                handler.stream = written
        logger = logger.parent if logger.propagate else None
    try:
        yield written
    finally:
        for handler, stream in swapped:
            handler.stream = stream


@pytest.fixture
def buggy_subject_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subject list's selector raises, as a bug would, for the page and the API alike."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError(BUG)

    for adapter in ("cartrial.apps.pathway.views", "cartrial.apps.pathway.api"):
        monkeypatch.setattr(f"{adapter}.subjects_in_scope", broken)


def _assert_logged_with_traceback(caplog: pytest.LogCaptureFixture, written: str, path: str) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert errors, [r.getMessage() for r in caplog.records]
    record = errors[-1]
    assert record.name == "django.request"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert path in record.getMessage()
    # Written, not only emitted: the configured handlers put the traceback in the server log.
    assert "Traceback (most recent call last)" in written, written
    assert f"ZeroDivisionError: {BUG}" in written
    assert path in written


def test_a_page_that_raises_is_logged_with_its_traceback(
    world: Any, buggy_subject_list: None, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(world.users["bdx.coordinator"])
    with _server_log() as written, caplog.at_level(logging.INFO):
        response = client.get("/subjects/")
    assert response.status_code == 500
    _assert_logged_with_traceback(caplog, written.getvalue(), "/subjects/")


def test_an_api_endpoint_that_raises_is_logged_and_answers_json(
    world: Any, buggy_subject_list: None, caplog: pytest.LogCaptureFixture
) -> None:
    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="test")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
    with _server_log() as written, caplog.at_level(logging.INFO):
        response = client.get("/api/v1/subjects")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "server_error"
    assert BUG not in response.content.decode()  # the details stay in the log
    _assert_logged_with_traceback(caplog, written.getvalue(), "/api/v1/subjects")


def test_a_not_found_page_is_not_logged_as_an_error(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = world.client_for("bdx.coordinator")
    with _server_log() as written, caplog.at_level(logging.INFO):
        assert client.get("/subjects/NOPE-999/").status_code == 404
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in written.getvalue()


def test_djangos_own_refusals_in_the_api_stay_4xx(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import PermissionDenied, SuspiciousOperation

    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="test")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
    for error, status in ((PermissionDenied, 403), (SuspiciousOperation, 400)):

        def refuse(*args: Any, error: type[Exception] = error, **kwargs: Any) -> Any:
            raise error("refused by Django")

        monkeypatch.setattr("cartrial.apps.pathway.api.subjects_in_scope", refuse)
        assert client.get("/api/v1/subjects").status_code == status
