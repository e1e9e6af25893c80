"""Booking under concurrency (issue 11): coordinators of several centers asking for the last
manufacturing slot at the same instant; exactly one wins, every other one is refused with the
rule's message and nothing of theirs is stored. Row locks need PostgreSQL (skipped on SQLite)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from django.db import connection, connections, transaction

from cartrial.apps import clock
from cartrial.apps.access import reach_subject
from cartrial.apps.audit.services import Actor
from cartrial.apps.planning import services
from cartrial.apps.planning.models import Booking, FacilityCapacity
from cartrial.domain.booking import BookingRequest
from cartrial.domain.errors import Refused
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
# One line at the lab: the batch start of Wednesday 9 December is the last manufacturing slot. Each
# writer's material reaches the lab by then (BDX and PAR collect on Monday, LIL and STR on Tuesday).
WRITERS = (
    ("bdx.coordinator", "BDX", date(2026, 12, 7)),
    ("par.coordinator", "PAR", date(2026, 12, 7)),
    ("par.investigator", "PAR", date(2026, 12, 7)),
    ("lil.coordinator", "LIL", date(2026, 12, 8)),
    ("str.coordinator", "STR", date(2026, 12, 8)),
)
LAST_SLOT = date(2026, 12, 9)
D0 = date(2026, 12, 29)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks across threads need PostgreSQL"),
]


def _race(world, attempts: list[tuple[str, object, BookingRequest]]) -> tuple[list[Booking], list[BaseException]]:
    barrier = threading.Barrier(len(attempts))
    won: list[Booking] = []
    refused: list[BaseException] = []
    lock = threading.Lock()

    def book(username: str, subject, request: BookingRequest) -> None:
        try:
            reach = reach_subject(world.users[username], subject.code, Action.BOOK_SLOTS)
            barrier.wait(timeout=10)
            booking = reach.run(
                lambda: services.booking_make(
                    actor=reach.actor,
                    user_id=reach.user.pk,
                    subject=reach.subject,
                    request=request,
                    protocol=world.protocol,
                    today=MONDAY.date(),
                )
            )
            with lock:
                won.append(booking)
        except BaseException as error:  # collected and checked in the main thread
            with lock:
                refused.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=book, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return won, refused


def test_the_last_manufacturing_slot_goes_to_exactly_one_coordinator(world) -> None:
    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
            lab = FacilityCapacity.objects.get(center__code="LAB")
            services.capacity_correct(
                actor=world.actor("sponsor.admin"), record=lab, field="lines", raw="1", reason="line 2 in maintenance"
            )
        attempts = []
        for username, center, apheresis in WRITERS:
            subject = world.new_subject(center, State.INCLUDED)
            attempts.append((username, subject, BookingRequest(center, apheresis, "LAB", LAST_SLOT, D0)))
        won, refused = _race(world, attempts)
    assert len(won) == 1, (won, refused)
    assert len(refused) == len(WRITERS) - 1
    assert all(isinstance(r, Refused) and r.code == "no_manufacturing_slot" for r in refused), refused
    assert all("only against a reserved manufacturing slot" in str(r) for r in refused)
    assert list(Booking.objects.values_list("manufacturing_start", "line")) == [(LAST_SLOT, 1)]
    assert connection.vendor == "postgresql"


def test_the_last_apheresis_slot_of_a_day_goes_to_exactly_one(world) -> None:
    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        first, second = world.new_subject("BDX", State.INCLUDED), world.new_subject("BDX", State.INCLUDED)
        # Two lines, two batch starts: only Bordeaux's one apheresis slot of Monday is shared.
        won, refused = _race(
            world,
            [
                (
                    "bdx.coordinator",
                    first,
                    BookingRequest("BDX", MONDAY.date(), "LAB", date(2026, 12, 8), date(2026, 12, 28)),
                ),
                ("bdx.investigator", second, BookingRequest("BDX", MONDAY.date(), "LAB", LAST_SLOT, D0)),
            ],
        )
    assert len(won) == 1 and len(refused) == 1, (won, refused)
    assert isinstance(refused[0], Refused) and refused[0].code == "apheresis_full"
    assert Booking.objects.filter(apheresis_date=MONDAY.date()).count() == 1
