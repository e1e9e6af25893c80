"""Pathway services against the database: each step persisted, refusals recorded, nothing half-written."""

from __future__ import annotations

import pytest
from screening_data import screen

from cartrial.apps.accounts.services import SignatureRefused
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.subjects import services
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import State, TransitionRefused

pytestmark = pytest.mark.django_db


def test_subject_codes_follow_per_center_without_gap(world) -> None:
    codes = [world.new_subject("BDX").code for _ in range(3)] + [world.new_subject("LIL").code]
    assert codes == ["BDX-001", "BDX-002", "BDX-003", "LIL-001"]


def test_whole_main_path_to_completion_is_audited_and_chain_intact(world) -> None:
    subject = world.new_subject("STR", State.COMPLETED)
    assert subject.state == State.COMPLETED.value
    steps = list(PathwayEvent.objects.filter(subject=subject).values_list("step", flat=True))
    assert steps[0] == "start_screening" and steps[-1] == "complete"
    assert len(steps) == 16
    assert AuditEntry.objects.filter(subject_code=subject.code, event="pathway.step").count() == 16
    report = audit_verify()
    assert report.intact and report.checked == AuditEntry.objects.count()


def test_skipped_step_refused_in_french_nothing_written_refusal_recorded(world) -> None:
    subject = world.new_subject("BDX")
    before = PathwayEvent.objects.count()
    with pytest.raises(TransitionRefused) as refused:
        services.subject_include(
            actor=world.actor("bdx.investigator"),
            user=world.users["bdx.investigator"],
            subject=subject,
            protocol=world.protocol,
            password=DEMO_PASSWORD,
            ui_language="fr",
        )
    assert refused.value.code == "wrong_state"
    assert "Pré-screening" in refused.value.message
    subject.refresh_from_db()
    assert subject.state == State.PRE_SCREENING.value
    assert PathwayEvent.objects.count() == before
    refusal = AuditEntry.objects.filter(subject_code=subject.code, event="pathway.step_refused").get()
    assert "wrong_state" in refusal.changes_json


def test_inclusion_refused_without_eligible_verdict(world) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    saved = screen(world, subject, cd3=80.0)
    assert saved.assessment.verdict == "not_eligible"
    with pytest.raises(TransitionRefused) as refused:
        services.subject_confirm_eligibility(
            actor=world.actor("bdx.investigator"),
            user=world.users["bdx.investigator"],
            subject=subject,
            protocol=world.protocol,
        )
    assert refused.value.code == "eligibility_not_met"


def test_wrong_password_at_inclusion_refused_and_logged(world) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    with pytest.raises(SignatureRefused):
        services.subject_include(
            actor=world.actor("bdx.investigator"),
            user=world.users["bdx.investigator"],
            subject=subject,
            protocol=world.protocol,
            password="not-my-password",
        )
    subject.refresh_from_db()
    assert subject.state == State.ELIGIBLE.value
    assert AuditEntry.objects.filter(subject_code=subject.code, event="signature.failed").count() == 1
    assert not AuditEntry.objects.filter(subject_code=subject.code, event="signature.applied").exists()


def test_inclusion_signature_records_meaning_and_hash(world) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    event = PathwayEvent.objects.get(subject=subject, step="include")
    assert event.signature is not None
    assert event.signature.meaning == services.INCLUSION_MEANING
    assert len(event.signature.content_sha256) == 64
    assert event.signature.signer == world.users["bdx.investigator"]


def test_chain_of_identity_is_allocated_at_inclusion_before_apheresis(world) -> None:
    from cartrial.apps.logistics.models import ChainOfIdentity
    from cartrial.domain.identity import parse_coi

    eligible = world.new_subject("BDX", State.ELIGIBLE)
    assert not ChainOfIdentity.objects.filter(subject=eligible).exists()
    included = world.new_subject("BDX", State.INCLUDED)
    coi = ChainOfIdentity.objects.get(subject=included)
    assert parse_coi(coi.content + coi.check_character).content == coi.content


def test_infusion_identity_mismatch_is_a_hard_stop_and_a_deviation(world) -> None:
    subject = world.new_subject("BDX", State.LYMPHODEPLETION)
    other = world.new_subject("BDX")
    checks = (
        services.BedsideCheck(world.users["bdx.pharmacist"], DEMO_PASSWORD, other.code, subject.code),
        services.BedsideCheck(world.users["bdx.investigator"], DEMO_PASSWORD, subject.code, subject.code),
    )
    with pytest.raises(services.IdentityMismatch):
        services.subject_infuse(
            actor=world.actor("bdx.investigator"),
            user=world.users["bdx.investigator"],
            subject=subject,
            protocol=world.protocol,
            infused_on=subject.apheresis_date,
            checks=checks,
        )
    subject.refresh_from_db()
    assert subject.state == State.LYMPHODEPLETION.value
    deviation = AuditEntry.objects.get(subject_code=subject.code, event="pathway.step_refused")
    assert "identity_mismatch_deviation" in deviation.changes_json and other.code in deviation.changes_json


def test_infusion_needs_two_different_people(world) -> None:
    subject = world.new_subject("BDX", State.LYMPHODEPLETION)
    same = services.BedsideCheck(world.users["bdx.pharmacist"], DEMO_PASSWORD, subject.code, subject.code)
    with pytest.raises(services.IdentityMismatch) as refused:
        services.subject_infuse(
            actor=world.actor("bdx.pharmacist"),
            user=world.users["bdx.pharmacist"],
            subject=subject,
            protocol=world.protocol,
            infused_on=subject.apheresis_date,
            checks=(same, same),
        )
    assert refused.value.code == "same_checker"


def test_identity_is_encrypted_at_rest(world) -> None:
    subject = world.new_subject("BDX")
    stored = Subject.objects.get(pk=subject.pk).identity.ciphertext
    assert "Testpatient" not in stored
    assert not AuditEntry.objects.filter(changes_json__contains="Testpatient").exists()


def test_identity_correction_requires_reason(world) -> None:
    from datetime import date

    subject = world.new_subject("BDX")
    new = services.IdentityInput("Testpatient", "Anne-Marie", date(1985, 5, 5), "IPP99999")
    with pytest.raises(InvalidInput):
        services.subject_identity_correct(
            actor=world.actor("bdx.coordinator"), subject=subject, identity=new, reason=""
        )
    services.subject_identity_correct(
        actor=world.actor("bdx.coordinator"), subject=subject, identity=new, reason="typo in given name"
    )
    entry = AuditEntry.objects.get(subject_code=subject.code, event="subject.identity_changed")
    assert entry.reason == "typo in given name"


def test_outdated_consent_version_is_refused(world) -> None:
    subject = world.new_subject("BDX")
    with pytest.raises(InvalidInput) as refused:
        services.subject_start_screening(
            actor=world.actor("bdx.coordinator"),
            user=world.users["bdx.coordinator"],
            subject=subject,
            protocol=world.protocol,
            document_version="0.9",
            language="fr",
            signed_on=subject.created_at.date(),
        )
    assert refused.value.code == "unknown_consent_version"
    assert subject.consents.count() == 0
