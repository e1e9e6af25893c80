"""Exports benchmark: size, time and peak memory of every export format, on the demo and on generated
studies of N/10 then N subjects (default 1 000), side by side.

Run from the project root:  .venv/bin/python benchmarks/exports.py [--subjects 1000] [--formats odm,fhir]
(PostgreSQL: DATABASE_URL=postgres://user@host:5432/name; the benchmark creates its own databases,
named `cartrial_bench_exports_*`, and drops them at the end; on SQLite it uses temporary files.)

Each export runs in a process of its own (`--child`), as `cartrial export` does, against the
benchmark's database: its wall time, the size of what it wrote, the process's peak resident memory,
and the export's own memory: the highest resident memory sampled (every 10 ms) while it runs, above
the resident memory just before it (Django, the writers' libraries and the protocol loaded).
Streaming is proven by the ratio of that own memory at N and at N/10 subjects (flat: ≤ 1.5, or
within 32 MiB); time grows with the data (a ratio near 10).
The generated subjects (benchmarks/casebook.py) are included and infused at staggered dates, with
their visits done and every form saved to M24, two adverse events each and five lab results per
done visit (bulk-created: no item history in the audit trail, which the demo has).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.test_settings")

FORMATS = ("odm", "define", "datasetjson", "fhir", "usdm", "csv")
FOLDERS = {"datasetjson", "csv"}
FLAT_RATIO = 1.5
FLAT_ALLOWANCE_MIB = 32.0


def _peak_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _resident_kib() -> int:
    """The process's resident memory now (Linux: /proc/self/statm, in pages)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class _ResidentPeak:
    """The highest resident memory seen while the export runs, sampled every 10 ms in a thread: the
    process's lifetime peak (ru_maxrss) is reached while loading the libraries, before any export."""

    def __init__(self) -> None:
        self.peak = _resident_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _resident_kib())

    def __enter__(self) -> _ResidentPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _resident_kib())


def child(export_format: str, out: Path) -> None:
    """One export in this process: print its figures as one JSON line."""
    import django

    django.setup()
    from cartrial.apps import clock
    from cartrial.apps.exports.jobs import export_format_parse
    from cartrial.apps.exports.selectors import export_request_resolve
    from cartrial.apps.exports.services import export_write
    from cartrial.protocols import active_protocol

    active_protocol()
    request = export_request_resolve(
        scope=None, export_format=export_format_parse(export_format), now=clock.now(), requested_by="benchmark"
    )
    gc.collect()
    baseline = _resident_kib()
    started = time.perf_counter()
    with _ResidentPeak() as sampled:
        result = export_write(request, out, lambda done, total: None)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "format": export_format,
                "seconds": seconds,
                "peak_kib": _peak_kib(),
                "own_kib": max(0, sampled.peak - baseline),
                "size": result.size,
                "subjects": result.counts.subjects,
                "records": result.counts.records,
            }
        )
    )


def _database(label: str) -> tuple[str, str, str]:
    """Create and migrate a benchmark database; (its name, the configured name, its URL for children)."""
    from django.db import connection

    test_settings = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        test_settings["NAME"] = os.path.join(tempfile.mkdtemp(prefix="cartrial-bench-"), f"{label}.sqlite3")
    else:
        test_settings["NAME"] = f"cartrial_bench_exports_{label}"
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    if connection.vendor == "sqlite":
        url = f"sqlite:///{name}"
    else:
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        url = f"{base}/{name}"
    return name, old_name, url


def _close(old_name: str) -> None:
    from django.db import connection

    connection.creation.destroy_test_db(old_name, verbosity=0)


# Adverse events of each generated subject (term, grade, days after D0, days it lasted) and the labs
# of each done visit: the SDTM AE and LB domains, the FHIR AdverseEvent and Observation resources.
GENERATED_EVENTS = (("cytokine_release_syndrome", 1, 1, 3), ("neutrophil_count_decreased", 3, 5, 14))
GENERATED_LABS = (
    ("wbc", 5.2, "10^9/L"),
    ("neutrophils", 3.1, "10^9/L"),
    ("b_cells", 120.0, "cells/µL"),
    ("anti_dsdna", 35.0, "IU/mL"),
    ("car_t", 4000.0, "copies/µg"),
)


def events_and_labs_add(world: Any, subjects: list[Any]) -> None:
    """The generated subjects' adverse events and visit labs, bulk-created (set-up, not measured)."""
    from datetime import UTC, datetime, timedelta

    from cartrial.apps.casebook.models import VisitRecord
    from cartrial.apps.clinical.models import LabObservation
    from cartrial.apps.safety.models import AdverseEvent

    investigator = world.users["bdx.investigator"]
    events, labs = [], []
    for subject in subjects:
        d0 = subject.infusion_date
        recorded = datetime.combine(d0, datetime.min.time(), tzinfo=UTC) + timedelta(days=20)
        for term, grade, start, days in GENERATED_EVENTS:
            events.append(
                AdverseEvent(
                    subject=subject,
                    term=term,
                    ctcae_version="5.0",
                    grade=grade,
                    start_date=d0 + timedelta(days=start),
                    end_date=d0 + timedelta(days=start + days),
                    relatedness_cart="probable",
                    action="treatment",
                    outcome="recovered",
                    recorded_by=investigator,
                    recorded_at=recorded,
                )
            )
        done = VisitRecord.objects.filter(subject=subject, outcome="done").values_list("done_on", flat=True)
        for day in done:
            sampled = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
            for analyte, value, unit in GENERATED_LABS:
                labs.append(
                    LabObservation(
                        subject=subject,
                        analyte=analyte,
                        value=value,
                        unit=unit,
                        sampled_at=sampled,
                        context="follow_up",
                        recorded_by=investigator,
                        recorded_at=sampled + timedelta(hours=6),
                        protocol_version=world.version,
                    )
                )
    AdverseEvent.objects.bulk_create(events, batch_size=2000)
    LabObservation.objects.bulk_create(labs, batch_size=2000)


def _run_children(url: str, formats: list[str], folder: Path) -> dict[str, dict[str, Any]]:
    """Every format exported by its own process from the database at `url`."""
    from django.conf import settings

    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "CARTRIAL_IDENTITY_KEY": settings.CARTRIAL_IDENTITY_KEY,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
    }
    figures = {}
    folder.mkdir(parents=True, exist_ok=True)
    for export_format in formats:
        out = folder / (export_format if export_format in FOLDERS else f"{export_format}.out")
        completed = subprocess.run(
            [sys.executable, __file__, "--child", export_format, "--out", str(out)],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            figures[export_format] = {"error": (completed.stderr.strip().splitlines() or ["?"])[-1]}
            continue
        figures[export_format] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def _row(label: str, export_format: str, figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"  {label:<10} {export_format:<12} FAILED: {figures['error']}"
    return (
        f"  {label:<10} {export_format:<12} {figures['subjects']:>8,} {figures['records']:>10,} "
        f"{figures['size'] / 1e6:>9.2f} {figures['seconds']:>8.2f} {figures['peak_kib'] / 1024:>9.0f} "
        f"{figures['own_kib'] / 1024:>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.out)
        return

    import django

    django.setup()
    from cryptography.fernet import Fernet
    from django.conf import settings
    from django.db import connection

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from casebook import subjects_add, world_create

    from cartrial.demo import build_demo, demo_epoch
    from cartrial.protocols import active_protocol

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # set-up only
    if not settings.CARTRIAL_IDENTITY_KEY:
        settings.CARTRIAL_IDENTITY_KEY = Fernet.generate_key().decode("ascii")
    formats = [f for f in arguments.formats.split(",") if f]
    small_count = arguments.subjects // 10
    rng = random.Random(arguments.seed)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cartrial-bench-exports-") as scratch:
        _, old_name, url = _database("demo")
        try:
            build_demo(active_protocol(), today=demo_epoch())
            results["demo"] = _run_children(url, formats, Path(scratch) / "demo")
        finally:
            _close(old_name)
        _, old_name, url = _database("generated")
        try:
            world = world_create()
            subjects_add(world, small_count, rng)
            events_and_labs_add(world, world.subjects)
            results[f"{small_count}"] = _run_children(url, formats, Path(scratch) / "small")
            subjects_add(world, arguments.subjects - small_count, rng)
            events_and_labs_add(world, world.subjects[small_count:])
            results[f"{arguments.subjects}"] = _run_children(url, formats, Path(scratch) / "large")
        finally:
            _close(old_name)

    print("Exports benchmark (benchmarks/exports.py)")
    print(
        f"  machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"Django {django.get_version()}; database {connection.vendor}; run {time.perf_counter() - started:.0f} s"
    )
    print()
    header = ("data", "format", "subjects", "records", "size MB", "time s", "peak MiB", "own MiB")
    print("  {:<10} {:<12} {:>8} {:>10} {:>9} {:>8} {:>9} {:>8}".format(*header))
    for label, by_format in results.items():
        for export_format in formats:
            print(_row(label, export_format, by_format[export_format]))
    print()
    small, large = results[f"{small_count}"], results[f"{arguments.subjects}"]
    passed = True
    print(
        f"  {small_count} → {arguments.subjects} subjects, side by side in this run (export's own memory flat: "
        f"ratio ≤ {FLAT_RATIO} or within {FLAT_ALLOWANCE_MIB:.0f} MiB)"
    )
    for export_format in formats:
        a, b = small[export_format], large[export_format]
        if "error" in a or "error" in b:
            passed = False
            print(f"  {export_format:<12} FAIL (an export failed)")
            continue
        own_a, own_b = a["own_kib"] / 1024, b["own_kib"] / 1024
        ratio = own_b / own_a if own_a > 0 else float("inf") if own_b > 0 else 1.0
        flat = ratio <= FLAT_RATIO or own_b - own_a <= FLAT_ALLOWANCE_MIB
        passed &= flat
        print(
            f"  {export_format:<12} time ×{b['seconds'] / max(a['seconds'], 1e-9):.1f}  "
            f"size ×{b['size'] / max(a['size'], 1):.1f}  "
            f"own memory {own_a:.1f} → {own_b:.1f} MiB (×{ratio:.2f}) {'PASS' if flat else 'FAIL'}"
        )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
