"""Typed input fields of the calculator JSON contract: strict parsing and a JSON Schema each.

One declaration per input key serves three readers: `parse_input` refuses anything the
contract does not allow (unknown or missing key, a bool where a number is due, NaN, a value
out of range, an unknown term), the API publishes the schema, and the web page builds its
form from it. Field errors name the offending key with a path (`anc[2].day`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from cartrial.domain.clinical_labels import clinical_label
from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import N_, Message

FieldErrors = list[FieldError]


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_type_name(value: object) -> str:
    """JSON's name for a Python value, so messages speak the caller's language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _alternatives(values: Sequence[object]) -> object:
    """`10 or 30`: the values a field accepts, joined the way the reader's language says "or"."""
    result: object = values[0]
    for value in values[1:]:
        result = Message(N_("{before} or {after}"), {"before": result, "after": value})
    return result


@dataclass(frozen=True, kw_only=True)
class InputField(ABC):
    """One input key: what it means, whether it must be given, and its default otherwise.

    `description` (English, the JSON Schema's), `label` and `unit` are msgids: a form shows the
    label with its unit, the description as help, each translated by the page.
    """

    description: str
    label: str = ""
    unit: str = ""
    required: bool = True
    default: object = None

    @abstractmethod
    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        """The value as the calculator takes it; appends to `errors` and returns None if invalid."""

    @abstractmethod
    def json_schema(self) -> dict[str, object]:
        """This field as a JSON Schema (2020-12 subset)."""

    def _with_common(self, schema: dict[str, object]) -> dict[str, object]:
        schema["description"] = self.description
        if not self.required:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True, kw_only=True)
class BooleanInput(InputField):
    """true or false; 0 and 1 are not booleans."""

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, bool):
            errors.append((path, Message("must be true or false, got {type}", {"type": json_type_name(value)})))
            return None
        return value

    def json_schema(self) -> dict[str, object]:
        return self._with_common({"type": "boolean"})


@dataclass(frozen=True, kw_only=True)
class IntegerInput(InputField):
    """A whole number (never a boolean, never 10.0), optionally bounded or from a fixed set."""

    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[int, ...] | None = None
    nullable: bool = False

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if value is None and self.nullable:
            return None
        if not _is_integer(value):
            if self.nullable:
                errors.append(
                    (path, Message("must be an integer or null, got {type}", {"type": json_type_name(value)}))
                )
            else:
                errors.append((path, Message("must be an integer, got {type}", {"type": json_type_name(value)})))
            return None
        if not isinstance(value, int):
            return None
        if self.choices is not None and value not in self.choices:
            allowed = _alternatives(self.choices)
            errors.append((path, Message("must be {allowed}, got {value}", {"allowed": allowed, "value": value})))
            return None
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            bounds = _range_text(self.minimum, self.maximum)
            errors.append((path, Message("must be {range}, got {value}", {"range": bounds, "value": value})))
            return None
        return value

    def json_schema(self) -> dict[str, object]:
        schema: dict[str, object] = {"type": ["integer", "null"] if self.nullable else "integer"}
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return self._with_common(schema)


@dataclass(frozen=True, kw_only=True)
class NumberInput(InputField):
    """A finite JSON number (integer or decimal, never a boolean, NaN or infinity)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not _is_number(value) or not isinstance(value, int | float):
            errors.append((path, Message("must be a number, got {type}", {"type": json_type_name(value)})))
            return None
        number = float(value)
        if not math.isfinite(number):
            errors.append((path, Message("must be a finite number")))
            return None
        too_low = self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        )
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            bounds = _range_text(self.minimum, self.maximum, exclusive_minimum=self.exclusive_minimum)
            errors.append((path, Message("must be {range}, got {value}", {"range": bounds, "value": value})))
            return None
        return number

    def json_schema(self) -> dict[str, object]:
        schema: dict[str, object] = {"type": "number"}
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return self._with_common(schema)


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class _Vocabulary(InputField):
    """A field whose values come from a fixed vocabulary, each with a label (msgid) for forms."""

    choices: tuple[str, ...]
    choice_labels: Mapping[str, str] = field(default_factory=_no_labels)

    def choice_label(self, value: str) -> str:
        """The value as a person reads it: this field's own label, else the clinical one."""
        return self.choice_labels.get(value) or clinical_label(value)


@dataclass(frozen=True, kw_only=True)
class ChoiceInput(_Vocabulary):
    """One string out of a fixed vocabulary."""

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, str):
            errors.append((path, Message("must be a string, got {type}", {"type": json_type_name(value)})))
            return None
        if value not in self.choices:
            accepted = list(self.choices)
            errors.append(
                (path, Message("unknown value '{value}'; accepted: {accepted}", {"value": value, "accepted": accepted}))
            )
            return None
        return value

    def json_schema(self) -> dict[str, object]:
        return self._with_common({"type": "string", "enum": list(self.choices)})


@dataclass(frozen=True, kw_only=True)
class ChoiceListInput(_Vocabulary):
    """A list of distinct strings out of a fixed vocabulary (empty allowed: nothing present)."""

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, list):
            errors.append((path, Message("must be an array of strings, got {type}", {"type": json_type_name(value)})))
            return None
        parsed: list[str] = []
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str):
                errors.append(
                    (f"{path}[{index}]", Message("must be a string, got {type}", {"type": json_type_name(item)}))
                )
                ok = False
            elif item not in self.choices:
                errors.append((f"{path}[{index}]", Message("unknown value '{value}'", {"value": item})))
                ok = False
            elif item in parsed:
                errors.append((f"{path}[{index}]", Message("'{value}' is listed twice", {"value": item})))
                ok = False
            else:
                parsed.append(item)
        return tuple(parsed) if ok else None

    def json_schema(self) -> dict[str, object]:
        return self._with_common(
            {
                "type": "array",
                "items": {"type": "string", "enum": list(self.choices)},
                "uniqueItems": True,
            }
        )


@dataclass(frozen=True, kw_only=True)
class RecordListInput(InputField):
    """A non-empty list of objects, each with exactly the given keys."""

    fields: Mapping[str, InputField] = field(default_factory=lambda: MappingProxyType({}))
    min_items: int = 1

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, list):
            errors.append((path, Message("must be an array of objects, got {type}", {"type": json_type_name(value)})))
            return None
        if len(value) < self.min_items:
            errors.append((path, Message("needs at least {count} item(s)", {"count": self.min_items})))
            return None
        before = len(errors)
        records = tuple(
            _parse_object(item, self.fields, f"{path}[{index}]", errors) for index, item in enumerate(value)
        )
        return records if len(errors) == before else None

    def json_schema(self) -> dict[str, object]:
        return self._with_common(
            {
                "type": "array",
                "minItems": self.min_items,
                "items": object_schema(self.fields),
            }
        )


def _range_text(minimum: float | None, maximum: float | None, *, exclusive_minimum: bool = False) -> Message:
    if minimum is not None and maximum is not None:
        if exclusive_minimum:
            return Message(N_("> {minimum} and ≤ {maximum}"), {"minimum": minimum, "maximum": maximum})
        return Message(N_("from {minimum} to {maximum}"), {"minimum": minimum, "maximum": maximum})
    if minimum is not None:
        if exclusive_minimum:
            return Message(N_("> {minimum}"), {"minimum": minimum})
        return Message(N_("≥ {minimum}"), {"minimum": minimum})
    return Message(N_("≤ {maximum}"), {"maximum": maximum})


@dataclass(frozen=True)
class ParsedInput:
    """Validated input, read back with typed accessors so calculators need no casts.

    Parsing already guaranteed each type; an accessor that finds another one is a bug in a
    calculator's declaration and raises TypeError instead of guessing.
    """

    values: Mapping[str, object]

    def _wrong(self, key: str, expected: str) -> TypeError:
        return TypeError(f"{key} was parsed as {type(self.values[key]).__name__}, not {expected}")

    def boolean(self, key: str) -> bool:
        value = self.values[key]
        if not isinstance(value, bool):
            raise self._wrong(key, "bool")
        return value

    def integer(self, key: str) -> int:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "int")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self.values[key] is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self.values[key]
        if not isinstance(value, float):
            raise self._wrong(key, "float")
        return value

    def text(self, key: str) -> str:
        value = self.values[key]
        if not isinstance(value, str):
            raise self._wrong(key, "str")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.values[key]
        if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
            raise self._wrong(key, "tuple of str")
        return tuple(str(item) for item in value)

    def records(self, key: str) -> tuple[ParsedInput, ...]:
        value = self.values[key]
        if not isinstance(value, tuple) or not all(isinstance(item, ParsedInput) for item in value):
            raise self._wrong(key, "tuple of records")
        return tuple(item for item in value if isinstance(item, ParsedInput))


def _parse_object(payload: object, fields: Mapping[str, InputField], path: str, errors: FieldErrors) -> ParsedInput:
    prefix = f"{path}." if path else ""
    if not isinstance(payload, Mapping):
        errors.append((path, Message("must be a JSON object, got {type}", {"type": json_type_name(payload)})))
        return ParsedInput(MappingProxyType({}))
    values: dict[str, object] = {}
    for key in payload:
        if key not in fields:
            errors.append((f"{prefix}{key}", Message("unknown key; accepted keys: {keys}", {"keys": list(fields)})))
    for key, spec in fields.items():
        if key in payload:
            values[key] = spec.parse(payload[key], f"{prefix}{key}", errors)
        elif spec.required:
            errors.append((f"{prefix}{key}", Message("is required")))
        else:
            values[key] = spec.default
    return ParsedInput(MappingProxyType(values))


def parse_input(payload: object, fields: Mapping[str, InputField]) -> ParsedInput:
    """Parse a whole calculator input, reporting every field error at once."""
    errors: FieldErrors = []
    parsed = _parse_object(payload, fields, "", errors)
    if errors:
        raise CalculatorInputError(errors)
    return parsed


def object_schema(fields: Mapping[str, InputField]) -> dict[str, object]:
    """The JSON Schema of an object with exactly these keys."""
    return {
        "type": "object",
        "properties": {key: spec.json_schema() for key, spec in fields.items()},
        "required": [key for key, spec in fields.items() if spec.required],
        "additionalProperties": False,
    }
