"""ICE score and adult ICANS grade (Lee 2019; clinical.md §4.2 table and suggested tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.icans import CerebralEdema, Consciousness, MotorWeakness, Seizure, grade_icans
from cartrial.domain.scores.ice import score_ice

FAST = settings(max_examples=80, deadline=None)


def test_ice_full_marks_is_10() -> None:
    # orientation 4 + naming 3 + command 1 + writing 1 + attention 1 = 10.
    assert score_ice(orientation=4, naming=3, command=1, writing=1, attention=1).score == 10


def test_ice_partial() -> None:
    # knows year and month (2), names 2 objects (2), follows the command (1), cannot write or count (0) = 5.
    assert score_ice(orientation=2, naming=2, command=1, writing=0, attention=0).score == 5


@pytest.mark.parametrize(
    "items",
    [
        {"orientation": 5, "naming": 0, "command": 0, "writing": 0, "attention": 0},
        {"orientation": 0, "naming": 4, "command": 0, "writing": 0, "attention": 0},
        {"orientation": 0, "naming": 0, "command": 2, "writing": 0, "attention": 0},
        {"orientation": 0, "naming": 0, "command": 0, "writing": -1, "attention": 0},
    ],
)
def test_ice_item_above_its_maximum_or_negative_is_refused(items: dict[str, int]) -> None:
    with pytest.raises(CalculatorInputError):
        score_ice(**items)


@FAST
@given(
    orientation=st.integers(0, 4),
    naming=st.integers(0, 3),
    command=st.integers(0, 1),
    writing=st.integers(0, 1),
    attention=st.integers(0, 1),
)
def test_ice_is_always_within_0_and_10(
    orientation: int, naming: int, command: int, writing: int, attention: int
) -> None:
    result = score_ice(orientation=orientation, naming=naming, command=command, writing=writing, attention=attention)
    assert 0 <= result.score <= 10
    assert result.score == orientation + naming + command + writing + attention


def _icans(
    ice: int | None,
    consciousness: Consciousness = Consciousness.NORMAL,
    seizure: Seizure = Seizure.NONE,
    motor: MotorWeakness = MotorWeakness.NONE,
    edema: CerebralEdema = CerebralEdema.NONE,
) -> int:
    return grade_icans(
        ice_score=ice, consciousness=consciousness, seizure=seizure, motor_weakness=motor, cerebral_edema=edema
    ).grade


# clinical.md §4.2 suggested tests, each from the Lee 2019 table.
def test_ice_10_alert_is_no_icans() -> None:
    assert _icans(10) == 0


def test_ice_8_alert_is_grade_1() -> None:
    assert _icans(8) == 1


def test_drowsy_patient_who_wakes_spontaneously_is_grade_1_even_with_ice_10() -> None:
    assert _icans(10, Consciousness.AWAKENS_SPONTANEOUSLY) == 1


def test_ice_5_waking_to_voice_is_grade_2() -> None:
    assert _icans(5, Consciousness.AWAKENS_TO_VOICE) == 2


def test_ice_0_awake_with_global_aphasia_is_grade_3() -> None:
    assert _icans(0) == 3


def test_ice_0_unarousable_is_grade_4() -> None:
    assert _icans(0, Consciousness.UNAROUSABLE) == 4


def test_ice_3_with_a_quickly_resolving_seizure_is_grade_3() -> None:
    assert _icans(3, seizure=Seizure.RAPIDLY_RESOLVING) == 3


@pytest.mark.parametrize(("ice", "grade"), [(10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)])
def test_ice_row_boundaries(ice: int, grade: int) -> None:
    # ICE 7-9 → 1, 3-6 → 2, 0-2 → 3.
    assert _icans(ice) == grade


@pytest.mark.parametrize(
    ("consciousness", "grade"),
    [
        (Consciousness.AWAKENS_SPONTANEOUSLY, 1),
        (Consciousness.AWAKENS_TO_VOICE, 2),
        (Consciousness.AWAKENS_TO_TACTILE, 3),
        (Consciousness.UNAROUSABLE, 4),
    ],
)
def test_consciousness_row(consciousness: Consciousness, grade: int) -> None:
    ice = 0 if consciousness is Consciousness.UNAROUSABLE else 10
    assert _icans(ice, consciousness) == grade


def test_prolonged_seizure_deep_weakness_and_diffuse_edema_are_grade_4() -> None:
    assert _icans(10, seizure=Seizure.PROLONGED_OR_REPETITIVE) == 4
    assert _icans(10, motor=MotorWeakness.DEEP_FOCAL) == 4
    assert _icans(10, edema=CerebralEdema.DIFFUSE) == 4


def test_focal_edema_is_grade_3() -> None:
    assert _icans(10, edema=CerebralEdema.FOCAL) == 3


def test_ice_not_performed_grades_on_the_other_domains_and_says_so() -> None:
    result = grade_icans(
        ice_score=None,
        consciousness=Consciousness.UNAROUSABLE,
        seizure=Seizure.NONE,
        motor_weakness=MotorWeakness.NONE,
        cerebral_edema=CerebralEdema.NONE,
    )
    assert (result.grade, result.ice_performed) == (4, False)
    assert "ice" not in {d.domain for d in result.domains}


def test_unarousable_patient_cannot_have_a_positive_ice() -> None:
    with pytest.raises(CalculatorInputError) as caught:
        _icans(6, Consciousness.UNAROUSABLE)
    assert caught.value.field_errors[0]["field"] == "ice_score"


@pytest.mark.parametrize("ice", [-1, 11])
def test_ice_outside_0_to_10_is_refused(ice: int) -> None:
    with pytest.raises(CalculatorInputError):
        _icans(ice)


@FAST
@given(
    ice=st.integers(0, 10),
    seizure=st.sampled_from(list(Seizure)),
    motor=st.sampled_from(list(MotorWeakness)),
    edema=st.sampled_from(list(CerebralEdema)),
    consciousness=st.sampled_from([c for c in Consciousness if c is not Consciousness.UNAROUSABLE]),
)
def test_grade_is_the_worst_domain_and_ice_alone_never_gives_4(
    ice: int, seizure: Seizure, motor: MotorWeakness, edema: CerebralEdema, consciousness: Consciousness
) -> None:
    result = grade_icans(
        ice_score=ice, consciousness=consciousness, seizure=seizure, motor_weakness=motor, cerebral_edema=edema
    )
    assert 0 <= result.grade <= 4
    assert result.grade == max(d.grade for d in result.domains)
    ice_domain = next(d for d in result.domains if d.domain == "ice")
    assert ice_domain.grade <= 3
