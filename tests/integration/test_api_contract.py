"""The API is complete and typed (issue 12, item 8), read from its OpenAPI schema and its pages:

- every page of the site (each URL name) names the API operations that do what the page offers
  (reads and actions); only the session pages (log in and out, language) have none;
- every request and success body is typed: no object without declared fields or typed values,
  no value of any type;
- every operation declares the one error body (`ErrorOut`) for each error status;
- every list is a page (`items`, `total`, `next_offset`) read with `limit`, `offset` and `since`,
  and a bad window or a `since` without its offset is refused with 422, naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from cartrial.apps.api_contract import ERROR_STATUSES
from cartrial.config.api import api

# Each page (its URL name) and the operations (their function names in the apps' api.py) that
# offer the same reads and actions through the API.
PAGE_OPERATIONS: dict[str, list[str]] = {
    # administration (issue 13)
    "administration:centers": ["admin_centers", "admin_center_create"],
    "administration:center": ["admin_center_update"],
    "administration:users": ["admin_users", "admin_user_create"],
    "administration:user": [
        "admin_user_update",
        "admin_membership_grant",
        "admin_membership_change",
        "admin_user_suspend",
        "admin_user_reinstate",
        "admin_token_create",
    ],
    "administration:tokens": ["admin_tokens", "admin_token_revoke"],
    "administration:audit": ["study_audit"],
    "administration:audit_csv": ["study_audit_export"],
    # pathway
    "subjects:home": ["subject_list"],
    "subjects:list": ["subject_list"],
    "subjects:create": ["centers", "subject_create"],
    "subjects:detail": ["subject_detail", "subject_steps", "subject_timeline"],
    "subjects:eligibility": ["subject_eligibility_read", "subject_eligibility_preview", "subject_eligibility"],
    "subjects:consent": ["consent_read", "consent_reconsent", "consent_withdrawal"],
    "subjects:step": ["subject_step_form", "subject_transition"],
    "subjects:audit": ["subject_audit"],
    "subjects:correction": ["correction_create", "correction_list"],
    # clinical
    "clinical:calculators": ["calculator_list"],
    "clinical:calculator": ["calculator_describe", "calculator_compute"],
    "clinical:screening_log": ["screening_log_read"],
    "clinical:screening_log_csv": ["screening_log_export"],
    "clinical:consort": ["consort_flow_read"],
    "clinical:reconsent": ["reconsent_list"],
    # logistics
    "logistics:dashboard": [
        "logistics_dashboard",
        "logistics_deviations",
        "logistics_deviation_counts",
        "logistics_vein_to_vein",
    ],
    "logistics:subject": ["logistics_detail", "logistics_action_fields"],
    "logistics:action": ["logistics_action", "logistics_action_fields", "logistics_temperature_log"],
    "logistics:labels": ["logistics_labels"],
    "logistics:deviation_move": ["logistics_deviation_move"],
    # biology
    "biology:cohort": ["kinetics_cohort"],
    "biology:subject": ["observations_list", "assessment"],
    "biology:panel": ["assessment"],
    "biology:entry": ["observations_record", "kinetic_markers"],
    "biology:import": ["observations_import", "kinetic_markers"],
    # casebook
    "casebook:grid": ["study_grid"],
    "casebook:worklist": ["worklist"],
    "casebook:queries": ["queries_list", "queries_summary", "query_answer", "query_close", "query_reopen"],
    "casebook:subject": [
        "visits_list",
        "disease_activity",
        "casebook_read",
        "casebook_lock",
        "casebook_sign",
        "unscheduled_visit_add",
    ],
    "casebook:visit": ["visit_read", "visit_record", "visit_lock", "visit_unlock"],
    "casebook:form": [
        "form_get",
        "form_describe",
        "form_put",
        "form_queries",
        "query_raise",
        "query_answer",
        "query_close",
        "query_reopen",
        "form_verify",
        "form_lock",
        "form_unlock",
    ],
    "casebook:verify": ["verification_read", "form_verify"],
    "casebook:history": ["form_history", "form_describe"],
    # dashboards, alerts
    "dashboards:study": ["study_dashboard"],
    "dashboards:safety": ["safety_dashboard"],
    "dashboards:time_courses": ["time_courses"],
    "alerts:list": ["alerts_list", "alert_acknowledge"],
    # safety, toxicity
    "safety:terms": ["ctcae_terms"],
    "safety:subject": ["adverse_events_list", "lab_proposals_list", "lab_proposal_accept", "dlt_read", "dlt_decide"],
    "safety:new": ["adverse_event_create", "ctcae_terms"],
    "safety:adverse_event": [
        "adverse_event_read",
        "adverse_event_update",
        "sae_report_create",
        "relatedness_create",
    ],
    "toxicity:subject": ["assessments_list", "assessment_record", "episodes"],
    "toxicity:assessment": ["assessment_read", "assessment_correct"],
    # calendars
    "calendars:month": ["calendar_month"],
    "calendars:week": ["calendar_week"],
    "calendars:center_ics": ["center_calendar"],
    "calendars:subject_ics": ["subject_calendar"],
    # jobs, simulation, exports
    "jobs:list": ["jobs_list", "job_request"],
    "jobs:detail": ["job_get"],
    "jobs:progress": ["job_get"],
    "jobs:file": ["job_file"],
    "simulation:page": ["job_request"],
    "simulation:job_result": ["job_get"],
    "exports:export_list": ["export_request", "export_list", "export_read"],
    "exports:export_download": ["export_download"],
    # planning
    "planning:capacities": ["capacities", "capacities_change", "capacity_history"],
    "planning:plan": ["job_request"],
    "planning:plan_result": ["job_get"],
    "planning:reservations": ["reservations"],
    "planning:replanning": ["proposals", "proposal_accept", "proposal_reject"],
    "planning:booking": [
        "subject_bookings",
        "booking_create",
        "booking_delete",
        "slots",
        "proposals",
        "proposal_request",
    ],
}

# Pages of the browser session itself: the API authenticates by token and takes its language
# from Accept-Language. The second factor completes the session's sign-in (a token is itself the
# product of a sign-in), and the idle warning's refresh renews the session.
SESSION_PAGES = {
    "login",
    "logout",
    "set_language",
    "otp_verify",
    "otp_enrol",
    "otp_security",
    "session_refresh",
}


def _page_names(patterns: list[Any], namespace: str | None = None) -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or namespace
            yield from _page_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


@cache
def _schema() -> dict[str, Any]:
    """The OpenAPI schema, built once for the module (building it takes seconds; tests only read it)."""
    return api.get_openapi_schema()


def _operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each operation by its function's name: (method, path, operation)."""
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, operations in _schema()["paths"].items():
        for method, operation in operations.items():
            name = operation["operationId"].rsplit("_api_", 1)[-1]
            assert name not in found, f"two operations named {name}: give one a clearer name"
            found[name] = (method.upper(), path, operation)
    return found


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _untyped(schema: dict[str, Any], node: Any, where: str, seen: set[str]) -> Iterator[str]:
    """The places in `node` whose value may be anything: an object without declared fields or
    typed values, or a value with no type at all."""
    if isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        seen = seen | {name}
        node = _resolve(schema, node)
    if node is True or node == {} or (isinstance(node, dict) and set(node) <= {"title", "description", "default"}):
        yield where
        return
    if not isinstance(node, dict):
        return
    for combined in ("anyOf", "oneOf", "allOf"):
        for i, part in enumerate(node.get(combined, [])):
            yield from _untyped(schema, part, f"{where}|{i}", seen)
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        if not node.get("properties") and (extra is None or extra is True or extra == {}):
            yield f"{where} (an object of anything)"
        for name, child in node.get("properties", {}).items():
            yield from _untyped(schema, child, f"{where}.{name}", seen)
        if isinstance(extra, dict) and extra:
            yield from _untyped(schema, extra, f"{where}.*", seen)
    if node.get("type") == "array":
        yield from _untyped(schema, node.get("items", {}), f"{where}[]", seen)


def _bodies(operation: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        yield f"request {media}", content.get("schema", {})
    for status, response in operation.get("responses", {}).items():
        if 200 <= int(status) < 300:
            for media, content in response.get("content", {}).items():
                yield f"{status} {media}", content.get("schema", {})


def test_every_page_names_its_api_operations() -> None:
    pages = {name for name in _page_names(get_resolver().url_patterns) if not name.startswith("api:")}
    pages -= SESSION_PAGES
    assert pages == set(PAGE_OPERATIONS), "each page must say which API operations offer what it offers"
    operations = _operations()
    unknown = {page: [n for n in names if n not in operations] for page, names in PAGE_OPERATIONS.items()}
    assert not {p: n for p, n in unknown.items() if n}, "named operations that the API does not have"
    missing = sorted(page for page, names in PAGE_OPERATIONS.items() if not names)
    assert not missing, f"pages whose reads and actions the API does not offer: {missing}"


@pytest.mark.parametrize("name", sorted(_operations()))
def test_every_body_is_typed(name: str) -> None:
    method, path, operation = _operations()[name]
    schema = _schema()
    loose = [f"{where}: {place}" for where, body in _bodies(operation) for place in _untyped(schema, body, "", set())]
    assert not loose, f"{method} {path} has values of any type: {loose}"


@pytest.mark.parametrize("name", sorted(_operations()))
def test_every_operation_declares_its_error_answers(name: str) -> None:
    method, path, operation = _operations()[name]
    responses = operation["responses"]
    for status in ERROR_STATUSES:
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, f"{method} {path} {status}"


def _is_page(schema: dict[str, Any], node: Any) -> bool:
    node = _resolve(schema, node)
    return isinstance(node, dict) and {"items", "total", "next_offset"} <= set(node.get("properties", {}))


@pytest.mark.parametrize("name", sorted(_operations()))
def test_every_list_is_a_page_with_since(name: str) -> None:
    method, path, operation = _operations()[name]
    schema = _schema()
    success = [body for where, body in _bodies(operation) if not where.startswith("request")]
    for body in success:
        assert _resolve(schema, body).get("type") != "array", f"{method} {path}: a list must be a Page"
    if any(_is_page(schema, body) for body in success):
        parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert {"limit", "offset", "since"} <= parameters, f"{method} {path} pages without limit/offset/since"


def test_the_contract_sees_a_page_and_refuses_a_loose_object() -> None:
    """The checks above can fail: an open object and a page are recognised as such."""
    schema: dict[str, Any] = {"components": {"schemas": {"P": {"properties": {"items": {}, "total": {}}}}}}
    assert list(_untyped(schema, {"type": "object"}, "", set())) == [" (an object of anything)"]
    assert list(_untyped(schema, {"type": "object", "additionalProperties": True}, "", set()))
    assert not list(_untyped(schema, {"type": "object", "additionalProperties": {"type": "string"}}, "", set()))
    assert list(_untyped(schema, {"properties": {"a": {"title": "A"}}}, "", set())) == [".a"]
    page = {"properties": {"items": {"type": "array"}, "total": {"type": "integer"}, "next_offset": {}}}
    assert _is_page(schema, page) and not _is_page(schema, {"$ref": "#/components/schemas/P"})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "item"),
    [
        ("limit=0", "limit"),
        (f"limit={10**6}", "limit"),
        ("offset=-1", "offset"),
        (f"offset={10**22}", "offset"),
        ("since=2026-12-01T08:00", "since"),
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
    ],
)
def test_a_bad_window_is_refused_naming_it(world: Any, query: str, item: str) -> None:
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system("test"), user=world.users["dm.datamanager"], label="test")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"/api/v1/exports?{query}")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "invalid_input"
    assert [f["field"] for f in body["fields"]] == [item]


@pytest.mark.django_db
def test_an_instant_with_any_offset_iso_allows_is_read_in_utc(world: Any) -> None:
    """PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows (the schema fuzz found a 500
    on +21:48): `since` is turned to UTC first, the same instant either way."""
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system("test"), user=world.users["dm.datamanager"], label="test")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    far = client.get("/api/v1/kinetics/cohort?since=2026-01-02T02:25:59%2B21:48")
    utc = client.get("/api/v1/kinetics/cohort?since=2026-01-01T04:37:59Z")
    assert far.status_code == 200, far.content
    assert far.json() == utc.json()


@pytest.mark.django_db
def test_a_schema_refusal_is_said_in_the_readers_language(world: Any) -> None:
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor

    token = api_token_create(actor=Actor.system("test"), user=world.users["dm.datamanager"], label="test")
    for language, message, field in (
        ("fr", "La requête n’est pas valide : voir chaque champ.", "Doit être au moins 1."),
        ("en", "The request is not valid: see each field.", "Must be at least 1."),
    ):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE=language)
        body = client.get("/api/v1/exports?limit=0").json()
        assert (body["message"], body["fields"]) == (message, [{"field": "limit", "message": field}])
