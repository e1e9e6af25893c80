"""Pathway services against the database: each step persisted, refusals recorded, nothing half-written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from screening_data import screen

from cartrial.apps import clock
from cartrial.apps.accounts.services import SignatureRefused
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.logistics.models import Deviation
from cartrial.apps.pathway.steps import INCLUSION_MEANING
from cartrial.apps.subjects import services
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.bedside import IdentityMismatch
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import State, Step, TransitionRefused
from cartrial.locale import render

pytestmark = pytest.mark.django_db


def test_subject_codes_follow_per_center_without_gap(world) -> None:
    codes = [world.new_subject("BDX").code for _ in range(3)] + [world.new_subject("LIL").code]
    assert codes == ["BDX-001", "BDX-002", "BDX-003", "LIL-001"]


def test_whole_main_path_to_completion_is_audited_and_chain_intact(world) -> None:
    subject = world.new_subject("STR", State.LONG_TERM_FOLLOW_UP)
    # Long-term follow-up ends 15 years after the infusion (the protocol's `long_term_follow_up_years`).
    with clock.frozen_at(clock.now() + timedelta(days=15 * 366)):
        world.step("str.coordinator", subject, Step.COMPLETE, reason="")
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
        world.step("bdx.investigator", subject, Step.INCLUDE, password=DEMO_PASSWORD)
    assert refused.value.code == "wrong_state"
    assert "Pré-screening" in render(refused.value.message, "fr")
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
        world.step("bdx.investigator", subject, Step.CONFIRM_ELIGIBILITY)
    assert refused.value.code == "eligibility_not_met"


def test_wrong_password_at_inclusion_refused_and_logged(world) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    with pytest.raises(SignatureRefused):
        world.step("bdx.investigator", subject, Step.INCLUDE, password="not-my-password")
    subject.refresh_from_db()
    assert subject.state == State.ELIGIBLE.value
    assert AuditEntry.objects.filter(subject_code=subject.code, event="signature.failed").count() == 1
    assert not AuditEntry.objects.filter(subject_code=subject.code, event="signature.applied").exists()


def test_inclusion_signature_records_meaning_and_hash(world) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    event = PathwayEvent.objects.get(subject=subject, step="include")
    assert event.signature is not None
    assert event.signature.meaning == INCLUSION_MEANING
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
    with pytest.raises(IdentityMismatch):
        world.step(
            "bdx.investigator",
            subject,
            Step.INFUSE,
            infused_on=clock.now().date(),
            password=DEMO_PASSWORD,
            bag_code=subject.code,
            wristband_code=subject.code,
            second_username="bdx.pharmacist",
            second_password=DEMO_PASSWORD,
            second_bag_code=other.code,
            second_wristband_code=subject.code,
        )
    subject.refresh_from_db()
    assert subject.state == State.LYMPHODEPLETION.value
    refusal = AuditEntry.objects.get(subject_code=subject.code, event="pathway.step_refused")
    assert "identity_mismatch" in refusal.changes_json and other.code in refusal.changes_json
    assert Deviation.objects.get(subject=subject, kind="bedside_mismatch").scanned.count(other.code) == 1


def test_infusion_needs_two_different_people(world) -> None:
    subject = world.new_subject("BDX", State.LYMPHODEPLETION)
    with pytest.raises(IdentityMismatch) as refused:
        world.step(
            "bdx.pharmacist",
            subject,
            Step.INFUSE,
            infused_on=clock.now().date(),
            password=DEMO_PASSWORD,
            bag_code=subject.code,
            wristband_code=subject.code,
            second_username="bdx.pharmacist",
            second_password=DEMO_PASSWORD,
            second_bag_code=subject.code,
            second_wristband_code=subject.code,
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
        world.step(
            "bdx.coordinator",
            subject,
            Step.START_SCREENING,
            document_version="0.9",
            language="fr",
            signed_on=subject.created_at.date(),
        )
    assert refused.value.code == "unknown_consent_version"
    assert subject.consents.count() == 0
