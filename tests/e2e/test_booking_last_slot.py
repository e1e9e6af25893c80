"""The last manufacturing slot booked in the browser (issue 11): two Paris coordinators open their
patients' booking pages while the lab has one line; the first books the proposed chain, the second,
clicking the same proposal a moment later, is told in place that no manufacturing slot is free, and
nothing is booked for that patient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from cartrial.apps import clock
from cartrial.apps.accounts.services import membership_grant, user_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.planning import services
from cartrial.apps.planning.models import Booking, FacilityCapacity
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State
from cartrial.domain.roles import Role

pytestmark = pytest.mark.django_db(transaction=True)

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_two_coordinators_book_the_last_manufacturing_slot(world, live_server, new_page, login) -> None:
    with clock.frozen_at(MONDAY):
        system = Actor.system("test")
        with transaction.atomic():
            services.capacities_load(actor=system, protocol=world.protocol)
            services.capacity_correct(
                actor=world.actor("sponsor.admin"),
                record=FacilityCapacity.objects.get(center__code="LAB"),
                field="lines",
                raw="1",
                reason="line 2 in maintenance",
            )
            second_coordinator = user_create(
                actor=system, username="par.coordinator2", password=DEMO_PASSWORD, first_name="C", last_name="Two"
            )
            membership_grant(actor=system, user=second_coordinator, center=world.centers["PAR"], role=Role.COORDINATOR)
        first_subject = world.new_subject("PAR", State.INCLUDED)
        second_subject = world.new_subject("PAR", State.INCLUDED)

        first, second = new_page("fr"), new_page("fr")
        login(first, "par.coordinator", DEMO_PASSWORD)
        login(second, "par.coordinator2", DEMO_PASSWORD)
        first.goto(f"{live_server.url}/planning/subjects/{first_subject.code}/")
        second.goto(f"{live_server.url}/planning/subjects/{second_subject.code}/")
        # Both see the same earliest chain: Monday's apheresis, Tuesday's batch start on the one line.
        for page in (first, second):
            proposal = page.locator("[data-testid=book-form]").first
            assert proposal.locator("input[name=manufacturing_start]").input_value() == "2026-12-08"

        first.locator("[data-testid=book-form] button").first.click()
        first.wait_for_selector("[data-testid=bookings] tr[data-active='1']")
        second.locator("[data-testid=book-form] button").first.click()
        refusal = second.locator("[data-testid=refusal]")
        refusal.wait_for()
        assert refusal.inner_text() == (
            "Aucun créneau de fabrication n'est libre à LAB le 2026-12-08 : une aphérèse ne peut être réservée "
            "que sur un créneau de fabrication réservé. Choisissez une autre date proposée."
        )
        # The page proposes the next free chains at once: the line is free again after 10 days of culture.
        assert (
            second.locator("[data-testid=book-form] input[name=manufacturing_start]").first.input_value()
            == "2026-12-18"
        )
    assert list(Booking.objects.values_list("subject__code", "manufacturing_start")) == [
        (first_subject.code, MONDAY.date().replace(day=8))
    ]
