"""The dashboards (issue 10 item 6) on a small study built through the real services: the figures
(flow, DORIS / LLDAS per visit, inclusions, swimmer rows), the scope (another center's subjects
absent), no identity, the plots' series, the subject's time courses (units converted, days from
D0), the pinned number of queries and the French page."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from test_french_pages import EnglishDetector, catalog_msgids

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook.selectors import inclusion_dates
from cartrial.apps.casebook.services import form_save, visit_done_record
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

# The answers the form asks for DORIS and LLDAS (without them those are stored as not assessable).
ANSWERS = {
    "maintenance_therapy_stable": True,
    "standard_maintenance_only": True,
    "hemolytic_anemia": False,
    "gi_activity": False,
}
SCREENING_ACTIVITY = {
    "sledai2k_descriptors": ["arthritis", "rash", "low_complement", "increased_dna_binding"],
    "physician_global_assessment": 2.0,
    "prednisone_mg_per_day": 20,
    "immunosuppressants": ["mycophenolate"],
    **ANSWERS,
}
# DORIS 2021 (clinical SLEDAI 0, PGA < 0.5, prednisone <= 5) and LLDAS.
REMISSION = {"sledai2k_descriptors": [], "physician_global_assessment": 0.2, "prednisone_mg_per_day": 5, **ANSWERS}
# Neither: arthritis (clinical SLEDAI 4) and prednisone 10 mg/day (> 7.5 for LLDAS).
ACTIVE = {
    "sledai2k_descriptors": ["arthritis"],
    "physician_global_assessment": 1.0,
    "prednisone_mg_per_day": 10,
    **ANSWERS,
}
# Pinned counts: a change here is a change of the dashboards' reads, to be explained.
# The stored activity is read through the casebook's selectors: its forms and visit dates (two
# queries) and its counts per visit (one) for the study; its forms and visit dates, and the daily
# CRS/ICANS assessments of the episode bands, for the time courses.
STUDY_PAGE_QUERIES = 15  # with the header's alert badge (one COUNT)
STUDY_API_QUERIES = 9
TIME_COURSES_PAGE_QUERIES = 13  # with the alert badge
TIME_COURSES_API_QUERIES = 7


def _visit(world: Any, subject: Subject, code: str, done_on: date, forms: dict[str, dict[str, Any]]) -> None:
    """The visit done on `done_on` with its forms saved by the center's coordinator."""
    actor = world.actor(f"{subject.center.code.lower()}.coordinator")
    visit_done_record(actor=actor, subject=subject, protocol=world.protocol, visit_code=code, done_on=done_on)
    for form, items in forms.items():
        form_save(actor=actor, subject=subject, protocol=world.protocol, visit_code=code, form_code=form, items=items)


def _infused(world: Any, center: str, *, m3: dict[str, Any], m6: dict[str, Any] | None = None) -> Subject:
    """An infused subject with its screening, M3 (and M6) activity forms."""
    subject = world.new_subject(center, State.FOLLOW_UP)
    assert subject.infusion_date is not None
    included_on = inclusion_dates([subject.pk])[subject.pk]
    _visit(world, subject, "SCR", included_on, {"sle_activity": SCREENING_ACTIVITY})
    _visit(world, subject, "M3", subject.infusion_date + timedelta(days=90), {"sle_activity": m3})
    if m6 is not None:
        _visit(world, subject, "M6", subject.infusion_date + timedelta(days=180), {"sle_activity": m6})
    return subject


@pytest.fixture
def study(world: Any) -> dict[str, Subject]:
    """BDX: one subject in remission at M3 and M6, one active at M3, one included, one in screening,
    one pre-screened; LIL: one in remission at M3 (another center)."""
    return {
        "remission": _infused(world, "BDX", m3=REMISSION, m6={**REMISSION, "prednisone_mg_per_day": 0}),
        "active": _infused(world, "BDX", m3=ACTIVE),
        "included": world.new_subject("BDX", State.INCLUDED),
        "screening": world.new_subject("BDX", State.SCREENING),
        "pre": world.new_subject("BDX", State.PRE_SCREENING),
        "lil": _infused(world, "LIL", m3=REMISSION),
    }


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _figure(page: str, div_id: str) -> dict[str, Any]:
    """The Plotly figure a page embeds under `div_id` (its JSON data, as cartrial.js reads it)."""
    found = re.search(rf'<script id="{div_id}-figure" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert found, div_id
    figure: dict[str, Any] = json.loads(found.group(1))["figure"]
    return figure


def test_the_study_api_counts_the_flow_and_the_rates_of_the_users_centers(
    world: Any, study: dict[str, Subject]
) -> None:
    body = _api(world, "bdx.coordinator").get("/api/v1/dashboards/study").json()
    assert body["centers"] == ["BDX"]
    assert body["flow"] == {"screened": 4, "included": 3, "infused": 2, "in_remission": 1}
    rates = {row["visit"]: row for row in body["rates"]}
    assert (rates["M3"]["assessed"], rates["M3"]["doris"], rates["M3"]["lldas"]) == (2, 1, 1)
    assert (rates["M3"]["doris_pct"], rates["M3"]["lldas_pct"]) == (50.0, 50.0)
    assert (rates["M6"]["assessed"], rates["M6"]["doris"], rates["M6"]["lldas"]) == (1, 1, 1)
    assert rates["M12"]["assessed"] == 0 and rates["M12"]["doris_pct"] is None
    # Another center's subject is absent from every figure.
    swimmers = {row["subject"]: row for row in body["swimmers"]}
    assert set(swimmers) == {study[k].code for k in ("remission", "active", "included")}
    assert study["lil"].code not in json.dumps(body)
    assert [row["center"] for row in body["inclusions"]] == ["BDX"]
    assert sum(month["count"] for month in body["inclusions"][0]["months"]) == 3


def test_the_swimmer_rows_place_apheresis_d0_visits_and_remission_in_days_from_inclusion(
    world: Any, study: dict[str, Subject]
) -> None:
    body = _api(world, "bdx.coordinator").get("/api/v1/dashboards/study").json()
    row = next(r for r in body["swimmers"] if r["subject"] == study["remission"].code)
    subject = study["remission"]
    included_on = inclusion_dates([subject.pk])[subject.pk]
    assert subject.infusion_date is not None
    assert row["infusion_day"] == (subject.infusion_date - included_on).days
    assert 0 <= row["apheresis_day"] < row["infusion_day"]
    visits = {v["visit"]: v["day"] for v in row["visits"]}
    assert visits["M3"] == row["infusion_day"] + 90 and visits["M6"] == row["infusion_day"] + 180
    # DORIS at M3 and M6: sustained from M3.
    assert (row["remission_visit"], row["remission_day"]) == ("M3", visits["M3"])
    active = next(r for r in body["swimmers"] if r["subject"] == study["active"].code)
    assert active["remission_visit"] is None and active["remission_day"] is None
    included = next(r for r in body["swimmers"] if r["subject"] == study["included"].code)
    assert included["infusion_day"] is None and included["state"] == State.INCLUDED.value


def test_a_data_manager_sees_every_center_and_the_lab_none(world: Any, study: dict[str, Subject]) -> None:
    body = _api(world, "dm.datamanager").get("/api/v1/dashboards/study").json()
    assert body["flow"] == {"screened": 5, "included": 4, "infused": 3, "in_remission": 2}
    assert study["lil"].code in {row["subject"] for row in body["swimmers"]}
    lab = _api(world, "lab.manufacturing").get("/api/v1/dashboards/study")
    assert lab.status_code == 403 and lab.json()["code"] == "access_denied"


def test_the_study_page_draws_each_figure_with_its_series_and_shows_no_identity(
    world: Any, study: dict[str, Subject]
) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    page = client.get("/dashboards/study/").content.decode()
    for div_id, series in (
        ("inclusions-plot", "BDX"),
        ("flow-plot", "flow"),
        ("rates-plot", "doris lldas"),
        ("swimmer-plot", "course apheresis infusion visits remission"),
    ):
        assert (
            f'<figure class="chart" id="{div_id}-box" aria-labelledby="{div_id}-title" data-series="{series}">' in page
        )
        assert [trace["meta"] for trace in _figure(page, div_id)["data"]] == series.split()
    flow = _figure(page, "flow-plot")["data"][0]
    assert flow["y"] == [4, 3, 2, 1]
    swimmer = _figure(page, "swimmer-plot")
    bars = swimmer["data"][0]
    assert set(bars["y"]) == {study[k].code for k in ("remission", "active", "included")}
    remission = next(t for t in swimmer["data"] if t["meta"] == "remission")
    assert remission["y"] == [study["remission"].code]
    assert swimmer["layout"]["xaxis"]["title"]["text"] == "Days since inclusion"
    assert 'data-stage="in_remission"' in page and f'data-subject="{study["included"].code}"' in page
    assert study["lil"].code not in page and study["pre"].code not in page
    # The coordinator may see who the patients are, elsewhere: never on the dashboard.
    assert "Testpatient" not in page and "IPP0" not in page
    assert 'href="/dashboards/study/"' in page  # the navigation offers it


def test_the_navigation_offers_the_dashboard_to_its_readers_only(world: Any, study: dict[str, Subject]) -> None:
    assert 'href="/dashboards/study/"' in world.client_for("sponsor.admin").get("/subjects/").content.decode()
    lab = world.client_for("lab.manufacturing")
    assert 'href="/dashboards/study/"' not in lab.get("/subjects/").content.decode()
    assert lab.get("/dashboards/study/").status_code == 403


def test_time_courses_give_each_marker_in_its_unit_by_day_since_infusion(world: Any, study: dict[str, Subject]) -> None:
    subject = study["active"]
    assert subject.infusion_date is not None
    d14 = subject.infusion_date + timedelta(days=14)
    _visit(
        world,
        subject,
        "D14",
        d14,
        {
            "immunology": {
                "c3": {"value": 90, "unit": "mg/dL"},
                "c4": 0.12,
                "igg": {"value": 650, "unit": "mg/dL"},
                "b_cells": 0.5,
                "car_t_cells": 42.0,
                "car_t_copies": 15000,
                "anti_dsdna": 80,
            }
        },
    )
    body = _api(world, "bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/time-courses").json()
    series = {s["key"]: s for s in body["series"]}
    assert list(series) == [
        "car_t_cells",
        "car_t_copies",
        "b_cells",
        "anti_dsdna",
        "c3",
        "c4",
        "igg",
        "anc",
        "sledai2k",
        "prednisone",
    ]
    assert series["c3"]["unit"] == "g/L" and series["c3"]["points"] == [{"day": 14, "value": 0.9, "censored": False}]
    assert series["igg"]["points"][0]["value"] == pytest.approx(6.5)
    assert series["car_t_cells"]["points"] == [{"day": 14, "value": 42.0, "censored": False}]
    assert series["car_t_copies"]["unit"] == "copies/µg" and series["car_t_copies"]["points"][0]["value"] == 15000
    # SLEDAI-2K from the forms' descriptors: screening (negative day) and M3; prednisone alike.
    included_on = inclusion_dates([subject.pk])[subject.pk]
    screening_day = (included_on - subject.infusion_date).days
    assert screening_day < 0
    assert [(p["day"], p["value"]) for p in series["sledai2k"]["points"]] == [(screening_day, 10.0), (90, 4.0)]
    assert [(p["day"], p["value"]) for p in series["prednisone"]["points"]] == [(screening_day, 20.0), (90, 10.0)]
    assert body["episodes"] == []


CALM_DAY = {
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


def _assess(world: Any, subject: Subject, days: dict[int, dict[str, Any]]) -> None:
    """Daily CRS/ICANS assessments recorded through the API by the center's coordinator."""
    api = _api(world, "bdx.coordinator")
    assert subject.infusion_date is not None
    for day, changes in days.items():
        on = (subject.infusion_date + timedelta(days=day)).isoformat()
        response = api.post(
            f"/api/v1/subjects/{subject.code}/toxicity/assessments",
            {"assessed_on": on, **CALM_DAY, **changes},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content


def test_the_time_courses_page_draws_each_panel_and_shades_the_recorded_episodes(
    world: Any, study: dict[str, Subject]
) -> None:
    subject = study["remission"]
    # CRS grade 1 on D1, 2 on D2 (fever and oxygen), 1 on D3, resolved on D4; ICANS grade 1 on D2 (ICE 8).
    _assess(
        world,
        subject,
        {
            0: {},
            1: {"temperature_c": 38.4},
            2: {"temperature_c": 38.9, "hypoxia": "low_flow", "ice_score": 8},
            3: {"temperature_c": 38.4},
            4: {},
        },
    )
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    page = client.get(f"/dashboards/subjects/{subject.code}/time-courses/").content.decode()
    assert 'data-series="car_t_cells car_t_copies"' in page and 'data-series="c3 c4"' in page
    activity = _figure(page, "time-course-activity")
    assert [t["meta"] for t in activity["data"]] == ["sledai2k"]
    assert activity["data"][0]["y"] == [10.0, 0.0, 0.0]  # the stored SLEDAI-2K: SCR, M3, M6
    assert activity["layout"]["xaxis"]["title"]["text"] == "Days since infusion (D0)"
    shapes = [s for s in activity["layout"]["shapes"] if s.get("name", "").startswith("episode:")]
    assert [(s["name"], s["x0"], s["x1"]) for s in shapes] == [
        ("episode:crs:2", 0.5, 3.5),
        ("episode:icans:1", 1.5, 2.5),
    ]
    assert "Testpatient" not in page
    detail = client.get(f"/subjects/{subject.code}/").content.decode()
    assert f'href="/dashboards/subjects/{subject.code}/time-courses/"' in detail


def test_the_time_courses_label_bands_and_units_in_french(world: Any, study: dict[str, Subject]) -> None:
    subject = study["remission"]
    _assess(world, subject, {0: {}, 1: {"temperature_c": 38.9, "hypoxia": "low_flow", "ice_score": 8}, 2: {}})
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "fr"
    page = client.get(f"/dashboards/subjects/{subject.code}/time-courses/").content.decode()
    activity = _figure(page, "time-course-activity")
    assert [a["text"] for a in activity["layout"]["annotations"]] == ["SRC 2", "ICANS 1"]
    anti_dsdna = _figure(page, "time-course-anti_dsdna")
    assert anti_dsdna["layout"]["yaxis"]["title"]["text"] == "UI/mL"
    assert "Anticorps anti-ADN natif (UI/mL)" in page and "IU/mL" not in page


def test_an_ongoing_episode_is_shaded_up_to_today(world: Any, study: dict[str, Subject]) -> None:
    subject = study["active"]
    assert subject.infusion_date is not None
    _assess(world, subject, {0: {}, 1: {"temperature_c": 38.4}})  # CRS grade 1 since D1, not resolved
    body = _api(world, "bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/time-courses").json()
    today = local_today(subject.center, clock.now())
    assert body["episodes"] == [
        {"kind": "crs", "start_day": 1, "end_day": (today - subject.infusion_date).days, "grade": 1}
    ]


def test_stored_scores_not_assessable_are_not_counted_in_doris(world: Any, study: dict[str, Subject]) -> None:
    """A follow-up form without the DORIS answers stores DORIS as not assessable: assessed (its
    SLEDAI-2K is stored) but not in DORIS, and the subject is not in remission."""
    subject = _infused(world, "BDX", m3={k: v for k, v in REMISSION.items() if k not in ANSWERS})
    body = _api(world, "bdx.coordinator").get("/api/v1/dashboards/study").json()
    rates = {row["visit"]: row for row in body["rates"]}
    assert (rates["M3"]["assessed"], rates["M3"]["doris"]) == (3, 1)
    assert body["flow"]["in_remission"] == 1
    row = next(r for r in body["swimmers"] if r["subject"] == subject.code)
    assert row["remission_visit"] is None


def test_a_subject_not_yet_infused_has_no_time_course(world: Any, study: dict[str, Subject]) -> None:
    client = world.client_for("bdx.coordinator")
    page = client.get(f"/dashboards/subjects/{study['included'].code}/time-courses/").content.decode()
    assert 'data-testid="not-infused"' in page and "time-course-" not in page


def _queries(request: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_dashboards_take_as_many_queries_at_2_and_at_6_subjects(world: Any) -> None:
    client = world.client_for("dm.datamanager")
    api = _api(world, "dm.datamanager")
    coordinator = world.client_for("bdx.coordinator")
    subjects: list[Subject] = []
    counts = {}
    for size in (2, 6):
        while len(subjects) < size:
            subjects.append(_infused(world, "BDX", m3=REMISSION, m6=ACTIVE))
        # The first request of a session or token writes its traces; counted afterwards, steadily.
        assert client.get("/dashboards/study/").status_code == 200
        assert api.get("/api/v1/dashboards/study").status_code == 200
        code = subjects[-1].code
        assert coordinator.get(f"/dashboards/subjects/{code}/time-courses/").status_code == 200
        assert api.get(f"/api/v1/subjects/{code}/time-courses").status_code == 200
        counts[size] = {
            "page": _queries(lambda: client.get("/dashboards/study/")),
            "api": _queries(lambda: api.get("/api/v1/dashboards/study")),
            "time_courses": _queries(lambda c=code: coordinator.get(f"/dashboards/subjects/{c}/time-courses/")),
            "time_courses_api": _queries(lambda c=code: api.get(f"/api/v1/subjects/{c}/time-courses")),
        }
    assert counts[2] == counts[6]
    assert counts[6] == {
        "page": STUDY_PAGE_QUERIES,
        "api": STUDY_API_QUERIES,
        "time_courses": TIME_COURSES_PAGE_QUERIES,
        "time_courses_api": TIME_COURSES_API_QUERIES,
    }


def test_the_dashboards_are_french_for_a_french_reader(world: Any, study: dict[str, Subject]) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "fr"
    detector = EnglishDetector(catalog_msgids())
    for url in ("/dashboards/study/", f"/dashboards/subjects/{study['remission'].code}/time-courses/"):
        page = client.get(url).content.decode()
        assert detector.english_texts(page) == [], url
    study_page = client.get("/dashboards/study/").content.decode()
    assert "Tableau de bord de l'étude" in study_page
    assert _figure(study_page, "swimmer-plot")["layout"]["xaxis"]["title"]["text"] == "Jours depuis l'inclusion"
