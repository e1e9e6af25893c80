"""The sponsor's reporting clock of a serious adverse event.

From the site's awareness, the initial report is due within the protocol's
`safety.sae_initial_report_hours` (24 h); then a follow-up report is due every
`safety.sae_follow_up_interval_days` after the previous report was sent, until the final report,
which can be sent once the outcome is final and closes the clock. `sae_clock_state(...)` says, at
a given `now`, which reports are due, when, and whether each was met, is late or overdue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from cartrial.domain.errors import InvalidInput, Refused
from cartrial.domain.text import N_


@dataclass(frozen=True)
class SaeClockRules:
    """The protocol's reporting deadlines (`safety:` section)."""

    initial_report_hours: int
    follow_up_interval_days: int


class ReportKind(StrEnum):
    INITIAL = "initial"
    FOLLOW_UP = "follow_up"
    FINAL = "final"


REPORT_KIND_LABELS: MappingProxyType[ReportKind, str] = MappingProxyType(
    {
        ReportKind.INITIAL: N_("Initial report"),
        ReportKind.FOLLOW_UP: N_("Follow-up report"),
        ReportKind.FINAL: N_("Final report"),
    }
)


class ReportStatus(StrEnum):
    MET = "met"  # sent by its due time
    LATE = "late"  # sent after its due time
    PENDING = "pending"  # not sent, due later
    OVERDUE = "overdue"  # not sent, due time passed


REPORT_STATUS_LABELS: MappingProxyType[ReportStatus, str] = MappingProxyType(
    {
        ReportStatus.MET: N_("sent on time"),
        ReportStatus.LATE: N_("sent late"),
        ReportStatus.PENDING: N_("due"),
        ReportStatus.OVERDUE: N_("overdue"),
    }
)


@dataclass(frozen=True)
class SentReport:
    kind: ReportKind
    sent_at: datetime


@dataclass(frozen=True)
class ReportDue:
    """One report of the clock: its kind, due time, when it was sent (if it was) and its status."""

    kind: ReportKind
    due_at: datetime
    sent_at: datetime | None
    status: ReportStatus


@dataclass(frozen=True)
class SaeClockState:
    """The clock at `now`: every report so far and the next one due (None once closed)."""

    awareness_at: datetime
    reports: tuple[ReportDue, ...]
    closed: bool

    @property
    def next_due(self) -> ReportDue | None:
        return next((r for r in self.reports if r.sent_at is None), None)

    @property
    def overdue(self) -> bool:
        return any(r.status is ReportStatus.OVERDUE for r in self.reports)


def _status(due_at: datetime, sent_at: datetime | None, now: datetime) -> ReportStatus:
    if sent_at is not None:
        return ReportStatus.MET if sent_at <= due_at else ReportStatus.LATE
    return ReportStatus.OVERDUE if now > due_at else ReportStatus.PENDING


def sae_clock_state(
    *, awareness_at: datetime, sent: Sequence[SentReport], outcome_final: bool, rules: SaeClockRules, now: datetime
) -> SaeClockState:
    """The clock's reports at `now`: the initial one, each follow-up sent, and the next one due."""
    ordered = sorted(sent, key=lambda r: r.sent_at)
    reports: list[ReportDue] = []
    due_at = awareness_at + timedelta(hours=rules.initial_report_hours)
    initial = next((r for r in ordered if r.kind is ReportKind.INITIAL), None)
    reports.append(
        ReportDue(
            ReportKind.INITIAL,
            due_at,
            initial.sent_at if initial else None,
            _status(due_at, initial.sent_at if initial else None, now),
        )
    )
    if initial is None:
        return SaeClockState(awareness_at, tuple(reports), closed=False)
    previous = initial.sent_at
    interval = timedelta(days=rules.follow_up_interval_days)
    for report in ordered:
        if report.kind is ReportKind.INITIAL:
            continue
        due_at = previous + interval
        reports.append(ReportDue(report.kind, due_at, report.sent_at, _status(due_at, report.sent_at, now)))
        previous = report.sent_at
        if report.kind is ReportKind.FINAL:
            return SaeClockState(awareness_at, tuple(reports), closed=True)
    next_kind = ReportKind.FINAL if outcome_final else ReportKind.FOLLOW_UP
    due_at = previous + interval
    reports.append(ReportDue(next_kind, due_at, None, _status(due_at, None, now)))
    return SaeClockState(awareness_at, tuple(reports), closed=False)


def sae_report_check(
    *, kind: ReportKind, sent_at: datetime, awareness_at: datetime, sent: Sequence[SentReport], outcome_final: bool
) -> None:
    """Refuse a report that does not fit the clock: a second initial report, a follow-up before the
    initial one, a final report while the outcome is not final or after the clock closed."""
    kinds = [r.kind for r in sent]
    if sent_at < awareness_at:
        raise InvalidInput(
            "sent_at: a report cannot be sent ({sent}) before the site became aware of the event ({awareness}).",
            code="report_before_awareness",
            item="sent_at",
            sent=sent_at.isoformat(),
            awareness=awareness_at.isoformat(),
        )
    if ReportKind.FINAL in kinds:
        raise Refused("The final report was sent: the reporting clock is closed.", code="sae_clock_closed")
    if kind is ReportKind.INITIAL and ReportKind.INITIAL in kinds:
        raise Refused("The initial report was already sent; record a follow-up report.", code="sae_initial_sent")
    if kind is not ReportKind.INITIAL and ReportKind.INITIAL not in kinds:
        raise Refused("Send the initial report first.", code="sae_initial_missing")
    if kind is ReportKind.FINAL and not outcome_final:
        raise Refused(
            "A final report needs a final outcome (recovered, recovered with sequelae or fatal).",
            code="sae_outcome_not_final",
        )
