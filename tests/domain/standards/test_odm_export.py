"""The ODM 1.3.2 builder over plain data (issue 12, item 1): values as ODM writes them, each change of a
data point its own transaction (rows of a repeating group compared by position), `since` keeping
only the later transactions, edit points and locations, and a whole document that the ODM 1.3.2
schema, odmlib's loader and its OID checker accept."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from odmlib import loader, odm_loader
from odmlib.exceptions import ErrorCollector
from odmlib.oid_generator import create_oid_checker

from cartrial.domain.ecrf import ItemDef, ItemType
from cartrial.domain.roles import Role
from cartrial.domain.standards import odm
from cartrial.domain.standards.odm_import import odm_schema
from cartrial.locale import translator
from cartrial.protocols import load_protocol

PROTOCOL = load_protocol()
STUDY = odm.StudyDefinition(
    PROTOCOL.code,
    PROTOCOL.version,
    PROTOCOL.title,
    "Sponsor",
    PROTOCOL.effective_date,
    PROTOCOL.visits,
    PROTOCOL.forms,
)
TRANSLATIONS = {language: translator(language) for language in odm.LANGUAGES}
METADATA = odm.study_metadata(STUDY, TRANSLATIONS)
NS = {"o": odm.ODM_NAMESPACE}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOCATIONS = [
    odm.Location("BDX", "CHU de Bordeaux", odm.LocationType.SITE),
    odm.Location("LAB", "Lab", odm.LocationType.LAB),
    odm.Location(odm.SPONSOR_LOCATION_CODE, "Sponsor", odm.LocationType.SPONSOR),
]
USERS = [
    odm.User("bdx.coordinator", "Julie Martin", "Julie", "Martin", odm.UserType.OTHER, ("BDX",)),
    odm.User("bdx.investigator", "Claire Dubois", "Claire", "Dubois", odm.UserType.INVESTIGATOR, ("BDX",)),
    odm.User("dm.datamanager", "Laura Chevalier", kind=odm.UserType.SPONSOR, location_codes=("BDX",)),
]
MEANING = "I attest that the data of this casebook are complete and accurate."


def stamp(
    hours: float, user: str = "bdx.coordinator", reason: str = "", point: odm.EditPoint | None = None
) -> odm.Stamp:
    return odm.Stamp(user, "BDX", T0 + timedelta(hours=hours), reason, point or odm.EditPoint.DATA_MANAGEMENT)


def change(field: str, old: Any, new: Any, hours: float, **kwargs: Any) -> odm.ValueChange:
    return odm.ValueChange(field, old, new, stamp(hours, **kwargs))


SIGNED = odm.Signed(7, "bdx.investigator", "BDX", MEANING, T0 + timedelta(days=30))

SUBJECT = odm.SubjectHistory(
    "BDX-001",
    "BDX",
    stamp(0),
    (
        odm.VisitHistory(
            "SCR",
            stamp(1),
            (change("outcome", None, "done", 1), change("done_on", None, "2026-03-02", 1)),
            (
                odm.FormHistory(
                    "vital_signs",
                    stamp(2),
                    (
                        change("temperature_c", None, 37.5, 2),
                        change("temperature_c", 37.5, 38.1, 26, reason="Typed from the wrong sheet"),
                    ),
                    SIGNED,
                ),
                odm.FormHistory(
                    "chemistry",
                    stamp(2),
                    (change("creatinine", None, {"value": 1.1, "unit": "mg/dL", "lower_limit": 0.5}, 2),),
                ),
                odm.FormHistory(
                    "concomitant_medications",
                    stamp(3),
                    (
                        change("medications", None, [{"medication": "hydroxychloroquine", "dose": 200.0}], 3),
                        change(
                            "medications",
                            [{"medication": "hydroxychloroquine", "dose": 200.0}],
                            [{"medication": "hydroxychloroquine", "dose": 400.0}, {"medication": "prednisone"}],
                            30,
                            reason="Second medication added",
                        ),
                        change("medications", [{"medication": "x"}, {"medication": "prednisone"}], [], 40, reason="r"),
                    ),
                ),
            ),
        ),
        odm.VisitHistory("U2", stamp(50), (change("outcome", None, "done", 50),)),
    ),
    SIGNED,
)


def document(subjects: list[odm.SubjectHistory], since: datetime | None = None) -> tuple[bytes, odm.OdmCounts]:
    target = io.BytesIO()
    admin = odm.admin_element(STUDY, USERS, LOCATIONS, [MEANING], TRANSLATIONS)
    header = odm.FileHeader("CARTRIAL.TEST.1", T0 + timedelta(days=60), "test", "a test file", "0.1", "All")
    counts = odm.odm_write(target, header=header, metadata=METADATA, admin=admin, subjects=subjects, since=since)
    return target.getvalue(), counts


def schema_errors(content: bytes) -> list[str]:
    schema = odm_schema()
    schema.validate(etree.fromstring(content).getroottree())
    return [f"{e.line}: {e.message}" for e in schema.error_log]


def odmlib_errors(content: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "study.xml"
    path.write_bytes(content)
    reader = loader.ODMLoader(odm_loader.XMLODMLoader(model_package="odm_1_3_2", ns_uri=odm.ODM_NAMESPACE))
    reader.open_odm_document(str(path))
    root = reader.root()
    checker = create_oid_checker("odm_1_3_2")
    collector = ErrorCollector()
    with checker.collecting(collector):
        root.verify_oids(checker)
    return [str(error) for error in collector.errors]


def item_data(content: bytes, item_oid: str) -> list[etree._Element]:
    return list(etree.fromstring(content).iterfind(f".//o:ItemData[@ItemOID='{item_oid}']", NS))


# --- values ----------------------------------------------------------------------------------------


NUMBER = ItemDef("n", ItemType.NUMBER, {"en": "n", "fr": "n"})


@pytest.mark.parametrize(
    ("value", "text"),
    [(37.5, "37.5"), (100000000.0, "100000000"), (1e-05, "0.00001"), (0.1 + 0.2, "0.30000000000000004"), (3, "3")],
)
def test_numbers_are_written_in_plain_decimal_notation(value: float, text: str) -> None:
    assert odm.item_value(NUMBER, value) == odm.ItemValue(text)


def test_values_of_each_type_as_odm_text() -> None:
    lab = PROTOCOL.forms["chemistry"].item("creatinine")
    assert odm.item_value(lab, {"value": 88.0, "unit": "umol/L", "lower_limit": 45}) == odm.ItemValue("88", "umol/L")
    assert odm.item_value(PROTOCOL.forms["sle_activity"].item("doris"), False) == odm.ItemValue("false")
    drugs = PROTOCOL.forms["sle_activity"].item("immunosuppressants")
    assert odm.item_value(drugs, ["rituximab", "mmf"]) == odm.ItemValue("rituximab mmf")
    assert odm.item_value(drugs, []) is None
    assert odm.item_value(NUMBER, None) is None


def test_a_repeating_group_change_is_one_transaction_per_row_item_compared_by_position() -> None:
    form = PROTOCOL.forms["concomitant_medications"]
    found = odm.item_transactions(
        form,
        change(
            "medications",
            [{"medication": "a", "dose": 1.0}, {"medication": "b"}],
            [{"medication": "a", "dose": 2.0}],
            1,
        ),
    )
    assert [(t.row, t.item.name, t.kind, t.value) for t in found] == [
        (1, "dose", odm.TransactionType.UPDATE, odm.ItemValue("2")),
        (2, "medication", odm.TransactionType.REMOVE, None),
    ]


def test_a_field_the_form_does_not_declare_has_no_transaction() -> None:
    assert odm.item_transactions(PROTOCOL.forms["vital_signs"], change("retired_item", None, 1, 1)) == []


def test_a_lab_result_whose_reference_range_alone_changed_is_an_update() -> None:
    form = PROTOCOL.forms["chemistry"]
    found = odm.item_transactions(
        form,
        change(
            "creatinine", {"value": 80.0, "unit": "umol/L"}, {"value": 80.0, "unit": "umol/L", "upper_limit": 110}, 1
        ),
    )
    assert [(t.kind, t.value) for t in found] == [(odm.TransactionType.UPDATE, odm.ItemValue("80", "umol/L"))]


@pytest.mark.parametrize(
    ("role", "after_lock", "point"),
    [
        (Role.COORDINATOR.value, False, odm.EditPoint.DATA_MANAGEMENT),
        (Role.MONITOR.value, False, odm.EditPoint.MONITORING),
        (Role.DATA_MANAGER.value, False, odm.EditPoint.DATA_MANAGEMENT),
        (Role.COORDINATOR.value, True, odm.EditPoint.DB_AUDIT),
        (Role.MONITOR.value, True, odm.EditPoint.DB_AUDIT),
    ],
)
def test_edit_point_of_a_change(role: str, after_lock: bool, point: odm.EditPoint) -> None:
    assert odm.edit_point(role, after_lock) is point


@pytest.mark.parametrize(
    ("role", "center", "location"),
    [
        (Role.COORDINATOR.value, "BDX", "BDX"),
        (Role.MONITOR.value, "BDX", "SPONSOR"),
        ("system", "", "SPONSOR"),
        (Role.MANUFACTURING.value, "LAB", "LAB"),
    ],
)
def test_the_location_of_an_action(role: str, center: str, location: str) -> None:
    assert odm.action_location(role, center) == location


# --- the document ----------------------------------------------------------------------------------


def test_the_whole_document_is_valid_odm_132_and_its_references_resolve(tmp_path: Path) -> None:
    content, counts = document([SUBJECT])
    assert schema_errors(content) == []
    assert odmlib_errors(content, tmp_path) == []
    root = etree.fromstring(content)
    assert root.get("FileType") == "Transactional" and root.get("Archival") == "Yes"
    assert root.get("ODMVersion") == "1.3.2"
    assert counts == odm.OdmCounts(subjects=1, transactions=len(root.findall(".//o:ItemData", NS)))


def test_each_change_is_its_own_transaction_with_its_audit_record() -> None:
    content, _ = document([SUBJECT])
    first, second = item_data(content, "IT.vital_signs.temperature_c")
    assert (first.get("TransactionType"), first.get("Value")) == ("Insert", "37.5")
    assert (second.get("TransactionType"), second.get("Value")) == ("Update", "38.1")
    record = second.find("o:AuditRecord", NS)
    assert record.findtext("o:ReasonForChange", namespaces=NS) == "Typed from the wrong sheet"
    assert record.find("o:UserRef", NS).get("UserOID") == "USR.bdx.coordinator"
    assert record.find("o:LocationRef", NS).get("LocationOID") == "LOC.BDX"
    assert record.findtext("o:DateTimeStamp", namespaces=NS) == "2026-03-03T11:00:00Z"
    assert first.find("o:AuditRecord/o:ReasonForChange", NS) is None


def test_rows_of_a_repeating_group_carry_their_repeat_key_and_removals_no_value() -> None:
    content, _ = document([SUBJECT])
    root = etree.fromstring(content)
    rows = root.findall(".//o:ItemGroupData[@ItemGroupOID='IG.concomitant_medications.medications']", NS)
    assert [row.get("ItemGroupRepeatKey") for row in rows] == ["1", "2"]
    doses = [(d.get("TransactionType"), d.get("Value")) for d in rows[0].iterfind("o:ItemData", NS)]
    assert ("Update", "400") in doses
    removed = [d for d in rows[1].iterfind("o:ItemData", NS) if d.get("TransactionType") == "Remove"]
    assert removed and all(d.get("Value") is None for d in removed)


def test_a_lab_value_carries_the_unit_it_was_entered_in() -> None:
    content, _ = document([SUBJECT])
    (creatinine,) = item_data(content, "IT.chemistry.creatinine")
    assert creatinine.get("Value") == "1.1"
    assert creatinine.find("o:MeasurementUnitRef", NS).get("MeasurementUnitOID") == METADATA.units["mg/dL"]


def test_visits_are_study_events_with_their_own_form_and_unscheduled_ones_repeat() -> None:
    content, _ = document([SUBJECT])
    root = etree.fromstring(content)
    events = root.findall(".//o:StudyEventData", NS)
    assert [(e.get("StudyEventOID"), e.get("StudyEventRepeatKey")) for e in events] == [
        ("SE.SCR", None),
        (odm.UNSCHEDULED_EVENT_OID, "2"),
    ]
    (done_on,) = item_data(content, "IT.VISIT.DONE_ON")
    assert done_on.get("Value") == "2026-03-02"
    assert all(form.get("FormRepeatKey") is None for form in root.iter(f"{{{odm.ODM_NAMESPACE}}}FormData"))


def test_a_signed_casebook_carries_its_signature_on_the_subject_and_on_each_signed_form() -> None:
    content, _ = document([SUBJECT])
    root = etree.fromstring(content)
    subject_signature = root.find(".//o:SubjectData/o:Signature", NS)
    assert subject_signature.get("ID") == "SIG.7"
    assert subject_signature.find("o:UserRef", NS).get("UserOID") == "USR.bdx.investigator"
    definition = odm.signature_def_oid(MEANING)
    assert subject_signature.find("o:SignatureRef", NS).get("SignatureOID") == definition
    assert root.find(f".//o:SignatureDef[@OID='{definition}']/o:Meaning", NS).text == MEANING
    signed_forms = [f.get("FormOID") for f in root.iterfind(".//o:FormData[o:Signature]", NS)]
    assert signed_forms == ["F.vital_signs"]


def test_since_keeps_only_the_later_transactions_and_the_earlier_records_as_context(tmp_path: Path) -> None:
    since = T0 + timedelta(hours=25)
    content, counts = document([SUBJECT], since=since)
    assert schema_errors(content) == []
    assert odmlib_errors(content, tmp_path) == []
    root = etree.fromstring(content)
    stamps = [
        datetime.fromisoformat(record.findtext("o:DateTimeStamp", namespaces=NS))
        for record in root.iterfind(".//o:ItemData/o:AuditRecord", NS)
    ]
    assert stamps and all(moment > since for moment in stamps)
    assert counts.transactions == len(stamps)
    (temperature,) = item_data(content, "IT.vital_signs.temperature_c")
    assert (temperature.get("TransactionType"), temperature.get("Value")) == ("Update", "38.1")
    assert root.find(".//o:SubjectData", NS).get("TransactionType") == "Context"
    forms = {f.get("FormOID"): f.get("TransactionType") for f in root.iterfind(".//o:FormData", NS)}
    # The chemistry form did not change after `since`: left out; the unscheduled visit is new.
    assert "F.chemistry" not in forms and forms["F.vital_signs"] == "Context"
    events = {e.get("StudyEventOID"): e.get("TransactionType") for e in root.iterfind(".//o:StudyEventData", NS)}
    assert events == {"SE.SCR": "Context", odm.UNSCHEDULED_EVENT_OID: "Insert"}


def test_a_subject_without_change_after_since_is_left_out() -> None:
    content, counts = document([SUBJECT], since=T0 + timedelta(days=40))
    assert counts == odm.OdmCounts(subjects=0, transactions=0)
    assert etree.fromstring(content).find(".//o:SubjectData", NS) is None


def test_the_subject_key_is_the_pseudonymous_code_and_its_site_a_location() -> None:
    content, _ = document([SUBJECT])
    subject = etree.fromstring(content).find(".//o:SubjectData", NS)
    assert subject.get("SubjectKey") == "BDX-001"
    assert subject.find("o:SiteRef", NS).get("LocationOID") == "LOC.BDX"


def test_the_checks_used_here_see_a_data_point_of_an_undefined_item(tmp_path: Path) -> None:
    """The XSD lets an ItemData name an item nobody defined; odmlib's OID checker does not."""
    content, _ = document([SUBJECT])
    broken = content.replace(
        b'ItemOID="IT.vital_signs.temperature_c" TransactionType', b'ItemOID="IT.nowhere" TransactionType'
    )
    assert broken != content
    assert schema_errors(broken) == []
    assert any("IT.nowhere" in error for error in odmlib_errors(broken, tmp_path))
