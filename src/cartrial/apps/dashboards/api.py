"""API of the dashboards: the study's and the safety figures and a subject's time courses as JSON (the
pages' data)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from cartrial.apps import clock
from cartrial.apps.access import reach_subject, require_somewhere
from cartrial.apps.dashboards import selectors
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.domain.dashboards import AE_GRADES, DLT_DECISIONS, EPISODE_GRADES, FLOW_STAGES
from cartrial.domain.roles import Action

router = Router(tags=["dashboards"])
subjects_router = Router(tags=["dashboards"])


@router.get(
    "/study", summary="The study dashboard: inclusions per center and month, flow, DORIS/LLDAS per visit, swimmer rows"
)
def study_dashboard(request: HttpRequest) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_STUDY_DASHBOARD, "study_dashboard")
    dashboard = selectors.study_dashboard(scope, protocol_in_force(), clock.now())
    return {
        "centers": list(dashboard.centers),
        "inclusions": [
            {
                "center": row.center,
                "months": [
                    {"month": month, "count": count, "cumulative": total}
                    for month, count, total in zip(row.months, row.counts, row.cumulative, strict=True)
                ],
            }
            for row in dashboard.inclusions
        ],
        "flow": {stage: dashboard.flow[stage] for stage in FLOW_STAGES},
        "rates": [
            {
                "visit": rate.code,
                "day": rate.day,
                "assessed": rate.assessed,
                "doris": rate.doris,
                "lldas": rate.lldas,
                "doris_pct": rate.doris_pct,
                "lldas_pct": rate.lldas_pct,
            }
            for rate in dashboard.rates
        ],
        "swimmers": [
            {
                "subject": row.code,
                "center": row.center,
                "state": row.state,
                "final": row.final,
                "end_day": row.end_day,
                "apheresis_day": row.apheresis_day,
                "infusion_day": row.infusion_day,
                "visits": [{"visit": code, "day": day} for code, day in row.visit_days],
                "remission_day": row.remission_day,
                "remission_visit": row.remission_visit,
            }
            for row in dashboard.swimmers
        ],
    }


@subjects_router.get("/{code}/time-courses", summary="A subject's markers over days since infusion (D0)")
def time_courses(request: HttpRequest, code: str) -> dict[str, Any]:
    reach = reach_subject(request.user, code, Action.READ_CASEBOOK, record=False)
    courses = selectors.subject_time_courses(reach.subject, protocol_in_force(), clock.now())
    return {
        "subject": reach.subject.code,
        "infusion_date": courses.infused_on.isoformat() if courses.infused_on else None,
        "series": [
            {
                "key": series.key,
                "unit": series.unit,
                "points": [{"day": p.day, "value": p.value, "censored": p.censored} for p in series.points],
            }
            for series in courses.series
        ],
        "episodes": [
            {"kind": band.kind, "start_day": band.start_day, "end_day": band.end_day, "grade": band.grade}
            for band in courses.bands
        ],
    }


@router.get(
    "/safety",
    summary="The safety dashboard: AEs by term, grade and AESI; CRS/ICANS by maximum grade; SAE reports due; DLTs",
)
def safety_dashboard(request: HttpRequest) -> dict[str, Any]:
    scope = require_somewhere(request.user, Action.READ_SAFETY, "safety_dashboard")
    dashboard = selectors.safety_dashboard(scope, protocol_in_force(), clock.now())
    return {
        "centers": list(dashboard.centers),
        "infused": dashboard.infused,
        "adverse_events": [
            {
                "term": row.term,
                "aesi": row.aesi,
                "by_grade": {str(grade): count for grade, count in zip(AE_GRADES, row.by_grade, strict=True)},
                "total": row.total,
                "serious": row.serious,
                "subjects": row.subjects,
            }
            for row in dashboard.terms
        ],
        "aesi": [
            {
                "category": row.category,
                "events": row.events,
                "serious": row.serious,
                "subjects": row.subjects,
                "max_grade": row.max_grade or None,
            }
            for row in dashboard.aesi
        ],
        "episodes": [
            {
                "kind": row.kind,
                "subjects_by_max_grade": {
                    str(grade): count for grade, count in zip(EPISODE_GRADES, row.subjects_by_grade, strict=True)
                },
                "subjects": row.subjects,
                "episodes": row.episodes,
            }
            for row in dashboard.episodes
        ],
        "sae_reports_due": [
            {
                "subject": row.subject,
                "center": row.center,
                "adverse_event": row.ae_id,
                "term": row.term,
                "kind": row.kind,
                "due_at": row.due_at.isoformat(),
                "overdue": row.overdue,
            }
            for row in dashboard.clocks
        ],
        "dlt": {
            "window_days": list(dashboard.window_days),
            "subjects": [
                {
                    "subject": row.subject,
                    "center": row.center,
                    "window_start": row.window_start.isoformat(),
                    "window_end": row.window_end.isoformat(),
                    "window_open": row.window_open,
                    **{decision: row.count(decision) for decision in DLT_DECISIONS},
                    "candidates": [
                        {
                            "adverse_event": fact.ae_id,
                            "term": fact.term,
                            "grade": fact.grade,
                            "rule": fact.rule,
                            "decision": fact.decision,
                        }
                        for fact in row.candidates
                    ],
                }
                for row in dashboard.dlt
            ],
        },
    }
