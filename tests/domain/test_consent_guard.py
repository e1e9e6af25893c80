"""The consent guard: while consent is outdated or withdrawn, only the steps that record an exit are possible."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cartrial.domain.pathway import (
    ACTIVE_STATES,
    CONSENT_EXEMPT_STEPS,
    TRANSITIONS,
    Facts,
    State,
    Step,
    TransitionRefused,
    allowed_steps,
    attempt,
)
from cartrial.locale import render
from cartrial.protocols import load_protocol

RULES = load_protocol().pathway_rules

D0 = date(2026, 3, 2)
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
    infusion_date=D0,
    today=D0 + timedelta(days=5500),
    planned_infusion_date=D0,
    lymphodepletion_started_on=D0 - timedelta(days=4),
    minutes_since_thaw=10.0,
    reason="patient's decision",
)
OUTDATED = replace(ALL_GOOD, consent_current=False)
WITHDRAWN = replace(ALL_GOOD, consent_withdrawn=True)

NON_EXIT = [(source, t.step) for t in TRANSITIONS for source in sorted(t.sources) if t.step not in CONSENT_EXEMPT_STEPS]
EXIT = [(source, t.step) for t in TRANSITIONS for source in sorted(t.sources) if t.step in CONSENT_EXEMPT_STEPS]


def test_the_exempt_steps_are_exactly_the_exits() -> None:
    assert {Step.FAIL_SCREENING, Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH} == CONSENT_EXEMPT_STEPS
    assert RULES.consent_withdrawal_exits_study is True


@pytest.mark.parametrize(("state", "step"), NON_EXIT, ids=lambda v: str(v))
def test_outdated_consent_blocks_every_non_exit_step(state: State, step: Step) -> None:
    with pytest.raises(TransitionRefused) as refused:
        attempt(state, step, OUTDATED, RULES)
    assert refused.value.code == "consent_outdated"
    assert "version" in str(refused.value)


@pytest.mark.parametrize(("state", "step"), NON_EXIT, ids=lambda v: str(v))
def test_withdrawn_consent_blocks_every_non_exit_step(state: State, step: Step) -> None:
    with pytest.raises(TransitionRefused) as refused:
        attempt(state, step, WITHDRAWN, RULES)
    assert refused.value.code == "consent_withdrawn"
    assert "consentement" in render(refused.value.message, "fr")


@pytest.mark.parametrize(("state", "step"), EXIT, ids=lambda v: str(v))
def test_exits_stay_possible_with_outdated_or_withdrawn_consent(state: State, step: Step) -> None:
    target = next(t.target for t in TRANSITIONS if t.step is step)
    assert attempt(state, step, OUTDATED, RULES) is target
    assert attempt(state, step, WITHDRAWN, RULES) is target


def test_re_consent_unblocks_the_next_step() -> None:
    assert attempt(State.INCLUDED, Step.SCHEDULE_APHERESIS, replace(OUTDATED, consent_current=True), RULES) is (
        State.APHERESIS_SCHEDULED
    )


def test_no_consent_yet_is_not_outdated_in_pre_screening() -> None:
    # A subject in pre-screening has signed nothing: the screen failure and exits stay possible.
    assert Step.FAIL_SCREENING in allowed_steps(State.PRE_SCREENING, Facts(), RULES)


@given(st.sampled_from(sorted(ACTIVE_STATES)), st.booleans(), st.booleans())
def test_allowed_steps_under_a_consent_problem_are_only_exits(state: State, outdated: bool, withdrawn: bool) -> None:
    facts = replace(ALL_GOOD, consent_current=not outdated, consent_withdrawn=withdrawn)
    offered = set(allowed_steps(state, facts, RULES))
    event("consent outdated or withdrawn" if outdated or withdrawn else "consent in order")
    if outdated or withdrawn:
        assert offered <= CONSENT_EXEMPT_STEPS
    assert {Step.WITHDRAW, Step.MARK_LOST_TO_FOLLOW_UP, Step.RECORD_DEATH} <= offered
