"""The HL7 FHIR R4 export: one Bundle (type `collection`) of the study, its sites and the subjects of
the request, streamed to one JSON file (`cartrial export fhir --out FILE`).

The writer reads the database a chunk of subjects at a time (pathway, consent, screening sex,
identity when allowed, lab observations, lupus activity and toxicity scores, lymphodepletion form,
infusion, adverse events), turns each record into plain data and lets `domain.standards.fhir` build
the resources; the Bundle's `entry` array is written as the resources come, so memory stays flat as
the study grows.

`since`: the request holds only the subjects with an audit entry after it; for those, the Patient
and the ResearchSubject are always written (they are what every other resource points to), and an
Observation, AdverseEvent or MedicationAdministration only when the audit trail records a change of
its record after `since`. Ids are stable, so these resources replace the ones a receiver got before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from django.db.models import Min, Q

from cartrial.apps.audit.selectors import records_changed_since
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.casebook.selectors import inclusion_dates, visits_done
from cartrial.apps.clinical.models import ScreeningRecord
from cartrial.apps.clinical.selectors import lab_rows_of
from cartrial.apps.exports.request import ExportCounts, ExportRequest, Progress
from cartrial.apps.logistics.models import Infusion
from cartrial.apps.safety.selectors import adverse_events_in
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import Consent, Subject, SubjectIdentity
from cartrial.apps.subjects.services import local_today
from cartrial.apps.toxicity.models import ToxicityAssessment
from cartrial.apps.trial.models import Center
from cartrial.domain.ecrf.definitions import FormStatus
from cartrial.domain.pathway import FINAL_STATES, State
from cartrial.domain.standards.fhir import (
    LYMPHODEPLETION_DOSE_ITEMS,
    FhirAdministration,
    FhirAdverseEvent,
    FhirCenter,
    FhirLab,
    FhirScore,
    FhirStudy,
    FhirSubject,
    PatientIdentity,
    Resource,
    ResourceIds,
    adverse_event,
    bundle_chunks,
    infusion_administration,
    item_number,
    lab_observation,
    location,
    lymphodepletion_administrations,
    medication_administration,
    patient,
    research_study,
    research_subject,
    score_observation,
)
from cartrial.domain.standards.terminology import SCORE_CODINGS
from cartrial.protocols import Protocol, active_protocol

# Subjects read per round of queries: each round costs a fixed number of queries, and its rows
# (a few hundred lab results per subject at most) are all that is held at once.
CHUNK_SUBJECTS = 200

# The protocol's forms this export reads (by code): the CAR-T dose and the lymphodepleting chemotherapy.
INFUSION_FORM = "infusion"
INFUSION_DOSE_ITEM = "dose_cells_per_kg"
LYMPHODEPLETION_FORM = "lymphodepletion"
# The daily toxicity assessment's stored grades and score (keys of SCORE_CODINGS).
TOXICITY_SCORES = ("crs_grade", "icans_grade", "ice_score")

# The audit trail's entity names of the records written as resources (for `since`).
LAB_ENTITY = "lab_observation"
FORM_ENTITY = "form_record"
TOXICITY_ENTITY = "toxicity_assessment"
INFUSION_ENTITY = "infusion"
AE_ENTITY = "adverse_event"


def fhir_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """Write the request's FHIR Bundle to `out` (one JSON file, UTF-8)."""
    protocol = active_protocol()
    ids = ResourceIds(protocol.code)
    subject_ids = list(
        Subject.objects.filter(pk__in=request.subject_ids)
        .order_by("center__code", "number")
        .values_list("pk", flat=True)
    )
    written = 0

    def counted(resources: Iterable[Resource]) -> Iterator[Resource]:
        nonlocal written
        for resource in resources:
            written += 1
            yield resource

    resources = counted(_resources(request, protocol, ids, subject_ids, progress))
    with out.open("w", encoding="utf-8") as stream:
        for piece in bundle_chunks(ids=ids, timestamp=request.now, resources=resources):
            stream.write(piece)
    return ExportCounts(subjects=len(subject_ids), records=written)


def _resources(
    request: ExportRequest, protocol: Protocol, ids: ResourceIds, subject_ids: Sequence[int], progress: Progress
) -> Iterator[Resource]:
    study = _study(protocol, request, subject_ids)
    yield research_study(study, ids)
    for center in study.sites:
        yield location(center, ids)
    total = len(subject_ids)
    progress(0, total)
    for start in range(0, total, CHUNK_SUBJECTS):
        chunk = subject_ids[start : start + CHUNK_SUBJECTS]
        yield from _chunk_resources(request, protocol, ids, chunk)
        progress(min(start + CHUNK_SUBJECTS, total), total)


def _study(protocol: Protocol, request: ExportRequest, subject_ids: Sequence[int]) -> FhirStudy:
    """The study and its sites: the clinical centers asked for and those of the subjects exported."""
    subject_centers = Subject.objects.filter(pk__in=subject_ids).values("center_id")
    centers = Center.objects.filter(
        Q(pk__in=request.center_ids, kind=Center.Kind.CLINICAL) | Q(pk__in=subject_centers)
    ).order_by("code")
    raw_study = protocol.raw.get("study", {})
    return FhirStudy(
        code=protocol.code,
        title=protocol.title.get("en") or next(iter(protocol.title.values()), protocol.code),
        phase=str(raw_study.get("phase", "")),
        start=protocol.effective_date,
        sites=tuple(FhirCenter(c.code, c.name, c.city, c.country, c.active) for c in centers),
    )


class _Changed:
    """Which records a `since` export writes: all of them without `since`, else those the audit
    trail records as changed after it."""

    def __init__(self, request: ExportRequest, subject_codes: Iterable[str]) -> None:
        self.records = (
            None
            if request.since is None
            else records_changed_since(
                since=request.since,
                subject_codes=subject_codes,
                entities=(LAB_ENTITY, FORM_ENTITY, TOXICITY_ENTITY, INFUSION_ENTITY, AE_ENTITY),
            )
        )

    def __call__(self, entity: str, pk: int) -> bool:
        return self.records is None or (entity, str(pk)) in self.records


def _chunk_resources(
    request: ExportRequest, protocol: Protocol, ids: ResourceIds, chunk: Sequence[int]
) -> Iterator[Resource]:
    subjects = list(Subject.objects.filter(pk__in=chunk).select_related("center").order_by("center__code", "number"))
    codes = {s.pk: s.code for s in subjects}
    changed = _Changed(request, codes.values())
    for subject in _subjects(request, subjects):
        yield patient(subject, ids)
        yield research_subject(subject, ids)

    forms = _forms(chunk, protocol)
    cart_keys: dict[int, list[str]] = defaultdict(list)
    ld_keys: dict[int, list[str]] = defaultdict(list)
    for given, subject_id, entity, pk in _administrations(chunk, codes, forms, protocol):
        (cart_keys if given.medication == "car_t" else ld_keys)[subject_id].append(given.key)
        if changed(entity, pk):
            yield medication_administration(given, ids)
    for event in adverse_events_in(chunk):
        if changed(AE_ENTITY, event.pk):
            yield adverse_event(
                FhirAdverseEvent(
                    key=f"{AE_ENTITY}/{event.pk}",
                    subject_code=codes[event.subject_id],
                    term=event.term,
                    ctcae_version=event.ctcae_version,
                    grade=event.grade,
                    serious=event.serious,
                    start_date=event.start_date,
                    end_date=event.end_date,
                    outcome=event.outcome,
                    recorded_at=event.recorded_at,
                    relatedness_cart=event.relatedness_cart,
                    relatedness_ld=event.relatedness_ld,
                    cart_administration_keys=tuple(cart_keys[event.subject_id]),
                    ld_administration_keys=tuple(ld_keys[event.subject_id]),
                ),
                ids,
            )
    for row in lab_rows_of(chunk):
        if changed(LAB_ENTITY, row.pk):
            lab = FhirLab(
                f"{LAB_ENTITY}/{row.pk}",
                codes[row.subject_id],
                row.analyte,
                row.value,
                row.unit,
                row.lower_limit,
                row.upper_limit,
                row.limit_of_quantification,
                row.sampled_at,
                row.recorded_at,
            )
            yield lab_observation(lab, ids)
    for score in _scores(chunk, codes, forms, protocol, changed):
        yield score_observation(score, ids)


def _subjects(request: ExportRequest, subjects: Sequence[Subject]) -> Iterator[FhirSubject]:
    """Each subject's facts: inclusion, consent date, screening sex, identity when the export may carry it."""
    chunk = [s.pk for s in subjects]
    included = inclusion_dates(chunk)
    consents = dict(
        Consent.objects.filter(subject_id__in=chunk)
        .values("subject_id")
        .annotate(first=Min("signed_on"))
        .values_list("subject_id", "first")
    )
    sexes = {
        subject_id: data.get("sex") if isinstance(data, dict) else None
        for subject_id, data in ScreeningRecord.objects.filter(subject_id__in=chunk).values_list(
            "subject_id", "data_json"
        )
    }
    allowed = [pk for pk in chunk if pk in request.identity_subject_ids]
    identities = {
        subject_id: identity_decrypt(ciphertext)
        for subject_id, ciphertext in SubjectIdentity.objects.filter(subject_id__in=allowed).values_list(
            "subject_id", "ciphertext"
        )
    }
    for subject in subjects:
        state = State(subject.state)
        identity = identities.get(subject.pk)
        yield FhirSubject(
            code=subject.code,
            state=state,
            included=subject.pk in included,
            infused=subject.infusion_date is not None,
            start=consents.get(subject.pk) or local_today(subject.center, subject.created_at),
            exit_date=local_today(subject.center, subject.state_changed_at) if state in FINAL_STATES else None,
            sex=sexes.get(subject.pk),
            identity=PatientIdentity(
                family_name=identity["family_name"],
                given_names=identity["given_names"],
                birth_date=date.fromisoformat(identity["birth_date"]),
            )
            if identity is not None
            else None,
        )


class _Forms:
    """The saved forms of a chunk this export reads: the score forms, the infusion and lymphodepletion
    forms (pk, subject, visit, status, values)."""

    def __init__(self, rows: Iterable[tuple[int, int, str, str, str, dict[str, Any]]]) -> None:
        self.by_form: dict[str, list[tuple[int, int, str, str, dict[str, Any]]]] = defaultdict(list)
        for pk, subject_id, visit_code, form_code, status, values in rows:
            self.by_form[form_code].append((pk, subject_id, visit_code, status, dict(values or {})))


def _score_forms(protocol: Protocol) -> dict[str, list[str]]:
    """The protocol's forms holding score items (SCORE_CODINGS), with those items."""
    forms: dict[str, list[str]] = {}
    for code, form in protocol.forms.items():
        items = [item.name for item in form.items if item.name in SCORE_CODINGS]
        if items:
            forms[code] = items
    return forms


def _forms(chunk: Sequence[int], protocol: Protocol) -> _Forms:
    wanted = {*_score_forms(protocol), INFUSION_FORM, LYMPHODEPLETION_FORM}
    rows = (
        FormRecord.objects.filter(subject_id__in=chunk, form_code__in=wanted)
        .exclude(status=FormStatus.NOT_STARTED.value)
        .order_by("subject_id", "pk")
        .values_list("pk", "subject_id", "visit_code", "form_code", "status", "values_json")
    )
    return _Forms(rows)


def _item_unit(protocol: Protocol, form_code: str, item: str) -> str:
    form = protocol.forms.get(form_code)
    try:
        return form.item(item).unit if form is not None else ""
    except KeyError:
        return ""


def _administrations(
    chunk: Sequence[int], codes: dict[int, str], forms: _Forms, protocol: Protocol
) -> Iterator[tuple[FhirAdministration, int, str, int]]:
    """The CAR-T infusions (logistics record, dose from the infusion form) and the lymphodepleting
    drugs (lymphodepletion form), each with its subject and the audited record it comes from."""
    infusion_forms = forms.by_form[INFUSION_FORM]
    doses = {subject_id: item_number(values.get(INFUSION_DOSE_ITEM)) for _, subject_id, _, _, values in infusion_forms}
    dose_unit = _item_unit(protocol, INFUSION_FORM, INFUSION_DOSE_ITEM)
    infusions = Infusion.objects.filter(batch__subject_id__in=chunk).values_list(
        "pk", "batch__subject_id", "infused_at"
    )
    for pk, subject_id, infused_at in infusions.order_by("batch__subject_id", "infused_at"):
        key = f"{INFUSION_ENTITY}/{pk}"
        given = infusion_administration(key, codes[subject_id], infused_at, doses.get(subject_id), dose_unit)
        yield given, subject_id, INFUSION_ENTITY, pk
    units = {item: _item_unit(protocol, LYMPHODEPLETION_FORM, item) for item in LYMPHODEPLETION_DOSE_ITEMS.values()}
    for pk, subject_id, _, _, values in forms.by_form[LYMPHODEPLETION_FORM]:
        for given in lymphodepletion_administrations(f"{FORM_ENTITY}/{pk}", codes[subject_id], values, units):
            yield given, subject_id, FORM_ENTITY, pk


def _scores(
    chunk: Sequence[int], codes: dict[int, str], forms: _Forms, protocol: Protocol, changed: _Changed
) -> Iterator[FhirScore]:
    """The scores stored: the score items of saved forms, on the date their visit was done (a form
    of a visit not recorded as done yet is left out), and the daily toxicity grades."""
    done = visits_done(chunk)
    for form_code, items in _score_forms(protocol).items():
        for pk, subject_id, visit_code, status, values in forms.by_form[form_code]:
            on = done.get(subject_id, {}).get(visit_code)
            if on is None or not changed(FORM_ENTITY, pk):
                continue
            for item in items:
                value = item_number(values.get(item))
                if value is not None:
                    key = f"{FORM_ENTITY}/{pk}/{item}"
                    yield FhirScore(key, codes[subject_id], item, value, on, status != FormStatus.DRAFT.value)
    assessments = (
        ToxicityAssessment.objects.filter(subject_id__in=chunk)
        .order_by("subject_id", "day")
        .values_list("pk", "subject_id", "assessed_on", *TOXICITY_SCORES)
    )
    for pk, subject_id, assessed_on, *grades in assessments:
        if not changed(TOXICITY_ENTITY, pk):
            continue
        for name, value in zip(TOXICITY_SCORES, grades, strict=True):
            if value is not None:
                yield FhirScore(
                    f"{TOXICITY_ENTITY}/{pk}/{name}", codes[subject_id], name, float(value), assessed_on, True
                )
