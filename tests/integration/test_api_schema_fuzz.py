"""Every operation of the API against its own OpenAPI schema (issue 13, item 8), with schemathesis.

Each operation gets a bounded number of generated requests (valid and invalid parameters and
bodies) on a database holding the demo trial, signed with the API token of one of the trial's
roles (the role is drawn with the request, so each operation is called by roles that may call it
and by roles that may not). Every answer must be declared by the schema: no 5xx, a status code the
operation declares, a content type it declares, and a body matching the declared schema.

Path parameters are drawn half from the demo's real values (subject codes, visits, forms, steps,
calculators, jobs...) so requests reach the handlers' logic and not only the 404 of an unknown
code. Slow (a few minutes): `-m "not slow"` skips it; `./run test` runs it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from schemathesis import checks

from cartrial.config.api import api

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Who calls: one user per role of the trial (Strasbourg holds subjects at most stages; the lab
# manufactures them; the monitor, data manager and sponsor reach several centers).
CALLERS = (
    "str.investigator",
    "str.coordinator",
    "str.apheresis",
    "str.pharmacist",
    "lab.manufacturing",
    "cra.monitor",
    "dm.datamanager",
    "sponsor.admin",
)

# Real values of path parameters, filled from the demo by the `demo_trial` fixture.
KNOWN: dict[str, list[Any]] = {}
TOKENS: dict[str, str] = {}


def _application(environ: dict[str, Any], start_response: Any) -> Any:
    """Django's WSGI application on the test's database connection: as Django's own test client
    does, the connection is not closed at each request (it holds the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return list(_DJANGO(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


_DJANGO = get_wsgi_application()
schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
schema.app = _application
# Bounded: a few minutes for the whole file on 2 cores. The token is the test's, never generated.
schema.config.generation.update(max_examples=12, with_security_parameters=False)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Half of the time a parameter takes one of the demo's real values (when there is one)."""
    if not path_parameters:
        return st.just(path_parameters)
    drawn: dict[str, st.SearchStrategy[Any]] = {}
    for name, value in path_parameters.items():
        known = KNOWN.get(name)
        drawn[name] = st.one_of(st.just(value), st.sampled_from(known)) if known else st.just(value)
    return st.fixed_dictionaries(drawn)


@schema.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    """The caller is drawn with the request: every role calls every operation."""

    def signed(username: str) -> Any:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKENS[username]}"}
        return case

    return st.sampled_from(CALLERS).map(signed)


@pytest.fixture(scope="module")
def demo_trial(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """The demo trial (a subject at each kind of stage) and a token per caller, for the whole
    module, undone at its end; each test's own writes are undone after it."""
    from cartrial.apps.accounts.services import api_token_create
    from cartrial.apps.audit.services import Actor
    from cartrial.demo import STAGED, build_demo, demo_epoch
    from cartrial.domain.pathway import State
    from cartrial.protocols import active_protocol

    kept = {
        State.APHERESIS_COLLECTED,
        State.PRODUCT_RELEASED,
        State.PRODUCT_RECEIVED,
        State.LYMPHODEPLETION,
        State.ACUTE_MONITORING,
        State.LONG_TERM_FOLLOW_UP,
    }
    with django_db_blocker.unblock(), transaction.atomic():
        demo = build_demo(active_protocol(), today=demo_epoch(), staged=tuple(s for s in STAGED if s[1] in kept))
        for username in CALLERS:
            TOKENS[username] = api_token_create(actor=Actor.system("test"), user=demo.users[username], label="fuzz")
        KNOWN.update(_known_values())
        yield
        transaction.set_rollback(True)
    KNOWN.clear()
    TOKENS.clear()


def _known_values() -> dict[str, list[Any]]:
    """The demo's identifiers, by the name of the path parameter that takes them."""
    from cartrial.apps.alerts.models import Alert
    from cartrial.apps.casebook.models import FormRecord, Query
    from cartrial.apps.jobs.models import Job
    from cartrial.apps.logistics.models import Deviation
    from cartrial.apps.planning.models import Booking, ReplanProposal
    from cartrial.apps.safety.models import AdverseEvent
    from cartrial.apps.subjects.models import Subject
    from cartrial.apps.toxicity.models import ToxicityAssessment
    from cartrial.domain.scores.registry import CALCULATOR_NAMES

    def first(model: Any, field: str = "pk") -> list[Any]:
        return sorted(set(model.objects.values_list(field, flat=True)[:40]))

    return {
        "code": first(Subject, "code"),
        "visit": first(FormRecord, "visit_code"),
        "form": first(FormRecord, "form_code"),
        "name": sorted(CALCULATOR_NAMES),
        "job_id": first(Job),
        "ae_id": first(AdverseEvent),
        "query_id": first(Query),
        "alert_id": first(Alert),
        "deviation_id": first(Deviation),
        "booking_id": first(Booking),
        "proposal_id": first(ReplanProposal),
        "day": first(ToxicityAssessment, "day"),
    }


_TURNS = itertools.cycle(CALLERS)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_every_answer_is_declared_by_the_schema(case: Any, demo_trial: None) -> None:
    # The examples schemathesis derives from the schema alone (its coverage phase) skip the hooks:
    # their callers take turns.
    callers = {f"Bearer {token}": username for username, token in TOKENS.items()}
    caller = callers.get((case.headers or {}).get("Authorization", "")) or next(_TURNS)
    response = case.call(headers={"Authorization": f"Bearer {TOKENS[caller]}"})
    event(f"caller {caller}")
    event(f"status {response.status_code // 100}xx")
    case.validate_response(response, checks=CHECKS)
