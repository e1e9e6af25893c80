"""A Bordeaux coordinator enters screening data, sees the computed verdict, the investigator signs, Lille cannot see."""

from __future__ import annotations

import re

import pytest

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_bordeaux_screens_investigator_includes_lille_cannot_see(world, live_server, new_page, login) -> None:
    base = live_server.url
    # The coordinator registers and screens the patient.
    coordinator = new_page("fr")
    login(coordinator, "bdx.coordinator", DEMO_PASSWORD)
    coordinator.click("text=Enregistrer un patient")
    coordinator.fill("#id_family_name", "Dupont")
    coordinator.fill("#id_given_names", "Marie")
    coordinator.fill("#id_birth_date", "1988-04-12")
    coordinator.fill("#id_hospital_number", "BDX123456")
    coordinator.click("main button[type=submit]")
    coordinator.wait_for_url(re.compile(r".*/subjects/BDX-001/$"))
    assert "DUPONT Marie" in coordinator.content()

    coordinator.click("button[data-step=start_screening]")
    coordinator.select_option("#id_document_version", "1.0")
    coordinator.select_option("#id_language", "fr")
    coordinator.fill("#id_signed_on", "2026-11-20")
    coordinator.click("#step-form button[type=submit]")
    coordinator.wait_for_selector("h1 .chip.state-screening")

    coordinator.click("a:has-text('Données de screening et verdict calculé')")
    coordinator.wait_for_url(re.compile(r".*/subjects/BDX-001/eligibility/$"))
    # Screening data in: the verdict is computed live from it, criterion by criterion.
    coordinator.select_option("#id_sex", "female")
    coordinator.fill("#id_ana_titer", "640")
    for name, values in (
        ("sledai2k_descriptors", ("proteinuria", "hematuria", "low_complement", "increased_dna_binding")),
        ("eular_acr_criteria", ("lupus_nephritis_class_4", "anti_dsdna", "low_c3", "low_c4")),
        ("organ_involvement", ("renal",)),
        ("immunosuppressants_failed", ("mycophenolate", "rituximab")),
    ):
        for value in values:
            coordinator.check(f"input[name={name}][value={value}]")
        coordinator.check(f"#id_{name}_complete")
    for name, answer in (
        ("glucocorticoids_failed", "yes"),
        ("infection_active", "no"),
        ("prior_cart", "no"),
        ("prior_gene_therapy", "no"),
    ):
        coordinator.select_option(f"#id_{name}", answer)
    coordinator.fill("#id_creatinine_value", "71")
    coordinator.select_option("#id_creatinine_unit", "umol/L")
    coordinator.fill("#id_creatinine_lower_limit", "45")
    coordinator.fill("#id_creatinine_upper_limit", "90")
    coordinator.fill("#id_creatinine_sampled_at", "2026-11-20T08:30")
    coordinator.fill("#id_cd3_lower_limit", "700")
    coordinator.fill("#id_cd3_sampled_at", "2026-11-20T08:30")
    # A CD3+ count under 100/µL fails I06 and says which value was used.
    coordinator.fill("#id_cd3_value", "85")
    coordinator.press("#id_cd3_value", "Tab")
    coordinator.wait_for_selector("[data-testid=verdict][data-verdict=not_eligible]")
    failed = coordinator.locator("tr[data-criterion=I06_CD3]")
    assert failed.get_attribute("data-outcome") == "not_met" and "85" in failed.inner_text()
    coordinator.fill("#id_cd3_value", "650")
    coordinator.press("#id_cd3_value", "Tab")
    coordinator.wait_for_selector("[data-testid=verdict][data-verdict=eligible]")
    assert coordinator.inner_text("[data-testid=verdict]") == "Éligible"
    for criterion in ("I01_AGE", "I02_EULAR_ACR", "I03_ACTIVE", "I04_REFRACTORY", "I05_EGFR", "I06_CD3"):
        assert coordinator.locator(f"tr[data-criterion={criterion}]").get_attribute("data-outcome") == "met"
    # The criterion reads as a clinician writes it: the score, its threshold, the organs involved.
    assert "SLEDAI-2K : 12, au moins 8 requis" in coordinator.inner_text("tr[data-criterion=I03_ACTIVE]")
    coordinator.click("button[name=save]")
    coordinator.wait_for_url(re.compile(r".*/subjects/BDX-001/$"))
    coordinator.click("button[data-step=confirm_eligibility]")
    coordinator.click("#step-form button[type=submit]")
    coordinator.wait_for_selector("h1 .chip.state-eligible")
    # The coordinator is not offered the inclusion: only an investigator signs it.
    assert coordinator.locator("button[data-step=include]").count() == 0

    # The investigator includes her; a wrong password is refused first.
    investigator = new_page("fr")
    login(investigator, "bdx.investigator", DEMO_PASSWORD)
    investigator.goto(f"{base}/subjects/BDX-001/")
    investigator.click("button[data-step=include]")
    investigator.fill("#id_password", "wrong-password")
    investigator.click("#step-form button[type=submit]")
    investigator.wait_for_selector("[data-testid=refusal]")
    assert "mot de passe" in investigator.inner_text("[data-testid=refusal]").lower() or "password" in (
        investigator.inner_text("[data-testid=refusal]").lower()
    )
    assert Subject.objects.get(code="BDX-001").state == "eligible"
    assert AuditEntry.objects.filter(subject_code="BDX-001", event="signature.failed").count() == 1
    investigator.fill("#id_password", DEMO_PASSWORD)
    investigator.click("#step-form button[type=submit]")
    investigator.wait_for_selector("h1 .chip.state-included")
    assert "Je confirme" in investigator.content() or "I confirm" in investigator.content()
    assert Subject.objects.get(code="BDX-001").state == "included"
    signature = PathwayEvent.objects.get(subject__code="BDX-001", step="include").signature
    assert signature is not None and signature.content_sha256 in investigator.content()

    # Lille cannot find her: not in the list, and her page answers 404.
    lille = new_page("fr")
    login(lille, "lil.coordinator", DEMO_PASSWORD)
    assert "BDX-001" not in lille.content()
    response = lille.goto(f"{base}/subjects/BDX-001/")
    assert response is not None and response.status == 404
    assert "Dupont" not in lille.content()
