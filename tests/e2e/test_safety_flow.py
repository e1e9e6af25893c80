"""In the browser: a coordinator records a serious adverse event from the subject page with the
term picker (its clock starts), records the initial report; the investigator signs the relatedness."""

from __future__ import annotations

import os
from datetime import timedelta

from playwright.sync_api import expect

from cartrial.apps.safety.models import AdverseEvent, SaeReport
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State


def test_an_sae_is_recorded_reported_and_its_relatedness_signed_in_the_browser(
    world, live_server, new_page, login
) -> None:  # type: ignore[no-untyped-def]
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    d6 = (subject.infusion_date + timedelta(days=6)).isoformat()

    coordinator = new_page("fr")
    login(coordinator, "bdx.coordinator", DEMO_PASSWORD)
    coordinator.goto(f"{live_server.url}/subjects/{subject.code}/")
    coordinator.click("[data-testid=safety-link]")
    coordinator.click("[data-testid=new-ae]")
    # The term picker asks the server for the terms matching what is typed (French, no accents needed).
    coordinator.fill("[data-testid=term]", "neutropenie febrile")
    expect(coordinator.locator("#ctcae-term-list option")).to_have_count(1)
    option = coordinator.locator("#ctcae-term-list option[value=febrile_neutropenia]")
    assert "Neutropénie fébrile" in option.inner_text()
    coordinator.fill("[data-testid=term]", "febrile_neutropenia")
    coordinator.fill("input[name=grade]", "3")
    coordinator.fill("input[name=start_date]", d6)
    coordinator.check("input[name=serious]")
    coordinator.check("input[name=seriousness_criteria][value=hospitalisation]")
    coordinator.fill("input[name=awareness_at]", f"{d6}T10:00")
    coordinator.select_option("select[name=action]", "hospitalisation")
    coordinator.select_option("select[name=outcome]", "recovering")
    coordinator.click("main form button[type=submit]")
    clock = coordinator.locator("[data-testid=sae-clock] tbody tr").first
    assert clock.get_attribute("data-status") == "overdue"  # D6 is long past: the initial report is late
    coordinator.select_option("select[name=kind]", "initial")
    coordinator.fill("input[name=sent_at]", f"{d6}T15:00")
    coordinator.click("[data-testid=record-report]")
    assert coordinator.locator("[data-testid=sae-clock] tbody tr").first.get_attribute("data-status") == "met"
    ae = AdverseEvent.objects.get(subject=subject)
    assert SaeReport.objects.filter(adverse_event=ae, kind="initial").count() == 1
    assert coordinator.locator("[data-testid=sign-relatedness]").count() == 0

    investigator = new_page("fr")
    login(investigator, "bdx.investigator", DEMO_PASSWORD)
    investigator.goto(f"{live_server.url}/safety/subjects/{subject.code}/adverse-events/{ae.pk}/")
    investigator.select_option("select[name=cart]", "probable")
    investigator.select_option("select[name=lymphodepletion]", "possible")
    investigator.fill("form.signature input[name=password]", DEMO_PASSWORD)
    investigator.click("[data-testid=sign-relatedness]")
    ae.refresh_from_db()
    assert (ae.relatedness_cart, ae.relatedness_ld) == ("probable", "possible")
    investigator.goto(f"{live_server.url}/safety/subjects/{subject.code}/")
    row = investigator.locator(f"tr[data-ae='{ae.pk}']")
    assert "Probable / Possible" in row.inner_text() and "Infection" in row.inner_text()
    if os.environ.get("CARTRIAL_SCREENSHOTS"):
        coordinator.screenshot(path=os.environ["CARTRIAL_SCREENSHOTS"] + "/safety-ae.png", full_page=True)
        investigator.screenshot(path=os.environ["CARTRIAL_SCREENSHOTS"] + "/safety-subject.png", full_page=True)
