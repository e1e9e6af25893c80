"""The figures of the dashboards (issue 10 item 6), pure: series over days since infusion, the
study's inclusions per center and month, its flow, remission rates per visit and swimmer rows.

Adapters gather records (lab observations, visits done, `sle_activity` forms, pathway events) and
call these functions; the plots and the JSON API draw or return what they give. Days count like
the protocol's visits: the calendar date minus D0 (negative before the infusion); the swimmer plot
counts from the inclusion date instead, since not every subject is infused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from cartrial.domain.text import N_


def day_number(on: date, reference: date) -> int:
    """Days from `reference` (D0, or the inclusion) to `on`: 0 on the day, negative before."""
    return (on - reference).days


# --- time courses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One value of a series; `censored` when the report said "< LoQ" (placed at the limit)."""

    day: int
    value: float
    censored: bool = False


@dataclass(frozen=True)
class Series:
    """One marker of a subject over days since infusion, in one unit.

    `key` is stable (API, plot `data-series`); `label` and `unit_label` are msgids; `panel` groups
    series drawn on one plot; `log` draws it on a log axis.
    """

    key: str
    label: str
    unit: str
    panel: str
    points: tuple[Point, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class EpisodeBand:
    """A shaded stretch of days on the time courses: a CRS or ICANS episode, its maximum grade.

    `end_day` None: still going on (drawn to the last day shown).
    """

    kind: str
    start_day: int
    end_day: int | None
    grade: int


@dataclass(frozen=True)
class MarkerSpec:
    """Where a lab marker comes from (analyte and unit stored) and how it is shown."""

    key: str
    analyte: str
    unit: str
    label: str
    panel: str
    log: bool = False


# The markers of the subject's time courses, in the order drawn. CAR-T has two series (flow
# cytometry and qPCR are two units of one analyte); C3, C4 and IgG are shown in g/L whatever unit the
# lab reported (converted by `domain/units.py`).
LAB_MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec("car_t_cells", "car_t", "cells/µL", N_("CAR-T cells (flow cytometry)"), "car_t", log=True),
    MarkerSpec("car_t_copies", "car_t", "copies/µg", N_("CAR transgene (qPCR)"), "car_t", log=True),
    MarkerSpec("b_cells", "b_cells", "cells/µL", N_("CD19+ B cells"), "b_cells", log=True),
    MarkerSpec("anti_dsdna", "anti_dsdna", "IU/mL", N_("Anti-dsDNA antibodies"), "anti_dsdna", log=True),
    MarkerSpec("c3", "c3", "g/L", N_("Complement C3"), "complement"),
    MarkerSpec("c4", "c4", "g/L", N_("Complement C4"), "complement"),
    MarkerSpec("igg", "igg", "g/L", N_("Immunoglobulin G"), "igg"),
    MarkerSpec("anc", "neutrophils", "10^9/L", N_("Absolute neutrophil count (ANC)"), "anc"),
)
SLEDAI_SERIES = "sledai2k"
PREDNISONE_SERIES = "prednisone"
ACTIVITY_SERIES: tuple[MarkerSpec, ...] = (
    MarkerSpec(SLEDAI_SERIES, "", "points", N_("SLEDAI-2K"), "activity"),
    MarkerSpec(PREDNISONE_SERIES, "", "mg/day", N_("Prednisone-equivalent dose"), "prednisone"),
)
# Panel titles (msgids), in the order the panels are drawn.
PANELS: dict[str, str] = {
    "car_t": N_("CAR-T cells"),
    "b_cells": N_("CD19+ B cells"),
    "anti_dsdna": N_("Anti-dsDNA antibodies"),
    "complement": N_("Complement C3 and C4"),
    "igg": N_("Immunoglobulin G"),
    "anc": N_("Neutrophils"),
    "activity": N_("SLEDAI-2K"),
    "prednisone": N_("Prednisone-equivalent dose"),
}


def series_of(spec: MarkerSpec, points: Iterable[Point]) -> Series:
    """The spec's series with its points in day order."""
    ordered = tuple(sorted(points, key=lambda p: p.day))
    return Series(spec.key, spec.label, spec.unit, spec.panel, ordered, spec.log)


# --- disease activity: the scores stored with each `sle_activity` form ---------------------------


@dataclass(frozen=True)
class VisitActivity:
    """A visit's stored disease activity as the dashboards use it: scores, endpoints (None: not
    assessable, as the form stored it), dose, date."""

    code: str
    done_on: date
    sledai: int
    clinical_sledai: int
    doris: bool | None
    lldas: bool | None
    prednisone_mg_per_day: float | None


def in_remission(assessed: Sequence[VisitActivity]) -> bool:
    """ "In remission" of the study flow: DORIS at the last assessed follow-up visit (not assessable
    there: not in remission)."""
    return bool(assessed) and assessed[-1].doris is True


# --- study dashboard --------------------------------------------------------------------------


def month_of(on: date) -> str:
    """The month an inclusion counts in, as YYYY-MM."""
    return f"{on.year:04d}-{on.month:02d}"


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True)
class CenterInclusions:
    """One center's inclusions per month (every month from the study's first to its last inclusion)."""

    center: str
    months: tuple[str, ...]
    counts: tuple[int, ...]
    cumulative: tuple[int, ...]


def inclusions_per_center(inclusions: Iterable[tuple[str, date]]) -> list[CenterInclusions]:
    """(center, inclusion date) pairs → per center, monthly and cumulative counts on one month axis."""
    by_center: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for center, on in inclusions:
        by_center[center][month_of(on)] += 1
    if not by_center:
        return []
    every = sorted({m for months in by_center.values() for m in months})
    axis = tuple(_months(every[0], every[-1]))
    rows = []
    for center in sorted(by_center):
        counts = tuple(by_center[center].get(m, 0) for m in axis)
        running, cumulative = 0, []
        for count in counts:
            running += count
            cumulative.append(running)
        rows.append(CenterInclusions(center, axis, counts, tuple(cumulative)))
    return rows


FLOW_STAGES: tuple[str, ...] = ("screened", "included", "infused", "in_remission")
FLOW_LABELS: dict[str, str] = {
    "screened": N_("Screened"),
    "included": N_("Included"),
    "infused": N_("Infused"),
    "in_remission": N_("In remission (DORIS at the last assessed visit)"),
}


@dataclass(frozen=True)
class SubjectCourse:
    """What the study dashboard knows of one subject: its pathway dates and assessed visits."""

    code: str
    center: str
    state: str
    final: bool
    screened: bool
    included_on: date | None
    apheresis_on: date | None
    infused_on: date | None
    ended_on: date | None  # the day a final state was reached
    as_of: date | None = None  # today at the subject's center (where its bar ends while its course goes on)
    visits_done: tuple[tuple[str, date], ...] = ()
    activity: tuple[VisitActivity, ...] = ()  # follow-up visits assessed, in time order
    doris_sustained_from: str | None = None


def flow_counts(courses: Iterable[SubjectCourse]) -> dict[str, int]:
    """Screened → included → infused → in remission (each stage counts the subjects who reached it)."""
    counts = dict.fromkeys(FLOW_STAGES, 0)
    for course in courses:
        counts["screened"] += course.screened
        counts["included"] += course.included_on is not None
        counts["infused"] += course.infused_on is not None
        counts["in_remission"] += course.infused_on is not None and in_remission(course.activity)
    return counts


@dataclass(frozen=True)
class VisitRate:
    """DORIS and LLDAS at one follow-up visit among the subjects assessed there (a SLEDAI-2K stored:
    the casebook's count, `disease_activity_by_visit`)."""

    code: str
    day: int
    assessed: int
    doris: int
    lldas: int

    @property
    def doris_pct(self) -> float | None:
        return round(100 * self.doris / self.assessed, 1) if self.assessed else None

    @property
    def lldas_pct(self) -> float | None:
        return round(100 * self.lldas / self.assessed, 1) if self.assessed else None


@dataclass(frozen=True)
class SwimmerRow:
    """One subject's bar, in days from inclusion: apheresis, D0, visits done, where it ends, the
    remission marker (the first visit of the DORIS run lasting to the last assessment)."""

    code: str
    center: str
    state: str
    final: bool
    end_day: int
    apheresis_day: int | None
    infusion_day: int | None
    visit_days: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    remission_day: int | None = None
    remission_visit: str | None = None


def swimmer_rows(courses: Iterable[SubjectCourse], today: date) -> list[SwimmerRow]:
    """The included subjects' bars, longest first; a bar ends on the day its course ended, or today (at
    the subject's center when known, else `today`)."""
    rows = []
    for course in courses:
        start = course.included_on
        if start is None:
            continue
        end = course.ended_on if course.final and course.ended_on else (course.as_of or today)
        visits = tuple((code, day_number(on, start)) for code, on in course.visits_done if on >= start)
        remission_day = None
        if course.doris_sustained_from is not None:
            remission_day = next(
                (day_number(a.done_on, start) for a in course.activity if a.code == course.doris_sustained_from), None
            )
        rows.append(
            SwimmerRow(
                code=course.code,
                center=course.center,
                state=course.state,
                final=course.final,
                end_day=max(day_number(end, start), 0),
                apheresis_day=day_number(course.apheresis_on, start) if course.apheresis_on else None,
                infusion_day=day_number(course.infused_on, start) if course.infused_on else None,
                visit_days=visits,
                remission_day=remission_day,
                remission_visit=course.doris_sustained_from if remission_day is not None else None,
            )
        )
    return sorted(rows, key=lambda r: (-r.end_day, r.code))


# --- safety dashboard -------------------------------------------------------------------------

# CTCAE grades 1–5 (columns of the AE table, stacks of its chart); CRS and ICANS use ASTCT's 1–4 and
# death from either is an AE's outcome, so their rows count grades 1–4 only.
AE_GRADES: tuple[int, ...] = (1, 2, 3, 4, 5)
EPISODE_GRADES: tuple[int, ...] = (1, 2, 3, 4)


@dataclass(frozen=True)
class AeFact:
    """What the safety dashboard reads of one recorded adverse event."""

    subject: str
    term: str
    grade: int
    serious: bool
    aesi: str | None


@dataclass(frozen=True)
class TermGrades:
    """One CTCAE term: its events per grade (in `AE_GRADES` order), the serious ones among them
    (counted apart, not a grade) and the subjects who had it."""

    term: str
    aesi: str | None
    by_grade: tuple[int, ...]
    serious: int
    subjects: int

    @property
    def total(self) -> int:
        return sum(self.by_grade)


def ae_by_term_and_grade(facts: Iterable[AeFact]) -> list[TermGrades]:
    """Events per term and grade, the most frequent term first (ties by code)."""
    grades: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    serious: dict[str, int] = defaultdict(int)
    subjects: dict[str, set[str]] = defaultdict(set)
    aesi: dict[str, str | None] = {}
    for fact in facts:
        grades[fact.term][fact.grade] += 1
        serious[fact.term] += fact.serious
        subjects[fact.term].add(fact.subject)
        aesi[fact.term] = fact.aesi
    rows = [
        TermGrades(term, aesi[term], tuple(grades[term][g] for g in AE_GRADES), serious[term], len(subjects[term]))
        for term in grades
    ]
    return sorted(rows, key=lambda row: (-row.total, row.term))


@dataclass(frozen=True)
class AesiCount:
    """One category of adverse events of special interest: events, serious ones, subjects, worst grade."""

    category: str
    events: int
    serious: int
    subjects: int
    max_grade: int


def ae_by_aesi(facts: Iterable[AeFact], categories: Sequence[str]) -> list[AesiCount]:
    """Per AESI category (in `categories` order, every one listed, zero included)."""
    found: dict[str, list[AeFact]] = defaultdict(list)
    for fact in facts:
        if fact.aesi:
            found[fact.aesi].append(fact)
    return [
        AesiCount(
            category=category,
            events=len(found[category]),
            serious=sum(f.serious for f in found[category]),
            subjects=len({f.subject for f in found[category]}),
            max_grade=max((f.grade for f in found[category]), default=0),
        )
        for category in categories
    ]


@dataclass(frozen=True)
class EpisodeFact:
    """One CRS or ICANS episode of a subject: its kind and maximum grade."""

    subject: str
    kind: str
    max_grade: int


@dataclass(frozen=True)
class EpisodeGrades:
    """Per kind: the subjects by their maximum grade over all their episodes (in `EPISODE_GRADES`
    order), the subjects with an episode and the episodes."""

    kind: str
    subjects_by_grade: tuple[int, ...]
    subjects: int
    episodes: int


def episodes_by_max_grade(facts: Iterable[EpisodeFact], kinds: Sequence[str]) -> list[EpisodeGrades]:
    """Each subject counted once per kind, at the highest grade any of its episodes reached."""
    worst: dict[str, dict[str, int]] = defaultdict(dict)
    episodes: dict[str, int] = defaultdict(int)
    for fact in facts:
        episodes[fact.kind] += 1
        worst[fact.kind][fact.subject] = max(worst[fact.kind].get(fact.subject, 0), fact.max_grade)
    return [
        EpisodeGrades(
            kind=kind,
            subjects_by_grade=tuple(sum(1 for g in worst[kind].values() if g == grade) for grade in EPISODE_GRADES),
            subjects=len(worst[kind]),
            episodes=episodes[kind],
        )
        for kind in kinds
    ]


DLT_DECISIONS: tuple[str, ...] = ("confirmed", "ruled_out", "pending")
DLT_DECISION_LABELS: dict[str, str] = {
    "confirmed": N_("Confirmed"),
    "ruled_out": N_("Ruled out"),
    "pending": N_("Pending"),
}


@dataclass(frozen=True)
class DltFact:
    """A DLT candidate of the D0–D28 window: its AE, the rule it meets, the decision in force (pending
    while the investigator has not signed one)."""

    subject: str
    ae_id: int
    term: str
    grade: int
    rule: str
    decision: str


@dataclass(frozen=True)
class DltSubjectRow:
    """One infused subject's DLT window: where it stands, its candidates by decision."""

    subject: str
    center: str
    window_start: date
    window_end: date
    window_open: bool
    candidates: tuple[DltFact, ...]

    def count(self, decision: str) -> int:
        return sum(1 for c in self.candidates if c.decision == decision)


def dlt_window_rows(
    subjects: Iterable[tuple[str, str, date, date]], window_days: tuple[int, int], facts: Iterable[DltFact]
) -> list[DltSubjectRow]:
    """Per infused subject (code, center, D0, today at its center): its window D0+first..D0+last, open
    until its last day has passed, and its candidates."""
    by_subject: dict[str, list[DltFact]] = defaultdict(list)
    for fact in facts:
        by_subject[fact.subject].append(fact)
    rows = []
    for code, center, infused_on, today in subjects:
        start = infused_on + timedelta(days=window_days[0])
        end = infused_on + timedelta(days=window_days[1])
        rows.append(DltSubjectRow(code, center, start, end, today <= end, tuple(by_subject[code])))
    return rows
