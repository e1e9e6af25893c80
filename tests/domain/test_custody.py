"""Chain of custody: valid hand-overs are accepted, any fork, gap, disorder or wrong scan is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.custody import (
    CustodyEvent,
    CustodyEventInvalid,
    CustodyFork,
    CustodyGap,
    CustodyNotHeld,
    CustodyOutOfOrder,
    CustodyRefused,
    CustodyScanMismatch,
    check_custody_chain,
    check_hand_over,
    verify_scan,
)
from cartrial.domain.identity import Identifier, new_coi, new_din

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
COI = new_coi(facility_number="A9999", year=2026, sequence_number=1)
OTHER_COI = new_coi(facility_number="A9999", year=2026, sequence_number=2)
DIN = new_din(facility_number="A9998", year=2026, sequence_number=1)


def hand_over(
    from_holder: str | None,
    to_holder: str,
    minutes: float,
    *,
    item_id: str = "bag-1",
    code: str = COI.barcode_data(),
) -> CustodyEvent:
    return CustodyEvent(
        item_id=item_id,
        from_holder=from_holder,
        to_holder=to_holder,
        actor=f"operator at {to_holder}",
        at=T0 + timedelta(minutes=minutes),
        location=f"{to_holder} premises",
        scanned_code=code,
    )


VEIN_TO_LAB = [
    hand_over(None, "Lille apheresis unit", 0),
    hand_over("Lille apheresis unit", "courier", 120),
    hand_over("courier", "manufacturing lab", 600),
]


def test_a_vein_to_lab_chain_is_accepted() -> None:
    positions = check_custody_chain(VEIN_TO_LAB, expected={"bag-1": COI})
    position = positions["bag-1"]
    assert position.holder == "manufacturing lab"
    assert position.since == T0 + timedelta(minutes=600)
    assert position.hand_over_count == 3


def test_check_hand_over_appends_one_step() -> None:
    step = hand_over("manufacturing lab", "Lille pharmacy", 900, code=COI.typed_form)
    position = check_hand_over(VEIN_TO_LAB, step, expected=COI)
    assert position.holder == "Lille pharmacy"


def test_equal_times_are_allowed() -> None:
    chain = [hand_over(None, "A", 0), hand_over("A", "B", 0), hand_over("B", "C", 0)]
    assert check_custody_chain(chain, expected={"bag-1": COI})["bag-1"].holder == "C"


def test_an_item_may_come_back_to_a_former_holder() -> None:
    chain = [hand_over(None, "A", 0), hand_over("A", "B", 1), hand_over("B", "A", 2), hand_over("A", "C", 3)]
    assert check_custody_chain(chain, expected={"bag-1": COI})["bag-1"].holder == "C"


def test_fork_is_refused_with_the_earlier_hand_over_named() -> None:
    chain = [*VEIN_TO_LAB, hand_over("Lille apheresis unit", "Bordeaux pharmacy", 700)]
    with pytest.raises(CustodyFork) as refused:
        check_custody_chain(chain, expected={"bag-1": COI})
    assert refused.value.code == "custody_fork"
    assert refused.value.event_index == 3
    assert "already handed item bag-1 to courier" in str(refused.value)


def test_second_receipt_at_collection_is_a_fork() -> None:
    with pytest.raises(CustodyFork, match="second custody line"):
        check_custody_chain([*VEIN_TO_LAB, hand_over(None, "Lille apheresis unit", 700)], expected={"bag-1": COI})


def test_gap_is_refused_naming_the_missing_hand_over() -> None:
    chain = [VEIN_TO_LAB[0], VEIN_TO_LAB[2]]
    with pytest.raises(CustodyGap) as refused:
        check_custody_chain(chain, expected={"bag-1": COI})
    assert refused.value.code == "custody_gap"
    assert "hand-over from Lille apheresis unit to courier is missing" in str(refused.value)


def test_hand_over_of_an_item_nobody_holds_is_refused() -> None:
    with pytest.raises(CustodyNotHeld) as refused:
        check_custody_chain(VEIN_TO_LAB[1:], expected={"bag-1": COI})
    assert refused.value.code == "custody_not_held"
    assert refused.value.event_index == 0


def test_time_going_backwards_is_refused() -> None:
    late = replace(VEIN_TO_LAB[2], at=VEIN_TO_LAB[1].at - timedelta(seconds=1))
    with pytest.raises(CustodyOutOfOrder) as refused:
        check_custody_chain([*VEIN_TO_LAB[:2], late], expected={"bag-1": COI})
    assert refused.value.code == "custody_out_of_order"


def test_chains_of_several_items_are_independent() -> None:
    chain = [
        hand_over(None, "A", 0, item_id="bag-1"),
        hand_over(None, "A", 1, item_id="bag-2", code=DIN.barcode_data()),
        hand_over("A", "B", 10, item_id="bag-1"),
        hand_over("A", "C", 3, item_id="bag-2", code=DIN.typed_form),
    ]
    positions = check_custody_chain(chain, expected={"bag-1": COI, "bag-2": DIN})
    assert (positions["bag-1"].holder, positions["bag-2"].holder) == ("B", "C")


@pytest.mark.parametrize(
    ("scanned", "expected", "reason_code", "scanned_content"),
    [
        (OTHER_COI.barcode_data(), COI, "scan_other_identifier", OTHER_COI.content),
        (DIN.barcode_data(), COI, "scan_wrong_kind", DIN.content),
        (COI.content, COI, "scan_unreadable", None),
        ("CHA999926000001X", COI, "scan_unreadable", None),
        ("=<S12954A0", DIN, "scan_unreadable", None),
    ],
)
def test_scan_mismatch_refuses_and_yields_a_deviation(
    scanned: str, expected: Identifier, reason_code: str, scanned_content: str | None
) -> None:
    received = hand_over(None, "courier", 0, code=expected.barcode_data())
    step = hand_over("courier", "manufacturing lab", 600, code=scanned)
    with pytest.raises(CustodyScanMismatch) as refused:
        check_hand_over([received], step, expected=expected)
    deviation = refused.value.deviation
    assert refused.value.code == "custody_scan_mismatch"
    assert refused.value.event_index == 1
    assert deviation.reason_code == reason_code
    assert deviation.expected_code == expected.content
    assert deviation.scanned_code == scanned
    assert deviation.scanned_content == scanned_content
    assert (deviation.actor, deviation.to_holder, deviation.at) == (step.actor, step.to_holder, step.at)
    assert verify_scan(step, expected) == deviation


def test_din_with_other_flags_still_matches() -> None:
    step = hand_over(None, "A", 0, code=DIN.barcode_data(flags="01"))
    assert verify_scan(step, DIN) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"at": datetime(2026, 3, 2, 8, 0)},
        {"actor": " "},
        {"item_id": ""},
        {"location": ""},
        {"from_holder": ""},
        {"from_holder": "A", "to_holder": "A"},
    ],
)
def test_malformed_events_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(CustodyEventInvalid):
        replace(hand_over("X", "Y", 0), **changes)


def test_unregistered_item_and_foreign_history_are_refused() -> None:
    with pytest.raises(CustodyEventInvalid, match="no registered identifier"):
        check_custody_chain(VEIN_TO_LAB, expected={})
    with pytest.raises(CustodyEventInvalid, match="contains a record of item"):
        check_hand_over([hand_over(None, "A", 0, item_id="bag-9")], hand_over("A", "B", 1), expected=COI)


def test_times_compare_as_instants_in_the_repeated_autumn_hour() -> None:
    # Python compares same-zone times by wall clock; 02:30 CET (fold=1) is after 02:40 CEST.
    paris = ZoneInfo("Europe/Paris")
    first = replace(hand_over(None, "A", 0), at=datetime(2026, 10, 25, 2, 40, tzinfo=paris))
    second = replace(hand_over("A", "B", 0), at=datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris))
    assert check_custody_chain([first, second], expected={"bag-1": COI})["bag-1"].holder == "B"
    with pytest.raises(CustodyOutOfOrder):
        check_custody_chain([replace(first, at=second.at), replace(second, at=first.at)], expected={"bag-1": COI})


def test_times_in_other_zones_compare_as_instants() -> None:
    paris = timezone(timedelta(hours=1))
    first = hand_over(None, "A", 0)
    second = replace(hand_over("A", "B", 0), at=datetime(2026, 3, 2, 9, 0, tzinfo=paris))
    assert check_custody_chain([first, second], expected={"bag-1": COI})["bag-1"].holder == "B"
    earlier = replace(second, at=datetime(2026, 3, 2, 8, 59, tzinfo=paris))
    with pytest.raises(CustodyOutOfOrder):
        check_custody_chain([first, earlier], expected={"bag-1": COI})


# ---- properties ------------------------------------------------------------------------------

HOLDERS = ["apheresis unit", "courier", "manufacturing lab", "QA release", "pharmacy", "ward"]


@st.composite
def valid_chains(draw: st.DrawFn) -> list[CustodyEvent]:
    """Chains built only from valid hand-overs: each from the current holder to another one."""
    holders = [draw(st.sampled_from(HOLDERS))]
    for _ in range(draw(st.integers(1, 8))):
        holders.append(draw(st.sampled_from([h for h in HOLDERS if h != holders[-1]])))
    gaps_min = draw(st.lists(st.integers(0, 600), min_size=len(holders), max_size=len(holders)))
    minutes = [sum(gaps_min[: i + 1]) for i in range(len(holders))]
    chain = [hand_over(None, holders[0], minutes[0])]
    chain += [hand_over(holders[i - 1], holders[i], minutes[i]) for i in range(1, len(holders))]
    return chain


@given(chain=valid_chains())
def test_any_chain_of_valid_hand_overs_is_accepted(chain: list[CustodyEvent]) -> None:
    position = check_custody_chain(chain, expected={"bag-1": COI})["bag-1"]
    assert position.holder == chain[-1].to_holder
    assert position.hand_over_count == len(chain)


@given(chain=valid_chains(), data=st.data())
def test_a_fork_mutation_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    # Consecutive holders differ, so the last hand-over's giver is always a former holder.
    former_holders = sorted({e.from_holder for e in chain if e.from_holder} - {chain[-1].to_holder})
    extra_from = data.draw(st.sampled_from([*former_holders, None]))
    fork = replace(chain[-1], from_holder=extra_from, to_holder="second ward")
    with pytest.raises(CustodyFork):
        check_custody_chain([*chain, fork], expected={"bag-1": COI})


@given(chain=valid_chains(), data=st.data())
def test_a_gap_mutation_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(1, len(chain) - 1))
    mutated = [*chain[:index], replace(chain[index], from_holder="unrecorded courier"), *chain[index + 1 :]]
    with pytest.raises(CustodyGap):
        check_custody_chain(mutated, expected={"bag-1": COI})


@given(chain=valid_chains(), data=st.data())
def test_dropping_a_hand_over_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 2))
    with pytest.raises((CustodyGap, CustodyFork, CustodyNotHeld)):
        check_custody_chain(chain[:index] + chain[index + 1 :], expected={"bag-1": COI})


@given(chain=valid_chains(), data=st.data())
def test_an_out_of_order_mutation_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(1, len(chain) - 1))
    back_min = data.draw(st.integers(1, 10_000))
    moved = replace(chain[index], at=chain[index - 1].at - timedelta(minutes=back_min))
    with pytest.raises(CustodyOutOfOrder):
        check_custody_chain([*chain[:index], moved, *chain[index + 1 :]], expected={"bag-1": COI})


@given(chain=valid_chains(), data=st.data())
def test_swapping_two_hand_overs_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 2))
    swapped = [*chain]
    swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
    with pytest.raises(CustodyRefused):
        check_custody_chain(swapped, expected={"bag-1": COI})


@given(chain=valid_chains(), data=st.data())
def test_a_wrong_scan_anywhere_is_refused(chain: list[CustodyEvent], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    wrong = replace(chain[index], scanned_code=data.draw(st.sampled_from([OTHER_COI.barcode_data(), DIN.typed_form])))
    with pytest.raises(CustodyScanMismatch) as refused:
        check_custody_chain([*chain[:index], wrong, *chain[index + 1 :]], expected={"bag-1": COI})
    assert refused.value.event_index == index
