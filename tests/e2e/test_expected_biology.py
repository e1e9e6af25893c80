"""An investigator enters a D7 sample, sees the flag and the plots, finds them on the subject page (htmx panel),
and a CSV with a row of another subject is refused naming its line."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from cartrial.apps import clock
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State

pytestmark = pytest.mark.django_db(transaction=True)


def test_investigator_enters_a_sample_and_sees_flags_and_bands(world, live_server, new_page, login) -> None:
    base = live_server.url
    subject = world.new_subject("STR", State.INFUSED)
    d0 = clock.now().astimezone(ZoneInfo("Europe/Paris")).date() - timedelta(days=30)
    Subject.objects.filter(pk=subject.pk).update(infusion_date=d0)
    code = subject.code

    page = new_page("fr")
    login(page, "str.investigator", DEMO_PASSWORD)
    page.goto(f"{base}/biology/subjects/{code}/observations/new/")
    page.fill("#id_sampled_at", f"{d0 + timedelta(days=7):%Y-%m-%d}T09:15")
    page.fill("#id_car_t_value", "0,3")
    page.fill("#id_car_t_loq", "0,02")
    page.check("#id_b_cells_below_loq")
    page.fill("#id_b_cells_loq", "1")
    page.fill("#id_anti_dsdna_value", "150")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/biology/subjects/{code}/")
    assert "3 résultat(s) enregistré(s)." in page.inner_text(".alert.ok")
    raised = page.locator("li.flag[data-state=raised]")
    assert raised.count() == 1
    assert raised.first.get_attribute("data-flag") == "car_t_peak_below_band"
    assert "expansion insuffisante" in raised.first.inner_text()
    depletion = page.locator("li.flag[data-flag=no_b_cell_depletion_by_day_14]")
    assert depletion.get_attribute("data-state") == "clear"
    page.wait_for_selector(".kinetics-plot .main-svg")
    assert page.locator(".kinetics-plot .js-plotly-plot").count() == 3  # plotly.js (local copy) drew all three
    assert "J7" in page.inner_text("[data-testid=results]")

    # The subject page loads the same flags lazily in its panel.
    page.goto(f"{base}/subjects/{code}/")
    page.wait_for_selector("#panel-kinetics [data-testid=flags]")
    panel = page.locator("#panel-kinetics")
    assert panel.locator("li.flag[data-state=raised]").count() == 1
    page.wait_for_selector("#panel-kinetics .main-svg")
    assert panel.locator(".js-plotly-plot").count() == 3

    # A CSV whose second row is another subject's: refused, line named, nothing stored.
    page.goto(f"{base}/biology/subjects/{code}/observations/import/")
    page.fill(
        "#id_text",
        "subject,marker,sampled_at,value,unit,loq\n"
        f"{code},car_t,{d0 + timedelta(days=14)} 09:00,0.5,cells/µL,0.02\n"
        f"STR-999,car_t,{d0 + timedelta(days=14)} 09:00,0.5,cells/µL,0.02\n",
    )
    page.click("main button[type=submit]")
    page.wait_for_selector("[data-testid=refusal]")
    assert page.inner_text("[data-testid=refusal]").startswith("Ligne 3 : cette ligne concerne le sujet « STR-999 »")
    assert LabObservation.objects.filter(subject=subject, context="kinetics").count() == 3
