"""Grades proposed from eCRF lab values with the lab's reference range, through the CTCAE calculator."""

from __future__ import annotations

from datetime import date

import pytest

from cartrial.domain.safety.lab_grades import LabValue, lab_grade, lab_proposals
from cartrial.domain.scores.ctcae import CtcaeIncreaseTerm, grade_lab_increase
from cartrial.domain.scores.errors import CalculatorInputError


def lab(item: str, value: float, unit: str, lower: float | None = None, upper: float | None = None) -> LabValue:
    return LabValue(1, item, "D7", date(2026, 5, 8), value, unit, lower, upper)


@pytest.mark.parametrize(
    ("value", "grade"), [(40.0, 0), (41.0, 1), (120.0, 1), (121.0, 2), (200.0, 2), (201.0, 3), (800.0, 3), (801.0, 4)]
)
def test_alt_increased_by_multiples_of_the_uln(value: float, grade: int) -> None:
    assert grade_lab_increase(term=CtcaeIncreaseTerm.ALT_INCREASED, value=value, uln=40.0).grade == grade


@pytest.mark.parametrize(("value", "grade"), [(21.0, 1), (30.0, 1), (31.0, 2), (61.0, 3), (201.0, 4)])
def test_bilirubin_increased_by_multiples_of_the_uln(value: float, grade: int) -> None:
    assert grade_lab_increase(term=CtcaeIncreaseTerm.BILIRUBIN_INCREASED, value=value, uln=20.0).grade == grade


def test_increase_refuses_a_zero_uln() -> None:
    with pytest.raises(CalculatorInputError):
        grade_lab_increase(term=CtcaeIncreaseTerm.AST_INCREASED, value=10.0, uln=0.0)


def test_decreased_counts_use_the_labs_lln_and_propose_the_term() -> None:
    proposal = lab_grade(lab("anc", 0.4, "10^9/L", 1.8, 7.5))
    assert proposal is not None and (proposal.term, proposal.grade) == ("neutrophil_count_decreased", 4)
    grade_1 = lab_grade(lab("platelets", 140.0, "10^9/L", 150.0, 400.0))
    assert grade_1 is not None and grade_1.grade == 1
    anaemia = lab_grade(lab("haemoglobin", 75.0, "g/L", 120.0, 160.0))
    assert anaemia is not None and (anaemia.term, anaemia.grade) == ("anemia", 3)


def test_without_the_lln_grade_1_is_not_proposed_but_grade_2_is() -> None:
    below_lln = lab_grade(lab("anc", 1.6, "10^9/L"))
    assert below_lln is not None and below_lln.grade == 0
    proposal = lab_grade(lab("anc", 1.2, "10^9/L"))
    assert proposal is not None and proposal.grade == 2


def test_without_the_uln_an_increase_is_not_proposed() -> None:
    assert lab_grade(lab("alt", 900.0, "U/L")) is None
    proposal = lab_grade(lab("alt", 900.0, "U/L", 5.0, 40.0))
    assert proposal is not None and (proposal.term, proposal.grade) == ("alanine_aminotransferase_increased", 4)


def test_normal_values_grade_0_and_items_not_graded_are_not_proposed() -> None:
    normal = lab_grade(lab("anc", 3.0, "10^9/L", 1.8, 7.5))
    assert normal is not None and normal.grade == 0
    assert lab_grade(lab("crp", 90.0, "mg/L", 0.0, 5.0)) is None
    assert lab_proposals([lab("anc", 3.0, "10^9/L", 1.8, 7.5), lab("crp", 90.0, "mg/L", 0.0, 5.0)], taken=()) == []


def test_a_value_already_recorded_is_never_proposed_again() -> None:
    values = [lab("anc", 0.4, "10^9/L", 1.8, 7.5), lab("alt", 900.0, "U/L", 5.0, 40.0)]
    assert [p.lab.item for p in lab_proposals(values, taken=set())] == ["alt", "anc"]
    assert [p.lab.item for p in lab_proposals(values, taken={(1, "anc")})] == ["alt"]


def sample(record: int, item: str, day: int, value: float) -> LabValue:
    """A value of a blood count on day `day` (May 2026), with the lab's usual range."""
    ranges = {"anc": (1.8, 7.5), "lymphocytes": (1.0, 4.0), "platelets": (150.0, 400.0)}
    return LabValue(record, item, f"D{day}", date(2026, 5, day), value, "10^9/L", *ranges[item])


def test_consecutive_abnormal_values_are_one_proposal_at_the_worst_grade() -> None:
    # Grades rise then fall: 2 (D3), 4 (D5), 4 (D7), 2 (D10), then normal on D14.
    values = [
        sample(r, "anc", d, v) for r, d, v in [(1, 3, 1.1), (2, 5, 0.45), (3, 7, 0.3), (4, 10, 1.0), (5, 14, 1.9)]
    ]
    [episode] = lab_proposals(reversed(values), taken=())
    assert (episode.term, episode.grade, episode.start, episode.end) == (
        "neutrophil_count_decreased",
        4,
        date(2026, 5, 3),
        date(2026, 5, 14),
    )
    # The worst value is the first one at the highest grade; the normal value is not a source.
    assert (episode.lab.value, episode.lab.sampled_on) == (0.45, date(2026, 5, 5))
    assert episode.sources == ((1, "anc"), (2, "anc"), (3, "anc"), (4, "anc"))


def test_a_normal_value_between_two_abnormal_runs_makes_two_proposals() -> None:
    values = [sample(1, "anc", 3, 1.0), sample(2, "anc", 7, 2.5), sample(3, "anc", 21, 0.2), sample(4, "anc", 24, 0.3)]
    first, second = lab_proposals(values, taken=())
    assert (first.grade, first.start, first.end, first.sources) == (
        2,
        date(2026, 5, 3),
        date(2026, 5, 7),
        ((1, "anc"),),
    )
    assert (second.grade, second.start, second.end, second.sources) == (
        4,
        date(2026, 5, 21),
        None,
        ((3, "anc"), (4, "anc")),
    )


def test_runs_are_per_term_and_another_analytes_normal_value_does_not_end_one() -> None:
    values = [sample(1, "anc", 3, 1.0), sample(1, "platelets", 3, 200.0), sample(2, "anc", 5, 0.4)]
    values += [sample(2, "platelets", 5, 60.0), sample(3, "anc", 7, 2.0), sample(3, "platelets", 7, 90.0)]
    anc, platelets = lab_proposals(values, taken=())
    assert (anc.term, anc.sources, anc.end) == (
        "neutrophil_count_decreased",
        ((1, "anc"), (2, "anc")),
        date(2026, 5, 7),
    )
    assert (platelets.term, platelets.grade, platelets.start, platelets.end) == (
        "platelet_count_decreased",
        2,
        date(2026, 5, 5),
        None,
    )


def test_an_accepted_episode_is_not_proposed_again_but_a_later_one_is() -> None:
    values = [sample(1, "anc", 3, 1.0), sample(2, "anc", 5, 0.4), sample(3, "anc", 7, 2.5), sample(4, "anc", 21, 0.3)]
    # Any of the episode's values recorded leaves the whole episode out, with values added to it later.
    [later] = lab_proposals(values, taken={(2, "anc")})
    assert later.sources == ((4, "anc"),)
    assert lab_proposals(values[:2], taken={(1, "anc")}) == []


def test_excluded_terms_are_not_proposed() -> None:
    values = [sample(1, "lymphocytes", 1, 0.1), sample(1, "anc", 1, 1.0)]
    assert [p.term for p in lab_proposals(values, taken=())] == [
        "neutrophil_count_decreased",
        "lymphocyte_count_decreased",
    ]
    kept = lab_proposals(values, taken=(), exclude_terms={"lymphocyte_count_decreased"})
    assert [p.term for p in kept] == ["neutrophil_count_decreased"]
