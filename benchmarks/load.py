"""Load test: a mixed workload of the real pages and API at a constant arrival rate (issue 13, item 5).

Run against a server already started on a loopback address (benchmarks/load_run.py starts gunicorn
with PostgreSQL and the demo or scale data, creates the API tokens and calls this script):

    python benchmarks/load.py --base-url http://127.0.0.1:8123 --tokens tokens.json \
        --rate 100 --duration 300

Open loop: request i is due at start + i/rate whatever the server does, so a slow server does not
lower the offered rate (a closed loop of N users would wait for each answer and hide the slowness).
Each latency is measured from the moment the request was due, not from when a thread was free to
send it: time spent queued in the client because every connection was busy counts against the
server. Bounded: exactly rate × duration requests are offered, and the run stops by itself at
duration + --grace seconds, counting what has not finished as an error ("unfinished").

Sign-in is done first, untimed: each web user gets a session (login form with its CSRF token), each
API user presents a bearer token made beforehand (`cartrial token create USER`). The subjects,
visits and forms the workload touches are read from the API, per center, before the clock starts.

The mix (weights in MIX, out of 100, documented in docs/benchmarks.md): the subject list (page and
API), a subject's page and its API read, an eCRF form saved from its page (a POST with the CSRF
token, a changed value and a reason: audited), the casebook worklist and query inbox, the study,
safety and logistics dashboards, two calculators through the API, and a small export requested
through the API (one subject, CSV: a job is queued).

It prints throughput and p50/p95/p99 per kind of request and overall, the errors by status, and
exits 1 when a target is missed (rate achieved, p95, any error), 2 when it cannot start.
Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

DEMO_PASSWORD = "cartrial-demo-2026"
CENTERS = ("BDX", "LIL", "PAR", "STR", "MTL")
# The web users (sessions) and the API users (tokens) of the workload, by what they do.
INVESTIGATORS = tuple(f"{c.lower()}.investigator" for c in CENTERS)
PHARMACISTS = tuple(f"{c.lower()}.pharmacist" for c in CENTERS)
STUDY_READERS = ("dm.datamanager", "sponsor.admin")
WEB_USERS = INVESTIGATORS + PHARMACISTS + STUDY_READERS
API_USERS = INVESTIGATORS
SAVE_FORM = "vital_signs"
SAVABLE = {"complete", "incomplete", "verified"}
CALCULATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("egfr", {"creatinine": 1.0, "creatinine_unit": "mg/dL", "age_years": 50, "sex": "female"}),
    ("sledai2k", {"descriptors": ["rash", "alopecia"]}),
)


@dataclass
class Request:
    """One request to send: who sends it (a session's username or a token's) and what."""

    kind: str
    method: str
    path: str
    user: str
    api: bool = False
    body: bytes | None = None
    form: bool = False
    expected: tuple[int, ...] = (200,)


@dataclass
class Result:
    kind: str
    status: int  # 0: no answer (the error's name is in `error`)
    error: str
    due: float
    done: float
    latency_ms: float


@dataclass
class Session:
    """A web user's cookies (session and CSRF), shared by the threads that act as this user."""

    username: str
    cookies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def header(self) -> str:
        with self.lock:
            return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def csrf(self) -> str:
        with self.lock:
            return self.cookies.get("csrftoken", "")

    def update(self, response: http.client.HTTPResponse) -> None:
        for raw in response.msg.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            with self.lock:
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value


@dataclass
class World:
    """What the workload touches, read before the clock starts."""

    sessions: dict[str, Session]
    tokens: dict[str, str]
    subjects: dict[str, list[str]]  # center -> subject codes
    savable: dict[str, list[tuple[str, str]]]  # center -> (subject, visit) whose vital signs can be saved
    saves: Counter[tuple[str, str]] = field(default_factory=Counter)
    saves_lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One keep-alive connection per thread to the server."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.local = threading.local()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.local.connection = connection
            return connection, False
        return connection, True

    def _drop(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
        self.local.connection = None

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send and read the whole answer. A keep-alive connection the server closed while idle is
        reopened once (nothing reached the server); any other failure is raised."""
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                content = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop()
                if reused and attempt == 1:
                    continue
                raise
            except Exception:
                self._drop()
                raise
            if response.will_close:
                self._drop()
            return response, content
        raise AssertionError("unreachable")


def _loopback(host: str, port: int) -> None:
    """Refuse any address that is not this machine's loopback (the issue: only loopback addresses)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise SystemExit(f"load: cannot resolve {host}: {error}") from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"load: {host} is not a loopback address ({info[4][0]}): refused.")


def _execute(client: Client, world: World, request: Request) -> tuple[int, bytes]:
    headers = {"Accept-Language": "en", "Connection": "keep-alive"}
    if request.api:
        headers["Authorization"] = f"Bearer {world.tokens[request.user]}"
        headers["Accept"] = "application/json"
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        response, content = client.send(request.method, request.path, headers, request.body)
        return response.status, content
    session = world.sessions[request.user]
    headers["Cookie"] = session.header()
    if request.form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["X-CSRFToken"] = session.csrf()
    response, content = client.send(request.method, request.path, headers, request.body)
    session.update(response)
    return response.status, content


def _login(client: Client, username: str, password: str) -> Session:
    session = Session(username)
    response, content = client.send("GET", "/accounts/login/", {"Accept-Language": "en"}, None)
    session.update(response)
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content)
    if response.status != 200 or found is None:
        raise SystemExit(f"load: the login page answered {response.status} without a CSRF token.")
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": found.group(1).decode()}
    ).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": session.header(),
        "Accept-Language": "en",
    }
    response, _ = client.send("POST", "/accounts/login/", headers, body)
    session.update(response)
    if response.status != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"load: {username} could not sign in (status {response.status}).")
    return session


def _api_get(client: Client, token: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    response, content = client.send("GET", path, headers, None)
    if response.status != 200:
        raise SystemExit(f"load: GET {path} answered {response.status}: {content[:200]!r}")
    return json.loads(content)


def prepare(client: Client, tokens: dict[str, str], password: str) -> World:
    """Sign the web users in and read the subjects and savable forms of each center (untimed)."""
    missing = [u for u in API_USERS if u not in tokens]
    if missing:
        raise SystemExit(f"load: no API token for {', '.join(missing)} (see --tokens).")
    sessions = {username: _login(client, username, password) for username in WEB_USERS}
    subjects: dict[str, list[str]] = {}
    savable: dict[str, list[tuple[str, str]]] = {}
    for center, investigator in zip(CENTERS, INVESTIGATORS, strict=True):
        codes: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = _api_get(client, tokens[investigator], f"/api/v1/subjects?limit=1000&offset={offset}")
            codes += [s["code"] for s in page["items"] if s["center"] == center]
            offset = page["next_offset"]
        subjects[center] = codes
        # A bounded sample of subjects is searched for forms to save (the scale data has thousands).
        found: list[tuple[str, str]] = []
        for code in codes[:40]:
            visits = _api_get(client, tokens[investigator], f"/api/v1/subjects/{code}/visits?limit=100")
            for visit in visits["items"]:
                if any(f["code"] == SAVE_FORM and f["status"] in SAVABLE for f in visit["forms"]):
                    found.append((code, visit["code"]))
        savable[center] = found
    if not any(subjects.values()):
        raise SystemExit("load: no subject in the database (build the demo or the scale data first).")
    if not any(savable.values()):
        raise SystemExit(f"load: no saved '{SAVE_FORM}' form to save again in any center.")
    return World(sessions=sessions, tokens=tokens, subjects=subjects, savable=savable)


def _center_with(world: World, rng: random.Random, table: dict[str, list[Any]]) -> str:
    return rng.choice([c for c in CENTERS if table.get(c)])


def _subject_page(world: World, rng: random.Random) -> Request:
    center = _center_with(world, rng, world.subjects)
    code = rng.choice(world.subjects[center])
    return Request("page subject", "GET", f"/subjects/{code}/", f"{center.lower()}.investigator")


def _subject_api(world: World, rng: random.Random) -> Request:
    center = _center_with(world, rng, world.subjects)
    code = rng.choice(world.subjects[center])
    return Request("api subject", "GET", f"/api/v1/subjects/{code}", f"{center.lower()}.investigator", api=True)


def _form_save(world: World, rng: random.Random) -> Request:
    """Vital signs saved again from the form page, with a changed value and a reason (audited)."""
    center = _center_with(world, rng, world.savable)
    code, visit = rng.choice(world.savable[center])
    with world.saves_lock:
        world.saves[(code, visit)] += 1
        turn = world.saves[(code, visit)]
    user = f"{center.lower()}.investigator"
    fields = {
        "op": "save",
        "reason": "load test: re-measured",
        "temperature_c": "36.8" if turn % 2 else "37.0",
        "heart_rate_bpm": str(70 + turn % 10),
        "systolic_bp_mmhg": "120",
        "diastolic_bp_mmhg": "75",
        "spo2_pct": "98",
        "weight_kg": "62.0",
        "csrfmiddlewaretoken": world.sessions[user].csrf(),
    }
    path = f"/casebook/subjects/{code}/visits/{visit}/forms/{SAVE_FORM}/"
    body = urllib.parse.urlencode(fields).encode()
    return Request("page eCRF save", "POST", path, user, body=body, form=True, expected=(302,))


def _calculator(world: World, rng: random.Random) -> Request:
    name, payload = rng.choice(CALCULATIONS)
    user = rng.choice(API_USERS)
    body = json.dumps(payload).encode()
    return Request("api calculator", "POST", f"/api/v1/calculators/{name}", user, api=True, body=body)


def _export(world: World, rng: random.Random) -> Request:
    center = _center_with(world, rng, world.subjects)
    body = json.dumps({"format": "csv", "subject": rng.choice(world.subjects[center])}).encode()
    user = f"{center.lower()}.investigator"
    return Request("api export request", "POST", "/api/v1/exports", user, api=True, body=body, expected=(202,))


def _fixed(
    kind: str, path: str, users: tuple[str, ...], api: bool = False
) -> Callable[[World, random.Random], Request]:
    def build(world: World, rng: random.Random) -> Request:
        return Request(kind, "GET", path, rng.choice(users), api=api)

    return build


# kind -> (weight out of 100, how to build one). The weights follow what a working day looks like:
# mostly reading lists and subjects, a steady flow of saves, dashboards now and then, rare exports.
MIX: dict[str, tuple[int, Callable[[World, random.Random], Request]]] = {
    "page subject list": (12, _fixed("page subject list", "/subjects/", INVESTIGATORS)),
    "api subject list": (10, _fixed("api subject list", "/api/v1/subjects?limit=50", API_USERS, api=True)),
    "page subject": (14, _subject_page),
    "api subject": (8, _subject_api),
    "page eCRF save": (12, _form_save),
    "page worklist": (8, _fixed("page worklist", "/casebook/worklist/", INVESTIGATORS)),
    "page query inbox": (4, _fixed("page query inbox", "/casebook/queries/", INVESTIGATORS)),
    "page study dashboard": (6, _fixed("page study dashboard", "/dashboards/study/", STUDY_READERS)),
    "page safety dashboard": (6, _fixed("page safety dashboard", "/dashboards/safety/", STUDY_READERS)),
    "page logistics dashboard": (6, _fixed("page logistics dashboard", "/logistics/", PHARMACISTS)),
    "api calculator": (12, _calculator),
    "api export request": (2, _export),
}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (of sorted values)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def run(
    client: Client, world: World, rate: float, duration: float, grace: float, threads: int, seed: int
) -> tuple[list[Result], int, float]:
    """Offer rate × duration requests at a constant rate; returns the results, the number offered and
    the start time. Stops by itself at duration + grace."""
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = [MIX[k][0] for k in kinds]
    total = int(rate * duration)
    results: list[Result] = []
    results_lock = threading.Lock()

    def one(request: Request, due: float) -> None:
        status, error = 0, ""
        try:
            status, _ = _execute(client, world, request)
            if status not in request.expected:
                error = f"status {status}"
        except Exception as failure:
            error = type(failure).__name__
        done = time.perf_counter()
        with results_lock:
            results.append(Result(request.kind, status, error, due, done, (done - due) * 1000))

    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="load")
    futures: list[Future[None]] = []
    start = time.perf_counter() + 0.5
    for i in range(total):
        due = start + i / rate
        request = MIX[rng.choices(kinds, weights)[0]][1](world, rng)
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        futures.append(executor.submit(one, request, due))
    deadline = start + duration + grace
    for future in futures:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        try:
            future.result(timeout=remaining)
        except TimeoutError:
            break
    executor.shutdown(wait=False, cancel_futures=True)
    with results_lock:
        return list(results), total, start


def profile(client: Client, world: World, repeat: int, seed: int) -> str:
    """Each kind of request `repeat` times, one at a time (no concurrency): what each costs alone,
    to find the slowest endpoint before and after a fix. Bounded by repeat × kinds requests."""
    rng = random.Random(seed)
    lines = [f"{'request (one at a time)':<26}{'count':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"]
    rows = []
    for kind, (_, build) in MIX.items():
        latencies, errors = [], 0
        for _ in range(repeat):
            request = build(world, rng)
            started = time.perf_counter()
            try:
                status, _ = _execute(client, world, request)
                errors += status not in request.expected
            except Exception:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        rows.append((percentile(latencies, 0.5), kind, errors, latencies))
    for p50, kind, errors, latencies in sorted(rows, reverse=True):
        lines.append(
            f"{kind:<26}{len(latencies):>7}{errors:>8}{p50:>9.1f}"
            f"{percentile(latencies, 0.95):>9.1f}{latencies[-1]:>9.1f}"
        )
    return "\n".join(lines)


def report(
    results: list[Result], offered: int, start: float, rate: float, duration: float, p95_target: float
) -> tuple[str, dict[str, Any], bool]:
    """The table printed, the same figures as JSON, and whether every target is met."""
    by_kind: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_kind[result.kind].append(result)
    end = max((r.done for r in results), default=start)
    elapsed = max(end - start, 1e-9)
    lines = [
        f"{'request':<26}{'count':>7}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    ]
    figures: dict[str, Any] = {"kinds": {}}

    def row(name: str, rows: list[Result]) -> dict[str, Any]:
        latencies = sorted(r.latency_ms for r in rows)
        errors = sum(1 for r in rows if r.error)
        values = {
            "count": len(rows),
            "errors": errors,
            "per_second": len(rows) / elapsed,
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": latencies[-1] if latencies else math.nan,
        }
        lines.append(
            f"{name:<26}{values['count']:>7}{errors:>8}{values['per_second']:>8.1f}{values['p50_ms']:>9.1f}"
            f"{values['p95_ms']:>9.1f}{values['p99_ms']:>9.1f}{values['max_ms']:>9.1f}"
        )
        return values

    for kind in sorted(by_kind, key=lambda k: -percentile(sorted(r.latency_ms for r in by_kind[k]), 0.95)):
        figures["kinds"][kind] = row(kind, by_kind[kind])
    lines.append("-" * 85)
    overall = row("overall", results)
    figures["overall"] = overall
    unfinished = offered - len(results)
    errors = Counter(r.error for r in results if r.error)
    if unfinished:
        errors["unfinished"] = unfinished
    ok = sum(1 for r in results if not r.error)
    throughput = ok / elapsed
    # The worst 10-second window of answered requests (sustained, not only on average).
    windows = Counter(int((r.done - start) // 10) for r in results if not r.error and r.done - start < duration)
    worst_window = min((windows.get(w, 0) / 10 for w in range(int(duration // 10))), default=throughput)
    figures.update(
        offered=offered,
        offered_rate=rate,
        duration_s=duration,
        answered=len(results),
        ok=ok,
        elapsed_s=elapsed,
        throughput=throughput,
        worst_10s_window=worst_window,
        errors=dict(errors),
    )
    checks = {
        f"throughput {throughput:.1f} req/s >= 98% of {rate:g}": throughput >= 0.98 * rate,
        f"p95 {overall['p95_ms']:.1f} ms <= {p95_target:g} ms": overall["p95_ms"] <= p95_target,
        f"errors {sum(errors.values())} == 0": not errors,
    }
    lines.append(
        f"offered {offered} at {rate:g} req/s over {duration:g} s; answered {len(results)}, ok {ok} in {elapsed:.1f} s"
        f" -> {throughput:.1f} req/s (worst 10 s window {worst_window:.1f} req/s)"
    )
    lines.append("errors: " + (", ".join(f"{k}: {v}" for k, v in errors.most_common()) or "none"))
    for check, passed in checks.items():
        lines.append(f"{'PASS' if passed else 'FAIL'}  {check}")
    figures["checks"] = checks
    return "\n".join(lines), figures, all(checks.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server (loopback only)")
    parser.add_argument("--tokens", type=Path, required=True, help="JSON file {username: API token}")
    parser.add_argument("--password", default=os.environ.get("CARTRIAL_LOAD_PASSWORD", DEMO_PASSWORD))
    parser.add_argument("--rate", type=float, default=100.0, help="requests offered per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of offered load")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to wait for the last answers")
    parser.add_argument("--threads", type=int, default=64, help="connections (client threads) at most")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take")
    parser.add_argument("--p95-ms", type=float, default=250.0, help="target p95 latency (ms)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here too")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="instead of the load: each kind N times, one at a time (slowest first)"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration > 1_000_000:
        parser.error("rate and duration must be positive, at most 1 000 000 requests in all")
    url = urllib.parse.urlsplit(args.base_url)
    if url.scheme != "http" or not url.hostname:
        parser.error("--base-url must be http://HOST:PORT on a loopback address")
    port = url.port or 80
    _loopback(url.hostname, port)
    client = Client(url.hostname, port, args.timeout)
    tokens = json.loads(args.tokens.read_text())
    try:
        world = prepare(client, tokens, args.password)
    except (SystemExit, OSError) as failure:
        print(failure if isinstance(failure, SystemExit) else f"load: {failure}", file=sys.stderr)
        return 2
    saves = sum(len(v) for v in world.savable.values())
    print(
        f"load: {len(world.sessions)} web sessions, {len(tokens)} API tokens, "
        f"{sum(len(v) for v in world.subjects.values())} subjects, {saves} forms to save; "
        f"{args.rate:g} req/s for {args.duration:g} s on {args.base_url}",
        flush=True,
    )
    if args.profile:
        print(profile(client, world, min(args.profile, 1000), args.seed))
        return 0
    results, offered, start = run(client, world, args.rate, args.duration, args.grace, args.threads, args.seed)
    text, figures, passed = report(results, offered, start, args.rate, args.duration, args.p95_ms)
    print(text)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
