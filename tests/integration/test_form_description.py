"""The one description of a Django form's fields for the API (logistics actions, pathway steps)."""

from __future__ import annotations

from django import forms

from cartrial.apps.fields import CenterDateTimeField, plausible_number_field
from cartrial.apps.form_description import form_fields


class _Example(forms.Form):
    volume = plausible_number_field((10.0, 500.0), label="Volume")
    bags = plausible_number_field((1, 4), label="Bags", integer=True)
    started = CenterDateTimeField(label="Started")
    kind = forms.ChoiceField(choices=[("", "—"), ("fresh", "Fresh")], label="Kind")
    note = forms.CharField(max_length=200, required=False, widget=forms.Textarea)


def test_each_field_is_described_with_its_type_range_and_choices() -> None:
    described = {f.name: f for f in form_fields(_Example(), "en", units={"volume": "mL"})}
    # A FloatField is a kind of IntegerField in Django: it must still read as a decimal number.
    assert (described["volume"].type, described["volume"].unit) == ("number", "mL")
    assert (described["volume"].minimum, described["volume"].maximum) == (10.0, 500.0)
    assert (described["bags"].type, described["bags"].minimum, described["bags"].maximum) == ("integer", 1.0, 4.0)
    assert described["started"].type == "datetime"
    assert [(c.value, c.label) for c in described["kind"].choices or []] == [("fresh", "Fresh")]
    assert (described["note"].type, described["note"].max_length, described["note"].required) == ("text", 200, False)
