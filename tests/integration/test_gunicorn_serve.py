"""`cartrial serve` runs gunicorn with `cartrial.config.gunicorn`: its values, their variables, and the
server as deployed (production settings, behind a TLS proxy, static files from the app)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cartrial.cli.web import gunicorn_argv

BIN = Path(sys.executable).parent
SRC = Path(__file__).resolve().parents[2] / "src"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARTRIAL_", "DJANGO_", "DATABASE_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "cartrial.config.settings",
        "CARTRIAL_SECRET_KEY": secrets.token_urlsafe(50),
        "PYTHONPATH": os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    }
    return env | extra


def _printed_config(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "gunicorn"), *gunicorn_argv("127.0.0.1", 8000)[1:], "--print-config"]
    return subprocess.run(argv, cwd=tmp_path, env=_env(**extra), capture_output=True, text=True, timeout=300)


def _settings(printed: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in printed.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_serve_runs_gunicorn_with_the_project_configuration(tmp_path: Path) -> None:
    result = _printed_config(tmp_path)
    assert result.returncode == 0, result.stderr
    config = _settings(result.stdout)
    assert config["bind"] == "['127.0.0.1:8000']"
    assert (config["workers"], config["threads"], config["timeout"]) == ("2", "4", "60")
    assert config["preload_app"] == "True"  # the app is loaded once, before the workers fork
    assert config["max_requests"] == "5000" and config["max_requests_jitter"] == "500"
    assert config["accesslog"] == "-" and config["errorlog"] == "-"
    assert "%(M)sms" in config["access_log_format"]  # each request's time, in milliseconds
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"


def test_the_environment_sizes_the_server(tmp_path: Path) -> None:
    result = _printed_config(
        tmp_path,
        CARTRIAL_WORKERS="3",
        CARTRIAL_THREADS="8",
        CARTRIAL_REQUEST_TIMEOUT_SECONDS="120",
        CARTRIAL_MAX_REQUESTS="1000",
        CARTRIAL_FORWARDED_ALLOW_IPS="10.0.0.5",
    )
    assert result.returncode == 0, result.stderr
    config = _settings(result.stdout)
    assert (config["workers"], config["threads"], config["timeout"]) == ("3", "8", "120")
    assert (config["max_requests"], config["max_requests_jitter"]) == ("1000", "100")
    assert config["forwarded_allow_ips"] == "['10.0.0.5']"


def test_a_malformed_size_stops_the_server_in_one_line(tmp_path: Path) -> None:
    result = _printed_config(tmp_path, CARTRIAL_WORKERS="two")
    assert result.returncode != 0
    assert "cartrial cannot start: CARTRIAL_WORKERS must be a whole number, not 'two'." in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.slow
def test_cartrial_serve_as_deployed_behind_a_tls_proxy(tmp_path: Path) -> None:
    """Production settings on a fresh database: migrated, served by gunicorn, HTTPS enforced unless the
    proxy says the request came over HTTPS, static files compressed; stopped by its signal."""
    port = _free_port()
    env = _env(
        CARTRIAL_HTTPS="1",
        CARTRIAL_PROXY_SSL_HEADER="1",
        CARTRIAL_ALLOWED_HOSTS="127.0.0.1",
        CARTRIAL_WORKERS="1",
        CARTRIAL_THREADS="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'trial.sqlite3'}",
        CARTRIAL_STATIC_ROOT=str(tmp_path / "static"),
    )
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "cartrial"), "serve", "--port", str(port), "--no-worker"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                status, headers, _ = _get(f"{base}/accounts/login/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer within 240 s"
                time.sleep(1)
        assert status == 301 and headers["Location"] == f"https://127.0.0.1:{port}/accounts/login/"
        status, headers, body = _get(f"{base}/accounts/login/", **{"X-Forwarded-Proto": "https"})
        assert status == 200 and b"csrfmiddlewaretoken" in body
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "Secure" in headers["Set-Cookie"]
        status, headers, _ = _get(
            f"{base}/static/cartrial/vendor/plotly.min.js", **{"X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"}
        )
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert int(headers["Content-Length"]) < 2_000_000  # 4.8 MB of plotly.js, compressed
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        finally:
            log.close()
    assert server.returncode == 0, (tmp_path / "server.log").read_text()
    logged = (tmp_path / "server.log").read_text()
    assert '"GET /accounts/login/ HTTP/1.1" 200 ' in logged and "ms " in logged
