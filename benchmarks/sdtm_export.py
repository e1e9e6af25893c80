"""SDTM export benchmark: Dataset-JSON (all datasets) and Define-XML on the demo and on generated subjects.

Run from the project root:  .venv/bin/python benchmarks/sdtm_export.py [--subjects 1000]
(On SQLite the benchmark uses temporary database files; PostgreSQL: DATABASE_URL=..., as for
benchmarks/casebook.py.)

Measures, for the demo study and then for N/10 and N generated subjects (default 1 000, built by the
casebook benchmark's generator: included, infused, visits done to M24 with every form saved; this
script adds their lab results to the lab store, two adverse events each and the lymphodepletion,
infusion and concomitant medication forms of a real course): the export's wall time, the peak of
Python memory allocated during a second, traced run of the export (tracemalloc), the size of the output and the rows per
dataset. Memory is flat when the peak at N is close to the peak at N/10. Every file written is
validated with dsjframe and the define with the Define-XML 2.1 schema.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import casebook
import dsjframe
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from lxml import etree


@dataclass
class Measure:
    label: str
    subjects: int
    seconds: float
    peak_mib: float
    megabytes: float
    rows: dict[str, int]
    define_seconds: float
    define_kib: float


def _export(label: str) -> Measure:
    from cartrial.apps.clock import now
    from cartrial.apps.exports.request import ExportFormat
    from cartrial.apps.exports.sdtm import datasetjson_write, define_write
    from cartrial.apps.exports.selectors import export_request_resolve

    folder = Path(tempfile.mkdtemp(prefix="cartrial-sdtm-"))
    request = export_request_resolve(
        scope=None, export_format=ExportFormat.DATASETJSON, now=now(), requested_by="bench"
    )
    # Timed without tracing (tracemalloc slows allocation-heavy code), then traced for the peak.
    started = time.perf_counter()
    counts = datasetjson_write(request, folder / "datasets", lambda done, total: None)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    datasetjson_write(request, folder / "traced", lambda done, total: None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows: dict[str, int] = {}
    size = 0
    for path in sorted((folder / "datasets").iterdir()):
        report = dsjframe.validate_dataset(path)
        if not report["ok"]:
            raise SystemExit(f"{path.name} is not valid: {report}")
        size += path.stat().st_size
        rows[path.stem.upper()] = sum(1 for line in path.open(encoding="utf-8") if line.startswith("["))
    started = time.perf_counter()
    define_write(request, folder / "define.xml", lambda done, total: None)
    define_seconds = time.perf_counter() - started
    schema = etree.XMLSchema(
        etree.parse(str(importlib.resources.files("odmlib.schemas") / "define" / "2.1" / "define2-1-0.xsd"))
    )
    if not schema.validate(etree.parse(str(folder / "define.xml"))):
        raise SystemExit(f"define.xml is not valid: {schema.error_log}")
    return Measure(
        label,
        counts.subjects,
        seconds,
        peak / 2**20,
        size / 1e6,
        rows,
        define_seconds,
        (folder / "define.xml").stat().st_size / 1024,
    )


def _course(world: Any, subjects: list[Any], rng: random.Random) -> None:
    """The generated subjects' lab results in the lab store, their adverse events and the forms of a
    real course (lymphodepletion, infusion, medications), which the generic generator leaves empty."""
    from cartrial.apps.casebook.models import FormRecord
    from cartrial.apps.clinical.models import LabObservation
    from cartrial.apps.safety.models import AdverseEvent

    protocol = world.protocol
    coordinator = world.users["bdx.coordinator"]
    analytes = {
        code: {item.name: item.analyte for item in form.items if item.analyte}
        for code, form in protocol.forms.items()
        if any(item.analyte for item in form.items)
    }
    done = {(s, v): d for s, v, d in casebook_visits(subjects)}
    labs, updated = [], []
    for record in FormRecord.objects.filter(subject__in=subjects).select_related("subject"):
        day = done.get((record.subject_id, record.visit_code))
        infused = record.subject.infusion_date
        if record.form_code in analytes and day is not None:
            sampled = datetime.combine(day, day_time(7, 30), tzinfo=UTC)
            for item, analyte in analytes[record.form_code].items():
                value = record.values_json.get(item)
                if isinstance(value, dict) and value.get("value") is not None:
                    labs.append(
                        LabObservation(
                            subject_id=record.subject_id,
                            analyte=analyte,
                            value=value["value"] * rng.uniform(0.8, 1.2),
                            unit=value["unit"],
                            lower_limit=value.get("lower_limit"),
                            upper_limit=value.get("upper_limit"),
                            sampled_at=sampled,
                            context="casebook",
                            recorded_by=coordinator,
                            recorded_at=sampled,
                            protocol_version=world.version,
                        )
                    )
        elif record.form_code == "lymphodepletion" and infused:
            record.values_json = {
                "regimen": "flu_cy",
                "fludarabine_mg_per_m2_per_day": 25,
                "cyclophosphamide_mg_per_m2_per_day": 250,
                "days": 3,
                "start_date": (infused - timedelta(days=5)).isoformat(),
            }
            updated.append(record)
        elif record.form_code == "infusion" and infused:
            record.values_json = {
                "dose_cells_per_kg": 1_000_000.0,
                "infusion_date": infused.isoformat(),
                "infusion_start_time": "10:15",
            }
            updated.append(record)
        elif record.form_code == "concomitant_medications" and infused:
            record.values_json = {
                "medications": [
                    {
                        "medication": "hydroxychloroquine",
                        "dose": 200,
                        "dose_unit": "mg",
                        "route": "oral",
                        "start_date": "2019-05-01",
                        "ongoing": True,
                    },
                    {
                        "medication": "valaciclovir",
                        "dose": 500,
                        "dose_unit": "mg",
                        "route": "oral",
                        "start_date": (infused - timedelta(days=5)).isoformat(),
                        "ongoing": True,
                    },
                ]
            }
            updated.append(record)
    LabObservation.objects.bulk_create(labs, batch_size=5000)
    FormRecord.objects.bulk_update(updated, ["values_json"], batch_size=2000)
    events = []
    for subject in subjects:
        if subject.infusion_date is None:
            continue
        for term, grade, start in (("cytokine_release_syndrome", 1, 1), ("neutrophil_count_decreased", 3, 4)):
            onset = subject.infusion_date + timedelta(days=start)
            events.append(
                AdverseEvent(
                    subject=subject,
                    term=term,
                    ctcae_version="5.0",
                    grade=grade,
                    start_date=onset,
                    end_date=onset + timedelta(days=3),
                    relatedness_cart="probable",
                    action="treatment",
                    outcome="recovered",
                    recorded_by=coordinator,
                    recorded_at=datetime.combine(onset, day_time(12), tzinfo=UTC),
                )
            )
    AdverseEvent.objects.bulk_create(events, batch_size=2000)


def casebook_visits(subjects: list[Any]) -> list[tuple[int, str, Any]]:
    from cartrial.apps.casebook.models import VisitRecord

    return list(
        VisitRecord.objects.filter(subject__in=subjects, done_on__isnull=False).values_list(
            "subject_id", "visit_code", "done_on"
        )
    )


def _report(measures: list[Measure]) -> None:
    print(
        f"  {'data':<22}{'subjects':>9}{'time s':>9}{'peak MiB':>10}{'output MB':>11}{'define s':>10}{'define KiB':>11}"
    )
    for m in measures:
        print(
            f"  {m.label:<22}{m.subjects:>9,}{m.seconds:>9.2f}{m.peak_mib:>10.1f}{m.megabytes:>11.2f}"
            f"{m.define_seconds:>10.2f}{m.define_kib:>11.0f}"
        )
    print()
    names = sorted({name for m in measures for name in m.rows})
    print(
        "  rows: " + "; ".join(f"{m.label}: " + ", ".join(f"{n} {m.rows.get(n, 0):,}" for n in names) for m in measures)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if not settings.CARTRIAL_IDENTITY_KEY:
        settings.CARTRIAL_IDENTITY_KEY = Fernet.generate_key().decode("ascii")
    rng = random.Random(arguments.seed)
    measures = []
    print("SDTM export benchmark (benchmarks/sdtm_export.py)")
    print(f"  {os.cpu_count()} CPUs; database {connection.vendor}")

    from cartrial.demo import build_demo, demo_epoch
    from cartrial.protocols import active_protocol

    _, old_name = casebook.test_database()
    try:
        build_demo(active_protocol(), today=demo_epoch())
        measures.append(_export("demo"))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    _, old_name = casebook.test_database()
    try:
        world = casebook.world_create()
        casebook.subjects_add(world, arguments.subjects // 10, rng)
        _course(world, world.subjects, rng)
        measures.append(_export("generated N/10"))
        first = len(world.subjects)
        casebook.subjects_add(world, arguments.subjects - arguments.subjects // 10, rng)
        _course(world, world.subjects[first:], rng)
        measures.append(_export("generated N"))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    _report(measures)


if __name__ == "__main__":
    main()
