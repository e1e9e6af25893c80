"""The planner and the simulation from the pages, through the task queue (issue 11): the planner
page requests `plan_network` on the network's waiting subjects (or an uploaded instance), the real
worker runs it, the result page shows a valid plan per subject; the simulation page sends runs
beyond its caps to `simulate_network`, whose page shows the summary and the plots.

Transactional like tests/integration/test_jobs.py: the worker reads what the request committed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from test_french_pages import EnglishDetector, catalog_msgids
from typer.testing import CliRunner

from cartrial.apps import clock
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.jobs.models import Job
from cartrial.apps.planning import services
from cartrial.apps.planning.jobs import PLAN_NETWORK, plan_network_run, plan_parameters
from cartrial.apps.simulation.jobs import SIMULATE_NETWORK, simulate_network_run, simulate_parameters
from cartrial.domain.errors import InvalidInput
from cartrial.domain.pathway import State
from cartrial.domain.planning import instance_from_json, instance_to_json, plan_check, plan_from_json
from cartrial.domain.planning.generate import generated_instance
from cartrial.domain.text import Message

pytestmark = pytest.mark.django_db(transaction=True)

SPONSOR = "sponsor.admin"
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CENTERS = ("BDX", "LIL", "PAR", "STR", "MTL")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Recorder:
    """A job's progress that keeps what it hears (the worker's stores it on the job, throttled)."""

    def __init__(self, heard: list[tuple[float, Message | None]]) -> None:
        self.heard = heard

    def __call__(self, percent: float, message: Message | None = None) -> None:
        self.heard.append((percent, message))

    def step(self, done: int, total: int, message: Message | None = None) -> None:
        self(100.0 * done / total, message)


def _work_once() -> None:
    from cartrial.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["jobs", "worker", "--once"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def network(world: Any) -> Iterator[Any]:
    """The protocol's capacities and three subjects waiting for a chain (BDX twice, LIL), on a Monday."""
    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        world.waiting = [world.new_subject(code, State.INCLUDED) for code in ("BDX", "BDX", "LIL")]
        yield world


def test_the_planner_page_plans_the_waiting_subjects_in_the_background(network: Any) -> None:
    client = network.client_for(SPONSOR)
    client.cookies["django_language"] = "en"
    page = client.get("/planning/plan/").content.decode()
    assert "3 subjects waiting" in page and 'data-center="BDX"' in page
    since = AuditEntry.objects.order_by("-sequence").first().sequence

    response = client.post("/planning/plan/", {"solver": "cpsat", "time_limit_s": 5, "horizon_days": 120})

    job = Job.objects.get(kind=PLAN_NETWORK)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.status, job.parameters["source"], job.parameters["solver"]) == ("queued", "network", "cpsat")
    instance = instance_from_json(job.parameters["instance"])
    assert sorted(p.id for p in instance.patients) == sorted(s.code for s in network.waiting)
    assert (instance.start_date, instance.horizon_days) == (MONDAY.date(), 120)
    assert AuditEntry.objects.filter(sequence__gt=since, event="job.requested").count() == 1

    _work_once()

    job.refresh_from_db()
    assert job.status == "done", job.error_traceback
    plan = plan_from_json(job.result["plan"])
    # The checker, run again here on the stored instance, finds nothing; the job said the same.
    assert plan_check(instance, plan) == [] and job.result["check"] == []
    assert plan.status == "optimal" and plan.objective_days == plan.lower_bound_days
    assert plan.objective_days <= job.result["greedy"]["objective_days"]
    assert job.result["gap_percent"] == 0.0
    assert json.loads(bytes(job.result_file)) == job.result["plan"] and job.result_file_name == "plan.json"

    # The job's page links to the plan; the plan's page shows each subject's dates, codes only.
    assert f'href="/planning/plan/{job.pk}/"' in client.get(f"/jobs/{job.pk}/").content.decode()
    shown = client.get(f"/planning/plan/{job.pk}/").content.decode()
    for row in job.result["plan"]["patients"]:
        assert f'data-patient="{row["id"]}"' in shown and f"<td>{row['infusion']}</td>" in shown
    assert "Optimal plan" in shown and "every rule holds" in shown
    assert "Testpatient" not in shown and "Ann " not in shown  # no identity, only pseudonymous codes
    download = client.get(f"/jobs/{job.pk}/file/")
    assert json.loads(download.content) == job.result["plan"]


def test_an_uploaded_instance_is_planned_and_a_refused_one_stores_nothing(network: Any) -> None:
    client = network.client_for("dm.datamanager")
    client.cookies["django_language"] = "en"
    instance = instance_to_json(generated_instance(3, 12, 2, 1))
    upload = io.BytesIO(json.dumps(instance).encode())
    upload.name = "instance.json"
    response = client.post("/planning/plan/", {"solver": "greedy", "time_limit_s": 1, "instance": upload})
    job = Job.objects.get()
    assert response.status_code == 302 and job.parameters["source"] == "upload"
    assert job.parameters["instance"] == instance

    broken = dict(instance, centers=[dict(instance["centers"][0], apheresis_per_day=0), *instance["centers"][1:]])
    bad = io.BytesIO(json.dumps(broken).encode())
    bad.name = "broken.json"
    refused = client.post("/planning/plan/", {"solver": "cpsat", "time_limit_s": 5, "instance": bad})
    assert refused.status_code == 422 and "centers[0].apheresis_per_day" in refused.content.decode()
    assert Job.objects.count() == 1  # nothing stored for the refused file

    _work_once()
    job.refresh_from_db()
    assert job.status == "done" and job.result["check"] == []
    assert job.result["plan"]["lower_bound_days"] is None  # greedy alone proves no bound
    assert job.result["plan"]["objective_days"] == job.result["greedy"]["objective_days"]


def test_the_plan_page_in_french(network: Any) -> None:
    client = network.client_for(SPONSOR)
    client.post("/planning/plan/", {"solver": "cpsat", "time_limit_s": 2})
    _work_once()
    job = Job.objects.get()
    client.cookies["django_language"] = "fr"
    detector = EnglishDetector(catalog_msgids())
    for url in ("/planning/plan/", f"/planning/plan/{job.pk}/"):
        page = client.get(url).content.decode()
        assert detector.english_texts(page) == [], url
    assert "Plan optimal" in client.get(f"/planning/plan/{job.pk}/").content.decode()


def test_coordinators_and_the_lab_cannot_plan_the_network(network: Any) -> None:
    for username in ("bdx.coordinator", "lab.manufacturing", "cra.monitor"):
        client = network.client_for(username)
        assert client.get("/planning/plan/").status_code == 403
        assert client.post("/planning/plan/", {"solver": "greedy", "time_limit_s": 1}).status_code == 403
        assert 'data-testid="plan-nav"' not in client.get("/subjects/").content.decode()
    assert not Job.objects.exists()
    assert 'data-testid="plan-nav"' in network.client_for(SPONSOR).get("/subjects/").content.decode()


def test_plan_network_reports_the_search_and_checks_the_plan() -> None:
    """The run itself, with a progress that records: greedy's objective, then CP-SAT's best plan and
    bound as the time limit elapses, then the check; percentages never go back."""
    heard: list[tuple[float, Message | None]] = []
    instance = instance_to_json(generated_instance(1, 60, 4, 1))
    outcome = plan_network_run(plan_parameters({"instance": instance, "time_limit_s": 3}), Recorder(heard))
    msgids = [m.msgid for _, m in heard if m is not None]
    assert msgids[0].startswith("Planning {patients} patients") and msgids[-1] == "Checking every rule of the plan"
    searches = [m for _, m in heard if m is not None and m.msgid.startswith("CP-SAT: best plan")]
    assert searches and searches[-1].params["objective"] == outcome.result["plan"]["objective_days"]
    assert searches[-1].params["bound"] <= searches[-1].params["objective"]
    percents = [p for p, _ in heard]
    assert percents == sorted(percents)
    assert plan_check(instance_from_json(instance), plan_from_json(outcome.result["plan"])) == []


@pytest.mark.parametrize(
    ("parameters", "item"),
    [
        ({"instance": {"start_date": "2027-01-04"}}, "instance"),
        ({"instance": None}, "instance"),
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"time_limit_s": 601}, "time_limit_s"),
        ({"solver": "simplex"}, "solver"),
        ({"colour": "blue"}, "parameters"),
    ],
)
def test_plan_parameters_are_refused_with_their_item(parameters: dict[str, Any], item: str) -> None:
    valid = {"instance": instance_to_json(generated_instance(1, 5, 1, 1)), "time_limit_s": 5}
    with pytest.raises(InvalidInput) as refusal:
        plan_parameters(valid | parameters)
    assert refusal.value.item == item


# --- the simulation in the background ---------------------------------------------------------------


def _simulation_form(**changes: Any) -> dict[str, Any]:
    return {
        "months": 30,
        "replications": 2,
        "seed": 3,
        "policy": "greedy",
        "screen_failure_percent": 30,
        "manufacturing_failure_percent": 4,
        "lines": 2,
        "manufacturing_days": 10,
        "qc_days": 7,
        **{f"arrivals_{code}": 1 for code in CENTERS},
        **changes,
    }


def test_a_simulation_beyond_the_page_caps_runs_in_the_background(world: Any) -> None:
    client = world.client_for(SPONSOR)
    client.cookies["django_language"] = "en"
    in_process = client.post("/simulation/", _simulation_form())
    assert in_process.status_code == 200 and 'data-error="months"' in in_process.content.decode()
    assert not Job.objects.exists()

    response = client.post("/simulation/", _simulation_form(background="on"))
    job = Job.objects.get(kind=SIMULATE_NETWORK)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.parameters["replications"], job.parameters["overrides"]["months"]) == (2, 30)

    _work_once()

    job.refresh_from_db()
    assert job.status == "done", job.error_traceback
    # The worker stored the run's progress (throttled to twice a second: the last message it kept).
    assert job.progress_percent == 100
    assert job.progress_message["msgid"] in {"{done} of {total} runs simulated", "Drawing the plots"}
    assert (job.result["months"], job.result["replications"]) == (30, 2)
    assert set(job.result["policies"]) == {"greedy"} and job.result["policies"]["greedy"]["arrivals_mean"] > 0
    with zipfile.ZipFile(io.BytesIO(bytes(job.result_file))) as archive:
        names = set(archive.namelist())
        assert {"en/queue_length.png", "fr/queue_length.png", "summary.json"} <= names
        assert archive.read("en/line_use.png").startswith(PNG_SIGNATURE)
    assert f'href="/simulation/jobs/{job.pk}/"' in client.get(f"/jobs/{job.pk}/").content.decode()
    shown = client.get(f"/simulation/jobs/{job.pk}/").content.decode()
    assert 'data-testid="simulation-summary"' in shown and shown.count('data-testid="simulation-plot"') == 4
    client.cookies["django_language"] = "fr"
    french = client.get(f"/simulation/jobs/{job.pk}/").content.decode()
    assert EnglishDetector(catalog_msgids()).english_texts(french) == []
    assert "Perfusés par mois" in french


def test_simulate_network_reports_each_run() -> None:
    heard: list[tuple[float, Message | None]] = []
    parameters = simulate_parameters({"overrides": {"months": 1}, "replications": 2, "policies": ["greedy"]})
    outcome = simulate_network_run(parameters, Recorder(heard))
    runs = [m.params for _, m in heard if m is not None and m.msgid == "{done} of {total} runs simulated"]
    assert runs == [{"done": 0, "total": 2}, {"done": 1, "total": 2}, {"done": 2, "total": 2}]
    assert [p for p, _ in heard] == sorted(p for p, _ in heard)
    assert outcome.result["replications"] == 2 and outcome.file is not None


def test_simulate_parameters_are_refused_with_their_json_path() -> None:
    with pytest.raises(InvalidInput) as refusal:
        simulate_parameters({"overrides": {"months": 500}, "seed": 0, "replications": 1, "policies": ["greedy"]})
    assert refusal.value.item == "months"
    with pytest.raises(InvalidInput) as too_many:
        simulate_parameters({"overrides": {}, "replications": 101, "policies": ["greedy"]})
    assert too_many.value.item == "replications"
