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
