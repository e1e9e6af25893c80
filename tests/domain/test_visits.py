"""The visit schedule: windows from the anchors, every status at its boundaries, date checks,
unscheduled numbering, the worklist and the report of `cartrial visits status`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import Message
from cartrial.domain.visits import (
    VISIT_PHASE_LABELS,
    VISIT_STATUS_LABELS,
    Anchor,
    AnchorDates,
    ScheduledVisit,
    SubjectVisits,
    VisitDefinition,
    VisitPhase,
    VisitStatus,
    WorklistEntry,
    is_unscheduled,
    next_unscheduled_code,
    schedule_visit,
    visit_date_check,
    visit_schedule,
    visit_status,
    visits_status_report,
    worklist,
)

INCLUSION = date(2026, 3, 2)
INFUSION = date(2026, 4, 20)


def definition(
    code: str,
    day: int,
    before: int = 0,
    after: int = 0,
    anchor: Anchor = Anchor.INFUSION,
    phase: VisitPhase = VisitPhase.FOLLOW_UP,
) -> VisitDefinition:
    return VisitDefinition(code, {"en": code, "fr": code}, anchor, day, before, after, phase, ("vital_signs",))


SCR = definition("SCR", -42, 0, 42, Anchor.INCLUSION, VisitPhase.SCREENING)
APH = definition("APH", 7, 0, 14, Anchor.INCLUSION, VisitPhase.TREATMENT)
D7 = definition("D7", 7, phase=VisitPhase.ACUTE_MONITORING)
D28 = definition("D28", 28, 3, 3, phase=VisitPhase.ACUTE_MONITORING)
M3 = definition("M3", 90, 7, 7)
VISITS = (SCR, APH, D7, D28, M3)
ANCHORS = AnchorDates(inclusion=INCLUSION, infusion=INFUSION)

# D28 of a subject infused on INFUSION: target 2026-05-18, window 2026-05-15 to 2026-05-21.
D28_SCHEDULED = schedule_visit(D28, ANCHORS)
TARGET, EARLIEST, LATEST = date(2026, 5, 18), date(2026, 5, 15), date(2026, 5, 21)
ONE_DAY = timedelta(days=1)


# --- the schedule --------------------------------------------------------------------------------


def test_target_and_window_count_from_the_anchor_date() -> None:
    assert (D28_SCHEDULED.target, D28_SCHEDULED.earliest, D28_SCHEDULED.latest) == (TARGET, EARLIEST, LATEST)
    screening = schedule_visit(SCR, ANCHORS)
    assert (screening.target, screening.earliest, screening.latest) == (
        date(2026, 1, 19),
        date(2026, 1, 19),
        INCLUSION,
    )


def test_the_schedule_keeps_protocol_order_and_each_visits_anchor() -> None:
    schedule = visit_schedule(VISITS, ANCHORS)
    assert [s.code for s in schedule] == ["SCR", "APH", "D7", "D28", "M3"]
    assert [s.target for s in schedule] == [
        INCLUSION - timedelta(days=42),
        INCLUSION + timedelta(days=7),
        INFUSION + timedelta(days=7),
        INFUSION + timedelta(days=28),
        INFUSION + timedelta(days=90),
    ]


def test_a_visit_whose_anchor_is_unknown_has_no_dates_and_is_not_applicable() -> None:
    not_infused = visit_schedule(VISITS, AnchorDates(inclusion=INCLUSION, infusion=None))
    assert [s.target is None for s in not_infused] == [False, False, True, True, True]
    d28 = not_infused[3]
    assert (d28.earliest, d28.latest) == (None, None)
    # Not applicable wins over a done date or a missed mark: without D0 the visit has no window.
    assert visit_status(d28, LATEST, done_on=TARGET) is VisitStatus.NOT_APPLICABLE
    assert visit_status(d28, LATEST, missed=True) is VisitStatus.NOT_APPLICABLE
    not_included = visit_schedule(VISITS, AnchorDates())
    assert {visit_status(s, TARGET) for s in not_included} == {VisitStatus.NOT_APPLICABLE}


# --- status at every boundary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (EARLIEST - ONE_DAY, VisitStatus.UPCOMING),
        (EARLIEST, VisitStatus.DUE),
        (TARGET, VisitStatus.DUE),
        (LATEST, VisitStatus.DUE),
        (LATEST + ONE_DAY, VisitStatus.OVERDUE),
    ],
)
def test_a_visit_not_done_is_upcoming_due_or_overdue_by_today(today: date, expected: VisitStatus) -> None:
    assert visit_status(D28_SCHEDULED, today) is expected


@pytest.mark.parametrize(
    ("done_on", "expected"),
    [
        (EARLIEST - ONE_DAY, VisitStatus.DONE_OUT_OF_WINDOW),
        (EARLIEST, VisitStatus.DONE),
        (LATEST, VisitStatus.DONE),
        (LATEST + ONE_DAY, VisitStatus.DONE_OUT_OF_WINDOW),
    ],
)
def test_a_done_visit_is_done_inside_its_window_and_out_of_window_outside(done_on: date, expected: VisitStatus) -> None:
    assert visit_status(D28_SCHEDULED, LATEST + timedelta(days=30), done_on=done_on) is expected


def test_a_visit_without_window_is_due_only_on_its_day() -> None:
    d7 = schedule_visit(D7, ANCHORS)
    day = INFUSION + timedelta(days=7)
    assert (d7.earliest, d7.latest) == (day, day)
    assert visit_status(d7, day - ONE_DAY) is VisitStatus.UPCOMING
    assert visit_status(d7, day) is VisitStatus.DUE
    assert visit_status(d7, day + ONE_DAY) is VisitStatus.OVERDUE
    assert visit_status(d7, day + ONE_DAY, done_on=day + ONE_DAY) is VisitStatus.DONE_OUT_OF_WINDOW


@pytest.mark.parametrize("today", [EARLIEST - ONE_DAY, TARGET, LATEST + ONE_DAY])
def test_missed_is_kept_whatever_today_is_and_a_done_date_wins_over_it(today: date) -> None:
    assert visit_status(D28_SCHEDULED, today, missed=True) is VisitStatus.MISSED
    assert visit_status(D28_SCHEDULED, today, done_on=TARGET, missed=True) is VisitStatus.DONE


# Offsets from the target within a little more than the widest window, so that every status is
# frequent: the events of the run show each one reached.
@settings(max_examples=300)
@given(
    offset=st.integers(min_value=-70, max_value=70),
    before=st.integers(min_value=0, max_value=60),
    after=st.integers(min_value=0, max_value=60),
    done_offset=st.one_of(st.none(), st.none(), st.integers(min_value=-70, max_value=70)),
    missed=st.booleans(),
    anchored=st.sampled_from([True, True, True, False]),
)
def test_status_agrees_with_the_window(
    offset: int, before: int, after: int, done_offset: int | None, missed: bool, anchored: bool
) -> None:
    visit = definition("M6", 180, before, after)
    anchors = AnchorDates(inclusion=INCLUSION, infusion=INFUSION if anchored else None)
    scheduled = schedule_visit(visit, anchors)
    target = INFUSION + timedelta(days=180)
    today = target + timedelta(days=offset)
    done_on = None if done_offset is None else target + timedelta(days=done_offset)
    status = visit_status(scheduled, today, done_on, missed)
    event(status.value)
    if not anchored:
        assert status is VisitStatus.NOT_APPLICABLE
    elif done_offset is not None:
        inside = -before <= done_offset <= after
        assert status is (VisitStatus.DONE if inside else VisitStatus.DONE_OUT_OF_WINDOW)
    elif missed:
        assert status is VisitStatus.MISSED
    elif offset < -before:
        assert status is VisitStatus.UPCOMING
    elif offset > after:
        assert status is VisitStatus.OVERDUE
    else:
        assert status is VisitStatus.DUE


def test_every_status_phase_and_anchor_has_a_label() -> None:
    assert set(VISIT_STATUS_LABELS) == set(VisitStatus)
    assert set(VISIT_PHASE_LABELS) == set(VisitPhase)
    assert len(set(VISIT_STATUS_LABELS.values())) == len(VisitStatus)


# --- the visit date -----------------------------------------------------------------------------


def test_a_visit_date_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        visit_date_check(D28_SCHEDULED, TARGET + ONE_DAY, TARGET, INCLUSION)
    assert (refused.value.code, refused.value.item) == ("visit_date_in_future", "visit_date")
    assert refused.value.message == Message(
        "The visit date {visit_date} is in the future (today is {today}).",
        {"visit_date": TARGET + ONE_DAY, "today": TARGET},
    )
    visit_date_check(D28_SCHEDULED, TARGET, TARGET, INCLUSION)


def test_a_visit_date_before_inclusion_is_refused_except_at_screening() -> None:
    with pytest.raises(InvalidInput) as refused:
        visit_date_check(schedule_visit(APH, ANCHORS), INCLUSION - ONE_DAY, TARGET, INCLUSION)
    assert (refused.value.code, refused.value.item) == ("visit_date_before_inclusion", "visit_date")
    with pytest.raises(InvalidInput) as unscheduled:
        visit_date_check(None, INCLUSION - ONE_DAY, TARGET, INCLUSION)
    assert unscheduled.value.code == "visit_date_before_inclusion"
    visit_date_check(schedule_visit(APH, ANCHORS), INCLUSION, TARGET, INCLUSION)
    visit_date_check(schedule_visit(SCR, ANCHORS), INCLUSION - timedelta(days=20), TARGET, INCLUSION)
    visit_date_check(None, INCLUSION - ONE_DAY, TARGET, None)


def test_a_date_outside_the_window_is_accepted_and_reads_done_out_of_window() -> None:
    done_on = LATEST + ONE_DAY
    visit_date_check(D28_SCHEDULED, done_on, done_on, INCLUSION)
    assert visit_status(D28_SCHEDULED, done_on, done_on) is VisitStatus.DONE_OUT_OF_WINDOW


# --- unscheduled visits --------------------------------------------------------------------------


def test_unscheduled_visits_are_numbered_after_the_highest() -> None:
    assert next_unscheduled_code([]) == "U1"
    assert next_unscheduled_code(["D7", "U1", "U2", "M3"]) == "U3"
    assert next_unscheduled_code(["U9", "U10", "U2"]) == "U11"
    assert next_unscheduled_code(["U1", "U3"]) == "U4"


@pytest.mark.parametrize(
    ("code", "expected"), [("U1", True), ("U12", True), ("U0", False), ("U", False), ("D7", False)]
)
def test_is_unscheduled(code: str, expected: bool) -> None:
    assert is_unscheduled(code) is expected


# --- the worklist --------------------------------------------------------------------------------


def _subject(
    code: str, infusion: date | None, done: dict[str, date] | None = None, missed: frozenset[str] = frozenset()
):
    return SubjectVisits(code, VISITS, AnchorDates(INCLUSION, infusion), done or {}, missed)


def test_the_worklist_lists_overdue_then_due_then_upcoming_within_the_horizon() -> None:
    today = date(2026, 5, 14)  # D28 of BDX-001 opens tomorrow; D28 of BDX-002 is due
    entries = [
        _subject("BDX-001", INFUSION, done={"SCR": date(2026, 2, 1), "APH": date(2026, 3, 9), "D7": date(2026, 4, 27)}),
        _subject("BDX-002", INFUSION - timedelta(days=2), done={"SCR": date(2026, 2, 1), "APH": date(2026, 3, 9)}),
        _subject("BDX-003", None, done={"SCR": date(2026, 2, 1)}, missed=frozenset({"APH"})),
    ]
    rows = worklist(entries, today)
    assert [(r.subject, r.code, r.status) for r in rows] == [
        ("BDX-002", "D7", VisitStatus.OVERDUE),
        ("BDX-002", "D28", VisitStatus.DUE),
        ("BDX-001", "D28", VisitStatus.UPCOMING),
    ]
    assert rows[2] == WorklistEntry("BDX-001", "D28", VisitStatus.UPCOMING, TARGET, EARLIEST, LATEST)


@pytest.mark.parametrize(("horizon_days", "listed"), [(0, False), (6, False), (7, True)])
def test_an_upcoming_visit_enters_the_worklist_when_its_window_opens_within_the_horizon(
    horizon_days: int, listed: bool
) -> None:
    done = {"SCR": INCLUSION, "APH": INCLUSION + timedelta(days=7), "D7": INFUSION + timedelta(days=7)}
    rows = worklist([_subject("BDX-001", INFUSION, done)], EARLIEST - timedelta(days=7), horizon_days)
    assert [r.code for r in rows] == (["D28"] if listed else [])


def test_a_negative_horizon_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        worklist([], INFUSION, -1)
    assert refused.value.code == "horizon_negative"


# --- the report of `cartrial visits status` ------------------------------------------------------


def _payload(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "inclusion_date": "2026-03-02",
        "infusion_date": "2026-04-20",
        "today": "2026-05-18",
        "done": {"D7": "2026-04-27", "SCR": "2026-02-10"},
        "missed": ["APH"],
    }
    payload.update(changes)
    return payload


def test_the_report_lists_every_visit_with_its_window_and_status() -> None:
    assert visits_status_report(VISITS, _payload()) == {
        "visits": [
            {"code": "SCR", "anchor": "inclusion", "target": "2026-01-19", "earliest": "2026-01-19",
             "latest": "2026-03-02", "status": "done"},
            {"code": "APH", "anchor": "inclusion", "target": "2026-03-09", "earliest": "2026-03-09",
             "latest": "2026-03-23", "status": "missed"},
            {"code": "D7", "anchor": "infusion", "target": "2026-04-27", "earliest": "2026-04-27",
             "latest": "2026-04-27", "status": "done"},
            {"code": "D28", "anchor": "infusion", "target": "2026-05-18", "earliest": "2026-05-15",
             "latest": "2026-05-21", "status": "due"},
            {"code": "M3", "anchor": "infusion", "target": "2026-07-19", "earliest": "2026-07-12",
             "latest": "2026-07-26", "status": "upcoming"},
        ]
    }  # fmt: skip


def test_a_null_infusion_date_makes_the_infusion_visits_not_applicable() -> None:
    rows = visits_status_report(VISITS, _payload(infusion_date=None, done={}))["visits"]
    assert [(r["code"], r["status"], r["target"]) for r in rows[2:]] == [
        ("D7", "not_applicable", None),
        ("D28", "not_applicable", None),
        ("M3", "not_applicable", None),
    ]


@pytest.mark.parametrize(
    ("changes", "code", "item"),
    [
        ({"done": {"D8": "2026-04-28"}}, "visit_unknown", "done.D8"),
        ({"missed": ["M9"]}, "visit_unknown", "missed"),
        ({"today": "2026-5-18"}, "date_malformed", "today"),
        ({"today": "2026-02-30"}, "date_malformed", "today"),
        ({"today": "20260518"}, "date_malformed", "today"),
        ({"inclusion_date": 20260302}, "date_malformed", "inclusion_date"),
        ({"done": {"D7": "yesterday"}}, "date_malformed", "done.D7"),
        ({"done": ["D7"]}, "done_malformed", "done"),
        ({"missed": "APH"}, "missed_malformed", "missed"),
    ],
)
def test_bad_input_is_refused_naming_the_item(changes: dict[str, object], code: str, item: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        visits_status_report(VISITS, _payload(**changes))
    assert (refused.value.code, refused.value.item) == (code, item)
    text = str(refused.value)
    assert text.startswith(item.split(".")[0]) and "{" not in text


@pytest.mark.parametrize("key", ["inclusion_date", "infusion_date", "today", "done", "missed"])
def test_every_key_of_the_input_is_required(key: str) -> None:
    payload = _payload()
    del payload[key]
    with pytest.raises(InvalidInput) as refused:
        visits_status_report(VISITS, payload)
    assert (refused.value.code, refused.value.item) == ("key_missing", key)


def test_scheduled_visit_exposes_its_definitions_code_and_anchor() -> None:
    scheduled = ScheduledVisit(M3, None, None, None)
    assert (scheduled.code, scheduled.anchor, scheduled.in_window(INFUSION)) == ("M3", Anchor.INFUSION, False)
