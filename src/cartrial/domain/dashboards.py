"""The figures of the dashboards (issue 10 item 6), pure: series over days since infusion, the
study's inclusions per center and month, its flow, remission rates per visit and swimmer rows.

Adapters gather records (lab observations, visits done, `sle_activity` forms, pathway events) and
call these functions; the plots and the JSON API draw or return what they give. Days count like
the protocol's visits: the calendar date minus D0 (negative before the infusion); the swimmer plot
counts from the inclusion date instead, since not every subject is infused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cartrial.domain.endpoints import Visit, VisitEndpoints
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


# --- disease activity from the `sle_activity` form --------------------------------------------

# Items of the `sle_activity` form read here. The endpoint contract's other inputs are not on the
# form yet (issue 10 item 4 adds them): until then an absent item takes the value below, which is
# the one that lets DORIS and LLDAS be judged from what the form holds (stable maintenance, no
# haemolytic anaemia, no GI activity, no new BILAG domain).
ACTIVITY_DEFAULTS: Mapping[str, Any] = {
    "maintenance_therapy_stable": True,
    "standard_maintenance_only": True,
    "hemolytic_anemia": False,
    "gi_activity": False,
    "new_bilag_a": 0,
    "new_bilag_b": 0,
}


def activity_visit(code: str, values: Mapping[str, Any]) -> Visit | None:
    """The endpoints' input for one visit's `sle_activity` values; None when the form lacks the PGA or
    the prednisone dose (a draft: not an assessment)."""
    pga = values.get("physician_global_assessment")
    prednisone = values.get("prednisone_mg_per_day")
    if pga is None or prednisone is None:
        return None

    def item(name: str) -> Any:
        value = values.get(name)
        return ACTIVITY_DEFAULTS[name] if value is None else value

    return Visit(
        code=code,
        sledai_descriptors=tuple(values.get("sledai2k_descriptors") or ()),
        pga=float(pga),
        prednisone_mg_per_day=float(prednisone),
        maintenance_therapy_stable=bool(item("maintenance_therapy_stable")),
        standard_maintenance_only=bool(item("standard_maintenance_only")),
        hemolytic_anemia=bool(item("hemolytic_anemia")),
        gi_activity=bool(item("gi_activity")),
        new_bilag_a=int(item("new_bilag_a")),
        new_bilag_b=int(item("new_bilag_b")),
        immunosuppressants=tuple(values.get("immunosuppressants") or ()),
    )


@dataclass(frozen=True)
class VisitActivity:
    """A visit's disease activity as the dashboards use it: scores, endpoints, dose, date."""

    code: str
    done_on: date
    sledai: int
    clinical_sledai: int
    doris: bool
    lldas: bool
    prednisone_mg_per_day: float

    @classmethod
    def of(cls, endpoints: VisitEndpoints, visit: Visit, done_on: date) -> VisitActivity:
        return cls(
            code=endpoints.code,
            done_on=done_on,
            sledai=endpoints.sledai,
            clinical_sledai=endpoints.clinical_sledai,
            doris=endpoints.doris,
            lldas=endpoints.lldas,
            prednisone_mg_per_day=visit.prednisone_mg_per_day,
        )


def in_remission(assessed: Sequence[VisitActivity]) -> bool:
    """ "In remission" of the study flow: DORIS at the last assessed follow-up visit."""
    return bool(assessed) and assessed[-1].doris


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
    """DORIS and LLDAS at one follow-up visit: among the subjects assessed there."""

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


def rates_per_visit(visits: Sequence[tuple[str, int]], courses: Iterable[SubjectCourse]) -> list[VisitRate]:
    """Per follow-up visit (code, protocol day, in protocol order): n assessed, n in DORIS, n in LLDAS."""
    assessed: dict[str, list[VisitActivity]] = defaultdict(list)
    for course in courses:
        for row in course.activity:
            assessed[row.code].append(row)
    return [
        VisitRate(
            code=code,
            day=day,
            assessed=len(assessed[code]),
            doris=sum(row.doris for row in assessed[code]),
            lldas=sum(row.lldas for row in assessed[code]),
        )
        for code, day in visits
    ]


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
