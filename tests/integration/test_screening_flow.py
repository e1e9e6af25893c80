"""Screening data → computed verdict → signed inclusion; screening log, CONSORT flow (both engines)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.db import transaction
from django.test import Client
from screening_data import api_payload, form_post, labs, screen

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical import services
from cartrial.apps.clinical.models import LabObservation, ScreeningRecord
from cartrial.apps.clinical.services import LabObservationInput, screening_record
from cartrial.apps.pathway.steps import INCLUSION_MEANING, consent_withdraw
from cartrial.apps.subjects.models import ConsentWithdrawal, EligibilityAssessment, PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD, DEMO_SCREENING_DATA
from cartrial.domain.audit_chain import canonical_json
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import State, Step, TransitionRefused
from cartrial.domain.roles import Action
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.registry import CALCULATOR_NAMES


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _counts(subject: Subject) -> tuple[int, int, int, int]:
    return (
        ScreeningRecord.objects.filter(subject=subject).count(),
        LabObservation.objects.filter(subject=subject).count(),
        EligibilityAssessment.objects.filter(subject=subject).count(),
        AuditEntry.objects.filter(subject_code=subject.code).count(),
    )


# --- the service ------------------------------------------------------------------------------------


def test_first_save_stores_data_labs_and_the_computed_verdict(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    saved = screen(world, subject)
    assert saved.assessment.verdict == "eligible"
    criteria = {c["id"]: c for c in saved.assessment.result_json["criteria"]}
    assert criteria["I03_ACTIVE"]["values_used"] == {
        "sledai2k.score": 12,
        "organ_involvement": ["renal", "musculoskeletal"],
    }
    assert criteria["I05_EGFR"]["outcome"] == "met" and criteria["I05_EGFR"]["values_used"]["egfr.egfr"] > 30
    assert "age_years" in criteria["I01_AGE"]["values_used"]
    stored = {row.analyte: row for row in LabObservation.objects.filter(subject=subject)}
    assert set(stored) == {"creatinine", "cd3"}
    assert stored["creatinine"].unit == "umol/L" and stored["creatinine"].upper_limit == 90
    assert stored["cd3"].context == "screening" and stored["cd3"].lower_limit == 700
    events = list(AuditEntry.objects.filter(subject_code=subject.code).values_list("event", flat=True))
    assert "screening.data_recorded" in events and events.count("lab_observation.recorded") == 2
    assert "eligibility.assessed" in events


def test_a_correction_needs_a_reason_and_is_audited_as_one(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    screen(world, subject)
    before = _counts(subject)
    with pytest.raises(InvalidInput) as refused:
        screen(world, subject, infection_active=True)
    assert refused.value.code == "reason_required"
    assert _counts(subject) == before
    saved = screen(world, subject, reason="Infection found on the chest X-ray", infection_active=True)
    assert saved.record.revision == 2
    assert saved.assessment.verdict == "not_eligible"
    correction = AuditEntry.objects.filter(subject_code=subject.code, event="screening.data_recorded").last()
    assert correction is not None and "chest X-ray" in correction.reason
    assert '"infection_active"' in correction.changes_json


def test_saving_the_same_data_again_needs_no_reason_and_adds_no_lab(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    sampled = labs()
    kwargs = {
        "actor": world.actor("bdx.coordinator"),
        "subject": subject,
        "protocol": world.protocol,
        "data": DEMO_SCREENING_DATA,
    }
    with transaction.atomic():
        screening_record(**kwargs, labs=sampled)
        screening_record(**kwargs, labs=sampled)
    assert LabObservation.objects.filter(subject=subject).count() == 2
    assert ScreeningRecord.objects.get(subject=subject).revision == 1


@pytest.mark.parametrize(
    ("changes", "lab", "field_or_code"),
    [
        ({"ana_titer": -80}, None, "ana_titer"),
        ({"sledai2k_descriptors": ["rash", "malar_flush"]}, None, "sledai2k_descriptors[1]"),
        ({"eular_acr_criteria": ["anti_smith", "anti_smith"]}, None, "eular_acr_criteria[1]"),
        ({"prior_cart": "no"}, None, "prior_cart"),
        ({}, LabObservationInput("creatinine", 1.1, "mmol/L", clock.now() - timedelta(hours=1)), "unknown_unit"),
        ({}, LabObservationInput("cd3", -5.0, "cells/µL", clock.now() - timedelta(hours=1)), "lab_value_negative"),
        ({}, LabObservationInput("platelets", 200.0, "10^9/L", clock.now() - timedelta(hours=1)), "unknown_analyte"),
    ],
)
def test_bad_input_is_refused_precisely_and_nothing_is_stored(world: Any, changes, lab, field_or_code) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    before = _counts(subject)
    with pytest.raises(InvalidInput) as refused, transaction.atomic():
        screening_record(
            actor=world.actor("bdx.coordinator"),
            subject=subject,
            protocol=world.protocol,
            data={**DEMO_SCREENING_DATA, **changes},
            labs=[*labs(), lab] if lab else labs(),
        )
    if isinstance(refused.value, CalculatorInputError):
        assert field_or_code in [entry["field"] for entry in refused.value.field_errors]
    else:
        assert refused.value.code == field_or_code
    assert _counts(subject) == before


def test_partial_data_gives_incomplete_and_says_which_score_was_not_computed(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    saved = screen(world, subject, sledai2k_descriptors=None)
    result = saved.assessment.result_json
    assert saved.assessment.verdict == "incomplete"
    assert "SLEDAI-2K not computed: missing SLEDAI-2K descriptors present" in result["notes"]
    active = next(c for c in result["criteria"] if c["id"] == "I03_ACTIVE")
    assert active["outcome"] == "missing" and "SLEDAI-2K: not computed yet" in active["explanation"]


def test_screening_data_is_refused_outside_screening(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    with pytest.raises(InvalidInput) as refused:
        screen(world, subject, reason="late")
    assert refused.value.code == "not_in_screening"


# --- inclusion signs the computed verdict -----------------------------------------------------------


def test_inclusion_signs_the_verdict_computed_at_signing(world: Any) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    world.step("bdx.investigator", subject, Step.INCLUDE, password=DEMO_PASSWORD)
    event = PathwayEvent.objects.get(subject=subject, step="include")
    signature = event.signature
    assert signature is not None and signature.meaning == INCLUSION_MEANING
    from cartrial.apps.clinical.selectors import screening_evaluation

    subject.refresh_from_db()
    computed = screening_evaluation(subject=subject, protocol=world.protocol).as_dict()
    expected = hashlib.sha256(canonical_json({"subject": subject.code, "verdict": computed}).encode()).hexdigest()
    assert signature.content_sha256 == expected
    assert computed["verdict"] == "eligible" and event.details["signed_verdict"] == "eligible"


def test_inclusion_refused_when_corrected_data_fails_a_criterion_no_override(world: Any) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    screen(world, subject, reason="CD3 recount", cd3=60.0)
    with pytest.raises(TransitionRefused) as refused:
        world.step("bdx.investigator", subject, Step.INCLUDE, password=DEMO_PASSWORD)
    assert refused.value.code == "eligibility_not_met"
    assert Subject.objects.get(pk=subject.pk).state == State.ELIGIBLE.value
    assert not AuditEntry.objects.filter(subject_code=subject.code, event="signature.applied").exists()


# --- pages and API --------------------------------------------------------------------------------


def test_page_live_preview_stores_nothing_and_save_stores(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.coordinator")
    url = f"/subjects/{subject.code}/eligibility/"
    page = client.get(url)
    assert page.status_code == 200 and "SLEDAI-2K" in page.content.decode()
    before = _counts(subject)
    preview = client.post(url, form_post(cd3="90"), HTTP_HX_REQUEST="true")
    body = preview.content.decode()
    assert preview.status_code == 200 and 'data-verdict="not_eligible"' in body
    # The criterion says what was compared, in words: the CD3+ count typed, not an internal key.
    assert 'data-criterion="I06_CD3" data-outcome="not_met"' in body and "CD3+" in body and "cd3_per_ul" not in body
    assert _counts(subject) == before
    saved = client.post(url, {**form_post(), "save": "1"})
    assert saved.status_code == 302
    assert EligibilityAssessment.objects.filter(subject=subject).latest("pk").verdict == "eligible"
    again = client.post(url, {**form_post(infection_active="yes"), "save": "1"})
    # The refusal at the reason field ("reason" alone is on every screening page: the field's own name).
    assert again.status_code == 422
    assert again.context["form"].errors["reason"] == [
        "Les données de screening sont déjà enregistrées : indiquer le motif de la correction."
    ]


def test_page_form_errors_for_negative_titre_and_half_entered_sections(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.coordinator")
    url = f"/subjects/{subject.code}/eligibility/"
    before = _counts(subject)
    response = client.post(
        url, {**form_post(ana_titer="-80", organ_involvement_complete=None), "save": "1"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert 'data-testid="error-ana_titer"' in body and 'data-testid="error-organ_involvement_complete"' in body
    assert _counts(subject) == before


def test_api_screening_bad_input_is_422_with_fields(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = _api(world, "bdx.investigator")
    bad = api_payload(ana_titer=-1, sledai2k_descriptors=["rash", "unicorn"])
    response = client.post(f"/api/v1/subjects/{subject.code}/eligibility", bad, content_type="application/json")
    assert response.status_code == 422
    fields = {entry["field"] for entry in response.json()["fields"]}
    assert fields == {"ana_titer", "sledai2k_descriptors[1]"}
    unit = api_payload()
    unit["labs"][0]["unit"] = "mmol/L"
    response = client.post(f"/api/v1/subjects/{subject.code}/eligibility", unit, content_type="application/json")
    assert response.status_code == 422 and response.json()["code"] == "unknown_unit"
    assert "Creatinine" in response.json()["message"]
    assert not ScreeningRecord.objects.filter(subject=subject).exists()
    assert not LabObservation.objects.filter(subject=subject).exists()


def test_calculator_api_contract_422_and_404(world: Any) -> None:
    client = _api(world, "bdx.coordinator")
    ok = client.post(
        "/api/v1/calculators/sledai2k", {"descriptors": ["seizure", "rash"]}, content_type="application/json"
    )
    assert ok.status_code == 200
    assert ok.json()["score"] == 10 and ok.json()["counted"] == [
        {"descriptor": "seizure", "weight": 8},
        {"descriptor": "rash", "weight": 2},
    ]
    egfr = client.post(
        "/api/v1/calculators/egfr",
        {"creatinine": 1.0, "creatinine_unit": "mg/dL", "age_years": 50, "sex": "female"},
        content_type="application/json",
    )
    assert egfr.json()["egfr"] == 68.63
    bad = client.post(
        "/api/v1/calculators/ice",
        {"orientation": 5, "naming": 3, "command": 1, "writing": 1, "attention": 1, "mood": 1},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["fields"]} == {"orientation", "mood"}
    unit = client.post(
        "/api/v1/calculators/egfr",
        {"creatinine": 80, "creatinine_unit": "mmol/L", "age_years": 50, "sex": "female"},
        content_type="application/json",
    )
    assert unit.status_code == 422 and unit.json()["fields"][0]["field"] == "creatinine_unit"
    assert client.post("/api/v1/calculators/apgar", {}, content_type="application/json").status_code == 404
    not_json = client.post("/api/v1/calculators/ice", "{orientation", content_type="application/json")
    assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_json"
    assert client.get("/api/v1/calculators/icans").json()["input_schema"]["properties"]["ice_score"]
    listed = [c["name"] for c in client.get("/api/v1/calculators").json()["items"]]
    assert listed == list(CALCULATOR_NAMES) and "eular-acr-2019" in listed


def test_calculator_pages_show_what_counted_and_errors(world: Any) -> None:
    client = world.client_for("cra.monitor")
    index = client.get("/calculators/")
    assert index.status_code == 200 and "/calculators/eular-acr-2019/" in index.content.decode()
    page = client.post(
        "/calculators/eular-acr-2019/", {"ana_titer": "160", "criteria": ["lupus_nephritis_class_4", "anti_dsdna"]}
    )
    body = page.content.decode()
    assert page.status_code == 200 and "renal: lupus_nephritis_class_4 +10" in body and "classified" in body
    icaht = client.post("/calculators/icaht/", {"anc": "0, 300\n5, 400\n40, 1200"})
    assert icaht.status_code == 200 and "early_grade" in icaht.content.decode()
    wrong = client.post(
        "/calculators/ice/", {"orientation": "7", "naming": "1", "command": "1", "writing": "0", "attention": "1"}
    )
    assert wrong.status_code == 422 and "orientation" in wrong.content.decode()
    assert client.get("/calculators/apgar/").status_code == 404


# --- screening log, CSV, CONSORT ----------------------------------------------------------------------


def _screened_world(world: Any) -> dict[str, Subject]:
    return {
        "failed": world.new_subject("BDX", State.SCREEN_FAILED),
        "included": world.new_subject("BDX", State.INCLUDED),
        "screening": world.new_subject("BDX", State.SCREENING),
        "infused": world.new_subject("BDX", State.FOLLOW_UP),
        "lille": world.new_subject("LIL", State.SCREEN_FAILED),
        "pre": world.new_subject("BDX", State.PRE_SCREENING),
    }


def test_screening_log_page_and_csv_scoped_to_my_centers(world: Any) -> None:
    subjects = _screened_world(world)
    client = world.client_for("bdx.coordinator")
    page = client.get("/screening-log/").content.decode()
    for key in ("failed", "included", "screening", "infused"):
        assert f'data-subject="{subjects[key].code}"' in page
    assert subjects["lille"].code not in page and f'data-subject="{subjects["pre"].code}"' not in page
    assert "I06_CD3" in page
    export = client.get("/screening-log.csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    by_code = {row["subject"]: row for row in rows}
    assert set(by_code) == {subjects[k].code for k in ("failed", "included", "screening", "infused")}
    assert by_code[subjects["failed"].code]["outcome"] == "screen_failed"
    assert by_code[subjects["failed"].code]["failed_criteria"] == "I06_CD3"
    assert by_code[subjects["included"].code]["outcome"] == "included"
    api_client = _api(world, "bdx.coordinator")
    api = api_client.get("/api/v1/screening-log.csv")
    assert api.status_code == 200 and api.content == export.content
    assert api_client.get("/api/v1/screening-log.csv?center=LIL").status_code == 404
    assert Client().get("/api/v1/screening-log.csv").status_code == 401
    lille = world.client_for("lil.coordinator").get("/screening-log.csv").content.decode()
    assert subjects["lille"].code in lille and subjects["failed"].code not in lille
    # The lab sees the infused subject's material, not its screening outcome.
    # The lab has no use for screening outcomes: the log is not open to it (403, the attempt recorded).
    assert world.client_for("lab.manufacturing").get("/screening-log.csv").status_code == 403
    assert AuditEntry.objects.filter(actor_username="lab.manufacturing", event="access.refused").exists()
    monitor = world.client_for("cra.monitor").get("/screening-log/").content.decode()
    assert subjects["failed"].code in monitor and subjects["lille"].code in monitor and "Testpatient" not in monitor


def test_csv_cells_cannot_run_as_formulas(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    world.step("bdx.investigator", subject, Step.FAIL_SCREENING, reason='=HYPERLINK("http://evil")')
    text = world.client_for("bdx.coordinator").get("/screening-log.csv").content.decode()
    assert "'=HYPERLINK" in text


def test_consort_flow_counts_and_query_count(world: Any, django_assert_max_num_queries: Any) -> None:
    _screened_world(world)
    client = world.client_for("bdx.coordinator")
    client.get("/dashboard/consort/")  # warm the session and protocol caches
    with django_assert_max_num_queries(12):
        response = client.get("/dashboard/consort/")
    body = response.content.decode()
    counts = {
        key: body.split(f'data-count="{key}"><strong>')[1].split("<")[0]
        for key in ("screened", "screen_failed", "in_screening", "eligible", "included", "infused", "in_follow_up")
    }
    assert counts == {
        "screened": "4",
        "screen_failed": "1",
        "in_screening": "1",
        "eligible": "2",
        "included": "2",
        "infused": "1",
        "in_follow_up": "1",
    }
    assert "I06_CD3" in body
    # More subjects, same number of queries.
    for _ in range(3):
        world.new_subject("BDX", State.SCREEN_FAILED)
    with django_assert_max_num_queries(12):
        client.get("/dashboard/consort/")


# --- consent: re-consent, the guard, withdrawal ----------------------------------------------------------


def _amended(world: Any):  # type: ignore[no-untyped-def]
    """The protocol after a new consent version 1.1 (fr and en) replaced 1.0."""
    from dataclasses import replace

    from cartrial.protocols import ConsentDocument

    documents = tuple(replace(d, current=False) for d in world.protocol.consent_documents) + tuple(
        ConsentDocument("1.1", lang, f"v1.1 {lang}", clock.now().date(), True) for lang in ("fr", "en")
    )
    return replace(world.protocol, consent_documents=documents)


def test_new_consent_version_lists_blocks_and_re_consent_unblocks(world: Any, tmp_path: Any, settings: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    amended = _amended(world)
    from cartrial.apps.access import scope_for
    from cartrial.apps.clinical.selectors import consent_reconsent_list

    rows = consent_reconsent_list(scope=scope_for(world.users["bdx.coordinator"]), protocol=amended)
    assert [row.subject.code for row in rows] == [subject.code] and rows[0].current_version == "1.1"
    planned = clock.now().date() + timedelta(days=7)
    with pytest.raises(TransitionRefused) as refused:
        world.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, protocol=amended, apheresis_date=planned)
    assert refused.value.code == "consent_outdated"
    common = {"actor": world.actor("bdx.coordinator"), "subject": subject, "protocol": amended}
    with transaction.atomic():
        services.consent_reconsent(**common, language="fr", signed_on=clock.now().date())
    assert consent_reconsent_list(scope=scope_for(world.users["bdx.coordinator"]), protocol=amended) == []
    world.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, protocol=amended, apheresis_date=planned)
    assert Subject.objects.get(pk=subject.pk).state == State.APHERESIS_SCHEDULED.value
    with pytest.raises(InvalidInput) as again, transaction.atomic():
        services.consent_reconsent(**common, language="fr", signed_on=clock.now().date())
    assert again.value.code == "consent_current"


def test_re_consent_page_lists_the_subject_for_its_center_only(world: Any, tmp_path: Any, settings: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    source = Path(world.protocol.path).read_text(encoding="utf-8")
    amended = source.replace('version: "1.0"\n      language: fr', 'version: "1.1"\n      language: fr')
    path = tmp_path / "amended.yaml"
    path.write_text(amended, encoding="utf-8")
    settings.CARTRIAL_PROTOCOL_FILE = str(path)
    page = world.client_for("bdx.coordinator").get("/consent/reconsent/").content.decode()
    assert f'data-subject="{subject.code}"' in page and "v1.1" in page
    assert subject.code not in world.client_for("lil.coordinator").get("/consent/reconsent/").content.decode()
    done = world.client_for("bdx.coordinator").post(
        f"/subjects/{subject.code}/consent/",
        {"action": "reconsent", "language": "fr", "date": clock.now().date().isoformat()},
    )
    assert done.status_code == 302
    assert subject.consents.order_by("-pk").first().document_version == "1.1"


def test_withdrawal_of_consent_exits_and_records_what_it_stops(world: Any) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    _withdraw(world, "bdx.investigator", subject, world.protocol, reason="Does not wish to continue")
    withdrawal = ConsentWithdrawal.objects.get(subject=subject)
    subject.refresh_from_db()
    assert subject.state == State.WITHDRAWN.value and withdrawal.exited_study
    assert withdrawal.stops == ["collect_apheresis", "data_collection"]
    event = PathwayEvent.objects.get(subject=subject, step="withdraw")
    assert event.reason.startswith("Consent withdrawn")
    entry = AuditEntry.objects.get(subject_code=subject.code, event="consent.withdrawn")
    assert json.loads(entry.changes_json)[2]["new"] == ["collect_apheresis", "data_collection"]


def _withdraw(world: Any, username: str, subject: Subject, protocol: Any, *, reason: str, on: Any = None) -> None:
    from cartrial.apps.access import reach_subject

    reach = reach_subject(world.users[username], subject.code, Action.WITHDRAW_CONSENT)
    consent_withdraw(reach, {"withdrawn_on": on or clock.now().date(), "reason": reason}, protocol)


def test_withdrawal_without_exit_freezes_every_step_but_the_exits(world: Any) -> None:
    from dataclasses import replace

    # The protocol decides (`consent.withdrawal_exits_study`): here a protocol where it does not exit.
    frozen = replace(
        world.protocol, pathway_rules=replace(world.protocol.pathway_rules, consent_withdrawal_exits_study=False)
    )
    subject = world.new_subject("BDX", State.INCLUDED)
    _withdraw(world, "bdx.coordinator", subject, frozen, reason="Stops visits")
    assert Subject.objects.get(pk=subject.pk).state == State.INCLUDED.value
    assert ConsentWithdrawal.objects.get(subject=subject).exited_study is False
    with pytest.raises(TransitionRefused) as refused:
        world.step(
            "bdx.coordinator",
            subject,
            Step.SCHEDULE_APHERESIS,
            protocol=frozen,
            apheresis_date=clock.now().date() + timedelta(days=3),
        )
    assert refused.value.code == "consent_withdrawn"
    world.step("bdx.coordinator", subject, Step.WITHDRAW, protocol=frozen, reason="Consent withdrawn earlier")
    assert Subject.objects.get(pk=subject.pk).state == State.WITHDRAWN.value


def test_withdrawal_refusals(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    with pytest.raises(InvalidInput) as empty:
        _withdraw(world, "bdx.coordinator", subject, world.protocol, reason=" ")
    assert empty.value.code == "reason_required"
    with pytest.raises(InvalidInput) as future:
        _withdraw(
            world, "bdx.coordinator", subject, world.protocol, reason="x", on=clock.now().date() + timedelta(days=3)
        )
    assert future.value.code == "withdrawal_date_future"
    assert Subject.objects.get(pk=subject.pk).state == State.SCREENING.value


def test_consent_page_withdrawal_by_role(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    url = f"/subjects/{subject.code}/consent/"
    form = {
        "action": "withdraw",
        "date": clock.now().date().isoformat(),
        "reason": "Patient's decision",
        "confirm": "yes",
    }
    unconfirmed = world.client_for("bdx.coordinator").post(url, {**form, "confirm": ""})
    assert unconfirmed.status_code == 422 and Subject.objects.get(pk=subject.pk).state == State.SCREENING.value
    assert world.client_for("bdx.pharmacist").post(url, form).status_code == 403
    assert world.client_for("lil.coordinator").post(url, form).status_code == 404
    assert world.client_for("bdx.coordinator").post(url, form).status_code == 302
    page = world.client_for("bdx.coordinator").get(url).content.decode()
    assert 'data-testid="withdrawal"' in page and "data_collection" in page


def test_a_criterion_without_rule_is_attested_on_the_page_and_only_it(world: Any, tmp_path: Any, settings: Any) -> None:
    document = yaml.safe_load(Path(world.protocol.path).read_text(encoding="utf-8"))
    document["eligibility"]["criteria"].append(
        {
            "id": "E03_OTHER_AUTOIMMUNE",
            "kind": "exclusion",
            "text": {"en": "No other systemic autoimmune disease", "fr": "Absence d'autre maladie auto-immune"},
        }
    )
    path = tmp_path / "with_attested.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    settings.CARTRIAL_PROTOCOL_FILE = str(path)
    subject = world.new_subject("BDX", State.SCREENING)
    client = world.client_for("bdx.investigator")
    url = f"/subjects/{subject.code}/eligibility/"
    page = client.get(url).content.decode()
    assert 'name="attest_E03_OTHER_AUTOIMMUNE"' in page and 'name="attest_I06_CD3"' not in page
    assert client.post(url, {**form_post(), "save": "1"}).status_code == 302
    assert EligibilityAssessment.objects.filter(subject=subject).latest("pk").verdict == "incomplete"
    attested = {**form_post(), "attest_E03_OTHER_AUTOIMMUNE": "met", "reason": "Rheumatologist's letter", "save": "1"}
    assert client.post(url, attested).status_code == 302
    latest = EligibilityAssessment.objects.filter(subject=subject).latest("pk")
    assert latest.verdict == "eligible"
    row = next(c for c in latest.result_json["criteria"] if c["id"] == "E03_OTHER_AUTOIMMUNE")
    assert row["values_used"] == {"attested": "met"}


def test_consent_api_reconsent_and_withdrawal(world: Any, tmp_path: Any, settings: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    source = Path(world.protocol.path).read_text(encoding="utf-8")
    path = tmp_path / "amended.yaml"
    path.write_text(source.replace('version: "1.0"\n      language: fr', 'version: "1.1"\n      language: fr'), "utf-8")
    settings.CARTRIAL_PROTOCOL_FILE = str(path)
    today = clock.now().date().isoformat()
    pharmacist = _api(world, "bdx.pharmacist")
    refused = pharmacist.post(
        f"/api/v1/subjects/{subject.code}/consent/reconsent",
        {"language": "fr", "signed_on": today},
        content_type="application/json",
    )
    assert refused.status_code == 403
    coordinator = _api(world, "bdx.coordinator")
    blocked = coordinator.post(
        f"/api/v1/subjects/{subject.code}/transitions",
        {"step": "schedule_apheresis", "data": {"apheresis_date": today}},
        content_type="application/json",
    )
    assert blocked.status_code == 409 and blocked.json()["code"] == "consent_outdated"
    done = coordinator.post(
        f"/api/v1/subjects/{subject.code}/consent/reconsent",
        {"language": "fr", "signed_on": today},
        content_type="application/json",
    )
    assert done.status_code == 200 and done.json()["document_version"] == "1.1"
    outside = _api(world, "lil.coordinator").post(
        f"/api/v1/subjects/{subject.code}/consent/withdrawal",
        {"withdrawn_on": today, "reason": "x"},
        content_type="application/json",
    )
    assert outside.status_code == 404
    withdrawn = coordinator.post(
        f"/api/v1/subjects/{subject.code}/consent/withdrawal",
        {"withdrawn_on": today, "reason": "Moving abroad"},
        content_type="application/json",
    )
    body = withdrawn.json()
    assert withdrawn.status_code == 200 and body["state"] == "withdrawn" and body["exited_study"] is True
    assert "schedule_apheresis" in body["stops"] and "data_collection" in body["stops"]


def test_confirmation_reads_the_verdict_computed_now_not_a_stale_assessment(world: Any) -> None:
    from cartrial.apps.clinical.services import lab_observations_record

    subject = world.new_subject("BDX", State.SCREENING)
    assert screen(world, subject).assessment.verdict == "eligible"
    # A later screening CD3+ count (entered elsewhere in the one lab store) falls below 100/µL.
    with transaction.atomic():
        lab_observations_record(
            actor=world.actor("bdx.coordinator"),
            subject=subject,
            observations=[
                LabObservationInput("cd3", 70.0, "cells/µL", clock.now() - timedelta(minutes=5), context="screening")
            ],
        )
    with pytest.raises(TransitionRefused) as refused:
        world.step("bdx.investigator", subject, Step.CONFIRM_ELIGIBILITY)
    assert refused.value.code == "eligibility_not_met" and "not_eligible" in str(refused.value)
