"""The jobs API typed by the registered kinds (issue 12, item 8): the request's body is one variant
per kind, chosen by `kind`, whose `parameters` are the kind's schema; the kind's `check`/`resolve`
still applies its rules with its codes; a job reads back its parameters and result with the keys
the kind stored; the list is a page with `since` read from the jobs' own times.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from django.test import Client

from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.services import Actor
from cartrial.apps.exports.jobs import export_job_run
from cartrial.apps.jobs.kinds import AUDIT_VERIFY, audit_verify_run
from cartrial.apps.jobs.models import Job
from cartrial.apps.jobs.registry import job_kind, job_kinds
from cartrial.apps.planning.jobs import (
    PLAN_NETWORK,
    TIME_LIMIT_RANGE_S,
    instance_json_schema,
    plan_network_run,
    plan_parameters,
)
from cartrial.apps.simulation.jobs import (
    SIMULATE_NETWORK,
    PolicyName,
    SimulatedCenter,
    SimulatedFacility,
    SimulationOverrides,
    simulate_network_run,
    simulate_parameters,
)
from cartrial.config.api import api
from cartrial.domain.planning import instance_to_json
from cartrial.domain.planning.generate import generated_instance
from cartrial.domain.simulation import POLICIES, CenterParameters, FacilityParameters, SimulationParameters
from cartrial.domain.simulation.parameters import CENTER_RANGES, FACILITY_RANGES, PARAMETER_RANGES

pytestmark = pytest.mark.django_db

SPONSOR = "sponsor.admin"
DATA_MANAGER = "dm.datamanager"
INVESTIGATOR = "bdx.investigator"
COORDINATOR = "bdx.coordinator"
KINDS = (AUDIT_VERIFY, "export_data", PLAN_NETWORK, SIMULATE_NETWORK)


class _Silent:
    def __call__(self, percent: float, message: object = None) -> None:
        return None

    def step(self, done: int, total: int, message: object = None) -> None:
        return None


def _api(world: Any, username: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="jobs")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _post(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/jobs", body, content_type="application/json")


def _instance() -> dict[str, Any]:
    return instance_to_json(generated_instance(2, 4, 1, 1))


# --- the OpenAPI document ---------------------------------------------------------------------------


def test_the_request_is_one_variant_per_registered_kind_chosen_by_kind() -> None:
    schema = api.get_openapi_schema()
    body = schema["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    components = schema["components"]["schemas"]
    mapping = body["discriminator"]["mapping"]
    assert body["discriminator"]["propertyName"] == "kind" and set(mapping) == set(KINDS)
    assert [v["$ref"] for v in body["oneOf"]] == [mapping[code] for code in sorted(KINDS)]
    for code, reference in mapping.items():
        variant = components[reference.rsplit("/", 1)[-1]]
        assert variant["properties"]["kind"]["const"] == code
        parameters = variant["properties"]["parameters"]
        named = parameters.get("$ref") or parameters["allOf"][0]["$ref"]
        assert named.rsplit("/", 1)[-1] == job_kind(code).parameters_schema.__name__  # type: ignore[union-attr]
    # A job's parameters and result are typed by the same schemas.
    job = components["JobOut"]["properties"]
    for field, attribute in (("parameters", "parameters_schema"), ("result", "result_schema")):
        named = {part.get("$ref", "").rsplit("/", 1)[-1] for part in job[field]["anyOf"]}
        assert named == {getattr(kind, attribute).__name__ for kind in job_kinds()} | {""}


def test_the_instance_is_the_planning_contracts_schema_without_references() -> None:
    schema = api.get_openapi_schema()
    instance = schema["components"]["schemas"]["PlanNetworkParameters"]["properties"]["instance"]
    text = json.dumps(instance)
    assert "$defs" not in text and "$ref" not in text and "$id" not in text
    assert instance["required"] == instance_json_schema()["required"]
    start = instance["properties"]["start_date"]
    assert start["pattern"] == "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    parameters = schema["components"]["schemas"]["PlanNetworkParameters"]["properties"]
    low, high = TIME_LIMIT_RANGE_S
    assert (parameters["time_limit_s"]["minimum"], parameters["time_limit_s"]["maximum"]) == (low, high)


def test_the_simulation_overrides_are_every_parameter_with_the_domains_ranges() -> None:
    """Generated from the parameters and their ranges: one field per parameter, no range written twice."""
    assert set(SimulationOverrides.model_fields) == {f.name for f in fields(SimulationParameters)}
    assert set(SimulatedCenter.model_fields) == {f.name for f in fields(CenterParameters)}
    assert set(SimulatedFacility.model_fields) == {f.name for f in fields(FacilityParameters)}
    assert get_args(PolicyName) == POLICIES
    for model, ranges in (
        (SimulationOverrides, PARAMETER_RANGES),
        (SimulatedCenter, CENTER_RANGES),
        (SimulatedFacility, FACILITY_RANGES),
    ):
        properties = model.model_json_schema()["properties"]
        for name, (low, high) in ranges.items():
            assert (properties[name]["minimum"], properties[name]["maximum"]) == (low, high), name
    assert SimulationOverrides.model_json_schema()["properties"]["months"]["type"] == "integer"
    assert SimulationOverrides.model_json_schema()["properties"]["screen_failure_rate"]["type"] == "number"


# --- requests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": AUDIT_VERIFY, "parameters": {"x": 1}}, "parameters.x"),
        ({"kind": "fold_proteins"}, "kind"),
        ({"parameters": {}}, "kind"),
        ({"kind": PLAN_NETWORK}, "parameters"),
        ({"kind": PLAN_NETWORK, "parameters": {"solver": "greedy"}}, "parameters.instance"),
        ({"kind": PLAN_NETWORK, "parameters": {"instance": "plan.json"}}, "parameters.instance"),
        ({"kind": PLAN_NETWORK, "parameters": {"instance": {}, "solver": "simplex"}}, "parameters.solver"),
        ({"kind": PLAN_NETWORK, "parameters": {"instance": {}, "time_limit_s": 601}}, "parameters.time_limit_s"),
        ({"kind": PLAN_NETWORK, "parameters": {"instance": {}, "time_limit_s": "30"}}, "parameters.time_limit_s"),
        ({"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"months": 500}}}, "parameters.overrides.months"),
        ({"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"months": 6.5}}}, "parameters.overrides.months"),
        ({"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"months": None}}}, "parameters.overrides.months"),
        (
            {"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"centers": [{"id": "BDX", "colour": "blue"}]}}},
            "parameters.overrides.centers.0.colour",
        ),
        (
            {"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"facilities": [{"id": "LAB", "lines": 0}]}}},
            "parameters.overrides.facilities.0.lines",
        ),
        ({"kind": SIMULATE_NETWORK, "parameters": {"replications": 101}}, "parameters.replications"),
        ({"kind": SIMULATE_NETWORK, "parameters": {"policies": ["random"]}}, "parameters.policies.0"),
        ({"kind": "export_data", "parameters": {"format": "sas"}}, "parameters.format"),
        ({"kind": "export_data", "parameters": {"format": "odm", "colour": "blue"}}, "parameters.colour"),
    ],
)
def test_a_request_outside_its_kinds_schema_is_refused_naming_the_field_as_sent(
    world: Any, body: dict[str, Any], field: str
) -> None:
    before = Job.objects.count()
    refused = _post(_api(world, SPONSOR), body)
    assert refused.status_code == 422, refused.content
    answer = refused.json()
    assert answer["code"] == "invalid_input"
    assert [f["field"] for f in answer["fields"]] == [field]
    assert Job.objects.count() == before


@pytest.mark.parametrize(
    ("username", "body", "code", "item"),
    [
        # What the schema cannot say, the kind's check says, with its own code and the item.
        (
            SPONSOR,
            {"kind": PLAN_NETWORK, "parameters": {"instance": {"start_date": "2027-01-04"}}},
            "instance_invalid",
            "instance",
        ),
        (
            SPONSOR,
            {"kind": SIMULATE_NETWORK, "parameters": {"overrides": {"remanufacture_share": 0.9}}},
            "simulation_parameter_invalid",
            "remanufacture_share",
        ),
        (
            INVESTIGATOR,
            {"kind": "export_data", "parameters": {"format": "odm", "since": "2026-11-01T08:00"}},
            "export_since_without_offset",
            "since",
        ),
    ],
)
def test_the_kinds_check_still_applies_its_rules(
    world: Any, username: str, body: dict[str, Any], code: str, item: str
) -> None:
    before = Job.objects.count()
    refused = _post(_api(world, username), body)
    assert refused.status_code == 422, refused.content
    assert (refused.json()["code"], refused.json()["item"]) == (code, item)
    assert Job.objects.count() == before


def test_each_kind_is_requested_with_what_its_page_would_store(world: Any) -> None:
    sponsor = _api(world, SPONSOR)
    instance = _instance()
    plan = _post(sponsor, {"kind": PLAN_NETWORK, "parameters": {"instance": instance, "solver": "greedy"}})
    assert plan.status_code == 202, plan.content
    job = Job.objects.get(pk=plan.json()["id"])
    assert job.parameters == plan_parameters({"instance": instance, "solver": "greedy"})
    assert plan.json()["parameters"] == job.parameters  # read back as stored, defaults included

    asked = {"overrides": {"months": 2, "centers": [{"id": "BDX", "arrivals_per_month": 3}]}, "policies": ["greedy"]}
    simulate = _post(sponsor, {"kind": SIMULATE_NETWORK, "parameters": asked})
    assert simulate.status_code == 202, simulate.content
    job = Job.objects.get(pk=simulate.json()["id"])
    assert job.parameters == simulate_parameters(asked)
    # Overrides left out stay left out (not null): the protocol's defaults apply.
    assert simulate.json()["parameters"]["overrides"] == asked["overrides"]

    export = _post(_api(world, INVESTIGATOR), {"kind": "export_data", "parameters": {"format": "fhir"}})
    assert export.status_code == 202, export.content
    job = Job.objects.get(pk=export.json()["id"])
    assert job.parameters["centers"] == [] and job.parameters["requester"]["username"] == INVESTIGATOR
    # The access resolved for the requester is stored, not shown: the API shows what was asked.
    shown = export.json()["parameters"]
    assert shown == {"format": "fhir", "centers": [], "subject": None, "since": None}

    audit = _post(sponsor, {"kind": AUDIT_VERIFY})
    assert audit.status_code == 202 and audit.json()["parameters"] == {} and audit.json()["status"] == "queued"


def test_a_kind_is_requested_only_by_the_roles_of_its_action(world: Any) -> None:
    before = Job.objects.count()
    refused = _post(_api(world, COORDINATOR), {"kind": PLAN_NETWORK, "parameters": {"instance": _instance()}})
    assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
    assert Job.objects.count() == before


# --- reads ------------------------------------------------------------------------------------------------


def _done(world: Any, username: str, kind: str, parameters: dict[str, Any], result: dict[str, Any]) -> Job:
    now = datetime.now(UTC)
    return Job.objects.create(
        kind=kind,
        parameters=parameters,
        status=Job.Status.DONE,
        progress_percent=100,
        result=json.loads(json.dumps(result)),
        requested_by=world.users[username],
        requester_role="sponsor_admin",
        created_at=now,
        started_at=now,
        finished_at=now,
    )


def test_a_finished_job_of_each_kind_reads_its_result_with_the_keys_stored(
    world: Any, settings: Any, tmp_path: Path
) -> None:
    settings.CARTRIAL_EXPORT_DIR = tmp_path
    plan = plan_parameters({"instance": _instance(), "time_limit_s": 1})
    simulate = simulate_parameters({"overrides": {"months": 1}, "policies": ["greedy"]})
    export = job_kind("export_data").resolve({"format": "csv"}, world.actor(DATA_MANAGER))  # type: ignore[misc]
    jobs = [
        _done(world, SPONSOR, PLAN_NETWORK, plan, dict(plan_network_run(plan, _Silent()).result)),
        _done(world, SPONSOR, SIMULATE_NETWORK, simulate, dict(simulate_network_run(simulate, _Silent()).result)),
        _done(world, SPONSOR, AUDIT_VERIFY, {}, dict(audit_verify_run({}, _Silent()).result)),
        _done(world, DATA_MANAGER, "export_data", export, dict(export_job_run(export, _Silent()).result)),
    ]
    sponsor = _api(world, SPONSOR)
    for job in jobs:
        answer = sponsor.get(f"/api/v1/jobs/{job.pk}")
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert body["result"] == job.result, job.kind
        assert body["status"] == "done" and body["kind"] == job.kind
    shown = sponsor.get(f"/api/v1/jobs/{jobs[3].pk}").json()["parameters"]
    assert shown == {"format": "csv", "centers": [], "subject": None, "since": None}


def test_the_list_is_a_page_of_jobs_changed_since(world: Any) -> None:
    cut = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    hour = timedelta(hours=1)

    def job(created: datetime, finished: datetime | None, status: str) -> Job:
        return Job.objects.create(
            kind=AUDIT_VERIFY,
            parameters={},
            status=status,
            requested_by=world.users[SPONSOR],
            created_at=created,
            started_at=created if finished else None,
            finished_at=finished,
            result={"intact": True, "checked": 1, "head": "0" * 64, "first_break": None} if finished else None,
        )

    old = job(cut - 3 * hour, cut - 2 * hour, "done")  # before the cut: left out
    ended_after = job(cut - hour, cut + hour, "done")  # asked before, finished after: changed
    new = job(cut + 2 * hour, None, "queued")
    sponsor = _api(world, SPONSOR)

    everything = sponsor.get("/api/v1/jobs").json()
    assert [j["id"] for j in everything["items"]] == [new.pk, ended_after.pk, old.pk]
    assert (everything["total"], everything["next_offset"]) == (3, None)
    assert all(j["parameters"] is None and j["result"] is None for j in everything["items"])

    since = sponsor.get("/api/v1/jobs", {"since": cut.isoformat()}).json()
    assert [j["id"] for j in since["items"]] == [new.pk, ended_after.pk] and since["total"] == 2

    first = sponsor.get("/api/v1/jobs", {"limit": 1}).json()
    assert ([j["id"] for j in first["items"]], first["total"], first["next_offset"]) == ([new.pk], 3, 1)
    second = sponsor.get("/api/v1/jobs", {"limit": 1, "offset": 1}).json()
    assert [j["id"] for j in second["items"]] == [ended_after.pk]

    done = sponsor.get("/api/v1/jobs", {"status": "done", "since": cut.isoformat()}).json()
    assert [j["id"] for j in done["items"]] == [ended_after.pk]
    refused = sponsor.get("/api/v1/jobs", {"status": "paused"})
    assert refused.status_code == 422 and [f["field"] for f in refused.json()["fields"]] == ["status"]
