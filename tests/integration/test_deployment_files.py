"""The container recipe (Dockerfile, compose.yaml, deploy/*.env.example) against what cartrial reads.

No container runtime runs here, so the files are read: every variable they set is one cartrial
reads (a misspelt one would be silently ignored), every variable cartrial reads is documented in
docs/operations.md, the app is published on the loopback address only, the secrets come from env
files, and the settings as compose configures them pass `check --deploy`.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
# os.environ.get("NAME", ...), os.environ["NAME"] and gunicorn's _integer("NAME", ...), over line breaks.
READ = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]\s*|_integer\(\s*)["']([A-Z][A-Z0-9_]+)["']""")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _env_file(name: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / "deploy" / name).read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}


def _variables_read() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(READ.findall(path.read_text()))
    return found


def test_the_scan_finds_what_the_settings_read() -> None:
    read = _variables_read()
    assert {"DATABASE_URL", "CARTRIAL_SECRET_KEY", "CARTRIAL_EMAIL_BACKEND", "CARTRIAL_WORKERS"} <= read


def test_every_variable_the_deployment_sets_is_one_cartrial_reads() -> None:
    compose = _compose()
    named = set(_env_file("cartrial.env.example"))
    for service in ("app", "worker"):
        named |= set(compose["services"][service].get("environment", {}))
    unknown = named - _variables_read()
    assert not unknown, f"set by the deployment files but read by nothing: {sorted(unknown)}"


def test_every_variable_cartrial_reads_is_documented_in_operations() -> None:
    documented = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in _variables_read() if f"`{name}`" not in documented)
    assert not missing, f"not in docs/operations.md: {missing}"


def test_compose_runs_postgresql_16_and_the_app_on_loopback_with_secrets_from_env_files() -> None:
    services = _compose()["services"]
    assert services["db"]["image"].startswith("postgres:16")
    assert "ports" not in services["db"]  # reachable from the app's network only
    assert services["db"]["env_file"] == "postgres.env"
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]
    assert all(str(port).startswith("127.0.0.1:") for s in services.values() for port in s.get("ports", []))
    for name in ("app", "worker"):
        service = services[name]
        assert service["env_file"] == "cartrial.env"
        environment = service.get("environment", {})
        assert not {"CARTRIAL_SECRET_KEY", "CARTRIAL_IDENTITY_KEY", "DATABASE_URL"} & set(environment)
        assert f"exports:{environment['CARTRIAL_EXPORT_DIR']}" in service["volumes"]
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["cartrial", "jobs", "worker"]
    assert {"pgdata", "exports"} <= set(_compose()["volumes"])
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/cartrial.env" in ignored and "/postgres.env" in ignored  # the filled-in files are never committed


def test_the_app_env_file_names_the_database_container() -> None:
    app, db = _env_file("cartrial.env.example"), _env_file("postgres.env.example")
    assert app["DATABASE_URL"] == f"postgres://{db['POSTGRES_USER']}:CHANGE-ME@db:5432/{db['POSTGRES_DB']}"
    assert app["CARTRIAL_SECRET_KEY"] == "" and app["CARTRIAL_IDENTITY_KEY"] == ""  # made per deployment


def test_the_dockerfile_installs_the_lock_with_hashes_and_runs_migrations_then_gunicorn_unprivileged() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    instructions = [line for line in lines if not line.startswith("#")]
    assert instructions[0] == "FROM python:3.12-slim"
    assert any("--require-hashes" in line and "-r requirements.lock" in line for line in instructions)
    users = [line for line in instructions if line.startswith("USER ")]
    assert users == ["USER cartrial"]
    cmd = instructions[-1]
    assert cmd == 'CMD ["cartrial", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]'
    assert instructions.index(users[0]) < instructions.index(cmd)
    assert any("collectstatic" in line for line in instructions)
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert dockerignore[dockerignore.index("*") :][:2] == ["*", "!requirements.lock"]  # nothing else slips in


def test_the_settings_as_compose_configures_them_pass_check_deploy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRIAL_", "DJANGO_", "DATABASE_"))}
    env |= _env_file("cartrial.env.example")
    env |= {str(k): str(v) for k, v in _compose()["services"]["app"]["environment"].items()}
    env |= {
        "CARTRIAL_SECRET_KEY": secrets.token_urlsafe(50),
        "CARTRIAL_IDENTITY_KEY": Fernet.generate_key().decode(),
        "PYTHONPATH": os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    }
    check = ["check", "--deploy", "--fail-level", "WARNING", "--settings=cartrial.config.settings"]
    result = subprocess.run(
        [sys.executable, "-m", "django", *check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_readme_points_at_the_operations_guide() -> None:
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
