"""A deviation managed in the browser: the coordinator takes it in charge, the investigator's closing
without a reason is refused in place, then accepted; htmx swaps the deviation alone, under the
strict Content-Security-Policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cartrial.apps import clock
from cartrial.apps.logistics.models import Collection, Deviation
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.custody import CustodyScanMismatch
from cartrial.domain.pathway import State, Step

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.target && e.target.tagName));
});
"""


def test_a_deviation_is_taken_in_charge_then_closed_with_a_reason_in_the_browser(
    world, live_server, new_page, login
) -> None:
    subject = world.new_subject("LIL", State.APHERESIS_COLLECTED)
    collection = Collection.objects.get(subject=subject)
    wrong_k = "1" if collection.check_character != "1" else "2"
    now = clock.now()
    with pytest.raises(CustodyScanMismatch):
        world.step(
            "lil.apheresis",
            subject,
            Step.SHIP_MATERIAL,
            courier="C",
            shipper_id="S1",
            condition="fresh",
            planned_departure_at=now,
            planned_arrival_at=now + timedelta(hours=20),
            scanned_code=collection.din + wrong_k,
        )
    deviation = Deviation.objects.get(subject=subject)
    url = f"{live_server.url}/logistics/subjects/{subject.code}/"
    item = f"#deviation-{deviation.pk}"

    coordinator = new_page("fr")
    coordinator.context.add_init_script(RECORD_VIOLATIONS)
    login(coordinator, "lil.coordinator", DEMO_PASSWORD)
    coordinator.goto(url)
    assert coordinator.locator(f"{item} button[data-move]").evaluate_all("bs => bs.map(b => b.dataset.move)") == [
        "acknowledge",
        "comment",
    ]
    coordinator.fill(f"{item} textarea[name=text]", "Pris en charge : appel à l'unité d'aphérèse.")
    coordinator.click(f"{item} button[data-move=acknowledge]")
    coordinator.wait_for_selector(f"{item}[data-status=acknowledged]")
    assert coordinator.url == url  # htmx swapped the deviation; the page stayed
    assert "appel à l'unité d'aphérèse" in coordinator.inner_text(f"{item} .deviation-thread")

    investigator = new_page("fr")
    investigator.context.add_init_script(RECORD_VIOLATIONS)
    login(investigator, "lil.investigator", DEMO_PASSWORD)
    investigator.goto(url)
    # A textarea the user resized carries an inline size: htmx must not copy it over (CSP style-src-attr).
    investigator.locator(f"{item} textarea[name=text]").evaluate("t => { t.style.height = '90px'; }")
    investigator.click(f"{item} button[data-move=close]")
    investigator.wait_for_selector(f"{item} [data-testid=refusal]")
    assert investigator.inner_text(f"{item} [data-testid=refusal]") == "Rédiger le motif."
    assert Deviation.objects.get(pk=deviation.pk).status == "acknowledged"
    investigator.fill(
        f"{item} textarea[name=text]", "DIN ressaisi depuis l'étiquette, sac remis après un nouveau scan."
    )
    investigator.click(f"{item} button[data-move=close]")
    investigator.wait_for_selector(f"{item}[data-status=closed]")
    stored = Deviation.objects.get(pk=deviation.pk)
    assert (stored.status, stored.closed_by.username) == ("closed", "lil.investigator")
    assert stored.closing_reason == "DIN ressaisi depuis l'étiquette, sac remis après un nouveau scan."
    for page in (coordinator, investigator):
        assert page.evaluate("window.__cspViolations") == []
