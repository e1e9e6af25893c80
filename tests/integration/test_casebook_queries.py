"""The study grid, a center's worklist and the API visit list read the casebook in a fixed number
of SQL queries, whatever the number of subjects (issue 9 "Speed"; the timings are measured by
benchmarks/casebook.py, never here): the counts at 2 and at 6 subjects are equal, and pinned."""

from __future__ import annotations

import json
from datetime import date, timedelta
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
# Pages count the header's alert badge (one COUNT, base template).
# Each with one query for the booked dates of the subjects read (the planned targets, docs/booking.md).
GRID_QUERIES = 14  # the page of subjects: counted, then read
WORKLIST_QUERIES = 12
VISITS_LIST_QUERIES = 8


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


def test_the_study_grid_shows_one_page_of_subjects_at_a_time_in_their_order(world: Any, monkeypatch: Any) -> None:
    """The grid reads a page of subjects (GRID_PAGE_SIZE; 2 here), ordered by center and number; a page
    past the last shows the last; the pager links keep the center chosen."""
    from cartrial.apps.casebook import selectors

    monkeypatch.setattr(selectors, "GRID_PAGE_SIZE", 2)
    subjects = [world.new_subject("BDX", State.FOLLOW_UP) for _ in range(5)]
    codes = sorted(s.code for s in subjects)
    manager = world.client_for("dm.datamanager")

    def shown(url: str) -> list[str]:
        page = manager.get(url).content.decode()
        return [code for code in codes if f'data-subject="{code}"' in page]

    assert shown("/casebook/") == codes[0:2]
    assert shown("/casebook/?page=2&center=BDX") == codes[2:4]
    last = manager.get("/casebook/?page=99").content.decode()
    assert [code for code in codes if f'data-subject="{code}"' in last] == codes[4:5]
    assert 'aria-current="page">3<' in last
    second = manager.get("/casebook/?page=2&center=BDX").content.decode()
    assert 'href="?page=3&amp;center=BDX"' in second and 'href="?page=1&amp;center=BDX"' in second


@pytest.mark.parametrize(
    ("page", "pages", "links"),
    [
        (1, 1, [1]),
        (1, 3, [1, 2, 3]),
        (1, 20, [1, 2, 3, None, 20]),
        (10, 20, [1, None, 8, 9, 10, 11, 12, None, 20]),
        (20, 20, [1, None, 18, 19, 20]),
        (4, 20, [1, 2, 3, 4, 5, 6, None, 20]),
    ],
)
def test_the_pager_shows_the_ends_and_the_neighbours(page: int, pages: int, links: list[int | None]) -> None:
    from cartrial.apps.casebook.presenters import page_links

    assert page_links(page, pages) == links


def test_the_worklist_page_lists_the_visits_the_schedule_says_are_overdue_due_or_opening_this_week(
    world: Any,
) -> None:
    """The worklist page agrees with the visit-status contract (`visits_status_report`) on the same
    dates: a visit done or missed leaves it; every overdue, due and this week's upcoming visit is in
    its section."""
    import re

    from cartrial.apps import clock
    from cartrial.apps.casebook.selectors import subject_anchors, subject_today
    from cartrial.apps.trial.protocol import protocol_in_force
    from cartrial.domain.visits import visits_status_report

    token = api_token_create(actor=Actor.system("test"), user=world.users["bdx.coordinator"], label="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    _with_casebook(world, subject, api)  # D28 done
    missed = api.put(
        f"/api/v1/subjects/{subject.code}/visits/M2",
        json.dumps({"missed": True, "reason": "Patient injoignable."}),
        content_type="application/json",
    )
    assert missed.status_code == 200, missed.json()
    anchors = subject_anchors(subject)
    assert anchors.inclusion is not None and anchors.infusion is not None
    today = subject_today(subject, clock.now())
    report = visits_status_report(
        protocol_in_force().visits,
        {
            "inclusion_date": anchors.inclusion.isoformat(),
            "infusion_date": anchors.infusion.isoformat(),
            "today": today.isoformat(),
            "done": {"D28": (anchors.infusion + timedelta(days=28)).isoformat()},
            "missed": ["M2"],
        },
    )
    expected: dict[str, set[str]] = {"overdue": set(), "due": set(), "upcoming": set()}
    for visit in report["visits"]:
        opens_this_week = visit["earliest"] and (date.fromisoformat(visit["earliest"]) - today).days <= 7
        if visit["status"] in ("overdue", "due") or (visit["status"] == "upcoming" and opens_this_week):
            expected[visit["status"]].add(visit["code"])
    assert expected["overdue"], "the subject infused long ago has overdue visits"

    page = world.client_for("bdx.coordinator").get("/casebook/worklist/").content.decode()
    link = re.compile(rf'/casebook/subjects/{re.escape(subject.code)}/visits/([A-Z0-9]+)/"')
    for key, codes in expected.items():
        section = page.split(f'data-testid="worklist-{key}"', 1)[1].split('data-testid="worklist-', 1)[0]
        assert set(link.findall(section)) == codes, key
    assert "/visits/D28/" not in page and "/visits/M2/" not in page


def test_a_grid_cell_escapes_what_it_shows() -> None:
    """The grid's cells are built as HTML in Python: codes and texts are escaped there."""
    from types import SimpleNamespace

    from cartrial.apps.casebook.presenters import grid_cells
    from cartrial.domain.visits import VisitStatus

    visit = SimpleNamespace(code='<b>"x"', status=VisitStatus.OVERDUE, target=date(2026, 1, 2), open_queries=2)
    html = grid_cells("A&B", [visit], "/casebook/subjects/{subject}/visits/{visit}/")
    assert "<b>" not in html and '"x"' not in html
    assert 'title="&lt;b&gt;&quot;x&quot; : ' in html and "(2026-01-02) · 2 " in html
    assert 'href="/casebook/subjects/A%26B/visits/%3Cb%3E%22x%22/"' in html
    assert html.count("<td>") == 1 and '<sup class="q">?</sup>' in html


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["<script>alert(1)</script>", "x" * 5000, "9" * 5000, "-1"])
def test_the_inbox_answers_a_query_number_that_is_not_one_with_404(world: Any, raw: str) -> None:
    """Found by the form fuzzing: a query "number" that is not a number answered 500."""
    response = world.client_for("bdx.coordinator").post("/casebook/queries/", {"op": "close", "query": raw})
    assert response.status_code == 404
