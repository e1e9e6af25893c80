"""The lab releases a product, the pharmacy receives it, the bedside check with the wrong bag is refused,
with the right bag the infusion is recorded: in the browser, each role in its own session."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cartrial.apps import clock
from cartrial.apps.logistics.models import ChainOfIdentity, Deviation, Infusion
from cartrial.apps.logistics.services import coi_of
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db(transaction=True)

QC = (
    ("viability", "88"),
    ("car_expression", "31"),
    ("vector_copy_number", "1,8"),
    ("endotoxin", "0.4"),
    ("sterility", "négatif"),
    ("mycoplasma", "negative"),
)


def _local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")


def test_lab_releases_pharmacy_receives_wrong_bag_refused_right_bag_infused(
    world, live_server, new_page, login, request
) -> None:
    base = live_server.url
    # Release, shipment, receipt and the start of lymphodepletion happen four days before D0 (the
    # protocol's D-5..D-3 window): the one clock, shared with the live server, is set back for them.
    today = datetime.now(ZoneInfo("UTC"))
    days_before = contextlib.ExitStack()
    days_before.enter_context(clock.frozen_at(today - timedelta(days=4)))
    request.addfinalizer(days_before.close)
    subject = world.new_subject("STR", State.MANUFACTURING)
    other = world.new_subject("STR", State.PRODUCT_RECEIVED)
    code = subject.code
    bag = coi_of(ChainOfIdentity.objects.get(subject=subject)).barcode_data()
    other_bag = coi_of(ChainOfIdentity.objects.get(subject=other)).barcode_data()

    # The lab enters the QC results, then the qualified person releases with the bag scanned and her signature.
    lab = new_page("fr")
    login(lab, "lab.manufacturing", DEMO_PASSWORD)
    lab.goto(f"{base}/logistics/subjects/{code}/")
    lab.click("button[data-step=release_product]")
    lab.fill("#step-form #id_bag_code", bag)
    lab.fill("#step-form #id_password", DEMO_PASSWORD)
    lab.click("#step-form button[type=submit]")
    lab.wait_for_selector("[data-testid=refusal]")
    assert "contrôle qualité" in lab.inner_text("[data-testid=refusal]")  # release without QC: refused
    for test_code, value in QC:
        lab.goto(f"{base}/logistics/subjects/{code}/")
        form = lab.locator("form[data-action=record_qc]")
        form.locator("select[name=test_code]").select_option(test_code)
        form.locator("input[name=value]").fill(value)
        form.locator("button[type=submit]").click()
        lab.wait_for_selector(".alert")
    lab.goto(f"{base}/logistics/subjects/{code}/")
    assert lab.locator(".batch td .ok").count() == len(QC)  # every release test recorded and conforming
    lab.click("button[data-step=release_product]")
    lab.fill("#step-form #id_bag_code", bag)
    lab.fill("#step-form #id_password", DEMO_PASSWORD)
    lab.click("#step-form button[type=submit]")
    lab.wait_for_selector("h1 .chip.state-product_released")
    # ...and hands it to the courier with a confirmed arrival.
    now = clock.now()
    lab.click("button[data-step=ship_product]")
    lab.fill("#step-form #id_scanned_code", bag)
    lab.fill("#step-form #id_courier", "CryoTrans")
    lab.fill("#step-form #id_shipper_id", "DS-42")
    lab.fill("#step-form #id_planned_departure_at", _local(now))
    lab.fill("#step-form #id_planned_arrival_at", _local(now + timedelta(hours=20)))
    lab.check("#step-form #id_arrival_confirmed")
    lab.click("#step-form button[type=submit]")
    lab.wait_for_selector("h1 .chip.state-product_shipped")

    # The pharmacy receives it (bag scanned) and stores it.
    pharmacy = new_page("fr")
    login(pharmacy, "str.pharmacist", DEMO_PASSWORD)
    pharmacy.goto(f"{base}/logistics/subjects/{code}/")
    pharmacy.click("button[data-step=receive_product]")
    pharmacy.fill("#step-form #id_scanned_code", bag)
    pharmacy.fill("#step-form #id_storage_location", "PUI – cuve azote n°1")
    pharmacy.click("#step-form button[type=submit]")
    pharmacy.wait_for_selector("h1 .chip.state-product_received")

    # The investigator starts lymphodepletion; the pharmacy thaws the product on D0.
    investigator = new_page("fr")
    login(investigator, "str.investigator", DEMO_PASSWORD)
    investigator.goto(f"{base}/subjects/{code}/")
    investigator.click("button[data-step=start_lymphodepletion]")
    investigator.fill("#id_planned_infusion_date", (now + timedelta(days=4)).date().isoformat())
    investigator.click("#step-form button[type=submit]")
    investigator.wait_for_selector("h1 .chip.state-lymphodepletion")
    days_before.close()  # D0: today
    pharmacy.goto(f"{base}/logistics/subjects/{code}/")
    thaw = pharmacy.locator("form[data-action=thaw]")
    thaw.locator("input[name=scanned_code]").fill(bag)
    thaw.locator("button[type=submit]").click()
    pharmacy.wait_for_selector("text=Décongelé")

    # Bedside: the pharmacist scans another patient's bag: hard stop, the reason shown, a deviation recorded.
    def bedside(first_bag: str) -> None:
        investigator.goto(f"{base}/subjects/{code}/")
        investigator.click("button[data-step=infuse]")
        investigator.fill("#id_infused_on", today.astimezone(ZoneInfo("Europe/Paris")).date().isoformat())
        investigator.fill("#id_bag_code", bag)
        investigator.fill("#id_wristband_code", code)
        investigator.fill("#id_password", DEMO_PASSWORD)
        investigator.fill("#id_second_username", "str.pharmacist")
        investigator.fill("#id_second_bag_code", first_bag)
        investigator.fill("#id_second_wristband_code", code)
        investigator.fill("#id_second_password", DEMO_PASSWORD)
        investigator.click("#step-form button[type=submit]")

    bedside(other_bag)
    investigator.wait_for_selector("[data-testid=refusal]")
    assert "Discordance d'identité" in investigator.inner_text("[data-testid=refusal]")
    assert Subject.objects.get(code=code).state == State.LYMPHODEPLETION.value
    assert Deviation.objects.filter(subject__code=code, kind="bedside_mismatch").count() == 1
    assert not Infusion.objects.filter(batch__subject__code=code).exists()

    # With the right bag the infusion is recorded, with both checkers.
    bedside(bag)
    investigator.wait_for_url(re.compile(rf".*/subjects/{code}/$"))
    investigator.wait_for_selector("h1 .chip.state-infused")
    infusion = Infusion.objects.get(batch__subject__code=code)
    assert {infusion.first_checker.username, infusion.second_checker.username} == {"str.investigator", "str.pharmacist"}
    investigator.goto(f"{base}/logistics/subjects/{code}/")
    assert investigator.locator("[data-testid=infusion]").count() == 1
