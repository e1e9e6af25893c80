"""The synthetic study of `cartrial demo --scale N` (issue 13, item 4): built in bulk, it holds the
records the services would have written, in pathway order, with an audit chain that verifies, and its
subjects' pages render for their center's investigator."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.casebook.models import FormRecord, VisitRecord
from cartrial.apps.casebook.services import form_definition
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.apps.subjects.models import PathwayEvent, Subject, SubjectCodeCounter
from cartrial.apps.trial.models import Center
from cartrial.domain.ecrf import FormContext, form_values_check
from cartrial.domain.errors import Refused
from cartrial.domain.pathway import State
from cartrial.protocols import active_protocol
from cartrial.scale import STATE_MIX, ScaleReport, build_scale, lab_form_values

N = 20


@pytest.fixture(scope="module")
def scale(django_db_setup: None, django_db_blocker: Any) -> Iterator[ScaleReport]:
    """The study of N subjects, built once for the module (in chunks of 7: several chunks, a partial
    last one); each test's own transaction is a savepoint inside this one."""
    with django_db_blocker.unblock(), transaction.atomic():
        seen: list[tuple[int, int]] = []
        report = build_scale(
            active_protocol(), N, chunk_size=7, progress=lambda done, total: seen.append((done, total))
        )
        assert seen == [(7, N), (14, N), (20, N)]
        yield report
        transaction.set_rollback(True)


pytestmark = pytest.mark.usefixtures("scale", "db")


def test_the_audit_chain_verifies_up_to_the_reported_head(scale: ScaleReport) -> None:
    report = audit_verify()
    assert report.intact, report.first_break
    assert report.head_hash == scale.head_hash
    assert report.checked == AuditEntry.objects.count()


def test_rows_per_table_follow_the_subjects(scale: ScaleReport) -> None:
    assert Subject.objects.filter(synthetic=True).count() == N == scale.rows["subjects.Subject"]
    counts = {label: count for label, count in scale.rows.items()}
    # Every subject has its identity and consent; followed-up subjects carry most of the labs.
    assert counts["subjects.SubjectIdentity"] == counts["subjects.Consent"] == N
    assert LabObservation.objects.count() == counts["clinical.LabObservation"]
    assert 20 * N <= counts["clinical.LabObservation"] <= 250 * N
    assert counts["audit.AuditEntry"] >= 2 * counts["clinical.LabObservation"]
    # One audit entry per lab observation, pathway event and visit.
    events = Counter(AuditEntry.objects.values_list("event", flat=True))
    assert events["lab_observation.recorded"] == counts["clinical.LabObservation"]
    assert events["pathway.step"] == PathwayEvent.objects.count()
    assert events["casebook.visit_recorded"] == VisitRecord.objects.count()
    assert events["casebook.form_saved"] == FormRecord.objects.count()


def test_states_are_drawn_from_the_mix_and_counters_continue() -> None:
    states = set(Subject.objects.values_list("state", flat=True))
    assert states <= {state.value for state, _ in STATE_MIX}
    assert len(states) >= 4  # the seeded draw of 20 subjects reaches several stages
    for counter in SubjectCodeCounter.objects.select_related("center"):
        numbers = Subject.objects.filter(center=counter.center).values_list("number", flat=True)
        assert counter.last_number == max(numbers)
    assert Center.objects.count() == 6


def test_pathway_events_are_in_pathway_order_and_dates_follow() -> None:
    for subject in Subject.objects.all():
        events = list(PathwayEvent.objects.filter(subject=subject).order_by("occurred_at", "pk"))
        assert events[0].from_state == State.PRE_SCREENING
        for before, after in itertools.pairwise(events):
            assert before.to_state == after.from_state, subject.code
            assert before.occurred_at <= after.occurred_at
        assert events[-1].to_state == subject.state
        if subject.infusion_date is not None:
            assert subject.apheresis_date is not None and subject.apheresis_date < subject.infusion_date
            visits = VisitRecord.objects.filter(subject=subject).exclude(visit_code__in=("SCR", "APH", "LD"))
            assert all(v.done_on >= subject.infusion_date for v in visits), subject.code
        identity = identity_decrypt(subject.identity.ciphertext)
        assert identity["hospital_number"].startswith(subject.center.code)


def test_form_values_are_the_engines_own() -> None:
    """The quick path of lab-only forms gives exactly what the eCRF engine gives for the same values."""
    protocol = active_protocol()
    compared = 0
    for record in FormRecord.objects.filter(form_code__in=("haematology", "urinalysis"))[:60]:
        form = form_definition(protocol, record.visit_code, record.form_code)
        raw = {name: {k: v for k, v in value.items() if k != "unit"} for name, value in record.values_json.items()}
        quick = lab_form_values(form, raw)
        assert quick is not None
        engine = form_values_check(form, raw, FormContext(visit_code=record.visit_code))
        assert quick.values == engine.values and quick.missing == engine.missing
        compared += 1
    assert compared >= 10


def test_a_second_build_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        build_scale(active_protocol(), 1)
    assert refused.value.code == "database_not_empty"


def test_subject_pages_render_for_the_centers_investigator(client_for_scale: Any) -> None:
    subject = Subject.objects.filter(state=State.FOLLOW_UP).order_by("pk").first()
    assert subject is not None
    client = client_for_scale(f"{subject.center.code.lower()}.investigator")
    for url in (reverse("subjects:detail", args=[subject.code]), reverse("casebook:subject", args=[subject.code])):
        response = client.get(url)
        assert response.status_code == 200, url
        assert subject.code in response.content.decode()


@pytest.fixture
def client_for_scale() -> Any:
    from django.test import Client

    from cartrial.apps.accounts.models import User

    def make(username: str) -> Client:
        client = Client()
        client.force_login(User.objects.get(username=username))
        return client

    return make


def test_production_settings_are_refused_before_anything_is_built() -> None:
    import typer
    from typer.testing import CliRunner

    from cartrial.cli.web import register

    application = typer.Typer()

    @application.callback()
    def _group() -> None:
        """The database commands only."""

    register(application)
    before = Subject.objects.count()
    result = CliRunner().invoke(
        application, ["demo", "--scale", "5", "--no-serve"], env={"CARTRIAL_HTTPS": "1", "CARTRIAL_DEBUG": "0"}
    )
    assert result.exit_code == 2
    assert "refuses production settings" in result.output
    assert Subject.objects.count() == before
