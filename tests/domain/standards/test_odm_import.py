"""ODM metadata import (issue 12, item 2): the protocol's forms exported and read back are the same
forms (the shipped protocol, and forms using what it does not: a default unit listed second, a lab
item's narrowed range, code definitions, a pattern, a negated condition, edit checks out of item
order); a file with an unknown element, a reference to nothing or a definition the eCRF engine
refuses is refused with the path of the element."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from lxml import etree
from typer.testing import CliRunner

from cartrial.cli.odm import register
from cartrial.domain.ecrf import FormDef, parse_forms
from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards import odm
from cartrial.domain.standards.odm_import import element_path, forms_from_odm
from cartrial.locale import translator
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, load_protocol

PROTOCOL = load_protocol()
TRANSLATIONS = {language: translator(language) for language in odm.LANGUAGES}
NS = {"o": odm.ODM_NAMESPACE}


def exported(forms: dict[str, FormDef]) -> bytes:
    """An ODM file holding the study's metadata (no subject)."""
    study = odm.StudyDefinition(
        PROTOCOL.code, PROTOCOL.version, PROTOCOL.title, "Sponsor", PROTOCOL.effective_date, PROTOCOL.visits, forms
    )
    target = io.BytesIO()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    odm.odm_write(
        target,
        header=odm.FileHeader("CARTRIAL.TEST", now, "test", "metadata", "0.1"),
        metadata=odm.study_metadata(study, TRANSLATIONS),
        admin=odm.admin_element(
            study, [], [odm.Location("SPONSOR", "Sponsor", odm.LocationType.SPONSOR)], [], TRANSLATIONS
        ),
        subjects=[],
        since=None,
    )
    return target.getvalue()


def test_the_shipped_protocol_forms_round_trip() -> None:
    back = parse_forms(forms_from_odm(exported(dict(PROTOCOL.forms))))
    assert list(back) == list(PROTOCOL.forms)
    for code, form in PROTOCOL.forms.items():
        assert back[code] == form, code
    # What makes the comparison worth something: rules, derivations and named code lists came back.
    assert back["concomitant_medications"].item("stop_date").shown_when is not None
    assert back["chemistry"].item("egfr").derived == "egfr_ckd_epi_2021"
    assert back["sle_activity"].item("sledai2k_descriptors").choice_help


def _text(en: str) -> dict[str, str]:
    return {"en": en, "fr": f"{en} (fr)"}


CORNER_FORMS: list[dict[str, Any]] = [
    {
        "code": "corner",
        "label": _text("Corner cases"),
        "baseline_visit": "SCR",
        "groups": [
            {
                "name": "main",
                "label": _text("Main"),
                "items": [
                    {
                        "name": "creat",
                        "type": "number",
                        "analyte": "creatinine",
                        "unit": "umol/L",
                        "units": ["mg/dL", "umol/L"],
                        "minimum": 20,
                        "label": _text("Creatinine"),
                    },
                    {
                        "name": "grade",
                        "type": "choice",
                        "required": True,
                        "codelist": [
                            {"code": "a", "label": _text("A"), "help": _text("Severe")},
                            {"code": "b", "label": _text("B")},
                        ],
                        "label": _text("Grade"),
                    },
                    {"name": "clock", "type": "text", "pattern": "[0-2][0-9]:[0-5][0-9]", "label": _text("Time")},
                    {
                        "name": "note",
                        "type": "text",
                        "shown_when": {"not": {"item": "grade", "equals": "a"}},
                        "required_when": {"item": "grade", "in": ["b"]},
                        "label": _text("Note"),
                        "help": _text("Why"),
                    },
                    {
                        "name": "drugs",
                        "type": "multi_choice",
                        "codelist_from": "immunosuppressants",
                        "label": _text("Drugs"),
                    },
                    {"name": "temperature", "type": "number", "unit": "°C", "maximum": 45.5, "label": _text("T")},
                    {"name": "seen", "type": "date", "visit_date": True, "label": _text("Seen")},
                ],
            },
            {
                "name": "rows",
                "label": _text("Rows"),
                "repeating": True,
                "items": [
                    {"name": "start", "type": "date", "label": _text("Start")},
                    {"name": "stop", "type": "date", "label": _text("Stop")},
                ],
            },
        ],
        "edit_checks": [
            {"code": "stop_after_start", "rule": {"item": "stop", "gte": {"item": "start"}}, "message": _text("Order")},
            {"code": "not_too_hot", "rule": {"item": "temperature", "lt": 44}, "message": _text("Hot")},
        ],
    }
]


def test_forms_using_what_the_shipped_protocol_does_not_round_trip() -> None:
    forms = parse_forms(CORNER_FORMS)
    corner = forms["corner"]
    # The cases are really there: the default unit listed second, a narrowed lab range...
    assert corner.item("creat").units == ("mg/dL", "umol/L") and corner.item("creat").minimum == 20
    assert corner.item("grade").choice_help and corner.item("note").shown_when is not None
    assert [check.code for check in corner.edit_checks] == ["stop_after_start", "not_too_hot"]
    back = parse_forms(forms_from_odm(exported(forms)))
    assert back == forms


def test_a_form_changed_after_export_no_longer_compares_equal() -> None:
    """The comparison above can fail: a narrower range read back is another form."""
    content = exported(dict(PROTOCOL.forms)).replace(b"<CheckValue>45</CheckValue>", b"<CheckValue>44</CheckValue>")
    back = parse_forms(forms_from_odm(content))
    assert back["vital_signs"].item("temperature_c").maximum == 44
    assert back["vital_signs"] != PROTOCOL.forms["vital_signs"]


# --- refusals --------------------------------------------------------------------------------------


def mutated(change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(exported(dict(PROTOCOL.forms)))
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def refusal(content: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        forms_from_odm(content)
    return caught.value


def _first(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path, NS)
    assert found is not None, path
    return found


def test_an_unknown_element_is_refused_with_its_path_and_line() -> None:
    def add_unknown(root: etree._Element) -> None:
        form = root.findall(".//o:FormDef", NS)[1]
        form.insert(1, etree.Element(f"{{{odm.ODM_NAMESPACE}}}Comment"))

    error = refusal(mutated(add_unknown))
    assert error.code == "odm_schema"
    assert error.item == "/ODM/Study/MetaDataVersion/FormDef[2]/Comment"
    assert "line" in str(error) and "Comment" in str(error)


def test_a_dangling_item_group_reference_is_refused_with_its_path() -> None:
    def dangle(root: etree._Element) -> None:
        ref = root.findall(".//o:FormDef", NS)[1].find("o:ItemGroupRef", NS)
        ref.set("ItemGroupOID", "IG.nowhere")

    error = refusal(mutated(dangle))
    assert error.code == "odm_dangling_oid"
    assert error.item == "/ODM/Study/MetaDataVersion/FormDef[2]/ItemGroupRef[1]"
    assert "IG.nowhere" in str(error)


@pytest.mark.parametrize(
    ("element", "attribute", "kind"),
    [
        (".//o:ItemDef[@OID='IT.lymphodepletion.regimen']/o:CodeListRef", "CodeListOID", "CodeList"),
        (".//o:ItemRef[@ItemOID='IT.chemistry.egfr']", "MethodOID", "MethodDef"),
        (".//o:ItemRef[@ItemOID='IT.vital_signs.temperature_c']", "ItemOID", "ItemDef"),
        (".//o:StudyEventDef[@OID='SE.D0']/o:FormRef", "FormOID", "FormDef"),
    ],
)
def test_every_kind_of_dangling_reference_is_refused_with_its_path(element: str, attribute: str, kind: str) -> None:
    paths: list[str] = []

    def dangle(root: etree._Element) -> None:
        found = _first(root, element)
        found.set(attribute, "X.nowhere")
        paths.append(element_path(found))

    error = refusal(mutated(dangle))
    assert (error.code, error.item) == ("odm_dangling_oid", paths[0])
    assert kind in str(error)


def test_a_reference_to_an_element_of_another_kind_is_refused() -> None:
    def misdirect(root: etree._Element) -> None:
        _first(root, ".//o:ItemDef[@OID='IT.lymphodepletion.regimen']/o:CodeListRef").set("CodeListOID", "F.infusion")

    assert refusal(mutated(misdirect)).code == "odm_dangling_oid"


def test_a_required_when_alias_naming_no_condition_is_refused() -> None:
    paths: list[str] = []

    def dangle(root: etree._Element) -> None:
        alias = _first(root, f".//o:Alias[@Context='{odm.ALIAS_REQUIRED_WHEN}']")
        alias.set("Name", "CD.nowhere")
        paths.append(element_path(alias))

    error = refusal(mutated(dangle))
    assert (error.code, error.item) == ("odm_dangling_oid", paths[0])
    assert paths[0].startswith("/ODM/Study/MetaDataVersion/ItemDef[") and paths[0].endswith("]/Alias")


def test_a_file_that_is_not_xml_is_refused_with_its_line() -> None:
    error = refusal(b"<?xml version='1.0'?>\n<ODM>\n<Study>\n")
    assert error.code == "odm_not_xml" and "line" in str(error)


def test_a_data_type_without_an_item_type_is_refused_at_the_item() -> None:
    def datetime_item(root: etree._Element) -> None:
        _first(root, ".//o:ItemDef[@OID='IT.infusion.infusion_date']").set("DataType", "datetime")

    error = refusal(mutated(datetime_item))
    assert error.code == "odm_unsupported"
    assert error.item is not None and error.item.endswith(
        "/ItemDef[" + str(_index_of("IT.infusion.infusion_date")) + "]"
    )


def _index_of(oid: str) -> int:
    root = etree.fromstring(exported(dict(PROTOCOL.forms)))
    oids = [item.get("OID") for item in root.iterfind(".//o:ItemDef", NS)]
    return oids.index(oid) + 1


def test_a_condition_in_another_language_is_refused() -> None:
    def xpath_condition(root: etree._Element) -> None:
        _first(root, ".//o:ConditionDef/o:FormalExpression").set("Context", "XPath")

    error = refusal(mutated(xpath_condition))
    assert error.code == "odm_unsupported" and "XPath" in str(error)


def test_what_the_ecrf_engine_refuses_is_refused_at_the_element_it_came_from() -> None:
    def reversed_range(root: etree._Element) -> None:
        item = _first(root, ".//o:ItemDef[@OID='IT.vital_signs.heart_rate_bpm']")
        item.findall("o:RangeCheck", NS)[0].find("o:CheckValue", NS).text = "300"

    error = refusal(mutated(reversed_range))
    assert error.code == "form_invalid"
    assert error.item == f"/ODM/Study/MetaDataVersion/ItemDef[{_index_of('IT.vital_signs.heart_rate_bpm')}]"
    assert "minimum" in str(error)


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def test_cli_writes_the_forms_section_a_protocol_file_accepts(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "study.xml"
    source.write_bytes(exported(dict(PROTOCOL.forms)))
    out = tmp_path / "forms.yaml"
    result = CliRunner().invoke(app, ["odm", "import", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{len(PROTOCOL.forms)} forms written to {out}"
    # Pasted into the protocol file in place of its own forms, the protocol loads with the same forms.
    protocol = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    protocol["forms"] = yaml.safe_load(out.read_text(encoding="utf-8"))["forms"]
    amended = tmp_path / "protocol.yaml"
    amended.write_text(yaml.safe_dump(protocol, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert load_protocol(amended).forms == PROTOCOL.forms


def test_cli_bad_file_exits_2_with_one_line_and_writes_nothing(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "study.xml"
    source.write_bytes(exported(dict(PROTOCOL.forms)).replace(b"<FormDef ", b"<FormDefinition ", 1))
    out = tmp_path / "forms.yaml"
    result = CliRunner().invoke(app, ["odm", "import", str(source), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}: ") and lines[0].endswith("[odm_not_xml]")
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_cli_schema_refusal_names_the_element(app: typer.Typer, tmp_path: Path) -> None:
    content = exported(dict(PROTOCOL.forms))
    source = tmp_path / "study.xml"
    vitals = b'<ItemGroupRef ItemGroupOID="IG.vital_signs.vitals"'
    assert vitals in content
    source.write_bytes(content.replace(vitals, b"<Unknown/>" + vitals))
    result = CliRunner().invoke(app, ["odm", "import", str(source), "--out", str(tmp_path / "forms.yaml")])
    assert result.exit_code == 2
    assert "/ODM/Study/MetaDataVersion/FormDef[2]/Unknown" in result.output and "[odm_schema]" in result.output
