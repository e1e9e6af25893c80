"""The casebook pages for each role: who sees which page (200), who is refused (403) and who cannot
even learn that the subject exists (404); statuses and forms in the reader's language, never as
codes; a refused value shown at its item with nothing stored."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import translation

from cartrial.apps.access import reach_subject
from cartrial.apps.casebook import services
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.subjects.models import Subject
from cartrial.domain.casebook import QUERY_STATUS_LABELS, QueryStatus
from cartrial.domain.ecrf import FormStatus
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action
from cartrial.domain.visits import VISIT_STATUS_LABELS, VisitStatus

pytestmark = pytest.mark.django_db

VITALS = {
    "temperature_c": 37.1,
    "heart_rate_bpm": 78,
    "systolic_bp_mmhg": 122,
    "diastolic_bp_mmhg": 130,
    "spo2_pct": 98,
    "weight_kg": 61.5,
}
READERS = ("bdx.investigator", "bdx.coordinator", "cra.monitor", "dm.datamanager")
NOT_READERS = ("bdx.apheresis", "bdx.pharmacist", "lab.manufacturing")


@pytest.fixture
def subject(world: Any) -> Subject:
    """A BDX subject in follow-up with D28 done, its vital signs saved (an edit-check query open)
    and a manual query on the weight."""
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None

    def as_user(username: str, action: Action, work: Any) -> Any:
        reach = reach_subject(world.users[username], subject.code, action)
        return reach.run(lambda: work(reach))

    as_user(
        "bdx.coordinator",
        Action.ENTER_FORM_DATA,
        lambda r: services.visit_done_record(
            actor=r.actor,
            subject=r.subject,
            protocol=world.protocol,
            visit_code="D28",
            done_on=subject.infusion_date + timedelta(days=28),
        ),
    )
    as_user(
        "bdx.coordinator",
        Action.ENTER_FORM_DATA,
        lambda r: services.form_save(
            actor=r.actor,
            subject=r.subject,
            protocol=world.protocol,
            visit_code="D28",
            form_code="vital_signs",
            items=VITALS,
        ),
    )
    as_user(
        "cra.monitor",
        Action.RAISE_QUERY,
        lambda r: services.query_raise(
            actor=r.actor,
            subject=r.subject,
            protocol=world.protocol,
            visit_code="D28",
            form_code="vital_signs",
            item="weight_kg",
            text="Poids du dossier : 65 kg ?",
        ),
    )
    return subject


def _subject_pages(code: str) -> dict[str, str]:
    form = f"/casebook/subjects/{code}/visits/D28/forms/vital_signs/"
    return {
        "subject": f"/casebook/subjects/{code}/",
        "visit": f"/casebook/subjects/{code}/visits/D28/",
        "form": form,
        "history": f"{form}history/",
    }


GLOBAL_PAGES = ("/casebook/", "/casebook/worklist/", "/casebook/queries/")


@pytest.mark.parametrize("username", READERS)
def test_the_center_and_the_sponsor_read_every_page_of_the_casebook(
    username: str, subject: Subject, client_for: Any
) -> None:
    client = client_for(username)
    for name, path in _subject_pages(subject.code).items():
        response = client.get(path)
        assert response.status_code == 200, (name, response.status_code)
        assert subject.code in response.content.decode()
    for path in GLOBAL_PAGES:
        assert client.get(path).status_code == 200, path
    grid = client.get("/casebook/").content.decode()
    assert f'data-subject="{subject.code}"' in grid


@pytest.mark.parametrize(
    ("username", "status"),
    [("cra.monitor", 200), ("bdx.coordinator", 403), ("bdx.investigator", 403), ("dm.datamanager", 403)],
)
def test_only_the_monitor_opens_the_source_data_verification(
    username: str, status: int, subject: Subject, client_for: Any
) -> None:
    path = f"/casebook/subjects/{subject.code}/visits/D28/forms/vital_signs/verify/"
    assert client_for(username).get(path).status_code == status


@pytest.mark.parametrize("username", NOT_READERS)
def test_the_apheresis_unit_the_pharmacy_and_the_lab_do_not_read_the_casebook(
    username: str, subject: Subject, client_for: Any
) -> None:
    client = client_for(username)
    for name, path in _subject_pages(subject.code).items():
        assert client.get(path).status_code == 403, name
    for path in GLOBAL_PAGES:
        assert client.get(path).status_code == 403, path


def test_another_center_cannot_learn_that_the_subject_exists(subject: Subject, client_for: Any) -> None:
    client = client_for("lil.coordinator")
    for name, path in _subject_pages(subject.code).items():
        assert client.get(path).status_code == 404, name
    assert client.get(f"{_subject_pages(subject.code)['form']}verify/").status_code == 404
    grid = client.get("/casebook/")
    assert grid.status_code == 200 and subject.code not in grid.content.decode()
    inbox = client.get("/casebook/queries/?status=all")
    assert inbox.status_code == 200 and subject.code not in inbox.content.decode()


def _status_words(html: str) -> list[tuple[str, str]]:
    """(code, shown word) of every status chip of a page."""
    return [(code, word.strip()) for code, word in re.findall(r'data-status="(\w+)"[^>]*>([^<]+)<', html)]


def test_statuses_and_forms_are_shown_in_french_never_as_english_words_or_codes(
    subject: Subject, client_for: Any
) -> None:
    client = client_for("cra.monitor")
    pages = _subject_pages(subject.code)
    shown = []
    for path in (pages["subject"], pages["visit"], pages["form"], "/casebook/", "/casebook/queries/?status=all"):
        shown += _status_words(client.get(path).content.decode())
    english = {str(label) for label in VISIT_STATUS_LABELS.values()}
    english |= {str(s.label) for s in FormStatus} | {str(label) for label in QUERY_STATUS_LABELS.values()}
    with translation.override("fr"):
        french = {translation.gettext(VISIT_STATUS_LABELS[VisitStatus.DONE])}
        french.add(translation.gettext(QUERY_STATUS_LABELS[QueryStatus.OPEN]))
    words = {word for _, word in shown if len(word) > 2}  # the grid's marks are symbols
    assert words, "the pages show status words"
    assert french <= words
    assert not words & english, words & english
    # Forms by their protocol labels, items too: no code where a person reads.
    visit = client.get(pages["visit"]).content.decode()
    assert ">Signes vitaux<" in visit and ">vital_signs<" not in visit
    inbox = client.get("/casebook/queries/?status=all").content.decode()
    assert "Poids" in inbox and ">weight_kg<" not in inbox and ">vital_signs<" not in inbox


def test_in_english_the_same_pages_speak_english(subject: Subject, client_for: Any) -> None:
    client = client_for("bdx.coordinator")
    client.cookies["django_language"] = "en"
    html = client.get(_subject_pages(subject.code)["visit"]).content.decode()
    assert ">Vital signs<" in html and "Signes vitaux" not in html
    assert ("done", "Done") in _status_words(html)


def test_a_refused_value_is_shown_at_its_item_and_nothing_is_stored(world: Any, client_for: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    client = client_for("bdx.coordinator")
    visit = f"/casebook/subjects/{subject.code}/visits/D28/"
    done_on = (subject.infusion_date + timedelta(days=28)).isoformat()
    assert client.post(visit, {"op": "done", "done_on": done_on}).status_code == 302
    posted = {**{k: str(v) for k, v in VITALS.items()}, "diastolic_bp_mmhg": "76", "temperature_c": "47"}
    response = client.post(f"{visit}forms/vital_signs/", {"op": "save", **posted})
    assert response.status_code == 422
    html = response.content.decode()
    item = re.search(r'<div class="item([^"]*)" data-item="temperature_c">(.*?)</div>\s*</div>', html, re.S)
    assert item is not None and "has-error" in item.group(1)
    assert 'data-testid="refusal"' in item.group(2) and "30–45" in item.group(2)
    assert 'value="47"' in item.group(2)
    assert html.count("has-error") == 1
    assert not FormRecord.objects.filter(subject=subject).exists()


def test_a_form_holding_no_value_is_verified_against_the_source(world: Any, subject: Subject, client_for: Any) -> None:
    """A concomitant-medications form saved with no medication: the SDV page offers its empty list;
    the monitor verifies it (the source shows none either) and the form is verified."""
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: services.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=world.protocol,
            visit_code="D28",
            form_code="concomitant_medications",
            items={},
        )
    )
    url = f"/casebook/subjects/{subject.code}/visits/D28/forms/concomitant_medications/verify/"
    monitor = client_for("cra.monitor")
    page = monitor.get(url).content.decode()
    assert 'name="verify" value="medications"' in page
    record = FormRecord.objects.get(subject=subject, visit_code="D28", form_code="concomitant_medications")
    assert record.status == FormStatus.COMPLETE.value
    assert monitor.post(url, {"verify": ["medications"]}).status_code == 302
    record.refresh_from_db()
    assert record.status == FormStatus.VERIFIED.value and set(record.verified_json) == {"medications"}


def test_an_amendment_adding_an_item_leaves_the_records_captured_before_it_as_they_were(
    world: Any, subject: Subject
) -> None:
    """Protocol 1.1 adds the respiratory rate to the vital signs: the D28 vital signs captured under
    the first version keep their version and values; a form first saved under 1.1 records 1.1, with
    its new item."""
    import copy
    import dataclasses

    from cartrial.apps import clock
    from cartrial.apps.trial.models import ProtocolVersion
    from cartrial.domain.ecrf import parse_forms

    before = FormRecord.objects.select_related("protocol_version").get(
        subject=subject, visit_code="D28", form_code="vital_signs"
    )
    raw = copy.deepcopy(list(world.protocol.raw["forms"]))
    vitals = next(form for form in raw if form["code"] == "vital_signs")
    vitals["groups"][0]["items"].append(
        {
            "name": "respiratory_rate_per_min",
            "type": "integer",
            "unit": "/min",
            "minimum": 4,
            "maximum": 80,
            "label": {"en": "Respiratory rate", "fr": "Fréquence respiratoire"},
        }
    )
    amended = dataclasses.replace(world.protocol, version="1.1", forms=parse_forms(raw))
    ProtocolVersion.objects.create(
        study_code=amended.code, version="1.1", file_sha256="0" * 64, registered_at=clock.now()
    )
    assert subject.infusion_date is not None
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: services.visit_done_record(
            actor=reach.actor,
            subject=reach.subject,
            protocol=amended,
            visit_code="M2",
            done_on=subject.infusion_date + timedelta(days=60),
        )
    )
    reach = reach_subject(world.users["bdx.coordinator"], subject.code, Action.ENTER_FORM_DATA)
    saved = reach.run(
        lambda: services.form_save(
            actor=reach.actor,
            subject=reach.subject,
            protocol=amended,
            visit_code="M2",
            form_code="vital_signs",
            items={**VITALS, "respiratory_rate_per_min": 16},
        )
    )
    after = FormRecord.objects.select_related("protocol_version").get(pk=before.pk)
    assert (after.protocol_version.version, after.values_json, after.revision) == (
        before.protocol_version.version,
        before.values_json,
        before.revision,
    )
    assert "respiratory_rate_per_min" not in after.values_json
    assert saved.record.protocol_version.version == "1.1" != before.protocol_version.version
    assert saved.record.values_json["respiratory_rate_per_min"] == 16


def test_the_form_page_shows_values_read_only_to_whoever_may_not_change_them(subject: Subject, client_for: Any) -> None:
    """The monitor and the data manager read the values in disabled inputs; the coordinator edits."""
    url = f"/casebook/subjects/{subject.code}/visits/D28/forms/vital_signs/"
    field = re.compile(r'<input[^>]*name="temperature_c"[^>]*>')

    def temperature_input(username: str) -> str:
        found = field.search(client_for(username).get(url).content.decode())
        assert found is not None, username
        return found.group(0)

    assert " disabled" in temperature_input("cra.monitor")
    assert " disabled" in temperature_input("dm.datamanager")
    assert " disabled" not in temperature_input("bdx.coordinator")
