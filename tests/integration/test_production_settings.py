"""Production settings: no start without a secret key, `check --deploy` clean, the demo and tests unaffected."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

CARTRIAL_BIN = Path(sys.executable).with_name("cartrial")
SETUP = "import django; django.setup(); from django.conf import settings; print('started', len(settings.SECRET_KEY))"


def _env(**extra: str) -> dict[str, str]:
    """This environment without any CARTRIAL_* or Django variable, plus `extra`: a fresh shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRIAL_", "DJANGO_"))}
    env["DJANGO_SETTINGS_MODULE"] = "cartrial.config.settings"
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=180, check=False)


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = _run([sys.executable, "-c", SETUP], tmp_path)
    assert result.returncode != 0
    assert "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: CARTRIAL_SECRET_KEY is not set"), last
    assert "cartrial keygen --secret" in last  # says how to make one


def test_an_empty_secret_key_is_refused_too(tmp_path: Path) -> None:
    result = _run([sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY="  ")
    assert result.returncode != 0 and "CARTRIAL_SECRET_KEY is not set" in result.stderr


def test_production_starts_with_its_secret_key(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(50)
    result = _run([sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["started", str(len(key))]


def test_debug_mode_starts_without_a_secret_key_and_with_no_fixed_one(tmp_path: Path) -> None:
    probe = SETUP + "; print(settings.SECRET_KEY)"
    first = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_DEBUG="1")
    second = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_DEBUG="1")
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] != second.stdout.splitlines()[-1]  # made per process, never shipped


def test_cli_without_a_secret_key_says_so_in_one_line(tmp_path: Path) -> None:
    result = _run([str(CARTRIAL_BIN), "migrate"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("cartrial cannot start: CARTRIAL_SECRET_KEY is not set")
    assert not (tmp_path / "cartrial.sqlite3").exists()


def test_the_demo_secret_is_made_once_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cartrial.cli.web import DEMO_SECRET_FILE, _ensure_secret_key

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARTRIAL_SECRET_KEY", raising=False)
    _ensure_secret_key(generate=False)
    assert "CARTRIAL_SECRET_KEY" not in os.environ and not (tmp_path / DEMO_SECRET_FILE).exists()
    _ensure_secret_key(generate=True)
    made = os.environ["CARTRIAL_SECRET_KEY"]
    key_file = tmp_path / DEMO_SECRET_FILE
    assert key_file.read_text().strip() == made and len(made) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.delenv("CARTRIAL_SECRET_KEY")
    _ensure_secret_key(generate=False)  # `cartrial serve` after `cartrial demo`
    assert os.environ["CARTRIAL_SECRET_KEY"] == made
    monkeypatch.setenv("CARTRIAL_SECRET_KEY", "from-the-environment")
    _ensure_secret_key(generate=True)
    assert os.environ["CARTRIAL_SECRET_KEY"] == "from-the-environment"  # the environment wins


def test_cli_commands_use_the_demo_secret_file_in_the_working_directory(tmp_path: Path) -> None:
    from cartrial.cli.web import DEMO_SECRET_FILE

    (tmp_path / DEMO_SECRET_FILE).write_text(secrets.token_urlsafe(50) + "\n")
    result = _run([str(CARTRIAL_BIN), "migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Database up to date." in result.stdout


def test_keygen_secret_prints_a_key_django_accepts(tmp_path: Path) -> None:
    result = _run([str(CARTRIAL_BIN), "keygen", "--secret"], tmp_path)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert len(key) >= 50 and len(set(key)) >= 5 and not key.startswith("django-insecure")


def test_check_deploy_reports_no_issue_with_production_settings(tmp_path: Path) -> None:
    result = _run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        CARTRIAL_SECRET_KEY=secrets.token_urlsafe(50),
        CARTRIAL_HTTPS="1",
        CARTRIAL_ALLOWED_HOSTS="trial.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_https_settings_turn_on_hsts_for_a_year_with_subdomains(tmp_path: Path) -> None:
    probe = SETUP + "; print(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS)"
    key = secrets.token_urlsafe(50)
    on = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key, CARTRIAL_HTTPS="1")
    off = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key)
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    seconds, subdomains = on.stdout.splitlines()[-1].split()
    assert int(seconds) >= 365 * 24 * 3600 and subdomains == "True"
    assert off.stdout.splitlines()[-1].split()[0] == "0"  # plain HTTP (a laptop demo): no HSTS


@pytest.mark.django_db
def test_hsts_header_on_secure_responses(client: object) -> None:
    from django.test import Client, override_settings

    with override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True):
        response = Client().get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
