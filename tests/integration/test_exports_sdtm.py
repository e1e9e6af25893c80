"""The SDTM exports on the demo study (issue 12, item 3): every Dataset-JSON file valid for dsjframe and
read back, define.xml valid against the Define-XML 2.1 schema and the specification's checks, and the
content what the trial holds: one DM row per exported subject, every AE and lab result, a center's
export with only its subjects, a `since` export with only the subjects changed since then."""

from __future__ import annotations

import importlib.resources
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dsjframe
import pytest
from django.db import transaction
from lxml import etree

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.exports.formats import WRITERS
from cartrial.apps.exports.request import ExportCounts, ExportFormat, ExportRequest
from cartrial.apps.exports.sdtm import datasetjson_write, define_write
from cartrial.apps.exports.selectors import export_request_resolve
from cartrial.apps.safety.models import AdverseEvent
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Subject, SubjectIdentity
from cartrial.demo import build_demo, demo_epoch
from cartrial.domain.standards.define import ODM_NS, define_problems
from cartrial.domain.standards.sdtm_metadata import DATASETS, DATASETS_BY_NAME, SUBJECT_DATASETS
from cartrial.domain.standards.terminology import LAB_CODINGS, VITAL_SIGN_CODINGS
from cartrial.protocols import active_protocol

STUDY = "CARTLUP-12"


@dataclass(frozen=True)
class Export:
    request: ExportRequest
    folder: Path
    counts: ExportCounts
    progress: list[tuple[int, int]]

    def rows(self, name: str) -> list[dict[str, Any]]:
        dataset = json.loads((self.folder / f"{name.lower()}.json").read_text(encoding="utf-8"))
        names = [column["name"] for column in dataset["columns"]]
        return [dict(zip(names, row, strict=True)) for row in dataset["rows"]]

    def usubjids(self) -> set[str]:
        return {
            f"{STUDY}-{code}"
            for code in Subject.objects.filter(pk__in=self.request.subject_ids).values_list("code", flat=True)
        }


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo, built once for the module; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_demo(active_protocol(), today=demo_epoch())
        yield
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("demo", "db")


def export(folder: Path, **filters: Any) -> Export:
    request = export_request_resolve(
        scope=None, export_format=ExportFormat.DATASETJSON, now=demo_epoch(), requested_by="test", **filters
    )
    progress: list[tuple[int, int]] = []
    counts = datasetjson_write(request, folder / "datasets", lambda done, total: progress.append((done, total)))
    return Export(request, folder / "datasets", counts, progress)


@pytest.fixture(scope="module")
def study_export(demo: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Export:
    with django_db_blocker.unblock():
        return export(tmp_path_factory.mktemp("study"))


def test_the_formats_are_registered() -> None:
    assert WRITERS[ExportFormat.DATASETJSON] is datasetjson_write
    assert WRITERS[ExportFormat.DEFINE] is define_write


def test_every_dataset_is_valid_and_reads_back(study_export: Export) -> None:
    # One lower-case file per dataset and nothing else (no spool left behind).
    assert sorted(p.name for p in study_export.folder.iterdir()) == sorted(spec.file_name for spec in DATASETS)
    for spec in DATASETS:
        path = study_export.folder / spec.file_name
        report = dsjframe.validate_dataset(path)
        assert report["ok"] is True and report["issue_code"] is None, (spec.name, report)
        table = dsjframe.read_dataset(path)
        declared = json.loads(path.read_text(encoding="utf-8"))["records"]
        assert table.num_rows == declared == len(study_export.rows(spec.name))
        assert table.column_names == list(spec.names)
    assert all(study_export.rows(spec.name) for spec in DATASETS), "the demo fills every dataset"


def test_the_counts_and_the_progress(study_export: Export) -> None:
    subjects = len(study_export.request.subject_ids)
    records = sum(len(study_export.rows(spec.name)) for spec in SUBJECT_DATASETS)
    assert study_export.counts == ExportCounts(subjects=subjects, records=records)
    assert study_export.progress[0] == (0, subjects) and study_export.progress[-1] == (subjects, subjects)


def test_dm_has_one_row_per_exported_subject(study_export: Export) -> None:
    dm = study_export.rows("DM")
    assert len(dm) == len(study_export.request.subject_ids) == Subject.objects.count()
    assert {row["USUBJID"] for row in dm} == study_export.usubjids()
    assert {row["SEX"] for row in dm} <= {"F", "M", "U"}
    infused = Subject.objects.filter(infusion_date__isnull=False).count()
    assert sum(1 for row in dm if row["ACTARMCD"] == "CART") == infused
    assert all(row["RFSTDTC"] for row in dm if row["ACTARMCD"] == "CART")
    assert {row["COUNTRY"] for row in dm} == {"FRA", "CAN"}


def test_the_birth_date_is_never_written(study_export: Export) -> None:
    births = {identity_decrypt(c)["birth_date"] for c in SubjectIdentity.objects.values_list("ciphertext", flat=True)}
    assert births
    text = "".join(p.read_text(encoding="utf-8") for p in study_export.folder.iterdir())
    assert not [birth for birth in births if birth in text]
    assert all(isinstance(row["AGE"], int) for row in study_export.rows("DM"))


def test_ae_holds_every_adverse_event_with_its_grade(study_export: Export) -> None:
    ae = study_export.rows("AE")
    stored = AdverseEvent.objects.filter(subject_id__in=study_export.request.subject_ids)
    assert len(ae) == stored.count() > 0
    crs = [row for row in ae if row["AEDECOD"] == "Cytokine release syndrome"]
    assert len(crs) == stored.filter(term="cytokine_release_syndrome").count() > 0
    assert {row["AETOXGR"] for row in crs} == {
        str(g) for g in stored.filter(term="cytokine_release_syndrome").values_list("grade", flat=True)
    }
    assert {row["AESEV"] for row in ae} <= {"MILD", "MODERATE", "SEVERE"}
    assert sum(row["AESER"] == "Y" for row in ae) == stored.filter(serious=True).count()


def test_lb_holds_every_lab_result_with_loinc_where_the_analyte_has_one(study_export: Export) -> None:
    lb = study_export.rows("LB")
    stored = list(
        LabObservation.objects.filter(subject_id__in=study_export.request.subject_ids).values_list("analyte", "unit")
    )
    assert len(lb) == len(stored)
    coded = [(a, u) for a, u in stored if LAB_CODINGS[a].loinc(u)]
    assert 0 < len(coded) < len(stored), "the demo has coded and uncoded analytes"
    assert sum(1 for row in lb if row["LBLOINC"]) == len(coded)
    expected = {(LAB_CODINGS[a].lbtestcd, LAB_CODINGS[a].loinc(u)[0]) for a, u in coded}  # type: ignore[index]
    assert {(row["LBTESTCD"], row["LBLOINC"]) for row in lb if row["LBLOINC"]} == expected
    assert not [row for row in lb if row["LBTESTCD"] == "CARTCELL" and row["LBLOINC"]]


def test_vs_and_ex_hold_what_the_casebook_holds(study_export: Export) -> None:
    vitals = FormRecord.objects.filter(
        subject_id__in=study_export.request.subject_ids, form_code="vital_signs"
    ).exclude(status="not_started")
    measured = sum(
        1
        for values in vitals.values_list("values_json", flat=True)
        for item in VITAL_SIGN_CODINGS
        if values.get(item) is not None
    )
    assert len(study_export.rows("VS")) == measured > 0
    ex = study_export.rows("EX")
    infused = Subject.objects.filter(infusion_date__isnull=False).count()
    # Fludarabine, cyclophosphamide and the CAR-T cells for every infused subject of the demo.
    assert sorted({row["EXTRT"] for row in ex}) == ["ANTI-CD19 CAR-T CELLS", "CYCLOPHOSPHAMIDE", "FLUDARABINE"]
    assert len(ex) == 3 * infused


def test_rows_are_unique_and_in_the_order_of_their_keys(study_export: Export) -> None:
    for spec in DATASETS:
        keys = [v.name for v in sorted((v for v in spec.variables if v.key), key=lambda v: v.key or 0)]
        values = [tuple(("" if row[k] is None else row[k]) for k in keys) for row in study_export.rows(spec.name)]
        assert len(set(values)) == len(values), spec.name
        if spec.name not in ("TS", "TE"):  # their rows follow the parameter and element order
            subjects = [v[:2] for v in values]
            assert subjects == sorted(subjects), spec.name


def test_a_center_export_holds_only_that_centers_subjects(demo: None, tmp_path: Path) -> None:
    montreal = export(tmp_path, center_codes=["MTL"])
    codes = set(Subject.objects.filter(center__code="MTL").values_list("code", flat=True))
    assert montreal.usubjids() == {f"{STUDY}-{code}" for code in codes}
    for spec in SUBJECT_DATASETS:
        found = {row["USUBJID"] for row in montreal.rows(spec.name)}
        assert all(u.startswith(f"{STUDY}-MTL-") for u in found), spec.name
    assert len(montreal.rows("DM")) == len(codes)
    assert dsjframe.validate_dataset(montreal.folder / "lb.json")["ok"] is True


def test_a_since_export_holds_only_the_subjects_changed_since(demo: None, tmp_path: Path) -> None:
    since = demo_epoch() - timedelta(days=3)
    changed = set(
        AuditEntry.objects.filter(occurred_at__gt=since).exclude(subject_code="").values_list("subject_code", flat=True)
    )
    assert changed and set(Subject.objects.values_list("code", flat=True)) - changed, "the demo has both kinds"
    recent = export(tmp_path, since=since)
    assert {row["USUBJID"] for row in recent.rows("DM")} == {f"{STUDY}-{code}" for code in changed}
    for spec in SUBJECT_DATASETS:
        assert {row["USUBJID"] for row in recent.rows(spec.name)} <= recent.usubjids()


def test_define_describes_the_exported_files(study_export: Export, tmp_path: Path) -> None:
    request = export_request_resolve(
        scope=None, export_format=ExportFormat.DEFINE, now=demo_epoch(), requested_by="test"
    )
    path = tmp_path / "define.xml"
    counts = define_write(request, path, lambda done, total: None)
    assert counts == ExportCounts(subjects=0, records=len(DATASETS))
    schema_path = importlib.resources.files("odmlib.schemas") / "define" / "2.1" / "define2-1-0.xsd"
    schema = etree.XMLSchema(etree.parse(str(schema_path)))
    assert schema.validate(etree.parse(str(path))), [e.message for e in schema.error_log]
    root = ET.parse(path).getroot()
    assert define_problems(root) == []
    leaves = {
        leaf.get("{http://www.w3.org/1999/xlink}href") for leaf in root.iter("{http://www.cdisc.org/ns/def/v2.1}leaf")
    }
    assert leaves == {p.name for p in study_export.folder.iterdir()}
    version = root.find(f"{{{ODM_NS}}}Study/{{{ODM_NS}}}MetaDataVersion")
    assert version is not None
    for spec in DATASETS:
        dataset = json.loads((study_export.folder / spec.file_name).read_text(encoding="utf-8"))
        assert dataset["metaDataVersionOID"] == version.get("OID") and dataset["studyOID"] == STUDY
        assert dataset["itemGroupOID"] == DATASETS_BY_NAME[spec.name].oid


def test_an_export_without_subjects_has_valid_empty_datasets(demo: None, tmp_path: Path) -> None:
    # Nothing changed after now: no subject, yet every dataset is written, valid, and the trial design full.
    empty = export(tmp_path, since=demo_epoch())
    assert empty.request.subject_ids == frozenset() and empty.counts == ExportCounts(subjects=0, records=0)
    for spec in DATASETS:
        report = dsjframe.validate_dataset(empty.folder / spec.file_name)
        assert report["ok"] is True, (spec.name, report)
        assert bool(empty.rows(spec.name)) == spec.reference_data, spec.name
