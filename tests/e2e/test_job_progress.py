"""A sponsor administrator starts the audit-chain walk from /jobs/ and watches its page: queued
while no worker runs, then done, without reloading (htmx polls the progress fragment), in French."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cartrial.apps.jobs.models import Job
from cartrial.demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_job_page_follows_the_job_to_its_end(world, live_server, new_page, login) -> None:
    from cartrial.cli import _register, app

    page = new_page("fr")
    login(page, "sponsor.admin", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    page.click("[data-testid=start-audit_verify]")
    job = Job.objects.get()
    page.wait_for_url(f"{live_server.url}/jobs/{job.pk}/")
    assert page.get_attribute("#job-progress", "data-status") == "queued"
    assert "En attente de l'exécuteur" in page.inner_text("#job-progress")

    _register()
    assert CliRunner().invoke(app, ["jobs", "worker", "--once"]).exit_code == 0

    page.wait_for_selector("#job-progress[data-status=done]", timeout=10_000)
    assert page.get_attribute("#job-progress progress", "value") == "100"
    assert page.inner_text("[data-testid=job-summary]").startswith("Piste d'audit intacte :")
