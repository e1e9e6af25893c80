"""CDISC Define-XML 2.1 for the SDTM datasets: one document describing every dataset (ItemGroupDef
with def:Class, def:Structure and a def:leaf to its Dataset-JSON file), every variable (ItemDef with
length, origin and code list), the code lists, the derivation methods and the standards, all from
the specs of `sdtm_metadata.py`.

The Define-XML schema (odmlib ships it) checks structure; `define_problems` checks what the
specification requires and the schema does not (a missing def:Class, an ItemRef or CodeListRef
pointing at nothing, a derived variable without its method...). Both run in the tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as etree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cartrial.domain.standards.sdtm_metadata import (
    CODELISTS,
    CT_VERSION,
    DATASETS,
    LENGTH_TYPES,
    METHODS,
    SDTMIG_VERSION,
    CodeList,
    DatasetSpec,
    Method,
    Origin,
    Variable,
)

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
for _prefix, _uri in (("", ODM_NS), ("def", DEF_NS), ("xlink", XLINK_NS)):
    etree.register_namespace(_prefix, _uri)
DEFINE_VERSION = "2.1.0"
STANDARD_IG = "STD.SDTMIG"
STANDARD_CT = "STD.CT"
# The Define-XML data types that need a Length.
_LENGTH_DATA_TYPES = frozenset(t.define for t in LENGTH_TYPES)


def _odm(tag: str) -> str:
    return f"{{{ODM_NS}}}{tag}"


def _def(tag: str) -> str:
    return f"{{{DEF_NS}}}{tag}"


@dataclass(frozen=True)
class DefineContext:
    """The study and the file: OIDs, names, when and by whom it was made."""

    study_oid: str
    study_name: str
    study_description: str
    protocol_name: str
    metadata_version_oid: str
    created_at: datetime
    originator: str
    source_system: str
    source_version: str


def metadata_version_oid(study_id: str) -> str:
    """The MetaDataVersion OID the Dataset-JSON files point at (their `metaDataVersionOID`)."""
    return f"MDV.{study_id}.SDTMIG{SDTMIG_VERSION}"


def _description(parent: etree.Element, text: str) -> None:
    description = etree.SubElement(parent, _odm("Description"))
    translated = etree.SubElement(description, _odm("TranslatedText"))
    translated.set(_XML_LANG, "en")
    translated.text = text


def _comment_oid(spec: DatasetSpec, variable: Variable) -> str:
    return f"COM.{spec.name}.{variable.name}"


def _item_group(parent: etree.Element, spec: DatasetSpec) -> None:
    group = etree.SubElement(
        parent,
        _odm("ItemGroupDef"),
        OID=spec.oid,
        Domain=spec.name,
        Name=spec.name,
        Repeating="No" if spec.name == "DM" or spec.reference_data else "Yes",
        IsReferenceData="Yes" if spec.reference_data else "No",
        SASDatasetName=spec.name,
        Purpose="Tabulation",
    )
    group.set(_def("Structure"), spec.structure)
    group.set(_def("StandardOID"), STANDARD_IG)
    group.set(_def("ArchiveLocationID"), f"LF.{spec.name}")
    _description(group, spec.label)
    for order, variable in enumerate(spec.variables, start=1):
        ref = etree.SubElement(
            group,
            _odm("ItemRef"),
            ItemOID=spec.item_oid(variable),
            OrderNumber=str(order),
            Mandatory="Yes" if variable.mandatory else "No",
        )
        if variable.key is not None:
            ref.set("KeySequence", str(variable.key))
        if variable.method is not None:
            ref.set("MethodOID", METHODS[variable.method].oid)
    etree.SubElement(group, _def("Class"), Name=spec.observation_class)
    leaf = etree.SubElement(group, _def("leaf"), ID=f"LF.{spec.name}")
    leaf.set(f"{{{XLINK_NS}}}href", spec.file_name)
    etree.SubElement(leaf, _def("title")).text = spec.file_name


def _item_def(parent: etree.Element, spec: DatasetSpec, variable: Variable) -> None:
    item = etree.SubElement(
        parent,
        _odm("ItemDef"),
        OID=spec.item_oid(variable),
        Name=variable.name,
        DataType=variable.type.define,
    )
    if variable.type in LENGTH_TYPES and variable.length is not None:
        item.set("Length", str(variable.length))
    item.set("SASFieldName", variable.name)
    if variable.comment is not None:
        item.set(_def("CommentOID"), _comment_oid(spec, variable))
    _description(item, variable.label)
    if variable.codelist is not None:
        etree.SubElement(item, _odm("CodeListRef"), CodeListOID=variable.codelist)
    origin = etree.SubElement(item, _def("Origin"), Type=variable.origin.value)
    if variable.source is not None:
        origin.set("Source", variable.source)


def _code_list(parent: etree.Element, codelist: CodeList) -> None:
    element = etree.SubElement(
        parent,
        _odm("CodeList"),
        OID=codelist.oid,
        Name=codelist.name,
        DataType=codelist.data_type.define,
    )
    if codelist.cdisc:
        element.set(_def("StandardOID"), STANDARD_CT)
    if codelist.dictionary is not None:
        external = etree.SubElement(element, _odm("ExternalCodeList"), Dictionary=codelist.dictionary)
        if codelist.version:
            external.set("Version", codelist.version)
    decoded = any(term.decode for term in codelist.terms)
    for term in codelist.terms:
        tag = "CodeListItem" if decoded else "EnumeratedItem"
        item = etree.SubElement(element, _odm(tag), CodedValue=term.value)
        if codelist.cdisc and not term.in_ct:
            item.set(_def("ExtendedValue"), "Yes")
        if decoded:
            decode = etree.SubElement(item, _odm("Decode"))
            translated = etree.SubElement(decode, _odm("TranslatedText"))
            translated.set(_XML_LANG, "en")
            translated.text = term.decode or term.value
        if term.nci_code is not None:
            etree.SubElement(item, _odm("Alias"), Context="nci:ExtCodeID", Name=term.nci_code)
    if codelist.nci_code is not None:
        etree.SubElement(element, _odm("Alias"), Context="nci:ExtCodeID", Name=codelist.nci_code)


def _method(parent: etree.Element, method: Method) -> None:
    element = etree.SubElement(parent, _odm("MethodDef"), OID=method.oid, Name=method.name, Type="Computation")
    _description(element, method.description)


def define_xml(
    context: DefineContext,
    datasets: Iterable[DatasetSpec] = DATASETS,
    codelists: Mapping[str, CodeList] = CODELISTS,
    methods: Mapping[str, Method] = METHODS,
) -> bytes:
    """The Define-XML 2.1 document of the datasets, as UTF-8 bytes with its XML declaration.

    Only the code lists and methods the datasets use are written (an unused one is noise to a reviewer).
    """
    chosen = list(datasets)
    variables = [(spec, v) for spec in chosen for v in spec.variables]
    used_lists = {v.codelist for _, v in variables if v.codelist}
    used_methods = {v.method for _, v in variables if v.method}
    root = etree.Element(
        _odm("ODM"),
        ODMVersion="1.3.2",
        FileType="Snapshot",
        FileOID=f"{context.study_oid}.define.{context.created_at:%Y%m%dT%H%M%S}",
        CreationDateTime=context.created_at.isoformat(timespec="seconds"),
        Originator=context.originator,
        SourceSystem=context.source_system,
        SourceSystemVersion=context.source_version,
    )
    root.set(_def("Context"), "Submission")
    study = etree.SubElement(root, _odm("Study"), OID=context.study_oid)
    global_variables = etree.SubElement(study, _odm("GlobalVariables"))
    etree.SubElement(global_variables, _odm("StudyName")).text = context.study_name
    etree.SubElement(global_variables, _odm("StudyDescription")).text = context.study_description
    etree.SubElement(global_variables, _odm("ProtocolName")).text = context.protocol_name
    version = etree.SubElement(
        study,
        _odm("MetaDataVersion"),
        OID=context.metadata_version_oid,
        Name=f"{context.study_name} SDTM",
        Description=f"SDTM tabulation datasets of {context.study_name} (SDTMIG {SDTMIG_VERSION}, Dataset-JSON 1.1)",
    )
    version.set(_def("DefineVersion"), DEFINE_VERSION)
    standards = etree.SubElement(version, _def("Standards"))
    etree.SubElement(
        standards, _def("Standard"), OID=STANDARD_IG, Name="SDTMIG", Type="IG", Version=SDTMIG_VERSION, Status="Final"
    )
    etree.SubElement(
        standards,
        _def("Standard"),
        OID=STANDARD_CT,
        Name="CDISC/NCI",
        Type="CT",
        PublishingSet="SDTM",
        Version=CT_VERSION,
        Status="Final",
    )
    for spec in chosen:
        _item_group(version, spec)
    for spec, variable in variables:
        _item_def(version, spec, variable)
    for oid in sorted(used_lists):
        _code_list(version, codelists[oid])
    for key in sorted(used_methods):
        _method(version, methods[key])
    for spec, variable in variables:
        if variable.comment is not None:
            comment = etree.SubElement(version, _def("CommentDef"), OID=_comment_oid(spec, variable))
            _description(comment, variable.comment)
    etree.indent(root)
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return document


def define_problems(root: etree.Element) -> list[str]:
    """What the Define-XML 2.1 specification requires and its schema does not check, one line each:
    def:Class, def:Structure and a def:leaf on every dataset; every ItemRef, CodeListRef, MethodOID,
    def:CommentOID, def:StandardOID and def:ArchiveLocationID pointing at something defined; a
    Length on text, integer and float items; a derived item referenced with its method; key
    sequences 1..n; unique OIDs. An empty list: nothing found."""
    problems: list[str] = []

    def defined(tag: str, attribute: str = "OID") -> dict[str, etree.Element]:
        found: dict[str, etree.Element] = {}
        for element in root.iter(tag):
            oid = element.get(attribute, "")
            if oid in found:
                problems.append(f"{tag.rsplit('}', 1)[-1]} OID {oid} is defined twice")
            found[oid] = element
        return found

    items = defined(_odm("ItemDef"))
    codelists = defined(_odm("CodeList"))
    methods = defined(_odm("MethodDef"))
    comments = defined(_def("CommentDef"))
    standards = defined(_def("Standard"))
    defined(_odm("ItemGroupDef"))
    if not standards:
        problems.append("MetaDataVersion has no def:Standards")
    referenced: set[str] = set()
    for group in root.iter(_odm("ItemGroupDef")):
        name = group.get("Name", "?")
        klass = group.find(_def("Class"))
        if klass is None or not klass.get("Name"):
            problems.append(f"ItemGroupDef {name} has no def:Class")
        if not group.get(_def("Structure")):
            problems.append(f"ItemGroupDef {name} has no def:Structure")
        if not group.get("Purpose"):
            problems.append(f"ItemGroupDef {name} has no Purpose")
        leaf = group.find(_def("leaf"))
        if leaf is None or leaf.get("ID") != group.get(_def("ArchiveLocationID")):
            problems.append(f"ItemGroupDef {name}: def:ArchiveLocationID does not name its def:leaf")
        if group.get(_def("StandardOID")) and group.get(_def("StandardOID")) not in standards:
            problems.append(f"ItemGroupDef {name}: def:StandardOID {group.get(_def('StandardOID'))} is not a standard")
        keys: list[int] = []
        for ref in group.iter(_odm("ItemRef")):
            oid = ref.get("ItemOID", "")
            referenced.add(oid)
            item = items.get(oid)
            if item is None:
                problems.append(f"ItemGroupDef {name}: ItemRef {oid} has no ItemDef")
                continue
            method = ref.get("MethodOID")
            if method is not None and method not in methods:
                problems.append(f"ItemGroupDef {name}: ItemRef {oid} names the undefined method {method}")
            origin = item.find(_def("Origin"))
            if origin is not None and origin.get("Type") == Origin.DERIVED.value and method is None:
                problems.append(f"ItemGroupDef {name}: derived item {oid} has no MethodOID")
            if ref.get("KeySequence"):
                keys.append(int(ref.get("KeySequence", "0")))
        if sorted(keys) != list(range(1, len(keys) + 1)):
            problems.append(f"ItemGroupDef {name}: key sequences {sorted(keys)} are not 1..{len(keys)}")
    for oid, item in items.items():
        if oid not in referenced:
            problems.append(f"ItemDef {oid} is not referenced by any dataset")
        if item.get("DataType") in _LENGTH_DATA_TYPES and not item.get("Length"):
            problems.append(f"ItemDef {oid} ({item.get('DataType')}) has no Length")
        if item.find(_def("Origin")) is None:
            problems.append(f"ItemDef {oid} has no def:Origin")
        if item.find(_odm("Description")) is None:
            problems.append(f"ItemDef {oid} has no Description")
        codelist_ref = item.find(_odm("CodeListRef"))
        if codelist_ref is not None and codelist_ref.get("CodeListOID") not in codelists:
            problems.append(f"ItemDef {oid}: CodeListRef {codelist_ref.get('CodeListOID')} has no CodeList")
        comment = item.get(_def("CommentOID"))
        if comment is not None and comment not in comments:
            problems.append(f"ItemDef {oid}: def:CommentOID {comment} has no def:CommentDef")
    for oid, codelist in codelists.items():
        standard = codelist.get(_def("StandardOID"))
        if standard is not None and standard not in standards:
            problems.append(f"CodeList {oid}: def:StandardOID {standard} is not a standard")
    return problems
