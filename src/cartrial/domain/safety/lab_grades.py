"""CTCAE grades proposed from the eCRF's lab values (haematology, chemistry) with the lab's
reference range, through `domain/scores/ctcae.py`. A coordinator records one AE per abnormality
episode, not one per blood test: consecutive abnormal values of a term, with no normal value of it
between them, are one proposal (its worst grade, from its first abnormal sample to the first normal
one). A proposal names its sources (form record and item) so an episode recorded as an AE is never
proposed again."""

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
class LabGrade:
    """The CTCAE grade of one lab value: 0 when normal for its term."""

    lab: LabValue
    term: str
    grade: int
    band: Message
    version: str


@dataclass(frozen=True)
class LabProposal:
    """One abnormality episode of a term proposed as an AE: its abnormal values in sample order, the
    worst of them (its grade is the episode's), and the first normal value after them, if any."""

    grades: tuple[LabGrade, ...]
    recovery: LabValue | None

    @property
    def worst(self) -> LabGrade:
        """The value of the highest grade (the first one reached when it repeats)."""
        return max(self.grades, key=lambda g: g.grade)

    @property
    def lab(self) -> LabValue:
        """The worst value: the AE's own source, and the one that names the proposal."""
        return self.worst.lab

    @property
    def term(self) -> str:
        return self.worst.term

    @property
    def grade(self) -> int:
        return self.worst.grade

    @property
    def band(self) -> Message:
        return self.worst.band

    @property
    def version(self) -> str:
        return self.worst.version

    @property
    def start(self) -> date:
        """The first abnormal sample's date."""
        return self.grades[0].lab.sampled_on

    @property
    def end(self) -> date | None:
        """The first later normal value's date; None while the episode is ongoing."""
        return self.recovery.sampled_on if self.recovery else None

    @property
    def sources(self) -> tuple[tuple[int, str], ...]:
        """Every value the episode covers (form record, item)."""
        return tuple(g.lab.source for g in self.grades)


def _lln(term: ctcae.CtcaeLabTerm, lab: LabValue) -> float | None:
    if lab.lower_limit is not None and lab.lower_limit > 0:
        return lab.lower_limit
    if term is ctcae.CtcaeLabTerm.ANEMIA:
        return ctcae.ANEMIA_BOUNDS_BY_UNIT.get(lab.unit, (None, None))[0]
    return _GRADE_2_BOUND.get(term)


def lab_grade(lab: LabValue) -> LabGrade | None:
    """The CTCAE grade of one lab value, 0 when normal (None: not a graded item, or not gradable)."""
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
    return LabGrade(lab=lab, term=code, grade=grade, band=band, version=version)


def lab_proposals(
    labs: Iterable[LabValue], taken: Collection[tuple[int, str]], exclude_terms: Collection[str] = ()
) -> list[LabProposal]:
    """The abnormality episodes of `labs`, one per run of grade ≥ 1 values of a term (sample order)
    that a normal value (grade 0) of the term ends. An episode holding a value already recorded as
    an AE (`taken`) is left out, with its later values: they belong to that AE, corrected if need
    be. Terms the protocol expects (`exclude_terms`) are not proposed."""
    by_term: dict[str, list[LabGrade]] = {}
    for lab in sorted(labs, key=lambda v: (v.sampled_on, v.record_id, v.item)):
        graded = lab_grade(lab)
        if graded is not None and graded.term not in exclude_terms:
            by_term.setdefault(graded.term, []).append(graded)
    proposals = []
    for series in by_term.values():
        run: list[LabGrade] = []
        for graded in [*series, None]:
            if graded is not None and graded.grade >= 1:
                run.append(graded)
                continue
            if run and not any(g.lab.source in taken for g in run):
                proposals.append(LabProposal(grades=tuple(run), recovery=graded.lab if graded else None))
            run = []
    return sorted(proposals, key=lambda p: (p.start, p.grades[0].lab.item))
