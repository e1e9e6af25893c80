"""The clinical API beyond the calculators' contract tests (issue 12, item 8): the calculators'
typed schemas over unchanged JSON, the screening page's reads and preview, the screening log,
the CONSORT flow and the re-consent list as JSON.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from screening_data import api_payload, screen

from cartrial.apps import clock
from cartrial.apps.accounts.services import api_token_create
from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.audit.services import Actor
from cartrial.apps.clinical import selectors
from cartrial.apps.clinical.api import CALCULATOR_RESULTS
from cartrial.apps.subjects.models import EligibilityAssessment
from cartrial.config.api import api
from cartrial.domain.pathway import State
from cartrial.domain.scores.errors import CalculatorInputError
from cartrial.domain.scores.registry import CALCULATOR_NAMES, CALCULATORS, calculate, describe
from cartrial.domain.screening import SCREENING_FIELDS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "calculators"
EXAMPLE = re.compile(
    r"```console\n\$ echo '(?P<stdin>[^\n]*)' \| cartrial calc (?P<name>[a-z0-9-]+)\n(?P<output>.*?)```",
    re.DOTALL,
)


def _examples() -> list[tuple[str, dict[str, Any]]]:
    """Every documented valid input (docs/calculators), by calculator."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for match in EXAMPLE.finditer(page.read_text(encoding="utf-8")):
            payload = json.loads(match["stdin"])
            try:
                calculate(match["name"], payload)
            except CalculatorInputError:
                continue
            found.append((match["name"], payload))
    return found


def _api(world: Any, username: str, **headers: str) -> Client:
    token = api_token_create(actor=Actor.system("test"), user=world.users[username], label="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _get(client: Client, path: str, **query: object) -> Any:
    response = client.get(f"{path}?{urlencode(query)}" if query else path)
    assert response.status_code == 200, response.content
    return response.json()


# --- calculators: typed schemas, unchanged JSON -----------------------------------------------------


def test_every_calculator_has_an_output_model() -> None:
    assert set(CALCULATOR_RESULTS) == set(CALCULATOR_NAMES)
    assert {name for name, _ in _examples()} == set(CALCULATOR_NAMES)


@pytest.mark.parametrize(("name", "payload"), _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_output_model_holds_exactly_the_calculators_keys(name: str, payload: dict[str, Any]) -> None:
    """The declared output is what the calculator writes: nothing dropped, nothing added, same values."""
    result = calculate(name, payload)
    model = CALCULATOR_RESULTS[name]
    assert model.model_validate(result).model_dump(exclude_unset=True) == result
    optional = {key for key, field in model.model_fields.items() if not field.is_required()}
    assert set(model.model_fields) - optional <= set(result) <= set(model.model_fields)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "payload"), _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_compute_answers_the_contracts_json_unchanged(world: Any, name: str, payload: dict[str, Any]) -> None:
    response = _api(world, "bdx.coordinator").post(
        f"/api/v1/calculators/{name}", payload, content_type="application/json"
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response.content.decode() == json.dumps(calculate(name, payload))
    assert list(response.json()) == list(calculate(name, payload))


@pytest.mark.django_db
def test_the_calculator_descriptions_are_unchanged_and_the_list_a_page(world: Any) -> None:
    client = _api(world, "bdx.pharmacist")

    def text(value: object) -> str:  # 10 and 10.0 differ here, as they do in the JSON
        return json.dumps(value, sort_keys=True)

    for name in CALCULATOR_NAMES:
        assert text(_get(client, f"/api/v1/calculators/{name}")) == text(describe(name))
    listed = _get(client, "/api/v1/calculators")
    assert text(listed["items"]) == text([describe(name) for name in CALCULATOR_NAMES])
    assert listed["total"] == len(CALCULATOR_NAMES) and listed["next_offset"] is None
    window = _get(client, "/api/v1/calculators", limit=2, offset=2)
    assert window["items"] == [describe(name) for name in CALCULATOR_NAMES[2:4]] and window["next_offset"] == 4
    # The calculators come with a release: none changed at run time.
    assert _get(client, "/api/v1/calculators", since=clock.now().isoformat())["items"] == []
    unknown = client.get("/api/v1/calculators/apgar")
    assert unknown.status_code == 404


def test_the_schema_declares_each_calculators_input_and_output() -> None:
    schema = api.get_openapi_schema()
    operation = schema["paths"]["/api/v1/calculators/{name}"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"] == [CALCULATORS[name].input_schema() for name in CALCULATOR_NAMES]
    assert "/api/v1/calculators/{name}" in body["description"]
    output = operation["responses"][200]["content"]["application/json"]["schema"]
    resolved = schema["components"]["schemas"][output["$ref"].rsplit("/", 1)[-1]]
    assert {part["$ref"].rsplit("/", 1)[-1] for part in resolved["anyOf"]} == {
        model.__name__ for model in CALCULATOR_RESULTS.values()
    }


# --- screening: fields, read, preview, save -----------------------------------------------------------


@pytest.mark.django_db
def test_the_screening_fields_describe_the_data_the_eligibility_takes(world: Any) -> None:
    fields = _get(_api(world, "bdx.coordinator", HTTP_ACCEPT_LANGUAGE="fr"), "/api/v1/screening-fields")
    by_name = {f["name"]: f for f in fields["fields"]}
    assert list(by_name) == list(SCREENING_FIELDS)
    assert by_name["sledai2k_descriptors"]["type"] == "choices" and by_name["sledai2k_descriptors"]["nullable"]
    assert by_name["sledai2k_lookback_days"]["default"] == 10 and not by_name["sledai2k_lookback_days"]["nullable"]
    assert by_name["infection_active"]["type"] == "boolean"
    assert by_name["ana_titer"]["type"] == "integer" and by_name["ana_titer"]["maximum"] > 0
    assert [lab["analyte"] for lab in fields["labs"]] == list(selectors.SCREENING_ANALYTES)
    creatinine = fields["labs"][0]
    assert {u["unit"] for u in creatinine["units"]} >= {"umol/L", "mg/dL"}


@pytest.mark.django_db
def test_the_eligibility_read_shows_what_the_screening_page_shows(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    screen(world, subject)
    read = _get(_api(world, "cra.monitor"), f"/api/v1/subjects/{subject.code}/eligibility")
    assert read["editable"] is True and read["record"]["revision"] == 1
    assert read["record"]["data"]["sex"] == "female"
    assert {lab["analyte"] for lab in read["labs"]} == {"creatinine", "cd3"}
    assert read["evaluation"]["verdict"] == "eligible"
    assert len(read["evaluation"]["criteria"]) == len(world.protocol.criteria)
    egfr = next(s for s in read["evaluation"]["scores"] if s["calculator"] == "egfr")
    assert egfr["computed"] is True and egfr["result"]["unit"] == "mL/min/1.73m2"
    refused = _api(world, "bdx.pharmacist").get(f"/api/v1/subjects/{subject.code}/eligibility")
    assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
    outside = _api(world, "lil.coordinator").get(f"/api/v1/subjects/{subject.code}/eligibility")
    assert outside.status_code == 404


@pytest.mark.django_db
def test_the_preview_computes_the_verdict_and_stores_nothing(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    screen(world, subject)
    client = _api(world, "cra.monitor", HTTP_ACCEPT_LANGUAGE="fr")
    before = (EligibilityAssessment.objects.count(), AuditEntry.objects.count())
    preview = client.post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview", api_payload(cd3=50.0), content_type="application/json"
    )
    assert preview.status_code == 200, preview.content
    assert preview.json()["verdict"] == "not_eligible"
    failed = [c for c in preview.json()["criteria"] if c["outcome"] == "not_met"]
    assert [c["id"] for c in failed] == ["I06_CD3"] and failed[0]["values_used"]
    assert (EligibilityAssessment.objects.count(), AuditEntry.objects.count()) == before
    # Without labs, the stored ones count.
    stored = client.post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview",
        {**api_payload(), "labs": []},
        content_type="application/json",
    )
    assert stored.json()["verdict"] == "eligible"
    unknown = client.post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview",
        {**api_payload(), "data": {**api_payload()["data"], "mood": "fine"}},
        content_type="application/json",
    )
    assert unknown.status_code == 422 and [f["field"] for f in unknown.json()["fields"]] == ["mood"]
    analyte = client.post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview",
        {**api_payload(), "labs": [{**api_payload()["labs"][0], "analyte": "sodium"}]},
        content_type="application/json",
    )
    assert analyte.status_code == 422 and analyte.json()["item"] == "analyte"
    refused = _api(world, "bdx.pharmacist").post(
        f"/api/v1/subjects/{subject.code}/eligibility/preview", api_payload(), content_type="application/json"
    )
    assert refused.status_code == 403


@pytest.mark.django_db
def test_the_saved_verdict_is_typed_and_explained_in_the_requests_language(world: Any) -> None:
    subject = world.new_subject("BDX", State.SCREENING)
    english = _api(world, "bdx.coordinator").post(
        f"/api/v1/subjects/{subject.code}/eligibility", api_payload(), content_type="application/json"
    )
    french = _api(world, "bdx.coordinator", HTTP_ACCEPT_LANGUAGE="fr").post(
        f"/api/v1/subjects/{subject.code}/eligibility",
        {**api_payload(), "reason": "Saisie vérifiée"},
        content_type="application/json",
    )
    assert english.status_code == french.status_code == 200
    assert set(english.json()["criteria"][0]) == {"id", "kind", "outcome", "values_used", "explanation"}
    pairs = zip(english.json()["criteria"], french.json()["criteria"], strict=True)
    assert any(en["explanation"] != fr["explanation"] for en, fr in pairs)
    stored = EligibilityAssessment.objects.filter(subject=subject).latest("pk").result_json
    for score, kept in zip(french.json()["scores"], stored["scores"], strict=True):
        assert (score["calculator"], score["result"]) == (kept["calculator"], kept["result"])


# --- screening log, CONSORT, re-consent -------------------------------------------------------------


def _screened(world: Any) -> dict[str, Any]:
    return {
        "failed": world.new_subject("BDX", State.SCREEN_FAILED),
        "included": world.new_subject("BDX", State.INCLUDED),
        "screening": world.new_subject("BDX", State.SCREENING),
        "lille": world.new_subject("LIL", State.SCREEN_FAILED),
        "pre": world.new_subject("BDX", State.PRE_SCREENING),
    }


@pytest.mark.django_db
def test_the_screening_log_is_the_pages_rows_as_a_page(world: Any) -> None:
    subjects = _screened(world)
    client = _api(world, "bdx.coordinator")
    log = _get(client, "/api/v1/screening-log")
    csv_rows = client.get("/api/v1/screening-log.csv").content.decode().splitlines()[1:]
    assert [row["subject"] for row in log["items"]] == [line.split(",")[1] for line in csv_rows]
    by_code = {row["subject"]: row for row in log["items"]}
    assert set(by_code) == {subjects[k].code for k in ("failed", "included", "screening")}
    failed = by_code[subjects["failed"].code]
    assert failed["outcome"] == "screen_failed" and failed["failed_criteria"]
    assert all(c["text"] for c in failed["failed_criteria"])
    assert by_code[subjects["included"].code]["outcome"] == "included"
    # The monitor of BDX and LIL filters by center; a center outside the scope is a 404.
    monitor = _api(world, "cra.monitor")
    lille = _get(monitor, "/api/v1/screening-log", center="LIL")
    assert [row["subject"] for row in lille["items"]] == [subjects["lille"].code]
    outside = client.get("/api/v1/screening-log?center=LIL")
    assert outside.status_code == 404 and outside.json()["code"] == "not_found"
    refused = _api(world, "bdx.pharmacist").get("/api/v1/screening-log")
    assert refused.status_code == 403


@pytest.mark.django_db
def test_the_screening_log_since_a_cut(world: Any) -> None:
    subjects = _screened(world)
    client = _api(world, "bdx.investigator")
    cut = clock.now()
    assert _get(client, "/api/v1/screening-log", since=cut.isoformat())["items"] == []
    with clock.frozen_at(cut + timedelta(seconds=1)):
        screen(world, subjects["screening"], cd3=50.0, reason="CD3+ count re-checked")
    since = _get(client, "/api/v1/screening-log", since=cut.isoformat())["items"]
    assert [row["subject"] for row in since] == [subjects["screening"].code]
    assert since[0]["latest_verdict"] == "not_eligible"


@pytest.mark.django_db
def test_the_consort_counts_are_the_pages(world: Any) -> None:
    _screened(world)
    client = _api(world, "cra.monitor", HTTP_ACCEPT_LANGUAGE="fr")
    everything = _get(client, "/api/v1/consort")
    assert everything["center"] is None
    assert (everything["screened"], everything["screen_failed"], everything["included"]) == (4, 2, 1)
    assert everything["failed_by_criterion"] and everything["failed_by_criterion"][0]["count"] >= 1
    bordeaux = _get(client, "/api/v1/consort", center="BDX")
    assert (bordeaux["center"], bordeaux["screened"], bordeaux["screen_failed"]) == ("BDX", 3, 1)
    assert client.get("/api/v1/consort?center=PAR").status_code == 404
    assert _api(world, "lab.manufacturing").get("/api/v1/consort").status_code == 403


@pytest.mark.django_db
def test_the_reconsent_list_names_the_subjects_on_an_old_version(world: Any, tmp_path: Any, settings: Any) -> None:
    included = world.new_subject("BDX", State.INCLUDED)
    world.new_subject("LIL", State.INCLUDED)
    client = _api(world, "bdx.coordinator")
    assert _get(client, "/api/v1/reconsent")["items"] == []
    source = Path(world.protocol.path).read_text(encoding="utf-8")
    path = tmp_path / "amended.yaml"
    path.write_text(source.replace('version: "1.0"\n      language: fr', 'version: "1.1"\n      language: fr'), "utf-8")
    settings.CARTRIAL_PROTOCOL_FILE = str(path)
    due = _get(client, "/api/v1/reconsent")
    assert [(r["subject"], r["signed_version"], r["current_version"]) for r in due["items"]] == [
        (included.code, "1.0", "1.1")
    ]
    assert _get(client, "/api/v1/reconsent", since=clock.now().isoformat())["items"] == []
    assert client.get("/api/v1/reconsent?center=LIL").status_code == 404
    assert _api(world, "bdx.apheresis").get("/api/v1/reconsent").status_code == 403
