"""Deviations' life (acknowledge, comment, close, reopen) and who manages each, as pure rules."""

from __future__ import annotations

import itertools

import pytest

from cartrial.domain.deviations import (
    DEVIATION_MOVES,
    DeviationKind,
    DeviationStatus,
    deviation_authorise,
    deviation_move,
    deviation_moves_open_to,
    deviation_owners,
)
from cartrial.domain.errors import AccessDenied, InvalidInput, Refused
from cartrial.domain.roles import ACTION_ROLES, Action, Role

OPEN, ACKNOWLEDGED, CLOSED = DeviationStatus.OPEN, DeviationStatus.ACKNOWLEDGED, DeviationStatus.CLOSED
STEPS = (
    "collect_apheresis",
    "ship_material",
    "receive_material",
    "release_product",
    "ship_product",
    "receive_product",
    "thaw",
    "infuse",
    "temperature_log",
    "somewhere_else",
)


# --- the moves -----------------------------------------------------------------------------------


def test_the_life_of_a_deviation_acknowledge_comment_close_reopen() -> None:
    status = deviation_move(OPEN, "acknowledge", "")
    assert status is ACKNOWLEDGED
    assert deviation_move(status, "comment", "Courier called: wrong label printed.") is ACKNOWLEDGED
    status = deviation_move(status, "close", "Label reprinted, staff retrained.")
    assert status is CLOSED
    # Reopened, the deviation must be taken in charge again: it is open, not acknowledged.
    assert deviation_move(status, "reopen", "The closure does not say who checked the new label.") is OPEN


def test_an_open_deviation_may_be_closed_directly_with_a_reason() -> None:
    assert deviation_move(OPEN, "close", "Duplicate of deviation 12.") is CLOSED


@pytest.mark.parametrize("move", ["comment", "close", "reopen"])
def test_a_comment_or_a_reason_is_required(move: str) -> None:
    status = CLOSED if move == "reopen" else OPEN
    with pytest.raises(InvalidInput) as refused:
        deviation_move(status, move, "   ")
    assert (refused.value.code, refused.value.item) == ("reason_required", "text")
    expected = "Write the comment." if move == "comment" else "Write the reason."
    assert str(refused.value) == expected


@pytest.mark.parametrize(
    ("status", "move"),
    [(CLOSED, "acknowledge"), (ACKNOWLEDGED, "acknowledge"), (CLOSED, "close"), (CLOSED, "comment"), (OPEN, "reopen")],
)
def test_a_move_at_the_wrong_status_is_refused_saying_the_status(status: DeviationStatus, move: str) -> None:
    with pytest.raises(Refused) as refused:
        deviation_move(status, move, "some text")
    assert refused.value.code == "deviation_wrong_status"
    label = {OPEN: "Open", ACKNOWLEDGED: "Acknowledged", CLOSED: "Closed"}[status]
    assert str(refused.value).startswith(f"This deviation is “{label}”: ")


def test_an_unknown_move_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as refused:
        deviation_move(OPEN, "delete", "")
    assert refused.value.code == "unknown_move"


# --- who manages what ----------------------------------------------------------------------------


def test_a_bedside_mismatch_is_closed_by_the_investigator_only() -> None:
    owners = deviation_owners(DeviationKind.BEDSIDE_MISMATCH, "infuse")
    assert owners.roles_for("acknowledge") == {Role.INVESTIGATOR, Role.PHARMACIST, Role.COORDINATOR}
    assert owners.roles_for("close") == {Role.INVESTIGATOR}
    assert owners.roles_for("reopen") == {Role.INVESTIGATOR, Role.MONITOR}
    assert Role.PHARMACIST in owners.roles_for("comment") and Role.MONITOR in owners.roles_for("comment")


def test_a_wrong_scan_at_the_lab_is_the_lab_s_own() -> None:
    owners = deviation_owners(DeviationKind.SCAN_MISMATCH, "receive_material")
    assert owners.roles_for("acknowledge") == owners.roles_for("close") == {Role.MANUFACTURING}
    assert owners.roles_for("comment") == {Role.MANUFACTURING, Role.MONITOR}


def test_a_wrong_scan_at_the_apheresis_unit_is_closed_by_the_unit_or_the_investigator() -> None:
    owners = deviation_owners(DeviationKind.SCAN_MISMATCH, "ship_material")
    assert owners.roles_for("acknowledge") == {Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR}
    assert owners.roles_for("close") == {Role.APHERESIS, Role.INVESTIGATOR}


def test_transit_and_temperature_belong_to_both_ends_of_the_shipment() -> None:
    to_lab = deviation_owners(DeviationKind.TRANSIT_TIME, "receive_material", shipment_to_lab=True)
    assert to_lab.roles_for("acknowledge") == {Role.APHERESIS, Role.INVESTIGATOR, Role.COORDINATOR, Role.MANUFACTURING}
    # The lab decides whether late material can still be manufactured; the investigator for the patient.
    assert to_lab.roles_for("close") == {Role.MANUFACTURING, Role.INVESTIGATOR}
    # A transit time is measured at the lab's receipt: without its shipment, it is still the way to the lab.
    assert deviation_owners(DeviationKind.TRANSIT_TIME, "receive_material") == to_lab
    to_center = deviation_owners(DeviationKind.TEMPERATURE_EXCURSION, "temperature_log", shipment_to_lab=False)
    assert to_center.roles_for("close") == {Role.MANUFACTURING, Role.PHARMACIST, Role.INVESTIGATOR}
    assert Role.APHERESIS not in to_center.roles_for("comment")


@pytest.mark.parametrize(
    ("kind", "step", "to_lab"),
    [(kind, step, to_lab) for kind in DeviationKind for step in STEPS for to_lab in (None, True, False)],
)
def test_every_deviation_has_owners_within_the_roles_that_manage_deviations(
    kind: DeviationKind, step: str, to_lab: bool | None
) -> None:
    owners = deviation_owners(kind, step, to_lab)
    reachable = ACTION_ROLES[Action.MANAGE_DEVIATION]
    assert owners.roles_for("close"), "someone must be able to close it"
    assert owners.roles_for("close") <= owners.roles_for("acknowledge")
    for move in DEVIATION_MOVES:
        roles = owners.roles_for(move)
        assert roles <= reachable, (move, roles - reachable)
        assert not roles & {Role.DATA_MANAGER, Role.SPONSOR_ADMIN}
    # The monitor oversees: comments and challenges a closure, never takes charge nor closes.
    assert Role.MONITOR in owners.roles_for("comment") and Role.MONITOR in owners.roles_for("reopen")
    assert Role.MONITOR not in owners.roles_for("acknowledge") | owners.roles_for("close")


def test_a_role_that_does_not_own_the_move_is_told_who_may() -> None:
    owners = deviation_owners(DeviationKind.BEDSIDE_MISMATCH, "infuse")
    deviation_authorise(Role.INVESTIGATOR, owners, "close")
    with pytest.raises(AccessDenied) as denied:
        deviation_authorise(Role.COORDINATOR, owners, "close")
    assert denied.value.code == "deviation_not_owner"
    assert str(denied.value) == (
        "Your role (Coordinator (CRA/TEC)) may not “Close” this deviation (Bedside identity mismatch); "
        "who may: Investigator."
    )
    with pytest.raises(AccessDenied):
        deviation_authorise(None, owners, "comment")


def test_the_moves_offered_are_those_the_role_may_make_at_this_status() -> None:
    owners = deviation_owners(DeviationKind.BEDSIDE_MISMATCH, "infuse")
    assert deviation_moves_open_to(Role.INVESTIGATOR, OPEN, owners) == ["acknowledge", "comment", "close"]
    assert deviation_moves_open_to(Role.COORDINATOR, OPEN, owners) == ["acknowledge", "comment"]
    assert deviation_moves_open_to(Role.COORDINATOR, ACKNOWLEDGED, owners) == ["comment"]
    assert deviation_moves_open_to(Role.MONITOR, ACKNOWLEDGED, owners) == ["comment"]
    assert deviation_moves_open_to(Role.MONITOR, CLOSED, owners) == ["reopen"]
    assert deviation_moves_open_to(Role.COORDINATOR, CLOSED, owners) == []
    assert deviation_moves_open_to(None, OPEN, owners) == []


def test_an_offered_move_is_never_refused_for_its_status() -> None:
    owners = deviation_owners(DeviationKind.SCAN_MISMATCH, "thaw")
    for role, status in itertools.product(Role, DeviationStatus):
        for move in deviation_moves_open_to(role, status, owners):
            deviation_authorise(role, owners, move)
            deviation_move(status, move, "a reason")
