"""Reads of the dashboards, scoped by the acting user: a subject's time courses, the study's figures.

Lab values come from the one lab-observation store (`clinical.selectors.lab_observations`), visits
from the casebook's selectors, disease activity from the scores stored with each `sle_activity`
form (the casebook's `disease_activity*` selectors, picked by `dashboards.activity`), the CRS and
ICANS episodes from `toxicity.selectors`, adverse events, SAE clocks and DLTs from
`safety.selectors`. Each dashboard reads every subject of the scope in a fixed number of queries,
whatever their number.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from cartrial.apps.access import Scope, centers_for, scope_narrowed, subject_filter
from cartrial.apps.casebook import selectors as casebook
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.selectors import lab_observations
from cartrial.apps.dashboards.activity import subject_activity
from cartrial.apps.safety import selectors as safety
from cartrial.apps.safety.models import AdverseEvent
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.subjects.services import local_today
from cartrial.apps.toxicity.selectors import episodes_for, episodes_in_scope
from cartrial.domain.dashboards import (
    ACTIVITY_SERIES,
    LAB_MARKERS,
    PREDNISONE_SERIES,
    SLEDAI_SERIES,
    AeFact,
    AesiCount,
    CenterInclusions,
    DltFact,
    DltSubjectRow,
    EpisodeBand,
    EpisodeFact,
    EpisodeGrades,
    MarkerSpec,
    Point,
    Series,
    SubjectCourse,
    SwimmerRow,
    TermGrades,
    VisitRate,
    ae_by_aesi,
    ae_by_term_and_grade,
    day_number,
    dlt_window_rows,
    episodes_by_max_grade,
    flow_counts,
    inclusions_per_center,
    series_of,
    swimmer_rows,
)
from cartrial.domain.errors import DomainError
from cartrial.domain.pathway import State, Step, is_final
from cartrial.domain.roles import Action
from cartrial.domain.safety.sae_clock import ReportStatus
from cartrial.domain.safety.terms import AesiCategory
from cartrial.domain.toxicity import ToxicityKind
from cartrial.domain.units import Analyte, convert, normalize_unit
from cartrial.domain.visits import Anchor
from cartrial.protocols import Protocol


def follow_up_activity_visits(protocol: Protocol) -> tuple[tuple[str, int], ...]:
    """The protocol's visits after D0 holding the lupus activity form (M3, M6, ...): code and day, in
    order."""
    form = casebook.activity_form(protocol)
    if form is None:
        return ()
    return tuple(
        (visit.code, visit.day)
        for visit in protocol.visits
        if visit.anchor is Anchor.INFUSION and visit.day > 0 and form.code in visit.forms
    )


# --- a subject's time courses ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimeCourses:
    """A subject's series over days since infusion and the CRS / ICANS episodes to shade."""

    subject: Subject
    infused_on: date | None
    series: tuple[Series, ...]
    bands: tuple[EpisodeBand, ...] = ()


def _lab_point(spec: MarkerSpec, observation: LabObservation, day: int) -> Point | None:
    """The observation in the spec's unit (converted by `domain/units.py` when the lab used another),
    or None when it is another unit that cannot be converted (CAR-T copies are not cells)."""
    value = observation.value
    censored = value is None or (
        observation.limit_of_quantification is not None and value < observation.limit_of_quantification
    )
    shown = observation.limit_of_quantification if censored else value
    if shown is None:
        return None
    unit = normalize_unit(observation.unit)
    if unit != normalize_unit(spec.unit):
        if spec.analyte not in set(Analyte):
            return None
        try:
            shown = convert(analyte=spec.analyte, value=shown, from_unit=unit, to_unit=spec.unit).value
        except DomainError:
            return None
    if not math.isfinite(shown):
        return None
    return Point(day=day, value=shown, censored=censored)


def _sample_day(sampled_at: datetime, infused_on: date, zone: ZoneInfo) -> int:
    return day_number(sampled_at.astimezone(zone).date(), infused_on)


def episode_bands(subject: Subject, today: date) -> tuple[EpisodeBand, ...]:
    """The subject's CRS and ICANS episodes to shade (`toxicity.selectors.episodes_for`): kind, onset
    day, last day graded ≥ 1 (today's day from D0 while the episode goes on), maximum grade."""
    infused_on = subject.infusion_date
    if infused_on is None:
        return ()
    today_day = day_number(today, infused_on)
    return tuple(
        EpisodeBand(
            kind=episode.kind.value,
            start_day=episode.onset_day,
            end_day=max(today_day, episode.last_day) if episode.ongoing else episode.last_day,
            grade=episode.max_grade,
        )
        for episode in episodes_for(subject)
    )


def subject_time_courses(subject: Subject, protocol: Protocol, now: datetime) -> TimeCourses:
    """Every marker of the time courses, in the order drawn, with its points by day since D0, and the
    episodes to shade; empty until the subject is infused (there is no day 0 to count from)."""
    infused_on = subject.infusion_date
    if infused_on is None:
        return TimeCourses(subject, None, tuple(series_of(spec, ()) for spec in (*LAB_MARKERS, *ACTIVITY_SERIES)))
    zone = ZoneInfo(subject.center.time_zone)
    analytes = {spec.analyte for spec in LAB_MARKERS}
    points: dict[str, list[Point]] = defaultdict(list)
    for observation in lab_observations(subject=subject, analytes=analytes):
        day = _sample_day(observation.sampled_at, infused_on, zone)
        for spec in LAB_MARKERS:
            if spec.analyte != observation.analyte:
                continue
            # CAR-T: the unit says which assay (cells/µL by cytometry, copies/µg by qPCR).
            if spec.analyte == "car_t" and normalize_unit(observation.unit) != normalize_unit(spec.unit):
                continue
            point = _lab_point(spec, observation, day)
            if point is not None:
                points[spec.key].append(point)
    codes = {code for code, _ in follow_up_activity_visits(protocol)}
    activity = subject_activity(casebook.disease_activity(subject, protocol), codes)
    for row in activity.every_visit:
        day = day_number(row.done_on, infused_on)
        points[SLEDAI_SERIES].append(Point(day=day, value=float(row.sledai)))
        if row.prednisone_mg_per_day is not None:
            points[PREDNISONE_SERIES].append(Point(day=day, value=float(row.prednisone_mg_per_day)))
    series = tuple(series_of(spec, points[spec.key]) for spec in (*LAB_MARKERS, *ACTIVITY_SERIES))
    return TimeCourses(subject, infused_on, series, episode_bands(subject, local_today(subject.center, now)))


# --- the study dashboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyDashboard:
    """The study's figures over the subjects of the user's scope."""

    centers: tuple[str, ...]
    inclusions: list[CenterInclusions]
    flow: dict[str, int]
    rates: list[VisitRate]
    swimmers: list[SwimmerRow]


def dashboard_subjects(scope: Scope) -> list[Subject]:
    """The subjects of the centers where the user's role may read the study dashboard (the lab reads
    none: it has no role there)."""
    centers = centers_for(scope, Action.READ_STUDY_DASHBOARD)
    return list(
        Subject.objects.filter(center_id__in=centers).select_related("center").order_by("center__code", "number")
    )


def _first_event_dates(subject_ids: Iterable[int], step: Step, zones: dict[int, ZoneInfo]) -> dict[int, date]:
    dates: dict[int, date] = {}
    rows = (
        PathwayEvent.objects.filter(subject_id__in=list(subject_ids), step=step.value)
        .order_by("occurred_at")
        .values_list("subject_id", "occurred_at")
    )
    for subject_id, occurred_at in rows:
        dates.setdefault(subject_id, occurred_at.astimezone(zones[subject_id]).date())
    return dates


def _courses(subjects: Sequence[Subject], scope: Scope, protocol: Protocol, now: datetime) -> list[SubjectCourse]:
    """Each subject's pathway dates, visits done and stored activity (`scope`: the dashboard's centers)."""
    ids = [s.pk for s in subjects]
    zones = {s.pk: ZoneInfo(s.center.time_zone) for s in subjects}
    included = casebook.inclusion_dates(ids)
    collected = _first_event_dates(ids, Step.COLLECT_APHERESIS, zones)
    done = casebook.visits_done(ids)
    stored = casebook.disease_activity_in_scope(scope, protocol)
    codes = {code for code, _ in follow_up_activity_visits(protocol)}
    courses = []
    for subject in subjects:
        state = State(subject.state)
        visits = done.get(subject.pk, {})
        activity = subject_activity(stored.get(subject.code), codes)
        courses.append(
            SubjectCourse(
                code=subject.code,
                center=subject.center.code,
                state=state.value,
                final=is_final(state),
                screened=state is not State.PRE_SCREENING,
                included_on=included.get(subject.pk),
                apheresis_on=collected.get(subject.pk),
                infused_on=subject.infusion_date,
                ended_on=subject.state_changed_at.astimezone(zones[subject.pk]).date() if is_final(state) else None,
                as_of=local_today(subject.center, now),
                visits_done=tuple(sorted(visits.items(), key=lambda item: (item[1], item[0]))),
                activity=activity.follow_up,
                doris_sustained_from=activity.doris_sustained_from,
            )
        )
    return courses


def study_dashboard(scope: Scope, protocol: Protocol, now: datetime) -> StudyDashboard:
    """Inclusions per center and month, the flow, DORIS / LLDAS per visit and the swimmer rows, over
    the subjects of the user's dashboard centers, in a fixed number of queries."""
    subjects = dashboard_subjects(scope)
    narrowed = scope_narrowed(scope, Action.READ_STUDY_DASHBOARD)
    courses = _courses(subjects, narrowed, protocol, now)
    counts = {row.code: row for row in casebook.disease_activity_by_visit(narrowed, protocol)}
    rates = [
        VisitRate(code, day, counts[code].assessed, counts[code].doris, counts[code].lldas)
        if code in counts
        else VisitRate(code, day, 0, 0, 0)
        for code, day in follow_up_activity_visits(protocol)
    ]
    return StudyDashboard(
        centers=tuple(sorted({s.center.code for s in subjects})),
        inclusions=inclusions_per_center((c.center, c.included_on) for c in courses if c.included_on),
        flow=flow_counts(courses),
        rates=rates,
        swimmers=swimmer_rows(courses, now.date()),
    )


# --- the safety dashboard -----------------------------------------------------------------------


@dataclass(frozen=True)
class SaeDue:
    """The report due of an open SAE clock: which AE, which report, by when, whether it is overdue."""

    subject: str
    center: str
    time_zone: str
    ae_id: int
    term: str
    kind: str
    due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class SafetyDashboard:
    """The safety figures over the subjects of the centers where the user reads safety data."""

    centers: tuple[str, ...]
    infused: int
    terms: list[TermGrades]
    aesi: list[AesiCount]
    episodes: list[EpisodeGrades]
    clocks: list[SaeDue]
    dlt: list[DltSubjectRow]
    dlt_rules: dict[str, Mapping[str, str]]
    window_days: tuple[int, int]


def safety_dashboard(scope: Scope, protocol: Protocol, now: datetime) -> SafetyDashboard:
    """AEs by term and grade and by AESI category, CRS / ICANS subjects by maximum grade, the open SAE
    clocks' reports due, the DLT window of each infused subject: the safety, toxicity and casebook
    apps' own reads over the user's safety centers (`Action.READ_SAFETY`), in a fixed number of
    queries (subjects, AEs and their DLT decisions, open clocks and their reports, daily assessments)."""
    narrowed = scope_narrowed(scope, Action.READ_SAFETY)
    rules = safety.safety_rules(protocol)
    subjects = list(
        Subject.objects.filter(subject_filter(narrowed)).select_related("center").order_by("center__code", "number")
    )
    events: dict[int, list[AdverseEvent]] = defaultdict(list)
    for ae in safety.adverse_events_in(s.pk for s in subjects):
        events[ae.subject_id].append(ae)
    codes = {s.pk: s.code for s in subjects}
    facts = [
        AeFact(codes[ae.subject_id], ae.term, ae.grade, ae.serious, ae.aesi or None)
        for sid in events
        for ae in events[sid]
    ]
    candidates: list[DltFact] = []
    infused = []
    for subject in subjects:
        if subject.infusion_date is None:
            continue
        infused.append((subject.code, subject.center.code, subject.infusion_date, local_today(subject.center, now)))
        for row in safety.dlt_panel(subject, rules, events.get(subject.pk, [])):
            candidates.append(
                DltFact(
                    subject=subject.code,
                    ae_id=row.adverse_event.pk,
                    term=row.adverse_event.term,
                    grade=row.adverse_event.grade,
                    rule=row.candidate.rule.code,
                    decision=row.assessment.decision if row.assessment else "pending",
                )
            )
    clocks = []
    for clock in safety.open_sae_clocks(narrowed, rules, now):
        due = clock.state.next_due
        if due is None:
            continue
        clocks.append(
            SaeDue(
                subject=clock.subject_code,
                center=clock.center_code,
                time_zone=clock.adverse_event.subject.center.time_zone,
                ae_id=clock.adverse_event.pk,
                term=clock.adverse_event.term,
                kind=due.kind.value,
                due_at=due.due_at,
                overdue=due.status is ReportStatus.OVERDUE,
            )
        )
    episodes = [
        EpisodeFact(row.subject_code, row.episode.kind.value, row.episode.max_grade)
        for row in episodes_in_scope(narrowed)
    ]
    return SafetyDashboard(
        centers=tuple(sorted({s.center.code for s in subjects})),
        infused=len(infused),
        terms=ae_by_term_and_grade(facts),
        aesi=ae_by_aesi(facts, [category.value for category in AesiCategory]),
        episodes=episodes_by_max_grade(episodes, [kind.value for kind in ToxicityKind]),
        clocks=clocks,
        dlt=dlt_window_rows(infused, rules.dlt.window_days, candidates),
        dlt_rules={rule.code: rule.label for rule in rules.dlt.rules},
        window_days=rules.dlt.window_days,
    )
