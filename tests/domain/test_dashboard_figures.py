"""The dashboards' figures, pure: inclusions per month, the flow, rates per visit, swimmer rows, and
the one activity function of the app picking the stored scores' visits."""

from __future__ import annotations

from datetime import date

from cartrial.apps.casebook.selectors import ActivityVisit, DiseaseActivity
from cartrial.apps.dashboards.activity import subject_activity
from cartrial.domain.dashboards import (
    AeFact,
    DltFact,
    EpisodeFact,
    SubjectCourse,
    VisitActivity,
    VisitRate,
    ae_by_aesi,
    ae_by_term_and_grade,
    dlt_window_rows,
    episodes_by_max_grade,
    flow_counts,
    inclusions_per_center,
    swimmer_rows,
)


def _activity(code: str, on: date, *, doris: bool | None, lldas: bool | None) -> VisitActivity:
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
    # DORIS not assessable at the last visit (an answer missing on the form): not in remission.
    unknown = _course("BDX-006", included_on=d0, infused_on=d0, activity=(_activity("M3", d0, doris=None, lldas=None),))
    assert flow_counts([unknown])["in_remission"] == 0


def test_rates_are_percentages_of_the_subjects_assessed_and_none_without_any() -> None:
    rates = [VisitRate("M3", 90, 2, 1, 1), VisitRate("M6", 180, 3, 1, 2), VisitRate("M9", 270, 0, 0, 0)]
    assert [(r.doris_pct, r.lldas_pct) for r in rates] == [(50.0, 50.0), (33.3, 66.7), (None, None)]


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


def _stored(code: str, done_on: date | None, sledai: int | None, doris: bool | None) -> ActivityVisit:
    return ActivityVisit(
        code=code,
        done_on=done_on,
        sledai=sledai,
        clinical_sledai=sledai,
        pga=0.2 if sledai is not None else None,
        prednisone_mg_per_day=5.0,
        doris=doris,
        drug_free_doris=False,
        lldas=doris,
        sri4=True,
        protocol_version="1.0",
    )


def test_the_one_activity_function_picks_the_stored_scores_of_the_visits_assessed() -> None:
    stored = DiseaseActivity(
        visits=[
            _stored("SCR", date(2025, 12, 1), 6, False),
            _stored("M3", date(2026, 4, 1), 0, True),
            _stored("M6", date(2026, 7, 1), None, None),  # no PGA: not an assessment
            _stored("UNS1", date(2026, 8, 1), 0, True),  # not a follow-up visit of the schedule
            _stored("M9", date(2026, 10, 1), 0, None),  # DORIS not assessable, SLEDAI-2K stored
            _stored("M12", None, 0, True),  # the form saved, the visit not done
        ],
        doris_sustained_from="M3",
    )
    activity = subject_activity(stored, {"M3", "M6", "M9", "M12"})
    assert activity.baseline is not None and activity.baseline.sledai == 6
    assert [(a.code, a.sledai, a.doris, a.prednisone_mg_per_day) for a in activity.follow_up] == [
        ("M3", 0, True, 5.0),
        ("M9", 0, None, 5.0),
    ]
    assert activity.doris_sustained_from == "M3"  # the casebook's, never computed again
    assert [a.code for a in activity.every_visit] == ["SCR", "M3", "M9"]
    assert subject_activity(None, {"M3"}) == subject_activity(DiseaseActivity([], None), {"M3"})
    assert subject_activity(None, {"M3"}).follow_up == ()


def test_aes_count_per_term_and_grade_with_the_serious_apart_and_every_aesi_category() -> None:
    facts = [
        AeFact("BDX-001", "nausea", 1, False, None),
        AeFact("BDX-001", "nausea", 2, False, None),
        AeFact("BDX-002", "nausea", 2, False, None),
        AeFact("BDX-001", "febrile_neutropenia", 3, True, "infection"),
        AeFact("BDX-002", "sepsis", 4, True, "infection"),
    ]
    rows = ae_by_term_and_grade(facts)
    assert [(r.term, r.by_grade, r.total, r.serious, r.subjects) for r in rows] == [
        ("nausea", (1, 2, 0, 0, 0), 3, 0, 2),
        ("febrile_neutropenia", (0, 0, 1, 0, 0), 1, 1, 1),
        ("sepsis", (0, 0, 0, 1, 0), 1, 1, 1),
    ]
    aesi = ae_by_aesi(facts, ["crs", "infection"])
    assert [(a.category, a.events, a.serious, a.subjects, a.max_grade) for a in aesi] == [
        ("crs", 0, 0, 0, 0),
        ("infection", 2, 2, 2, 4),
    ]


def test_each_subject_counts_once_per_syndrome_at_its_highest_episode_grade() -> None:
    facts = [
        EpisodeFact("BDX-001", "crs", 1),
        EpisodeFact("BDX-001", "crs", 3),  # a second, worse episode of the same subject
        EpisodeFact("BDX-002", "crs", 1),
        EpisodeFact("BDX-002", "icans", 2),
    ]
    crs, icans = episodes_by_max_grade(facts, ["crs", "icans"])
    assert (crs.subjects_by_grade, crs.subjects, crs.episodes) == ((1, 0, 1, 0), 2, 3)
    assert (icans.subjects_by_grade, icans.subjects, icans.episodes) == ((0, 1, 0, 0), 1, 1)


def test_the_dlt_window_is_open_until_its_last_day_and_counts_each_decision() -> None:
    d0 = date(2026, 3, 1)
    facts = [
        DltFact("BDX-001", 1, "cytokine_release_syndrome", 4, "crs_grade4", "confirmed"),
        DltFact("BDX-001", 2, "neutrophil_count_decreased", 4, "cytopenia_grade4_beyond_d28", "pending"),
    ]
    subjects = [("BDX-001", "BDX", d0, date(2026, 3, 29)), ("BDX-002", "BDX", d0, date(2026, 3, 30))]
    first, second = dlt_window_rows(subjects, (0, 28), facts)
    assert (first.window_start, first.window_end, first.window_open) == (d0, date(2026, 3, 29), True)
    assert (first.count("confirmed"), first.count("ruled_out"), first.count("pending")) == (1, 0, 1)
    assert (second.window_open, second.candidates) == (False, ())
