"""In the browser: a coordinator records a serious adverse event from the subject page with the
term picker (its clock starts), records the initial report; the investigator signs the relatedness.
Then issue 10's "done when": daily CRS assessments D1–D4 and their episode, an SAE whose clock raises
an alert (page, badge, e-mail), the safety dashboard, the signed relatedness, DORIS and LLDAS at M6,
the study dashboard."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core import mail
from playwright.sync_api import expect

from cartrial.apps.access import reach_subject
from cartrial.apps.accounts.models import User
from cartrial.apps.alerts.models import Alert
from cartrial.apps.casebook import selectors as casebook_selectors
from cartrial.apps.casebook import services as casebook
from cartrial.apps.safety.models import AdverseEvent, SaeReport
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action


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


# Issue 10's "done when": the grade-2 CRS of D2, an SAE whose clock raises an alert, the signed
# relatedness, DORIS and LLDAS at M6 and the study dashboard, one subject followed in the browser.

SCREENING_ACTIVITY = {
    "sledai2k_descriptors": ["arthritis", "rash", "proteinuria", "low_complement", "increased_dna_binding"],
    "physician_global_assessment": 2.0,
    "prednisone_mg_per_day": 20,
    "immunosuppressants": ["mycophenolate"],
    "maintenance_therapy_stable": True,
    "standard_maintenance_only": True,
    "hemolytic_anemia": False,
    "gi_activity": False,
}
# Day since infusion → (temperature, hypotension): grade 1, 2 (fever with hypotension without
# vasopressor), 1, then 0 on D4.
CRS_DAYS = {1: ("38.5", "none"), 2: ("38.9", "no_vasopressor"), 3: ("38.2", "none"), 4: ("37.0", "none")}
CENTER_STAFF = ("bdx.investigator", "bdx.investigator2", "bdx.coordinator", "cra.monitor")


def _screening_activity(world, subject) -> None:  # type: ignore[no-untyped-def]
    """The screening visit and its lupus activity form (the baseline), through the services."""
    included = casebook_selectors.subject_anchors(subject).inclusion
    assert included is not None

    def work(reach):  # type: ignore[no-untyped-def]
        casebook.visit_done_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=world.protocol,
            visit_code="SCR",
            done_on=included - timedelta(days=10),
        )
        casebook.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=world.protocol,
            visit_code="SCR",
            form_code="sle_activity",
            items=SCREENING_ACTIVITY,
        )

    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(lambda: work(reach))


def test_crs_days_an_sae_alert_signed_relatedness_remission_at_m6_and_the_study_dashboard(
    world, live_server, new_page, login
) -> None:  # type: ignore[no-untyped-def]
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    _screening_activity(world, subject)
    for username in CENTER_STAFF:
        User.objects.filter(pk=world.users[username].pk).update(email=f"{username}@hospital.test")
    zone = ZoneInfo(subject.center.time_zone)

    # The coordinator records the daily CRS assessments D1–D4 from the toxicity page.
    coordinator = new_page("fr")
    login(coordinator, "bdx.coordinator", DEMO_PASSWORD)
    coordinator.goto(f"{live_server.url}/toxicity/subjects/{subject.code}/")
    for day, (temperature, hypotension) in CRS_DAYS.items():
        form = coordinator.locator("[data-testid=assessment-form]")
        form.locator("input[name=assessed_on]").fill((subject.infusion_date + timedelta(days=day)).isoformat())
        form.locator("input[name=temperature_c]").fill(temperature)
        form.locator("select[name=hypotension]").select_option(hypotension)
        with coordinator.expect_navigation():
            form.locator("button[type=submit]").click()
    grades = coordinator.locator("[data-testid=toxicity-days] [data-crs]")
    assert [grades.nth(i).get_attribute("data-crs") for i in range(grades.count())] == ["1", "2", "1", "0"]
    episodes = coordinator.locator("[data-testid=toxicity-episodes] tbody tr")
    expect(episodes).to_have_count(1)
    assert (
        episodes.get_attribute("data-kind"),
        episodes.get_attribute("data-onset"),
        episodes.get_attribute("data-max-grade"),
    ) == ("crs", "1", "2")
    assert not Alert.objects.exists()  # grade 2: no severe-toxicity alert

    # The SAE, with the term picker: known to the site an hour ago, its initial report due within 24 h.
    aware = datetime.now(zone).replace(second=0, microsecond=0) - timedelta(hours=1)
    coordinator.goto(f"{live_server.url}/subjects/{subject.code}/")
    coordinator.click("[data-testid=safety-link]")
    coordinator.click("[data-testid=new-ae]")
    coordinator.fill("[data-testid=term]", "neutropenie febrile")
    expect(coordinator.locator("#ctcae-term-list option[value=febrile_neutropenia]")).to_have_count(1)
    coordinator.fill("[data-testid=term]", "febrile_neutropenia")
    coordinator.fill("input[name=grade]", "3")
    coordinator.fill("input[name=start_date]", aware.date().isoformat())
    coordinator.check("input[name=serious]")
    coordinator.check("input[name=seriousness_criteria][value=hospitalisation]")
    coordinator.fill("input[name=awareness_at]", aware.strftime("%Y-%m-%dT%H:%M"))
    coordinator.select_option("select[name=action]", "hospitalisation")
    coordinator.select_option("select[name=outcome]", "recovering")
    coordinator.click("main form button[type=submit]")
    initial = coordinator.locator("[data-testid=sae-clock] tbody tr").first
    assert (initial.get_attribute("data-report"), initial.get_attribute("data-status")) == ("initial", "pending")
    due = datetime.fromisoformat(initial.get_attribute("data-due") or "")
    assert due == aware + timedelta(hours=24) and datetime.now(UTC) < due
    ae = AdverseEvent.objects.get(subject=subject)

    # The alert: on the notifications page with the badge, and e-mailed to the center's staff and monitor.
    coordinator.click("[data-testid=alerts-nav]")
    assert coordinator.inner_text("[data-testid=alert-badge]") == "1"
    row = coordinator.locator("[data-testid=alerts] tr[data-kind=sae_clock]")
    expect(row).to_have_count(1)
    assert "Neutropénie fébrile" in row.inner_text()
    alert = Alert.objects.get(kind="sae_clock")
    assert alert.key == f"{ae.pk}/initial/1/due" and alert.due_at == due
    assert row.locator("a").get_attribute("href") == f"/safety/subjects/{subject.code}/adverse-events/{ae.pk}/"
    assert sorted(message.to[0] for message in mail.outbox) == sorted(f"{u}@hospital.test" for u in CENTER_STAFF)

    # The safety dashboard shows the SAE (grade 3, serious), its initial report due, and the grade 2 CRS.
    coordinator.goto(f"{live_server.url}/dashboards/safety/")
    term_row = coordinator.locator("[data-testid=adverse-events] tr[data-term=febrile_neutropenia]")
    assert [term_row.locator(f"[data-{c}]").inner_text() for c in ("grade='3'", "total", "serious")] == ["1", "1", "1"]
    crs_row = coordinator.locator("[data-testid=episodes] tr[data-kind=crs]")
    assert [crs_row.locator(f"[data-{c}]").inner_text() for c in ("grade='2'", "subjects", "episodes")] == [
        "1",
        "1",
        "1",
    ]
    clock_row = coordinator.locator(f"[data-testid=sae-clocks] tr[data-ae='{ae.pk}']")
    assert clock_row.get_attribute("data-clock") == "due"

    # The investigator assesses relatedness and signs with their password, then acknowledges the alert.
    investigator = new_page("fr")
    login(investigator, "bdx.investigator", DEMO_PASSWORD)
    investigator.goto(f"{live_server.url}/alerts/")
    investigator.locator(f"tr[data-alert='{alert.pk}'] a").click()
    investigator.select_option("select[name=cart]", "possible")
    investigator.select_option("select[name=lymphodepletion]", "probable")
    investigator.fill("form.signature input[name=password]", DEMO_PASSWORD)
    with investigator.expect_navigation():
        investigator.click("[data-testid=sign-relatedness]")
    ae.refresh_from_db()
    assert (ae.relatedness_cart, ae.relatedness_ld, ae.relatedness_by) == (
        "possible",
        "probable",
        world.users["bdx.investigator"],
    )
    investigator.goto(f"{live_server.url}/alerts/")
    with investigator.expect_navigation():
        investigator.click(f"[data-testid=acknowledge-{alert.pk}]")
    expect(investigator.locator("[data-testid=alert-badge]")).to_have_count(0)

    # M6: the visit date, then the lupus activity form: in DORIS remission and in LLDAS.
    m6 = subject.infusion_date + timedelta(days=180)
    coordinator.goto(f"{live_server.url}/casebook/subjects/{subject.code}/visits/M6/")
    coordinator.fill("[data-testid=visit-date]", m6.isoformat())
    with coordinator.expect_navigation():
        coordinator.click("[data-testid=visit-done]")
    coordinator.goto(f"{live_server.url}/casebook/subjects/{subject.code}/visits/M6/forms/sle_activity/")
    coordinator.fill("#id_physician_global_assessment", "0")
    coordinator.fill("#id_prednisone_mg_per_day", "0")
    for item in ("maintenance_therapy_stable", "standard_maintenance_only"):
        coordinator.select_option(f"#id_{item}", "true")
    for item in ("hemolytic_anemia", "gi_activity"):
        coordinator.select_option(f"#id_{item}", "false")
    with coordinator.expect_navigation():
        coordinator.click("[data-testid=save-form]")
    assert coordinator.get_attribute("[data-testid=form-status]", "data-status") == "complete"
    assert coordinator.get_attribute("[data-testid=derived-doris]", "data-value") == "yes"
    assert coordinator.get_attribute("[data-testid=derived-lldas]", "data-value") == "yes"

    # The study dashboard counts the subject: assessed, in DORIS and in LLDAS at M6, in remission.
    coordinator.goto(f"{live_server.url}/dashboards/study/")
    m6_rates = coordinator.locator("[data-testid=rates] tr[data-visit=M6]")
    assert [m6_rates.locator(f"[data-figure={f}]").inner_text() for f in ("assessed", "doris", "lldas")] == [
        "1",
        "1",
        "1",
    ]
    assert coordinator.inner_text("[data-testid=flow] tr[data-stage=in_remission] [data-figure=count]") == "1"
    swimmer = coordinator.locator(f"[data-testid=swimmers] tr[data-subject='{subject.code}']")
    assert swimmer.locator("[data-figure=remission_visit]").inner_text() == "M6"
    if os.environ.get("CARTRIAL_SCREENSHOTS"):
        coordinator.screenshot(path=os.environ["CARTRIAL_SCREENSHOTS"] + "/study-dashboard.png", full_page=True)
