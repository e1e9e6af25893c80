"""Stored values shown in the reader's language: units by their label, stored data keeping the code."""

from __future__ import annotations

from django.utils import translation

from cartrial.apps.subjects.templatetags.cartrial_labels import unit


def test_a_stored_unit_reads_in_french_and_in_english() -> None:
    with translation.override("fr"):
        assert unit("cells/µL") == "cellules/µL"
        assert unit("umol/L") == "µmol/L"
        assert unit("mL/min/1.73 m²") == "mL/min/1,73 m²"
        assert unit("IU/mL") == "IU/mL"  # not labelled: its code
        assert unit(None) == ""
    with translation.override("en"):
        assert unit("cells/µL") == "cells/µL"
        assert unit("umol/L") == "µmol/L"
