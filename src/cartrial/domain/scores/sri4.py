"""SLE Responder Index 4 (SRI-4): response at a visit against baseline.

Source: Furie RA et al. Novel evidence-based systemic lupus erythematosus responder index.
Arthritis Rheum 2009;61:1143-51 (PMC2748175). Version: SRI-4 (2009). Units: SLEDAI points
(0..105), counts of new BILAG-2004 domain grades (0..9, nine organ domains), PGA on the
SELENA 0..3 scale. All three must hold:
1. SLEDAI reduced by ≥ 4 points;
2. no new BILAG A domain and at most one new BILAG B domain;
3. no PGA worsening, i.e. an increase of < 0.3.
BILAG grades are captured by the investigator; "new A" is A now and not A at baseline, "new B"
is B now and C, D or E at baseline. Rescue medication counted as failure is a SAP rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.scores.sledai2k import MAX_SCORE as SLEDAI_MAX_SCORE
from cartrial.domain.text import N_, Message

# Open item (clinical.md §3.4 and §7.3): Furie 2009 used SELENA-SLEDAI, current trials use
# SLEDAI-2K. Both SLEDAI inputs must be on the same scale; we state SLEDAI-2K (the trial's
# activity score) and report it with every assessment. The arithmetic is the same for both.
SRI4_SLEDAI_VERSION = "SLEDAI-2K"

SLEDAI_REDUCTION_MIN = 4
NEW_BILAG_A_MAX = 0
NEW_BILAG_B_MAX = 1
PGA_WORSENING_MIN = Decimal("0.3")
BILAG_DOMAIN_COUNT = 9
# BILAG-2004 organ domains (clinical.md §3.4) and grades, A (severe) to E (never involved).
BILAG_DOMAINS: tuple[str, ...] = (
    "constitutional",
    "mucocutaneous",
    "neuropsychiatric",
    "musculoskeletal",
    "cardiorespiratory",
    "gastrointestinal",
    "ophthalmic",
    "renal",
    "haematological",
)
BILAG_GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")
_NEW_B_FROM: frozenset[str] = frozenset({"C", "D", "E"})
PGA_MIN = 0.0
PGA_MAX = 3.0


@dataclass(frozen=True)
class UnmetComponent:
    """A failed SRI-4 component: a stable code and the words that say why."""

    code: str
    reason: Message


@dataclass(frozen=True)
class Sri4Assessment:
    """Responder status with the measured change of each component."""

    responder: bool
    sledai_reduction: int
    pga_change: float
    unmet: tuple[UnmetComponent, ...]
    sledai_version: str = SRI4_SLEDAI_VERSION


def assess_sri4(
    *,
    baseline_sledai: int,
    current_sledai: int,
    new_bilag_a: int,
    new_bilag_b: int,
    baseline_pga: float,
    current_pga: float,
) -> Sri4Assessment:
    """SRI-4 response versus baseline."""
    errors: list[FieldError] = [
        (field, Message("must be 0 to {maximum}, got {value}", {"maximum": SLEDAI_MAX_SCORE, "value": value}))
        for field, value in (("baseline_sledai", baseline_sledai), ("current_sledai", current_sledai))
        if not 0 <= value <= SLEDAI_MAX_SCORE
    ]
    errors += [
        (
            field,
            Message("must be 0 to {maximum} domains, got {value}", {"maximum": BILAG_DOMAIN_COUNT, "value": value}),
        )
        for field, value in (("new_bilag_a", new_bilag_a), ("new_bilag_b", new_bilag_b))
        if not 0 <= value <= BILAG_DOMAIN_COUNT
    ]
    errors += [
        (field, Message("must be from 0.0 to 3.0, got {value}", {"value": value}))
        for field, value in (("baseline_pga", baseline_pga), ("current_pga", current_pga))
        if not (math.isfinite(value) and PGA_MIN <= value <= PGA_MAX)
    ]
    if not errors and new_bilag_a + new_bilag_b > BILAG_DOMAIN_COUNT:
        errors.append(
            (
                "new_bilag_b",
                Message("new A and new B domains together exceed the {count} domains", {"count": BILAG_DOMAIN_COUNT}),
            )
        )
    if errors:
        raise CalculatorInputError(errors)

    reduction = baseline_sledai - current_sledai
    # Decimal on the shortest decimal spelling, so 0.7 - 0.4 is exactly 0.3 (a worsening),
    # not the binary 0.29999999999999993 that would pass as "< 0.3".
    pga_change = Decimal(repr(current_pga)) - Decimal(repr(baseline_pga))
    unmet = []
    if reduction < SLEDAI_REDUCTION_MIN:
        unmet.append(
            UnmetComponent(
                "sledai_reduction",
                Message(
                    N_("SLEDAI went from {baseline} to {current} (reduction {reduction}), needs a reduction of ≥ 4"),
                    {"baseline": baseline_sledai, "current": current_sledai, "reduction": reduction},
                ),
            )
        )
    if new_bilag_a > NEW_BILAG_A_MAX:
        unmet.append(
            UnmetComponent("new_bilag_a", Message(N_("{count} new BILAG A domain(s), needs 0"), {"count": new_bilag_a}))
        )
    if new_bilag_b > NEW_BILAG_B_MAX:
        unmet.append(
            UnmetComponent("new_bilag_b", Message(N_("{count} new BILAG B domains, needs ≤ 1"), {"count": new_bilag_b}))
        )
    if pga_change >= PGA_WORSENING_MIN:
        unmet.append(
            UnmetComponent(
                "pga_worsening", Message(N_("PGA rose by {change}, must rise by < 0.3"), {"change": float(pga_change)})
            )
        )
    return Sri4Assessment(
        responder=not unmet,
        sledai_reduction=reduction,
        pga_change=float(pga_change),
        unmet=tuple(unmet),
    )


def new_bilag_domains(*, baseline: Mapping[str, str], current: Mapping[str, str]) -> tuple[int, int]:
    """The counts of new BILAG A and new BILAG B domains at a visit against baseline (SRI-4's rule).

    New A: graded A now and not A at baseline; new B: graded B now and C, D or E at baseline. Grades
    map a domain of BILAG_DOMAINS to a letter of BILAG_GRADES; a domain graded at only one of the two
    visits (BILAG not collected there) cannot be new and is not counted.
    """
    new_a = new_b = 0
    for domain in BILAG_DOMAINS:
        before, now = baseline.get(domain), current.get(domain)
        if before is None or now is None:
            continue
        if now == "A" and before != "A":
            new_a += 1
        elif now == "B" and before in _NEW_B_FROM:
            new_b += 1
    return new_a, new_b
