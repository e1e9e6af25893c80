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
every item with its type and unit, and `validate_rules` refuses at start-up a rule that names
an undeclared item, an unknown operator or an operand of the wrong type.

An item absent from the facts, or None, is missing data, never "not met": outcomes combine as
in Kleene's three-valued logic (`all` fails if one part fails, else is missing if one part is;
`any` dually; `not` swaps met and not met), so adding data can settle an undecided criterion
but never reverse a decided one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import cast

from cartrial.domain.errors import InvalidInput


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

    def __init__(self, message: str, *, code: str, criterion_id: str, criterion_index: int, location: str) -> None:
        super().__init__(message, code=code)
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


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    kind: str
    outcome: Outcome
    values_used: Mapping[str, object] = field(default_factory=dict)
    explanation: str = ""


@dataclass(frozen=True)
class EligibilityVerdict:
    verdict: Verdict
    results: tuple[CriterionResult, ...]

    def failed(self) -> list[str]:
        """Ids of the criteria that stand in the way (for the screening log)."""
        return [r.criterion_id for r in self.results if r.outcome is Outcome.NOT_MET]

    def as_dict(self) -> dict[str, object]:
        """The verdict as plain data: what is stored, hashed and signed."""
        return {
            "verdict": self.verdict.value,
            "criteria": [
                {
                    "id": r.criterion_id,
                    "kind": r.kind,
                    "outcome": r.outcome.value,
                    "values_used": dict(r.values_used),
                    "explanation": r.explanation,
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
            raise InvalidInput(f"criterion {index}: missing id", code="criterion_invalid")
        if criterion_id in seen:
            raise InvalidInput(f"criterion {criterion_id}: duplicate id", code="criterion_invalid")
        if kind not in ("inclusion", "exclusion"):
            raise InvalidInput(
                f"criterion {criterion_id}: kind must be inclusion or exclusion", code="criterion_invalid"
            )
        if not isinstance(text, Mapping) or not text.get("en") or not text.get("fr"):
            raise InvalidInput(f"criterion {criterion_id}: text needs 'en' and 'fr'", code="criterion_invalid")
        rule = item.get("rule")
        if rule is not None and not isinstance(rule, Mapping):
            # Dropping it silently would turn a computed criterion into an attested one.
            raise RuleError(
                f"criterion {criterion_id}: rule: must be a mapping such as {{item: age_years, gte: 18}}",
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
        raise InvalidInput(f"Unknown criterion: {', '.join(unknown)}", code="unknown_criterion")
    results = []
    for criterion in criteria:
        raw = answers.get(criterion.id, Outcome.MISSING.value)
        try:
            outcome = Outcome(raw)
        except ValueError:
            raise InvalidInput(
                f"Criterion {criterion.id}: '{raw}' is not one of met, not_met, missing", code="invalid_answer"
            ) from None
        results.append(
            CriterionResult(criterion.id, criterion.kind, outcome, {"attested": outcome.value}, "attested at screening")
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
    """A fact a rule may test: its type, unit and allowed values, and the calculator computing it, if any.

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

# Input keys of the `sledai2k` and `eular-acr-2019` calculators (calculators.md contract).
SLEDAI2K_DESCRIPTORS = (
    "seizure",
    "psychosis",
    "organic_brain_syndrome",
    "visual_disturbance",
    "cranial_nerve_disorder",
    "lupus_headache",
    "cva",
    "vasculitis",
    "arthritis",
    "myositis",
    "urinary_casts",
    "hematuria",
    "proteinuria",
    "pyuria",
    "rash",
    "alopecia",
    "mucosal_ulcers",
    "pleurisy",
    "pericarditis",
    "low_complement",
    "increased_dna_binding",
    "fever",
    "thrombocytopenia",
    "leukopenia",
)
EULAR_ACR_2019_CRITERIA = (
    "fever",
    "leukopenia",
    "thrombocytopenia",
    "autoimmune_hemolysis",
    "delirium",
    "psychosis",
    "seizure",
    "non_scarring_alopecia",
    "oral_ulcers",
    "subacute_cutaneous_lupus",
    "discoid_lupus",
    "acute_cutaneous_lupus",
    "pleural_effusion",
    "pericardial_effusion",
    "acute_pericarditis",
    "joint_involvement",
    "proteinuria",
    "lupus_nephritis_class_2",
    "lupus_nephritis_class_5",
    "lupus_nephritis_class_3",
    "lupus_nephritis_class_4",
    "anticardiolipin",
    "anti_beta2gp1",
    "lupus_anticoagulant",
    "low_c3",
    "low_c4",
    "anti_dsdna",
    "anti_smith",
)


def _declare(*items: ScreeningItem) -> MappingProxyType[str, ScreeningItem]:
    return MappingProxyType({item.name: item for item in items})


KNOWN_SCREENING_ITEMS: Mapping[str, ScreeningItem] = _declare(
    ScreeningItem("age_years", ItemType.INTEGER, "age in completed years at consent", unit="years"),
    ScreeningItem("sex", ItemType.CHOICE, "sex used by CKD-EPI 2021", choices=("female", "male")),
    ScreeningItem(
        "creatinine",
        ItemType.NUMBER,
        "serum creatinine (IDMS), in the unit of creatinine_unit",
        unit_item="creatinine_unit",
    ),
    ScreeningItem("creatinine_unit", ItemType.CHOICE, "unit of creatinine", choices=("mg/dL", "umol/L")),
    ScreeningItem("cd3_per_ul", ItemType.NUMBER, "absolute CD3+ T cells", unit="cells/µL"),
    ScreeningItem(
        "ana_titer",
        ItemType.INTEGER,
        "highest ANA titre ever as its denominator (80 for 1:80, 0 if negative)",
        unit="1:N",
    ),
    ScreeningItem(
        "eular_acr_criteria", ItemType.LIST, "2019 EULAR/ACR criteria present", choices=EULAR_ACR_2019_CRITERIA
    ),
    ScreeningItem(
        "sledai2k_descriptors",
        ItemType.LIST,
        "SLEDAI-2K descriptors present over the look-back",
        choices=SLEDAI2K_DESCRIPTORS,
    ),
    ScreeningItem("sledai2k_lookback_days", ItemType.INTEGER, "SLEDAI-2K look-back (10 or 30)", unit="days"),
    ScreeningItem(
        "organ_involvement", ItemType.LIST, "organ domains with active lupus (BILAG-2004)", choices=ORGAN_DOMAINS
    ),
    ScreeningItem("history.glucocorticoids_failed", ItemType.BOOLEAN, "inadequate response to glucocorticoids"),
    ScreeningItem(
        "history.immunosuppressants",
        ItemType.LIST,
        "immunosuppressants failed, each ≥ 3 months at adequate dose, biologics included",
        choices=IMMUNOSUPPRESSANTS,
    ),
    ScreeningItem(
        "history.biologics", ItemType.LIST, "the biologics among history.immunosuppressants", choices=BIOLOGICS
    ),
    ScreeningItem("infection_active", ItemType.BOOLEAN, "active infection at screening"),
    ScreeningItem("prior_cart", ItemType.BOOLEAN, "any CAR-T cell therapy before"),
    ScreeningItem("prior_gene_therapy", ItemType.BOOLEAN, "any gene therapy before"),
    ScreeningItem("sledai2k.score", ItemType.INTEGER, "SLEDAI-2K", unit="points", computed_by="sledai2k"),
    ScreeningItem(
        "sledai2k.clinical_score", ItemType.INTEGER, "SLEDAI-2K without serology", unit="points", computed_by="sledai2k"
    ),
    ScreeningItem(
        "eular_acr_2019.classified", ItemType.BOOLEAN, "SLE classified by 2019 EULAR/ACR", computed_by="eular-acr-2019"
    ),
    ScreeningItem(
        "eular_acr_2019.score",
        ItemType.INTEGER,
        "2019 EULAR/ACR weighted score",
        unit="points",
        computed_by="eular-acr-2019",
    ),
    ScreeningItem("egfr.egfr", ItemType.NUMBER, "eGFR by CKD-EPI 2021", unit="mL/min/1.73m2", computed_by="egfr"),
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
    item: str
    operator: Operator
    operand: object
    location: str


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

    def refuse(self, code: str, location: str, problem: str) -> RuleError:
        return RuleError(
            f"criterion {self.criterion_id}: {location}: {problem}",
            code=code,
            criterion_id=self.criterion_id,
            criterion_index=self.criterion_index,
            location=location,
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
        return site.refuse("rule_invalid_operand", location, f"{operator.value} needs {expected}, got {operand!r}")

    if operator is Operator.EQUALS:
        if _kind(operand) is None or (_kind(operand) == "number" and not _is_number(operand)):
            raise wrong("a boolean, a finite number or a text")
    elif operator in _THRESHOLDS:
        if not _is_number(operand):
            raise wrong("a finite number")
    elif operator is Operator.BETWEEN:
        if not (isinstance(operand, list) and len(operand) == 2 and all(_is_number(bound) for bound in operand)):
            raise wrong("[low, high], two finite numbers")
        if operand[0] > operand[1]:
            raise wrong("low ≤ high")
    elif operator in _COUNTS:
        if not (isinstance(operand, int) and not isinstance(operand, bool) and operand >= 0):
            raise wrong("a whole number ≥ 0")
    elif operator is Operator.CONTAINS:
        if not isinstance(operand, str):
            raise wrong("a text")
    elif operator is Operator.CONTAINS_ANY:
        if not (isinstance(operand, list) and operand and all(isinstance(value, str) for value in operand)):
            raise wrong("a non-empty list of texts")
    elif operator is Operator.IN:
        kinds = {_kind(value) for value in operand} if isinstance(operand, list) else set()
        if not operand or len(kinds) != 1 or kinds & {None, "boolean"}:
            raise wrong("a non-empty list of numbers or of texts (not mixed)")


def _compile(site: _Site, raw: object, location: str = "rule", depth: int = 0) -> _Node:
    """The rule tree checked for shape and turned into nodes; items are checked by validate_rules."""
    if depth > MAX_RULE_DEPTH:
        raise site.refuse("rule_invalid", location, f"nested deeper than {MAX_RULE_DEPTH} levels")
    if not isinstance(raw, Mapping):
        raise site.refuse("rule_invalid", location, f"must be a mapping like {{item: age_years, gte: 18}}, got {raw!r}")
    keys = [str(key) for key in raw]
    combinators = [key for key in keys if key in _COMBINATORS]
    if combinators:
        if len(keys) != 1:
            raise site.refuse("rule_invalid", location, f"'{combinators[0]}' must stand alone, found keys {keys}")
        key = combinators[0]
        part_location = f"{location}.{key}"
        if key == "not":
            return _Not(_compile(site, raw[key], part_location, depth + 1))
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            raise site.refuse("rule_invalid", part_location, "needs a non-empty list of rules")
        compiled = tuple(_compile(site, part, f"{part_location}.{i}", depth + 1) for i, part in enumerate(parts))
        return _AllOf(compiled) if key == "all" else _AnyOf(compiled)
    if "item" not in keys:
        unknown = ", ".join(repr(key) for key in keys) or "nothing"
        raise site.refuse(
            "rule_unknown_operator",
            location,
            f"found {unknown}; a rule is {{all: [...]}}, {{any: [...]}}, {{not: ...}} or {{item: NAME, OPERATOR: V}}",
        )
    item = raw["item"]
    if not isinstance(item, str) or not item:
        raise site.refuse("rule_invalid", f"{location}.item", f"must be an item name, got {item!r}")
    operators = [key for key in keys if key != "item"]
    for key in operators:
        if key not in {operator.value for operator in Operator}:
            known = ", ".join(op.value for op in Operator)
            raise site.refuse(
                "rule_unknown_operator", f"{location}.{key}", f"'{key}' on item '{item}' is not an operator ({known})"
            )
    if len(operators) != 1:
        raise site.refuse(
            "rule_invalid", location, f"a comparison on item '{item}' needs exactly one operator, found {operators}"
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
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise site.refuse(
            "rule_unknown_item",
            f"{comparison.location}.item",
            f"item '{comparison.item}' is not a declared screening item{hint}",
        )
    operator, operand = comparison.operator, comparison.operand
    where = f"{comparison.location}.{operator.value}"
    if item.type not in _APPLIES_TO[operator]:
        raise site.refuse(
            "rule_type_mismatch", where, f"{operator.value} cannot test '{item.name}', whose type is {item.type.value}"
        )
    if item.unit_item and operator is not Operator.EQUALS:
        raise site.refuse(
            "rule_unit_ambiguous",
            where,
            f"item '{item.name}' has no fixed unit (see '{item.unit_item}'); compare a value computed from it",
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
                    f"item '{item.name}' has type {item.type.value}: {value!r} never matches",
                )
    if item.choices and operator in (Operator.EQUALS, Operator.IN, Operator.CONTAINS, Operator.CONTAINS_ANY):
        for value in values:  # type: ignore[attr-defined]
            if value not in item.choices:
                raise site.refuse(
                    "rule_invalid_operand",
                    where,
                    f"{value!r} is not a value of item '{item.name}' ({', '.join(item.choices)})",
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


def _show(value: object, unit: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        entries = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return "[" + ", ".join(str(entry) for entry in entries) + "]"
    return f"{value} {unit}" if unit else str(value)


def _plain(value: object) -> object:
    """A fact as JSON-ready data for `values_used` (the verdict is hashed and signed)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return value


def _fact_refused(comparison: _Comparison, value: object, expected: str) -> InvalidInput:
    return InvalidInput(
        f"Fact '{comparison.item}' is {value!r}, but {comparison.operator.value} needs {expected}",
        code="fact_invalid",
    )


def _entries(comparison: _Comparison, value: object) -> frozenset[object]:
    if not isinstance(value, list | tuple | set | frozenset) or not all(_kind(entry) for entry in value):
        raise _fact_refused(comparison, value, "a list of values")
    return frozenset(value)


def _holds(comparison: _Comparison, value: object) -> tuple[bool, str]:
    """Whether the comparison holds for a present value, and the words saying so."""
    operator, operand = comparison.operator, comparison.operand
    if operator in (Operator.EQUALS, Operator.IN):
        options = operand if isinstance(operand, list) else [operand]
        if _kind(value) is None or _kind(value) != _kind(options[0]):
            raise _fact_refused(comparison, value, f"a value like {options[0]!r}")
        if operator is Operator.EQUALS:
            return value == operand, f"is {_show(operand)}" if value == operand else f"is not {_show(operand)}"
        listed = ", ".join(_show(option) for option in options)
        return (True, f"is one of {listed}") if value in options else (False, f"is none of {listed}")
    if operator in _THRESHOLDS or operator is Operator.BETWEEN:
        if not _is_number(value):
            raise _fact_refused(comparison, value, "a finite number")
        number = float(value)  # type: ignore[arg-type]
        if operator is Operator.BETWEEN:
            low, high = cast("list[float]", operand)  # shape checked by _compile
            if low <= number <= high:
                return True, f"is between {low} and {high} inclusive"
            return False, f"is outside {low} to {high}"
        threshold = float(operand)  # type: ignore[arg-type]
        symbol = {Operator.GTE: "≥", Operator.GT: ">", Operator.LTE: "≤", Operator.LT: "<"}[operator]
        opposite = {Operator.GTE: "<", Operator.GT: "≤", Operator.LTE: ">", Operator.LT: "≥"}[operator]
        holds = {
            Operator.GTE: number >= threshold,
            Operator.GT: number > threshold,
            Operator.LTE: number <= threshold,
            Operator.LT: number < threshold,
        }[operator]
        return holds, f"is {symbol if holds else opposite} {operand}"
    entries = _entries(comparison, value)
    if operator is Operator.CONTAINS:
        return (True, f"includes {operand}") if operand in entries else (False, f"does not include {operand}")
    if operator is Operator.CONTAINS_ANY:
        wanted = operand if isinstance(operand, list) else []
        listed = ", ".join(str(entry) for entry in wanted)
        found = sorted(str(entry) for entry in entries & set(wanted))
        return (True, f"includes {', '.join(found)}") if found else (False, f"includes none of {listed}")
    limit = int(operand)  # type: ignore[call-overload]
    count = len(entries)
    holds = count >= limit if operator is Operator.COUNT_GTE else count <= limit
    relation = "at least" if operator is Operator.COUNT_GTE else "at most"
    distinct = f"{count} distinct {'entry' if count == 1 else 'entries'}"
    return holds, f"has {distinct}, {relation} {limit}" if holds else f"has {distinct}, not {relation} {limit}"


_NEGATION = MappingProxyType(
    {Outcome.MET: Outcome.NOT_MET, Outcome.NOT_MET: Outcome.MET, Outcome.MISSING: Outcome.MISSING}
)


def _decide(node: _Node, facts: Mapping[str, object], units: Mapping[str, str]) -> tuple[Outcome, list[str]]:
    """Kleene's three-valued outcome of a node, with the reasons that decide it."""
    if isinstance(node, _Comparison):
        value = facts.get(node.item)
        if value is None:
            return Outcome.MISSING, [f"{node.item} is missing"]
        holds, words = _holds(node, value)
        return (Outcome.MET if holds else Outcome.NOT_MET), [
            f"{node.item} is {_show(value, units.get(node.item, ''))}, which {words}"
        ]
    if isinstance(node, _Not):
        outcome, reasons = _decide(node.part, facts, units)
        if outcome is Outcome.MISSING:
            return outcome, reasons
        return _NEGATION[outcome], [f"not ({'; '.join(reasons)})"]
    decided = [_decide(part, facts, units) for part in node.parts]
    # `all` is settled by a failing part, `any` by a succeeding one; missing data comes next.
    settling = Outcome.NOT_MET if isinstance(node, _AllOf) else Outcome.MET
    for outcome in (settling, Outcome.MISSING):
        reasons = [reason for found, part_reasons in decided if found is outcome for reason in part_reasons]
        if reasons:
            return outcome, reasons
    return _NEGATION[settling], [reason for _, part_reasons in decided for reason in part_reasons]


_OUTCOME_WORDS = MappingProxyType({Outcome.MET: "Met", Outcome.NOT_MET: "Not met", Outcome.MISSING: "Missing data"})


def evaluate(
    criteria: Sequence[Criterion],
    facts: Mapping[str, object],
    *,
    known_items: Mapping[str, ScreeningItem] = KNOWN_SCREENING_ITEMS,
) -> EligibilityVerdict:
    """The verdict computed from screening facts and calculator results, one reason per criterion.

    A criterion without a rule is left `missing`: the investigator attests it. `known_items`
    only lends units to the explanations; whether the rules name declared items is
    `validate_rules`'s job at start-up. A fact of the wrong type is refused (`fact_invalid`).
    """
    units = {name: item.unit for name, item in known_items.items() if item.unit}
    results = []
    for index, criterion in enumerate(criteria):
        if criterion.rule is None:
            results.append(
                CriterionResult(
                    criterion.id, criterion.kind, Outcome.MISSING, {}, "No rule in the protocol: to be attested"
                )
            )
            continue
        node = _compile(_Site(criterion.id, index), criterion.rule)
        outcome, reasons = _decide(node, facts, units)
        values_used = {comparison.item: _plain(facts.get(comparison.item)) for comparison in _comparisons(node)}
        explanation = f"{_OUTCOME_WORDS[outcome]}: {'; '.join(reasons)}"
        results.append(CriterionResult(criterion.id, criterion.kind, outcome, values_used, explanation))
    return EligibilityVerdict(overall_verdict(results), tuple(results))
