"""`cartrial backup` and `cartrial restore` round-trip a study, as an operator runs them (the CLI, in
its own processes, on databases of their own), on SQLite and on PostgreSQL.

The proof is the contract's: `cartrial audit verify` ends with the same `head <sha256>` line on
the source before the backup and on the restored database; identities open with the same key; a
database holding data, a wrong key, a damaged or forged file are refused in one line with exit 2
and nothing loaded. Slow (a few minutes per engine): each database is migrated by its own process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet

CARTRIAL_BIN = Path(sys.executable).with_name("cartrial")
SRC = Path(__file__).resolve().parents[2] / "src"

# A small study through the real services: centers and users, three patients with identities (one
# corrected, so its ciphertext was rewritten), consents, a token; every write audited.
SEED = """
import django
django.setup()
from datetime import date
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.services import IdentityInput, subject_create, subject_identity_correct
from cartrial.demo import build_centers_and_users
from cartrial.protocols import active_protocol
protocol = active_protocol()
centers, users = build_centers_and_users(protocol)
actor = Actor.system("seed")
people = [("Dupont", "Marie", date(1979, 4, 12), "IPP1"), ("Lefèvre", "Zoé", date(1990, 1, 2), "IPP2"),
          ("Ødegård", "Åse", date(1985, 7, 30), "IPP3")]
subjects = [subject_create(actor=actor, center=centers["BDX"], identity=IdentityInput(*p), protocol=protocol)
            for p in people]
subject_identity_correct(actor=actor, subject=subjects[0], reason="typo at registration",
                         identity=IdentityInput("Dupont", "Marie-Anne", date(1979, 4, 12), "IPP1"))
api_token_create(actor=actor, user=users["bdx.coordinator"], label="seed")
"""

# Every subject's identity as the configured key opens it, keyed by subject code.
READ_IDENTITIES = """
import json, django
django.setup()
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import SubjectIdentity
print(json.dumps({row.subject.code: identity_decrypt(row.ciphertext) for row in
                  SubjectIdentity.objects.select_related("subject")}, sort_keys=True))
"""


@dataclass
class Database:
    """One database of the test's own, with the environment a server on it would have."""

    url: str
    workdir: Path
    identity_key: str
    secret_key: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRIAL_", "DJANGO_", "DATABASE_"))}
        env |= {
            "DATABASE_URL": self.url,
            "CARTRIAL_SECRET_KEY": self.secret_key,
            "CARTRIAL_IDENTITY_KEY": self.identity_key,
            "DJANGO_SETTINGS_MODULE": "cartrial.config.settings",
            "PYTHONPATH": os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
        }
        return env | extra

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=self.workdir, env=self.env(**extra), capture_output=True, text=True, timeout=600, check=False
        )

    def cartrial(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(CARTRIAL_BIN), *args, **extra)

    def python(self, code: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-c", code, **extra)

    def head(self) -> str:
        verified = self.cartrial("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        last = verified.stdout.strip().splitlines()[-1]
        assert last.startswith("head ") and len(last) == 5 + 64, last
        return last


def _postgres_server() -> str | None:
    """The suite's PostgreSQL server, by its maintenance database (where databases are created)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


@pytest.fixture(params=["sqlite", "postgresql"])
def make_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Makes empty databases of one engine; PostgreSQL ones on the server the suite runs on, dropped after."""
    made: list[str] = []
    server = _postgres_server()
    if request.param == "postgresql" and server is None:
        pytest.skip("PostgreSQL: the suite runs on SQLite (DATABASE_URL is not a postgres:// URL)")
    identity_key = Fernet.generate_key().decode()
    secret_key = secrets.token_urlsafe(50)

    def make(name: str) -> Database:
        workdir = tmp_path / name
        workdir.mkdir()
        if server is None or request.param == "sqlite":
            return Database(f"sqlite:///{workdir / 'trial.sqlite3'}", workdir, identity_key, secret_key)
        import psycopg

        database = f"cartrial_backup_{name}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        made.append(database)
        parts = urlsplit(server)
        return Database(urlunsplit(parts._replace(path=f"/{database}")), workdir, identity_key, secret_key)

    yield make
    if made:
        import psycopg

        with psycopg.connect(server, autocommit=True) as connection:
            for database in made:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _one_line_refusal(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(starts), lines[0]
    return lines[0]


def _holds_no_data(database: Database) -> None:
    probe = database.python(
        "import django; django.setup(); from cartrial.apps.backup import database_is_empty; print(database_is_empty())"
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "None"


@pytest.mark.slow
def test_backup_and_restore_round_trip_a_study(make_database: object, tmp_path: Path) -> None:
    source, target = make_database("source"), make_database("target")  # type: ignore[operator]
    seeded = source.python(SEED)
    assert seeded.returncode == 0, seeded.stderr
    head_before = source.head()
    identities = source.python(READ_IDENTITIES)
    assert identities.returncode == 0, identities.stderr
    assert len(json.loads(identities.stdout)) == 3

    backup = tmp_path / "study.backup.gz"
    made = source.cartrial("backup", "--out", str(backup))
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().splitlines()[-1] == head_before
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # password hashes, encrypted identities
    assert not backup.with_name(backup.name + ".partial").exists()
    _one_line_refusal(source.cartrial("backup", "--out", str(backup)), "backup refused: ")  # never overwritten

    _refusals_load_nothing(target, backup, tmp_path)

    restored = target.cartrial("restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert restored.stdout.strip().splitlines()[-1] == head_before
    assert target.head() == head_before
    readable = target.python(READ_IDENTITIES)
    assert readable.returncode == 0, readable.stderr
    assert json.loads(readable.stdout) == json.loads(identities.stdout)
    assert json.loads(readable.stdout)["BDX-001"]["given_names"] == "Marie-Anne"

    # A database holding data is refused, in one line, and left as it was.
    again = target.cartrial("restore", str(backup))
    said = _one_line_refusal(again, "restore refused, nothing loaded: ")
    assert "is not empty" in said
    assert target.head() == head_before

    # Life goes on after a restore: new rows get new ids, the chain grows from the restored head.
    token = target.cartrial("token", "create", "lil.coordinator")
    assert token.returncode == 0, token.stderr
    grown = target.cartrial("audit", "verify")
    assert grown.returncode == 0, grown.stdout + grown.stderr
    entries_restored = int(restored.stdout.split("Audit trail intact: ")[1].split()[0])
    assert f"intact: {entries_restored + 1} entries" in grown.stdout
    assert grown.stdout.strip().splitlines()[-1] != head_before


def _refusals_load_nothing(target: Database, backup: Path, tmp_path: Path) -> None:
    """A damaged or forged file, a wrong key: each refused in one line, the database left without data."""
    lines = gzip.decompress(backup.read_bytes()).splitlines(keepends=True)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(b"".join(lines[: len(lines) // 2])))
    said = _one_line_refusal(target.cartrial("restore", str(cut)), "restore refused, nothing loaded: ")
    assert "the file is incomplete" in said

    # An audit entry's reason changed in the file and the file's digest recomputed: refused by the chain.
    altered = [line.replace(b"typo at registration", b"no reason at all") for line in lines[:-1]]
    assert altered != lines[:-1]
    trailer = json.loads(lines[-1])
    trailer["sha256"] = hashlib.sha256(b"".join(altered)).hexdigest()
    forged = tmp_path / "forged.gz"
    forged.write_bytes(gzip.compress(b"".join([*altered, json.dumps(trailer).encode() + b"\n"])))
    said = _one_line_refusal(target.cartrial("restore", str(forged)), "restore refused, nothing loaded: ")
    assert "does not verify at entry" in said

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello\n")
    said = _one_line_refusal(target.cartrial("restore", str(not_a_backup)), "restore refused, nothing loaded: ")
    assert "is not a cartrial backup" in said
    said = _one_line_refusal(target.cartrial("restore", str(tmp_path / "no.gz")), "restore refused, nothing loaded: ")
    assert "does not exist" in said

    wrong = target.cartrial("restore", str(backup), CARTRIAL_IDENTITY_KEY=Fernet.generate_key().decode())
    said = _one_line_refusal(wrong, "restore refused, nothing loaded: ")
    assert "cannot be decrypted with CARTRIAL_IDENTITY_KEY" in said
    _holds_no_data(target)


# A database one migration behind this code (the audit index of 0004 not yet made), seeded, and
# backed up as the cartrial of that schema would have: the header records its migrations.
OLDER_SCHEMA_BACKUP = (
    SEED.replace(
        'call_command("migrate", interactive=False, verbosity=0)',
        'call_command("migrate", interactive=False, verbosity=0)\n'
        'call_command("migrate", "audit", "0003_refuse_truncate_trigger", interactive=False, verbosity=0)',
    )
    + """
import gzip, sys
from cartrial.apps.backup import _snapshot, _write_backup
with open(sys.argv[1], "wb") as raw, _snapshot(), gzip.GzipFile(fileobj=raw, mode="wb") as stream:
    header, counts = _write_backup(stream)
assert ("audit", "0004_entity_time_index") not in header.migrations
print("head", header.audit_head)
"""
)


@pytest.mark.slow
def test_a_backup_of_an_older_schema_is_restored_at_it_then_migrated_forward(tmp_path: Path) -> None:
    identity_key, secret_key = Fernet.generate_key().decode(), secrets.token_urlsafe(50)
    source, target = (tmp_path / "source", tmp_path / "target")
    source.mkdir(), target.mkdir()
    older = Database(f"sqlite:///{source / 'trial.sqlite3'}", source, identity_key, secret_key)
    current = Database(f"sqlite:///{target / 'trial.sqlite3'}", target, identity_key, secret_key)
    backup = tmp_path / "older.backup.gz"
    made = older.run(sys.executable, "-c", OLDER_SCHEMA_BACKUP, str(backup))
    assert made.returncode == 0, made.stderr
    head = made.stdout.strip().splitlines()[-1]

    restored = current.cartrial("restore", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "migrated forward to this cartrial's schema" in restored.stdout
    assert current.head() == head
    applied = current.python(
        "import django; django.setup(); from django.db.migrations.recorder import MigrationRecorder; "
        "from django.db import connection; "
        "print(('audit', '0004_entity_time_index') in MigrationRecorder(connection).applied_migrations())"
    )
    assert applied.stdout.strip() == "True", applied.stderr

    # Into a database already migrated past the backup (a container that started first): refused, as
    # migrations are not run backwards; a new, empty database takes it.
    ahead_dir = tmp_path / "ahead"
    ahead_dir.mkdir()
    ahead = Database(f"sqlite:///{ahead_dir / 'trial.sqlite3'}", ahead_dir, identity_key, secret_key)
    assert ahead.cartrial("migrate").returncode == 0
    said = _one_line_refusal(ahead.cartrial("restore", str(backup)), "restore refused, nothing loaded: ")
    assert "migrated past this backup (migration audit.0004_entity_time_index)" in said
