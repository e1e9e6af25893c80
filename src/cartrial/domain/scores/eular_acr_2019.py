"""2019 EULAR/ACR classification criteria for systemic lupus erythematosus.

Source: Aringer M et al. 2019 European League Against Rheumatism/American College of
Rheumatology classification criteria for systemic lupus erythematosus. Ann Rheum Dis
2019;78:1151-9 and Arthritis Rheumatol 2019;71:1400-12 (doi:10.1136/annrheumdis-2018-214819).
Version: 2019. Units: points; the ANA titre is the denominator of the highest titre ever on
HEp-2 cells (80 for 1:80, 0 if negative). Ranges: total 0..51; classified at ≥ 10 points
with at least one clinical criterion, and only when the entry criterion (ANA ≥ 1:80) is met.

Each criterion counts if it occurred at least once and nothing explains it better than SLE
(the investigator's judgement, captured upstream). Within a domain only the highest-weighted
criterion met counts; low C3 together with low C4 is one criterion of weight 4.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import Message

ANA_ENTRY_MIN_TITER = 80
CLASSIFICATION_MIN_SCORE = 10
# A plausibility bound that catches typing errors; HEp-2 dilution series end well below it.
ANA_TITER_MAX = 1_000_000

LOW_C3_AND_LOW_C4 = "low_c3_and_low_c4"
LOW_C3_AND_LOW_C4_WEIGHT = 4


@dataclass(frozen=True)
class Criterion:
    """One additive criterion: its key, domain, weight and whether the domain is clinical."""

    key: str
    domain: str
    weight: int
    clinical: bool


# Table order of Aringer 2019; on a tie within a domain the first listed is reported.
CRITERIA: tuple[Criterion, ...] = (
    Criterion("fever", "constitutional", 2, True),
    Criterion("leukopenia", "hematologic", 3, True),
    Criterion("thrombocytopenia", "hematologic", 4, True),
    Criterion("autoimmune_hemolysis", "hematologic", 4, True),
    Criterion("delirium", "neuropsychiatric", 2, True),
    Criterion("psychosis", "neuropsychiatric", 3, True),
    Criterion("seizure", "neuropsychiatric", 5, True),
    Criterion("non_scarring_alopecia", "mucocutaneous", 2, True),
    Criterion("oral_ulcers", "mucocutaneous", 2, True),
    Criterion("subacute_cutaneous_lupus", "mucocutaneous", 4, True),
    Criterion("discoid_lupus", "mucocutaneous", 4, True),
    Criterion("acute_cutaneous_lupus", "mucocutaneous", 6, True),
    Criterion("pleural_effusion", "serosal", 5, True),
    Criterion("pericardial_effusion", "serosal", 5, True),
    Criterion("acute_pericarditis", "serosal", 6, True),
    Criterion("joint_involvement", "musculoskeletal", 6, True),
    Criterion("proteinuria", "renal", 4, True),
    Criterion("lupus_nephritis_class_2", "renal", 8, True),
    Criterion("lupus_nephritis_class_5", "renal", 8, True),
    Criterion("lupus_nephritis_class_3", "renal", 10, True),
    Criterion("lupus_nephritis_class_4", "renal", 10, True),
    Criterion("anticardiolipin", "antiphospholipid_antibodies", 2, False),
    Criterion("anti_beta2gp1", "antiphospholipid_antibodies", 2, False),
    Criterion("lupus_anticoagulant", "antiphospholipid_antibodies", 2, False),
    Criterion("low_c3", "complement_proteins", 3, False),
    Criterion("low_c4", "complement_proteins", 3, False),
    Criterion("anti_dsdna", "sle_specific_antibodies", 6, False),
    Criterion("anti_smith", "sle_specific_antibodies", 6, False),
)

CRITERION_KEYS: tuple[str, ...] = tuple(c.key for c in CRITERIA)
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(c.domain for c in CRITERIA))
_BY_KEY = {c.key: c for c in CRITERIA}


@dataclass(frozen=True)
class CountedCriterion:
    """The criterion that carries its domain's points."""

    domain: str
    criterion: str
    weight: int
    clinical: bool


@dataclass(frozen=True)
class OutweighedCriterion:
    """A criterion that was met but did not count, because its domain already counted another."""

    domain: str
    criterion: str
    weight: int
    counted_instead: str


@dataclass(frozen=True)
class EularAcr2019Classification:
    """Entry criterion, additive score, and whether the patient is classified as SLE."""

    entry_criterion_met: bool
    score: int
    clinical_criterion_met: bool
    classified: bool
    counted: tuple[CountedCriterion, ...]
    outweighed: tuple[OutweighedCriterion, ...]


def classify_eular_acr_2019(*, ana_titer: int, criteria: Collection[str]) -> EularAcr2019Classification:
    """Apply the entry criterion, then count the highest-weighted criterion met in each domain."""
    errors: list[FieldError] = []
    if not 0 <= ana_titer <= ANA_TITER_MAX:
        errors.append(
            (
                "ana_titer",
                Message("must be between 0 and {maximum}, got {value}", {"maximum": ANA_TITER_MAX, "value": ana_titer}),
            )
        )
    unknown = sorted(set(criteria) - set(CRITERION_KEYS))
    if unknown:
        errors.append(("criteria", Message("unknown EULAR/ACR 2019 criteria: {criteria}", {"criteria": unknown})))
    if errors:
        raise CalculatorInputError(errors)

    if ana_titer < ANA_ENTRY_MIN_TITER:
        return EularAcr2019Classification(
            entry_criterion_met=False,
            score=0,
            clinical_criterion_met=False,
            classified=False,
            counted=(),
            outweighed=(),
        )

    present = frozenset(criteria)
    counted: list[CountedCriterion] = []
    outweighed: list[OutweighedCriterion] = []
    for domain in DOMAINS:
        met = [c for c in CRITERIA if c.domain == domain and c.key in present]
        if not met:
            continue
        best = _best_in_domain(met)
        counted.append(best)
        outweighed.extend(
            OutweighedCriterion(domain=domain, criterion=c.key, weight=c.weight, counted_instead=best.criterion)
            for c in met
            if c.key != best.criterion and not _is_part_of(c.key, best.criterion)
        )

    score = sum(c.weight for c in counted)
    clinical_met = any(c.clinical for c in counted)
    return EularAcr2019Classification(
        entry_criterion_met=True,
        score=score,
        clinical_criterion_met=clinical_met,
        classified=clinical_met and score >= CLASSIFICATION_MIN_SCORE,
        counted=tuple(counted),
        outweighed=tuple(outweighed),
    )


def _best_in_domain(met: list[Criterion]) -> CountedCriterion:
    """The one criterion a domain contributes; low C3 and low C4 together form their own."""
    keys = {c.key for c in met}
    if {"low_c3", "low_c4"} <= keys:
        return CountedCriterion(
            domain="complement_proteins",
            criterion=LOW_C3_AND_LOW_C4,
            weight=LOW_C3_AND_LOW_C4_WEIGHT,
            clinical=False,
        )
    best = max(met, key=lambda c: c.weight)  # max keeps the first of equal weights
    return CountedCriterion(domain=best.domain, criterion=best.key, weight=best.weight, clinical=best.clinical)


def _is_part_of(key: str, counted_criterion: str) -> bool:
    """Low C3 and low C4 are not outweighed by their own combination: they are inside it."""
    return counted_criterion == LOW_C3_AND_LOW_C4 and key in ("low_c3", "low_c4")
