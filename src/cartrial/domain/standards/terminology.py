"""The code systems every export shares, declared once: CDISC controlled terminology (SEX, AESEV,
LBTESTCD/LBTEST), LOINC for the labs collected and UCUM for their units.

Only codes we are sure of are declared. A lab without a known code (`car_t`: no LOINC term exists
for a CAR transgene count) keeps its local code and says so (`loinc=None`, `lbtestcd_in_ct=False`);
the exports write it as a sponsor-defined code, never a made-up standard one. docs/exports.md lists
every mapping and its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from cartrial.domain.ecrf.definitions import ITEM_UNITS
from cartrial.domain.lab_catalogue import ANALYTES

# CDISC SEX (C66731): the screening form's values → the submission values.
SEX_CODES: MappingProxyType[str, str] = MappingProxyType({"female": "F", "male": "M"})
SEX_UNKNOWN = "U"

# CDISC AESEV (C66769) from the CTCAE grade: 1 mild, 2 moderate, 3 and above severe (grade 4 and 5
# stay in AETOXGR, which carries the exact grade).
AE_SEVERITY_BY_GRADE: MappingProxyType[int, str] = MappingProxyType(
    {1: "MILD", 2: "MODERATE", 3: "SEVERE", 4: "SEVERE", 5: "SEVERE"}
)

# UCUM (https://ucum.org) for every unit the lab catalogue accepts; the catalogue's own codes stay
# what people type and read.
UCUM_BY_UNIT: MappingProxyType[str, str] = MappingProxyType(
    {
        "umol/L": "umol/L",
        "mg/dL": "mg/dL",
        "mg/mmol": "mg/mmol",
        "g/g": "g/g",
        "g/L": "g/L",
        "g/dL": "g/dL",
        "mmol/L": "mmol/L",
        "10^9/L": "10*9/L",
        "cells/µL": "/uL",
        "mg/L": "mg/L",
        "U/L": "U/L",
        "µg/L": "ug/L",
        "IU/mL": "[IU]/mL",
        "copies/µg": "{copies}/ug",
    }
)


@dataclass(frozen=True)
class LabCoding:
    """How one analyte of the catalogue is coded: SDTM test code and name, LOINC per unit."""

    analyte: str
    lbtestcd: str
    lbtest: str
    lbtestcd_in_ct: bool
    loinc_by_unit: MappingProxyType[str, tuple[str, str]]  # unit → (LOINC code, LOINC long name)

    def loinc(self, unit: str) -> tuple[str, str] | None:
        """The LOINC term of a result reported in `unit` (None when no LOINC term is declared)."""
        return self.loinc_by_unit.get(unit)


def _coding(
    analyte: str, lbtestcd: str, lbtest: str, loinc: dict[str, tuple[str, str]], *, in_ct: bool = True
) -> LabCoding:
    return LabCoding(analyte, lbtestcd, lbtest, in_ct, MappingProxyType(loinc))


_SERUM = "in Serum or Plasma"
LAB_CODINGS: MappingProxyType[str, LabCoding] = MappingProxyType(
    {
        c.analyte: c
        for c in (
            _coding(
                "creatinine",
                "CREAT",
                "Creatinine",
                {
                    "umol/L": ("14682-9", f"Creatinine [Moles/volume] {_SERUM}"),
                    "mg/dL": ("2160-0", f"Creatinine [Mass/volume] {_SERUM}"),
                },
            ),
            _coding(
                "upcr",
                "PROTCRT",
                "Protein/Creatinine",
                {"g/g": ("2890-2", "Protein/Creatinine [Mass Ratio] in Urine")},
            ),
            _coding(
                "c3",
                "C3",
                "Complement C3",
                {u: ("4485-9", f"Complement C3 [Mass/volume] {_SERUM}") for u in ("g/L", "mg/dL")},
            ),
            _coding(
                "c4",
                "C4",
                "Complement C4",
                {u: ("4498-2", f"Complement C4 [Mass/volume] {_SERUM}") for u in ("g/L", "mg/dL")},
            ),
            _coding(
                "igg",
                "IGG",
                "Immunoglobulin G",
                {u: ("2465-3", f"IgG [Mass/volume] {_SERUM}") for u in ("g/L", "mg/dL")},
            ),
            _coding(
                "hemoglobin",
                "HGB",
                "Hemoglobin",
                {
                    "g/dL": ("718-7", "Hemoglobin [Mass/volume] in Blood"),
                    "g/L": ("718-7", "Hemoglobin [Mass/volume] in Blood"),
                    "mmol/L": ("59260-0", "Hemoglobin [Moles/volume] in Blood"),
                },
            ),
            _coding(
                "wbc", "WBC", "Leukocytes", {"10^9/L": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count")}
            ),
            _coding(
                "neutrophils",
                "NEUT",
                "Neutrophils",
                {"10^9/L": ("751-8", "Neutrophils [#/volume] in Blood by Automated count")},
            ),
            _coding(
                "lymphocytes",
                "LYM",
                "Lymphocytes",
                {"10^9/L": ("731-0", "Lymphocytes [#/volume] in Blood by Automated count")},
            ),
            _coding(
                "platelets",
                "PLAT",
                "Platelets",
                {"10^9/L": ("777-3", "Platelets [#/volume] in Blood by Automated count")},
            ),
            _coding("cd3", "CD3", "CD3 Cells", {"cells/µL": ("8124-0", "CD3 cells [#/volume] in Blood")}),
            _coding(
                "crp", "CRP", "C Reactive Protein", {"mg/L": ("1988-5", f"C reactive protein [Mass/volume] {_SERUM}")}
            ),
            _coding(
                "alt",
                "ALT",
                "Alanine Aminotransferase",
                {"U/L": ("1742-6", f"Alanine aminotransferase [Enzymatic activity/volume] {_SERUM}")},
            ),
            _coding(
                "ast",
                "AST",
                "Aspartate Aminotransferase",
                {"U/L": ("1920-8", f"Aspartate aminotransferase [Enzymatic activity/volume] {_SERUM}")},
            ),
            _coding(
                "bilirubin", "BILI", "Bilirubin", {"umol/L": ("14631-6", f"Bilirubin.total [Moles/volume] {_SERUM}")}
            ),
            _coding("ferritin", "FERRITIN", "Ferritin", {"µg/L": ("2276-4", f"Ferritin [Mass/volume] {_SERUM}")}),
            _coding(
                "ldh",
                "LDH",
                "Lactate Dehydrogenase",
                {"U/L": ("2532-0", f"Lactate dehydrogenase [Enzymatic activity/volume] {_SERUM}")},
            ),
            # Sponsor-defined test codes (no CDISC CT term confirmed offline): documented as such.
            _coding(
                "anti_dsdna",
                "DSDNAAB",
                "Double-Stranded DNA Antibody",
                {"IU/mL": ("5130-0", "DNA double strand Ab [Units/volume] in Serum")},
                in_ct=False,
            ),
            _coding("b_cells", "CD19", "CD19 Cells", {"cells/µL": ("8116-6", "CD19 cells [#/volume] in Blood")}),
            _coding("car_t", "CARTCELL", "CAR-T Cells (Transgene)", {}, in_ct=False),
        )
    }
)

assert set(LAB_CODINGS) == set(ANALYTES), "every analyte of the lab catalogue has its coding"
assert all(unit in UCUM_BY_UNIT for spec in ANALYTES.values() for unit in spec.units), "every lab unit has UCUM"


# --- code systems outside the lab catalogue (FHIR, and any export that codes the same things) -------

# The standard systems by their canonical URIs (HL7 FHIR R4 "namingsystem-terminologies";
# MedDRA as HL7 Terminology 1.0.0, the R4-era release, names it; ATC as the R4 spec lists it).
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
MEDDRA_SYSTEM = "http://terminology.hl7.org/CodeSystem/mdr"
ATC_SYSTEM = "http://www.whocc.no/atc"

# The sponsor's own code systems, for what no standard code was confirmed offline: one base URI,
# one system per kind of code (the codes are the trial's stable codes, documented in docs/exports.md).
LOCAL_SYSTEM_BASE = "https://cartrial.example/fhir"
LAB_ANALYTE_SYSTEM = f"{LOCAL_SYSTEM_BASE}/CodeSystem/lab-analyte"
SCORE_SYSTEM = f"{LOCAL_SYSTEM_BASE}/CodeSystem/score"
CTCAE_TERM_SYSTEM = f"{LOCAL_SYSTEM_BASE}/CodeSystem/ctcae-term"
RELATEDNESS_SYSTEM = f"{LOCAL_SYSTEM_BASE}/CodeSystem/relatedness"
MEDICATION_SYSTEM = f"{LOCAL_SYSTEM_BASE}/CodeSystem/medication"

# The disease studied: SNOMED CT 55464009 |Systemic lupus erythematosus (disorder)|.
CONDITION_SLE: tuple[str, str] = ("55464009", "Systemic lupus erythematosus")

# SNOMED CT 47625008 |Intravenous route (qualifier value)|: the CAR-T product and the
# lymphodepleting chemotherapy are given intravenously.
ROUTE_INTRAVENOUS: tuple[str, str] = ("47625008", "Intravenous route")


@dataclass(frozen=True)
class ScoreCoding:
    """A clinical score the trial stores: its code in the sponsor's score system (no LOINC term for
    these was confirmed offline), its display, and whether its value is a whole number."""

    code: str
    display: str
    integer: bool


# Scores where stored: the lupus activity form's derived totals and the physician global assessment,
# the daily ASTCT grades of the toxicity assessment. Keys are the stored item or field names.
SCORE_CODINGS: MappingProxyType[str, ScoreCoding] = MappingProxyType(
    {
        "sledai2k_score": ScoreCoding("sledai2k", "SLEDAI-2K total score (points, 0-105)", True),
        "clinical_sledai_score": ScoreCoding(
            "clinical-sledai", "Clinical SLEDAI-2K score (without complement and anti-dsDNA)", True
        ),
        "physician_global_assessment": ScoreCoding("pga", "Physician global assessment of lupus activity (0-3)", False),
        "crs_grade": ScoreCoding("astct-crs-grade", "Cytokine release syndrome grade (ASTCT 2019)", True),
        "icans_grade": ScoreCoding("astct-icans-grade", "ICANS grade (ASTCT 2019)", True),
        "ice_score": ScoreCoding("ice-score", "Immune effector cell encephalopathy (ICE) score (0-10)", True),
    }
)
# UCUM's unity annotation for a score without a unit ("{score}" is UCUM unity with an annotation).
SCORE_UCUM = "{score}"


@dataclass(frozen=True)
class MedicationCoding:
    """What was administered: ATC code where one exists, else the sponsor's medication code."""

    code: str
    display: str
    atc: str | None


MEDICATION_CODINGS: MappingProxyType[str, MedicationCoding] = MappingProxyType(
    {
        # The protocol's drug product (products: CART_CRYO); an autologous product has no ATC code.
        "car_t": MedicationCoding("CART_CRYO", "Autologous anti-CD19 CAR-T cells (cryopreserved)", None),
        "fludarabine": MedicationCoding("fludarabine", "Fludarabine", "L01BB05"),
        "cyclophosphamide": MedicationCoding("cyclophosphamide", "Cyclophosphamide", "L01AA01"),
    }
)

# UCUM for the dose units the infusion and lymphodepletion forms carry.
DOSE_UCUM_BY_UNIT: MappingProxyType[str, str] = MappingProxyType({"cells/kg": "{cells}/kg", "mg/m²/day": "mg/m2/d"})
# --- SDTM controlled terminology (CDISC CT, NCI Thesaurus codes) ---------------------------------


@dataclass(frozen=True)
class Term:
    """One value of a code list: what the dataset holds, its decode, its NCI code when we are sure of
    it, and whether the code list's CDISC terms include it (False: a sponsor's extension)."""

    value: str
    decode: str = ""
    nci_code: str | None = None
    in_ct: bool = True


# The NCI codes of the CDISC code lists the SDTM datasets use (the code list, not its terms).
CODELIST_NCI_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "SEX": "C66731",
        "AGEU": "C66781",
        "NY": "C66742",
        "AESEV": "C66769",
        "OUT": "C66768",
        "ACN": "C66767",
        "ROUTE": "C66729",
        "FRM": "C66726",
        "FREQ": "C71113",
        "LBTESTCD": "C65047",
        "LBTEST": "C67154",
        "VSTESTCD": "C66741",
        "VSTEST": "C67153",
        "NRIND": "C78736",
        "EPOCH": "C99079",
        "DSCAT": "C74558",
        "NCOMPLT": "C66727",
        "PROTMLST": "C114118",
        "ARMNULRS": "C142179",
        "UNIT": "C71620",
        "TSPARMCD": "C66738",
        "TSPARM": "C67152",
    }
)

SEX_TERMS: tuple[Term, ...] = (
    Term("F", "Female", "C16576"),
    Term("M", "Male", "C20197"),
    Term(SEX_UNKNOWN, "Unknown", "C17998"),
)
AESEV_TERMS: tuple[Term, ...] = (
    Term("MILD", "Mild", "C41338"),
    Term("MODERATE", "Moderate", "C41339"),
    Term("SEVERE", "Severe", "C41340"),
)
NY_TERMS: tuple[Term, ...] = (Term("N", "No", "C49487"), Term("Y", "Yes", "C49488"))
AGE_UNIT_YEARS = "YEARS"

# CDISC OUT from the AE's outcome code (domain/safety/adverse_events.Outcome values).
AE_OUTCOME_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "recovered": "RECOVERED/RESOLVED",
        "recovering": "RECOVERING/RESOLVING",
        "not_recovered": "NOT RECOVERED/NOT RESOLVED",
        "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
        "fatal": "FATAL",
        "unknown": "UNKNOWN",
    }
)

# CDISC ACN (action taken with the study treatment) from the AE's action code: the CAR-T product is
# given once, so only an AE during the infusion can interrupt or stop it.
AE_ACTION_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "none": "DOSE NOT CHANGED",
        "treatment": "DOSE NOT CHANGED",
        "hospitalisation": "DOSE NOT CHANGED",
        "infusion_interrupted": "DRUG INTERRUPTED",
        "infusion_not_given": "DRUG WITHDRAWN",
        "not_applicable": "NOT APPLICABLE",
    }
)
AE_ACTION_OTHER: MappingProxyType[str, str] = MappingProxyType(
    {"treatment": "TREATMENT GIVEN", "hospitalisation": "HOSPITALISATION"}
)

# AEREL has no CDISC code list: the sponsor's terms, from the causality scale of the AE form.
AE_RELATEDNESS_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "not_related": "NOT RELATED",
        "unlikely": "UNLIKELY RELATED",
        "possible": "POSSIBLY RELATED",
        "probable": "PROBABLY RELATED",
        "definite": "RELATED",
    }
)

# CDISC ROUTE from the route codes of the concomitant medications form.
ROUTE_CODES: MappingProxyType[str, str] = MappingProxyType(
    {
        "oral": "ORAL",
        "intravenous": "INTRAVENOUS",
        "subcutaneous": "SUBCUTANEOUS",
        "intramuscular": "INTRAMUSCULAR",
        "topical": "TOPICAL",
        "inhaled": "RESPIRATORY (INHALATION)",
    }
)
# CDISC UNIT from the dose unit codes of the concomitant medications form.
DOSE_UNIT_CODES: MappingProxyType[str, str] = MappingProxyType(
    {"mg": "mg", "g": "g", "ug": "ug", "iu": "IU", "ml": "mL"}
)


@dataclass(frozen=True)
class VitalSignCoding:
    """How one item of the vital signs form is coded: VSTESTCD, VSTEST, the CDISC unit, the position."""

    item: str
    vstestcd: str
    vstest: str
    unit: str
    position: str | None = None


VITAL_SIGN_CODINGS: MappingProxyType[str, VitalSignCoding] = MappingProxyType(
    {
        c.item: c
        for c in (
            VitalSignCoding("temperature_c", "TEMP", "Temperature", "C"),
            VitalSignCoding("heart_rate_bpm", "HR", "Heart Rate", "beats/min"),
            # The form asks for a seated pressure after 5 minutes of rest.
            VitalSignCoding("systolic_bp_mmhg", "SYSBP", "Systolic Blood Pressure", "mmHg", "SITTING"),
            VitalSignCoding("diastolic_bp_mmhg", "DIABP", "Diastolic Blood Pressure", "mmHg", "SITTING"),
            VitalSignCoding("spo2_pct", "OXYSAT", "Oxygen Saturation", "%"),
            VitalSignCoding("weight_kg", "WEIGHT", "Weight", "kg"),
        )
    }
)

# SDTM lab category (LBCAT, sponsor-defined) of each analyte of the lab catalogue.
LAB_CATEGORIES: MappingProxyType[str, str] = MappingProxyType(
    {
        **dict.fromkeys(("hemoglobin", "wbc", "neutrophils", "lymphocytes", "platelets"), "HEMATOLOGY"),
        **dict.fromkeys(("creatinine", "alt", "ast", "bilirubin", "crp", "ferritin", "ldh"), "CHEMISTRY"),
        **dict.fromkeys(("c3", "c4", "igg", "anti_dsdna"), "IMMUNOLOGY"),
        "upcr": "URINALYSIS",
        **dict.fromkeys(("cd3", "b_cells", "car_t"), "CELLULAR KINETICS"),
    }
)
assert set(LAB_CATEGORIES) == set(ANALYTES), "every analyte of the lab catalogue has its category"

# LBMETHOD where the unit says how the result was measured: the CAR-T cells are counted by flow
# cytometry (cells/µL) or their transgene by qPCR (copies/µg of DNA), one test code for both.
LAB_METHOD_BY_UNIT: MappingProxyType[str, str] = MappingProxyType(
    {"cells/µL": "FLOW CYTOMETRY", "copies/µg": "QUANTITATIVE POLYMERASE CHAIN REACTION"}
)

# ISO 3166-1 alpha-3 (SDTM COUNTRY) from the alpha-2 code a center is stored with.
COUNTRY_ALPHA3: MappingProxyType[str, str] = MappingProxyType(
    {
        "AT": "AUT",
        "BE": "BEL",
        "CA": "CAN",
        "CH": "CHE",
        "DE": "DEU",
        "DK": "DNK",
        "ES": "ESP",
        "FR": "FRA",
        "GB": "GBR",
        "IE": "IRL",
        "IT": "ITA",
        "LU": "LUX",
        "NL": "NLD",
        "PT": "PRT",
        "SE": "SWE",
        "US": "USA",
    }
)

# CDISC EPOCH from the protocol's visit phases: acute monitoring (D1–D28) follows the single dose.
EPOCH_BY_PHASE: MappingProxyType[str, str] = MappingProxyType(
    {
        "screening": "SCREENING",
        "treatment": "TREATMENT",
        "acute_monitoring": "FOLLOW-UP",
        "follow_up": "FOLLOW-UP",
        "long_term_follow_up": "LONG-TERM FOLLOW-UP",
    }
)

# CDISC NRIND: a result against the lab's reference range.
NRIND_TERMS: tuple[Term, ...] = (Term("LOW"), Term("NORMAL"), Term("HIGH"))

# Disposition: DSCAT, then DSDECOD from CDISC NCOMPLT (disposition events) and PROTMLST (protocol
# milestones); enrolment and the infusion are the sponsor's milestones (no CDISC term checked).
DS_CATEGORY_DISPOSITION = "DISPOSITION EVENT"
DS_CATEGORY_MILESTONE = "PROTOCOL MILESTONE"
DS_CONSENT = Term("INFORMED CONSENT OBTAINED")
DS_ENROLLED = Term("ENROLLED", in_ct=False)
DS_INFUSED = Term("CAR-T CELLS INFUSED", in_ct=False)
DS_SCREEN_FAILURE = Term("SCREEN FAILURE")
DS_COMPLETED = Term("COMPLETED")
DS_WITHDRAWN_BY_SUBJECT = Term("WITHDRAWAL BY SUBJECT")
DS_LOST = Term("LOST TO FOLLOW-UP")
DS_DEATH = Term("DEATH")
DS_OTHER = Term("OTHER")

# ARMNRS (CDISC ARMNULRS): why ARMCD or ACTARMCD is empty.
ARM_NULL_SCREEN_FAILURE = "SCREEN FAILURE"
ARM_NULL_NOT_ASSIGNED = "NOT ASSIGNED"
ARM_NULL_NOT_TREATED = "ASSIGNED, NOT TREATED"

# CDISC TPHASE from the protocol's phase.
TRIAL_PHASES: MappingProxyType[str, str] = MappingProxyType(
    {
        "1": "PHASE I TRIAL",
        "1/2": "PHASE I/II TRIAL",
        "2": "PHASE II TRIAL",
        "2/3": "PHASE II/III TRIAL",
        "3": "PHASE III TRIAL",
        "4": "PHASE IV TRIAL",
    }
)

# The trial summary parameters written (CDISC TSPARMCD → TSPARM).
TS_PARAMETERS: MappingProxyType[str, str] = MappingProxyType(
    {
        "TITLE": "Trial Title",
        "SPONSOR": "Clinical Study Sponsor",
        "TPHASE": "Trial Phase Classification",
        "STYPE": "Study Type",
        "TBLIND": "Trial Blinding Schema",
        "TCNTRL": "Control Type",
        "RANDOM": "Trial is Randomized",
        "NARMS": "Planned Number of Arms",
        "INDIC": "Trial Disease/Condition Indication",
        "TRT": "Investigational Therapy or Treatment",
        "AGEMIN": "Planned Minimum Age of Subjects",
        "AGEMAX": "Planned Maximum Age of Subjects",
        "SDTIGVER": "SDTM IG Version",
        "DCUTDTC": "Data Cutoff Date",
    }
)

# UCUM for the display units of the eCRF's other items (`ecrf.ITEM_UNITS`: vital signs, doses, eGFR).
UCUM_BY_ITEM_UNIT: MappingProxyType[str, str] = MappingProxyType(
    {
        **DOSE_UCUM_BY_UNIT,
        "°C": "Cel",
        "/min": "/min",
        "mmHg": "mm[Hg]",
        "%": "%",
        "kg": "kg",
        "mg/day": "mg/d",
        "days": "d",
        "mL/min/1.73m2": "mL/min/{1.73_m2}",
    }
)

assert set(UCUM_BY_ITEM_UNIT) == set(ITEM_UNITS), "every eCRF item unit has UCUM"


def ucum(unit: str) -> str | None:
    """The UCUM code of a unit of the lab catalogue or of an eCRF item (None for a unit without one)."""
    return UCUM_BY_UNIT.get(unit) or UCUM_BY_ITEM_UNIT.get(unit)
