"""Fault drill 1: `kill -9` of gunicorn (master and workers) during concurrent audited writes.

    PYTHONPATH=src python benchmarks/faults/kill_server.py [--clients 4] [--seconds 20]

Client threads register subjects through the API (`POST /api/v1/subjects`: the subject, its
encrypted identity and its audit entry in one transaction), each with a hospital number of its
own, and record every acknowledged write (201 with its code). Mid-way the whole server is killed
with SIGKILL, left dead a few seconds, then started again. A write whose answer was lost (the
connection reset under it) is *in doubt*: after the restart the client sends it again, and the
server either stores it (201) or refuses it as a duplicate hospital number (422): it had been
stored. Passes when every acknowledged write is stored, stored subjects are exactly the
acknowledged ones plus the in-doubt ones the server had kept, no subject lacks its identity or
its audit entry, `cartrial audit verify` is intact, every failure was a clear error (refused,
reset or JSON), no request hung, and writes succeed again after the restart.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from dataclasses import dataclass, field

from faultkit import Answer, App, Tally, Verdict, clear_error, request, say, stack


@dataclass
class Ledger:
    """What the clients know: acknowledged codes, writes in doubt, unclear answers."""

    acknowledged: list[str] = field(default_factory=list)
    in_doubt: list[dict[str, str]] = field(default_factory=list)
    unclear: list[Answer] = field(default_factory=list)
    after_restart: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _payload(client: int, number: int) -> dict[str, str]:
    return {
        "center": "BDX",
        "family_name": f"Drill{client}",
        "given_names": f"Kill {number}",
        "birth_date": "1985-04-12",
        "hospital_number": f"KD-{client}-{number:06d}",
    }


def _client(
    app: App, token: str, client: int, stop: threading.Event, restarted: threading.Event, ledger: Ledger, tally: Tally
) -> None:
    for number in itertools.count():
        if stop.is_set():
            return
        payload = _payload(client, number)
        answer = request("POST", app.base + "/api/v1/subjects", token=token, payload=payload)
        tally.add(answer)
        with ledger.lock:
            if answer.kind == "ok" and answer.status == 201:
                ledger.acknowledged.append(answer.json()["code"])
                ledger.after_restart += restarted.is_set()
            elif answer.kind in ("reset", "timeout") or answer.status >= 500:
                ledger.in_doubt.append(payload)  # sent, its fate unknown to the client
            if not (answer.kind == "ok" or clear_error(answer)):
                ledger.unclear.append(answer)
        if answer.kind in ("refused", "reset"):
            time.sleep(0.2)  # a client backs off while the server is down


def _subjects(app: App) -> int:
    return app.cluster.query("SELECT count(*) FROM subjects_subject")[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent writing clients (default 4)")
    parser.add_argument("--seconds", type=float, default=20, help="writing time, the kill in the middle (default 20)")
    options = parser.parse_args()
    verdict = Verdict()
    with stack(budget_s=420 + options.seconds) as (cluster, app):
        token = app.token("bdx.coordinator")
        before = _subjects(app)
        app.serve()
        say(f"gunicorn answers on {app.base}; {options.clients} clients register subjects")
        stop, restarted = threading.Event(), threading.Event()
        ledger, tally = Ledger(), Tally()
        threads = [
            threading.Thread(target=_client, args=(app, token, n, stop, restarted, ledger, tally), daemon=True)
            for n in range(options.clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(options.seconds / 2)
        processes = app.server_processes()
        acknowledged_at_kill = len(ledger.acknowledged)
        app.kill()
        say(f"kill -9 of the master and its workers ({len(processes)} processes) after {acknowledged_at_kill} writes")
        time.sleep(3)
        app.serve()
        restarted.set()
        say("server restarted; the clients go on")
        time.sleep(options.seconds / 2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        verdict.check(not any(t.is_alive() for t in threads), "every client finished (no request hung)")
        say(f"clients: {tally.line()}")

        resolved_stored, resolved_new, retry_failures = 0, 0, 0
        for payload in ledger.in_doubt:
            answer = request("POST", app.base + "/api/v1/subjects", token=token, payload=payload)
            body = answer.json() or {}
            if answer.status == 201:
                resolved_new += 1
            elif answer.status == 422 and body.get("code") == "duplicate_hospital_number":
                resolved_stored += 1
            else:
                retry_failures += 1
        say(
            f"{len(ledger.in_doubt)} writes in doubt sent again: {resolved_stored} had been stored, "
            f"{resolved_new} had not (stored now), {retry_failures} failed"
        )

        stored = _subjects(app) - before
        expected = len(ledger.acknowledged) + resolved_stored + resolved_new
        say(f"acknowledged {len(ledger.acknowledged)}; new subjects stored {stored}")
        missing = cluster.query(
            "SELECT count(*) FROM unnest(%s::text[]) AS a(code) "
            "LEFT JOIN subjects_subject s ON s.code = a.code WHERE s.id IS NULL",
            ledger.acknowledged,
        )[0][0]
        without_identity = cluster.query(
            "SELECT count(*) FROM subjects_subject s "
            "LEFT JOIN subjects_subjectidentity i ON i.subject_id = s.id WHERE i.id IS NULL"
        )[0][0]
        without_audit = cluster.query(
            "SELECT count(*) FROM subjects_subject s LEFT JOIN audit_auditentry a "
            "ON a.entity = 'subject' AND a.entity_id = s.code AND a.event = 'subject.created' WHERE a.id IS NULL"
        )[0][0]
        audit_without_subject = cluster.query(
            "SELECT count(*) FROM audit_auditentry a LEFT JOIN subjects_subject s ON s.code = a.entity_id "
            "WHERE a.entity = 'subject' AND a.event = 'subject.created' AND s.id IS NULL"
        )[0][0]
        intact, head = app.audit_verify()

        verdict.check(acknowledged_at_kill > 0, f"writes were acknowledged before the kill ({acknowledged_at_kill})")
        verdict.check(missing == 0, f"every acknowledged write is stored ({missing} missing)")
        verdict.check(
            stored == expected,
            f"stored = acknowledged + in-doubt writes resolved ({stored} = {len(ledger.acknowledged)} + "
            f"{resolved_stored} + {resolved_new})",
        )
        verdict.check(retry_failures == 0, "every write in doubt was resolved by sending it again")
        verdict.check(without_identity == 0, f"no subject without its identity ({without_identity})")
        verdict.check(without_audit == 0, f"no subject without its audit entry ({without_audit})")
        verdict.check(audit_without_subject == 0, f"no audit entry of a subject not stored ({audit_without_subject})")
        verdict.check(intact, f"cartrial audit verify: {head}")
        verdict.check(not ledger.unclear, f"every failure was a clear error ({len(ledger.unclear)} unclear)")
        verdict.check(ledger.after_restart > 0, f"writes acknowledged after the restart ({ledger.after_restart})")
    verdict.exit("kill -9 drill")


if __name__ == "__main__":
    main()
