"""Run the load test as deployed: gunicorn (`cartrial serve`) on PostgreSQL, then benchmarks/load.py.

From the project root:

    .venv/bin/python benchmarks/load_run.py              # the issue's run: 100 req/s for 300 s
    .venv/bin/python benchmarks/load_run.py --short      # development: 30 req/s for 20 s

Steps, each bounded: (1) the database named by DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/cartrial_load) is created if absent and filled once with the
demo (`cartrial demo --no-serve`, or `--scale N` with `--scale`); (2) an API token is made for each
API user of the workload (`cartrial token create`), revoked at the end; (3) gunicorn is started on
127.0.0.1 on a free port with production-like settings: debug off, a fresh secret key, the
configuration module `cartrial.config.gunicorn` (2 workers × 4 threads), no jobs worker unless
`--worker`; plain HTTP on loopback, so CARTRIAL_HTTPS is off (with it on, the settings redirect to
HTTPS and refuse the demo's password); (4) load.py runs; (5) the server is stopped (its process
group, by id), whatever happened. Its log is kept in the work folder (.load/ by default).

The exit status is load.py's: 0 when every target is met, 1 when one is missed, 2 when it could not
start. The machine's load average is printed before and after (the figures are only comparable on
a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cartrial_load"
SERVER_START_SECONDS = 120
STOP_SECONDS = 40


def _cartrial(env: dict[str, str], *args: str, timeout: float, cwd: Path) -> str:
    """Run a `cartrial` command (this interpreter, this checkout's code) and return its output."""
    command = [sys.executable, "-c", "from cartrial.cli import main; main()", *args]
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"load_run: cartrial {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _ensure_database(url: str) -> bool:
    """Create the PostgreSQL database if absent; True when it holds no trial yet."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql") or not name:
        raise SystemExit("load_run: DATABASE_URL must name a PostgreSQL database (the deployment's database).")
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"load_run: the database must be on this machine's loopback address, not {host}.")
    maintenance = parts._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')  # the name comes from the operator's DATABASE_URL
            return True
    with psycopg.connect(url) as connection:
        table = connection.execute("SELECT to_regclass('trial_center')").fetchone()
        if table is None or table[0] is None:
            return True
        return connection.execute("SELECT count(*) FROM trial_center").fetchone() == (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"load_run: the server stopped at start (status {server.returncode}); see its log.")
        try:
            with urllib.request.urlopen(f"{base}/accounts/login/", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"load_run: the server did not answer within {SERVER_START_SECONDS} s.")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started here and its children (its own process group), gracefully then by force."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="30 req/s for 20 s (development)")
    parser.add_argument("--rate", type=float, help="requests per second (default 100, --short 30)")
    parser.add_argument("--duration", type=float, help="seconds (default 300, --short 20)")
    parser.add_argument("--scale", type=int, help="build the database with `cartrial demo --scale N` when absent")
    parser.add_argument("--worker", action="store_true", help="run the jobs worker beside the server")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".load", help="keys, tokens, server log")
    parser.add_argument("--json-out", type=Path, help="load.py's figures as JSON")
    args, extra = parser.parse_known_args()
    rate = args.rate or (30.0 if args.short else 100.0)
    duration = args.duration or (20.0 if args.short else 300.0)
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])),
        DJANGO_SETTINGS_MODULE="cartrial.config.settings",
        CARTRIAL_DEBUG="0",
        CARTRIAL_HTTPS="0",
        CARTRIAL_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        CARTRIAL_STATIC_ROOT=str(workdir / "staticfiles"),
        CARTRIAL_EXPORT_DIR=str(workdir / "exports"),
        CARTRIAL_GUNICORN_LOG_LEVEL="warning",
        # Sign-in is done before the clock starts and is not what is measured: the load signs its web
        # users in with the password alone (production forces the second factor; HTTPS is off here).
        CARTRIAL_TWO_FACTOR_REQUIRED="0",
    )
    env.pop("CARTRIAL_SECRET_KEY", None)
    print(f"load_run: load average before {os.getloadavg()}", flush=True)
    if _ensure_database(url):
        print("load_run: building the trial data (once) ...", flush=True)
        build = ["demo", "--no-serve"] + (["--scale", str(args.scale)] if args.scale else [])
        started = time.monotonic()
        # The demo makes its keys in the work folder; the server reads the identity key from there.
        _cartrial(env, *build, timeout=6 * 3600, cwd=workdir)
        print(f"load_run: built in {time.monotonic() - started:.0f} s", flush=True)
    key_file = workdir / "cartrial-demo.key"
    if not key_file.is_file():
        raise SystemExit(f"load_run: {key_file} is missing (the database was built from another folder).")
    env["CARTRIAL_IDENTITY_KEY"] = key_file.read_text().strip()
    env["CARTRIAL_SECRET_KEY"] = secrets.token_urlsafe(50)

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import load

    label = f"load-{int(time.time())}"
    tokens = {
        user: _cartrial(env, "token", "create", user, "--label", label, timeout=120, cwd=workdir).strip()
        for user in load.API_USERS
    }
    tokens_file = workdir / "tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    tokens_file.chmod(0o600)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("wb")
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--worker" if args.worker else "--no-worker"]
    server = subprocess.Popen(
        [sys.executable, "-c", "from cartrial.cli import main; main()", *serve],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    status = 2
    try:
        _wait_ready(base, server)
        print(f"load_run: gunicorn (pid {server.pid}) answers on {base}", flush=True)
        load_args = ["--base-url", base, "--tokens", str(tokens_file), "--rate", str(rate), "--duration", str(duration)]
        if args.json_out:
            load_args += ["--json-out", str(args.json_out)]
        status = load.main(load_args + extra)
    finally:
        _stop(server)
        log.close()
        for token in tokens.values():
            _cartrial(env, "token", "revoke", token, timeout=120, cwd=workdir)
        tokens_file.unlink(missing_ok=True)
        print(f"load_run: load average after {os.getloadavg()}; server log {workdir / 'server.log'}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
