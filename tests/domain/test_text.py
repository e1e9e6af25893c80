"""Messages stored as data come back the same, in every language; joined sentences read as one."""

from __future__ import annotations

import json
from datetime import date

import pytest

from cartrial.domain.text import Message, joined, label, message_data, message_from_data
from cartrial.locale import render

STORED = Message(
    "{item}: {value}, at least {limit} required: met",
    {
        "item": label("eGFR (CKD-EPI 2021)"),
        "value": Message("{number} {unit}", {"number": 73.04, "unit": label("mL/min/1.73 m²")}),
        "limit": [label("Renal"), 30, True],
    },
)


def test_message_data_is_json_and_renders_the_same_after_a_round_trip() -> None:
    data = json.loads(json.dumps(message_data(STORED)))
    again = message_from_data(data)
    assert again == STORED
    for language in ("en", "fr"):
        assert render(again, language) == render(STORED, language)
    assert render(again, "fr") == "DFGe (CKD-EPI 2021) : 73,04 mL/min/1,73 m², au moins Rénal, 30, oui requis : rempli"


def test_dates_are_stored_as_they_are_shown() -> None:
    message = Message("started on {started_on}", {"started_on": date(2026, 3, 2)})
    assert message_data(message)["params"] == {"started_on": "2026-03-02"}
    assert render(message_from_data(message_data(message)), "fr") == "started on 2026-03-02"


def test_joined_sentences_take_the_separator_of_the_language() -> None:
    both = joined([label("Active infection"), label("Prior gene therapy")])
    assert render(both, "en") == "Active infection; Prior gene therapy"
    assert render(both, "fr") == "Infection active ; Thérapie génique antérieure"
    assert joined([label("Sex")]) == label("Sex")
    with pytest.raises(ValueError):
        joined([])
