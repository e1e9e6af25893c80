"""Every page works in Chromium under the strict Content-Security-Policy: nothing refused, plots drawn
(pages and the htmx panel), Swagger UI usable, the language switch submits without inline script."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cartrial.demo import DEMO_PASSWORD, build_demo, demo_epoch
from cartrial.protocols import active_protocol

pytestmark = pytest.mark.django_db(transaction=True)

CSP_MESSAGE = re.compile(r"Refused to|violates the following Content Security Policy", re.IGNORECASE)
# Violations as the page sees them, besides the console: the two must agree.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber);
});
"""

# (user, path, what must be on the page once it has run, how many)
PAGES: list[tuple[str, str, str, int]] = [
    ("str.coordinator", "/subjects/", "table", 1),
    ("str.coordinator", "/subjects/STR-003/", "#panel-kinetics svg.main-svg", 3),  # plots drawn after htmx swap
    ("str.coordinator", "/biology/subjects/STR-003/", ".kinetics-plot .plotly svg.main-svg", 3),
    ("str.coordinator", "/biology/cohort/", ".plotly svg.main-svg", 5),
    ("str.coordinator", "/logistics/", ".plotly svg.main-svg", 1),
    ("str.coordinator", "/logistics/subjects/STR-003/", ".plotly svg.main-svg", 2),
    ("str.coordinator", "/calculators/", "main a", 1),
    ("str.coordinator", "/subjects/STR-003/eligibility/", "#verdict", 1),
    ("str.investigator", "/subjects/STR-003/corrections/infusion/STR-003/", "details.correct summary", 1),
    ("str.coordinator", "/api/v1/docs", ".swagger-ui .opblock", 10),
    ("lab.manufacturing", "/logistics/", "main h1", 1),
    ("lab.manufacturing", "/logistics/subjects/PAR-002/", ".plotly svg.main-svg", 1),
]


@pytest.fixture
def demo_trial() -> None:
    build_demo(active_protocol(), today=demo_epoch())


def _open_as(new_page: Any, login: Any, username: str) -> tuple[Any, list[str]]:
    page = new_page("fr")
    page.context.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    login(page, username, DEMO_PASSWORD)
    return page, console


def test_pages_run_under_the_policy_with_plots_and_swagger(demo_trial: None, live_server, new_page, login) -> None:
    base = live_server.url
    pages: dict[str, tuple[Any, list[str]]] = {}
    for username, path, selector, minimum in PAGES:
        if username not in pages:
            pages[username] = _open_as(new_page, login, username)
        page, console = pages[username]
        console.clear()
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        assert "'nonce-" in response.headers["content-security-policy"], path
        page.wait_for_selector(selector)
        page.wait_for_function(f"document.querySelectorAll({selector!r}).length >= {minimum}")
        page.wait_for_load_state("networkidle")
        refused = [text for text in console if CSP_MESSAGE.search(text)]
        assert refused == [], (path, refused)
        assert page.evaluate("window.__cspViolations") == [], path

    # The language menu submits through the static script (no inline handler).
    page, console = pages["str.coordinator"]
    page.goto(f"{base}/subjects/")
    assert page.locator("html").get_attribute("lang") == "fr"
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    assert page.locator("html").get_attribute("lang") == "en"

    # Control: the same listeners do see a refusal, so the empty lists above mean something.
    console.clear()
    injected = '<img alt="" src="/static/none.png" onerror="window.ran=1">'
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", injected)
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.ran") is None
    assert any(CSP_MESSAGE.search(text) for text in console)
