"""CTCAE grades proposed from the eCRF's lab values (haematology, chemistry) with the lab's
reference range, through `domain/scores/ctcae.py`. A proposal names its source (form record and
item) so the value that was recorded as an AE (or already proposed) is never proposed again."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from cartrial.domain.scores import ctcae
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import Message

# eCRF lab item → the CTCAE term it is graded for (decreased counts, increased chemistry).
DECREASED_ITEMS: MappingProxyType[str, ctcae.CtcaeLabTerm] = MappingProxyType(
    {
        "anc": ctcae.CtcaeLabTerm.NEUTROPHIL_COUNT_DECREASED,
        "platelets": ctcae.CtcaeLabTerm.PLATELET_COUNT_DECREASED,
        "lymphocytes": ctcae.CtcaeLabTerm.LYMPHOCYTE_COUNT_DECREASED,
        "haemoglobin": ctcae.CtcaeLabTerm.ANEMIA,
    }
)
INCREASED_ITEMS: MappingProxyType[str, ctcae.CtcaeIncreaseTerm] = MappingProxyType(
    {
        "alt": ctcae.CtcaeIncreaseTerm.ALT_INCREASED,
        "ast": ctcae.CtcaeIncreaseTerm.AST_INCREASED,
        "bilirubin": ctcae.CtcaeIncreaseTerm.BILIRUBIN_INCREASED,
    }
)

# The CTCAE term list names anemia "anemia"; the blood-count calculator's terms are the same codes.
# Without the lab's LLN, the grade-1 band cannot be told apart from normal: the grade-2 bound
# stands in for the LLN, so grades 2-4 are still proposed and grade 1 is not (docs/safety.md).
_GRADE_2_BOUND: MappingProxyType[ctcae.CtcaeLabTerm, float] = MappingProxyType(
    {
        ctcae.CtcaeLabTerm.NEUTROPHIL_COUNT_DECREASED: 1.5,
        ctcae.CtcaeLabTerm.PLATELET_COUNT_DECREASED: 75.0,
        ctcae.CtcaeLabTerm.LYMPHOCYTE_COUNT_DECREASED: 0.8,
        ctcae.CtcaeLabTerm.WHITE_BLOOD_CELL_DECREASED: 3.0,
    }
)


@dataclass(frozen=True)
class LabValue:
    """One lab item of a saved form: where it comes from, its value and the lab's range."""

    record_id: int
    item: str
    visit_code: str
    sampled_on: date
    value: float
    unit: str
    lower_limit: float | None
    upper_limit: float | None

    @property
    def source(self) -> tuple[int, str]:
        return (self.record_id, self.item)


@dataclass(frozen=True)
class LabProposal:
    """A grade ≥ 1 proposed as an AE from one lab value."""

    lab: LabValue
    term: str
    grade: int
    band: Message
    version: str


def _lln(term: ctcae.CtcaeLabTerm, lab: LabValue) -> float | None:
    if lab.lower_limit is not None and lab.lower_limit > 0:
        return lab.lower_limit
    if term is ctcae.CtcaeLabTerm.ANEMIA:
        return ctcae.ANEMIA_BOUNDS_BY_UNIT.get(lab.unit, (None, None))[0]
    return _GRADE_2_BOUND.get(term)


def lab_grade(lab: LabValue) -> LabProposal | None:
    """The CTCAE grade of one lab value, when it has one ≥ 1 (None: normal, not graded, or not gradable)."""
    try:
        if lab.item in DECREASED_ITEMS:
            term = DECREASED_ITEMS[lab.item]
            lln = _lln(term, lab)
            if lln is None:
                return None
            graded = ctcae.grade_lab_value(term=term, value=lab.value, unit=lab.unit, lln=lln)
            grade, band, version, code = graded.grade, graded.band, graded.version, graded.term.value
        elif lab.item in INCREASED_ITEMS:
            if lab.upper_limit is None or lab.upper_limit <= 0:
                return None
            raised = ctcae.grade_lab_increase(term=INCREASED_ITEMS[lab.item], value=lab.value, uln=lab.upper_limit)
            grade, band, version, code = raised.grade, raised.band, raised.version, raised.term.value
        else:
            return None
    except CalculatorInputError:
        # A value the calculator cannot grade (a unit it does not know) is not proposed: the
        # investigator grades it by hand.
        return None
    if grade < 1:
        return None
    return LabProposal(lab=lab, term=code, grade=grade, band=band, version=version)


def lab_proposals(labs: Iterable[LabValue], taken: Collection[tuple[int, str]]) -> list[LabProposal]:
    """Grades ≥ 1 from `labs`, leaving out the sources already recorded as an AE (`taken`)."""
    proposals = []
    for lab in labs:
        if lab.source in taken:
            continue
        proposal = lab_grade(lab)
        if proposal is not None:
            proposals.append(proposal)
    return sorted(proposals, key=lambda p: (p.lab.sampled_on, p.lab.item))
