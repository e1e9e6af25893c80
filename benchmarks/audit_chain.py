"""Audit trail cost (issue 13): verify against raw SHA-256, verify's memory, audited against unaudited
writes, and concurrent writers on the one chain head.

Run from the project root (PostgreSQL; the benchmark's own databases, created if missing):

    PYTHONPATH=src .venv/bin/python benchmarks/audit_chain.py [--entries 5000000]
        [--database-url postgres://postgres@127.0.0.1:5432/audit13] [--writes 400] [--writers 1,2,4,8]

It builds a study skeleton through the real services (centers, users, one subject), then appends
synthetic entries up to N (default 5 000 000) and, in a second database, up to N/10: each entry made
with the domain's own `entry_hash`, chained, and loaded with COPY (plain indexes dropped during the
load and rebuilt after). A database that already holds the chain is reused. Then, side by side:

1. raw SHA-256: `hashlib.sha256(payload).hexdigest()` over exactly the bytes verify hashes (each
   entry's canonical JSON, `domain.audit_chain.entry_payload`), one core, no database: the floor;
2. `audit_verify()`, the code path of `cartrial audit verify`, in a process of its own at N and at
   N/10, with its time and the process's peak resident memory above what it held before the walk
   (ru_maxrss sampled before and after; flat: ≤ 1.5× or within 32 MiB);
3. an audited write (`clinical.services.lab_observations_record`, one result, its own transaction)
   against the same write with `audit_record` replaced by a no-op, interleaved in rounds;
4. 1, 2, 4, 8 writer processes doing audited writes for a fixed time: throughput, write latency,
   and the time spent waiting for the chain head's row lock.

Prints PASS/FAIL for: verify ≥ 50 % of raw SHA-256 throughput; audited write ≤ 1.5× unaudited;
verify memory flat. The machine is shared: the ratios, measured in one run, are what counts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cartrial.domain.audit_chain import CHAINED_FIELDS, ChainedContent, canonical_json, chained_row, entry_hash

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.test_settings")
# The benchmark databases' own identity key (synthetic subjects only), the same in every process.
os.environ.setdefault("CARTRIAL_IDENTITY_KEY", "YXVkaXQtY2hhaW4tYmVuY2htYXJrLWtleS0wMDAwMDA=")

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/audit13"
FLAT_RATIO = 1.5
FLAT_ALLOWANCE_MIB = 32.0
CHUNK = 50_000
EVENTS = (
    ("lab_observation.recorded", "lab_observation"),
    ("form.saved", "form_record"),
    ("pathway.step", "subject"),
    ("record.corrected", "form_record"),
    ("logistics.scanned", "shipment"),
)
CENTERS = ("BDX", "LIL", "PAR", "LYO", "MAR", "TLS", "NTE", "STR")


def _django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()


def _admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def _database_ensure(url: str) -> None:
    """Create the database named by `url` if it does not exist (outside Django: it may be missing)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')


# --- building the chain -------------------------------------------------------------------------


def _skeleton() -> None:
    """Migrations, then centers, users and one subject through the real services (audited)."""
    from django.core.management import call_command
    from django.db import transaction

    from cartrial.apps.subjects.models import Subject

    call_command("migrate", verbosity=0)
    if Subject.objects.exists():
        return
    from cartrial.demo import _new_subject, build_centers_and_users
    from cartrial.protocols import active_protocol

    protocol = active_protocol()
    with transaction.atomic():
        centers, users = build_centers_and_users(protocol)
        _new_subject(protocol, centers, users, "BDX", 0, datetime.now(UTC) - timedelta(days=30))


def _pool(rng: random.Random, moment: datetime) -> list[str]:
    """A thousand plausible field changes (canonical JSON), drawn from by the synthetic entries."""
    return [
        canonical_json(
            [
                {"field": "analyte", "old": None, "new": rng.choice(("crp", "cd19", "creatinine", "c3", "dsdna"))},
                {"field": "value", "old": None, "new": round(rng.uniform(0, 500), 2)},
                {"field": "unit", "old": None, "new": "mg/L"},
                {"field": "sampled_at", "old": None, "new": (moment - timedelta(hours=rng.randint(1, 48))).isoformat()},
            ]
        )
        for _ in range(1000)
    ]


def _synthetic(sequence: int, previous: str, pool: list[str], moment: datetime) -> tuple[ChainedContent, str]:
    """One plausible entry after `previous`, hashed by the domain's own rule."""
    event, entity = EVENTS[sequence % len(EVENTS)]
    center = CENTERS[sequence % len(CENTERS)]
    content = ChainedContent(
        sequence=sequence,
        occurred_at=moment,
        actor_id=1 + sequence % 60,
        actor_username=f"{center.lower()}.investigator",
        role="investigator",
        center_code=center,
        event=event,
        entity=entity,
        entity_id=str(sequence * 7 % 10_000_019),
        subject_code=f"{center}-{1 + sequence * 13 % 1250:04d}",
        changes_json=pool[sequence * 31 % len(pool)],
        reason="transcription error" if event == "record.corrected" else "",
        previous_hash=previous,
    )
    return content, entry_hash(content)


_COLUMNS = (*CHAINED_FIELDS, "entry_hash")


def chain_extend(target: int) -> tuple[int, float]:
    """Append synthetic entries until the trail holds `target`; return (entries added, seconds)."""
    from django.db import connection, transaction

    from cartrial.apps.audit.models import AuditChainHead, AuditEntry

    head = AuditChainHead.objects.get(pk=1)
    missing = target - head.last_sequence
    if missing <= 0:
        return 0, 0.0
    began = time.perf_counter()
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        plain = cursor.fetchall()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    pool = _pool(random.Random(target), start)
    sequence, previous = head.last_sequence, head.last_hash
    with transaction.atomic():
        raw = connection.connection
        with connection.cursor() as cursor:
            for name, _ in plain:
                cursor.execute(f'DROP INDEX "{name}"')
        columns = ", ".join(_COLUMNS)
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for _ in range(missing):
                sequence += 1
                moment = start + timedelta(seconds=sequence * 3)
                content, digest = _synthetic(sequence, previous, pool, moment)
                copy.write_row(chained_row(content, digest))
                previous = digest
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for _, definition in plain:
                cursor.execute(definition)
        AuditChainHead.objects.filter(pk=1).update(last_sequence=sequence, last_hash=previous)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
    return missing, time.perf_counter() - began


# --- 1. raw SHA-256 of the bytes verify hashes --------------------------------------------------


def payloads_read(entries: int) -> list[bytes]:
    """Every entry's canonical payload as the domain builds it (kept in memory, a few GB at 5 million)."""
    from cartrial.apps.audit.selectors import _contents
    from cartrial.domain.audit_chain import UnreadableEntry, entry_payload

    payloads = []
    for item in _contents(up_to=entries, batch_size=CHUNK):
        if isinstance(item, UnreadableEntry):
            raise SystemExit(f"unreadable entry {item.sequence}: {item.problem}")
        payloads.append(entry_payload(item[0]))
    return payloads


def raw_sha256(payloads: list[bytes]) -> float:
    """Seconds to hash every payload with hashlib, one core, nothing else timed."""
    import hashlib

    sha256 = hashlib.sha256
    began = time.perf_counter()
    for payload in payloads:
        sha256(payload).hexdigest()
    return time.perf_counter() - began


# --- 2. verify, in a process of its own ---------------------------------------------------------


def _resident_peak_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def verify_child(url: str) -> None:
    """Run `audit_verify` once and print its figures as JSON (the parent reads the last line)."""
    _django(url)
    from django.db import connection

    from cartrial.apps.audit.models import AuditEntry
    from cartrial.apps.audit.selectors import audit_verify

    AuditEntry.objects.filter(pk=1).exists()  # connect and load the ORM before the baseline
    connection.ensure_connection()
    before = _resident_peak_kib()
    calls = 0

    def progress(done: int, total: int) -> None:
        nonlocal calls
        calls += 1

    began = time.perf_counter()
    report = audit_verify(progress=progress)
    seconds = time.perf_counter() - began
    after = _resident_peak_kib()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "checked": report.checked,
                "intact": report.intact,
                "head": report.head_hash,
                "before_kib": before,
                "peak_kib": after,
                "progress_calls": calls,
            }
        )
    )


def verify_in_child(url: str) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=url)
    done = subprocess.run(
        [sys.executable, __file__, "--verify-child", url], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"verify child failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# --- 3. audited against unaudited writes --------------------------------------------------------


def _writer_fixture() -> tuple[Any, Any]:
    from cartrial.apps.accounts.models import User
    from cartrial.apps.subjects.models import Subject

    subject = Subject.objects.select_related("center", "protocol_version").order_by("pk").first()
    user = User.objects.get(username="bdx.investigator")
    return subject, user


def _one_write(subject: Any, user: Any, value: float) -> None:
    from cartrial.apps import clock
    from cartrial.apps.audit.services import Actor
    from cartrial.apps.clinical.services import LabObservationInput, lab_observations_record

    now = clock.now()
    actor = Actor(user.pk, user.username, "investigator", subject.center.code, now)
    observation = LabObservationInput("crp", value, "mg/L", now - timedelta(hours=1))
    lab_observations_record(actor=actor, subject=subject, observations=[observation])


class _Unaudited:
    """`audit_record` of the clinical services replaced by a no-op, for the comparison only."""

    def __enter__(self) -> None:
        import cartrial.apps.clinical.services as clinical

        self._saved = clinical.audit_record
        clinical.audit_record = lambda **_: None  # type: ignore[assignment]

    def __exit__(self, *_: object) -> None:
        import cartrial.apps.clinical.services as clinical

        clinical.audit_record = self._saved  # type: ignore[assignment]


def write_cost(writes: int) -> tuple[list[float], list[float]]:
    """Per-write seconds, audited and unaudited, interleaved in rounds of 20 so both see the same load."""
    subject, user = _writer_fixture()
    audited: list[float] = []
    plain: list[float] = []
    for warm in range(20):
        _one_write(subject, user, 1.0 + warm)
    rounds = max(1, writes // 20)
    for round_ in range(rounds):
        for kind, store in (
            (("audited", audited), ("plain", plain))
            if round_ % 2 == 0
            else (
                ("plain", plain),
                ("audited", audited),
            )
        ):
            for index in range(20):
                value = 1.0 + (round_ * 20 + index) % 400
                if kind == "plain":
                    with _Unaudited():
                        began = time.perf_counter()
                        _one_write(subject, user, value)
                        store.append(time.perf_counter() - began)
                else:
                    began = time.perf_counter()
                    _one_write(subject, user, value)
                    store.append(time.perf_counter() - began)
    return audited, plain


# --- 4. concurrent writers ----------------------------------------------------------------------


def _writer_process(url: str, seconds: float, audited: bool, results: Any, ready: Any, go: Any) -> None:
    _django(url)
    from django.db import connection

    subject, user = _writer_fixture()
    waits: list[float] = []

    def lock_timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # The statement that takes the head row's lock: the append's first (`UPDATE ... last_sequence + 1`).
        if "auditchainhead" in sql and ("last_sequence + 1" in sql or "FOR UPDATE" in sql):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                waits.append(time.perf_counter() - began)
        return execute(sql, params, many, context)

    _one_write(subject, user, 2.0)
    latencies: list[float] = []
    ready.wait()
    go.wait()
    deadline = time.perf_counter() + seconds
    with connection.execute_wrapper(lock_timer):
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            if audited:
                _one_write(subject, user, 3.0)
            else:
                with _Unaudited():
                    _one_write(subject, user, 3.0)
            latencies.append(time.perf_counter() - began)
    results.put((latencies, waits))


def concurrent_writers(url: str, writers: int, seconds: float, audited: bool) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    ready = context.Barrier(writers + 1)
    go = context.Barrier(writers + 1)
    processes = [
        context.Process(target=_writer_process, args=(url, seconds, audited, results, ready, go))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    ready.wait()
    go.wait()
    latencies: list[float] = []
    waits: list[float] = []
    for _ in processes:
        done, waited = results.get(timeout=seconds + 120)
        latencies += done
        waits += waited
    for process in processes:
        process.join(timeout=30)
    ordered = sorted(latencies)
    return {
        "writes_per_s": len(latencies) / seconds,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p95_ms": 1000 * ordered[int(len(ordered) * 0.95)],
        "lock_wait_ms": 1000 * statistics.fmean(waits) if waits else 0.0,
        "lock_share": sum(waits) / sum(latencies) if waits else 0.0,
    }


# --- the run ------------------------------------------------------------------------------------


def _mib(kib: float) -> float:
    return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--writes", type=int, default=400, help="writes of each kind for the write cost")
    parser.add_argument("--writers", default="1,2,4,8", help="concurrent writer counts ('' to skip)")
    parser.add_argument("--writer-seconds", type=float, default=8.0)
    parser.add_argument("--verify-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.verify_child:
        verify_child(args.verify_child)
        return
    large_url = args.database_url
    small_url = large_url + "_tenth"
    tenth = args.entries // 10
    print("Audit trail cost (benchmarks/audit_chain.py)")
    print(f"  machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}")
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine)")
    for url, target in ((small_url, tenth), (large_url, args.entries)):
        _database_ensure(url)
        env = dict(os.environ, DATABASE_URL=url)
        built = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
             f"import audit_chain as a; a._build({url!r}, {target})"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(f"  {built.stdout.strip()}")
    _django(large_url)
    from django.db import connection

    from cartrial.apps.audit.models import AuditChainHead

    entries = AuditChainHead.objects.get(pk=1).last_sequence
    print()
    verdicts: list[tuple[str, bool]] = []

    # 1 and 2, side by side: raw, verify, raw again (the load changes; the better raw is the floor).
    payloads = payloads_read(entries)
    total_bytes = sum(map(len, payloads))
    connection.close()
    raw_first = raw_sha256(payloads)
    large = verify_in_child(large_url)
    raw_second = raw_sha256(payloads)
    del payloads
    small = verify_in_child(small_url)
    raw = min(raw_first, raw_second)
    mb = total_bytes / 1e6
    ratio = raw / large["seconds"]
    print(f"1. raw SHA-256 of the {entries:,} payloads ({mb:,.0f} MB), one core, hashing only:")
    print(f"     {raw_first:.2f} s and {raw_second:.2f} s  ->  {mb / raw:,.0f} MB/s, {entries / raw:,.0f} entries/s")
    print(f"2. audit_verify over {large['checked']:,} entries: {large['seconds']:.2f} s  ->  "
          f"{mb / large['seconds']:,.0f} MB/s, {large['checked'] / large['seconds']:,.0f} entries/s; "
          f"intact {large['intact']}, head {large['head'][:16]}..., "
          f"{large['progress_calls']:,} progress calls")  # fmt: skip
    print(f"     verify / raw throughput: {100 * ratio:.0f} %  (target >= 50 %)")
    verdicts.append(("verify >= 50 % of raw SHA-256 throughput", ratio >= 0.5 and large["intact"]))
    grown = {name: _mib(f["peak_kib"] - f["before_kib"]) for name, f in (("small", small), ("large", large))}
    print(f"3. verify's memory (peak resident above before the walk): "
          f"{grown['small']:.1f} MiB at {small['checked']:,} entries ({small['seconds']:.2f} s), "
          f"{grown['large']:.1f} MiB at {large['checked']:,}")  # fmt: skip
    flat = (
        grown["large"] <= FLAT_RATIO * max(grown["small"], 1.0) or grown["large"] - grown["small"] <= FLAT_ALLOWANCE_MIB
    )
    verdicts.append(("verify memory flat (N vs N/10)", flat))

    audited, plain = write_cost(args.writes)
    a50, p50 = statistics.median(audited), statistics.median(plain)
    a_mean, p_mean = statistics.fmean(audited), statistics.fmean(plain)
    print(f"4. one lab result recorded ({len(audited)} of each, interleaved), with {entries:,} entries in the trail:")
    print(f"     audited   median {1000 * a50:.2f} ms, mean {1000 * a_mean:.2f} ms")
    print(f"     unaudited median {1000 * p50:.2f} ms, mean {1000 * p_mean:.2f} ms")
    print(f"     audited / unaudited: {a50 / p50:.2f}x (median), {a_mean / p_mean:.2f}x (mean)  (target <= 1.5x)")
    verdicts.append(("audited write <= 1.5x unaudited (median)", a50 / p50 <= 1.5))

    counts = [int(x) for x in args.writers.split(",") if x.strip()]
    if counts:
        connection.close()
        print(f"5. concurrent writers, {args.writer_seconds:.0f} s each (processes; 2 CPUs shared):")
        print(f"   {'writers':>7} | {'audited/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'lock wait':>9} {'share':>6} | "
              f"{'unaudited/s':>11} {'p50 ms':>7} {'p95 ms':>7}")  # fmt: skip
        for count in counts:
            with_audit = concurrent_writers(large_url, count, args.writer_seconds, True)
            without = concurrent_writers(large_url, count, args.writer_seconds, False)
            print(f"   {count:>7} | {with_audit['writes_per_s']:>9.0f} {with_audit['p50_ms']:>7.1f} "
                  f"{with_audit['p95_ms']:>7.1f} {with_audit['lock_wait_ms']:>7.2f}ms "
                  f"{100 * with_audit['lock_share']:>5.0f}% | {without['writes_per_s']:>11.0f} "
                  f"{without['p50_ms']:>7.1f} {without['p95_ms']:>7.1f}")  # fmt: skip
        after = verify_in_child(large_url)
        print(f"   afterwards audit_verify: intact {after['intact']}, {after['checked']:,} entries")
        verdicts.append(("chain intact after the concurrent writers", after["intact"]))
    print()
    for name, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def _build(url: str, target: int) -> None:
    """In a process of its own: the skeleton, then the chain up to `target` entries."""
    _django(url)
    _skeleton()
    added, seconds = chain_extend(target)
    name = urlsplit(url).path.lstrip("/")
    if added:
        print(f"database {name}: {added:,} entries generated and loaded in {seconds:.0f} s")
    else:
        print(f"database {name}: reused (chain already at {target:,} entries or more)")


if __name__ == "__main__":
    main()
