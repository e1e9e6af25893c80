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
