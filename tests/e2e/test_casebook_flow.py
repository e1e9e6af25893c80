"""Issue 9's "done when", in the browser: a coordinator records D28 with vital signs and labs, an
edit check opens a query, the correction with a reason closes it; a monitor raises a query, the
coordinator answers it from the inbox, the monitor closes it and verifies the form; the data
manager locks the casebook and the investigator signs it with their password."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, Query, VisitRecord
from cartrial.apps.clinical.models import LabObservation
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db(transaction=True)

VITALS = {
    "temperature_c": "37,2",
    "heart_rate_bpm": "80",
    "systolic_bp_mmhg": "122",
    "diastolic_bp_mmhg": "130",
    "spo2_pct": "97",
    "weight_kg": "61,5",
}


def _fill(page, values: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for name, value in values.items():
        page.fill(f"#id_{name}", value)


def test_d28_is_entered_queried_verified_locked_and_signed_in_the_browser(world, live_server, new_page, login) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    d28 = subject.infusion_date + timedelta(days=28)
    casebook = f"{live_server.url}/casebook/subjects/{subject.code}/"
    vitals_url = f"{casebook}visits/D28/forms/vital_signs/"

    # The coordinator records the visit date from the subject's casebook.
    coordinator = new_page("fr")
    login(coordinator, "bdx.coordinator", DEMO_PASSWORD)
    coordinator.goto(casebook)
    coordinator.click("tr[data-visit=D28] th a")
    coordinator.fill("[data-testid=visit-date]", d28.isoformat())
    coordinator.click("[data-testid=visit-done]")
    assert coordinator.get_attribute("[data-testid=visit-status]", "data-status") == "done"
    assert coordinator.inner_text("[data-testid=visit-status]") == "Faite"
    # The visit lists its forms by their protocol labels, not their codes.
    assert coordinator.inner_text("a[data-form=vital_signs]") == "Signes vitaux"

    # A value out of its plausible range is refused at its item, and nothing is stored.
    coordinator.click("a[data-form=vital_signs]")
    _fill(coordinator, {**VITALS, "temperature_c": "47"})
    coordinator.click("[data-testid=save-form]")
    refused = coordinator.locator("[data-item=temperature_c].has-error [data-testid=refusal]")
    assert "47" in refused.inner_text() and "30–45" in refused.inner_text()
    assert coordinator.input_value("#id_temperature_c") == "47"
    assert not FormRecord.objects.filter(subject=subject).exists()

    # Diastolic above systolic: saved, and the edit check opens a query shown beside the item.
    _fill(coordinator, VITALS)
    coordinator.click("[data-testid=save-form]")
    assert coordinator.get_attribute("[data-testid=form-status]", "data-status") == "complete"
    automatic = coordinator.locator("[data-origin=edit_check]")
    assert automatic.get_attribute("data-status") == "open"
    assert automatic.get_attribute("data-item") == "diastolic_bp_mmhg"
    assert "inférieure à la systolique" in automatic.inner_text()
    assert coordinator.locator("[data-item=diastolic_bp_mmhg] .query").count() == 1

    # The correction needs a reason; with it the automatic query closes itself.
    coordinator.fill("#id_diastolic_bp_mmhg", "76")
    coordinator.click("[data-testid=save-form]")
    assert coordinator.get_attribute("[data-testid=refusal]", "data-item") == "reason"
    coordinator.fill("#id_diastolic_bp_mmhg", "76")
    coordinator.fill("[data-testid=reason]", "Erreur de saisie : 76 sur la fiche de surveillance")
    coordinator.click("[data-testid=save-form]")
    assert automatic.get_attribute("data-status") == "closed"
    assert coordinator.locator("[data-item=diastolic_bp_mmhg] .query").count() == 0

    # Labs with their units and the lab's normal ranges.
    coordinator.goto(f"{casebook}visits/D28/forms/haematology/")
    _fill(coordinator, {"anc": "2,1", "lymphocytes": "0,9", "platelets": "210", "haemoglobin": "12,1"})
    coordinator.fill("[name=anc__lower_limit]", "1,5")
    coordinator.fill("[name=anc__upper_limit]", "7")
    coordinator.select_option("[name=haemoglobin__unit]", "g/dL")
    coordinator.click("[data-testid=save-form]")
    assert coordinator.get_attribute("[data-testid=form-status]", "data-status") == "complete"
    assert coordinator.input_value("[name=haemoglobin__unit]") == "g/dL"
    coordinator.goto(f"{casebook}visits/D28/forms/chemistry/")
    _fill(coordinator, {"creatinine": "68", "alt": "24", "crp": "3"})
    coordinator.click("[data-testid=save-form]")
    assert coordinator.get_attribute("[data-testid=form-status]", "data-status") == "complete"

    # The monitor (in English) raises a query on the weight.
    monitor = new_page("en")
    login(monitor, "cra.monitor", DEMO_PASSWORD)
    with monitor.expect_navigation():
        monitor.select_option("select[name=language]", "en")
    monitor.goto(vitals_url)
    monitor.select_option("[data-testid=query-item]", "weight_kg")
    monitor.fill("[data-testid=query-text]", "The source document says 65 kg: please check.")
    monitor.click("[data-testid=raise-query]")
    manual = Query.objects.get(subject=subject, origin="manual")
    row = monitor.locator(f"[data-testid=query-{manual.pk}]")
    assert row.get_attribute("data-status") == "open"
    assert "Weight" in row.inner_text() and "weight_kg" not in row.inner_text()

    # The coordinator answers it from the query inbox.
    coordinator.goto(f"{live_server.url}/casebook/queries/")
    inbox_row = coordinator.locator(f"tr[data-query='{manual.pk}']")
    assert "Signes vitaux" in inbox_row.inner_text()
    inbox_row.locator("input[name=text]").fill("Pesée refaite à la visite : 61,5 kg.")
    coordinator.click(f"[data-testid=answer-{manual.pk}]")
    coordinator.goto(f"{live_server.url}/casebook/queries/?status=answered")
    assert coordinator.get_attribute(f"tr[data-query='{manual.pk}'] [data-status]", "data-status") == "answered"

    # The monitor closes it, then verifies the form against the source.
    monitor.goto(vitals_url)
    row.locator("form:has(input[value=close]) input[name=text]").fill("Answer accepted.")
    monitor.click(f"[data-testid=close-{manual.pk}]")
    assert row.get_attribute("data-status") == "closed"
    monitor.click("[data-testid=verify-link]")
    monitor.click("[data-testid=verify-items]")
    assert monitor.get_attribute("[data-testid=form-status]", "data-status") == "verified"
    assert monitor.inner_text("[data-testid=form-status]") == "Verified"

    # The data manager locks every form of the casebook.
    manager = new_page("fr")
    login(manager, "dm.datamanager", DEMO_PASSWORD)
    manager.goto(casebook)
    manager.click("[data-testid=lock-subject]")
    d28_forms = manager.locator("tr[data-visit=D28] a[data-form][data-status=locked]")
    assert sorted(d28_forms.evaluate_all("links => links.map(l => l.dataset.form)")) == [
        "chemistry",
        "haematology",
        "vital_signs",
    ]

    # The investigator signs: a wrong password is refused, the right one signs.
    investigator = new_page("fr")
    login(investigator, "bdx.investigator", DEMO_PASSWORD)
    investigator.goto(casebook)
    investigator.fill("[data-testid=sign-password]", "not-my-password")
    investigator.click("[data-testid=sign-casebook]")
    assert investigator.locator("[data-testid=refusal]").is_visible()
    assert not CasebookSignature.objects.filter(subject=subject).exists()
    investigator.fill("[data-testid=sign-password]", DEMO_PASSWORD)
    investigator.click("[data-testid=sign-casebook]")
    banner = investigator.inner_text("[data-testid=casebook-signature]")
    assert "Claire Dubois" in banner and "exactes" in banner

    # What the database holds at the end.
    records = {r.form_code: r for r in FormRecord.objects.filter(subject=subject, visit_code="D28")}
    assert {code: r.status for code, r in records.items()} == {
        "vital_signs": "signed",
        "haematology": "signed",
        "chemistry": "signed",
    }
    assert records["vital_signs"].values_json["diastolic_bp_mmhg"] == 76
    assert set(records["vital_signs"].verified_json) == set(records["vital_signs"].values_json)
    assert VisitRecord.objects.get(subject=subject, visit_code="D28").done_on == d28
    assert sorted(Query.objects.filter(subject=subject).values_list("origin", "status")) == [
        ("edit_check", "closed"),
        ("manual", "closed"),
    ]
    assert [m.move for m in manual.messages.all()] == ["raise", "answer", "close"]
    signature = CasebookSignature.objects.get(subject=subject)
    assert (signature.forms_signed, signature.signature.signer.username) == (3, "bdx.investigator")
    assert signature.signature.voided_at is None
    anc = LabObservation.objects.filter(subject=subject, analyte="neutrophils").latest("pk")
    assert (anc.value, anc.lower_limit, anc.upper_limit) == (2.1, 1.5, 7.0)
    hb = LabObservation.objects.filter(subject=subject, analyte="hemoglobin").latest("pk")
    assert hb.unit == "g/dL"
    corrected = AuditEntry.objects.filter(event="casebook.form_saved", reason__startswith="Erreur de saisie")
    assert corrected.count() == 1
