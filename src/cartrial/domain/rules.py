"""The declarative rule language of the protocol file, shared by eligibility criteria and eCRF forms.

A rule is a small tree read from the protocol file and interpreted here (never `eval`-ed):

    {all: [RULE, ...]}          met when every part is met
    {any: [RULE, ...]}          met when at least one part is met
    {not: RULE}                 met when the part is not met
    {item: NAME, OP: OPERAND}   one comparison on one fact, with exactly one OP:

    equals V                 boolean, integer, number, choice or text item equals V
    in [V, ...]              the value is one of V...
    gte N | gt N | lte N | lt N   ≥, >, ≤, < a number, or {item: OTHER}: the value of another
                             item of the same kind (numbers in the same unit, or dates)
    between [LOW, HIGH]      LOW ≤ value ≤ HIGH (both bounds inclusive, as protocols word ranges)
    contains V               a list item includes V
    contains_any [V, ...]    a list item includes at least one of V...
    count_gte N | count_lte N    a list item has at least / at most N distinct entries

NAME is a dotted name over a flat mapping of facts. Which names exist is the caller's catalogue
(`RuleItem`s): screening items and calculator results for eligibility, a form's items (and
`form.item` of other forms) for the eCRF. `compile_rule` checks a rule's shape, `rule_check` its
items against the catalogue (run when the protocol is loaded), `evaluate_rule` decides it.

An item absent from the facts, or None, is missing data, never "not met": outcomes combine as
in Kleene's three-valued logic (`all` fails if one part fails, else is missing if one part is;
`any` dually; `not` swaps met and not met), so adding data can settle an undecided rule but never
reverse a decided one.

Each outcome carries its explanation as a `Message` a clinician reads: the item's label, its value
with its unit, and the rule ("Age: 72 years, above the limit of 65 years"). A `not` is pushed down
to the comparisons before explaining (not ≥ is <, not all is any of the nots), which keeps the
outcome and lets every sentence say what the rule wants.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, Message, joined, label


class Outcome(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    MISSING = "missing"


class FactType(StrEnum):
    """What kind of value a fact holds; decides which operators may test it."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    CHOICE = "choice"
    LIST = "list"
    TEXT = "text"
    DATE = "date"


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


@dataclass(frozen=True)
class RuleItem:
    """A fact a rule may test, as the rule language sees it.

    `label` and `unit` are what explanations show (a Message, a ProtocolText; None shows the name and
    no unit); `choice_labels` how a choice reads (default: the clinical label of its code); `missing`
    the whole sentence said when the value is not known yet. `unit_item` names the item carrying this
    value's unit (creatinine in mg/dL or µmol/L): a threshold on such a value would mean two
    different things, so rules may not compare it.
    """

    name: str
    type: FactType
    label: object = None
    unit: object = None
    choices: tuple[str, ...] = ()
    choice_labels: Mapping[str, object] = field(default_factory=dict)
    unit_item: str = ""
    missing: Message | None = None


class RuleInvalid(InvalidInput):
    """A rule that cannot be used: `location` is where in the rule (`rule.all.1.item`), `problem` what."""

    def __init__(self, code: str, location: str, problem: Message) -> None:
        super().__init__("{location}: {problem}", code=code, location=location, problem=problem)
        self.location = location
        self.problem = problem


_SCALAR_TYPES = frozenset({FactType.BOOLEAN, FactType.INTEGER, FactType.NUMBER, FactType.CHOICE, FactType.TEXT})
_NUMERIC_TYPES = frozenset({FactType.INTEGER, FactType.NUMBER})
_THRESHOLDS = frozenset({Operator.GTE, Operator.GT, Operator.LTE, Operator.LT})
_COUNTS = frozenset({Operator.COUNT_GTE, Operator.COUNT_LTE})
_APPLIES_TO: Mapping[Operator, frozenset[FactType]] = MappingProxyType(
    {
        Operator.EQUALS: _SCALAR_TYPES,
        Operator.IN: frozenset({FactType.INTEGER, FactType.NUMBER, FactType.CHOICE, FactType.TEXT}),
        **dict.fromkeys(_THRESHOLDS, _NUMERIC_TYPES | {FactType.DATE}),
        Operator.BETWEEN: _NUMERIC_TYPES,
        Operator.CONTAINS: frozenset({FactType.LIST}),
        Operator.CONTAINS_ANY: frozenset({FactType.LIST}),
        **dict.fromkeys(_COUNTS, frozenset({FactType.LIST})),
    }
)
_COMBINATORS = ("all", "any", "not")
# Deep enough for any real rule; stops a YAML alias that refers to itself.
MAX_RULE_DEPTH = 16


@dataclass(frozen=True)
class ItemReference:
    """The operand `{item: OTHER}` of a threshold: compare with another fact's value."""

    item: str


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


def _refuse(code: str, location: str, problem: Message) -> RuleInvalid:
    return RuleInvalid(code, location, problem)


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


def _reference(operand: object) -> ItemReference | None:
    if isinstance(operand, Mapping) and list(operand) == ["item"] and isinstance(operand["item"], str):
        return ItemReference(operand["item"])
    return None


def _check_operand(operator: Operator, operand: object, location: str) -> object:
    """Operand shapes that hold whatever the item: numbers for thresholds, lists for `in`...; the operand as used."""

    def wrong(expected: str) -> RuleInvalid:
        problem = Message(
            "{operator} needs {expected}, got {operand}",
            {"operator": operator.value, "expected": label(expected), "operand": repr(operand)},
        )
        return _refuse("rule_invalid_operand", location, problem)

    if operator is Operator.EQUALS:
        if _kind(operand) is None or (_kind(operand) == "number" and not _is_number(operand)):
            raise wrong(N_("a boolean, a finite number or a text"))
    elif operator in _THRESHOLDS:
        reference = _reference(operand)
        if reference is not None:
            return reference
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
    return operand


def _compile(raw: object, location: str, depth: int = 0) -> _Node:
    """The rule tree checked for shape and turned into nodes; items are checked by rule_check."""
    if depth > MAX_RULE_DEPTH:
        raise _refuse("rule_invalid", location, Message("nested deeper than {depth} levels", {"depth": MAX_RULE_DEPTH}))
    if not isinstance(raw, Mapping):
        raise _refuse(
            "rule_invalid",
            location,
            Message("must be a mapping like {{item: age_years, gte: 18}}, got {raw}", {"raw": repr(raw)}),
        )
    keys = [str(key) for key in raw]
    combinators = [key for key in keys if key in _COMBINATORS]
    if combinators:
        if len(keys) != 1:
            raise _refuse(
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
            return _Not(_compile(raw[key], part_location, depth + 1))
        parts = raw[key]
        if not isinstance(parts, list) or not parts:
            raise _refuse("rule_invalid", part_location, Message("needs a non-empty list of rules"))
        compiled = tuple(_compile(part, f"{part_location}.{i}", depth + 1) for i, part in enumerate(parts))
        return _AllOf(compiled) if key == "all" else _AnyOf(compiled)
    if "item" not in keys:
        unknown = ", ".join(repr(key) for key in keys)
        raise _refuse(
            "rule_unknown_operator",
            location,
            Message(
                "found {found}; a rule is {{all: [...]}}, {{any: [...]}}, {{not: ...}} or {{item: NAME, OPERATOR: V}}",
                {"found": unknown or label(N_("nothing"))},
            ),
        )
    item = raw["item"]
    if not isinstance(item, str) or not item:
        raise _refuse(
            "rule_invalid", f"{location}.item", Message("must be an item name, got {item}", {"item": repr(item)})
        )
    operators = [key for key in keys if key != "item"]
    for key in operators:
        if key not in {operator.value for operator in Operator}:
            raise _refuse(
                "rule_unknown_operator",
                f"{location}.{key}",
                Message(
                    "'{key}' on item '{item}' is not an operator ({known})",
                    {"key": key, "item": item, "known": [op.value for op in Operator]},
                ),
            )
    if len(operators) != 1:
        raise _refuse(
            "rule_invalid",
            location,
            Message(
                "a comparison on item '{item}' needs exactly one operator, found {operators}",
                {"item": item, "operators": repr(operators)},
            ),
        )
    operator = Operator(operators[0])
    operand = _check_operand(operator, raw[operator.value], f"{location}.{operator.value}")
    return _Comparison(item, operator, operand, location)


def _comparisons(node: _Node) -> list[_Comparison]:
    if isinstance(node, _Comparison):
        return [node]
    if isinstance(node, _Not):
        return _comparisons(node.part)
    return [comparison for part in node.parts for comparison in _comparisons(part)]


@dataclass(frozen=True)
class Rule:
    """A rule checked for shape, ready to check against a catalogue and to evaluate."""

    source: Mapping[str, object]
    node: _Node = field(repr=False, compare=False)

    @property
    def items(self) -> tuple[str, ...]:
        """Every item the rule reads, references included, in the order written (for values used)."""
        names: list[str] = []
        for comparison in _comparisons(self.node):
            names.append(comparison.item)
            if isinstance(comparison.operand, ItemReference):
                names.append(comparison.operand.item)
        return tuple(dict.fromkeys(names))


def compile_rule(raw: object, location: str = "rule") -> Rule:
    """The rule read from the protocol file, checked for shape (RuleInvalid names where in the rule)."""
    node = _compile(raw, location)
    return Rule(cast("Mapping[str, object]", raw), node)


# --- checking against a catalogue ----------------------------------------------------------------

UNKNOWN_ITEM = N_("item '{item}' is not a declared screening item")
UNKNOWN_ITEM_CLOSE = N_("item '{item}' is not a declared screening item; did you mean '{close}'?")


def _unknown(name: str, location: str, items: Mapping[str, RuleItem], wording: tuple[str, str]) -> RuleInvalid:
    close = difflib.get_close_matches(name, list(items), n=1)
    problem = Message(wording[1], {"item": name, "close": close[0]}) if close else Message(wording[0], {"item": name})
    return _refuse("rule_unknown_item", location, problem)


def _check_against_item(comparison: _Comparison, items: Mapping[str, RuleItem], wording: tuple[str, str]) -> None:
    """The comparison makes sense for the declared item: exists, right type, allowed values, one unit."""
    item = items.get(comparison.item)
    if item is None:
        raise _unknown(comparison.item, f"{comparison.location}.item", items, wording)
    operator, operand = comparison.operator, comparison.operand
    where = f"{comparison.location}.{operator.value}"
    if item.type not in _APPLIES_TO[operator]:
        raise _refuse(
            "rule_type_mismatch",
            where,
            Message(
                "{operator} cannot test '{item}', whose type is {type}",
                {"operator": operator.value, "item": item.name, "type": item.type.value},
            ),
        )
    if item.unit_item and operator is not Operator.EQUALS:
        raise _refuse(
            "rule_unit_ambiguous",
            where,
            Message(
                "item '{item}' has no fixed unit (see '{unit_item}'); compare a value computed from it",
                {"item": item.name, "unit_item": item.unit_item},
            ),
        )
    if isinstance(operand, ItemReference):
        _check_reference(item, operand, where, items, wording)
        return
    if item.type is FactType.DATE:
        raise _refuse(
            "rule_invalid_operand",
            where,
            Message("item '{item}' is a date: compare it with another date item, {{item: NAME}}", {"item": item.name}),
        )
    values = operand if operator in (Operator.IN, Operator.CONTAINS_ANY) else [operand]
    if operator in (Operator.EQUALS, Operator.IN):
        expected = {
            FactType.BOOLEAN: "boolean",
            FactType.INTEGER: "number",
            FactType.NUMBER: "number",
            FactType.CHOICE: "text",
            FactType.TEXT: "text",
        }[item.type]
        for value in values:  # type: ignore[attr-defined]
            if _kind(value) != expected:
                raise _refuse(
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
                raise _refuse(
                    "rule_invalid_operand",
                    where,
                    Message(
                        "{value} is not a value of item '{item}' ({choices})",
                        {"value": repr(value), "item": item.name, "choices": list(item.choices)},
                    ),
                )


def _check_reference(
    item: RuleItem, reference: ItemReference, where: str, items: Mapping[str, RuleItem], wording: tuple[str, str]
) -> None:
    """Two items compared with each other: both numbers in one unit, or both dates."""
    other = items.get(reference.item)
    if other is None:
        raise _unknown(reference.item, f"{where}.item", items, wording)
    same_kind = (item.type in _NUMERIC_TYPES and other.type in _NUMERIC_TYPES) or (
        item.type is FactType.DATE and other.type is FactType.DATE
    )
    if not same_kind or other.unit_item or item.unit != other.unit:
        raise _refuse(
            "rule_type_mismatch",
            where,
            Message(
                "'{item}' ({type}) cannot be compared with '{other}' ({other_type}): same kind and unit needed",
                {"item": item.name, "type": item.type.value, "other": other.name, "other_type": other.type.value},
            ),
        )


def rule_check(
    rule: Rule,
    items: Mapping[str, RuleItem],
    *,
    unknown_item: str = UNKNOWN_ITEM,
    unknown_item_close: str = UNKNOWN_ITEM_CLOSE,
) -> None:
    """Refuse (RuleInvalid) a rule that could not be evaluated over `items`.

    Run when the protocol is loaded, so a typo in the file stops start-up instead of leaving a
    rule forever `missing`. The two msgids say what an unknown item is not ("a declared screening
    item", "an item of this form"), with and without a suggestion.
    """
    for comparison in _comparisons(rule.node):
        _check_against_item(comparison, items, (unknown_item, unknown_item_close))


def rule_validate(raw: object, items: Mapping[str, RuleItem], location: str = "rule", **wording: str) -> Rule:
    """`compile_rule` then `rule_check`: the rule ready to evaluate, or RuleInvalid."""
    rule = compile_rule(raw, location)
    rule_check(rule, items, **wording)
    return rule


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


def plain_value(value: object) -> object:
    """A fact as JSON-ready data for `values_used` (a verdict is hashed and signed)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, date):
        return value.isoformat()
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
    """How one item's values read: its label and unit, or its name when undeclared."""

    name: object
    unit: object
    choice_labels: Mapping[str, object] = field(default_factory=dict)

    def number(self, value: object) -> object:
        """A number with the item's unit ("72 years"), rendered in the reader's notation."""
        return Message(N_("{number} {unit}"), {"number": value, "unit": self.unit}) if self.unit else value

    def scalar(self, value: object) -> object:
        """A boolean (yes/no in words), a number with its unit, a choice by its label, a date as written."""
        if isinstance(value, str):
            return self.choice_labels.get(value) or label(clinical_label(value))
        if isinstance(value, date):
            return value
        return value if isinstance(value, bool) else self.number(value)

    def entries(self, values: object) -> object:
        """List entries by their labels, in a stable order; "none listed" for an empty list."""
        listed = sorted(values, key=str) if isinstance(values, set | frozenset) else list(cast("list[object]", values))
        unique = list(dict.fromkeys(listed))
        if not unique:
            return label(N_("none listed"))
        return [self.choice_labels.get(str(entry)) or label(clinical_label(str(entry))) for entry in unique]


def _say(msgid: str, wording: _Wording, value: object, **params: object) -> Message:
    return Message(msgid, {"item": wording.name, "value": value, **params})


def _threshold(
    comparison: _Comparison, wording: _Wording, value: Any, shown: object, limit: Any, bound: object
) -> tuple[bool, Message]:
    """≥, >, ≤, < against the limit, worded from the item's side (`shown` is the value as read)."""
    operator = comparison.operator
    if operator in (Operator.GTE, Operator.COUNT_GTE):
        if value >= limit:
            return True, _say(N_("{item}: {value}, at least {limit} required: met"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, below the minimum of {limit}"), wording, shown, limit=bound)
    if operator is Operator.GT:
        if value > limit:
            return True, _say(N_("{item}: {value}, more than {limit} required: met"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, not more than {limit}"), wording, shown, limit=bound)
    if operator in (Operator.LTE, Operator.COUNT_LTE):
        if value <= limit:
            return True, _say(N_("{item}: {value}, within the limit of {limit}"), wording, shown, limit=bound)
        return False, _say(N_("{item}: {value}, above the limit of {limit}"), wording, shown, limit=bound)
    if value < limit:
        return True, _say(N_("{item}: {value}, below {limit} as required"), wording, shown, limit=bound)
    return False, _say(N_("{item}: {value}, not below {limit}"), wording, shown, limit=bound)


def _comparable(comparison: _Comparison, value: object) -> float | date:
    if isinstance(value, date):
        return value
    if not _is_number(value):
        raise _fact_refused(comparison, value, N_("a finite number"))
    return float(cast("float", value))


def _holds(
    comparison: _Comparison, value: object, wording: _Wording, other: tuple[object, _Wording] | None = None
) -> tuple[bool, Message]:
    """Whether the comparison holds for a present value, and the sentence saying so.

    `other` is the referenced item's value and wording when the operand is `{item: OTHER}`.
    """
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
    if operator in _THRESHOLDS:
        number = _comparable(comparison, value)
        shown = wording.scalar(value)
        if other is not None:
            other_value, other_wording = other
            reference = cast("ItemReference", operand)
            limit = _comparable(replace(comparison, item=reference.item), other_value)
            if isinstance(limit, date) != isinstance(number, date):
                raise _fact_refused(comparison, value, N_("a value of the same type as the rule's"))
            bound: object = Message(
                N_("{item} ({value})"), {"item": other_wording.name, "value": other_wording.scalar(other_value)}
            )
            return _threshold(comparison, wording, number, shown, limit, bound)
        if isinstance(number, date):
            raise _fact_refused(comparison, value, N_("a finite number"))
        return _threshold(comparison, wording, number, shown, float(cast("float", operand)), wording.number(operand))
    if operator is Operator.BETWEEN:
        if not _is_number(value):
            raise _fact_refused(comparison, value, N_("a finite number"))
        number_value = float(cast("float", value))
        shown = wording.number(value)
        low, high = cast("list[float]", operand)  # shape checked by _compile
        low_shown, high_shown = wording.number(low), wording.number(high)
        inside = low <= number_value <= high
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
        if number_value < low:
            return False, _say(N_("{item}: {value}, below the minimum of {limit}"), wording, shown, limit=low_shown)
        return False, _say(N_("{item}: {value}, above the limit of {limit}"), wording, shown, limit=high_shown)
    entries = _entries(comparison, value)
    shown = wording.entries(value)
    if operator in _COUNTS:
        counted = Message(N_("{entries} ({count})"), {"entries": shown, "count": len(entries)})
        limit_count = float(cast("int", operand))
        return _threshold(comparison, wording, float(len(entries)), counted, limit_count, operand)
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


def _wording(name: str, items: Mapping[str, RuleItem]) -> _Wording:
    item = items.get(name)
    if item is None:
        return _Wording(name, None)
    return _Wording(item.label if item.label is not None else name, item.unit, item.choice_labels)


def _missing(name: str, items: Mapping[str, RuleItem]) -> Message:
    item = items.get(name)
    if item is not None and item.missing is not None:
        return item.missing
    return Message(N_("{item}: not known yet"), {"item": _wording(name, items).name})


def _decide(node: _Node, facts: Mapping[str, object], items: Mapping[str, RuleItem]) -> tuple[Outcome, list[Message]]:
    """Kleene's three-valued outcome of a node (`not` already pushed down), with the sentences deciding it."""
    if isinstance(node, _Comparison):
        value = facts.get(node.item)
        if value is None:
            return Outcome.MISSING, [_missing(node.item, items)]
        other = None
        if isinstance(node.operand, ItemReference):
            other_value = facts.get(node.operand.item)
            if other_value is None:
                return Outcome.MISSING, [_missing(node.operand.item, items)]
            other = (other_value, _wording(node.operand.item, items))
        holds, sentence = _holds(node, value, _wording(node.item, items), other)
        return (Outcome.MET if holds else Outcome.NOT_MET), [sentence]
    if isinstance(node, _Not):  # pragma: no cover - evaluate_rule removes every `not` first
        return _decide(_without_not(node), facts, items)
    decided = [_decide(part, facts, items) for part in node.parts]
    # `all` is settled by a failing part, `any` by a succeeding one; missing data comes next.
    settling = Outcome.NOT_MET if isinstance(node, _AllOf) else Outcome.MET
    for outcome in (settling, Outcome.MISSING):
        reasons = [reason for found, part_reasons in decided if found is outcome for reason in part_reasons]
        if reasons:
            return outcome, reasons
    other_outcome = Outcome.MET if settling is Outcome.NOT_MET else Outcome.NOT_MET
    return other_outcome, [reason for _, part_reasons in decided for reason in part_reasons]


@dataclass(frozen=True)
class RuleResult:
    """A rule's outcome, the sentence(s) deciding it, and the facts it read (JSON-ready)."""

    outcome: Outcome
    explanation: Message
    values_used: Mapping[str, object]


def evaluate_rule(rule: Rule, facts: Mapping[str, object], items: Mapping[str, RuleItem]) -> RuleResult:
    """The outcome of the rule over `facts`, explained with the labels and units of `items`.

    A fact of the wrong type is refused (`fact_invalid`); whether the rule names declared items is
    `rule_check`'s job at start-up, `items` only lends labels and units here.
    """
    outcome, reasons = _decide(_without_not(rule.node), facts, items)
    values_used = {name: plain_value(facts.get(name)) for name in rule.items}
    return RuleResult(outcome, joined(reasons), values_used)
