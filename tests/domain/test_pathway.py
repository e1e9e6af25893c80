"""The pathway's transitions and guards: every allowed step, every refusal, and properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import event, find, given, settings, target
from hypothesis import strategies as st

from cartrial.domain.pathway import (
    ACTIVE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    Facts,
    State,
    Step,
    TransitionRefused,
    allowed_steps,
    attempt,
    next_step,
    parse_state,
    parse_step,
    steps_from,
)
from cartrial.locale import render
from cartrial.protocols import load_protocol

D0 = date(2026, 3, 2)
RULES = load_protocol().pathway_rules

# Facts under which every guard holds: used to test that only the pathway order refuses.
ALL_GOOD = Facts(
    consent_signed=True,
    consent_current=True,
    eligibility_verdict="eligible",
    inclusion_signed=True,
    apheresis_date=date(2026, 1, 10),
    material_received_at_lab=True,
    qc_passed=True,
    product_released=True,
    product_received=True,
    identity_check_passed=True,
    identity_check_people=2,
    minutes_since_thaw=12.0,
    max_thaw_to_infusion_min=30.0,
    infusion_date=D0,
    planned_infusion_date=D0,
    lymphodepletion_started_on=D0 - timedelta(days=4),
    today=D0 + timedelta(days=5500),
    reason="patient's decision",
)
# On the day lymphodepletion starts, D0 is planned four days later (inside the D-5..D-3 window).
LD_DAY = replace(ALL_GOOD, today=D0 - timedelta(days=4))


def _good_for(step: Step) -> Facts:
    return LD_DAY if step is Step.START_LYMPHODEPLETION else ALL_GOOD


HAPPY_PATH = [
    (Step.START_SCREENING, State.SCREENING),
    (Step.CONFIRM_ELIGIBILITY, State.ELIGIBLE),
    (Step.INCLUDE, State.INCLUDED),
    (Step.SCHEDULE_APHERESIS, State.APHERESIS_SCHEDULED),
    (Step.COLLECT_APHERESIS, State.APHERESIS_COLLECTED),
    (Step.SHIP_MATERIAL, State.MATERIAL_SHIPPED),
    (Step.START_MANUFACTURING, State.MANUFACTURING),
    (Step.RELEASE_PRODUCT, State.PRODUCT_RELEASED),
    (Step.SHIP_PRODUCT, State.PRODUCT_SHIPPED),
    (Step.RECEIVE_PRODUCT, State.PRODUCT_RECEIVED),
    (Step.START_LYMPHODEPLETION, State.LYMPHODEPLETION),
    (Step.INFUSE, State.INFUSED),
    (Step.START_ACUTE_MONITORING, State.ACUTE_MONITORING),
    (Step.START_FOLLOW_UP, State.FOLLOW_UP),
    (Step.START_LONG_TERM_FOLLOW_UP, State.LONG_TERM_FOLLOW_UP),
    (Step.COMPLETE, State.COMPLETED),
]


def test_happy_path_reaches_completion() -> None:
    state = State.PRE_SCREENING
    for step, expected in HAPPY_PATH:
        assert next_step(state) is step
        state = attempt(state, step, _good_for(step), RULES)
        assert state is expected
    assert next_step(state) is None


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: t.step.value)
def test_every_allowed_transition_from_every_source(transition) -> None:
    for source in transition.sources:
        assert attempt(source, transition.step, _good_for(transition.step), RULES) is transition.target


def _allowed_pairs() -> set[tuple[State, Step]]:
    return {(source, t.step) for t in TRANSITIONS for source in t.sources}


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_other_pair_is_refused_with_a_reason(state: State) -> None:
    for step in Step:
        if (state, step) in _allowed_pairs():
            continue
        with pytest.raises(TransitionRefused) as refused:
            attempt(state, step, ALL_GOOD, RULES)
        expected = "final_state" if state in FINAL_STATES else "wrong_state"
        assert refused.value.code == expected
        assert render(refused.value.message, "fr") != render(refused.value.message, "en")


def test_skipped_step_says_what_is_expected_in_french() -> None:
    with pytest.raises(TransitionRefused) as refused:
        attempt(State.SCREENING, Step.INFUSE, ALL_GOOD, RULES)
    assert refused.value.code == "wrong_state"
    french = render(refused.value.message, "fr")
    assert "Perfusé" not in french
    assert "Lymphodéplétion" in french
    assert "Screening" in french


GUARD_CASES = [
    (State.PRE_SCREENING, Step.START_SCREENING, {"consent_signed": False}, "consent_missing"),
    (State.PRE_SCREENING, Step.START_SCREENING, {"consent_current": False}, "consent_outdated"),
    (State.SCREENING, Step.CONFIRM_ELIGIBILITY, {"eligibility_verdict": "not_eligible"}, "eligibility_not_met"),
    (State.SCREENING, Step.CONFIRM_ELIGIBILITY, {"eligibility_verdict": "incomplete"}, "eligibility_not_met"),
    (State.SCREENING, Step.CONFIRM_ELIGIBILITY, {"eligibility_verdict": None}, "eligibility_not_met"),
    (State.ELIGIBLE, Step.INCLUDE, {"consent_current": False}, "consent_outdated"),
    (State.ELIGIBLE, Step.INCLUDE, {"consent_signed": False}, "consent_missing"),
    (State.ELIGIBLE, Step.INCLUDE, {"eligibility_verdict": "incomplete"}, "eligibility_not_met"),
    (State.ELIGIBLE, Step.INCLUDE, {"inclusion_signed": False}, "signature_missing"),
    (State.INCLUDED, Step.SCHEDULE_APHERESIS, {"apheresis_date": None}, "apheresis_date_missing"),
    (State.MANUFACTURING_FAILED, Step.REPEAT_APHERESIS, {"apheresis_date": None}, "apheresis_date_missing"),
    (State.MATERIAL_SHIPPED, Step.START_MANUFACTURING, {"material_received_at_lab": False}, "material_not_received"),
    (State.MANUFACTURING, Step.RELEASE_PRODUCT, {"qc_passed": False}, "qc_not_passed"),
    (State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, {"product_released": False}, "product_not_released"),
    (State.PRODUCT_SHIPPED, Step.START_LYMPHODEPLETION, {"product_received": False}, "product_not_available"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"product_received": False}, "product_not_received"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"minutes_since_thaw": None}, "product_not_thawed"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"minutes_since_thaw": 30.5}, "thaw_limit_exceeded"),
    (
        State.MANUFACTURING,
        Step.RELEASE_PRODUCT,
        {"qc_passed": False, "oos_exception_documented": False},
        "qc_not_passed",
    ),
    (State.LYMPHODEPLETION, Step.INFUSE, {"identity_check_people": 1}, "identity_check_one_person"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"identity_check_passed": False}, "identity_check_failed"),
    (State.ACUTE_MONITORING, Step.START_FOLLOW_UP, {"today": D0 + timedelta(days=27)}, "too_early"),
    (State.ACUTE_MONITORING, Step.START_FOLLOW_UP, {"infusion_date": None}, "infusion_date_missing"),
    (State.FOLLOW_UP, Step.START_LONG_TERM_FOLLOW_UP, {"today": D0 + timedelta(days=719)}, "too_early"),
    (State.FOLLOW_UP, Step.COMPLETE, {"today": D0 + timedelta(days=729)}, "too_early"),
    (State.LONG_TERM_FOLLOW_UP, Step.COMPLETE, {"today": D0 + timedelta(days=5478)}, "too_early"),
    (State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, {"today": D0 - timedelta(days=2)}, "lymphodepletion_window"),
    (State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, {"today": D0 - timedelta(days=6)}, "lymphodepletion_window"),
    (State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, {"planned_infusion_date": None}, "infusion_date_missing"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"infusion_date": D0 + timedelta(days=2)}, "lymphodepletion_window"),
    (State.LYMPHODEPLETION, Step.INFUSE, {"lymphodepletion_started_on": None}, "lymphodepletion_date_missing"),
    (State.SCREENING, Step.FAIL_SCREENING, {"reason": "  "}, "reason_required"),
    (State.MANUFACTURING, Step.FAIL_MANUFACTURING, {"reason": ""}, "reason_required"),
    (State.INFUSED, Step.WITHDRAW, {"reason": ""}, "reason_required"),
    (State.FOLLOW_UP, Step.RECORD_DEATH, {"reason": ""}, "reason_required"),
]


@pytest.mark.parametrize(("state", "step", "change", "code"), GUARD_CASES)
def test_each_guard_refuses_with_its_reason(state, step, change, code) -> None:
    with pytest.raises(TransitionRefused) as refused:
        attempt(state, step, replace(_good_for(step), **change), RULES)
    assert refused.value.code == code
    french, english = render(refused.value.message, "fr"), render(refused.value.message, "en")
    assert english == str(refused.value)
    assert french != english and "{" not in french


def test_guard_boundaries_are_inclusive_on_the_day() -> None:
    on_day_28 = replace(ALL_GOOD, today=D0 + timedelta(days=28))
    assert attempt(State.ACUTE_MONITORING, Step.START_FOLLOW_UP, on_day_28, RULES) is State.FOLLOW_UP
    on_day_730 = replace(ALL_GOOD, today=D0 + timedelta(days=730))
    assert attempt(State.FOLLOW_UP, Step.START_LONG_TERM_FOLLOW_UP, on_day_730, RULES) is State.LONG_TERM_FOLLOW_UP
    for days_before in (5, 3):
        on_window_edge = replace(ALL_GOOD, today=D0 - timedelta(days=days_before))
        reached = attempt(State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, on_window_edge, RULES)
        assert reached is State.LYMPHODEPLETION


def test_the_protocol_file_sets_the_guards() -> None:
    """Changing a duration of the protocol changes the guard: nothing is a constant of the code."""
    day_20 = replace(ALL_GOOD, today=D0 + timedelta(days=20))
    with pytest.raises(TransitionRefused):
        attempt(State.ACUTE_MONITORING, Step.START_FOLLOW_UP, day_20, RULES)
    shorter = replace(RULES, acute_monitoring_days=14, lymphodepletion_window_days=(-7, -2))
    assert attempt(State.ACUTE_MONITORING, Step.START_FOLLOW_UP, day_20, shorter) is State.FOLLOW_UP
    six_days_before = replace(ALL_GOOD, today=D0 - timedelta(days=6))
    reached = attempt(State.PRODUCT_RECEIVED, Step.START_LYMPHODEPLETION, six_days_before, shorter)
    assert reached is State.LYMPHODEPLETION


def test_lymphodepletion_allowed_in_transit_with_confirmed_arrival() -> None:
    in_transit = replace(LD_DAY, product_received=False, product_arrival_confirmed_before_d0=True)
    assert attempt(State.PRODUCT_SHIPPED, Step.START_LYMPHODEPLETION, in_transit, RULES) is State.LYMPHODEPLETION


def test_manufacturing_failure_branches() -> None:
    assert attempt(State.MANUFACTURING_FAILED, Step.REMANUFACTURE, ALL_GOOD, RULES) is State.MANUFACTURING
    assert attempt(State.MANUFACTURING_FAILED, Step.REPEAT_APHERESIS, ALL_GOOD, RULES) is State.APHERESIS_SCHEDULED
    assert attempt(State.MANUFACTURING_FAILED, Step.WITHDRAW, ALL_GOOD, RULES) is State.WITHDRAWN


def test_unknown_state_and_step_are_refused() -> None:
    with pytest.raises(TransitionRefused) as refused:
        parse_state("teleported")
    assert refused.value.code == "unknown_state"
    assert "teleported" in str(refused.value)
    with pytest.raises(TransitionRefused) as refused:
        parse_step("beam_up")
    assert refused.value.code == "unknown_step"
    assert parse_step("infuse") is Step.INFUSE
    assert parse_state("infused") is State.INFUSED


def test_allowed_steps_depend_on_facts() -> None:
    nothing_known = Facts()
    assert allowed_steps(State.PRE_SCREENING, nothing_known, RULES) == [
        Step.FAIL_SCREENING,
        Step.WITHDRAW,
        Step.MARK_LOST_TO_FOLLOW_UP,
        Step.RECORD_DEATH,
    ]
    assert allowed_steps(State.PRE_SCREENING, ALL_GOOD, RULES)[0] is Step.START_SCREENING
    assert steps_from(State.COMPLETED) == []


# --- properties --------------------------------------------------------------------------

facts_strategy = st.builds(
    Facts,
    consent_signed=st.booleans(),
    consent_current=st.booleans(),
    eligibility_verdict=st.sampled_from([None, "eligible", "not_eligible", "incomplete"]),
    inclusion_signed=st.booleans(),
    apheresis_date=st.none() | st.just(date(2026, 1, 10)),
    material_received_at_lab=st.booleans(),
    qc_passed=st.booleans(),
    product_released=st.booleans(),
    product_received=st.booleans(),
    product_arrival_confirmed_before_d0=st.booleans(),
    identity_check_passed=st.booleans(),
    identity_check_people=st.integers(0, 3),
    minutes_since_thaw=st.none() | st.floats(0, 60),
    max_thaw_to_infusion_min=st.none() | st.just(30.0),
    oos_exception_documented=st.booleans(),
    infusion_date=st.none() | st.just(D0),
    planned_infusion_date=st.none() | st.just(D0),
    lymphodepletion_started_on=st.none() | st.dates(D0 - timedelta(days=7), D0),
    today=st.none() | st.dates(D0 - timedelta(days=7), D0 + timedelta(days=6000)),
    reason=st.sampled_from(["", "decision"]),
)

# A direct strategy: the main path up to infusion, in order, each step usually with facts under which
# its guard holds (sometimes arbitrary ones), with arbitrary moves in between. About a quarter of the
# sequences reach infusion (the test below proves the generator reaches it), the rest stop on a guard.
arbitrary_moves = st.lists(st.tuples(st.sampled_from(list(Step)), facts_strategy), max_size=3)
TO_INFUSION = [step for step, _ in HAPPY_PATH[: [s for s, _ in HAPPY_PATH].index(Step.INFUSE) + 1]]


def _usually_good(step: Step) -> st.SearchStrategy[Facts]:
    return st.integers(0, 9).flatmap(lambda draw: st.just(_good_for(step)) if draw else facts_strategy)


@st.composite
def moves_strategy(draw: st.DrawFn) -> list[tuple[Step, Facts]]:
    moves: list[tuple[Step, Facts]] = []
    for step in TO_INFUSION:
        moves += draw(arbitrary_moves)
        moves.append((step, draw(_usually_good(step))))
    return moves + draw(arbitrary_moves)


def _play(moves: list[tuple[Step, Facts]]) -> tuple[list[State], Facts | None]:
    """The states visited by trying each move in turn, and the facts of the infusion if reached."""
    state = State.PRE_SCREENING
    visited: list[State] = [state]
    for step, facts in moves:
        try:
            state = attempt(state, step, facts, RULES)
        except TransitionRefused:
            continue
        visited.append(state)
        if state is State.INFUSED:
            return visited, facts
    return visited, None


def test_the_move_generator_reaches_infusion() -> None:
    """The strategy below is not vacuous: it produces sequences that reach infusion."""
    found = find(moves_strategy(), lambda moves: _play(moves)[1] is not None, settings=settings(max_examples=5000))
    assert _play(found)[0][-1] is State.INFUSED


@settings(max_examples=400, deadline=None)
@given(moves_strategy())
def test_no_sequence_reaches_infusion_without_inclusion_release_receipt_and_lymphodepletion(moves) -> None:
    visited, infusion_facts = _play(moves)
    target(float(len(visited)), label="states visited")
    if infusion_facts is None:
        event("stopped before infusion")
        return
    event("reached infusion")
    for required in (State.INCLUDED, State.PRODUCT_RELEASED, State.LYMPHODEPLETION):
        assert required in visited
    assert State.PRODUCT_RECEIVED in visited or infusion_facts.product_received
    assert infusion_facts.identity_check_people >= 2 and infusion_facts.identity_check_passed


def _reachable(start: State, without: State) -> set[State]:
    seen, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for t in TRANSITIONS:
            if current in t.sources and t.target is not without and t.target not in seen:
                seen.add(t.target)
                frontier.append(t.target)
    return seen


@pytest.mark.parametrize(
    "required", [State.SCREENING, State.ELIGIBLE, State.INCLUDED, State.PRODUCT_RELEASED, State.LYMPHODEPLETION]
)
def test_infusion_unreachable_when_a_required_state_is_removed_from_the_graph(required: State) -> None:
    assert State.INFUSED in _reachable(State.PRE_SCREENING, without=State.COMPLETED)
    assert State.INFUSED not in _reachable(State.PRE_SCREENING, without=required)


def test_the_move_generator_stops_in_active_states_beyond_screening() -> None:
    """The exit property below asserts from active states: the moves stop in some beyond screening."""
    found = find(
        moves_strategy(),
        lambda moves: _play(moves)[0][-1] in ACTIVE_STATES - {State.PRE_SCREENING, State.SCREENING},
        settings=settings(max_examples=5000, database=None),
    )
    assert _play(found)[0][-1] in ACTIVE_STATES


@settings(max_examples=200, deadline=None)
@given(moves_strategy(), st.sampled_from([Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH]))
def test_exit_possible_from_every_active_state_and_final(moves, exit_step) -> None:
    visited, _ = _play(moves)
    state = visited[-1]
    event(f"exit from {state.value}")
    target(float(len(visited)), label="states visited before the exit")
    if state in ACTIVE_STATES:
        exited = attempt(state, exit_step, replace(Facts(), reason="patient's decision"), RULES)
        assert exited in FINAL_STATES
        for step in Step:
            with pytest.raises(TransitionRefused):
                attempt(exited, step, ALL_GOOD, RULES)


def test_withdrawal_from_every_active_state() -> None:
    for state in ACTIVE_STATES:
        assert attempt(state, Step.WITHDRAW, replace(Facts(), reason="x"), RULES) is State.WITHDRAWN


def test_thaw_limit_boundary_is_inclusive() -> None:
    """Exactly at the protocol's limit the product may still be infused; one second later it may not."""
    at_limit = replace(ALL_GOOD, minutes_since_thaw=30.0)
    assert attempt(State.LYMPHODEPLETION, Step.INFUSE, at_limit, RULES) is State.INFUSED
    with pytest.raises(TransitionRefused) as refused:
        attempt(State.LYMPHODEPLETION, Step.INFUSE, replace(ALL_GOOD, minutes_since_thaw=30.0 + 1 / 60), RULES)
    assert refused.value.code == "thaw_limit_exceeded" and "30 min" in render(refused.value.message, "fr")


def test_out_of_specification_release_needs_the_documented_exception() -> None:
    oos = replace(ALL_GOOD, qc_passed=False)
    with pytest.raises(TransitionRefused):
        attempt(State.MANUFACTURING, Step.RELEASE_PRODUCT, oos, RULES)
    assert (
        attempt(State.MANUFACTURING, Step.RELEASE_PRODUCT, replace(oos, oos_exception_documented=True), RULES)
        is State.PRODUCT_RELEASED
    )
