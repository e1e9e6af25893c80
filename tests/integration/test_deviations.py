"""Deviations are managed: acknowledged, commented, closed with a reason and reopened, by the roles
that own them, on the logistics pages, the dashboard and the API; every move audited.

Deviations are opened here by the real steps (a mistyped scan, a bedside identity mismatch, a late
receipt at the lab), except for the dashboard's counts, which only need many of them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.access import reach_subject
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.audit.services import Actor
from cartrial.apps.logistics import services as logistics
from cartrial.apps.logistics.forms import deviation_perform
from cartrial.apps.logistics.models import ChainOfIdentity, Collection, Deviation, DeviationComment, Shipment
from cartrial.apps.subjects.models import Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.bedside import IdentityMismatch
from cartrial.domain.custody import CustodyScanMismatch
from cartrial.domain.deviations import DeviationKind
from cartrial.domain.errors import AccessDenied, InvalidInput, NotFound, Refused
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db


# --- deviations opened by the real steps -----------------------------------------------------------


def _coi_scan(subject: Subject) -> str:
    return logistics.coi_of(ChainOfIdentity.objects.get(subject=subject)).barcode_data()


def _scan_mismatch(world: Any, center: str = "LIL") -> tuple[Subject, Deviation]:
    """The apheresis unit hands the bag to the courier and types the DIN with a wrong check character."""
    subject = world.new_subject(center, State.APHERESIS_COLLECTED)
    collection = Collection.objects.get(subject=subject)
    wrong_k = "1" if collection.check_character != "1" else "2"
    now = clock.now()
    with pytest.raises(CustodyScanMismatch):
        world.step(
            f"{center.lower()}.apheresis",
            subject,
            Step.SHIP_MATERIAL,
            courier="C",
            shipper_id="S1",
            condition="fresh",
            planned_departure_at=now,
            planned_arrival_at=now + timedelta(hours=20),
            scanned_code=collection.din + wrong_k,
        )
    return subject, Deviation.objects.get(subject=subject)


def _bedside_mismatch(world: Any, center: str = "LIL") -> tuple[Subject, Deviation]:
    """At the bedside, the pharmacist scans another patient's bag: the infusion is stopped."""
    from zoneinfo import ZoneInfo

    subject = world.new_subject(center, State.LYMPHODEPLETION)
    other = world.new_subject(center, State.LYMPHODEPLETION)
    prefix = center.lower()
    with clock.frozen_at(clock.now()):
        world.act(f"{prefix}.pharmacist", subject, Action.THAW, scanned_code=_coi_scan(subject))
        clock.advance(timedelta(minutes=10))
        with pytest.raises(IdentityMismatch):
            world.step(
                f"{prefix}.investigator",
                subject,
                Step.INFUSE,
                infused_on=clock.now().astimezone(ZoneInfo(subject.center.time_zone)).date(),
                password=DEMO_PASSWORD,
                bag_code=_coi_scan(subject),
                wristband_code=subject.code,
                second_username=f"{prefix}.pharmacist",
                second_password=DEMO_PASSWORD,
                second_bag_code=_coi_scan(other),
                second_wristband_code=subject.code,
            )
    return subject, Deviation.objects.get(subject=subject, kind="bedside_mismatch")


def _late_at_the_lab(world: Any, center: str = "LIL") -> tuple[Subject, Deviation]:
    """The lab scans the material in long after the collection ended: a transit-time deviation."""
    subject = world.new_subject(center, State.MATERIAL_SHIPPED)
    collection = Collection.objects.get(subject=subject)
    world.act(
        "lab.manufacturing", subject, Action.RECEIVE_MATERIAL, scanned_code=collection.din + collection.check_character
    )
    return subject, Deviation.objects.get(subject=subject, kind="transit_time")


def _move(world: Any, username: str, subject: Subject, deviation: Deviation, move: str, text: str = "") -> Deviation:
    """A move as the pages and the API make it: the access entry point, then the service in one transaction."""
    reach = reach_subject(world.users[username], subject.code, Action.MANAGE_DEVIATION)
    return deviation_perform(reach, deviation.pk, move, text)


def _state(deviation: Deviation) -> tuple[Any, ...]:
    stored = Deviation.objects.get(pk=deviation.pk)
    return (
        stored.status,
        stored.acknowledged_at,
        stored.closed_at,
        stored.closing_reason,
        DeviationComment.objects.filter(deviation=deviation).count(),
    )


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system(), user=world.users[username], label="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


# --- the lifecycle by the owners --------------------------------------------------------------------


def test_a_mistyped_scan_is_acknowledged_commented_closed_and_reopened_by_its_owners(world) -> None:
    subject, deviation = _scan_mismatch(world)
    assert (deviation.kind, deviation.step, deviation.status) == ("scan_mismatch", "ship_material", "open")
    users = world.users
    with clock.frozen_at(clock.now()):
        acknowledged_at = clock.now()
        _move(world, "lil.apheresis", subject, deviation, "acknowledge")
        clock.advance(timedelta(hours=1))
        _move(world, "lil.coordinator", subject, deviation, "comment", "Label printer reset; DIN typed by hand.")
        clock.advance(timedelta(hours=1))
        closed_at = clock.now()
        _move(world, "lil.apheresis", subject, deviation, "close", "  Scanner replaced; staff briefed.  ")
        stored = Deviation.objects.get(pk=deviation.pk)
        assert (stored.status, stored.acknowledged_at, stored.acknowledged_by) == (
            "closed",
            acknowledged_at,
            users["lil.apheresis"],
        )
        assert (stored.closed_at, stored.closed_by, stored.closing_reason) == (
            closed_at,
            users["lil.apheresis"],
            "Scanner replaced; staff briefed.",
        )
        clock.advance(timedelta(days=2))
        _move(world, "cra.monitor", subject, deviation, "reopen", "No evidence of the briefing in the file.")
    stored = Deviation.objects.get(pk=deviation.pk)
    # Reopened, it waits to be taken in charge again; the earlier closure stays in the thread and the trail.
    assert (stored.status, stored.acknowledged_at, stored.closed_at, stored.closing_reason) == ("open", None, None, "")
    thread = list(DeviationComment.objects.filter(deviation=deviation).order_by("at", "pk"))
    assert [(c.move, c.author.username, c.role, c.text) for c in thread] == [
        ("acknowledge", "lil.apheresis", "apheresis", ""),
        ("comment", "lil.coordinator", "coordinator", "Label printer reset; DIN typed by hand."),
        ("close", "lil.apheresis", "apheresis", "Scanner replaced; staff briefed."),
        ("reopen", "cra.monitor", "monitor", "No evidence of the briefing in the file."),
    ]
    # One audit entry per record changed: the deviation at each change of status, each comment row.
    entries = AuditEntry.objects.filter(subject_code=subject.code, event__startswith="logistics.deviation_")
    assert [(e.event, e.entity) for e in entries.exclude(event="logistics.deviation_opened").order_by("sequence")] == [
        ("logistics.deviation_acknowledged", "deviation"),
        ("logistics.deviation_acknowledged", "deviation_comment"),
        ("logistics.deviation_commented", "deviation_comment"),
        ("logistics.deviation_closed", "deviation"),
        ("logistics.deviation_closed", "deviation_comment"),
        ("logistics.deviation_reopened", "deviation"),
        ("logistics.deviation_reopened", "deviation_comment"),
    ]
    closing = entries.get(event="logistics.deviation_closed", entity="deviation")
    assert closing.reason == "Scanner replaced; staff briefed." and closing.entity_id == str(deviation.pk)
    assert '{"field":"status","new":"closed","old":"acknowledged"}' in closing.changes_json
    assert entries.get(event="logistics.deviation_reopened", entity="deviation").actor_username == "cra.monitor"
    assert audit_verify().intact


# --- refusals: the reason, nothing changed, the attempt recorded --------------------------------------


def test_closing_without_a_reason_is_refused_and_nothing_changes(world) -> None:
    subject, deviation = _scan_mismatch(world)
    before = _state(deviation)
    with pytest.raises(InvalidInput) as refused:
        _move(world, "lil.investigator", subject, deviation, "close", "   ")
    assert (refused.value.code, refused.value.item) == ("reason_required", "text")
    assert _state(deviation) == before
    assert AuditEntry.objects.filter(
        subject_code=subject.code, event="logistics.refused", changes_json__contains="reason_required"
    ).exists()


def test_acknowledging_a_closed_deviation_is_refused_for_its_status(world) -> None:
    subject, deviation = _scan_mismatch(world)
    _move(world, "lil.investigator", subject, deviation, "close", "Duplicate: the bag was rescanned correctly.")
    before = _state(deviation)
    with pytest.raises(Refused) as refused:
        _move(world, "lil.apheresis", subject, deviation, "acknowledge")
    assert refused.value.code == "deviation_wrong_status"
    assert _state(deviation) == before


def test_a_role_that_does_not_own_the_deviation_is_refused_naming_who_may(world) -> None:
    subject, deviation = _scan_mismatch(world)
    before = _state(deviation)
    # The coordinator documents but does not close; the pharmacy has nothing to do with the apheresis unit's scan.
    with pytest.raises(AccessDenied) as refused:
        _move(world, "lil.coordinator", subject, deviation, "close", "Seen.")
    assert refused.value.code == "deviation_not_owner"
    assert str(refused.value) == (
        "Your role (Coordinator (CRA/TEC)) may not “Close” this deviation (Scanned code does not match); "
        "who may: Investigator, Apheresis unit."
    )
    with pytest.raises(AccessDenied):
        _move(world, "lil.pharmacist", subject, deviation, "comment", "Not ours.")
    # The monitor comments, never takes the deviation in charge.
    with pytest.raises(AccessDenied):
        _move(world, "cra.monitor", subject, deviation, "acknowledge")
    assert _state(deviation) == before
    refusals = AuditEntry.objects.filter(subject_code=subject.code, event="access.refused")
    assert {e.actor_username for e in refusals} == {"lil.coordinator", "lil.pharmacist", "cra.monitor"}
    assert all("deviation_not_owner" in e.changes_json for e in refusals)


def test_another_center_s_deviation_is_not_found_and_the_sponsor_may_not_manage(world) -> None:
    subject, deviation = _scan_mismatch(world)
    other, _ = _scan_mismatch(world, "BDX")
    before = _state(deviation)
    with pytest.raises(NotFound):
        _move(world, "bdx.investigator", subject, deviation, "close", "Not mine.")
    # A deviation is reached through its own subject: another subject's code does not lead to it.
    with pytest.raises(NotFound) as elsewhere:
        _move(world, "bdx.investigator", other, deviation, "close", "Not mine.")
    assert elsewhere.value.code == "deviation_not_found"
    for username in ("sponsor.admin", "dm.datamanager"):
        with pytest.raises(AccessDenied):
            _move(world, username, subject, deviation, "comment", "Sponsor note.")
        assert AuditEntry.objects.filter(
            subject_code=subject.code, event="access.refused", actor_username=username
        ).exists()
    assert _state(deviation) == before


# --- the bedside and the lab ------------------------------------------------------------------------


def test_a_bedside_mismatch_is_closed_by_the_investigator_not_by_the_pharmacist(world) -> None:
    subject, deviation = _bedside_mismatch(world)
    assert deviation.step == "infuse" and deviation.status == "open"
    _move(world, "lil.pharmacist", subject, deviation, "acknowledge", "Bags of two patients in the same cooler.")
    with pytest.raises(AccessDenied) as refused:
        _move(world, "lil.pharmacist", subject, deviation, "close", "Right bag infused after the stop.")
    assert str(refused.value).endswith("who may: Investigator.")
    _move(world, "lil.investigator", subject, deviation, "close", "Right bag infused after the stop; no exposure.")
    assert Deviation.objects.get(pk=deviation.pk).status == "closed"
    _move(world, "cra.monitor", subject, deviation, "reopen", "Root cause analysis missing.")
    assert Deviation.objects.get(pk=deviation.pk).status == "open"
    assert audit_verify().intact


def test_the_lab_manages_a_late_receipt_the_apheresis_unit_comments(world) -> None:
    subject, deviation = _late_at_the_lab(world)
    assert deviation.shipment is not None and deviation.shipment.direction == Shipment.Direction.TO_LAB
    _move(world, "lil.apheresis", subject, deviation, "comment", "Courier strike that day.")
    _move(world, "lab.manufacturing", subject, deviation, "acknowledge")
    _move(world, "lab.manufacturing", subject, deviation, "close", "Viability 91 % at receipt: manufactured.")
    comments = DeviationComment.objects.filter(deviation=deviation).order_by("at", "pk")
    assert [c.role for c in comments] == ["apheresis", "manufacturing", "manufacturing"]


def test_a_correction_closes_a_deviation_that_no_longer_applies(world) -> None:
    """The hook for corrections: a corrected time that brings the transit within its limit closes it."""
    from django.db import transaction

    subject, deviation = _late_at_the_lab(world)
    actor = world.actor("lab.manufacturing")
    with transaction.atomic():
        closed = logistics.deviation_close_as_no_longer_applying(
            actor=actor, deviation=deviation, reason="Receipt time corrected: 30 h after the end of collection."
        )
    assert (closed.status, closed.closed_by_id, closed.closing_reason) == (
        "closed",
        actor.user_id,
        "Receipt time corrected: 30 h after the end of collection.",
    )
    comment = DeviationComment.objects.get(deviation=deviation)
    assert (comment.move, comment.role) == ("close", "manufacturing")
    entry = AuditEntry.objects.get(subject_code=subject.code, event="logistics.deviation_closed", entity="deviation")
    assert "no_longer_applies" in entry.changes_json
    # Already closed: nothing more is written.
    with transaction.atomic():
        logistics.deviation_close_as_no_longer_applying(actor=actor, deviation=deviation, reason="Again.")
    assert DeviationComment.objects.filter(deviation=deviation).count() == 1
    with pytest.raises(InvalidInput), transaction.atomic():
        _, other = _scan_mismatch(world)
        logistics.deviation_close_as_no_longer_applying(actor=actor, deviation=other, reason=" ")
    assert audit_verify().intact


# --- pages ------------------------------------------------------------------------------------------


def _deviation_block(page: str, deviation: Deviation) -> str:
    match = re.search(rf'<article[^>]*id="deviation-{deviation.pk}".*?</article>', page, re.S)
    assert match, "the deviation is on the page"
    return match.group(0)


def test_the_subject_page_shows_each_deviation_with_its_thread_and_the_moves_allowed_in_french_and_english(
    world,
) -> None:
    subject, deviation = _scan_mismatch(world)
    _move(world, "lil.apheresis", subject, deviation, "acknowledge", "Pris en charge.")
    url = f"/logistics/subjects/{subject.code}/"
    coordinator = world.client_for("lil.coordinator")
    french = _deviation_block(coordinator.get(url).content.decode(), deviation)
    for text in ("Code scanné discordant", "Prise en compte", "illisible", "Pris en charge.", "Léa Moreau"):
        assert text in french, text
    # The coordinator may comment, not close; the moves are buttons of one form, posted by htmx.
    assert re.findall(r'data-move="(\w+)"', french) == ["comment"]
    assert 'hx-post="/logistics/subjects/' in french and "<script" not in french and "style=" not in french
    investigator = world.client_for("lil.investigator")
    investigator.cookies["django_language"] = "en"
    english = _deviation_block(investigator.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode(), deviation)
    for text in ("Scanned code does not match", "Acknowledged", "unreadable", "Ship material to the lab"):
        assert text in english, text
    assert re.findall(r'data-move="(\w+)"', english) == ["comment", "close"]
    # The sponsor's administrator reads it, with no form.
    assert 'data-move="' not in _deviation_block(world.client_for("sponsor.admin").get(url).content.decode(), deviation)


def test_a_move_posted_by_htmx_answers_the_deviation_again_and_a_refusal_says_why(world) -> None:
    subject, deviation = _scan_mismatch(world)
    client = world.client_for("lil.investigator")
    client.cookies["django_language"] = "en"
    url = f"/logistics/subjects/{subject.code}/deviations/{deviation.pk}"
    refused = client.post(f"{url}/close/", {"text": ""}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 422
    assert "Write the reason." in refused.content.decode()
    assert Deviation.objects.get(pk=deviation.pk).status == "open"
    done = client.post(f"{url}/close/", {"text": "Rescanned."}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en")
    assert done.status_code == 200
    fragment = done.content.decode()
    assert fragment.lstrip().startswith("<article") and 'data-status="closed"' in fragment and "Rescanned." in fragment
    # Without JavaScript the form posts to the same address and comes back to the page.
    plain = client.post(f"{url}/reopen/", {"text": "Wrong bag after all."})
    assert plain.status_code == 302
    assert plain["Location"] == f"/logistics/subjects/{subject.code}/#deviation-{deviation.pk}"
    not_owner = world.client_for("lil.coordinator").post(f"{url}/close/", {"text": "x"}, HTTP_HX_REQUEST="true")
    assert not_owner.status_code == 422 and "Investigateur" in not_owner.content.decode()
    assert world.client_for("bdx.investigator").post(f"{url}/comment/", {"text": "x"}).status_code == 404
    assert world.client_for("sponsor.admin").post(f"{url}/comment/", {"text": "x"}).status_code == 403
    assert client.post(f"{url}/delete/", {"text": "x"}).status_code == 404


# --- dashboard --------------------------------------------------------------------------------------


def _open(world: Any, subject: Subject, kind: DeviationKind, *, days_ago: float) -> Deviation:
    from django.db import transaction

    actor = world.actor(f"{subject.center.code.lower()}.coordinator")
    with clock.frozen_at(clock.now() - timedelta(days=days_ago)), transaction.atomic():
        actor = Actor(actor.user_id, actor.username, actor.role, actor.center_code, clock.now())
        return logistics.deviation_open(
            actor=actor,
            subject=subject,
            kind=kind,
            code="scan_unreadable" if kind is DeviationKind.SCAN_MISMATCH else "identity_mismatch",
            params={"step": "x", "expected": "A", "scanned": "B", "problems": "p"},
            step="thaw" if kind is DeviationKind.SCAN_MISMATCH else "infuse",
        )


def _counts(page: str) -> dict[str, dict[str, str]]:
    rows = re.findall(r'<tr data-center="(\w+)">(.*?)</tr>', page, re.S)
    return {center: dict(re.findall(r'<td data-kind="(\w+)">(\d+)</td>', cells)) for center, cells in rows}


NONE = {kind.value: "0" for kind in DeviationKind} | {"open": "0", "acknowledged": "0"}


def test_the_dashboard_counts_open_deviations_per_center_and_kind_and_lists_them_with_their_age(world) -> None:
    lil = world.new_subject("LIL")
    bdx = world.new_subject("BDX")
    with clock.frozen_at(clock.now()):
        oldest = _open(world, lil, DeviationKind.SCAN_MISMATCH, days_ago=3)
        _open(world, lil, DeviationKind.SCAN_MISMATCH, days_ago=1)
        bedside = _open(world, lil, DeviationKind.BEDSIDE_MISMATCH, days_ago=0.25)
        _open(world, bdx, DeviationKind.SCAN_MISMATCH, days_ago=2)
        closed = _open(world, bdx, DeviationKind.BEDSIDE_MISMATCH, days_ago=5)
        _move(world, "bdx.investigator", bdx, closed, "close", "Duplicate.")
        _move(world, "lil.coordinator", lil, bedside, "acknowledge")
        monitor = world.client_for("cra.monitor")  # BDX and LIL
        monitor.cookies["django_language"] = "en"
        page = monitor.get("/logistics/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert _counts(page) == {
            "BDX": {**NONE, "scan_mismatch": "1", "open": "1"},
            "LIL": {**NONE, "scan_mismatch": "2", "bedside_mismatch": "1", "open": "2", "acknowledged": "1"},
        }
        listed = re.findall(r'<tr data-deviation="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
        assert int(listed[0][0]) == oldest.pk and len(listed) == 4  # oldest first, closed not listed
        first = listed[0][1]
        assert f'href="/logistics/subjects/{lil.code}/#deviation-{oldest.pk}"' in first and "3 d" in first
        assert "6 h" in dict(listed)[str(bedside.pk)]
        # Scoped: Bordeaux's staff see Bordeaux only.
        bdx_page = world.client_for("bdx.coordinator").get("/logistics/").content.decode()
        assert set(_counts(bdx_page)) == {"BDX"}
        assert "2 j" in bdx_page  # French by default: days are "j"


def test_the_dashboard_query_count_does_not_grow_with_the_number_of_deviations(
    world, django_assert_max_num_queries
) -> None:
    lil = world.new_subject("LIL")
    bdx = world.new_subject("BDX")
    _open(world, lil, DeviationKind.SCAN_MISMATCH, days_ago=1)
    client = world.client_for("cra.monitor")
    client.get("/logistics/")  # warm the session and the protocol
    # Session, user, memberships, worklists, milestones, deviation counts, the bounded list, the
    # navigation's memberships and alert badge, and the session's save.
    with django_assert_max_num_queries(12) as few:
        assert client.get("/logistics/").status_code == 200
    for index in range(12):
        subject = lil if index % 2 else bdx
        kind = DeviationKind.SCAN_MISMATCH if index % 3 else DeviationKind.BEDSIDE_MISMATCH
        _open(world, subject, kind, days_ago=index / 3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/logistics/").content.decode()
    assert len(re.findall(r'<tr data-deviation="', page)) == 13


# --- API --------------------------------------------------------------------------------------------


def test_the_api_lists_deviations_in_scope_and_makes_the_moves_with_the_same_rules(world) -> None:
    subject, deviation = _scan_mismatch(world)
    _scan_mismatch(world, "BDX")
    monitor = _api(world, "cra.monitor", HTTP_ACCEPT_LANGUAGE="fr")
    listed = monitor.get("/api/v1/logistics/deviations?status=open&center=LIL").json()
    assert listed["total"] == 1 and listed["next_offset"] is None
    (row,) = listed["items"]
    assert (row["id"], row["subject"], row["center"], row["kind"], row["code"], row["status"]) == (
        deviation.pk,
        subject.code,
        "LIL",
        "scan_mismatch",
        "scan_unreadable",
        "open",
    )
    assert "illisible" in row["message"] and row["opened_by"] == "lil.apheresis" and row["comments"] == 0
    assert row["age_hours"] >= 0 and row["opened_at"]
    assert row["moves"] == ["comment"]  # a monitor comments; the owners acknowledge and close
    assert _api(world, "lil.coordinator").get("/api/v1/logistics/deviations").json()["total"] == 1  # LIL only
    assert monitor.get("/api/v1/logistics/deviations").json()["total"] == 2  # BDX and LIL
    bad = monitor.get("/api/v1/logistics/deviations?status=forgotten")
    assert bad.status_code == 422 and [f["field"] for f in bad.json()["fields"]] == ["status"]

    url = f"/api/v1/logistics/subjects/{subject.code}/deviations/{deviation.pk}"
    investigator = _api(world, "lil.investigator")
    no_reason = investigator.post(f"{url}/close", {"text": ""}, content_type="application/json")
    assert no_reason.status_code == 422 and no_reason.json() == {
        "code": "reason_required",
        "message": "Write the reason.",
        "item": "text",
    }
    not_owner = _api(world, "lil.coordinator").post(f"{url}/close", {"text": "x"}, content_type="application/json")
    assert not_owner.status_code == 403 and not_owner.json()["code"] == "deviation_not_owner"
    assert "Investigator, Apheresis unit" in not_owner.json()["message"]
    other_center = _api(world, "bdx.investigator").post(
        f"{url}/comment", {"text": "x"}, content_type="application/json"
    )
    assert other_center.status_code == 404
    closed = investigator.post(f"{url}/close", {"text": "Rescanned at once."}, content_type="application/json")
    assert closed.status_code == 200, closed.content
    body = closed.json()
    assert (body["status"], body["closing_reason"], body["closed_by"]) == (
        "closed",
        "Rescanned at once.",
        "lil.investigator",
    )
    assert [(c["move"], c["author"], c["role"]) for c in body["thread"]] == [
        ("close", "lil.investigator", "investigator")
    ]
    again = investigator.post(f"{url}/acknowledge", {"text": ""}, content_type="application/json")
    assert again.status_code == 409 and again.json()["code"] == "deviation_wrong_status"
    unknown = investigator.post(f"{url}/delete", {"text": ""}, content_type="application/json")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_move"
    assert monitor.get("/api/v1/logistics/deviations?status=closed").json()["items"][0]["comments"] == 1
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/logistics/deviations" in paths
    assert "/api/v1/logistics/subjects/{code}/deviations/{deviation_id}/{move}" in paths
