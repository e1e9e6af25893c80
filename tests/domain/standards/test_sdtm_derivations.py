"""SDTM derivations over plain data (domain/standards/sdtm.py): each rule of docs/exports.md on a
subject built by hand, the expected values worked out from the rule, not read back from the code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartrial.domain.errors import Refused
from cartrial.domain.standards.sdtm import (
    AdverseEventRecord,
    LabResult,
    PathwayStep,
    StudyDesign,
    SubjectRecord,
    VisitOccurrence,
    domain_rows,
    study_day,
    subject_rows,
    trial_arms,
    trial_elements,
    trial_summary,
)
from cartrial.domain.standards.sdtm_metadata import DATASETS_BY_NAME, row_values
from cartrial.protocols import active_protocol

PROTOCOL = active_protocol()
STUDY = StudyDesign(
    study_id="CARTLUP-12",
    title="A trial",
    sponsor="A sponsor",
    phase="1/2",
    visits=PROTOCOL.visits,
    follow_up_months=24,
    long_term_follow_up_years=15,
    age_range=(18, 65),
    lymphodepletion_days=3,
)
PARIS = "Europe/Paris"


def at(text: str) -> datetime:
    """An instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def step(name: str, when: str, reason: str = "", **details: object) -> PathwayStep:
    return PathwayStep(name, at(when), reason, details)


SCREENING = step("start_screening", "2026-01-05T09:00")
INCLUSION = step("include", "2026-02-02T10:00")
LD_FORM = {
    "regimen": "flu_cy",
    "fludarabine_mg_per_m2_per_day": 25,
    "cyclophosphamide_mg_per_m2_per_day": 250,
    "days": 3,
    "start_date": "2026-03-05",
}
INFUSED = SubjectRecord(
    code="PAR-001",
    center_code="PAR",
    country="FR",
    time_zone=PARIS,
    sex="female",
    birth_date=date(1990, 6, 15),
    consent_dates=(date(2026, 1, 5),),
    steps=(SCREENING, INCLUSION, step("infuse", "2026-03-10T08:30")),
    # 08:30 UTC is 09:30 in Paris in March (UTC+1).
    infusions=(at("2026-03-10T08:30"),),
    forms={
        "lymphodepletion": {"LD": LD_FORM},
        "infusion": {"D0": {"dose_cells_per_kg": 1_000_000.0, "infusion_date": "2026-03-10"}},
    },
    visits=(VisitOccurrence("SCR", date(2026, 1, 6)), VisitOccurrence("D0", date(2026, 3, 10))),
)


def one(domain: str, record: SubjectRecord = INFUSED) -> dict[str, object]:
    rows = domain_rows(domain, STUDY, record)
    assert len(rows) == 1, rows
    return rows[0]


# --- study day and identifiers ---------------------------------------------------------------------


def test_study_day_has_no_day_zero() -> None:
    reference = date(2026, 3, 10)
    assert study_day(date(2026, 3, 10), reference) == 1
    assert study_day(date(2026, 3, 11), reference) == 2
    assert study_day(date(2026, 3, 9), reference) == -1
    assert study_day(date(2026, 3, 5), reference) == -5
    assert study_day(None, reference) is None
    assert study_day(date(2026, 3, 5), None) is None


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
def test_study_day_is_never_zero_and_keeps_the_order(on: date) -> None:
    reference = date(2026, 3, 10)
    day = study_day(on, reference)
    assert day != 0
    assert (day is not None and day > 0) == (on >= reference)


# --- DM -------------------------------------------------------------------------------------------


def test_dm_of_an_infused_subject() -> None:
    dm = one("DM")
    assert dm["USUBJID"] == "CARTLUP-12-PAR-001" and dm["SUBJID"] == "PAR-001" and dm["SITEID"] == "PAR"
    # The infusion in center time (Paris, UTC+1 in March), to the minute.
    assert dm["RFSTDTC"] == "2026-03-10T09:30"
    # First exposure: the first day of lymphodepletion; last: the infusion.
    assert dm["RFXSTDTC"] == "2026-03-05" and dm["RFXENDTC"] == "2026-03-10T09:30"
    assert dm["RFICDTC"] == "2026-01-05"
    assert dm["RFENDTC"] is None and dm["RFPENDTC"] is None
    assert (dm["ARMCD"], dm["ACTARMCD"], dm["ARMNRS"]) == ("CART", "CART", None)
    assert (dm["SEX"], dm["COUNTRY"], dm["AGEU"]) == ("F", "FRA", "YEARS")
    # Born 1990-06-15, consented 2026-01-05: 35 completed years.
    assert dm["AGE"] == 35
    assert dm["RACE"] is None and dm["DTHFL"] is None


def test_age_counts_completed_years_at_the_consent() -> None:
    on_birthday = replace(INFUSED, consent_dates=(date(2026, 6, 15),))
    day_before = replace(INFUSED, consent_dates=(date(2026, 6, 14),))
    assert one("DM", on_birthday)["AGE"] == 36
    assert one("DM", day_before)["AGE"] == 35
    unknown = one("DM", replace(INFUSED, birth_date=None))
    assert unknown["AGE"] is None and unknown["AGEU"] is None


@pytest.mark.parametrize(("sex", "code"), [("female", "F"), ("male", "M"), (None, "U")])
def test_sex_takes_the_cdisc_codes(sex: str | None, code: str) -> None:
    assert one("DM", replace(INFUSED, sex=sex))["SEX"] == code


def test_the_reference_start_is_in_the_centers_time_zone() -> None:
    # 01:48 UTC on 22 November is 20:48 on the 21st in Montréal (UTC-5).
    montreal = replace(INFUSED, country="CA", time_zone="America/Toronto", infusions=(at("2024-11-22T01:48"),))
    dm = one("DM", montreal)
    assert dm["RFSTDTC"] == "2024-11-21T20:48" and dm["COUNTRY"] == "CAN"


def test_an_unknown_country_is_refused_naming_the_center() -> None:
    with pytest.raises(Refused) as refused:
        one("DM", replace(INFUSED, country="ZZ"))
    assert refused.value.code == "sdtm_country_unknown" and refused.value.item == "DM.COUNTRY"
    assert refused.value.params["center"] == "PAR"


def test_arm_and_why_it_is_empty() -> None:
    screening = replace(INFUSED, steps=(SCREENING,), infusions=(), forms={})
    failed = replace(screening, steps=(SCREENING, step("fail_screening", "2026-01-20T10:00", "CD3+ too low")))
    included = replace(screening, steps=(SCREENING, INCLUSION))
    rows = {name: one("DM", record) for name, record in (("s", screening), ("f", failed), ("i", included))}
    assert (rows["s"]["ARMCD"], rows["s"]["ARMNRS"]) == (None, "NOT ASSIGNED")
    assert (rows["f"]["ARMCD"], rows["f"]["ARMNRS"], rows["f"]["RFPENDTC"]) == (None, "SCREEN FAILURE", "2026-01-20")
    # A screen failure is not a reference end (the subject was never in the study's treatment).
    assert rows["f"]["RFENDTC"] is None
    assert (rows["i"]["ARMCD"], rows["i"]["ACTARMCD"], rows["i"]["ARMNRS"]) == ("CART", None, "ASSIGNED, NOT TREATED")
    assert rows["i"]["RFSTDTC"] is None and rows["i"]["RFXSTDTC"] is None


def test_death_gives_the_death_date_and_flag() -> None:
    died = replace(INFUSED, steps=(*INFUSED.steps, step("record_death", "2026-04-03T07:00", death_date="2026-04-01")))
    dm = one("DM", died)
    assert (dm["DTHFL"], dm["DTHDTC"], dm["RFENDTC"], dm["RFPENDTC"]) == ("Y", "2026-04-01", "2026-04-01", "2026-04-01")


# --- DS -------------------------------------------------------------------------------------------


def test_ds_holds_the_milestones_and_the_exit_in_date_order() -> None:
    withdrawn = replace(
        INFUSED,
        steps=(
            *INFUSED.steps,
            step("withdraw", "2026-05-02T09:00", "Consent withdrawn: moving abroad", consent_withdrawn_on="2026-04-30"),
        ),
    )
    rows = domain_rows("DS", STUDY, withdrawn)
    assert [(r["DSDECOD"], r["DSCAT"], r["DSSTDTC"]) for r in rows] == [
        ("INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", "2026-01-05"),
        ("ENROLLED", "PROTOCOL MILESTONE", "2026-02-02"),
        ("CAR-T CELLS INFUSED", "PROTOCOL MILESTONE", "2026-03-10"),
        ("WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT", "2026-04-30"),
    ]
    assert [r["DSSEQ"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["DSTERM"] == "Consent withdrawn: moving abroad"
    assert [r["EPOCH"] for r in rows] == ["SCREENING", "TREATMENT", "TREATMENT", "FOLLOW-UP"]
    assert rows[-1]["DSSTDY"] == 52  # 30 April is 51 days after 10 March: day 52


def test_a_withdrawal_without_a_withdrawal_of_consent_is_other_with_its_reason() -> None:
    withdrawn = replace(INFUSED, steps=(*INFUSED.steps, step("withdraw", "2026-05-02T09:00", "No response at M3")))
    exit_row = domain_rows("DS", STUDY, withdrawn)[-1]
    assert (exit_row["DSDECOD"], exit_row["DSTERM"], exit_row["DSSTDTC"]) == (
        "OTHER",
        "No response at M3",
        "2026-05-02",
    )


@pytest.mark.parametrize(
    ("name", "decoded"),
    [("complete", "COMPLETED"), ("mark_lost_to_follow_up", "LOST TO FOLLOW-UP"), ("fail_screening", "SCREEN FAILURE")],
)
def test_each_exit_has_its_cdisc_term(name: str, decoded: str) -> None:
    record = replace(INFUSED, steps=(*INFUSED.steps, step(name, "2026-06-01T09:00")))
    exit_row = domain_rows("DS", STUDY, record)[-1]
    # Without a reason typed, the verbatim term is the decoded one.
    assert (exit_row["DSDECOD"], exit_row["DSTERM"], exit_row["DSCAT"]) == (decoded, decoded, "DISPOSITION EVENT")


# --- EX -------------------------------------------------------------------------------------------


def test_ex_has_one_record_per_lymphodepleting_drug_and_the_infusion() -> None:
    rows = domain_rows("EX", STUDY, INFUSED)
    assert [(r["EXTRT"], r["EXDOSE"], r["EXDOSU"], r["EXSTDTC"], r["EXENDTC"]) for r in rows] == [
        ("ANTI-CD19 CAR-T CELLS", 1_000_000.0, "cells/kg", "2026-03-10T09:30", "2026-03-10T09:30"),
        # Three days from 5 March: 5, 6 and 7 March.
        ("CYCLOPHOSPHAMIDE", 250.0, "mg/m2", "2026-03-05", "2026-03-07"),
        ("FLUDARABINE", 25.0, "mg/m2", "2026-03-05", "2026-03-07"),
    ]
    assert [(r["EXSTDY"], r["EXENDY"]) for r in rows] == [(1, 1), (-5, -3), (-5, -3)]
    assert [r["EXSEQ"] for r in rows] == [1, 2, 3]
    assert {r["VISIT"] for r in rows} == {"Infusion", "Lymphodepletion"}
    assert [r["VISITDY"] for r in rows] == [1, -5, -5]


def test_ex_other_regimens_and_an_infusion_known_from_its_form_only() -> None:
    cyclophosphamide = {**LD_FORM, "regimen": "cy_only"}
    other = {"regimen": "other", "days": 2, "start_date": "2026-03-05"}
    form_only = {"dose_cells_per_kg": 500_000.0, "infusion_date": "2026-03-10", "infusion_start_time": "14:05"}
    record = replace(
        INFUSED, infusions=(), forms={"lymphodepletion": {"LD": cyclophosphamide}, "infusion": {"D0": form_only}}
    )
    rows = domain_rows("EX", STUDY, record)
    assert [(r["EXTRT"], r["EXDOSE"], r["EXSTDTC"]) for r in rows] == [
        ("ANTI-CD19 CAR-T CELLS", 500_000.0, "2026-03-10T14:05"),
        ("CYCLOPHOSPHAMIDE", 250.0, "2026-03-05"),
    ]
    rows = domain_rows("EX", STUDY, replace(record, forms={"lymphodepletion": {"LD": other}}))
    assert [(r["EXTRT"], r["EXDOSE"], r["EXDOSU"], r["EXENDTC"]) for r in rows] == [
        ("OTHER LYMPHODEPLETING CHEMOTHERAPY", None, None, "2026-03-06")
    ]


# --- AE -------------------------------------------------------------------------------------------


def ae(**changes: object) -> AdverseEventRecord:
    base = AdverseEventRecord(
        term="cytokine_release_syndrome",
        grade=2,
        serious=False,
        seriousness_criteria=(),
        start_date=date(2026, 3, 11),
        end_date=date(2026, 3, 13),
        relatedness_cart="definite",
        action="treatment",
        outcome="recovered",
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("grade", "severity"), [(1, "MILD"), (2, "MODERATE"), (3, "SEVERE"), (4, "SEVERE"), (5, "SEVERE")]
)
def test_ae_severity_comes_from_the_grade(grade: int, severity: str) -> None:
    row = one("AE", replace(INFUSED, adverse_events=(ae(term="fever", grade=grade),)))
    assert (row["AESEV"], row["AETOXGR"]) == (severity, str(grade))


def test_crs_is_an_adverse_event_of_special_interest_with_its_grade() -> None:
    row = one("AE", replace(INFUSED, adverse_events=(ae(),)))
    assert row["AEDECOD"] == "Cytokine release syndrome" and row["AEBODSYS"] == "Immune system disorders"
    assert (row["AECAT"], row["AESCAT"], row["AETOXGR"]) == (
        "ADVERSE EVENT OF SPECIAL INTEREST",
        "CYTOKINE RELEASE SYNDROME",
        "2",
    )
    assert (row["AELLTCD"], row["AEREL"], row["AEOUT"]) == (10052015, "RELATED", "RECOVERED/RESOLVED")
    # Started the day after the single infusion: no action on the product is possible.
    assert (row["AEACN"], row["AEACNOTH"]) == ("NOT APPLICABLE", "TREATMENT GIVEN")
    assert (row["AESTDTC"], row["AEENDTC"], row["AESTDY"], row["AEENDY"]) == ("2026-03-11", "2026-03-13", 2, 4)
    assert (row["AESER"], row["AESHOSP"], row["EPOCH"]) == ("N", None, "FOLLOW-UP")


def test_icans_outside_ctcae_keeps_its_label_without_a_meddra_code() -> None:
    row = one("AE", replace(INFUSED, adverse_events=(ae(term="icans", relatedness_cart="possible"),)))
    assert str(row["AETERM"]).startswith("Immune effector cell-associated neurotoxicity")
    assert (row["AELLT"], row["AELLTCD"], row["AESCAT"], row["AEREL"]) == (
        None,
        None,
        "NEUROTOXICITY (ICANS)",
        "POSSIBLY RELATED",
    )


def test_seriousness_criteria_become_flags() -> None:
    serious = ae(
        term="febrile_neutropenia",
        grade=3,
        serious=True,
        seriousness_criteria=("hospitalisation", "important_medical_event"),
        action="infusion_interrupted",
        start_date=date(2026, 3, 10),
        relatedness_cart="",
        outcome="recovering",
    )
    row = one("AE", replace(INFUSED, adverse_events=(serious,)))
    flags = {name: row[name] for name in ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE")}
    assert flags == {"AESDTH": "N", "AESLIFE": "N", "AESHOSP": "Y", "AESDISAB": "N", "AESCONG": "N", "AESMIE": "Y"}
    assert (row["AESER"], row["AEACN"], row["AEREL"], row["AEOUT"]) == (
        "Y",
        "DRUG INTERRUPTED",
        None,
        "RECOVERING/RESOLVING",
    )


# --- LB -------------------------------------------------------------------------------------------


def lab(analyte: str, value: float | None, unit: str, when: str, **more: object) -> LabResult:
    base = LabResult(analyte, value, unit, None, None, None, at(when))
    return replace(base, **more)


def test_lb_converts_to_the_standard_unit_and_codes_loinc_by_the_unit_reported() -> None:
    creatinine = lab("creatinine", 1.2, "mg/dL", "2026-01-06T07:00", lower_limit=0.5, upper_limit=1.1, visit_code="SCR")
    row = one("LB", replace(INFUSED, labs=(creatinine,)))
    assert (row["LBTESTCD"], row["LBORRES"], row["LBORRESU"]) == ("CREAT", "1.2", "mg/dL")
    # 1.2 mg/dL × 88.4 = 106.08 µmol/L; the range 0.5–1.1 mg/dL is 44.2–97.24 µmol/L.
    assert (row["LBSTRESN"], row["LBSTRESC"], row["LBSTRESU"]) == (106.08, "106.08", "umol/L")
    assert (row["LBSTNRLO"], row["LBSTNRHI"], row["LBNRIND"]) == (44.2, 97.24, "HIGH")
    assert (row["LBLOINC"], row["VISIT"], row["LBDTC"], row["LBDY"]) == ("2160-0", "Screening", "2026-01-06T08:00", -63)


def test_lb_below_the_limit_of_quantification_and_units_in_ascii() -> None:
    b_cells = lab("b_cells", None, "cells/µL", "2026-03-20T07:00", limit_of_quantification=1.0)
    car_t = lab("car_t", 5400.0, "copies/µg", "2026-03-20T07:00")
    rows = domain_rows("LB", STUDY, replace(INFUSED, labs=(b_cells, car_t)))
    by_test = {r["LBTESTCD"]: r for r in rows}
    low = by_test["CD19"]
    assert (low["LBORRES"], low["LBSTRESC"], low["LBSTRESN"], low["LBORRESU"]) == ("<1", "<1", None, "cells/uL")
    assert (low["LBLOINC"], low["LBMETHOD"], low["LBNRIND"]) == ("8116-6", "FLOW CYTOMETRY", None)
    transgene = by_test["CARTCELL"]
    # No LOINC term exists for the CAR transgene: none is made up.
    assert (transgene["LBLOINC"], transgene["LBMETHOD"]) == (None, "QUANTITATIVE POLYMERASE CHAIN REACTION")
    assert transgene["LBORRESU"] == "copies/ug"


def test_lb_flags_the_last_result_before_the_first_exposure() -> None:
    results = (
        lab("neutrophils", 3.1, "10^9/L", "2026-01-06T07:00", lower_limit=1.8, upper_limit=7.5),
        lab("neutrophils", 0.9, "10^9/L", "2026-03-05T07:00", lower_limit=1.8, upper_limit=7.5),
        lab("neutrophils", 0.2, "10^9/L", "2026-03-12T07:00", lower_limit=1.8, upper_limit=7.5),
    )
    rows = domain_rows("LB", STUDY, replace(INFUSED, labs=results))
    # Lymphodepletion started on 5 March: the result of that morning is the last before exposure.
    assert [(r["LBDTC"], r["LBLOBXFL"], r["LBNRIND"]) for r in rows] == [
        ("2026-01-06T08:00", None, "NORMAL"),
        ("2026-03-05T08:00", "Y", "LOW"),
        ("2026-03-12T08:00", None, "LOW"),
    ]
    assert [r["EPOCH"] for r in rows] == ["SCREENING", "TREATMENT", "FOLLOW-UP"]
    # Not linked to a form: the visit done that day (screening), none on the other days.
    assert [r["VISIT"] for r in rows] == ["Screening", None, None]


# --- VS, CM, SV -----------------------------------------------------------------------------------


def test_vs_codes_each_measurement_and_dates_it_by_its_visit() -> None:
    vitals = {"temperature_c": 38.4, "heart_rate_bpm": 104, "systolic_bp_mmhg": 112, "diastolic_bp_mmhg": 70}
    record = replace(INFUSED, forms={**INFUSED.forms, "vital_signs": {"D0": vitals}})
    rows = domain_rows("VS", STUDY, record)
    assert [(r["VSTESTCD"], r["VSORRES"], r["VSORRESU"], r["VSPOS"]) for r in rows] == [
        ("DIABP", "70", "mmHg", "SITTING"),
        ("HR", "104", "beats/min", None),
        ("SYSBP", "112", "mmHg", "SITTING"),
        ("TEMP", "38.4", "C", None),
    ]
    assert {(r["VSDTC"], r["VSDY"], r["VISIT"], r["VSLOBXFL"]) for r in rows} == {("2026-03-10", 1, "Infusion", None)}


def medication(name: str, dose: float, **more: object) -> dict[str, object]:
    return {"medication": name, "dose": dose, "dose_unit": "mg", "route": "oral", "start_date": "2020-01-01", **more}


def test_cm_merges_the_lists_of_the_visits_into_one_record_per_medication() -> None:
    visits = (*INFUSED.visits, VisitOccurrence("D28", date(2026, 4, 7)))
    listed = {
        "SCR": {"medications": [medication("Prednisone", 10, ongoing=True), medication("ramipril", 5, ongoing=True)]},
        "D28": {
            "medications": [
                medication("prednisone", 10, ongoing=False, stop_date="2026-03-20"),
                medication("prednisone", 5, ongoing=True, start_date="2026-03-21"),
                medication("ramipril", 5, ongoing=True),
            ]
        },
    }
    rows = domain_rows("CM", STUDY, replace(INFUSED, visits=visits, forms={"concomitant_medications": listed}))
    assert [(r["CMTRT"], r["CMDOSE"], r["CMSTDTC"], r["CMENDTC"], r["CMENRTPT"], r["CMENTPT"]) for r in rows] == [
        ("prednisone", 10.0, "2020-01-01", "2026-03-20", None, None),
        ("prednisone", 5.0, "2026-03-21", None, "ONGOING", "2026-04-07"),
        ("ramipril", 5.0, "2020-01-01", None, "ONGOING", "2026-04-07"),
    ]
    assert {(r["CMDOSU"], r["CMROUTE"]) for r in rows} == {("mg", "ORAL")}
    assert rows[0]["CMENDY"] == 11 and rows[1]["CMSTDY"] == 12


def test_sv_numbers_visits_and_keeps_the_missed_and_unscheduled_ones() -> None:
    visits = (
        VisitOccurrence("SCR", date(2026, 1, 6)),
        VisitOccurrence("D0", date(2026, 3, 10)),
        VisitOccurrence("D7", date(2026, 3, 17)),
        VisitOccurrence("U1", date(2026, 3, 19)),
        VisitOccurrence("U2", date(2026, 3, 20)),
        VisitOccurrence("M2", None, "Unreachable"),
    )
    rows = domain_rows("SV", STUDY, replace(INFUSED, visits=visits))
    number = {v.code: float(i) for i, v in enumerate(PROTOCOL.visits, start=1)}
    assert [(r["VISIT"], r["VISITNUM"]) for r in rows] == [
        ("Screening", number["SCR"]),
        ("Infusion", number["D0"]),
        ("Day 7", number["D7"]),
        ("Unscheduled U1", round(number["D7"] + 0.01, 2)),
        ("Unscheduled U2", round(number["D7"] + 0.02, 2)),
        ("Month 2", number["M2"]),
    ]
    missed = rows[-1]
    assert (missed["SVOCCUR"], missed["SVREASOC"], missed["SVSTDTC"], missed["EPOCH"]) == (
        "N",
        "Unreachable",
        None,
        "FOLLOW-UP",
    )
    assert [r["SVPRESP"] for r in rows] == ["Y", "Y", "Y", None, None, "Y"]
    # Planned day: D7 is day 8 (no day 0); the screening visit hangs on the inclusion: none.
    assert (rows[0]["VISITDY"], rows[2]["VISITDY"], rows[2]["SVSTDY"]) == (None, 8, 8)


def test_every_subject_row_holds_only_its_datasets_variables() -> None:
    record = replace(
        INFUSED,
        adverse_events=(ae(),),
        labs=(lab("crp", 3.0, "mg/L", "2026-01-06T07:00"),),
        forms={**INFUSED.forms, "vital_signs": {"D0": {"weight_kg": 61.5}}},
    )
    produced = subject_rows(STUDY, record)
    assert {name for name, rows in produced.items() if rows} == {"DM", "DS", "EX", "AE", "LB", "VS", "SV"}
    for name, rows in produced.items():
        for row in rows:
            assert len(row_values(DATASETS_BY_NAME[name], row)) == len(DATASETS_BY_NAME[name].variables)


def test_a_text_longer_than_sdtm_allows_is_refused_not_cut() -> None:
    too_long = replace(INFUSED, steps=(*INFUSED.steps, step("withdraw", "2026-05-02T09:00", "x" * 201)))
    row = domain_rows("DS", STUDY, too_long)[-1]
    with pytest.raises(Refused) as refused:
        row_values(DATASETS_BY_NAME["DS"], row)
    assert (refused.value.code, refused.value.item) == ("sdtm_value_too_long", "DS.DSTERM")
    assert refused.value.params["length"] == 201 and refused.value.params["subject"] == "CARTLUP-12-PAR-001"
    with pytest.raises(ValueError, match="not variables"):
        row_values(DATASETS_BY_NAME["DM"], {"USUBJID": "X", "AETERM": "fever"})


# --- trial design ---------------------------------------------------------------------------------


def test_trial_design_datasets() -> None:
    arms = trial_arms(STUDY)
    assert [(r["TAETORD"], r["ETCD"], r["EPOCH"]) for r in arms] == [
        (1, "SCRN", "SCREENING"),
        (2, "PREP", "TREATMENT"),
        (3, "LD", "TREATMENT"),
        (4, "INF", "TREATMENT"),
        (5, "FU", "FOLLOW-UP"),
        (6, "LTFU", "LONG-TERM FOLLOW-UP"),
    ]
    durations = {r["ETCD"]: r["TEDUR"] for r in trial_elements(STUDY)}
    # 15 years of follow-up in all, 24 months of it before long-term follow-up.
    assert (durations["LD"], durations["FU"], durations["LTFU"]) == ("P3D", "P24M", "P156M")
    summary = {r["TSPARMCD"]: r["TSVAL"] for r in trial_summary(STUDY, date(2026, 12, 1))}
    assert summary["TPHASE"] == "PHASE I/II TRIAL" and summary["AGEMIN"] == "P18Y" and summary["AGEMAX"] == "P65Y"
    assert summary["DCUTDTC"] == "2026-12-01" and summary["SDTIGVER"] == "3.4"
