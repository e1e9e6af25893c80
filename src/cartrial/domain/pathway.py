"""The patient pathway of the trial: states, transitions and their guards (DESIGN §2).

A subject moves from pre-screening to long-term follow-up one step at a time. Each step is
allowed only from given states and only when its guard holds on the facts known about the
subject (consent, eligibility verdict, product status, bedside identity check...). A refused
step says which guard failed, in words a coordinator understands, in French and English.

Pure: the persistence layer gathers the facts, this module decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from cartrial.domain.errors import Refused
from cartrial.domain.text import N_, Message, label


class State(StrEnum):
    """Where a subject stands in the pathway; values are stable codes stored in the database."""

    PRE_SCREENING = "pre_screening"
    SCREENING = "screening"
    ELIGIBLE = "eligible"
    SCREEN_FAILED = "screen_failed"
    INCLUDED = "included"
    APHERESIS_SCHEDULED = "apheresis_scheduled"
    APHERESIS_COLLECTED = "apheresis_collected"
    MATERIAL_SHIPPED = "material_shipped"
    MANUFACTURING = "manufacturing"
    PRODUCT_RELEASED = "product_released"
    MANUFACTURING_FAILED = "manufacturing_failed"
    PRODUCT_SHIPPED = "product_shipped"
    PRODUCT_RECEIVED = "product_received"
    LYMPHODEPLETION = "lymphodepletion"
    INFUSED = "infused"
    ACUTE_MONITORING = "acute_monitoring"
    FOLLOW_UP = "follow_up"
    LONG_TERM_FOLLOW_UP = "long_term_follow_up"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    DECEASED = "deceased"


FINAL_STATES: frozenset[State] = frozenset(
    {State.SCREEN_FAILED, State.COMPLETED, State.WITHDRAWN, State.LOST_TO_FOLLOW_UP, State.DECEASED}
)
ACTIVE_STATES: frozenset[State] = frozenset(State) - FINAL_STATES

STATE_LABELS: dict[State, str] = {
    State.PRE_SCREENING: N_("Pre-screening"),
    State.SCREENING: N_("Screening"),
    State.ELIGIBLE: N_("Eligible"),
    State.SCREEN_FAILED: N_("Screen failed"),
    State.INCLUDED: N_("Included"),
    State.APHERESIS_SCHEDULED: N_("Apheresis scheduled"),
    State.APHERESIS_COLLECTED: N_("Apheresis collected"),
    State.MATERIAL_SHIPPED: N_("Material shipped to the lab"),
    State.MANUFACTURING: N_("Manufacturing"),
    State.PRODUCT_RELEASED: N_("Product released"),
    State.MANUFACTURING_FAILED: N_("Manufacturing failed"),
    State.PRODUCT_SHIPPED: N_("Product shipped to the center"),
    State.PRODUCT_RECEIVED: N_("Product received at the center"),
    State.LYMPHODEPLETION: N_("Lymphodepletion"),
    State.INFUSED: N_("Infused (D0)"),
    State.ACUTE_MONITORING: N_("Acute monitoring (D0–D28)"),
    State.FOLLOW_UP: N_("Follow-up (M1–M24)"),
    State.LONG_TERM_FOLLOW_UP: N_("Long-term follow-up"),
    State.COMPLETED: N_("Completed"),
    State.WITHDRAWN: N_("Withdrawn"),
    State.LOST_TO_FOLLOW_UP: N_("Lost to follow-up"),
    State.DECEASED: N_("Deceased"),
}


class Step(StrEnum):
    """A named transition, the verb a user performs; one service per step persists it."""

    START_SCREENING = "start_screening"
    CONFIRM_ELIGIBILITY = "confirm_eligibility"
    FAIL_SCREENING = "fail_screening"
    INCLUDE = "include"
    SCHEDULE_APHERESIS = "schedule_apheresis"
    COLLECT_APHERESIS = "collect_apheresis"
    SHIP_MATERIAL = "ship_material"
    START_MANUFACTURING = "start_manufacturing"
    RELEASE_PRODUCT = "release_product"
    FAIL_MANUFACTURING = "fail_manufacturing"
    REMANUFACTURE = "remanufacture"
    REPEAT_APHERESIS = "repeat_apheresis"
    SHIP_PRODUCT = "ship_product"
    RECEIVE_PRODUCT = "receive_product"
    START_LYMPHODEPLETION = "start_lymphodepletion"
    INFUSE = "infuse"
    START_ACUTE_MONITORING = "start_acute_monitoring"
    START_FOLLOW_UP = "start_follow_up"
    START_LONG_TERM_FOLLOW_UP = "start_long_term_follow_up"
    COMPLETE = "complete"
    WITHDRAW = "withdraw"
    MARK_LOST_TO_FOLLOW_UP = "mark_lost_to_follow_up"
    RECORD_DEATH = "record_death"


STEP_LABELS: dict[Step, str] = {
    Step.START_SCREENING: N_("Start screening (consent signed)"),
    Step.CONFIRM_ELIGIBILITY: N_("Confirm eligibility"),
    Step.FAIL_SCREENING: N_("Record screen failure"),
    Step.INCLUDE: N_("Include (investigator signature)"),
    Step.SCHEDULE_APHERESIS: N_("Schedule apheresis"),
    Step.COLLECT_APHERESIS: N_("Record apheresis collection"),
    Step.SHIP_MATERIAL: N_("Ship material to the lab"),
    Step.START_MANUFACTURING: N_("Start manufacturing"),
    Step.RELEASE_PRODUCT: N_("Release product"),
    Step.FAIL_MANUFACTURING: N_("Record manufacturing failure"),
    Step.REMANUFACTURE: N_("Remanufacture"),
    Step.REPEAT_APHERESIS: N_("Repeat apheresis"),
    Step.SHIP_PRODUCT: N_("Ship product to the center"),
    Step.RECEIVE_PRODUCT: N_("Receive product at the center"),
    Step.START_LYMPHODEPLETION: N_("Start lymphodepletion"),
    Step.INFUSE: N_("Record infusion (D0)"),
    Step.START_ACUTE_MONITORING: N_("Start acute monitoring"),
    Step.START_FOLLOW_UP: N_("Start follow-up"),
    Step.START_LONG_TERM_FOLLOW_UP: N_("Start long-term follow-up"),
    Step.COMPLETE: N_("Complete the study"),
    Step.WITHDRAW: N_("Withdraw from the study"),
    Step.MARK_LOST_TO_FOLLOW_UP: N_("Mark lost to follow-up"),
    Step.RECORD_DEATH: N_("Record death"),
}


@dataclass(frozen=True)
class Transition:
    """One allowed move: a step leads from any of `sources` to `target`."""

    step: Step
    sources: frozenset[State]
    target: State


_EXIT_STEPS: dict[Step, State] = {
    Step.WITHDRAW: State.WITHDRAWN,
    Step.MARK_LOST_TO_FOLLOW_UP: State.LOST_TO_FOLLOW_UP,
    Step.RECORD_DEATH: State.DECEASED,
}


def _t(step: Step, sources: Iterable[State], target: State) -> Transition:
    return Transition(step=step, sources=frozenset(sources), target=target)


TRANSITIONS: tuple[Transition, ...] = (
    _t(Step.START_SCREENING, [State.PRE_SCREENING], State.SCREENING),
    _t(Step.CONFIRM_ELIGIBILITY, [State.SCREENING], State.ELIGIBLE),
    _t(Step.FAIL_SCREENING, [State.PRE_SCREENING, State.SCREENING, State.ELIGIBLE], State.SCREEN_FAILED),
    _t(Step.INCLUDE, [State.ELIGIBLE], State.INCLUDED),
    _t(Step.SCHEDULE_APHERESIS, [State.INCLUDED], State.APHERESIS_SCHEDULED),
    _t(Step.COLLECT_APHERESIS, [State.APHERESIS_SCHEDULED], State.APHERESIS_COLLECTED),
    _t(Step.SHIP_MATERIAL, [State.APHERESIS_COLLECTED], State.MATERIAL_SHIPPED),
    _t(Step.START_MANUFACTURING, [State.MATERIAL_SHIPPED], State.MANUFACTURING),
    _t(Step.RELEASE_PRODUCT, [State.MANUFACTURING], State.PRODUCT_RELEASED),
    _t(Step.FAIL_MANUFACTURING, [State.MANUFACTURING], State.MANUFACTURING_FAILED),
    _t(Step.REMANUFACTURE, [State.MANUFACTURING_FAILED], State.MANUFACTURING),
    _t(Step.REPEAT_APHERESIS, [State.MANUFACTURING_FAILED], State.APHERESIS_SCHEDULED),
    _t(Step.SHIP_PRODUCT, [State.PRODUCT_RELEASED], State.PRODUCT_SHIPPED),
    _t(Step.RECEIVE_PRODUCT, [State.PRODUCT_SHIPPED], State.PRODUCT_RECEIVED),
    _t(Step.START_LYMPHODEPLETION, [State.PRODUCT_RECEIVED, State.PRODUCT_SHIPPED], State.LYMPHODEPLETION),
    _t(Step.INFUSE, [State.LYMPHODEPLETION], State.INFUSED),
    _t(Step.START_ACUTE_MONITORING, [State.INFUSED], State.ACUTE_MONITORING),
    _t(Step.START_FOLLOW_UP, [State.ACUTE_MONITORING], State.FOLLOW_UP),
    _t(Step.START_LONG_TERM_FOLLOW_UP, [State.FOLLOW_UP], State.LONG_TERM_FOLLOW_UP),
    _t(Step.COMPLETE, [State.FOLLOW_UP, State.LONG_TERM_FOLLOW_UP], State.COMPLETED),
    *(_t(step, ACTIVE_STATES, target) for step, target in _EXIT_STEPS.items()),
)

TRANSITIONS_BY_STEP: dict[Step, Transition] = {t.step: t for t in TRANSITIONS}

# The step a coordinator should be prompted for in each active state (the "next step" column).
MAIN_NEXT_STEP: dict[State, Step] = {
    State.PRE_SCREENING: Step.START_SCREENING,
    State.SCREENING: Step.CONFIRM_ELIGIBILITY,
    State.ELIGIBLE: Step.INCLUDE,
    State.INCLUDED: Step.SCHEDULE_APHERESIS,
    State.APHERESIS_SCHEDULED: Step.COLLECT_APHERESIS,
    State.APHERESIS_COLLECTED: Step.SHIP_MATERIAL,
    State.MATERIAL_SHIPPED: Step.START_MANUFACTURING,
    State.MANUFACTURING: Step.RELEASE_PRODUCT,
    State.MANUFACTURING_FAILED: Step.REMANUFACTURE,
    State.PRODUCT_RELEASED: Step.SHIP_PRODUCT,
    State.PRODUCT_SHIPPED: Step.RECEIVE_PRODUCT,
    State.PRODUCT_RECEIVED: Step.START_LYMPHODEPLETION,
    State.LYMPHODEPLETION: Step.INFUSE,
    State.INFUSED: Step.START_ACUTE_MONITORING,
    State.ACUTE_MONITORING: Step.START_FOLLOW_UP,
    State.FOLLOW_UP: Step.START_LONG_TERM_FOLLOW_UP,
    State.LONG_TERM_FOLLOW_UP: Step.COMPLETE,
}

# Steps still possible while consent is outdated or withdrawn: they record that the subject leaves
# (screen failure, withdrawal, loss to follow-up, death). Every other step waits for re-consent.
CONSENT_EXEMPT_STEPS: frozenset[Step] = frozenset({Step.FAIL_SCREENING, *_EXIT_STEPS})


@dataclass(frozen=True)
class PathwayRules:
    """The protocol's durations and windows that the guards read (`pathway:` in the protocol file).

    Day counts are from infusion (D0). They come from the protocol in force, never from constants
    here, so an amendment that changes a window changes the guard.
    """

    # Acute monitoring may end (follow-up start) from this day: the DLT window (clinical.md §5.5).
    acute_monitoring_days: int
    # In-study follow-up may end (long-term follow-up start, or completion) from this day (M24 = 730).
    follow_up_days: int
    # Long-term follow-up may end (completion) from this day (15 years after an integrating vector).
    long_term_follow_up_days: int
    # Lymphodepletion starts this many days before D0, inclusive: (-5, -3) is D-5 to D-3.
    lymphodepletion_window_days: tuple[int, int]
    # Withdrawing consent exits the study (True) or freezes the pathway until an exit is recorded.
    consent_withdrawal_exits_study: bool
    # A planned date (apheresis, D0) at most this many days ahead of today: beyond, a typing error.
    planning_horizon_days: int = 180
    # CRS and ICANS are assessed every day from D0 to this day, and after it while an episode lasts.
    toxicity_assessment_days: int = 14


@dataclass(frozen=True)
class Facts:
    """What is known about one subject when a step is attempted; gathered by the persistence layer.

    Each field feeds one guard. Defaults are the facts of a subject nobody has done anything for.
    """

    consent_signed: bool = False
    consent_current: bool = False
    eligibility_verdict: str | None = None  # "eligible", "not_eligible", "incomplete" or None
    inclusion_signed: bool = False
    apheresis_date: date | None = None
    material_received_at_lab: bool = False
    qc_passed: bool = False
    # A signed request to infuse an out-of-specification product (documented exception), which
    # lets the qualified person release a batch whose QC did not pass (logistics.md §4.3 branches).
    oos_exception_documented: bool = False
    product_released: bool = False
    product_received: bool = False
    product_arrival_confirmed_before_d0: bool = False
    identity_check_passed: bool = False
    identity_check_people: int = 0
    # Minutes from the thaw of the product to now (None: not thawed) and the product's limit
    # from the protocol (`max_thaw_to_infusion_min`); infusion past the limit is refused.
    minutes_since_thaw: float | None = None
    max_thaw_to_infusion_min: float | None = None
    infusion_date: date | None = None
    # D0 as planned when lymphodepletion starts, and the day lymphodepletion started (center dates).
    planned_infusion_date: date | None = None
    lymphodepletion_started_on: date | None = None
    today: date | None = None
    reason: str = ""
    death_date: date | None = None
    consent_withdrawn: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class TransitionRefused(Refused):
    """A step was refused; `code` names the guard, the message (a msgid of REFUSALS) says why.

    Raised with keywords (`code=...`): its first argument is a code, not a msgid to extract.
    """

    code = "transition_refused"

    def __init__(self, code: str, step: Step | str, state: State, **params: object) -> None:
        # Any: the refusal's own parameters, never `code` or `item` (which DomainError takes apart).
        values: dict[str, Any] = {"state_label": label(STATE_LABELS[state])}
        if isinstance(step, Step):
            values["step_label"] = label(STEP_LABELS[step])
            values["expected"] = sorted_labels(STATE_LABELS[s] for s in TRANSITIONS_BY_STEP[step].sources)
        values.update(params)
        super().__init__(REFUSALS[code], code=code, **values)
        self.step = step
        self.state = state


def sorted_labels(msgids: Iterable[str]) -> list[Message]:
    """Labels in a stable order (the order of the msgids), rendered in the reader's language."""
    return [label(m) for m in sorted(msgids)]


REFUSALS: dict[str, str] = {
    "unknown_step": N_("'{value}' is not a step of the pathway."),
    "unknown_state": N_("'{value}' is not a state of the pathway."),
    "final_state": N_("The subject is {state_label}: the pathway has ended and no further step is possible."),
    "wrong_state": N_("'{step_label}' is not possible while the subject is '{state_label}'; expected: {expected}."),
    "consent_missing": N_("No signed informed consent is recorded for this subject."),
    "consent_outdated": N_("The subject signed an older consent version: re-consent on the current version first."),
    "consent_withdrawn": N_("The subject withdrew consent: only recording the exit from the study is possible."),
    "eligibility_not_met": N_("The eligibility verdict is '{verdict}', not 'eligible': every criterion must be met."),
    "signature_missing": N_("Inclusion needs the investigator's electronic signature."),
    "apheresis_date_missing": N_("Give the planned apheresis date."),
    "material_not_received": N_("The manufacturing lab has not confirmed receipt of the apheresis material."),
    "qc_not_passed": N_(
        "The product cannot be released: quality control has not passed (every release test must be recorded "
        "and conform, or an out-of-specification exception be signed)."
    ),
    "product_not_thawed": N_("Infusion refused: the thaw of the product is not recorded."),
    "thaw_limit_exceeded": N_(
        "Infusion refused: the product was thawed {minutes} min ago, beyond its limit of {limit} min "
        "from thaw to infusion."
    ),
    "product_not_available": N_(
        "Lymphodepletion cannot start: the released product is neither received at the center nor in transit "
        "with a confirmed arrival before day 0."
    ),
    "product_not_released": N_("Lymphodepletion cannot start: the product has not been released by the lab."),
    "product_not_received": N_("Infusion refused: the center pharmacy has not recorded receipt of the product."),
    "identity_check_failed": N_(
        "Infusion refused: the bedside identity check of the bag and the wristband has not passed."
    ),
    "identity_check_one_person": N_(
        "Infusion refused: the bedside identity check needs two different qualified people."
    ),
    "too_early": N_("Too early: this step is possible from day {min_day} after infusion (today is day {day})."),
    "infusion_date_missing": N_("The infusion date is not recorded."),
    "reason_required": N_("Give the reason for this step."),
    "lymphodepletion_date_missing": N_("The start of lymphodepletion is not recorded."),
    "lymphodepletion_window": N_(
        "Lymphodepletion starts between D{low} and D{high} before the infusion: "
        "started on {started_on} with D0 on {infusion_on} is D{offset}."
    ),
}


def state_label(state: State) -> str:
    """The state's label (a msgid: adapters translate it)."""
    return STATE_LABELS[state]


def step_label(step: Step) -> str:
    """The step's label (a msgid: adapters translate it)."""
    return STEP_LABELS[step]


def parse_state(value: str) -> State:
    """The state named by a stored or submitted code; refuses an unknown one."""
    try:
        return State(value)
    except ValueError:
        raise TransitionRefused(code="unknown_state", step=value, state=State.PRE_SCREENING, value=value) from None


def parse_step(value: str, state: State = State.PRE_SCREENING) -> Step:
    """The step named by a submitted code; refuses an unknown one."""
    try:
        return Step(value)
    except ValueError:
        raise TransitionRefused(code="unknown_step", step=value, state=state, value=value) from None


def _refuse(code: str, step: Step, state: State, **params: object) -> TransitionRefused:
    return TransitionRefused(code, step, state, **params)


def _days_since_infusion(facts: Facts) -> int | None:
    if facts.infusion_date is None or facts.today is None:
        return None
    return (facts.today - facts.infusion_date).days


def _check_guard(step: Step, state: State, facts: Facts, rules: PathwayRules) -> None:
    """Raise the refusal of the first guard of `step` that fails on `facts`."""
    if step in (Step.START_SCREENING, Step.INCLUDE):
        if not facts.consent_signed:
            raise _refuse("consent_missing", step, state)
        if not facts.consent_current:
            raise _refuse("consent_outdated", step, state)
    if step not in CONSENT_EXEMPT_STEPS:
        # Nothing more is done for a subject whose consent is withdrawn or outdated, except recording that they leave.
        if facts.consent_withdrawn:
            raise _refuse("consent_withdrawn", step, state)
        if facts.consent_signed and not facts.consent_current:
            raise _refuse("consent_outdated", step, state)
    if step in (Step.CONFIRM_ELIGIBILITY, Step.INCLUDE) and facts.eligibility_verdict != "eligible":
        raise _refuse("eligibility_not_met", step, state, verdict=facts.eligibility_verdict or "—")
    if step is Step.INCLUDE and not facts.inclusion_signed:
        raise _refuse("signature_missing", step, state)
    if step in (Step.SCHEDULE_APHERESIS, Step.REPEAT_APHERESIS) and facts.apheresis_date is None:
        raise _refuse("apheresis_date_missing", step, state)
    if step is Step.START_MANUFACTURING and not facts.material_received_at_lab:
        raise _refuse("material_not_received", step, state)
    if step is Step.RELEASE_PRODUCT and not (facts.qc_passed or facts.oos_exception_documented):
        raise _refuse("qc_not_passed", step, state)
    if step is Step.START_LYMPHODEPLETION:
        if not facts.product_released:
            raise _refuse("product_not_released", step, state)
        if not (facts.product_received or facts.product_arrival_confirmed_before_d0):
            raise _refuse("product_not_available", step, state)
        lymphodepletion_window_check(step, state, facts.today, facts.planned_infusion_date, rules)
    if step is Step.INFUSE:
        if not facts.product_received:
            raise _refuse("product_not_received", step, state)
        if facts.minutes_since_thaw is None:
            raise _refuse("product_not_thawed", step, state)
        limit = facts.max_thaw_to_infusion_min
        if limit is not None and facts.minutes_since_thaw > limit:
            minutes = round(facts.minutes_since_thaw)
            raise _refuse("thaw_limit_exceeded", step, state, minutes=minutes, limit=round(limit))
        if facts.identity_check_people < 2:
            raise _refuse("identity_check_one_person", step, state)
        if not facts.identity_check_passed:
            raise _refuse("identity_check_failed", step, state)
        lymphodepletion_window_check(step, state, facts.lymphodepletion_started_on, facts.infusion_date, rules)
    minimum_day = _minimum_day(step, state, rules)
    if minimum_day is not None:
        day = _days_since_infusion(facts)
        if day is None:
            raise _refuse("infusion_date_missing", step, state)
        if day < minimum_day:
            raise _refuse("too_early", step, state, min_day=minimum_day, day=day)
    if step in (Step.FAIL_SCREENING, Step.FAIL_MANUFACTURING, *_EXIT_STEPS) and not facts.reason.strip():
        raise _refuse("reason_required", step, state)


def _minimum_day(step: Step, state: State, rules: PathwayRules) -> int | None:
    """The first day after infusion on which `step` may be taken from `state` (None: no such rule)."""
    if step is Step.START_FOLLOW_UP:
        return rules.acute_monitoring_days
    if step is Step.START_LONG_TERM_FOLLOW_UP:
        return rules.follow_up_days
    if step is Step.COMPLETE:
        return rules.long_term_follow_up_days if state is State.LONG_TERM_FOLLOW_UP else rules.follow_up_days
    return None


def lymphodepletion_window_check(
    step: Step, state: State, started_on: date | None, infusion_on: date | None, rules: PathwayRules
) -> None:
    """Lymphodepletion starts within the protocol's window before D0 (e.g. D-5 to D-3): checked when
    the step is taken, and when D0 or the start is corrected afterwards."""
    if infusion_on is None:
        raise _refuse("infusion_date_missing", step, state)
    if started_on is None:
        raise _refuse("lymphodepletion_date_missing", step, state)
    low, high = rules.lymphodepletion_window_days
    offset = (started_on - infusion_on).days
    if not low <= offset <= high:
        raise _refuse(
            "lymphodepletion_window",
            step,
            state,
            low=low,
            high=high,
            offset=offset,
            infusion_on=infusion_on,
            started_on=started_on,
        )


def attempt(state: State, step: Step, facts: Facts, rules: PathwayRules) -> State:
    """The state reached by performing `step` from `state`, or TransitionRefused saying why.

    The check order matters to the user: first whether the pathway allows the step at all,
    then the guards in the order a coordinator would fix them.
    """
    if state in FINAL_STATES:
        raise TransitionRefused(code="final_state", step=step, state=state)
    if state not in TRANSITIONS_BY_STEP[step].sources:
        raise TransitionRefused(code="wrong_state", step=step, state=state)
    _check_guard(step, state, facts, rules)
    return TRANSITIONS_BY_STEP[step].target


def steps_from(state: State) -> list[Step]:
    """Every step the pathway allows from `state`, whatever the facts; main step first."""
    steps = [t.step for t in TRANSITIONS if state in t.sources]
    main = MAIN_NEXT_STEP.get(state)
    if main in steps:
        steps.remove(main)
        steps.insert(0, main)
    return steps


def allowed_steps(state: State, facts: Facts, rules: PathwayRules) -> list[Step]:
    """The steps whose guards hold now (reason-requiring steps are offered: the form asks it)."""
    offered = []
    for step in steps_from(state):
        probe = facts if facts.reason else replace(facts, reason="(to be given)")
        try:
            attempt(state, step, probe, rules)
        except TransitionRefused:
            continue
        offered.append(step)
    return offered


def next_step(state: State) -> Step | None:
    """The main step expected next, or None when the pathway has ended."""
    return MAIN_NEXT_STEP.get(state)


def is_final(state: State) -> bool:
    """True when no step can follow (screen failed, completed, withdrawn, lost, deceased)."""
    return state in FINAL_STATES
