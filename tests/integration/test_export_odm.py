"""The CDISC ODM 1.3.2 export on the demo (issue 12, item 1): every export (the study, one center, one
subject, `since` a time) is valid against the ODM 1.3.2 schema shipped in odmlib, loads with odmlib's
loader and passes its OID checker, and holds what happened: a corrected item as two transactions
with the reason, the signed casebook's signature, a center's subjects only, after `since` only the
later transactions, a correction after a lock as a database audit; read a chunk of subjects at a time,
never an identity."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from lxml import etree
from odmlib import loader, odm_loader
from odmlib.exceptions import ErrorCollector
from odmlib.oid_generator import create_oid_checker

from cartrial.apps.accounts.models import User
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook import services as casebook
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, VisitRecord
from cartrial.apps.exports import formats
from cartrial.apps.exports import odm as odm_export
from cartrial.apps.exports.request import ExportFormat, ExportRequest
from cartrial.apps.exports.selectors import export_request_resolve
from cartrial.apps.exports.services import export_write
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Subject
from cartrial.demo import build_demo, demo_epoch
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.standards.odm import ODM_NAMESPACE, item_value
from cartrial.protocols import active_protocol

NS = {"o": ODM_NAMESPACE}
SCHEMA = etree.XMLSchema(etree.parse(str(resources.files("odmlib.schemas").joinpath("odm", "1.3.2", "ODM1-3-2.xsd"))))


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo, built once for the module; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_demo(active_protocol(), today=demo_epoch())
        yield
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("demo", "db")


def request_for(**filters: Any) -> ExportRequest:
    return export_request_resolve(
        scope=None, export_format=ExportFormat.ODM, now=demo_epoch(), requested_by="test", **filters
    )


def exported(request: ExportRequest, tmp_path: Path) -> tuple[etree._Element, Path]:
    """Write the export, check it with the three validators, return its root."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "study.xml"
    odm_export.odm_write(request, out, lambda done, total: None)
    tree = etree.parse(str(out))
    SCHEMA.validate(tree)
    assert [f"{e.line}: {e.message}" for e in SCHEMA.error_log] == []
    reader = loader.ODMLoader(odm_loader.XMLODMLoader(model_package="odm_1_3_2", ns_uri=ODM_NAMESPACE))
    reader.open_odm_document(str(out))
    checker = create_oid_checker("odm_1_3_2")
    collector = ErrorCollector()
    with checker.collecting(collector):
        reader.root().verify_oids(checker)
    assert [str(error) for error in collector.errors] == []
    return tree.getroot(), out


def subject_keys(root: etree._Element) -> list[str]:
    return [s.get("SubjectKey") for s in root.iterfind(".//o:SubjectData", NS)]


def item_data(root: etree._Element, subject: str, visit: str, form: str, item: str) -> list[etree._Element]:
    return root.xpath(
        "//o:SubjectData[@SubjectKey=$s]/o:StudyEventData[@StudyEventOID=$e]/o:FormData[@FormOID=$f]"
        "/o:ItemGroupData/o:ItemData[@ItemOID=$i]",
        namespaces=NS,
        s=subject,
        e=f"SE.{visit}",
        f=f"F.{form}",
        i=f"IT.{form}.{item}",
    )


def a_correction() -> tuple[AuditEntry, FormRecord, dict[str, Any]]:
    """A saved form's item changed with a reason (the demo's blood pressures typed the wrong way round)."""
    forms = active_protocol().forms
    for entry in AuditEntry.objects.filter(entity="form_record", event="casebook.form_saved").exclude(reason=""):
        record = FormRecord.objects.get(pk=int(entry.entity_id))
        form = forms[record.form_code]
        for line in json.loads(entry.changes_json):
            name = line["field"]
            if form.has_item(name) and not form.group_of(name).repeating and line["old"] is not None:
                return entry, record, line
    raise AssertionError("the demo holds no correction")


def test_the_study_export_holds_every_subject_and_is_valid(tmp_path: Path) -> None:
    request = request_for()
    root, _ = exported(request, tmp_path)
    codes = set(Subject.objects.filter(pk__in=request.subject_ids).values_list("code", flat=True))
    assert set(subject_keys(root)) == codes and len(codes) > 10
    assert root.get("Granularity") == "All" and root.get("FileType") == "Transactional"
    assert root.get("Originator") == "test"


def test_a_corrected_item_is_two_transactions_the_second_with_its_reason(tmp_path: Path) -> None:
    entry, record, line = a_correction()
    root, _ = exported(request_for(), tmp_path)
    item = active_protocol().forms[record.form_code].item(line["field"])
    found = item_data(root, record.subject.code, record.visit_code, record.form_code, line["field"])
    transactions = [(d.get("TransactionType"), d.get("Value")) for d in found]
    old, new = item_value(item, line["old"]), item_value(item, line["new"])
    assert old is not None and new is not None
    assert transactions[0] == ("Insert", old.text) and ("Update", new.text) in transactions
    correction = found[transactions.index(("Update", new.text))].find("o:AuditRecord", NS)
    assert correction.findtext("o:ReasonForChange", namespaces=NS) == entry.reason
    assert correction.find("o:UserRef", NS).get("UserOID") == f"USR.{entry.actor_username}"
    stamp = datetime.fromisoformat(correction.findtext("o:DateTimeStamp", namespaces=NS))
    assert stamp == entry.occurred_at
    assert root.find(f".//o:User[@OID='USR.{entry.actor_username}']", NS) is not None


def test_the_signed_casebook_carries_its_signature(tmp_path: Path) -> None:
    signed = CasebookSignature.objects.select_related("signature__signer", "subject").get(
        signature__voided_at__isnull=True
    )
    root, _ = exported(request_for(subject_code=signed.subject.code), tmp_path)
    assert subject_keys(root) == [signed.subject.code] and root.get("Granularity") == "SingleSubject"
    signature = root.find(".//o:SubjectData/o:Signature", NS)
    assert signature.find("o:UserRef", NS).get("UserOID") == f"USR.{signed.signature.signer.username}"
    assert datetime.fromisoformat(signature.findtext("o:DateTimeStamp", namespaces=NS)) == signed.signature.signed_at
    definition = signature.find("o:SignatureRef", NS).get("SignatureOID")
    assert root.find(f".//o:SignatureDef[@OID='{definition}']/o:Meaning", NS).text == signed.signature.meaning
    forms_signed = FormRecord.objects.filter(subject=signed.subject, status=FormStatus.SIGNED.value).count()
    assert forms_signed > 0
    assert len(root.findall(".//o:FormData/o:Signature", NS)) == forms_signed


def test_a_center_export_holds_only_that_centers_subjects(tmp_path: Path) -> None:
    root, _ = exported(request_for(center_codes=["BDX"]), tmp_path)
    keys = subject_keys(root)
    expected = set(Subject.objects.filter(center__code="BDX").values_list("code", flat=True))
    assert keys and set(keys) == expected
    assert {s.get("LocationOID") for s in root.iterfind(".//o:SubjectData/o:SiteRef", NS)} == {"LOC.BDX"}
    assert root.get("Granularity") == "SingleSite"


def test_a_since_export_holds_only_the_later_transactions(tmp_path: Path) -> None:
    entry, record, line = a_correction()
    since = entry.occurred_at - timedelta(seconds=1)
    root, _ = exported(request_for(since=since), tmp_path)
    stamps = [
        datetime.fromisoformat(text)
        for text in root.xpath("//o:ItemData/o:AuditRecord/o:DateTimeStamp/text()", namespaces=NS)
    ]
    assert stamps and min(stamps) > since
    whole, _ = exported(request_for(), tmp_path / "whole")
    assert len(whole.findall(".//o:ItemData", NS)) > len(stamps)
    found = item_data(root, record.subject.code, record.visit_code, record.form_code, line["field"])
    assert [d.get("TransactionType") for d in found][:1] == ["Update"]
    # Every later change of a form's item is there, at its time.
    forms = active_protocol().forms
    later = AuditEntry.objects.filter(entity="form_record", occurred_at__gt=since)
    for later_entry in later:
        later_record = FormRecord.objects.select_related("subject").get(pk=int(later_entry.entity_id))
        form = forms[later_record.form_code]
        for change in json.loads(later_entry.changes_json):
            name = change["field"]
            if not form.has_item(name) or form.group_of(name).repeating or change["old"] == change["new"]:
                continue
            data = item_data(root, later_record.subject.code, later_record.visit_code, form.code, name)
            times = [datetime.fromisoformat(d.findtext("o:AuditRecord/o:DateTimeStamp", namespaces=NS)) for d in data]
            assert later_entry.occurred_at in times, (later_record, name)


def test_a_change_after_a_lock_is_a_database_audit(tmp_path: Path) -> None:
    protocol = active_protocol()
    record = FormRecord.objects.filter(status=FormStatus.LOCKED.value, form_code="vital_signs").select_related(
        "subject__center"
    )[0]
    subject = record.subject
    now = demo_epoch() + timedelta(hours=1)
    manager = User.objects.get(username="dm.datamanager")
    coordinator = User.objects.get(username=f"{subject.center.code.lower()}.coordinator")
    with transaction.atomic():
        unlocking = Actor(manager.pk, manager.username, "data_manager", subject.center.code, now)
        casebook.forms_unlock(actor=unlocking, records=[record], reason="Source document re-read after lock")
        values = dict(record.values_json) | {"temperature_c": 36.6}
        correcting = Actor(coordinator.pk, coordinator.username, "coordinator", subject.center.code, now)
        casebook.form_save(
            actor=correcting,
            subject=subject,
            protocol=protocol,
            visit_code=record.visit_code,
            form_code=record.form_code,
            items=values,
            reason="Temperature read from the nurse's chart",
        )
    root, _ = exported(request_for(subject_code=subject.code), tmp_path)
    last = item_data(root, subject.code, record.visit_code, "vital_signs", "temperature_c")[-1]
    assert (last.get("TransactionType"), last.get("Value")) == ("Update", "36.6")
    audit = last.find("o:AuditRecord", NS)
    assert audit.get("EditPoint") == "DBAudit"
    assert audit.findtext("o:ReasonForChange", namespaces=NS) == "Temperature read from the nurse's chart"
    earlier = item_data(root, subject.code, record.visit_code, "vital_signs", "temperature_c")[0]
    assert earlier.find("o:AuditRecord", NS).get("EditPoint") == "DataManagement"


def test_a_record_the_trail_does_not_hold_is_written_as_it_stands(tmp_path: Path) -> None:
    """A visit and form written around the services (a bulk load): their values inserted by their author."""
    subject = Subject.objects.select_related("center").filter(infusion_date__isnull=False)[0]
    author = User.objects.get(username=f"{subject.center.code.lower()}.coordinator")
    at = demo_epoch() - timedelta(days=1)
    VisitRecord.objects.create(
        subject=subject, visit_code="U9", outcome="done", done_on=at.date(), recorded_by=author, recorded_at=at
    )
    FormRecord.objects.create(
        subject=subject,
        visit_code="U9",
        form_code="vital_signs",
        status=FormStatus.DRAFT.value,
        values_json={"temperature_c": 37.2, "heart_rate_bpm": 70},
        protocol_version=subject.protocol_version,
        created_by=author,
        created_at=at,
        updated_at=at,
    )
    root, _ = exported(request_for(subject_code=subject.code), tmp_path)
    event = root.find(".//o:StudyEventData[@StudyEventRepeatKey='9']", NS)
    assert event is not None and event.get("StudyEventOID") == "SE.UNSCHEDULED"
    written = {
        d.get("ItemOID"): (
            d.get("TransactionType"),
            d.get("Value"),
            d.find("o:AuditRecord/o:UserRef", NS).get("UserOID"),
        )
        for d in event.iterfind(".//o:ItemData", NS)
    }
    author_oid = f"USR.{author.username}"
    assert written == {
        "IT.VISIT.OUTCOME": ("Insert", "done", author_oid),
        "IT.VISIT.DONE_ON": ("Insert", at.date().isoformat(), author_oid),
        "IT.vital_signs.temperature_c": ("Insert", "37.2", author_oid),
        "IT.vital_signs.heart_rate_bpm": ("Insert", "70", author_oid),
    }


def test_the_writer_reads_the_subjects_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = request_for()
    _, whole = exported(request, tmp_path / "one")
    chunks: list[int] = []
    read = odm_export.casebook_histories

    def recording(codes: Sequence[str]) -> Any:
        chunks.append(len(codes))
        return read(codes)

    monkeypatch.setattr(odm_export, "CHUNK_SUBJECTS", 4)
    monkeypatch.setattr(odm_export, "casebook_histories", recording)
    _, chunked = exported(request, tmp_path / "chunked")
    assert max(chunks) == 4 and sum(chunks) == len(request.subject_ids) and len(chunks) > 3
    assert chunked.read_bytes() == whole.read_bytes()


def test_no_identity_leaves_in_the_file(tmp_path: Path) -> None:
    root, _ = exported(request_for(), tmp_path)
    written = {value for element in root.iter() for value in (*element.attrib.values(), (element.text or "").strip())}
    identities = [identity_decrypt(s.identity.ciphertext) for s in Subject.objects.select_related("identity")]
    fields = ("family_name", "given_names", "birth_date", "hospital_number")
    secrets = {str(identity[field]) for identity in identities for field in fields if identity.get(field)}
    assert len(secrets) > 3 * 10
    assert secrets.isdisjoint(written)
    assert set(subject_keys(root)) <= written  # what is written is there to compare with: the codes


def test_the_runner_writes_the_odm_file_whole_with_its_sha256(tmp_path: Path) -> None:
    assert formats.WRITERS[ExportFormat.ODM] is odm_export.odm_write
    steps: list[tuple[int, int]] = []
    result = export_write(request_for(center_codes=["LIL"]), tmp_path / "lil.xml", lambda d, t: steps.append((d, t)))
    assert result.path.exists() and result.size == result.path.stat().st_size
    assert result.counts.subjects == Subject.objects.filter(center__code="LIL").count()
    assert result.counts.records == len(etree.parse(str(result.path)).findall(".//o:ItemData", NS))
    assert steps[-1] == (result.counts.subjects, result.counts.subjects)
