"""An ODM 1.3.2 file's metadata read back into the protocol's `forms:` section (docs/exports.md).

`forms_from_odm` checks the file first and refuses, naming where (`InvalidInput.item` is the element's
path, `/ODM/Study/MetaDataVersion/FormDef[2]/ItemGroupRef[1]`):
- a file that is not XML (`odm_not_xml`, with its line);
- a file the ODM 1.3.2 schema refuses: an unknown element or attribute, a missing one, a value out of
  its enumeration (`odm_schema`, with the line and the schema's words);
- a reference to nothing: an OID attribute (`ItemOID`, `FormOID`, `CodeListOID`, `MethodOID`...) or a
  `cartrial:required_when` alias naming no element of the expected kind (`odm_dangling_oid`);
- what cartrial cannot hold: a data type without an item type, a condition or method in another
  language than cartrial's (`odm_unsupported`), and whatever the eCRF engine refuses in the forms
  read (`form_invalid`, at the element the form, group or item came from).

Then each `FormDef` of the first MetaDataVersion (the visit form the export adds aside) becomes a
form: its groups in `ItemGroupRef` order, its items in `ItemRef` order, everything the export wrote
(`odm.py`) read back, so that export then import gives the same forms. A file from another system
reads as far as ODM says: labels from `Question` (the other language when one is missing), ranges
from `RangeCheck`s, choices from code lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree

from cartrial.domain.ecrf import FormDefinitionError, parse_forms
from cartrial.domain.errors import InvalidInput
from cartrial.domain.lab_catalogue import ANALYTES, normalise_unit
from cartrial.domain.standards.odm import (
    ALIAS_ANALYTE,
    ALIAS_BASELINE_VISIT,
    ALIAS_CODELIST_FROM,
    ALIAS_HELP,
    ALIAS_REQUIRED_WHEN,
    ALIAS_ROLE,
    ALIAS_TYPE,
    ALIAS_UNIT,
    ALIAS_VISIT_DATE,
    DERIVATION_CONTEXT,
    EDIT_CHECK_CONTEXT,
    LANGUAGES,
    ODM_NAMESPACE,
    PATTERN_CONTEXT,
    ROLE_VISIT_RECORD,
    RULE_CONTEXT,
    XML_LANG,
)
from cartrial.domain.text import N_

_NS = {"odm": ODM_NAMESPACE}

# The element each OID attribute must name; an attribute not listed names an element of any kind.
REFERENCE_TARGETS: Mapping[str, str] = {
    "StudyOID": "Study",
    "MetaDataVersionOID": "MetaDataVersion",
    "StudyEventOID": "StudyEventDef",
    "FormOID": "FormDef",
    "ItemGroupOID": "ItemGroupDef",
    "ItemOID": "ItemDef",
    "CodeListOID": "CodeList",
    "RoleCodeListOID": "CodeList",
    "MeasurementUnitOID": "MeasurementUnit",
    "MethodOID": "MethodDef",
    "CollectionExceptionConditionOID": "ConditionDef",
    "ImputationMethodOID": "ImputationMethod",
    "UserOID": "User",
    "LocationOID": "Location",
    "SignatureOID": "SignatureDef",
}
# File identifiers, not references to an element of the file.
_NOT_REFERENCES = frozenset({"FileOID", "PriorFileOID"})

# Item types by ODM data type (a text with a code list is a choice).
_ITEM_TYPES: Mapping[str, str] = {
    "integer": "integer",
    "float": "number",
    "double": "number",
    "text": "text",
    "string": "text",
    "date": "date",
    "boolean": "boolean",
}


_UNREADABLE = N_("{path}: the expression is written in {context}, which cartrial cannot read (expected {expected}).")


@cache
def odm_schema() -> etree.XMLSchema:
    """The ODM 1.3.2 schema shipped with odmlib (with its xmldsig, xml and xlink parts), read once."""
    folder = resources.files("odmlib.schemas").joinpath("odm", "1.3.2")
    return etree.XMLSchema(etree.parse(str(folder.joinpath("ODM1-3-2.xsd"))))


def _local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def element_path(element: etree._Element) -> str:
    """A readable path: `/ODM/Study/MetaDataVersion/FormDef[2]/ItemGroupRef[1]` (definitions and
    references always numbered, other elements only when their parent holds several)."""
    parts = []
    node: etree._Element | None = element
    while node is not None:
        name = _local(node)
        parent = node.getparent()
        if parent is None:
            parts.append(name)
            break
        same = [sibling for sibling in parent if isinstance(sibling.tag, str) and sibling.tag == node.tag]
        numbered = len(same) > 1 or name.endswith(("Def", "Ref")) or name in ("CodeList", "CodeListItem", "RangeCheck")
        parts.append(f"{name}[{same.index(node) + 1}]" if numbered else name)
        node = parent
    return "/" + "/".join(reversed(parts))


def _refuse(msgid: str, code: str, element: etree._Element | None, **params: object) -> InvalidInput:
    path = element_path(element) if element is not None else "/"
    return InvalidInput(msgid, code=code, item=path, path=path, **params)


def odm_document(content: bytes) -> etree._ElementTree:
    """The file parsed (no entity, no DTD, no network), valid against the ODM 1.3.2 schema and with
    every OID reference resolved; InvalidInput names the first problem's path."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        tree = etree.ElementTree(etree.fromstring(content, parser))
    except etree.XMLSyntaxError as error:
        raise InvalidInput(
            "The file is not well-formed XML (line {line}): {problem}.",
            code="odm_not_xml",
            item="file",
            line=error.lineno,
            problem=error.msg,
        ) from None
    schema = odm_schema()
    if not schema.validate(tree):
        first = schema.error_log[0]
        found = tree.xpath(first.path) if first.path else []
        element = found[0] if found and isinstance(found[0], etree._Element) else None
        path = element_path(element) if element is not None else "/"
        raise InvalidInput(
            "The file is not valid ODM 1.3.2 at {path} (line {line}): {problem}",
            code="odm_schema",
            item=path,
            path=path,
            line=first.line,
            problem=first.message,
        )
    references_check(tree)
    return tree


def references_check(tree: etree._ElementTree) -> None:
    """Every OID attribute names an element of its kind in the file (the schema cannot say so); so
    does each `cartrial:required_when` alias. Refuses the first that names nothing."""
    defined: dict[str, set[str]] = {}
    for element in tree.iter():
        if isinstance(element.tag, str) and element.get("OID") is not None:
            defined.setdefault(str(element.get("OID")), set()).add(_local(element))
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        for attribute, value in element.attrib.items():
            if not attribute.endswith("OID") or attribute in _NOT_REFERENCES or attribute == "OID":
                continue
            expected = REFERENCE_TARGETS.get(attribute)
            kinds = defined.get(value, set())
            if not kinds or (expected is not None and expected not in kinds):
                raise _refuse(
                    N_("{path}: {attribute} '{oid}' names no {kind} of the file."),
                    "odm_dangling_oid",
                    element,
                    attribute=attribute,
                    oid=value,
                    kind=expected or "element",
                )
        if _local(element) == "Alias" and element.get("Context") == ALIAS_REQUIRED_WHEN:
            value = str(element.get("Name"))
            if "ConditionDef" not in defined.get(value, set()):
                raise _refuse(
                    N_("{path}: {attribute} '{oid}' names no {kind} of the file."),
                    "odm_dangling_oid",
                    element,
                    attribute=ALIAS_REQUIRED_WHEN,
                    oid=value,
                    kind="ConditionDef",
                )


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return list(element.findall(f"odm:{name}", _NS))


def _aliases(element: etree._Element) -> dict[str, str]:
    return {str(a.get("Context")): str(a.get("Name")) for a in _children(element, "Alias")}


def _translated(element: etree._Element | None) -> dict[str, str] | None:
    """A TranslatedText container as {en, fr}: a missing language takes the other's text."""
    if element is None:
        return None
    found: dict[str, str] = {}
    for text in _children(element, "TranslatedText"):
        language = str(text.get(XML_LANG) or "en").split("-")[0].lower()
        found.setdefault(language, text.text or "")
    if not any(found.values()):
        return None
    fallback = next(value for value in (found.get("en"), found.get("fr"), *found.values()) if value)
    return {language: found.get(language) or fallback for language in LANGUAGES}


def _ordered(refs: list[etree._Element]) -> list[etree._Element]:
    """References in `OrderNumber` order (document order where none is given)."""
    indexed = list(enumerate(refs))
    return [ref for _, ref in sorted(indexed, key=lambda pair: (int(pair[1].get("OrderNumber") or 0), pair[0]))]


def _number(text: str | None, element: etree._Element) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise _refuse(N_("{path}: '{value}' is not a number."), "odm_unsupported", element, value=text or "") from None


def _expression(element: etree._Element, context: str) -> str:
    expression = element.find("odm:FormalExpression", _NS)
    if expression is None or expression.get("Context") != context:
        found = expression.get("Context") if expression is not None else "nothing"
        raise _refuse(
            _UNREADABLE,
            "odm_unsupported",
            element,
            context=found,
            expected=context,
        )
    return expression.text or ""


def _json(text: str, element: etree._Element) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _refuse(
            N_("{path}: the rule is not valid JSON ({problem})."), "odm_unsupported", element, problem=error.msg
        ) from None


class _Reader:
    """One MetaDataVersion's definitions by OID, read into the protocol's forms."""

    def __init__(self, tree: etree._ElementTree) -> None:
        study = tree.getroot().find("odm:Study", _NS)
        version = study.find("odm:MetaDataVersion", _NS) if study is not None else None
        if study is None or version is None:
            raise _refuse(
                N_("{path}: the file holds no study metadata (MetaDataVersion)."), "odm_no_metadata", tree.getroot()
            )
        self.version = version
        self.definitions: dict[str, etree._Element] = {}
        for element in version:
            if isinstance(element.tag, str) and element.get("OID") is not None:
                self.definitions[str(element.get("OID"))] = element
        self.units = {
            str(unit.get("OID")): str(unit.get("Name"))
            for unit in study.iterfind("odm:BasicDefinitions/odm:MeasurementUnit", _NS)
        }
        # Where each form, group and item of the result came from: "forms.2.groups.0" → its element.
        self.origins: dict[str, etree._Element] = {}

    def forms(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for form in _children(self.version, "FormDef"):
            if _aliases(form).get(ALIAS_ROLE) == ROLE_VISIT_RECORD:
                continue
            key = f"forms.{len(found)}"
            self.origins[key] = form
            found.append(self.form(form, key))
        return found

    def form(self, element: etree._Element, key: str) -> dict[str, Any]:
        form: dict[str, Any] = {"code": str(element.get("Name")).lower()}
        form["label"] = _translated(element.find("odm:Description", _NS)) or _same(form["code"])
        aliases = _aliases(element)
        if ALIAS_BASELINE_VISIT in aliases:
            form["baseline_visit"] = aliases[ALIAS_BASELINE_VISIT]
        groups = []
        checks: list[tuple[int, dict[str, Any]]] = []
        for g_index, ref in enumerate(_ordered(_children(element, "ItemGroupRef"))):
            group_element = self.definitions[str(ref.get("ItemGroupOID"))]
            self.origins[f"{key}.groups.{g_index}"] = group_element
            groups.append(self.group(group_element, f"{key}.groups.{g_index}", checks))
        form["groups"] = groups
        if checks:
            form["edit_checks"] = [check for _, check in sorted(checks, key=lambda pair: pair[0])]
        return form

    def group(self, element: etree._Element, key: str, checks: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        name = str(element.get("Name")).lower()
        group: dict[str, Any] = {
            "name": name,
            "label": _translated(element.find("odm:Description", _NS)) or _same(name),
        }
        if element.get("Repeating") == "Yes":
            group["repeating"] = True
        items = []
        for i_index, ref in enumerate(_ordered(_children(element, "ItemRef"))):
            item_element = self.definitions[str(ref.get("ItemOID"))]
            self.origins[f"{key}.items.{i_index}"] = item_element
            items.append(self.item(ref, item_element, checks))
        group["items"] = items
        return group

    def item(
        self, ref: etree._Element, element: etree._Element, checks: list[tuple[int, dict[str, Any]]]
    ) -> dict[str, Any]:
        name = str(element.get("Name")).lower()
        aliases = _aliases(element)
        data_type = str(element.get("DataType"))
        code_list_ref = element.find("odm:CodeListRef", _NS)
        item_type = _ITEM_TYPES.get(data_type)
        if item_type is None:
            raise _refuse(
                N_("{path}: the data type {type} has no item type in cartrial (integer, float, text, date, boolean)."),
                "odm_unsupported",
                element,
                type=data_type,
            )
        if code_list_ref is not None:
            item_type = "multi_choice" if aliases.get(ALIAS_TYPE) == "multi_choice" else "choice"
        item: dict[str, Any] = {"name": name, "type": item_type}
        item["label"] = _translated(element.find("odm:Question", _NS)) or _same(name)
        help_text = _translated(element.find("odm:Description", _NS))
        if help_text is not None:
            item["help"] = help_text
        units = [self.units[str(u.get("MeasurementUnitOID"))] for u in _children(element, "MeasurementUnitRef")]
        analyte = aliases.get(ALIAS_ANALYTE)
        if units:
            item["unit"] = aliases.get(ALIAS_UNIT, units[0])
        if analyte is not None:
            item["analyte"] = analyte
            item["units"] = units
        self.ranges(element, item, analyte, checks)
        if ref.get("Mandatory") == "Yes":
            item["required"] = True
        if code_list_ref is not None:
            self.code_list(self.definitions[str(code_list_ref.get("CodeListOID"))], item)
        condition = ref.get("CollectionExceptionConditionOID")
        if condition is not None:
            hidden = _json(_expression(self.definitions[condition], RULE_CONTEXT), self.definitions[condition])
            # The export writes `{not: shown_when}`; another system's condition is negated here.
            shown = hidden["not"] if isinstance(hidden, dict) and list(hidden) == ["not"] else {"not": hidden}
            item["shown_when"] = shown
        if ALIAS_REQUIRED_WHEN in aliases:
            condition_element = self.definitions[aliases[ALIAS_REQUIRED_WHEN]]
            item["required_when"] = _json(_expression(condition_element, RULE_CONTEXT), condition_element)
        method = ref.get("MethodOID")
        if method is not None:
            item["derived"] = _expression(self.definitions[method], DERIVATION_CONTEXT).strip()
        if aliases.get(ALIAS_VISIT_DATE) == "true":
            item["visit_date"] = True
        return item

    def ranges(
        self,
        element: etree._Element,
        item: dict[str, Any],
        analyte: str | None,
        checks: list[tuple[int, dict[str, Any]]],
    ) -> None:
        """Plausible ranges (a lab item's only where they narrow the analyte's), the pattern, the
        edit checks attached to the item."""
        for check in _children(element, "RangeCheck"):
            expression = check.find("odm:FormalExpression", _NS)
            if expression is not None and expression.get("Context") == EDIT_CHECK_CONTEXT:
                found = _json(expression.text or "", check)
                message = _translated(check.find("odm:ErrorMessage", _NS)) or _same(str(found.get("code")))
                edit_check = {"code": found.get("code"), "rule": found.get("rule"), "message": message}
                edit_check["items"] = found.get("items")
                checks.append((int(found.get("position", len(checks))), edit_check))
                continue
            if expression is not None and expression.get("Context") == PATTERN_CONTEXT:
                item["pattern"] = expression.text or ""
                continue
            if expression is not None:
                raise _refuse(
                    _UNREADABLE,
                    "odm_unsupported",
                    check,
                    context=expression.get("Context") or "nothing",
                    expected=f"{EDIT_CHECK_CONTEXT} or {PATTERN_CONTEXT}",
                )
            comparator = check.get("Comparator")
            bound_key = {"GE": "minimum", "GT": "minimum", "LE": "maximum", "LT": "maximum"}.get(str(comparator))
            if bound_key is None:
                continue
            unit_ref = check.find("odm:MeasurementUnitRef", _NS)
            unit = self.units.get(str(unit_ref.get("MeasurementUnitOID"))) if unit_ref is not None else None
            bound = _number(check.findtext("odm:CheckValue", namespaces=_NS), check)
            if analyte is not None and analyte in ANALYTES:
                if unit is None or normalise_unit(unit) != normalise_unit(str(item.get("unit", ""))):
                    continue  # the range in another accepted unit follows from the default unit's
                low, high = ANALYTES[analyte].ranges.get(normalise_unit(unit), (None, None))
                if bound == (low if bound_key == "minimum" else high):
                    continue  # the analyte's own range, not the item's
            item[bound_key] = int(bound) if bound.is_integer() else bound

    def code_list(self, element: etree._Element, item: dict[str, Any]) -> None:
        aliases = _aliases(element)
        if ALIAS_CODELIST_FROM in aliases:
            item["codelist_from"] = aliases[ALIAS_CODELIST_FROM]
            return
        entries = []
        for entry in _ordered(_children(element, "CodeListItem")):
            code = str(entry.get("CodedValue"))
            found: dict[str, Any] = {"code": code, "label": _translated(entry.find("odm:Decode", _NS)) or _same(code)}
            entry_aliases = _aliases(entry)
            helps = {language: entry_aliases.get(ALIAS_HELP.format(language=language)) for language in LANGUAGES}
            if all(helps.values()):
                found["help"] = helps
            entries.append(found)
        item["codelist"] = entries


def _same(text: str) -> dict[str, str]:
    return dict.fromkeys(LANGUAGES, text)


def forms_from_odm(content: bytes) -> list[dict[str, Any]]:
    """The protocol's `forms:` section (the structure `ecrf.parse_forms` reads) from an ODM 1.3.2 file,
    checked by the eCRF engine too: a form it refuses is refused at the element it came from."""
    reader = _Reader(odm_document(content))
    forms = reader.forms()
    try:
        parse_forms(forms)
    except FormDefinitionError as error:
        key = error.key
        while key and key not in reader.origins:
            key = key.rpartition(".")[0]
        element = reader.origins.get(key)
        raise _refuse(
            N_("{path}: the eCRF engine refuses this definition ({key}: {problem})."),
            "form_invalid",
            element,
            key=error.key,
            problem=error.problem,
        ) from None
    return forms
