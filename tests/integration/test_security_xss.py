"""Stored XSS and CSV formula injection (OWASP A03): hostile text saved in the free-text fields
(identity names, reasons, query texts and answers, screen-failure reasons) comes out escaped on every
page that shows it, and as data in CSV cells a spreadsheet will not run. Coded fields (an AE's term)
refuse it. PDFs are drawn as plain strings (no markup is interpreted): a guard keeps it so.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.exports.tables import csv_cell
from cartrial.domain.pathway import State
from cartrial.domain.standards.tables import FORMULA_STARTS, spreadsheet_safe

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
LINK = "javascript:alert(3)"
PAYLOAD = f"Xss {SCRIPT} {IMG} {LINK}"
RAW = ("<script>alert(1)", "<img src=x onerror", 'href="javascript:')
SRC = Path(__file__).resolve().parents[2] / "src" / "cartrial"


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="xss")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _assert_escaped(response: Any, where: str) -> None:
    """The payload is on the page as text (escaped), never as markup."""
    assert response.status_code == 200, (where, response.status_code)
    body = response.content.decode()
    for raw in RAW:
        assert raw not in body, (where, raw)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, where
    assert "&lt;img src=x onerror=alert(2)&gt;" in body, where


def test_identity_names_are_escaped_on_the_list_and_subject_pages(world: Any) -> None:
    response = _api(world, "bdx.coordinator").post(
        "/api/v1/subjects",
        {
            "center": "BDX",
            "family_name": PAYLOAD,
            "given_names": PAYLOAD,
            "birth_date": "1970-05-05",
            "hospital_number": "HN<b>1",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content  # markup is text in a name: stored as typed
    code = response.json()["code"]
    page = world.client_for("bdx.coordinator")
    _assert_escaped(page.get("/subjects/"), "list")
    _assert_escaped(page.get(f"/subjects/{code}/"), "detail")


def test_a_withdrawal_reason_is_escaped_on_the_subject_and_audit_pages(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.investigator")
    response = client.post(f"/subjects/{subject.code}/steps/withdraw/", {"reason": PAYLOAD})
    assert response.status_code == 302
    _assert_escaped(client.get(f"/subjects/{subject.code}/"), "subject")
    _assert_escaped(client.get(f"/subjects/{subject.code}/audit/"), "audit")


def test_query_texts_are_escaped_in_the_inbox_and_on_the_form(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    raised = _api(world, "cra.monitor").post(
        f"/api/v1/subjects/{subject.code}/queries",
        {"visit": "D28", "form": "vital_signs", "item": "weight_kg", "text": PAYLOAD},
        content_type="application/json",
    )
    assert raised.status_code == 201, raised.content
    client = world.client_for("bdx.coordinator")
    _assert_escaped(client.get("/casebook/queries/"), "query inbox")  # the open query awaits the center
    answered = _api(world, "bdx.coordinator").post(
        f"/api/v1/queries/{raised.json()['id']}/answer", {"text": PAYLOAD}, content_type="application/json"
    )
    assert answered.status_code == 200, answered.content
    _assert_escaped(client.get(f"/casebook/subjects/{subject.code}/visits/D28/forms/vital_signs/"), "form page")


def test_a_screen_failure_reason_is_escaped_on_the_log_and_neutralised_in_its_csv(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.investigator")
    formula = '=HYPERLINK("http://evil.example","x")' + PAYLOAD
    response = client.post(f"/subjects/{subject.code}/steps/fail_screening/", {"reason": formula})
    assert response.status_code == 302, response.content[:500]
    _assert_escaped(client.get("/screening-log/"), "screening log")
    for path, reader in (
        ("/screening-log.csv", client),
        ("/api/v1/screening-log.csv", _api(world, "bdx.investigator")),
    ):
        exported = reader.get(path)
        assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
        reasons = [row["reason"] for row in rows if row["subject"] == subject.code]
        assert reasons == ["'" + formula], reasons  # shown as text by a spreadsheet, never run
        for row in rows:
            assert not any(cell.startswith(FORMULA_STARTS) for cell in row.values()), row


def test_a_hostile_ae_term_is_refused_and_nothing_stored(world: Any) -> None:
    from cartrial.apps.safety.models import AdverseEvent

    subject = world.new_subject("BDX", State.FOLLOW_UP)
    before = AdverseEvent.objects.count()
    response = _api(world, "bdx.investigator").post(
        f"/api/v1/subjects/{subject.code}/adverse-events",
        {"term": PAYLOAD, "grade": 2, "start_date": "2026-01-01", "serious": False, "outcome": "recovering"},
        content_type="application/json",
    )
    assert response.status_code == 422 and response["Content-Type"].startswith("application/json")
    assert AdverseEvent.objects.count() == before


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_formula_start_is_quoted_in_csv_cells(start: str) -> None:
    text = f"{start}cmd|' /C calc'!A0"
    assert spreadsheet_safe(text) == "'" + text
    assert csv_cell(text) == "'" + text
    assert csv_cell("plain text") == "plain text" and csv_cell(-1.5) == "-1.5"  # numbers stay numbers


def test_the_formula_starts_are_those_spreadsheets_run() -> None:
    assert set(FORMULA_STARTS) == {"=", "+", "-", "@", "\t", "\r"}


def test_every_csv_writer_of_the_app_goes_through_the_neutraliser() -> None:
    """Each module that writes CSV for people also imports the one neutraliser."""
    writers = [p for p in SRC.rglob("*.py") if re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert writers
    for path in writers:
        text = path.read_text(encoding="utf-8")
        if path.parts[-2] == "cli":
            continue  # the command line's model files for statisticians: numbers, written by the CLI user
        assert "spreadsheet_safe" in text or "csv_cell" in text, path


def test_pdfs_interpret_no_markup() -> None:
    """reportlab's Paragraph and its kin parse <b>, <a href>, <img> in their text: the app draws its
    PDFs (the labels) with canvas strings only, so stored text can never become markup there."""
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "reportlab.platypus" not in text and "Paragraph(" not in text, path
    labels = (SRC / "apps" / "logistics" / "labels.py").read_text(encoding="utf-8")
    assert "drawString" in labels
