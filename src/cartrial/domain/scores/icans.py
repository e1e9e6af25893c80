"""Immune effector cell-associated neurotoxicity syndrome (ICANS) grade, ASTCT 2019, adults.

Source: Lee DW et al. Biol Blood Marrow Transplant 2019;25:625-38 (ICANS grading for
adults, table and footnotes as reproduced word for word in PMC8403007 Table 4 and PMC7990806
Table 2). Version: ASTCT 2019, adults. Units: ICE score in points (0..10, or not performed).
Range: grade 0..4.

Grade = the most severe of five domains, each counted only when nothing else explains it:
ICE score, depressed level of consciousness, seizure, motor findings, raised intracranial
pressure / cerebral oedema. Tremor, myoclonus and intracranial haemorrhage are not ICANS.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.ice import MAX_SCORE as ICE_MAX_SCORE
from cartrial.domain.text import N_, Message, label

# The footnote to the ICE row says an ICE of 0 "may be classified" as grade 3 (awake with
# global aphasia) or grade 4 (unarousable); clinical.md §4.2 takes it as the rule. So the ICE
# row alone gives at most grade 3: grade 4 needs the consciousness domain to say unarousable.
ICE_ZERO_AWAKE_GRADE = 3


class Consciousness(StrEnum):
    """Level of consciousness; `normal` means not depressed, so it adds no grade."""

    NORMAL = "normal"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TACTILE = "awakens_to_tactile"
    UNAROUSABLE = "unarousable"


class Seizure(StrEnum):
    """Clinical or EEG seizures; prolonged means > 5 min or repeated without return to baseline."""

    NONE = "none"
    RAPIDLY_RESOLVING = "rapidly_resolving"
    PROLONGED_OR_REPETITIVE = "prolonged_or_repetitive"


class MotorWeakness(StrEnum):
    """Deep focal motor weakness (hemiparesis, paraparesis)."""

    NONE = "none"
    DEEP_FOCAL = "deep_focal"


class CerebralEdema(StrEnum):
    """Oedema on imaging; `diffuse` also stands for posturing, CN VI palsy, papilloedema, Cushing."""

    NONE = "none"
    FOCAL = "focal"
    DIFFUSE = "diffuse"


# How each finding reads on a form and in the explanation (msgids; the JSON keeps the codes).
CONSCIOUSNESS_LABELS: dict[Consciousness, str] = {
    Consciousness.NORMAL: N_("Normal"),
    Consciousness.AWAKENS_SPONTANEOUSLY: N_("Awakens spontaneously"),
    Consciousness.AWAKENS_TO_VOICE: N_("Awakens to voice"),
    Consciousness.AWAKENS_TO_TACTILE: N_("Awakens only to tactile stimulus"),
    Consciousness.UNAROUSABLE: N_("Unarousable, or needs vigorous or repetitive stimuli; stupor or coma"),
}
SEIZURE_LABELS: dict[Seizure, str] = {
    Seizure.NONE: N_("None"),
    Seizure.RAPIDLY_RESOLVING: N_("Any seizure that resolves rapidly, or non-convulsive seizures on EEG that resolve"),
    Seizure.PROLONGED_OR_REPETITIVE: N_("Prolonged (> 5 min) or repetitive seizures without return to baseline"),
}
MOTOR_WEAKNESS_LABELS: dict[MotorWeakness, str] = {
    MotorWeakness.NONE: N_("No motor weakness"),
    MotorWeakness.DEEP_FOCAL: N_("Deep focal motor weakness (hemiparesis, paraparesis)"),
}
CEREBRAL_EDEMA_LABELS: dict[CerebralEdema, str] = {
    CerebralEdema.NONE: N_("No oedema"),
    CerebralEdema.FOCAL: N_("Focal or local oedema on imaging"),
    CerebralEdema.DIFFUSE: N_(
        "Diffuse oedema on imaging, decerebrate or decorticate posturing, cranial nerve VI palsy, "
        "papilloedema or Cushing's triad"
    ),
}

_CONSCIOUSNESS_GRADE = {
    Consciousness.NORMAL: 0,
    Consciousness.AWAKENS_SPONTANEOUSLY: 1,
    Consciousness.AWAKENS_TO_VOICE: 2,
    Consciousness.AWAKENS_TO_TACTILE: 3,
    Consciousness.UNAROUSABLE: 4,
}
_SEIZURE_GRADE = {Seizure.NONE: 0, Seizure.RAPIDLY_RESOLVING: 3, Seizure.PROLONGED_OR_REPETITIVE: 4}
_MOTOR_GRADE = {MotorWeakness.NONE: 0, MotorWeakness.DEEP_FOCAL: 4}
_EDEMA_GRADE = {CerebralEdema.NONE: 0, CerebralEdema.FOCAL: 3, CerebralEdema.DIFFUSE: 4}


@dataclass(frozen=True)
class DomainGrade:
    """What one ICANS domain contributes and the finding behind it."""

    domain: str
    grade: int
    finding: Message


@dataclass(frozen=True)
class IcansGrade:
    """The ICANS grade (0 = no ICANS), each domain's part, and whether ICE was performed."""

    grade: int
    domains: tuple[DomainGrade, ...]
    ice_performed: bool


def ice_domain_grade(ice_score: int) -> int:
    """ICE 10 → 0, 7-9 → 1, 3-6 → 2, 0-2 → 3 (grade 4 comes from consciousness, not from ICE)."""
    if ice_score >= 10:
        return 0
    if ice_score >= 7:
        return 1
    if ice_score >= 3:
        return 2
    return ICE_ZERO_AWAKE_GRADE


def grade_icans(
    *,
    ice_score: int | None,
    consciousness: Consciousness,
    seizure: Seizure,
    motor_weakness: MotorWeakness,
    cerebral_edema: CerebralEdema,
) -> IcansGrade:
    """Grade ICANS; `ice_score` None means the ICE could not be performed."""
    consciousness, seizure = Consciousness(consciousness), Seizure(seizure)
    motor_weakness, cerebral_edema = MotorWeakness(motor_weakness), CerebralEdema(cerebral_edema)
    if ice_score is not None and not 0 <= ice_score <= ICE_MAX_SCORE:
        raise CalculatorInputError.for_field(
            "ice_score",
            Message("must be 0 to {maximum} or null, got {value}", {"maximum": ICE_MAX_SCORE, "value": ice_score}),
        )
    if consciousness is Consciousness.UNAROUSABLE and ice_score not in (None, 0):
        raise CalculatorInputError.for_field(
            "ice_score",
            Message("an unarousable patient cannot score {value} on the ICE; give 0 or null", {"value": ice_score}),
        )
    domains = [
        DomainGrade("consciousness", _CONSCIOUSNESS_GRADE[consciousness], label(CONSCIOUSNESS_LABELS[consciousness])),
        DomainGrade("seizure", _SEIZURE_GRADE[seizure], label(SEIZURE_LABELS[seizure])),
        DomainGrade("motor_weakness", _MOTOR_GRADE[motor_weakness], label(MOTOR_WEAKNESS_LABELS[motor_weakness])),
        DomainGrade("cerebral_edema", _EDEMA_GRADE[cerebral_edema], label(CEREBRAL_EDEMA_LABELS[cerebral_edema])),
    ]
    if ice_score is not None:
        finding = Message(N_("ICE {score}/10"), {"score": ice_score})
        domains.insert(0, DomainGrade("ice", ice_domain_grade(ice_score), finding))
    return IcansGrade(
        grade=max(d.grade for d in domains),
        domains=tuple(domains),
        ice_performed=ice_score is not None,
    )
