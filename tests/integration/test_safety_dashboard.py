"""The safety dashboard (issue 10 item 6) on a small study recorded through the API: AEs of two terms
and three grades (one serious, its SAE clock overdue), one CRS grade 2 and one ICANS grade 1
episode, one DLT candidate decided by the investigator; the figures, another center's subjects
absent, the plots' series, no identity, the navigation, the pinned queries and the French page."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from test_french_pages import EnglishDetector, catalog_msgids

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.dashboards.plots import AE_PLOT_BASE_PX, AE_PLOT_ROW_PX
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

CALM = {
    "temperature_c": 37.0,
    "hypotension": "none",
    "hypoxia": "none",
    "ice_score": 10,
    "consciousness": "normal",
    "seizure": "none",
    "motor_weakness": "none",
    "cerebral_edema": "none",
    "tocilizumab_given": False,
    "corticosteroids_given": False,
}
FEVER = CALM | {"temperature_c": 38.4}  # CRS grade 1
FEVER_OXYGEN_ICE_8 = CALM | {"temperature_c": 38.9, "hypoxia": "low_flow", "ice_score": 8}  # CRS 2, ICANS 1
# Pinned counts: a change here is a change of the dashboard's reads, to be explained (docs/dashboards.md).
# The dashboard's own reads are 6 (subjects, AEs, their DLT decisions, the open clocks' AEs and their
# reports, the daily CRS/ICANS assessments); the API adds the token and the memberships, the page the
# session, the user, the memberships (scope and navigation), the alert badge and the session's save.
SAFETY_PAGE_QUERIES = 14
SAFETY_API_QUERIES = 8


class Api:
    """One token client per user, as an outside program would call the API."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.clients: dict[str, Client] = {}

    def __call__(self, username: str) -> Client:
        if username not in self.clients:
            token = api_token_create(actor=Actor.system("test"), user=self.world.users[username], label="t")
            self.clients[username] = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self.clients[username]


def _day(subject: Subject, n: int) -> str:
    assert subject.infusion_date is not None
    return (subject.infusion_date + timedelta(days=n)).isoformat()


def _ae(api: Api, subject: Subject, **body: Any) -> int:
    center = subject.center.code.lower()
    response = api(f"{center}.coordinator").post(
        f"/api/v1/subjects/{subject.code}/adverse-events",
        {"action": "none", "outcome": "not_recovered", **body},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    ae_id: int = response.json()["id"]
    return ae_id


def _assess(api: Api, subject: Subject, days: dict[int, dict[str, Any]]) -> None:
    center = subject.center.code.lower()
    for day, inputs in days.items():
        response = api(f"{center}.coordinator").post(
            f"/api/v1/subjects/{subject.code}/toxicity/assessments",
            {"assessed_on": _day(subject, day), **inputs},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content


def _sae(subject: Subject) -> dict[str, Any]:
    return {
        "term": "febrile_neutropenia",
        "grade": 3,
        "start_date": _day(subject, 6),
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "awareness_at": f"{_day(subject, 6)}T10:00",
        "action": "hospitalisation",
        "outcome": "recovering",
    }


def _record_subject(world: Any, api: Api, center: str) -> tuple[Subject, dict[str, int]]:
    """An infused subject with a grade 4 neutropenia (DLT candidate), an SAE whose initial report was
    never sent, a CRS grade 2 (D1–D2) and an ICANS grade 1 (D2)."""
    subject: Subject = world.new_subject(center, State.FOLLOW_UP)
    ids = {
        "neutropenia": _ae(api, subject, term="neutrophil_count_decreased", grade=4, start_date=_day(subject, 5)),
        "sae": _ae(api, subject, **_sae(subject)),
    }
    _assess(api, subject, {0: CALM, 1: FEVER, 2: FEVER_OXYGEN_ICE_8, 3: CALM})
    return subject, ids


@pytest.fixture
def api(world: Any) -> Api:
    return Api(world)


@pytest.fixture
def study(world: Any, api: Api) -> dict[str, Any]:
    """BDX: one subject with everything above, one with a grade 2 neutropenia only, one included (not
    infused); LIL: a subject like the first (another center)."""
    first, ids = _record_subject(world, api, "BDX")
    second: Subject = world.new_subject("BDX", State.FOLLOW_UP)
    _ae(api, second, term="neutrophil_count_decreased", grade=2, start_date=_day(second, 20))
    lil, _lil_ids = _record_subject(world, api, "LIL")
    return {
        "first": first,
        "second": second,
        "included": world.new_subject("BDX", State.INCLUDED),
        "lil": lil,
        **ids,
    }


def _figure(page: str, div_id: str) -> dict[str, Any]:
    found = re.search(rf'<script id="{div_id}-figure" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert found, div_id
    figure: dict[str, Any] = json.loads(found.group(1))["figure"]
    return figure


def test_the_api_counts_aes_by_term_and_grade_with_the_serious_apart(api: Api, study: dict[str, Any]) -> None:
    body = api("bdx.coordinator").get("/api/v1/dashboards/safety").json()
    assert body["centers"] == ["BDX"] and body["infused"] == 2
    rows = {row["term"]: row for row in body["adverse_events"]}
    assert list(rows) == ["neutrophil_count_decreased", "febrile_neutropenia"]  # most frequent first
    neutropenia, sae = rows["neutrophil_count_decreased"], rows["febrile_neutropenia"]
    assert neutropenia["by_grade"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert (neutropenia["total"], neutropenia["serious"], neutropenia["subjects"]) == (2, 0, 2)
    assert sae["by_grade"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 0}
    assert (sae["total"], sae["serious"], sae["subjects"], sae["aesi"]) == (1, 1, 1, "infection")
    aesi = {row["category"]: row for row in body["aesi"]}
    assert aesi["prolonged_cytopenia"] == {
        "category": "prolonged_cytopenia",
        "events": 2,
        "serious": 0,
        "subjects": 2,
        "max_grade": 4,
    }
    assert (aesi["infection"]["events"], aesi["infection"]["serious"]) == (1, 1)
    assert aesi["crs"]["events"] == 0 and aesi["crs"]["max_grade"] is None


def test_the_api_counts_crs_and_icans_subjects_by_maximum_grade(api: Api, study: dict[str, Any]) -> None:
    body = api("bdx.coordinator").get("/api/v1/dashboards/safety").json()
    episodes = {row["kind"]: row for row in body["episodes"]}
    assert episodes["crs"] == {
        "kind": "crs",
        "subjects_by_max_grade": {"1": 0, "2": 1, "3": 0, "4": 0},
        "subjects": 1,
        "episodes": 1,
    }
    assert episodes["icans"]["subjects_by_max_grade"] == {"1": 1, "2": 0, "3": 0, "4": 0}
    # The data manager reads both centers: the LIL subject's episodes count too.
    everyone = {row["kind"]: row for row in api("dm.datamanager").get("/api/v1/dashboards/safety").json()["episodes"]}
    assert everyone["crs"]["subjects_by_max_grade"]["2"] == 2 and everyone["icans"]["subjects"] == 2


def test_the_overdue_sae_report_is_listed_with_its_due_time_and_linked_to_its_ae(
    api: Api, study: dict[str, Any], client_for: Any
) -> None:
    first = study["first"]
    body = api("bdx.coordinator").get("/api/v1/dashboards/safety").json()
    [due] = body["sae_reports_due"]
    assert (due["subject"], due["adverse_event"], due["kind"], due["overdue"]) == (
        first.code,
        study["sae"],
        "initial",
        True,
    )
    awareness = datetime.fromisoformat(
        api("bdx.coordinator")
        .get(f"/api/v1/subjects/{first.code}/adverse-events/{study['sae']}")
        .json()["awareness_at"]
    )
    assert datetime.fromisoformat(due["due_at"]) == awareness + timedelta(hours=24)
    page = client_for("bdx.coordinator").get("/dashboards/safety/").content.decode()
    row = re.search(rf'<tr data-ae="{study["sae"]}" data-clock="(\w+)">(.*?)</tr>', page, re.DOTALL)
    assert row and row.group(1) == "overdue"
    assert f'href="/safety/subjects/{first.code}/adverse-events/{study["sae"]}/"' in row.group(2)
    # Once the initial report is sent, the report due is the follow-up.
    sent = api("bdx.coordinator").post(
        f"/api/v1/subjects/{first.code}/adverse-events/{study['sae']}/sae-reports",
        {"kind": "initial", "sent_at": f"{_day(first, 6)}T18:00"},
        content_type="application/json",
    )
    assert sent.status_code == 201
    [after] = api("bdx.coordinator").get("/api/v1/dashboards/safety").json()["sae_reports_due"]
    assert after["kind"] == "follow_up" and after["adverse_event"] == study["sae"]


def test_the_dlt_candidate_is_pending_then_confirmed_by_the_investigators_signature(
    api: Api, study: dict[str, Any]
) -> None:
    first = study["first"]

    def dlt_rows(username: str = "bdx.coordinator") -> dict[str, Any]:
        body = api(username).get("/api/v1/dashboards/safety").json()["dlt"]
        assert body["window_days"] == [0, 28]
        return {row["subject"]: row for row in body["subjects"]}

    rows = dlt_rows()
    assert set(rows) == {first.code, study["second"].code}  # the infused subjects of BDX
    assert (rows[first.code]["pending"], rows[first.code]["confirmed"], rows[first.code]["ruled_out"]) == (1, 0, 0)
    assert rows[first.code]["candidates"] == [
        {
            "adverse_event": study["neutropenia"],
            "term": "neutrophil_count_decreased",
            "grade": 4,
            "rule": "cytopenia_grade4_beyond_d28",
            "decision": "pending",
        }
    ]
    assert rows[first.code]["window_end"] == _day(first, 28) and rows[first.code]["window_open"] is False
    assert rows[study["second"].code]["candidates"] == []  # grade 2: no rule met
    decided = api("bdx.investigator").post(
        f"/api/v1/subjects/{first.code}/dlt",
        {"adverse_event": study["neutropenia"], "decision": "confirmed", "password": DEMO_PASSWORD},
        content_type="application/json",
    )
    assert decided.status_code == 200, decided.content
    after = dlt_rows()[first.code]
    assert (after["pending"], after["confirmed"]) == (0, 1)
    assert after["candidates"][0]["decision"] == "confirmed"


def test_another_centers_subjects_are_absent_and_the_lab_is_refused(api: Api, study: dict[str, Any]) -> None:
    body = api("bdx.coordinator").get("/api/v1/dashboards/safety")
    assert study["lil"].code not in body.content.decode()
    everyone = api("dm.datamanager").get("/api/v1/dashboards/safety").json()
    assert everyone["centers"] == ["BDX", "LIL"] and everyone["infused"] == 3
    assert {row["subject"] for row in everyone["sae_reports_due"]} == {study["first"].code, study["lil"].code}
    lab = api("lab.manufacturing").get("/api/v1/dashboards/safety")
    assert lab.status_code == 403 and lab.json()["code"] == "access_denied"


def test_the_page_draws_the_stacked_bars_and_the_episodes_with_their_series_and_no_identity(
    world: Any, study: dict[str, Any]
) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    page = client.get("/dashboards/safety/").content.decode()
    # Stacked by grade only: the serious events are counted apart, in the table's "Serious" column.
    ae_series = "grade_1 grade_2 grade_3 grade_4 grade_5"
    assert f'id="adverse-events-plot-box" aria-labelledby="adverse-events-plot-title" data-series="{ae_series}"' in page
    bars = _figure(page, "adverse-events-plot")
    assert [trace["meta"] for trace in bars["data"]] == ae_series.split()
    assert bars["layout"]["barmode"] == "stack"
    # Horizontal bars, one row per term (terms level on the y axis), the figure growing with the terms.
    assert {trace["orientation"] for trace in bars["data"]} == {"h"}
    assert bars["layout"]["yaxis"]["automargin"] is True
    assert bars["layout"]["height"] == AE_PLOT_BASE_PX + AE_PLOT_ROW_PX * 2
    by_meta = {trace["meta"]: trace for trace in bars["data"]}
    assert by_meta["grade_4"]["y"] == ["Neutrophil count decreased", "Febrile neutropenia"]
    assert (by_meta["grade_2"]["x"], by_meta["grade_3"]["x"], by_meta["grade_4"]["x"]) == ([1, 0], [0, 1], [1, 0])
    serious = re.search(r'<tr data-term="febrile_neutropenia">.*?<td class="num" data-serious>(\d+)</td>', page, re.S)
    assert serious is not None and serious.group(1) == "1"
    episodes = _figure(page, "episodes-plot")
    assert 'data-series="crs icans"' in page
    assert {t["meta"]: t["y"] for t in episodes["data"]} == {"crs": [0, 1, 0, 0], "icans": [1, 0, 0, 0]}
    assert 'data-testid="dlt-totals"' in page and f'data-candidate="{study["neutropenia"]}"' in page
    assert study["lil"].code not in page
    assert "Testpatient" not in page and "IPP0" not in page
    # The navigation's one "Dashboards" entry leads to the study dashboard, which links to this one.
    assert '<a href="/dashboards/study/" data-testid="dashboards-nav">' in page
    assert 'data-testid="study-dashboard-link"' in page
    study_page = client.get("/dashboards/study/").content.decode()
    assert 'href="/dashboards/safety/" data-testid="safety-dashboard-link"' in study_page


def test_the_navigation_offers_the_safety_dashboard_to_its_readers_only(world: Any) -> None:
    monitor = world.client_for("cra.monitor")
    assert '<a href="/dashboards/study/" data-testid="dashboards-nav">' in monitor.get("/subjects/").content.decode()
    assert 'href="/dashboards/safety/"' in monitor.get("/dashboards/study/").content.decode()
    pharmacist = world.client_for("bdx.pharmacist")
    assert 'href="/dashboards/safety/"' not in pharmacist.get("/subjects/").content.decode()
    assert pharmacist.get("/dashboards/safety/").status_code == 403


def _queries(request: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_safety_dashboard_takes_as_many_queries_at_2_and_at_6_subjects(world: Any, api: Api) -> None:
    client = world.client_for("dm.datamanager")
    subjects: list[Subject] = []
    counts = {}
    for size in (2, 6):
        while len(subjects) < size:
            subjects.append(_record_subject(world, api, "BDX" if len(subjects) % 2 else "LIL")[0])
        # The first request of a session or token writes its traces; counted afterwards, steadily.
        assert client.get("/dashboards/safety/").status_code == 200
        assert api("dm.datamanager").get("/api/v1/dashboards/safety").status_code == 200
        counts[size] = {
            "page": _queries(lambda: client.get("/dashboards/safety/")),
            "api": _queries(lambda: api("dm.datamanager").get("/api/v1/dashboards/safety")),
        }
        body = api("dm.datamanager").get("/api/v1/dashboards/safety").json()
        assert len(body["sae_reports_due"]) == size and body["infused"] == size  # every subject was read
    assert counts[2] == counts[6]
    assert counts[6] == {"page": SAFETY_PAGE_QUERIES, "api": SAFETY_API_QUERIES}


def test_the_safety_dashboard_is_french_for_a_french_reader(world: Any, study: dict[str, Any]) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "fr"
    page = client.get("/dashboards/safety/").content.decode()
    assert EnglishDetector(catalog_msgids()).english_texts(page) == []
    assert "Tableau de bord de la sécurité" in page
    bars = _figure(page, "adverse-events-plot")
    assert bars["layout"]["yaxis"]["title"]["text"] == "Terme CTCAE"
    assert bars["data"][3]["y"] == ["Diminution du nombre de neutrophiles", "Neutropénie fébrile"]
