"""Eligibility verdicts: one answer per protocol criterion, and the overall verdict.

Each criterion is met, not met, or missing data; the overall verdict is `eligible` only when
every inclusion criterion is met and no exclusion criterion applies, `not_eligible` as soon as
one fails, otherwise `incomplete`. Exclusion criteria are phrased as the condition that
excludes (e.g. "active infection"), so for them `met` means the patient is excluded... to
avoid that double negation every criterion here is stored as "satisfied for the trial":
`met` always means "this criterion does not stand in the way".

A criterion may carry a `rule` in the protocol's declarative rule language (`domain/rules.py`,
shared with the eCRF's conditional items and edit checks), so the screening data decides it
instead of an attestation: `{item: age_years, between: [18, 65]}`.

Item names are dotted names over a flat mapping of facts: screening data (`age_years`,
`history.immunosuppressants`) and calculator results stored under the calculator's name
(`sledai2k.score`, `egfr.egfr`; see `facts_from_calculator`). `KNOWN_SCREENING_ITEMS` declares
every item with its type, label and unit, and `validate_rules` refuses at start-up a rule that
names an undeclared item, an unknown operator or an operand of the wrong type.

A criterion with missing data is `missing`, never "not met" (Kleene's three-valued logic, see
`domain/rules.py`), and each result carries its explanation as a `Message` a clinician reads
("Age: 72 years, above the limit of 65 years").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.rules import (
    FactType,
    Operator,
    Outcome,
    Rule,
    RuleInvalid,
    RuleItem,
    compile_rule,
    evaluate_rule,
    rule_check,
)
from cartrial.domain.scores import eular_acr_2019, sledai2k
from cartrial.domain.text import N_, Message, label, message_data

__all__ = [
    "BIOLOGICS",
    "EULAR_ACR_2019_CRITERIA",
    "IMMUNOSUPPRESSANTS",
    "KNOWN_SCREENING_ITEMS",
    "ORGAN_DOMAINS",
    "SLEDAI2K_DESCRIPTORS",
    "Criterion",
    "CriterionResult",
    "EligibilityVerdict",
    "ItemType",
    "Operator",
    "Outcome",
    "RuleError",
    "ScreeningItem",
    "Verdict",
    "evaluate",
    "facts_from_calculator",
    "overall_verdict",
    "parse_criteria",
    "validate_rules",
    "verdict_from_answers",
]


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


class RuleError(InvalidInput):
    """A criterion's rule that cannot be used: names the criterion, its position and where in the rule.

    The position lets the protocol loader point at `eligibility.criteria.N.rule` in the file.
    """

    def __init__(
        self, msgid: str, /, *, code: str, criterion_id: str, criterion_index: int, location: str, **params: Any
    ) -> None:
        super().__init__(msgid, code=code, criterion=criterion_id, location=location, **params)
        self.criterion_id = criterion_id
        self.criterion_index = criterion_index
        self.location = location


@dataclass(frozen=True)
class Criterion:
    """A protocol criterion: stable id, kind (inclusion/exclusion) and its text in French and English."""

    id: str
    kind: str
    text: Mapping[str, str]
    rule: Mapping[str, object] | None = None


def _no_explanation() -> Message:
    return Message(N_("No explanation recorded."))


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    kind: str
    outcome: Outcome
    values_used: Mapping[str, object] = field(default_factory=dict)
    explanation: Message = field(default_factory=_no_explanation)


@dataclass(frozen=True)
class EligibilityVerdict:
    verdict: Verdict
    results: tuple[CriterionResult, ...]

    def failed(self) -> list[str]:
        """Ids of the criteria that stand in the way (for the screening log)."""
        return [r.criterion_id for r in self.results if r.outcome is Outcome.NOT_MET]

    def as_dict(self) -> dict[str, object]:
        """The verdict as plain data: what is stored, hashed and signed.

        Each explanation is kept as English text (what the signature covers, readable as is) and
        as message data, so a page can show the stored verdict again in the reader's language.
        """
        return {
            "verdict": self.verdict.value,
            "criteria": [
                {
                    "id": r.criterion_id,
                    "kind": r.kind,
                    "outcome": r.outcome.value,
                    "values_used": dict(r.values_used),
                    "explanation": str(r.explanation),
                    "explanation_message": message_data(r.explanation),
                }
                for r in self.results
            ],
        }


def overall_verdict(results: Sequence[CriterionResult]) -> Verdict:
    """Not eligible if any criterion fails, incomplete if any lacks data, else eligible."""
    if not results:
        return Verdict.INCOMPLETE
    if any(r.outcome is Outcome.NOT_MET for r in results):
        return Verdict.NOT_ELIGIBLE
    if any(r.outcome is Outcome.MISSING for r in results):
        return Verdict.INCOMPLETE
    return Verdict.ELIGIBLE


def parse_criteria(raw: Sequence[Mapping[str, object]]) -> tuple[Criterion, ...]:
    """Protocol criteria from their declared form; refuses duplicates and unknown kinds."""
    seen: set[str] = set()
    criteria = []
    for index, item in enumerate(raw):
        criterion_id = str(item.get("id", ""))
        kind = str(item.get("kind", ""))
        text = item.get("text")
        if not criterion_id:
            raise InvalidInput("criterion {index}: missing id", code="criterion_invalid", index=index)
        if criterion_id in seen:
            raise InvalidInput("criterion {criterion}: duplicate id", code="criterion_invalid", criterion=criterion_id)
        if kind not in ("inclusion", "exclusion"):
            raise InvalidInput(
                "criterion {criterion}: kind must be inclusion or exclusion",
                code="criterion_invalid",
                criterion=criterion_id,
            )
        if not isinstance(text, Mapping) or not text.get("en") or not text.get("fr"):
            raise InvalidInput(
                "criterion {criterion}: text needs 'en' and 'fr'", code="criterion_invalid", criterion=criterion_id
            )
        rule = item.get("rule")
        if rule is not None and not isinstance(rule, Mapping):
            # Dropping it silently would turn a computed criterion into an attested one.
            raise RuleError(
                "criterion {criterion}: {location}: must be a mapping such as {{item: age_years, gte: 18}}",
                code="rule_invalid",
                criterion_id=criterion_id,
                criterion_index=index,
                location="rule",
            )
        seen.add(criterion_id)
        criteria.append(
            Criterion(
                id=criterion_id,
                kind=kind,
                text={"en": str(text["en"]), "fr": str(text["fr"])},
                rule=rule if isinstance(rule, Mapping) else None,
            )
        )
    return tuple(criteria)


def verdict_from_answers(criteria: Sequence[Criterion], answers: Mapping[str, str]) -> EligibilityVerdict:
    """The verdict from an investigator's answer per criterion (met / not_met / missing).

    Used while screening data is attested criterion by criterion; unanswered criteria count
    as missing data, and an answer for a criterion the protocol does not have is refused.
    """
    known = {c.id for c in criteria}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InvalidInput("Unknown criterion: {criteria}", code="unknown_criterion", criteria=unknown)
    results = []
    for criterion in criteria:
        raw = answers.get(criterion.id, Outcome.MISSING.value)
        try:
            outcome = Outcome(raw)
        except ValueError:
            raise InvalidInput(
                "Criterion {criterion}: '{answer}' is not one of met, not_met, missing",
                code="invalid_answer",
                criterion=criterion.id,
                answer=raw,
            ) from None
        results.append(
            CriterionResult(
                criterion.id,
                criterion.kind,
                outcome,
                {"attested": outcome.value},
                Message(N_("Attested at screening.")),
            )
        )
    return EligibilityVerdict(overall_verdict(results), tuple(results))


# What kind of value a screening item holds (the rule language's fact types).
ItemType = FactType


@dataclass(frozen=True)
class ScreeningItem:
    """A fact a rule may test: type, label, unit and allowed values, and the calculator computing it.

    `label` and `unit` are msgids, shown in explanations; `missing` is the whole sentence said
    when the value is not known yet (a sentence of its own because French agrees its participle
    with the item: "Lymphocytes T CD3+ : pas encore mesurés", "Créatinine : pas encore mesurée").
    `unit_item` names the item that carries this value's unit (creatinine in mg/dL or µmol/L):
    a threshold on such a value would mean two different things, so rules may not compare it.
    """

    name: str
    type: ItemType
    description: str
    unit: str = ""
    choices: tuple[str, ...] = ()
    computed_by: str = ""
    unit_item: str = ""
    label: str = ""
    missing: str = ""

    def rule_item(self) -> RuleItem:
        """The item as the rule language sees it: its label, unit and missing sentence as messages."""
        return RuleItem(
            name=self.name,
            type=self.type,
            label=label(self.label) if self.label else None,
            unit=label(self.unit) if self.unit else None,
            choices=self.choices,
            unit_item=self.unit_item,
            missing=Message(self.missing) if self.missing else None,
        )


# Failed at adequate dose for ≥ 3 months each, intolerance not counting (Breakfree-1, clinical.md §5.4).
IMMUNOSUPPRESSANTS = (
    "azathioprine",
    "anifrolumab",
    "belimumab",
    "ciclosporin",
    "cyclophosphamide",
    "methotrexate",
    "mycophenolate",
    "obinutuzumab",
    "rituximab",
    "tacrolimus",
    "voclosporin",
)
BIOLOGICS = ("anifrolumab", "belimumab", "obinutuzumab", "rituximab")

# BILAG-2004 organ domains; Breakfree-1 counts only the major organs (not the last three).
ORGAN_DOMAINS = (
    "renal",
    "neuropsychiatric",
    "cardiorespiratory",
    "haematological",
    "gastrointestinal",
    "ophthalmic",
    "musculoskeletal",
    "mucocutaneous",
    "constitutional",
)

# The input keys of the `sledai2k` and `eular-acr-2019` calculators (calculators.md contract),
# taken from the score modules themselves so a descriptor added there is offered at screening.
SLEDAI2K_DESCRIPTORS: tuple[str, ...] = sledai2k.DESCRIPTOR_KEYS
EULAR_ACR_2019_CRITERIA: tuple[str, ...] = eular_acr_2019.CRITERION_KEYS


def _declare(*items: ScreeningItem) -> MappingProxyType[str, ScreeningItem]:
    return MappingProxyType({item.name: item for item in items})


KNOWN_SCREENING_ITEMS: Mapping[str, ScreeningItem] = _declare(
    ScreeningItem(
        "age_years",
        ItemType.INTEGER,
        "age in completed years at consent",
        unit=N_("years"),
        label=N_("Age"),
        missing=N_("Age: not known yet (birth date or consent date missing)"),
    ),
    ScreeningItem(
        "sex",
        ItemType.CHOICE,
        "sex used by CKD-EPI 2021",
        choices=("female", "male"),
        label=N_("Sex"),
        missing=N_("Sex: not entered yet"),
    ),
    ScreeningItem(
        "creatinine",
        ItemType.NUMBER,
        "serum creatinine (IDMS), in the unit of creatinine_unit",
        unit_item="creatinine_unit",
        label=N_("Serum creatinine"),
        missing=N_("Serum creatinine: not measured yet"),
    ),
    ScreeningItem(
        "creatinine_unit",
        ItemType.CHOICE,
        "unit of creatinine",
        choices=("mg/dL", "umol/L"),
        label=N_("Unit of the creatinine"),
        missing=N_("Unit of the creatinine: not entered yet"),
    ),
    ScreeningItem(
        "cd3_per_ul",
        ItemType.NUMBER,
        "absolute CD3+ T cells",
        unit=N_("cells/µL"),
        label=N_("CD3+ T cells"),
        missing=N_("CD3+ T cells: not measured yet"),
    ),
    ScreeningItem(
        "ana_titer",
        ItemType.INTEGER,
        "highest ANA titre ever as its denominator (80 for 1:80, 0 if negative)",
        label=N_("Highest ANA titre (1:N)"),
        missing=N_("Highest ANA titre: not entered yet"),
    ),
    ScreeningItem(
        "eular_acr_criteria",
        ItemType.LIST,
        "2019 EULAR/ACR criteria present",
        choices=EULAR_ACR_2019_CRITERIA,
        label=N_("2019 EULAR/ACR criteria present"),
        missing=N_("2019 EULAR/ACR criteria: not assessed yet"),
    ),
    ScreeningItem(
        "sledai2k_descriptors",
        ItemType.LIST,
        "SLEDAI-2K descriptors present over the look-back",
        choices=SLEDAI2K_DESCRIPTORS,
        label=N_("SLEDAI-2K descriptors present"),
        missing=N_("SLEDAI-2K descriptors: not assessed yet"),
    ),
    ScreeningItem(
        "sledai2k_lookback_days",
        ItemType.INTEGER,
        "SLEDAI-2K look-back (10 or 30)",
        unit=N_("days"),
        label=N_("SLEDAI-2K look-back"),
        missing=N_("SLEDAI-2K look-back: not entered yet"),
    ),
    ScreeningItem(
        "organ_involvement",
        ItemType.LIST,
        "organ domains with active lupus (BILAG-2004)",
        choices=ORGAN_DOMAINS,
        label=N_("Organ involvement"),
        missing=N_("Organ involvement: not assessed yet"),
    ),
    ScreeningItem(
        "history.glucocorticoids_failed",
        ItemType.BOOLEAN,
        "inadequate response to glucocorticoids",
        label=N_("Inadequate response to glucocorticoids"),
        missing=N_("Response to glucocorticoids: not entered yet"),
    ),
    ScreeningItem(
        "history.immunosuppressants",
        ItemType.LIST,
        "immunosuppressants failed, each ≥ 3 months at adequate dose, biologics included",
        choices=IMMUNOSUPPRESSANTS,
        label=N_("Immunosuppressants failed"),
        missing=N_("Immunosuppressants failed: not entered yet"),
    ),
    ScreeningItem(
        "history.biologics",
        ItemType.LIST,
        "the biologics among history.immunosuppressants",
        choices=BIOLOGICS,
        label=N_("Biologics failed"),
        missing=N_("Biologics failed: not entered yet"),
    ),
    ScreeningItem(
        "infection_active",
        ItemType.BOOLEAN,
        "active infection at screening",
        label=N_("Active infection"),
        missing=N_("Active infection: not entered yet"),
    ),
    ScreeningItem(
        "prior_cart",
        ItemType.BOOLEAN,
        "any CAR-T cell therapy before",
        label=N_("Prior CAR-T cell therapy"),
        missing=N_("Prior CAR-T cell therapy: not entered yet"),
    ),
    ScreeningItem(
        "prior_gene_therapy",
        ItemType.BOOLEAN,
        "any gene therapy before",
        label=N_("Prior gene therapy"),
        missing=N_("Prior gene therapy: not entered yet"),
    ),
    ScreeningItem(
        "sledai2k.score",
        ItemType.INTEGER,
        "SLEDAI-2K",
        computed_by="sledai2k",
        label=N_("SLEDAI-2K"),
        missing=N_("SLEDAI-2K: not computed yet"),
    ),
    ScreeningItem(
        "sledai2k.clinical_score",
        ItemType.INTEGER,
        "SLEDAI-2K without serology",
        computed_by="sledai2k",
        label=N_("Clinical SLEDAI-2K"),
        missing=N_("Clinical SLEDAI-2K: not computed yet"),
    ),
    ScreeningItem(
        "eular_acr_2019.classified",
        ItemType.BOOLEAN,
        "SLE classified by 2019 EULAR/ACR",
        computed_by="eular-acr-2019",
        label=N_("SLE classified (2019 EULAR/ACR)"),
        missing=N_("2019 EULAR/ACR classification: not computed yet"),
    ),
    ScreeningItem(
        "eular_acr_2019.score",
        ItemType.INTEGER,
        "2019 EULAR/ACR weighted score",
        computed_by="eular-acr-2019",
        label=N_("2019 EULAR/ACR score"),
        missing=N_("2019 EULAR/ACR score: not computed yet"),
    ),
    ScreeningItem(
        "egfr.egfr",
        ItemType.NUMBER,
        "eGFR by CKD-EPI 2021",
        unit=N_("mL/min/1.73 m²"),
        computed_by="egfr",
        label=N_("eGFR (CKD-EPI 2021)"),
        missing=N_("eGFR: not computed yet"),
    ),
)


def facts_from_calculator(calculator: str, result: Mapping[str, object]) -> dict[str, object]:
    """A calculator's JSON result as facts named `<calculator>.<key>` (`eular-acr-2019` → `eular_acr_2019.`)."""
    prefix = calculator.replace("-", "_")
    return {f"{prefix}.{key}": value for key, value in result.items()}


def _rule_items(known_items: Mapping[str, ScreeningItem]) -> dict[str, RuleItem]:
    return {name: item.rule_item() for name, item in known_items.items()}


def _criterion_refused(error: RuleInvalid, criterion: Criterion, index: int) -> RuleError:
    return RuleError(
        "criterion {criterion}: {location}: {problem}",
        code=error.code,
        criterion_id=criterion.id,
        criterion_index=index,
        location=error.location,
        problem=error.problem,
    )


def _criterion_rule(criterion: Criterion, index: int) -> Rule:
    try:
        return compile_rule(criterion.rule)
    except RuleInvalid as error:
        raise _criterion_refused(error, criterion, index) from None


def validate_rules(
    criteria: Sequence[Criterion], known_items: Mapping[str, ScreeningItem] = KNOWN_SCREENING_ITEMS
) -> None:
    """Refuse, with a RuleError naming criterion and item, any rule that could not be evaluated.

    Run when the protocol is loaded, so a typo in the file stops start-up instead of leaving a
    criterion forever `missing` at screening.
    """
    items = _rule_items(known_items)
    for index, criterion in enumerate(criteria):
        if criterion.rule is None:
            continue
        rule = _criterion_rule(criterion, index)
        try:
            rule_check(rule, items)
        except RuleInvalid as error:
            raise _criterion_refused(error, criterion, index) from None


def evaluate(
    criteria: Sequence[Criterion],
    facts: Mapping[str, object],
    *,
    known_items: Mapping[str, ScreeningItem] = KNOWN_SCREENING_ITEMS,
) -> EligibilityVerdict:
    """The verdict computed from screening facts and calculator results, one reason per criterion.

    A criterion without a rule is left `missing`: the investigator attests it. `known_items`
    only lends labels and units to the explanations; whether the rules name declared items is
    `validate_rules`'s job at start-up. A fact of the wrong type is refused (`fact_invalid`).
    """
    results = []
    for index, criterion in enumerate(criteria):
        if criterion.rule is None:
            results.append(
                CriterionResult(
                    criterion.id,
                    criterion.kind,
                    Outcome.MISSING,
                    {},
                    Message(N_("No rule in the protocol: to be attested by the investigator.")),
                )
            )
            continue
        result = evaluate_rule(_criterion_rule(criterion, index), facts, _rule_items(known_items))
        results.append(
            CriterionResult(criterion.id, criterion.kind, result.outcome, dict(result.values_used), result.explanation)
        )
    return EligibilityVerdict(overall_verdict(results), tuple(results))
