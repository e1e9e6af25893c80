"""Files people upload that are not what they should be: a clear refusal (page and API), never a 500.

Issue 8: a temperature log holding a byte Windows-1252 does not define (0x81, 0x8D, 0x8F, 0x90, 0x9D)
answered 500, and so did a kinetics CSV holding a lone carriage return (the csv module stops inside a
field). Each is now refused whole, nothing stored, the reason named; the kinetics CSV parser is fuzzed
like the temperature parser (tests/domain/test_temperature.py): rows or its typed refusal, nothing else.
"""

from __future__ import annotations

import json
from datetime import timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology.entries import KineticEntryRefused, parse_csv
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.logistics.models import Shipment, TemperatureLog
from cartrial.apps.subjects.models import Subject
from cartrial.domain.kinetics import preset_named
from cartrial.domain.pathway import State

CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
NOT_TEXT = {
    "en": "The file is not a text file in a known encoding (UTF-8 or Windows-1252)",
    "fr": "Le fichier n'est pas un fichier texte dans un encodage connu (UTF-8 ou Windows-1252)",
}


def _api(world: Any, username: str, language: str = "en") -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE=language)


def _page(world: Any, username: str, language: str) -> Client:
    client = world.client_for(username)
    client.cookies["django_language"] = language
    return client


# --- temperature logs -------------------------------------------------------------------------------


def _logger_bytes(shipment: Shipment, stray: int) -> bytes:
    start = shipment.actual_departure_at
    rows = [f"{(start + timedelta(minutes=15 * i)):%Y-%m-%dT%H:%M}Z;4,{i}" for i in range(4)]
    return ("Horodatage;Température (°C)\n" + "\n".join(rows) + "\n").encode("cp1252")[:-3] + bytes([stray]) + b"\n"


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("stray", CP1252_UNDEFINED, ids=lambda b: f"0x{b:02X}")
def test_the_page_refuses_a_logger_file_of_no_known_encoding(world: Any, stray: int, language: str) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    response = _page(world, "lil.apheresis", language).post(
        f"/logistics/subjects/{subject.code}/actions/import_temperature_log/",
        {
            "shipment": shipment.pk,
            "logger_time_zone": "UTC",
            "file": SimpleUploadedFile("logger.csv", _logger_bytes(shipment, stray), content_type="text/csv"),
        },
    )
    assert response.status_code == 422
    assert NOT_TEXT[language] in response.content.decode().replace("&#x27;", "'")
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()
    refusal = AuditEntry.objects.get(subject_code=subject.code, event="logistics.refused")
    assert "temperature_log_encoding" in refusal.changes_json


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("stray", ["\udc81", "\ud800"], ids=["escaped-0x81", "high-surrogate"])
def test_the_api_refuses_logger_text_no_file_can_hold(world: Any, stray: str, language: str) -> None:
    """JSON may carry a lone surrogate (how a client shows an undecodable byte): no file holds one."""
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    text = f"time;temperature\n{shipment.actual_departure_at:%Y-%m-%dT%H:%M}Z;4,5{stray}\n"
    response = _api(world, "lil.apheresis", language).post(
        f"/api/v1/logistics/subjects/{subject.code}/temperature-logs",
        json.dumps({"shipment": shipment.pk, "csv": text, "logger_time_zone": "UTC"}),
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "temperature_log_encoding" and body["item"] == "csv"
    assert NOT_TEXT[language] in body["message"]
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()


@pytest.mark.django_db
def test_a_windows_1252_logger_file_is_still_read(world: Any) -> None:
    """The refusal is for bytes no encoding defines; a Windows logger writing ° as 0xB0 is read as before."""
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    content = _logger_bytes(shipment, ord("5"))
    assert b"\xb0" in content
    response = _page(world, "lil.apheresis", "en").post(
        f"/logistics/subjects/{subject.code}/actions/import_temperature_log/",
        {"shipment": shipment.pk, "logger_time_zone": "UTC", "file": SimpleUploadedFile("logger.csv", content)},
    )
    assert response.status_code == 302
    assert TemperatureLog.objects.get(shipment=shipment).reading_count == 4


# --- kinetics CSV -----------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")
PRESET = preset_named("sle-default")
HEADER = "subject,marker,sampled_at,value,unit,loq"
SUBJECT = "STR-001"


def _infused(world: Any) -> Subject:
    subject = world.new_subject("STR", State.INFUSED)
    Subject.objects.filter(pk=subject.pk).update(infusion_date=clock.now().astimezone(PARIS).date() - timedelta(60))
    subject.refresh_from_db()
    return subject


def _rows(subject: Subject) -> list[str]:
    assert subject.infusion_date is not None
    day = subject.infusion_date
    return [
        f"{subject.code},car_t,{day + timedelta(days=7)} 09:00,10,cells/µL,",
        f"{subject.code},b_cells,{day + timedelta(days=7)} 09:00,< 1,cells/µL,",
    ]


def _kinetic_results(subject: Subject) -> int:
    return LabObservation.objects.filter(subject=subject, analyte__in=("car_t", "b_cells", "anti_dsdna")).count()


def _lone_carriage_return(subject: Subject) -> str:
    """A value cut by a lone carriage return, as in the report (`a\\rb`): the row then has a line end inside."""
    first, second = _rows(subject)
    return "\n".join([HEADER, first.replace(",10,", ",1\r0,"), second]) + "\n"


@pytest.mark.django_db
def test_the_api_refuses_a_kinetics_csv_with_a_lone_carriage_return_naming_the_line(world: Any) -> None:
    subject = _infused(world)
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations.csv",
        _lone_carriage_return(subject).encode(),
        content_type="text/csv",
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "kinetics_bad_row"
    assert body["message"] == "Line 2: 4 fields where the header has 6."
    assert _kinetic_results(subject) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_page_refuses_a_kinetics_csv_with_a_lone_carriage_return_naming_the_line(world: Any, language: str) -> None:
    subject = _infused(world)
    response = _page(world, "str.investigator", language).post(
        f"/biology/subjects/{subject.code}/observations/import/",
        {"file": SimpleUploadedFile("results.csv", _lone_carriage_return(subject).encode())},
    )
    assert response.status_code == 422
    expected = {"en": "Line 2: 4 fields", "fr": "Ligne 2 : 4 champs"}[language]
    assert expected in response.content.decode()
    assert _kinetic_results(subject) == 0


@pytest.mark.django_db
def test_a_kinetics_csv_with_old_mac_line_ends_is_read_whole(world: Any) -> None:
    subject = _infused(world)
    content = "\r".join([HEADER, *_rows(subject)]) + "\r"
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations.csv", content.encode(), content_type="text/csv"
    )
    assert response.status_code == 201, response.content
    assert _kinetic_results(subject) == 2


@pytest.mark.parametrize("quote", ["", '"'], ids=["plain", "unclosed-quote"])
def test_a_kinetics_cell_longer_than_the_csv_modules_limit_is_refused_with_its_line(quote: str) -> None:
    """The csv module stops at 131072 characters per field; files up to 2 MB are accepted."""
    content = f"{HEADER}\n{SUBJECT},car_t,2026-03-05 08:30,10,cells/µL,\n{SUBJECT},car_t,{quote}{'1' * 200_000}\n"
    with pytest.raises(KineticEntryRefused) as refused:
        parse_csv(content.encode(), subject_code=SUBJECT, preset=PRESET, zone=PARIS)
    assert refused.value.code == "kinetics_bad_row"
    assert str(refused.value).startswith("Line 3: ")


# --- fuzzing the kinetics CSV parser: rows, or KineticEntryRefused, never another exception ----------


def _csv_outcome(content: str | bytes) -> str:
    try:
        entries = parse_csv(content, subject_code=SUBJECT, preset=PRESET, zone=PARIS)
    except KineticEntryRefused as refused:
        return refused.code
    assert entries and all(entry.sampled_at.tzinfo is not None for entry in entries)
    return "parsed"


_CELLS = {
    "subject": st.sampled_from([SUBJECT, SUBJECT.lower(), " STR-001 ", "LIL-001", ""]),
    "marker": st.sampled_from(["car_t", "b_cells", "anti_dsdna", "CAR_T", "cd19", ""]),
    "sampled_at": st.sampled_from(
        ["2026-03-05 08:30", "2026-03-05T08:30:00+01:00", "05/03/2026 08:30", "2026-03-29 02:30", "2026-03-05", "x"]
    ),
    "value": st.sampled_from(["12.5", "12,5", "< LoQ", "<0.5", "", "0", "-1", "1e999", "nan", '"1,5"']),
    "unit": st.sampled_from(["cells/µL", "cells/uL", "IU/mL", "mg", ""]),
    "loq": st.sampled_from(["", "0.02", "0", "1,5"]),
}


@st.composite
def kinetics_files(draw: st.DrawFn) -> str | bytes:
    """CSV files as spreadsheets write them and worse: comma or semicolon, odd separators and line ends
    (lone CR, CRLF, vertical tab, form feed, NEL, U+2028), quotes, a BOM, blank rows, missing or extra
    cells, as text or as UTF-8 / Latin-1 bytes."""
    separator = draw(st.sampled_from([",", ";"] * 4 + ["\t", "|", ",;"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\n\n", "\r\r\n"]))
    columns = draw(st.sampled_from([list(_CELLS), list(_CELLS)[1:5], ["marker", "sampled_at", "value", "units"]]))
    lines = [separator.join(columns)]
    for _ in range(draw(st.integers(0, 4))):
        cells = [draw(_CELLS.get(name, st.just("?"))) for name in columns]
        if draw(st.integers(0, 9)) == 0:
            cells = cells[: draw(st.integers(0, len(cells)))] + draw(st.lists(st.sampled_from(["", '"', "\r", "x"])))
        lines.append(separator.join(cells))
    text = ("\ufeff" if draw(st.booleans()) else "") + ending.join(lines) + draw(st.sampled_from(["", ending]))
    form = draw(st.sampled_from(["str", "utf-8", "utf-8", "latin-1"]))
    return text if form == "str" else text.encode(form, errors="replace")


def test_the_csv_generator_reaches_rows_and_each_kind_of_refusal() -> None:
    # A fixed random source: the search is the same at every run (a rare outcome is not missed by chance).
    wide = settings(max_examples=5000, database=None)
    for outcome in ("parsed", "kinetics_bad_row", "kinetics_bad_header", "kinetics_bad_file", "kinetics_bad_time"):
        found = find(
            kinetics_files(), lambda f, outcome=outcome: _csv_outcome(f) == outcome, settings=wide, random=Random(0)
        )
        assert _csv_outcome(found) == outcome


@settings(max_examples=400, deadline=None)
@given(kinetics_files())
def test_spreadsheet_like_csv_gives_rows_or_a_refusal(content: str | bytes) -> None:
    event(_csv_outcome(content))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_rows_or_a_refusal(content: bytes) -> None:
    event(_csv_outcome(content))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters() | st.sampled_from(",;\r\n\x0b\x85\u2028\"'"), max_size=300))
def test_any_text_gives_rows_or_a_refusal(content: str) -> None:
    event(_csv_outcome(content))
