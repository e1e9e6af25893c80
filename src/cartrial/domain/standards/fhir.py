"""HL7 FHIR R4 resources of the trial, as JSON-ready dicts built from plain dataclasses (no Django).

A hospital system or a registry reads the trial as one `Bundle` of type `collection`: the
ResearchStudy and the Location of each center, then per subject its Patient (pseudonymous unless the
export may carry identity), its ResearchSubject (status along the pathway), lab and score
Observations, AdverseEvents and the MedicationAdministrations of the lymphodepletion and of the CAR-T
infusion. Every resource's id is a UUID v5 of the study code, the resource type and the record's key,
so a re-export (or a `--since` export) gives the same `urn:uuid:` to the same record and a receiver
can update what it holds. Codes come from `standards/terminology.py`; what this module adds are the
FHIR value sets (ResearchSubjectStatus, the AdverseEvent's seriousness, severity and outcome) and the
sponsor's identifier systems and extensions. docs/exports.md lists every mapping.

R4 and R4B share these resources; the tests validate them with `fhir.resources.R4B`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from cartrial.domain.pathway import FINAL_STATES, State
from cartrial.domain.safety.adverse_events import Outcome, Relatedness
from cartrial.domain.safety.terms import term_list
from cartrial.domain.standards.terminology import (
    AE_SEVERITY_BY_GRADE,
    ATC_SYSTEM,
    CONDITION_SLE,
    CTCAE_TERM_SYSTEM,
    DOSE_UCUM_BY_UNIT,
    LAB_ANALYTE_SYSTEM,
    LAB_CODINGS,
    LOCAL_SYSTEM_BASE,
    LOINC_SYSTEM,
    MEDDRA_SYSTEM,
    MEDICATION_CODINGS,
    MEDICATION_SYSTEM,
    RELATEDNESS_SYSTEM,
    ROUTE_INTRAVENOUS,
    SCORE_CODINGS,
    SCORE_SYSTEM,
    SCORE_UCUM,
    SNOMED_SYSTEM,
    UCUM_BY_UNIT,
    UCUM_SYSTEM,
)

Resource = dict[str, Any]

# --- the sponsor's identifier systems and extensions ------------------------------------------------

STUDY_IDENTIFIER_SYSTEM = f"{LOCAL_SYSTEM_BASE}/sid/study-code"
CENTER_IDENTIFIER_SYSTEM = f"{LOCAL_SYSTEM_BASE}/sid/center-code"
SUBJECT_IDENTIFIER_SYSTEM = f"{LOCAL_SYSTEM_BASE}/sid/subject-code"
# The pathway state itself (ResearchSubjectStatus is coarser), a code of `domain.pathway.State`.
PATHWAY_STATE_EXTENSION = f"{LOCAL_SYSTEM_BASE}/StructureDefinition/pathway-state"
# R4's AdverseEvent has neither a grade nor an end date: the CTCAE grade (1-5) and the date the
# event ended travel as extensions.
CTCAE_GRADE_EXTENSION = f"{LOCAL_SYSTEM_BASE}/StructureDefinition/ctcae-grade"
AE_END_DATE_EXTENSION = f"{LOCAL_SYSTEM_BASE}/StructureDefinition/adverse-event-end-date"

# The ids: UUID v5 under one namespace derived from the sponsor's base URI (fixed forever).
RESOURCE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, LOCAL_SYSTEM_BASE)

# The study's single arm (the protocol has one: every included subject is to receive the product).
ARM_NAME = "CAR-T"
ARM_DESCRIPTION = (
    "Lymphodepletion (fludarabine and cyclophosphamide), then one infusion of autologous anti-CD19 CAR-T cells"
)

# --- FHIR value sets --------------------------------------------------------------------------------

# R4 ResearchSubjectStatus (http://hl7.org/fhir/research-subject-status, required binding) of each
# pathway state. Unused codes: not-registered, pending-on-study, potential-candidate (cartrial
# registers a subject before screening: it is an identified candidate).
RESEARCH_SUBJECT_STATUS: MappingProxyType[State, str] = MappingProxyType(
    {
        State.PRE_SCREENING: "candidate",
        State.SCREENING: "screening",
        State.ELIGIBLE: "eligible",
        State.SCREEN_FAILED: "ineligible",
        State.INCLUDED: "on-study",
        State.APHERESIS_SCHEDULED: "on-study",
        # From the collection of the cells that become the product to the day of infusion, the
        # subject is receiving the intervention under study.
        State.APHERESIS_COLLECTED: "on-study-intervention",
        State.MATERIAL_SHIPPED: "on-study-intervention",
        State.MANUFACTURING: "on-study-intervention",
        State.PRODUCT_RELEASED: "on-study-intervention",
        State.MANUFACTURING_FAILED: "on-study-intervention",
        State.PRODUCT_SHIPPED: "on-study-intervention",
        State.PRODUCT_RECEIVED: "on-study-intervention",
        State.LYMPHODEPLETION: "on-study-intervention",
        State.INFUSED: "on-study-intervention",
        # Assessed on the study calendar with no further intervention ("short-term follow-up").
        State.ACUTE_MONITORING: "on-study-observation",
        State.FOLLOW_UP: "on-study-observation",
        # Yearly contact to year 15: monitored on a protocol schedule, off the in-study assessments.
        State.LONG_TERM_FOLLOW_UP: "follow-up",
        State.COMPLETED: "off-study",
        # R4's `withdrawn` is a withdrawal before registration: see research_subject_status().
        State.WITHDRAWN: "off-study",
        State.LOST_TO_FOLLOW_UP: "off-study",
        State.DECEASED: "off-study",
    }
)
RESEARCH_SUBJECT_STATUS_WITHDRAWN_BEFORE_INCLUSION = "withdrawn"

# R4 ResearchStudyPhase (http://terminology.hl7.org/CodeSystem/research-study-phase) of the
# protocol's `study.phase`; another phase is written as text only.
RESEARCH_STUDY_PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"
RESEARCH_STUDY_PHASES: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "0": ("early-phase-1", "Early Phase 1"),
        "1": ("phase-1", "Phase 1"),
        "1/2": ("phase-1-phase-2", "Phase 1/Phase 2"),
        "2": ("phase-2", "Phase 2"),
        "2/3": ("phase-2-phase-3", "Phase 2/Phase 3"),
        "3": ("phase-3", "Phase 3"),
        "4": ("phase-4", "Phase 4"),
    }
)

# The screening form's sex → R4 AdministrativeGender.
PATIENT_GENDER: MappingProxyType[str, str] = MappingProxyType({"female": "female", "male": "male"})

# A Patient without identity is marked pseudonymised (HL7 v3 ObservationValue PSEUDED).
PSEUDONYMISED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}

OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
AE_SERIOUSNESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SEVERITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"

AE_SERIOUSNESS: MappingProxyType[bool, tuple[str, str]] = MappingProxyType(
    {True: ("serious", "Serious"), False: ("non-serious", "Non-serious")}
)
# R4 AdverseEventSeverity (required binding) from the CTCAE grade, through CDISC AESEV (one table).
AE_SEVERITY_DISPLAY: MappingProxyType[str, str] = MappingProxyType(
    {"mild": "Mild", "moderate": "Moderate", "severe": "Severe"}
)
# The AE's outcome → R4 AdverseEventOutcome.
AE_OUTCOME: MappingProxyType[Outcome, tuple[str, str]] = MappingProxyType(
    {
        Outcome.RECOVERED: ("resolved", "Resolved"),
        Outcome.RECOVERING: ("recovering", "Recovering"),
        Outcome.NOT_RECOVERED: ("ongoing", "Ongoing"),
        Outcome.RECOVERED_WITH_SEQUELAE: ("resolvedWithSequelae", "Resolved with Sequelae"),
        Outcome.FATAL: ("fatal", "Fatal"),
        Outcome.UNKNOWN: ("unknown", "Unknown"),
    }
)
RELATEDNESS_DISPLAY: MappingProxyType[Relatedness, str] = MappingProxyType(
    {
        Relatedness.NOT_RELATED: "Not related",
        Relatedness.UNLIKELY: "Unlikely",
        Relatedness.POSSIBLE: "Possible",
        Relatedness.PROBABLE: "Probable",
        Relatedness.DEFINITE: "Definite",
    }
)

# The lymphodepletion form's dose items, per drug of MEDICATION_CODINGS; an administration is
# written for each drug whose dose is recorded (the regimen `other` records none).
LYMPHODEPLETION_DOSE_ITEMS: MappingProxyType[str, str] = MappingProxyType(
    {"fludarabine": "fludarabine_mg_per_m2_per_day", "cyclophosphamide": "cyclophosphamide_mg_per_m2_per_day"}
)


# --- the plain data the builders read -----------------------------------------------------------------


@dataclass(frozen=True)
class FhirCenter:
    """A center (a hospital, or the manufacturing lab) as a Location."""

    code: str
    name: str
    city: str
    country: str
    active: bool


@dataclass(frozen=True)
class FhirStudy:
    """The protocol's study: code, English title, phase (`1/2`), start date, and the sites."""

    code: str
    title: str
    phase: str
    start: date
    sites: tuple[FhirCenter, ...]


@dataclass(frozen=True)
class PatientIdentity:
    """Who the patient is: written only for the subjects whose identity the export may carry."""

    family_name: str
    given_names: str
    birth_date: date


@dataclass(frozen=True)
class FhirSubject:
    """A subject: code, pathway state and the dates and facts its ResearchSubject and Patient need.

    `included`: the inclusion step was taken (a withdrawal before it is R4's `withdrawn`);
    `infused`: D0 took place (the arm was actually given); `start`: the consent's date (else the
    registration's); `exit_date`: the day a final state was reached; `sex`: the screening form's."""

    code: str
    state: State
    included: bool
    infused: bool
    start: date
    exit_date: date | None
    sex: str | None
    identity: PatientIdentity | None


@dataclass(frozen=True)
class FhirLab:
    """One stored lab result (`value` None: below the limit of quantification `loq`)."""

    key: str
    subject_code: str
    analyte: str
    value: float | None
    unit: str
    lower_limit: float | None
    upper_limit: float | None
    loq: float | None
    sampled_at: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class FhirScore:
    """One stored score (a key of SCORE_CODINGS) on a date; `final` False for a draft form."""

    key: str
    subject_code: str
    score: str
    value: float
    on: date
    final: bool


@dataclass(frozen=True)
class FhirAdverseEvent:
    """One AE and the administrations its relatedness is about (keys of FhirAdministration)."""

    key: str
    subject_code: str
    term: str
    ctcae_version: str
    grade: int
    serious: bool
    start_date: date
    end_date: date | None
    outcome: str
    recorded_at: datetime
    relatedness_cart: str
    relatedness_ld: str
    cart_administration_keys: tuple[str, ...]
    ld_administration_keys: tuple[str, ...]


@dataclass(frozen=True)
class FhirAdministration:
    """A medication given: a key of MEDICATION_CODINGS, when (an instant, or days), dose and unit."""

    key: str
    subject_code: str
    medication: str
    start: datetime | date
    end: date | None
    dose: float | None
    dose_unit: str
    text: str


# --- ids and references -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceIds:
    """The stable id of every resource of one study's bundles."""

    study_code: str

    def of(self, resource_type: str, key: str) -> str:
        """UUID v5 of the study, the resource type and the record's key."""
        return str(uuid.uuid5(RESOURCE_NAMESPACE, f"{self.study_code}/{resource_type}/{key}"))

    def study(self) -> str:
        return self.of("ResearchStudy", self.study_code)

    def location(self, center_code: str) -> str:
        return self.of("Location", center_code)

    def patient(self, subject_code: str) -> str:
        return self.of("Patient", subject_code)

    def research_subject(self, subject_code: str) -> str:
        return self.of("ResearchSubject", subject_code)

    def administration(self, key: str) -> str:
        return self.of("MedicationAdministration", key)


def reference(resource_id: str, display: str | None = None) -> dict[str, str]:
    """A reference to a resource of the same bundle, by its `urn:uuid:` full URL."""
    ref = {"reference": f"urn:uuid:{resource_id}"}
    if display:
        ref["display"] = display
    return ref


# --- builders -----------------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None, version: str | None = None) -> dict[str, str]:
    coding = {"system": system}
    if version:
        coding["version"] = version
    coding["code"] = code
    if display:
        coding["display"] = display
    return coding


def _quantity(value: float, unit: str, ucum: str | None) -> dict[str, Any]:
    """A Quantity in the unit people read, coded in UCUM when the unit has a UCUM code."""
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["unit"] = unit
    if ucum is not None:
        quantity |= {"system": UCUM_SYSTEM, "code": ucum}
    return quantity


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("FHIR instants carry a time zone: the clock gives aware datetimes only")
    return moment.isoformat()


def _when(moment: datetime | date) -> str:
    return _instant(moment) if isinstance(moment, datetime) else moment.isoformat()


def research_subject_status(state: State, *, included: bool) -> str:
    """The R4 ResearchSubjectStatus of a pathway state (a withdrawal before inclusion is `withdrawn`)."""
    if state is State.WITHDRAWN and not included:
        return RESEARCH_SUBJECT_STATUS_WITHDRAWN_BEFORE_INCLUSION
    return RESEARCH_SUBJECT_STATUS[state]


def location(center: FhirCenter, ids: ResourceIds) -> Resource:
    """A center as a Location (the ResearchStudy's sites point to them)."""
    return {
        "resourceType": "Location",
        "id": ids.location(center.code),
        "identifier": [{"system": CENTER_IDENTIFIER_SYSTEM, "value": center.code}],
        "status": "active" if center.active else "inactive",
        "name": center.name,
        "mode": "instance",
        "address": {"city": center.city, "country": center.country},
    }


def research_study(study: FhirStudy, ids: ResourceIds) -> Resource:
    """The study: identifier, title, status, phase, condition (SLE), sites and its one arm."""
    phase = RESEARCH_STUDY_PHASES.get(study.phase.strip())
    resource: Resource = {
        "resourceType": "ResearchStudy",
        "id": ids.study(),
        "identifier": [{"system": STUDY_IDENTIFIER_SYSTEM, "value": study.code}],
        "title": study.title,
        # The trial runs while cartrial records it; a closed study is not modelled yet.
        "status": "active",
        "phase": {"coding": [_coding(RESEARCH_STUDY_PHASE_SYSTEM, *phase)], "text": study.phase}
        if phase
        else {"text": study.phase},
        "condition": [{"coding": [_coding(SNOMED_SYSTEM, *CONDITION_SLE)], "text": CONDITION_SLE[1]}],
        "period": {"start": study.start.isoformat()},
        "arm": [{"name": ARM_NAME, "description": ARM_DESCRIPTION}],
    }
    if study.sites:
        resource["site"] = [reference(ids.location(c.code), c.name) for c in study.sites]
    return resource


def patient(subject: FhirSubject, ids: ResourceIds) -> Resource:
    """The patient: the subject code only (marked pseudonymised), name and birth date when allowed."""
    resource: Resource = {
        "resourceType": "Patient",
        "id": ids.patient(subject.code),
        "identifier": [{"use": "usual", "system": SUBJECT_IDENTIFIER_SYSTEM, "value": subject.code}],
    }
    identity = subject.identity
    if identity is None:
        resource["meta"] = {"security": [dict(PSEUDONYMISED)]}
    else:
        resource["name"] = [{"use": "official", "family": identity.family_name, "given": identity.given_names.split()}]
        resource["birthDate"] = identity.birth_date.isoformat()
    gender = PATIENT_GENDER.get(subject.sex or "")
    if gender is not None:
        resource["gender"] = gender
    return resource


def research_subject(subject: FhirSubject, ids: ResourceIds) -> Resource:
    """The subject in the study: status along the pathway, period, study, individual, arm."""
    period = {"start": subject.start.isoformat()}
    if subject.state in FINAL_STATES and subject.exit_date is not None:
        period["end"] = subject.exit_date.isoformat()
    resource: Resource = {
        "resourceType": "ResearchSubject",
        "id": ids.research_subject(subject.code),
        "extension": [{"url": PATHWAY_STATE_EXTENSION, "valueCode": subject.state.value}],
        "identifier": [{"system": SUBJECT_IDENTIFIER_SYSTEM, "value": subject.code}],
        "status": research_subject_status(subject.state, included=subject.included),
        "period": period,
        "study": reference(ids.study()),
        "individual": reference(ids.patient(subject.code)),
    }
    if subject.included:
        resource["assignedArm"] = ARM_NAME
    if subject.infused:
        resource["actualArm"] = ARM_NAME
    return resource


def lab_observation(lab: FhirLab, ids: ResourceIds) -> Resource:
    """A lab result: LOINC (for the unit reported) and the trial's analyte code, UCUM quantity,
    the lab's reference range; a result below the LoQ is `< LoQ`."""
    lab_coding = LAB_CODINGS.get(lab.analyte)
    codings = []
    loinc = lab_coding.loinc(lab.unit) if lab_coding else None
    if loinc is not None:
        codings.append(_coding(LOINC_SYSTEM, *loinc))
    name = lab_coding.lbtest if lab_coding else lab.analyte
    codings.append(_coding(LAB_ANALYTE_SYSTEM, lab.analyte, name))
    ucum = UCUM_BY_UNIT.get(lab.unit)
    if lab.value is not None:
        value = _quantity(lab.value, lab.unit, ucum)
    elif lab.loq is not None:
        value = _quantity(lab.loq, lab.unit, ucum) | {"comparator": "<"}
    else:
        raise ValueError(f"lab result {lab.key} has neither a value nor a limit of quantification")
    resource: Resource = {
        "resourceType": "Observation",
        "id": ids.of("Observation", lab.key),
        "status": "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY_SYSTEM, "laboratory", "Laboratory")]}],
        "code": {"coding": codings, "text": name},
        "subject": reference(ids.patient(lab.subject_code), lab.subject_code),
        "effectiveDateTime": _instant(lab.sampled_at),
        "issued": _instant(lab.recorded_at),
        "valueQuantity": value,
    }
    limits = {
        side: _quantity(limit, lab.unit, ucum)
        for side, limit in (("low", lab.lower_limit), ("high", lab.upper_limit))
        if limit is not None
    }
    if limits:
        resource["referenceRange"] = [limits]
    return resource


def score_observation(score: FhirScore, ids: ResourceIds) -> Resource:
    """A clinical score: the sponsor's score code, an integer (or a `{score}` quantity) on its date."""
    coding = SCORE_CODINGS[score.score]
    resource: Resource = {
        "resourceType": "Observation",
        "id": ids.of("Observation", score.key),
        "status": "final" if score.final else "preliminary",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY_SYSTEM, "survey", "Survey")]}],
        "code": {"coding": [_coding(SCORE_SYSTEM, coding.code, coding.display)], "text": coding.display},
        "subject": reference(ids.patient(score.subject_code), score.subject_code),
        "effectiveDateTime": score.on.isoformat(),
    }
    if coding.integer and float(score.value).is_integer():
        resource["valueInteger"] = int(score.value)
    else:
        resource["valueQuantity"] = _quantity(score.value, SCORE_UCUM, SCORE_UCUM)
    return resource


def _relatedness(value: str, administration_keys: tuple[str, ...], ids: ResourceIds) -> list[Resource]:
    if not value or not administration_keys:
        return []
    concept = {"coding": [_coding(RELATEDNESS_SYSTEM, value, RELATEDNESS_DISPLAY.get(Relatedness(value)))]}
    return [
        {"instance": reference(ids.administration(key)), "causality": [{"assessment": concept}]}
        for key in administration_keys
    ]


def adverse_event(event: FhirAdverseEvent, ids: ResourceIds) -> Resource:
    """An AE: MedDRA and CTCAE term, seriousness, severity (and CTCAE grade), dates, outcome, the
    study, and the relatedness to the CAR-T and lymphodepletion administrations."""
    term = term_list().terms.get(event.term)
    label = term.label["en"] if term else event.term
    codings = []
    if term is not None and term.meddra_code is not None:
        codings.append(_coding(MEDDRA_SYSTEM, str(term.meddra_code), label))
    codings.append(_coding(CTCAE_TERM_SYSTEM, event.term, label, event.ctcae_version))
    extensions: list[Resource] = [{"url": CTCAE_GRADE_EXTENSION, "valueInteger": event.grade}]
    if event.end_date is not None:
        extensions.append({"url": AE_END_DATE_EXTENSION, "valueDate": event.end_date.isoformat()})
    severity = AE_SEVERITY_BY_GRADE[event.grade].lower()
    resource: Resource = {
        "resourceType": "AdverseEvent",
        "id": ids.of("AdverseEvent", event.key),
        "extension": extensions,
        "actuality": "actual",
        "event": {"coding": codings, "text": label},
        "subject": reference(ids.patient(event.subject_code), event.subject_code),
        "date": event.start_date.isoformat(),
        "recordedDate": _instant(event.recorded_at),
        "seriousness": {"coding": [_coding(AE_SERIOUSNESS_SYSTEM, *AE_SERIOUSNESS[event.serious])]},
        "severity": {"coding": [_coding(AE_SEVERITY_SYSTEM, severity, AE_SEVERITY_DISPLAY[severity])]},
        "outcome": {"coding": [_coding(AE_OUTCOME_SYSTEM, *AE_OUTCOME[Outcome(event.outcome)])]},
        "study": [reference(ids.study())],
    }
    suspects = _relatedness(event.relatedness_cart, event.cart_administration_keys, ids) + _relatedness(
        event.relatedness_ld, event.ld_administration_keys, ids
    )
    if suspects:
        resource["suspectEntity"] = suspects
    return resource


def medication_administration(given: FhirAdministration, ids: ResourceIds) -> Resource:
    """A medication given intravenously: ATC or the sponsor's code, when, dose in UCUM."""
    medication = MEDICATION_CODINGS[given.medication]
    codings = [_coding(ATC_SYSTEM, medication.atc, medication.display)] if medication.atc else []
    codings.append(_coding(MEDICATION_SYSTEM, medication.code, medication.display))
    dosage: Resource = {"text": given.text, "route": {"coding": [_coding(SNOMED_SYSTEM, *ROUTE_INTRAVENOUS)]}}
    if given.dose is not None:
        dosage["dose"] = _quantity(given.dose, given.dose_unit, DOSE_UCUM_BY_UNIT.get(given.dose_unit))
    resource: Resource = {
        "resourceType": "MedicationAdministration",
        "id": ids.administration(given.key),
        "status": "completed",
        "medicationCodeableConcept": {"coding": codings, "text": medication.display},
        "subject": reference(ids.patient(given.subject_code), given.subject_code),
    }
    if given.end is not None:
        resource["effectivePeriod"] = {"start": _when(given.start), "end": given.end.isoformat()}
    else:
        resource["effectiveDateTime"] = _when(given.start)
    resource["dosage"] = dosage
    return resource


def item_number(stored: Any) -> float | None:
    """A saved form item's number: stored plain, or as the `value` of a lab item saved with its
    unit and limits; None for anything else (empty, text, a yes/no)."""
    value = stored.get("value") if isinstance(stored, dict) else stored
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _amount(value: float, unit: str) -> str:
    """A dose as people write it: 1000000 cells/kg, 25 mg/m²/day, 0.5 mg."""
    number = f"{int(value)}" if value.is_integer() else f"{value:g}"
    return f"{number} {unit}".strip()


def infusion_administration(
    key: str, subject_code: str, infused_at: datetime, dose: float | None, dose_unit: str
) -> FhirAdministration:
    """The CAR-T infusion at its recorded instant, with the dose the infusion form holds (if any)."""
    amount = dose
    label = MEDICATION_CODINGS["car_t"].display
    return FhirAdministration(
        key=key,
        subject_code=subject_code,
        medication="car_t",
        start=infused_at,
        end=None,
        dose=amount,
        dose_unit=dose_unit,
        text=f"{label}, {_amount(amount, dose_unit)}" if amount is not None else label,
    )


def lymphodepletion_administrations(
    key: str, subject_code: str, values: Mapping[str, Any], units: Mapping[str, str]
) -> list[FhirAdministration]:
    """The drugs of a saved lymphodepletion form (`units`: the form's unit of each item), one
    administration each over its days of chemotherapy from `start_date` (none without a start date)."""
    start_text = values.get("start_date")
    if not isinstance(start_text, str):
        return []
    start = date.fromisoformat(start_text)
    days = item_number(values.get("days"))
    end = start + timedelta(days=int(days) - 1) if days is not None and days >= 1 else None
    given = []
    for drug, item in LYMPHODEPLETION_DOSE_ITEMS.items():
        dose = item_number(values.get(item))
        if dose is None:
            continue
        unit = units.get(item, "")
        length = f" for {int(days)} days" if end is not None and days is not None else ""
        given.append(
            FhirAdministration(
                key=f"{key}/{drug}",
                subject_code=subject_code,
                medication=drug,
                start=start,
                end=end,
                dose=dose,
                dose_unit=unit,
                text=f"{MEDICATION_CODINGS[drug].display} {_amount(dose, unit)}{length}",
            )
        )
    return given


# --- the bundle -----------------------------------------------------------------------------------


def bundle_entry(resource: Resource) -> Resource:
    """An entry of a collection bundle: the resource under its `urn:uuid:` full URL."""
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def bundle_chunks(*, ids: ResourceIds, timestamp: datetime, resources: Iterable[Resource]) -> Iterator[str]:
    """The Bundle (type `collection`) as JSON text, one piece at a time: the caller writes each piece
    as it comes, so the resources are never all in memory. An empty collection has no `entry`."""
    stamp = _instant(timestamp)
    head = _json(
        {
            "resourceType": "Bundle",
            "id": ids.of("Bundle", stamp),
            "meta": {"lastUpdated": stamp},
            "type": "collection",
            "timestamp": stamp,
        }
    )
    pieces = iter(resources)
    first = next(pieces, None)
    if first is None:
        yield head + "\n"
        return
    yield head[:-1] + ',"entry":[\n' + _json(bundle_entry(first))
    for resource in pieces:
        yield ",\n" + _json(bundle_entry(resource))
    yield "\n]}\n"
