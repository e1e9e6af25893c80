"""Refusals and labels of the domain read the same in English (`str`) and, from the catalog, in French.

One representative case per module, with the exact sentence in both languages, plus the label tables:
every msgid a table holds is translated.
"""

from __future__ import annotations

import gettext
from datetime import UTC, datetime

import pytest

from cartrial.domain.custody import CustodyEvent, CustodyGap, check_custody_chain
from cartrial.domain.errors import DomainError
from cartrial.domain.identity import CheckCharacterMissingError, new_coi, parse_din
from cartrial.domain.kinetics import preset_named
from cartrial.domain.kinetics.errors import InvalidObservation
from cartrial.domain.kinetics.observations import parse_observations
from cartrial.domain.lab_catalogue import CATALOGUE, validate_lab_value
from cartrial.domain.manufacturing import (
    BATCH_STATUS_LABELS,
    BRANCH_LABELS,
    QcKind,
    QcResultInvalid,
    QcSpecification,
    judge_qc_result,
)
from cartrial.domain.temperature import TemperatureLogError, parse_temperature_log
from cartrial.domain.text import label
from cartrial.domain.units import UnitConversionError, convert
from cartrial.domain.vein_to_vein import INTERVAL_LABELS
from cartrial.locale import LOCALE_DIR, render

FRENCH = gettext.translation("django", localedir=LOCALE_DIR, languages=["fr"])
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
COI = new_coi(facility_number="A9999", year=2026, sequence_number=1)
VIABILITY = {"viability": QcSpecification("viability", {"en": "Viability", "fr": "Viabilité"}, QcKind.NUMERIC, "%", 70)}


def refusal(error: type[DomainError], action: object) -> DomainError:
    with pytest.raises(error) as refused:
        action()  # type: ignore[operator]
    return refused.value


def event(giver: str | None, receiver: str, minutes: int) -> CustodyEvent:
    return CustodyEvent("bag-1", giver, receiver, "nurse", T0.replace(minute=minutes), "Lille", COI.barcode_data())


@pytest.mark.parametrize(
    ("error", "action", "english", "french"),
    [
        (
            CustodyGap,
            lambda: check_custody_chain(
                [event(None, "apheresis", 0), event("courier", "lab", 5)], expected={"bag-1": COI}
            ),
            "Item bag-1 is recorded with apheresis since 2026-03-02T08:00+00:00, but this hand-over starts from "
            "courier: the hand-over from apheresis to courier is missing.",
            "L'article bag-1 est enregistré chez apheresis depuis 2026-03-02T08:00+00:00, mais cette remise part de "
            "courier : la remise de apheresis à courier manque.",
        ),
        (
            CheckCharacterMissingError,
            lambda: parse_din("A9998 18 123456"),
            "The check character of this DIN is missing: type the boxed character printed after the code on the "
            "label. Without it a typing error cannot be detected.",
            "Le caractère de contrôle de ce DIN manque : saisissez le caractère encadré imprimé après le code sur "
            "l'étiquette. Sans lui, une erreur de saisie ne peut pas être détectée.",
        ),
        (
            TemperatureLogError,
            lambda: parse_temperature_log("2026-03-02T07:00Z;5\n2026-03-02T07:00Z;six\n"),
            "Line 2: temperature 'six' is not a number.",
            "Ligne 2 : la température « six » n'est pas un nombre.",
        ),
        (
            QcResultInvalid,
            lambda: judge_qc_result("viability", "high", VIABILITY),
            "The result of viability must be a number in %, not 'high'.",
            "Le résultat de viability doit être un nombre en %, pas « high ».",
        ),
        (
            DomainError,
            lambda: validate_lab_value(analyte="c3", value=-0.5, unit="g/L"),
            "The value cannot be negative (-0.5).",
            "La valeur ne peut pas être négative (-0,5).",
        ),
        (
            UnitConversionError,
            lambda: convert(analyte="creatinine", value=1.0, from_unit="g/dL", to_unit="umol/L"),
            "unknown unit 'g/dL' for creatinine; accepted: umol/L, mg/dL",
            "unité inconnue « g/dL » pour creatinine ; acceptées : umol/L, mg/dL",
        ),
        (
            InvalidObservation,
            lambda: parse_observations(
                [{"marker": "car_t", "day": "D14", "value": 3, "unit": "cells/µL"}], preset_named("sle-default")
            ),
            "Observation 1: the day (days since infusion) must be a number, got 'D14'.",
            "Observation 1 : le champ « jour (jours depuis la perfusion) » doit être un nombre, reçu 'D14'.",
        ),
    ],
)
def test_a_refusal_reads_in_english_and_in_french(
    error: type[DomainError], action: object, english: str, french: str
) -> None:
    refused = refusal(error, action)
    assert (str(refused), render(refused.message, "fr")) == (english, french)


def test_a_refusal_names_the_input_item_it_is_about() -> None:
    assert refusal(DomainError, lambda: validate_lab_value(analyte="c3", value=-0.5, unit="g/L")).item == "value"
    assert refusal(QcResultInvalid, lambda: judge_qc_result("viability", "high", VIABILITY)).item == "value"
    unknown_unit = refusal(UnitConversionError, lambda: convert(analyte="c3", value=1.0, from_unit="x", to_unit="g/L"))
    assert unknown_unit.item == "from"


def test_a_specification_reads_in_both_languages() -> None:
    assert (render(VIABILITY["viability"].describe(), "en"), render(VIABILITY["viability"].describe(), "fr")) == (
        "≥ 70 %",
        "≥ 70 %",
    )
    negative = QcSpecification("sterility", {"en": "Sterility", "fr": "Stérilité"}, QcKind.NEGATIVE)
    assert render(negative.describe(), "fr") == "négatif"


@pytest.mark.parametrize(
    "msgid",
    [
        *BATCH_STATUS_LABELS.values(),
        *BRANCH_LABELS.values(),
        *INTERVAL_LABELS.values(),
        *(spec.label for spec in CATALOGUE),
    ],
)
def test_every_label_table_entry_is_translated(msgid: str) -> None:
    assert msgid in FRENCH._catalog  # type: ignore[attr-defined]
    assert render(label(msgid), "fr") == FRENCH.gettext(msgid)
