"""What every fault drill shares: a throwaway PostgreSQL cluster, the app on it as deployed, a client.

A drill never touches a database it did not make: it creates its own PostgreSQL cluster in a
temporary folder (`initdb`, port 5439 or the next free one, 127.0.0.1 only), builds the demo
trial into it, and runs `cartrial serve` (gunicorn, `cartrial.config.gunicorn`) with the
production settings (`CARTRIAL_HTTPS=1` behind a TLS proxy, so every request carries
`X-Forwarded-Proto: https` as the proxy would). Everything is removed at the end, whatever
happened; a watchdog ends the drill (exit 1) when it runs past its time budget.

Run as root, the cluster's commands run as the `postgres` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet

SRC = Path(__file__).resolve().parents[2] / "src"
PG_BIN_CANDIDATES = (Path("/usr/local/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
CLIENT_TIMEOUT_S = 15.0
FORWARDED = {"X-Forwarded-Proto": "https"}


def say(message: str) -> None:
    """One line of the drill's story, with the time since it started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


_STARTED = time.monotonic()


def watchdog(budget_s: float) -> None:
    """End the whole drill (exit 1) if it is still running after `budget_s` seconds."""

    def expire() -> None:
        say(f"FAIL: the drill ran past its {budget_s:.0f} s budget; stopping.")
        _cleanup()
        os._exit(1)

    timer = threading.Timer(budget_s, expire)
    timer.daemon = True
    timer.start()


_CLEANUPS: list[Any] = []


def _cleanup() -> None:
    while _CLEANUPS:
        try:
            _CLEANUPS.pop()()
        except Exception as error:
            print(f"cleanup: {error}", file=sys.stderr)


def _tool(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"{name} not found in {', '.join(map(str, PG_BIN_CANDIDATES))}: install PostgreSQL's server.")


def free_port(start: int) -> int:
    """The first port from `start` on which nothing listens on 127.0.0.1."""
    for port in range(start, start + 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise SystemExit(f"no free port from {start}")


class Cluster:
    """A private PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:`port` only."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="cartrial-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")

    def _run(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=check, timeout=timeout, cwd=self.root
        )

    def init(self) -> None:
        self._run(_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        _CLEANUPS.append(self.destroy)
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE cartrial")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str) -> None:
        """`pg_ctl stop -m fast|immediate`: fast rolls back open transactions and closes sessions;
        immediate aborts at once (crash recovery at the next start)."""
        self._run(_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        self._run(_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "cartrial") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


class App:
    """cartrial on the cluster: the CLI, the demo, tokens, and gunicorn as `cartrial serve` runs it."""

    def __init__(self, cluster: Cluster, port: int) -> None:
        self.cluster = cluster
        self.port = port
        self.workdir = Path(tempfile.mkdtemp(prefix="cartrial-fault-app-"))
        _CLEANUPS.append(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = self.workdir / "gunicorn.log"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRIAL_", "DJANGO_", "DATABASE_"))}
        self.env = inherited | {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), inherited.get("PYTHONPATH", "")])),
            "DJANGO_SETTINGS_MODULE": "cartrial.config.settings",
            "DATABASE_URL": cluster.url(),
            "CARTRIAL_SECRET_KEY": secrets.token_urlsafe(50),
            "CARTRIAL_IDENTITY_KEY": Fernet.generate_key().decode(),
            "CARTRIAL_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CARTRIAL_EXPORT_DIR": str(self.workdir / "exports"),
            "CARTRIAL_STATIC_ROOT": str(self.workdir / "static"),
            "CARTRIAL_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "CARTRIAL_GUNICORN_LOG_LEVEL": "warning",
        }
        # As deployed: production settings behind the TLS proxy (docs/operations.md).
        self.production = {"CARTRIAL_HTTPS": "1", "CARTRIAL_PROXY_SSL_HEADER": "1"}

    def cli(
        self,
        *args: str,
        production: bool = False,
        timeout: float = 300,
        extra: dict[str, str] | None = None,
        file_size_limit: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A `cartrial` command; `file_size_limit` caps the size of any file it writes (RLIMIT_FSIZE,
        with SIGXFSZ ignored: a write past it fails with EFBIG, as a write to a full disk fails)."""
        env = self.env | (self.production if production else {}) | (extra or {})
        argv = [sys.executable, "-c", "from cartrial.cli import main; main()", *args]

        def limit() -> None:
            if file_size_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

        return subprocess.run(
            argv, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=timeout, preexec_fn=limit
        )

    def build_demo(self) -> None:
        result = self.cli("demo", "--no-serve", timeout=600)
        if result.returncode != 0:
            raise SystemExit(f"the demo could not be built:\n{result.stderr[-2000:]}")

    def build_people(self) -> None:
        """The demo's centers and users only (`cartrial.demo.build_centers_and_users`), migrated
        first: what the drills need, in a fraction of the whole demo's time."""
        code = (
            "import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('migrate', interactive=False, verbosity=0)\n"
            "from cartrial.demo import build_centers_and_users\n"
            "from cartrial.protocols import active_protocol\n"
            "build_centers_and_users(active_protocol())\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise SystemExit(f"the centers and users could not be built:\n{result.stderr[-2000:]}")

    def token(self, username: str) -> str:
        result = self.cli("token", "create", username, "--label", "fault drill")
        if result.returncode != 0:
            raise SystemExit(f"no token for {username}: {result.stderr}")
        return result.stdout.strip().splitlines()[-1]

    def session_cookie(self, username: str) -> str:
        """A signed-in web session for `username` (the production settings refuse the demo's
        password, so the session is made as Django's login makes it): the `Cookie` header."""
        code = (
            "import django; django.setup()\n"
            "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"user = get_user_model().objects.get(username={username!r})\n"
            "session = SessionStore()\n"
            "session[SESSION_KEY] = str(user.pk)\n"
            "session[BACKEND_SESSION_KEY] = 'cartrial.apps.accounts.backends.PasswordBackend'\n"
            "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
            "session.create()\n"
            "print(session.session_key)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env=self.env, cwd=self.workdir, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise SystemExit(f"no session for {username}: {result.stderr[-2000:]}")
        return f"sessionid={result.stdout.strip().splitlines()[-1]}"

    def audit_verify(self) -> tuple[bool, str]:
        """`cartrial audit verify`: intact or not, and its last line (`head <hex>` when intact)."""
        result = self.cli("audit", "verify", production=True)
        lines = (result.stdout + result.stderr).strip().splitlines()
        return result.returncode == 0, lines[-1] if lines else ""

    def serve(self) -> None:
        """`cartrial serve --no-worker` (migrate, collect static files, exec gunicorn), waits until it answers."""
        env = self.env | self.production
        argv = [sys.executable, "-c", "from cartrial.cli import main; main()", "serve", "--no-worker"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        log = self.server_log.open("ab")
        # Its own session: the master and its workers form one process group, killed as one.
        self.server = subprocess.Popen(
            argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _CLEANUPS.append(self.kill)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"the server stopped at start:\n{self.server_log.read_text()[-2000:]}")
            if request("GET", self.base + "/accounts/login/", timeout=2).status == 200:
                return
            time.sleep(0.3)
        raise SystemExit("the server did not answer within 120 s")

    def server_processes(self) -> list[int]:
        """The gunicorn master and its workers (the process group of `serve`)."""
        if self.server is None:
            return []
        pgid = self.server.pid
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid:
                        found.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def kill(self) -> None:
        """`kill -9` of the master and every worker at once (the whole process group)."""
        if self.server is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(timeout=30)
        self.server = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Answer:
    """What a client got: `kind` is ok, http_<status>, refused, reset, timeout or other."""

    kind: str
    status: int = 0
    body: bytes = b""
    content_type: str = ""
    seconds: float = 0.0

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(
    method: str,
    url: str,
    *,
    token: str | None = None,
    payload: Any = None,
    timeout: float = CLIENT_TIMEOUT_S,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request as a client behind the proxy; never raises, says what happened."""
    sent = dict(FORWARDED) | (headers or {})
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            body = response.read()
            kind = "ok"
            status, ctype = response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        body, status, ctype = error.read(), error.code, error.headers.get("Content-Type", "")
        kind = f"http_{status}"
    except TimeoutError:
        return Answer("timeout", seconds=time.monotonic() - started)
    except urllib.error.URLError as error:
        reason = error.reason
        kind = "refused" if isinstance(reason, ConnectionRefusedError) else "other"
        if isinstance(reason, TimeoutError | socket.timeout):
            kind = "timeout"
        elif isinstance(reason, ConnectionResetError | BrokenPipeError):
            kind = "reset"
        return Answer(kind, seconds=time.monotonic() - started)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return Answer("reset", seconds=time.monotonic() - started)
    except Exception:
        return Answer("reset", seconds=time.monotonic() - started)
    return Answer(kind, status, body, ctype, time.monotonic() - started)


@dataclass
class Tally:
    """Thread-safe counts of answers by kind, and the slowest one."""

    kinds: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.kinds[answer.kind] += 1
            self.slowest_s = max(self.slowest_s, answer.seconds)

    def line(self) -> str:
        counted = ", ".join(f"{kind} {n}" for kind, n in sorted(self.kinds.items()))
        return f"{sum(self.kinds.values())} requests ({counted}); slowest answer {self.slowest_s:.2f} s"


def clear_error(answer: Answer) -> bool:
    """An error a client can act on: the API's JSON error (a `code` and a `message`) or an HTML
    page without a traceback, or a connection refused or reset (the server was down)."""
    if answer.kind in ("refused", "reset"):
        return True
    if answer.kind.startswith("http_"):
        if answer.content_type.startswith("application/json"):
            body = answer.json()
            return isinstance(body, dict) and bool(body.get("code")) and bool(body.get("message"))
        return b"Traceback" not in answer.body and answer.status in (500, 502, 503)
    return False


class Verdict:
    """The drill's checks: each printed PASS or FAIL; the exit code is 0 only if all passed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        say(f"{'PASS' if ok else 'FAIL'}: {what}")
        if not ok:
            self.failed.append(what)

    def exit(self, name: str) -> None:
        print(f"\n{name}: {'PASSED' if not self.failed else f'FAILED ({len(self.failed)} checks)'}", flush=True)
        _cleanup()
        sys.exit(1 if self.failed else 0)


@contextmanager
def stack(budget_s: float, *, demo: bool = False) -> Iterator[tuple[Cluster, App]]:
    """A private cluster with the demo's centers and users (the whole demo if `demo`) built into
    it, and the app ready to serve (not started)."""
    watchdog(budget_s)
    try:
        cluster = Cluster(free_port(5439))
        say(f"private PostgreSQL cluster on 127.0.0.1:{cluster.port} in {cluster.root}")
        cluster.init()
        app = App(cluster, free_port(8731))
        if demo:
            say("building the demo trial into it (cartrial demo --no-serve)")
            app.build_demo()
        else:
            say("building the demo's centers and users into it")
            app.build_people()
        yield cluster, app
    except BaseException:
        _cleanup()
        raise


@dataclass
class Registrations:
    """Clients registering subjects through the API, and what they know: acknowledged codes
    (201), writes in doubt (the answer lost or a 5xx: stored or not, the client cannot tell),
    answers that were not a clear error."""

    app: App
    token: str
    acknowledged: list[str] = field(default_factory=list)
    in_doubt: list[dict[str, str]] = field(default_factory=list)
    unclear: list[Answer] = field(default_factory=list)
    phase: str = "before"
    by_phase: Counter[str] = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)
    lock: threading.Lock = field(default_factory=threading.Lock)
    before: int = 0

    def __post_init__(self) -> None:
        self.before = self.app.cluster.query("SELECT count(*) FROM subjects_subject")[0][0]

    @staticmethod
    def payload(client: int, number: int) -> dict[str, str]:
        return {
            "center": "BDX",
            "family_name": f"Drill{client}",
            "given_names": f"Fault {number}",
            "birth_date": "1985-04-12",
            "hospital_number": f"FD-{client}-{number:06d}",
        }

    def register(self, payload: dict[str, str]) -> Answer:
        """One registration; its outcome kept in the ledger."""
        answer = request("POST", self.app.base + "/api/v1/subjects", token=self.token, payload=payload)
        self.tally.add(answer)
        with self.lock:
            if answer.kind == "ok" and answer.status == 201:
                self.acknowledged.append(answer.json()["code"])
                self.by_phase[self.phase] += 1
            elif answer.kind in ("reset", "timeout") or answer.status >= 500:
                self.in_doubt.append(payload)
            if not (answer.kind == "ok" or clear_error(answer)):
                self.unclear.append(answer)
        return answer

    def client(self, number: int, stop: threading.Event) -> None:
        """A client thread: register until `stop`, backing off while the server is down."""
        for n in itertools.count():
            if stop.is_set():
                return
            answer = self.register(self.payload(number, n))
            if answer.kind in ("refused", "reset") or answer.status == 503:
                time.sleep(0.2)

    def resolve_in_doubt(self) -> tuple[int, int, int]:
        """Send each write in doubt again: 201, it had not been stored (it is now); 422
        `duplicate_hospital_number`, it had been. Returns (had been stored, stored now, failed)."""
        stored, new, failed = 0, 0, 0
        for payload in self.in_doubt:
            answer = request("POST", self.app.base + "/api/v1/subjects", token=self.token, payload=payload)
            if answer.status == 201:
                new += 1
            elif answer.status == 422 and (answer.json() or {}).get("code") == "duplicate_hospital_number":
                stored += 1
            else:
                failed += 1
        say(
            f"{len(self.in_doubt)} writes in doubt sent again: {stored} had been stored, {new} had not, {failed} failed"
        )
        return stored, new, failed

    def check(self, verdict: Verdict) -> None:
        """Every acknowledged write stored, nothing else but resolved doubts, every record whole,
        the audit chain intact, every failure a clear error."""
        had_been, new, failed = self.resolve_in_doubt()
        query = self.app.cluster.query
        stored = query("SELECT count(*) FROM subjects_subject")[0][0] - self.before
        say(f"acknowledged {len(self.acknowledged)}; new subjects stored {stored}")
        missing = query(
            "SELECT count(*) FROM unnest(%s::text[]) AS a(code) "
            "LEFT JOIN subjects_subject s ON s.code = a.code WHERE s.id IS NULL",
            self.acknowledged,
        )[0][0]
        without_identity = query(
            "SELECT count(*) FROM subjects_subject s "
            "LEFT JOIN subjects_subjectidentity i ON i.subject_id = s.id WHERE i.id IS NULL"
        )[0][0]
        without_audit = query(
            "SELECT count(*) FROM subjects_subject s LEFT JOIN audit_auditentry a "
            "ON a.entity = 'subject' AND a.entity_id = s.code AND a.event = 'subject.created' WHERE a.id IS NULL"
        )[0][0]
        audit_without_subject = query(
            "SELECT count(*) FROM audit_auditentry a LEFT JOIN subjects_subject s ON s.code = a.entity_id "
            "WHERE a.entity = 'subject' AND a.event = 'subject.created' AND s.id IS NULL"
        )[0][0]
        intact, head = self.app.audit_verify()
        verdict.check(missing == 0, f"every acknowledged write is stored ({missing} missing)")
        verdict.check(
            stored == len(self.acknowledged) + had_been + new,
            f"stored = acknowledged + writes in doubt resolved ({stored} = {len(self.acknowledged)} + "
            f"{had_been} + {new})",
        )
        verdict.check(failed == 0, "every write in doubt was resolved by sending it again")
        verdict.check(without_identity == 0, f"no subject without its identity ({without_identity})")
        verdict.check(without_audit == 0, f"no subject without its audit entry ({without_audit})")
        verdict.check(audit_without_subject == 0, f"no audit entry of a subject not stored ({audit_without_subject})")
        verdict.check(intact, f"cartrial audit verify: {head}")
        verdict.check(not self.unclear, f"every failure was a clear error ({len(self.unclear)} unclear)")
