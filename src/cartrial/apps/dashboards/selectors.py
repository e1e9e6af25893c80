"""Reads of the dashboards, scoped by the acting user: a subject's time courses, the study's figures.

Lab values come from the one lab-observation store (`clinical.selectors.lab_observations`), visits
and forms from the casebook's selectors, disease activity from `dashboards.activity` (the one
function to switch to the stored scores). The study dashboard reads every subject of the scope in
a fixed number of queries (subjects, inclusions, apheresis collections, visits done, activity forms),
whatever their number.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from cartrial.apps.access import Scope, centers_for
from cartrial.apps.casebook import selectors as casebook
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.selectors import lab_observations
from cartrial.apps.dashboards.activity import SubjectActivity, subject_activity
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.apps.subjects.services import local_today
from cartrial.domain.dashboards import (
    ACTIVITY_SERIES,
    LAB_MARKERS,
    PREDNISONE_SERIES,
    SLEDAI_SERIES,
    CenterInclusions,
    EpisodeBand,
    MarkerSpec,
    Point,
    Series,
    SubjectCourse,
    SwimmerRow,
    VisitRate,
    day_number,
    flow_counts,
    inclusions_per_center,
    rates_per_visit,
    series_of,
    swimmer_rows,
)
from cartrial.domain.errors import DomainError
from cartrial.domain.pathway import State, Step, is_final
from cartrial.domain.roles import Action
from cartrial.domain.units import Analyte, convert, normalize_unit
from cartrial.domain.visits import Anchor
from cartrial.protocols import Protocol

ACTIVITY_FORM = "sle_activity"


def follow_up_activity_visits(protocol: Protocol) -> tuple[tuple[str, int], ...]:
    """The protocol's visits after D0 holding the activity form (M3, M6, ...): code and day, in order."""
    return tuple(
        (visit.code, visit.day)
        for visit in protocol.visits
        if visit.anchor is Anchor.INFUSION and visit.day > 0 and ACTIVITY_FORM in visit.forms
    )


# --- a subject's time courses ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimeCourses:
    """A subject's series over days since infusion and the episodes to shade (none yet: the safety and
    toxicity records add theirs through `episode_bands`)."""

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


def episode_bands(subject: Subject) -> tuple[EpisodeBand, ...]:
    """The CRS / ICANS episodes to shade on the subject's time courses: none recorded yet (the toxicity
    records of issue 10 item 2 fill this in)."""
    return ()


def subject_time_courses(subject: Subject, protocol: Protocol) -> TimeCourses:
    """Every marker of the time courses, in the order drawn, with its points by day since D0; empty
    until the subject is infused (there is no day 0 to count from)."""
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
    activity = _activity_of([subject.pk], protocol)[subject.pk]
    for row in activity.every_visit:
        day = day_number(row.done_on, infused_on)
        points[SLEDAI_SERIES].append(Point(day=day, value=float(row.sledai)))
        points[PREDNISONE_SERIES].append(Point(day=day, value=row.prednisone_mg_per_day))
    series = tuple(series_of(spec, points[spec.key]) for spec in (*LAB_MARKERS, *ACTIVITY_SERIES))
    return TimeCourses(subject, infused_on, series, episode_bands(subject))


def _activity_of(subject_ids: Sequence[int], protocol: Protocol) -> dict[int, SubjectActivity]:
    """Each subject's activity per visit: two queries (visits done, activity forms) for all of them."""
    forms = casebook.form_values(subject_ids, ACTIVITY_FORM)
    done = casebook.visits_done(subject_ids)
    codes = tuple(code for code, _ in follow_up_activity_visits(protocol))
    return {sid: subject_activity(forms.get(sid, {}), done.get(sid, {}), codes) for sid in subject_ids}


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


def _courses(subjects: Sequence[Subject], protocol: Protocol, now: datetime) -> list[SubjectCourse]:
    ids = [s.pk for s in subjects]
    zones = {s.pk: ZoneInfo(s.center.time_zone) for s in subjects}
    included = casebook.inclusion_dates(ids)
    collected = _first_event_dates(ids, Step.COLLECT_APHERESIS, zones)
    done = casebook.visits_done(ids)
    forms = casebook.form_values(ids, ACTIVITY_FORM)
    codes = tuple(code for code, _ in follow_up_activity_visits(protocol))
    courses = []
    for subject in subjects:
        state = State(subject.state)
        visits = done.get(subject.pk, {})
        activity = subject_activity(forms.get(subject.pk, {}), visits, codes)
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
    courses = _courses(subjects, protocol, now)
    return StudyDashboard(
        centers=tuple(sorted({s.center.code for s in subjects})),
        inclusions=inclusions_per_center((c.center, c.included_on) for c in courses if c.included_on),
        flow=flow_counts(courses),
        rates=rates_per_visit(follow_up_activity_visits(protocol), courses),
        swimmers=swimmer_rows(courses, now.date()),
    )
