"""Daily CRS/ICANS assessments through the API and the pages: grades stored with their inputs, episodes,
refusals that store nothing (before D0, a day twice, bad values), corrections with a reason and their
history, ICAHT from the haematology forms, other centers refused, French page."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, scope_for
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook import services as casebook
from cartrial.apps.subjects.models import Subject
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.toxicity.selectors import episodes_for, episodes_in_scope
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action
from cartrial.domain.toxicity import ToxicityKind

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
FEVER = CALM | {"temperature_c": 38.4}
FEVER_AND_OXYGEN = CALM | {"temperature_c": 38.9, "hypoxia": "low_flow", "tocilizumab_given": True}


@pytest.fixture
def subject(world: Any) -> Subject:
    subject: Subject = world.new_subject("BDX", State.ACUTE_MONITORING)
    assert subject.infusion_date is not None
    return subject


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="toxicity")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _on(subject: Subject, day: int) -> str:
    assert subject.infusion_date is not None
    return (subject.infusion_date + timedelta(days=day)).isoformat()


def _post(client: Client, subject: Subject, day: int, inputs: dict[str, Any]) -> Any:
    return client.post(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments",
        {"assessed_on": _on(subject, day), **inputs},
        content_type="application/json",
    )


def _recorded_entries(subject: Subject) -> int:
    return AuditEntry.objects.filter(subject_code=subject.code, event="toxicity.assessment_recorded").count()


def test_a_grade_2_crs_on_d2_of_d1_to_d4_is_one_episode(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    days = {0: CALM, 1: FEVER, 2: FEVER_AND_OXYGEN, 3: FEVER, 4: FEVER, 5: CALM}
    for day, inputs in days.items():
        response = _post(api, subject, day, inputs)
        assert response.status_code == 201, response.json()
        assert response.json()["day"] == day
    assert [a.crs_grade for a in ToxicityAssessment.objects.filter(subject=subject).order_by("day")] == [
        0,
        1,
        2,
        1,
        1,
        0,
    ]
    stored = ToxicityAssessment.objects.get(subject=subject, day=2)
    assert (stored.temperature_c, stored.hypoxia, stored.protocol_version.version) == (
        38.9,
        "low_flow",
        world.protocol.version,
    )
    assert _recorded_entries(subject) == 6
    episodes = api.get(f"/api/v1/subjects/{subject.code}/toxicity/episodes").json()
    assert [e for e in episodes["items"] if e["kind"] == "crs"] == [
        {
            "kind": "crs",
            "onset_day": 1,
            "max_grade": 2,
            "duration_days": 4,
            "tocilizumab": True,
            "steroids": False,
            "resolved_day": 5,
            "ongoing": False,
        }
    ]
    assert [e for e in episodes["items"] if e["kind"] == "icans"] == []
    # D6 onwards to D14 (at most today) are still due.
    assert 6 in episodes["days_missing"] and 5 not in episodes["days_missing"]
    # The selector the alerts and dashboards read, and its scoped list.
    assert [(e.kind, e.max_grade) for e in episodes_for(subject)] == [(ToxicityKind.CRS, 2)]
    assert [s.subject_code for s in episodes_in_scope(scope_for(world.users["cra.monitor"]))] == [subject.code]
    assert episodes_in_scope(scope_for(world.users["lil.coordinator"])) == []


def test_an_assessment_before_d0_is_refused_and_stores_nothing(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    response = _post(api, subject, -1, FEVER)
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["item"]) == ("assessment_before_d0", "assessed_on")
    assert "before D0" in body["message"]
    assert not ToxicityAssessment.objects.filter(subject=subject).exists()
    assert _recorded_entries(subject) == 0
    refusal = AuditEntry.objects.filter(subject_code=subject.code).order_by("-sequence").first()
    assert refusal is not None and refusal.event == "action.refused" and "assessment_before_d0" in refusal.changes_json


def test_no_day_is_due_once_the_subject_left_the_study(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.investigator")
    assert _post(api, subject, 1, FEVER).status_code == 201
    assert api.get(f"/api/v1/subjects/{subject.code}/toxicity/episodes").json()["days_missing"][:2] == [0, 2]
    Subject.objects.filter(pk=subject.pk).update(state=State.DECEASED.value)
    after = api.get(f"/api/v1/subjects/{subject.code}/toxicity/episodes").json()
    assert after["days_missing"] == [] and (after["items"][0]["kind"], after["items"][0]["ongoing"]) == ("crs", True)


def test_a_subject_not_infused_is_refused(world: Any) -> None:
    included = world.new_subject("BDX", State.INCLUDED)
    response = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{included.code}/toxicity/assessments",
        {"assessed_on": date.today().isoformat(), **CALM},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["code"] == "assessment_before_infusion"
    assert not ToxicityAssessment.objects.exists()


def test_a_second_assessment_of_a_day_is_refused(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    assert _post(api, subject, 1, FEVER).status_code == 201
    again = _post(api, subject, 1, CALM)
    assert again.status_code == 409 and again.json()["code"] == "assessment_exists"
    assert ToxicityAssessment.objects.get(subject=subject, day=1).crs_grade == 1
    assert _recorded_entries(subject) == 1


@pytest.mark.parametrize(
    ("changes", "item"),
    [({"temperature_c": 60}, "temperature_c"), ({"ice_score": 12}, "ice_score"), ({"hypoxia": "mask"}, "hypoxia")],
)
def test_bad_values_are_refused_at_their_item(world: Any, subject: Subject, changes: dict[str, Any], item: str) -> None:
    response = _post(_api(world, "bdx.coordinator"), subject, 1, CALM | changes)
    assert response.status_code == 422 and response.json()["item"] == item
    assert not ToxicityAssessment.objects.exists()


def test_an_unknown_key_is_refused_not_ignored(world: Any, subject: Subject) -> None:
    response = _post(_api(world, "bdx.coordinator"), subject, 1, CALM | {"ferritin": 900})
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "ferritin"
    assert not ToxicityAssessment.objects.exists()


def test_other_centers_and_other_roles(world: Any, subject: Subject) -> None:
    assert _post(_api(world, "lil.coordinator"), subject, 1, FEVER).status_code == 404
    assert _api(world, "lil.coordinator").get(f"/api/v1/subjects/{subject.code}/toxicity/episodes").status_code == 404
    assert _post(_api(world, "cra.monitor"), subject, 1, FEVER).status_code == 403
    assert _post(_api(world, "bdx.pharmacist"), subject, 1, FEVER).status_code == 403
    assert not ToxicityAssessment.objects.exists()
    assert _post(_api(world, "bdx.investigator"), subject, 1, FEVER).status_code == 201
    read = _api(world, "cra.monitor").get(f"/api/v1/subjects/{subject.code}/toxicity/assessments")
    assert read.status_code == 200 and [a["crs_grade"] for a in read.json()["items"]] == [1]
    assert "Testpatient" not in read.content.decode()


def test_a_correction_needs_a_reason_recomputes_the_grades_and_is_in_the_history(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    assert _post(api, subject, 2, FEVER).status_code == 201
    url = f"/api/v1/subjects/{subject.code}/toxicity/assessments/2"
    no_reason = api.put(url, FEVER_AND_OXYGEN, content_type="application/json")
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    unchanged = api.put(url, FEVER | {"reason": "check"}, content_type="application/json")
    assert unchanged.status_code == 422 and unchanged.json()["code"] == "no_change"
    done = api.put(url, FEVER_AND_OXYGEN | {"reason": "Oxygen started at 14:00"}, content_type="application/json")
    assert done.status_code == 200, done.json()
    assert done.json()["crs_grade"] == 2 and done.json()["corrected"] == [
        "temperature_c",
        "hypoxia",
        "tocilizumab_given",
    ]
    entry = AuditEntry.objects.get(subject_code=subject.code, event="record.corrected", entity="toxicity_assessment")
    assert entry.reason == "Oxygen started at 14:00"
    assert {"field": "crs_grade", "old": 1, "new": 2} in json.loads(entry.changes_json)
    page = world.client_for("cra.monitor").get(f"/toxicity/subjects/{subject.code}/assessments/2/")
    assert page.status_code == 200
    history = page.content.decode()
    assert "Oxygen started at 14:00" in history and 'data-crs="2"' in history
    assert 'data-testid="correction-form"' not in history  # the monitor reads, never corrects


def test_the_page_records_an_assessment_and_shows_grades_episodes_and_days_due(world: Any, subject: Subject) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    url = f"/toxicity/subjects/{subject.code}/"
    form = {"assessed_on": _on(subject, 1), **{k: v for k, v in FEVER_AND_OXYGEN.items() if v is not False}}
    form["tocilizumab_given"] = "on"
    response = client.post(url, form)
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "D1 recorded: CRS grade 2, ICANS grade 0." in page
    assert 'data-crs="2"' in page and 'class="grade g2"' in page
    assert 'data-kind="crs" data-onset="1"' in page and "ongoing" in page
    assert 'data-due="0"' in page and 'data-due="2"' in page  # D0 and D2 still without an assessment
    assert 'data-testid="grade-strip"' in page and 'data-day="1" data-grade="2"' in page
    before = client.post(url, form | {"assessed_on": _on(subject, -2)})
    assert before.status_code == 422
    assert "before D0" in before.content.decode()
    assert ToxicityAssessment.objects.filter(subject=subject).count() == 1
    detail = client.get(f"/subjects/{subject.code}/").content.decode()
    assert f'href="/toxicity/subjects/{subject.code}/"' in detail


def test_icaht_from_the_anc_of_the_haematology_forms(world: Any, subject: Subject) -> None:
    d0 = subject.infusion_date
    assert d0 is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    full = {"lymphocytes": 0.2, "platelets": 90, "haemoglobin": 100}
    # D7's count as the lab reported it, with its reference range (docs/ecrf.md "Values").
    reported = {"value": 0.4, "unit": "10^9/L", "lower_limit": 1.5, "upper_limit": 7.0}
    anc = {"D0": 0.3, "D1": 0.3, "D2": 0.3, "D3": 0.2, "D4": 0.4, "D5": 0.45, "D6": 0.3, "D7": 0.4, "D14": 2.1}
    for visit, value in anc.items():
        day = int(visit[1:])

        def save(visit: str = visit, value: float = value, day: int = day) -> None:
            casebook.visit_done_record(
                actor=reach.actor,
                subject=reach.subject,
                protocol=world.protocol,
                visit_code=visit,
                done_on=d0 + timedelta(days=day),
            )
            casebook.form_save(
                actor=reach.actor,
                subject=reach.subject,
                protocol=world.protocol,
                visit_code=visit,
                form_code="haematology",
                items=full | {"anc": reported if day == 7 else value},
            )

        reach.run(save)
    body = _api(world, "dm.datamanager").get(f"/api/v1/subjects/{subject.code}/toxicity/episodes").json()
    # D0–D7 at ≤ 500/µL (8 days), D8–D13 interpolated towards 2100: above 500 from D8.
    assert body["icaht"]["days_anc_le_500"] == 8
    assert body["icaht"]["early_grade"] == 2 and body["icaht"]["late_grade"] is None
    assert [v["day"] for v in body["icaht"]["anc"]][:3] == [0, 1, 2]
    assert body["icaht"]["anc"][0]["anc_per_ul"] == 300.0
    client = world.client_for("dm.datamanager")
    client.cookies["django_language"] = "fr"
    page = client.get(f"/toxicity/subjects/{subject.code}/").content.decode()
    assert 'data-early="2"' in page
    # The unit header out of the headers' uppercase; the counts per µL whole, without a ",0".
    assert '<span class="unit" data-testid="anc-unit">cellules/µL</span>' in page
    row = r'<tr data-anc-day="(\d+)"><td>[^<]*</td><td>[^<]*</td><td data-anc>([^<]*)</td>'
    anc_cells = dict(re.findall(row, page))
    assert (anc_cells["0"], anc_cells["7"], anc_cells["14"]) == ("300", "400", "2100")


def test_the_page_in_french(world: Any, subject: Subject) -> None:
    client = world.client_for("bdx.coordinator")
    client.cookies["django_language"] = "fr"
    assert _post(_api(world, "bdx.coordinator"), subject, 1, FEVER).status_code == 201
    page = client.get(f"/toxicity/subjects/{subject.code}/").content.decode()
    assert "Épisodes" in page and "Enregistrer une évaluation quotidienne" in page
    assert "Record a daily assessment" not in page and "Episodes" not in page
    refused = client.post(
        f"/toxicity/subjects/{subject.code}/", {"assessed_on": _on(subject, -1), **CALM, "tocilizumab_given": ""}
    )
    assert refused.status_code == 422 and "Une évaluation SRC/ICANS avant J0 est refusée" in refused.content.decode()


# --- a day's CRS depends on the day before: corrections and late entries grade the later days again --

TOCILIZUMAB_AFEBRILE = CALM | {"tocilizumab_given": True}


def _crs_grades(subject: Subject) -> dict[int, int]:
    return dict(ToxicityAssessment.objects.filter(subject=subject).values_list("day", "crs_grade"))


def test_correcting_d2_to_no_fever_grades_d3_again_with_an_audit_entry(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    for day, inputs in {1: FEVER, 2: FEVER, 3: TOCILIZUMAB_AFEBRILE}.items():
        assert _post(api, subject, day, inputs).status_code == 201
    # Tocilizumab on afebrile D3 within the CRS of D1–D2: fever no longer required (ASTCT).
    assert _crs_grades(subject) == {1: 1, 2: 1, 3: 1}
    cut = clock.now()
    done = api.put(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments/2",
        CALM | {"reason": "Temperature of another patient"},
        content_type="application/json",
    )
    assert done.status_code == 200, done.json()
    assert done.json()["crs_grade"] == 0 and done.json()["regraded_days"] == [3]
    # D3 graded again is a change too: an incremental read after the cut holds D2 and D3.
    changed = api.get(f"/api/v1/subjects/{subject.code}/toxicity/assessments", {"since": cut.isoformat()})
    assert [a["day"] for a in changed.json()["items"]] == [2, 3]
    assert _crs_grades(subject) == {1: 1, 2: 0, 3: 0}
    d3 = ToxicityAssessment.objects.get(subject=subject, day=3)
    entry = AuditEntry.objects.get(subject_code=subject.code, event="toxicity.assessment_regraded")
    assert (entry.entity, entry.entity_id) == ("toxicity_assessment", str(d3.pk))
    assert json.loads(entry.changes_json) == [{"field": "crs_grade", "old": 1, "new": 0}]
    assert entry.reason.startswith("Graded again: D2 was corrected")
    assert d3.tocilizumab_given and d3.temperature_c == 37.0  # the inputs are untouched
    page = world.client_for("cra.monitor").get(f"/toxicity/subjects/{subject.code}/assessments/3/").content.decode()
    assert "Graded again: D2 was corrected" in page
    # The CRS is one episode, D1 only, resolved on D2.
    assert [(e.onset_day, e.duration_days, e.resolved_day) for e in episodes_for(subject)] == [(1, 1, 2)]


def test_a_late_entry_grades_the_later_days_again_and_an_unchanged_day_is_not_audited(
    world: Any, subject: Subject
) -> None:
    api = _api(world, "bdx.coordinator")
    for day, inputs in {1: FEVER, 3: TOCILIZUMAB_AFEBRILE, 4: CALM}.items():
        assert _post(api, subject, day, inputs).status_code == 201
    assert _crs_grades(subject) == {1: 1, 3: 1, 4: 0}  # D2 not assessed: the CRS of D1 is still ongoing
    assert _post(api, subject, 2, CALM).status_code == 201  # D2 entered late: afebrile, no CRS
    assert _crs_grades(subject) == {1: 1, 2: 0, 3: 0, 4: 0}
    regraded = AuditEntry.objects.filter(subject_code=subject.code, event="toxicity.assessment_regraded")
    assert [(e.entity_id, e.reason) for e in regraded] == [
        (
            str(ToxicityAssessment.objects.get(subject=subject, day=3).pk),
            "Graded again: D2 was recorded, which changes whether CRS was ongoing before this day.",
        )
    ]


def test_a_day_graded_again_to_3_raises_the_crs_alert(world: Any, subject: Subject) -> None:
    from cartrial.apps.alerts.models import Alert

    api = _api(world, "bdx.coordinator")
    shock = TOCILIZUMAB_AFEBRILE | {"hypotension": "one_vasopressor"}
    for day, inputs in {1: FEVER, 2: CALM, 3: shock}.items():
        assert _post(api, subject, day, inputs).status_code == 201
    # D2 afebrile: no CRS on D2, so D3's hypotension without fever is not CRS (graded elsewhere).
    assert _crs_grades(subject) == {1: 1, 2: 0, 3: 0}
    assert not Alert.objects.filter(kind="crs_grade_3").exists()
    corrected = api.put(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments/2",
        FEVER | {"reason": "Fever at 22:00 not entered"},
        content_type="application/json",
    )
    assert corrected.status_code == 200 and corrected.json()["regraded_days"] == [3]
    assert _crs_grades(subject) == {1: 1, 2: 1, 3: 3}
    alert = Alert.objects.get(kind="crs_grade_3", subject=subject)
    assert alert.key == "episode/D1"


# --- one day's assessment, pages and incremental reads (issue 12) --------------------------------


def test_one_days_assessment_is_read_with_its_corrections(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    assert _post(api, subject, 2, FEVER).status_code == 201
    url = f"/api/v1/subjects/{subject.code}/toxicity/assessments/2"
    done = api.put(url, FEVER_AND_OXYGEN | {"reason": "Oxygen started at 14:00"}, content_type="application/json")
    assert done.status_code == 200, done.content
    read = _api(world, "cra.monitor").get(url)
    assert read.status_code == 200, read.content
    body = read.json()
    assert (body["day"], body["assessed_on"], body["crs_grade"], body["hypoxia"]) == (2, _on(subject, 2), 2, "low_flow")
    [correction] = body["history"]
    assert correction["reason"] == "Oxygen started at 14:00" and correction["role"] == "coordinator"
    assert {"field": "temperature_c", "old": 38.4, "new": 38.9} in correction["changes"]
    assert {"field": "crs_grade", "old": 1, "new": 2} in correction["changes"]
    assert "Testpatient" not in read.content.decode()


def test_reading_a_day_is_refused_outside_the_scope_the_role_or_the_days_assessed(world: Any, subject: Subject) -> None:
    assert _post(_api(world, "bdx.coordinator"), subject, 1, FEVER).status_code == 201
    base = f"/api/v1/subjects/{subject.code}/toxicity/assessments"
    missing = _api(world, "bdx.coordinator").get(f"{base}/7")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    not_a_day = _api(world, "bdx.coordinator").get(f"{base}/first")
    assert not_a_day.status_code == 422 and [f["field"] for f in not_a_day.json()["fields"]] == ["day"]
    other_center = _api(world, "lil.coordinator").get(f"{base}/1")
    assert other_center.status_code == 404 and other_center.json()["code"] == "not_found"
    pharmacist = _api(world, "bdx.pharmacist").get(f"{base}/1")
    assert pharmacist.status_code == 403 and pharmacist.json()["code"] == "access_denied"


def test_assessments_are_read_a_page_at_a_time_and_since_a_time(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    for day in (0, 1, 2):
        assert _post(api, subject, day, CALM).status_code == 201
    cut = clock.now()
    assert _post(api, subject, 3, CALM).status_code == 201
    url = f"/api/v1/subjects/{subject.code}/toxicity/assessments"
    reader = _api(world, "cra.monitor")
    everything = reader.get(url).json()
    assert ([a["day"] for a in everything["items"]], everything["total"]) == ([0, 1, 2, 3], 4)
    assert (everything["subject"], everything["infusion_date"]) == (subject.code, _on(subject, 0))
    window = reader.get(url, {"limit": 3}).json()
    assert ([a["day"] for a in window["items"]], window["next_offset"]) == ([0, 1, 2], 3)
    assert [a["day"] for a in reader.get(url, {"since": cut.isoformat()}).json()["items"]] == [3]
    cut = clock.now()
    corrected = api.put(f"{url}/1", FEVER | {"reason": "Fever at 22:00"}, content_type="application/json")
    assert corrected.status_code == 200, corrected.content
    assert corrected.json()["regraded_days"] == []  # D2 afebrile: no CRS whatever D1 was
    changed = reader.get(url, {"since": cut.isoformat()}).json()
    assert ([(a["day"], a["crs_grade"]) for a in changed["items"]], changed["total"]) == ([(1, 1)], 1)


def test_episodes_since_a_time_are_those_holding_a_day_changed_after_it(world: Any, subject: Subject) -> None:
    api = _api(world, "bdx.coordinator")
    for day, inputs in {0: CALM, 1: FEVER, 2: CALM}.items():
        assert _post(api, subject, day, inputs).status_code == 201
    cut = clock.now()
    assert _post(api, subject, 5, FEVER).status_code == 201
    url = f"/api/v1/subjects/{subject.code}/toxicity/episodes"
    reader = _api(world, "dm.datamanager")
    everything = reader.get(url).json()
    assert [(e["kind"], e["onset_day"], e["ongoing"]) for e in everything["items"]] == [
        ("crs", 1, False),
        ("crs", 5, True),
    ]
    assert everything["total"] == 2 and everything["next_offset"] is None
    changed = reader.get(url, {"since": cut.isoformat()}).json()
    assert [(e["onset_day"], e["ongoing"]) for e in changed["items"]] == [(5, True)]
    # The days due are the whole subject's, whatever `since`.
    assert changed["days_missing"] == everything["days_missing"] and 3 in changed["days_missing"]
    cut = clock.now()
    steroids = api.put(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments/2",
        CALM | {"corticosteroids_given": True, "reason": "Dexamethasone not entered"},
        content_type="application/json",
    )
    assert steroids.status_code == 200, steroids.content
    assert [e["onset_day"] for e in reader.get(url, {"since": cut.isoformat()}).json()["items"]] == [1]
