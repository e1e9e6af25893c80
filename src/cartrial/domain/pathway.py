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

from cartrial.domain.errors import DomainError


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

STATE_LABELS: dict[State, dict[str, str]] = {
    State.PRE_SCREENING: {"en": "Pre-screening", "fr": "Pré-screening"},
    State.SCREENING: {"en": "Screening", "fr": "Screening"},
    State.ELIGIBLE: {"en": "Eligible", "fr": "Éligible"},
    State.SCREEN_FAILED: {"en": "Screen failed", "fr": "Échec de screening"},
    State.INCLUDED: {"en": "Included", "fr": "Inclus"},
    State.APHERESIS_SCHEDULED: {"en": "Apheresis scheduled", "fr": "Aphérèse programmée"},
    State.APHERESIS_COLLECTED: {"en": "Apheresis collected", "fr": "Aphérèse réalisée"},
    State.MATERIAL_SHIPPED: {"en": "Material shipped to the lab", "fr": "Matériel expédié au laboratoire"},
    State.MANUFACTURING: {"en": "Manufacturing", "fr": "Fabrication"},
    State.PRODUCT_RELEASED: {"en": "Product released", "fr": "Produit libéré"},
    State.MANUFACTURING_FAILED: {"en": "Manufacturing failed", "fr": "Échec de fabrication"},
    State.PRODUCT_SHIPPED: {"en": "Product shipped to the center", "fr": "Produit expédié au centre"},
    State.PRODUCT_RECEIVED: {"en": "Product received at the center", "fr": "Produit reçu au centre"},
    State.LYMPHODEPLETION: {"en": "Lymphodepletion", "fr": "Lymphodéplétion"},
    State.INFUSED: {"en": "Infused (D0)", "fr": "Perfusé (J0)"},
    State.ACUTE_MONITORING: {"en": "Acute monitoring (D0–D28)", "fr": "Surveillance aiguë (J0–J28)"},
    State.FOLLOW_UP: {"en": "Follow-up (M1–M24)", "fr": "Suivi (M1–M24)"},
    State.LONG_TERM_FOLLOW_UP: {"en": "Long-term follow-up", "fr": "Suivi à long terme"},
    State.COMPLETED: {"en": "Completed", "fr": "Terminé"},
    State.WITHDRAWN: {"en": "Withdrawn", "fr": "Sorti d'étude"},
    State.LOST_TO_FOLLOW_UP: {"en": "Lost to follow-up", "fr": "Perdu de vue"},
    State.DECEASED: {"en": "Deceased", "fr": "Décédé"},
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


STEP_LABELS: dict[Step, dict[str, str]] = {
    Step.START_SCREENING: {"en": "Start screening (consent signed)", "fr": "Débuter le screening (consentement signé)"},
    Step.CONFIRM_ELIGIBILITY: {"en": "Confirm eligibility", "fr": "Confirmer l'éligibilité"},
    Step.FAIL_SCREENING: {"en": "Record screen failure", "fr": "Enregistrer l'échec de screening"},
    Step.INCLUDE: {"en": "Include (investigator signature)", "fr": "Inclure (signature de l'investigateur)"},
    Step.SCHEDULE_APHERESIS: {"en": "Schedule apheresis", "fr": "Programmer l'aphérèse"},
    Step.COLLECT_APHERESIS: {"en": "Record apheresis collection", "fr": "Enregistrer le recueil d'aphérèse"},
    Step.SHIP_MATERIAL: {"en": "Ship material to the lab", "fr": "Expédier le matériel au laboratoire"},
    Step.START_MANUFACTURING: {"en": "Start manufacturing", "fr": "Débuter la fabrication"},
    Step.RELEASE_PRODUCT: {"en": "Release product", "fr": "Libérer le produit"},
    Step.FAIL_MANUFACTURING: {"en": "Record manufacturing failure", "fr": "Enregistrer l'échec de fabrication"},
    Step.REMANUFACTURE: {"en": "Remanufacture", "fr": "Refabriquer"},
    Step.REPEAT_APHERESIS: {"en": "Repeat apheresis", "fr": "Nouvelle aphérèse"},
    Step.SHIP_PRODUCT: {"en": "Ship product to the center", "fr": "Expédier le produit au centre"},
    Step.RECEIVE_PRODUCT: {"en": "Receive product at the center", "fr": "Réceptionner le produit au centre"},
    Step.START_LYMPHODEPLETION: {"en": "Start lymphodepletion", "fr": "Débuter la lymphodéplétion"},
    Step.INFUSE: {"en": "Record infusion (D0)", "fr": "Enregistrer la perfusion (J0)"},
    Step.START_ACUTE_MONITORING: {"en": "Start acute monitoring", "fr": "Débuter la surveillance aiguë"},
    Step.START_FOLLOW_UP: {"en": "Start follow-up", "fr": "Débuter le suivi"},
    Step.START_LONG_TERM_FOLLOW_UP: {"en": "Start long-term follow-up", "fr": "Débuter le suivi à long terme"},
    Step.COMPLETE: {"en": "Complete the study", "fr": "Terminer l'étude"},
    Step.WITHDRAW: {"en": "Withdraw from the study", "fr": "Sortie d'étude"},
    Step.MARK_LOST_TO_FOLLOW_UP: {"en": "Mark lost to follow-up", "fr": "Déclarer perdu de vue"},
    Step.RECORD_DEATH: {"en": "Record death", "fr": "Déclarer le décès"},
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

# Decision (docs/screening.md): withdrawing consent EXITS the study. The withdrawal is recorded and the
# `withdraw` step is performed in the same transaction, so the subject becomes `withdrawn` (a final state)
# and no further step or data collection happens; data recorded before the withdrawal is kept (FDA 2008
# guidance on data retention; ICH E6). With False the subject would stay in its state, every non-exit
# step blocked by the `consent_withdrawn` guard (data collection stopped, the pathway frozen).
CONSENT_WITHDRAWAL_EXITS_STUDY = True

# Days after infusion before acute monitoring may end: the DLT window of the protocols in
# clinical.md §5.5 closes at day 28. The protocol file may override it.
ACUTE_MONITORING_DAYS = 28
# Months after infusion before the study follow-up may end and long-term follow-up start (M24).
FOLLOW_UP_MONTHS = 24
# Days per month used for the follow-up guard; a calendar month would make the guard depend
# on the infusion date's month length, which a protocol never intends.
DAYS_PER_MONTH = 30


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
    today: date | None = None
    reason: str = ""
    death_date: date | None = None
    consent_withdrawn: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class TransitionRefused(DomainError):
    """A step was refused; `code` names the guard, the message says why in the user's language."""

    code = "transition_refused"

    def __init__(self, code: str, step: Step | str, state: State, language: str = "en", **params: object) -> None:
        self.code = code
        self.step = step
        self.state = state
        self.params = params
        self.messages = {lang: _render(code, lang, step, state, params) for lang in ("en", "fr")}
        super().__init__(self.message_in(language), code=code)

    def message_in(self, language: str) -> str:
        """The refusal in `language` ("fr" or "en"), English if the language is unknown."""
        return self.messages.get(language, self.messages["en"])


def _render(code: str, language: str, step: Step | str, state: State, params: dict[str, object]) -> str:
    """Fill a refusal template, with state and step labels in the same language as the text."""
    values = dict(params)
    values.setdefault("state_label", state_label(state, language))
    if isinstance(step, Step):
        values.setdefault("step_label", step_label(step, language))
        values.setdefault(
            "expected",
            ", ".join(sorted(state_label(s, language) for s in TRANSITIONS_BY_STEP[step].sources)),
        )
    return REFUSALS[code][language].format(**values)


REFUSALS: dict[str, dict[str, str]] = {
    "unknown_step": {
        "en": "'{value}' is not a step of the pathway.",
        "fr": "« {value} » n'est pas une étape du parcours.",
    },
    "unknown_state": {
        "en": "'{value}' is not a state of the pathway.",
        "fr": "« {value} » n'est pas un état du parcours.",
    },
    "final_state": {
        "en": "The subject is {state_label}: the pathway has ended and no further step is possible.",
        "fr": "Le patient est au statut « {state_label} » : le parcours est terminé, aucune étape n'est possible.",
    },
    "wrong_state": {
        "en": "'{step_label}' is not possible while the subject is '{state_label}'; expected: {expected}.",
        "fr": "« {step_label} » n'est pas possible au statut « {state_label} » ; attendu : {expected}.",
    },
    "consent_missing": {
        "en": "No signed informed consent is recorded for this subject.",
        "fr": "Aucun consentement éclairé signé n'est enregistré pour ce patient.",
    },
    "consent_outdated": {
        "en": "The subject signed an older consent version: re-consent on the current version first.",
        "fr": "Le patient a signé une version antérieure du consentement : faire signer la version en vigueur d'abord.",
    },
    "consent_withdrawn": {
        "en": "The subject withdrew consent: only recording the exit from the study is possible.",
        "fr": "Le patient a retiré son consentement : seule la sortie d'étude peut être enregistrée.",
    },
    "eligibility_not_met": {
        "en": "The eligibility verdict is '{verdict}', not 'eligible': every criterion must be met.",
        "fr": "Le verdict d'éligibilité est « {verdict} » et non « éligible » : "
        "tous les critères doivent être remplis.",
    },
    "signature_missing": {
        "en": "Inclusion needs the investigator's electronic signature.",
        "fr": "L'inclusion nécessite la signature électronique de l'investigateur.",
    },
    "apheresis_date_missing": {
        "en": "Give the planned apheresis date.",
        "fr": "Indiquer la date prévue de l'aphérèse.",
    },
    "material_not_received": {
        "en": "The manufacturing lab has not confirmed receipt of the apheresis material.",
        "fr": "Le laboratoire de fabrication n'a pas confirmé la réception du matériel d'aphérèse.",
    },
    "qc_not_passed": {
        "en": "The product cannot be released: quality control has not passed "
        "(every release test must be recorded and conform, or an out-of-specification exception be signed).",
        "fr": "Le produit ne peut pas être libéré : le contrôle qualité n'est pas conforme "
        "(chaque test de libération doit être saisi et conforme, ou une dérogation hors spécification signée).",
    },
    "product_not_thawed": {
        "en": "Infusion refused: the thaw of the product is not recorded.",
        "fr": "Perfusion refusée : la décongélation du produit n'est pas enregistrée.",
    },
    "thaw_limit_exceeded": {
        "en": "Infusion refused: the product was thawed {minutes} min ago, beyond its limit of {limit} min "
        "from thaw to infusion.",
        "fr": "Perfusion refusée : le produit a été décongelé il y a {minutes} min, au-delà de sa limite de "
        "{limit} min entre décongélation et perfusion.",
    },
    "product_not_available": {
        "en": "Lymphodepletion cannot start: the released product is neither received at the center "
        "nor in transit with a confirmed arrival before day 0.",
        "fr": "La lymphodéplétion ne peut pas débuter : le produit libéré n'est ni reçu au centre, "
        "ni en transit avec une arrivée confirmée avant J0.",
    },
    "product_not_released": {
        "en": "Lymphodepletion cannot start: the product has not been released by the lab.",
        "fr": "La lymphodéplétion ne peut pas débuter : le produit n'a pas été libéré par le laboratoire.",
    },
    "product_not_received": {
        "en": "Infusion refused: the center pharmacy has not recorded receipt of the product.",
        "fr": "Perfusion refusée : la pharmacie du centre n'a pas enregistré la réception du produit.",
    },
    "identity_check_failed": {
        "en": "Infusion refused: the bedside identity check of the bag and the wristband has not passed.",
        "fr": "Perfusion refusée : le contrôle d'identité au lit du patient (poche et bracelet) n'est pas conforme.",
    },
    "identity_check_one_person": {
        "en": "Infusion refused: the bedside identity check needs two different qualified people.",
        "fr": "Perfusion refusée : le contrôle d'identité au lit du patient exige "
        "deux personnes qualifiées différentes.",
    },
    "too_early": {
        "en": "Too early: this step is possible from day {min_day} after infusion (today is day {day}).",
        "fr": "Trop tôt : cette étape est possible à partir de J{min_day} après la perfusion (aujourd'hui J{day}).",
    },
    "infusion_date_missing": {
        "en": "The infusion date is not recorded.",
        "fr": "La date de perfusion n'est pas enregistrée.",
    },
    "reason_required": {
        "en": "Give the reason for this step.",
        "fr": "Indiquer le motif de cette étape.",
    },
}


def state_label(state: State, language: str = "en") -> str:
    """The state as shown to a user."""
    labels = STATE_LABELS[state]
    return labels.get(language, labels["en"])


def step_label(step: Step, language: str = "en") -> str:
    """The step as shown to a user."""
    labels = STEP_LABELS[step]
    return labels.get(language, labels["en"])


def parse_state(value: str) -> State:
    """The state named by a stored or submitted code; refuses an unknown one."""
    try:
        return State(value)
    except ValueError:
        raise TransitionRefused("unknown_state", value, State.PRE_SCREENING, value=value) from None


def parse_step(value: str, state: State = State.PRE_SCREENING) -> Step:
    """The step named by a submitted code; refuses an unknown one."""
    try:
        return Step(value)
    except ValueError:
        raise TransitionRefused("unknown_step", value, state, value=value) from None


def _refuse(code: str, step: Step, state: State, **params: object) -> TransitionRefused:
    return TransitionRefused(code, step, state, "en", **params)


def _days_since_infusion(facts: Facts) -> int | None:
    if facts.infusion_date is None or facts.today is None:
        return None
    return (facts.today - facts.infusion_date).days


def _check_guard(step: Step, state: State, facts: Facts) -> None:
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
    if step in (Step.START_FOLLOW_UP, Step.START_LONG_TERM_FOLLOW_UP):
        day = _days_since_infusion(facts)
        if day is None:
            raise _refuse("infusion_date_missing", step, state)
        min_day = ACUTE_MONITORING_DAYS if step is Step.START_FOLLOW_UP else FOLLOW_UP_MONTHS * DAYS_PER_MONTH
        if day < min_day:
            raise _refuse("too_early", step, state, min_day=min_day, day=day)
    if step in (Step.FAIL_SCREENING, Step.FAIL_MANUFACTURING, *_EXIT_STEPS) and not facts.reason.strip():
        raise _refuse("reason_required", step, state)


def attempt(state: State, step: Step, facts: Facts, language: str = "en") -> State:
    """The state reached by performing `step` from `state`, or TransitionRefused saying why.

    The check order matters to the user: first whether the pathway allows the step at all,
    then the guards in the order a coordinator would fix them.
    """
    if state in FINAL_STATES:
        raise TransitionRefused("final_state", step, state, language)
    if state not in TRANSITIONS_BY_STEP[step].sources:
        raise TransitionRefused("wrong_state", step, state, language)
    try:
        _check_guard(step, state, facts)
    except TransitionRefused as refusal:
        refusal.message = refusal.message_in(language)
        raise
    return TRANSITIONS_BY_STEP[step].target


def steps_from(state: State) -> list[Step]:
    """Every step the pathway allows from `state`, whatever the facts; main step first."""
    steps = [t.step for t in TRANSITIONS if state in t.sources]
    main = MAIN_NEXT_STEP.get(state)
    if main in steps:
        steps.remove(main)
        steps.insert(0, main)
    return steps


def allowed_steps(state: State, facts: Facts) -> list[Step]:
    """The steps whose guards hold now (reason-requiring steps are offered: the form asks it)."""
    offered = []
    for step in steps_from(state):
        probe = facts if facts.reason else replace(facts, reason="(to be given)")
        try:
            attempt(state, step, probe)
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
