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


# --- production refuses the secrets that ship with the code or that the demo made ---------------

PRODUCTION = {"CARTRIAL_HTTPS": "1", "CARTRIAL_ALLOWED_HOSTS": "trial.example.org"}


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0 and "started" not in result.stdout, result.stdout
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("cartrial-test-suite-only-7c1e9d2b4a6f8e0d3c5b7a9f1e3d5c7b9a1f3e5d7c9b", "is the test suite's key"),
        ("short-key", "is too weak"),
        ("a" * 60, "is too weak"),
        ("django-insecure-" + "x1y2z3" * 10, "is too weak"),
    ],
)
def test_production_refuses_known_or_weak_secret_keys(tmp_path: Path, key: str, reason: str) -> None:
    last = _refusal(_run([sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY=key, **PRODUCTION))
    assert last.startswith(f"django.core.exceptions.ImproperlyConfigured: CARTRIAL_SECRET_KEY {reason}"), last
    assert "cartrial keygen --secret" in last
    # The same key on a laptop demo (plain HTTP) is not production's business.
    assert _run([sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY=key).returncode == 0


def test_production_refuses_the_key_the_demo_made_here(tmp_path: Path) -> None:
    from cartrial.cli.web import DEMO_SECRET_FILE

    key = secrets.token_urlsafe(50)
    (tmp_path / DEMO_SECRET_FILE).write_text(key + "\n")
    last = _refusal(_run([sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY=key, **PRODUCTION))
    assert f"CARTRIAL_SECRET_KEY is the demo's key ({DEMO_SECRET_FILE} in this directory)" in last
    # `cartrial serve` in the demo's folder picks the file up when the environment has no key: refused too,
    # in one line, before anything is written.
    served = _run([str(CARTRIAL_BIN), "migrate"], tmp_path, **PRODUCTION)
    assert served.returncode == 2 and served.stderr.strip().count("\n") == 0, served.stderr
    assert served.stderr.startswith("cartrial cannot start: CARTRIAL_SECRET_KEY is the demo's key")
    assert not (tmp_path / "cartrial.sqlite3").exists()


def test_production_refuses_the_demo_and_test_identity_keys(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from cartrial.cli.web import DEMO_KEY_FILE
    from cartrial.config.known_secrets import TEST_IDENTITY_KEY

    demo_key = Fernet.generate_key().decode()
    (tmp_path / DEMO_KEY_FILE).write_text(demo_key + "\n")
    key = secrets.token_urlsafe(50)
    own = Fernet.generate_key().decode()
    for identity, whose in ((f"{own},{demo_key}", "the demo's key"), (TEST_IDENTITY_KEY, "the test suite's key")):
        result = _run(
            [sys.executable, "-c", SETUP],
            tmp_path,
            CARTRIAL_SECRET_KEY=key,
            CARTRIAL_IDENTITY_KEY=identity,
            **PRODUCTION,
        )
        assert f"CARTRIAL_IDENTITY_KEY holds {whose}" in _refusal(result)
    accepted = _run(
        [sys.executable, "-c", SETUP], tmp_path, CARTRIAL_SECRET_KEY=key, CARTRIAL_IDENTITY_KEY=own, **PRODUCTION
    )
    assert accepted.returncode == 0, accepted.stderr


def test_the_demo_refuses_production_settings_and_writes_nothing(tmp_path: Path) -> None:
    result = _run([str(CARTRIAL_BIN), "demo", "--no-serve"], tmp_path, **PRODUCTION)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stdout + result.stderr
    assert result.stderr.startswith("cartrial demo refuses production settings (CARTRIAL_HTTPS=1)")
    assert list(tmp_path.iterdir()) == []


def test_production_refuses_the_demo_password_and_the_demo_does_not(tmp_path: Path) -> None:
    probe = SETUP + "; print(settings.CARTRIAL_REFUSED_PASSWORDS)"
    key = secrets.token_urlsafe(50)
    production = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key, **PRODUCTION)
    demo = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key)
    assert production.stdout.splitlines()[-1] == "['cartrial-demo-2026']", production.stderr
    assert demo.stdout.splitlines()[-1] == "[]"


@pytest.mark.django_db
def test_a_refused_password_signs_no_one_in_and_cannot_be_chosen(world: object) -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.test import Client, override_settings

    from cartrial.config.known_secrets import DEMO_PASSWORD

    with override_settings(CARTRIAL_REFUSED_PASSWORDS=[DEMO_PASSWORD]):
        refused = Client().post("/accounts/login/", {"username": "bdx.coordinator", "password": DEMO_PASSWORD})
        assert refused.status_code == 200 and "_auth_user_id" not in Client().session
        assert not refused.wsgi_request.user.is_authenticated
        with pytest.raises(ValidationError) as chosen:
            validate_password(DEMO_PASSWORD)
        assert chosen.value.error_list[0].code == "password_refused"
    signed_in = Client().post("/accounts/login/", {"username": "bdx.coordinator", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 302  # outside production, the demo's logins work
    validate_password(DEMO_PASSWORD)


def test_check_deploy_is_clean_with_every_documented_production_variable(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    result = _run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        CARTRIAL_SECRET_KEY=secrets.token_urlsafe(50),
        CARTRIAL_IDENTITY_KEY=Fernet.generate_key().decode(),
        CARTRIAL_PROXY_SSL_HEADER="1",
        CARTRIAL_CSRF_TRUSTED_ORIGINS="https://trial.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'trial.sqlite3'}",
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_behind_a_proxy_the_forwarded_scheme_is_trusted_only_when_asked(tmp_path: Path) -> None:
    probe = SETUP + "; print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    key = secrets.token_urlsafe(50)
    trusted = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key, CARTRIAL_PROXY_SSL_HEADER="1")
    untrusted = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key)
    assert trusted.stdout.splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https')", trusted.stderr
    assert untrusted.stdout.splitlines()[-1] == "None"


# --- static files served by the app, collected and compressed ---------------------------------

STATIC_PROBE = """
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
call_command("collectstatic", interactive=False, verbosity=0)
client = Client()
for path in ("/static/cartrial/cartrial.css", "/static/cartrial/vendor/plotly.min.js"):
    response = client.get(path, HTTP_ACCEPT_ENCODING="gzip", secure=True)
    print(path, response.status_code, response.get("Content-Encoding"), response.get("Content-Security-Policy"))
print("finders", settings.WHITENOISE_USE_FINDERS, settings.WHITENOISE_AUTOREFRESH)
"""


def test_production_serves_collected_static_files_compressed(tmp_path: Path) -> None:
    result = _run(
        [sys.executable, "-c", STATIC_PROBE],
        tmp_path,
        CARTRIAL_SECRET_KEY=secrets.token_urlsafe(50),
        CARTRIAL_STATIC_ROOT=str(tmp_path / "static"),
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "finders False False"  # an index of the collected files, made once
    for line in lines[:-1]:
        _path, status, encoding, policy = line.split(" ", 3)
        assert (status, encoding) == ("200", "gzip"), line
        assert policy.startswith("default-src 'none'"), line
    assert (tmp_path / "static" / "cartrial" / "vendor" / "plotly.min.js.gz").is_file()


def test_production_forces_two_factor_and_refuses_the_demo_authenticator_key(tmp_path: Path) -> None:
    """CARTRIAL_TWO_FACTOR_REQUIRED=0 is a demo's or a developer's choice: production ignores it."""
    from cartrial.config.known_secrets import DEMO_TOTP_KEY

    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CARTRIAL_TWO_FACTOR_REQUIRED, settings.CARTRIAL_REFUSED_TOTP_KEYS)"
    )
    key = secrets.token_urlsafe(50)
    production = _run(
        [sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key, CARTRIAL_TWO_FACTOR_REQUIRED="0", **PRODUCTION
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["True", f"['{DEMO_TOTP_KEY}']"]
    demo = _run([sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key)
    assert demo.stdout.split() == ["True", "[]"]  # on by default on a demo too, with its key accepted
    switched_off = _run(
        [sys.executable, "-c", probe], tmp_path, CARTRIAL_SECRET_KEY=key, CARTRIAL_TWO_FACTOR_REQUIRED="0"
    )
    assert switched_off.stdout.split() == ["False", "[]"]
