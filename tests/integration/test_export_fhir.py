"""The FHIR R4 export on the demo study: the whole Bundle and each resource validated by the R4B models
of fhir.resources, the codes checked against the terminology table and the R4 value sets, identity
only where the request allows it, a center's export holding only its subjects, stable ids, `since`."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.researchsubject import ResearchSubject

from cartrial.apps.access import scope_for, subject_identity
from cartrial.apps.accounts.models import User
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.exports.fhir import fhir_write
from cartrial.apps.exports.formats import WRITERS
from cartrial.apps.exports.request import ExportFormat, ExportRequest
from cartrial.apps.exports.selectors import export_request_resolve
from cartrial.apps.exports.services import export_write
from cartrial.apps.safety.models import AdverseEvent
from cartrial.apps.subjects.models import Subject
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.demo import build_demo, demo_epoch
from cartrial.domain.pathway import State
from cartrial.domain.standards import fhir
from cartrial.domain.standards.terminology import (
    LAB_ANALYTE_SYSTEM,
    LAB_CODINGS,
    LOINC_SYSTEM,
    SCORE_SYSTEM,
    UCUM_BY_UNIT,
    UCUM_SYSTEM,
)
from cartrial.protocols import active_protocol


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo, built once for the module; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_demo(active_protocol(), today=demo_epoch())
        yield
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("demo", "db")

IDS = fhir.ResourceIds(active_protocol().code)


def request_for(**options: Any) -> ExportRequest:
    return export_request_resolve(
        scope=options.pop("scope", None),
        export_format=ExportFormat.FHIR,
        now=options.pop("now", demo_epoch()),
        requested_by="test",
        **options,
    )


def export(request: ExportRequest, tmp_path: Path, name: str = "bundle.json") -> tuple[str, Any]:
    out = tmp_path / name
    progress: list[tuple[int, int]] = []
    counts = fhir_write(request, out, lambda done, total: progress.append((done, total)))
    text = out.read_text(encoding="utf-8")
    data = json.loads(text)
    assert counts.records == len(data["entry"])
    assert counts.subjects == len(request.subject_ids)
    assert progress[-1] == (len(request.subject_ids), len(request.subject_ids))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    return text, data


def resources(data: Any, resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == resource_type]


def coded(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def test_the_writer_is_registered_for_the_fhir_format() -> None:
    assert WRITERS[ExportFormat.FHIR] is fhir_write


def test_the_runner_writes_the_fhir_file_whole_with_its_hash(tmp_path: Path) -> None:
    target = tmp_path / "study.json"
    result = export_write(request_for(), target, lambda done, total: None)
    assert result.path == target and not list(tmp_path.glob(".cartrial-export-*"))
    assert result.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert Bundle.model_validate_json(target.read_text(encoding="utf-8")).type == "collection"
    assert result.counts.subjects == Subject.objects.count()


def test_the_study_bundle_and_each_resource_validate_as_r4(tmp_path: Path) -> None:
    text, data = export(request_for(), tmp_path)
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    kinds = Counter(e["resource"]["resourceType"] for e in data["entry"])
    assert kinds["ResearchStudy"] == 1
    assert kinds["Patient"] == kinds["ResearchSubject"] == Subject.objects.count()
    assert kinds["Location"] == 5  # the five clinical centers, not the lab
    assert kinds["AdverseEvent"] == AdverseEvent.objects.count()
    infused = Subject.objects.filter(infusion_date__isnull=False).count()
    assert kinds["MedicationAdministration"] >= infused > 0
    assert kinds["Observation"] > LabObservation.objects.count()  # labs and scores
    for entry in data["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"


def test_every_reference_resolves_inside_the_bundle(tmp_path: Path) -> None:
    _, data = export(request_for(), tmp_path)
    full_urls = {e["fullUrl"] for e in data["entry"]}
    references: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str):
                references.append(value["reference"])
            for child in value.values():
                collect(child)
        elif isinstance(value, list):
            for child in value:
                collect(child)

    collect(data["entry"])
    assert len(references) > len(data["entry"])
    assert set(references) <= full_urls


def test_lab_codes_are_the_terminology_tables(tmp_path: Path) -> None:
    _, data = export(request_for(), tmp_path)
    labs = [r for r in resources(data, "Observation") if coded(r["code"], LAB_ANALYTE_SYSTEM)]
    assert len(labs) == LabObservation.objects.count()
    with_loinc = 0
    for resource in labs:
        (analyte,) = coded(resource["code"], LAB_ANALYTE_SYSTEM)
        quantity = resource["valueQuantity"]
        loinc = LAB_CODINGS[analyte].loinc(quantity["unit"])
        assert coded(resource["code"], LOINC_SYSTEM) == ([loinc[0]] if loinc else [])
        with_loinc += loinc is not None
        assert quantity["system"] == UCUM_SYSTEM
        assert quantity["code"] == UCUM_BY_UNIT[quantity["unit"]]
    stored = LabObservation.objects.values_list("analyte", "unit")
    assert with_loinc == sum(LAB_CODINGS[analyte].loinc(unit) is not None for analyte, unit in stored) > 0


def test_scores_are_exported_with_their_stored_values(tmp_path: Path) -> None:
    _, data = export(request_for(), tmp_path)
    scores = [r for r in resources(data, "Observation") if coded(r["code"], SCORE_SYSTEM)]

    def exported(code: str) -> set[tuple[str, str, Any]]:
        return {
            (r["subject"]["display"], r["effectiveDateTime"], r.get("valueInteger"))
            for r in scores
            if coded(r["code"], SCORE_SYSTEM) == [code]
        }

    done = {
        (subject, visit): on
        for subject, visit, on in VisitRecord.objects.filter(outcome="done").values_list(
            "subject__code", "visit_code", "done_on"
        )
        if on is not None
    }
    stored = {
        (subject, done[subject, visit].isoformat(), values["sledai2k_score"])
        for subject, visit, values in FormRecord.objects.filter(form_code="sle_activity")
        .exclude(status="not_started")
        .values_list("subject__code", "visit_code", "values_json")
        if (subject, visit) in done and "sledai2k_score" in values
    }
    assert exported("sledai2k") == stored != set()
    crs = ToxicityAssessment.objects.values_list("subject__code", "assessed_on", "crs_grade")
    assert exported("astct-crs-grade") == {(code, on.isoformat(), grade) for code, on, grade in crs} != set()


def test_research_subject_status_follows_the_pathway(tmp_path: Path) -> None:
    _, data = export(request_for(), tmp_path)
    extra = ResearchSubject.model_fields["status"].json_schema_extra
    assert isinstance(extra, dict)
    allowed = extra["enum_values"]
    assert isinstance(allowed, list) and len(allowed) == 13
    states = dict(Subject.objects.values_list("code", "state"))
    seen = set()
    for resource in resources(data, "ResearchSubject"):
        assert resource["status"] in allowed
        code = resource["identifier"][0]["value"]
        assert resource["extension"][0]["valueCode"] == states[code]
        seen.add((states[code], resource["status"]))
    assert (State.SCREEN_FAILED.value, "ineligible") in seen
    assert (State.SCREENING.value, "screening") in seen
    assert (State.LONG_TERM_FOLLOW_UP.value, "follow-up") in seen
    assert (State.COMPLETED.value, "off-study") in seen


def test_without_identity_every_patient_is_pseudonymous(tmp_path: Path) -> None:
    request = request_for()
    assert request.identity_subject_ids == frozenset()
    _, data = export(request, tmp_path)
    patients = resources(data, "Patient")
    assert len(patients) == Subject.objects.count()
    for resource in patients:
        assert "name" not in resource and "birthDate" not in resource
        assert resource["meta"]["security"][0]["code"] == "PSEUDED"
    assert Counter(p.get("gender") for p in patients)["female"] > 0


def test_identity_only_for_the_subjects_the_request_allows(tmp_path: Path) -> None:
    request = request_for()
    allowed = Subject.objects.select_related("identity").get(code="BDX-001")
    _, data = export(replace(request, identity_subject_ids=frozenset({allowed.pk})), tmp_path)
    named = {p["identifier"][0]["value"]: p for p in resources(data, "Patient") if "name" in p}
    assert set(named) == {"BDX-001"}
    investigator = User.objects.get(username="bdx.investigator")
    identity = subject_identity(scope_for(investigator), allowed)
    assert identity is not None
    assert named["BDX-001"]["name"][0]["family"] == identity["family_name"]
    assert named["BDX-001"]["birthDate"] == identity["birth_date"]
    assert all("birthDate" not in p for p in resources(data, "Patient") if p["identifier"][0]["value"] != "BDX-001")


def test_a_center_investigator_exports_the_identity_of_the_center_subjects(tmp_path: Path) -> None:
    investigator = User.objects.get(username="bdx.investigator")
    request = request_for(scope=scope_for(investigator))
    assert request.identity_subject_ids == request.subject_ids != frozenset()
    _, data = export(request, tmp_path)
    patients = resources(data, "Patient")
    assert {p["identifier"][0]["value"][:4] for p in patients} == {"BDX-"}
    assert all(p["name"] and p["birthDate"] for p in patients)


def test_a_center_export_holds_only_that_center(tmp_path: Path) -> None:
    request = request_for(center_codes=["MTL"])
    _, data = export(request, tmp_path)
    mtl = set(Subject.objects.filter(center__code="MTL").values_list("code", flat=True))
    assert mtl
    codes = {r["identifier"][0]["value"] for r in resources(data, "Patient")}
    assert codes == mtl
    patients = {f"urn:uuid:{IDS.patient(code)}" for code in mtl}
    for kind in ("Observation", "AdverseEvent", "MedicationAdministration"):
        for resource in resources(data, kind):
            assert resource["subject"]["reference"] in patients
    assert [site["reference"] for site in resources(data, "ResearchStudy")[0]["site"]] == [
        f"urn:uuid:{IDS.location('MTL')}"
    ]
    assert len(resources(data, "AdverseEvent")) == AdverseEvent.objects.filter(subject__center__code="MTL").count()


def test_a_re_export_gives_the_same_ids(tmp_path: Path) -> None:
    request = request_for()
    _, first = export(request, tmp_path, "first.json")
    _, later = export(replace(request, now=request.now + timedelta(days=1)), tmp_path, "later.json")
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in later["entry"]]
    assert first["entry"] == later["entry"]
    assert first["timestamp"] != later["timestamp"]


def test_since_holds_only_the_records_changed_after_it(tmp_path: Path) -> None:
    since = demo_epoch() - timedelta(days=3)
    request = request_for(since=since)
    assert 0 < len(request.subject_ids) < Subject.objects.count()
    _, data = export(request, tmp_path)
    codes = set(Subject.objects.filter(pk__in=request.subject_ids).values_list("code", flat=True))
    assert {r["identifier"][0]["value"] for r in resources(data, "Patient")} == codes
    changed_labs = set(
        AuditEntry.objects.filter(entity="lab_observation", occurred_at__gt=since).values_list("entity_id", flat=True)
    )
    expected = {IDS.of("Observation", f"lab_observation/{pk}") for pk in changed_labs}
    exported = {r["id"] for r in resources(data, "Observation") if coded(r["code"], LAB_ANALYTE_SYSTEM)}
    assert exported == expected != set()
    older = LabObservation.objects.filter(subject__code__in=codes).exclude(pk__in=[int(pk) for pk in changed_labs])
    assert older.exists()
    assert not {IDS.of("Observation", f"lab_observation/{pk}") for pk in older.values_list("pk", flat=True)} & exported


def test_the_queries_do_not_grow_with_the_subjects(tmp_path: Path) -> None:
    one = request_for(subject_code="MTL-001")
    every = request_for()
    assert len(every.subject_ids) > 10 * len(one.subject_ids)
    with CaptureQueriesContext(connection) as single:
        export(one, tmp_path, "one.json")
    with CaptureQueriesContext(connection) as study:
        export(every, tmp_path, "every.json")
    assert len(study.captured_queries) == len(single.captured_queries)
