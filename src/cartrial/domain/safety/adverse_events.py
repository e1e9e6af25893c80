"""An adverse event's coded answers (ICH E2A seriousness, relatedness, action, outcome) and the rules
a recorded AE must meet before anything is stored: each refusal names the item and the rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from cartrial.domain.errors import InvalidInput
from cartrial.domain.safety.terms import AesiCategory, CtcaeTerm, term_get
from cartrial.domain.text import N_


class Seriousness(StrEnum):
    """ICH E2A criteria that make an AE serious."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    IMPORTANT_MEDICAL_EVENT = "important_medical_event"


SERIOUSNESS_LABELS: MappingProxyType[Seriousness, str] = MappingProxyType(
    {
        Seriousness.DEATH: N_("Results in death"),
        Seriousness.LIFE_THREATENING: N_("Life-threatening"),
        Seriousness.HOSPITALISATION: N_("Requires or prolongs hospitalisation"),
        Seriousness.DISABILITY: N_("Persistent or significant disability/incapacity"),
        Seriousness.CONGENITAL_ANOMALY: N_("Congenital anomaly/birth defect"),
        Seriousness.IMPORTANT_MEDICAL_EVENT: N_("Important medical event"),
    }
)


class Relatedness(StrEnum):
    """Causality to a product, in increasing order; `possible` and above count as related."""

    NOT_RELATED = "not_related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"

    @property
    def rank(self) -> int:
        return list(Relatedness).index(self)

    @property
    def related(self) -> bool:
        return self.rank >= Relatedness.POSSIBLE.rank


RELATEDNESS_LABELS: MappingProxyType[Relatedness, str] = MappingProxyType(
    {
        Relatedness.NOT_RELATED: N_("Not related"),
        Relatedness.UNLIKELY: N_("Unlikely"),
        Relatedness.POSSIBLE: N_("Possible"),
        Relatedness.PROBABLE: N_("Probable"),
        Relatedness.DEFINITE: N_("Definite"),
    }
)


class ActionTaken(StrEnum):
    """What was done about the AE (the product is given once: no dose change after D0)."""

    NONE = "none"
    TREATMENT = "treatment"
    HOSPITALISATION = "hospitalisation"
    INFUSION_INTERRUPTED = "infusion_interrupted"
    INFUSION_NOT_GIVEN = "infusion_not_given"
    NOT_APPLICABLE = "not_applicable"


ACTION_LABELS: MappingProxyType[ActionTaken, str] = MappingProxyType(
    {
        ActionTaken.NONE: N_("None"),
        ActionTaken.TREATMENT: N_("Treatment given"),
        ActionTaken.HOSPITALISATION: N_("Hospitalisation"),
        ActionTaken.INFUSION_INTERRUPTED: N_("Infusion interrupted"),
        ActionTaken.INFUSION_NOT_GIVEN: N_("Infusion not given"),
        ActionTaken.NOT_APPLICABLE: N_("Not applicable"),
    }
)


class Outcome(StrEnum):
    """The AE's outcome; recovered, recovered with sequelae and fatal are final."""

    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        return self in FINAL_OUTCOMES


FINAL_OUTCOMES = frozenset({Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE, Outcome.FATAL})

OUTCOME_LABELS: MappingProxyType[Outcome, str] = MappingProxyType(
    {
        Outcome.RECOVERED: N_("Recovered/resolved"),
        Outcome.RECOVERING: N_("Recovering/resolving"),
        Outcome.NOT_RECOVERED: N_("Not recovered/not resolved"),
        Outcome.RECOVERED_WITH_SEQUELAE: N_("Recovered with sequelae"),
        Outcome.FATAL: N_("Fatal"),
        Outcome.UNKNOWN: N_("Unknown"),
    }
)


@dataclass(frozen=True)
class AdverseEventData:
    """An AE as entered (before it is stored); the domain checks it whole."""

    term: str
    grade: int
    start_date: date
    end_date: date | None
    serious: bool
    seriousness_criteria: frozenset[Seriousness]
    awareness_at: datetime | None
    outcome: Outcome
    action: ActionTaken
    relatedness_cart: Relatedness | None = None
    relatedness_ld: Relatedness | None = None


def choice(enum: type[StrEnum], value: object, item: str) -> StrEnum:
    """`value` as a code of `enum`, or InvalidInput naming the item and the codes allowed."""
    try:
        return enum(str(value))
    except ValueError:
        raise InvalidInput(
            "{item}: '{value}' is not one of {allowed}.",
            code="item_choice",
            item=item,
            value=value,
            allowed=[member.value for member in enum],
        ) from None


def adverse_event_check(data: AdverseEventData, *, consent_date: date | None, today: date) -> CtcaeTerm:
    """Refuse an AE that cannot be right, naming the item and the rule; returns its term.

    The order is the order of the form: term, grade, dates, seriousness, outcome.
    """
    term = term_get(data.term)
    if data.grade not in term.grades:
        raise InvalidInput(
            "grade: {grade} is not a grade of “{term}”; CTCAE allows {allowed}.",
            code="grade_not_allowed",
            item="grade",
            grade=data.grade,
            term=term.label["en"],
            allowed=list(term.grades),
        )
    if consent_date is None or data.start_date < consent_date:
        raise InvalidInput(
            "start_date: an adverse event is recorded from the consent on ({consent}); it cannot start on {start}.",
            code="start_before_consent",
            item="start_date",
            consent=consent_date.isoformat() if consent_date else "—",
            start=data.start_date.isoformat(),
        )
    if data.start_date > today:
        raise InvalidInput(
            "{item}: {value} is in the future.",
            code="date_in_future",
            item="start_date",
            value=data.start_date.isoformat(),
        )
    if data.end_date is not None:
        if data.end_date < data.start_date:
            raise InvalidInput(
                "end_date: the end ({end}) cannot be before the start ({start}).",
                code="end_before_start",
                item="end_date",
                end=data.end_date.isoformat(),
                start=data.start_date.isoformat(),
            )
        if data.end_date > today:
            raise InvalidInput(
                "{item}: {value} is in the future.",
                code="date_in_future",
                item="end_date",
                value=data.end_date.isoformat(),
            )
    if data.serious and not data.seriousness_criteria:
        raise InvalidInput(
            "seriousness_criteria: a serious adverse event needs at least one ICH E2A criterion.",
            code="serious_without_criterion",
            item="seriousness_criteria",
        )
    if not data.serious and data.seriousness_criteria:
        raise InvalidInput(
            "seriousness_criteria: criteria are given but the event is not marked serious.",
            code="criteria_without_serious",
            item="seriousness_criteria",
        )
    if data.serious:
        if data.awareness_at is None:
            raise InvalidInput(
                "awareness_at: a serious adverse event needs the time the site became aware of it "
                "(it starts the reporting clock).",
                code="awareness_missing",
                item="awareness_at",
            )
        if data.awareness_at.date() < data.start_date:
            raise InvalidInput(
                "awareness_at: the site cannot become aware of the event ({awareness}) before it started ({start}).",
                code="awareness_before_start",
                item="awareness_at",
                awareness=data.awareness_at.date().isoformat(),
                start=data.start_date.isoformat(),
            )
    if (data.grade == 5) != (data.outcome is Outcome.FATAL):
        raise InvalidInput(
            "outcome: grade 5 means death related to the event: grade 5 and the outcome “fatal” go together.",
            code="grade5_outcome",
            item="outcome",
        )
    if data.outcome in (Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE, Outcome.FATAL) and data.end_date is None:
        raise InvalidInput(
            "end_date: the outcome “{outcome}” is final: give the date the event ended.",
            code="end_date_missing",
            item="end_date",
            outcome=data.outcome.value,
        )
    return term


def aesi_of(term: CtcaeTerm) -> AesiCategory | None:
    """The AE-of-special-interest category of a term (from the term list, never typed)."""
    return term.aesi
