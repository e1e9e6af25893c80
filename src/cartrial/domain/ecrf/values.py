"""One generic engine checks a form's values, for pages, the API and CSV import alike.

`form_values_check` converts every submitted item to its type, refuses the first that cannot be
valid (`InvalidInput` with `code`, `item` and the rule's numbers), computes derived items and drops
the values of items a rule hides. It returns the cleaned values, JSON-ready, and the required items
still without a value: a draft may have some, `complete` needs none (`required_check`).

Refusal codes: `item_unknown` (not an item of the form, or a derived one in a repeating row),
`item_type` (not a value of the item's type), `item_range` (outside the plausible range, in the
unit entered), `item_unit` (a unit the item does not accept), `item_choice` (not in the code
list), `item_reference_range` (a lab's lower limit above its upper limit), `item_date` (a visit
date before inclusion), `item_required` (`required_check` only).

Cleaned values: integers, numbers (float), texts, booleans, choice codes, multi-choice codes as a
list in code-list order, dates as `YYYY-MM-DD`; a lab result as `{"value", "unit", "lower_limit",
"upper_limit"}` in the unit entered (normalised spelling: `umol/L`), so the one lab-observation
store keeps what the lab reported; rules compare it in the item's default unit, converted by
`domain/units.py` only. A derived value submitted with the form is replaced by the computed one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cartrial.domain import lab_catalogue, units
from cartrial.domain.ecrf.activity import ACTIVITY_DERIVATIONS, activity_derived
from cartrial.domain.ecrf.definitions import DERIVATIONS, FormDef, GroupDef, ItemDef, ItemType, rule_items, shown
from cartrial.domain.errors import InvalidInput
from cartrial.domain.rules import Outcome, evaluate_rule
from cartrial.domain.scores.egfr import Sex, estimate_egfr_ckd_epi_2021
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import N_

# A text item longer than this is a paste error, not an answer.
MAX_TEXT_LENGTH = 2000


@dataclass(frozen=True)
class FormContext:
    """Where a form is filled: the visit and its window, the anchors, the subject's facts, the other forms' values."""

    visit_code: str = ""
    target: date | None = None
    earliest: date | None = None
    latest: date | None = None
    done_on: date | None = None
    inclusion_date: date | None = None
    infusion_date: date | None = None
    sex: str | None = None
    age_years: int | None = None
    other_forms: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    # The same form's values at the form's baseline visit (None at that visit itself or before it is
    # entered) and at the visit before this one in time (None for the first): cross-visit derivations.
    baseline_values: Mapping[str, object] | None = None
    previous_values: Mapping[str, object] | None = None


@dataclass(frozen=True)
class CleanedValues:
    values: dict[str, object]
    missing: tuple[str, ...]


def _refuse(msgid: str, code: str, path: str, item: ItemDef, value: object = None, **params: object) -> InvalidInput:
    return InvalidInput(msgid, code=code, item=path, label=shown(item.label), value=_shown_value(value), **params)


def _shown_value(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)


def _to_number(raw: object, integer: bool) -> float | int | None:
    """A number from JSON or a typed text ("37,5" as a French keyboard writes it); None when it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip().replace(",", ".")
        try:
            raw = int(text) if integer and re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            return None
    if not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    if integer:
        return int(raw) if float(raw).is_integer() else None
    return float(raw)


def _range_check(
    item: ItemDef, path: str, value: float, minimum: float | None, maximum: float | None, unit: str
) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _refuse(
            N_("{label}: {value} {unit} is outside the plausible range {minimum}–{maximum} {unit}."),
            "item_range",
            path,
            item,
            value,
            minimum=_shown_value(minimum),
            maximum=_shown_value(maximum),
            unit=unit,
        )


_TRUE = frozenset({"true", "yes", "1", "on", "oui"})
_FALSE = frozenset({"false", "no", "0", "off", "non"})


def _scalar(item: ItemDef, path: str, raw: object) -> object:
    """One submitted value of a non-lab item, converted and checked."""
    wrong_type = N_("{label}: {value} is not a value of type {type}.")
    if item.type in (ItemType.INTEGER, ItemType.NUMBER):
        number = _to_number(raw, item.type is ItemType.INTEGER)
        if number is None:
            raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value)
        _range_check(item, path, float(number), item.minimum, item.maximum, item.unit)
        return number
    if item.type is ItemType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if isinstance(raw, str | int) else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value)
    if item.type is ItemType.DATE:
        if isinstance(raw, date):
            return raw.isoformat()
        try:
            return date.fromisoformat(str(raw).strip()).isoformat() if isinstance(raw, str) else _no_date()
        except ValueError:
            raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value) from None
    if item.type is ItemType.TEXT:
        if not isinstance(raw, str) or len(raw) > MAX_TEXT_LENGTH:
            raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value)
        text = raw.strip()
        if item.pattern is not None and not re.fullmatch(item.pattern, text):
            raise _refuse(N_("{label}: {value} is not in the expected form."), "item_type", path, item, raw)
        return text
    if item.type is ItemType.CHOICE:
        if not isinstance(raw, str):
            raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value)
        return _code(item, path, raw)
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list | tuple) or not all(isinstance(entry, str) for entry in entries):
        raise _refuse(wrong_type, "item_type", path, item, raw, type=item.type.value)
    chosen = {_code(item, path, entry) for entry in entries}
    return [code for code in item.codes if code in chosen]


def _no_date() -> str:
    raise ValueError("not a date")


def _code(item: ItemDef, path: str, raw: str) -> str:
    code = raw.strip()
    if code not in item.codes:
        raise _refuse(
            N_("{label}: {value} is not one of the listed answers ({codes})."),
            "item_choice",
            path,
            item,
            raw,
            codes=list(item.codes),
        )
    return code


def _lab(item: ItemDef, path: str, raw: object) -> dict[str, object]:
    """A lab result: a number in the item's default unit, or {value, unit, lower_limit, upper_limit}."""
    assert item.analyte is not None
    entry: Mapping[str, object] = raw if isinstance(raw, Mapping) else {"value": raw}
    unknown = sorted(set(map(str, entry)) - {"value", "unit", "lower_limit", "upper_limit"})
    if unknown:
        raise _refuse(
            N_("{label}: unknown key {key} in a lab result."),
            "item_unknown",
            f"{path}.{unknown[0]}",
            item,
            key=unknown[0],
        )
    unit_raw = entry.get("unit") or item.unit
    unit = lab_catalogue.normalise_unit(unit_raw) if isinstance(unit_raw, str) else ""
    if unit not in item.units:
        raise _refuse(
            N_("{label}: unit {unit} is not accepted (accepted: {units})."),
            "item_unit",
            path,
            item,
            unit_raw,
            unit=str(unit_raw),
            units=list(item.units),
        )
    minimum, maximum = lab_range(item, unit)
    numbers: dict[str, object] = {"unit": unit}
    for key in ("value", "lower_limit", "upper_limit"):
        given = entry.get(key)
        if _blank(given):
            numbers[key] = None
            continue
        number = _to_number(given, integer=False)
        where = path if key == "value" else f"{path}.{key}"
        if number is None:
            raise _refuse(
                N_("{label}: {value} is not a value of type {type}."), "item_type", where, item, given, type="number"
            )
        _range_check(item, where, float(number), minimum, maximum, unit)
        numbers[key] = number
    if numbers["value"] is None:
        raise _refuse(N_("{label}: the result is missing."), "item_type", path, item, raw, type="number")
    low, high = numbers["lower_limit"], numbers["upper_limit"]
    if isinstance(low, float) and isinstance(high, float) and low > high:
        raise _refuse(
            N_("{label}: lower limit of normal {minimum} above the upper limit {maximum}."),
            "item_reference_range",
            f"{path}.upper_limit",
            item,
            high,
            minimum=_shown_value(low),
            maximum=_shown_value(high),
        )
    return numbers


def lab_range(item: ItemDef, unit: str) -> tuple[float, float]:
    """The plausible range of a lab item's result entered in `unit` (one of `item.units`): the analyte's
    in that unit, narrowed by the item's own bounds (declared in its default unit). The engine refuses
    outside it; the exports declare it (ODM RangeCheck)."""
    assert item.analyte is not None
    minimum, maximum = lab_catalogue.ANALYTES[item.analyte].ranges[unit]
    if item.minimum is not None or item.maximum is not None:
        # The protocol narrows the analyte's range, in the item's default unit.
        minimum = _in_unit(item, item.minimum, unit) if item.minimum is not None else minimum
        maximum = _in_unit(item, item.maximum, unit) if item.maximum is not None else maximum
    return minimum, maximum


def _in_unit(item: ItemDef, number: float, unit: str) -> float:
    if unit == item.unit:
        return number
    assert item.analyte is not None
    return units.convert(analyte=item.analyte, value=number, from_unit=item.unit, to_unit=unit).value


def lab_number(item: ItemDef, value: object) -> float | None:
    """A stored lab result's number in the item's default unit (what rules and derivations read)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), int | float):
        return None
    number, unit = float(value["value"]), str(value.get("unit") or item.unit)
    if unit == item.unit or item.analyte is None:
        return number
    return units.convert(analyte=item.analyte, value=number, from_unit=unit, to_unit=item.unit).value


def _value(item: ItemDef, path: str, raw: object) -> object:
    if _blank(raw):
        return None
    return _lab(item, path, raw) if item.is_lab else _scalar(item, path, raw)


def _unknown(form: FormDef, path: str) -> InvalidInput:
    return InvalidInput("{item} is not an item of form {form}.", code="item_unknown", item=path, form=shown(form.label))


def _rows(form: FormDef, group: GroupDef, raw: object) -> list[dict[str, object]]:
    if _blank(raw):
        return []
    if not isinstance(raw, list | tuple) or not all(isinstance(row, Mapping) for row in raw):
        raise InvalidInput(
            "{item}: a repeating group is a list of rows, each a mapping of its items.",
            code="item_type",
            item=group.name,
        )
    names = {item.name: item for item in group.items}
    rows = []
    for index, row in enumerate(raw):
        cleaned: dict[str, object] = {}
        for name, value in row.items():
            path = f"{group.name}.{index}.{name}"
            item = names.get(str(name))
            if item is None:
                raise _unknown(form, path)
            if item.derived is None:
                cleaned[item.name] = _value(item, path, value)
        rows.append(cleaned)
    return rows


def facts(form: FormDef, values: Mapping[str, object], context: FormContext) -> dict[str, object]:
    """What rules read: the form's items (labs in their default unit, dates as dates), other forms'
    referenced items (`form.item`) and the subject's facts."""
    found: dict[str, object] = {"subject.sex": context.sex, "subject.age_years": context.age_years}
    for item in form.items:
        if not form.group_of(item.name).repeating:
            found[item.name] = _fact(item, values.get(item.name))
    for name, item in form.references.items():
        other_form, _, other_item = name.partition(".")
        found[name] = _fact(item, context.other_forms.get(other_form, {}).get(other_item))
    return found


def row_facts(
    form: FormDef, group: GroupDef, row: Mapping[str, object], base: Mapping[str, object]
) -> dict[str, object]:
    """The facts of one row of a repeating group: the form's facts and the row's items."""
    return {**base, **{item.name: _fact(item, row.get(item.name)) for item in group.items}}


def _fact(item: ItemDef, value: object) -> object:
    if value is None:
        return None
    if item.is_lab:
        return lab_number(item, value)
    if item.type is ItemType.DATE and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return value


def _holds(item_rule: Any, base: Mapping[str, object], form: FormDef, group: GroupDef | None) -> bool:
    return evaluate_rule(item_rule, base, rule_items(form, group)).outcome is Outcome.MET


def _hide(form: FormDef, group: GroupDef | None, scope: dict[str, object], base: Mapping[str, object]) -> bool:
    """Drop the values of items whose `shown_when` does not hold; True when something was dropped."""
    dropped = False
    items = group.items if group is not None else [i for g in form.groups if not g.repeating for i in g.items]
    for item in items:
        hidden = item.shown_when is not None and not _holds(item.shown_when, base, form, group)
        if hidden and scope.get(item.name) is not None:
            scope[item.name] = None
            dropped = True
    return dropped


def _derive(form: FormDef, values: dict[str, object], context: FormContext) -> None:
    activity: dict[str, object] | None = None
    for item in form.items:
        if item.derived is None or form.group_of(item.name).repeating:
            continue
        if item.derived in ACTIVITY_DERIVATIONS:
            if activity is None:
                activity = activity_derived(values, baseline=context.baseline_values, previous=context.previous_values)
            values[item.name] = activity[item.derived]
            continue
        values[item.name] = _derived_value(form, item.derived, values, context)


def derived_values(form: FormDef, values: Mapping[str, object], context: FormContext) -> dict[str, object]:
    """Stored values with their derived items computed again (the baseline or the previous visit
    changed): the entered items are kept as they are; an empty derived item is left out."""
    again = dict(values)
    _derive(form, again, context)
    return {name: value for name, value in again.items() if value is not None}


def _derived_value(form: FormDef, derivation: str, values: Mapping[str, object], context: FormContext) -> object:
    """The derivation's value, or None when an input is missing or outside the equation's domain."""
    spec = DERIVATIONS[derivation]
    if derivation == "egfr_ckd_epi_2021":
        creatinine = next(item for item in form.items if item.analyte == spec.analytes[0])
        number = lab_number(creatinine, values.get(creatinine.name))
        if number is None or context.age_years is None or context.sex not in ("female", "male"):
            return None
        try:
            estimate = estimate_egfr_ckd_epi_2021(
                creatinine=number, creatinine_unit=creatinine.unit, age_years=context.age_years, sex=Sex(context.sex)
            )
        except CalculatorInputError:
            return None
        return round(estimate.egfr_ml_per_min_per_1_73m2, 1)
    raise KeyError(derivation)  # pragma: no cover - parse_forms accepts only DERIVATIONS


def _dates_check(form: FormDef, values: Mapping[str, object], context: FormContext) -> None:
    """A visit date before the subject's inclusion cannot be true."""
    if context.inclusion_date is None:
        return
    for item in form.items:
        value = values.get(item.name)
        if item.visit_date and isinstance(value, str) and date.fromisoformat(value) < context.inclusion_date:
            raise _refuse(
                N_("{label}: {value} is before the inclusion on {inclusion}."),
                "item_date",
                item.name,
                item,
                value,
                inclusion=context.inclusion_date,
            )


def _required(item: ItemDef, rule_facts: Mapping[str, object], form: FormDef, group: GroupDef | None) -> bool:
    if item.derived is not None:
        return False
    if item.shown_when is not None and not _holds(item.shown_when, rule_facts, form, group):
        return False
    if item.required:
        return True
    return item.required_when is not None and _holds(item.required_when, rule_facts, form, group)


def form_values_check(form: FormDef, raw: Mapping[str, object], context: FormContext) -> CleanedValues:
    """The submitted values converted and checked; InvalidInput on the first refused item (see module doc)."""
    repeating = {group.name: group for group in form.groups if group.repeating}
    values: dict[str, object] = {}
    for name, given in raw.items():
        if name in repeating:
            values[name] = _rows(form, repeating[name], given)
            continue
        if not form.has_item(str(name)) or form.group_of(str(name)).repeating:
            raise _unknown(form, str(name))
        item = form.item(str(name))
        if item.derived is None:
            values[item.name] = _value(item, item.name, given)
    _dates_check(form, values, context)
    _derive(form, values, context)
    # Hiding one item may hide another that depends on it: repeat until nothing changes.
    for _ in range(len(form.items) + 1):
        if not _hide(form, None, values, facts(form, values, context)):
            break
    base = facts(form, values, context)
    missing: list[str] = []
    for group in form.groups:
        if not group.repeating:
            missing.extend(
                item.name for item in group.items if values.get(item.name) is None and _required(item, base, form, None)
            )
            continue
        for index, row in enumerate(_list(values.get(group.name))):
            for _ in range(len(group.items) + 1):
                if not _hide(form, group, row, row_facts(form, group, row, base)):
                    break
            row_base = row_facts(form, group, row, base)
            missing.extend(
                f"{group.name}.{index}.{item.name}"
                for item in group.items
                if row.get(item.name) is None and _required(item, row_base, form, group)
            )
    for group in repeating.values():
        if group.name in values:
            values[group.name] = [{k: v for k, v in row.items() if v is not None} for row in _list(values[group.name])]
    cleaned = {name: value for name, value in values.items() if value is not None}
    return CleanedValues(cleaned, tuple(missing))


def _list(value: object) -> Sequence[dict[str, object]]:
    return value if isinstance(value, list) else []


def required_check(form: FormDef, cleaned: CleanedValues) -> None:
    """A form marked complete has every required item: InvalidInput `item_required` names the first missing."""
    if not cleaned.missing:
        return
    path = cleaned.missing[0]
    name = path.rsplit(".", 1)[-1]
    raise InvalidInput("{label} is required.", code="item_required", item=path, label=shown(form.item(name).label))
