"""Security settings that must hold: password hashing, login throttling, sessions, CSRF, URL
robustness, response headers, and a broken protocol file stopping the application at start-up."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.utils import timezone

from cartrial.apps.accounts.services import user_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State
from cartrial.protocols import DEFAULT_PROTOCOL_FILE

# The settings module as production loads it (the test conftest swaps the hasher on the live object).
PRODUCTION = importlib.import_module("cartrial.config.settings")
CARTRIAL_BIN = Path(sys.executable).with_name("cartrial")
LOGIN = "/accounts/login/"


def _login(client: Client, username: str, password: str) -> Any:
    return client.post(LOGIN, {"username": username, "password": password})


# --- passwords ----------------------------------------------------------------------------------


def test_production_hashes_passwords_with_argon2(db: None) -> None:
    assert PRODUCTION.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=PRODUCTION.PASSWORD_HASHERS):
        user = user_create(
            actor=Actor.system("test"),
            username="new.user",
            password="a long enough secret",
            first_name="New",
            last_name="User",
        )
        user.refresh_from_db()
        assert user.password.startswith("argon2$argon2id$")
        assert "a long enough secret" not in user.password
        assert user.check_password("a long enough secret")
        assert not user.check_password("a long enough secreT")
        # A real login verifies the argon2 hash through the axes-guarded backends.
        assert _login(Client(), "new.user", "a long enough secret").status_code == 302


def test_password_validators_refuse_short_and_common_passwords() -> None:
    names = [v["NAME"].rsplit(".", 1)[-1] for v in PRODUCTION.AUTH_PASSWORD_VALIDATORS]
    assert "MinimumLengthValidator" in names and "CommonPasswordValidator" in names
    from django.contrib.auth.password_validation import get_password_validators, validate_password
    from django.core.exceptions import ValidationError

    validators = get_password_validators(PRODUCTION.AUTH_PASSWORD_VALIDATORS)
    for weak in ("short", "password123"):
        with pytest.raises(ValidationError):
            validate_password(weak, password_validators=validators)
    validate_password("correct horse battery staple", password_validators=validators)


# --- login, throttling, language ----------------------------------------------------------------


def test_login_redirects_and_sets_the_centers_language(world: Any) -> None:
    client = Client()
    response = _login(client, "bdx.coordinator", DEMO_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/subjects/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"  # BDX is a French-speaking center
    page = client.get("/subjects/")
    assert page.status_code == 200 and '<html lang="fr">' in page.content.decode()
    assert int(client.session["_auth_user_id"]) == world.users["bdx.coordinator"].pk


def test_login_language_follows_the_users_preference(world: Any) -> None:
    user = world.users["lil.coordinator"]
    user.language = "en"
    user.save(update_fields=["language"])
    client = Client()
    response = _login(client, "lil.coordinator", DEMO_PASSWORD)
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert '<html lang="en">' in client.get("/subjects/").content.decode()


def test_pages_require_login(world: Any) -> None:
    subject = world.new_subject("BDX")
    for path in (
        "/subjects/",
        "/subjects/new/",
        f"/subjects/{subject.code}/",
        f"/subjects/{subject.code}/audit/",
        f"/subjects/{subject.code}/eligibility/",
        f"/subjects/{subject.code}/steps/withdraw/",
    ):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith(f"{LOGIN}?next=")
    before = Subject.objects.get(pk=subject.pk).state
    assert Client().post(f"/subjects/{subject.code}/steps/withdraw/", {"reason": "x"}).status_code == 302
    assert Subject.objects.get(pk=subject.pk).state == before


def test_five_failures_lock_the_username_and_are_audited(world: Any) -> None:
    username = "bdx.investigator"
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, username, "wrong password")
        assert response.status_code != 302
        assert "_auth_user_id" not in client.session
    failed = AuditEntry.objects.filter(event="login.failed", entity_id=username)
    assert failed.count() == settings.AXES_FAILURE_LIMIT == 5
    assert all(e.actor_username == username and "login_failed" in e.changes_json for e in failed)

    locked = _login(client, username, DEMO_PASSWORD)  # the 6th, with the right password
    assert locked.status_code != 302
    assert "_auth_user_id" not in client.session
    assert "locked" in locked.content.decode().lower() or "verrouill" in locked.content.decode().lower()
    assert Client().get("/subjects/").status_code == 302  # nothing logged in anywhere
    # The lock is per username (and address): a colleague at the same desk can still log in.
    assert _login(Client(), "bdx.coordinator", DEMO_PASSWORD).status_code == 302


def test_a_success_before_the_limit_resets_the_count(world: Any) -> None:
    username = "bdx.pharmacist"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(Client(), username, "wrong password").status_code != 302
    assert _login(Client(), username, DEMO_PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(Client(), username, "wrong password").status_code != 302
    assert _login(Client(), username, DEMO_PASSWORD).status_code == 302


def test_failed_login_of_unknown_user_is_audited_without_revealing_it(world: Any) -> None:
    known = _login(Client(), "bdx.coordinator", "wrong password")
    unknown = _login(Client(), "nobody.here", "wrong password")
    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().count("alert error") == unknown.content.decode().count("alert error") == 1
    assert AuditEntry.objects.filter(event="login.failed", entity_id="nobody.here").count() == 1


# --- sessions -----------------------------------------------------------------------------------


def test_session_settings_expire_sessions() -> None:
    assert 0 < PRODUCTION.SESSION_COOKIE_AGE <= 8 * 3600
    assert PRODUCTION.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert PRODUCTION.SESSION_COOKIE_HTTPONLY is True
    assert PRODUCTION.SESSION_SAVE_EVERY_REQUEST is True  # the age counts from the last request


def test_session_cookie_dies_with_the_browser_and_server_side_after_the_age(world: Any) -> None:
    client = Client()
    response = _login(client, "bdx.coordinator", DEMO_PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert cookie["httponly"]
    session = Session.objects.get(session_key=cookie.value)
    remaining = (session.expire_date - timezone.now()).total_seconds()
    assert settings.SESSION_COOKIE_AGE - 60 < remaining <= settings.SESSION_COOKIE_AGE
    assert client.get("/subjects/").status_code == 200
    # Idle past the age: the stored session has expired and the next request asks to log in again.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    again = client.get("/subjects/")
    assert again.status_code == 302 and again["Location"].startswith(LOGIN)


def test_logout_ends_the_session(world: Any) -> None:
    client = Client()
    _login(client, "bdx.coordinator", DEMO_PASSWORD)
    assert client.get("/subjects/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/subjects/").status_code == 302


# --- CSRF, URLs, headers ------------------------------------------------------------------------


def test_step_post_without_csrf_token_is_refused_and_changes_nothing(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["bdx.coordinator"])
    events, entries = PathwayEvent.objects.count(), AuditEntry.objects.count()
    refused = client.post(f"/subjects/{subject.code}/steps/withdraw/", {"reason": "forged"})
    assert refused.status_code == 403
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value
    assert (PathwayEvent.objects.count(), AuditEntry.objects.count()) == (events, entries)
    # Control: the same request with the form's token goes through, so the 403 was the CSRF check.
    form = client.get(f"/subjects/{subject.code}/steps/withdraw/")
    token = form.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = client.post(
        f"/subjects/{subject.code}/steps/withdraw/", {"reason": "patient's decision", "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302
    assert Subject.objects.get(pk=subject.pk).state == State.WITHDRAWN.value


def test_registration_and_eligibility_posts_need_csrf_too(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["bdx.investigator"])
    count = Subject.objects.count()
    assert (
        client.post(
            "/subjects/new/",
            {
                "center": "BDX",
                "family_name": "X",
                "given_names": "Y",
                "birth_date": "1980-01-01",
                "hospital_number": "Z",
            },
        ).status_code
        == 403
    )
    assert Subject.objects.count() == count
    answers = {c.id: "met" for c in world.protocol.criteria}
    assert client.post(f"/subjects/{subject.code}/eligibility/", {**answers, "save": "1"}).status_code == 403
    assert not subject.eligibility_assessments.exists()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("step", ["teleport", "INCLUDE", "include%20", "..", "withdraw;drop"])
def test_unknown_step_in_url_is_404(world: Any, method: str, step: str) -> None:
    subject = world.new_subject("BDX")
    client = world.client_for("bdx.coordinator")
    response = getattr(client, method)(f"/subjects/{subject.code}/steps/{step}/", {"reason": "x"})
    assert response.status_code == 404
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


@pytest.mark.parametrize(
    "query",
    [
        {"state": "bogus"},
        {"state": "' OR 1=1 --"},
        {"state": "SCREENING"},
        {"center": "ZZZ"},
        {"center": "<script>", "state": "%00"},
        {"state": ["screening", "bogus"]},
    ],
    ids=["unknown", "injection", "case", "unknown-center", "markup", "repeated"],
)
def test_odd_list_filters_never_500(world: Any, query: dict[str, Any]) -> None:
    world.new_subject("BDX")
    world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.coordinator")
    response = client.get("/subjects/", query)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<script>" not in body.split("<main>", 1)[1]  # echoed filters are escaped
    if "center" not in query and query.get("state") in ("bogus", "' OR 1=1 --", "SCREENING"):
        # An unknown state is ignored: the whole list is shown, not an empty or a failed one.
        assert "BDX-001" in body and "BDX-002" in body


def test_unknown_subject_and_malformed_codes_are_404(world: Any) -> None:
    client = world.client_for("bdx.coordinator")
    for code in ("BDX-999", "NOPE", "bdx-000", "%27%20OR%201=1"):
        assert client.get(f"/subjects/{code}/").status_code == 404


def test_security_headers_on_pages(world: Any) -> None:
    response = world.client_for("bdx.coordinator").get("/subjects/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert PRODUCTION.DEBUG is False or os.environ.get("CARTRIAL_DEBUG") == "1"


# --- a broken protocol stops the application ----------------------------------------------------


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    return data


def _missing_key(d: dict[str, Any]) -> None:
    del d["study"]["version"]


def _wrong_type(d: dict[str, Any]) -> None:
    d["pathway"]["acute_monitoring_days"] = "twenty-eight"


def _duplicate_visit(d: dict[str, Any]) -> None:
    d["visits"][2]["code"] = d["visits"][1]["code"]


def _reversed_temperatures(d: dict[str, Any]) -> None:
    d["products"][0]["min_temperature_c"], d["products"][0]["max_temperature_c"] = (
        d["products"][0]["max_temperature_c"],
        d["products"][0]["min_temperature_c"],
    )


def _missing_section(d: dict[str, Any]) -> None:
    del d["products"]


# (variant, mutation or raw text, expected key in the message, expected words of the problem)
BROKEN: list[tuple[str, Callable[[dict[str, Any]], None] | str, str, tuple[str, ...]]] = [
    (
        "bad-yaml",
        "study:\n  code: CARTLUP-12\n  title: [unclosed\nvisits: {\n",
        "(top level)",
        ("not valid YAML", "line"),
    ),
    ("missing-key", _missing_key, "study", ("'version' is a required property",)),
    ("missing-section", _missing_section, "(top level)", ("'products' is a required property",)),
    ("wrong-type", _wrong_type, "pathway.acute_monitoring_days", ("'twenty-eight'", "is not of type 'integer'")),
    ("duplicate-visit", _duplicate_visit, "visits.2.code", ("duplicate visit code",)),
    (
        "reversed-temperatures",
        _reversed_temperatures,
        "products.0.min_temperature_c",
        ("min_temperature_c must be below max_temperature_c",),
    ),
]


def _write(tmp_path: Path, name: str, broken: Callable[[dict[str, Any]], None] | str) -> Path:
    path = tmp_path / f"{name}.yaml"
    if isinstance(broken, str):
        path.write_text(broken, encoding="utf-8")
    else:
        data = _base()
        broken(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTRIAL_PROTOCOL")}
    env.update(extra)
    return env


def _assert_names_file_key_problem(output: str, path: Path, key: str, problem: tuple[str, ...]) -> None:
    assert str(path) in output
    assert f"at key '{key}'" in output
    for words in problem:
        assert words in output, output


@pytest.mark.parametrize(("name", "broken", "key", "problem"), BROKEN, ids=[b[0] for b in BROKEN])
def test_protocol_check_cli_names_file_key_and_problem(
    tmp_path: Path, name: str, broken: Any, key: str, problem: tuple[str, ...]
) -> None:
    path = _write(tmp_path, name, broken)
    result = subprocess.run(
        [str(CARTRIAL_BIN), "protocol", "check", str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    _assert_names_file_key_problem(result.stderr, path, key, problem)
    assert "Traceback" not in result.stderr  # one line, not a stack


def test_protocol_check_cli_accepts_the_protocol_in_force(tmp_path: Path) -> None:
    path = _write(tmp_path, "unchanged", lambda d: None)  # same content re-serialised: still valid
    result = subprocess.run(
        [str(CARTRIAL_BIN), "protocol", "check", str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout and str(path) in result.stdout


SETUP = (
    "import django, os, sys; "
    "os.environ['CARTRIAL_PROTOCOL_FILE'] = sys.argv[1]; "
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'cartrial.config.settings'; "
    "django.setup(); print('started')"
)


@pytest.mark.parametrize(("name", "broken", "key", "problem"), BROKEN, ids=[b[0] for b in BROKEN])
def test_django_setup_refuses_a_broken_protocol(
    tmp_path: Path, name: str, broken: Any, key: str, problem: tuple[str, ...]
) -> None:
    path = _write(tmp_path, name, broken)
    result = subprocess.run(
        [sys.executable, "-c", SETUP, str(path)], capture_output=True, text=True, env=_env(), timeout=120, check=False
    )
    assert result.returncode != 0
    assert "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: [protocol_invalid]"), result.stderr
    _assert_names_file_key_problem(last, path, key, problem)


def test_django_setup_starts_with_a_valid_protocol(tmp_path: Path) -> None:
    path = _write(tmp_path, "unchanged", lambda d: None)
    result = subprocess.run(
        [sys.executable, "-c", SETUP, str(path)], capture_output=True, text=True, env=_env(), timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"
