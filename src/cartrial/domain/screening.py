"""Screening data → facts → computed scores → the eligibility verdict (issue 3).

A coordinator enters what screening found: SLE findings (SLEDAI-2K descriptors, 2019 EULAR/ACR
criteria and the ANA titre), the treatment history, infection, prior CAR-T or gene therapy, the
organs involved, and the screening labs (creatinine with its unit, CD3+ count). This module turns
them into the flat facts the protocol's rules read (`KNOWN_SCREENING_ITEMS`), computing the scores
through the calculator registry (`sledai2k`, `eular-acr-2019`, `egfr`) exactly as the CLI and the
API do.

Missing data stays missing: an item that was not entered is None, and a score whose inputs are
not all present is *not computed*; the evaluation says which inputs it lacks, and the criteria that
need it are `missing`, never `not met`. A list (descriptors, criteria, treatments) counts as
entered only when given as a list, even an empty one ("none present"); `None` means "not assessed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from cartrial.domain.eligibility import (
    BIOLOGICS,
    EULAR_ACR_2019_CRITERIA,
    IMMUNOSUPPRESSANTS,
    KNOWN_SCREENING_ITEMS,
    ORGAN_DOMAINS,
    SLEDAI2K_DESCRIPTORS,
    Criterion,
    CriterionResult,
    EligibilityVerdict,
    Outcome,
    evaluate,
    facts_from_calculator,
    overall_verdict,
)
from cartrial.domain.errors import InvalidInput
from cartrial.domain.quantities import ANA_TITER
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.input_fields import (
    BooleanInput,
    ChoiceInput,
    ChoiceListInput,
    FieldErrors,
    InputField,
    IntegerInput,
    parse_input,
)
from cartrial.domain.scores.registry import CALCULATORS, calculate
from cartrial.domain.text import N_, Message, label, labels, message_data


@dataclass(frozen=True, kw_only=True)
class _Optional(InputField):
    """A screening item that may be left empty (null = not assessed yet); otherwise as `inner` says."""

    inner: InputField

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        return None if value is None else self.inner.parse(value, path, errors)

    def json_schema(self) -> dict[str, object]:
        return {"anyOf": [self.inner.json_schema(), {"type": "null"}], "description": self.description}


def _optional(inner: InputField) -> _Optional:
    return _Optional(description=inner.description, inner=inner, required=False, default=None)


# The screening data contract, shared by the page, the API and the service: one key per item.
SCREENING_FIELDS: Mapping[str, InputField] = MappingProxyType(
    {
        "sex": _optional(ChoiceInput(description=N_("sex used by CKD-EPI 2021"), choices=("female", "male"))),
        "ana_titer": _optional(
            IntegerInput(
                description=N_("highest ANA titre ever as its denominator (80 for 1:80, 0 if negative)"),
                # The plausible range of the catalogue of numeric inputs (domain/quantities.py).
                minimum=int(ANA_TITER.minimum),
                maximum=int(ANA_TITER.maximum),
            )
        ),
        "eular_acr_criteria": _optional(
            ChoiceListInput(description=N_("2019 EULAR/ACR criteria ever present"), choices=EULAR_ACR_2019_CRITERIA)
        ),
        "sledai2k_descriptors": _optional(
            ChoiceListInput(
                description=N_("SLEDAI-2K descriptors present over the look-back"), choices=SLEDAI2K_DESCRIPTORS
            )
        ),
        "sledai2k_lookback_days": IntegerInput(
            description=N_("SLEDAI-2K look-back, days"), choices=(10, 30), required=False, default=10
        ),
        "organ_involvement": _optional(
            ChoiceListInput(description=N_("organ domains with active lupus (BILAG-2004)"), choices=ORGAN_DOMAINS)
        ),
        "glucocorticoids_failed": _optional(BooleanInput(description=N_("inadequate response to glucocorticoids"))),
        "immunosuppressants_failed": _optional(
            ChoiceListInput(
                description=N_(
                    "immunosuppressants and biologics failed, each ≥ 3 months at adequate dose "
                    "(intolerance does not count)"
                ),
                choices=IMMUNOSUPPRESSANTS,
            )
        ),
        "infection_active": _optional(BooleanInput(description=N_("active infection at screening"))),
        "prior_cart": _optional(BooleanInput(description=N_("any CAR-T cell therapy before"))),
        "prior_gene_therapy": _optional(BooleanInput(description=N_("any gene therapy before"))),
    }
)


def screening_data_parse(payload: object) -> dict[str, object]:
    """The screening data as stored (JSON-ready): unknown keys, wrong types, unknown values refused.

    Raises CalculatorInputError with one entry per offending field (the API's 422 `fields`).
    """
    parsed = parse_input(payload, SCREENING_FIELDS)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in parsed.values.items()}


def age_in_completed_years(birth_date: date, on: date) -> int:
    """Completed years on `on` (a birthday counts on the day itself; 29 February counts on 1 March)."""
    if on < birth_date:
        raise ValueError("the date is before the birth date")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (1 if before_birthday else 0)


@dataclass(frozen=True)
class LabFact:
    """A screening lab value as read from the store (already validated with its unit)."""

    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None = None
    upper_limit: float | None = None
    sampled_on: date | None = None


@dataclass(frozen=True)
class ScoreOutcome:
    """One score of the screening: computed (with the calculator's JSON) or not, and why not."""

    calculator: str
    result: Mapping[str, object] | None
    missing_inputs: tuple[str, ...] = ()
    refused: Message | None = None

    @property
    def computed(self) -> bool:
        return self.result is not None

    def as_dict(self) -> dict[str, object]:
        """As stored: the refusal in English and as message data (shown again in any language)."""
        return {
            "calculator": self.calculator,
            "computed": self.computed,
            "result": dict(self.result) if self.result is not None else None,
            "missing_inputs": list(self.missing_inputs),
            "refused": str(self.refused) if self.refused is not None else "",
            "refused_message": message_data(self.refused) if self.refused is not None else None,
        }


@dataclass(frozen=True)
class ScreeningEvaluation:
    """The facts, the scores behind them and the verdict, as shown, stored and signed."""

    facts: Mapping[str, object]
    scores: tuple[ScoreOutcome, ...]
    verdict: EligibilityVerdict
    notes: tuple[Message, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        """The verdict (per criterion with values used) plus the facts and scores it came from."""
        return self.verdict.as_dict() | {
            "facts": {key: self.facts[key] for key in sorted(self.facts)},
            "scores": [score.as_dict() for score in self.scores],
            "notes": [str(note) for note in self.notes],
            "notes_messages": [message_data(note) for note in self.notes],
        }


def _score(calculator: str, inputs: Mapping[str, object]) -> ScoreOutcome:
    """Compute only when every input is present; otherwise say which are missing."""
    missing = tuple(key for key, value in inputs.items() if value is None)
    if missing:
        return ScoreOutcome(calculator, None, missing)
    try:
        return ScoreOutcome(calculator, calculate(calculator, dict(inputs)))
    except CalculatorInputError as error:
        # e.g. an age outside the equation's range: not computed, and the reason is kept.
        return ScoreOutcome(calculator, None, (), error.message)


# The screening item behind each calculator input, whose label says what is missing.
_INPUT_ITEMS: Mapping[str, str] = MappingProxyType(
    {
        "descriptors": "sledai2k_descriptors",
        "lookback_days": "sledai2k_lookback_days",
        "ana_titer": "ana_titer",
        "criteria": "eular_acr_criteria",
        "creatinine": "creatinine",
        "creatinine_unit": "creatinine_unit",
        "age_years": "age_years",
        "sex": "sex",
    }
)


def _not_computed(score: ScoreOutcome) -> Message:
    title = label(CALCULATORS[score.calculator].title)
    if score.missing_inputs:
        missing = labels([KNOWN_SCREENING_ITEMS[_INPUT_ITEMS[key]].label for key in score.missing_inputs])
        return Message(N_("{score} not computed: missing {inputs}"), {"score": title, "inputs": missing})
    return Message(N_("{score} not computed: {reason}"), {"score": title, "reason": score.refused})


def _attested(
    criteria: Sequence[Criterion], verdict: EligibilityVerdict, attestations: Mapping[str, str]
) -> EligibilityVerdict:
    """The investigator's answer for the criteria the protocol gives no rule; refused for any other."""
    by_id = {criterion.id: criterion for criterion in criteria}
    for criterion_id, answer in attestations.items():
        criterion = by_id.get(criterion_id)
        if criterion is None:
            raise InvalidInput("Unknown criterion: {criteria}", code="unknown_criterion", criteria=[criterion_id])
        if criterion.rule is not None:
            raise InvalidInput(
                "Criterion {criterion} is computed from the screening data and cannot be attested.",
                code="criterion_computed",
                criterion=criterion_id,
            )
        if answer not in {outcome.value for outcome in Outcome}:
            raise InvalidInput(
                "Criterion {criterion}: '{answer}' is not one of met, not_met, missing",
                code="invalid_answer",
                criterion=criterion_id,
                answer=answer,
            )
    results = tuple(
        CriterionResult(
            r.criterion_id,
            r.kind,
            Outcome(attestations[r.criterion_id]),
            {"attested": attestations[r.criterion_id]},
            Message(N_("Attested by the investigator.")),
        )
        if r.criterion_id in attestations
        else r
        for r in verdict.results
    )
    return EligibilityVerdict(overall_verdict(results), results)


def evaluate_screening(
    criteria: Sequence[Criterion],
    data: Mapping[str, object],
    labs: Mapping[str, LabFact],
    *,
    age_years: int | None,
    attestations: Mapping[str, str] | None = None,
) -> ScreeningEvaluation:
    """The verdict from stored screening data and the latest screening labs.

    `labs` maps an analyte code (`creatinine`, `cd3`) to its latest screening value; `age_years`
    is computed by the caller from the birth date at the date of consent (None if unknown).
    """
    immunosuppressants = data.get("immunosuppressants_failed")
    creatinine = labs.get("creatinine")
    cd3 = labs.get("cd3")
    facts: dict[str, object] = {
        "age_years": age_years,
        "sex": data.get("sex"),
        "ana_titer": data.get("ana_titer"),
        "eular_acr_criteria": data.get("eular_acr_criteria"),
        "sledai2k_descriptors": data.get("sledai2k_descriptors"),
        "sledai2k_lookback_days": data.get("sledai2k_lookback_days", 10),
        "organ_involvement": data.get("organ_involvement"),
        "history.glucocorticoids_failed": data.get("glucocorticoids_failed"),
        "history.immunosuppressants": immunosuppressants,
        "history.biologics": (
            [drug for drug in immunosuppressants if drug in BIOLOGICS] if isinstance(immunosuppressants, list) else None
        ),
        "infection_active": data.get("infection_active"),
        "prior_cart": data.get("prior_cart"),
        "prior_gene_therapy": data.get("prior_gene_therapy"),
        "creatinine": creatinine.value if creatinine else None,
        "creatinine_unit": creatinine.unit if creatinine else None,
        "cd3_per_ul": cd3.value if cd3 else None,
    }
    notes = []
    if creatinine is not None and creatinine.value is None:
        notes.append(Message(N_("Creatinine reported below the limit of quantification: eGFR not computed.")))
    if cd3 is not None and cd3.value is None:
        notes.append(Message(N_("CD3+ count reported below the limit of quantification: no value to compare.")))
    scores = (
        _score(
            "sledai2k", {"descriptors": facts["sledai2k_descriptors"], "lookback_days": facts["sledai2k_lookback_days"]}
        ),
        _score("eular-acr-2019", {"ana_titer": facts["ana_titer"], "criteria": facts["eular_acr_criteria"]}),
        _score(
            "egfr",
            {
                "creatinine": facts["creatinine"],
                "creatinine_unit": facts["creatinine_unit"],
                "age_years": float(age_years) if age_years is not None else None,
                "sex": facts["sex"],
            },
        ),
    )
    for score in scores:
        if score.result is not None:
            facts.update(facts_from_calculator(score.calculator, score.result))
        else:
            notes.append(_not_computed(score))
    present = {key: value for key, value in facts.items() if value is not None}
    verdict = _attested(criteria, evaluate(criteria, present), attestations or {})
    return ScreeningEvaluation(present, scores, verdict, tuple(notes))
