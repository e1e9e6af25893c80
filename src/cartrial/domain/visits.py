"""The visit schedule: protocol visits placed on a subject's calendar, their windows and status.

A visit is defined by the protocol (`visits:` of the protocol file) relative to an anchor: the
inclusion date (screening, apheresis) or the infusion date D0 (everything from lymphodepletion
on). Its target is the anchor date plus `day`; it may be done from `target - window_before_days`
to `target + window_after_days` (both ends included). Until the anchor date is known (a subject
not yet infused) the visit has no date and is not applicable.

Status, the contract of `cartrial visits status` (issue 9), in this order of precedence:
no anchor date → not_applicable; done within [earliest, latest] → done, outside → done_out_of_window;
marked missed → missed; else today before earliest → upcoming, inside the window → due, after
latest → overdue. A done date outside the window is allowed (the visit happened; the deviation is
visible as done_out_of_window); a done date in the future or before inclusion is refused.

Unscheduled visits are numbered U1, U2... per subject; no protocol visit code starts with U.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.text import N_


class Anchor(StrEnum):
    """The date a visit's day counts from."""

    INCLUSION = "inclusion"
    INFUSION = "infusion"


class VisitPhase(StrEnum):
    """The part of the trial a visit belongs to (as in the pathway: acute monitoring to D28...)."""

    SCREENING = "screening"
    TREATMENT = "treatment"
    ACUTE_MONITORING = "acute_monitoring"
    FOLLOW_UP = "follow_up"
    LONG_TERM_FOLLOW_UP = "long_term_follow_up"


class VisitStatus(StrEnum):
    """Where a visit stands on a given day; values are the stable codes of the CLI and API."""

    NOT_APPLICABLE = "not_applicable"
    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"
    DONE_OUT_OF_WINDOW = "done_out_of_window"
    MISSED = "missed"


ANCHOR_LABELS: dict[Anchor, str] = {
    Anchor.INCLUSION: N_("Inclusion"),
    Anchor.INFUSION: N_("Infusion (D0)"),
}

VISIT_PHASE_LABELS: dict[VisitPhase, str] = {
    VisitPhase.SCREENING: N_("Screening"),
    VisitPhase.TREATMENT: N_("Treatment"),
    VisitPhase.ACUTE_MONITORING: N_("Acute monitoring (D0–D28)"),
    VisitPhase.FOLLOW_UP: N_("Follow-up (M1–M24)"),
    VisitPhase.LONG_TERM_FOLLOW_UP: N_("Long-term follow-up"),
}

VISIT_STATUS_LABELS: dict[VisitStatus, str] = {
    VisitStatus.NOT_APPLICABLE: N_("Not applicable"),
    VisitStatus.UPCOMING: N_("Upcoming"),
    VisitStatus.DUE: N_("Due"),
    VisitStatus.OVERDUE: N_("Overdue"),
    VisitStatus.DONE: N_("Done"),
    VisitStatus.DONE_OUT_OF_WINDOW: N_("Done out of window"),
    VisitStatus.MISSED: N_("Missed"),
}

# Statuses a center still has to act on, in the order a worklist shows them.
OPEN_STATUSES: tuple[VisitStatus, ...] = (VisitStatus.OVERDUE, VisitStatus.DUE, VisitStatus.UPCOMING)

UNSCHEDULED_PREFIX = "U"
_UNSCHEDULED_CODE = re.compile(rf"^{UNSCHEDULED_PREFIX}([1-9][0-9]*)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class VisitDefinition:
    """One visit of the protocol; `label` is protocol text ({en, fr}), `forms` are form codes."""

    code: str
    label: Mapping[str, str]
    anchor: Anchor
    day: int
    window_before_days: int
    window_after_days: int
    phase: VisitPhase
    forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnchorDates:
    """A subject's anchor dates; None while not yet known (not included, not infused).

    Booked dates (the planning app's booking, docs/booking.md) are targets too: D0 as booked stands
    for the infusion date until the infusion date is known, and a visit booked on a day (the
    apheresis) has that day as its target, the protocol's window around it.
    """

    inclusion: date | None = None
    infusion: date | None = None
    planned_infusion: date | None = None
    planned: Mapping[str, date] = field(default_factory=dict)

    def of(self, anchor: Anchor) -> date | None:
        """The date `anchor` stands for (the booked D0 while the infusion date is unknown)."""
        if anchor is Anchor.INCLUSION:
            return self.inclusion
        return self.infusion if self.infusion is not None else self.planned_infusion


@dataclass(frozen=True)
class ScheduledVisit:
    """A protocol visit on one subject's calendar; the dates are None when its anchor is unknown."""

    definition: VisitDefinition
    target: date | None
    earliest: date | None
    latest: date | None

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def anchor(self) -> Anchor:
        return self.definition.anchor

    def in_window(self, day: date) -> bool:
        """Whether `day` is inside the window (both ends included); never for an unscheduled date."""
        return self.earliest is not None and self.latest is not None and self.earliest <= day <= self.latest


def schedule_visit(definition: VisitDefinition, anchors: AnchorDates) -> ScheduledVisit:
    """One visit's target and window from the subject's anchor dates."""
    anchor_date = anchors.of(definition.anchor)
    booked = anchors.planned.get(definition.code)
    # A booked day is the target, unless the visit hangs on a D0 that is now known (the infusion).
    if booked is not None and not (definition.anchor is Anchor.INFUSION and anchors.infusion is not None):
        target = booked
    elif anchor_date is None:
        return ScheduledVisit(definition, None, None, None)
    else:
        target = anchor_date + timedelta(days=definition.day)
    return ScheduledVisit(
        definition,
        target,
        target - timedelta(days=definition.window_before_days),
        target + timedelta(days=definition.window_after_days),
    )


def visit_schedule(visits: Sequence[VisitDefinition], anchors: AnchorDates) -> list[ScheduledVisit]:
    """Every protocol visit placed on the subject's calendar, in protocol order."""
    return [schedule_visit(definition, anchors) for definition in visits]


def visit_status(
    scheduled: ScheduledVisit, today: date, done_on: date | None = None, missed: bool = False
) -> VisitStatus:
    """The visit's status on `today` (the contract's order of precedence, see the module docstring)."""
    if scheduled.earliest is None or scheduled.latest is None:
        return VisitStatus.NOT_APPLICABLE
    if done_on is not None:
        return VisitStatus.DONE if scheduled.in_window(done_on) else VisitStatus.DONE_OUT_OF_WINDOW
    if missed:
        return VisitStatus.MISSED
    if today < scheduled.earliest:
        return VisitStatus.UPCOMING
    if today <= scheduled.latest:
        return VisitStatus.DUE
    return VisitStatus.OVERDUE


def visit_date_check(scheduled: ScheduledVisit | None, done_on: date, today: date, inclusion: date | None) -> None:
    """Refuse a visit date that cannot be true: in the future, or before inclusion.

    `scheduled` is None for an unscheduled visit. Screening visits are exempt from the inclusion
    rule: they happen before inclusion by design. A date outside the window is accepted (the visit
    took place; its status says done_out_of_window).
    """
    if done_on > today:
        raise InvalidInput(
            N_("The visit date {visit_date} is in the future (today is {today})."),
            code="visit_date_in_future",
            item="visit_date",
            visit_date=done_on,
            today=today,
        )
    screening = scheduled is not None and scheduled.definition.phase is VisitPhase.SCREENING
    if inclusion is not None and done_on < inclusion and not screening:
        raise InvalidInput(
            N_("The visit date {visit_date} is before the inclusion date {inclusion_date}."),
            code="visit_date_before_inclusion",
            item="visit_date",
            visit_date=done_on,
            inclusion_date=inclusion,
        )


def is_unscheduled(code: str) -> bool:
    """Whether `code` names an unscheduled visit (U1, U2...)."""
    return _UNSCHEDULED_CODE.match(code) is not None


def next_unscheduled_code(existing: Iterable[str]) -> str:
    """The code of a subject's next unscheduled visit: one more than the highest in `existing`."""
    numbers = [int(match.group(1)) for code in existing if (match := _UNSCHEDULED_CODE.match(code))]
    return f"{UNSCHEDULED_PREFIX}{max(numbers, default=0) + 1}"


@dataclass(frozen=True)
class SubjectVisits:
    """What a worklist needs of one subject: the visits of the protocol version it follows, its
    anchor dates, the date each done visit took place and the visits marked missed."""

    subject: str
    visits: Sequence[VisitDefinition]
    anchors: AnchorDates
    done: Mapping[str, date] = field(default_factory=dict)
    missed: Collection[str] = frozenset()


@dataclass(frozen=True)
class WorklistEntry:
    """One visit a center has to act on: overdue, due now, or opening within the horizon."""

    subject: str
    code: str
    status: VisitStatus
    target: date
    earliest: date
    latest: date


def worklist(entries: Iterable[SubjectVisits], today: date, horizon_days: int = 7) -> list[WorklistEntry]:
    """The center's visits to act on: overdue first, then due, then upcoming visits whose window
    opens within `horizon_days` of today; within each, earliest target first."""
    if horizon_days < 0:
        raise InvalidInput(
            N_("The worklist horizon must be zero or more days (got {horizon_days})."),
            code="horizon_negative",
            item="horizon_days",
            horizon_days=horizon_days,
        )
    horizon_end = today + timedelta(days=horizon_days)
    rows: list[tuple[int, date, str, int, WorklistEntry]] = []
    for entry in entries:
        for position, definition in enumerate(entry.visits):
            if definition.code in entry.done or definition.code in entry.missed:
                continue  # done or missed: never to act on (and the long follow-up is mostly that)
            scheduled = schedule_visit(definition, entry.anchors)
            status = visit_status(scheduled, today)
            target, earliest, latest = scheduled.target, scheduled.earliest, scheduled.latest
            if status not in OPEN_STATUSES or target is None or earliest is None or latest is None:
                continue
            if status is VisitStatus.UPCOMING and earliest > horizon_end:
                continue
            row = WorklistEntry(entry.subject, scheduled.code, status, target, earliest, latest)
            rows.append((OPEN_STATUSES.index(status), target, entry.subject, position, row))
    rows.sort(key=lambda row: row[:4])
    return [row[4] for row in rows]


def _parse_date(value: object, item: str) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(
        N_("{key} must be a calendar date written YYYY-MM-DD (got {value})."),
        code="date_malformed",
        item=item,
        key=item,
        value=repr(value),
    )


def _optional_date(value: object, item: str) -> date | None:
    return None if value is None else _parse_date(value, item)


def _known_code(code: object, known: Collection[str], item: str) -> str:
    if not isinstance(code, str) or code not in known:
        raise InvalidInput(
            N_("{key}: {visit} is not a visit of the protocol."),
            code="visit_unknown",
            item=item,
            key=item,
            visit=repr(code),
        )
    return code


def visits_status_report(visits: Sequence[VisitDefinition], payload: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of `cartrial visits status` for one subject's payload (keys of the contract).

    `payload` is `{"inclusion_date", "infusion_date", "today", "done": {code: date}, "missed":
    [code]}`; dates are YYYY-MM-DD, the anchor dates may be null. Anything else is InvalidInput.
    """
    for key in ("inclusion_date", "infusion_date", "today", "done", "missed"):
        if key not in payload:
            raise InvalidInput(N_("The input lacks the key {key}."), code="key_missing", item=key, key=key)
    anchors = AnchorDates(
        inclusion=_optional_date(payload["inclusion_date"], "inclusion_date"),
        infusion=_optional_date(payload["infusion_date"], "infusion_date"),
    )
    today = _parse_date(payload["today"], "today")
    done_given, missed_given = payload["done"], payload["missed"]
    if not isinstance(done_given, Mapping):
        raise InvalidInput(
            N_("{key} must be an object of visit codes and dates."), code="done_malformed", item="done", key="done"
        )
    if not isinstance(missed_given, list):
        raise InvalidInput(
            N_("{key} must be a list of visit codes."), code="missed_malformed", item="missed", key="missed"
        )
    known = {definition.code for definition in visits}
    done = {
        _known_code(code, known, f"done.{code}"): _parse_date(value, f"done.{code}")
        for code, value in done_given.items()
    }
    missed = {_known_code(code, known, "missed") for code in missed_given}
    return {
        "visits": [
            {
                "code": scheduled.code,
                "anchor": scheduled.anchor.value,
                "target": _iso(scheduled.target),
                "earliest": _iso(scheduled.earliest),
                "latest": _iso(scheduled.latest),
                "status": visit_status(scheduled, today, done.get(scheduled.code), scheduled.code in missed).value,
            }
            for scheduled in visit_schedule(visits, anchors)
        ]
    }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def anchor_label(anchor: Anchor) -> str:
    """The msgid naming an anchor (rendered by the adapter in the reader's language)."""
    return ANCHOR_LABELS[anchor]


def visit_phase_label(phase: VisitPhase) -> str:
    """The msgid naming a visit phase."""
    return VISIT_PHASE_LABELS[phase]


def visit_status_label(status: VisitStatus) -> str:
    """The msgid naming a visit status (the grid's legend, the worklist's column)."""
    return VISIT_STATUS_LABELS[status]
