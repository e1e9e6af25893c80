"""The SAE reporting clock: initial report due N hours after awareness, follow-ups every K days,
the final report closes it; met, late, pending and overdue at a given now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.safety.sae_clock import (
    ReportKind,
    ReportStatus,
    SaeClockRules,
    SaeClockState,
    SentReport,
    sae_clock_state,
    sae_report_check,
)

RULES = SaeClockRules(initial_report_hours=24, follow_up_interval_days=7)
AWARE = datetime(2026, 5, 10, 9, 0, tzinfo=UTC)


def state(sent: list[SentReport], now: datetime, final: bool = False) -> SaeClockState:
    return sae_clock_state(awareness_at=AWARE, sent=sent, outcome_final=final, rules=RULES, now=now)


def test_initial_report_is_due_24_hours_after_awareness_pending_then_overdue() -> None:
    before = state([], AWARE + timedelta(hours=23))
    assert before.next_due is not None and before.next_due.due_at == AWARE + timedelta(hours=24)
    assert before.next_due.status is ReportStatus.PENDING and not before.overdue
    after = state([], AWARE + timedelta(hours=25))
    assert after.overdue and after.reports[0].status is ReportStatus.OVERDUE


def test_the_initial_hours_come_from_the_rules() -> None:
    rules = SaeClockRules(initial_report_hours=48, follow_up_interval_days=7)
    clock = sae_clock_state(awareness_at=AWARE, sent=[], outcome_final=False, rules=rules, now=AWARE)
    assert clock.reports[0].due_at == AWARE + timedelta(hours=48)


def test_met_initial_then_follow_up_due_k_days_after_it() -> None:
    sent = [SentReport(ReportKind.INITIAL, AWARE + timedelta(hours=20))]
    clock = state(sent, AWARE + timedelta(days=2))
    assert clock.reports[0].status is ReportStatus.MET
    nxt = clock.next_due
    assert nxt is not None and nxt.kind is ReportKind.FOLLOW_UP
    assert nxt.due_at == AWARE + timedelta(hours=20, days=7)
    assert not clock.overdue and not clock.closed


def test_a_late_initial_is_late_not_overdue_and_follow_up_can_be_overdue() -> None:
    sent = [SentReport(ReportKind.INITIAL, AWARE + timedelta(hours=30))]
    clock = state(sent, AWARE + timedelta(days=9))
    assert clock.reports[0].status is ReportStatus.LATE
    assert clock.reports[1].status is ReportStatus.OVERDUE and clock.overdue


def test_final_outcome_asks_for_the_final_report_which_closes_the_clock() -> None:
    sent = [SentReport(ReportKind.INITIAL, AWARE + timedelta(hours=2))]
    pending = state(sent, AWARE + timedelta(days=1), final=True)
    assert pending.next_due is not None and pending.next_due.kind is ReportKind.FINAL
    sent.append(SentReport(ReportKind.FINAL, AWARE + timedelta(days=3)))
    closed = state(sent, AWARE + timedelta(days=30), final=True)
    assert closed.closed and closed.next_due is None and not closed.overdue
    assert [r.status for r in closed.reports] == [ReportStatus.MET, ReportStatus.MET]


def test_report_checks_refuse_what_does_not_fit_the_clock() -> None:
    initial = [SentReport(ReportKind.INITIAL, AWARE + timedelta(hours=1))]
    with pytest.raises(Refused) as caught:
        sae_report_check(kind=ReportKind.FOLLOW_UP, sent_at=AWARE, awareness_at=AWARE, sent=[], outcome_final=False)
    assert caught.value.code == "sae_initial_missing"
    with pytest.raises(Refused) as caught:
        sae_report_check(kind=ReportKind.INITIAL, sent_at=AWARE, awareness_at=AWARE, sent=initial, outcome_final=False)
    assert caught.value.code == "sae_initial_sent"
    with pytest.raises(Refused) as caught:
        sae_report_check(kind=ReportKind.FINAL, sent_at=AWARE, awareness_at=AWARE, sent=initial, outcome_final=False)
    assert caught.value.code == "sae_outcome_not_final"
    with pytest.raises(InvalidInput) as bad:
        sae_report_check(
            kind=ReportKind.INITIAL,
            sent_at=AWARE - timedelta(hours=1),
            awareness_at=AWARE,
            sent=[],
            outcome_final=False,
        )
    assert (bad.value.code, bad.value.item) == ("report_before_awareness", "sent_at")
