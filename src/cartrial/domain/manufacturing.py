"""Manufacturing batches: release tests, their specification, and the batch lifecycle.

A batch is received (apheresis material at the lab), in production, in QC, then released, out of
specification (OOS) or failed (logistics.md §4.3). An OOS or failed batch has one of four
branches, each followed to its end: remanufacture, re-apheresis, infusion of the OOS product
under a documented exception (CIBMTR: viability-only OOS products gave outcomes similar to
in-spec ones, Blood Adv 2020;4(21):5414), or no infusion.

The release specification belongs to the trial product's IMPD, which we have not read: the
limits below are typical autologous CAR-T release criteria, marked [R] (recalled, to confirm
before use), kept in one table so the QP reviews them in one place.

Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.errors import InvalidInput


class BatchStatus(StrEnum):
    RECEIVED = "received"
    IN_PRODUCTION = "in_production"
    QC = "qc"
    RELEASED = "released"
    OUT_OF_SPECIFICATION = "out_of_specification"
    FAILED = "failed"


class FailureBranch(StrEnum):
    """What was decided for a batch that cannot be released as is."""

    REMANUFACTURE = "remanufacture"
    RE_APHERESIS = "re_apheresis"
    OOS_EXCEPTION = "oos_exception"
    NO_INFUSION = "no_infusion"


BATCH_STATUS_LABELS: dict[BatchStatus, dict[str, str]] = {
    BatchStatus.RECEIVED: {"en": "Material received", "fr": "Matériel reçu"},
    BatchStatus.IN_PRODUCTION: {"en": "In production", "fr": "En production"},
    BatchStatus.QC: {"en": "Quality control", "fr": "Contrôle qualité"},
    BatchStatus.RELEASED: {"en": "Released", "fr": "Libéré"},
    BatchStatus.OUT_OF_SPECIFICATION: {"en": "Out of specification", "fr": "Hors spécification"},
    BatchStatus.FAILED: {"en": "Failed", "fr": "Échec"},
}

BRANCH_LABELS: dict[FailureBranch, dict[str, str]] = {
    FailureBranch.REMANUFACTURE: {"en": "Remanufacture", "fr": "Refabrication"},
    FailureBranch.RE_APHERESIS: {"en": "Re-apheresis", "fr": "Nouvelle aphérèse"},
    FailureBranch.OOS_EXCEPTION: {
        "en": "Infusion of the out-of-specification product under a documented exception",
        "fr": "Perfusion du produit hors spécification sous dérogation documentée",
    },
    FailureBranch.NO_INFUSION: {"en": "No infusion", "fr": "Pas de perfusion"},
}


class QcKind(StrEnum):
    NUMERIC = "numeric"
    NEGATIVE = "negative"  # microbiology: the only conforming result is "negative"


@dataclass(frozen=True)
class QcSpecification:
    code: str
    label: Mapping[str, str]
    kind: QcKind
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def describe(self, language: str = "en") -> str:
        if self.kind is QcKind.NEGATIVE:
            return "négatif" if language == "fr" else "negative"
        parts = []
        if self.minimum is not None:
            parts.append(f"≥ {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"≤ {self.maximum:g}")
        return " ; ".join(parts) + (f" {self.unit}" if self.unit else "")


# Release tests of the CAR-T product [R]: to be replaced by the IMPD's specification.
RELEASE_SPECIFICATIONS: tuple[QcSpecification, ...] = (
    QcSpecification("viability", {"en": "Viability", "fr": "Viabilité"}, QcKind.NUMERIC, "%", minimum=70),
    QcSpecification(
        "car_expression", {"en": "CAR+ among CD3+ cells", "fr": "CAR+ parmi les CD3+"}, QcKind.NUMERIC, "%", minimum=10
    ),
    QcSpecification(
        "vector_copy_number",
        {"en": "Vector copy number", "fr": "Nombre de copies du vecteur"},
        QcKind.NUMERIC,
        "copies/cell",
        maximum=5,
    ),
    QcSpecification("endotoxin", {"en": "Endotoxin", "fr": "Endotoxines"}, QcKind.NUMERIC, "EU/mL", maximum=5),
    QcSpecification("sterility", {"en": "Sterility", "fr": "Stérilité"}, QcKind.NEGATIVE),
    QcSpecification("mycoplasma", {"en": "Mycoplasma", "fr": "Mycoplasmes"}, QcKind.NEGATIVE),
)
SPECIFICATIONS_BY_CODE: dict[str, QcSpecification] = {spec.code: spec for spec in RELEASE_SPECIFICATIONS}

_NEGATIVE_WORDS = {"negative", "négatif", "negatif", "neg", "nég"}
_POSITIVE_WORDS = {"positive", "positif", "pos"}


class QcResultInvalid(InvalidInput):
    code = "qc_result_invalid"


@dataclass(frozen=True)
class QcJudgement:
    code: str
    value_text: str
    value_number: float | None
    conforms: bool


def judge_qc_result(code: str, value: str) -> QcJudgement:
    """Read one result as the lab reports it and say whether it conforms to the specification."""
    spec = SPECIFICATIONS_BY_CODE.get(code)
    if spec is None:
        raise QcResultInvalid(f"'{code}' is not a release test ({', '.join(SPECIFICATIONS_BY_CODE)}).")
    text = value.strip()
    if not text:
        raise QcResultInvalid(f"The result of {code} is empty.")
    if spec.kind is QcKind.NEGATIVE:
        word = text.lower()
        if word in _NEGATIVE_WORDS:
            return QcJudgement(code, "negative", None, True)
        if word in _POSITIVE_WORDS:
            return QcJudgement(code, "positive", None, False)
        raise QcResultInvalid(f"The result of {code} must be 'negative' or 'positive', not '{text}'.")
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise QcResultInvalid(f"The result of {code} must be a number in {spec.unit}, not '{text}'.") from None
    if not math.isfinite(number) or number < 0:
        raise QcResultInvalid(f"The result of {code} must be a finite, non-negative number.")
    conforms = (spec.minimum is None or number >= spec.minimum) and (spec.maximum is None or number <= spec.maximum)
    return QcJudgement(code, f"{number:g}", number, conforms)


class QcVerdict(StrEnum):
    INCOMPLETE = "incomplete"
    CONFORMS = "conforms"
    OUT_OF_SPECIFICATION = "out_of_specification"


def qc_verdict(latest_conformity: Mapping[str, bool]) -> QcVerdict:
    """Verdict over the latest result of each release test: any non-conforming one makes the batch OOS."""
    if any(not conforms for conforms in latest_conformity.values()):
        return QcVerdict.OUT_OF_SPECIFICATION
    if set(SPECIFICATIONS_BY_CODE) - set(latest_conformity):
        return QcVerdict.INCOMPLETE
    return QcVerdict.CONFORMS
