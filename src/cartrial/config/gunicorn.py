"""gunicorn's configuration for `cartrial serve` (read with `--config python:cartrial.config.gunicorn`).

Sized for the machine the trial runs on (2 cores): 2 worker processes of 4 threads each, the
application loaded once in the master before they fork (the model's reference cohorts are
simulated once). Each value can be changed from the environment without editing code; the
address comes from `cartrial serve --host/--port`. docs/operations.md lists the variables.

Workers are replaced after a number of requests (with jitter, so they do not all restart at
once): a slow leak in a library cannot grow a worker without bound. A request that runs longer
than the timeout is killed and logged; long work belongs to the jobs queue (docs/jobs.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def _integer(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"cartrial cannot start: {name} must be a whole number, not {value!r}.") from None


workers = _integer("CARTRIAL_WORKERS", 2)
threads = _integer("CARTRIAL_THREADS", 4)
timeout = _integer("CARTRIAL_REQUEST_TIMEOUT_SECONDS", 60)
graceful_timeout = 30
keepalive = 5
max_requests = _integer("CARTRIAL_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
preload_app = True
# The addresses whose X-Forwarded-* headers gunicorn trusts: the reverse proxy's (loopback by default).
forwarded_allow_ips = os.environ.get("CARTRIAL_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The workers' heartbeat files in memory: a container's disk may be slow or a tmpfs absent.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 (a fixed, system-owned folder)

# Both logs on the standard streams (the container's or the service manager's log). The access log
# shows who asked what, the answer, its size and its time in milliseconds (%(M)s).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("CARTRIAL_GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
proc_name = "cartrial"
# gunicorn's control socket (a file in the home folder) is not used: the service manager or the
# container stops and restarts the server.
control_socket_disable = True
