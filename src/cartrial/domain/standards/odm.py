"""CDISC ODM 1.3.2: the study's metadata built from the protocol, and the casebook's data with its whole
history (who, where, when, why) and its signatures, written as one Transactional, Archival file.

What the file holds (docs/exports.md, "CDISC ODM 1.3.2"):

- `Study`: `GlobalVariables`, the units of measure (`BasicDefinitions`, with their UCUM code as an
  `Alias`) and one `MetaDataVersion`: a `StudyEventDef` per visit of the schedule (plus one repeating
  event for unscheduled visits), a `FormDef` per eCRF form, an `ItemGroupDef` per group (`Repeating`
  as declared), an `ItemDef` per item (`DataType` from the item type, `Question` = label and
  `Description` = help in English and French, `RangeCheck`s from the plausible range, units,
  `CodeListRef`), `CodeList`s with their English and French decodes, a `ConditionDef` per item
  condition and a `MethodDef` per derivation. What ODM 1.3.2 has no element for (an item's analyte,
  a multiple choice, the baseline visit, a code's definition) travels as an `Alias` in a `cartrial:`
  context, and rules as `FormalExpression`s in the protocol's rule language (JSON): so that the
  forms can be read back (`odm_import.forms_from_odm`) exactly as declared.
- `AdminData`: every user who appears in the file, every location (clinical centers, the
  manufacturing lab, the sponsor) and a `SignatureDef` per signing meaning.
- `ClinicalData`: per subject (`SubjectKey` = the pseudonymous subject code, never an identity), its
  visits (`StudyEventData`) and forms (`FormData`); every change of an item is its own transaction
  (`ItemData` with `TransactionType` Insert, Update or Remove and its `AuditRecord`: user, location,
  time, reason, edit point), in the order they happened. A visit's date and outcome are the items of
  a form of its own (`F.VISIT`). The subject, its visits and forms carry the `AuditRecord` of their
  creation: `Insert` when created within the file's period, `Context` when an earlier file holds
  their creation (an export `since` a time). A signed casebook carries its `Signature` on the
  `SubjectData` and on each signed `FormData`.

The document is written one subject at a time with lxml's incremental writer: memory holds the
metadata and one subject, whatever the size of the study. Pure: no Django; the caller gathers the
data (`apps/exports/odm.py`) and passes plain dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any

from lxml import etree

from cartrial.domain.ecrf import (
    CODELIST_SOURCES,
    FormDef,
    GroupDef,
    ItemDef,
    ItemType,
    Label,
    lab_range,
)
from cartrial.domain.roles import SPONSOR_ROLES, Role
from cartrial.domain.rules import Rule
from cartrial.domain.standards.terminology import LAB_CODINGS, ucum
from cartrial.domain.text import N_, Message, Translate, protocol_text
from cartrial.domain.visits import VisitDefinition

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ODM_VERSION = "1.3.2"
LANGUAGES = ("en", "fr")

# FormalExpression contexts: the language each expression is written in.
RULE_CONTEXT = "cartrial-rule+json"  # a rule of the protocol's rule language (domain/rules.py), as JSON
EDIT_CHECK_CONTEXT = "cartrial-edit-check+json"  # {"code", "position", "items", "rule"}
DERIVATION_CONTEXT = "cartrial-derivation"  # the name of a derivation of the eCRF engine
PATTERN_CONTEXT = "regex"  # a text item's pattern (Python `re.fullmatch`)

# Alias contexts: what ODM 1.3.2 has no attribute for, kept so that the forms read back unchanged.
ALIAS_ANALYTE = "cartrial:analyte"
ALIAS_TYPE = "cartrial:type"
ALIAS_UNIT = "cartrial:unit"
ALIAS_VISIT_DATE = "cartrial:visit_date"
ALIAS_CODELIST_FROM = "cartrial:codelist_from"
ALIAS_BASELINE_VISIT = "cartrial:baseline_visit"
ALIAS_REQUIRED_WHEN = "cartrial:required_when"
ALIAS_HELP = "cartrial:help:{language}"
ALIAS_ROLE = "cartrial:role"
ROLE_VISIT_RECORD = "visit_record"
ALIAS_UCUM = "UCUM"
ALIAS_LBTESTCD = "CDISC:LBTESTCD"

# The ODM data type of each item type; a choice is a text with its code list, a multiple choice the
# codes chosen separated by spaces (codes are names: they hold no space).
DATA_TYPES: Mapping[ItemType, str] = {
    ItemType.INTEGER: "integer",
    ItemType.NUMBER: "float",
    ItemType.TEXT: "text",
    ItemType.DATE: "date",
    ItemType.BOOLEAN: "boolean",
    ItemType.CHOICE: "text",
    ItemType.MULTI_CHOICE: "text",
}

UNSCHEDULED_EVENT_OID = "SE.UNSCHEDULED"
VISIT_FORM_CODE = "VISIT"
SPONSOR_LOCATION_CODE = "SPONSOR"

# Texts the file declares beyond the protocol's own (in English and French from the catalog).
_UNSCHEDULED_LABEL = N_("Unscheduled visit")
_SHOWN_WHEN_TEXT = N_("Collected only when this rule is met: {rule}")
_REQUIRED_WHEN_TEXT = N_("Required when this rule is met: {rule}")
_DERIVATION_TEXT = N_("Computed by the eCRF engine ({derivation}); never typed in.")
_LEGAL_REASON = N_(
    "Electronic signature (21 CFR Part 11): the signer re-entered their password; the signature records "
    "the signer, the meaning, the time and the SHA-256 of what was signed."
)

# The form carrying each visit's own data: its outcome, the date it was done, why it was missed.
VISIT_FORM = FormDef(
    code=VISIT_FORM_CODE,
    label=Message(N_("Visit")),
    groups=(
        GroupDef(
            VISIT_FORM_CODE,
            Message(N_("Visit")),
            False,
            (
                ItemDef(
                    "OUTCOME",
                    ItemType.CHOICE,
                    Message(N_("Visit outcome")),
                    required=True,
                    codelist=(("done", Message(N_("Done"))), ("missed", Message(N_("Missed")))),
                    group=VISIT_FORM_CODE,
                ),
                ItemDef("DONE_ON", ItemType.DATE, Message(N_("Date done")), group=VISIT_FORM_CODE),
                ItemDef("MISSED_REASON", ItemType.TEXT, Message(N_("Reason missed")), group=VISIT_FORM_CODE),
            ),
        ),
    ),
)
# The audited fields of a visit record → the items of the visit form.
VISIT_FIELDS: Mapping[str, str] = {"outcome": "OUTCOME", "done_on": "DONE_ON", "missed_reason": "MISSED_REASON"}


class EditPoint(StrEnum):
    """The phase of data processing in which a change was made (ODM `EditPoint`)."""

    MONITORING = "Monitoring"
    DATA_MANAGEMENT = "DataManagement"
    DB_AUDIT = "DBAudit"


class TransactionType(StrEnum):
    INSERT = "Insert"
    UPDATE = "Update"
    REMOVE = "Remove"
    CONTEXT = "Context"


class LocationType(StrEnum):
    SITE = "Site"
    LAB = "Lab"
    SPONSOR = "Sponsor"


class UserType(StrEnum):
    SPONSOR = "Sponsor"
    INVESTIGATOR = "Investigator"
    LAB = "Lab"
    OTHER = "Other"


def edit_point(role: str, after_lock: bool) -> EditPoint:
    """Where a change was made: a correction of a form once locked is a database audit; a monitor's
    change is monitoring; anything else (entry, derivation, data management) is data management."""
    if after_lock:
        return EditPoint.DB_AUDIT
    if role == Role.MONITOR:
        return EditPoint.MONITORING
    return EditPoint.DATA_MANAGEMENT


def action_location(role: str, center_code: str, sponsor_code: str = SPONSOR_LOCATION_CODE) -> str:
    """The location of an action: the sponsor for its roles and the system, else the center recorded."""
    if not center_code or role not in {r.value for r in Role} or Role(role) in SPONSOR_ROLES:
        return sponsor_code
    return center_code


def user_type(roles: Iterable[str]) -> UserType:
    """A user's ODM type from the roles they hold (an investigator anywhere is an investigator)."""
    held = set(roles)
    if Role.INVESTIGATOR in held:
        return UserType.INVESTIGATOR
    if Role.MANUFACTURING in held:
        return UserType.LAB
    if held and held <= {r.value for r in SPONSOR_ROLES}:
        return UserType.SPONSOR
    return UserType.OTHER


# --- what the caller passes ------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyDefinition:
    """The protocol as the file describes it (the adapter copies it from `protocols.Protocol`)."""

    code: str
    version: str
    title: Mapping[str, str]
    sponsor: str
    effective_date: date
    visits: tuple[VisitDefinition, ...]
    forms: Mapping[str, FormDef]


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    kind: LocationType


@dataclass(frozen=True)
class User:
    """A person (or the system) who appears in the file; names of staff, never of patients."""

    username: str
    display_name: str
    first_name: str = ""
    last_name: str = ""
    kind: UserType = UserType.OTHER
    location_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stamp:
    """Who did it, where, when, why, and in which phase of data processing."""

    username: str
    location_code: str
    at: datetime
    reason: str = ""
    edit_point: EditPoint = EditPoint.DATA_MANAGEMENT


@dataclass(frozen=True)
class ValueChange:
    """One audited change of a record's field: an item, or a repeating group as its list of rows."""

    field: str
    old: Any
    new: Any
    stamp: Stamp


@dataclass(frozen=True)
class Signed:
    """An electronic signature: its id, who, where, when, and its meaning (an English sentence)."""

    signature_id: int
    username: str
    location_code: str
    meaning: str
    at: datetime


@dataclass(frozen=True)
class FormHistory:
    form_code: str
    created: Stamp
    changes: tuple[ValueChange, ...] = ()
    signature: Signed | None = None


@dataclass(frozen=True)
class VisitHistory:
    """A visit done or missed; `changes` are its outcome, date and reason fields."""

    visit_code: str
    created: Stamp
    changes: tuple[ValueChange, ...] = ()
    forms: tuple[FormHistory, ...] = ()


@dataclass(frozen=True)
class SubjectHistory:
    code: str
    site_code: str
    created: Stamp
    visits: tuple[VisitHistory, ...] = ()
    signature: Signed | None = None


@dataclass(frozen=True)
class FileHeader:
    """The ODM root's attributes: its id, time, breadth and who asked for it."""

    file_oid: str
    created_at: datetime
    originator: str
    description: str
    source_version: str
    granularity: str | None = None


@dataclass(frozen=True)
class OdmCounts:
    subjects: int
    transactions: int


# --- identifiers -----------------------------------------------------------------------------------


def study_oid(study: StudyDefinition) -> str:
    return f"ST.{study.code}"


def metadata_version_oid(study: StudyDefinition) -> str:
    return f"MDV.{study.code}.{study.version}"


def event_oid(visit_code: str) -> str:
    return f"SE.{visit_code}"


def form_oid(form_code: str) -> str:
    return f"F.{form_code}"


def group_oid(form_code: str, group: str) -> str:
    return f"IG.{form_code}.{group}"


def item_oid(form_code: str, item: str) -> str:
    return f"IT.{form_code}.{item}"


def user_oid(username: str) -> str:
    return f"USR.{username}"


def location_oid(code: str) -> str:
    return f"LOC.{code}"


def signature_def_oid(meaning: str) -> str:
    """One SignatureDef per meaning, named by the meaning's digest (meanings are long sentences)."""
    return "SD." + hashlib.sha256(meaning.encode("utf-8")).hexdigest()[:12]


def _unit_slug(unit: str) -> str:
    ascii_unit = unit.replace("µ", "u").replace("²", "2").replace("°", "deg").replace("%", "pct")
    return re.sub(r"[^A-Za-z0-9]+", "_", ascii_unit).strip("_") or "unit"


def unit_oids(units: Iterable[str]) -> dict[str, str]:
    """An OID per unit (`MU.mg_dL`), distinct even when two spellings give the same letters."""
    oids: dict[str, str] = {}
    taken: set[str] = set()
    for unit in units:
        if unit in oids:
            continue
        oid, index = f"MU.{_unit_slug(unit)}", 2
        while oid in taken:
            oid, index = f"MU.{_unit_slug(unit)}_{index}", index + 1
        oids[unit] = oid
        taken.add(oid)
    return oids


# --- values ----------------------------------------------------------------------------------------


def decimal_text(number: float | int) -> str:
    """A number as ODM writes it: plain decimal notation, no exponent, no trailing zero."""
    if isinstance(number, int):
        return str(number)
    text = format(Decimal(repr(number)).normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class ItemValue:
    """A stored value as ODM text, with the unit it was entered in (lab results)."""

    text: str
    unit: str | None = None


def item_value(item: ItemDef, value: Any) -> ItemValue | None:
    """The value of `item` as stored by the eCRF engine, written as ODM text; None for no value."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, Mapping):
        number = value.get("value")
        if number is None:
            return None
        unit = value.get("unit") or item.unit or None
        return ItemValue(decimal_text(number) if isinstance(number, int | float) else str(number), unit)
    if isinstance(value, bool):
        return ItemValue("true" if value else "false")
    if isinstance(value, int | float):
        return ItemValue(decimal_text(value))
    if isinstance(value, list | tuple):
        return ItemValue(" ".join(str(code) for code in value))
    return ItemValue(str(value))


@dataclass(frozen=True)
class ItemTransaction:
    """One data point's change: its group (and row of a repeating group), item, value and stamp."""

    group: GroupDef
    row: int | None
    item: ItemDef
    value: ItemValue | None
    kind: TransactionType
    stamp: Stamp


def _kind(old: ItemValue | None, new: ItemValue | None) -> TransactionType | None:
    if old == new:
        return None
    if old is None:
        return TransactionType.INSERT
    if new is None:
        return TransactionType.REMOVE
    return TransactionType.UPDATE


def item_transactions(form: FormDef, change: ValueChange) -> list[ItemTransaction]:
    """The data points one audited change touched: the item itself, or each item of each row of a
    repeating group (rows compared by position, as the audit trail stores the list). A field the
    form does not declare (an item of another protocol version) has no ItemDef: left out."""
    group = next((g for g in form.groups if g.repeating and g.name == change.field), None)
    if group is not None:
        old_rows = change.old if isinstance(change.old, list) else []
        new_rows = change.new if isinstance(change.new, list) else []
        found = []
        for index in range(max(len(old_rows), len(new_rows))):
            old_row = old_rows[index] if index < len(old_rows) and isinstance(old_rows[index], Mapping) else {}
            new_row = new_rows[index] if index < len(new_rows) and isinstance(new_rows[index], Mapping) else {}
            for item in group.items:
                old, new = item_value(item, old_row.get(item.name)), item_value(item, new_row.get(item.name))
                kind = _kind(old, new)
                if kind is not None:
                    found.append(ItemTransaction(group, index + 1, item, new, kind, change.stamp))
        return found
    if not form.has_item(change.field):
        return []
    item = form.item(change.field)
    old, new = item_value(item, change.old), item_value(item, change.new)
    if old == new and change.old != change.new:
        # A lab result whose reference range changed, not its value: still a transaction.
        return [ItemTransaction(form.group_of(item.name), None, item, new, TransactionType.UPDATE, change.stamp)]
    kind = _kind(old, new)
    if kind is None:
        return []
    return [ItemTransaction(form.group_of(item.name), None, item, new, kind, change.stamp)]


# --- text ------------------------------------------------------------------------------------------


Translations = Mapping[str, Translate]


def texts(label: Label, translations: Translations) -> dict[str, str]:
    """A label in each language of the file: a protocol text as written, a msgid from the catalog."""
    if isinstance(label, Message):
        return {language: label.render(translations[language], language) for language in LANGUAGES}
    return {language: protocol_text(label, language) for language in LANGUAGES}


def _e(tag: str, attrib: Mapping[str, str] | None = None, *, nsmap: bool = False) -> etree._Element:
    return etree.Element(
        f"{{{ODM_NAMESPACE}}}{tag}", dict(attrib or {}), nsmap={None: ODM_NAMESPACE} if nsmap else None
    )


def _sub(
    parent: etree._Element, tag: str, attrib: Mapping[str, str] | None = None, text: str | None = None
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ODM_NAMESPACE}}}{tag}", dict(attrib or {}))
    if text is not None:
        element.text = text
    return element


def _translated(parent: etree._Element, tag: str, values: Mapping[str, str]) -> etree._Element:
    element = _sub(parent, tag)
    for language in LANGUAGES:
        translated = _sub(element, "TranslatedText", text=values[language])
        translated.set(XML_LANG, language)
    return element


def _alias(parent: etree._Element, context: str, name: str) -> None:
    _sub(parent, "Alias", {"Context": context, "Name": name})


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def timestamp(moment: datetime) -> str:
    """A time as ODM writes it: full ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rule_json(rule: Rule | Mapping[str, object]) -> str:
    """A rule's source as the JSON of a FormalExpression (keys in the order the protocol wrote them)."""
    source = rule.source if isinstance(rule, Rule) else rule
    return json.dumps(source, ensure_ascii=False, default=str)


# --- metadata --------------------------------------------------------------------------------------


@dataclass
class _CodeLists:
    """Code lists shared by every item with the same codes, labels and definitions."""

    oids: dict[tuple[object, ...], str] = field(default_factory=dict)
    elements: list[etree._Element] = field(default_factory=list)


def _codelist_source(item: ItemDef) -> str | None:
    """The named code list (`codelist_from`) the item's codes come from, if any."""
    return next((name for name, codes in CODELIST_SOURCES.items() if codes == item.codelist), None)


@dataclass
class StudyMetadata:
    """The study's metadata, built once: the `Study` element and what the clinical data refers to."""

    study: StudyDefinition
    forms: dict[str, FormDef]
    units: dict[str, str]
    element: etree._Element


def _all_units(forms: Iterable[FormDef]) -> list[str]:
    units: list[str] = []
    for form in forms:
        for item in form.items:
            for unit in (item.unit, *item.units):
                if unit and unit not in units:
                    units.append(unit)
    return units


def study_metadata(study: StudyDefinition, translations: Translations) -> StudyMetadata:
    """The `Study` element of the protocol: global variables, units and the MetaDataVersion."""
    forms = {VISIT_FORM_CODE: VISIT_FORM, **study.forms}
    units = unit_oids(_all_units(forms.values()))
    root = _e("Study", {"OID": study_oid(study)}, nsmap=True)
    variables = _sub(root, "GlobalVariables")
    _sub(variables, "StudyName", text=study.code)
    _sub(variables, "StudyDescription", text=protocol_text(study.title, "en"))
    _sub(variables, "ProtocolName", text=f"{study.code} v{study.version}")
    basic = _sub(root, "BasicDefinitions")
    for unit, oid in units.items():
        measurement = _sub(basic, "MeasurementUnit", {"OID": oid, "Name": unit})
        _sub(_sub(measurement, "Symbol"), "TranslatedText", text=unit)
        code = ucum(unit)
        if code is not None:
            _alias(measurement, ALIAS_UCUM, code)
    version = _sub(
        root,
        "MetaDataVersion",
        {"OID": metadata_version_oid(study), "Name": f"{study.code} {study.version}"},
    )
    events = [(event_oid(v.code), True) for v in study.visits] + [(UNSCHEDULED_EVENT_OID, False)]
    protocol = _sub(version, "Protocol")
    for order, (oid, scheduled) in enumerate(events, start=1):
        _sub(protocol, "StudyEventRef", {"StudyEventOID": oid, "OrderNumber": str(order), "Mandatory": _yes(scheduled)})
    for visit in study.visits:
        _study_event(version, visit, study.forms, translations)
    _unscheduled_event(version, study, translations)
    code_lists = _CodeLists()
    conditions: list[etree._Element] = []
    methods: dict[str, etree._Element] = {}
    item_defs: list[etree._Element] = []
    group_defs: list[etree._Element] = []
    for form in forms.values():
        _form_def(version, form, translations)
        for group in form.groups:
            group_defs.append(_group_def(form, group, translations, conditions, methods))
            for item in group.items:
                item_defs.append(_item_def(form, item, units, translations, code_lists, conditions))
    # The XSD's order: FormDef*, ItemGroupDef*, ItemDef*, CodeList*, ConditionDef*, MethodDef*.
    version.extend(group_defs)
    version.extend(item_defs)
    version.extend(code_lists.elements)
    version.extend(conditions)
    version.extend(methods.values())
    return StudyMetadata(study, forms, units, root)


def _study_event(
    version: etree._Element, visit: VisitDefinition, forms: Mapping[str, FormDef], translations: Translations
) -> None:
    event = _sub(
        version,
        "StudyEventDef",
        {
            "OID": event_oid(visit.code),
            "Name": visit.code,
            "Repeating": "No",
            "Type": "Scheduled",
            "Category": visit.phase.value,
        },
    )
    _translated(event, "Description", texts(visit.label, translations))
    collected = [code for code in visit.forms if code in forms]
    for order, code in enumerate((VISIT_FORM_CODE, *collected), start=1):
        _sub(event, "FormRef", {"FormOID": form_oid(code), "OrderNumber": str(order), "Mandatory": "Yes"})
    _alias(event, "cartrial:anchor", visit.anchor.value)
    _alias(event, "cartrial:day", str(visit.day))
    _alias(event, "cartrial:window_days", f"-{visit.window_before_days}/+{visit.window_after_days}")


def _unscheduled_event(version: etree._Element, study: StudyDefinition, translations: Translations) -> None:
    event = _sub(
        version,
        "StudyEventDef",
        {"OID": UNSCHEDULED_EVENT_OID, "Name": "UNSCHEDULED", "Repeating": "Yes", "Type": "Unscheduled"},
    )
    _translated(event, "Description", texts(Message(_UNSCHEDULED_LABEL), translations))
    for order, code in enumerate((VISIT_FORM_CODE, *study.forms), start=1):
        _sub(event, "FormRef", {"FormOID": form_oid(code), "OrderNumber": str(order), "Mandatory": _yes(order == 1)})


def _form_def(version: etree._Element, form: FormDef, translations: Translations) -> None:
    element = _sub(version, "FormDef", {"OID": form_oid(form.code), "Name": form.code, "Repeating": "No"})
    _translated(element, "Description", texts(form.label, translations))
    for order, group in enumerate(form.groups, start=1):
        mandatory = any(item.required for item in group.items)
        _sub(
            element,
            "ItemGroupRef",
            {"ItemGroupOID": group_oid(form.code, group.name), "OrderNumber": str(order), "Mandatory": _yes(mandatory)},
        )
    if form.baseline_visit is not None:
        _alias(element, ALIAS_BASELINE_VISIT, form.baseline_visit)
    if form is VISIT_FORM:
        _alias(element, ALIAS_ROLE, ROLE_VISIT_RECORD)


def _condition_oid(form: FormDef, item: ItemDef, kind: str) -> str:
    return f"CD.{form.code}.{item.name}.{kind}"


def _condition(
    oid: str, name: str, description: Message, expression: str, translations: Translations
) -> etree._Element:
    element = _e("ConditionDef", {"OID": oid, "Name": name})
    _translated(element, "Description", texts(description, translations))
    _sub(element, "FormalExpression", {"Context": RULE_CONTEXT}, text=expression)
    return element


def _method(derivation: str, translations: Translations) -> etree._Element:
    element = _e("MethodDef", {"OID": f"MT.{derivation}", "Name": derivation, "Type": "Computation"})
    _translated(element, "Description", texts(Message(_DERIVATION_TEXT, {"derivation": derivation}), translations))
    _sub(element, "FormalExpression", {"Context": DERIVATION_CONTEXT}, text=derivation)
    return element


def _group_def(
    form: FormDef,
    group: GroupDef,
    translations: Translations,
    conditions: list[etree._Element],
    methods: dict[str, etree._Element],
) -> etree._Element:
    element = _e(
        "ItemGroupDef",
        {"OID": group_oid(form.code, group.name), "Name": group.name, "Repeating": _yes(group.repeating)},
    )
    _translated(element, "Description", texts(group.label, translations))
    for order, item in enumerate(group.items, start=1):
        attrib = {
            "ItemOID": item_oid(form.code, item.name),
            "OrderNumber": str(order),
            "Mandatory": _yes(item.required),
        }
        if item.derived is not None:
            attrib["MethodOID"] = f"MT.{item.derived}"
            methods.setdefault(item.derived, _method(item.derived, translations))
        if item.shown_when is not None:
            # ODM says when an item is NOT collected: the negation of when it is shown.
            oid = _condition_oid(form, item, "hidden")
            attrib["CollectionExceptionConditionOID"] = oid
            description = Message(_SHOWN_WHEN_TEXT, {"rule": rule_json(item.shown_when)})
            conditions.append(
                _condition(
                    oid, f"{item.name}_hidden", description, rule_json({"not": item.shown_when.source}), translations
                )
            )
        _sub(element, "ItemRef", attrib)
    return element


def _range_check(parent: etree._Element, comparator: str, bound: float, unit_oid: str | None) -> None:
    check = _sub(parent, "RangeCheck", {"Comparator": comparator, "SoftHard": "Hard"})
    _sub(check, "CheckValue", text=decimal_text(bound))
    if unit_oid is not None:
        _sub(check, "MeasurementUnitRef", {"MeasurementUnitOID": unit_oid})


def _item_def(
    form: FormDef,
    item: ItemDef,
    units: Mapping[str, str],
    translations: Translations,
    code_lists: _CodeLists,
    conditions: list[etree._Element],
) -> etree._Element:
    element = _e(
        "ItemDef", {"OID": item_oid(form.code, item.name), "Name": item.name, "DataType": DATA_TYPES[item.type]}
    )
    if item.help is not None:
        _translated(element, "Description", texts(item.help, translations))
    _translated(element, "Question", texts(item.label, translations))
    accepted = item.units or ((item.unit,) if item.unit else ())
    for unit in accepted:
        _sub(element, "MeasurementUnitRef", {"MeasurementUnitOID": units[unit]})
    if item.is_lab:
        for unit in accepted:
            low, high = lab_range(item, unit)
            _range_check(element, "GE", low, units[unit])
            _range_check(element, "LE", high, units[unit])
    else:
        unit_oid = units[item.unit] if item.unit else None
        if item.minimum is not None:
            _range_check(element, "GE", item.minimum, unit_oid)
        if item.maximum is not None:
            _range_check(element, "LE", item.maximum, unit_oid)
    if item.pattern is not None:
        check = _sub(element, "RangeCheck", {"SoftHard": "Hard"})
        _sub(check, "FormalExpression", {"Context": PATTERN_CONTEXT}, text=item.pattern)
    for position, edit_check in enumerate(form.edit_checks):
        if edit_check.items[:1] != (item.name,):
            continue
        # An edit check raises a query (soft): attached to its first item, its rule as an expression.
        check = _sub(element, "RangeCheck", {"SoftHard": "Soft"})
        expression = {
            "code": edit_check.code,
            "position": position,
            "items": list(edit_check.items),
            "rule": edit_check.rule.source,
        }
        _sub(
            check,
            "FormalExpression",
            {"Context": EDIT_CHECK_CONTEXT},
            text=json.dumps(expression, ensure_ascii=False, default=str),
        )
        _translated(check, "ErrorMessage", texts(edit_check.message, translations))
    if item.codelist:
        _sub(element, "CodeListRef", {"CodeListOID": _code_list(form, item, translations, code_lists)})
    if item.type is ItemType.MULTI_CHOICE:
        _alias(element, ALIAS_TYPE, ItemType.MULTI_CHOICE.value)
    if item.analyte is not None:
        _alias(element, ALIAS_ANALYTE, item.analyte)
        coding = LAB_CODINGS.get(item.analyte)
        if coding is not None:
            _alias(element, ALIAS_LBTESTCD, coding.lbtestcd)
        if accepted and accepted[0] != item.unit:
            _alias(element, ALIAS_UNIT, item.unit)
    if item.visit_date:
        _alias(element, ALIAS_VISIT_DATE, "true")
    if item.required_when is not None:
        oid = _condition_oid(form, item, "required")
        _alias(element, ALIAS_REQUIRED_WHEN, oid)
        description = Message(_REQUIRED_WHEN_TEXT, {"rule": rule_json(item.required_when)})
        conditions.append(
            _condition(oid, f"{item.name}_required", description, rule_json(item.required_when), translations)
        )
    return element


def _code_list(form: FormDef, item: ItemDef, translations: Translations, code_lists: _CodeLists) -> str:
    source = _codelist_source(item)
    decodes = tuple((code, tuple(texts(text, translations).items())) for code, text in item.codelist)
    helps = tuple((code, tuple(texts(text, translations).items())) for code, text in sorted(item.choice_help.items()))
    key: tuple[object, ...] = (source, decodes, () if source else helps)
    if key in code_lists.oids:
        return code_lists.oids[key]
    oid = f"CL.{source}" if source else f"CL.{form.code}.{item.name}"
    name = source or item.name
    element = _e("CodeList", {"OID": oid, "Name": name, "DataType": "text"})
    for order, (code, text) in enumerate(item.codelist, start=1):
        entry = _sub(element, "CodeListItem", {"CodedValue": code, "OrderNumber": str(order)})
        _translated(entry, "Decode", texts(text, translations))
        help_text = item.choice_help.get(code)
        if help_text is not None and source is None:
            for language, value in texts(help_text, translations).items():
                _alias(entry, ALIAS_HELP.format(language=language), value)
    if source is not None:
        _alias(element, ALIAS_CODELIST_FROM, source)
    code_lists.oids[key] = oid
    code_lists.elements.append(element)
    return oid


# --- admin data ------------------------------------------------------------------------------------


def admin_element(
    study: StudyDefinition,
    users: Sequence[User],
    locations: Sequence[Location],
    meanings: Sequence[str],
    translations: Translations,
) -> etree._Element:
    """Every user and location the clinical data refers to, and a SignatureDef per meaning signed."""
    root = _e("AdminData", {"StudyOID": study_oid(study)}, nsmap=True)
    known = {location.code for location in locations}
    for user in users:
        element = _sub(root, "User", {"OID": user_oid(user.username), "UserType": user.kind.value})
        _sub(element, "LoginName", text=user.username)
        _sub(element, "DisplayName", text=user.display_name)
        if user.first_name:
            _sub(element, "FirstName", text=user.first_name)
        if user.last_name:
            _sub(element, "LastName", text=user.last_name)
        for code in user.location_codes:
            if code in known:
                _sub(element, "LocationRef", {"LocationOID": location_oid(code)})
    for location in locations:
        element = _sub(
            root,
            "Location",
            {"OID": location_oid(location.code), "Name": location.name, "LocationType": location.kind.value},
        )
        _sub(
            element,
            "MetaDataVersionRef",
            {
                "StudyOID": study_oid(study),
                "MetaDataVersionOID": metadata_version_oid(study),
                "EffectiveDate": study.effective_date.isoformat(),
            },
        )
    for meaning in dict.fromkeys(meanings):
        element = _sub(root, "SignatureDef", {"OID": signature_def_oid(meaning), "Methodology": "Electronic"})
        _sub(element, "Meaning", text=meaning)
        _sub(element, "LegalReason", text=Message(_LEGAL_REASON).render(translations["en"], "en"))
    return root


# --- clinical data ---------------------------------------------------------------------------------


def _audit(parent: etree._Element, stamp: Stamp) -> None:
    record = _sub(parent, "AuditRecord", {"EditPoint": stamp.edit_point.value})
    _sub(record, "UserRef", {"UserOID": user_oid(stamp.username)})
    _sub(record, "LocationRef", {"LocationOID": location_oid(stamp.location_code)})
    _sub(record, "DateTimeStamp", text=timestamp(stamp.at))
    if stamp.reason.strip():
        _sub(record, "ReasonForChange", text=stamp.reason)


def _signature(parent: etree._Element, signed: Signed, element_id: str) -> None:
    signature = _sub(parent, "Signature", {"ID": element_id})
    _sub(signature, "UserRef", {"UserOID": user_oid(signed.username)})
    _sub(signature, "LocationRef", {"LocationOID": location_oid(signed.location_code)})
    _sub(signature, "SignatureRef", {"SignatureOID": signature_def_oid(signed.meaning)})
    _sub(signature, "DateTimeStamp", text=timestamp(signed.at))


def _after(moment: datetime, since: datetime | None) -> bool:
    return since is None or moment > since


def _opened(stamp: Stamp, since: datetime | None) -> str:
    """A record created within the file's period is inserted; an earlier one is context."""
    return (TransactionType.INSERT if _after(stamp.at, since) else TransactionType.CONTEXT).value


@dataclass
class _Written:
    transactions: int = 0


def _form_data(
    metadata: StudyMetadata,
    form: FormDef,
    history: FormHistory,
    since: datetime | None,
    signature_id: str | None,
    written: _Written,
) -> etree._Element | None:
    changes = [
        transaction
        for change in history.changes
        if _after(change.stamp.at, since)
        for transaction in item_transactions(form, change)
    ]
    signed = history.signature if history.signature is not None and _after(history.signature.at, since) else None
    if not changes and signed is None and not _after(history.created.at, since):
        return None
    element = _e("FormData", {"FormOID": form_oid(form.code), "TransactionType": _opened(history.created, since)})
    _audit(element, history.created)
    if signed is not None and signature_id is not None:
        _signature(element, signed, signature_id)
    rows: dict[tuple[str, int | None], list[ItemTransaction]] = {}
    for transaction in changes:
        rows.setdefault((transaction.group.name, transaction.row), []).append(transaction)
    order = {group.name: index for index, group in enumerate(form.groups)}
    for (group_name, row), transactions in sorted(rows.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] or 0)):
        attrib = {"ItemGroupOID": group_oid(form.code, group_name)}
        if row is not None:
            attrib["ItemGroupRepeatKey"] = str(row)
        group_element = _sub(element, "ItemGroupData", attrib)
        for transaction in transactions:
            data = _sub(
                group_element,
                "ItemData",
                {"ItemOID": item_oid(form.code, transaction.item.name), "TransactionType": transaction.kind.value},
            )
            if transaction.value is not None:
                data.set("Value", transaction.value.text)
            _audit(data, transaction.stamp)
            if transaction.value is not None and transaction.value.unit is not None:
                _sub(data, "MeasurementUnitRef", {"MeasurementUnitOID": metadata.units[transaction.value.unit]})
            written.transactions += 1
    return element


def _visit_repeat(code: str) -> tuple[str, str | None]:
    """The StudyEvent of a visit code and its repeat key (the number of an unscheduled visit)."""
    match = re.fullmatch(r"U([1-9][0-9]*)", code)
    if match is not None:
        return UNSCHEDULED_EVENT_OID, match.group(1)
    return event_oid(code), None


def subject_element(
    metadata: StudyMetadata, subject: SubjectHistory, since: datetime | None, written: _Written | None = None
) -> etree._Element | None:
    """One subject's `SubjectData`: its visits and forms, each item change a transaction (only those
    after `since` when given); None when nothing of the subject changed within the period."""
    written = written if written is not None else _Written()
    events: list[etree._Element] = []
    for visit in subject.visits:
        oid, repeat = _visit_repeat(visit.visit_code)
        if repeat is None and oid not in {event_oid(v.code) for v in metadata.study.visits}:
            continue
        forms = []
        visit_changes = tuple(
            ValueChange(VISIT_FIELDS[change.field], change.old, change.new, change.stamp)
            for change in visit.changes
            if change.field in VISIT_FIELDS
        )
        own = _form_data(
            metadata, VISIT_FORM, FormHistory(VISIT_FORM_CODE, visit.created, visit_changes), since, None, written
        )
        if own is not None:
            forms.append(own)
        for history in visit.forms:
            form = metadata.forms.get(history.form_code)
            if form is None or form is VISIT_FORM:
                continue
            signature_id = None
            if history.signature is not None:
                signature_id = f"SIG.{history.signature.signature_id}.{visit.visit_code}.{history.form_code}"
            data = _form_data(metadata, form, history, since, signature_id, written)
            if data is not None:
                forms.append(data)
        if not forms and not _after(visit.created.at, since):
            continue
        attrib = {"StudyEventOID": oid, "TransactionType": _opened(visit.created, since)}
        if repeat is not None:
            attrib["StudyEventRepeatKey"] = repeat
        event = _e("StudyEventData", attrib)
        _audit(event, visit.created)
        event.extend(forms)
        events.append(event)
    signed = subject.signature if subject.signature is not None and _after(subject.signature.at, since) else None
    if not events and signed is None and not _after(subject.created.at, since):
        return None
    element = _e(
        "SubjectData", {"SubjectKey": subject.code, "TransactionType": _opened(subject.created, since)}, nsmap=True
    )
    _audit(element, subject.created)
    if signed is not None:
        _signature(element, signed, f"SIG.{signed.signature_id}")
    _sub(element, "SiteRef", {"LocationOID": location_oid(subject.site_code)})
    element.extend(events)
    return element


# --- the file --------------------------------------------------------------------------------------


def odm_root_attributes(header: FileHeader) -> dict[str, str]:
    attrib = {
        "FileOID": header.file_oid,
        "FileType": "Transactional",
        "Archival": "Yes",
        "CreationDateTime": timestamp(header.created_at),
        "AsOfDateTime": timestamp(header.created_at),
        "ODMVersion": ODM_VERSION,
        "Originator": header.originator,
        "SourceSystem": "cartrial",
        "SourceSystemVersion": header.source_version,
        "Description": header.description,
    }
    if header.granularity is not None:
        attrib["Granularity"] = header.granularity
    return attrib


def odm_write(
    target: IO[bytes],
    *,
    header: FileHeader,
    metadata: StudyMetadata,
    admin: etree._Element,
    subjects: Iterable[SubjectHistory],
    since: datetime | None,
    written_one: Callable[[], None] | None = None,
) -> OdmCounts:
    """Write the whole document into `target`, one subject at a time (only its element in memory);
    `written_one` is called after each subject considered (for a progress bar)."""
    written = _Written()
    count = 0
    with etree.xmlfile(target, encoding="utf-8") as document:
        document.write_declaration()
        with document.element(f"{{{ODM_NAMESPACE}}}ODM", odm_root_attributes(header), nsmap={None: ODM_NAMESPACE}):
            document.write(metadata.element, pretty_print=True)
            document.write(admin, pretty_print=True)
            clinical = {
                "StudyOID": study_oid(metadata.study),
                "MetaDataVersionOID": metadata_version_oid(metadata.study),
            }
            with document.element(f"{{{ODM_NAMESPACE}}}ClinicalData", clinical):
                for subject in subjects:
                    element = subject_element(metadata, subject, since, written)
                    if element is not None:
                        document.write(element, pretty_print=True)
                        count += 1
                    if written_one is not None:
                        written_one()
    return OdmCounts(count, written.transactions)
