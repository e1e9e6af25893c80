"""The demo's casebook (issue 9, item 7): infused subjects with their follow-up visits entered through
the casebook services, forms at every status, automatic and manual queries open and closed, a signed
casebook, and an audit chain still intact after it all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction

from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.casebook.models import CasebookSignature, FormRecord, Query, VisitRecord
from cartrial.apps.casebook.selectors import subject_today, subject_visit_rows
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.models import Subject
from cartrial.demo import REFERENCE_RANGES, build_demo, demo_epoch
from cartrial.domain.pathway import State
from cartrial.domain.visits import VisitStatus
from cartrial.protocols import active_protocol


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The demo, built once for the module; each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        build_demo(active_protocol(), today=demo_epoch())
        yield
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("demo", "db")


def test_every_infused_subject_has_done_visits_with_saved_forms() -> None:
    infused = list(Subject.objects.filter(infusion_date__isnull=False))
    assert len(infused) == 6
    for subject in infused:
        done = VisitRecord.objects.filter(subject=subject, outcome="done")
        assert done.filter(visit_code="D1").exists(), subject.code
        assert FormRecord.objects.filter(subject=subject, visit_code="D1", form_code="vital_signs").exists()
        for visit in done.exclude(visit_code__in=("SCR", "APH")):
            assert visit.done_on is not None and visit.done_on >= subject.infusion_date - timedelta(days=5)
        # Screening and apheresis took place on the pathway's dates; the visits whose window has
        # passed are done (their forms may be left to enter): none overdue.
        assert {"SCR", "APH"} <= set(done.values_list("visit_code", flat=True))
        today = subject_today(subject, demo_epoch())
        rows = subject_visit_rows(subject, active_protocol(), today)
        overdue = [r.code for r in rows if r.status is VisitStatus.OVERDUE]
        if subject.state not in (State.COMPLETED, State.WITHDRAWN):
            assert overdue == [], (subject.code, overdue)
    follow_up = Subject.objects.get(state=State.LONG_TERM_FOLLOW_UP)
    codes = set(VisitRecord.objects.filter(subject=follow_up, outcome="done").values_list("visit_code", flat=True))
    assert {"LD", "D0", "D7", "D28", "M3", "M12", "M24"} <= codes
    missed = VisitRecord.objects.get(outcome="missed")
    assert missed.missed_reason and not FormRecord.objects.filter(subject=missed.subject, visit_code=missed.visit_code)


def test_forms_are_at_every_status_of_their_lifecycle() -> None:
    statuses = Counter(FormRecord.objects.values_list("status", flat=True))
    assert {"draft", "complete", "verified", "locked", "signed"} <= set(statuses), statuses


def test_the_course_has_its_clinical_shape() -> None:
    crs = Subject.objects.get(state=State.FOLLOW_UP)

    def value(subject: Subject, visit: str, form: str, item: str) -> Any:
        # An empty multiple choice is not stored: no descriptor present.
        item_value = FormRecord.objects.get(subject=subject, visit_code=visit, form_code=form).values_json.get(item, [])
        return item_value["value"] if isinstance(item_value, dict) else item_value

    # Fever D1–D3 during the CRS, gone by D7; the neutrophil nadir in week 1.
    assert all(value(crs, v, "vital_signs", "temperature_c") >= 38.0 for v in ("D1", "D2", "D3"))
    assert value(crs, "D7", "vital_signs", "temperature_c") < 37.8
    assert value(crs, "D7", "haematology", "anc") < 1.0 < value(crs, "D28", "haematology", "anc")
    # SLEDAI-2K descriptors and prednisone fall over the months.
    follow_up = Subject.objects.get(state=State.COMPLETED)
    assert len(value(follow_up, "M3", "sle_activity", "sledai2k_descriptors")) > len(
        value(follow_up, "M12", "sle_activity", "sledai2k_descriptors")
    )
    assert value(follow_up, "M3", "sle_activity", "prednisone_mg_per_day") > value(
        follow_up, "M6", "sle_activity", "prednisone_mg_per_day"
    )
    # The kinetic markers are the kinetics seed's, not the casebook's.
    assert not any(
        set(values) & {"anti_dsdna", "b_cells", "car_t_cells", "car_t_copies"}
        for values in FormRecord.objects.filter(form_code="immunology").values_list("values_json", flat=True)
    )
    # Lab items carry their reference range into the one lab store.
    casebook_labs = LabObservation.objects.filter(context="casebook")
    assert casebook_labs.exists()
    assert all((row.lower_limit, row.upper_limit) in set(REFERENCE_RANGES.values()) for row in casebook_labs)


def test_automatic_and_manual_queries_are_open_answered_and_closed() -> None:
    queries = Counter(Query.objects.values_list("origin", "status"))
    assert queries[("edit_check", "open")] >= 1, queries
    assert queries[("edit_check", "closed")] >= 1, queries
    assert queries[("manual", "open")] >= 1, queries
    assert queries[("manual", "closed")] >= 1, queries
    assert queries[("edit_check", "answered")] + queries[("manual", "answered")] >= 1, queries
    # A corrected typing error closes its query by itself; a manual one is closed by whoever raised it.
    resolved = Query.objects.filter(origin="edit_check", check_code="diastolic_below_systolic", status="closed")
    assert resolved.exists()
    assert [m.move for m in resolved.first().messages.all()] == ["raise", "resolve"]
    raisers = set(Query.objects.filter(origin="manual").values_list("raised_by__username", flat=True))
    assert raisers == {"cra.monitor", "dm.datamanager"}
    for query in Query.objects.filter(origin="manual", status="closed"):
        closer = query.messages.get(move="close").by_name
        assert closer == query.raised_by.username


def test_a_casebook_is_signed_by_its_investigator_once_every_form_is_locked() -> None:
    signed = CasebookSignature.objects.select_related("signature__signer", "subject__center").get()
    subject = signed.subject
    assert signed.signature.voided_at is None
    assert signed.signature.signer.username == f"{subject.center.code.lower()}.investigator"
    statuses = set(FormRecord.objects.filter(subject=subject).values_list("status", flat=True))
    assert statuses == {"signed"}
    assert signed.forms_signed == FormRecord.objects.filter(subject=subject).count()


def test_every_action_happened_before_today_and_the_audit_chain_is_intact() -> None:
    from cartrial.apps.audit.models import AuditEntry

    today = demo_epoch()
    casebook = AuditEntry.objects.filter(event__startswith="casebook.")
    assert casebook.count() > 100
    assert all(at <= today for at in casebook.values_list("occurred_at", flat=True))
    report = audit_verify()
    assert report.intact, report


def test_every_included_subject_had_its_screening_visit_and_its_apheresis_once_collected() -> None:
    included = Subject.objects.filter(pathway_events__step="include").distinct()
    assert included.count() >= 10
    for subject in included:
        done = set(VisitRecord.objects.filter(subject=subject, outcome="done").values_list("visit_code", flat=True))
        assert "SCR" in done, subject.code
        collected = subject.pathway_events.filter(step="collect_apheresis").exists()
        assert ("APH" in done) == collected, subject.code


def test_the_lupus_activity_forms_store_their_scores() -> None:
    """Every saved lupus activity form holds its SLEDAI-2K, equal to the count of its descriptors'
    weights; the demo's answers make DORIS assessable, and the completed subject's course reaches it."""
    from cartrial.apps.casebook.selectors import disease_activity
    from cartrial.domain.scores.sledai2k import score_sledai2k

    forms = list(FormRecord.objects.filter(form_code="sle_activity").values_list("values_json", flat=True))
    assert forms and all(
        v["sledai2k_score"] == score_sledai2k(descriptors=v.get("sledai2k_descriptors", [])).score for v in forms
    )
    completed = disease_activity(Subject.objects.get(state=State.COMPLETED), active_protocol())
    doris = [visit.doris for visit in completed.visits]
    assert None not in doris and True in doris and completed.doris_sustained_from is not None, doris


# --- safety, toxicity and disease activity (issue 10, item 7) ---------------------------------------


def _infused() -> list[Subject]:
    return list(Subject.objects.filter(infusion_date__isnull=False).select_related("center").order_by("code"))


def test_the_infused_subjects_are_assessed_daily_with_a_grade_1_crs_from_d1_to_d3_in_most() -> None:
    from cartrial.apps.toxicity.models import ToxicityAssessment
    from cartrial.apps.toxicity.selectors import episodes_for
    from cartrial.domain.toxicity import ToxicityKind

    infused = _infused()
    with_crs = []
    for subject in infused:
        days = list(ToxicityAssessment.objects.filter(subject=subject).order_by("day").values_list("day", flat=True))
        # Every evening from D0, without a gap, up to D14 or today.
        assert days and days == list(range(len(days))) and len(days) <= 15, (subject.code, days)
        assert ToxicityAssessment.objects.filter(subject=subject, recorded_by__username__endswith=".coordinator")
        crs = [e for e in episodes_for(subject) if e.kind is ToxicityKind.CRS]
        if crs and (crs[0].onset_day, crs[0].max_grade, crs[0].duration_days, crs[0].resolved_day) == (1, 1, 3, 4):
            with_crs.append(subject)
    assert len(with_crs) > len(infused) / 2, [s.code for s in with_crs]
    for subject in with_crs:
        # Fever without hypotension or hypoxia, the temperature the vital signs of the day record.
        for assessment in ToxicityAssessment.objects.filter(subject=subject, day__in=(1, 2, 3)):
            assert assessment.temperature_c >= 38.0 and assessment.crs_grade == 1
            assert (assessment.hypotension, assessment.hypoxia) == ("none", "none")
            vitals = FormRecord.objects.get(subject=subject, visit_code=f"D{assessment.day}", form_code="vital_signs")
            assert vitals.values_json["temperature_c"] == assessment.temperature_c


def test_one_subject_has_a_grade_2_icans_treated_with_corticosteroids() -> None:
    from cartrial.apps.toxicity.models import ToxicityAssessment
    from cartrial.apps.toxicity.selectors import episodes_for
    from cartrial.domain.toxicity import ToxicityKind

    icans = [
        (subject, episode)
        for subject in _infused()
        for episode in episodes_for(subject)
        if episode.kind is ToxicityKind.ICANS
    ]
    assert len(icans) == 1, icans
    subject, episode = icans[0]
    assert (episode.onset_day, episode.max_grade, episode.duration_days, episode.resolved_day) == (5, 2, 2, 7)
    assert episode.steroids and not episode.tocilizumab
    for assessment in ToxicityAssessment.objects.filter(subject=subject, day__in=(5, 6)):
        assert 3 <= assessment.ice_score <= 6 and assessment.consciousness == "normal"
        # Dexamethasone for the ICANS on afebrile days, after the CRS resolved: not CRS (ASTCT waives
        # fever only for a patient who has CRS), so no second CRS episode.
        assert assessment.corticosteroids_given and assessment.temperature_c < 38.0 and assessment.crs_grade == 0
    crs = [e for e in episodes_for(subject) if e.kind is ToxicityKind.CRS]
    assert [(e.onset_day, e.max_grade, e.duration_days, e.resolved_day) for e in crs] == [(1, 1, 3, 4)]
    # Grade 2 at most, no CRS of grade 3 either: no alert of a severe CRS or ICANS.
    assert not ToxicityAssessment.objects.filter(crs_grade__gte=3).exists()
    from cartrial.apps.alerts.models import Alert

    assert not Alert.objects.filter(kind__in=("crs_grade_3", "icans_grade_3")).exists()


def test_the_sae_febrile_neutropenia_has_every_report_on_time_and_a_signed_causality() -> None:
    from cartrial.apps.accounts.models import ElectronicSignature
    from cartrial.apps.safety.models import AdverseEvent
    from cartrial.apps.safety.selectors import dlt_panel, lab_grade_proposals, sae_clock, safety_rules
    from cartrial.domain.safety.sae_clock import ReportKind, ReportStatus

    serious = AdverseEvent.objects.get(serious=True)
    subject = serious.subject
    assert (serious.term, serious.grade, serious.seriousness_criteria) == (
        "febrile_neutropenia",
        3,
        ["hospitalisation"],
    )
    assert serious.outcome == "recovered" and serious.end_date is not None
    assert serious.recorded_by.username == f"{subject.center.code.lower()}.coordinator"
    # In the subject whose neutrophils fell lowest after the infusion.
    nadirs = {
        s.code: min(
            r.values_json["anc"]["value"]
            for r in FormRecord.objects.filter(subject=s, form_code="haematology").exclude(
                visit_code__in=("SCR", "APH")
            )
            if "anc" in r.values_json
        )
        for s in _infused()
    }
    assert min(nadirs, key=nadirs.__getitem__) == subject.code, nadirs
    clock = sae_clock(serious, safety_rules(active_protocol()), demo_epoch())
    assert clock is not None and clock.closed
    assert [(r.kind, r.status) for r in clock.reports] == [
        (ReportKind.INITIAL, ReportStatus.MET),
        (ReportKind.FOLLOW_UP, ReportStatus.MET),
        (ReportKind.FINAL, ReportStatus.MET),
    ]
    assert clock.reports[0].sent_at - serious.awareness_at < timedelta(hours=24)
    # The investigator's causality, signed.
    assert serious.relatedness_cart and serious.relatedness_ld
    signature = ElectronicSignature.objects.get(entity="adverse_event", entity_id=str(serious.pk))
    assert signature.signer.username == f"{subject.center.code.lower()}.investigator"
    # Non-serious AEs: the week-1 neutropenia accepted from the blood counts as one AE (grade 4 at its
    # nadir, ended by the first normal count), a grade 1 headache; the CRS and ICANS episodes as AEs.
    # No AE meets a DLT rule: nothing for the investigator to decide.
    lab = AdverseEvent.objects.get(term="neutrophil_count_decreased")
    assert lab.grade == 4 and lab.source_form_record is not None and lab.source_item == "anc"
    covered = list(lab.lab_sources.all())
    assert len(covered) >= 2 and {c.item for c in covered} == {"anc"}
    assert lab.end_date is not None and lab.outcome == "recovered"
    # Lymphopenia is the lymphodepletion's expected effect: the protocol does not propose it.
    proposals = [p for s in _infused() for p in lab_grade_proposals(s, active_protocol())]
    assert proposals and "lymphocyte_count_decreased" not in {p.term for p in proposals}
    assert AdverseEvent.objects.filter(term="headache", grade=1, serious=False).count() == 1
    assert AdverseEvent.objects.filter(term="icans", grade=2).count() == 1
    assert AdverseEvent.objects.filter(term="cytokine_release_syndrome", grade=1).count() >= 4
    rules = safety_rules(active_protocol())
    assert all(dlt_panel(s, rules) == [] for s in _infused())


def test_remission_at_m3_or_m6_for_most_and_one_subject_who_never_responds() -> None:
    from cartrial.apps.casebook.selectors import disease_activity

    protocol = active_protocol()
    courses = {s.code: disease_activity(s, protocol) for s in _infused()}
    # Every infused subject has its screening activity: the baseline of SRI-4 and LLDAS.
    for code, course in courses.items():
        assert course.visits and course.visits[0].code == "SCR", code
        assert all(v.sri4 is not None and v.lldas is not None for v in course.visits[1:]), code
    followed = {code: c for code, c in courses.items() if {"M3", "M6"} & {v.code for v in c.visits}}
    in_remission = [code for code, c in followed.items() if any(v.doris for v in c.visits if v.code in ("M3", "M6"))]
    assert len(in_remission) > len(followed) / 2, (in_remission, list(followed))
    never = [code for code, c in followed.items() if not any(v.doris or v.lldas for v in c.visits[1:])]
    assert len(never) == 1, never
    baseline, *later = courses[never[0]].visits
    assert all(v.sledai >= baseline.sledai and v.pga >= 2 and v.sri4 is False for v in later)
    # The long-term subject still flares back after M12, out of DORIS and LLDAS.
    flare = {v.code: v for v in courses[Subject.objects.get(state=State.LONG_TERM_FOLLOW_UP).code].visits}
    assert flare["M6"].doris and not flare["M18"].doris and not flare["M18"].lldas


def test_the_safety_records_were_made_before_today_and_audit_verify_passes() -> None:
    from typer.testing import CliRunner

    from cartrial.apps.audit.models import AuditEntry
    from cartrial.cli import _register, app

    entries = AuditEntry.objects.filter(event__regex=r"^(safety|toxicity)\.")
    assert entries.filter(event="safety.sae_report_recorded").count() == 3
    assert all(at <= demo_epoch() for at in entries.values_list("occurred_at", flat=True))
    _register()
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "intact" in result.output, result.output


def test_the_subjects_waiting_for_apheresis_hold_bookings_that_keep_the_networks_rules() -> None:
    from cartrial.apps.audit.models import AuditEntry
    from cartrial.apps.planning.models import Booking
    from cartrial.apps.planning.selectors import WAITING_STATES, instance_build
    from cartrial.domain.planning import Patient, PatientPlan, Plan, PlanStatus, plan_check

    waiting = list(Subject.objects.filter(state__in=WAITING_STATES).order_by("code"))
    bookings = {b.subject.code: b for b in Booking.objects.filter(active=True).select_related("subject", "facility")}
    # Bordeaux's first patient (included) and Lille's (apheresis scheduled) are booked, no one else.
    assert [s.code for s in waiting] == ["BDX-001", "LIL-001"] == sorted(bookings)
    today = demo_epoch().date()
    for subject in waiting:
        booking = bookings[subject.code]
        assert booking.booked_by.username == f"{subject.center.code.lower()}.coordinator"
        assert booking.apheresis_date >= today
        # The Lille subject's apheresis, scheduled before the capacities on a day Lille does no apheresis,
        # is moved to the booked day by a correction with its reason.
        if subject.state == State.APHERESIS_SCHEDULED:
            assert subject.apheresis_date == booking.apheresis_date
            moved = AuditEntry.objects.get(event="record.corrected", subject_code=subject.code)
            assert "booked" in moved.reason
        made = AuditEntry.objects.get(event="planning.booking_made", subject_code=subject.code)
        assert made.actor_username == booking.booked_by.username
    # The domain's checker on the network's capacities and the booked chains: weekdays, holidays,
    # lines, apheresis slots per day, beds per week, shipping times and the lymphodepletion gap.
    patients = [Patient(s.code, s.center.code, today) for s in waiting]
    instance = instance_build(active_protocol(), today, 120, patients)
    rows = tuple(
        PatientPlan(
            code,
            b.facility.center.code,
            b.apheresis_date,
            b.manufacturing_start,
            b.release_date,
            b.product_arrival,
            b.lymphodepletion_start,
            b.infusion_date,
        )
        for code, b in sorted(bookings.items())
    )
    objective = sum((row.infusion - today).days for row in rows)
    assert plan_check(instance, Plan(PlanStatus.FEASIBLE, objective, None, rows)) == []
    centers = {c.id: c for c in instance.centers}
    for row in rows:
        assert row.apheresis.weekday() in centers[row.id[:3]].apheresis_weekdays
        assert row.infusion.weekday() in centers[row.id[:3]].infusion_weekdays
    assert audit_verify().intact
