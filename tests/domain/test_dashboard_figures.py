"""The dashboards' figures, pure: inclusions per month, the flow, rates per visit, swimmer rows, the
activity form read as the endpoints' input, and the one activity function of the app."""

from __future__ import annotations

from datetime import date

from cartrial.apps.dashboards.activity import subject_activity
from cartrial.domain.dashboards import (
    ACTIVITY_DEFAULTS,
    SubjectCourse,
    VisitActivity,
    activity_visit,
    flow_counts,
    inclusions_per_center,
    rates_per_visit,
    swimmer_rows,
)


def _activity(code: str, on: date, *, doris: bool, lldas: bool) -> VisitActivity:
    return VisitActivity(code, on, 0, 0, doris, lldas, 0.0)


def _course(code: str, **kwargs: object) -> SubjectCourse:
    fields: dict[str, object] = {
        "code": code,
        "center": code[:3],
        "state": "follow_up",
        "final": False,
        "screened": True,
        "included_on": None,
        "apheresis_on": None,
        "infused_on": None,
        "ended_on": None,
    }
    fields.update(kwargs)
    return SubjectCourse(**fields)  # type: ignore[arg-type]


def test_inclusions_share_one_month_axis_with_empty_months_and_the_year_turn() -> None:
    rows = inclusions_per_center(
        [("LIL", date(2026, 1, 5)), ("BDX", date(2025, 11, 30)), ("BDX", date(2026, 1, 2)), ("BDX", date(2026, 1, 20))]
    )
    assert [row.center for row in rows] == ["BDX", "LIL"]
    assert rows[0].months == rows[1].months == ("2025-11", "2025-12", "2026-01")
    assert rows[0].counts == (1, 0, 2) and rows[0].cumulative == (1, 1, 3)
    assert rows[1].counts == (0, 0, 1) and rows[1].cumulative == (0, 0, 1)
    assert inclusions_per_center([]) == []


def test_the_flow_counts_each_stage_reached_and_remission_at_the_last_assessed_visit() -> None:
    d0 = date(2026, 1, 1)
    courses = [
        _course("BDX-001", screened=False),
        _course("BDX-002"),
        _course("BDX-003", included_on=d0),
        # DORIS at M3 lost at M6: not in remission.
        _course(
            "BDX-004",
            included_on=d0,
            infused_on=d0,
            activity=(_activity("M3", d0, doris=True, lldas=True), _activity("M6", d0, doris=False, lldas=True)),
        ),
        _course(
            "BDX-005",
            included_on=d0,
            infused_on=d0,
            activity=(_activity("M3", d0, doris=False, lldas=False), _activity("M6", d0, doris=True, lldas=True)),
        ),
    ]
    assert flow_counts(courses) == {"screened": 4, "included": 3, "infused": 2, "in_remission": 1}
    rates = rates_per_visit([("M3", 90), ("M6", 180), ("M9", 270)], courses)
    assert [(r.code, r.assessed, r.doris, r.lldas) for r in rates] == [
        ("M3", 2, 1, 1),
        ("M6", 2, 1, 2),
        ("M9", 0, 0, 0),
    ]
    assert (rates[0].doris_pct, rates[1].lldas_pct, rates[2].doris_pct) == (50.0, 100.0, None)


def test_swimmer_rows_count_days_from_inclusion_and_end_with_the_course() -> None:
    today = date(2026, 6, 1)
    courses = [
        _course("BDX-001"),  # not included: no bar
        _course(
            "BDX-002",
            included_on=date(2026, 1, 1),
            apheresis_on=date(2026, 1, 8),
            infused_on=date(2026, 2, 1),
            visits_done=(("SCR", date(2025, 12, 1)), ("M3", date(2026, 5, 2))),
            activity=(_activity("M3", date(2026, 5, 2), doris=True, lldas=True),),
            doris_sustained_from="M3",
        ),
        _course("BDX-003", included_on=date(2026, 3, 1), state="withdrawn", final=True, ended_on=date(2026, 3, 11)),
    ]
    rows = swimmer_rows(courses, today)
    assert [row.code for row in rows] == ["BDX-002", "BDX-003"]
    first, withdrawn = rows
    assert (first.end_day, first.apheresis_day, first.infusion_day) == (151, 7, 31)
    assert first.visit_days == (("M3", 121),)  # the screening visit precedes the bar
    assert (first.remission_visit, first.remission_day) == ("M3", 121)
    assert (withdrawn.end_day, withdrawn.infusion_day, withdrawn.remission_day) == (10, None, None)
    # Today at the subject's center (Montréal is still on the day before) ends a course going on.
    behind = swimmer_rows([_course("MTL-001", included_on=date(2026, 5, 1), as_of=date(2026, 5, 31))], today)
    assert behind[0].end_day == 30


def test_the_activity_form_feeds_the_endpoints_with_defaults_for_items_it_does_not_hold_yet() -> None:
    assert activity_visit("M3", {"sledai2k_descriptors": [], "physician_global_assessment": 0.2}) is None
    visit = activity_visit("M3", {"physician_global_assessment": 0.2, "prednisone_mg_per_day": 5})
    assert visit is not None
    assert visit.sledai_descriptors == () and visit.immunosuppressants == ()
    assert visit.maintenance_therapy_stable is ACTIVITY_DEFAULTS["maintenance_therapy_stable"]
    stated = activity_visit(
        "M3", {"physician_global_assessment": 0.2, "prednisone_mg_per_day": 5, "maintenance_therapy_stable": False}
    )
    assert stated is not None and stated.maintenance_therapy_stable is False


def test_the_one_activity_function_assesses_the_follow_up_visits_done_against_the_screening() -> None:
    forms = {
        "SCR": {
            "sledai2k_descriptors": ["arthritis", "rash"],
            "physician_global_assessment": 2,
            "prednisone_mg_per_day": 20,
        },
        "M3": {"sledai2k_descriptors": [], "physician_global_assessment": 0.2, "prednisone_mg_per_day": 5},
        "M6": {"sledai2k_descriptors": [], "physician_global_assessment": 0.2},  # a draft: no dose
        "M9": {"sledai2k_descriptors": [], "physician_global_assessment": 0.1, "prednisone_mg_per_day": 0},
        "M12": {"sledai2k_descriptors": ["arthritis"], "physician_global_assessment": 1, "prednisone_mg_per_day": 5},
    }
    done = {"SCR": date(2025, 12, 1), "M3": date(2026, 4, 1), "M6": date(2026, 7, 1), "M9": date(2026, 10, 1)}
    activity = subject_activity(forms, done, ("M3", "M6", "M9", "M12"))
    assert activity.baseline is not None and activity.baseline.sledai == 6
    # M6 is a draft, M12 not done: neither is assessed.
    assert [(a.code, a.sledai, a.doris, a.lldas) for a in activity.follow_up] == [
        ("M3", 0, True, True),
        ("M9", 0, True, True),
    ]
    assert activity.doris_sustained_from == "M3"
    assert [a.code for a in activity.every_visit] == ["SCR", "M3", "M9"]
    assert subject_activity({}, {}, ("M3",)).follow_up == ()
