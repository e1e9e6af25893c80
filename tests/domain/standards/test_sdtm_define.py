"""Define-XML 2.1 of the SDTM datasets (domain/standards/define.py): valid against the Define-XML 2.1
schema odmlib and defineutils ship, free of what the specification requires and the schema lets
through, and in agreement with the Dataset-JSON columns."""

from __future__ import annotations

import copy
import importlib.resources
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from defineutils.validate.validate import DefineSchemaValidator
from dsjframe.metadata import load_define_xml_map
from lxml import etree

from cartrial.domain.standards import datasetjson
from cartrial.domain.standards.define import DEF_NS, ODM_NS, DefineContext, define_problems, define_xml
from cartrial.domain.standards.sdtm_metadata import DATASETS, METHODS, Origin

CONTEXT = DefineContext(
    study_oid="CARTLUP-12",
    study_name="CARTLUP-12",
    study_description="Autologous anti-CD19 CAR-T cells in refractory SLE",
    protocol_name="CARTLUP-12 v1.0",
    metadata_version_oid="MDV.CARTLUP-12.SDTMIG3.4",
    created_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    originator="test",
    source_system="cartrial",
    source_version="0.1.0",
)
ODM = f"{{{ODM_NS}}}"
DEF = f"{{{DEF_NS}}}"


@cache
def schema() -> etree.XMLSchema:
    path = importlib.resources.files("odmlib.schemas") / "define" / "2.1" / "define2-1-0.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


@cache
def document() -> bytes:
    return define_xml(CONTEXT)


def tree() -> ET.Element:
    return ET.fromstring(document())


def schema_errors(root: ET.Element) -> list[str]:
    checker = schema()
    valid = checker.validate(etree.fromstring(ET.tostring(root)))
    return [] if valid else [e.message for e in checker.error_log]


def test_the_define_is_valid_against_the_define_xml_21_schema(tmp_path: Path) -> None:
    assert schema_errors(tree()) == []
    # defineutils validates with its own copy of the schema and another XML library.
    path = tmp_path / "define.xml"
    path.write_bytes(document())
    assert DefineSchemaValidator(path).validate_define_file().endswith("is valid")


def test_the_define_meets_what_the_schema_does_not_check() -> None:
    assert define_problems(tree()) == []


def test_each_dataset_has_its_class_structure_leaf_and_every_variable() -> None:
    root = tree()
    groups = {g.get("Name"): g for g in root.iter(f"{ODM}ItemGroupDef")}
    assert list(groups) == [spec.name for spec in DATASETS]
    items = {i.get("OID"): i for i in root.iter(f"{ODM}ItemDef")}
    for spec in DATASETS:
        group = groups[spec.name]
        assert group.find(f"{DEF}Class").get("Name") == spec.observation_class  # type: ignore[union-attr]
        assert group.get(f"{DEF}Structure") == spec.structure
        leaf = group.find(f"{DEF}leaf")
        assert leaf is not None and leaf.get("{http://www.w3.org/1999/xlink}href") == f"{spec.name.lower()}.json"
        refs = [r.get("ItemOID") for r in group.iter(f"{ODM}ItemRef")]
        assert refs == [f"IT.{spec.name}.{v.name}" for v in spec.variables]
        for variable in spec.variables:
            item = items[f"IT.{spec.name}.{variable.name}"]
            assert item.get("Name") == variable.name
            if variable.type.define in ("text", "integer", "float"):
                assert item.get("Length") == str(variable.length)
    standards = {s.get("Name"): s.get("Version") for s in root.iter(f"{DEF}Standard")}
    assert standards == {"SDTMIG": "3.4", "CDISC/NCI": standards["CDISC/NCI"]}


def test_code_lists_carry_the_cdisc_codes_and_mark_the_sponsors_extensions() -> None:
    root = tree()
    lists = {c.get("OID"): c for c in root.iter(f"{ODM}CodeList")}
    sex = lists["CL.SEX"]
    terms = [
        (i.get("CodedValue"), i.findtext(f"{ODM}Decode/{ODM}TranslatedText"), i.find(f"{ODM}Alias").get("Name"))  # type: ignore[union-attr]
        for i in sex.iter(f"{ODM}CodeListItem")
    ]
    assert terms == [("F", "Female", "C16576"), ("M", "Male", "C20197"), ("U", "Unknown", "C17998")]
    assert sex.find(f"{ODM}Alias").get("Name") == "C66731"  # type: ignore[union-attr]
    lab_codes = {
        i.get("CodedValue"): i.get(f"{DEF}ExtendedValue") for i in lists["CL.LBTESTCD"].iter(f"{ODM}CodeListItem")
    }
    # The CAR transgene and anti-dsDNA codes are the sponsor's (no CDISC term checked offline).
    assert lab_codes["CARTCELL"] == "Yes" and lab_codes["DSDNAAB"] == "Yes" and lab_codes["CREAT"] is None
    external = lists["CL.LOINC"].find(f"{ODM}ExternalCodeList")
    assert external is not None and external.get("Dictionary") == "LOINC"
    # Only the code lists and methods the variables use are written.
    methods = {m.get("OID") for m in root.iter(f"{ODM}MethodDef")}
    assert methods == {METHODS[v.method].oid for spec in DATASETS for v in spec.variables if v.method}


def break_first(root: ET.Element, tag: str, change: str) -> ET.Element:
    """A copy of the define with the first `tag` element broken as `change` says."""
    broken = copy.deepcopy(root)
    element = next(broken.iter(tag))
    if change == "drop-class":
        element.remove(element.find(f"{DEF}Class"))  # type: ignore[arg-type]
    elif change == "dangling-item":
        element.set("ItemOID", "IT.DM.NOPE")
    elif change == "dangling-codelist":
        element.set("CodeListOID", "CL.NOPE")
    elif change == "drop-length":
        del element.attrib["Length"]
    return broken


@pytest.mark.parametrize(
    ("tag", "change", "problem"),
    [
        (f"{ODM}ItemGroupDef", "drop-class", "ItemGroupDef TS has no def:Class"),
        (f"{ODM}ItemRef", "dangling-item", "ItemRef IT.DM.NOPE has no ItemDef"),
        (f"{ODM}CodeListRef", "dangling-codelist", "CodeListRef CL.NOPE has no CodeList"),
        (f"{ODM}ItemDef", "drop-length", "(text) has no Length"),
    ],
)
def test_the_specification_checks_find_what_the_schema_lets_through(tag: str, change: str, problem: str) -> None:
    broken = break_first(tree(), tag, change)
    # The schema accepts each of these documents; only the specification's checks refuse them.
    assert schema_errors(broken) == []
    assert any(problem in line for line in define_problems(broken)), define_problems(broken)


def test_a_derived_variable_without_its_method_is_found() -> None:
    root = tree()
    derived = {f"IT.{spec.name}.{v.name}" for spec in DATASETS for v in spec.variables if v.origin is Origin.DERIVED}
    ref = next(r for r in root.iter(f"{ODM}ItemRef") if r.get("ItemOID") in derived)
    del ref.attrib["MethodOID"]
    assert f"derived item {ref.get('ItemOID')} has no MethodOID" in " ".join(define_problems(root))


def test_the_dataset_json_columns_are_what_the_define_says(tmp_path: Path) -> None:
    path = tmp_path / "define.xml"
    path.write_bytes(document())
    # dsjframe reads a define.xml the way a reviewer's tool does: name, OID, label, type, length, key.
    define_types = {"string": "string", "integer": "integer", "float": "double"}
    for spec in DATASETS:
        from_define = load_define_xml_map(path, spec.oid)
        for column in datasetjson.columns(spec):
            declared = from_define[str(column["name"])]
            assert declared["itemOID"] == column["itemOID"] and declared["label"] == column["label"]
            assert declared.get("length") == column.get("length")
            assert declared.get("keySequence") == column.get("keySequence")
            if "dataType" in declared:
                assert define_types.get(declared["dataType"], declared["dataType"]) == column["dataType"]
