"""Casebook benchmark: form saves, the study grid, the API visit list and a center's worklist at scale.

Run from the project root:  .venv/bin/python benchmarks/casebook.py [--subjects 1000]
(PostgreSQL: DATABASE_URL=postgres://user@host:5432/name; the benchmark creates its own database,
named by CARTRIAL_TEST_DB_NAME or `cartrial_bench_casebook`, and drops it at the end; on SQLite it
uses a temporary file.)

Builds N/10 subjects, then N (default 1 000), included and infused at staggered dates with their
visits done and forms saved up to M24 (set-up by bulk_create; every timed operation goes through
the real API and pages with Django's test client, middleware included). At each size it measures,
side by side: a form save through the API PUT (audit entries, edit checks opening and closing
queries, lab items to the lab store), the study grid page, the API visit list of a subject and a
center's worklist page (p50/p95 server time), and the number of SQL queries of the grid, the
worklist and the visit list (equal at N/10 and N: bounded). Prints PASS/FAIL against the targets
of issue 9 (save p95 ≤ 50 ms, grid and worklist p95 ≤ 200 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.test_settings")

import django

django.setup()

from cryptography.fernet import Fernet  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

SAVE_TARGET_MS = 50.0
PAGE_TARGET_MS = 200.0
LAST_VISIT = "M24"
CLINICAL_CENTERS = ("BDX", "LIL", "PAR", "STR", "MTL")
VITALS = {
    "temperature_c": 37.0,
    "heart_rate_bpm": 72,
    "systolic_bp_mmhg": 120,
    "diastolic_bp_mmhg": 75,
    "spo2_pct": 98,
    "weight_kg": 62.0,
}
# Steps of the pathway written for each subject (day from inclusion, step, state reached).
PATHWAY: tuple[tuple[int, str, str, str], ...] = (
    (-45, "start_screening", "pre_screening", "screening"),
    (-2, "confirm_eligibility", "screening", "eligible"),
    (0, "include", "eligible", "included"),
    (1, "schedule_apheresis", "included", "apheresis_scheduled"),
    (7, "collect_apheresis", "apheresis_scheduled", "apheresis_collected"),
    (7, "ship_material", "apheresis_collected", "material_shipped"),
    (8, "start_manufacturing", "material_shipped", "manufacturing"),
    (22, "release_product", "manufacturing", "product_released"),
    (24, "ship_product", "product_released", "product_shipped"),
    (25, "receive_product", "product_shipped", "product_received"),
    (30, "start_lymphodepletion", "product_received", "lymphodepletion"),
    (35, "infuse", "lymphodepletion", "infused"),
    (35, "start_acute_monitoring", "infused", "acute_monitoring"),
    (63, "start_follow_up", "acute_monitoring", "follow_up"),
)
INFUSION_AFTER_INCLUSION = 35
# Typical values of the lab items (their default units); other number items take their range's middle.
TYPICAL = {
    "anc": 4.0,
    "lymphocytes": 1.5,
    "platelets": 250.0,
    "haemoglobin": 125.0,
    "creatinine": 70.0,
    "alt": 25.0,
    "ast": 25.0,
    "bilirubin": 10.0,
    "crp": 3.0,
    "ferritin": 120.0,
    "ldh": 200.0,
    "anti_dsdna": 20.0,
    "c3": 1.0,
    "c4": 0.2,
    "igg": 9.0,
    "b_cells": 150.0,
    "car_t_cells": 10.0,
    "car_t_copies": 1000.0,
    "upcr": 20.0,
}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 100 values is the 95th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


# --- the database -------------------------------------------------------------------------------


def test_database() -> tuple[str, str]:
    """Create the benchmark's own database (migrated) and return (its name, the configured name)."""
    test_settings = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        test_settings["NAME"] = os.path.join(tempfile.mkdtemp(prefix="cartrial-bench-"), "casebook.sqlite3")
    else:
        test_settings["NAME"] = os.environ.get("CARTRIAL_TEST_DB_NAME") or "cartrial_bench_casebook"
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return name, old_name


@dataclass
class World:
    protocol: Any
    version: Any
    centers: dict[str, Any]
    users: dict[str, Any]
    form_values: dict[str, tuple[dict[str, Any], str]]
    subjects: list[Any] = field(default_factory=list)
    # (subject code, visit) whose vital signs are not entered yet: the first saves to time.
    open_vitals: list[tuple[str, str]] = field(default_factory=list)
    # (subject code, visit) whose forms are all saved: the corrections to time.
    saved_visits: list[tuple[str, str]] = field(default_factory=list)


def plausible_values(protocol: Any) -> dict[str, tuple[dict[str, Any], str]]:
    """Cleaned values and status of each form, from its items' ranges through the engine itself."""
    from cartrial.domain.casebook import saved_status
    from cartrial.domain.ecrf import FormContext, form_values_check
    from cartrial.domain.ecrf.definitions import ItemType
    from cartrial.domain.errors import InvalidInput

    context = FormContext(visit_code="M3", done_on=date(2026, 1, 1), sex="female", age_years=40)
    result = {}
    for code, form in protocol.forms.items():
        raw: dict[str, Any] = {}
        for group in form.groups:
            if group.repeating:
                continue
            for item in group.items:
                if item.derived or item.type not in (ItemType.NUMBER, ItemType.INTEGER):
                    continue
                if item.name in TYPICAL:
                    value: float = TYPICAL[item.name]
                elif item.minimum is not None and item.maximum is not None:
                    value = (item.minimum + item.maximum) / 2
                else:
                    value = 5.0
                raw[item.name] = int(value) if item.type is ItemType.INTEGER else value
        raw.update({k: v for k, v in VITALS.items() if code == "vital_signs"})
        for _ in range(len(raw) + 1):
            try:
                cleaned = form_values_check(form, raw, context)
                break
            except InvalidInput as error:
                raw.pop(str(error.item), None)
        result[code] = (dict(cleaned.values), saved_status(cleaned.missing, (), cleaned.values).value)
    return result


def world_create() -> World:
    from cartrial.apps.subjects.services import protocol_version_of
    from cartrial.demo import build_centers_and_users
    from cartrial.protocols import active_protocol

    protocol = active_protocol()
    centers, users = build_centers_and_users(protocol)
    return World(protocol, protocol_version_of(protocol), centers, users, plausible_values(protocol))


def subjects_add(world: World, count: int, rng: random.Random) -> None:
    """`count` more subjects, included and infused 20 to 800 days ago, their visits done to M24
    (some missed, the last one sometimes overdue), every form saved but the last visit's vital signs."""
    from cartrial.apps.casebook.models import FormRecord, Query, VisitRecord
    from cartrial.apps.clinical.models import ScreeningRecord
    from cartrial.apps.subjects.identity_crypto import hospital_number_digests, identity_encrypt
    from cartrial.apps.subjects.models import PathwayEvent, Subject, SubjectIdentity
    from cartrial.demo import DEMO_SCREENING_DATA
    from cartrial.domain.patient_identity import hospital_number_key
    from cartrial.domain.visits import AnchorDates, visit_schedule

    now = datetime.now(UTC)
    today = now.date()
    coordinator = world.users["bdx.coordinator"]
    start = len(world.subjects)
    numbers = {code: sum(1 for s in world.subjects if s.center.code == code) for code in CLINICAL_CENTERS}
    new = []
    for index in range(start, start + count):
        center_code = CLINICAL_CENTERS[index % len(CLINICAL_CENTERS)]
        numbers[center_code] += 1
        infusion = today - timedelta(days=rng.randint(20, 800))
        inclusion = infusion - timedelta(days=INFUSION_AFTER_INCLUSION)
        created = datetime.combine(inclusion - timedelta(days=45), datetime.min.time(), tzinfo=UTC)
        new.append(
            Subject(
                center=world.centers[center_code],
                manufacturing_site=world.centers["LAB"],
                number=numbers[center_code],
                code=f"{center_code}-{numbers[center_code]:03d}",
                state="long_term_follow_up" if (today - infusion).days > 730 else "follow_up",
                protocol_version=world.version,
                synthetic=True,
                created_at=created,
                infusion_date=infusion,
                apheresis_date=inclusion + timedelta(days=7),
                state_changed_at=created,
            )
        )
    Subject.objects.bulk_create(new)
    new = list(Subject.objects.filter(code__in=[s.code for s in new]).select_related("center"))
    identities, screenings, events, visits, forms, queries = [], [], [], [], [], []
    last_index = next(i for i, v in enumerate(world.protocol.visits) if v.code == LAST_VISIT)
    for subject in new:
        hospital_number = f"IPP{subject.pk:07d}"
        identities.append(
            SubjectIdentity(
                subject=subject,
                ciphertext=identity_encrypt(
                    {
                        "family_name": "Benchpatient",
                        "given_names": f"Ann {subject.pk}",
                        "birth_date": "1985-03-14",
                        "hospital_number": hospital_number,
                    }
                ),
                hospital_number_digest=hospital_number_digests(
                    subject.center.code, hospital_number_key(hospital_number)
                )[0],
            )
        )
        screenings.append(
            ScreeningRecord(
                subject=subject,
                data_json=DEMO_SCREENING_DATA,
                recorded_by=coordinator,
                first_recorded_at=subject.created_at,
                updated_at=subject.created_at,
                protocol_version=world.version,
            )
        )
        assert subject.infusion_date is not None
        inclusion = subject.infusion_date - timedelta(days=INFUSION_AFTER_INCLUSION)
        for day, step, before, after in PATHWAY:
            moment = datetime.combine(inclusion + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
            if moment.date() > today:
                break
            events.append(
                PathwayEvent(
                    subject=subject,
                    step=step,
                    from_state=before,
                    to_state=after,
                    occurred_at=moment + timedelta(hours=10),
                    actor=coordinator,
                    role="coordinator",
                    center_code=subject.center.code,
                )
            )
        schedule = visit_schedule(
            world.protocol.visits[: last_index + 1], AnchorDates(inclusion=inclusion, infusion=subject.infusion_date)
        )
        due = [s for s in schedule if s.target is not None and s.target < today]
        if rng.random() < 0.15:
            due = due[:-1]  # the last visit due is not recorded yet: overdue or due on the worklist
        for position, scheduled in enumerate(due):
            code = scheduled.definition.code
            assert scheduled.target is not None
            moment = datetime.combine(scheduled.target, datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
            if 0 < position < len(due) - 1 and rng.random() < 0.02:
                visits.append(
                    VisitRecord(
                        subject=subject,
                        visit_code=code,
                        outcome="missed",
                        missed_reason="Subject unreachable",
                        recorded_by=coordinator,
                        recorded_at=moment,
                    )
                )
                continue
            visits.append(
                VisitRecord(
                    subject=subject,
                    visit_code=code,
                    outcome="done",
                    done_on=scheduled.target,
                    recorded_by=coordinator,
                    recorded_at=moment,
                )
            )
            last = position == len(due) - 1
            for form_code in scheduled.definition.forms:
                if last and form_code == "vital_signs":
                    continue
                values, status = world.form_values[form_code]
                forms.append(
                    FormRecord(
                        subject=subject,
                        visit_code=code,
                        form_code=form_code,
                        status=status,
                        values_json=values,
                        protocol_version=world.version,
                        created_by=coordinator,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
            if last and "vital_signs" in scheduled.definition.forms:
                world.open_vitals.append((subject.code, code))
            elif not last and "haematology" in scheduled.definition.forms:
                world.saved_visits.append((subject.code, code))
            if rng.random() < 0.01:
                queries.append(
                    Query(
                        subject=subject,
                        visit_code=code,
                        form_code=scheduled.definition.forms[0],
                        item="weight_kg",
                        origin="manual",
                        status="open",
                        text="Please check against the source document.",
                        raised_at=moment,
                        updated_at=moment,
                    )
                )
    SubjectIdentity.objects.bulk_create(identities, batch_size=2000)
    ScreeningRecord.objects.bulk_create(screenings, batch_size=2000)
    PathwayEvent.objects.bulk_create(events, batch_size=2000)
    VisitRecord.objects.bulk_create(visits, batch_size=2000)
    FormRecord.objects.bulk_create(forms, batch_size=2000)
    Query.objects.bulk_create(queries, batch_size=2000)
    world.subjects.extend(new)


# --- the measures -------------------------------------------------------------------------------


def api_client(world: World, username: str) -> Client:
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system("benchmark"), user=world.users[username], label="benchmark")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def page_client(world: World, username: str) -> Client:
    client = Client()
    client.force_login(world.users[username])
    return client


def timed(request: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = request()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        sys.exit(f"request refused: {response.status_code} {response.content[:300]!r}")
    return elapsed, response


def query_count(request: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200, response.status_code
    return len(captured.captured_queries)


@dataclass
class Measures:
    subjects: int
    visits: int
    forms: int
    saves: dict[str, list[float]] = field(default_factory=dict)
    save_queries: dict[str, float] = field(default_factory=dict)
    reads: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def put(client: Client, path: str, body: dict[str, Any]) -> Callable[[], Any]:
    return lambda: client.put(f"/api/v1{path}", json.dumps(body), content_type="application/json")


def measure(world: World, saves: int, reads: int, rng: random.Random) -> Measures:
    from cartrial.apps.casebook.models import FormRecord, VisitRecord

    result = Measures(len(world.subjects), VisitRecord.objects.count(), FormRecord.objects.count())
    coordinators = {code: api_client(world, f"{code.lower()}.coordinator") for code in CLINICAL_CENTERS}

    def client_of(subject_code: str) -> Client:
        return coordinators[subject_code.split("-")[0]]

    per_kind = max(1, saves // 4)
    kinds: dict[str, list[Callable[[], Any]]] = {k: [] for k in ("first", "check", "fix", "lab")}
    firsts = rng.sample(world.open_vitals, min(per_kind + 1, len(world.open_vitals)))
    for code, visit in firsts:
        path = f"/subjects/{code}/visits/{visit}/forms/vital_signs"
        kinds["first"].append(put(client_of(code), path, {"items": VITALS}))
    timed(kinds["first"].pop())  # warm-up: the first save of the process imports and compiles
    # A correction that fails the edit check (opens a query), then its fix (closes it).
    for code, visit in [world.saved_visits[rng.randrange(len(world.saved_visits))] for _ in range(per_kind)]:
        path = f"/subjects/{code}/visits/{visit}/forms/vital_signs"
        wrong = {**VITALS, "diastolic_bp_mmhg": 130}
        kinds["check"].append(put(client_of(code), path, {"items": wrong, "reason": "transcription"}))
        kinds["fix"].append(put(client_of(code), path, {"items": VITALS, "reason": "typo: 130 for 75"}))
    for code, visit in [world.saved_visits[rng.randrange(len(world.saved_visits))] for _ in range(per_kind)]:
        values = dict(world.form_values["haematology"][0])
        values["platelets"] = {**values["platelets"], "value": round(rng.uniform(150, 350))}
        path = f"/subjects/{code}/visits/{visit}/forms/haematology"
        kinds["lab"].append(put(client_of(code), path, {"items": values, "reason": "lab report received"}))
    for kind in kinds:
        result.saves[kind] = []
    counts: dict[str, list[int]] = {kind: [] for kind in kinds}
    for index in range(per_kind):
        for kind in ("first", "check", "fix", "lab"):
            if index >= len(kinds[kind]):
                continue
            if index % 10 == 9:  # every tenth save counted, not timed (capturing slows it)
                counts[kind].append(query_count(kinds[kind][index]))
                continue
            elapsed, response = timed(kinds[kind][index])
            body = response.json()
            if kind == "check" and not body["queries_opened"]:
                sys.exit("the edit check did not open a query")
            result.saves[kind].append(elapsed)
    result.save_queries = {k: statistics.median(v) for k, v in counts.items() if v}

    manager, coordinator = page_client(world, "dm.datamanager"), page_client(world, "bdx.coordinator")
    api = api_client(world, "dm.datamanager")
    codes = [s.code for s in world.subjects]
    picked = [codes[rng.randrange(len(codes))] for _ in range(reads)]
    requests: dict[str, Callable[[int], Any]] = {
        "grid": lambda _: manager.get("/casebook/"),
        "worklist": lambda _: coordinator.get("/casebook/worklist/"),
        "visits": lambda i: api.get(f"/api/v1/subjects/{picked[i]}/visits"),
    }
    for name, request in requests.items():
        request(0)  # warm-up: templates compiled, caches filled
        result.reads[name] = [timed(lambda i=i, request=request: request(i))[0] for i in range(reads)]
        result.counts[name] = query_count(lambda request=request: request(0))
    return result


# --- the report ---------------------------------------------------------------------------------


SAVE_LABELS = {
    "first": "form save, first entry (vital signs)",
    "check": "correction failing an edit check (+query)",
    "fix": "correction fixing it (query closed)",
    "lab": "correction of lab items (lab store)",
}
READ_LABELS = {
    "grid": "study grid page (all centers)",
    "worklist": "center worklist page (BDX)",
    "visits": "API visits list of one subject",
}


def report(small: Measures, large: Measures) -> bool:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):7.1f} {percentile(values, 0.95):7.1f}"

    print(f"{'':46}{'N = ' + format(small.subjects, ','):>17}{'N = ' + format(large.subjects, ','):>19}{'ratio':>8}")
    print(f"{'':46}{'p50 ms  p95 ms':>17}{'p50 ms  p95 ms':>19}{'p95':>8}")
    all_small = [t for v in small.saves.values() for t in v]
    all_large = [t for v in large.saves.values() for t in v]
    for kind, label in SAVE_LABELS.items():
        ratio = percentile(large.saves[kind], 0.95) / percentile(small.saves[kind], 0.95)
        queries = f"  ({large.save_queries.get(kind, 0):.0f} SQL)"
        print(f"{label:46}{cell(small.saves[kind]):>17}{cell(large.saves[kind]):>19}{ratio:>7.2f}×{queries}")
    print(f"{'  every save (' + str(len(all_large)) + ' timed at N)':46}{cell(all_small):>17}{cell(all_large):>19}")
    for name, label in READ_LABELS.items():
        ratio = percentile(large.reads[name], 0.95) / percentile(small.reads[name], 0.95)
        print(f"{label:46}{cell(small.reads[name]):>17}{cell(large.reads[name]):>19}{ratio:>7.2f}×")
    print()
    sizes = f"{'N = ' + format(small.subjects, ','):>17}{'N = ' + format(large.subjects, ','):>19}"
    print(f"{'SQL queries per request':46}{sizes}")
    for name, label in READ_LABELS.items():
        print(f"{label:46}{small.counts[name]:>17}{large.counts[name]:>19}")
    print()
    verdicts = [
        (
            "form save p95 ≤ 50 ms",
            percentile(all_large, 0.95) <= SAVE_TARGET_MS,
            f"{percentile(all_large, 0.95):.1f} ms",
        ),
        (
            "study grid p95 ≤ 200 ms",
            percentile(large.reads["grid"], 0.95) <= PAGE_TARGET_MS,
            f"{percentile(large.reads['grid'], 0.95):.1f} ms",
        ),
        (
            "center worklist p95 ≤ 200 ms",
            percentile(large.reads["worklist"], 0.95) <= PAGE_TARGET_MS,
            f"{percentile(large.reads['worklist'], 0.95):.1f} ms",
        ),
        (
            "queries bounded (equal at N/10 and N)",
            small.counts == large.counts,
            ", ".join(f"{k} {v}" for k, v in large.counts.items()),
        ),
    ]
    for label, passed, figure in verdicts:
        print(f"  {'PASS' if passed else 'FAIL'}  {label:40} {figure}")
    return all(passed for _, passed, _ in verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000, help="subjects at full size (a tenth measured first)")
    parser.add_argument("--saves", type=int, default=160, help="form saves per size (a tenth counted, not timed)")
    parser.add_argument("--reads", type=int, default=20, help="requests per page or list per size")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # set-up only, not measured
    if not settings.CARTRIAL_IDENTITY_KEY:
        settings.CARTRIAL_IDENTITY_KEY = Fernet.generate_key().decode("ascii")
    rng = random.Random(arguments.seed)

    name, old_name = test_database()
    try:
        print("Casebook benchmark (benchmarks/casebook.py)")
        print(
            f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}, Django {django.get_version()}; "
            f"database {connection.vendor} {'.'.join(map(str, connection.Database.version_info if connection.vendor == 'sqlite' else [connection.pg_version]))}"  # noqa: E501
        )
        started = time.perf_counter()
        world = world_create()
        subjects_add(world, arguments.subjects // 10, rng)
        small = measure(world, arguments.saves, arguments.reads, rng)
        subjects_add(world, arguments.subjects - arguments.subjects // 10, rng)
        large = measure(world, arguments.saves, arguments.reads, rng)
        print(
            f"  data: {small.subjects:,} then {large.subjects:,} subjects, visits done to {LAST_VISIT} "
            f"({small.visits:,} / {large.visits:,} visit records, {small.forms:,} / {large.forms:,} form records); "
            f"run {time.perf_counter() - started:.0f} s"
        )
        print()
        passed = report(small, large)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"  database {name} dropped")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
