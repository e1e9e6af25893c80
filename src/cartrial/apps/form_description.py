"""A Django form's fields as the API describes them: name, label, type, unit, range, choices.

The pages and the API validate an action's input with the same Django form; a client of the API
sends that input as an object of JSON scalars (`api_contract.FieldValues`) and reads what each
field expects here, from the form itself, so that the description cannot drift from the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from django import forms
from django.utils import translation
from ninja import Field, Schema

FieldType = Literal["text", "password", "integer", "number", "date", "datetime", "boolean", "choice", "file"]


class ChoiceOut(Schema):
    """One allowed value of a choice, with what a value of it is measured in when it has a unit."""

    value: str
    label: str = Field(description="In the request's language")
    unit: str | None = Field(default=None, description="The unit of this choice's values (e.g. a test's result)")
    minimum: float | None = Field(default=None, description="The smallest plausible value in that unit (refused below)")
    maximum: float | None = Field(default=None, description="The largest plausible value in that unit (refused above)")
    specification: str | None = Field(default=None, description="What is accepted, as the page shows it (e.g. ≥ 70 %)")


class FormFieldOut(Schema):
    """One input field: send it under `name`, as a JSON value of its `type`."""

    name: str
    label: str = Field(description="In the request's language")
    type: FieldType = Field(
        description="text and password: a string; integer, number: a JSON number; date: YYYY-MM-DD; datetime: "
        "YYYY-MM-DDTHH:MM, the local time of the place it happens unless it carries an offset; boolean; choice: "
        "one of `choices`; file: sent by its own endpoint"
    )
    required: bool
    unit: str | None = None
    minimum: float | None = Field(default=None, description="Smallest value accepted (integer, number)")
    maximum: float | None = Field(default=None, description="Largest value accepted (integer, number)")
    max_length: int | None = Field(default=None, description="Longest text accepted, in characters")
    choices: list[ChoiceOut] | None = Field(default=None, description="The values accepted (type choice)")
    help: str = Field(default="", description="What the page says under the field, in the request's language")


def _field_type(field: forms.Field) -> FieldType:
    if isinstance(field, forms.FileField):
        return "file"
    if isinstance(field, forms.DateTimeField):
        return "datetime"
    if isinstance(field, forms.DateField):
        return "date"
    if isinstance(field, forms.BooleanField):
        return "boolean"
    # Django's FloatField is a kind of IntegerField: the decimal number first.
    if isinstance(field, forms.FloatField | forms.DecimalField):
        return "number"
    if isinstance(field, forms.IntegerField):
        return "integer"
    if isinstance(field, forms.ChoiceField):
        return "choice"
    if isinstance(field.widget, forms.PasswordInput):
        return "password"
    return "text"


def _bound(field: forms.Field, name: str) -> float | None:
    """The field's own limit (`min_value`), else the browser's (`min` attribute) that the domain
    enforces in its own words."""
    value = getattr(field, f"{name}_value", None)
    if value is None:
        value = field.widget.attrs.get(name)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def form_fields(form: forms.Form, language: str, *, units: Mapping[str, str] | None = None) -> list[FormFieldOut]:
    """Each field of `form` in its order, its texts in `language`."""
    with translation.override(language):
        return [_described(name, field, (units or {}).get(name)) for name, field in form.fields.items()]


def _described(name: str, field: forms.Field, unit: str | None) -> FormFieldOut:
    """One field, its texts in the active language (labels may be lazy translations)."""
    kind = _field_type(field)
    numeric = kind in ("integer", "number")
    choices = None
    if kind == "choice":
        choices = [
            ChoiceOut(value=str(value), label=str(label))
            for value, label in getattr(field, "choices", [])
            if str(value) != ""
        ]
    return FormFieldOut(
        name=name,
        label=str(field.label or name),
        type=kind,
        required=field.required,
        unit=unit,
        minimum=_bound(field, "min") if numeric else None,
        maximum=_bound(field, "max") if numeric else None,
        max_length=getattr(field, "max_length", None) if kind in ("text", "password") else None,
        choices=choices,
        help=str(field.help_text) if field.help_text else "",
    )
