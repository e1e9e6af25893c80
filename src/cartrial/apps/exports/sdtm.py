"""The SDTM exports: Dataset-JSON v1.1 (one `<domain>.json` per dataset in a folder) and Define-XML 2.1
(one file describing them).

The writers gather each chunk of subjects from the apps' stores in a fixed number of queries (the
subjects, identities, screening records, consents, pathway steps, infusions, casebook forms and
visits, adverse events, lab observations), hand one subject at a time to the SDTM derivations
(`domain/standards/sdtm.py`) and append the rows to one spool file per dataset. Only when every
subject is written does a dataset get its header (its `records` count is known then), followed by
its spooled rows: memory holds one chunk of subjects, whatever the size of the study.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any

import cartrial
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.casebook.selectors import form_values
from cartrial.apps.clinical.models import ScreeningRecord
from cartrial.apps.clinical.selectors import lab_rows_of
from cartrial.apps.exports.request import ExportCounts, ExportRequest, Progress
from cartrial.apps.logistics.models import Infusion
from cartrial.apps.safety.selectors import adverse_events_in
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Consent, PathwayEvent, Subject, SubjectIdentity
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.standards import datasetjson
from cartrial.domain.standards.define import DefineContext, define_xml, metadata_version_oid
from cartrial.domain.standards.sdtm import (
    AdverseEventRecord,
    LabResult,
    PathwayStep,
    StudyDesign,
    SubjectRecord,
    VisitOccurrence,
    subject_rows,
    trial_design_rows,
)
from cartrial.domain.standards.sdtm_metadata import DATASETS, DATASETS_BY_NAME, DatasetSpec, row_values
from cartrial.protocols import Protocol, active_protocol

# Subjects read and derived at a time: enough to keep the queries few, small enough for flat memory.
CHUNK_SUBJECTS = 100
# The casebook forms the SDTM datasets read (EX, VS, CM); labs come from the one lab store.
SDTM_FORMS = ("lymphodepletion", "infusion", "vital_signs", "concomitant_medications")
SOURCE_SYSTEM = "cartrial"
DEFINE_FILE = "define.xml"


def study_design(protocol: Protocol) -> StudyDesign:
    """The protocol's facts the SDTM datasets need."""
    study = protocol.raw.get("study", {})
    age_range = None
    for criterion in protocol.raw.get("eligibility", {}).get("criteria", []):
        rule = criterion.get("rule") or {}
        if rule.get("item") == "age_years" and isinstance(rule.get("between"), list):
            low, high = rule["between"]
            age_range = (int(low), int(high))
    return StudyDesign(
        study_id=protocol.code,
        title=protocol.title.get("en", protocol.code),
        sponsor=str(study.get("sponsor", "")),
        phase=str(study.get("phase", "")),
        visits=protocol.visits,
        follow_up_months=protocol.follow_up_months,
        long_term_follow_up_years=protocol.long_term_follow_up_years,
        age_range=age_range,
        lymphodepletion_days=protocol.capacities.lymphodepletion_days if protocol.capacities else None,
    )


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def subjects_in_order(subject_ids: Iterable[int]) -> list[int]:
    """The export's subjects by code (the order of USUBJID), read in slices of ids."""
    ids = sorted(subject_ids)
    coded: list[tuple[str, int]] = []
    for part in _chunks(ids, 500):
        coded.extend(Subject.objects.filter(pk__in=part).values_list("code", "pk"))
    return [pk for _, pk in sorted(coded)]


def subject_records(ids: Sequence[int]) -> list[SubjectRecord]:
    """The SDTM view of a chunk of subjects, in a fixed number of queries."""
    births: dict[int, date] = {}
    for subject_id, ciphertext in SubjectIdentity.objects.filter(subject_id__in=ids).values_list(
        "subject_id", "ciphertext"
    ):
        birth = identity_decrypt(ciphertext).get("birth_date")
        if birth:
            births[subject_id] = date.fromisoformat(birth)
    sexes = {
        subject_id: (data or {}).get("sex")
        for subject_id, data in ScreeningRecord.objects.filter(subject_id__in=ids).values_list(
            "subject_id", "data_json"
        )
    }
    consents: dict[int, list[date]] = defaultdict(list)
    for subject_id, signed_on in Consent.objects.filter(subject_id__in=ids).values_list("subject_id", "signed_on"):
        consents[subject_id].append(signed_on)
    steps: dict[int, list[PathwayStep]] = defaultdict(list)
    for subject_id, step, occurred_at, reason, details in PathwayEvent.objects.filter(subject_id__in=ids).values_list(
        "subject_id", "step", "occurred_at", "reason", "details"
    ):
        steps[subject_id].append(PathwayStep(step, occurred_at, reason or "", details or {}))
    infusions: dict[int, list[Any]] = defaultdict(list)
    for subject_id, infused_at in Infusion.objects.filter(batch__subject_id__in=ids).values_list(
        "batch__subject_id", "infused_at"
    ):
        infusions[subject_id].append(infused_at)
    forms = {code: form_values(ids, code) for code in SDTM_FORMS}
    lab_visits: dict[int, str] = {}
    for visit_code, observations in (
        FormRecord.objects.filter(subject_id__in=ids)
        .exclude(status=FormStatus.NOT_STARTED.value)
        .values_list("visit_code", "observations_json")
    ):
        for observation_id in (observations or {}).values():
            lab_visits[int(observation_id)] = visit_code
    visits: dict[int, list[VisitOccurrence]] = defaultdict(list)
    for subject_id, visit_code, done_on, missed_reason in VisitRecord.objects.filter(subject_id__in=ids).values_list(
        "subject_id", "visit_code", "done_on", "missed_reason"
    ):
        visits[subject_id].append(VisitOccurrence(visit_code, done_on, missed_reason or ""))
    events: dict[int, list[AdverseEventRecord]] = defaultdict(list)
    for ae in adverse_events_in(ids):
        events[ae.subject_id].append(
            AdverseEventRecord(
                term=ae.term,
                grade=ae.grade,
                serious=ae.serious,
                seriousness_criteria=tuple(ae.seriousness_criteria or ()),
                start_date=ae.start_date,
                end_date=ae.end_date,
                relatedness_cart=ae.relatedness_cart,
                action=ae.action,
                outcome=ae.outcome,
            )
        )
    labs: dict[int, list[LabResult]] = defaultdict(list)
    for row in lab_rows_of(ids):
        pk, subject_id, analyte, value, unit, lower, upper, loq, sampled_at, _, context = row
        labs[subject_id].append(
            LabResult(analyte, value, unit, lower, upper, loq, sampled_at, context or "", lab_visits.get(pk))
        )
    subjects = Subject.objects.filter(pk__in=ids).select_related("center").order_by("code")
    return [
        SubjectRecord(
            code=subject.code,
            center_code=subject.center.code,
            country=subject.center.country,
            time_zone=subject.center.time_zone,
            sex=sexes.get(subject.pk),
            birth_date=births.get(subject.pk),
            consent_dates=tuple(consents[subject.pk]),
            steps=tuple(steps[subject.pk]),
            infusions=tuple(infusions[subject.pk]),
            forms={code: values.get(subject.pk, {}) for code, values in forms.items()},
            visits=tuple(visits[subject.pk]),
            adverse_events=tuple(events[subject.pk]),
            labs=tuple(labs[subject.pk]),
        )
        for subject in subjects
    ]


class _Spool:
    """The rows of one dataset written so far, in a spool file beside the output; counted."""

    def __init__(self, spec: DatasetSpec, folder: Path) -> None:
        self.spec = spec
        self.path = folder / f".{spec.name.lower()}.rows"
        self.file: IO[str] = self.path.open("w", encoding="utf-8")
        self.records = 0

    def add(self, rows: Iterable[dict[str, object]]) -> None:
        for row in rows:
            if self.records:
                self.file.write(datasetjson.ROWS_SEPARATOR)
            self.file.write(datasetjson.row(self.spec, row_values(self.spec, row)))
            self.records += 1

    def finish(self, folder: Path, context: datasetjson.DatasetContext) -> None:
        """Write `<domain>.json`: the header with the count, the spooled rows, the end; drop the spool."""
        self.file.close()
        with (folder / self.spec.file_name).open("w", encoding="utf-8") as out:
            out.write(datasetjson.header(self.spec, context, self.records))
            with self.path.open(encoding="utf-8") as rows:
                shutil.copyfileobj(rows, out)
            out.write(datasetjson.END)
        self.path.unlink()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def datasetjson_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """The SDTM datasets of the request's subjects as Dataset-JSON v1.1, one `<domain>.json` per dataset
    (lower case) in the folder `out`, the trial design datasets (TS, TA, TE) included."""
    protocol = active_protocol()
    study = study_design(protocol)
    context = datasetjson.DatasetContext(
        created_at=request.now,
        originator=request.requested_by,
        source_system=SOURCE_SYSTEM,
        source_version=cartrial.__version__,
        study_oid=study.study_id,
        metadata_version_oid=metadata_version_oid(study.study_id),
        define_file=DEFINE_FILE,
    )
    out.mkdir(parents=True)
    spools = {spec.name: _Spool(spec, out) for spec in DATASETS}
    try:
        for name, rows in trial_design_rows(study, request.now.date()).items():
            spools[name].add(rows)
        ordered = subjects_in_order(request.subject_ids)
        done = 0
        progress(done, len(ordered))
        for chunk in _chunks(ordered, CHUNK_SUBJECTS):
            for record in subject_records(chunk):
                for name, rows in subject_rows(study, record).items():
                    spools[name].add(rows)
            done += len(chunk)
            progress(done, len(ordered))
        for spool in spools.values():
            spool.finish(out, context)
    finally:
        for spool in spools.values():
            if spool.path.exists():
                spool.discard()
    records = sum(spool.records for name, spool in spools.items() if not DATASETS_BY_NAME[name].reference_data)
    return ExportCounts(subjects=len(ordered), records=records)


def define_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """Define-XML 2.1 of the SDTM datasets, one file `out`. It describes the datasets, not the
    subjects, so it is the same for every center; `records` counts the datasets described."""
    protocol = active_protocol()
    study = study_design(protocol)
    progress(0, 1)
    document = define_xml(
        DefineContext(
            study_oid=study.study_id,
            study_name=study.study_id,
            study_description=study.title,
            protocol_name=f"{study.study_id} v{protocol.version}",
            metadata_version_oid=metadata_version_oid(study.study_id),
            created_at=request.now,
            originator=request.requested_by,
            source_system=SOURCE_SYSTEM,
            source_version=cartrial.__version__,
        )
    )
    out.write_bytes(document)
    progress(1, 1)
    return ExportCounts(subjects=0, records=len(DATASETS))
