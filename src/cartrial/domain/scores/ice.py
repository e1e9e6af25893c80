"""Immune effector cell-associated encephalopathy (ICE) score, ASTCT 2019.

Source: Lee DW et al. Biol Blood Marrow Transplant 2019;25:625-38 (ICE score, adults),
item table as in PMC8153820 Table 2. Version: ASTCT 2019, adults (children ≤ 12 years use
CAPD instead). Units: points. Ranges: orientation 0..4 (year, month, city, hospital), naming
0..3 (three objects), command 0..1, writing 0..1, attention 0..1 (counting back from 100 by
tens); total 0..10, 10 = normal. The score feeds the ICE domain of the ICANS grade.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import Message

ITEM_MAX_POINTS: MappingProxyType[str, int] = MappingProxyType(
    {"orientation": 4, "naming": 3, "command": 1, "writing": 1, "attention": 1}
)
MAX_SCORE = sum(ITEM_MAX_POINTS.values())


@dataclass(frozen=True)
class IceScore:
    """The total and the points of each task, in table order."""

    score: int
    items: tuple[tuple[str, int], ...]


def score_ice(*, orientation: int, naming: int, command: int, writing: int, attention: int) -> IceScore:
    """Add the five ICE tasks; each must lie within its own maximum."""
    points = {
        "orientation": orientation,
        "naming": naming,
        "command": command,
        "writing": writing,
        "attention": attention,
    }
    errors = [
        (
            item,
            Message("must be 0 to {maximum} points, got {value}", {"maximum": ITEM_MAX_POINTS[item], "value": value}),
        )
        for item, value in points.items()
        if not 0 <= value <= ITEM_MAX_POINTS[item]
    ]
    if errors:
        raise CalculatorInputError(errors)
    return IceScore(score=sum(points.values()), items=tuple(points.items()))
