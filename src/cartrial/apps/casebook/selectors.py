"""Reads of the casebook, always scoped by the acting user: a subject's visits and forms, the study
grid and a center's worklist (in a fixed number of queries whatever the number of subjects), the
query inbox, a form's item history (from the audit trail, the one store of old values)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, QuerySet

from cartrial.apps.access import Scope, subject_filter
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, Query, VisitRecord
from cartrial.apps.clinical.models import ScreeningRecord
from cartrial.apps.clinical.selectors import subject_birth_date
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.casebook import QueryStatus
from cartrial.domain.ecrf import FormContext, FormDef, FormStatus
from cartrial.domain.ecrf import activity as activity_items
from cartrial.domain.endpoints import doris_sustained_from
from cartrial.domain.errors import InvalidInput, NotFound
from cartrial.domain.pathway import FINAL_STATES, Step
from cartrial.domain.visits import (
    AnchorDates,
    ScheduledVisit,
    SubjectVisits,
    VisitDefinition,
    VisitStatus,
    WorklistEntry,
    is_unscheduled,
    visit_schedule,
    visit_status,
    worklist,
)
from cartrial.protocols import Protocol


def subject_today(subject: Subject, now: datetime) -> date:
    """Today in the subject's center (visit dates are the center's calendar dates)."""
    return local_today(subject.center, now)


def _inclusion_dates(subject_ids: Iterable[int]) -> dict[int, date]:
    rows = (
        PathwayEvent.objects.filter(subject_id__in=list(subject_ids), step=Step.INCLUDE.value)
        .order_by("occurred_at")
        .values_list("subject_id", "occurred_at", "subject__center__time_zone")
    )
    dates: dict[int, date] = {}
    zones: dict[str, ZoneInfo] = {}
    for subject_id, occurred_at, zone in rows:
        if subject_id not in dates:
            dates[subject_id] = occurred_at.astimezone(zones.setdefault(zone, ZoneInfo(zone))).date()
    return dates


# Booked dates of subjects' visits, from an app above the casebook (the planning app registers its
# reader at start-up, `planned_dates_register`), so that the casebook shows them as targets without
# importing it: subject ids → {subject id: (booked D0, {visit code: booked day})}.
PlannedDates = Callable[[Sequence[int], Protocol], dict[int, tuple[date | None, dict[str, date]]]]
_PLANNED_DATES: list[PlannedDates] = []


def planned_dates_register(reader: PlannedDates) -> None:
    """Register a reader of booked dates (once per process, from an app's `ready`)."""
    if reader not in _PLANNED_DATES:
        _PLANNED_DATES.append(reader)


def _anchors(subjects: Sequence[Subject], inclusions: Mapping[int, date], protocol: Protocol) -> dict[int, AnchorDates]:
    planned: dict[int, tuple[date | None, dict[str, date]]] = {}
    for reader in _PLANNED_DATES:
        planned |= reader([s.pk for s in subjects], protocol)
    anchors = {}
    for subject in subjects:
        booked_d0, booked = planned.get(subject.pk, (None, {}))
        anchors[subject.pk] = AnchorDates(
            inclusion=inclusions.get(subject.pk),
            infusion=subject.infusion_date,
            planned_infusion=booked_d0,
            planned=booked,
        )
    return anchors


def subject_anchors(subject: Subject) -> AnchorDates:
    """The dates the schedule hangs on: inclusion (the investigator's signed step) and D0. Recording a
    visit reads these (a visit is done against known dates, never against a booking)."""
    return AnchorDates(inclusion=_inclusion_dates([subject.pk]).get(subject.pk), infusion=subject.infusion_date)


def subject_targets(subject: Subject, protocol: Protocol) -> AnchorDates:
    """The anchors and the booked dates (apheresis, D0) the casebook shows as targets."""
    return _anchors([subject], _inclusion_dates([subject.pk]), protocol)[subject.pk]


def visit_definition(protocol: Protocol, code: str) -> VisitDefinition | None:
    """The protocol's visit `code`; None for an unscheduled visit; NotFound for an unknown code."""
    if is_unscheduled(code):
        return None
    for visit in protocol.visits:
        if visit.code == code:
            return visit
    raise NotFound("No visit '{visit}' in the protocol.", code="visit_unknown", item="visit", visit=code)


def scheduled_visit_of(protocol: Protocol, anchors: AnchorDates, code: str) -> ScheduledVisit | None:
    """The visit with its dates for this subject (None for an unscheduled visit)."""
    definition = visit_definition(protocol, code)
    if definition is None:
        return None
    return next(s for s in visit_schedule((definition,), anchors))


def form_context(
    subject: Subject,
    protocol: Protocol,
    visit_code: str,
    *,
    done_on: date | None,
    other_forms: Mapping[str, Mapping[str, object]],
) -> FormContext:
    """What the engine needs around a form: the visit's window and date, the anchors, the subject's
    sex and age for derived items (eGFR), and the values of the visit's other forms (read by the
    caller, with the form itself) for cross-form checks."""
    anchors = subject_anchors(subject)
    scheduled = scheduled_visit_of(protocol, anchors, visit_code)
    screening = ScreeningRecord.objects.filter(subject=subject).first()
    sex = (screening.data_json or {}).get("sex") if screening else None
    birth = subject_birth_date(subject)
    age = None
    if birth is not None and done_on is not None:
        age = done_on.year - birth.year - ((done_on.month, done_on.day) < (birth.month, birth.day))
    return FormContext(
        visit_code=visit_code,
        target=scheduled.target if scheduled else None,
        earliest=scheduled.earliest if scheduled else None,
        latest=scheduled.latest if scheduled else None,
        done_on=done_on,
        inclusion_date=anchors.inclusion,
        infusion_date=anchors.infusion,
        sex=sex,
        age_years=age,
        other_forms=other_forms,
    )


def in_time_order(protocol: Protocol, done_on: Mapping[str, date | None]) -> list[str]:
    """Visit codes in the order they took place: by date, a tie (or no date) in protocol order,
    unscheduled visits after the scheduled ones of the same day."""
    position = {visit.code: index for index, visit in enumerate(protocol.visits)}
    return sorted(done_on, key=lambda code: (done_on[code] or date.max, position.get(code, len(position)), code))


def visit_dates(subject: Subject) -> dict[str, date | None]:
    """The date each visit of the subject was done on (None: missed)."""
    return dict(VisitRecord.objects.filter(subject=subject).values_list("visit_code", "done_on"))


# --- a subject's casebook -----------------------------------------------------------------------


@dataclass
class VisitRow:
    """One visit of a subject's grid: its dates, status, the forms it collects and their status."""

    code: str
    label: dict[str, str] | Any
    phase: str
    target: date | None
    earliest: date | None
    latest: date | None
    status: VisitStatus
    done_on: date | None
    missed_reason: str
    forms: list[tuple[str, FormStatus]]
    open_queries: int = 0
    unscheduled: bool = False


class VisitOutcome(NamedTuple):
    """What a visit record says, read as plain values (the grids read thousands of them)."""

    outcome: str
    done_on: date | None
    missed_reason: str


_OUTCOME_FIELDS = ("visit_code", "outcome", "done_on", "missed_reason")
_FORM_STATUS = {status.value: status for status in FormStatus}


def _visit_row(
    scheduled: ScheduledVisit,
    status: VisitStatus,
    record: VisitOutcome | None = None,
    *,
    forms: list[tuple[str, FormStatus]] | None = None,
    open_queries: int = 0,
) -> VisitRow:
    definition = scheduled.definition
    return VisitRow(
        code=definition.code,
        label=definition.label,
        phase=str(definition.phase),
        target=scheduled.target,
        earliest=scheduled.earliest,
        latest=scheduled.latest,
        status=status,
        done_on=record.done_on if record else None,
        missed_reason=record.missed_reason if record else "",
        forms=forms or [],
        open_queries=open_queries,
    )


def _rows(
    protocol: Protocol,
    anchors: AnchorDates,
    today: date,
    visits: dict[str, VisitOutcome],
    forms: dict[tuple[str, str], str] | None,
    open_queries: dict[str, int],
) -> list[VisitRow]:
    """The visit rows of one subject; `forms` None: the forms are not read (the grids show visits)."""
    rows = []
    for scheduled in visit_schedule(protocol.visits, anchors):
        definition = scheduled.definition
        record = visits.get(definition.code)
        done_on = record.done_on if record else None
        missed = record is not None and record.outcome == VisitRecord.Outcome.MISSED
        rows.append(
            _visit_row(
                scheduled,
                visit_status(scheduled, today, done_on, missed),
                record,
                forms=None
                if forms is None
                else [
                    (code, _FORM_STATUS[forms.get((definition.code, code), FormStatus.NOT_STARTED.value)])
                    for code in definition.forms
                ],
                open_queries=open_queries.get(definition.code, 0),
            )
        )
    for code, record in sorted(visits.items()):
        if not is_unscheduled(code):
            continue
        rows.append(
            VisitRow(
                code=code,
                label={"en": code, "fr": code},
                phase="unscheduled",
                target=None,
                earliest=None,
                latest=None,
                status=VisitStatus.DONE if record.outcome == VisitRecord.Outcome.DONE else VisitStatus.MISSED,
                done_on=record.done_on,
                missed_reason=record.missed_reason,
                forms=[(f, _FORM_STATUS[s]) for (v, f), s in sorted((forms or {}).items()) if v == code],
                open_queries=open_queries.get(code, 0),
                unscheduled=True,
            )
        )
    return rows


def subject_visit_rows(subject: Subject, protocol: Protocol, today: date) -> list[VisitRow]:
    """The subject × visit grid of one subject, in protocol order, unscheduled visits last."""
    visits = {
        code: VisitOutcome(*rest)
        for code, *rest in VisitRecord.objects.filter(subject=subject).values_list(*_OUTCOME_FIELDS)
    }
    forms = {
        (v, f): s
        for v, f, s in FormRecord.objects.filter(subject=subject).values_list("visit_code", "form_code", "status")
    }
    counts: dict[str, int] = defaultdict(int)
    for visit_code in (
        Query.objects.filter(subject=subject)
        .exclude(status=QueryStatus.CLOSED.value)
        .values_list("visit_code", flat=True)
    ):
        counts[visit_code] += 1
    return _rows(protocol, subject_targets(subject, protocol), today, visits, forms, counts)


def form_record_get(subject: Subject, visit_code: str, form_code: str) -> FormRecord | None:
    return (
        FormRecord.objects.filter(subject=subject, visit_code=visit_code, form_code=form_code)
        .select_related("protocol_version", "subject__center")
        .first()
    )


def form_record_saved(subject: Subject, visit_code: str, form_code: str) -> FormRecord:
    """The form saved at the visit; refused when it has not been saved yet (nothing to verify or lock)."""
    record = form_record_get(subject, visit_code, form_code)
    if record is None:
        raise InvalidInput("This form has not been saved yet.", code="form_not_started", item="form")
    return record


def visit_record_get(subject: Subject, visit_code: str) -> VisitRecord | None:
    return VisitRecord.objects.filter(subject=subject, visit_code=visit_code).first()


@dataclass(frozen=True)
class ItemChange:
    """One change of one item: old → new, who, when, why (from the audit trail); in which role and at
    which center, and whether the form had been locked before (a correction after a lock)."""

    item: str
    old: Any
    new: Any
    user: str
    at: Any
    reason: str
    role: str = ""
    center_code: str = ""
    after_lock: bool = False


# The lines of a record's entries that are not item values: its creation, status and verification.
_NOT_ITEMS = {"form_record": frozenset({"form", "status", "verified"}), "visit_record": frozenset({"visit"})}
_LOCKED = frozenset({FormStatus.LOCKED.value, FormStatus.SIGNED.value})


def _item_changes(entity: str, entries: Iterable[AuditEntry]) -> list[ItemChange]:
    changes = []
    locked = False
    for entry in entries:
        lines = json.loads(entry.changes_json)
        for change in lines:
            if change["field"] in _NOT_ITEMS[entity]:
                continue
            changes.append(
                ItemChange(
                    change["field"],
                    change["old"],
                    change["new"],
                    entry.actor_username,
                    entry.occurred_at,
                    entry.reason,
                    entry.role,
                    entry.center_code,
                    locked,
                )
            )
        locked = locked or any(c["field"] == "status" and c["new"] in _LOCKED for c in lines)
    return changes


def form_history(record: FormRecord) -> list[ItemChange]:
    """Every change of the form's items, oldest first; status lines are left out."""
    entries = AuditEntry.objects.filter(entity="form_record", entity_id=str(record.pk)).order_by("sequence")
    return _item_changes("form_record", entries)


@dataclass(frozen=True)
class RecordHistory:
    """A form or visit record's history: its first entry (who created it, when, where) and its changes."""

    created: AuditEntry
    changes: list[ItemChange]


def casebook_histories(subject_codes: Sequence[str]) -> dict[tuple[str, int], RecordHistory]:
    """The history of every form and visit record of these subjects, by (`form_record` or
    `visit_record`, record id), in one query (an export reads subjects a chunk at a time)."""
    grouped: dict[tuple[str, int], list[AuditEntry]] = defaultdict(list)
    entries = AuditEntry.objects.filter(subject_code__in=list(subject_codes), entity__in=list(_NOT_ITEMS)).order_by(
        "sequence"
    )
    for entry in entries.iterator(chunk_size=2000):
        grouped[(entry.entity, int(entry.entity_id))].append(entry)
    return {key: RecordHistory(found[0], _item_changes(key[0], found)) for key, found in grouped.items()}


def casebook_signatures_in_force(subject_ids: Iterable[int]) -> dict[int, CasebookSignature]:
    """Each subject's casebook signature not voided (the latest), with its signature and signer."""
    found: dict[int, CasebookSignature] = {}
    rows = (
        CasebookSignature.objects.filter(subject_id__in=list(subject_ids), signature__voided_at__isnull=True)
        .select_related("signature", "signature__signer")
        .order_by("-pk")
    )
    for row in rows:
        found.setdefault(row.subject_id, row)
    return found


def form_queries(subject: Subject, visit_code: str, form_code: str) -> QuerySet[Query]:
    return (
        Query.objects.filter(subject=subject, visit_code=visit_code, form_code=form_code)
        .prefetch_related("messages")
        .order_by("raised_at", "pk")
    )


# --- across subjects: study grid, worklist, inbox -----------------------------------------------


@dataclass
class SubjectGridRow:
    subject: Subject
    visits: list[VisitRow] = field(default_factory=list)


def _grid(subjects: list[Subject], protocol: Protocol, now: Any, *, with_forms: bool = False) -> list[SubjectGridRow]:
    """Every subject's visit rows in three queries: inclusions, visits, open queries; the page's grid
    leaves the forms out (a cell is a visit), `with_forms` reads their statuses too (one more query)."""
    ids = [s.pk for s in subjects]
    inclusions = _inclusion_dates(ids)
    visits: dict[int, dict[str, VisitOutcome]] = defaultdict(dict)
    for subject_id, code, *rest in VisitRecord.objects.filter(subject_id__in=ids).values_list(
        "subject_id", *_OUTCOME_FIELDS
    ):
        visits[subject_id][code] = VisitOutcome(*rest)
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for sid, v in (
        Query.objects.filter(subject_id__in=ids)
        .exclude(status=QueryStatus.CLOSED.value)
        .values_list("subject_id", "visit_code")
    ):
        counts[sid][v] += 1
    forms: dict[int, dict[tuple[str, str], str]] | None = None
    if with_forms:
        forms = defaultdict(dict)
        for sid, v, f, status in FormRecord.objects.filter(subject_id__in=ids).values_list(
            "subject_id", "visit_code", "form_code", "status"
        ):
            forms[sid][(v, f)] = status
    grid = []
    all_anchors = _anchors(subjects, inclusions, protocol)
    for subject in subjects:
        anchors = all_anchors[subject.pk]
        today = subject_today(subject, now)
        subject_forms = None if forms is None else forms[subject.pk]
        rows = _rows(protocol, anchors, today, visits[subject.pk], subject_forms, counts[subject.pk])
        grid.append(SubjectGridRow(subject, rows))
    return grid


def _included_subjects(
    scope: Scope, center_code: str | None, subject_codes: Collection[str] | None = None
) -> QuerySet[Subject]:
    """The included subjects of the user's scope (optionally of one center, or only those of
    `subject_codes`), by center and number."""
    included = PathwayEvent.objects.filter(subject=OuterRef("pk"), step=Step.INCLUDE.value)
    queryset = Subject.objects.filter(subject_filter(scope), Exists(included)).select_related("center")
    if center_code:
        queryset = queryset.filter(center__code=center_code)
    if subject_codes is not None:
        queryset = queryset.filter(code__in=list(subject_codes))
    return queryset.order_by("center__code", "number")


# The records of a subject's casebook, as the audit trail names them (their services' entities).
CASEBOOK_ENTITIES = ("visit_record", "form_record", "query")


def casebook_changed_since(since: datetime) -> set[str]:
    """The codes of the subjects whose casebook (a visit, a form, a query) an audit entry after
    `since` created or changed: the API's incremental reads of the grid and the worklist."""
    rows = AuditEntry.objects.filter(occurred_at__gt=since, entity__in=CASEBOOK_ENTITIES).values_list(
        "subject_code", flat=True
    )
    return set(rows.distinct())


def visits_changed_since(subject: Subject, since: datetime) -> set[str]:
    """The codes of the subject's visits whose record, forms or queries an audit entry after `since`
    created or changed (the API's incremental read of a subject's visits)."""
    changed: dict[str, set[str]] = defaultdict(set)
    for entity, entity_id in AuditEntry.objects.filter(
        occurred_at__gt=since, subject_code=subject.code, entity__in=CASEBOOK_ENTITIES
    ).values_list("entity", "entity_id"):
        changed[entity].add(entity_id)
    codes: set[str] = set()
    for model, entity in ((VisitRecord, "visit_record"), (FormRecord, "form_record"), (Query, "query")):
        if changed[entity]:
            ids = [int(i) for i in changed[entity] if i.isdigit()]
            codes |= set(model.objects.filter(subject=subject, pk__in=ids).values_list("visit_code", flat=True))
    return codes


# Subjects per page of the study grid: a screen's worth (each row holds every protocol visit).
GRID_PAGE_SIZE = 50


def study_grid_page(
    scope: Scope, protocol: Protocol, now: Any, *, page: int = 1, center_code: str | None = None
) -> tuple[list[SubjectGridRow], int, int]:
    """One page of the study grid, the page shown (a page past the last shows the last) and the
    number of pages: the subjects are counted, then only the page's subjects and statuses are read."""
    subjects = _included_subjects(scope, center_code)
    pages = max(1, -(-subjects.count() // GRID_PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * GRID_PAGE_SIZE
    return _grid(list(subjects[start : start + GRID_PAGE_SIZE]), protocol, now), page, pages


def study_grid_window(
    scope: Scope,
    protocol: Protocol,
    now: Any,
    *,
    offset: int,
    limit: int,
    center_code: str | None = None,
    subject_codes: Collection[str] | None = None,
) -> tuple[list[SubjectGridRow], int]:
    """A window of the study grid (the API's page: `limit` subjects from `offset`, in the page's
    order) with every visit's forms and their statuses, and how many subjects the grid holds.
    `subject_codes`: only these subjects (an incremental read)."""
    subjects = _included_subjects(scope, center_code, subject_codes)
    total = subjects.count()
    window = list(subjects[offset : offset + limit])
    return _grid(window, protocol, now, with_forms=True), total


@dataclass(frozen=True)
class WorklistRow:
    subject: Subject
    visit: WorklistEntry
    label: Mapping[str, str]


@dataclass(frozen=True)
class CenterWorklist:
    overdue: list[WorklistRow]
    due: list[WorklistRow]
    upcoming: list[WorklistRow]


def center_worklist(
    scope: Scope,
    protocol: Protocol,
    now: Any,
    *,
    center_code: str | None = None,
    horizon_days: int = 7,
    subject_codes: Collection[str] | None = None,
) -> CenterWorklist:
    """Visits overdue, due now (window open) and coming within `horizon_days` (the domain's
    `worklist`, each subject on its center's today), in three queries: subjects, inclusions, visits.
    `subject_codes`: only these subjects' visits (an incremental read)."""
    subjects = list(_included_subjects(scope, center_code, subject_codes))
    ids = [s.pk for s in subjects]
    inclusions = _inclusion_dates(ids)
    done: dict[int, dict[str, date]] = defaultdict(dict)
    missed: dict[int, set[str]] = defaultdict(set)
    for subject_id, code, outcome, done_on in VisitRecord.objects.filter(subject_id__in=ids).values_list(
        "subject_id", "visit_code", "outcome", "done_on"
    ):
        if outcome == VisitRecord.Outcome.MISSED:
            missed[subject_id].add(code)
        elif done_on is not None:  # a done visit has its date (a constraint of the table)
            done[subject_id][code] = done_on
    labels = {visit.code: visit.label for visit in protocol.visits}
    sections: dict[VisitStatus, list[WorklistRow]] = defaultdict(list)
    all_anchors = _anchors(subjects, inclusions, protocol)
    for subject in subjects:
        anchors = all_anchors[subject.pk]
        entry = SubjectVisits(subject.code, protocol.visits, anchors, done[subject.pk], missed[subject.pk])
        for row in worklist([entry], subject_today(subject, now), horizon_days):
            sections[row.status].append(WorklistRow(subject, row, labels[row.code]))

    def ordered(status: VisitStatus) -> list[WorklistRow]:
        return sorted(sections[status], key=lambda r: (r.visit.target, r.subject.code))

    return CenterWorklist(ordered(VisitStatus.OVERDUE), ordered(VisitStatus.DUE), ordered(VisitStatus.UPCOMING))


def overdue_visits(protocol: Protocol, now: Any) -> list[WorklistRow]:
    """Every overdue visit of the trial (the daily alert scan, not a user's read): included subjects
    whose pathway has not ended, each on its own center's today, in three queries."""
    included = PathwayEvent.objects.filter(subject=OuterRef("pk"), step=Step.INCLUDE.value)
    subjects = list(
        Subject.objects.filter(Exists(included))
        .exclude(state__in=[state.value for state in FINAL_STATES])
        .select_related("center")
        .order_by("center__code", "number")
    )
    ids = [s.pk for s in subjects]
    inclusions = _inclusion_dates(ids)
    done: dict[int, dict[str, date]] = defaultdict(dict)
    missed: dict[int, set[str]] = defaultdict(set)
    for subject_id, code, outcome, done_on in VisitRecord.objects.filter(subject_id__in=ids).values_list(
        "subject_id", "visit_code", "outcome", "done_on"
    ):
        if outcome == VisitRecord.Outcome.MISSED:
            missed[subject_id].add(code)
        elif done_on is not None:
            done[subject_id][code] = done_on
    labels = {visit.code: visit.label for visit in protocol.visits}
    rows = []
    all_anchors = _anchors(subjects, inclusions, protocol)
    for subject in subjects:
        anchors = all_anchors[subject.pk]
        entry = SubjectVisits(subject.code, protocol.visits, anchors, done[subject.pk], missed[subject.pk])
        rows += [
            WorklistRow(subject, row, labels[row.code])
            for row in worklist([entry], subject_today(subject, now), horizon_days=0)
            if row.status is VisitStatus.OVERDUE
        ]
    return rows


def queries_in_scope(scope: Scope, *, status: str | None = None, center_code: str | None = None) -> QuerySet[Query]:
    """The queries on subjects the user may see, oldest first, optionally by status and center."""
    queryset = Query.objects.filter(subject__in=Subject.objects.filter(subject_filter(scope))).select_related(
        "subject__center"
    )
    if status:
        queryset = queryset.filter(status=status)
    if center_code:
        queryset = queryset.filter(subject__center__code=center_code)
    return queryset.order_by("raised_at", "pk")


@dataclass(frozen=True)
class CenterQueries:
    """The queries of one center not closed yet: how many, how many older than 30 days, the oldest's age."""

    center: str
    count: int
    over_30_days: int
    oldest_days: int


def queries_by_center(queries: Iterable[Query], now: datetime) -> list[CenterQueries]:
    """The inbox's summary of `queries` (read with their subject's center): per center, by code, the
    queries not closed, their number over 30 days old and the oldest's age in days."""
    ages: dict[str, list[int]] = defaultdict(list)
    for query in queries:
        if query.status != QueryStatus.CLOSED.value:
            ages[query.subject.center.code].append((now - query.raised_at).days)
    return [
        CenterQueries(center, len(found), sum(1 for age in found if age > 30), max(found))
        for center, found in sorted(ages.items())
    ]


def query_get(scope: Scope, query_id: int) -> Query:
    """A query on a subject of the user's scope; NotFound otherwise (never revealing it exists)."""
    query = queries_in_scope(scope).filter(pk=query_id).first()
    if query is None:
        raise NotFound("No query {query} in your scope.", code="not_found", query=query_id)
    return query


# --- reads for the dashboards: many subjects at once, in one query each ---------------------------


def inclusion_dates(subject_ids: Iterable[int]) -> dict[int, date]:
    """Each included subject's inclusion date (the center's calendar), in one query."""
    return _inclusion_dates(subject_ids)


def visits_done(subject_ids: Iterable[int]) -> dict[int, dict[str, date]]:
    """The visits done of each subject, code → date done, in one query."""
    done: dict[int, dict[str, date]] = defaultdict(dict)
    rows = VisitRecord.objects.filter(
        subject_id__in=list(subject_ids), outcome=VisitRecord.Outcome.DONE, done_on__isnull=False
    ).values_list("subject_id", "visit_code", "done_on")
    for subject_id, code, done_on in rows:
        if done_on is not None:
            done[subject_id][code] = done_on
    return done


def form_values(subject_ids: Iterable[int], form_code: str) -> dict[int, dict[str, dict[str, Any]]]:
    """The saved values of one form at every visit of each subject (forms not started left out), in
    one query: subject → visit code → item → value."""
    values: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    rows = (
        FormRecord.objects.filter(subject_id__in=list(subject_ids), form_code=form_code)
        .exclude(status=FormStatus.NOT_STARTED.value)
        .values_list("subject_id", "visit_code", "values_json")
    )
    for subject_id, code, saved in rows:
        values[subject_id][code] = dict(saved or {})
    return values


# --- reads for the exports: many subjects, streamed ------------------------------------------------


def subject_ids_in_code_order(subject_ids: Collection[int]) -> list[int]:
    """The subjects' ids in the order of their codes: an export reads and writes them in that order."""
    return list(Subject.objects.filter(pk__in=list(subject_ids)).order_by("code").values_list("pk", flat=True))


class SavedFormRow(NamedTuple):
    """One saved form with what an export names it by (subject and center codes, protocol version)."""

    subject_code: str
    center_code: str
    visit_code: str
    form_code: str
    status: str
    revision: int
    updated_at: datetime
    protocol_version: str
    values: dict[str, Any]


def saved_forms(subject_ids: Collection[int], *, updated_after: datetime | None = None) -> Iterator[SavedFormRow]:
    """Every form saved (not `not_started`) of these subjects, ordered by subject code, read in one
    query whose rows are fetched in batches (memory stays flat); `updated_after`: only the forms
    changed after that time (an incremental export)."""
    records = FormRecord.objects.filter(subject_id__in=list(subject_ids)).exclude(status=FormStatus.NOT_STARTED.value)
    if updated_after is not None:
        records = records.filter(updated_at__gt=updated_after)
    rows = records.order_by("subject__code", "visit_code", "form_code").values_list(
        "subject__code",
        "subject__center__code",
        "visit_code",
        "form_code",
        "status",
        "revision",
        "updated_at",
        "protocol_version__version",
        "values_json",
    )
    for row in rows.iterator(chunk_size=500):
        yield SavedFormRow(*row[:-1], values=dict(row[-1] or {}))


# --- disease activity (issue 10): the scores derived and stored with each lupus activity form -----

# The derivation of each stored endpoint, keyed by the endpoints contract's name.
ACTIVITY_ENDPOINTS: dict[str, str] = {
    "sledai": "sledai2k",
    "clinical_sledai": "clinical_sledai",
    "doris": "doris_2021",
    "drug_free_doris": "drug_free_doris",
    "lldas": "lldas",
    "sri4": "sri4",
}


def activity_form(protocol: Protocol) -> FormDef | None:
    """The protocol's lupus activity form: the one deriving the DORIS remission."""
    return next(
        (form for form in protocol.forms.values() if any(item.derived == "doris_2021" for item in form.items)), None
    )


@dataclass(frozen=True)
class ActivityVisit:
    """One visit's stored lupus activity: the scores (None: not assessable), the PGA and prednisone
    they were derived from, and the protocol version the form was captured under."""

    code: str
    done_on: date | None
    sledai: int | None
    clinical_sledai: int | None
    pga: float | None
    prednisone_mg_per_day: float | None
    doris: bool | None
    drug_free_doris: bool | None
    lldas: bool | None
    sri4: bool | None
    protocol_version: str


@dataclass(frozen=True)
class DiseaseActivity:
    """A subject's visits with a lupus activity form, in time order, and where DORIS holds from."""

    visits: list[ActivityVisit]
    doris_sustained_from: str | None


def _activity_visit(
    form: FormDef, code: str, done_on: date | None, values: Mapping[str, Any], version: str
) -> ActivityVisit:
    names = {item.derived: item.name for item in form.items if item.derived}
    scores = {key: values.get(names.get(derivation, "")) for key, derivation in ACTIVITY_ENDPOINTS.items()}
    return ActivityVisit(
        code=code,
        done_on=done_on,
        pga=values.get(activity_items.PGA),
        prednisone_mg_per_day=values.get(activity_items.PREDNISONE),
        protocol_version=version,
        **scores,
    )


def _disease_activity(
    protocol: Protocol, form: FormDef, records: Iterable[tuple[str, Mapping[str, Any], str]], dates: Mapping[str, Any]
) -> DiseaseActivity:
    found = {code: (values, version) for code, values, version in records}
    order = in_time_order(protocol, {code: dates.get(code) for code in found})
    visits = [_activity_visit(form, code, dates.get(code), *found[code]) for code in order]
    return DiseaseActivity(visits, doris_sustained_from([(v.code, v.doris is True) for v in visits]))


def disease_activity(subject: Subject, protocol: Protocol) -> DiseaseActivity:
    """The subject's stored lupus activity by visit (two queries: the forms, the visit dates)."""
    form = activity_form(protocol)
    if form is None:
        return DiseaseActivity([], None)
    records = FormRecord.objects.filter(subject=subject, form_code=form.code).values_list(
        "visit_code", "values_json", "protocol_version__version"
    )
    return _disease_activity(protocol, form, records, visit_dates(subject))


def disease_activity_in_scope(
    scope: Scope, protocol: Protocol, *, center_code: str | None = None
) -> dict[str, DiseaseActivity]:
    """Every subject of the user's scope with a lupus activity form: its stored scores by visit, by
    subject code (pseudonymous), in two queries whatever the number of subjects."""
    form = activity_form(protocol)
    if form is None:
        return {}
    subjects = Subject.objects.filter(subject_filter(scope))
    if center_code:
        subjects = subjects.filter(center__code=center_code)
    records: dict[str, list[tuple[str, Mapping[str, Any], str]]] = defaultdict(list)
    for subject_code, code, values, version in FormRecord.objects.filter(
        subject__in=subjects, form_code=form.code
    ).values_list("subject__code", "visit_code", "values_json", "protocol_version__version"):
        records[subject_code].append((code, values, version))
    dates: dict[str, dict[str, Any]] = defaultdict(dict)
    for subject_code, code, done_on in VisitRecord.objects.filter(subject__code__in=list(records)).values_list(
        "subject__code", "visit_code", "done_on"
    ):
        dates[subject_code][code] = done_on
    return {
        subject_code: _disease_activity(protocol, form, rows, dates[subject_code])
        for subject_code, rows in sorted(records.items())
    }


@dataclass(frozen=True)
class VisitActivityCount:
    """At one visit of the schedule: the subjects assessed (a SLEDAI-2K stored) and those in DORIS,
    drug-free DORIS, LLDAS and SRI-4 response."""

    code: str
    assessed: int
    doris: int
    drug_free_doris: int
    lldas: int
    sri4: int


def disease_activity_by_visit(
    scope: Scope, protocol: Protocol, *, center_code: str | None = None
) -> list[VisitActivityCount]:
    """Per scheduled visit collecting the lupus activity form, in protocol order: how many subjects of
    the user's scope were assessed and how many met each endpoint (one query)."""
    form = activity_form(protocol)
    if form is None:
        return []
    subjects = Subject.objects.filter(subject_filter(scope))
    if center_code:
        subjects = subjects.filter(center__code=center_code)
    names = {item.derived: item.name for item in form.items if item.derived}
    counts: dict[str, dict[str, int]] = {
        visit.code: defaultdict(int) for visit in protocol.visits if form.code in visit.forms
    }
    for code, values in FormRecord.objects.filter(subject__in=subjects, form_code=form.code).values_list(
        "visit_code", "values_json"
    ):
        if code not in counts or values.get(names["sledai2k"]) is None:
            continue
        counts[code]["assessed"] += 1
        for key in ("doris", "drug_free_doris", "lldas", "sri4"):
            counts[code][key] += values.get(names[ACTIVITY_ENDPOINTS[key]]) is True
    return [
        VisitActivityCount(
            code,
            counts[code]["assessed"],
            counts[code]["doris"],
            counts[code]["drug_free_doris"],
            counts[code]["lldas"],
            counts[code]["sri4"],
        )
        for code in counts
    ]
