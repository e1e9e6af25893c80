"""Stored values shown in the reader's language: units by their label (stored data keeps the code), and the
audit trail's refusals and signature meanings translated, or marked English when nothing translates them."""

from __future__ import annotations

from django.utils import translation

from cartrial.apps.pathway.audit_trail import Part, refusal_text, stored_english
from cartrial.apps.subjects.templatetags.cartrial_labels import unit
from cartrial.domain.text import Message, label, message_data


def test_a_stored_unit_reads_in_french_and_in_english() -> None:
    with translation.override("fr"):
        assert unit("cells/µL") == "cellules/µL"
        assert unit("umol/L") == "µmol/L"
        assert unit("mL/min/1.73 m²") == "mL/min/1,73 m²"
        assert unit("IU/mL") == "UI/mL"
        assert unit("copies/µg") == "copies/µg"  # not labelled: its code
        assert unit(None) == ""
    with translation.override("en"):
        assert unit("cells/µL") == "cells/µL"
        assert unit("umol/L") == "µmol/L"
        assert unit("IU/mL") == "IU/mL"


def test_a_refusal_in_the_trail_reads_in_french_from_its_message_data() -> None:
    denied = Message(
        "Your role cannot do this here ({action} at {center}); allowed: {roles}.",
        {"action": label("Read the audit trail"), "center": "STR", "roles": [label("Monitor (CRA)")]},
    )
    stored = {"code": "access_denied", "message": f"read_audit: {denied}", "what": "read_audit"}
    with translation.override("fr"):
        parts = refusal_text(stored | {"message_data": message_data(denied)})
        assert parts[0] == Part("read_audit", code=True)
        assert parts[-1].text.startswith("refusé : ") and not parts[-1].lang
        assert translation.gettext("Read the audit trail") in parts[-1].text
        assert "Read the audit trail" not in parts[-1].text
        # Written before message data was kept: the code, then the English as recorded, marked as English.
        old = refusal_text({"code": "access_denied", "message": stored["message"]})
        assert old == [Part("access_denied", code=True), Part(" refusé — "), Part(stored["message"], lang="en")]


def test_a_signature_meaning_reads_translated_when_the_catalog_knows_it() -> None:
    meaning = "I confirm this patient meets all eligibility criteria"
    with translation.override("fr"):
        [shown] = stored_english(meaning)
        assert shown.text == translation.gettext(meaning) != meaning and not shown.lang
        assert stored_english("a meaning no catalog knows") == [Part("a meaning no catalog knows", lang="en")]
    with translation.override("en"):
        assert stored_english(meaning) == [Part(meaning)]
