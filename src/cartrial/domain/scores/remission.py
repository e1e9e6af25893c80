"""Remission and low disease activity in SLE: DORIS 2021 remission and LLDAS.

Sources: van Vollenhoven R et al. DORIS definition of remission in SLE: final
recommendations. Lupus Sci Med 2021;8:e000538 (PMC8614136), abstract and Table 2 final
recommendation. Franklyn K et al. Definition and initial validation of a Lupus Low Disease
Activity State (LLDAS). Ann Rheum Dis 2016;75:1615-21, Table 1; "no new features"
operationalised as in Oon et al. (no SLEDAI item absent at the previous assessment).
Versions: DORIS 2021; LLDAS 2016. Units: physician global assessment (PGA, SELENA 0..3 scale),
prednisolone-equivalent glucocorticoid in mg/day (0..2000, a ceiling above any pulse dose),
SLEDAI-2K descriptors as in `sledai2k`. Both definitions hold at a single visit; how long they
must last is the SAP's business.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from cartrial.domain.clinical_labels import clinical_labels
from cartrial.domain.scores import sledai2k
from cartrial.domain.scores.errors import CalculatorInputError, FieldError
from cartrial.domain.text import N_, Message

PGA_MIN = 0.0
PGA_MAX = 3.0
PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY = 2000.0

# Open item settled as far as the source allows (clinical.md §3.2, §7.2): the DORIS 2021
# abstract says "5 mg/day or less", its Table 2 final row "<5 mg/day"; the 2017 framework
# agrees with the abstract. Default ≤ 5; only a patient on exactly 5 mg/day is affected, and
# the SAP states which reading it uses.
DORIS_PRED_MAX_MG = 5.0
DORIS_PRED_INCLUSIVE = True
# Both places in the 2021 paper say < 0.5 (the 2017 framework used ≤ 0.5).
DORIS_PGA_MAX_EXCLUSIVE = 0.5

LLDAS_SLEDAI_MAX_INCLUSIVE = 4
LLDAS_PGA_MAX_INCLUSIVE = 1.0
LLDAS_PRED_MAX_INCLUSIVE_MG = 7.5

# Our operationalisation of "no activity in major organ systems" (renal, CNS,
# cardiopulmonary, vasculitis, fever) on SLEDAI-2K items, the list Parodis et al. used.
LLDAS_MAJOR_ORGAN_DESCRIPTORS: frozenset[str] = frozenset(
    {
        "urinary_casts", "hematuria", "proteinuria", "pyuria",
        "seizure", "psychosis", "organic_brain_syndrome", "visual_disturbance",
        "cranial_nerve_disorder", "lupus_headache", "cva",
        "pleurisy", "pericarditis",
        "vasculitis",
        "fever",
    }
)  # fmt: skip

# Open operationalisation of Franklyn's "no new features of lupus activity compared with the
# previous assessment": Oon et al. count any SLEDAI item present now and absent before, so a
# newly low complement or newly raised anti-dsDNA is a new feature too. BILAG activity is not
# an input of this calculator; the SAP may add it.
LLDAS_NEW_FEATURE_DESCRIPTORS: frozenset[str] = frozenset(sledai2k.DESCRIPTOR_KEYS)


@dataclass(frozen=True)
class UnmetCriterion:
    """A criterion that failed: a stable code and the words that say why."""

    code: str
    reason: Message


@dataclass(frozen=True)
class DorisAssessment:
    """DORIS 2021 remission at one visit."""

    remission: bool
    clinical_sledai: int
    unmet: tuple[UnmetCriterion, ...]


@dataclass(frozen=True)
class LldasAssessment:
    """LLDAS at one visit, judged against the previous one for new features."""

    lldas: bool
    sledai: int
    new_features: tuple[str, ...]
    unmet: tuple[UnmetCriterion, ...]


def _check_pga_and_prednisone(pga: float, prednisone_mg_per_day: float) -> list[FieldError]:
    errors: list[FieldError] = []
    if not (math.isfinite(pga) and PGA_MIN <= pga <= PGA_MAX):
        errors.append(("pga", Message("must be from 0.0 to 3.0, got {value}", {"value": pga})))
    if not (math.isfinite(prednisone_mg_per_day) and 0 <= prednisone_mg_per_day <= PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY):
        errors.append(
            (
                "prednisone_mg_per_day",
                Message(
                    "must be from 0 to {maximum} mg/day, got {value}",
                    {"maximum": PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY, "value": prednisone_mg_per_day},
                ),
            )
        )
    return errors


def doris_prednisone_bound() -> Message:
    """The DORIS glucocorticoid bound as configured ("≤ 5 mg/day")."""
    if DORIS_PRED_INCLUSIVE:
        return Message(N_("≤ {limit} mg/day"), {"limit": DORIS_PRED_MAX_MG})
    return Message(N_("< {limit} mg/day"), {"limit": DORIS_PRED_MAX_MG})


def doris_prednisone_allowed(prednisone_mg_per_day: float) -> bool:
    """Whether the glucocorticoid dose is within the DORIS bound as configured."""
    if DORIS_PRED_INCLUSIVE:
        return prednisone_mg_per_day <= DORIS_PRED_MAX_MG
    return prednisone_mg_per_day < DORIS_PRED_MAX_MG


def assess_doris_2021(
    *,
    sledai_descriptors: Collection[str],
    pga: float,
    prednisone_mg_per_day: float,
    maintenance_therapy_stable: bool,
) -> DorisAssessment:
    """DORIS 2021: cSLEDAI 0, PGA < 0.5, prednisolone ≤ 5 mg/day, stable maintenance therapy."""
    errors = _check_pga_and_prednisone(pga, prednisone_mg_per_day)
    try:
        csledai = sledai2k.clinical_sledai(sledai_descriptors, field="sledai_descriptors")
    except CalculatorInputError as exc:
        errors.extend(exc.field_messages)
    if errors:
        raise CalculatorInputError(errors)

    unmet = []
    if csledai != 0:
        unmet.append(
            UnmetCriterion("clinical_sledai", Message(N_("clinical SLEDAI is {score}, must be 0"), {"score": csledai}))
        )
    if not pga < DORIS_PGA_MAX_EXCLUSIVE:
        unmet.append(UnmetCriterion("pga", Message(N_("PGA is {pga}, must be < 0.5"), {"pga": pga})))
    if not doris_prednisone_allowed(prednisone_mg_per_day):
        unmet.append(
            UnmetCriterion(
                "prednisone_mg_per_day",
                Message(
                    N_("prednisone {dose} mg/day, must be {bound}"),
                    {"dose": prednisone_mg_per_day, "bound": doris_prednisone_bound()},
                ),
            )
        )
    if not maintenance_therapy_stable:
        unmet.append(
            UnmetCriterion(
                "maintenance_therapy_stable",
                Message(N_("antimalarials, immunosuppressives and biologics are allowed only at stable doses")),
            )
        )
    return DorisAssessment(remission=not unmet, clinical_sledai=csledai, unmet=tuple(unmet))


def assess_lldas(
    *,
    sledai_descriptors: Collection[str],
    previous_sledai_descriptors: Collection[str],
    hemolytic_anemia: bool,
    gi_activity: bool,
    pga: float,
    prednisone_mg_per_day: float,
    standard_maintenance_only: bool,
) -> LldasAssessment:
    """LLDAS (Franklyn 2016): all five criteria at this visit, new features against the last."""
    errors = _check_pga_and_prednisone(pga, prednisone_mg_per_day)
    present: frozenset[str] = frozenset()
    previous: frozenset[str] = frozenset()
    try:
        present = sledai2k.validate_descriptors(sledai_descriptors, field="sledai_descriptors")
    except CalculatorInputError as exc:
        errors.extend(exc.field_messages)
    try:
        previous = sledai2k.validate_descriptors(previous_sledai_descriptors, field="previous_sledai_descriptors")
    except CalculatorInputError as exc:
        errors.extend(exc.field_messages)
    if errors:
        raise CalculatorInputError(errors)

    score = sledai2k.score_sledai2k(descriptors=present).score
    major = [k for k in sledai2k.DESCRIPTOR_KEYS if k in present & LLDAS_MAJOR_ORGAN_DESCRIPTORS]
    new = [k for k in sledai2k.DESCRIPTOR_KEYS if k in (present - previous) & LLDAS_NEW_FEATURE_DESCRIPTORS]
    unmet = []
    if score > LLDAS_SLEDAI_MAX_INCLUSIVE:
        unmet.append(UnmetCriterion("sledai", Message(N_("SLEDAI-2K is {score}, must be ≤ 4"), {"score": score})))
    if major:
        unmet.append(
            UnmetCriterion(
                "major_organ_activity",
                Message(N_("activity in a major organ system: {descriptors}"), {"descriptors": clinical_labels(major)}),
            )
        )
    if hemolytic_anemia:
        unmet.append(UnmetCriterion("hemolytic_anemia", Message(N_("haemolytic anaemia is present"))))
    if gi_activity:
        unmet.append(UnmetCriterion("gi_activity", Message(N_("gastrointestinal activity is present"))))
    if new:
        unmet.append(
            UnmetCriterion(
                "new_features",
                Message(N_("new since the previous assessment: {descriptors}"), {"descriptors": clinical_labels(new)}),
            )
        )
    if pga > LLDAS_PGA_MAX_INCLUSIVE:
        unmet.append(UnmetCriterion("pga", Message(N_("PGA is {pga}, must be ≤ 1"), {"pga": pga})))
    if prednisone_mg_per_day > LLDAS_PRED_MAX_INCLUSIVE_MG:
        unmet.append(
            UnmetCriterion(
                "prednisone_mg_per_day",
                Message(N_("prednisone {dose} mg/day, must be ≤ 7.5 mg/day"), {"dose": prednisone_mg_per_day}),
            )
        )
    if not standard_maintenance_only:
        unmet.append(
            UnmetCriterion(
                "standard_maintenance_only",
                Message(
                    N_(
                        "only well-tolerated standard maintenance doses of immunosuppressives and "
                        "approved biologics are allowed (no investigational drugs)"
                    )
                ),
            )
        )
    return LldasAssessment(lldas=not unmet, sledai=score, new_features=tuple(new), unmet=tuple(unmet))
