"""Eligibility verdicts: one answer per protocol criterion, and the overall verdict.

Each criterion is met, not met, or missing data; the overall verdict is `eligible` only when
every inclusion criterion is met and no exclusion criterion applies, `not_eligible` as soon as
one fails, otherwise `incomplete`. Exclusion criteria are phrased as the condition that
excludes (e.g. "active infection"), so for them `met` means the patient is excluded... to
avoid that double negation every criterion here is stored as "satisfied for the trial":
`met` always means "this criterion does not stand in the way".

A criterion may carry a `rule`, a small declarative tree read from the protocol file and
interpreted here (never `eval`-ed), so the screening data decides it instead of an attestation:

    {all: [RULE, ...]}          met when every part is met
    {any: [RULE, ...]}          met when at least one part is met
    {not: RULE}                 met when the part is not met
    {item: NAME, OP: OPERAND}   one comparison on one fact, with exactly one OP:

    equals V                 boolean, integer, number or choice item equals V
    in [V, ...]              the value is one of V...
    gte N | gt N | lte N | lt N   ≥, >, ≤, < a number
    between [LOW, HIGH]      LOW ≤ value ≤ HIGH (both bounds inclusive, as protocols word ranges)
    contains V               a list item includes V
    contains_any [V, ...]    a list item includes at least one of V...
    count_gte N | count_lte N    a list item has at least / at most N distinct entries

NAME is a dotted item name over a flat mapping of facts: screening data (`age_years`,
`history.immunosuppressants`) and calculator results stored under the calculator's name
(`sledai2k.score`, `egfr.egfr`; see `facts_from_calculator`). `KNOWN_SCREENING_ITEMS` declares
every item with its type, label and unit, and `validate_rules` refuses at start-up a rule that
names an undeclared item, an unknown operator or an operand of the wrong type.

An item absent from the facts, or None, is missing data, never "not met": outcomes combine as
in Kleene's three-valued logic (`all` fails if one part fails, else is missing if one part is;
`any` dually; `not` swaps met and not met), so adding data can settle an undecided criterion
but never reverse a decided one.

Each result carries its explanation as a `Message` a clinician reads: the item's label, its value
with its unit, and the rule ("Age: 72 years, above the limit of 65 years"). A `not` is pushed down
to the comparisons before explaining (not ≥ is <, not all is any of the nots), which keeps the
outcome and lets every sentence say what the rule wants.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores import eular_acr_2019, sledai2k
from cartrial.domain.text import N_, Message, joined, label, message_data


class Outcome(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    MISSING = "missing"


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


class ItemType(StrEnum):
    """What kind of value a screening item holds; decides which operators may test it."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    CHOICE = "choice"
    LIST = "list"


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


class Operator(StrEnum):
    EQUALS = "equals"
    IN = "in"
    GTE = "gte"
    GT = "gt"
    LTE = "lte"
    LT = "lt"
    BETWEEN = "between"
    CONTAINS = "contains"
    CONTAINS_ANY = "contains_any"
    COUNT_GTE = "count_gte"
    COUNT_LTE = "count_lte"


_SCALAR_TYPES = frozenset({ItemType.BOOLEAN, ItemType.INTEGER, ItemType.NUMBER, ItemType.CHOICE})
_NUMERIC_TYPES = frozenset({ItemType.INTEGER, ItemType.NUMBER})
_THRESHOLDS = frozenset({Operator.GTE, Operator.GT, Operator.LTE, Operator.LT})
_COUNTS = frozenset({Operator.COUNT_GTE, Operator.COUNT_LTE})
_APPLIES_TO: Mapping[Operator, frozenset[ItemType]] = MappingProxyType(
    {
        Operator.EQUALS: _SCALAR_TYPES,
        Operator.IN: frozenset({ItemType.INTEGER, ItemType.NUMBER, ItemType.CHOICE}),
        **dict.fromkeys(_THRESHOLDS, _NUMERIC_TYPES),
        Operator.BETWEEN: _NUMERIC_TYPES,
        Operator.CONTAINS: frozenset({ItemType.LIST}),
        Operator.CONTAINS_ANY: frozenset({ItemType.LIST}),
        **dict.fromkeys(_COUNTS, frozenset({ItemType.LIST})),
    }
)
_COMBINATORS = ("all", "any", "not")
# Deep enough for any real criterion; stops a YAML alias that refers to itself.
MAX_RULE_DEPTH = 16


@dataclass(frozen=True)
class _Comparison:
    """One comparison; `negated` when a `not` above it could not be folded into the operator."""

    item: str
    operator: Operator
    operand: object
    location: str
    negated: bool = False


@dataclass(frozen=True)
class _AllOf:
    parts: tuple[_Node, ...]


@dataclass(frozen=True)
class _AnyOf:
    parts: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not:
    part: _Node


_Node = _Comparison | _AllOf | _AnyOf | _Not


@dataclass(frozen=True)
class _Site:
    """Which criterion a rule belongs to, so every refusal can name it."""

    criterion_id: str
    criterion_index: int

    def refuse(self, code: str, location: str, problem: Message) -> RuleError:
        return RuleError(
            "criterion {criterion}: {location}: {problem}",
            code=code,
            criterion_id=self.criterion_id,
            criterion_index=self.criterion_index,
            location=location,
            problem=problem,
        )


def _kind(value: object) -> str | None:
    """The comparable kind of a scalar: booleans are not numbers here, although Python says so."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _is_number(value: object) -> bool:
    return _kind(value) == "number" and math.isfinite(value)  # type: ignore[arg-type]


def _check_operand(site: _Site, operator: Operator, operand: object, location: str) -> None:
    """Operand shapes that hold whatever the item: numbers for thresholds, lists for `in`..."""

    def wrong(expected: str) -> RuleError:
        problem = Message(
            "{operator} needs {expected}, got {operand}",
            {"operator": operator.value, "expected": label(expected), "operand": repr(operand)},
        )
        return site.refuse("rule_invalid_operand", location, problem)

    if operator is Operator.EQUALS:
        if _kind(operand) is None or (_kind(operand) == "number" and not _is_number(operand)):
            raise wrong(N_("a boolean, a finite number or a text"))
    elif operator in _THRESHOLDS:
        if not _is_number(operand):
            raise wrong(N_("a finite number"))
    elif operator is Operator.BETWEEN:
        if not (isinstance(operand, list) and len(operand) == 2 and all(_is_number(bound) for bound in operand)):
            raise wrong(N_("[low, high], two finite numbers"))
        if operand[0] > operand[1]:
            raise wrong(N_("low ≤ high"))
    elif operator in _COUNTS:
        if not (isinstance(operand, int) and not isinstance(operand, bool) and operand >= 0):
            raise wrong(N_("a whole number ≥ 0"))
    elif operator is Operator.CONTAINS:
        if not isinstance(operand, str):
            raise wrong(N_("a text"))
    elif operator is Operator.CONTAINS_ANY:
        if not (isinstance(operand, list) and operand and all(isinstance(value, str) for value in operand)):
            raise wrong(N_("a non-empty list of texts"))
    elif operator is Operator.IN:
        kinds = {_kind(value) for value in operand} if isinstance(operand, list) else set()
        if not operand or len(kinds) != 1 or kinds & {None, "boolean"}:
            raise wrong(N_("a non-empty list of numbers or of texts (not mixed)"))


def _compile(site: _Site, raw: object, location: str = "rule", depth: int = 0) -> _Node:
    """The rule tree checked for shape and turned into nodes; items are checked by validate_rules."""
    if depth > MAX_RULE_DEPTH:
        raise site.refuse(
            "rule_invalid", location, Message("nested deeper than {depth} levels", {"depth": MAX_RULE_DEPTH})
        )
    if not isinstance(raw, Mapping):
        raise site.refuse(
            "rule_invalid",
            location,
            Message("must be a mapping like {{item: age_years, gte: 18}}, got {raw}", {"raw": repr(raw)}),
        )
    keys = [str(key) for key in raw]
    combinators = [key for key in keys if key in _COMBINATORS]
    if combinators:
        if len(keys) != 1:
            raise site.refuse(
                "rule_invalid",
                location,
                Message(
                    "'{combinator}' must stand alone, found keys {keys}",
                    {"combinator": combinators[0], "keys": repr(keys)},
                ),
            )
        key = combinators[0]
        part_location = f"{location}.{key}"
        if key == "not":
            return _Not(_compile(site, raw[key], part_location, depth + 1))
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            raise site.refuse("rule_invalid", part_location, Message("needs a non-empty list of rules"))
        compiled = tuple(_compile(site, part, f"{part_location}.{i}", depth + 1) for i, part in enumerate(parts))
        return _AllOf(compiled) if key == "all" else _AnyOf(compiled)
    if "item" not in keys:
        unknown = ", ".join(repr(key) for key in keys)
        raise site.refuse(
            "rule_unknown_operator",
            location,
            Message(
                "found {found}; a rule is {{all: [...]}}, {{any: [...]}}, {{not: ...}} or {{item: NAME, OPERATOR: V}}",
                {"found": unknown or label(N_("nothing"))},
            ),
        )
    item = raw["item"]
    if not isinstance(item, str) or not item:
        raise site.refuse(
            "rule_invalid", f"{location}.item", Message("must be an item name, got {item}", {"item": repr(item)})
        )
    operators = [key for key in keys if key != "item"]
    for key in operators:
        if key not in {operator.value for operator in Operator}:
            raise site.refuse(
                "rule_unknown_operator",
                f"{location}.{key}",
                Message(
                    "'{key}' on item '{item}' is not an operator ({known})",
                    {"key": key, "item": item, "known": [op.value for op in Operator]},
                ),
            )
    if len(operators) != 1:
        raise site.refuse(
            "rule_invalid",
            location,
            Message(
                "a comparison on item '{item}' needs exactly one operator, found {operators}",
                {"item": item, "operators": repr(operators)},
            ),
        )
    operator = Operator(operators[0])
    operand = raw[operator.value]
    _check_operand(site, operator, operand, f"{location}.{operator.value}")
    return _Comparison(item, operator, operand, location)


def _comparisons(node: _Node) -> list[_Comparison]:
    if isinstance(node, _Comparison):
        return [node]
    if isinstance(node, _Not):
        return _comparisons(node.part)
    return [comparison for part in node.parts for comparison in _comparisons(part)]


def _check_against_item(site: _Site, comparison: _Comparison, known_items: Mapping[str, ScreeningItem]) -> None:
    """The comparison makes sense for the declared item: exists, right type, allowed values, one unit."""
    item = known_items.get(comparison.item)
    if item is None:
        close = difflib.get_close_matches(comparison.item, list(known_items), n=1)
        problem = (
            Message(
                "item '{item}' is not a declared screening item; did you mean '{close}'?",
                {"item": comparison.item, "close": close[0]},
            )
            if close
            else Message("item '{item}' is not a declared screening item", {"item": comparison.item})
        )
        raise site.refuse("rule_unknown_item", f"{comparison.location}.item", problem)
    operator, operand = comparison.operator, comparison.operand
    where = f"{comparison.location}.{operator.value}"
    if item.type not in _APPLIES_TO[operator]:
        raise site.refuse(
            "rule_type_mismatch",
            where,
            Message(
                "{operator} cannot test '{item}', whose type is {type}",
                {"operator": operator.value, "item": item.name, "type": item.type.value},
            ),
        )
    if item.unit_item and operator is not Operator.EQUALS:
        raise site.refuse(
            "rule_unit_ambiguous",
            where,
            Message(
                "item '{item}' has no fixed unit (see '{unit_item}'); compare a value computed from it",
                {"item": item.name, "unit_item": item.unit_item},
            ),
        )
    values = operand if operator in (Operator.IN, Operator.CONTAINS_ANY) else [operand]
    if operator in (Operator.EQUALS, Operator.IN):
        expected = {
            ItemType.BOOLEAN: "boolean",
            ItemType.INTEGER: "number",
            ItemType.NUMBER: "number",
            ItemType.CHOICE: "text",
        }[item.type]
        for value in values:  # type: ignore[attr-defined]
            if _kind(value) != expected:
                raise site.refuse(
                    "rule_invalid_operand",
                    where,
                    Message(
                        "item '{item}' has type {type}: {value} never matches",
                        {"item": item.name, "type": item.type.value, "value": repr(value)},
                    ),
                )
    if item.choices and operator in (Operator.EQUALS, Operator.IN, Operator.CONTAINS, Operator.CONTAINS_ANY):
        for value in values:  # type: ignore[attr-defined]
            if value not in item.choices:
                raise site.refuse(
                    "rule_invalid_operand",
                    where,
                    Message(
                        "{value} is not a value of item '{item}' ({choices})",
                        {"value": repr(value), "item": item.name, "choices": list(item.choices)},
                    ),
                )


def validate_rules(
    criteria: Sequence[Criterion], known_items: Mapping[str, ScreeningItem] = KNOWN_SCREENING_ITEMS
) -> None:
    """Refuse, with a RuleError naming criterion and item, any rule that could not be evaluated.

    Run when the protocol is loaded, so a typo in the file stops start-up instead of leaving a
    criterion forever `missing` at screening.
    """
    for index, criterion in enumerate(criteria):
        if criterion.rule is None:
            continue
        site = _Site(criterion.id, index)
        for comparison in _comparisons(_compile(site, criterion.rule)):
            _check_against_item(site, comparison, known_items)


# --- evaluation -----------------------------------------------------------------------------------

_FLIPPED = MappingProxyType(
    {Operator.GTE: Operator.LT, Operator.GT: Operator.LTE, Operator.LTE: Operator.GT, Operator.LT: Operator.GTE}
)


def _negated(comparison: _Comparison) -> _Comparison:
    """The comparison that holds exactly when `comparison` does not (for a present value)."""
    operator, operand = comparison.operator, comparison.operand
    if operator in _FLIPPED:
        return replace(comparison, operator=_FLIPPED[operator])
    if operator is Operator.EQUALS and isinstance(operand, bool):
        return replace(comparison, operand=not operand)
    if operator is Operator.COUNT_GTE and isinstance(operand, int):
        # not "at least 0" is "at most -1": never, as it should be.
        return replace(comparison, operator=Operator.COUNT_LTE, operand=operand - 1)
    if operator is Operator.COUNT_LTE and isinstance(operand, int):
        return replace(comparison, operator=Operator.COUNT_GTE, operand=operand + 1)
    return replace(comparison, negated=not comparison.negated)


def _without_not(node: _Node, negate: bool = False) -> _Node:
    """The same rule with every `not` pushed down to a comparison (De Morgan; exact in Kleene logic)."""
    if isinstance(node, _Comparison):
        return _negated(node) if negate else node
    if isinstance(node, _Not):
        return _without_not(node.part, not negate)
    parts = tuple(_without_not(part, negate) for part in node.parts)
    if isinstance(node, _AllOf):
        return _AnyOf(parts) if negate else _AllOf(parts)
    return _AllOf(parts) if negate else _AnyOf(parts)


def _plain(value: object) -> object:
    """A fact as JSON-ready data for `values_used` (the verdict is hashed and signed)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return value


def _fact_refused(comparison: _Comparison, value: object, expected: str) -> InvalidInput:
    return InvalidInput(
        "Fact '{fact}' is {value}, but {operator} needs {expected}",
        code="fact_invalid",
        item=comparison.item,
        fact=comparison.item,
        value=repr(value),
        operator=comparison.operator.value,
        expected=label(expected),
    )


def _entries(comparison: _Comparison, value: object) -> frozenset[object]:
    if not isinstance(value, list | tuple | set | frozenset) or not all(_kind(entry) for entry in value):
        raise _fact_refused(comparison, value, N_("a list of values"))
    return frozenset(value)


@dataclass(frozen=True)
class _Wording:
    """How one item's values read: its label and unit (msgids), or its name when undeclared."""

    name: object
    unit: str

    def number(self, value: object) -> object:
        """A number with the item's unit ("72 years"), rendered in the reader's notation."""
        return Message(N_("{number} {unit}"), {"number": value, "unit": label(self.unit)}) if self.unit else value

    def scalar(self, value: object) -> object:
        """A boolean (yes/no in words), a number with its unit, or a choice by its label."""
        if isinstance(value, str):
            return label(clinical_label(value))
        return value if isinstance(value, bool) else self.number(value)

    def entries(self, values: object) -> object:
        """List entries by their labels, in a stable order; "none listed" for an empty list."""
        listed = sorted(values, key=str) if isinstance(values, set | frozenset) else list(cast("list[object]", values))
        unique = list(dict.fromkeys(listed))
        if not unique:
            return label(N_("none listed"))
        return [label(clinical_label(str(entry))) for entry in unique]


def _say(msgid: str, wording: _Wording, value: object, **params: object) -> Message:
    return Message(msgid, {"item": wording.name, "value": value, **params})


def _threshold(comparison: _Comparison, wording: _Wording, number: float, shown: object) -> tuple[bool, Message]:
    """≥, >, ≤, < against the operand, worded from the item's side (`shown` is the value as read)."""
    operator, operand = comparison.operator, comparison.operand
    limit = float(cast("float", operand))
    bound = wording.number(operand) if comparison.operator not in _COUNTS else operand
    if operator in (Operator.GTE, Operator.COUNT_GTE):
        if number >= limit:
            return True, _say(N_("{item}: {value}, at least {limit} required: met"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, below the minimum of {limit}"), wording, shown, limit=bound)
    if operator is Operator.GT:
        if number > limit:
            return True, _say(N_("{item}: {value}, more than {limit} required: met"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, not more than {limit}"), wording, shown, limit=bound)
    if operator in (Operator.LTE, Operator.COUNT_LTE):
        if number <= limit:
            return True, _say(N_("{item}: {value}, within the limit of {limit}"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, above the limit of {limit}"), wording, shown, limit=bound)
    if number < limit:
        return True, _say(N_("{item}: {value}, below {limit} as required"), wording, shown, limit=bound)
    return False, _say(N_("{item}: {value}, not below {limit}"), wording, shown, limit=bound)


def _holds(comparison: _Comparison, value: object, wording: _Wording) -> tuple[bool, Message]:
    """Whether the comparison holds for a present value, and the sentence saying so."""
    operator, operand, negated = comparison.operator, comparison.operand, comparison.negated
    if operator in (Operator.EQUALS, Operator.IN):
        options = operand if isinstance(operand, list) else [operand]
        if _kind(value) is None or _kind(value) != _kind(options[0]):
            raise _fact_refused(comparison, value, N_("a value of the same type as the rule's"))
        shown = wording.scalar(value)
        matches = value in options
        if matches != negated:
            return True, _say(N_("{item}: {value}"), wording, shown)
        if negated:
            return False, _say(N_("{item}: {value}, which the rule excludes"), wording, shown)
        if isinstance(value, bool):
            return False, _say(N_("{item}: {value}"), wording, shown)
        if operator is Operator.EQUALS:
            expected = wording.scalar(operand)
            return False, _say(N_("{item}: {value} ({expected} expected)"), wording, shown, expected=expected)
        expected_options = [wording.scalar(option) for option in options]
        return False, _say(
            N_("{item}: {value} (expected: one of {expected})"), wording, shown, expected=expected_options
        )
    if operator in _THRESHOLDS or operator is Operator.BETWEEN:
        if not _is_number(value):
            raise _fact_refused(comparison, value, N_("a finite number"))
        number = float(cast("float", value))
        shown = wording.number(value)
        if operator in _THRESHOLDS:
            return _threshold(comparison, wording, number, shown)
        low, high = cast("list[float]", operand)  # shape checked by _compile
        low_shown, high_shown = wording.number(low), wording.number(high)
        inside = low <= number <= high
        if negated:
            if inside:
                return False, _say(
                    N_("{item}: {value}, between {low} and {high}, which the rule excludes"),
                    wording,
                    shown,
                    low=low_shown,
                    high=high_shown,
                )
            return True, _say(
                N_("{item}: {value}, not between {low} and {high}, as required"),
                wording,
                shown,
                low=low_shown,
                high=high_shown,
            )
        if inside:
            within = N_("{item}: {value}, between {low} and {high}")
            return True, _say(within, wording, shown, low=low_shown, high=high_shown)
        if number < low:
            return False, _say(N_("{item}: {value}, below the minimum of {limit}"), wording, shown, limit=low_shown)
        return False, _say(N_("{item}: {value}, above the limit of {limit}"), wording, shown, limit=high_shown)
    entries = _entries(comparison, value)
    shown = wording.entries(value)
    if operator in _COUNTS:
        counted = Message(N_("{entries} ({count})"), {"entries": shown, "count": len(entries)})
        holds, sentence = _threshold(comparison, wording, float(len(entries)), counted)
        return holds, sentence
    wanted = [operand] if operator is Operator.CONTAINS else list(cast("list[object]", operand))
    found = [entry for entry in wanted if entry in entries]
    if found and not negated:
        return True, _say(N_("{item}: {value}, including {entries}"), wording, shown, entries=wording.entries(found))
    if found:
        return False, _say(
            N_("{item}: {value}, including {entries}, which the rule excludes"),
            wording,
            shown,
            entries=wording.entries(found),
        )
    if operator is Operator.CONTAINS:
        return negated, _say(N_("{item}: {value}, without {entries}"), wording, shown, entries=wording.entries(wanted))
    if negated:
        return True, _say(N_("{item}: {value}, none of {expected}"), wording, shown, expected=wording.entries(wanted))
    return False, _say(
        N_("{item}: {value}; at least one of {expected} required"), wording, shown, expected=wording.entries(wanted)
    )


def _wording(name: str, items: Mapping[str, ScreeningItem]) -> _Wording:
    item = items.get(name)
    if item is None or not item.label:
        return _Wording(name, item.unit if item else "")
    return _Wording(label(item.label), item.unit)


def _missing(name: str, items: Mapping[str, ScreeningItem]) -> Message:
    item = items.get(name)
    if item is not None and item.missing:
        return Message(item.missing)
    return Message(N_("{item}: not known yet"), {"item": _wording(name, items).name})


def _decide(
    node: _Node, facts: Mapping[str, object], items: Mapping[str, ScreeningItem]
) -> tuple[Outcome, list[Message]]:
    """Kleene's three-valued outcome of a node (`not` already pushed down), with the sentences deciding it."""
    if isinstance(node, _Comparison):
        value = facts.get(node.item)
        if value is None:
            return Outcome.MISSING, [_missing(node.item, items)]
        holds, sentence = _holds(node, value, _wording(node.item, items))
        return (Outcome.MET if holds else Outcome.NOT_MET), [sentence]
    if isinstance(node, _Not):  # pragma: no cover - evaluate() removes every `not` first
        return _decide(_without_not(node), facts, items)
    decided = [_decide(part, facts, items) for part in node.parts]
    # `all` is settled by a failing part, `any` by a succeeding one; missing data comes next.
    settling = Outcome.NOT_MET if isinstance(node, _AllOf) else Outcome.MET
    for outcome in (settling, Outcome.MISSING):
        reasons = [reason for found, part_reasons in decided if found is outcome for reason in part_reasons]
        if reasons:
            return outcome, reasons
    other = Outcome.MET if settling is Outcome.NOT_MET else Outcome.NOT_MET
    return other, [reason for _, part_reasons in decided for reason in part_reasons]


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
        node = _compile(_Site(criterion.id, index), criterion.rule)
        outcome, reasons = _decide(_without_not(node), facts, known_items)
        values_used = {comparison.item: _plain(facts.get(comparison.item)) for comparison in _comparisons(node)}
        results.append(CriterionResult(criterion.id, criterion.kind, outcome, values_used, joined(reasons)))
    return EligibilityVerdict(overall_verdict(results), tuple(results))
