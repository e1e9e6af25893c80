"""Capacities as data and booking of the vein-to-vein chain (issue 11): loaded from the protocol,
corrected with a reason, built into the planner's instance; bookings refused by the rule they break,
nothing stored; scheduling the apheresis needs the booking; pages and API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import scope_for
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.planning import selectors, services
from cartrial.apps.planning.models import Booking, CenterCapacity, FacilityCapacity
from cartrial.domain.booking import BookingRequest
from cartrial.domain.errors import DomainError, InvalidInput, Refused
from cartrial.domain.pathway import State, Step
from cartrial.domain.planning.instance import Center, Facility, Instance, Patient

# A Monday: BDX does apheresis on Mondays and Wednesdays, the lab starts no batch on weekends.
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CHRISTMAS = date(2026, 12, 25)
NEW_YEAR = date(2027, 1, 1)


@pytest.fixture
def network(world) -> Iterator[object]:
    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        yield world


def _book(world, subject, apheresis: date, start: date, infusion: date, who: str = "bdx.coordinator") -> Booking:
    from cartrial.apps.access import reach_subject
    from cartrial.domain.roles import Action

    reach = reach_subject(world.users[who], subject.code, Action.BOOK_SLOTS)
    return reach.run(
        lambda: services.booking_make(
            actor=reach.actor,
            user_id=reach.user.pk,
            subject=subject,
            request=BookingRequest(subject.center.code, apheresis, "LAB", start, infusion),
            protocol=world.protocol,
            today=MONDAY.date(),
        )
    )


def test_protocol_capacities_are_stored_once_and_audited(network) -> None:
    lab = FacilityCapacity.objects.get(center__code="LAB")
    assert (lab.lines, lab.manufacturing_days, lab.qc_days, lab.closed_weekdays) == (2, 10, 7, [5, 6])
    assert sorted(CenterCapacity.objects.values_list("center__code", flat=True)) == ["BDX", "LIL", "MTL", "PAR", "STR"]
    entries = AuditEntry.objects.filter(event=AuditEvent.CAPACITY_SET.value)
    assert entries.count() == 6
    with transaction.atomic():
        assert services.capacities_load(actor=Actor.system("test"), protocol=network.protocol) == 0
    assert AuditEntry.objects.filter(event=AuditEvent.CAPACITY_SET.value).count() == 6


def test_a_capacity_is_corrected_with_a_reason_and_its_history_kept(network) -> None:
    lab = FacilityCapacity.objects.get(center__code="LAB")
    actor = network.actor("sponsor.admin")
    with pytest.raises(InvalidInput) as refused, transaction.atomic():
        services.capacity_correct(actor=actor, record=lab, field="lines", raw="3", reason=" ")
    assert refused.value.code == "reason_required"
    with pytest.raises(InvalidInput) as out_of_range, transaction.atomic():
        services.capacity_correct(actor=actor, record=lab, field="lines", raw="80", reason="new clean room")
    assert out_of_range.value.code == "value_out_of_range" and out_of_range.value.item == "lines"
    lab.refresh_from_db()
    assert lab.lines == 2
    with transaction.atomic():
        services.capacity_correct(actor=actor, record=lab, field="lines", raw="3", reason="new clean room")
    lab.refresh_from_db()
    assert lab.lines == 3
    history = selectors.capacity_history()
    assert history[0].reason == "new clean room"
    assert history[0].changes[0]["field"] == "lines"
    assert (history[0].changes[0]["old"], history[0].changes[0]["new"]) == (2, 3)


def test_the_instance_built_from_the_database_equals_the_expected_one(network) -> None:
    with clock.frozen_at(MONDAY):
        waiting = network.new_subject("BDX", State.INCLUDED)
        network.new_subject("LIL", State.SCREENING)  # not included: not waiting for a chain
    scope = scope_for(network.users["sponsor.admin"])
    built = selectors.network_instance(scope, network.protocol, MONDAY.date(), 30)
    holidays = frozenset({CHRISTMAS, NEW_YEAR})

    def center(code: str, aph: set[int], per_day: int, inf: set[int], per_week: int, ship: int) -> Center:
        country = "CA" if code == "MTL" else "FR"
        return Center(code, country, frozenset(aph), per_day, frozenset(inf), per_week, {"LAB": ship}, holidays)

    expected = Instance(
        start_date=MONDAY.date(),
        horizon_days=30,
        facilities=(Facility("LAB", 2, 10, 7, frozenset({5, 6}), holidays),),
        centers=(
            center("BDX", {0, 2}, 1, {0, 1, 2, 3}, 2, 1),
            center("LIL", {1, 3}, 1, {0, 1, 2, 3}, 1, 1),
            center("MTL", {0, 2}, 1, {1, 2, 3}, 1, 3),
            center("PAR", {0, 1, 2, 3, 4}, 2, {0, 1, 2, 3, 4}, 3, 1),
            center("STR", {1, 3}, 1, {0, 1, 2, 3}, 1, 1),
        ),
        patients=(Patient(waiting.code, "BDX", MONDAY.date()),),
        lymphodepletion_days=3,
        # Lymphodepletion starts D-5 to D-3 (protocol) and lasts 3 days: it ends 1 to 3 days before D0.
        ld_to_infusion_gap_days=(1, 3),
    )
    assert built == expected


def test_the_network_instance_closes_what_the_bookings_hold(network) -> None:
    """A plan of the waiting subjects proposes only free slots: BDX's one apheresis of Monday 7
    December, once booked, is a closed day of the next subject's instance."""
    with clock.frozen_at(MONDAY):
        booked, waiting = network.new_subject("BDX", State.INCLUDED), network.new_subject("BDX", State.INCLUDED)
        scope = scope_for(network.users["sponsor.admin"])
        before = selectors.network_instance(scope, network.protocol, MONDAY.date(), 30)
        first = selectors.slots_free(network.protocol, "BDX", MONDAY.date(), 1)[0].plan
        _book(network, booked, first.apheresis, first.manufacturing_start, first.infusion)
        after = selectors.network_instance(scope, network.protocol, MONDAY.date(), 30)
    assert first.apheresis == date(2026, 12, 7)
    assert first.apheresis not in before.center("BDX").closed_dates
    assert first.apheresis in after.center("BDX").closed_dates
    assert [p.id for p in after.patients] == [waiting.code]


def test_a_booking_holds_the_chain_and_the_earliest_proposal_follows_the_rules(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        proposals = selectors.slots_free(network.protocol, "BDX", MONDAY.date(), 2)
        first = proposals[0].plan
        # Monday's apheresis, material at the lab on Tuesday, 10 + 7 days, D0 on the first Monday a
        # 3-day lymphodepletion and the product allow.
        assert (first.apheresis, first.manufacturing_start, first.release) == (
            date(2026, 12, 7),
            date(2026, 12, 8),
            date(2026, 12, 25),
        )
        assert (first.lymphodepletion_start, first.infusion) == (date(2026, 12, 25), date(2026, 12, 28))
        booking = _book(network, subject, first.apheresis, first.manufacturing_start, first.infusion)
    assert (booking.line, booking.infusion_week, booking.active) == (1, "2026-W53", True)
    entry = AuditEntry.objects.get(event=AuditEvent.BOOKING_MADE.value)
    assert entry.subject_code == subject.code


@pytest.mark.parametrize(
    ("apheresis", "start", "infusion", "code", "item"),
    [
        (date(2026, 12, 8), date(2026, 12, 9), date(2026, 12, 29), "wrong_weekday", "apheresis"),
        (date(2026, 12, 23), date(2026, 12, 24), date(2027, 1, 11), "order", "infusion"),
        (date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 27), "order", "infusion"),
        (date(2026, 12, 7), date(2026, 12, 12), date(2027, 1, 4), "facility_closed", "manufacturing_start"),
        (date(2026, 12, 7), date(2026, 12, 7), date(2027, 1, 4), "order", "manufacturing_start"),
    ],
)
def test_a_booking_breaking_a_rule_is_refused_naming_the_item(network, apheresis, start, infusion, code, item) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        with pytest.raises(DomainError) as refused:
            _book(network, subject, apheresis, start, infusion)
    assert (refused.value.code, refused.value.item) == (code, item)
    assert not Booking.objects.exists()


def test_apheresis_and_infusion_on_a_public_holiday_are_refused(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        # Easter Monday 2027 is a public holiday in France: no apheresis at Bordeaux that day.
        with pytest.raises(InvalidInput) as refused:
            _book(network, subject, date(2027, 3, 29), date(2027, 3, 30), date(2027, 4, 19))
        assert (refused.value.code, refused.value.item) == ("holiday", "apheresis")
        assert "public holiday" in str(refused.value)
        # 2026-12-28 is the earliest D0 of a batch started 12-08; Christmas week... New Year's Day is a
        # Friday (not an infusion day at BDX): a D0 on 2027-01-01 is refused as a holiday first.
        with pytest.raises(InvalidInput) as new_year:
            _book(network, subject, date(2026, 12, 7), date(2026, 12, 8), NEW_YEAR)
        assert new_year.value.code == "holiday"
    assert not Booking.objects.exists()


def test_no_apheresis_without_a_free_manufacturing_slot(network) -> None:
    with clock.frozen_at(MONDAY):
        par = [network.new_subject("PAR", State.INCLUDED) for _ in range(3)]
        # Paris does two apheresis a day; the lab has two lines: the third batch of that day has no line.
        _book(network, par[0], date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 28), "par.coordinator")
        _book(network, par[1], date(2026, 12, 8), date(2026, 12, 9), date(2026, 12, 29), "par.coordinator")
        with pytest.raises(Refused) as refused:
            _book(network, par[2], date(2026, 12, 9), date(2026, 12, 10), date(2026, 12, 30), "par.coordinator")
    assert refused.value.code == "no_manufacturing_slot"
    assert "apheresis can be booked only against a reserved manufacturing slot" in str(refused.value)
    assert Booking.objects.filter(subject=par[2]).count() == 0
    refusal = AuditEntry.objects.filter(subject_code=par[2].code).order_by("-sequence").first()
    assert refusal is not None and refusal.event == AuditEvent.ACTION_REFUSED.value


def test_a_full_apheresis_day_is_refused(network) -> None:
    with clock.frozen_at(MONDAY):
        first, second = network.new_subject("BDX", State.INCLUDED), network.new_subject("BDX", State.INCLUDED)
        _book(network, first, date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 28))
        with pytest.raises(Refused) as refused:
            _book(network, second, date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 29))
    assert (refused.value.code, refused.value.item) == ("apheresis_full", "apheresis")


def test_a_full_infusion_week_is_refused(network) -> None:
    with clock.frozen_at(MONDAY):
        lil = [network.new_subject("LIL", State.INCLUDED) for _ in range(2)]
        # Lille has one infusion bed a week.
        _book(network, lil[0], date(2026, 12, 8), date(2026, 12, 9), date(2026, 12, 29), "lil.coordinator")
        with pytest.raises(Refused) as refused:
            _book(network, lil[1], date(2026, 12, 10), date(2026, 12, 11), date(2026, 12, 31), "lil.coordinator")
    assert (refused.value.code, refused.value.item) == ("infusion_full", "infusion")


def test_cancelling_needs_a_reason_and_frees_the_slots(network) -> None:
    from cartrial.apps.access import reach_subject
    from cartrial.domain.roles import Action

    with clock.frozen_at(MONDAY):
        first, second = network.new_subject("BDX", State.INCLUDED), network.new_subject("BDX", State.INCLUDED)
        booking = _book(network, first, date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 28))
        reach = reach_subject(network.users["bdx.coordinator"], first.code, Action.BOOK_SLOTS)
        with pytest.raises(InvalidInput) as no_reason:
            reach.run(
                lambda: services.booking_cancel(actor=reach.actor, subject=first, booking_id=booking.pk, reason="")
            )
        assert no_reason.value.code == "reason_required"
        reach.run(
            lambda: services.booking_cancel(
                actor=reach.actor, subject=first, booking_id=booking.pk, reason="patient's infection"
            )
        )
        again = _book(network, second, date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 28))
    assert again.line == 1
    booking.refresh_from_db()
    assert (booking.active, booking.cancel_reason) == (False, "patient's infection")


def test_scheduling_the_apheresis_needs_the_booked_day(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        with pytest.raises(Refused) as unbooked:
            network.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=date(2026, 12, 7))
        assert unbooked.value.code == "no_booking"
        _book(network, subject, date(2026, 12, 9), date(2026, 12, 10), date(2026, 12, 30))
        with pytest.raises(InvalidInput) as other_day:
            network.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=date(2026, 12, 7))
        assert other_day.value.code == "not_booked_day"
        network.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=date(2026, 12, 9))
    subject.refresh_from_db()
    assert (subject.state, subject.apheresis_date) == (State.APHERESIS_SCHEDULED.value, date(2026, 12, 9))


def test_the_booking_page_proposes_free_chains_and_books_one(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        client = network.client_for("bdx.coordinator")
        detail = client.get(f"/subjects/{subject.code}/").content.decode()
        assert f'href="/planning/subjects/{subject.code}/" data-testid="booking-link"' in detail
        page = client.get(f"/planning/subjects/{subject.code}/")
        assert page.status_code == 200
        assert page.context["proposals"][0].plan.apheresis == date(2026, 12, 7)
        booked = client.post(
            f"/planning/subjects/{subject.code}/",
            {
                "apheresis": "2026-12-07",
                "facility": "LAB",
                "manufacturing_start": "2026-12-08",
                "infusion": "2026-12-28",
            },
        )
        assert booked.status_code == 302
        assert Booking.objects.get(subject=subject).line == 1
        refused = client.post(
            f"/planning/subjects/{subject.code}/",
            {
                "apheresis": "2026-12-07",
                "facility": "LAB",
                "manufacturing_start": "2026-12-08",
                "infusion": "2026-12-28",
            },
        )
    assert refused.status_code == 409
    assert refused.context["error"] == f"{subject.code} a déjà une réservation : annulez-la d'abord, avec un motif."


def test_the_capacities_page_changes_a_value_with_a_reason(network) -> None:
    client = network.client_for("sponsor.admin")
    center = CenterCapacity.objects.get(center__code="BDX")
    page = client.get("/planning/capacities/")
    assert page.status_code == 200
    assert 'data-testid="capacities-nav"' in page.content.decode()
    assert (
        'data-testid="capacities-nav"' not in network.client_for("bdx.coordinator").get("/subjects/").content.decode()
    )
    missing = client.post(
        "/planning/capacities/", {"kind": "center", "id": center.pk, "apheresis_per_day": "2", "reason": ""}
    )
    assert missing.status_code == 422
    center.refresh_from_db()
    assert center.apheresis_per_day == 1
    saved = client.post(
        "/planning/capacities/",
        {
            "kind": "center",
            "id": center.pk,
            "apheresis_per_day": "2",
            "apheresis_weekdays": "0,2,4",
            "reason": "2nd unit",
        },
    )
    assert saved.status_code == 302
    center.refresh_from_db()
    assert (center.apheresis_per_day, center.apheresis_weekdays) == (2, [0, 2, 4])
    # The history names the record and the values as the tables do, weekdays by name, in French.
    client.cookies["django_language"] = "fr"
    history = client.get("/planning/capacities/").content.decode()
    history = history[history.index('data-testid="history"') :]
    assert "Centre BDX · « 2nd unit »" in history
    assert "<strong>Créneaux d&#x27;aphérèse par jour</strong> 1 → 2" in history
    assert "<strong>Jours d&#x27;aphérèse</strong> lundi, mercredi → lundi, mercredi, vendredi" in history
    assert "<strong>Jours par trajet (LAB)</strong> — → 1" in history and "ship_days" not in history
    assert network.client_for("bdx.coordinator").get("/planning/capacities/").status_code == 403


def test_the_api_books_refuses_and_cancels(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        token = api_token_create(actor=Actor.system("test"), user=network.users["bdx.coordinator"], label="booking")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        slots = client.get("/api/v1/planning/slots?center=BDX&count=1").json()["items"]
        assert slots[0]["apheresis"] == "2026-12-07" and slots[0]["infusion"] == "2026-12-28"
        body = {k: slots[0][k] for k in ("apheresis", "facility", "manufacturing_start", "infusion")}
        created = client.post(f"/api/v1/subjects/{subject.code}/bookings", body, content_type="application/json")
        assert created.status_code == 201, created.content
        refused = client.post(f"/api/v1/subjects/{subject.code}/bookings", body, content_type="application/json")
        assert refused.status_code == 409 and refused.json()["code"] == "already_booked"
        url = f"/api/v1/subjects/{subject.code}/bookings/{created.json()['id']}"
        no_reason = client.delete(url, {"reason": ""}, content_type="application/json")
        assert no_reason.status_code == 422 and no_reason.json()["item"] == "reason"
        cancelled = client.delete(url, {"reason": "date moved"}, content_type="application/json")
        assert cancelled.status_code == 200 and cancelled.json()["active"] is False
    listed = client.get(f"/api/v1/subjects/{subject.code}/bookings").json()["items"]
    assert [b["cancel_reason"] for b in listed] == ["date moved"]


def test_booked_dates_are_the_visit_targets_until_cancelled(network) -> None:
    from cartrial.apps.casebook.selectors import subject_visit_rows

    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        before = {r.code: r for r in subject_visit_rows(subject, network.protocol, MONDAY.date())}
        assert before["D0"].target is None and before["LD"].target is None
        booking = _book(network, subject, date(2026, 12, 9), date(2026, 12, 10), date(2026, 12, 30))
        rows = {r.code: r for r in subject_visit_rows(subject, network.protocol, MONDAY.date())}
        assert rows["APH"].target == date(2026, 12, 9)
        assert rows["LD"].target == booking.lymphodepletion_start == date(2026, 12, 27)
        assert rows["D0"].target == date(2026, 12, 30)
        assert rows["D7"].target == date(2027, 1, 6)  # every D0-anchored visit follows the booked D0
        services.booking_cancel(
            actor=network.actor("bdx.coordinator"), subject=subject, booking_id=booking.pk, reason="x"
        )
        after = {r.code: r for r in subject_visit_rows(subject, network.protocol, MONDAY.date())}
    assert after["D0"].target is None and after["APH"].target == before["APH"].target


def test_the_lab_sees_its_manufacturing_reservations_by_code(network) -> None:
    with clock.frozen_at(MONDAY):
        subject = network.new_subject("BDX", State.INCLUDED)
        _book(network, subject, date(2026, 12, 7), date(2026, 12, 8), date(2026, 12, 28))
    lab = network.client_for("lab.manufacturing")
    page = lab.get("/planning/reservations/")
    assert page.status_code == 200
    assert [(b.subject.code, b.line, b.manufacturing_start) for b in page.context["bookings"]] == [
        (subject.code, 1, date(2026, 12, 8))
    ]
    assert 'data-testid="reservations-nav"' in page.content.decode()
    assert "Testpatient" not in page.content.decode()  # pseudonymous: codes only
