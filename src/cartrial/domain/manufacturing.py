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
from cartrial.domain.quantities import QC_PHYSICAL_LIMITS, Quantity, plausible_check
from cartrial.domain.text import N_, Message, ProtocolText


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
    # What a result in this unit can be at all (a percentage 0–100): a result outside is refused, not
    # judged. From the catalogue by unit (`quantities.QC_PHYSICAL_LIMITS`) or the test's `plausible`.
    plausible: Quantity | None = None

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
        unit = str(item.get("unit", ""))
        low = float(minimum) if isinstance(minimum, int | float) else None
        high = float(maximum) if isinstance(maximum, int | float) else None
        plausible = _plausible_range(code, unit, item.get("plausible")) if kind is QcKind.NUMERIC else None
        if plausible is not None:
            for limit in (low, high):
                if limit is not None and not plausible.contains(limit):
                    raise InvalidInput(
                        "release test {test}: the specification limit {limit} {unit} lies outside what a result "
                        "can be ({minimum}–{maximum} {unit})",
                        code="release_spec_invalid",
                        test=code,
                        limit=limit,
                        unit=unit,
                        minimum=plausible.minimum,
                        maximum=plausible.maximum,
                    )
        tests[code] = QcSpecification(
            code=code,
            label={"en": str(label["en"]), "fr": str(label["fr"])},
            kind=kind,
            unit=unit,
            minimum=low,
            maximum=high,
            plausible=plausible,
        )
    return tests


def _plausible_range(code: str, unit: str, declared: object) -> Quantity:
    """The range a numeric test's result can take: the protocol's `plausible: [min, max]` for the test,
    else the physical limits of its unit in the catalogue; a unit unknown to both is refused."""
    if declared is not None:
        if (
            not isinstance(declared, Sequence)
            or isinstance(declared, str)
            or len(declared) != 2
            or not all(isinstance(bound, int | float) and not isinstance(bound, bool) for bound in declared)
            or not declared[0] < declared[1]
        ):
            raise InvalidInput(
                "release test {test}: plausible must be [minimum, maximum] with minimum < maximum",
                code="release_spec_invalid",
                test=code,
            )
        return Quantity(f"qc.{code}", N_("Release test result"), unit, float(declared[0]), float(declared[1]))
    known = QC_PHYSICAL_LIMITS.get(unit)
    if known is None:
        raise InvalidInput(
            "release test {test}: no physical limits are known for the unit '{unit}' (known: {units}); "
            "give plausible: [minimum, maximum]",
            code="release_spec_invalid",
            test=code,
            unit=unit,
            units=sorted(QC_PHYSICAL_LIMITS),
        )
    return known


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
    if spec.plausible is not None:
        # Outside what the unit allows (a viability of 150 %) is a wrong result, never "conforming".
        plausible_check(spec.plausible, number, item="value", name=ProtocolText(spec.label))
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
