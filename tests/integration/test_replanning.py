"""Re-planning (issue 11, item 4): a failed batch proposes new dates for its subject; nothing moves
until a coordinator of the subject's center accepts; acceptance re-books atomically and is audited;
a proposal overtaken by a booking is refused and marked stale; a rejection is audited; another
center neither sees nor decides it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.logistics.models import Shipment
from cartrial.apps.planning import selectors, services
from cartrial.apps.planning.models import Booking, CenterCapacity, FacilityCapacity, ReplanProposal
from cartrial.apps.planning.replanning import booking_plan_dates
from cartrial.domain.booking import iso_week
from cartrial.domain.pathway import State, Step

# A Monday; PAR does apheresis Monday to Friday (2 a day), the lab (2 lines) starts no batch on weekends.
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _booking_row(world, subject) -> Booking:
    """The chain the subject held before its batch failed, booked five weeks ago."""
    chain = selectors.slots_free(world.protocol, subject.center.code, MONDAY.date() - timedelta(days=35), 1)[0]
    p = chain.plan
    return Booking.objects.create(
        subject=subject,
        center=CenterCapacity.objects.get(center=subject.center),
        facility=FacilityCapacity.objects.get(center__code=p.facility),
        line=chain.line,
        apheresis_date=p.apheresis,
        manufacturing_start=p.manufacturing_start,
        release_date=p.release,
        product_arrival=p.product_arrival,
        lymphodepletion_start=p.lymphodepletion_start,
        infusion_date=p.infusion,
        infusion_week=iso_week(p.infusion),
        booked_by=world.users["par.coordinator"],
        booked_at=MONDAY,
    )


@pytest.fixture
def failed(world) -> Iterator[tuple[object, object, Booking]]:
    """A PAR subject in manufacturing holding a booking, whose batch then fails QC."""
    with clock.frozen_at(MONDAY):
        subject = world.new_subject("PAR", State.MANUFACTURING)
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        booking = _booking_row(world, subject)
        world.step("lab.manufacturing", subject, Step.FAIL_MANUFACTURING, reason="Sterility out of specification")
        yield world, subject, booking


def _api(world, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="replanning")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_failed_batch_proposes_new_dates_and_nothing_moves(failed) -> None:
    _world, subject, booking = failed
    proposal = ReplanProposal.objects.get()
    assert (proposal.trigger, proposal.status, proposal.center.code) == ("qc_failure", "pending", "PAR")
    assert proposal.detail == "Sterility out of specification"
    item = proposal.items.get()
    assert item.subject == subject and item.booking == booking
    assert item.before == booking_plan_dates(booking)
    # The new chain starts on or after the failure day and keeps the pathway's order.
    after = {k: date.fromisoformat(v) for k, v in item.after.items()}
    assert MONDAY.date() <= after["apheresis"] < after["manufacturing_start"] < after["release"] <= after["infusion"]
    # Nothing moved: the subject still holds the same booking.
    assert list(Booking.objects.filter(subject=subject, active=True)) == [booking]
    entry = AuditEntry.objects.get(event=AuditEvent.REPLAN_PROPOSED.value)
    assert entry.subject_code == subject.code and entry.reason == "Sterility out of specification"


def test_acceptance_rebooks_and_is_audited(failed) -> None:
    world, subject, booking = failed
    proposal = ReplanProposal.objects.get()
    after = proposal.items.get().after
    with clock.frozen_at(MONDAY):
        refused = _api(world, "par.coordinator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept", {"reason": " "}, content_type="application/json"
        )
        assert refused.status_code == 422 and refused.json()["item"] == "reason"
        response = _api(world, "par.coordinator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept",
            {"reason": "Second collection agreed with the patient"},
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    booking.refresh_from_db()
    assert not booking.active and booking.cancel_reason.startswith(f"Re-planning {proposal.pk}")
    new = Booking.objects.get(subject=subject, active=True)
    assert booking_plan_dates(new) == after
    accepted = AuditEntry.objects.get(event=AuditEvent.REPLAN_ACCEPTED.value)
    assert accepted.reason == "Second collection agreed with the patient"
    assert accepted.actor_username == "par.coordinator"
    assert AuditEntry.objects.filter(event=AuditEvent.BOOKING_MADE.value, entity_id=str(new.pk)).exists()


def test_a_stale_proposal_is_refused_with_a_clear_message_and_marked(failed) -> None:
    world, _subject, booking = failed
    proposal = ReplanProposal.objects.get()
    start = date.fromisoformat(proposal.items.get().after["manufacturing_start"])
    # Meanwhile both lines are taken on the proposed batch start.
    with clock.frozen_at(MONDAY):
        others = [world.new_subject("STR", State.INCLUDED) for _ in range(2)]
    lab = FacilityCapacity.objects.get(center__code="LAB")
    for line, other in enumerate(others, start=1):
        Booking.objects.create(
            subject=other,
            center=CenterCapacity.objects.get(center__code="STR"),
            facility=lab,
            line=line,
            apheresis_date=start,
            manufacturing_start=start,
            release_date=start,
            product_arrival=start,
            lymphodepletion_start=start,
            infusion_date=start,
            infusion_week=iso_week(start),
            booked_by=world.users["str.coordinator"],
            booked_at=MONDAY,
        )
    with clock.frozen_at(MONDAY):
        response = _api(world, "par.coordinator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept", {"reason": "ok"}, content_type="application/json"
        )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "replan_stale"
    assert f"Proposal {proposal.pk} is stale" in body["message"] and "No manufacturing slot" in body["message"]
    proposal.refresh_from_db()
    assert proposal.status == "stale"
    booking.refresh_from_db()
    assert booking.active  # nothing moved
    assert AuditEntry.objects.filter(event=AuditEvent.REPLAN_STALE.value, entity_id=str(proposal.pk)).exists()


def test_rejection_is_audited_and_nothing_moves(failed) -> None:
    world, subject, booking = failed
    proposal = ReplanProposal.objects.get()
    client = world.client_for("par.coordinator")
    with clock.frozen_at(MONDAY):
        page = client.get("/planning/replanning/")
        assert page.status_code == 200
        html = page.content.decode()
        assert 'data-testid="replanning-nav"' in html
        assert f'data-proposal="{proposal.pk}"' in html and 'data-date="infusion"' in html
        assert booking.infusion_date.isoformat() in html and proposal.items.get().after["infusion"] in html
        response = client.post(
            "/planning/replanning/", {"proposal": proposal.pk, "decision": "reject", "reason": "Patient unavailable"}
        )
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decision_reason) == ("rejected", "Patient unavailable")
    booking.refresh_from_db()
    assert booking.active and Booking.objects.filter(subject=subject).count() == 1
    entry = AuditEntry.objects.get(event=AuditEvent.REPLAN_REJECTED.value)
    assert entry.reason == "Patient unavailable" and entry.subject_code == subject.code


def test_another_center_neither_sees_nor_decides(failed) -> None:
    world, subject, _booking = failed
    proposal = ReplanProposal.objects.get()
    with clock.frozen_at(MONDAY):
        assert _api(world, "bdx.coordinator").get("/api/v1/planning/proposals").json()["items"] == []
        refused = _api(world, "bdx.coordinator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept", {"reason": "x"}, content_type="application/json"
        )
        assert refused.status_code == 404
        assert subject.code not in world.client_for("bdx.coordinator").get("/planning/replanning/").content.decode()
        # The center's investigator sees it but only the coordinator decides a one-center proposal.
        listed = _api(world, "par.investigator").get("/api/v1/planning/proposals").json()["items"]
        assert [(p["id"], p["can_decide"]) for p in listed] == [(proposal.pk, False)]
        denied = _api(world, "par.investigator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/reject", {"reason": "x"}, content_type="application/json"
        )
        assert denied.status_code == 403
    proposal.refresh_from_db()
    assert proposal.status == "pending"


def test_a_coordinator_asks_for_new_dates_on_the_booking_page(failed) -> None:
    world, subject, _booking = failed
    first = ReplanProposal.objects.get()
    client = world.client_for("par.coordinator")
    with clock.frozen_at(MONDAY):
        response = client.post(f"/planning/subjects/{subject.code}/", {"propose": "1", "reason": "Bed closed"})
        assert response.status_code == 302
        page = client.get(f"/planning/subjects/{subject.code}/").content.decode()
    manual = ReplanProposal.objects.get(trigger="manual")
    assert manual.detail == "Bed closed" and f'data-proposal="{manual.pk}"' in page
    first.refresh_from_db()
    assert first.status == "stale"  # superseded by the newer proposal


def test_a_late_product_shipment_proposes_new_dates(world) -> None:
    with clock.frozen_at(MONDAY):
        subject = world.new_subject("PAR", State.PRODUCT_SHIPPED)
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        booking = _booking_row(world, subject)
        shipment = Shipment.objects.get(subject=subject, direction="to_center")
        later = shipment.planned_arrival_at + timedelta(days=1)
        response = _api(world, "lab.manufacturing").post(
            f"/api/v1/subjects/{subject.code}/corrections",
            {
                "record": "product_shipment",
                "id": str(shipment.pk),
                "field": "planned_arrival_at",
                "value": later.isoformat(),
                "reason": "Courier delayed by snow",
            },
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    proposal = ReplanProposal.objects.get()
    assert (proposal.trigger, proposal.detail) == ("shipment_late", "Courier delayed by snow")
    assert proposal.items.get().before == booking_plan_dates(booking)
    booking.refresh_from_db()
    assert booking.active  # nothing moves before acceptance


def test_a_moved_apheresis_day_proposes_new_dates(world) -> None:
    with clock.frozen_at(MONDAY):
        subject = world.new_subject("PAR", State.APHERESIS_SCHEDULED)
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        booking = _booking_row(world, subject)
        response = _api(world, "par.apheresis").post(
            f"/api/v1/subjects/{subject.code}/corrections",
            {
                "record": "planned_apheresis",
                "id": subject.code,
                "field": "apheresis_date",
                "value": (subject.apheresis_date + timedelta(days=2)).isoformat(),
                "reason": "Apheresis unit closed that day",
            },
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    proposal = ReplanProposal.objects.get()
    assert (proposal.trigger, proposal.detail) == ("visit_moved", "Apheresis unit closed that day")
    assert proposal.items.get().booking == booking
    booking.refresh_from_db()
    assert booking.active


def test_a_proposal_across_centers_is_decided_by_the_sponsor_admin(world) -> None:
    from cartrial.apps.planning.replanning import replan_propose

    with clock.frozen_at(MONDAY):
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        par, bdx = world.new_subject("PAR", State.INCLUDED), world.new_subject("BDX", State.INCLUDED)
        with transaction.atomic():
            proposal = replan_propose(
                actor=Actor.system("test"),
                user_id=None,
                affected=[par, bdx],
                trigger=ReplanProposal.Trigger.MANUAL,
                detail="network",
                protocol=world.protocol,
                today=MONDAY.date(),
            )
        assert proposal is not None and proposal.center is None and proposal.items.count() == 2
        # The PAR coordinator sees only the PAR subject's difference, and may not decide for BDX.
        listed = _api(world, "par.coordinator").get("/api/v1/planning/proposals").json()["items"]
        assert [s["subject"] for s in listed[0]["subjects"]] == [par.code] and listed[0]["can_decide"] is False
        denied = _api(world, "par.coordinator").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept", {"reason": "x"}, content_type="application/json"
        )
        assert denied.status_code == 403
        accepted = _api(world, "sponsor.admin").post(
            f"/api/v1/planning/proposals/{proposal.pk}/accept",
            {"reason": "network plan"},
            content_type="application/json",
        )
    assert accepted.status_code == 200, accepted.content
    assert Booking.objects.filter(active=True, subject__in=[par, bdx]).count() == 2


def test_the_daily_scan_proposes_new_dates_once_for_a_shipment_past_its_planned_arrival(world) -> None:
    from cartrial.apps.planning.replanning import late_shipments_replan

    with clock.frozen_at(MONDAY):
        subject = world.new_subject("PAR", State.PRODUCT_SHIPPED)
        with transaction.atomic():
            services.capacities_load(actor=Actor.system("test"), protocol=world.protocol)
        booking = _booking_row(world, subject)
    shipment = Shipment.objects.get(subject=subject, direction="to_center")
    on_time = Actor.system("alerts-scan", now=shipment.planned_arrival_at - timedelta(hours=1))
    late = Actor.system("alerts-scan", now=shipment.planned_arrival_at + timedelta(hours=6))
    with transaction.atomic():
        assert late_shipments_replan(actor=on_time, protocol=world.protocol) == []
        first = late_shipments_replan(actor=late, protocol=world.protocol)
        again = late_shipments_replan(actor=late, protocol=world.protocol)
    assert [p.trigger for p in first] == ["shipment_late"] and again == []
    assert first[0].items.get().subject == subject
    booking.refresh_from_db()
    assert booking.active  # nothing moves before acceptance
