"""Fault drill 4: the database connection lost in the middle of a request's transaction.

    PYTHONPATH=src python benchmarks/faults/lost_connection.py [--rounds 3]

gunicorn serves the demo from a private cluster. The drill holds the audit chain's head row
locked from a connection of its own, then registers a subject through the API: the request's
transaction writes the subject and its identity, then waits for the chain head to write its
audit entry. While it waits, the drill kills that backend (`pg_terminate_backend`) and
releases its lock. Passes, in every round, when the client got a clear error (503
`database_unavailable`) without hanging, nothing of the request is stored (no subject, no
identity, no code consumed, the audit chain's head unchanged), the same request then succeeds
(its hospital number was not kept), and `cartrial audit verify` is intact.
"""

from __future__ import annotations

import argparse
import threading
import time

import psycopg
from faultkit import CLIENT_TIMEOUT_S, Answer, Verdict, request, say, stack


def _send(answers: list[Answer], url: str, token: str, payload: dict[str, str]) -> None:
    answers.append(request("POST", url, token=token, payload=payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="requests cut (default 3)")
    options = parser.parse_args()
    verdict = Verdict()
    with stack(budget_s=480 + 30 * options.rounds) as (cluster, app):
        token = app.token("bdx.coordinator")
        app.serve()
        url = app.base + "/api/v1/subjects"
        for round_ in range(1, options.rounds + 1):
            payload = {
                "center": "BDX",
                "family_name": "Cut",
                "given_names": f"Round {round_}",
                "birth_date": "1979-09-30",
                "hospital_number": f"LC-{round_:03d}",
            }
            before = cluster.query(
                "SELECT (SELECT count(*) FROM subjects_subject), (SELECT count(*) FROM subjects_subjectidentity), "
                "(SELECT coalesce(sum(last_number), 0) FROM subjects_subjectcodecounter), "
                "(SELECT last_sequence FROM audit_auditchainhead WHERE id = 1)"
            )[0]
            answers: list[Answer] = []
            with psycopg.connect(cluster.url()) as holder:
                holder.execute("SELECT id FROM audit_auditchainhead WHERE id = 1 FOR UPDATE")
                client = threading.Thread(target=_send, args=(answers, url, token, payload), daemon=True)
                client.start()
                waiting: list[tuple[int, str]] = []
                deadline = time.monotonic() + 20
                while not waiting and time.monotonic() < deadline:
                    waiting = cluster.query(
                        "SELECT pid, query FROM pg_stat_activity WHERE datname = 'cartrial' "
                        "AND wait_event_type = 'Lock' AND pid <> %s",
                        holder.info.backend_pid,
                    )
                    time.sleep(0.05)
                if not waiting:
                    verdict.check(False, f"round {round_}: the request reached the chain head's lock")
                    holder.rollback()
                    client.join(CLIENT_TIMEOUT_S + 5)
                    continue
                pid = waiting[0][0]
                # What the waiting transaction holds: rows of its own, not visible to others.
                locks = cluster.query(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = %s AND c.relname = 'subjects_subject' AND l.mode = 'RowExclusiveLock'",
                    pid,
                )[0][0]
                cluster.query("SELECT pg_terminate_backend(%s)", pid)
                holder.rollback()
            client.join(CLIENT_TIMEOUT_S + 5)
            answer = answers[0] if answers else Answer("timeout")
            body = answer.json() or {}
            say(
                f"round {round_}: backend {pid} ({locks} insert into subjects held) killed; client got "
                f"{answer.kind} {body.get('code', '')} in {answer.seconds:.2f} s"
            )
            after = cluster.query(
                "SELECT (SELECT count(*) FROM subjects_subject), (SELECT count(*) FROM subjects_subjectidentity), "
                "(SELECT coalesce(sum(last_number), 0) FROM subjects_subjectcodecounter), "
                "(SELECT last_sequence FROM audit_auditchainhead WHERE id = 1)"
            )[0]
            verdict.check(locks > 0, f"round {round_}: the transaction had written the subject when cut")
            verdict.check(
                answer.status == 503 and body.get("code") == "database_unavailable" and bool(body.get("message")),
                f"round {round_}: the client got a clear error (503 database_unavailable), not a hang",
            )
            verdict.check(
                after == before,
                f"round {round_}: nothing partial stored (subjects, identities, codes, audit head: {after})",
            )
            again = request("POST", url, token=token, payload=payload)
            verdict.check(again.status == 201, f"round {round_}: the same request then succeeds ({again.kind})")
        intact, head = app.audit_verify()
        verdict.check(intact, f"cartrial audit verify: {head}")
    verdict.exit("lost connection drill")


if __name__ == "__main__":
    main()
