"""Tables export benchmark: size, time and peak memory of `cartrial export csv` on the demo and at scale.

Run from the project root:  .venv/bin/python benchmarks/export_tables.py [--subjects 1000]
(PostgreSQL: DATABASE_URL=postgres://user@host:5432/name; the benchmark creates its own database,
named by CARTRIAL_TEST_DB_NAME or `cartrial_bench_casebook`, and drops it at the end; on SQLite it
uses a temporary file.)

Exports the demo study, then N/10 and N (default 1 000) generated subjects with their visits done and
forms saved to M24 (`benchmarks/casebook.py`'s generator), through the writer the runner calls
(`apps/exports/tables.tables_write`). At each size it prints the rows written, the folder's size (CSV
and Parquet), the wall time, and the peak memory of the export: Python's allocations (tracemalloc, in
a second run, as tracing slows Python down) and Arrow's (a memory pool of its own for the run). The
writer holds at most `BATCH_ROWS` rows per table as Python tuples and `ROW_GROUP_ROWS` in Arrow, so
its memory rises until the largest tables reach those caps, then stays flat: the peak at N must stay
within FLAT_FACTOR of the peak at N/2 while the data double (a writer holding every row would double
it). Prints PASS or FAIL.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# The casebook benchmark sets Django up (test settings) when imported, and generates the subjects.
from casebook import LAST_VISIT, subjects_add, test_database, world_create
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.db import connection

# A peak at N within this factor of the peak at N/2 counts as flat (the data double).
FLAT_FACTOR = 1.5


@dataclass(frozen=True)
class Measure:
    label: str
    subjects: int
    rows: int
    csv_bytes: int
    parquet_bytes: int
    seconds: float
    python_peak_bytes: int
    arrow_peak_bytes: int

    @property
    def peak_bytes(self) -> int:
        return self.python_peak_bytes + self.arrow_peak_bytes


def export_measure(label: str) -> Measure:
    import pyarrow as pa

    from cartrial.apps.exports.request import ExportFormat
    from cartrial.apps.exports.selectors import export_request_resolve
    from cartrial.apps.exports.tables import tables_write

    request = export_request_resolve(
        scope=None, export_format=ExportFormat.CSV, now=datetime.now(UTC), requested_by="benchmark"
    )
    folder = Path(tempfile.mkdtemp(prefix="cartrial-tables-"))
    try:
        started = time.perf_counter()
        counts = tables_write(request, folder / "timed", lambda done, total: None)
        seconds = time.perf_counter() - started
        default_pool = pa.default_memory_pool()
        pool = pa.proxy_memory_pool(default_pool)
        pa.set_memory_pool(pool)
        try:
            tables_write(request, folder / "arrow", lambda done, total: None)
        finally:
            pa.set_memory_pool(default_pool)
        files = list((folder / "timed").iterdir())
        csv_bytes = sum(f.stat().st_size for f in files if f.suffix == ".csv")
        parquet_bytes = sum(f.stat().st_size for f in files if f.suffix == ".parquet")
        tracemalloc.start()
        tables_write(request, folder / "traced", lambda done, total: None)
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        shutil.rmtree(folder)
    arrow_peak = pool.max_memory()
    return Measure(label, counts.subjects, counts.records, csv_bytes, parquet_bytes, seconds, python_peak, arrow_peak)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000, help="subjects at full size (a tenth measured first)")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # set-up only, not measured
    if not settings.CARTRIAL_IDENTITY_KEY:
        settings.CARTRIAL_IDENTITY_KEY = Fernet.generate_key().decode("ascii")
    rng = random.Random(arguments.seed)
    name, old_name = test_database()
    try:
        from cartrial.demo import build_demo, demo_epoch
        from cartrial.protocols import active_protocol

        print("Tables export benchmark (benchmarks/export_tables.py)")
        print(f"  database {connection.vendor}; forms saved to {LAST_VISIT} for the generated subjects")
        build_demo(active_protocol(), today=demo_epoch())
        measures = [export_measure("demo")]
        call_command("flush", interactive=False, verbosity=0)
        world = world_create()
        for size in (arguments.subjects // 10, arguments.subjects // 2, arguments.subjects):
            subjects_add(world, size - len(world.subjects), rng)
            measures.append(export_measure(f"{size} subjects"))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print()
    print("| data | subjects | rows | CSV | Parquet | time | peak memory (Python + Arrow) |")
    print("|---|---|---|---|---|---|---|")
    for m in measures:
        print(
            f"| {m.label} | {m.subjects:,} | {m.rows:,} | {megabytes(m.csv_bytes)} | {megabytes(m.parquet_bytes)} "
            f"| {m.seconds:.1f} s | {megabytes(m.peak_bytes)} ({megabytes(m.python_peak_bytes)} + "
            f"{megabytes(m.arrow_peak_bytes)}) |"
        )
    half, full = measures[-2], measures[-1]
    flat = full.peak_bytes <= FLAT_FACTOR * half.peak_bytes
    print()
    print(
        f"  peak memory at {full.label} / at {half.label}: "
        f"{full.peak_bytes / half.peak_bytes:.2f} (flat: ≤ {FLAT_FACTOR}) {'PASS' if flat else 'FAIL'}"
    )
    print(f"  database {name} dropped")
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
