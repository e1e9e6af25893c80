"""Fault drill 2: PostgreSQL restarted (fast, then immediate) under the running server.

    PYTHONPATH=src python benchmarks/faults/postgres_restart.py [--clients 4] [--seconds 8]

gunicorn serves the demo from a private cluster (never the shared server). Client threads
register subjects through the API while one reads the API's subject list and one the subject
list page of a signed-in user. The cluster is stopped with `pg_ctl -m fast` (sessions ended,
open transactions rolled back), left down 3 s and started again; then stopped with
`-m immediate` (aborted at once: crash recovery at the next start) and started again. gunicorn
is never restarted. Passes when every failure was a clear error (503 JSON
`database_unavailable` or the 503 page), no answer hung, no 500 at all, writes and reads
succeed again after each restart by themselves, every acknowledged write is stored and whole,
writes in doubt resolve by sending them again, and `cartrial audit verify` is intact.
"""

from __future__ import annotations

import argparse
import threading
import time

from faultkit import CLIENT_TIMEOUT_S, App, Registrations, Tally, Verdict, clear_error, request, say, stack


def _reader(
    app: App,
    url: str,
    headers: dict[str, str],
    token: str | None,
    stop: threading.Event,
    tally: Tally,
    unclear: list[str],
    phases: dict[str, int],
    phase: list[str],
) -> None:
    while not stop.is_set():
        answer = request("GET", url, token=token, headers=headers)
        tally.add(answer)
        if answer.kind == "ok":
            phases[phase[0]] = phases.get(phase[0], 0) + 1
        elif not clear_error(answer) or answer.status == 500:
            unclear.append(f"{answer.kind} {answer.content_type} {answer.body[:120]!r}")
        if answer.kind != "ok":
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent writing clients (default 4)")
    parser.add_argument("--seconds", type=float, default=8, help="load time between faults (default 8)")
    options = parser.parse_args()
    verdict = Verdict()
    with stack(budget_s=480 + 4 * options.seconds) as (cluster, app):
        token = app.token("bdx.coordinator")
        cookie = app.session_cookie("bdx.coordinator")
        writes = Registrations(app, token)
        app.serve()
        master = app.server.pid if app.server else 0
        say(f"gunicorn answers on {app.base}; {options.clients} writers, an API reader and a page reader")
        stop = threading.Event()
        api_tally, page_tally = Tally(), Tally()
        unclear: list[str] = []
        phase = ["before"]
        api_ok: dict[str, int] = {}
        page_ok: dict[str, int] = {}
        threads = [threading.Thread(target=writes.client, args=(n, stop), daemon=True) for n in range(options.clients)]
        threads.append(
            threading.Thread(
                target=_reader,
                args=(app, app.base + "/api/v1/subjects", {}, token, stop, api_tally, unclear, api_ok, phase),
                daemon=True,
            )
        )
        threads.append(
            threading.Thread(
                target=_reader,
                args=(
                    app,
                    app.base + "/subjects/",
                    {"Cookie": cookie},
                    None,
                    stop,
                    page_tally,
                    unclear,
                    page_ok,
                    phase,
                ),
                daemon=True,
            )
        )
        for thread in threads:
            thread.start()
        time.sleep(options.seconds)
        for mode in ("fast", "immediate"):
            say(f"pg_ctl stop -m {mode} under load")
            writes.phase = phase[0] = f"down-{mode}"
            cluster.stop(mode)
            time.sleep(3)
            cluster.start()
            writes.phase = phase[0] = f"after-{mode}"
            say("PostgreSQL started again; gunicorn left alone")
            time.sleep(options.seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 15)
        verdict.check(not any(t.is_alive() for t in threads), "every client finished (no request hung)")
        say(f"writers: {writes.tally.line()}")
        say(f"API reader: {api_tally.line()}")
        say(f"page reader: {page_tally.line()}")
        verdict.check(
            app.server is not None and app.server.poll() is None and app.server.pid == master,
            "gunicorn ran throughout (never restarted)",
        )
        fives = sum(t.kinds["http_500"] for t in (writes.tally, api_tally, page_tally))
        verdict.check(fives == 0, f"no 500 answer ({fives})")
        unavailable = sum(t.kinds["http_503"] for t in (writes.tally, api_tally, page_tally))
        verdict.check(unavailable > 0, f"clients were told the database was unavailable (503: {unavailable})")
        verdict.check(not unclear, f"every failed read was a clear error ({len(unclear)} unclear: {unclear[:3]})")
        for mode in ("fast", "immediate"):
            after = f"after-{mode}"
            verdict.check(
                writes.by_phase[after] > 0 and api_ok.get(after, 0) > 0 and page_ok.get(after, 0) > 0,
                f"service resumed by itself after the {mode} restart (writes {writes.by_phase[after]}, "
                f"API reads {api_ok.get(after, 0)}, pages {page_ok.get(after, 0)})",
            )
        writes.check(verdict)
    verdict.exit("PostgreSQL restart drill")


if __name__ == "__main__":
    main()
