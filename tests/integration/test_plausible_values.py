"""Plausible values and ordered dates (issue 8, item 5): each reviewer's finding, reproduced through the
pages, the API, the CSV import and the services, then refused with the item, the value and the range
(or both dates and the rule); nothing is stored by a refused action, and the refusal is recorded.

The last tests show that absurd values stored before these checks existed are listed on the biology
page but never reach the model, in a bounded number of queries.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.test import Client

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.biology import selectors as biology_selectors
from cartrial.apps.clinical.models import LabObservation
from cartrial.apps.clinical.services import LabObservationInput, screening_record
from cartrial.apps.logistics import services as logistics
from cartrial.apps.logistics.models import (
    ChainOfIdentity,
    Collection,
    QcResult,
    Shipment,
    TemperatureLog,
    Thaw,
)
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD, DEMO_SCREENING_DATA, logger_csv
from cartrial.domain.errors import DomainError, InvalidInput
from cartrial.domain.pathway import State, Step
from cartrial.domain.roles import Action
from cartrial.locale import render

pytestmark = pytest.mark.django_db

BILLION = 1_000_000_000
PARIS = ZoneInfo("Europe/Paris")


def _today(subject: Subject) -> date:
    return clock.now().astimezone(ZoneInfo(subject.center.time_zone)).date()


def _api(world: Any, username: str, language: str = "en") -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE=language)


def _refusal_recorded(subject: Subject, code: str) -> bool:
    return any(
        code in entry
        for entry in AuditEntry.objects.filter(subject_code=subject.code).values_list("changes_json", flat=True)
    )


# --- dates: consent, apheresis, infusion ----------------------------------------------------------


def test_consent_signed_before_the_birth_date_is_refused_naming_both_dates(world: Any) -> None:
    subject = world.new_subject("BDX")  # born in 1985
    with pytest.raises(InvalidInput) as refused:
        world.step(
            "bdx.coordinator",
            subject,
            Step.START_SCREENING,
            document_version="1.0",
            language="fr",
            signed_on=date(1980, 3, 1),
        )
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "signed_on"
    english = str(refused.value)
    assert "the consent signature (1980-03-01)" in english and "the birth date (1985-" in english
    assert "signature du consentement (1980-03-01)" in render(refused.value.message, "fr")
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value
    assert not subject.consents.exists()
    assert _refusal_recorded(subject, "dates_out_of_order")


def test_consent_before_birth_on_the_page_goes_on_the_date_field(world: Any) -> None:
    subject = world.new_subject("BDX")
    response = world.client_for("bdx.coordinator").post(
        f"/subjects/{subject.code}/steps/start_screening/",
        {"document_version": "1.0", "language": "fr", "signed_on": "1980-03-01"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert "Dates out of order: the consent signature (1980-03-01)" in body
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_apheresis_planned_years_before_inclusion_is_refused(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    included = PathwayEvent.objects.get(subject=subject, step=Step.INCLUDE.value).occurred_at
    years_before = included.date() - timedelta(days=3 * 365)
    with pytest.raises(InvalidInput) as refused:
        world.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=years_before)
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "apheresis_date"
    assert "the planned apheresis" in str(refused.value) and "the inclusion" in str(refused.value)
    assert Subject.objects.get(pk=subject.pk).state == State.INCLUDED.value


def test_apheresis_planned_decades_ahead_is_refused_by_the_protocols_horizon(world: Any) -> None:
    subject = world.new_subject("BDX", State.INCLUDED)
    with pytest.raises(InvalidInput) as refused:
        world.step(
            "bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=_today(subject).replace(year=2062)
        )
    assert refused.value.code == "date_too_far_ahead" and "180 days" in str(refused.value)
    # Within the horizon, a planned date in the future is what planning is.
    world.step("bdx.coordinator", subject, Step.SCHEDULE_APHERESIS, apheresis_date=_today(subject) + timedelta(days=7))
    assert subject.state == State.APHERESIS_SCHEDULED.value


def test_collection_dated_years_before_inclusion_is_refused_and_nothing_is_stored(world: Any) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    ended = clock.now() - timedelta(days=3 * 365)
    with pytest.raises(InvalidInput) as refused:
        world.step(
            "bdx.apheresis",
            subject,
            Step.COLLECT_APHERESIS,
            started_at=ended - timedelta(hours=4),
            ended_at=ended,
            volume_ml=210.0,
        )
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "started_at"
    assert "the start of the apheresis collection" in str(refused.value) and "the inclusion" in str(refused.value)
    assert not Collection.objects.filter(subject=subject).exists()
    assert Subject.objects.get(pk=subject.pk).state == State.APHERESIS_SCHEDULED.value


def _coi_scan(subject: Subject) -> str:
    return logistics.coi_of(ChainOfIdentity.objects.get(subject=subject)).barcode_data()


def _infuse(world: Any, subject: Subject, infused_on: date) -> Any:
    return world.step(
        "str.investigator",
        subject,
        Step.INFUSE,
        infused_on=infused_on,
        password=DEMO_PASSWORD,
        bag_code=_coi_scan(subject),
        wristband_code=subject.code,
        second_username="str.pharmacist",
        second_password=DEMO_PASSWORD,
        second_bag_code=_coi_scan(subject),
        second_wristband_code=subject.code,
    )


def test_infusion_dated_years_before_inclusion_is_refused_and_follow_up_stays_closed(world: Any) -> None:
    subject = world.new_subject("STR", State.LYMPHODEPLETION)
    with clock.frozen_at(clock.now()):
        world.act("str.pharmacist", subject, Action.THAW, scanned_code=_coi_scan(subject))
        clock.advance(timedelta(minutes=10))
        with pytest.raises(InvalidInput) as refused:
            _infuse(world, subject, _today(subject) - timedelta(days=2526))
        assert refused.value.code == "dates_out_of_order" and refused.value.item == "infused_on"
        assert "the infusion (D0)" in str(refused.value) and "the thaw of the product" in str(refused.value)
        assert Subject.objects.get(pk=subject.pk).infusion_date is None
        # D0 tomorrow has not happened yet.
        with pytest.raises(InvalidInput) as future:
            _infuse(world, subject, _today(subject) + timedelta(days=1))
        assert future.value.code == "date_in_future"
        today = _today(subject)
        _infuse(world, subject, today)
    # `today` is the frozen clock's date (ten minutes on): past midnight it is not the wall clock's.
    assert subject.state == State.INFUSED.value and subject.infusion_date == today


def test_thaw_before_lymphodepletion_started_is_refused(world: Any) -> None:
    subject = world.new_subject("STR", State.LYMPHODEPLETION)
    received = subject.shipments.get(direction="to_center").receipt.received_at
    started = PathwayEvent.objects.get(subject=subject, step=Step.START_LYMPHODEPLETION.value).occurred_at
    thawed = started - timedelta(hours=1)
    assert received < thawed  # after the pharmacy's receipt: the custody chain accepts it
    with pytest.raises(InvalidInput) as refused:
        world.act(
            "str.pharmacist",
            subject,
            Action.THAW,
            scanned_code=_coi_scan(subject),
            thawed_at=thawed.astimezone(PARIS).replace(tzinfo=None),
        )
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "thawed_at"
    assert "the thaw of the product" in str(refused.value) and "the start of lymphodepletion" in str(refused.value)
    assert not Thaw.objects.filter(batch__subject=subject).exists()


def test_death_before_the_consent_is_refused(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    signed = subject.consents.get().signed_on
    with pytest.raises(InvalidInput) as refused:
        world.step(
            "bdx.investigator", subject, Step.RECORD_DEATH, death_date=signed - timedelta(days=30), reason="(test)"
        )
    assert refused.value.code == "dates_out_of_order" and refused.value.item == "death_date"
    assert "the death" in str(refused.value) and "the consent signature" in str(refused.value)
    world.step("bdx.investigator", subject, Step.RECORD_DEATH, death_date=signed + timedelta(days=1), reason="(test)")
    assert subject.state == State.DECEASED.value


# --- numbers: apheresis, QC, screening labs, logger, kinetics -------------------------------------


def test_apheresis_volume_of_a_billion_ml_is_refused_with_the_range(world: Any) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    ended = clock.now() - timedelta(minutes=30)
    with pytest.raises(InvalidInput) as refused:
        world.step(
            "bdx.apheresis",
            subject,
            Step.COLLECT_APHERESIS,
            started_at=ended - timedelta(hours=4),
            ended_at=ended,
            volume_ml=float(BILLION),
        )
    assert refused.value.code == "value_implausible" and refused.value.item == "volume_ml"
    assert str(refused.value) == "Apheresis volume: 1000000000 mL is outside the plausible range 10–1000 mL."
    assert render(refused.value.message, "fr") == (
        "Volume d'aphérèse : 1000000000 mL est hors de la plage plausible 10–1000 mL."
    )
    assert not Collection.objects.filter(subject=subject).exists()


def test_apheresis_page_takes_its_min_and_max_from_the_catalogue_and_refuses_on_the_field(world: Any) -> None:
    subject = world.new_subject("BDX", State.APHERESIS_SCHEDULED)
    client = world.client_for("bdx.apheresis")
    url = f"/subjects/{subject.code}/steps/collect_apheresis/"
    page = client.get(url).content.decode()
    assert 'name="volume_ml"' in page and 'min="10"' in page and 'max="1000"' in page
    ended = clock.now().astimezone(PARIS) - timedelta(minutes=30)
    response = client.post(
        url,
        {
            "started_at": (ended - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "ended_at": ended.strftime("%Y-%m-%dT%H:%M"),
            "volume_ml": "210",
            "tnc_e9": "10",
            "cd3_cells_e9": "12",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 422
    assert "cannot exceed the total nucleated cells" in response.content.decode()
    assert not Collection.objects.filter(subject=subject).exists()


def _qc(world: Any, subject: Subject, code: str, value: str) -> Any:
    return world.act("lab.manufacturing", subject, Action.RECORD_QC, test_code=code, value=value)


def test_qc_viability_of_150_percent_is_refused_not_judged_conforming(world: Any) -> None:
    subject = world.new_subject("PAR", State.MANUFACTURING)
    with pytest.raises(InvalidInput) as refused:
        _qc(world, subject, "viability", "150")
    assert refused.value.code == "value_implausible" and refused.value.item == "value"
    assert str(refused.value) == "Viability: 150 % is outside the plausible range 0–100 %."
    assert render(refused.value.message, "fr").startswith("Viabilité : 150 % est hors de la plage plausible")
    assert not QcResult.objects.filter(batch__subject=subject).exists()
    # A plausible result is judged against the protocol's specification, conforming or not.
    assert _qc(world, subject, "viability", "62").conforms is False
    assert _qc(world, subject, "vector_copy_number", "3").conforms is True
    with pytest.raises(InvalidInput):
        _qc(world, subject, "vector_copy_number", str(BILLION))


def test_screening_creatinine_and_cd3_of_a_billion_are_refused_and_nothing_is_stored(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    sampled = clock.now() - timedelta(hours=2)
    for lab, words in (
        (LabObservationInput("creatinine", float(BILLION), "umol/L", sampled), "Creatinine: 1000000000 umol/L"),
        (LabObservationInput("cd3", float(BILLION), "cells/µL", sampled), "CD3+ T cells: 1000000000 cells/µL"),
        (
            LabObservationInput("cd3", 650.0, "cells/µL", sampled, upper_limit=float(BILLION)),
            "CD3+ T cells (upper limit of normal): 1000000000 cells/µL",
        ),
    ):
        with pytest.raises(InvalidInput) as refused, transaction.atomic():
            screening_record(
                actor=world.actor("bdx.coordinator"),
                subject=subject,
                protocol=world.protocol,
                data=DEMO_SCREENING_DATA,
                labs=[lab],
            )
        assert refused.value.code == "value_implausible"
        assert words in str(refused.value) and "outside the plausible range" in str(refused.value)
    assert not LabObservation.objects.filter(subject=subject).exists()


def test_screening_api_refuses_a_billion_cd3_with_the_range(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    from screening_data import api_payload

    payload = api_payload(cd3=float(BILLION), sampled_at=(clock.now() - timedelta(hours=2)).isoformat())
    response = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/eligibility", payload, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "value_implausible"
    assert "CD3+ T cells: 1000000000 cells/µL is outside the plausible range 0–20000 cells/µL." in body["message"]
    assert not LabObservation.objects.filter(subject=subject).exists()


def test_screening_page_inputs_take_their_bounds_from_the_catalogue(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    page = world.client_for("bdx.coordinator").get(f"/subjects/{subject.code}/eligibility/").content.decode()
    titre = page.split('name="ana_titer"')[1].split(">")[0]
    assert 'min="0"' in titre and 'max="100000"' in titre
    cd3 = page.split('name="cd3_value"')[1].split(">")[0]
    assert 'min="0"' in cd3 and 'max="20000"' in cd3


def test_logger_file_at_a_billion_degrees_is_refused_with_its_line(world: Any) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    start = shipment.actual_departure_at
    content = (
        f"time,temperature_c\n{start.isoformat()},4.5\n{(start + timedelta(minutes=15)).isoformat()},{BILLION}\n"
    ).encode()
    with pytest.raises(DomainError) as refused:
        world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=content,
            logger_time_zone="UTC",
        )
    message = str(refused.value)
    assert refused.value.code == "value_implausible"
    assert "Line 3: Logger temperature: 1000000000 °C is outside the plausible range -200–70 °C." in message
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()


def test_logger_file_dated_2030_is_refused_as_in_the_future(world: Any) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    start = datetime(2030, 5, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(DomainError) as refused:
        world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=logger_csv(start, start + timedelta(hours=6), low_c=3.0, high_c=6.0, fresh=True),
            logger_time_zone="UTC",
        )
    assert refused.value.code == "temperature_log_in_future"
    assert "2030-05-01" in str(refused.value)
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()


def test_logger_file_of_another_period_than_the_shipment_is_refused(world: Any) -> None:
    subject = world.new_subject("LIL", State.MATERIAL_SHIPPED)
    shipment = Shipment.objects.get(subject=subject)
    start = shipment.actual_departure_at - timedelta(days=400)
    with pytest.raises(DomainError) as refused:
        world.act(
            "lil.apheresis",
            subject,
            Action.IMPORT_TEMPERATURE_LOG,
            shipment=shipment.pk,
            file=logger_csv(start, start + timedelta(hours=6), low_c=3.0, high_c=6.0, fresh=True),
            logger_time_zone="UTC",
        )
    assert refused.value.code == "temperature_log_outside_shipment"
    assert not TemperatureLog.objects.filter(shipment=shipment).exists()


def _infused(world: Any, days_ago: int = 60) -> Subject:
    subject = world.new_subject("STR", State.INFUSED)
    d0 = clock.now().astimezone(PARIS).date() - timedelta(days=days_ago)
    Subject.objects.filter(pk=subject.pk).update(infusion_date=d0)
    subject.refresh_from_db()
    return subject


def test_kinetic_results_of_a_billion_cells_are_refused_by_api_csv_and_page(world: Any) -> None:
    subject = _infused(world)
    d = subject.infusion_date
    assert d is not None
    sampled = f"{d + timedelta(days=9)}T09:00"
    api = _api(world, "str.coordinator")
    response = api.post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations",
        {"observations": [{"marker": "car_t", "sampled_at": sampled, "value": BILLION, "unit": "cells/µL"}]},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "value_implausible"
    assert response.json()["message"] == (
        "Result 1: CAR-T cells (transgene): 1000000000 cells/µL is outside the plausible range 0–100000 cells/µL."
    )
    csv = f"marker,sampled_at,value,unit\nb_cells,{sampled},12,cells/µL\nb_cells,{sampled},{BILLION},cells/µL\n"
    response = api.post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations.csv", csv.encode(), content_type="text/csv"
    )
    assert response.status_code == 422 and response.json()["message"].startswith("Line 3: CD19+ B cells: 1000000000")
    page = world.client_for("str.investigator").post(
        f"/biology/subjects/{subject.code}/observations/new/",
        {
            "sampled_at": sampled,
            "anti_dsdna_value": str(BILLION),
            "anti_dsdna_unit": "IU/mL",
            "car_t_unit": "cells/µL",
            "b_cells_unit": "cells/µL",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert page.status_code == 422 and "outside the plausible range 0–10000 IU/mL" in page.content.decode()
    assert not LabObservation.objects.filter(subject=subject, context="kinetics").exists()


def test_kinetic_sample_before_the_birth_date_is_refused(world: Any) -> None:
    subject = _infused(world)
    Subject.objects.filter(pk=subject.pk).update(infusion_date=date(1970, 1, 1))  # a stored absurd D0
    subject.refresh_from_db()
    response = _api(world, "str.coordinator").post(
        f"/api/v1/subjects/{subject.code}/kinetics/observations",
        {"observations": [{"marker": "b_cells", "sampled_at": "1975-06-01T09:00", "value": 12, "unit": "cells/µL"}]},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "dates_out_of_order"
    assert "the birth date" in response.json()["message"]


# --- absurd values stored before the checks: listed, never used, fast ------------------------------


# session, user, scope, the subject in scope, its kinetic results (one query, whatever their number),
# the header's memberships and alert badge (one COUNT), the subject's corrected records (one query),
# and the session save (savepoint, update, release).
BIOLOGY_PAGE_QUERIES = 11


def test_biology_page_lists_stored_implausible_results_as_not_used_and_the_model_never_sees_them(
    world: Any, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    subject = _infused(world)
    d = subject.infusion_date
    assert d is not None
    # Stored as they were before the plausibility checks existed (written directly, as a migration found them).
    protocol_version = subject.protocol_version
    user = world.users["str.coordinator"]
    rows = [("car_t", 9, 21.0), ("b_cells", 9, 3.0), ("anti_dsdna", 9, 120.0)]
    rows += [("car_t", day, float(BILLION)) for day in range(10, 40)]
    rows += [("b_cells", 14, float(BILLION)), ("anti_dsdna", 28, float(BILLION))]
    for marker, day, value in rows:
        LabObservation.objects.create(
            subject=subject,
            analyte=marker,
            value=value,
            unit="cells/µL" if marker != "anti_dsdna" else "IU/mL",
            sampled_at=datetime.combine(d + timedelta(days=day), time(9), PARIS),
            context="kinetics",
            recorded_by=user,
            recorded_at=clock.now(),
            protocol_version=protocol_version,
        )
    seen: list[list[dict[str, object]]] = []
    real = biology_selectors.assess_subject

    def spy(observations: list[dict[str, object]], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(observations))
        return real(observations, *args, **kwargs)

    monkeypatch.setattr(biology_selectors, "assess_subject", spy)
    biology_selectors._assess.cache_clear()
    client = world.client_for("str.investigator")
    with django_assert_num_queries(BIOLOGY_PAGE_QUERIES):
        response = client.get(f"/biology/subjects/{subject.code}/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("hors de la plage plausible : non utilisé par le modèle") == 32
    assert len(seen) == 1 and sorted((o["marker"], o["value"]) for o in seen[0]) == [
        ("anti_dsdna", 120.0),
        ("b_cells", 3.0),
        ("car_t", 21.0),
    ]
    listed = biology_selectors.subject_kinetic_rows(subject=subject)
    implausible = [row for row in listed if row.value == BILLION]
    assert len(implausible) == 32 and {row.not_used_because for row in implausible} == {"implausible"}
    api = _api(world, "str.coordinator").get(f"/api/v1/subjects/{subject.code}/kinetics/observations").json()
    flagged = [row for row in api["items"] if row["value"] == BILLION]
    assert len(flagged) == 32 and all(row["used_by_model"] is False for row in flagged)
    assert {row["not_used_because"] for row in flagged} == {"implausible"}
    assert json.dumps(seen[0]).count(str(BILLION)) == 0


# --- the demo ----------------------------------------------------------------------------------------


def test_the_demos_values_are_plausible_and_its_dates_in_order(db: Any) -> None:
    from cartrial.apps.logistics.selectors import subject_milestones
    from cartrial.demo import build_demo, demo_epoch
    from cartrial.domain.chronology import chronology_check
    from cartrial.domain.lab_catalogue import validate_lab_value
    from cartrial.domain.quantities import LOGGER_TEMPERATURE_C, collection_counts_check
    from cartrial.protocols import active_protocol

    today = demo_epoch()
    protocol = active_protocol()
    build_demo(protocol, today=today)
    subjects = list(Subject.objects.select_related("center"))
    assert len(subjects) > 10
    for subject in subjects:
        # Every pair of the subject's known dates, as a correction would check them.
        chronology_check(
            subject_milestones(subject),
            now=today,
            zone=ZoneInfo(subject.center.time_zone),
            planning_horizon_days=protocol.pathway_rules.planning_horizon_days,
        )
    for row in LabObservation.objects.all():
        validate_lab_value(
            analyte=row.analyte,
            value=row.value,
            unit=row.unit,
            lower_limit=row.lower_limit,
            upper_limit=row.upper_limit,
            limit_of_quantification=row.limit_of_quantification,
        )
    for collection in Collection.objects.all():
        collection_counts_check(
            volume_ml=collection.volume_ml, tnc_e9=collection.tnc_e9, cd3_cells_e9=collection.cd3_cells_e9
        )
    for log in TemperatureLog.objects.all():
        assert LOGGER_TEMPERATURE_C.contains(log.min_temperature_c) and LOGGER_TEMPERATURE_C.contains(
            log.max_temperature_c
        )
    specification = protocol.product("CART_CRYO").release_specification
    results = list(QcResult.objects.all())
    assert results
    for result in results:
        plausible = specification[result.test_code].plausible
        assert result.value_number is None or (plausible is not None and plausible.contains(result.value_number))
