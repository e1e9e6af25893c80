"""Forms, item groups and items of the eCRF, declared in the protocol file's `forms:` section.

`parse_forms` turns the section into `FormDef`s and refuses, with the key of the problem
(`forms.2.groups.0.items.3.minimum`), a definition the engine could not use: duplicate names,
unknown types or units, an empty code list, a range with minimum ≥ maximum, a rule naming an item
that does not exist (rules use the shared language of `domain/rules.py`; another form's item is
`form.item`, the subject's facts `subject.sex` and `subject.age_years`).

Layout of a form's values: the items of a non-repeating group are keys of the form's values by
their name; a repeating group is one key, the group's name, holding a list of rows, each a mapping
of its items' names. Item names are unique within a form, groups included, so an item is always
named by its name alone, and a row's item in a refusal or finding by `group.ROW.item`
(`concomitant_medications.0.stop_date`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cartrial.domain import lab_catalogue, units
from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.ecrf.activity import ACTIVITY_DERIVATIONS, CROSS_VISIT_DERIVATIONS
from cartrial.domain.eligibility import IMMUNOSUPPRESSANTS
from cartrial.domain.errors import InvalidInput
from cartrial.domain.rules import FactType, Rule, RuleInvalid, RuleItem, compile_rule, rule_check
from cartrial.domain.scores import sledai2k
from cartrial.domain.text import N_, Message, ProtocolText, label

# A text shown to people: the protocol's own {en, fr} wording, or a msgid of the catalog.
Label = Mapping[str, str] | Message


def shown(text: Label) -> object:
    """A label as a message parameter: rendered in the reader's language by the adapter."""
    return text if isinstance(text, Message) else ProtocolText(text)


class ItemType(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"


class FormStatus(StrEnum):
    """A form's lifecycle at one visit (issue 9): each step moves it right; a change after `verified` resets it."""

    NOT_STARTED = "not_started"
    DRAFT = "draft"
    COMPLETE = "complete"
    VERIFIED = "verified"
    LOCKED = "locked"
    SIGNED = "signed"

    @property
    def label(self) -> str:
        """The status's msgid, translated by the adapter."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = MappingProxyType(
    {
        FormStatus.NOT_STARTED: N_("Not started"),
        FormStatus.DRAFT: N_("Draft"),
        FormStatus.COMPLETE: N_("Complete"),
        FormStatus.VERIFIED: N_("Verified"),
        FormStatus.LOCKED: N_("Locked"),
        FormStatus.SIGNED: N_("Signed"),
    }
)

# The display units an item that is not a lab result may carry (a typo such as "mmhg" stops start-up).
ITEM_UNITS: tuple[str, ...] = (
    "°C",
    "/min",
    "mmHg",
    "%",
    "kg",
    "mg/day",
    "mg/m²/day",
    "cells/kg",
    "days",
    "mL/min/1.73m2",
)


@dataclass(frozen=True)
class Derivation:
    """A value the engine computes from other items and the subject's facts (never typed in)."""

    name: str
    analytes: tuple[str, ...]
    unit: str
    # Items of the form it reads, by name (the lupus activity derivations).
    items: tuple[str, ...] = ()
    # Whether it compares the visit with another visit of the same form (baseline, previous visit).
    cross_visit: bool = False


# Derived items by name; `values._derive` computes them.
DERIVATIONS: Mapping[str, Derivation] = MappingProxyType(
    {
        "egfr_ckd_epi_2021": Derivation("egfr_ckd_epi_2021", ("creatinine",), "mL/min/1.73m2"),
        **{
            name: Derivation(name, (), "", items, name in CROSS_VISIT_DERIVATIONS)
            for name, items in ACTIVITY_DERIVATIONS.items()
        },
    }
)


def _clinical_codelist(codes: Sequence[str]) -> tuple[tuple[str, Label], ...]:
    return tuple((code, Message(clinical_label(code))) for code in codes)


# Code lists the protocol names instead of copying them, so they follow the score or catalogue.
CODELIST_SOURCES: Mapping[str, tuple[tuple[str, Label], ...]] = MappingProxyType(
    {
        "sledai2k_descriptors": _clinical_codelist(sledai2k.DESCRIPTOR_KEYS),
        "immunosuppressants": _clinical_codelist(IMMUNOSUPPRESSANTS),
    }
)
# What each code of a named code list means, shown beside the choice (the SLEDAI-2K glossary).
CODELIST_HELP: Mapping[str, Mapping[str, Label]] = MappingProxyType(
    {"sledai2k_descriptors": MappingProxyType({key: Message(text) for key, text in sledai2k.DEFINITIONS.items()})}
)


@dataclass(frozen=True)
class ItemDef:
    """One item of a form.

    `unit`, `minimum` and `maximum` are the item's unit and plausible range (bounds included). A lab
    result names its `analyte` (lab catalogue): `unit` is then its default unit, `units` the units
    accepted (each convertible to `unit` by `domain/units.py`), and the range is the analyte's in
    the unit entered unless the item narrows it. `visit_date` marks the date the visit was done on.
    """

    name: str
    type: ItemType
    label: Label
    help: Label | None = None
    unit: str = ""
    units: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    codelist: tuple[tuple[str, Label], ...] = ()
    # A code's definition shown beside it (code → text); codes without one show none.
    choice_help: Mapping[str, Label] = field(default_factory=dict)
    shown_when: Rule | None = None
    required_when: Rule | None = None
    derived: str | None = None
    analyte: str | None = None
    visit_date: bool = False
    pattern: str | None = None
    group: str = ""

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.codelist)

    @property
    def is_lab(self) -> bool:
        return self.analyte is not None


@dataclass(frozen=True)
class GroupDef:
    name: str
    label: Label
    repeating: bool
    items: tuple[ItemDef, ...]


@dataclass(frozen=True)
class EditCheck:
    """A rule the data must satisfy; a finding (and an automatic query) on `items` when it does not."""

    code: str
    rule: Rule
    message: Label
    items: tuple[str, ...]


@dataclass(frozen=True)
class FormDef:
    code: str
    label: Label
    groups: tuple[GroupDef, ...]
    edit_checks: tuple[EditCheck, ...] = ()
    # Other forms' items its rules read (`form.item` → item), resolved at load.
    references: Mapping[str, ItemDef] = field(default_factory=dict)
    # The visit whose values of this form are the subject's baseline (SRI-4's reference).
    baseline_visit: str | None = None

    @property
    def reads_other_visits(self) -> bool:
        """Whether a derived item compares the visit with the form at another visit (baseline, previous):
        saving the form at one visit then derives the later visits' items again."""
        return any(item.derived is not None and DERIVATIONS[item.derived].cross_visit for item in self.items)

    @property
    def items(self) -> tuple[ItemDef, ...]:
        return tuple(item for group in self.groups for item in group.items)

    def item(self, name: str) -> ItemDef:
        for item in self.items:
            if item.name == name:
                return item
        raise KeyError(name)

    def has_item(self, name: str) -> bool:
        return any(item.name == name for item in self.items)

    def reads_form(self, form_code: str) -> bool:
        """Whether a rule of this form reads an item of the form `form_code` (a cross-form check)."""
        return any(name.split(".", 1)[0] == form_code for name in self.references)

    def value_names(self) -> tuple[str, ...]:
        """The keys of a saved form's values: each item, a repeating group as one (its rows)."""
        return tuple(
            name
            for group in self.groups
            for name in ((group.name,) if group.repeating else tuple(item.name for item in group.items))
        )

    def group_of(self, name: str) -> GroupDef:
        """The group holding the item `name`."""
        for group in self.groups:
            if any(item.name == name for item in group.items):
                return group
        raise KeyError(name)


class FormDefinitionError(InvalidInput):
    """A form definition the engine cannot use; `key` is the dotted path in the protocol file."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__("{key}: {problem}", code="form_invalid", key=key, problem=problem)
        self.key = key
        self.problem = problem


_FACT_TYPES = MappingProxyType(
    {
        ItemType.INTEGER: FactType.INTEGER,
        ItemType.NUMBER: FactType.NUMBER,
        ItemType.TEXT: FactType.TEXT,
        ItemType.DATE: FactType.DATE,
        ItemType.BOOLEAN: FactType.BOOLEAN,
        ItemType.CHOICE: FactType.CHOICE,
        ItemType.MULTI_CHOICE: FactType.LIST,
    }
)


def rule_item(item: ItemDef, name: str | None = None) -> RuleItem:
    """The item as rules see it (a lab result is its number in the item's default unit)."""
    return RuleItem(
        name=name or item.name,
        type=_FACT_TYPES[item.type],
        label=shown(item.label),
        unit=item.unit or None,
        choices=item.codes,
        choice_labels={code: shown(text) for code, text in item.codelist},
    )


SUBJECT_FACTS: Mapping[str, RuleItem] = MappingProxyType(
    {
        "subject.sex": RuleItem("subject.sex", FactType.CHOICE, label(N_("Sex")), choices=("female", "male")),
        "subject.age_years": RuleItem("subject.age_years", FactType.INTEGER, label(N_("Age")), label(N_("years"))),
    }
)


def rule_items(form: FormDef, group: GroupDef | None = None) -> dict[str, RuleItem]:
    """What a rule of `form` may read: the form's items outside repeating groups, the items of `group`
    (a row's rules), other forms' referenced items and the subject's facts."""
    items = {
        item.name: rule_item(item) for each in form.groups if not each.repeating or each is group for item in each.items
    }
    items.update({name: rule_item(item, name) for name, item in form.references.items()})
    items.update(SUBJECT_FACTS)
    return items


UNKNOWN_FORM_ITEM = N_("item '{item}' is not an item of this form")
UNKNOWN_FORM_ITEM_CLOSE = N_("item '{item}' is not an item of this form; did you mean '{close}'?")


# --- parsing -------------------------------------------------------------------------------------


def _text(key: str, raw: object, *, optional: bool = False) -> Label | None:
    if raw is None and optional:
        return None
    if not isinstance(raw, Mapping) or not raw.get("en") or not raw.get("fr"):
        raise FormDefinitionError(key, "needs a text in English and French: {en: ..., fr: ...}")
    return {"en": str(raw["en"]), "fr": str(raw["fr"])}


def _name(key: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw.isidentifier() or raw != raw.lower():
        raise FormDefinitionError(key, f"'{raw}' is not a name (lower case letters, digits and _)")
    return raw


def _number(key: str, raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise FormDefinitionError(key, f"'{raw}' is not a number")
    return float(raw)


def _choice_help(key: str, raw: Mapping[str, Any]) -> Mapping[str, Label]:
    """Each code's definition: the named code list's, or the `help` of a protocol code list entry."""
    source = raw.get("codelist_from")
    if source is not None:
        return CODELIST_HELP.get(str(source), {})
    found: dict[str, Label] = {}
    for index, entry in enumerate(raw.get("codelist") or []):
        if isinstance(entry, Mapping) and entry.get("help") is not None:
            text = _text(f"{key}.codelist.{index}.help", entry.get("help"))
            assert text is not None
            found[str(entry.get("code"))] = text
    return MappingProxyType(found)


def _codelist(key: str, raw: Mapping[str, Any]) -> tuple[tuple[str, Label], ...]:
    source = raw.get("codelist_from")
    if source is not None:
        if source not in CODELIST_SOURCES:
            raise FormDefinitionError(
                f"{key}.codelist_from", f"unknown code list '{source}' ({sorted(CODELIST_SOURCES)})"
            )
        return CODELIST_SOURCES[source]
    entries = raw.get("codelist")
    if not isinstance(entries, list) or not entries:
        raise FormDefinitionError(f"{key}.codelist", "a choice needs a non-empty code list (or codelist_from)")
    codes: list[tuple[str, Label]] = []
    for index, entry in enumerate(entries):
        where = f"{key}.codelist.{index}"
        if not isinstance(entry, Mapping):
            raise FormDefinitionError(where, "needs {code: ..., label: {en: ..., fr: ...}}")
        code = _name(f"{where}.code", entry.get("code"))
        if code in (known for known, _ in codes):
            raise FormDefinitionError(f"{where}.code", f"duplicate code '{code}'")
        text = _text(f"{where}.label", entry.get("label"))
        assert text is not None
        codes.append((code, text))
    return tuple(codes)


def _lab_units(key: str, analyte: str, raw: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    spec = lab_catalogue.ANALYTES.get(analyte)
    if spec is None:
        raise FormDefinitionError(f"{key}.analyte", f"unknown analyte '{analyte}' ({sorted(lab_catalogue.ANALYTES)})")
    unit = lab_catalogue.normalise_unit(str(raw.get("unit") or spec.units[0]))
    accepted = tuple(lab_catalogue.normalise_unit(str(u)) for u in raw.get("units") or [unit])
    for index, each in enumerate((unit, *accepted)):
        where = f"{key}.unit" if index == 0 else f"{key}.units.{index - 1}"
        if each not in spec.units:
            raise FormDefinitionError(where, f"unit '{each}' is not a unit of {analyte} ({list(spec.units)})")
        if each != unit and not _convertible(analyte, each, unit):
            raise FormDefinitionError(where, f"no conversion from '{each}' to '{unit}' in domain/units.py")
    if unit not in accepted:
        accepted = (unit, *accepted)
    return unit, accepted


def _convertible(analyte: str, source: str, target: str) -> bool:
    try:
        units.convert(analyte=analyte, value=1.0, from_unit=source, to_unit=target)
    except units.UnitConversionError:
        return False
    return True


_ITEM_KEYS = frozenset(
    {
        "name",
        "type",
        "label",
        "help",
        "unit",
        "units",
        "minimum",
        "maximum",
        "required",
        "codelist",
        "codelist_from",
        "shown_when",
        "required_when",
        "derived",
        "analyte",
        "visit_date",
        "pattern",
    }
)


def _item(key: str, raw: object, group: str) -> tuple[ItemDef, Mapping[str, Any]]:
    if not isinstance(raw, Mapping):
        raise FormDefinitionError(key, "an item is a mapping {name, type, label, ...}")
    unknown = sorted(set(map(str, raw)) - _ITEM_KEYS)
    if unknown:
        raise FormDefinitionError(f"{key}.{unknown[0]}", f"unknown key (known: {sorted(_ITEM_KEYS)})")
    name = _name(f"{key}.name", raw.get("name"))
    try:
        item_type = ItemType(str(raw.get("type")))
    except ValueError:
        raise FormDefinitionError(
            f"{key}.type", f"'{raw.get('type')}' is not an item type ({list(ItemType)})"
        ) from None
    text = _text(f"{key}.label", raw.get("label"))
    assert text is not None
    help_text = _text(f"{key}.help", raw.get("help"), optional=True)
    analyte = raw.get("analyte")
    unit = str(raw.get("unit") or "")
    accepted: tuple[str, ...] = ()
    if analyte is not None:
        if item_type is not ItemType.NUMBER:
            raise FormDefinitionError(f"{key}.type", "a lab result is a number")
        unit, accepted = _lab_units(key, str(analyte), raw)
    elif unit and unit not in ITEM_UNITS:
        raise FormDefinitionError(f"{key}.unit", f"unknown unit '{unit}' (known: {list(ITEM_UNITS)})")
    minimum, maximum = _number(f"{key}.minimum", raw.get("minimum")), _number(f"{key}.maximum", raw.get("maximum"))
    if (minimum is not None or maximum is not None) and item_type not in (ItemType.INTEGER, ItemType.NUMBER):
        raise FormDefinitionError(f"{key}.minimum", f"a range needs a number item, not {item_type.value}")
    if minimum is not None and maximum is not None and minimum >= maximum:
        raise FormDefinitionError(f"{key}.minimum", f"minimum {minimum:g} must be below maximum {maximum:g}")
    codelist: tuple[tuple[str, Label], ...] = ()
    choice_help: Mapping[str, Label] = {}
    if item_type in (ItemType.CHOICE, ItemType.MULTI_CHOICE):
        codelist = _codelist(key, raw)
        choice_help = _choice_help(key, raw)
    elif "codelist" in raw or "codelist_from" in raw:
        raise FormDefinitionError(f"{key}.codelist", f"a code list needs a choice item, not {item_type.value}")
    derived = raw.get("derived")
    if derived is not None and derived not in DERIVATIONS:
        raise FormDefinitionError(f"{key}.derived", f"unknown derivation '{derived}' ({sorted(DERIVATIONS)})")
    if raw.get("visit_date") and item_type is not ItemType.DATE:
        raise FormDefinitionError(f"{key}.visit_date", "the visit date is a date item")
    pattern = raw.get("pattern")
    if pattern is not None and item_type is not ItemType.TEXT:
        raise FormDefinitionError(f"{key}.pattern", "a pattern needs a text item")
    item = ItemDef(
        name=name,
        type=item_type,
        label=text,
        help=help_text,
        unit=unit,
        units=accepted,
        minimum=minimum,
        maximum=maximum,
        required=bool(raw.get("required", False)),
        codelist=codelist,
        choice_help=choice_help,
        derived=str(derived) if derived is not None else None,
        analyte=str(analyte) if analyte is not None else None,
        visit_date=bool(raw.get("visit_date", False)),
        pattern=str(pattern) if pattern is not None else None,
        group=group,
    )
    return item, raw


def _compiled(key: str, raw: object) -> Rule:
    try:
        return compile_rule(raw, key)
    except RuleInvalid as error:
        raise FormDefinitionError(error.location, str(error.problem)) from None


def _checked(rule: Rule, items: Mapping[str, RuleItem]) -> None:
    try:
        rule_check(rule, items, unknown_item=UNKNOWN_FORM_ITEM, unknown_item_close=UNKNOWN_FORM_ITEM_CLOSE)
    except RuleInvalid as error:
        raise FormDefinitionError(error.location, str(error.problem)) from None


@dataclass
class _Draft:
    """A form being parsed: its rules are checked once every form's items are known (`form.item`)."""

    form: FormDef
    key: str
    rules: list[tuple[str, str, Rule]]  # ("item:NAME" or "check:CODE", key, rule)


def _form(key: str, raw: object) -> _Draft:
    if not isinstance(raw, Mapping):
        raise FormDefinitionError(key, "a form is a mapping {code, label, groups, edit_checks}")
    code = _name(f"{key}.code", raw.get("code"))
    text = _text(f"{key}.label", raw.get("label"))
    assert text is not None
    raw_groups = raw.get("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise FormDefinitionError(f"{key}.groups", "a form needs at least one group of items")
    names: set[str] = set()
    groups: list[GroupDef] = []
    rules: list[tuple[str, str, Rule]] = []
    for g_index, raw_group in enumerate(raw_groups):
        g_key = f"{key}.groups.{g_index}"
        if not isinstance(raw_group, Mapping):
            raise FormDefinitionError(g_key, "a group is a mapping {name, label, repeating, items}")
        g_name = _name(f"{g_key}.name", raw_group.get("name"))
        if g_name in names:
            raise FormDefinitionError(f"{g_key}.name", f"duplicate name '{g_name}' in form '{code}'")
        names.add(g_name)
        g_label = _text(f"{g_key}.label", raw_group.get("label"))
        assert g_label is not None
        raw_items = raw_group.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            raise FormDefinitionError(f"{g_key}.items", "a group needs at least one item")
        items = []
        for i_index, raw_item in enumerate(raw_items):
            i_key = f"{g_key}.items.{i_index}"
            item, source = _item(i_key, raw_item, g_name)
            if item.name in names:
                raise FormDefinitionError(f"{i_key}.name", f"duplicate name '{item.name}' in form '{code}'")
            names.add(item.name)
            for when in ("shown_when", "required_when"):
                if source.get(when) is not None:
                    rule = _compiled(f"{i_key}.{when}", source[when])
                    rules.append((f"item:{item.name}", f"{i_key}.{when}", rule))
                    item = _with_rule(item, when, rule)
            items.append(item)
        groups.append(GroupDef(g_name, g_label, bool(raw_group.get("repeating", False)), tuple(items)))
    checks: list[EditCheck] = []
    raw_checks = raw.get("edit_checks") or []
    if not isinstance(raw_checks, list):
        raise FormDefinitionError(f"{key}.edit_checks", "a list of edit checks")
    for c_index, raw_check in enumerate(raw_checks):
        c_key = f"{key}.edit_checks.{c_index}"
        if not isinstance(raw_check, Mapping):
            raise FormDefinitionError(c_key, "an edit check is a mapping {code, rule, message, items}")
        c_code = _name(f"{c_key}.code", raw_check.get("code"))
        if c_code in (check.code for check in checks):
            raise FormDefinitionError(f"{c_key}.code", f"duplicate edit check '{c_code}'")
        rule = _compiled(f"{c_key}.rule", raw_check.get("rule"))
        message = _text(f"{c_key}.message", raw_check.get("message"))
        assert message is not None
        attached = raw_check.get("items") or list(rule.items[:1])
        if not isinstance(attached, list) or not all(isinstance(name, str) for name in attached):
            raise FormDefinitionError(f"{c_key}.items", "a list of item names")
        rules.append((f"check:{c_code}", f"{c_key}.rule", rule))
        checks.append(EditCheck(c_code, rule, message, tuple(attached)))
    baseline_visit = raw.get("baseline_visit")
    if baseline_visit is not None and (not isinstance(baseline_visit, str) or not baseline_visit.strip()):
        raise FormDefinitionError(f"{key}.baseline_visit", "the code of a visit of the schedule")
    form = FormDef(code, text, tuple(groups), tuple(checks), baseline_visit=baseline_visit)
    for check, c_index in zip(checks, range(len(checks)), strict=True):
        for a_index, name in enumerate(check.items):
            if not form.has_item(name):
                raise FormDefinitionError(
                    f"{key}.edit_checks.{c_index}.items.{a_index}", f"'{name}' is not an item of form '{code}'"
                )
    for item in form.items:
        if item.derived is not None:
            derivation = DERIVATIONS[item.derived]
            needed = derivation.analytes
            present = {each.analyte for each in form.items}
            if not set(needed) <= present:
                raise FormDefinitionError(
                    f"{key}.groups", f"'{item.name}' is derived from {list(needed)}, which form '{code}' lacks"
                )
            lacking = [name for name in derivation.items if not form.has_item(name)]
            if lacking:
                raise FormDefinitionError(
                    f"{key}.groups", f"'{item.name}' is derived from the items {lacking}, which form '{code}' lacks"
                )
            if derivation.cross_visit and form.baseline_visit is None:
                raise FormDefinitionError(
                    f"{key}.baseline_visit", f"'{item.name}' compares with the baseline: name the baseline visit"
                )
    return _Draft(form, key, rules)


def _with_rule(item: ItemDef, when: str, rule: Rule) -> ItemDef:
    return replace(item, shown_when=rule) if when == "shown_when" else replace(item, required_when=rule)


def _resolve(draft: _Draft, forms: Mapping[str, FormDef]) -> FormDef:
    """Check the form's rules: its own items, `form.item` of other forms, the subject's facts."""
    form = draft.form
    references: dict[str, ItemDef] = {}
    for _, _key, rule in draft.rules:
        for name in rule.items:
            other_form, _, other_item = name.partition(".")
            if (
                other_item
                and other_form in forms
                and other_form != form.code
                and forms[other_form].has_item(other_item)
            ):
                references[name] = forms[other_form].item(other_item)
    resolved = FormDef(
        form.code, form.label, form.groups, form.edit_checks, MappingProxyType(references), form.baseline_visit
    )
    for owner, _, rule in draft.rules:
        group = _row_group(resolved, owner, rule)
        # Outside a row, a repeating group's items are not facts: such a rule names an unknown item.
        _checked(rule, rule_items(resolved, group))
    return resolved


def _in_repeating(form: FormDef, name: str) -> bool:
    return form.has_item(name) and form.group_of(name).repeating


def _row_group(form: FormDef, owner: str, rule: Rule) -> GroupDef | None:
    """The repeating group whose rows the rule is evaluated on, if any (the owner's, or the items' read)."""
    kind, _, name = owner.partition(":")
    if kind == "item":
        # An item's condition is evaluated where the item is: in its row, or on the form.
        group = form.group_of(name)
        return group if group.repeating else None
    groups = {form.group_of(name).name for name in rule.items if _in_repeating(form, name)}
    if len(groups) == 1:
        return next(group for group in form.groups if group.name in groups)
    return None


def parse_forms(data: object, key: str = "forms") -> dict[str, FormDef]:
    """The protocol's forms by code, in file order; FormDefinitionError names the key of the first problem."""
    if data is None:
        return {}
    if not isinstance(data, list):
        raise FormDefinitionError(key, "a list of forms")
    drafts: list[_Draft] = []
    for index, raw in enumerate(data):
        draft = _form(f"{key}.{index}", raw)
        if draft.form.code in (each.form.code for each in drafts):
            raise FormDefinitionError(f"{key}.{index}.code", f"duplicate form code '{draft.form.code}'")
        drafts.append(draft)
    forms = {draft.form.code: draft.form for draft in drafts}
    return {draft.form.code: _resolve(draft, forms) for draft in drafts}
