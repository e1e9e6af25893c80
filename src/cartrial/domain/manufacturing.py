"""Manufacturing batches: release tests, their specification, and the batch lifecycle.

A batch is received (apheresis material at the lab), in production, in QC, then released, out of
specification (OOS) or failed (logistics.md §4.3). An OOS or failed batch has one of four
branches, each followed to its end: remanufacture, re-apheresis, infusion of the OOS product
under a documented exception (CIBMTR: viability-only OOS products gave outcomes similar to
in-spec ones, Blood Adv 2020;4(21):5414), or no infusion.

The release specification belongs to the trial product's IMPD: it is data of the protocol file
(`products[].release_specification`), parsed here; the demo protocol's limits are typical
autologous CAR-T release criteria, marked [R] there (recalled, to confirm before use).

Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_, Message


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


BATCH_STATUS_LABELS: dict[BatchStatus, str] = {
    BatchStatus.RECEIVED: N_("Material received"),
    BatchStatus.IN_PRODUCTION: N_("In production"),
    BatchStatus.QC: N_("Quality control"),
    BatchStatus.RELEASED: N_("Released"),
    BatchStatus.OUT_OF_SPECIFICATION: N_("Out of specification"),
    BatchStatus.FAILED: N_("Failed"),
}

BRANCH_LABELS: dict[FailureBranch, str] = {
    FailureBranch.REMANUFACTURE: N_("Remanufacture"),
    FailureBranch.RE_APHERESIS: N_("Re-apheresis"),
    FailureBranch.OOS_EXCEPTION: N_("Infusion of the out-of-specification product under a documented exception"),
    FailureBranch.NO_INFUSION: N_("No infusion"),
}


class QcKind(StrEnum):
    NUMERIC = "numeric"
    NEGATIVE = "negative"  # microbiology: the only conforming result is "negative"


@dataclass(frozen=True)
class QcSpecification:
    """One release test of the protocol; `label` is protocol data in French and English."""

    code: str
    label: Mapping[str, str]
    kind: QcKind
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> Message:
        """The acceptance criterion as the lab reads it ("≥ 70 %", "negative"), for an adapter to render."""
        if self.kind is QcKind.NEGATIVE:
            return Message(N_("negative"))
        unit = {"unit": self.unit}
        if self.minimum is not None and self.maximum is not None:
            bounds = {"minimum": self.minimum, "maximum": self.maximum}
            return Message(N_("≥ {minimum}; ≤ {maximum} {unit}"), {**bounds, **unit})
        if self.minimum is not None:
            return Message(N_("≥ {minimum} {unit}"), {"minimum": self.minimum, **unit})
        return Message(N_("≤ {maximum} {unit}"), {"maximum": self.maximum, **unit})


ReleaseSpecification = Mapping[str, QcSpecification]


def parse_release_specification(raw: Sequence[Mapping[str, object]]) -> dict[str, QcSpecification]:
    """The release tests declared in the protocol, by code; refuses duplicates and empty limits."""
    tests: dict[str, QcSpecification] = {}
    for index, item in enumerate(raw):
        code = str(item.get("code", ""))
        label = item.get("label")
        if not code or code in tests:
            raise InvalidInput(
                "release test {index}: missing or duplicate code '{test}'",
                code="release_spec_invalid",
                index=index,
                test=code,
            )
        if not isinstance(label, Mapping) or not label.get("en") or not label.get("fr"):
            raise InvalidInput("release test {test}: label needs 'en' and 'fr'", code="release_spec_invalid", test=code)
        try:
            kind = QcKind(str(item.get("kind", "")))
        except ValueError:
            raise InvalidInput(
                "release test {test}: kind must be numeric or negative", code="release_spec_invalid", test=code
            ) from None
        minimum, maximum = item.get("minimum"), item.get("maximum")
        if kind is QcKind.NUMERIC and minimum is None and maximum is None:
            raise InvalidInput(
                "release test {test}: a numeric test needs a minimum or a maximum",
                code="release_spec_invalid",
                test=code,
            )
        tests[code] = QcSpecification(
            code=code,
            label={"en": str(label["en"]), "fr": str(label["fr"])},
            kind=kind,
            unit=str(item.get("unit", "")),
            minimum=float(minimum) if isinstance(minimum, int | float) else None,
            maximum=float(maximum) if isinstance(maximum, int | float) else None,
        )
    return tests


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


def judge_qc_result(code: str, value: str, specification: ReleaseSpecification) -> QcJudgement:
    """Read one result as the lab reports it and say whether it conforms to the specification."""
    spec = specification.get(code)
    if spec is None:
        raise QcResultInvalid(
            "'{test}' is not a release test ({tests}).", item="test", test=code, tests=list(specification)
        )
    text = value.strip()
    if not text:
        raise QcResultInvalid("The result of {test} is empty.", item="value", test=code)
    if spec.kind is QcKind.NEGATIVE:
        word = text.lower()
        if word in _NEGATIVE_WORDS:
            return QcJudgement(code, "negative", None, True)
        if word in _POSITIVE_WORDS:
            return QcJudgement(code, "positive", None, False)
        raise QcResultInvalid(
            "The result of {test} must be 'negative' or 'positive', not '{value}'.", item="value", test=code, value=text
        )
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise QcResultInvalid(
            "The result of {test} must be a number in {unit}, not '{value}'.",
            item="value",
            test=code,
            unit=spec.unit,
            value=text,
        ) from None
    if not math.isfinite(number) or number < 0:
        raise QcResultInvalid("The result of {test} must be a finite, non-negative number.", item="value", test=code)
    conforms = (spec.minimum is None or number >= spec.minimum) and (spec.maximum is None or number <= spec.maximum)
    return QcJudgement(code, f"{number:g}", number, conforms)


class QcVerdict(StrEnum):
    INCOMPLETE = "incomplete"
    CONFORMS = "conforms"
    OUT_OF_SPECIFICATION = "out_of_specification"


def qc_verdict(latest_conformity: Mapping[str, bool], specification: ReleaseSpecification) -> QcVerdict:
    """Verdict over the latest result of each release test: any non-conforming one makes the batch OOS."""
    if any(not conforms for conforms in latest_conformity.values()):
        return QcVerdict.OUT_OF_SPECIFICATION
    if set(specification) - set(latest_conformity):
        return QcVerdict.INCOMPLETE
    return QcVerdict.CONFORMS
