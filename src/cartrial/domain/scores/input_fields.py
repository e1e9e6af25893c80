"""Typed input fields of the calculator JSON contract: strict parsing and a JSON Schema each.

One declaration per input key serves three readers: `parse_input` refuses anything the
contract does not allow (unknown or missing key, a bool where a number is due, NaN, a value
out of range, an unknown term), the API publishes the schema, and the web page builds its
form from it. Field errors name the offending key with a path (`anc[2].day`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cartrial.domain.scores.errors import CalculatorInputError

FieldErrors = list[tuple[str, str]]


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_name(value: object) -> str:
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


@dataclass(frozen=True, kw_only=True)
class InputField(ABC):
    """One input key: what it means, whether it must be given, and its default otherwise."""

    description: str
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
            errors.append((path, f"must be true or false, got {_type_name(value)}"))
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
            expected = "an integer or null" if self.nullable else "an integer"
            errors.append((path, f"must be {expected}, got {_type_name(value)}"))
            return None
        if not isinstance(value, int):
            return None
        if self.choices is not None and value not in self.choices:
            allowed = " or ".join(str(c) for c in self.choices)
            errors.append((path, f"must be {allowed}, got {value}"))
            return None
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            errors.append((path, f"must be {_range_text(self.minimum, self.maximum)}, got {value}"))
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
            errors.append((path, f"must be a number, got {_type_name(value)}"))
            return None
        number = float(value)
        if not math.isfinite(number):
            errors.append((path, "must be a finite number"))
            return None
        too_low = self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        )
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            text = _range_text(self.minimum, self.maximum, exclusive_minimum=self.exclusive_minimum)
            errors.append((path, f"must be {text}, got {value}"))
            return None
        return number

    def json_schema(self) -> dict[str, object]:
        schema: dict[str, object] = {"type": "number"}
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return self._with_common(schema)


@dataclass(frozen=True, kw_only=True)
class ChoiceInput(InputField):
    """One string out of a fixed vocabulary."""

    choices: tuple[str, ...]

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, str):
            errors.append((path, f"must be a string, got {_type_name(value)}"))
            return None
        if value not in self.choices:
            errors.append((path, f"unknown value {value!r}; accepted: {', '.join(self.choices)}"))
            return None
        return value

    def json_schema(self) -> dict[str, object]:
        return self._with_common({"type": "string", "enum": list(self.choices)})


@dataclass(frozen=True, kw_only=True)
class ChoiceListInput(InputField):
    """A list of distinct strings out of a fixed vocabulary (empty allowed: nothing present)."""

    choices: tuple[str, ...]

    def parse(self, value: object, path: str, errors: FieldErrors) -> object:
        if not isinstance(value, list):
            errors.append((path, f"must be an array of strings, got {_type_name(value)}"))
            return None
        parsed: list[str] = []
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str):
                errors.append((f"{path}[{index}]", f"must be a string, got {_type_name(item)}"))
                ok = False
            elif item not in self.choices:
                errors.append((f"{path}[{index}]", f"unknown value {item!r}"))
                ok = False
            elif item in parsed:
                errors.append((f"{path}[{index}]", f"{item!r} is listed twice"))
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
            errors.append((path, f"must be an array of objects, got {_type_name(value)}"))
            return None
        if len(value) < self.min_items:
            errors.append((path, f"needs at least {self.min_items} item(s)"))
            return None
        before = len(errors)
        records = tuple(
            _parse_object(item, self.fields, f"{path}[{index}]", errors)
            for index, item in enumerate(value)
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


def _range_text(
    minimum: float | None, maximum: float | None, *, exclusive_minimum: bool = False
) -> str:
    low = ">" if exclusive_minimum else "≥"
    if minimum is not None and maximum is not None:
        if exclusive_minimum:
            return f"> {minimum:g} and ≤ {maximum:g}"
        return f"from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f"{low} {minimum:g}"
    return f"≤ {maximum:g}"


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


def _parse_object(
    payload: object, fields: Mapping[str, InputField], path: str, errors: FieldErrors
) -> ParsedInput:
    prefix = f"{path}." if path else ""
    if not isinstance(payload, Mapping):
        errors.append((path, f"must be a JSON object, got {_type_name(payload)}"))
        return ParsedInput(MappingProxyType({}))
    values: dict[str, object] = {}
    for key in payload:
        if key not in fields:
            known = ", ".join(fields)
            errors.append((f"{prefix}{key}", f"unknown key; accepted keys: {known}"))
    for key, spec in fields.items():
        if key in payload:
            values[key] = spec.parse(payload[key], f"{prefix}{key}", errors)
        elif spec.required:
            errors.append((f"{prefix}{key}", "is required"))
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
