"""The JSON API: token authentication, subject registration, transitions and their stable error codes,
the OpenAPI schema and docs, and the e-signature at inclusion."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from screening_data import api_payload

from cartrial.apps.accounts.models import ApiToken
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.subjects.models import PathwayEvent, Subject
from cartrial.demo import DEMO_PASSWORD
from cartrial.domain.pathway import State, Step

pytestmark = pytest.mark.django_db

NEW_SUBJECT = {
    "center": "BDX",
    "family_name": "Apipatient",
    "given_names": "Anna",
    "birth_date": "1984-02-29",
    "hospital_number": "IPP-API-1",
}


def _token(world: Any, username: str) -> str:
    return api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")


def _client(world: Any, username: str, **headers: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {_token(world, username)}", **headers)


def _post(client: Client, path: str, body: dict[str, Any], **extra: Any) -> Any:
    return client.post(path, body, content_type="application/json", **extra)


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/centers"),
        ("get", "/api/v1/subjects"),
        ("post", "/api/v1/subjects"),
        ("get", "/api/v1/subjects/BDX-001"),
        ("get", "/api/v1/subjects/BDX-001/steps"),
        ("post", "/api/v1/subjects/BDX-001/transitions"),
        ("post", "/api/v1/subjects/BDX-001/eligibility"),
        ("get", "/api/v1/subjects/BDX-001/audit"),
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ct_not-a-real-token", "Bearer ", "Token ct_x", "Basic YmR4LmNvb3JkaW5hdG9yOng="],
    ids=["none", "bad", "empty", "wrong-scheme", "basic"],
)
def test_every_endpoint_refuses_without_a_valid_token(
    world: Any, method: str, path: str, authorization: str | None
) -> None:
    subject = world.new_subject("BDX")
    assert subject.code == "BDX-001"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    before = (Subject.objects.count(), PathwayEvent.objects.count())
    response = getattr(Client(**headers), method)(path, {}, content_type="application/json")
    _assert_error(response, 401, "unauthenticated")
    assert (Subject.objects.count(), PathwayEvent.objects.count()) == before


def test_a_browser_session_is_not_an_api_credential(world: Any) -> None:
    """The API takes tokens only: a logged-in session cookie (CSRF-prone) does not authenticate."""
    client = world.client_for("bdx.coordinator")
    assert client.get("/subjects/").status_code == 200
    _assert_error(client.get("/api/v1/subjects"), 401, "unauthenticated")


def test_valid_token_authenticates_and_records_its_use(world: Any) -> None:
    token = _token(world, "bdx.coordinator")
    row = ApiToken.objects.get(prefix=token[:8])
    assert row.last_used_at is None
    assert token not in {row.token_sha256, row.prefix}  # the clear token is never stored
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/centers")
    assert response.status_code == 200
    assert [(c["code"], c["my_role"]) for c in response.json()["items"]] == [("BDX", "coordinator")]
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_revoked_token_and_inactive_user_are_refused(world: Any) -> None:
    token = _token(world, "bdx.coordinator")
    ApiToken.objects.filter(prefix=token[:8]).update(revoked=True)
    _assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/centers"), 401, "unauthenticated")

    other = _token(world, "bdx.investigator")
    user = world.users["bdx.investigator"]
    user.is_active = False
    user.save(update_fields=["is_active"])
    _assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {other}").get("/api/v1/centers"), 401, "unauthenticated")


# --- subjects -----------------------------------------------------------------------------------


def test_create_subject_gives_the_next_code_of_the_center(world: Any) -> None:
    world.new_subject("BDX")
    world.new_subject("LIL")
    client = _client(world, "bdx.coordinator")
    response = _post(client, "/api/v1/subjects", NEW_SUBJECT)
    assert response.status_code == 201
    body = response.json()
    assert body["code"] == "BDX-002"
    assert body["center"] == "BDX" and body["state"] == State.PRE_SCREENING.value
    assert body["next_step"] == Step.START_SCREENING.value
    assert body["identity"] == {
        k: NEW_SUBJECT[k] for k in ("family_name", "given_names", "birth_date", "hospital_number")
    }
    assert Subject.objects.get(code="BDX-002").center.code == "BDX"
    assert AuditEntry.objects.filter(subject_code="BDX-002", event="subject.created").count() == 1
    again = _post(client, "/api/v1/subjects", {**NEW_SUBJECT, "hospital_number": "IPP-API-2"})
    assert again.status_code == 201 and again.json()["code"] == "BDX-003"
    listed = client.get("/api/v1/subjects").json()["items"]
    assert [s["code"] for s in listed] == ["BDX-001", "BDX-002", "BDX-003"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"birth_date": "2999-01-01"}, 422, "identity_birth_date"),
        ({"family_name": "   "}, 422, "identity_incomplete"),
        ({"birth_date": "not-a-date"}, 422, "invalid_input"),
        ({"center": "LIL"}, 404, "not_found"),
        ({"center": "ZZZ"}, 404, "not_found"),
    ],
)
def test_create_subject_refusals(world: Any, change: dict[str, str], status: int, code: str) -> None:
    client = _client(world, "bdx.coordinator")
    _assert_error(_post(client, "/api/v1/subjects", {**NEW_SUBJECT, **change}), status, code)
    assert Subject.objects.count() == 0


def test_missing_body_field_is_422_with_fields(world: Any) -> None:
    client = _client(world, "bdx.coordinator")
    body = _assert_error(_post(client, "/api/v1/subjects", {"center": "BDX"}), 422, "invalid_input")
    assert {f["field"] for f in body["fields"]} >= {"family_name", "given_names", "birth_date", "hospital_number"}


def test_unknown_state_filter_is_a_422(world: Any) -> None:
    client = _client(world, "bdx.coordinator")
    _assert_error(client.get("/api/v1/subjects", {"state": "nowhere"}), 422, "unknown_state")
    world.new_subject("BDX", State.SCREENING)
    world.new_subject("BDX")
    screening = client.get("/api/v1/subjects", {"state": "screening"}).json()["items"]
    assert [s["state"] for s in screening] == ["screening"]


# --- transitions and their error codes ----------------------------------------------------------


def _transition(client: Client, code: str, step: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
    return _post(client, f"/api/v1/subjects/{code}/transitions", {"step": step, "data": data or {}}, **extra)


def test_unknown_step_is_422_unknown_step(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.coordinator")
    _assert_error(_transition(client, subject.code, "teleport"), 422, "unknown_step")
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_skipped_step_is_409_wrong_state_in_french(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.investigator")
    french = _assert_error(
        _transition(
            client, subject.code, "include", {"password": DEMO_PASSWORD}, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"
        ),
        409,
        "wrong_state",
    )
    assert "n'est pas possible au statut" in french["message"] and "Pré-screening" in french["message"]
    english = _assert_error(
        _transition(client, subject.code, "include", {"password": DEMO_PASSWORD}), 409, "wrong_state"
    )
    assert "is not possible while the subject is" in english["message"]
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value
    assert not PathwayEvent.objects.filter(subject=subject).exists()
    assert AuditEntry.objects.filter(subject_code=subject.code, event="pathway.step_refused").count() == 2


def test_invalid_data_is_422_with_fields(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.coordinator")
    body = _assert_error(
        _transition(
            client,
            subject.code,
            "start_screening",
            {"document_version": "9.9", "language": "fr", "signed_on": "yesterday"},
        ),
        422,
        "invalid_input",
    )
    assert {f["field"] for f in body["fields"]} == {"document_version", "signed_on"}
    assert all(f["message"] for f in body["fields"])
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_missing_required_data_is_422_with_fields(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.coordinator")
    body = _assert_error(_transition(client, subject.code, "start_screening"), 422, "invalid_input")
    assert {f["field"] for f in body["fields"]} == {"document_version", "language", "signed_on"}


def test_unknown_data_field_is_422(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.coordinator")
    body = _assert_error(
        _transition(client, subject.code, "withdraw", {"reason": "x", "override_guards": True}), 422, "unknown_field"
    )
    assert "override_guards" in body["message"]
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_malformed_transition_body_is_422(world: Any) -> None:
    subject = world.new_subject("BDX")
    client = _client(world, "bdx.coordinator")
    body = _assert_error(
        _post(client, f"/api/v1/subjects/{subject.code}/transitions", {"data": {}}), 422, "invalid_input"
    )
    assert "step" in {f["field"] for f in body["fields"]}
    raw = client.post(f"/api/v1/subjects/{subject.code}/transitions", "{not json", content_type="application/json")
    _assert_error(raw, 400, "bad_request")
    assert Subject.objects.get(pk=subject.pk).state == State.PRE_SCREENING.value


def test_screening_to_inclusion_through_the_api(world: Any) -> None:
    subject = world.new_subject("BDX")
    coordinator = _client(world, "bdx.coordinator")
    investigator = _client(world, "bdx.investigator")
    today = subject.created_at.date().isoformat()
    screened = _transition(
        coordinator, subject.code, "start_screening", {"document_version": "1.0", "language": "fr", "signed_on": today}
    )
    assert screened.status_code == 200 and screened.json()["state"] == State.SCREENING.value
    steps = [s["step"] for s in investigator.get(f"/api/v1/subjects/{subject.code}/steps").json()["items"]]
    assert steps[0] == Step.CONFIRM_ELIGIBILITY.value
    criteria = world.protocol.criteria
    verdict = _post(investigator, f"/api/v1/subjects/{subject.code}/eligibility", api_payload())
    assert verdict.status_code == 200 and verdict.json()["verdict"] == "eligible"
    assert len(verdict.json()["criteria"]) == len(criteria)
    assert _transition(investigator, subject.code, "confirm_eligibility").json()["state"] == State.ELIGIBLE.value
    included = _transition(investigator, subject.code, "include", {"password": DEMO_PASSWORD})
    assert included.status_code == 200 and included.json()["state"] == State.INCLUDED.value
    event = PathwayEvent.objects.get(subject=subject, step="include")
    assert event.signature is not None and event.signature.signer == world.users["bdx.investigator"]
    audit = investigator.get(f"/api/v1/subjects/{subject.code}/audit").json()["items"]
    assert [e["sequence"] for e in audit] == sorted(e["sequence"] for e in audit)
    assert {"subject.created", "consent.recorded", "eligibility.assessed", "pathway.step", "signature.applied"} <= {
        e["event"] for e in audit
    }


def test_inclusion_with_wrong_password_is_409_and_audited(world: Any) -> None:
    subject = world.new_subject("BDX", State.ELIGIBLE)
    client = _client(world, "bdx.investigator")
    body = _assert_error(
        _transition(client, subject.code, "include", {"password": "not-my-password"}), 409, "wrong_password"
    )
    assert "password" in body["message"]
    assert Subject.objects.get(pk=subject.pk).state == State.ELIGIBLE.value
    assert not PathwayEvent.objects.filter(subject=subject, step="include").exists()
    failed = AuditEntry.objects.filter(subject_code=subject.code, event="signature.failed").get()
    assert failed.actor_username == "bdx.investigator" and "wrong_password" in failed.changes_json
    assert not AuditEntry.objects.filter(subject_code=subject.code, event="signature.applied").exists()


def test_ineligible_verdict_blocks_confirmation_with_409(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    client = _client(world, "bdx.investigator")
    refused = _post(client, f"/api/v1/subjects/{subject.code}/eligibility", api_payload(cd3=99.0)).json()
    assert refused["verdict"] == "not_eligible"
    _assert_error(_transition(client, subject.code, "confirm_eligibility"), 409, "eligibility_not_met")
    assert Subject.objects.get(pk=subject.pk).state == State.SCREENING.value


# --- OpenAPI --------------------------------------------------------------------------------------

PATHS = (
    "/api/v1/centers",
    "/api/v1/subjects",
    "/api/v1/subjects/{code}",
    "/api/v1/subjects/{code}/steps",
    "/api/v1/subjects/{code}/transitions",
    "/api/v1/subjects/{code}/eligibility",
    "/api/v1/subjects/{code}/audit",
)


def test_openapi_schema_lists_every_endpoint_with_bearer_auth() -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "cartrial API"
    assert set(PATHS) <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/subjects"]) == {"get", "post"}
    assert "post" in schema["paths"]["/api/v1/subjects/{code}/transitions"]
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert all(op.get("security") for path in PATHS for op in schema["paths"][path].values())


def test_docs_page_answers_and_points_to_the_schema() -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.content.decode()


def test_refused_registration_is_recorded_in_the_audit_trail(world: Any) -> None:
    from cartrial.apps.audit.models import AuditEntry

    client = _client(world, "bdx.pharmacist")
    response = _post(client, "/api/v1/subjects", NEW_SUBJECT)
    assert response.status_code == 403
    assert Subject.objects.count() == 0
    refusal = AuditEntry.objects.get(event="access.refused", entity="center", entity_id="BDX")
    assert refusal.actor_username == "bdx.pharmacist" and refusal.role == "pharmacist"
    assert "register_subject" in refusal.changes_json
