"""Corrections of stored records (21 CFR Part 11 style): what may be corrected, how, and who signs again.

A value already saved is never lost: a correction replaces it in the record and the audit trail
keeps old → new with who, when and why. This module is the one description of what is correctable,
for every app: each kind of record (`RecordKind`) lists its fields with their type, the action
(and so the roles) that may correct it, and the signature that covers it once signed. The apps
apply a correction through their own services, with the same checks as a new value; the pathway
app reaches them through the access entry point (docs/corrections.md).

What is NOT correctable, and why (`NOT_CORRECTABLE`): a scanned code (a wrong scan is a deviation,
not a typo: it was refused and recorded as such), an identifier (CoI, DIN: allocated, printed on
labels), the audit trail (never), a signature (voided and replaced, never edited), a deviation
(managed: acknowledged, commented, closed), a temperature log (re-imported, the file is evidence),
a pathway step (a state change is undone by the next step, not edited), and the times at which
the system recorded something (`recorded_at`, `signed_at`: the clock's, not a person's).

Pure: no Django; values are parsed here, judged by the apps' services exactly as a new value is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from cartrial.domain.errors import InvalidInput
from cartrial.domain.roles import Action
from cartrial.domain.screening import SCREENING_FIELDS
from cartrial.domain.text import N_, label

# The meaning of the signature that replaces a voided one, over the corrected record.
CORRECTION_MEANING = N_("I confirm the corrected record")


class RecordKind(StrEnum):
    """A kind of stored record that may be corrected; stable codes (URLs, API, audit entity)."""

    SCREENING_DATA = "screening_data"
    LAB_OBSERVATION = "lab_observation"
    CONSENT = "consent"
    PLANNED_APHERESIS = "planned_apheresis"
    COLLECTION = "collection"
    MATERIAL_SHIPMENT = "material_shipment"
    LAB_RECEIPT = "lab_receipt"
    QC_RESULT = "qc_result"
    PRODUCT_SHIPMENT = "product_shipment"
    PRODUCT_RECEIPT = "product_receipt"
    THAW = "thaw"
    INFUSION = "infusion"
    DEATH = "death"


class ValueType(StrEnum):
    """How a corrected value is read from a form or a JSON body."""

    INSTANT = "instant"  # a date and time; without an offset, the center's wall-clock time
    DATE = "date"
    NUMBER = "number"
    OPTIONAL_NUMBER = "optional_number"  # empty: not given (a lab value below the LoQ)
    TEXT = "text"
    UNIT = "unit"  # a unit's code, read as text; shown by its label (`lab_catalogue.unit_label`)
    REPORTED = "reported"  # a QC result as the lab reports it, judged against the specification
    SCREENING_ITEM = "screening_item"  # read by the screening data contract (domain.screening)


class SignedRecord(StrEnum):
    """A record an electronic signature covers: correcting what it covers voids it and signs again."""

    INCLUSION = "inclusion"
    RELEASE = "release"
    BEDSIDE_CHECK = "bedside_check"


@dataclass(frozen=True)
class CorrectableField:
    name: str
    label: str
    type: ValueType
    unit: str = ""


@dataclass(frozen=True)
class CorrectableRecord:
    """One kind of record: its fields, who corrects it, what signature covers it, what it feeds."""

    kind: RecordKind
    label: str
    fields: tuple[CorrectableField, ...]
    action: Action
    covered_by: SignedRecord | None = None
    # Reading its history needs this action too (None: whoever may see the subject).
    read_action: Action | None = None
    # The eligibility verdict is computed from it: a correction recomputes the verdict.
    feeds_verdict: bool = False

    def field(self, name: str) -> CorrectableField:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise InvalidInput(
            "'{field}' cannot be corrected on {record}; correctable: {fields}.",
            code="unknown_field",
            item="field",
            field=name,
            record=label(self.label),
            fields=[f.name for f in self.fields],
        )


@dataclass(frozen=True)
class SignedRecordSpec:
    label: str
    action: Action


SIGNED_RECORDS: Mapping[SignedRecord, SignedRecordSpec] = MappingProxyType(
    {
        SignedRecord.INCLUSION: SignedRecordSpec(
            N_("Inclusion (signed eligibility verdict)"), Action.CORRECT_SIGNED_INCLUSION
        ),
        SignedRecord.RELEASE: SignedRecordSpec(
            N_("Release of the batch (signed by the QP)"), Action.CORRECT_SIGNED_RELEASE
        ),
        SignedRecord.BEDSIDE_CHECK: SignedRecordSpec(
            N_("Bedside check (signed infusion)"), Action.CORRECT_INFUSION_DATE
        ),
    }
)

_F = CorrectableField
_T = ValueType
# A shipment's times and carrier; the arrival is the receipt's (lab or pharmacy) and is corrected there.
_SHIPMENT_FIELDS = (
    _F("planned_departure_at", N_("planned departure"), _T.INSTANT),
    _F("planned_arrival_at", N_("planned arrival"), _T.INSTANT),
    _F("actual_departure_at", N_("actual departure"), _T.INSTANT),
    _F("courier", N_("courier"), _T.TEXT),
    _F("shipper_id", N_("shipper id"), _T.TEXT),
)

CORRECTABLE: Mapping[RecordKind, CorrectableRecord] = MappingProxyType(
    {
        RecordKind.SCREENING_DATA: CorrectableRecord(
            RecordKind.SCREENING_DATA,
            N_("Screening data"),
            tuple(_F(name, spec.description, _T.SCREENING_ITEM) for name, spec in SCREENING_FIELDS.items()),
            Action.CORRECT_SCREENING_DATA,
            covered_by=SignedRecord.INCLUSION,
            read_action=Action.READ_SCREENING,
            feeds_verdict=True,
        ),
        RecordKind.LAB_OBSERVATION: CorrectableRecord(
            RecordKind.LAB_OBSERVATION,
            N_("Lab result"),
            (
                _F("value", N_("value"), _T.OPTIONAL_NUMBER),
                _F("unit", N_("unit"), _T.UNIT),
                _F("limit_of_quantification", N_("limit of quantification"), _T.OPTIONAL_NUMBER),
                _F("lower_limit", N_("lower limit of normal"), _T.OPTIONAL_NUMBER),
                _F("upper_limit", N_("upper limit of normal"), _T.OPTIONAL_NUMBER),
                _F("sampled_at", N_("sample time"), _T.INSTANT),
            ),
            Action.CORRECT_LAB_RESULT,
            # Screening labs only: the verdict the investigator signed is computed from them.
            covered_by=SignedRecord.INCLUSION,
            feeds_verdict=True,
        ),
        RecordKind.CONSENT: CorrectableRecord(
            RecordKind.CONSENT,
            N_("Consent"),
            (_F("signed_on", N_("date the consent was signed"), _T.DATE),),
            Action.CORRECT_CONSENT_DATE,
            # The age criterion is the age at consent.
            covered_by=SignedRecord.INCLUSION,
            read_action=Action.READ_SCREENING,
            feeds_verdict=True,
        ),
        RecordKind.PLANNED_APHERESIS: CorrectableRecord(
            RecordKind.PLANNED_APHERESIS,
            N_("Planned apheresis"),
            (_F("apheresis_date", N_("planned apheresis date"), _T.DATE),),
            Action.CORRECT_APHERESIS_DATE,
        ),
        RecordKind.COLLECTION: CorrectableRecord(
            RecordKind.COLLECTION,
            N_("Apheresis collection"),
            (
                _F("started_at", N_("collection started at"), _T.INSTANT),
                _F("ended_at", N_("collection ended at"), _T.INSTANT),
                _F("volume_ml", N_("volume collected"), _T.NUMBER, "mL"),
                _F("tnc_e9", N_("total nucleated cells"), _T.OPTIONAL_NUMBER, "×10⁹"),
                _F("cd3_cells_e9", N_("CD3+ cells collected"), _T.OPTIONAL_NUMBER, "×10⁹"),
            ),
            Action.CORRECT_COLLECTION,
        ),
        RecordKind.MATERIAL_SHIPMENT: CorrectableRecord(
            RecordKind.MATERIAL_SHIPMENT,
            N_("Shipment of apheresis material to the lab"),
            _SHIPMENT_FIELDS,
            Action.CORRECT_MATERIAL_SHIPMENT,
        ),
        RecordKind.LAB_RECEIPT: CorrectableRecord(
            RecordKind.LAB_RECEIPT,
            N_("Receipt of the material at the lab"),
            (_F("received_at", N_("received at"), _T.INSTANT),),
            Action.CORRECT_LAB_RECEIPT,
        ),
        RecordKind.QC_RESULT: CorrectableRecord(
            RecordKind.QC_RESULT,
            N_("QC result"),
            (_F("value", N_("result"), _T.REPORTED),),
            Action.CORRECT_QC_RESULT,
            covered_by=SignedRecord.RELEASE,
        ),
        RecordKind.PRODUCT_SHIPMENT: CorrectableRecord(
            RecordKind.PRODUCT_SHIPMENT,
            N_("Shipment of the product to the center"),
            _SHIPMENT_FIELDS,
            Action.CORRECT_PRODUCT_SHIPMENT,
        ),
        RecordKind.PRODUCT_RECEIPT: CorrectableRecord(
            RecordKind.PRODUCT_RECEIPT,
            N_("Receipt of the product at the pharmacy"),
            (
                _F("received_at", N_("received at"), _T.INSTANT),
                _F("storage_location", N_("storage location"), _T.TEXT),
            ),
            Action.CORRECT_PRODUCT_RECEIPT,
        ),
        RecordKind.THAW: CorrectableRecord(
            RecordKind.THAW,
            N_("Thaw of the product"),
            (_F("thawed_at", N_("thawed at"), _T.INSTANT),),
            Action.CORRECT_THAW,
        ),
        RecordKind.INFUSION: CorrectableRecord(
            RecordKind.INFUSION,
            N_("Infusion (D0)"),
            (_F("infusion_date", N_("infusion date (D0)"), _T.DATE),),
            Action.CORRECT_INFUSION_DATE,
            covered_by=SignedRecord.BEDSIDE_CHECK,
        ),
        RecordKind.DEATH: CorrectableRecord(
            RecordKind.DEATH,
            N_("Death"),
            (_F("death_date", N_("date of death"), _T.DATE),),
            Action.CORRECT_DEATH_DATE,
        ),
    }
)

# What a clinical team might expect to correct and cannot, with the reason (docs/corrections.md).
NOT_CORRECTABLE: Mapping[str, str] = MappingProxyType(
    {
        N_("A scanned code"): N_(
            "A wrong scan is a deviation, not a typo: the hand-over was refused and the deviation recorded."
        ),
        N_("A chain-of-identity code (CoI) or a donation number (DIN)"): N_(
            "Identifiers are allocated once and printed on the labels; a new collection gets a new DIN."
        ),
        N_("The audit trail"): N_("Never: it is append-only and hash-chained; a correction adds an entry."),
        N_("An electronic signature"): N_(
            "Never edited: a correction of what it covers voids it (who, when, why) and asks for a new one."
        ),
        N_("A deviation"): N_("Managed, not corrected: acknowledged, commented and closed with a reason."),
        N_("A temperature log"): N_(
            "The logger's file is evidence: import the right file again; its excursions are evaluated anew."
        ),
        N_("A pathway step"): N_("A step is done or not: a wrong step is followed by the next one, with its reason."),
        N_("The times the system recorded something"): N_(
            "Recording and signing times are the clock's, not a person's: they are never typed."
        ),
    }
)


def correctable(kind: str) -> CorrectableRecord:
    """The description of a kind of record, or a refusal naming the kinds there are."""
    try:
        return CORRECTABLE[RecordKind(kind)]
    except ValueError:
        raise InvalidInput(
            "'{record}' is not a kind of record that can be corrected; correctable: {kinds}.",
            code="unknown_record",
            item="record",
            record=kind,
            kinds=[k.value for k in RecordKind],
        ) from None


def correction_action(record: CorrectableRecord, signed: SignedRecord | None) -> Action:
    """The action to authorise: the signing role's when a signature in force covers the record."""
    return SIGNED_RECORDS[signed].action if signed is not None else record.action


def _refuse(raw: object, expected: str) -> InvalidInput:
    return InvalidInput(
        "“{raw}” is not {expected}.", code="invalid_value", item="value", raw=raw, expected=label(expected)
    )


def parse_corrected_value(field: CorrectableField, raw: object, zone: ZoneInfo) -> object:
    """The corrected value as stored, read from a form's text or a JSON value.

    Only the type is checked here; the record's own rules (ranges, order, specification) are the
    ones a new value passes, in the app that owns the record.
    """
    if field.type is ValueType.SCREENING_ITEM or field.type is ValueType.REPORTED:
        return raw.strip() if isinstance(raw, str) else raw
    text = raw.strip() if isinstance(raw, str) else raw
    if text is None or text == "":
        if field.type is ValueType.OPTIONAL_NUMBER:
            return None
        raise InvalidInput("Give the corrected value.", code="value_missing", item="value")
    if field.type in (ValueType.TEXT, ValueType.UNIT):
        return str(text)
    if field.type in (ValueType.NUMBER, ValueType.OPTIONAL_NUMBER):
        return _number(text)
    if field.type is ValueType.DATE:
        return _date(text)
    return _instant(text, zone)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _refuse(value, N_("a number"))
    text = value.replace(",", ".").replace("\u00a0", "").replace(" ", "") if isinstance(value, str) else value
    try:
        number = float(text)
    except ValueError:
        raise _refuse(value, N_("a number")) from None
    if not math.isfinite(number):
        raise _refuse(value, N_("a number"))
    return number


def _date(value: object) -> date:
    if isinstance(value, datetime):
        raise _refuse(value, N_("a date (YYYY-MM-DD)"))
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _refuse(value, N_("a date (YYYY-MM-DD)")) from None


def _instant(value: object, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).replace("Z", "+00:00")
        if len(text) <= 10:
            raise _refuse(value, N_("a date and time (YYYY-MM-DD HH:MM)"))
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _refuse(value, N_("a date and time (YYYY-MM-DD HH:MM)")) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def correction_check(old: object, new: object, reason: str) -> None:
    """A correction says why, and changes something."""
    if not reason.strip():
        raise InvalidInput(
            "A reason for the correction is required: the value was already saved.",
            code="reason_required",
            item="reason",
        )
    if old == new:
        raise InvalidInput("Nothing changed: the corrected value is the one stored.", code="no_change", item="value")


def stored_form(value: object) -> object:
    """A value as the audit trail keeps it (times and dates as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- the pathway's dates in order --------------------------------------------------------------

PATHWAY_DATE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "consent_signed_on": N_("consent"),
        "apheresis_date": N_("apheresis"),
        "infusion_date": N_("infusion (D0)"),
        "death_date": N_("death"),
    }
)
# Dates of things that happened (not planned): never after today.
_HAPPENED = frozenset({"consent_signed_on", "infusion_date", "death_date"})


def pathway_date_order_check(dates: Sequence[tuple[str, date | None]], today: date) -> None:
    """Consent, apheresis, D0 and death follow each other, and what happened is not in the future.

    Kept minimal on purpose: the pathway's full chronology is `domain/chronology.py` (branch
    `values`); this check stands in for it until a correction can call that one.
    """
    seen: list[tuple[str, date]] = []
    for name, when in dates:
        if when is None:
            continue
        if name in _HAPPENED and when > today:
            raise InvalidInput(
                "The date of {what} ({when}) is in the future.",
                code="date_in_future",
                item="value",
                what=label(PATHWAY_DATE_LABELS[name]),
                when=when,
            )
        for earlier_name, earlier in seen:
            if when < earlier:
                raise InvalidInput(
                    "The date of {what} ({when}) would be before the date of {earlier} ({earlier_on}).",
                    code="dates_out_of_order",
                    item="value",
                    what=label(PATHWAY_DATE_LABELS[name]),
                    when=when,
                    earlier=label(PATHWAY_DATE_LABELS[earlier_name]),
                    earlier_on=earlier,
                )
        seen.append((name, when))
