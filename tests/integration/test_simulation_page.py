"""The simulation page (issue 11): the sponsor's administrator and the data managers run a short
simulation and read its summary and plots, in French or English; bad input is refused at its field."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from test_french_pages import EnglishDetector, catalog_msgids

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.simulation.runs import (
    SimulationRequest,
    run_simulation,
    simulation_request_from_json,
    simulation_request_to_json,
)
from cartrial.domain.simulation.model import planner_cpsat

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CENTERS = ("BDX", "LIL", "PAR", "STR", "MTL")


def _form(**changes: Any) -> dict[str, Any]:
    return {
        "months": 2,
        "replications": 1,
        "seed": 3,
        "policy": "greedy",
        "screen_failure_percent": 30,
        "manufacturing_failure_percent": 4,
        "lines": 2,
        "manufacturing_days": 10,
        "qc_days": 7,
        **{f"arrivals_{code}": 2 for code in CENTERS},
        **changes,
    }


def _english(client: Client) -> Client:
    client.cookies["django_language"] = "en"
    return client


def _planner_available() -> bool:
    try:
        planner_cpsat()
    except Exception:
        return False
    return True


def test_form_shows_the_defaults(client_for: Callable[[str], Client]) -> None:
    page = client_for("sponsor.admin").get("/simulation/").content.decode()
    assert 'name="months" value="12"' in page
    assert 'name="arrivals_PAR" value="2.0"' in page
    assert 'data-testid="simulation-summary"' not in page
    assert 'data-testid="simulation-nav"' in page  # the top bar offers it


def test_a_run_shows_the_summary_and_four_plots(client_for: Callable[[str], Client]) -> None:
    response = _english(client_for("dm.datamanager")).post("/simulation/", _form())
    page = response.content.decode()
    assert response.status_code == 200
    summary = page[page.index('data-testid="simulation-summary"') :]
    assert "Infused per month" in summary and "Line use at LAB" in summary
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 4
    assert all(base64.b64decode(uri).startswith(PNG_SIGNATURE) for uri in uris)


def test_the_page_runs_what_run_simulation_runs(client_for: Callable[[str], Client]) -> None:
    """The page's figures are those of `run_simulation` for the same request (the job's entry point)."""
    page = _english(client_for("sponsor.admin")).post("/simulation/", _form(seed=11)).content.decode()
    request = SimulationRequest(
        overrides={
            "months": 2,
            "cpsat_time_limit_s": 1.0,
            "screen_failure_rate": 0.3,
            "manufacturing_failure_rate": 0.04,
            "facilities": [{"id": "LAB", "lines": 2, "manufacturing_days": 10, "qc_days": 7}],
            "centers": [{"id": code, "arrivals_per_month": 2} for code in CENTERS],
        },
        seed=11,
        replications=1,
        policies=("greedy",),
    )
    assert simulation_request_from_json(simulation_request_to_json(request)) == request
    (summary,) = run_simulation(request).summaries
    row = re.search(r"Patients screened \(mean\)</th><td class=\"num\">([^<]+)</td>", page)
    assert row is not None and row.group(1) == f"{summary.arrivals_mean:.1f}"


def test_the_page_in_french(client_for: Callable[[str], Client]) -> None:
    client = client_for("sponsor.admin")
    client.cookies["django_language"] = "fr"
    page = client.post("/simulation/", _form()).content.decode()
    assert EnglishDetector(catalog_msgids()).english_texts(page) == []
    assert EnglishDetector(catalog_msgids()).english_texts(client.get("/simulation/").content.decode()) == []
    assert "Simulation du réseau" in page
    assert "Perfusés par mois" in page
    assert "Infused per month" not in page


@pytest.mark.parametrize(
    ("change", "field"),
    [({"months": 99}, "months"), ({"replications": 50}, "replications"), ({"arrivals_BDX": -1}, "arrivals_BDX")],
)
def test_bad_input_is_refused_at_its_field(
    client_for: Callable[[str], Client], change: dict[str, Any], field: str
) -> None:
    page = client_for("sponsor.admin").post("/simulation/", _form(**change)).content.decode()
    assert f'data-error="{field}"' in page
    assert 'data-testid="simulation-summary"' not in page


def test_optimised_policy_needs_the_planner(client_for: Callable[[str], Client]) -> None:
    page = _english(client_for("sponsor.admin")).post("/simulation/", _form(policy="both", months=1)).content.decode()
    if _planner_available():
        assert 'data-testid="simulation-summary"' in page and "Optimised (CP-SAT)" in page
    else:
        assert "needs the CP-SAT planner" in page
        assert 'data-testid="simulation-summary"' not in page


@pytest.mark.parametrize("username", ["bdx.coordinator", "cra.monitor", "lab.manufacturing"])
def test_other_roles_are_refused_and_recorded(client_for: Callable[[str], Client], username: str) -> None:
    before = AuditEntry.objects.count()
    response = client_for(username).post("/simulation/", _form())
    assert response.status_code == 403
    refusal = AuditEntry.objects.order_by("-sequence").first()
    assert AuditEntry.objects.count() == before + 1
    assert refusal is not None and refusal.event == "access.refused" and refusal.entity_id == "simulation"
    assert 'data-testid="simulation-nav"' not in client_for(username).get("/subjects/").content.decode()
