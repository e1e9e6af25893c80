"""Expected biology (issue 5): kinetic results entered on a page, by API or CSV; the subject's
kinetics page, its panel and the assessment JSON; the cohort page; access; the demo's results.

Subjects are moved to "infused" through the real services; their infusion date is then set to a
known day so that sample days are exact. Every result goes through `lab_observations_record`.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology import selectors as biology_selectors
from cartrial.apps.biology.entries import KineticEntry
from cartrial.apps.biology.services import kinetic_observations_record
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Subject
from cartrial.domain.kinetics import ModelParameters, preset_named, simulate_markers
from cartrial.domain.kinetics import assessment as kinetics_assessment
from cartrial.domain.kinetics.fitting import fit_subject
from cartrial.domain.pathway import State

PARIS = ZoneInfo("Europe/Paris")
SAMPLE_DAYS = (0, 3, 7, 10, 14, 21, 28, 42, 60, 90, 120, 180, 270, 365)
LOQ = {"car_t": 0.02, "b_cells": 1.0, "anti_dsdna": 10.0}
UNITS = {"car_t": "cells/µL", "b_cells": "cells/µL", "anti_dsdna": "IU/mL"}


@pytest.fixture(autouse=True)
def _fresh_assessments() -> None:
    """Each test computes its own fits (the cache is keyed by data, but a test may patch the fit)."""
    biology_selectors._assess.cache_clear()


def _infused(world: Any, center: str = "STR", days_ago: int = 400) -> Subject:
    subject = world.new_subject(center, State.INFUSED)
    d0 = clock.now().astimezone(PARIS).date() - timedelta(days=days_ago)
    Subject.objects.filter(pk=subject.pk).update(infusion_date=d0)
    subject.refresh_from_db()
    return subject


def _at(subject: Subject, day: int, hour: int = 9) -> datetime:
    assert subject.infusion_date is not None
    return datetime.combine(subject.infusion_date + timedelta(days=day), time(hour), PARIS)


def _record(world: Any, subject: Subject, per_day: dict[int, dict[str, float | None]]) -> None:
    """Store results through the service as the center's coordinator."""
    username = f"{subject.center.code.lower()}.coordinator"
    entries = [
        KineticEntry(marker, _at(subject, day), value, UNITS[marker], LOQ[marker])
        for day, values in per_day.items()
        for marker, value in values.items()
    ]
    with transaction.atomic():
        kinetic_observations_record(actor=world.actor(username), subject=subject, entries=entries)


def _simulated(overrides: dict[str, float], days: tuple[int, ...] = SAMPLE_DAYS) -> dict[int, dict[str, float | None]]:
    """Noise-free results of one sle-default patient (typical unless overridden), censored at the LoQs."""
    preset = preset_named("sle-default")
    columns = preset.typical_patient().as_columns()
    for name, value in overrides.items():
        columns[name] = np.array([value])
    simulated = simulate_markers(ModelParameters.from_columns(columns), np.array(days, dtype=float))
    results: dict[int, dict[str, float | None]] = {}
    for index, day in enumerate(days):
        results[day] = {}
        for marker in ("car_t", "b_cells", "anti_dsdna"):
            level = float(simulated[marker][0, index])
            results[day][marker] = None if level < LOQ[marker] else float(f"{level:.4g}")
    return results


# A patient whose CAR-T vanish early: B cells back by about D28, and an autoreactive repertoire.
EARLY_RETURN = {
    "car_t_memory_fraction": 0.0005,
    "car_t_fast_decline_per_day": 0.5,
    "precursor_transit_days": 10.0,
    "regenerated_autoreactivity": 1.5,
}


def _plotted(name: str) -> str:
    """A trace name as it appears in Plotly's JSON (non-ASCII escaped)."""
    return json.dumps(name)


def _stored(subject: Subject) -> Any:
    """The subject's kinetic results in the lab store (screening labs of the fixture left aside)."""
    return LabObservation.objects.filter(subject=subject, analyte__in=("car_t", "b_cells", "anti_dsdna"))


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    message: str = body["message"]
    return message


def _csv(subject: Subject, rows: list[str], header: str = "subject,marker,sampled_at,value,unit,loq") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _post_csv(client: Client, subject: Subject, content: bytes) -> Any:
    return client.post(f"/api/v1/subjects/{subject.code}/kinetics/observations.csv", content, content_type="text/csv")


# --- entry page -----------------------------------------------------------------------------------


def test_entry_page_records_one_sample_in_the_centers_time_zone(world: Any) -> None:
    subject = _infused(world, days_ago=30)
    day7 = subject.infusion_date + timedelta(days=7)  # type: ignore[operator]
    response = world.client_for("str.investigator").post(
        f"/biology/subjects/{subject.code}/observations/new/",
        {
            "sampled_at": f"{day7:%Y-%m-%d}T08:30",
            "car_t_value": "12,5",
            "car_t_unit": "cells/µL",
            "car_t_loq": "0.02",
            "b_cells_below_loq": "on",
            "b_cells_unit": "cells/µL",
            "b_cells_loq": "1",
            "anti_dsdna_value": "",
            "anti_dsdna_unit": "IU/mL",
            "anti_dsdna_loq": "",
        },
    )
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == f"/biology/subjects/{subject.code}/"
    rows = {row.analyte: row for row in _stored(subject)}
    assert set(rows) == {"car_t", "b_cells"}  # the marker left empty is not recorded
    expected_utc = datetime.combine(day7, time(8, 30), PARIS).astimezone(UTC)
    assert rows["car_t"].sampled_at == expected_utc
    assert (rows["car_t"].value, rows["car_t"].unit, rows["car_t"].limit_of_quantification) == (12.5, "cells/µL", 0.02)
    assert rows["b_cells"].value is None and rows["b_cells"].limit_of_quantification == 1.0
    assert {row.context for row in rows.values()} == {"kinetics"}
    audited = AuditEntry.objects.filter(entity="lab_observation", entity_id__in=[str(r.pk) for r in rows.values()])
    assert audited.count() == 2 and {entry.actor_username for entry in audited} == {"str.investigator"}
    listed = biology_selectors.subject_kinetic_rows(subject=subject)
    assert [row.day for row in listed] == [7, 7]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"day": -3, "car_t_value": "1"}, "3 day(s) before the infusion"),
        ({"day": 5, "car_t_value": "1", "car_t_unit": "copies/µg"}, "report it in cells/µL"),
        ({"day": 5, "car_t_value": "-2"}, "cannot be negative"),
        ({"day": 5, "car_t_below_loq": "on"}, "no limit of quantification"),
        ({"day": 5, "car_t_value": "3", "car_t_below_loq": "on", "car_t_loq": "1"}, "not both"),
        ({"day": 5}, "at least one marker"),
    ],
)
def test_entry_page_refuses_with_a_precise_message_and_stores_nothing(
    world: Any, fields: dict[str, Any], message: str
) -> None:
    subject = _infused(world, days_ago=30)
    when = subject.infusion_date + timedelta(days=fields.pop("day"))  # type: ignore[operator]
    data = {"sampled_at": f"{when:%Y-%m-%d}T10:00", "car_t_unit": "cells/µL", "b_cells_unit": "cells/µL"}
    data |= {"anti_dsdna_unit": "IU/mL", **fields}
    client = world.client_for("str.coordinator")
    client.cookies.load({"django_language": "en"})
    response = client.post(f"/biology/subjects/{subject.code}/observations/new/", data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    refusal = re.search(r'data-testid="refusal">([^<]*)<', response.content.decode())
    assert refusal is not None and message in refusal.group(1).replace("&#x27;", "'"), refusal
    assert not _stored(subject).exists()


def test_entry_page_speaks_french_by_default(world: Any) -> None:
    subject = _infused(world, days_ago=30)
    before = subject.infusion_date - timedelta(days=2)  # type: ignore[operator]
    response = world.client_for("str.coordinator").post(
        f"/biology/subjects/{subject.code}/observations/new/",
        {"sampled_at": f"{before:%Y-%m-%d}T10:00", "car_t_value": "1", "car_t_unit": "cells/µL"}
        | {"b_cells_unit": "cells/µL", "anti_dsdna_unit": "IU/mL"},
    )
    assert response.status_code == 422
    assert "2 jour(s) avant la perfusion" in response.content.decode()


# --- CSV import -----------------------------------------------------------------------------------


def test_csv_page_imports_all_rows_semicolons_decimal_commas_and_loq_forms(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    d = subject.infusion_date
    assert d is not None
    text = "\n".join(
        [
            "subject;marker;sampled_at;value;unit;loq",
            f"{subject.code};car_t;{d + timedelta(days=9):%d/%m/%Y} 08:00;25,4;cells/uL;0,02",
            f"{subject.code};b_cells;{d + timedelta(days=9)} 08:00;< LoQ;cells/µL;1",
            f"{subject.code.lower()};anti_dsdna;{d + timedelta(days=9)}T07:00:00Z;<10;IU/mL;",
        ]
    )
    client = world.client_for("str.coordinator")
    response = client.post(f"/biology/subjects/{subject.code}/observations/import/", {"text": text})
    assert response.status_code == 302, response.content.decode()
    rows = {row.analyte: row for row in _stored(subject)}
    assert rows["car_t"].value == 25.4 and rows["car_t"].unit == "cells/µL"
    assert rows["car_t"].sampled_at == datetime.combine(d + timedelta(days=9), time(8), PARIS)
    assert rows["b_cells"].value is None and rows["b_cells"].limit_of_quantification == 1.0
    assert rows["anti_dsdna"].value is None and rows["anti_dsdna"].limit_of_quantification == 10.0
    assert rows["anti_dsdna"].sampled_at == datetime.combine(d + timedelta(days=9), time(7), UTC)
    # The same file again adds nothing: every row is already recorded.
    again = client.post(f"/biology/subjects/{subject.code}/observations/import/", {"text": text}, follow=True)
    assert _stored(subject).count() == 3
    assert "3 déjà enregistré(s), ignoré(s)" in again.content.decode()


def _broken_rows(subject: Subject) -> dict[str, tuple[str, str, str]]:
    d = subject.infusion_date
    assert d is not None
    ok = f"{subject.code},car_t,{d + timedelta(days=7)} 09:00,10,cells/µL,0.02"
    return {
        "other subject": (
            f"STR-999,car_t,{d + timedelta(days=7)} 09:00,10,cells/µL,0.02",
            "kinetics_other_subject",
            "STR-999",
        ),
        "unknown marker": (
            f"{subject.code},cd4,{d + timedelta(days=7)} 09:00,10,cells/µL,",
            "kinetics_unknown_marker",
            "cd4",
        ),
        "unknown unit": (
            f"{subject.code},b_cells,{d + timedelta(days=7)} 09:00,10,10^9/L,",
            "kinetics_unknown_unit",
            "10^9/L",
        ),
        "negative time": (
            f"{subject.code},car_t,{d - timedelta(days=4)} 09:00,10,cells/µL,",
            "kinetics_before_infusion",
            "4 day(s) before",
        ),
        "missing time": (f"{subject.code},car_t,,10,cells/µL,", "kinetics_missing_time", "missing"),
        "date without time": (
            f"{subject.code},car_t,{d + timedelta(days=7)},10,cells/µL,",
            "kinetics_missing_time",
            "no time of day",
        ),
        "not a time": (f"{subject.code},car_t,day seven,10,cells/µL,", "kinetics_bad_time", "day seven"),
        "negative value": (
            f"{subject.code},anti_dsdna,{d + timedelta(days=7)} 09:00,-5,IU/mL,",
            "kinetics_negative_value",
            "negative",
        ),
        "text value": (
            f"{subject.code},anti_dsdna,{d + timedelta(days=7)} 09:00,high,IU/mL,",
            "kinetics_not_a_number",
            "high",
        ),
        "censored without loq": (
            f"{subject.code},b_cells,{d + timedelta(days=7)} 09:00,< LoQ,cells/µL,",
            "kinetics_missing_value",
            "no limit",
        ),
        "zero loq": (
            f"{subject.code},b_cells,{d + timedelta(days=7)} 09:00,,cells/µL,0",
            "kinetics_bad_loq",
            "above 0",
        ),
        "short row": (f"{subject.code},car_t,{d + timedelta(days=7)} 09:00,10", "kinetics_bad_row", "4 fields"),
        "future": (
            f"{subject.code},car_t,{clock.now().date() + timedelta(days=3)} 09:00,10,cells/µL,",
            "kinetics_sample_in_future",
            "future",
        ),
        "ok": (ok, "", ""),
    }


@pytest.mark.parametrize(
    "case",
    [
        "other subject",
        "unknown marker",
        "unknown unit",
        "negative time",
        "missing time",
        "date without time",
        "not a time",
        "negative value",
        "text value",
        "censored without loq",
        "zero loq",
        "short row",
        "future",
    ],
)
def test_csv_api_refuses_a_broken_row_naming_its_line_and_stores_nothing(world: Any, case: str) -> None:
    subject = _infused(world, days_ago=60)
    rows = _broken_rows(subject)
    broken, code, words = rows[case]
    content = _csv(subject, [rows["ok"][0], rows["ok"][0].replace(",10,", ",11,"), broken])
    message = _error(_post_csv(_api(world, "str.coordinator"), subject, content), 422, code)
    assert message.startswith("Line 4: "), message  # header is line 1, the broken row the 4th line
    assert words in message, message
    assert not _stored(subject).exists()


def test_csv_header_errors_name_the_missing_and_unknown_columns(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    content = _csv(subject, [f"{subject.code},car_t,10,cells/µL"], header="subject,marker,value,units")
    message = _error(_post_csv(_api(world, "str.coordinator"), subject, content), 422, "kinetics_bad_header")
    assert "Line 1" in message and "sampled_at" in message and "units" in message
    empty = _error(_post_csv(_api(world, "str.coordinator"), subject, b""), 422, "kinetics_bad_file")
    assert "empty" in empty


def test_csv_page_shows_the_line_of_the_refused_row(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    rows = _broken_rows(subject)
    text = _csv(subject, [rows["ok"][0], rows["other subject"][0]]).decode()
    response = world.client_for("str.investigator").post(
        f"/biology/subjects/{subject.code}/observations/import/", {"text": text}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "Ligne 3 : cette ligne concerne le sujet « STR-999 »" in body
    assert not _stored(subject).exists()


# --- API -------------------------------------------------------------------------------------------


def test_api_records_json_results_and_lists_them_by_day(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    d = subject.infusion_date
    assert d is not None
    client = _api(world, "str.coordinator")
    url = f"/api/v1/subjects/{subject.code}/kinetics/observations"
    payload = {
        "observations": [
            {"marker": "car_t", "sampled_at": f"{d + timedelta(days=9)}T09:00", "value": 21.0, "unit": "cells/µL"},
            {
                "marker": "b_cells",
                "sampled_at": f"{d + timedelta(days=9)}T09:00+01:00",
                "value": None,
                "unit": "cells/uL",
                "loq": 1,
            },
        ]
    }
    created = client.post(url, payload, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["recorded"] == 2
    listed = client.get(url).json()
    assert listed["infusion_date"] == d.isoformat() and listed["time_zone"] == "Europe/Paris"
    by_marker = {row["marker"]: row for row in listed["items"]}
    assert by_marker["car_t"]["day"] == 9 and by_marker["car_t"]["value"] == 21.0
    assert by_marker["b_cells"]["censored"] is True and by_marker["b_cells"]["loq"] == 1.0
    assert by_marker["b_cells"]["unit"] == "cells/µL" and by_marker["b_cells"]["used_by_model"] is True


def test_api_json_refusal_names_the_result_and_keeps_nothing(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    d = subject.infusion_date
    assert d is not None
    payload = {
        "observations": [
            {"marker": "car_t", "sampled_at": f"{d + timedelta(days=9)}T09:00", "value": 21.0, "unit": "cells/µL"},
            {"marker": "anti_dsdna", "sampled_at": f"{d + timedelta(days=9)}T09:00", "value": 80, "unit": "mg/L"},
        ]
    }
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations", payload, content_type="application/json"
    )
    message = _error(response, 422, "kinetics_unknown_unit")
    assert message.startswith("Result 2: ") and "IU/mL" in message
    french = _api(world, "str.coordinator", HTTP_ACCEPT_LANGUAGE="fr").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations", payload, content_type="application/json"
    )
    assert _error(french, 422, "kinetics_unknown_unit").startswith("Résultat 2 : ")
    assert not _stored(subject).exists()


def test_api_json_refuses_a_result_naming_another_subject(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    d = subject.infusion_date
    assert d is not None
    at = f"{d + timedelta(days=9)}T09:00"
    payload = {
        "observations": [
            {"subject": subject.code.lower(), "marker": "car_t", "sampled_at": at, "value": 2, "unit": "cells/µL"},
            {"subject": "STR-999", "marker": "car_t", "sampled_at": at, "value": 2, "unit": "cells/µL"},
        ]
    }
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations", payload, content_type="application/json"
    )
    message = _error(response, 422, "kinetics_other_subject")
    assert message.startswith("Result 2: ") and "STR-999" in message
    assert not _stored(subject).exists()


def test_api_refuses_results_for_a_subject_not_infused(world: Any) -> None:
    subject = world.new_subject("STR", State.PRODUCT_RECEIVED)
    payload = {"observations": [{"marker": "car_t", "sampled_at": "2026-01-01T09:00", "value": 1, "unit": "cells/µL"}]}
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations", payload, content_type="application/json"
    )
    assert "has not been infused" in _error(response, 422, "kinetics_not_infused")


def test_assessment_json_has_fit_band_and_the_five_flags(world: Any) -> None:
    subject = _infused(world, days_ago=400)
    _record(world, subject, _simulated(EARLY_RETURN))
    client = _api(world, "str.coordinator")
    body = client.get(f"/api/v1/subjects/{subject.code}/kinetics/assessment").json()
    assert body["subject"] == subject.code and body["preset"] == "sle-default"
    assert body["observations"] == 3 * len(SAMPLE_DAYS)
    assert body["fit"]["converged"] is True
    band = body["fit"]["band"]
    assert band["days"][0] == 0 and band["days"][-1] >= 365
    assert set(band["markers"]["b_cells"]) == {"unit", "p05", "p50", "p95"}
    flags = {flag["code"]: flag for flag in body["flags"]}
    assert list(flags) == [
        "car_t_peak_below_band",
        "no_b_cell_depletion_by_day_14",
        "early_b_cell_return",
        "anti_dsdna_slow_decline",
        "anti_dsdna_rise_after_b_cell_return",
    ]
    assert flags["early_b_cell_return"]["raised"] is True
    assert flags["anti_dsdna_rise_after_b_cell_return"]["raised"] is True
    assert flags["car_t_peak_below_band"]["raised"] is False
    assert flags["early_b_cell_return"]["evidence"]["reappearance_day"] < 44
    french = _api(world, "str.coordinator", HTTP_ACCEPT_LANGUAGE="fr")
    localised = french.get(f"/api/v1/subjects/{subject.code}/kinetics/assessment").json()["flags"][2]
    assert localised["message_localised"].startswith("Lymphocytes B revenus à J")


def test_assessment_without_results_is_a_conflict(world: Any) -> None:
    subject = _infused(world, days_ago=10)
    response = _api(world, "str.coordinator").get(f"/api/v1/subjects/{subject.code}/kinetics/assessment")
    _error(response, 409, "kinetics_no_observations")


# --- access -----------------------------------------------------------------------------------------


def test_other_centers_subject_is_not_found_everywhere(world: Any) -> None:
    subject = _infused(world, "STR", days_ago=30)
    browser = world.client_for("bdx.investigator")
    for url in ("", "panel/", "observations/new/", "observations/import/"):
        assert browser.get(f"/biology/subjects/{subject.code}/{url}").status_code == 404, url
    api = _api(world, "bdx.coordinator")
    base = f"/api/v1/subjects/{subject.code}/kinetics"
    _error(api.get(f"{base}/observations"), 404, "not_found")
    _error(api.get(f"{base}/assessment"), 404, "not_found")
    _error(_post_csv(api, subject, b"marker,sampled_at,value,unit\n"), 404, "not_found")


@pytest.mark.parametrize("username", ["str.pharmacist", "str.apheresis"])
def test_center_staff_other_than_investigator_and_coordinator_may_read_but_not_enter(world: Any, username: str) -> None:
    subject = _infused(world, "STR", days_ago=30)
    browser = world.client_for(username)
    assert browser.get(f"/biology/subjects/{subject.code}/").status_code == 200
    assert browser.get(f"/biology/subjects/{subject.code}/observations/new/").status_code == 403
    posted = browser.post(f"/biology/subjects/{subject.code}/observations/import/", {"text": "x"})
    assert posted.status_code == 403
    api = _api(world, username)
    payload = {"observations": [{"marker": "car_t", "sampled_at": "2026-01-01T09:00", "value": 1, "unit": "cells/µL"}]}
    response = api.post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations", payload, content_type="application/json"
    )
    _error(response, 403, "access_denied")
    assert not _stored(subject).exists()
    refused = AuditEntry.objects.filter(event="access.refused", subject_code=subject.code, actor_username=username)
    assert refused.count() == 2  # the page's POST and the API call are both recorded


def test_sponsor_monitor_reads_pseudonymously_and_cannot_enter(world: Any) -> None:
    subject = _infused(world, "BDX", days_ago=30)
    _record(world, subject, {7: {"car_t": 8.0, "b_cells": None}})
    monitor = world.client_for("cra.monitor")
    page = monitor.get(f"/biology/subjects/{subject.code}/")
    assert page.status_code == 200
    body = page.content.decode()
    identity = identity_decrypt(subject.identity.ciphertext)
    # The subject's own identity strings, whole: a fragment ("IPP") could be part of a random CSRF token.
    assert subject.code in body and identity["family_name"] not in body and identity["hospital_number"] not in body
    assert "observations/new" not in body  # no entry link for a sponsor role
    assert monitor.get(f"/biology/subjects/{subject.code}/observations/new/").status_code == 403
    cohort = monitor.get("/biology/cohort/").content.decode()
    assert subject.code in cohort and "Testpatient" not in cohort


# --- pages: flags, bands, non-converged fit -------------------------------------------------------------


def test_kinetics_page_and_panel_show_raised_flags_with_bands(world: Any) -> None:
    subject = _infused(world, days_ago=400)
    _record(world, subject, _simulated(EARLY_RETURN))
    client = world.client_for("str.investigator")
    detail = client.get(f"/subjects/{subject.code}/").content.decode()
    # The subject page only announces the panel; the fit runs when htmx fetches it.
    assert f'hx-get="/biology/subjects/{subject.code}/panel/"' in detail
    # No script or stylesheet from another origin ("cdn" anywhere in the page could be a random CSRF token).
    assert "plotly.min.js" in detail
    assert not re.search(r"""<(?:script|link)[^>]+(?:src|href)=["'](?:https?:)?//""", detail)
    for url in (f"/biology/subjects/{subject.code}/", f"/biology/subjects/{subject.code}/panel/"):
        body = client.get(url).content.decode()
        assert 'data-flag="early_b_cell_return" data-state="raised"' in body, url
        assert 'data-flag="anti_dsdna_rise_after_b_cell_return" data-state="raised"' in body
        assert 'data-flag="car_t_peak_below_band" data-state="clear"' in body
        assert "Retour des lymphocytes B bien plus tôt qu&#x27;attendu" in body
        assert 'data-converged="true"' in body
        for marker in ("car_t", "b_cells", "anti_dsdna"):
            assert f'data-marker="{marker}"' in body
        assert _plotted("Ce patient, 5–95 % (ajustement)") in body  # the subject's band is drawn
        assert _plotted("Population 5–95 %") in body


def test_a_fit_that_does_not_converge_says_so_and_draws_no_band(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = _infused(world, days_ago=400)
    _record(world, subject, _simulated({}))
    # The real optimiser, stopped after one evaluation: it cannot converge.
    monkeypatch.setattr(kinetics_assessment, "fit_subject", functools.partial(fit_subject, max_evaluations=1))
    body = world.client_for("str.investigator").get(f"/biology/subjects/{subject.code}/").content.decode()
    assert 'data-converged="false"' in body
    assert "n'a pas convergé" in body
    assert _plotted("Ce patient, 5–95 % (ajustement)") not in body and _plotted("Évolution ajustée") not in body
    assert _plotted("Population 5–95 %") in body  # the prior still frames the results
    api = _api(world, "str.coordinator").get(f"/api/v1/subjects/{subject.code}/kinetics/assessment").json()
    assert api["fit"]["converged"] is False and api["fit"]["band"] is None
    assert api["fit"]["message"].startswith("did not converge")


def test_results_before_infusion_from_screening_are_listed_but_not_used(world: Any) -> None:
    from cartrial.apps.clinical.services import LabObservationInput, lab_observations_record

    subject = _infused(world, days_ago=60)
    with transaction.atomic():
        lab_observations_record(
            actor=world.actor("str.coordinator"),
            subject=subject,
            observations=[LabObservationInput("anti_dsdna", 300.0, "IU/mL", _at(subject, -20), context="screening")],
        )
        lab_observations_record(
            actor=world.actor("str.coordinator"),
            subject=subject,
            observations=[LabObservationInput("b_cells", 0.0, "cells/µL", _at(subject, 3), context="follow_up")],
        )
    _record(world, subject, {7: {"anti_dsdna": 250.0, "b_cells": None}})
    rows = biology_selectors.subject_kinetic_rows(subject=subject)
    assert [(row.day, row.usable, row.not_used_because) for row in rows] == [
        (-20, False, "before_infusion"),
        (3, False, "zero_without_loq"),
        (7, True, ""),
        (7, True, ""),
    ]
    body = world.client_for("str.investigator").get(f"/biology/subjects/{subject.code}/").content.decode()
    assert "avant la perfusion : non utilisé par le modèle" in body
    assert "Ajustement individuel de 2 résultats convergé" in body


COHORT_QUERIES = 10  # with the header's alert badge (one COUNT)

# --- cohort -------------------------------------------------------------------------------------------


def test_cohort_page_queries_are_bounded_and_scoped(world: Any, django_assert_max_num_queries: Any) -> None:
    early = _infused(world, "STR", days_ago=400)
    _record(world, early, _simulated(EARLY_RETURN))
    typical = _infused(world, "STR", days_ago=400)
    _record(world, typical, _simulated({}))
    elsewhere = _infused(world, "BDX", days_ago=400)
    _record(world, elsewhere, _simulated({}, days=(0, 7, 14)))
    client = world.client_for("str.investigator")
    client.get("/biology/cohort/")  # the reference cohort is simulated once per process
    # session, user, scope, subjects, their kinetic results, the header's memberships, session save
    with django_assert_max_num_queries(COHORT_QUERIES):
        response = client.get("/biology/cohort/")
    body = response.content.decode()
    assert f'data-subject="{early.code}"' in body and f'data-subject="{typical.code}"' in body
    assert elsewhere.code not in body  # another center's patient stays out of the page
    row = body.split(f'data-subject="{early.code}"')[1].split("</tr>")[0]
    assert 'data-flag="early_b_cell_return"' in row and 'data-flag="anti_dsdna_rise_after_b_cell_return"' in row
    typical_row = body.split(f'data-subject="{typical.code}"')[1].split("</tr>")[0]
    assert "data-flag=" not in typical_row
    for div in ("cohort-peak", "cohort-reappearance", "cohort-b_cells", "cohort-anti_dsdna", "cohort-car_t"):
        assert f'id="{div}"' in body
    # Two more infused patients with results: still the same number of queries.
    for _ in range(2):
        extra = _infused(world, "STR", days_ago=100)
        _record(world, extra, _simulated({}, days=(0, 7, 14, 28)))
    with django_assert_max_num_queries(COHORT_QUERIES):
        assert client.get("/biology/cohort/").status_code == 200


# --- API: results read since a time, the markers, the cohort -----------------------------------------


def test_api_results_are_a_page_read_since_a_time(world: Any) -> None:
    subject = _infused(world, days_ago=60)
    now = clock.now()
    with clock.frozen_at(now - timedelta(hours=1)):
        _record(world, subject, {7: {"car_t": 8.0, "b_cells": None}})
    cut = now - timedelta(minutes=30)
    _record(world, subject, {14: {"car_t": 12.0}})
    client = _api(world, "str.coordinator")
    url = f"/api/v1/subjects/{subject.code}/kinetics/observations"
    everything = client.get(url).json()
    assert (everything["total"], everything["next_offset"], everything["subject"]) == (3, None, subject.code)
    recent = client.get(url, {"since": cut.isoformat()}).json()
    assert [(row["marker"], row["day"], row["value"]) for row in recent["items"]] == [("car_t", 14, 12.0)]
    assert recent["total"] == 1 and recent["time_zone"] == "Europe/Paris"
    window = client.get(url, {"limit": 2}).json()
    assert [row["day"] for row in window["items"]] == [7, 7] and window["next_offset"] == 2
    assert client.get(url, {"limit": 2, "offset": 2}).json()["items"][0]["day"] == 14
    _error(client.get(url, {"since": "2026-01-01T08:00"}), 422, "invalid_input")


def test_api_markers_give_each_markers_units_and_plausible_ranges(world: Any) -> None:
    body = _api(world, "cra.monitor").get("/api/v1/kinetics/markers").json()
    markers = {marker["marker"]: marker for marker in body["markers"]}
    assert list(markers) == ["car_t", "b_cells", "anti_dsdna"]
    assert markers["anti_dsdna"]["preferred_unit"] == "IU/mL"
    assert markers["b_cells"]["preferred_unit"] in {unit["unit"] for unit in markers["b_cells"]["units"]}
    assert all(unit["minimum"] < unit["maximum"] for marker in markers.values() for unit in marker["units"])
    french = _api(world, "cra.monitor", HTTP_ACCEPT_LANGUAGE="fr").get("/api/v1/kinetics/markers").json()
    assert [marker["title"] for marker in french["markers"]] == [
        "Cellules CAR-T",
        "Lymphocytes B CD19+",
        "Anti-ADN natif",
    ]


def test_api_cohort_gives_each_infused_patient_with_its_flags_within_the_scope(world: Any) -> None:
    now = clock.now()
    early = _infused(world, "STR", days_ago=400)
    typical = _infused(world, "STR", days_ago=400)
    elsewhere = _infused(world, "BDX", days_ago=400)
    with clock.frozen_at(now - timedelta(hours=1)):
        _record(world, early, _simulated(EARLY_RETURN))
        _record(world, elsewhere, _simulated({}, days=(0, 7, 14)))
    cut = now - timedelta(minutes=30)
    _record(world, typical, _simulated({}))
    client = _api(world, "str.investigator")
    response = client.get("/api/v1/kinetics/cohort")
    assert response.status_code == 200, response.content
    body = response.json()
    patients = {patient["subject"]: patient for patient in body["items"]}
    assert set(patients) == {early.code, typical.code}  # another center's patient stays out
    assert {flag["code"] for flag in patients[early.code]["flags_raised"]} >= {
        "early_b_cell_return",
        "anti_dsdna_rise_after_b_cell_return",
    }
    assert patients[typical.code]["flags_raised"] == []
    assert patients[typical.code]["peak_car_t"]["day"] is not None and patients[typical.code]["points"]
    assert patients[typical.code]["results"] == len(patients[typical.code]["points"])
    assert body["preset"] == "sle-default" and body["population"]["patients"] > 0
    assert set(body["band"]["markers"]["b_cells"]) == {"unit", "p05", "p50", "p95"}
    recent = client.get("/api/v1/kinetics/cohort", {"since": cut.isoformat()}).json()
    assert [patient["subject"] for patient in recent["items"]] == [typical.code] and recent["total"] == 1
    window = client.get("/api/v1/kinetics/cohort", {"limit": 1}).json()
    assert len(window["items"]) == 1 and (window["total"], window["next_offset"]) == (2, 1)
    french = _api(world, "str.investigator", HTTP_ACCEPT_LANGUAGE="fr").get("/api/v1/kinetics/cohort").json()
    flags = {flag["code"]: flag for p in french["items"] for flag in p["flags_raised"]}
    assert flags["early_b_cell_return"]["title"] == "Retour des lymphocytes B bien plus tôt qu'attendu"
    monitor = {p["subject"] for p in _api(world, "cra.monitor").get("/api/v1/kinetics/cohort").json()["items"]}
    assert monitor == {elsewhere.code}  # the monitor follows BDX and LIL
    _error(client.get("/api/v1/kinetics/cohort", {"center": "BDX"}), 404, "not_found")


# --- demo ---------------------------------------------------------------------------------------------


def test_demo_seeds_results_for_every_infused_subject_and_raises_flags(db: Any) -> None:
    from cartrial.demo import build_demo, demo_epoch
    from cartrial.protocols import active_protocol

    today = demo_epoch()
    build_demo(active_protocol(), today=today)
    infused = Subject.objects.filter(infusion_date__isnull=False)
    assert infused.count() == 6
    raised: dict[str, set[str]] = {}
    with clock.frozen_at(today):
        for subject in infused:
            kinetics = biology_selectors.subject_kinetics(subject=subject)
            assert kinetics.assessment is not None, subject.code
            assert kinetics.assessment.fit.converged, subject.code
            assert {row.marker for row in kinetics.rows} == {"car_t", "b_cells", "anti_dsdna"}
            assert all(row.day is not None and row.day >= 0 for row in kinetics.rows)
            raised[subject.code] = {flag.code for flag in kinetics.assessment.flags if flag.raised}
    departures = {code: flags for code, flags in raised.items() if flags}
    assert departures.get("STR-004") == {"car_t_peak_below_band"}
    assert {"early_b_cell_return", "anti_dsdna_rise_after_b_cell_return"} <= departures.get("MTL-002", set())
    assert set(departures) == {"STR-004", "MTL-002"}, departures
