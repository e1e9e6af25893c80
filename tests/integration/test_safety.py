"""Adverse events through the pages and the API: recorded, refused with nothing stored, audited;
SAE clock and reports; the investigator's signed relatedness and DLT decision; lab grades proposed
once; other centers see nothing; the sponsor reads pseudonymously."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, scope_for
from cartrial.apps.accounts.models import ElectronicSignature
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook import services as casebook
from cartrial.apps.safety.models import AdverseEvent, DltAssessment, SaeReport
from cartrial.apps.safety.selectors import lab_grade_proposals, open_sae_clocks, safety_rules
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db


@pytest.fixture
def subject(world: Any) -> Subject:
    """A BDX subject in follow-up (infused, D0 known)."""
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    return subject


@pytest.fixture
def api(world: Any) -> Any:
    clients: dict[str, Client] = {}

    def client(username: str) -> Client:
        if username not in clients:
            token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="t")
            clients[username] = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        return clients[username]

    return client


def day(subject: Subject, n: int) -> str:
    assert subject.infusion_date is not None
    return (subject.infusion_date + timedelta(days=n)).isoformat()


def sae_body(subject: Subject, **over: Any) -> dict[str, Any]:
    body = {
        "term": "febrile_neutropenia",
        "grade": 3,
        "start_date": day(subject, 6),
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "awareness_at": f"{day(subject, 6)}T10:00",
        "action": "hospitalisation",
        "outcome": "recovering",
    }
    return {**body, **over}


def post_ae(api: Any, username: str, subject: Subject, body: dict[str, Any]) -> Any:
    return api(username).post(f"/api/v1/subjects/{subject.code}/adverse-events", body, content_type="application/json")


def entries_after(sequence: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(sequence__gt=sequence).order_by("sequence"))


def last_sequence() -> int:
    return AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def test_coordinator_records_an_sae_through_the_api_audited_with_its_clock(api: Any, subject: Subject) -> None:
    api("bdx.coordinator")  # its token first: only the AE's entry follows
    since = last_sequence()
    response = post_ae(api, "bdx.coordinator", subject, sae_body(subject))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["term"], body["grade"], body["ctcae_version"], body["aesi"]) == (
        "febrile_neutropenia",
        3,
        "5.0",
        "infection",
    )
    clock = body["sae_clock"]
    assert clock["reports"][0]["kind"] == "initial" and clock["reports"][0]["status"] in ("pending", "overdue")
    entries = entries_after(since)
    # The SAE starts its clock: its alert is raised and audited in the same action.
    assert [e.event for e in entries] == ["safety.adverse_event_recorded", "alert.raised"]
    assert entries[0].entity == "adverse_event" and entries[0].subject_code == subject.code


@pytest.mark.parametrize(
    ("over", "code", "item"),
    [
        ({"end_date": "START-1", "outcome": "recovered"}, "end_before_start", "end_date"),
        ({"grade": 2}, "grade_not_allowed", "grade"),
        ({"seriousness_criteria": []}, "serious_without_criterion", "seriousness_criteria"),
        ({"start_date": "1990-01-01", "awareness_at": "1990-01-01T10:00"}, "start_before_consent", "start_date"),
        ({"term": "unheard_of"}, "term_unknown", "term"),
    ],
)
def test_bad_input_is_refused_with_item_and_rule_and_nothing_stored(
    api: Any, subject: Subject, over: dict[str, Any], code: str, item: str
) -> None:
    if over.get("end_date") == "START-1":
        over = {**over, "end_date": day(subject, 5)}
    api("bdx.coordinator")
    before, since = AdverseEvent.objects.count(), last_sequence()
    response = post_ae(api, "bdx.coordinator", subject, sae_body(subject, **over))
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["item"]) == (code, item)
    assert AdverseEvent.objects.count() == before
    assert all(e.event != "safety.adverse_event_recorded" for e in entries_after(since))


def test_other_center_sees_nothing_and_sponsor_reads_pseudonymously(api: Any, subject: Subject, world: Any) -> None:
    assert post_ae(api, "bdx.coordinator", subject, sae_body(subject)).status_code == 201
    assert api("lil.coordinator").get(f"/api/v1/subjects/{subject.code}/adverse-events").status_code == 404
    assert post_ae(api, "lil.investigator", subject, sae_body(subject)).status_code == 404
    monitor = api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/adverse-events")
    assert monitor.status_code == 200 and len(monitor.json()["items"]) == 1
    assert "Testpatient" not in monitor.content.decode()
    refused = post_ae(api, "cra.monitor", subject, sae_body(subject))
    assert refused.status_code == 403 and AdverseEvent.objects.count() == 1


def test_sae_reports_move_the_clock_and_a_correction_needs_a_reason(api: Any, subject: Subject) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    base = f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}"
    sent = api("bdx.coordinator").post(
        f"{base}/sae-reports",
        {"kind": "initial", "sent_at": f"{day(subject, 6)}T18:00"},
        content_type="application/json",
    )
    assert sent.status_code == 201
    reports = sent.json()["sae_clock"]["reports"]
    assert (reports[0]["kind"], reports[0]["status"]) == ("initial", "met")
    assert reports[1]["kind"] == "follow_up"
    twice = api("bdx.coordinator").post(
        f"{base}/sae-reports",
        {"kind": "initial", "sent_at": f"{day(subject, 7)}T18:00"},
        content_type="application/json",
    )
    assert twice.status_code == 409 and twice.json()["code"] == "sae_initial_sent"
    assert SaeReport.objects.count() == 1
    no_reason = api("bdx.coordinator").put(base, {"changes": {"grade": 4}}, content_type="application/json")
    assert no_reason.status_code == 422 and no_reason.json()["item"] == "reason"
    corrected = api("bdx.coordinator").put(
        base,
        {"changes": {"end_date": day(subject, 10), "outcome": "recovered"}, "reason": "Discharge letter received"},
        content_type="application/json",
    )
    assert corrected.status_code == 200 and corrected.json()["outcome"] == "recovered"
    # The outcome is final: the next report due is the final one.
    assert corrected.json()["sae_clock"]["reports"][-1]["kind"] == "final"
    history = api("cra.monitor").get(base).json()["history"]
    assert {"field": "outcome", "old": "recovering", "new": "recovered"}.items() <= next(
        h for h in history if h["field"] == "outcome" and h["reason"]
    ).items()


def test_open_sae_clocks_are_listed_for_the_scope_only(api: Any, subject: Subject, world: Any) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    post_ae(
        api, "bdx.coordinator", subject, sae_body(subject, serious=False, seriousness_criteria=[], awareness_at=None)
    )
    rules = safety_rules(world.protocol)
    from cartrial.apps import clock

    mine = open_sae_clocks(scope_for(world.users["cra.monitor"]), rules, clock.now())
    assert [c.adverse_event.pk for c in mine] == [ae_id] and mine[0].state.overdue
    assert open_sae_clocks(scope_for(world.users["lil.investigator"]), rules, clock.now()) == []


def test_relatedness_is_the_investigators_signed_with_the_password(api: Any, subject: Subject) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    path = f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}/relatedness"
    body = {"cart": "probable", "lymphodepletion": "possible", "password": DEMO_PASSWORD}
    assert api("bdx.coordinator").post(path, body, content_type="application/json").status_code == 403
    wrong = api("bdx.investigator").post(path, {**body, "password": "nope"}, content_type="application/json")
    assert wrong.status_code == 409 and AdverseEvent.objects.get(pk=ae_id).relatedness_cart == ""
    since = last_sequence()
    done = api("bdx.investigator").post(path, body, content_type="application/json")
    assert done.status_code == 200 and done.json()["relatedness_cart"] == "probable"
    assert {e.event for e in entries_after(since)} == {"signature.applied", "safety.relatedness_assessed"}
    assert ElectronicSignature.objects.filter(entity="adverse_event", entity_id=str(ae_id)).count() == 1


def test_dlt_candidate_confirmed_by_the_investigator_on_the_page(api: Any, subject: Subject, client_for: Any) -> None:
    crs = post_ae(
        api,
        "bdx.coordinator",
        subject,
        sae_body(
            subject,
            term="cytokine_release_syndrome",
            grade=4,
            start_date=day(subject, 2),
            awareness_at=f"{day(subject, 2)}T08:00",
            seriousness_criteria=["life_threatening"],
        ),
    ).json()["id"]
    post_ae(
        api,
        "bdx.coordinator",
        subject,
        {"term": "nausea", "grade": 1, "start_date": day(subject, 3), "action": "none", "outcome": "recovering"},
    )
    dlt = api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/dlt").json()
    assert [(c["adverse_event"], c["rule"], c["decision"]) for c in dlt["candidates"]] == [(crs, "crs_grade4", None)]
    page = client_for("bdx.coordinator").get(f"/safety/subjects/{subject.code}/")
    assert page.status_code == 200 and 'data-rule="crs_grade4"' in page.content.decode()
    assert 'data-testid="dlt-sign"' not in page.content.decode()
    refused = client_for("bdx.coordinator").post(
        f"/safety/subjects/{subject.code}/",
        {"op": "dlt", "adverse_event": crs, "decision": "confirmed", "password": DEMO_PASSWORD},
    )
    assert refused.status_code == 403 and DltAssessment.objects.count() == 0
    investigator = client_for("bdx.investigator")
    wrong = investigator.post(
        f"/safety/subjects/{subject.code}/",
        {"op": "dlt", "adverse_event": crs, "decision": "confirmed", "password": "x"},
    )
    assert wrong.status_code == 422 and DltAssessment.objects.count() == 0
    done = investigator.post(
        f"/safety/subjects/{subject.code}/",
        {"op": "dlt", "adverse_event": crs, "decision": "confirmed", "password": DEMO_PASSWORD},
    )
    assert done.status_code == 302
    decision = DltAssessment.objects.get()
    assert (decision.rule_code, decision.decision, decision.signature.signer.username) == (
        "crs_grade4",
        "confirmed",
        "bdx.investigator",
    )
    assert (
        api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/dlt").json()["candidates"][0]["decision"]
        == "confirmed"
    )


def test_lab_grades_are_proposed_and_recorded_once(world: Any, subject: Subject, client_for: Any, api: Any) -> None:
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.visit_done_record(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code="D7",
            done_on=subject.infusion_date + timedelta(days=7),
        )
    )
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.form_save(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code="D7",
            form_code="haematology",
            items={
                "anc": {"value": 0.3, "unit": "10^9/L", "lower_limit": 1.8, "upper_limit": 7.5},
                "lymphocytes": {"value": 1.5, "unit": "10^9/L", "lower_limit": 1.0, "upper_limit": 4.0},
                "platelets": {"value": 200, "unit": "10^9/L", "lower_limit": 150, "upper_limit": 400},
                "haemoglobin": {"value": 125, "unit": "g/L", "lower_limit": 120, "upper_limit": 160},
            },
        )
    )
    proposals = api("bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/lab-proposals").json()["items"]
    assert [(p["item"], p["term"], p["grade"]) for p in proposals] == [("anc", "neutrophil_count_decreased", 4)]
    page = client_for("bdx.coordinator")
    assert 'data-testid="accept-anc"' in page.get(f"/safety/subjects/{subject.code}/").content.decode()
    record = proposals[0]["record"]
    assert (
        page.post(
            f"/safety/subjects/{subject.code}/", {"op": "accept_lab", "record": record, "item": "anc"}
        ).status_code
        == 302
    )
    ae = AdverseEvent.objects.get()
    assert (ae.term, ae.grade, ae.source_form_record_id, ae.source_item, ae.aesi) == (
        "neutrophil_count_decreased",
        4,
        record,
        "anc",
        "prolonged_cytopenia",
    )
    assert api("bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/lab-proposals").json()["items"] == []
    again = page.post(f"/safety/subjects/{subject.code}/", {"op": "accept_lab", "record": record, "item": "anc"})
    assert again.status_code == 422 and AdverseEvent.objects.count() == 1


def _blood_count(world: Any, subject: Subject, visit: str, days: int, anc: float, lymphocytes: float) -> None:
    """The visit done on D0 + `days` and its haematology form saved, by the center's coordinator."""
    assert subject.infusion_date is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.visit_done_record(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code=visit,
            done_on=subject.infusion_date + timedelta(days=days),
        )
    )
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.form_save(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code=visit,
            form_code="haematology",
            items={
                "anc": {"value": anc, "unit": "10^9/L", "lower_limit": 1.8, "upper_limit": 7.5},
                "lymphocytes": {"value": lymphocytes, "unit": "10^9/L", "lower_limit": 1.0, "upper_limit": 4.0},
            },
        )
    )


def test_an_abnormality_episode_is_one_proposal_and_one_ae_covering_its_values(
    world: Any, subject: Subject, client_for: Any, api: Any
) -> None:
    # Neutrophils grade 2 (D3), 4 (D5), 3 (D7), normal on D14, grade 3 again on D21; lymphocytes
    # grade 4 throughout (the lymphodepletion's expected effect, not proposed by this protocol).
    for visit, days, anc, lymphocytes in [("D3", 3, 1.1, 0.1), ("D5", 5, 0.4, 0.1), ("D7", 7, 0.8, 0.1)]:
        _blood_count(world, subject, visit, days, anc, lymphocytes)
    _blood_count(world, subject, "D14", 14, 2.0, 0.1)
    _blood_count(world, subject, "D21", 21, 0.7, 0.1)
    proposals = api("bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/lab-proposals").json()["items"]
    assert [(p["term"], p["grade"], p["start_date"], p["end_date"], p["count"]) for p in proposals] == [
        ("neutrophil_count_decreased", 4, day(subject, 3), day(subject, 14), 3),
        ("neutrophil_count_decreased", 3, day(subject, 21), None, 1),
    ]
    episode = proposals[0]
    # The single value's keys are the worst value's: D5's 0.4, with the lab's range.
    assert (episode["visit"], episode["value"], episode["lower_limit"], episode["ongoing"]) == ("D5", 0.4, 1.8, False)
    assert [(v["visit"], v["grade"]) for v in episode["sources"]] == [("D3", 2), ("D5", 4), ("D7", 3)]
    page = client_for("bdx.coordinator")
    html = page.get(f"/safety/subjects/{subject.code}/").content.decode()
    assert html.count('data-term="neutrophil_count_decreased" data-start=') == 2
    assert 'data-term="lymphocyte_count_decreased"' not in html and 'data-testid="ongoing"' in html
    # Accepting through any of its values records the episode once, linked to all of them.
    d3_record = episode["sources"][0]["record"]
    response = api("bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/lab-proposals",
        {"record": d3_record, "item": "anc"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["grade"], body["start_date"], body["end_date"], body["outcome"]) == (
        4,
        day(subject, 3),
        day(subject, 14),
        "recovered",
    )
    assert body["source"] == {"form_record": episode["record"], "item": "anc"}
    assert [s["form_record"] for s in body["lab_sources"]] == [v["record"] for v in episode["sources"]]
    left = api("bdx.coordinator").get(f"/api/v1/subjects/{subject.code}/lab-proposals").json()["items"]
    assert [(p["start_date"], p["grade"]) for p in left] == [(day(subject, 21), 3)]
    again = page.post(f"/safety/subjects/{subject.code}/", {"op": "accept_lab", "record": d3_record, "item": "anc"})
    assert again.status_code == 422 and AdverseEvent.objects.count() == 1


def test_lymphopenia_is_proposed_unless_the_protocol_expects_it(world: Any, subject: Subject) -> None:
    _blood_count(world, subject, "D3", 3, 3.0, 0.1)
    assert world.protocol.safety.lab_proposals_exclude_terms == frozenset({"lymphocyte_count_decreased"})
    assert lab_grade_proposals(subject, world.protocol) == []
    without = replace(world.protocol, safety=replace(world.protocol.safety, lab_proposals_exclude_terms=frozenset()))
    assert [(p.term, p.grade) for p in lab_grade_proposals(subject, without)] == [("lymphocyte_count_decreased", 4)]


def test_new_ae_page_refuses_at_the_item_and_records_a_valid_one(subject: Subject, client_for: Any) -> None:
    client = client_for("bdx.coordinator")
    form = client.get(f"/safety/subjects/{subject.code}/adverse-events/new/")
    assert form.status_code == 200 and 'list="ctcae-term-list"' in form.content.decode()
    bad = client.post(
        f"/safety/subjects/{subject.code}/adverse-events/new/",
        {
            "term": "fever",
            "grade": "2",
            "start_date": day(subject, 4),
            "end_date": day(subject, 1),
            "action": "none",
            "outcome": "recovered",
        },
    )
    assert bad.status_code == 422 and 'data-item="end_date"' in bad.content.decode()
    assert AdverseEvent.objects.count() == 0
    good = client.post(
        f"/safety/subjects/{subject.code}/adverse-events/new/",
        {
            "term": "fever",
            "grade": "2",
            "start_date": day(subject, 1),
            "end_date": day(subject, 2),
            "action": "treatment",
            "outcome": "recovered",
        },
    )
    assert good.status_code == 302
    ae = AdverseEvent.objects.get()
    detail = client.get(good["Location"])
    assert detail.status_code == 200 and 'data-field="term"' in detail.content.decode()
    correction = client.post(
        good["Location"],
        {
            "op": "correct",
            "term": "fever",
            "grade": "1",
            "start_date": day(subject, 1),
            "end_date": day(subject, 2),
            "action": "treatment",
            "outcome": "recovered",
            "reason": "Max temperature 38.6",
        },
    )
    assert correction.status_code == 302 and AdverseEvent.objects.get(pk=ae.pk).grade == 1
    assert AuditEntry.objects.filter(
        entity="adverse_event", entity_id=str(ae.pk), event="record.corrected", reason="Max temperature 38.6"
    ).exists()


def test_term_search_endpoint_and_page_fragment_in_french(api: Any, client_for: Any) -> None:
    found = api("bdx.coordinator").get("/api/v1/ctcae-terms", {"q": "anemie"}).json()
    assert found["version"] == "5.0" and "anemia" in [t["code"] for t in found["items"]]
    fragment = client_for("bdx.coordinator").get(
        "/safety/terms/", {"term": "neutropénie fébrile"}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert fragment.status_code == 200 and 'value="febrile_neutropenia"' in fragment.content.decode()
    assert api("lab.manufacturing").get("/api/v1/ctcae-terms").status_code == 403


def test_correcting_a_decided_ae_voids_the_dlt_signature_and_asks_for_a_new_decision(
    api: Any, subject: Subject, client_for: Any
) -> None:
    crs = post_ae(
        api,
        "bdx.coordinator",
        subject,
        sae_body(
            subject,
            term="cytokine_release_syndrome",
            grade=4,
            start_date=day(subject, 2),
            awareness_at=f"{day(subject, 2)}T08:00",
            seriousness_criteria=["life_threatening"],
        ),
    ).json()["id"]
    page = f"/safety/subjects/{subject.code}/"
    decide = {"op": "dlt", "adverse_event": crs, "decision": "confirmed", "password": DEMO_PASSWORD}
    assert client_for("bdx.investigator").post(page, decide).status_code == 302
    corrected = api("bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{crs}",
        {
            "changes": {"start_date": day(subject, 3), "awareness_at": f"{day(subject, 3)}T08:00"},
            "reason": "Chart review",
        },
        content_type="application/json",
    )
    assert corrected.status_code == 200
    signature = DltAssessment.objects.get().signature
    assert signature.voided_at is not None and signature.void_reason == "Chart review"
    assert api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/dlt").json()["candidates"][0]["decision"] is None
    assert client_for("bdx.investigator").post(page, decide).status_code == 302
    assert DltAssessment.objects.filter(signature__voided_at__isnull=True).count() == 1


def test_the_ae_page_shows_times_in_the_centers_time_and_history_in_words(
    api: Any, subject: Subject, client_for: Any
) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    page = client_for("bdx.coordinator").get(
        f"/safety/subjects/{subject.code}/adverse-events/{ae_id}/", HTTP_ACCEPT_LANGUAGE="fr"
    )
    body = page.content.decode()
    # Typed as 10:00 at the center: the correction form shows it back as typed (a round trip keeps it).
    assert f'name="awareness_at" value="{day(subject, 6)}T10:00"' in body
    # The initial report is due 24 h later, shown in the center's time with UTC beside.
    assert f"{(subject.infusion_date + timedelta(days=7)).isoformat()} 10:00" in body
    # Its row names the report and its due time in UTC for the browser tests.
    aware = datetime.combine(subject.infusion_date + timedelta(days=6), time(10), ZoneInfo("Europe/Paris"))
    due = (aware + timedelta(hours=24)).astimezone(UTC).isoformat()
    assert f'data-status="overdue" data-report="initial" data-due="{due}"' in body
    # The history says values in words: criteria by their labels, yes rather than True.
    history = body.split('data-testid="history"')[1]
    assert "Hospitalisation ou prolongation d" in history and "<td>oui</td>" in history
    assert "True" not in history and "[&#x27;hospitalisation&#x27;]" not in history


def test_the_subject_page_links_to_the_adverse_events_for_their_readers_only(subject: Subject, client_for: Any) -> None:
    link = f'href="/safety/subjects/{subject.code}/"'
    assert link in client_for("bdx.coordinator").get(f"/subjects/{subject.code}/").content.decode()
    assert link in client_for("cra.monitor").get(f"/subjects/{subject.code}/").content.decode()
    pharmacist = client_for("bdx.pharmacist").get(f"/subjects/{subject.code}/")
    assert pharmacist.status_code == 200 and link not in pharmacist.content.decode()


# --- the API's pages, incremental reads and typed bodies (issue 12) ------------------------------


def test_adverse_events_are_read_a_page_at_a_time_and_since_a_time(api: Any, subject: Subject) -> None:
    """`since` lists the AEs recorded, corrected, assessed or reported after it, not the others."""
    url = f"/api/v1/subjects/{subject.code}/adverse-events"
    sae = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    calm = sae_body(subject, term="nausea", grade=1, serious=False, seriousness_criteria=[], awareness_at=None)
    untouched = post_ae(api, "bdx.coordinator", subject, {**calm, "action": "none"}).json()["id"]
    cut = clock.now()
    sent = api("bdx.coordinator").post(
        f"{url}/{sae}/sae-reports",
        {"kind": "initial", "sent_at": f"{day(subject, 6)}T12:00"},
        content_type="application/json",
    )
    assert sent.status_code == 201, sent.content
    later = post_ae(api, "bdx.coordinator", subject, {**calm, "term": "headache", "action": "none"}).json()["id"]
    reader = api("cra.monitor")
    everything = reader.get(url).json()
    assert [ae["id"] for ae in everything["items"]] == [sae, untouched, later]
    assert (everything["total"], everything["next_offset"]) == (3, None)
    first = reader.get(url, {"limit": 2}).json()
    assert ([ae["id"] for ae in first["items"]], first["total"], first["next_offset"]) == ([sae, untouched], 3, 2)
    assert [ae["id"] for ae in reader.get(url, {"limit": 2, "offset": 2}).json()["items"]] == [later]
    changed = reader.get(url, {"since": cut.isoformat()}).json()
    assert ([ae["id"] for ae in changed["items"]], changed["total"]) == ([sae, later], 2)
    assert reader.get(url, {"since": clock.now().isoformat()}).json()["items"] == []
    # Correcting the untouched one brings it in.
    cut = clock.now()
    corrected = api("bdx.coordinator").put(
        f"{url}/{untouched}", {"changes": {"grade": 2}, "reason": "Chart review"}, content_type="application/json"
    )
    assert corrected.status_code == 200, corrected.content
    assert [ae["id"] for ae in reader.get(url, {"since": cut.isoformat()}).json()["items"]] == [untouched]


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"grade": 4, "ferritin": 900}, 422, "changes.ferritin"),
        ({"grade": "four"}, 422, "changes.grade"),
        ({"serious": "maybe"}, 422, "changes.serious"),
    ],
)
def test_a_correction_names_only_the_fields_of_an_adverse_event(
    api: Any, subject: Subject, changes: dict[str, Any], status: int, field: str
) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    since = last_sequence()
    response = api("bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}",
        {"changes": changes, "reason": "Chart review"},
        content_type="application/json",
    )
    assert response.status_code == status
    assert (response.json()["code"], [f["field"] for f in response.json()["fields"]]) == ("invalid_input", [field])
    assert AdverseEvent.objects.get(pk=ae_id).grade == 3 and entries_after(since) == []


@pytest.mark.parametrize(
    ("changes", "code", "item"),
    [
        ({"action": "sometimes"}, "item_choice", "action"),
        ({"seriousness_criteria": ["boredom"]}, "item_choice", "seriousness_criteria"),
        ({"term": None}, "term_unknown", "term"),
        ({"start_date": None}, "item_required", "start_date"),
        ({"end_date": "yesterday"}, "invalid_date", "end_date"),
    ],
)
def test_a_correction_is_read_as_the_page_reads_it(
    api: Any, subject: Subject, changes: dict[str, Any], code: str, item: str
) -> None:
    """The codes, dates and times the schema declares are read by the page's own readers: the same
    code and item, in the request's language."""
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    response = api("bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}",
        {"changes": changes, "reason": "Chart review"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["item"]) == (code, item)
    assert AdverseEvent.objects.get(pk=ae_id).grade == 3


def test_a_correction_clears_the_end_date_and_keeps_what_it_does_not_name(api: Any, subject: Subject) -> None:
    body = sae_body(subject, end_date=day(subject, 9), outcome="recovered")
    ae_id = post_ae(api, "bdx.coordinator", subject, body).json()["id"]
    response = api("bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}",
        {"changes": {"end_date": None, "outcome": "recovering"}, "reason": "Not over yet"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["end_date"], response.json()["outcome"], response.json()["grade"]) == (
        None,
        "recovering",
        3,
    )
    read = api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}").json()
    assert {(c["field"], c["old"], c["new"]) for c in read["history"] if c["reason"] == "Not over yet"} == {
        ("end_date", day(subject, 9), None),
        ("outcome", "recovered", "recovering"),
    }


def test_the_ae_and_the_dlt_window_say_what_the_signatures_mean_in_the_request_language(
    api: Any, subject: Subject
) -> None:
    ae_id = post_ae(api, "bdx.coordinator", subject, sae_body(subject)).json()["id"]
    read = api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/adverse-events/{ae_id}", HTTP_ACCEPT_LANGUAGE="fr")
    assert read.json()["relatedness_meaning"] == (
        "J'évalue l'imputabilité de cet événement indésirable aux CAR-T et à la lymphodéplétion."
    )
    dlt = api("cra.monitor").get(f"/api/v1/subjects/{subject.code}/dlt").json()
    assert dlt["signature_meanings"] == {
        "confirmed": "I confirm this adverse event as a dose-limiting toxicity.",
        "ruled_out": "I rule out this adverse event as a dose-limiting toxicity.",
    }


def test_lab_proposals_since_a_time_hold_the_episodes_of_values_saved_after_it(
    world: Any, subject: Subject, api: Any
) -> None:
    url = f"/api/v1/subjects/{subject.code}/lab-proposals"
    _blood_count(world, subject, "D3", 3, 0.4, 2.0)
    _blood_count(world, subject, "D7", 7, 2.0, 2.0)
    cut = clock.now()
    _blood_count(world, subject, "D14", 14, 0.7, 2.0)
    reader = api("cra.monitor")
    everything = reader.get(url, HTTP_ACCEPT_LANGUAGE="fr").json()
    assert [(p["start_date"], p["grade"]) for p in everything["items"]] == [(day(subject, 3), 4), (day(subject, 14), 3)]
    assert everything["excluded_terms"] == ["lymphocyte_count_decreased"]
    assert all(p["band"] for p in everything["items"])
    changed = reader.get(url, {"since": cut.isoformat()}).json()
    assert ([(p["start_date"], p["grade"]) for p in changed["items"]], changed["total"]) == ([(day(subject, 14), 3)], 1)
    assert reader.get(url, {"limit": 1}).json()["next_offset"] == 1


def test_the_term_list_is_paged_and_unchanged_since_any_time(api: Any) -> None:
    client = api("bdx.coordinator")
    first = client.get("/api/v1/ctcae-terms", {"limit": 2}).json()
    assert len(first["items"]) == 2 and first["total"] > 2 and first["next_offset"] == 2
    assert first["version"] == "5.0"
    found = client.get("/api/v1/ctcae-terms", {"q": "neutropénie fébrile"}).json()
    assert [t["code"] for t in found["items"]] == ["febrile_neutropenia"]
    since = client.get("/api/v1/ctcae-terms", {"since": "2020-01-01T00:00:00+00:00"}).json()
    assert (since["items"], since["total"], since["version"]) == ([], 0, "5.0")
