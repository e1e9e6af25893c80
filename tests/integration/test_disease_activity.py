"""Disease activity per visit (issue 10): the lupus activity form's scores stored with their inputs
and protocol version, equal to `cartrial endpoints` on the same inputs, derived again at later visits
when the baseline is corrected (in the same transaction, audited), refused when a later form is
locked; the pages (French and English), the API and the scoped selectors the dashboards read."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cartrial.apps.access import reach_subject, scope_for
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.casebook import selectors, services
from cartrial.apps.casebook.models import FormRecord
from cartrial.apps.subjects.models import Subject
from cartrial.domain.endpoints import endpoints_report
from cartrial.domain.errors import Refused
from cartrial.domain.pathway import State
from cartrial.domain.roles import Action

pytestmark = pytest.mark.django_db

FORM = "sle_activity"
ANSWERS = {
    "maintenance_therapy_stable": True,
    "standard_maintenance_only": True,
    "hemolytic_anemia": False,
    "gi_activity": False,
}
SCREENING = {
    "sledai2k_descriptors": ["arthritis", "rash", "proteinuria", "low_complement", "increased_dna_binding"],
    "physician_global_assessment": 2.0,
    "prednisone_mg_per_day": 20,
    "immunosuppressants": ["mycophenolate"],
    **ANSWERS,
}
FOLLOW_UP = {
    "M3": {
        "sledai2k_descriptors": ["arthritis", "low_complement"],
        "physician_global_assessment": 1.0,
        "prednisone_mg_per_day": 10,
        "immunosuppressants": ["mycophenolate"],
        **ANSWERS,
    },
    "M6": {"physician_global_assessment": 0.0, "prednisone_mg_per_day": 0, **ANSWERS},
    "M12": {
        "sledai2k_descriptors": ["low_complement", "increased_dna_binding"],
        "physician_global_assessment": 0.3,
        "prednisone_mg_per_day": 5,
        "immunosuppressants": ["mycophenolate"],
        **ANSWERS,
    },
}
DAYS = {"M3": 90, "M6": 180, "M12": 365}


def _as(world: Any, username: str, subject: Subject, action: Action, work: Any) -> Any:
    reach = reach_subject(world.users[username], subject.code, action)
    return reach.run(lambda: work(reach))


def _save(world: Any, subject: Subject, visit: str, items: dict[str, Any], reason: str = "") -> Any:
    return _as(
        world,
        "bdx.coordinator",
        subject,
        Action.ENTER_FORM_DATA,
        lambda r: services.form_save(
            actor=r.actor,
            subject=r.subject,
            protocol=world.protocol,
            visit_code=visit,
            form_code=FORM,
            items=items,
            reason=reason,
        ),
    )


def _done(world: Any, subject: Subject, visit: str, on: date) -> None:
    _as(
        world,
        "bdx.coordinator",
        subject,
        Action.ENTER_FORM_DATA,
        lambda r: services.visit_done_record(
            actor=r.actor, subject=r.subject, protocol=world.protocol, visit_code=visit, done_on=on
        ),
    )


@pytest.fixture
def subject(world: Any) -> Subject:
    """A BDX subject in follow-up with its lupus activity at SCR, M3, M6 and M12."""
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    infused, included = subject.infusion_date, selectors.subject_anchors(subject).inclusion
    assert infused is not None and included is not None
    _done(world, subject, "SCR", included - timedelta(days=10))
    _save(world, subject, "SCR", SCREENING)
    for visit, values in FOLLOW_UP.items():
        _done(world, subject, visit, infused + timedelta(days=DAYS[visit]))
        _save(world, subject, visit, values)
    return subject


def _stored(subject: Subject, visit: str) -> dict[str, Any]:
    return FormRecord.objects.get(subject=subject, visit_code=visit, form_code=FORM).values_json  # type: ignore[no-any-return]


def _contract_input(screening: dict[str, Any]) -> dict[str, Any]:
    """The same inputs as the forms, in the shape of `cartrial endpoints`."""
    return {
        "baseline": {
            "sledai_descriptors": screening["sledai2k_descriptors"],
            "pga": screening["physician_global_assessment"],
        },
        "visits": [
            {
                "code": visit,
                "sledai_descriptors": values.get("sledai2k_descriptors", []),
                "pga": values["physician_global_assessment"],
                "prednisone_mg_per_day": values["prednisone_mg_per_day"],
                **ANSWERS,
                "new_bilag_a": 0,
                "new_bilag_b": 0,
                "immunosuppressants": values.get("immunosuppressants", []),
            }
            for visit, values in FOLLOW_UP.items()
        ],
    }


def _stored_rows(subject: Subject) -> list[dict[str, Any]]:
    names = {
        "sledai": "sledai2k_score",
        "clinical_sledai": "clinical_sledai_score",
        "doris": "doris",
        "drug_free_doris": "drug_free_doris",
        "lldas": "lldas",
        "sri4": "sri4",
    }
    return [
        {"code": visit, **{key: _stored(subject, visit).get(name) for key, name in names.items()}}
        for visit in FOLLOW_UP
    ]


def test_the_stored_scores_are_the_endpoints_command_on_the_same_inputs(world: Any, subject: Subject) -> None:
    report = endpoints_report(_contract_input(SCREENING))
    assert _stored_rows(subject) == report["visits"]
    assert [row["doris"] for row in report["visits"]] == [False, True, True]
    m6 = FormRecord.objects.select_related("protocol_version").get(subject=subject, visit_code="M6", form_code=FORM)
    # Stored with its inputs and the protocol version it was captured under.
    assert m6.values_json["physician_global_assessment"] == 0.0 and m6.values_json["prednisone_mg_per_day"] == 0.0
    assert m6.protocol_version.version == "1.0"
    activity = selectors.disease_activity(subject, world.protocol)
    assert [v.code for v in activity.visits] == ["SCR", "M3", "M6", "M12"]
    assert activity.doris_sustained_from == report["doris_sustained_from"] == "M6"


def test_correcting_the_baseline_derives_the_later_visits_again_in_the_same_save_audited(
    world: Any, subject: Subject
) -> None:
    assert _stored(subject, "M6")["sri4"] is True
    m6 = FormRecord.objects.get(subject=subject, visit_code="M6", form_code=FORM)
    since = AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    quieter = {**SCREENING, "sledai2k_descriptors": ["rash"]}
    _save(world, subject, "SCR", quieter, reason="Source: only a rash at screening")
    # Baseline SLEDAI-2K 2: no visit can now be a 4-point reduction.
    report = endpoints_report(_contract_input(quieter))
    assert _stored_rows(subject) == report["visits"]
    assert [row["sri4"] for row in _stored_rows(subject)] == [False, False, False]
    derived = AuditEntry.objects.filter(sequence__gt=since, event="casebook.form_rederived").order_by("sequence")
    assert [e.entity_id for e in derived] == [
        str(FormRecord.objects.get(subject=subject, visit_code=v, form_code=FORM).pk) for v in ("M3", "M6", "M12")
    ]
    entry = derived.get(entity_id=str(m6.pk))
    assert "SCR" in entry.reason
    assert {"field": "sri4", "old": True, "new": False} in json.loads(entry.changes_json)
    m6.refresh_from_db()
    assert m6.revision == 2
    # The item history of M6 shows the derived change.
    history = selectors.form_history(m6)
    assert any(c.item == "sri4" and c.old is True and c.new is False for c in history)


def test_a_locked_later_form_refuses_the_baseline_correction_and_nothing_is_stored(
    world: Any, subject: Subject
) -> None:
    records = list(FormRecord.objects.filter(subject=subject, visit_code="M6"))
    _as(
        world,
        "dm.datamanager",
        subject,
        Action.LOCK_DATA,
        lambda r: services.forms_lock(actor=r.actor, records=records),
    )
    before = (_stored(subject, "SCR"), _stored(subject, "M3"), _changes())
    with pytest.raises(Refused) as refused:
        _save(world, subject, "SCR", {**SCREENING, "sledai2k_descriptors": ["rash"]}, reason="Corrected")
    assert refused.value.code == "derived_form_locked" and refused.value.params["visit"] == "M6"
    # M3, derived again before M6 refused, is rolled back with the rest; only the refusal is recorded.
    assert (_stored(subject, "SCR"), _stored(subject, "M3"), _changes()) == before


def _changes() -> int:
    """Audit entries of changes (refusals are recorded too, on purpose, and left out here)."""
    return AuditEntry.objects.exclude(event__in=["action.refused", "access.refused"]).count()


def test_a_change_that_leaves_later_scores_alone_writes_no_derived_change(world: Any, subject: Subject) -> None:
    since = AuditEntry.objects.count()
    _save(world, subject, "SCR", {**SCREENING, "prednisone_mg_per_day": 25}, reason="Dose from the letter")
    assert not AuditEntry.objects.filter(event="casebook.form_rederived").exists()
    assert AuditEntry.objects.count() == since + 1


def _api(world: Any, username: str) -> Any:
    from django.test import Client

    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_api_gives_each_visits_scores_with_the_contracts_keys(world: Any, subject: Subject) -> None:
    response = _api(world, "cra.monitor").get(f"/api/v1/subjects/{subject.code}/disease-activity")
    assert response.status_code == 200
    body = response.json()
    assert body["doris_sustained_from"] == "M6"
    assert [v["code"] for v in body["visits"]] == ["SCR", "M3", "M6", "M12"]
    assert all(
        set(v) == {"code", "sledai", "clinical_sledai", "doris", "drug_free_doris", "lldas", "sri4", "protocol_version"}
        for v in body["visits"]
    )
    report = endpoints_report(_contract_input(SCREENING))
    assert [{k: v[k] for k in report["visits"][0]} for v in body["visits"][1:]] == report["visits"]
    # At screening, SRI-4 and LLDAS compare with nothing: not assessable.
    assert (body["visits"][0]["sledai"], body["visits"][0]["sri4"], body["visits"][0]["lldas"]) == (14, None, None)


def test_a_pga_of_4_is_refused_with_its_item_and_rule_and_nothing_is_stored(world: Any) -> None:
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    assert subject.infusion_date is not None
    _done(world, subject, "M3", subject.infusion_date + timedelta(days=90))
    client = _api(world, "bdx.coordinator")
    count, audit = FormRecord.objects.count(), _changes()
    response = client.put(
        f"/api/v1/subjects/{subject.code}/visits/M3/forms/{FORM}",
        json.dumps({"items": {"physician_global_assessment": 4, "prednisone_mg_per_day": 5}}),
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["item"]) == ("item_range", "physician_global_assessment")
    assert "0–3" in body["message"]
    assert (FormRecord.objects.count(), _changes()) == (count, audit)


def _badge(html: str, name: str) -> str:
    found = re.search(rf'data-testid="derived-{name}" data-value="(\w+)"><span class="badge [\w-]+">([^<]+)<', html)
    assert found is not None, name
    return f"{found.group(1)}:{found.group(2)}"


def test_the_m6_form_shows_doris_and_lldas_in_french_and_english(subject: Subject, client_for: Any) -> None:
    url = f"/casebook/subjects/{subject.code}/visits/M6/forms/{FORM}/"
    client = client_for("bdx.coordinator")
    french = client.get(url).content.decode()
    assert (_badge(french, "doris"), _badge(french, "lldas"), _badge(french, "sri4")) == (
        "yes:Oui",
        "yes:Oui",
        "yes:Oui",
    )
    assert "Rémission DORIS" in french and "Rémission DORIS sans traitement" in french
    # The descriptors' definitions beside them, in the reader's language.
    assert "Plus de 0,5 g/24 h" in french
    client.cookies["django_language"] = "en"
    english = client.get(url).content.decode()
    assert (_badge(english, "doris"), _badge(english, "lldas")) == ("yes:Yes", "yes:Yes")
    assert ">DORIS remission<" in english and "More than 0.5 g/24 h, new or persistent." in english
    m3 = client.get(f"/casebook/subjects/{subject.code}/visits/M3/forms/{FORM}/").content.decode()
    assert (_badge(m3, "doris"), _badge(m3, "sledai2k_score")) == ("no:No", "score:6")


def _cells(html: str, visit: str) -> dict[str, str]:
    row = re.search(rf'<tr data-visit="{visit}">(.*?)</tr>', html.split('data-testid="disease-activity"', 1)[1], re.S)
    assert row is not None, visit
    return dict(re.findall(r'data-endpoint="(\w+)"(?: data-value="(\w+)")?', row.group(1)))


@pytest.mark.parametrize("username", ["bdx.coordinator", "cra.monitor", "dm.datamanager"])
def test_the_casebook_shows_the_disease_activity_table(subject: Subject, client_for: Any, username: str) -> None:
    client = client_for(username)
    html = client.get(f"/casebook/subjects/{subject.code}/").content.decode()
    assert "Activité de la maladie" in html
    assert _cells(html, "M6") == {
        "sledai": "",
        "clinical_sledai": "",
        "doris": "yes",
        "drug_free_doris": "yes",
        "lldas": "yes",
        "sri4": "yes",
    }
    assert _cells(html, "M3")["doris"] == "no" and _cells(html, "SCR")["sri4"] == "none"
    assert 'data-testid="doris-sustained-from" data-value="M6"' in html
    visit = client.get(f"/casebook/subjects/{subject.code}/visits/M6/").content.decode()
    assert _cells(visit, "M6")["lldas"] == "yes" and '<tr data-visit="M3">' not in visit


def test_the_dashboard_selectors_count_per_visit_within_the_users_scope(world: Any, subject: Subject) -> None:
    other = world.new_subject("LIL", State.FOLLOW_UP)
    assert other.infusion_date is not None
    reach = reach_subject(world.users["lil.coordinator"], other.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: services.visit_done_record(
            actor=reach.actor,
            subject=other,
            protocol=world.protocol,
            visit_code="M6",
            done_on=other.infusion_date + timedelta(days=180),
        )
    )
    reach = reach_subject(world.users["lil.coordinator"], other.code, Action.ENTER_FORM_DATA)
    reach.run(
        lambda: services.form_save(
            actor=reach.actor,
            subject=other,
            protocol=world.protocol,
            visit_code="M6",
            form_code=FORM,
            items={"physician_global_assessment": 2.0, "prednisone_mg_per_day": 15, **ANSWERS},
        )
    )
    monitor = scope_for(world.users["cra.monitor"])  # BDX and LIL
    with CaptureQueriesContext(connection) as queries:
        counts = {row.code: row for row in selectors.disease_activity_by_visit(monitor, world.protocol)}
    assert len(queries) == 1
    assert (counts["M6"].assessed, counts["M6"].doris, counts["M6"].lldas) == (2, 1, 1)
    assert (counts["M3"].assessed, counts["M3"].doris, counts["M3"].lldas) == (1, 0, 0)
    assert (counts["M12"].assessed, counts["M12"].doris, counts["M12"].lldas) == (1, 1, 0)
    assert counts["M9"].assessed == 0 and "U1" not in counts
    bordeaux = scope_for(world.users["bdx.coordinator"])
    assert selectors.disease_activity_by_visit(bordeaux, world.protocol)[0].code == "SCR"
    assert {r.code: r.assessed for r in selectors.disease_activity_by_visit(bordeaux, world.protocol)}["M6"] == 1
    with CaptureQueriesContext(connection) as queries:
        by_subject = selectors.disease_activity_in_scope(monitor, world.protocol)
    assert len(queries) == 2
    assert set(by_subject) == {subject.code, other.code}
    assert [v.code for v in by_subject[subject.code].visits] == ["SCR", "M3", "M6", "M12"]
    assert by_subject[other.code].visits[0].doris is False
    assert set(selectors.disease_activity_in_scope(bordeaux, world.protocol)) == {subject.code}


def test_a_form_captured_under_the_earlier_version_keeps_its_values_and_version(world: Any) -> None:
    """Version 0.9's lupus activity form had neither the maintenance answers nor BILAG nor scores: its
    M3 record keeps what was entered and its version when the baseline saved under 1.0 derives it
    again; the scores that need no new answer are added, the others stay not assessable."""
    import copy
    import dataclasses

    from cartrial.apps import clock
    from cartrial.apps.trial.models import ProtocolVersion
    from cartrial.domain.ecrf import parse_forms

    raw = copy.deepcopy(list(world.protocol.raw["forms"]))
    form = next(f for f in raw if f["code"] == FORM)
    del form["baseline_visit"]
    form["groups"] = [g for g in form["groups"] if g["name"] in ("activity", "treatment")]
    for group in form["groups"]:
        group["items"] = [i for i in group["items"] if i["name"] not in ANSWERS]
    earlier = dataclasses.replace(world.protocol, version="0.9", forms=parse_forms(raw))
    ProtocolVersion.objects.create(
        study_code=earlier.code, version="0.9", file_sha256="0" * 64, registered_at=clock.now()
    )
    subject = world.new_subject("BDX", State.FOLLOW_UP)
    infused, included = subject.infusion_date, selectors.subject_anchors(subject).inclusion
    assert infused is not None and included is not None
    _done(world, subject, "M3", infused + timedelta(days=90))
    entered = {"sledai2k_descriptors": ["arthritis"], "physician_global_assessment": 1.0, "prednisone_mg_per_day": 5.0}
    _as(
        world,
        "bdx.coordinator",
        subject,
        Action.ENTER_FORM_DATA,
        lambda r: services.form_save(
            actor=r.actor, subject=r.subject, protocol=earlier, visit_code="M3", form_code=FORM, items=entered
        ),
    )
    assert _stored(subject, "M3") == entered
    _done(world, subject, "SCR", included - timedelta(days=10))
    _save(world, subject, "SCR", SCREENING)
    m3 = FormRecord.objects.select_related("protocol_version").get(subject=subject, visit_code="M3", form_code=FORM)
    assert m3.protocol_version.version == "0.9"
    assert {k: m3.values_json[k] for k in entered} == entered
    assert (m3.values_json["sledai2k_score"], m3.values_json["sri4"]) == (4, True)
    assert "doris" not in m3.values_json and "lldas" not in m3.values_json


def test_a_visit_date_that_changes_the_order_derives_the_visits_again(world: Any, subject: Subject) -> None:
    """M12 dated before M3 by mistake: its LLDAS now compares with screening (no new feature) instead
    of M6, and is met; the change is audited as a derived one naming the visit whose date moved."""
    assert subject.infusion_date is not None
    assert _stored(subject, "M12")["lldas"] is False
    earlier = subject.infusion_date + timedelta(days=60)
    _as(
        world,
        "bdx.coordinator",
        subject,
        Action.ENTER_FORM_DATA,
        lambda r: services.visit_done_record(
            actor=r.actor,
            subject=r.subject,
            protocol=world.protocol,
            visit_code="M12",
            done_on=earlier,
            reason="Date typed from the wrong letter",
        ),
    )
    assert _stored(subject, "M12")["lldas"] is True
    assert [v.code for v in selectors.disease_activity(subject, world.protocol).visits] == ["SCR", "M12", "M3", "M6"]
    entry = AuditEntry.objects.filter(event="casebook.form_rederived").get()
    assert "M12" in entry.reason and {"field": "lldas", "old": False, "new": True} in json.loads(entry.changes_json)
