"""The study grid, a center's worklist and the API visit list read the casebook in a fixed number
of SQL queries, whatever the number of subjects (issue 9 "Speed"; the timings are measured by
benchmarks/casebook.py, never here): the counts at 2 and at 6 subjects are equal, and pinned."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import Subject
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db

VITALS = {
    "temperature_c": 37.1,
    "heart_rate_bpm": 78,
    "systolic_bp_mmhg": 122,
    "diastolic_bp_mmhg": 76,
    "spo2_pct": 98,
    "weight_kg": 61.5,
}
# Pinned counts: a change here is a change of the pages' or the API's reads, to be explained.
GRID_QUERIES = 12
WORKLIST_QUERIES = 12
VISITS_LIST_QUERIES = 7


def _with_casebook(world: Any, subject: Subject, api: Client) -> None:
    """D28 done with its vital signs saved (one failing an edit check: an open query) through the API."""
    assert subject.infusion_date is not None
    done_on = (subject.infusion_date + timedelta(days=28)).isoformat()
    base = f"/api/v1/subjects/{subject.code}/visits/D28"
    visit = api.put(base, json.dumps({"done_on": done_on}), content_type="application/json")
    assert visit.status_code == 200, visit.json()
    form = api.put(
        f"{base}/forms/vital_signs",
        json.dumps({"items": {**VITALS, "diastolic_bp_mmhg": 130}}),
        content_type="application/json",
    )
    assert form.status_code == 200 and form.json()["queries_opened"], form.json()


def _queries(request: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200
    return len(captured.captured_queries)


def _counts(world: Any, subjects: list[Subject]) -> dict[str, int]:
    manager, coordinator = world.client_for("dm.datamanager"), world.client_for("bdx.coordinator")
    token = api_token_create(actor=Actor.system("test"), user=world.users["dm.datamanager"], label="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    # The first request of a session or token writes its traces; counted afterwards, steadily.
    grid = manager.get("/casebook/").content.decode()
    assert all(f'data-subject="{s.code}"' in grid for s in subjects)
    assert coordinator.get("/casebook/worklist/").status_code == 200
    assert api.get(f"/api/v1/subjects/{subjects[-1].code}/visits").status_code == 200
    return {
        "grid": _queries(lambda: manager.get("/casebook/")),
        "worklist": _queries(lambda: coordinator.get("/casebook/worklist/")),
        "visits": _queries(lambda: api.get(f"/api/v1/subjects/{subjects[-1].code}/visits")),
    }


def test_the_grid_the_worklist_and_the_visit_list_take_as_many_queries_at_2_and_at_6_subjects(world: Any) -> None:
    coordinator_token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    coordinator_api = Client(HTTP_AUTHORIZATION=f"Bearer {coordinator_token}")
    subjects: list[Subject] = []
    counts = {}
    for size in (2, 6):
        while len(subjects) < size:
            subject = world.new_subject("BDX", State.FOLLOW_UP)
            _with_casebook(world, subject, coordinator_api)
            subjects.append(subject)
        counts[size] = _counts(world, subjects)
    assert counts[2] == counts[6]
    assert counts[6] == {"grid": GRID_QUERIES, "worklist": WORKLIST_QUERIES, "visits": VISITS_LIST_QUERIES}
