"""SLEDAI-2K and clinical SLEDAI: lupus disease activity from 24 weighted descriptors.

Source: Gladman DD, Ibañez D, Urowitz MB. Systemic lupus erythematosus disease activity
index 2000. J Rheumatol 2002;29:288-91 (descriptors, weights, 10-day window). 30-day window:
Touma Z et al., Lupus 2010;19:49-51. Clinical SLEDAI (serology left out) as used by DORIS 2021.
Version: SLEDAI-2K (2002). Units: points. Ranges: SLEDAI-2K 0..105, clinical SLEDAI 0..101;
lookback window 10 days (default) or 30 days, stored with every score.

A descriptor scores its full weight once, whatever its severity, when it was present at the
visit or within the window. Whether a finding is due to lupus (not infection, drug, ...) is
the investigator's judgement captured in the eCRF; nothing here infers it. The threshold
predicates below turn a measurement into "meets the descriptor's threshold" so the `>` and
`≥` of the glossary are written once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.text import N_, Message

ArthritisRule = Literal[">2", ">=2"]

# Open item (clinical.md §1.2 and §7.1): secondary sources split between "> 2 joints"
# (medicalcriteria.com, HHE table, the 1992 SLEDAI glossary) and "≥ 2 joints" (Suszek 2024,
# Cipriano 2015); the Gladman 2002 form could not be checked. Default to "> 2", the wording of
# the cited SLEDAI-2K page and of the parent SLEDAI, until the clinical lead confirms it
# against the form the trial uses. The rule is reported with every score.
ARTHRITIS_RULE: ArthritisRule = ">2"

LOOKBACK_DAYS_CHOICES: tuple[int, ...] = (10, 30)
DEFAULT_LOOKBACK_DAYS = 10

# Glossary thresholds, each strict as worded in SLEDAI-2K (clinical.md §1.2).
PROTEINURIA_MIN_EXCLUSIVE_G_PER_24H = 0.5
HEMATURIA_MIN_EXCLUSIVE_RBC_PER_HPF = 5
PYURIA_MIN_EXCLUSIVE_WBC_PER_HPF = 5
FEVER_MIN_EXCLUSIVE_C = 38.0
THROMBOCYTOPENIA_MAX_EXCLUSIVE_10E9_PER_L = 100.0
LEUKOPENIA_MAX_EXCLUSIVE_10E9_PER_L = 3.0


@dataclass(frozen=True)
class Descriptor:
    """One SLEDAI-2K item: its key, weight and organ system; serology items leave cSLEDAI."""

    key: str
    weight: int
    organ_system: str
    serology: bool = False


DESCRIPTORS: tuple[Descriptor, ...] = (
    Descriptor("seizure", 8, "cns"),
    Descriptor("psychosis", 8, "cns"),
    Descriptor("organic_brain_syndrome", 8, "cns"),
    Descriptor("visual_disturbance", 8, "cns"),
    Descriptor("cranial_nerve_disorder", 8, "cns"),
    Descriptor("lupus_headache", 8, "cns"),
    Descriptor("cva", 8, "cns"),
    Descriptor("vasculitis", 8, "vascular"),
    Descriptor("arthritis", 4, "musculoskeletal"),
    Descriptor("myositis", 4, "musculoskeletal"),
    Descriptor("urinary_casts", 4, "renal"),
    Descriptor("hematuria", 4, "renal"),
    Descriptor("proteinuria", 4, "renal"),
    Descriptor("pyuria", 4, "renal"),
    Descriptor("rash", 2, "mucocutaneous"),
    Descriptor("alopecia", 2, "mucocutaneous"),
    Descriptor("mucosal_ulcers", 2, "mucocutaneous"),
    Descriptor("pleurisy", 2, "serosal"),
    Descriptor("pericarditis", 2, "serosal"),
    Descriptor("low_complement", 2, "serology", serology=True),
    Descriptor("increased_dna_binding", 2, "serology", serology=True),
    Descriptor("fever", 1, "constitutional"),
    Descriptor("thrombocytopenia", 1, "hematologic"),
    Descriptor("leukopenia", 1, "hematologic"),
)

DESCRIPTOR_KEYS: tuple[str, ...] = tuple(d.key for d in DESCRIPTORS)

# What each descriptor means, shown beside it on the eCRF (English msgids, translated by the
# adapter). Paraphrased from the SLEDAI-2K glossary (Gladman 2002; clinical.md §1.2); the arthritis
# count follows ARTHRITIS_RULE.
DEFINITIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        "seizure": N_("Recent onset; metabolic, infectious and drug causes excluded."),
        "psychosis": N_(
            "Severe disturbance in the perception of reality impairing normal function (hallucinations, "
            "incoherence, loose associations, illogical thinking, bizarre or catatonic behaviour); uraemia "
            "and drugs excluded."
        ),
        "organic_brain_syndrome": N_(
            "Rapid-onset, fluctuating impairment of orientation, memory or intellect with clouded "
            "consciousness and reduced attention, plus at least 2 of: perceptual disturbance, incoherent "
            "speech, insomnia or daytime drowsiness, altered psychomotor activity; metabolic, infectious "
            "and drug causes excluded."
        ),
        "visual_disturbance": N_(
            "Lupus retinal changes: cytoid bodies, retinal haemorrhages, serous exudate or haemorrhage in "
            "the choroid, or optic neuritis; hypertension, infection and drugs excluded."
        ),
        "cranial_nerve_disorder": N_("New sensory or motor neuropathy of a cranial nerve."),
        "lupus_headache": N_("Severe, persistent headache, possibly migrainous, not responding to narcotic analgesia."),
        "cva": N_("New cerebrovascular accident; arteriosclerosis excluded."),
        "vasculitis": N_(
            "Ulceration, gangrene, tender finger nodules, periungual infarction, splinter haemorrhages, "
            "or vasculitis proven by biopsy or angiogram."
        ),
        "arthritis": (
            N_("More than 2 joints with pain and inflammatory signs (tenderness, swelling or effusion).")
            if ARTHRITIS_RULE == ">2"
            else N_("At least 2 joints with pain and inflammatory signs (tenderness, swelling or effusion).")
        ),
        "myositis": N_(
            "Proximal muscle aching or weakness with raised CK or aldolase, EMG changes or a myositis biopsy."
        ),
        "urinary_casts": N_("Heme-granular or red cell casts."),
        "hematuria": N_("More than 5 red cells per high-power field; stone, infection and other causes excluded."),
        "proteinuria": N_("More than 0.5 g/24 h, new or persistent."),
        "pyuria": N_("More than 5 white cells per high-power field; infection excluded."),
        "rash": N_("Inflammatory lupus rash, new or ongoing."),
        "alopecia": N_("Abnormal patchy or diffuse hair loss, new or ongoing."),
        "mucosal_ulcers": N_("Oral or nasal ulcers, new or ongoing."),
        "pleurisy": N_("Pleuritic chest pain with pleural rub, effusion or pleural thickening."),
        "pericarditis": N_(
            "Pericardial pain with at least one of: rub, effusion, ECG or echocardiographic confirmation."
        ),
        "low_complement": N_("CH50, C3 or C4 below the testing laboratory's lower limit of normal."),
        "increased_dna_binding": N_("Anti-dsDNA above the testing laboratory's normal range."),
        "fever": N_("Above 38 °C; infection excluded."),
        "thrombocytopenia": N_("Platelets below 100 × 10⁹/L; drug causes excluded."),
        "leukopenia": N_("White cells below 3 × 10⁹/L; drug causes excluded."),
    }
)
WEIGHTS: MappingProxyType[str, int] = MappingProxyType({d.key: d.weight for d in DESCRIPTORS})
SEROLOGY_KEYS: frozenset[str] = frozenset(d.key for d in DESCRIPTORS if d.serology)
MAX_SCORE = sum(WEIGHTS.values())
MAX_CLINICAL_SCORE = MAX_SCORE - sum(WEIGHTS[k] for k in SEROLOGY_KEYS)


@dataclass(frozen=True)
class CountedDescriptor:
    """A descriptor that was present and the points it added."""

    descriptor: str
    weight: int
    serology: bool


@dataclass(frozen=True)
class Sledai2kScore:
    """SLEDAI-2K with its clinical part, what counted, and how it was collected."""

    score: int
    clinical_score: int
    counted: tuple[CountedDescriptor, ...]
    lookback_days: int
    arthritis_rule: ArthritisRule


def validate_descriptors(descriptors: Collection[str], *, field: str) -> frozenset[str]:
    """The set of present descriptors; an unknown key is an error, never silently dropped."""
    unknown = sorted(set(descriptors) - set(DESCRIPTOR_KEYS))
    if unknown:
        raise CalculatorInputError.for_field(
            field, Message("unknown SLEDAI-2K descriptor(s): {descriptors}", {"descriptors": unknown})
        )
    return frozenset(descriptors)


def score_sledai2k(*, descriptors: Collection[str], lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> Sledai2kScore:
    """Score the descriptors present at the visit or within the lookback window."""
    present = validate_descriptors(descriptors, field="descriptors")
    if lookback_days not in LOOKBACK_DAYS_CHOICES:
        raise CalculatorInputError.for_field(
            "lookback_days", Message("must be 10 or 30 (days), got {value}", {"value": repr(lookback_days)})
        )
    counted = tuple(
        CountedDescriptor(descriptor=d.key, weight=d.weight, serology=d.serology)
        for d in DESCRIPTORS
        if d.key in present
    )
    score = sum(c.weight for c in counted)
    clinical_score = sum(c.weight for c in counted if not c.serology)
    return Sledai2kScore(
        score=score,
        clinical_score=clinical_score,
        counted=counted,
        lookback_days=lookback_days,
        arthritis_rule=ARTHRITIS_RULE,
    )


def clinical_sledai(descriptors: Collection[str], *, field: str = "descriptors") -> int:
    """Clinical SLEDAI (cSLEDAI): SLEDAI-2K without low complement and increased DNA binding."""
    present = validate_descriptors(descriptors, field=field)
    return sum(WEIGHTS[k] for k in present - SEROLOGY_KEYS)


def arthritis_present(*, inflamed_joint_count: int, rule: ArthritisRule = ARTHRITIS_RULE) -> bool:
    """Whether the count of joints with inflammatory signs meets the arthritis descriptor."""
    if inflamed_joint_count < 0:
        raise CalculatorInputError.for_field("inflamed_joint_count", Message("must be ≥ 0"))
    if rule == ">2":
        return inflamed_joint_count > 2
    return inflamed_joint_count >= 2


def proteinuria_present(*, protein_g_per_24h: float) -> bool:
    """Proteinuria descriptor: strictly more than 0.5 g/24 h (0.5 exactly does not count)."""
    return protein_g_per_24h > PROTEINURIA_MIN_EXCLUSIVE_G_PER_24H


def hematuria_present(*, rbc_per_hpf: int) -> bool:
    """Haematuria descriptor: more than 5 red cells per high-power field."""
    return rbc_per_hpf > HEMATURIA_MIN_EXCLUSIVE_RBC_PER_HPF


def pyuria_present(*, wbc_per_hpf: int) -> bool:
    """Pyuria descriptor: more than 5 white cells per high-power field."""
    return wbc_per_hpf > PYURIA_MIN_EXCLUSIVE_WBC_PER_HPF


def fever_present(*, temperature_c: float) -> bool:
    """Fever descriptor: above 38 °C (38.0 exactly does not count)."""
    return temperature_c > FEVER_MIN_EXCLUSIVE_C


def thrombocytopenia_present(*, platelets_10e9_per_l: float) -> bool:
    """Thrombocytopenia descriptor: platelets below 100 × 10⁹/L."""
    return platelets_10e9_per_l < THROMBOCYTOPENIA_MAX_EXCLUSIVE_10E9_PER_L


def leukopenia_present(*, wbc_10e9_per_l: float) -> bool:
    """Leukopenia descriptor: white cells below 3 × 10⁹/L."""
    return wbc_10e9_per_l < LEUKOPENIA_MAX_EXCLUSIVE_10E9_PER_L
