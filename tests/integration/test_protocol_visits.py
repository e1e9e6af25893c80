"""The protocol's visit schedule: the visits the trial relies on, consistency with the pathway
durations, and a broken visit stopping the load with the key and the problem.

Only loads YAML (no database).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cartrial.domain.visits import Anchor, VisitDefinition, VisitPhase
from cartrial.protocols import DAYS_PER_YEAR, DEFAULT_PROTOCOL_FILE, ProtocolError, Visit, load_protocol

PROTOCOL = load_protocol()
BY_CODE = {visit.code: visit for visit in PROTOCOL.visits}


def test_the_schedule_runs_from_screening_to_year_15_in_protocol_order() -> None:
    expected = (
        ["SCR", "APH", "LD", "D0"]
        + [f"D{day}" for day in range(1, 8)]
        + ["D10", "D14", "D21", "D28", "M2", "M3", "M6", "M9", "M12", "M18", "M24"]
        + [f"Y{year}" for year in range(3, 16)]
    )
    assert [visit.code for visit in PROTOCOL.visits] == expected
    assert all(isinstance(visit, VisitDefinition) for visit in PROTOCOL.visits)
    assert Visit is VisitDefinition


@pytest.mark.parametrize(
    ("code", "anchor", "day"),
    [
        ("SCR", Anchor.INCLUSION, -42),
        ("APH", Anchor.INCLUSION, 7),
        ("LD", Anchor.INFUSION, -5),
        ("D0", Anchor.INFUSION, 0),
        ("D7", Anchor.INFUSION, 7),
        ("D14", Anchor.INFUSION, 14),
        ("D28", Anchor.INFUSION, 28),
        ("M3", Anchor.INFUSION, 90),
        ("M6", Anchor.INFUSION, 180),
        ("M9", Anchor.INFUSION, 270),
        ("M12", Anchor.INFUSION, 365),
        ("M18", Anchor.INFUSION, 545),
        ("M24", Anchor.INFUSION, 730),
    ],
)
def test_the_visits_the_trial_already_used_keep_their_anchor_and_day(code: str, anchor: Anchor, day: int) -> None:
    assert (BY_CODE[code].anchor, BY_CODE[code].day) == (anchor, day)


def test_the_schedule_agrees_with_the_pathway_durations() -> None:
    rules = PROTOCOL.pathway_rules
    last_of = {
        phase: [v for v in PROTOCOL.visits if v.phase is phase][-1]
        for phase in (VisitPhase.ACUTE_MONITORING, VisitPhase.FOLLOW_UP, VisitPhase.LONG_TERM_FOLLOW_UP)
    }
    assert last_of[VisitPhase.ACUTE_MONITORING].day == rules.acute_monitoring_days
    assert last_of[VisitPhase.FOLLOW_UP].day == rules.follow_up_days
    assert last_of[VisitPhase.LONG_TERM_FOLLOW_UP].day == rules.long_term_follow_up_days
    assert all(
        BY_CODE[f"Y{year}"].day == round(year * DAYS_PER_YEAR)
        for year in range(3, PROTOCOL.long_term_follow_up_years + 1)
    )
    # Lymphodepletion's window is the pathway's (days -5 to -3 before D0).
    ld = BY_CODE["LD"]
    assert (ld.day - ld.window_before_days, ld.day + ld.window_after_days) == rules.lymphodepletion_window_days


def test_each_visit_carries_the_forms_its_phase_needs() -> None:
    assert "lymphodepletion" in BY_CODE["LD"].forms and "infusion" in BY_CODE["D0"].forms
    for day in range(1, 8):
        assert {"vital_signs", "haematology", "chemistry"} <= set(BY_CODE[f"D{day}"].forms)
    for code in ("SCR", "M3", "M6", "M12", "M24"):
        assert "sle_activity" in BY_CODE[code].forms
    for code in ("D7", "D14", "D28", "M3"):
        assert "immunology" in BY_CODE[code].forms
    # Blood counts at every visit from D0 on, long-term follow-up included (clinical.md §4.4, ICAHT).
    assert all("haematology" in v.forms for v in PROTOCOL.visits if v.anchor is Anchor.INFUSION)


def test_windows_widen_with_the_distance_from_infusion() -> None:
    after_d0 = [v for v in PROTOCOL.visits if v.anchor is Anchor.INFUSION and v.day > 0]
    widths = [v.window_before_days + v.window_after_days for v in after_d0]
    assert widths == sorted(widths)
    assert BY_CODE["Y15"].window_before_days == BY_CODE["Y15"].window_after_days == 60


# --- a broken visit stops the load -----------------------------------------------------------------


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    return data


def _index(data: dict[str, Any], code: str) -> int:
    return next(i for i, visit in enumerate(data["visits"]) if visit["code"] == code)


def _set(code: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["visits"][_index(data, code)][key] = value

    return mutate


def _drop(code: str, key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data["visits"][_index(data, code)][key]

    return mutate


def _swap_d14_and_d21(data: dict[str, Any]) -> None:
    d14, d21 = _index(data, "D14"), _index(data, "D21")
    data["visits"][d14], data["visits"][d21] = data["visits"][d21], data["visits"][d14]


# (variant, mutation, key in the message, words of the problem)
BROKEN_VISITS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("negative-window", _set("M3", "window_before_days", -1), "visits.16.window_before_days", "less than the minimum"),
    ("unknown-phase", _set("M3", "phase", "extension"), "visits.16.phase", "'extension' is not one of"),
    ("unknown-form", _set("D7", "forms", ["vital_signs", "ecg"]), "visits.10.forms.1", "'ecg' is not one of"),
    ("repeated-form", _set("D7", "forms", ["vital_signs", "vital_signs"]), "visits.10.forms", "non-unique"),
    ("no-forms-key", _drop("D7", "forms"), "visits.10", "'forms' is a required property"),
    ("no-phase-key", _drop("D7", "phase"), "visits.10", "'phase' is a required property"),
    ("unknown-anchor", _set("D7", "anchor", "apheresis"), "visits.10.anchor", "'apheresis' is not one of"),
    ("duplicate-code", _set("D14", "code", "D10"), "visits.12.code", "duplicate visit code 'D10'"),
    ("unscheduled-prefix", _set("M9", "code", "U1"), "visits.18.code", "kept for unscheduled visits"),
    ("out-of-order", _swap_d14_and_d21, "visits.13.day", "list the visits in day order"),
]


@pytest.mark.parametrize(("variant", "mutate", "key", "words"), BROKEN_VISITS, ids=[b[0] for b in BROKEN_VISITS])
def test_a_broken_visit_stops_the_load_naming_key_and_problem(
    tmp_path: Path, variant: str, mutate: Callable[[dict[str, Any]], None], key: str, words: str
) -> None:
    data = _base()
    mutate(data)
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.key == key
    assert words in refused.value.problem


def test_visits_of_two_anchors_may_interleave_while_each_stays_in_day_order() -> None:
    # APH (inclusion, day 7) sits before LD (infusion, day -5): order is checked per anchor.
    assert [BY_CODE["APH"].day, BY_CODE["LD"].day] == [7, -5]
    assert PROTOCOL.visit("LD") is BY_CODE["LD"]
    with pytest.raises(KeyError):
        PROTOCOL.visit("U1")


def test_a_visit_naming_a_form_the_protocol_does_not_declare_is_refused_with_its_key(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(DEFAULT_PROTOCOL_FILE).read_text(encoding="utf-8"))
    index = next(i for i, v in enumerate(data["visits"]) if v["code"] == "D28")
    data["visits"][index]["forms"] = [*data["visits"][index]["forms"], "vital_sings"]
    broken = tmp_path / "protocol.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProtocolError) as refused:
        load_protocol(broken)
    assert f"visits.{index}.forms." in str(refused.value)
    assert "vital_sings" in str(refused.value)
