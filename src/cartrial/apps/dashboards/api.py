"""API of the dashboards: the study's and the safety figures and a subject's time courses as JSON (the
pages' data). Each is one document of figures over the caller's scope, not a list of records: no
pages and no `since` (the figures are computed when read)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, cast

from django.http import HttpRequest
from ninja import Field, Router, Schema

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.dashboards import selectors
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.dashboards import AE_GRADES, DLT_DECISIONS, EPISODE_GRADES, FLOW_STAGES
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action
from cartrial.domain.safety.sae_clock import ReportKind
from cartrial.domain.safety.terms import AesiCategory
from cartrial.domain.toxicity import ToxicityKind

router = Router(tags=["dashboards"])
subjects_router = Router(tags=["dashboards"])


class MonthOut(Schema):
    month: str = Field(description="YYYY-MM")
    count: int
    cumulative: int


class CenterInclusionsOut(Schema):
    center: str
    months: list[MonthOut]


class FlowOut(Schema):
    """How many subjects reached each stage."""

    screened: int
    included: int
    infused: int
    in_remission: int = Field(description="DORIS at the last assessed visit")


class VisitRateOut(Schema):
    visit: str
    day: int
    assessed: int
    doris: int
    lldas: int
    doris_pct: float | None
    lldas_pct: float | None


class VisitDayOut(Schema):
    visit: str
    day: int


class SwimmerOut(Schema):
    subject: str
    center: str
    state: State
    final: bool
    end_day: int
    apheresis_day: int | None
    infusion_day: int | None
    visits: list[VisitDayOut]
    remission_day: int | None
    remission_visit: str | None


class StudyDashboardOut(Schema):
    centers: list[str]
    inclusions: list[CenterInclusionsOut]
    flow: FlowOut
    rates: list[VisitRateOut]
    swimmers: list[SwimmerOut]


@router.get(
    "/study",
    response=StudyDashboardOut,
    summary="The study dashboard: inclusions per center and month, flow, DORIS/LLDAS per visit, swimmer rows",
)
def study_dashboard(request: HttpRequest) -> StudyDashboardOut:
    scope = require_somewhere(request.user, Action.READ_STUDY_DASHBOARD, "study_dashboard")
    dashboard = selectors.study_dashboard(scope, protocol_in_force(), clock.now())
    return StudyDashboardOut(
        centers=list(dashboard.centers),
        inclusions=[
            CenterInclusionsOut(
                center=row.center,
                months=[
                    MonthOut(month=month, count=count, cumulative=total)
                    for month, count, total in zip(row.months, row.counts, row.cumulative, strict=True)
                ],
            )
            for row in dashboard.inclusions
        ],
        flow=FlowOut(**{stage: dashboard.flow[stage] for stage in FLOW_STAGES}),
        rates=[
            VisitRateOut(
                visit=rate.code,
                day=rate.day,
                assessed=rate.assessed,
                doris=rate.doris,
                lldas=rate.lldas,
                doris_pct=rate.doris_pct,
                lldas_pct=rate.lldas_pct,
            )
            for rate in dashboard.rates
        ],
        swimmers=[
            SwimmerOut(
                subject=row.code,
                center=row.center,
                state=State(row.state),
                final=row.final,
                end_day=row.end_day,
                apheresis_day=row.apheresis_day,
                infusion_day=row.infusion_day,
                visits=[VisitDayOut(visit=code, day=day) for code, day in row.visit_days],
                remission_day=row.remission_day,
                remission_visit=row.remission_visit,
            )
            for row in dashboard.swimmers
        ],
    )


class PointOut(Schema):
    day: int = Field(description="Days since the infusion (D0)")
    value: float
    censored: bool = Field(description="Below the limit of quantification (the value is that limit)")


class SeriesOut(Schema):
    key: str
    unit: str
    points: list[PointOut]


class EpisodeBandOut(Schema):
    kind: ToxicityKind
    start_day: int
    end_day: int | None = Field(description="Null while it goes on")
    grade: int


class TimeCoursesOut(Schema):
    subject: str
    infusion_date: date | None
    series: list[SeriesOut]
    episodes: list[EpisodeBandOut]


@subjects_router.get(
    "/{code}/time-courses", response=TimeCoursesOut, summary="A subject's markers over days since infusion (D0)"
)
def time_courses(request: HttpRequest, code: str) -> TimeCoursesOut:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    courses = selectors.subject_time_courses(reach.subject, protocol_in_force(), clock.now())
    return TimeCoursesOut(
        subject=reach.subject.code,
        infusion_date=courses.infused_on,
        series=[
            SeriesOut(
                key=series.key,
                unit=series.unit,
                points=[PointOut(day=p.day, value=p.value, censored=p.censored) for p in series.points],
            )
            for series in courses.series
        ],
        episodes=[
            EpisodeBandOut(
                kind=ToxicityKind(band.kind), start_day=band.start_day, end_day=band.end_day, grade=band.grade
            )
            for band in courses.bands
        ],
    )


class TermRowOut(Schema):
    term: str
    aesi: AesiCategory | None
    by_grade: dict[str, int] = Field(description=f"AEs by CTCAE grade (keys {', '.join(map(str, AE_GRADES))})")
    total: int
    serious: int
    subjects: int


class AesiRowOut(Schema):
    category: AesiCategory
    events: int
    serious: int
    subjects: int
    max_grade: int | None


class EpisodeRowOut(Schema):
    kind: ToxicityKind
    subjects_by_max_grade: dict[str, int] = Field(
        description=f"Subjects by their worst episode's grade (keys {', '.join(map(str, EPISODE_GRADES))})"
    )
    subjects: int
    episodes: int


class SaeDueOut(Schema):
    subject: str
    center: str
    adverse_event: int
    term: str
    kind: ReportKind
    due_at: datetime
    overdue: bool


type DltDecision = Literal["confirmed", "ruled_out", "pending"]


class DltCandidateFactOut(Schema):
    adverse_event: int
    term: str
    grade: int
    rule: str
    decision: DltDecision


class DltSubjectOut(Schema):
    subject: str
    center: str
    window_start: date
    window_end: date
    window_open: bool
    confirmed: int
    ruled_out: int
    pending: int
    candidates: list[DltCandidateFactOut]


class DltWindowOut(Schema):
    window_days: list[int] = Field(description="The window's first and last day from D0")
    subjects: list[DltSubjectOut]


class SafetyDashboardOut(Schema):
    centers: list[str]
    infused: int
    adverse_events: list[TermRowOut]
    aesi: list[AesiRowOut]
    episodes: list[EpisodeRowOut]
    sae_reports_due: list[SaeDueOut]
    dlt: DltWindowOut


@router.get(
    "/safety",
    response=SafetyDashboardOut,
    summary="The safety dashboard: AEs by term, grade and AESI; CRS/ICANS by maximum grade; SAE reports due; DLTs",
)
def safety_dashboard(request: HttpRequest) -> SafetyDashboardOut:
    scope = require_somewhere(request.user, Action.READ_SAFETY, "safety_dashboard")
    dashboard = selectors.safety_dashboard(scope, protocol_in_force(), clock.now())
    return SafetyDashboardOut(
        centers=list(dashboard.centers),
        infused=dashboard.infused,
        adverse_events=[
            TermRowOut(
                term=row.term,
                aesi=AesiCategory(row.aesi) if row.aesi else None,
                by_grade={str(grade): count for grade, count in zip(AE_GRADES, row.by_grade, strict=True)},
                total=row.total,
                serious=row.serious,
                subjects=row.subjects,
            )
            for row in dashboard.terms
        ],
        aesi=[
            AesiRowOut(
                category=AesiCategory(row.category),
                events=row.events,
                serious=row.serious,
                subjects=row.subjects,
                max_grade=row.max_grade or None,
            )
            for row in dashboard.aesi
        ],
        episodes=[
            EpisodeRowOut(
                kind=ToxicityKind(row.kind),
                subjects_by_max_grade={
                    str(grade): count for grade, count in zip(EPISODE_GRADES, row.subjects_by_grade, strict=True)
                },
                subjects=row.subjects,
                episodes=row.episodes,
            )
            for row in dashboard.episodes
        ],
        sae_reports_due=[
            SaeDueOut(
                subject=row.subject,
                center=row.center,
                adverse_event=row.ae_id,
                term=row.term,
                kind=ReportKind(row.kind),
                due_at=row.due_at,
                overdue=row.overdue,
            )
            for row in dashboard.clocks
        ],
        dlt=DltWindowOut(
            window_days=list(dashboard.window_days),
            subjects=[
                DltSubjectOut(
                    subject=row.subject,
                    center=row.center,
                    window_start=row.window_start,
                    window_end=row.window_end,
                    window_open=row.window_open,
                    **{decision: row.count(decision) for decision in DLT_DECISIONS},
                    candidates=[
                        DltCandidateFactOut(
                            adverse_event=fact.ae_id,
                            term=fact.term,
                            grade=fact.grade,
                            rule=fact.rule,
                            decision=cast(DltDecision, fact.decision),
                        )
                        for fact in row.candidates
                    ],
                )
                for row in dashboard.dlt
            ],
        ),
    )
