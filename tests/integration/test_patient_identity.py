"""Who the patient is, at registration and correction: one hospital number once per center, no hidden characters.

Issue 8 found the same hospital number registered six times at one center, and identity fields
holding control characters (printed on wristbands, matched by people). Both are refused now, on the
page and through the API, with the field named; these tests hold that.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import Subject
from cartrial.apps.subjects.services import IdentityInput, subject_create, subject_identity_correct
from cartrial.domain.errors import InvalidInput

REGISTERED = "IPP 12-345a"
# The same number as other systems print it: spaces, dashes, dots, another case.
SAME_NUMBER = ["IPP12345A", "ipp-12-345-a", " Ipp 12 345 A ", "I.P.P.12.345.A", "ipp12345a"]
FIELD_LABELS = {
    "en": {"family_name": "family name", "given_names": "given names", "hospital_number": "hospital number (IPP)"},
    "fr": {"family_name": "nom de famille", "given_names": "prénoms", "hospital_number": "numéro hospitalier (IPP)"},
}


def _identity(center: str, hospital_number: str, **changes: str) -> dict[str, str]:
    return {
        "center": center,
        "family_name": "Dupont",
        "given_names": "Marie",
        "birth_date": "1979-04-12",
        "hospital_number": hospital_number,
    } | changes


def _page(world: Any, username: str, language: str = "en") -> Client:
    client = world.client_for(username)
    client.cookies["django_language"] = language
    return client


def _api(world: Any, username: str, language: str = "en") -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE=language)


def _register_page(client: Client, payload: dict[str, str]) -> Any:
    return client.post("/subjects/new/", payload)


def _register_api(client: Client, payload: dict[str, str]) -> Any:
    return client.post("/api/v1/subjects", payload, content_type="application/json")


def _field_errors(response: Any, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


# --- one hospital number, once per center ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("variant", SAME_NUMBER)
def test_the_page_refuses_a_hospital_number_already_registered_at_the_center(world: Any, variant: str) -> None:
    client = _page(world, "bdx.coordinator")
    first = _register_page(client, _identity("BDX", REGISTERED))
    assert first.status_code == 302 and first["Location"] == "/subjects/BDX-001/"
    again = _register_page(client, _identity("BDX", variant, family_name="Durand"))
    assert again.status_code == 422
    [error] = _field_errors(again, "hospital_number")
    assert "already registered at BDX (subject BDX-001)" in error
    assert Subject.objects.filter(center__code="BDX").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("variant", SAME_NUMBER)
def test_the_api_refuses_a_hospital_number_already_registered_at_the_center(world: Any, variant: str) -> None:
    client = _api(world, "bdx.investigator")
    assert _register_api(client, _identity("BDX", REGISTERED)).status_code == 201
    again = _register_api(client, _identity("BDX", variant))
    assert again.status_code == 422, again.content
    body = again.json()
    assert (body["code"], body["item"]) == ("duplicate_hospital_number", "hospital_number")
    assert "BDX-001" in body["message"]
    assert Subject.objects.filter(center__code="BDX").count() == 1


@pytest.mark.django_db
def test_the_french_refusal_names_the_subject_already_registered(world: Any) -> None:
    client = _page(world, "bdx.coordinator", "fr")
    assert _register_page(client, _identity("BDX", REGISTERED)).status_code == 302
    [error] = _field_errors(_register_page(client, _identity("BDX", "IPP12345A")), "hospital_number")
    assert error == "Le numéro hospitalier IPP12345A est déjà enregistré à BDX (patient BDX-001)."


@pytest.mark.django_db
def test_the_same_hospital_number_at_another_center_is_another_patient(world: Any) -> None:
    """Hospital numbers are the hospital's own: Lille's 12345 is not Bordeaux's."""
    assert _register_page(_page(world, "bdx.coordinator"), _identity("BDX", REGISTERED)).status_code == 302
    assert _register_page(_page(world, "lil.coordinator"), _identity("LIL", REGISTERED)).status_code == 302
    assert _register_api(_api(world, "par.coordinator"), _identity("PAR", "IPP12345A")).status_code == 201
    assert sorted(Subject.objects.values_list("code", flat=True)) == ["BDX-001", "LIL-001", "PAR-001"]


def _correct(world: Any, subject: Subject, hospital_number: str) -> None:
    subject_identity_correct(
        actor=world.actor("bdx.coordinator"),
        subject=subject,
        identity=IdentityInput("Dupont", "Marie", date(1979, 4, 12), hospital_number),
        reason="hospital number mistyped at registration",
    )


@pytest.mark.django_db
def test_an_identity_correction_to_another_subjects_number_is_refused(world: Any) -> None:
    client = _page(world, "bdx.coordinator")
    assert _register_page(client, _identity("BDX", REGISTERED)).status_code == 302
    assert _register_page(client, _identity("BDX", "IPP 99-999")).status_code == 302
    second = Subject.objects.get(code="BDX-002")
    with pytest.raises(InvalidInput) as refused:
        _correct(world, second, "ipp-12-345-A")
    assert (refused.value.code, refused.value.item) == ("duplicate_hospital_number", "hospital_number")
    assert "BDX-001" in str(refused.value)
    # The subject's own number, retyped differently, is no duplicate of itself (the given name changes).
    subject_identity_correct(
        actor=world.actor("bdx.coordinator"),
        subject=second,
        identity=IdentityInput("Dupont", "Marie-Anne", date(1979, 4, 12), "IPP99999"),
        reason="given name completed",
    )
    # Once corrected to another number, the old one is free again at the center.
    _correct(world, second, "IPP 77-777")
    assert _register_page(client, _identity("BDX", "IPP 99-999")).status_code == 302


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="concurrent transactions need PostgreSQL")
def test_two_concurrent_registrations_of_one_number_at_one_center_give_one_subject(world: Any) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []
    lock = threading.Lock()

    def register(family_name: str, hospital_number: str) -> None:
        try:
            barrier.wait(timeout=10)
            subject = subject_create(
                actor=world.actor("bdx.coordinator"),
                center=world.centers["BDX"],
                identity=IdentityInput(family_name, "Marie", date(1979, 4, 12), hospital_number),
                protocol=world.protocol,
            )
            outcome: object = subject.code
        except BaseException as error:  # collected and checked in the main thread
            outcome = error
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=register, args=("Dupont", REGISTERED)),
        threading.Thread(target=register, args=("Durand", "ipp-12-345-A")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    created = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert created == ["BDX-001"], outcomes
    assert len(refused) == 1 and isinstance(refused[0], InvalidInput), outcomes
    assert refused[0].code == "duplicate_hospital_number"
    assert Subject.objects.filter(center__code="BDX").count() == 1
    assert connection.vendor == "postgresql"


# --- no control or invisible character in identity fields ---------------------------------------------

# A bell, an escape, a tab and a line feed (control), a zero-width space, a right-to-left override and a
# soft hyphen (invisible formatting): each makes a wristband differ from the record without showing it.
HIDDEN = {"U+0007": "\x07", "U+001B": "\x1b", "U+0009": "\t", "U+000A": "\n", "U+200B": "\u200b", "U+202E": "\u202e"}
HIDDEN |= {"U+00AD": "\u00ad"}
FIELDS = ["family_name", "given_names", "hospital_number"]


def _with_hidden(field: str, character: str) -> dict[str, str]:
    base = _identity("BDX", "IPP 555")
    return base | {field: base[field][:2] + character + base[field][2:]}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("codepoint", list(HIDDEN))
@pytest.mark.parametrize("field", FIELDS)
def test_the_page_refuses_a_hidden_character_naming_the_field(
    world: Any, field: str, codepoint: str, language: str
) -> None:
    response = _register_page(_page(world, "bdx.coordinator", language), _with_hidden(field, HIDDEN[codepoint]))
    assert response.status_code == 422
    [error] = _field_errors(response, field)
    assert FIELD_LABELS[language][field] in error and codepoint in error, error
    assert not Subject.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("codepoint", [*HIDDEN, "U+0000"])
@pytest.mark.parametrize("field", FIELDS)
def test_the_api_refuses_a_hidden_character_naming_the_field(world: Any, field: str, codepoint: str) -> None:
    character = HIDDEN.get(codepoint, "\x00")
    response = _register_api(_api(world, "bdx.coordinator", "fr"), _with_hidden(field, character))
    assert response.status_code == 422, response.content
    body = response.json()
    assert (body["code"], body["item"]) == ("identity_control_character", field)
    assert FIELD_LABELS["fr"][field] in body["message"] and codepoint in body["message"]
    assert not Subject.objects.exists()


@pytest.mark.django_db
def test_a_hidden_character_in_an_identity_correction_is_refused(world: Any) -> None:
    client = _page(world, "bdx.coordinator")
    assert _register_page(client, _identity("BDX", REGISTERED)).status_code == 302
    with pytest.raises(InvalidInput) as refused:
        _correct(world, Subject.objects.get(code="BDX-001"), "IPP\u200b12345A")
    assert (refused.value.code, refused.value.item) == ("identity_control_character", "hospital_number")


@pytest.mark.django_db
def test_names_with_accents_apostrophes_and_hyphens_are_kept_as_typed(world: Any) -> None:
    """The refusal is for hidden characters only: Côté, N'Diaye, Anne-Sophie are names."""
    payload = _identity("MTL", "H-0042", family_name="N'Diaye-Côté", given_names="Anne-Sophie Ève")
    response = _register_api(_api(world, "mtl.coordinator"), payload)
    assert response.status_code == 201, response.content
    identity = response.json()["identity"]
    assert (identity["family_name"], identity["given_names"]) == ("N'Diaye-Côté", "Anne-Sophie Ève")
