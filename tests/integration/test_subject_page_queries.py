"""The subject's page and its logistics page read a fixed number of rows sets, whatever the history.

The subject page was the slowest page of the load test (issue 13, docs/benchmarks.md "Load"): it
read each manufacturing batch's QC results, receipt, thaw and infusion one batch at a time (twice
the QC), the pathway events and the consents twice, the person who obtained each consent one by
one, and the user's memberships again for its correction links. A product manufactured three times
must cost the same number of queries as one manufactured once.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cartrial.apps.logistics.models import ManufacturingBatch
from cartrial.domain.pathway import State, Step

pytestmark = pytest.mark.django_db


def _queries(client, path: str) -> int:  # type: ignore[no-untyped-def]
    client.get(path)  # caches (protocol in force, translations) filled before counting
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured)


def _failed_again(world, subject) -> None:  # type: ignore[no-untyped-def]
    """A second and a third batch, each failing: more batches, QC results and pathway events."""
    for attempt in (1, 2):
        world.step("lab.manufacturing", subject, Step.REMANUFACTURE, reason=f"Material left: run {attempt + 1}")
        world.step("lab.manufacturing", subject, Step.FAIL_MANUFACTURING, reason="No expansion")


def test_subject_page_queries_do_not_grow_with_the_batches(world) -> None:
    once = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    thrice = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    _failed_again(world, thrice)
    thrice.refresh_from_db()
    assert thrice.state == State.MANUFACTURING_FAILED.value
    assert ManufacturingBatch.objects.filter(subject=once).count() == 1
    assert ManufacturingBatch.objects.filter(subject=thrice).count() == 3
    client = world.client_for("par.investigator")
    single = _queries(client, f"/subjects/{once.code}/")
    triple = _queries(client, f"/subjects/{thrice.code}/")
    assert triple == single, f"{single} queries with one batch, {triple} with three"
    # The bound itself: the pathway's facts, the timeline, the consents, the logistics panel and the
    # request's own reads (session, user, scope, header, alerts). It was 42 for a subject past infusion.
    assert single <= 38


def test_logistics_page_queries_do_not_grow_with_the_batches(world) -> None:
    once = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    thrice = world.new_subject("PAR", State.MANUFACTURING_FAILED)
    _failed_again(world, thrice)
    client = world.client_for("lab.manufacturing")
    single = _queries(client, f"/logistics/subjects/{once.code}/")
    triple = _queries(client, f"/logistics/subjects/{thrice.code}/")
    assert triple == single, f"{single} queries with one batch, {triple} with three"
