"""Oversize and malformed uploads (issue 13, item 8): refused before parsing, nothing written.

Every endpoint that takes a file (pages and API) has a maximum declared once
(config/uploads.py). A request declaring a longer body is answered 413 from its Content-Length
alone: the tests hand Django a body stream that fails the test if anything reads it. A file that
is not what it should be (binary, an unknown encoding, wrong columns, a spreadsheet formula where
a value goes) is refused with 422 naming the file's item and line; nothing is stored and the
audit trail gains no entry but the refusal itself.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.logistics.models import Shipment, TemperatureLog
from cartrial.apps.subjects.models import Subject
from cartrial.config.uploads import (
    BODY_MAXIMUM_BYTES,
    LARGEST_REQUEST_BYTES,
    UPLOAD_KINDS,
    UploadKind,
    upload_kind,
)
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db


class UnreadableBody:
    """A request body that must not be read: the refusal is decided from the declared length."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, *args: Any) -> bytes:
        self.reads += 1
        raise AssertionError("the body was read before the size was checked")

    readline = read


def _api(world: Any, username: str, language: str = "en") -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE=language)


def _page(world: Any, username: str, language: str = "en") -> Client:
    client = world.client_for(username)
    client.cookies["django_language"] = language
    return client


def _audit_tail() -> list[str]:
    return list(AuditEntry.objects.order_by("sequence").values_list("event", flat=True))


# Each upload endpoint: (URL name, who may send, a subject stage, the path, multipart or not).
ENDPOINTS: list[tuple[str, str, State | None, str, str]] = [
    ("biology:import", "str.investigator", State.INFUSED, "/biology/subjects/{code}/observations/import/", "page"),
    (
        "api:observations_import",
        "str.coordinator",
        State.INFUSED,
        "/api/v1/subjects/{code}/kinetics/observations.csv",
        "api",
    ),
    ("api:forms_import", "bdx.coordinator", None, "/api/v1/forms/vital_signs/import.csv", "api"),
    (
        "logistics:action",
        "lil.apheresis",
        State.MATERIAL_SHIPPED,
        "/logistics/subjects/{code}/actions/import_temperature_log/",
        "page",
    ),
    (
        "api:logistics_temperature_log",
        "lil.apheresis",
        State.MATERIAL_SHIPPED,
        "/api/v1/logistics/subjects/{code}/temperature-logs",
        "api",
    ),
    ("planning:plan", "sponsor.admin", None, "/planning/plan/", "page"),
]


def test_every_upload_endpoint_has_its_maximum_and_django_backs_the_largest() -> None:
    assert {name for name, *_ in ENDPOINTS} == set(UPLOAD_KINDS)
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE >= LARGEST_REQUEST_BYTES
    assert upload_kind("/api/v1/subjects").request_bytes == BODY_MAXIMUM_BYTES
    assert upload_kind("/no/such/page/").request_bytes == BODY_MAXIMUM_BYTES


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize(("name", "username", "state", "path", "kind"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_an_oversize_upload_is_refused_before_its_body_is_read(
    world: Any, name: str, username: str, state: State | None, path: str, kind: str, language: str
) -> None:
    code = world.new_subject(username[:3].upper(), state).code if state else "none"
    limit: UploadKind = UPLOAD_KINDS[name]
    client = _api(world, username, language) if kind == "api" else _page(world, username, language)
    before = _audit_tail()
    body = UnreadableBody()
    response = client.generic(
        "POST",
        path.format(code=code),
        content_type="multipart/form-data; boundary=x" if kind == "page" else "text/csv",
        **{"wsgi.input": body, "CONTENT_LENGTH": str(limit.request_bytes + 1)},
    )
    assert response.status_code == 413
    assert body.reads == 0
    megabytes = f"{limit.file_bytes // 1_000_000}"
    text = response.json()["message"] if kind == "api" else response.content.decode().replace("&#x27;", "'")
    expected = {"en": f"Larger than {megabytes} MB", "fr": f"Plus de {megabytes} Mo"}[language]
    assert expected in text
    assert f"'{limit.item}'" in text
    if kind == "api":
        assert response.json()["code"] == "request_too_large" and response.json()["item"] == limit.item
    assert _audit_tail() == before  # nothing written, not even a refusal: nothing was read to refuse


def test_an_ordinary_endpoint_refuses_a_body_over_the_ordinary_maximum_unread(world: Any) -> None:
    body = UnreadableBody()
    response = _api(world, "bdx.coordinator").generic(
        "POST",
        "/api/v1/subjects",
        content_type="application/json",
        **{"wsgi.input": body, "CONTENT_LENGTH": str(BODY_MAXIMUM_BYTES + 1)},
    )
    assert response.status_code == 413 and body.reads == 0
    assert response.json()["item"] == "body"


def test_an_upload_within_its_maximum_still_reaches_the_form(world: Any) -> None:
    """The limit is on the request, not below it: a 3 MB logger file (over Django's 2.5 MB default
    for a body in memory) reaches the service, which reads it."""
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    start = shipment.actual_departure_at
    rows = [f"{(start + timedelta(minutes=15 * i)):%Y-%m-%dT%H:%M}Z;4,5" for i in range(4)]
    padding = "\n" * 3_000_000  # blank lines are skipped by the parser
    content = ("time;temperature\n" + "\n".join(rows) + padding).encode()
    response = _api(world, "lil.apheresis").post(
        f"/api/v1/logistics/subjects/{subject.code}/temperature-logs",
        json.dumps({"shipment": shipment.pk, "csv": content.decode(), "logger_time_zone": "UTC"}),
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content[:300]
    assert TemperatureLog.objects.get(shipment=shipment).reading_count == 4


# --- malformed files: a clear refusal naming the file and line, nothing stored -----------------------

BINARY = bytes(range(256)) * 4
UTF16 = "subject,visit,done_on\n".encode("utf-16")


def _kinetic_results(subject: Subject) -> int:
    return LabObservation.objects.filter(subject=subject, analyte__in=("car_t", "b_cells", "anti_dsdna")).count()


def _infused(world: Any) -> Subject:
    subject = world.new_subject("STR", State.INFUSED)
    assert subject.infusion_date is not None
    return subject


KINETICS_MALFORMED = {
    "binary": (BINARY, "kinetics_bad_file", None),
    "utf-16": (UTF16, "kinetics_bad_file", None),
    "wrong-columns": (b"patient,analyte,when,result\nX,car_t,2026-01-01,3\n", "kinetics_bad_header", "Line 1"),
    "formula": (
        b"subject,marker,sampled_at,value,unit,loq\n{code},car_t,{day} 09:00,=1+9,cells/\xc2\xb5L,\n",
        "kinetics_not_a_number",
        "Line 2",
    ),
}


@pytest.mark.parametrize("malformed", list(KINETICS_MALFORMED))
def test_the_kinetics_api_refuses_a_malformed_csv_naming_it(world: Any, malformed: str) -> None:
    subject = _infused(world)
    content, code, line = KINETICS_MALFORMED[malformed]
    day = subject.infusion_date + timedelta(days=7)  # type: ignore[operator]
    content = content.replace(b"{code}", subject.code.encode()).replace(b"{day}", str(day).encode())
    client = _api(world, "str.coordinator")
    before = _audit_tail()
    response = client.post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations.csv", content, content_type="text/csv"
    )
    assert response.status_code == 422, response.content
    assert response.json()["code"] == code, response.json()
    if line:
        assert response.json()["message"].startswith(line), response.json()
    assert _kinetic_results(subject) == 0
    assert all(event.endswith("refused") for event in _audit_tail()[len(before) :])


@pytest.mark.parametrize("malformed", list(KINETICS_MALFORMED))
def test_the_kinetics_page_refuses_a_malformed_csv_naming_it(world: Any, malformed: str) -> None:
    subject = _infused(world)
    content, _, line = KINETICS_MALFORMED[malformed]
    day = subject.infusion_date + timedelta(days=7)  # type: ignore[operator]
    content = content.replace(b"{code}", subject.code.encode()).replace(b"{day}", str(day).encode())
    response = _page(world, "str.investigator", "en").post(
        f"/biology/subjects/{subject.code}/observations/import/",
        {"file": SimpleUploadedFile("results.csv", content)},
    )
    assert response.status_code == 422
    if line:
        assert line in response.content.decode()
    assert _kinetic_results(subject) == 0


FORM_HEADER = "subject,visit,done_on,temperature_c,heart_rate_bpm,systolic_bp_mmhg,diastolic_bp_mmhg,spo2_pct,weight_kg"


@pytest.mark.parametrize(
    ("malformed", "code", "item"),
    [
        ("binary", "import_encoding", "file"),
        ("utf-16", "import_encoding", "file"),
        ("wrong-columns", "import_columns", "file"),
        ("formula", "item_type", "weight_kg"),
    ],
)
def test_the_form_import_refuses_a_malformed_csv_naming_it(world: Any, malformed: str, code: str, item: str) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    d28 = subject.infusion_date + timedelta(days=28)
    content = {
        "binary": BINARY,
        "utf-16": FORM_HEADER.encode("utf-16"),
        "wrong-columns": b"patient,when,weight\nX,2026-01-01,60\n",
        "formula": f"{FORM_HEADER}\n{subject.code},D28,{d28},37.2,80,120,75,97,=60+1\n".encode(),
    }[malformed]
    client = _api(world, "bdx.coordinator")
    before = _audit_tail()
    response = client.post("/api/v1/forms/vital_signs/import.csv", content, content_type="text/csv")
    assert response.status_code == 422, response.content
    body = response.json()
    assert (body["code"], body["item"]) == (code, item), body
    if malformed == "formula":
        assert "Line 2" in body["message"]
    assert not FormRecord.objects.filter(subject=subject).exists()
    assert all(event.endswith("refused") for event in _audit_tail()[len(before) :])


@pytest.mark.parametrize("malformed", ["binary", "wrong-columns", "formula"])
def test_the_temperature_log_page_refuses_a_malformed_file_naming_it(world: Any, malformed: str) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    start = f"{shipment.actual_departure_at:%Y-%m-%dT%H:%M}Z"
    content = {
        "binary": BINARY,
        "wrong-columns": f"only one column\n{start}\n".encode(),
        "formula": f"time;temperature\n{start};=4+1\n".encode(),
    }[malformed]
    response = _page(world, "lil.apheresis", "en").post(
        f"/logistics/subjects/{subject.code}/actions/import_temperature_log/",
        {"shipment": shipment.pk, "logger_time_zone": "UTC", "file": SimpleUploadedFile("logger.csv", content)},
    )
    assert response.status_code == 422
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()
    refusal = AuditEntry.objects.filter(subject_code=subject.code, event="logistics.refused").get()
    assert "temperature_log" in refusal.changes_json


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BINARY, "The file is not JSON (UTF-8)."),
        (b"[1, 2]", "The file must hold one JSON object: the instance."),
    ],
    ids=["binary", "not-an-object"],
)
def test_the_planner_refuses_a_malformed_instance_file(world: Any, content: bytes, message: str) -> None:
    from cartrial.apps.jobs.models import Job

    response = _page(world, "sponsor.admin", "en").post(
        "/planning/plan/", {"instance": SimpleUploadedFile("instance.json", content)}
    )
    assert response.status_code in (200, 422)
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_a_logger_file_posted_without_its_shipment_says_why(world: Any) -> None:
    """Found by the form fuzzing: with no shipment chosen no import form could mark the field, and
    the page answered 422 without a word of why."""
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    response = _page(world, "lil.apheresis", "en").post(
        f"/logistics/subjects/{subject.code}/actions/import_temperature_log/",
        {"logger_time_zone": "UTC", "file": SimpleUploadedFile("logger.csv", b"time;temperature\n")},
    )
    assert response.status_code == 422
    assert 'data-testid="refusal"' in response.content.decode()
    assert not TemperatureLog.objects.filter(shipment__subject=subject).exists()
