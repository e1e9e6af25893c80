"""Eligibility verdicts: one answer per protocol criterion, and the overall verdict.

Each criterion is met, not met, or missing data; the overall verdict is `eligible` only when
every inclusion criterion is met and no exclusion criterion applies, `not_eligible` as soon as
one fails, otherwise `incomplete`. Exclusion criteria are phrased as the condition that
excludes (e.g. "active infection"), so for them `met` means the patient is excluded... to
avoid that double negation every criterion here is stored as "satisfied for the trial":
`met` always means "this criterion does not stand in the way".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cartrial.domain.errors import InvalidInput


class Outcome(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    MISSING = "missing"


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Criterion:
    """A protocol criterion: stable id, kind (inclusion/exclusion) and its text in French and English."""

    id: str
    kind: str
    text: Mapping[str, str]
    rule: Mapping[str, object] | None = None


@dataclass(frozen=True)
class CriterionResult:
    criterion_id: str
    kind: str
    outcome: Outcome
    values_used: Mapping[str, object] = field(default_factory=dict)
    explanation: str = ""


@dataclass(frozen=True)
class EligibilityVerdict:
    verdict: Verdict
    results: tuple[CriterionResult, ...]

    def failed(self) -> list[str]:
        """Ids of the criteria that stand in the way (for the screening log)."""
        return [r.criterion_id for r in self.results if r.outcome is Outcome.NOT_MET]

    def as_dict(self) -> dict[str, object]:
        """The verdict as plain data: what is stored, hashed and signed."""
        return {
            "verdict": self.verdict.value,
            "criteria": [
                {
                    "id": r.criterion_id,
                    "kind": r.kind,
                    "outcome": r.outcome.value,
                    "values_used": dict(r.values_used),
                    "explanation": r.explanation,
                }
                for r in self.results
            ],
        }


def overall_verdict(results: Sequence[CriterionResult]) -> Verdict:
    """Not eligible if any criterion fails, incomplete if any lacks data, else eligible."""
    if not results:
        return Verdict.INCOMPLETE
    if any(r.outcome is Outcome.NOT_MET for r in results):
        return Verdict.NOT_ELIGIBLE
    if any(r.outcome is Outcome.MISSING for r in results):
        return Verdict.INCOMPLETE
    return Verdict.ELIGIBLE


def parse_criteria(raw: Sequence[Mapping[str, object]]) -> tuple[Criterion, ...]:
    """Protocol criteria from their declared form; refuses duplicates and unknown kinds."""
    seen: set[str] = set()
    criteria = []
    for index, item in enumerate(raw):
        criterion_id = str(item.get("id", ""))
        kind = str(item.get("kind", ""))
        text = item.get("text")
        if not criterion_id:
            raise InvalidInput(f"criterion {index}: missing id", code="criterion_invalid")
        if criterion_id in seen:
            raise InvalidInput(f"criterion {criterion_id}: duplicate id", code="criterion_invalid")
        if kind not in ("inclusion", "exclusion"):
            raise InvalidInput(f"criterion {criterion_id}: kind must be inclusion or exclusion", code="criterion_invalid")
        if not isinstance(text, Mapping) or not text.get("en") or not text.get("fr"):
            raise InvalidInput(f"criterion {criterion_id}: text needs 'en' and 'fr'", code="criterion_invalid")
        rule = item.get("rule")
        seen.add(criterion_id)
        criteria.append(
            Criterion(
                id=criterion_id,
                kind=kind,
                text={"en": str(text["en"]), "fr": str(text["fr"])},
                rule=rule if isinstance(rule, Mapping) else None,
            )
        )
    return tuple(criteria)


def verdict_from_answers(criteria: Sequence[Criterion], answers: Mapping[str, str]) -> EligibilityVerdict:
    """The verdict from an investigator's answer per criterion (met / not_met / missing).

    Used while screening data is attested criterion by criterion; unanswered criteria count
    as missing data, and an answer for a criterion the protocol does not have is refused.
    """
    known = {c.id for c in criteria}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InvalidInput(f"Unknown criterion: {', '.join(unknown)}", code="unknown_criterion")
    results = []
    for criterion in criteria:
        raw = answers.get(criterion.id, Outcome.MISSING.value)
        try:
            outcome = Outcome(raw)
        except ValueError:
            raise InvalidInput(
                f"Criterion {criterion.id}: '{raw}' is not one of met, not_met, missing", code="invalid_answer"
            ) from None
        results.append(
            CriterionResult(criterion.id, criterion.kind, outcome, {"attested": outcome.value}, "attested at screening")
        )
    return EligibilityVerdict(overall_verdict(results), tuple(results))
