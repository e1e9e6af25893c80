"""The FHIR R4 builders over plain data: each resource validated by the R4B models of fhir.resources,
and the codes (which the models do not check) tested against the terminology table and the R4 value
sets as fhir.resources declares them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject

from cartrial.domain.lab_catalogue import ANALYTES
from cartrial.domain.pathway import FINAL_STATES, State
from cartrial.domain.safety.adverse_events import Outcome, Relatedness
from cartrial.domain.safety.terms import term_list
from cartrial.domain.standards import fhir
from cartrial.domain.standards.fhir import (
    FhirAdverseEvent,
    FhirCenter,
    FhirLab,
    FhirScore,
    FhirStudy,
    FhirSubject,
    PatientIdentity,
    ResourceIds,
)
from cartrial.domain.standards.terminology import (
    AE_SEVERITY_BY_GRADE,
    ATC_SYSTEM,
    CTCAE_TERM_SYSTEM,
    LAB_ANALYTE_SYSTEM,
    LAB_CODINGS,
    LOINC_SYSTEM,
    MEDDRA_SYSTEM,
    RELATEDNESS_SYSTEM,
    SCORE_CODINGS,
    SCORE_SYSTEM,
    SEX_CODES,
    UCUM_BY_UNIT,
    UCUM_SYSTEM,
)

IDS = ResourceIds("CARTLUP-12")
BDX = FhirCenter("BDX", "CHU de Bordeaux", "Bordeaux", "FR", True)
STUDY = FhirStudy("CARTLUP-12", "Anti-CD19 CAR-T in SLE", "1/2", date(2026, 1, 15), (BDX,))
SUBJECT = FhirSubject(
    code="BDX-001",
    state=State.FOLLOW_UP,
    included=True,
    infused=True,
    start=date(2026, 2, 1),
    exit_date=None,
    sex="female",
    identity=None,
)
IDENTITY = PatientIdentity("Martin", "Anne Marie", date(1985, 3, 14))
SAMPLED = datetime(2026, 5, 4, 7, 30, tzinfo=UTC)


def lab(analyte: str = "creatinine", unit: str = "umol/L", value: float | None = 71.0, **changes: Any) -> FhirLab:
    base = FhirLab(
        key="lab_observation/1",
        subject_code="BDX-001",
        analyte=analyte,
        value=value,
        unit=unit,
        lower_limit=45.0,
        upper_limit=90.0,
        loq=None,
        sampled_at=SAMPLED,
        recorded_at=SAMPLED + timedelta(hours=2),
    )
    return replace(base, **changes)


def ae(**changes: Any) -> FhirAdverseEvent:
    base = FhirAdverseEvent(
        key="adverse_event/7",
        subject_code="BDX-001",
        term="cytokine_release_syndrome",
        ctcae_version="5.0",
        grade=2,
        serious=False,
        start_date=date(2026, 5, 5),
        end_date=date(2026, 5, 8),
        outcome=Outcome.RECOVERED.value,
        recorded_at=SAMPLED,
        relatedness_cart=Relatedness.PROBABLE.value,
        relatedness_ld=Relatedness.UNLIKELY.value,
        cart_administration_keys=("infusion/3",),
        ld_administration_keys=("form_record/9/fludarabine", "form_record/9/cyclophosphamide"),
    )
    return replace(base, **changes)


def codes_of(concept: dict[str, Any], system: str) -> list[str]:
    return [coding["code"] for coding in concept["coding"] if coding["system"] == system]


def research_subject_statuses() -> list[str]:
    """The R4 ResearchSubjectStatus value set, as the R4B model declares it (not our table)."""
    extra = ResearchSubject.model_fields["status"].json_schema_extra
    assert isinstance(extra, dict)
    values = extra["enum_values"]
    assert isinstance(values, list)
    return [str(v) for v in values]


# --- ResearchSubject: the pathway's states in the R4 value set --------------------------------------


def test_every_pathway_state_has_a_status_of_the_r4_value_set() -> None:
    allowed = set(research_subject_statuses())
    assert len(allowed) == 13
    for state in State:
        for included in (True, False):
            assert fhir.research_subject_status(state, included=included) in allowed, state


@pytest.mark.parametrize(
    ("state", "included", "status"),
    [
        (State.PRE_SCREENING, False, "candidate"),
        (State.SCREENING, False, "screening"),
        (State.ELIGIBLE, False, "eligible"),
        (State.SCREEN_FAILED, False, "ineligible"),
        (State.INCLUDED, True, "on-study"),
        (State.MANUFACTURING, True, "on-study-intervention"),
        (State.INFUSED, True, "on-study-intervention"),
        (State.ACUTE_MONITORING, True, "on-study-observation"),
        (State.LONG_TERM_FOLLOW_UP, True, "follow-up"),
        (State.COMPLETED, True, "off-study"),
        (State.WITHDRAWN, True, "off-study"),
        (State.WITHDRAWN, False, "withdrawn"),
        (State.DECEASED, True, "off-study"),
    ],
)
def test_status_along_the_pathway(state: State, included: bool, status: str) -> None:
    resource = fhir.research_subject(replace(SUBJECT, state=state, included=included), IDS)
    assert resource["status"] == status
    assert resource["extension"] == [{"url": fhir.PATHWAY_STATE_EXTENSION, "valueCode": state.value}]
    ResearchSubject.model_validate(resource)


def test_research_subject_points_to_its_study_and_patient_and_ends_in_a_final_state() -> None:
    withdrawn = replace(SUBJECT, state=State.WITHDRAWN, exit_date=date(2026, 6, 1))
    resource = fhir.research_subject(withdrawn, IDS)
    assert resource["study"]["reference"] == f"urn:uuid:{IDS.study()}"
    assert resource["individual"]["reference"] == f"urn:uuid:{IDS.patient('BDX-001')}"
    assert resource["period"] == {"start": "2026-02-01", "end": "2026-06-01"}
    assert resource["assignedArm"] == resource["actualArm"] == fhir.ARM_NAME
    assert State.WITHDRAWN in FINAL_STATES
    ongoing = fhir.research_subject(replace(SUBJECT, included=False, infused=False, exit_date=None), IDS)
    assert "end" not in ongoing["period"]
    assert "assignedArm" not in ongoing and "actualArm" not in ongoing


# --- ResearchStudy and Location -------------------------------------------------------------------


def test_research_study_carries_phase_condition_sites_and_arm() -> None:
    resource = fhir.research_study(STUDY, IDS)
    ResearchStudy.model_validate(resource)
    assert codes_of(resource["phase"], fhir.RESEARCH_STUDY_PHASE_SYSTEM) == ["phase-1-phase-2"]
    assert codes_of(resource["condition"][0], "http://snomed.info/sct") == ["55464009"]
    assert resource["site"] == [{"reference": f"urn:uuid:{IDS.location('BDX')}", "display": "CHU de Bordeaux"}]
    assert resource["arm"][0]["name"] == fhir.ARM_NAME
    assert resource["identifier"][0]["value"] == "CARTLUP-12"


def test_an_unknown_phase_is_text_only_and_no_site_is_no_site_element() -> None:
    resource = fhir.research_study(replace(STUDY, phase="pilot", sites=()), IDS)
    ResearchStudy.model_validate(resource)
    assert resource["phase"] == {"text": "pilot"}
    assert "site" not in resource


def test_location_of_a_center() -> None:
    resource = fhir.location(replace(BDX, active=False), IDS)
    Location.model_validate(resource)
    assert resource["id"] == IDS.location("BDX")
    assert resource["status"] == "inactive"
    assert resource["address"] == {"city": "Bordeaux", "country": "FR"}


# --- Patient: pseudonymous unless identity is given -------------------------------------------------


def test_patient_without_identity_is_pseudonymous() -> None:
    resource = fhir.patient(SUBJECT, IDS)
    Patient.model_validate(resource)
    assert "name" not in resource and "birthDate" not in resource
    assert resource["meta"]["security"][0]["code"] == "PSEUDED"
    assert resource["identifier"][0]["value"] == "BDX-001"
    assert resource["gender"] == "female"


def test_patient_with_identity_has_name_and_birth_date() -> None:
    resource = fhir.patient(replace(SUBJECT, identity=IDENTITY, sex="male"), IDS)
    Patient.model_validate(resource)
    assert resource["name"] == [{"use": "official", "family": "Martin", "given": ["Anne", "Marie"]}]
    assert resource["birthDate"] == "1985-03-14"
    assert resource["gender"] == "male"
    assert "meta" not in resource


def test_gender_comes_from_the_screening_sex_and_is_left_out_when_not_recorded() -> None:
    assert set(fhir.PATIENT_GENDER) == set(SEX_CODES)
    assert "gender" not in fhir.patient(replace(SUBJECT, sex=None), IDS)


# --- Observations: LOINC and UCUM from the terminology table -----------------------------------------


@pytest.mark.parametrize(("analyte", "unit"), [(a, u) for a, spec in ANALYTES.items() for u in spec.units])
def test_every_lab_of_the_catalogue_is_a_valid_observation_with_its_codes(analyte: str, unit: str) -> None:
    resource = fhir.lab_observation(lab(analyte, unit, 1.5), IDS)
    Observation.model_validate(resource)
    loinc = LAB_CODINGS[analyte].loinc(unit)
    expected_loinc = [loinc[0]] if loinc else []
    assert codes_of(resource["code"], LOINC_SYSTEM) == expected_loinc
    assert codes_of(resource["code"], LAB_ANALYTE_SYSTEM) == [analyte]
    quantity = resource["valueQuantity"]
    assert (quantity["system"], quantity["code"], quantity["unit"]) == (UCUM_SYSTEM, UCUM_BY_UNIT[unit], unit)
    assert resource["referenceRange"][0]["low"]["code"] == UCUM_BY_UNIT[unit]


def test_car_t_cells_have_no_loinc_and_keep_the_local_code() -> None:
    resource = fhir.lab_observation(lab("car_t", "copies/µg", 120.0), IDS)
    assert codes_of(resource["code"], LOINC_SYSTEM) == []
    assert resource["valueQuantity"]["code"] == "{copies}/ug"


def test_a_result_below_the_limit_of_quantification_is_less_than_the_limit() -> None:
    resource = fhir.lab_observation(lab(value=None, loq=10.0, lower_limit=None, upper_limit=None), IDS)
    Observation.model_validate(resource)
    assert resource["valueQuantity"]["comparator"] == "<"
    assert resource["valueQuantity"]["value"] == 10.0
    assert "referenceRange" not in resource
    assert resource["effectiveDateTime"] == "2026-05-04T07:30:00+00:00"


def test_scores_have_the_score_system_and_an_integer_or_a_score_quantity() -> None:
    sledai = FhirScore("form_record/4/sledai2k_score", "BDX-001", "sledai2k_score", 12.0, date(2026, 5, 4), True)
    resource = fhir.score_observation(sledai, IDS)
    Observation.model_validate(resource)
    assert codes_of(resource["code"], SCORE_SYSTEM) == [SCORE_CODINGS["sledai2k_score"].code]
    assert resource["valueInteger"] == 12
    assert resource["status"] == "final"
    pga = replace(sledai, key="form_record/4/pga", score="physician_global_assessment", value=2.2, final=False)
    resource = fhir.score_observation(pga, IDS)
    Observation.model_validate(resource)
    assert resource["valueQuantity"] == {"value": 2.2, "unit": "{score}", "system": UCUM_SYSTEM, "code": "{score}"}
    assert resource["status"] == "preliminary"


# --- AdverseEvent -------------------------------------------------------------------------------------


@pytest.mark.parametrize("grade", [1, 2, 3, 4, 5])
def test_adverse_event_severity_and_grade(grade: int) -> None:
    resource = fhir.adverse_event(ae(grade=grade), IDS)
    AdverseEvent.model_validate(resource)
    assert codes_of(resource["severity"], fhir.AE_SEVERITY_SYSTEM) == [AE_SEVERITY_BY_GRADE[grade].lower()]
    assert codes_of(resource["severity"], fhir.AE_SEVERITY_SYSTEM)[0] in {"mild", "moderate", "severe"}
    assert {"url": fhir.CTCAE_GRADE_EXTENSION, "valueInteger": grade} in resource["extension"]


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_is_in_the_r4_outcome_codes(outcome: Outcome) -> None:
    resource = fhir.adverse_event(ae(outcome=outcome.value), IDS)
    r4_outcomes = {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"}
    assert codes_of(resource["outcome"], fhir.AE_OUTCOME_SYSTEM)[0] in r4_outcomes


def test_adverse_event_codes_term_seriousness_subject_and_suspects() -> None:
    resource = fhir.adverse_event(ae(serious=True), IDS)
    AdverseEvent.model_validate(resource)
    term = term_list().terms["cytokine_release_syndrome"]
    assert codes_of(resource["event"], MEDDRA_SYSTEM) == [str(term.meddra_code)]
    assert codes_of(resource["event"], CTCAE_TERM_SYSTEM) == ["cytokine_release_syndrome"]
    assert codes_of(resource["seriousness"], fhir.AE_SERIOUSNESS_SYSTEM) == ["serious"]
    assert resource["subject"]["reference"] == f"urn:uuid:{IDS.patient('BDX-001')}"
    assert resource["date"] == "2026-05-05"
    suspects = {
        suspect["instance"]["reference"]: codes_of(suspect["causality"][0]["assessment"], RELATEDNESS_SYSTEM)
        for suspect in resource["suspectEntity"]
    }
    assert suspects == {
        f"urn:uuid:{IDS.administration('infusion/3')}": ["probable"],
        f"urn:uuid:{IDS.administration('form_record/9/fludarabine')}": ["unlikely"],
        f"urn:uuid:{IDS.administration('form_record/9/cyclophosphamide')}": ["unlikely"],
    }


def test_a_term_without_meddra_code_and_an_event_before_any_administration() -> None:
    resource = fhir.adverse_event(
        ae(term="icans", end_date=None, cart_administration_keys=(), ld_administration_keys=()), IDS
    )
    AdverseEvent.model_validate(resource)
    assert codes_of(resource["event"], MEDDRA_SYSTEM) == []
    assert codes_of(resource["seriousness"], fhir.AE_SERIOUSNESS_SYSTEM) == ["non-serious"]
    assert "suspectEntity" not in resource
    assert [e["url"] for e in resource["extension"]] == [fhir.CTCAE_GRADE_EXTENSION]


# --- MedicationAdministration ---------------------------------------------------------------------


def test_car_t_infusion() -> None:
    given = fhir.infusion_administration("infusion/3", "BDX-001", SAMPLED, 1_000_000.0, "cells/kg")
    resource = fhir.medication_administration(given, IDS)
    MedicationAdministration.model_validate(resource)
    assert resource["id"] == IDS.administration("infusion/3")
    assert resource["effectiveDateTime"] == "2026-05-04T07:30:00+00:00"
    assert resource["dosage"]["dose"] == {
        "value": 1_000_000.0,
        "unit": "cells/kg",
        "system": UCUM_SYSTEM,
        "code": "{cells}/kg",
    }
    assert "1000000 cells/kg" in resource["dosage"]["text"]
    assert codes_of(resource["dosage"]["route"], "http://snomed.info/sct") == ["47625008"]


def test_lymphodepletion_gives_one_administration_per_drug_over_its_days() -> None:
    units = {item: "mg/m²/day" for item in fhir.LYMPHODEPLETION_DOSE_ITEMS.values()}
    values = {
        "regimen": "flu_cy",
        "fludarabine_mg_per_m2_per_day": 25.0,
        "cyclophosphamide_mg_per_m2_per_day": 250.0,
        "days": 3,
        "start_date": "2026-04-27",
    }
    given = fhir.lymphodepletion_administrations("form_record/9", "BDX-001", values, units)
    assert [g.medication for g in given] == ["fludarabine", "cyclophosphamide"]
    for administration in given:
        resource = fhir.medication_administration(administration, IDS)
        MedicationAdministration.model_validate(resource)
        assert resource["effectivePeriod"] == {"start": "2026-04-27", "end": "2026-04-29"}
        assert resource["dosage"]["dose"]["code"] == "mg/m2/d"
    atc = [codes_of(fhir.medication_administration(g, IDS)["medicationCodeableConcept"], ATC_SYSTEM) for g in given]
    assert atc == [["L01BB05"], ["L01AA01"]]
    cy_only = {k: v for k, v in values.items() if not k.startswith("fludarabine")} | {"regimen": "cy_only"}
    assert [g.medication for g in fhir.lymphodepletion_administrations("form_record/9", "BDX-001", cy_only, units)] == [
        "cyclophosphamide"
    ]
    assert fhir.lymphodepletion_administrations("form_record/9", "BDX-001", {"days": 3}, units) == []


# --- ids and the bundle ---------------------------------------------------------------------------


def test_ids_are_uuid5_stable_and_distinct_per_type_and_record() -> None:
    first = IDS.of("Observation", "lab_observation/1")
    assert first == ResourceIds("CARTLUP-12").of("Observation", "lab_observation/1")
    assert uuid.UUID(first).version == 5
    others = {
        IDS.of("Observation", "lab_observation/2"),
        IDS.of("AdverseEvent", "lab_observation/1"),
        ResourceIds("OTHER").of("Observation", "lab_observation/1"),
    }
    assert first not in others and len(others) == 3


def _bundle(resources: list[dict[str, Any]]) -> str:
    return "".join(fhir.bundle_chunks(ids=IDS, timestamp=SAMPLED, resources=resources))


def test_bundle_is_a_valid_collection_with_urn_uuid_full_urls() -> None:
    resources = [
        fhir.research_study(STUDY, IDS),
        fhir.location(BDX, IDS),
        fhir.patient(SUBJECT, IDS),
        fhir.research_subject(SUBJECT, IDS),
        fhir.lab_observation(lab(), IDS),
        fhir.adverse_event(ae(), IDS),
    ]
    text = _bundle(resources)
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    data = json.loads(text)
    assert [e["fullUrl"] for e in data["entry"]] == [f"urn:uuid:{r['id']}" for r in resources]
    assert [e["resource"] for e in data["entry"]] == resources
    assert data["timestamp"] == "2026-05-04T07:30:00+00:00"


def test_an_empty_bundle_has_no_entry_array() -> None:
    text = _bundle([])
    Bundle.model_validate_json(text)
    assert "entry" not in json.loads(text)


def test_the_bundle_is_written_as_the_resources_come() -> None:
    taken: list[int] = []

    def resources() -> Iterator[dict[str, Any]]:
        for number in range(1000):
            taken.append(number)
            yield fhir.lab_observation(lab(key=f"lab_observation/{number}"), IDS)

    pieces = fhir.bundle_chunks(ids=IDS, timestamp=SAMPLED, resources=resources())
    next(pieces)
    next(pieces)
    assert len(taken) == 2  # two pieces out, two resources read: never the whole list
    rest = "".join(pieces)
    assert len(taken) == 1000 and rest.endswith("]}\n")


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        fhir.lab_observation(lab(sampled_at=datetime(2026, 5, 4, 7, 30)), IDS)
