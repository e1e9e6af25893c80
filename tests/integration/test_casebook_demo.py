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
