"""The order of a subject's dates: birth < consent ≤ … ≤ infusion (D0), death after birth and not before
the consent, nothing that happened in the future, planned dates within the protocol's horizon."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.chronology import Milestone, Moment, chronology_check, must_precede
from cartrial.domain.errors import InvalidInput
from cartrial.domain.shipping import CLOCK_TOLERANCE
from cartrial.locale import render

M = Milestone
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def test_consent_before_birth_names_both_dates_and_the_rule() -> None:
    with pytest.raises(InvalidInput) as refused:
        chronology_check(
            {M.BIRTH: date(1985, 6, 1), M.CONSENT: date(1980, 3, 1)},
            now=NOW,
            zone=PARIS,
            entered=[M.CONSENT],
            items={M.CONSENT: "signed_on"},
        )
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "signed_on"
    assert str(refused.value) == (
        "Dates out of order: the consent signature (1980-03-01) is not after the birth date (1985-06-01), "
        "which must come first."
    )
    assert render(refused.value.message, "fr") == (
        "Dates dans le mauvais ordre : la signature du consentement (1980-03-01) ne suit pas "
        "la date de naissance (1985-06-01), qui doit venir avant."
    )


def test_a_consent_signed_on_the_birth_day_is_refused_the_day_after_is_not() -> None:
    with pytest.raises(InvalidInput):
        chronology_check({M.BIRTH: date(1985, 6, 1), M.CONSENT: date(1985, 6, 1)}, now=NOW, zone=PARIS)
    chronology_check({M.BIRTH: date(1985, 6, 1), M.CONSENT: date(1985, 6, 2)}, now=NOW, zone=PARIS)


def test_an_infusion_years_before_inclusion_names_the_nearest_milestone_it_should_follow() -> None:
    known: dict[Milestone, Moment] = {
        M.BIRTH: date(1985, 6, 1),
        M.CONSENT: date(2026, 9, 1),
        M.INCLUDED: _at(60),
        M.THAWED: _at(0.01),
    }
    with pytest.raises(InvalidInput) as refused:
        chronology_check({**known, M.INFUSED: date(2019, 10, 23)}, now=NOW, zone=PARIS, entered=[M.INFUSED])
    assert "the infusion (D0) (2019-10-23) is before the thaw of the product (2026-12-01 10:45)" in str(refused.value)


def test_an_instant_and_a_date_are_compared_on_the_centers_calendar() -> None:
    # Thawed at 23:30 in Montréal is 04:30 UTC the next day: D0 is still the Montréal date.
    montreal = ZoneInfo("America/Toronto")
    thawed = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    chronology_check({M.THAWED: thawed, M.INFUSED: date(2026, 11, 29)}, now=NOW, zone=montreal)
    with pytest.raises(InvalidInput):
        chronology_check({M.THAWED: thawed, M.INFUSED: date(2026, 11, 29)}, now=NOW, zone=PARIS)


def test_two_instants_are_compared_exactly() -> None:
    shipped = _at(2)
    chronology_check({M.MATERIAL_SHIPPED: shipped, M.MATERIAL_RECEIVED: shipped}, now=NOW, zone=PARIS)
    with pytest.raises(InvalidInput) as refused:
        chronology_check(
            {M.MATERIAL_SHIPPED: shipped, M.MATERIAL_RECEIVED: shipped - timedelta(minutes=1)}, now=NOW, zone=PARIS
        )
    assert "the receipt of the material at the lab" in str(refused.value)


def test_what_happened_may_not_be_in_the_future_beyond_the_clocks_tolerance() -> None:
    chronology_check({M.THAWED: NOW + CLOCK_TOLERANCE}, now=NOW, zone=PARIS)
    with pytest.raises(InvalidInput) as refused:
        chronology_check({M.THAWED: NOW + CLOCK_TOLERANCE + timedelta(seconds=1)}, now=NOW, zone=PARIS)
    assert refused.value.code == "date_in_future"
    today = NOW.astimezone(PARIS).date()
    chronology_check({M.INFUSED: today}, now=NOW, zone=PARIS)
    with pytest.raises(InvalidInput) as future:
        chronology_check({M.INFUSED: today + timedelta(days=1)}, now=NOW, zone=PARIS, items={M.INFUSED: "infused_on"})
    assert future.value.item == "infused_on"
    assert render(future.value.message, "fr").startswith("Date dans le futur : la perfusion (J0)")


def test_planned_dates_may_be_ahead_within_the_horizon_but_not_before_what_precedes_them() -> None:
    today = NOW.astimezone(PARIS).date()
    known: dict[Milestone, Moment] = {M.INCLUDED: _at(3)}
    for days, accepted in ((7, True), (180, True), (181, False)):
        dates = {**known, M.APHERESIS_PLANNED: today + timedelta(days=days)}
        if accepted:
            chronology_check(dates, now=NOW, zone=PARIS, planning_horizon_days=180)
        else:
            with pytest.raises(InvalidInput) as refused:
                chronology_check(dates, now=NOW, zone=PARIS, planning_horizon_days=180)
            assert refused.value.code == "date_too_far_ahead"
    with pytest.raises(InvalidInput) as refused:
        chronology_check({**known, M.APHERESIS_PLANNED: today - timedelta(days=30)}, now=NOW, zone=PARIS)
    assert refused.value.code == "dates_out_of_order" and "the planned apheresis" in str(refused.value)


def test_a_step_is_checked_against_what_precedes_it_not_what_an_earlier_cycle_left_after_it() -> None:
    # A repeat apheresis after a failed batch: the first cycle's shipment is later than the inclusion
    # and earlier than the new planned date, and the new date is entered alone.
    known: dict[Milestone, Moment] = {M.INCLUDED: _at(60), M.COLLECTION_ENDED: _at(50), M.MATERIAL_SHIPPED: _at(49)}
    replanned = {**known, M.APHERESIS_PLANNED: NOW.date() + timedelta(days=5)}
    chronology_check(replanned, now=NOW, zone=PARIS, entered=[M.APHERESIS_PLANNED])
    # A correction's candidate set is checked whole: a collection moved after its shipment is refused.
    with pytest.raises(InvalidInput) as refused:
        chronology_check({**known, M.COLLECTION_ENDED: _at(48)}, now=NOW, zone=PARIS)
    assert "the departure of the apheresis material" in str(refused.value)


def test_a_death_follows_what_the_patient_took_part_in_not_what_the_lab_did_afterwards() -> None:
    known: dict[Milestone, Moment] = {M.BIRTH: date(1985, 6, 1), M.CONSENT: date(2026, 9, 1), M.RELEASED: _at(2)}
    # Died before the product was released (never infused): the release does not make the death wrong.
    chronology_check({**known, M.DEATH: (NOW - timedelta(days=5)).date()}, now=NOW, zone=PARIS, entered=[M.DEATH])
    with pytest.raises(InvalidInput) as refused:
        chronology_check({**known, M.DEATH: date(2026, 8, 1)}, now=NOW, zone=PARIS, entered=[M.DEATH])
    assert "the death (2026-08-01) is before the consent signature (2026-09-01)" in str(refused.value)
    infused = {**known, M.INFUSED: (NOW - timedelta(days=1)).date()}
    with pytest.raises(InvalidInput):
        chronology_check({**infused, M.DEATH: (NOW - timedelta(days=3)).date()}, now=NOW, zone=PARIS)
    assert M.RELEASED not in must_precede(M.DEATH) and M.INFUSED in must_precede(M.DEATH)


def test_the_order_carries_over_milestones_not_recorded() -> None:
    # No collection, shipment or batch recorded (an old subject): D0 still follows the inclusion.
    assert {M.INCLUDED, M.CONSENT, M.BIRTH, M.THAWED} <= set(must_precede(M.INFUSED))
    with pytest.raises(InvalidInput):
        chronology_check({M.INCLUDED: _at(10), M.INFUSED: (NOW - timedelta(days=20)).date()}, now=NOW, zone=PARIS)


# --- property: whatever dates are given, the chronology accepts exactly the ordered ones ----------------

# The main pathway as the protocol describes it: (milestone, rank, a calendar date or an instant).
# Lymphodepletion may start before the pharmacy receives the product (in transit, arrival confirmed):
# the two share a rank and are not compared with each other.
CHAIN: tuple[tuple[Milestone, int, bool], ...] = (
    (M.BIRTH, 0, True),
    (M.CONSENT, 1, True),
    (M.SCREENING_STARTED, 2, False),
    (M.INCLUDED, 3, False),
    (M.COLLECTION_STARTED, 4, False),
    (M.COLLECTION_ENDED, 5, False),
    (M.MATERIAL_SHIPPED, 6, False),
    (M.MATERIAL_RECEIVED, 7, False),
    (M.MANUFACTURING_STARTED, 8, False),
    (M.RELEASED, 9, False),
    (M.PRODUCT_SHIPPED, 10, False),
    (M.PRODUCT_RECEIVED, 11, False),
    (M.LYMPHODEPLETION_STARTED, 11, False),
    (M.THAWED, 12, False),
    (M.INFUSED, 13, True),
)
SPAN_MINUTES = 3 * 24 * 60  # three days: instants often share a calendar date with a date milestone


def _expected_in_order(dates: dict[Milestone, Moment]) -> bool:
    """The oracle, written from the protocol's order: every earlier-ranked milestone not after a later one
    (birth strictly before), instants compared exactly, anything else on the Paris calendar."""
    ranked = [(m, rank) for m, rank, _ in CHAIN if m in dates]
    for earlier, rank_a in ranked:
        for later, rank_b in ranked:
            if rank_a >= rank_b:
                continue
            a, b = dates[earlier], dates[later]
            if not (isinstance(a, datetime) and isinstance(b, datetime)):
                a = a.astimezone(PARIS).date() if isinstance(a, datetime) else a
                b = b.astimezone(PARIS).date() if isinstance(b, datetime) else b
            if (earlier is M.BIRTH and a >= b) or a > b:  # type: ignore[operator]
                return False
    return True


@st.composite
def pathway_dates(draw: st.DrawFn) -> dict[Milestone, Moment]:
    chosen = draw(st.lists(st.sampled_from(CHAIN), min_size=2, max_size=len(CHAIN), unique=True))
    offsets = draw(st.lists(st.integers(0, SPAN_MINUTES), min_size=len(chosen), max_size=len(chosen)))
    if draw(st.booleans()):
        # Half the time the minutes follow the pathway's order, as real data mostly does.
        offsets = sorted(offsets)
        chosen = sorted(chosen, key=lambda item: item[1])
    start = NOW - timedelta(minutes=SPAN_MINUTES + 60)
    dates: dict[Milestone, Moment] = {}
    for (milestone, _rank, is_date), minutes in zip(chosen, offsets, strict=True):
        moment = start + timedelta(minutes=minutes)
        dates[milestone] = moment.astimezone(PARIS).date() if is_date else moment
    return dates


@given(pathway_dates())
def test_the_chronology_accepts_exactly_the_dates_in_the_pathways_order(dates: dict[Milestone, Moment]) -> None:
    try:
        chronology_check(dates, now=NOW, zone=PARIS)
        accepted = True
    except InvalidInput as refusal:
        assert refusal.code == "dates_out_of_order"
        accepted = False
    event("accepted" if accepted else "refused")
    assert accepted == _expected_in_order(dates)


@given(pathway_dates(), st.data())
def test_an_entered_milestone_is_refused_only_when_it_precedes_a_known_predecessor(
    dates: dict[Milestone, Moment], data: st.DataObject
) -> None:
    entered = data.draw(st.sampled_from(sorted(dates)))
    rank = {milestone: r for milestone, r, _ in CHAIN}
    try:
        chronology_check(dates, now=NOW, zone=PARIS, entered=[entered])
        accepted = True
    except InvalidInput:
        accepted = False
    event("accepted" if accepted else "refused")
    # Compared with each known milestone ranked before it, never with those after, nor others with each other.
    expected = all(
        _expected_in_order({earlier: dates[earlier], entered: dates[entered]})
        for earlier in dates
        if rank[earlier] < rank[entered]
    )
    assert accepted == expected
