"""DLT rules from the protocol file, evaluated on recorded AEs in the window D0–D28."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cartrial.domain.safety.adverse_events import Relatedness
from cartrial.domain.safety.dlt import AeForDlt, dlt_candidates
from cartrial.protocols import load_protocol

D0 = date(2026, 5, 1)
SAFETY = load_protocol().safety
assert SAFETY is not None
RULES = SAFETY.dlt


def ae(
    term: str, grade: int, day: int = 5, *, end_day: int | None = 10, related: Relatedness | None = None
) -> AeForDlt:
    return AeForDlt(
        ae_id=1,
        term=term,
        grade=grade,
        start_date=D0 + timedelta(days=day),
        end_date=D0 + timedelta(days=end_day) if end_day is not None else None,
        relatedness_cart=related,
    )


def matched(event: AeForDlt) -> str | None:
    found = dlt_candidates(RULES, [event], D0)
    return found[0].rule.code if found else None


def test_the_window_and_rules_come_from_the_protocol() -> None:
    assert RULES.window_days == (0, 28)
    assert {r.code for r in RULES.rules} >= {"crs_grade4", "icans_grade3", "grade5"}


@pytest.mark.parametrize(
    ("event", "rule"),
    [
        (ae("cytokine_release_syndrome", 4), "crs_grade4"),
        (ae("cytokine_release_syndrome", 3, related=Relatedness.DEFINITE), None),  # grade 3 CRS: not a DLT
        (ae("icans", 3), "icans_grade3"),
        (ae("icans", 2), None),
        (ae("neutrophil_count_decreased", 4, end_day=None), "cytopenia_grade4_beyond_d28"),
        (ae("platelet_count_decreased", 4, end_day=35), "cytopenia_grade4_beyond_d28"),
        (ae("neutrophil_count_decreased", 4, end_day=20), None),  # recovered by D28
        (ae("sepsis", 4, related=Relatedness.POSSIBLE), "non_haematological_grade3_related"),
        (ae("sepsis", 4, related=Relatedness.UNLIKELY), None),
        (ae("sepsis", 4), None),  # relatedness not yet assessed
        (ae("fever", 3, related=Relatedness.DEFINITE), None),  # excluded term
        (ae("febrile_neutropenia", 3, related=Relatedness.PROBABLE), None),  # haematological
        (ae("death_nos", 5, related=Relatedness.NOT_RELATED), "grade5"),
    ],
)
def test_each_rule_matches_what_it_says(event: AeForDlt, rule: str | None) -> None:
    assert matched(event) == rule


def test_only_aes_starting_in_the_window_count_and_none_before_infusion() -> None:
    assert matched(ae("cytokine_release_syndrome", 4, day=28)) == "crs_grade4"
    assert matched(ae("cytokine_release_syndrome", 4, day=29, end_day=30)) is None
    assert matched(ae("cytokine_release_syndrome", 4, day=-1)) is None
    assert dlt_candidates(RULES, [ae("cytokine_release_syndrome", 4)], None) == []
