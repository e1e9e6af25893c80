"""Alerts (issue 10 item 5): raised inside the action's transaction and audited with it, e-mailed only
after its commit to the roles that must act at the subject's center (each in their language), once per
kind + subject + key while open; raised by lab values on a form save, by a new kinetics flag (whatever
the entry path) and by the daily overdue-visit scan; by a serious AE (recorded or corrected into one)
and each report of its clock by the scan; by a CRS or ICANS episode reaching grade ≥ 3; read and
acknowledged on the page and the API within the user's scope."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from typer.testing import CliRunner

from cartrial.apps import clock
from cartrial.apps.access import reach_subject
from cartrial.apps.accounts.models import User
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.alerts.models import Alert
from cartrial.apps.alerts.services import alert_mail_send, raise_alert
from cartrial.apps.audit.events import AuditEvent
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology.entries import KineticEntry
from cartrial.apps.biology.services import kinetic_observations_record
from cartrial.apps.casebook import services as casebook
from cartrial.apps.subjects.models import Subject
from cartrial.domain.alerts import IGG_LOW_G_PER_L, AlertKind, SaeReport, sae_report_label
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db

NORMAL_BLOOD_COUNT = {"anc": 3.1, "lymphocytes": 1.6, "platelets": 240, "haemoglobin": 128}


@pytest.fixture
def mailboxes(world: Any) -> dict[str, str]:
    """Every demo user gets an address; BDX's coordinator reads English, the rest their center's French."""
    addresses = {}
    for username, user in world.users.items():
        user.email = f"{username}@hospital.test"
        user.language = "en" if username == "bdx.coordinator" else ""
        user.save(update_fields=["email", "language"])
        addresses[username] = user.email
    return addresses


@pytest.fixture
def subject(world: Any, mailboxes: dict[str, str]) -> Subject:
    """A BDX subject in follow-up with its D28 visit done."""
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.visit_done_record(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code="D28",
            done_on=subject.infusion_date + timedelta(days=28),
        )
    )
    return subject


def _save(
    world: Any, subject: Subject, form: str, items: dict[str, object], reason: str = "", visit: str = "D28"
) -> None:
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=world.protocol,
            visit_code=visit,
            form_code=form,
            items=items,
            reason=reason,
        )
    )


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="alerts")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


# Message parameters of each kind raised directly by these tests.
PARAMS: dict[AlertKind, dict[str, object]] = {
    AlertKind.SAE_CLOCK: {
        "report": sae_report_label(SaeReport.INITIAL_DUE),
        "event": "febrile neutropenia",
        "due": "2026-12-03 10:00",
    },
    AlertKind.LAB_GRADE_3: {
        "term": "ANC",
        "grade": 4,
        "version": "5.0",
        "visit": "D28",
        "value": 0.4,
        "unit": "10^9/L",
    },
    AlertKind.IGG_LOW: {"value": 3.5, "visit": "D28", "threshold": IGG_LOW_G_PER_L},
}


def _raise(subject: Subject, kind: AlertKind = AlertKind.SAE_CLOCK, key: str = "sae-1") -> Alert | None:
    return raise_alert(
        actor=Actor.system("test"),
        kind=kind,
        subject=subject,
        link=f"/subjects/{subject.code}/",
        params=PARAMS[kind],
        due_at=datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("UTC")),
        key=key,
    )


# --- after commit, to whom, in which language ----------------------------------------------------


def test_the_mail_leaves_only_after_commit(subject: Subject, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        alert = _raise(subject)
        assert alert is not None
    assert mail.outbox == []  # raised, audited, but nothing sent inside the transaction
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 4
    assert all(subject.code in message.subject for message in mail.outbox)


def test_a_kind_raised_without_its_message_parameters_is_a_programming_error(subject: Subject) -> None:
    with pytest.raises(ValueError, match="missing message parameters"), transaction.atomic():
        raise_alert(actor=Actor.system("test"), kind=AlertKind.CRS_GRADE_3, subject=subject, link="/", params={})
    assert not Alert.objects.exists()


def test_a_rolled_back_action_mails_nobody_and_leaves_no_alert(
    subject: Subject, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        assert _raise(subject) is not None
        raise RuntimeError("the action failed after raising its alert")
    assert callbacks == [] and mail.outbox == []
    assert not Alert.objects.exists()
    assert not AuditEntry.objects.filter(event=AuditEvent.ALERT_RAISED).exists()


def test_recipients_are_the_acting_roles_at_the_subjects_center(
    subject: Subject, mailboxes: dict[str, str], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _raise(subject, AlertKind.SAE_CLOCK)  # investigators, coordinator, and the monitor following BDX
        _raise(subject, AlertKind.LAB_GRADE_3, key="lab")  # the center's clinical staff only
    sae, lab = {m.to[0] for m in mail.outbox[:4]}, {m.to[0] for m in mail.outbox[4:]}
    clinical = {mailboxes[u] for u in ("bdx.investigator", "bdx.investigator2", "bdx.coordinator")}
    assert sae == clinical | {mailboxes["cra.monitor"]}
    assert lab == clinical
    # Never another center's staff, the apheresis unit, the pharmacy, the lab or the data manager.
    for username in ("lil.investigator", "bdx.apheresis", "bdx.pharmacist", "lab.manufacturing", "dm.datamanager"):
        assert mailboxes[username] not in sae | lab


def test_an_inactive_user_or_one_without_address_gets_no_mail(world: Any, subject: Subject) -> None:
    User.objects.filter(pk=world.users["bdx.investigator2"].pk).update(is_active=False)
    User.objects.filter(pk=world.users["bdx.coordinator"].pk).update(email="")
    with transaction.atomic():
        alert = _raise(subject, AlertKind.LAB_GRADE_3)
    assert alert is not None
    assert alert_mail_send(alert.pk) == 1
    assert mail.outbox[0].to == ["bdx.investigator@hospital.test"]


def test_each_recipient_reads_the_mail_in_their_language(subject: Subject) -> None:
    with transaction.atomic():
        alert = _raise(subject, AlertKind.IGG_LOW, key="igg")
    assert alert is not None
    alert_mail_send(alert.pk)
    by_address = {m.to[0]: m for m in mail.outbox}
    french = by_address["bdx.investigator@hospital.test"]
    english = by_address["bdx.coordinator@hospital.test"]
    assert f"{subject.code} : IgG 3,5 g/L à la visite D28, sous le seuil de 4 g/L." in french.body
    assert "Qui doit agir : Coordinateur (ARC/TEC), Investigateur" in french.body
    assert f"{subject.code}: IgG 3.5 g/L at visit D28, below 4 g/L." in english.body
    assert "Who must act: Coordinator (CRA/TEC), Investigator" in english.body
    assert f"http://127.0.0.1:8000/subjects/{subject.code}/" in english.body


def test_a_failed_send_is_logged_and_never_breaks_the_action(
    subject: Subject, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr("cartrial.apps.alerts.services.send_mail", broken)
    with transaction.atomic():
        alert = _raise(subject)
    assert alert is not None
    assert alert_mail_send(alert.pk) == 0
    assert "the e-mail to" in caplog.text and "SMTP server unreachable" in caplog.text


# --- idempotency and audit -----------------------------------------------------------------------


def test_the_same_kind_subject_and_key_is_open_once(world: Any, subject: Subject) -> None:
    with transaction.atomic():
        first = _raise(subject, key="sae-1")
        assert _raise(subject, key="sae-1") is None
        assert _raise(subject, key="sae-2") is not None  # another report is another alert
    assert first is not None
    entry = AuditEntry.objects.get(event=AuditEvent.ALERT_RAISED, entity_id=str(first.pk))
    assert entry.subject_code == subject.code
    changes = {c["field"]: c["new"] for c in json.loads(entry.changes_json)}
    assert changes["kind"] == "sae_clock" and changes["message"]["msgid"].startswith("{subject}: serious adverse event")
    # Once acknowledged, the same situation may be alerted again.
    client = world.client_for("bdx.investigator")
    assert client.post("/alerts/", {"alert": first.pk, "note": "reported"}).status_code == 302
    with transaction.atomic():
        assert _raise(subject, key="sae-1") is not None


# --- triggers: lab values on save, kinetics flags, overdue visits --------------------------------


def test_a_grade_3_blood_count_raises_an_alert_on_save_and_a_normal_one_does_not(world: Any, subject: Subject) -> None:
    _save(world, subject, "haematology", NORMAL_BLOOD_COUNT)
    assert not Alert.objects.exists()
    _save(world, subject, "haematology", {**NORMAL_BLOOD_COUNT, "anc": 0.4}, reason="lab report corrected")
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.subject_id) == ("lab_grade_3", "D28/haematology/anc", subject.pk)
    assert alert.params["grade"] == 4 and alert.params["value"] == 0.4
    assert alert.link == f"/casebook/subjects/{subject.code}/visits/D28/forms/haematology/"
    assert alert.acting_roles == ["coordinator", "investigator"]


def test_grade_2_is_no_alert_and_the_labs_lower_limit_is_used(world: Any, subject: Subject) -> None:
    # ANC 1.2 is grade 2 (1.0-1.5); haemoglobin 85 g/L is grade 2 (80-100): no alert.
    _save(world, subject, "haematology", {**NORMAL_BLOOD_COUNT, "anc": 1.2, "haemoglobin": 85})
    assert not Alert.objects.exists()
    # Haemoglobin 75 g/L (< 80, grade 3) with the lab's range.
    low = {"value": 75, "unit": "g/L", "lower_limit": 120, "upper_limit": 160}
    _save(world, subject, "haematology", {**NORMAL_BLOOD_COUNT, "anc": 1.2, "haemoglobin": low}, reason="Hb re-assayed")
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.params["grade"]) == ("lab_grade_3", "D28/haematology/haemoglobin", 3)


def test_a_count_at_or_above_the_labs_lower_limit_is_grade_0(world: Any, subject: Subject) -> None:
    # An unusual lab whose normal range starts at 0.9 × 10^9/L: 0.95 is no toxicity at all.
    lymphocytes = {"value": 0.95, "unit": "10^9/L", "lower_limit": 0.9, "upper_limit": 4.0}
    _save(world, subject, "haematology", {**NORMAL_BLOOD_COUNT, "lymphocytes": lymphocytes})
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    ("igg", "alerted"),
    [(3.5, True), ({"value": 350, "unit": "mg/dL"}, True), (IGG_LOW_G_PER_L, False), (8.2, False)],
    ids=["3.5 g/L", "350 mg/dL", "4 g/L", "8.2 g/L"],
)
def test_igg_below_4_g_per_l_raises_an_alert(world: Any, subject: Subject, igg: object, alerted: bool) -> None:
    _save(world, subject, "immunology", {"igg": igg})
    alerts = list(Alert.objects.filter(kind=AlertKind.IGG_LOW.value))
    assert len(alerts) == (1 if alerted else 0)
    if alerted:
        assert alerts[0].params["value"] == 3.5 and alerts[0].params["threshold"] == IGG_LOW_G_PER_L


def test_saving_the_same_low_value_again_does_not_raise_it_twice(world: Any, subject: Subject) -> None:
    _save(world, subject, "immunology", {"igg": 3.0})
    _save(world, subject, "immunology", {"igg": 2.5}, reason="re-assayed")
    assert Alert.objects.filter(kind=AlertKind.IGG_LOW.value).count() == 1


def test_a_new_kinetics_flag_raises_an_alert_once(world: Any, mailboxes: dict[str, str]) -> None:
    paris = ZoneInfo("Europe/Paris")
    subject = world.new_subject("BDX", State.INFUSED)
    assert subject.infusion_date is not None

    def record(day: int, value: float) -> None:
        at = datetime.combine(subject.infusion_date + timedelta(days=day), time(9), paris)
        entry = KineticEntry("b_cells", at, value, "cells/µL", 1.0)
        with transaction.atomic():
            kinetic_observations_record(actor=world.actor("bdx.coordinator"), subject=subject, entries=[entry])

    record(7, 180.0)  # B cells not depleted between D7 and D14: the flag is raised by this result
    alert = Alert.objects.get(kind=AlertKind.KINETICS_FLAG.value)
    assert alert.key == "no_b_cell_depletion_by_day_14"
    assert alert.link == f"/biology/subjects/{subject.code}/"
    record(10, 150.0)  # still raised: not a new flag
    assert Alert.objects.filter(kind=AlertKind.KINETICS_FLAG.value).count() == 1


def _visit_done(world: Any, subject: Subject, visit: str, day: int) -> None:
    assert subject.infusion_date is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: casebook.visit_done_record(
            actor=reach.actor,
            subject=subject,
            protocol=world.protocol,
            visit_code=visit,
            done_on=subject.infusion_date + timedelta(days=day),
        )
    )


def _kinetics_alerts(subject: Subject) -> dict[str, object]:
    """The subject's kinetics alerts: flag code → the flag's message."""
    alerts = Alert.objects.filter(kind=AlertKind.KINETICS_FLAG.value, subject=subject)
    return {alert.key: alert.params["flag"] for alert in alerts}


# At D7: B cells still at 180 cells/µL (not depleted), CAR-T at 0.5 cells/µL (below the 5 % band).
D7_CELLS = {"b_cells": 180.0, "car_t": 0.5}
D7_FLAGS = {"no_b_cell_depletion_by_day_14", "car_t_peak_below_band"}


def test_cells_entered_on_the_immunology_form_raise_the_biology_entrys_kinetics_alerts_once(
    world: Any, mailboxes: dict[str, str]
) -> None:
    through_form = world.new_subject("BDX", State.FOLLOW_UP)
    through_biology = world.new_subject("BDX", State.FOLLOW_UP)
    assert through_biology.infusion_date is not None
    _visit_done(world, through_form, "D7", 7)
    _save(world, through_form, "immunology", {"b_cells": 180.0, "car_t_cells": 0.5}, visit="D7")
    at = datetime.combine(through_biology.infusion_date + timedelta(days=7), time(8), ZoneInfo("Europe/Paris"))
    entries = [KineticEntry(marker, at, value, "cells/µL", None) for marker, value in D7_CELLS.items()]
    with transaction.atomic():
        kinetic_observations_record(actor=world.actor("bdx.coordinator"), subject=through_biology, entries=entries)

    alerted = _kinetics_alerts(through_form)
    assert set(alerted) == D7_FLAGS
    assert alerted == _kinetics_alerts(through_biology)  # the same flags, read the same way
    link = Alert.objects.filter(subject=through_form, kind=AlertKind.KINETICS_FLAG.value).values_list("link", flat=True)
    assert set(link) == {f"/biology/subjects/{through_form.code}/"}
    assert AuditEntry.objects.filter(event=AuditEvent.ALERT_RAISED.value, subject_code=through_form.code).count() == 2
    # Once: a correction on the form and the same results through the biology entry add nothing.
    _save(world, through_form, "immunology", {"b_cells": 170.0, "car_t_cells": 0.5}, reason="re-counted", visit="D7")
    with transaction.atomic():
        kinetic_observations_record(actor=world.actor("bdx.coordinator"), subject=through_form, entries=entries)
    assert Alert.objects.filter(subject=through_form, kind=AlertKind.KINETICS_FLAG.value).count() == 2


def test_a_correction_that_raises_a_new_kinetics_flag_alerts_it(world: Any, mailboxes: dict[str, str]) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    _visit_done(world, subject, "D7", 7)
    _save(world, subject, "immunology", {"b_cells": 0.5}, visit="D7")  # depleted: no flag
    assert _kinetics_alerts(subject) == {}
    _save(world, subject, "immunology", {"b_cells": 180.0}, reason="wrong line of the report", visit="D7")
    assert set(_kinetics_alerts(subject)) == {"no_b_cell_depletion_by_day_14"}


def test_a_biology_correction_rechecks_the_flags(world: Any, mailboxes: dict[str, str]) -> None:
    from cartrial.apps.biology.services import kinetic_observation_correct

    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    at = datetime.combine(subject.infusion_date + timedelta(days=10), time(9), ZoneInfo("Europe/Paris"))
    actor = world.actor("bdx.coordinator")
    below_loq = KineticEntry("b_cells", at, None, "cells/µL", 1.0)  # depleted
    with transaction.atomic():
        (stored,) = kinetic_observations_record(actor=actor, subject=subject, entries=[below_loq]).recorded
    assert _kinetics_alerts(subject) == {}
    with transaction.atomic():
        kinetic_observation_correct(
            actor=actor,
            subject=subject,
            observation=stored,
            field="value",
            value=95.0,
            reason="transcription error",
        )
    assert set(_kinetics_alerts(subject)) == {"no_b_cell_depletion_by_day_14"}


def _record_queries(world: Any, subject: Subject, analyte: str, value: float, unit: str, day: int) -> int:
    from cartrial.apps.clinical.services import LabObservationInput, lab_observations_record

    assert subject.infusion_date is not None
    at = datetime.combine(subject.infusion_date + timedelta(days=day), time(8), ZoneInfo("Europe/Paris"))
    batch = [LabObservationInput(analyte=analyte, value=value, unit=unit, sampled_at=at)]
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        lab_observations_record(actor=world.actor("bdx.coordinator"), subject=subject, observations=batch)
    return len(captured.captured_queries)


def test_a_batch_without_kinetic_markers_costs_no_extra_query(world: Any) -> None:
    from cartrial.apps.biology.services import kinetic_flag_alerts_on_record
    from cartrial.apps.clinical.signals import lab_observations_recorded

    subject = world.new_subject("BDX", State.FOLLOW_UP)
    _record_queries(world, subject, "igg", 8.0, "g/L", 20)  # warm: the first write reads what is cached after
    heard = {
        "igg": _record_queries(world, subject, "igg", 8.1, "g/L", 21),
        "b_cells": _record_queries(world, subject, "b_cells", 120.0, "cells/µL", 21),
    }
    uid = "biology.kinetic_flag_alerts"
    assert lab_observations_recorded.disconnect(dispatch_uid=uid)
    try:
        unheard = {
            "igg": _record_queries(world, subject, "igg", 8.2, "g/L", 22),
            "b_cells": _record_queries(world, subject, "b_cells", 110.0, "cells/µL", 22),
        }
    finally:
        lab_observations_recorded.connect(kinetic_flag_alerts_on_record, dispatch_uid=uid)
    assert heard["igg"] == unheard["igg"]
    assert heard["b_cells"] > unheard["b_cells"]  # the receiver does read a kinetic batch's results


def test_the_scan_raises_each_overdue_visit_once(world: Any, mailboxes: dict[str, str]) -> None:
    from cartrial.cli import _register, app

    subject = world.new_subject("BDX", State.FOLLOW_UP)
    done_elsewhere = world.new_subject("BDX", State.WITHDRAWN)  # an ended pathway has no overdue visit
    assert subject.infusion_date is not None
    today = subject.infusion_date + timedelta(days=40)  # D28's window closed at D31; D42 not yet
    _register()
    runner = CliRunner()
    first = runner.invoke(app, ["alerts", "scan", "--today", today.isoformat()])
    assert first.exit_code == 0, first.output
    overdue = set(Alert.objects.filter(subject=subject).values_list("key", flat=True))
    assert {"D1", "D7", "D14", "D28"} <= overdue and "D42" not in overdue and "M3" not in overdue
    assert not Alert.objects.filter(subject=done_elsewhere).exists()
    assert first.output.splitlines() == [
        f"{len(overdue)} overdue-visit alert(s) raised",
        "0 SAE-clock alert(s) raised",
        "0 re-planning proposal(s) for late shipments",
    ]
    second = runner.invoke(app, ["alerts", "scan", "--today", today.isoformat()])
    assert second.output.splitlines()[0] == "0 overdue-visit alert(s) raised"
    assert Alert.objects.filter(subject=subject).count() == len(overdue)
    bad = runner.invoke(app, ["alerts", "scan", "--today", "tomorrow"])
    assert bad.exit_code == 2


# --- page and API: scope, acknowledgement, audit -------------------------------------------------


def test_the_page_lists_the_users_alerts_in_their_language_and_acknowledges_with_a_note(
    world: Any, subject: Subject
) -> None:
    _save(world, subject, "immunology", {"igg": 3.5})
    alert = Alert.objects.get()
    client = world.client_for("bdx.investigator")  # French, the center's language
    page = client.get("/alerts/").content.decode()
    assert f'data-alert="{alert.pk}"' in page
    assert f"{subject.code} : IgG 3,5 g/L à la visite D28, sous le seuil de 4 g/L." in page
    assert 'data-testid="alert-badge"' in page and ">1</span>" in page
    response = client.post("/alerts/", {"alert": alert.pk, "note": "IgG substitution started"})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == world.users["bdx.investigator"]
    assert alert.acknowledgement_note == "IgG substitution started"
    entry = AuditEntry.objects.get(event=AuditEvent.ALERT_ACKNOWLEDGED)
    assert entry.actor_username == "bdx.investigator" and entry.subject_code == subject.code
    assert {c["field"]: c["new"] for c in json.loads(entry.changes_json)}["note"] == "IgG substitution started"
    page = client.get("/alerts/").content.decode()
    assert 'data-testid="alert-badge"' not in page and f'data-alert="{alert.pk}"' not in page
    assert f'data-alert="{alert.pk}"' in client.get("/alerts/?status=acknowledged").content.decode()


def test_the_api_lists_and_acknowledges_and_refuses_a_second_acknowledgement(world: Any, subject: Subject) -> None:
    _save(world, subject, "haematology", {**NORMAL_BLOOD_COUNT, "platelets": 20})
    alert = Alert.objects.get()
    client = _api(world, "bdx.coordinator")
    listed = client.get("/api/v1/alerts", {"status": "open"}).json()["items"]
    assert [a["id"] for a in listed] == [alert.pk]
    assert (
        listed[0]["message"] == f"{subject.code}: Platelet count decreased grade 4 (CTCAE 5.0) at visit D28: 20 10^9/L."
    )
    assert listed[0]["roles"] == ["coordinator", "investigator"]
    done = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge", {"note": "seen"}, content_type="application/json")
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "bdx.coordinator"
    again = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge", {}, content_type="application/json")
    assert again.status_code == 409 and again.json()["code"] == "alert_acknowledged"
    assert client.get("/api/v1/alerts", {"status": "open"}).json()["items"] == []
    assert client.get("/api/v1/alerts", {"status": "later"}).status_code == 422


def test_another_center_neither_sees_nor_acknowledges(world: Any, subject: Subject) -> None:
    _save(world, subject, "immunology", {"igg": 2.0})
    alert = Alert.objects.get()
    for username in ("lil.investigator", "lil.coordinator"):
        api, page = _api(world, username), world.client_for(username)
        assert api.get("/api/v1/alerts").json()["items"] == []
        assert f'data-alert="{alert.pk}"' not in page.get("/alerts/").content.decode()
        refused = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge", {}, content_type="application/json")
        assert refused.status_code == 404
        assert page.post("/alerts/", {"alert": alert.pk}).status_code == 404
    # Same center, a role the alert does not name: the pharmacist does not see it either.
    assert _api(world, "bdx.pharmacist").get("/api/v1/alerts").json()["items"] == []
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_the_api_reads_alerts_a_page_at_a_time_and_since_a_time(world: Any, subject: Subject) -> None:
    """`since` lists the alerts raised or acknowledged after it (the trail's `alert` entries)."""
    first = _raise(subject, AlertKind.SAE_CLOCK, "sae-1")
    second = _raise(subject, AlertKind.LAB_GRADE_3, "lab-1")
    assert first is not None and second is not None
    cut = clock.now()
    client = _api(world, "bdx.coordinator")
    done = client.post(f"/api/v1/alerts/{first.pk}/acknowledge", {"note": "sent"}, content_type="application/json")
    assert done.status_code == 200, done.content
    third = _raise(subject, AlertKind.IGG_LOW, "igg-1")
    assert third is not None
    everything = client.get("/api/v1/alerts").json()
    # Open first (newest first), then the acknowledged ones.
    assert [a["id"] for a in everything["items"]] == [third.pk, second.pk, first.pk]
    assert (everything["total"], everything["next_offset"]) == (3, None)
    window = client.get("/api/v1/alerts", {"limit": 2}).json()
    assert ([a["id"] for a in window["items"]], window["next_offset"]) == ([third.pk, second.pk], 2)
    changed = client.get("/api/v1/alerts", {"since": cut.isoformat()}).json()
    assert ([a["id"] for a in changed["items"]], changed["total"]) == ([third.pk, first.pk], 2)
    open_since = client.get("/api/v1/alerts", {"since": cut.isoformat(), "status": "open"}).json()
    assert [a["id"] for a in open_since["items"]] == [third.pk]
    assert [a["id"] for a in client.get("/api/v1/alerts", {"kind": "igg_low"}).json()["items"]] == [third.pk]
    refused = client.get("/api/v1/alerts", {"kind": "sunburn"}, HTTP_ACCEPT_LANGUAGE="fr")
    assert refused.status_code == 422 and (refused.json()["code"], refused.json()["item"]) == ("invalid_kind", "kind")


# --- triggers: the SAE clock (on record, on correction, by the scan), CRS/ICANS grade ≥ 3 ----------

CLINICAL_AND_MONITOR = ("bdx.investigator", "bdx.investigator2", "bdx.coordinator", "cra.monitor")


def _ae(subject: Subject, **over: object) -> dict[str, object]:
    """A febrile neutropenia known to the site two hours ago; serious unless told otherwise."""
    aware = clock.now() - timedelta(hours=2)
    body: dict[str, object] = {
        "term": "febrile_neutropenia",
        "grade": 3,
        "start_date": (aware - timedelta(days=1)).date().isoformat(),
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "awareness_at": aware.isoformat(timespec="minutes"),
        "action": "hospitalisation",
        "outcome": "recovering",
    }
    return {**body, **over}


def _post_ae(world: Any, subject: Subject, body: dict[str, object]) -> dict[str, Any]:
    response = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/adverse-events", body, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def test_an_sae_raises_its_initial_report_alert_once_mailed_after_commit(
    world: Any, subject: Subject, mailboxes: dict[str, str], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ae = _post_ae(world, subject, _ae(subject))
    alert = Alert.objects.get(kind=AlertKind.SAE_CLOCK.value)
    assert mail.outbox == []  # stored and audited with the AE; nothing sent before the commit
    aware = datetime.fromisoformat(ae["awareness_at"])
    assert (alert.key, alert.due_at) == (f"{ae['id']}/initial/1/due", aware + timedelta(hours=24))
    assert alert.link == f"/safety/subjects/{subject.code}/adverse-events/{ae['id']}/"
    assert AuditEntry.objects.filter(event=AuditEvent.ALERT_RAISED, entity_id=str(alert.pk)).count() == 1
    for callback in callbacks:
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(mailboxes[u] for u in CLINICAL_AND_MONITOR)
    by_address = {m.to[0]: m.body for m in mail.outbox}
    due = (aware + timedelta(hours=24)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert (
        f"{subject.code} : événement indésirable grave « Neutropénie fébrile » : déclaration initiale attendue "
        f"(échéance {due} UTC)." in by_address[mailboxes["bdx.investigator"]]
    )
    assert (
        f"{subject.code}: serious adverse event “Febrile neutropenia”: initial report due (due {due} UTC)."
        in by_address[mailboxes["bdx.coordinator"]]
    )
    # A correction of the same SAE is not a new stage of its clock: no second alert.
    correction = {"changes": {"outcome": "not_recovered"}, "reason": "still febrile"}
    response = _api(world, "bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae['id']}", correction, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert Alert.objects.filter(kind=AlertKind.SAE_CLOCK.value).count() == 1


def test_a_non_serious_ae_raises_nothing_and_made_serious_by_correction_raises_the_clock(
    world: Any, subject: Subject
) -> None:
    aware = clock.now() - timedelta(days=3)
    started = (aware - timedelta(days=1)).date().isoformat()
    body = _ae(subject, term="fever", grade=2, start_date=started, serious=False, seriousness_criteria=[])
    body.pop("awareness_at")
    ae = _post_ae(world, subject, body)
    assert not Alert.objects.exists()
    correction = {
        "changes": {
            "serious": True,
            "seriousness_criteria": ["hospitalisation"],
            "awareness_at": aware.isoformat(timespec="minutes"),
        },
        "reason": "admitted for the fever",
    }
    response = _api(world, "bdx.coordinator").put(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae['id']}", correction, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    # Aware three days ago: the initial report is already overdue.
    assert (alert.kind, alert.key) == (AlertKind.SAE_CLOCK.value, f"{ae['id']}/initial/1/overdue")
    assert alert.params["report"]["msgid"] == "initial report overdue"
    assert alert.acting_roles == ["coordinator", "investigator", "monitor"]


def test_the_scan_alerts_each_report_of_the_clock_once_due_then_overdue(world: Any, subject: Subject) -> None:
    from cartrial.cli import _register, app

    assert subject.infusion_date is not None
    d6 = subject.infusion_date + timedelta(days=6)
    body = _ae(subject, start_date=d6.isoformat(), awareness_at=f"{d6.isoformat()}T10:00")
    ae = _post_ae(world, subject, body)
    api = _api(world, "bdx.coordinator")
    sent = api.post(
        f"/api/v1/subjects/{subject.code}/adverse-events/{ae['id']}/sae-reports",
        {"kind": "initial", "sent_at": f"{d6.isoformat()}T18:00"},
        content_type="application/json",
    )
    assert sent.status_code == 201, sent.content
    _register()
    runner = CliRunner()

    def scan(day: date) -> str:
        result = runner.invoke(app, ["alerts", "scan", "--today", day.isoformat()])
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[1]

    def keys() -> list[str]:
        return list(Alert.objects.filter(kind=AlertKind.SAE_CLOCK.value).order_by("pk").values_list("key", flat=True))

    recorded = [f"{ae['id']}/initial/1/overdue"]  # D6 is long past: overdue when recorded
    assert keys() == recorded
    # The initial report sent at D6 18:00 acknowledges nothing; the first follow-up is due 7 days later.
    assert scan(d6 + timedelta(days=2)) == "1 SAE-clock alert(s) raised"
    assert keys() == [*recorded, f"{ae['id']}/follow_up/1/due"]
    assert scan(d6 + timedelta(days=2)) == "0 SAE-clock alert(s) raised"
    assert scan(d6 + timedelta(days=9)) == "1 SAE-clock alert(s) raised"
    assert keys()[-1] == f"{ae['id']}/follow_up/1/overdue"
    # Acknowledged, a stage is not alerted again by a later scan.
    client = world.client_for("bdx.investigator")
    for alert in Alert.objects.filter(kind=AlertKind.SAE_CLOCK.value):
        assert client.post("/alerts/", {"alert": alert.pk}).status_code == 302
    assert scan(d6 + timedelta(days=10)) == "0 SAE-clock alert(s) raised"
    assert not Alert.objects.filter(kind=AlertKind.SAE_CLOCK.value, acknowledged_at__isnull=True).exists()
    alert = Alert.objects.get(key=f"{ae['id']}/follow_up/1/overdue")
    assert alert.due_at == datetime.combine(d6, time(18), ZoneInfo("Europe/Paris")) + timedelta(days=7)


CALM = {
    "temperature_c": 37.0,
    "hypotension": "none",
    "hypoxia": "none",
    "ice_score": 10,
    "consciousness": "normal",
    "seizure": "none",
    "motor_weakness": "none",
    "cerebral_edema": "none",
    "tocilizumab_given": False,
    "corticosteroids_given": False,
}
CRS_GRADE = {
    1: CALM | {"temperature_c": 38.4},
    2: CALM | {"temperature_c": 38.9, "hypotension": "no_vasopressor"},
    3: CALM | {"temperature_c": 39.2, "hypotension": "one_vasopressor"},
    4: CALM | {"temperature_c": 39.5, "hypotension": "multiple_vasopressors"},
}


def _assess(world: Any, subject: Subject, day: int, inputs: dict[str, object]) -> None:
    assert subject.infusion_date is not None
    response = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/toxicity/assessments",
        {"assessed_on": (subject.infusion_date + timedelta(days=day)).isoformat(), **inputs},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content


def test_a_crs_episode_reaching_grade_3_raises_one_alert_mailed_after_commit_grade_2_none(
    world: Any, subject: Subject, mailboxes: dict[str, str], django_capture_on_commit_callbacks: Any
) -> None:
    assert subject.infusion_date is not None
    _assess(world, subject, 1, CRS_GRADE[1])
    _assess(world, subject, 2, CRS_GRADE[2])
    assert not Alert.objects.exists()  # grade 2: no alert
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _assess(world, subject, 3, CRS_GRADE[3])
    alert = Alert.objects.get()
    assert mail.outbox == []
    assert (alert.kind, alert.key, alert.params["grade"]) == (AlertKind.CRS_GRADE_3.value, "episode/D1", 3)
    assert alert.link == f"/toxicity/subjects/{subject.code}/assessments/3/"
    for callback in callbacks:
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(mailboxes[u] for u in CLINICAL_AND_MONITOR)
    d3 = (subject.infusion_date + timedelta(days=3)).isoformat()
    by_address = {m.to[0]: m.body for m in mail.outbox}
    assert (
        f"{subject.code} : syndrome de relargage cytokinique de grade 3 le {d3} (J3)."
        in by_address[mailboxes["bdx.investigator"]]
    )
    assert (
        f"{subject.code}: cytokine release syndrome grade 3 on {d3} (D3)." in by_address[mailboxes["bdx.coordinator"]]
    )
    # Acknowledged, and the episode worsens to grade 4: still the same episode, no second alert.
    assert world.client_for("bdx.investigator").post("/alerts/", {"alert": alert.pk}).status_code == 302
    _assess(world, subject, 4, CRS_GRADE[4])
    _assess(world, subject, 5, CALM)
    assert Alert.objects.count() == 1
    # A new episode after the resolution on D5 is alerted on its own.
    _assess(world, subject, 6, CRS_GRADE[3])
    assert list(Alert.objects.order_by("pk").values_list("key", flat=True)) == ["episode/D1", "episode/D6"]


def test_an_icans_corrected_to_grade_3_raises_its_alert_and_grade_2_none(world: Any, subject: Subject) -> None:
    _assess(world, subject, 2, CALM | {"ice_score": 4})  # ICE 3-6: ICANS grade 2
    assert not Alert.objects.exists()
    api = _api(world, "bdx.coordinator")
    url = f"/api/v1/subjects/{subject.code}/toxicity/assessments/2"
    corrected = api.put(url, CALM | {"ice_score": 2, "reason": "ICE re-scored"}, content_type="application/json")
    assert corrected.status_code == 200, corrected.content
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.params["grade"]) == (AlertKind.ICANS_GRADE_3.value, "episode/D2", 3)
    # Correcting it again within the same episode raises nothing more.
    again = api.put(url, CALM | {"ice_score": 1, "reason": "ICE re-scored again"}, content_type="application/json")
    assert again.status_code == 200, again.content
    assert Alert.objects.count() == 1
