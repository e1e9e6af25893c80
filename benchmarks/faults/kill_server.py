"""Fault drill 1: `kill -9` of gunicorn (master and workers) during concurrent audited writes.

    PYTHONPATH=src python benchmarks/faults/kill_server.py [--clients 4] [--seconds 20]

Client threads register subjects through the API (`POST /api/v1/subjects`: the subject, its
encrypted identity and its audit entry in one transaction), each with a hospital number of its
own, and record every acknowledged write (201 with its code). Mid-way the whole server is killed
with SIGKILL, left dead a few seconds, then started again. A write whose answer was lost (the
connection reset under it) is *in doubt*: after the restart the client sends it again, and the
server either stores it (201) or refuses it as a duplicate hospital number (422): it had been
stored. Passes when every acknowledged write is stored, stored subjects are exactly the
acknowledged ones plus the in-doubt ones, no subject lacks its identity or its audit entry,
`cartrial audit verify` is intact, every failure was a clear error (refused, reset or JSON), no
request hung, and writes succeed again after the restart.
"""

from __future__ import annotations

import argparse
import threading
import time

from faultkit import Registrations, Verdict, say, stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent writing clients (default 4)")
    parser.add_argument("--seconds", type=float, default=20, help="writing time, the kill in the middle (default 20)")
    options = parser.parse_args()
    verdict = Verdict()
    with stack(budget_s=420 + options.seconds) as (_cluster, app):
        writes = Registrations(app, app.token("bdx.coordinator"))
        app.serve()
        say(f"gunicorn answers on {app.base}; {options.clients} clients register subjects")
        stop = threading.Event()
        threads = [threading.Thread(target=writes.client, args=(n, stop), daemon=True) for n in range(options.clients)]
        for thread in threads:
            thread.start()
        time.sleep(options.seconds / 2)
        processes = app.server_processes()
        writes.phase = "killed"
        app.kill()
        say(
            f"kill -9 of the master and its workers ({len(processes)} processes) "
            f"after {len(writes.acknowledged)} writes"
        )
        time.sleep(3)
        app.serve()
        writes.phase = "restarted"
        say("server restarted; the clients go on")
        time.sleep(options.seconds / 2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        verdict.check(not any(t.is_alive() for t in threads), "every client finished (no request hung)")
        say(f"clients: {writes.tally.line()}")
        verdict.check(
            writes.by_phase["before"] > 0, f"writes acknowledged before the kill ({writes.by_phase['before']})"
        )
        writes.check(verdict)
        verdict.check(
            writes.by_phase["restarted"] > 0, f"writes acknowledged after the restart ({writes.by_phase['restarted']})"
        )
    verdict.exit("kill -9 drill")


if __name__ == "__main__":
    main()
