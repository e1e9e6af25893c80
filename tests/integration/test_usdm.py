"""The USDM v4 export of the protocol: valid against the USDM 4.0.0 JSON schema shipped in usdm4, the
DDF rules of `USDM4().validate` run on it (every rule that fires is listed in docs/exports.md), and
its content is the protocol's: one encounter per visit with its window, the forms of each visit,
the criteria. Then the import: a USDM file starts a new protocol version (`cartrial usdm import`).

The terminology is loaded once for the module (`builder`) and the document built once; variants of
the protocol reuse the builder (a build takes milliseconds).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import html
import importlib.resources
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import usdm4
from simple_error_log.errors import Errors
from typer.testing import CliRunner
from usdm4 import USDM4
from usdm4.api.wrapper import Wrapper
from usdm4.builder.builder import Builder
from usdm4.rules.results import RuleStatus

from cartrial.apps.audit.models import AuditEntry
from cartrial.apps.exports.formats import WRITERS
from cartrial.apps.exports.request import ExportFormat
from cartrial.apps.exports.selectors import export_request_resolve
from cartrial.apps.exports.usdm import protocol_design, usdm_write
from cartrial.domain.eligibility import Criterion
from cartrial.domain.errors import InvalidInput
from cartrial.domain.standards import usdm
from cartrial.domain.visits import Anchor
from cartrial.locale import translator
from cartrial.protocols import active_protocol, load_protocol

PROTOCOL = active_protocol()
DESIGN = protocol_design(PROTOCOL)
FRENCH = translator("fr")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "exports.md"
ISO_DAYS = re.compile(r"^P\d+D$")

# The rules that fire on the trial's protocol; each is explained in docs/exports.md (CDISC USDM v4).
EXPECTED_FINDINGS = {"DDF00041", "DDF00084"}


@pytest.fixture(scope="module")
def builder() -> usdm.UsdmBuilder:
    return usdm.usdm_builder()


@pytest.fixture(scope="module")
def built(builder: usdm.UsdmBuilder) -> tuple[dict[str, Any], usdm.UsdmCounts, str]:
    document, counts = usdm.usdm_document(DESIGN, builder, FRENCH, "test")
    text = usdm.usdm_json(document)
    return json.loads(text), counts, text


@pytest.fixture(scope="module")
def document(built: tuple[dict[str, Any], usdm.UsdmCounts, str]) -> dict[str, Any]:
    return built[0]


@pytest.fixture(scope="module")
def path(built: tuple[dict[str, Any], usdm.UsdmCounts, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("usdm") / "protocol.usdm.json"
    out.write_text(built[2], encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def rules(path: Path) -> Any:
    return USDM4().validate(str(path))


def _design(document: dict[str, Any]) -> dict[str, Any]:
    study_design: dict[str, Any] = document["study"]["versions"][0]["studyDesigns"][0]
    return study_design


def _timeline(document: dict[str, Any]) -> dict[str, Any]:
    timeline: dict[str, Any] = _design(document)["scheduleTimelines"][0]
    return timeline


def _french(instance: dict[str, Any], attribute: str) -> str | None:
    url = usdm.FRENCH_URL + attribute
    return next((e["valueString"] for e in instance["extensionAttributes"] if e["url"] == url), None)


def test_the_export_is_valid_against_the_usdm_4_json_schema(document: dict[str, Any]) -> None:
    schema_text = (importlib.resources.files("usdm4") / "core" / "data" / "usdm-4-0-schema.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(schema_text))
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]
    assert errors == []
    assert document["usdmVersion"] == "4.0.0"
    assert Wrapper.model_validate(document).study.name == PROTOCOL.code


def test_the_ddf_rules_run_and_only_the_documented_findings_fire(rules: Any) -> None:
    assert rules.count() > 200
    assert rules.by_status(RuleStatus.EXCEPTION) == []
    fired = {outcome.rule_id for outcome in rules.by_status(RuleStatus.FAILURE)}
    assert fired == EXPECTED_FINDINGS
    # The schema rule and the rules this export was fixed for pass.
    for rule in ("DDF00082", "DDF00125", "DDF00010", "DDF00031", "DDF00060", "DDF00061", "DDF00062", "DDF00188"):
        assert rules.outcomes[rule].status is RuleStatus.SUCCESS, rule


def test_every_finding_is_explained_in_the_exports_documentation(rules: Any) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## CDISC USDM v4", 1)[1].split("\n## ", 1)[0]
    for outcome in rules.by_status(RuleStatus.FAILURE):
        assert f"`{outcome.rule_id}`" in section, outcome.rule_id


def test_one_encounter_per_protocol_visit_in_protocol_order(document: dict[str, Any]) -> None:
    encounters = _design(document)["encounters"]
    assert [e["name"] for e in encounters] == [v.code for v in PROTOCOL.visits]
    for encounter, visit in zip(encounters, PROTOCOL.visits, strict=True):
        assert encounter["label"] == visit.label["en"]
        assert _french(encounter, "label") == visit.label["fr"]
    assert encounters[0]["previousId"] is None and encounters[-1]["nextId"] is None


def test_each_encounter_is_timed_from_its_anchor_with_the_protocol_window(document: dict[str, Any]) -> None:
    timeline = _timeline(document)
    timings = {t["id"]: t for t in timeline["timings"]}
    instances = {i["id"]: i for i in timeline["instances"]}
    anchors = {i["name"]: i["id"] for i in timeline["instances"]}
    anchor_instance = {Anchor.INCLUSION: anchors["ANCHOR_INCLUSION"], Anchor.INFUSION: anchors["D0"]}
    by_code = {visit.code: visit for visit in PROTOCOL.visits}
    for encounter in _design(document)["encounters"]:
        visit = by_code[encounter["name"]]
        timing = timings[encounter["scheduledAtId"]]
        assert instances[timing["relativeFromScheduledInstanceId"]]["encounterId"] == encounter["id"]
        assert ISO_DAYS.match(timing["value"])
        if visit.code == "D0":
            assert timing["type"]["code"] == "C201358"  # Fixed Reference: D0 is the infusion anchor
            assert timing["relativeToScheduledInstanceId"] == timing["relativeFromScheduledInstanceId"]
            assert timing["windowLower"] is None and timing["windowUpper"] is None
            continue
        assert timing["relativeToScheduledInstanceId"] == anchor_instance[visit.anchor]
        assert timing["type"]["decode"] == ("Before" if visit.day < 0 else "After")
        assert timing["value"] == f"P{abs(visit.day)}D"
        if visit.window_before_days or visit.window_after_days:
            assert (timing["windowLower"], timing["windowUpper"]) == (
                f"P{visit.window_before_days}D",
                f"P{visit.window_after_days}D",
            )
        else:
            assert (timing["windowLower"], timing["windowUpper"], timing["windowLabel"]) == (None, None, None)


def test_the_windows_that_matter_are_written_as_the_protocol_says(document: dict[str, Any]) -> None:
    timings = {t["name"]: t for t in _timeline(document)["timings"]}
    assert (timings["TIMING_SCR"]["value"], timings["TIMING_SCR"]["windowUpper"]) == ("P42D", "P42D")
    assert (timings["TIMING_LD"]["type"]["decode"], timings["TIMING_LD"]["value"]) == ("Before", "P5D")
    assert (timings["TIMING_M6"]["windowLower"], timings["TIMING_M6"]["windowUpper"]) == ("P14D", "P14D")
    assert (timings["TIMING_Y15"]["value"], timings["TIMING_Y15"]["windowLower"]) == ("P5479D", "P60D")


def test_the_timeline_runs_in_time_order_with_inclusion_as_its_own_anchor(document: dict[str, Any]) -> None:
    timeline = _timeline(document)
    instances = timeline["instances"]
    names = [i["name"] for i in instances]
    assert names[:5] == ["SCR", "ANCHOR_INCLUSION", "APH", "LD", "D0"]
    assert names[5:] == [v.code for v in PROTOCOL.visits[4:]]
    inclusion = instances[1]
    assert inclusion["encounterId"] is None and inclusion["activityIds"] == []
    fixed = [t for t in timeline["timings"] if t["type"]["code"] == "C201358"]
    assert {t["relativeFromScheduledInstanceId"] for t in fixed} == {inclusion["id"], instances[4]["id"]}
    assert timeline["entryId"] == instances[0]["id"]
    for instance, following in itertools.pairwise(instances):
        assert instance["defaultConditionId"] == following["id"] and instance["timelineExitId"] is None
    assert instances[-1]["timelineExitId"] == timeline["exits"][0]["id"]
    assert timeline["mainTimeline"] is True


def test_each_visit_schedules_exactly_the_forms_the_protocol_collects_there(document: dict[str, Any]) -> None:
    activities = {a["id"]: a["name"] for a in _design(document)["activities"]}
    scheduled = {i["name"]: [activities[a] for a in i["activityIds"]] for i in _timeline(document)["instances"]}
    for visit in PROTOCOL.visits:
        assert scheduled[visit.code] == list(visit.forms), visit.code
    collected = {form for visit in PROTOCOL.visits for form in visit.forms}
    assert set(activities.values()) == collected


def test_each_activity_refers_to_one_surrogate_per_item_of_its_form(document: dict[str, Any]) -> None:
    version = document["study"]["versions"][0]
    surrogates = {s["id"]: s for s in version["bcSurrogates"]}
    for activity in _design(document)["activities"]:
        form = PROTOCOL.forms[activity["name"]]
        items = [f"{form.code}.{item.name}" for group in form.groups for item in group.items]
        assert [surrogates[i]["name"] for i in activity["bcSurrogateIds"]] == items
        assert activity["label"] == form.label["en"] and _french(activity, "label") == form.label["fr"]


def test_the_infusion_form_administers_the_study_product(document: dict[str, Any]) -> None:
    study_design = _design(document)
    intervention = document["study"]["versions"][0]["studyInterventions"][0]
    assert intervention["name"] == PROTOCOL.drug_product.code
    assert study_design["studyInterventionIds"] == [intervention["id"]]
    procedures = {a["name"]: a["definedProcedures"] for a in study_design["activities"]}
    assert [p["studyInterventionId"] for p in procedures["infusion"]] == [intervention["id"]]
    assert all(not p for name, p in procedures.items() if name != "infusion")
    element = next(e for e in study_design["elements"] if e["studyInterventionIds"])
    epoch = next(c["epochId"] for c in study_design["studyCells"] if element["id"] in c["elementIds"])
    d0 = next(i for i in _timeline(document)["instances"] if i["name"] == "D0")
    assert d0["epochId"] == epoch


def test_the_criteria_are_the_protocol_s_in_english_with_the_french_beside(document: dict[str, Any]) -> None:
    criteria = _design(document)["eligibilityCriteria"]
    items = {i["id"]: i for i in document["study"]["versions"][0]["eligibilityCriterionItems"]}
    assert len(criteria) == len(PROTOCOL.criteria)
    for model, criterion in zip(criteria, PROTOCOL.criteria, strict=True):
        assert model["identifier"] == criterion.id
        assert model["category"]["code"] == ("C25532" if criterion.kind == "inclusion" else "C25370")
        item = items[model["criterionItemId"]]
        assert item["text"] == f"<p>{html.escape(criterion.text['en'], quote=False)}</p>"
        assert _french(item, "text") == f"<p>{html.escape(criterion.text['fr'], quote=False)}</p>"
    population = _design(document)["population"]
    assert population["criterionIds"] == [c["id"] for c in criteria]
    age = population["plannedAge"]
    assert (age["minValue"]["value"], age["maxValue"]["value"]) == (18, 65)
    assert sorted(s["decode"] for s in population["plannedSex"]) == ["Female", "Male"]


def test_the_study_carries_its_identifier_phase_title_and_indication(document: dict[str, Any]) -> None:
    version = document["study"]["versions"][0]
    sponsor = version["organizations"][0]
    assert [(i["text"], i["scopeId"]) for i in version["studyIdentifiers"]] == [(PROTOCOL.code, sponsor["id"])]
    assert [(r["code"]["code"], r["organizationIds"], r["appliesToIds"]) for r in version["roles"]] == [
        ("C70793", [sponsor["id"]], [version["id"]])
    ]
    assert version["versionIdentifier"] == PROTOCOL.version
    assert version["titles"][0]["text"] == PROTOCOL.title["en"]
    assert _french(version["titles"][0], "text") == PROTOCOL.title["fr"]
    study_design = _design(document)
    assert study_design["studyPhase"]["standardCode"]["code"] == "C15693"  # Phase I/II: the file's "1/2"
    indication = study_design["indications"][0]
    assert indication is not None and PROTOCOL.indication is not None
    assert [(c["codeSystem"], c["code"]) for c in indication["codes"]] == [
        (c.system, c.code) for c in PROTOCOL.indication.codes
    ]
    assert indication["isRareDisease"] is PROTOCOL.indication.rare_disease
    assert version["dateValues"][0]["dateValue"] == PROTOCOL.effective_date.isoformat()


def test_the_epochs_follow_the_phases_with_each_treatment_step_its_own(document: dict[str, Any]) -> None:
    study_design = _design(document)
    epochs = study_design["epochs"]
    assert [e["name"] for e in epochs] == [
        "SCREENING",
        "TREATMENT_APH",
        "TREATMENT_LD",
        "TREATMENT_D0",
        "ACUTE_MONITORING",
        "FOLLOW_UP",
        "LONG_TERM_FOLLOW_UP",
    ]
    assert [e["label"] for e in epochs[1:4]] == [PROTOCOL.visit(code).label["en"] for code in ("APH", "LD", "D0")]
    arm = study_design["arms"][0]
    assert [(c["armId"], c["epochId"]) for c in study_design["studyCells"]] == [(arm["id"], e["id"]) for e in epochs]


def test_the_counts_are_the_protocol_s(built: tuple[dict[str, Any], usdm.UsdmCounts, str]) -> None:
    counts = built[1]
    scheduled = sum(len(visit.forms) for visit in PROTOCOL.visits)
    forms = len({form for visit in PROTOCOL.visits for form in visit.forms})
    assert counts == usdm.UsdmCounts(len(PROTOCOL.visits), forms, scheduled, len(PROTOCOL.criteria))
    assert counts.records == len(PROTOCOL.visits) + scheduled + len(PROTOCOL.criteria)


def test_building_again_gives_the_same_file(builder: usdm.UsdmBuilder, built: tuple[Any, Any, str]) -> None:
    again, _ = usdm.usdm_document(DESIGN, builder, FRENCH, "test")
    assert usdm.usdm_json(again) == built[2]


@pytest.mark.slow
def test_the_lighter_terminology_load_writes_what_usdm4s_default_builder_writes(built: tuple[Any, Any, str]) -> None:
    # usdm4's own builder also loads the CDISC biomedical concepts (about 20 s): the document must not
    # depend on them.
    default = Builder(str(Path(usdm4.__file__).parent), Errors())
    document, _ = usdm.usdm_document(DESIGN, default, FRENCH, "test")
    assert usdm.usdm_json(document) == built[2]


def test_a_phase_without_a_usdm_code_is_refused_naming_the_item(builder: usdm.UsdmBuilder) -> None:
    with pytest.raises(InvalidInput) as refused:
        usdm.usdm_document(dataclasses.replace(DESIGN, phase="0"), builder, FRENCH)
    assert (refused.value.code, refused.value.item) == ("usdm_phase_unknown", "study.phase")


def test_a_day_0_visit_with_a_window_is_timed_from_an_anchor_of_its_own(builder: usdm.UsdmBuilder) -> None:
    visits = tuple(dataclasses.replace(v, window_after_days=1) if v.code == "D0" else v for v in PROTOCOL.visits)
    document = json.loads(
        usdm.usdm_json(usdm.usdm_document(dataclasses.replace(DESIGN, visits=visits), builder, FRENCH)[0])
    )
    timeline = _timeline(document)
    names = [i["name"] for i in timeline["instances"]]
    assert names[3:6] == ["LD", "ANCHOR_INFUSION", "D0"]
    d0 = next(t for t in timeline["timings"] if t["name"] == "TIMING_D0")
    assert (d0["type"]["decode"], d0["value"], d0["windowUpper"]) == ("After", "P0D", "P1D")


def test_without_indication_age_rule_or_with_a_sex_rule_the_population_says_less(builder: usdm.UsdmBuilder) -> None:
    criteria = (
        Criterion("I01_ADULT", "inclusion", {"en": "Adult", "fr": "Adulte"}, {"item": "age_years", "gte": 18}),
        Criterion("I02_SEX", "inclusion", {"en": "Women", "fr": "Femmes"}, {"item": "sex", "equals": "female"}),
    )
    variant = dataclasses.replace(DESIGN, indication=None, criteria=criteria)
    document = json.loads(usdm.usdm_json(usdm.usdm_document(variant, builder, FRENCH)[0]))
    study_design = _design(document)
    assert study_design["indications"] == []
    assert study_design["population"]["plannedAge"] is None
    assert study_design["population"]["plannedSex"] == []
    assert len(study_design["eligibilityCriteria"]) == 2


def test_the_age_range_is_read_inside_an_all_but_not_under_an_any() -> None:
    def rule(raw: dict[str, object]) -> Criterion:
        return Criterion("I", "inclusion", {"en": "x", "fr": "x"}, raw)

    age = {"item": "age_years", "between": [12, 17]}
    assert usdm.planned_age_years([rule({"all": [{"item": "cd3_per_ul", "gte": 100}, age]})]) == (12, 17)
    assert usdm.planned_age_years([rule({"any": [age, {"item": "cd3_per_ul", "gte": 100}]})]) is None


@pytest.fixture
def patched_builder(builder: usdm.UsdmBuilder, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The writer loads its own terminology; here it is handed the module's (the load is what the
    # builder fixture already exercised).
    monkeypatch.setattr(usdm, "usdm_builder", lambda: builder)
    yield


@pytest.mark.django_db
@pytest.mark.usefixtures("patched_builder")
def test_the_writer_writes_the_protocol_and_counts_no_subject(tmp_path: Path, document: dict[str, Any]) -> None:
    assert WRITERS[ExportFormat.USDM] is usdm_write
    request = export_request_resolve(
        scope=None, export_format=ExportFormat.USDM, now=datetime(2026, 6, 1, tzinfo=UTC), requested_by="test"
    )
    steps: list[tuple[int, int]] = []
    out = tmp_path / "protocol.json"
    counts = usdm_write(request, out, lambda done, total: steps.append((done, total)))
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["study"] == document["study"]
    assert written["systemName"] == "cartrial"
    assert counts.subjects == 0
    assert counts.records == len(PROTOCOL.visits) + sum(len(v.forms) for v in PROTOCOL.visits) + len(PROTOCOL.criteria)
    assert steps[0] == (0, 3) and steps[-1] == (3, 3)


@pytest.mark.django_db
@pytest.mark.usefixtures("patched_builder")
def test_cartrial_export_usdm_writes_the_file_hashes_and_audits_it(tmp_path: Path, document: dict[str, Any]) -> None:
    from cartrial.cli import _register, app

    _register()
    target = tmp_path / "protocol.json"
    result = CliRunner().invoke(app, ["export", "usdm", "--out", str(target)])
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert result.output.startswith("usdm: 0 subjects, ") and digest in result.output
    assert json.loads(target.read_text(encoding="utf-8"))["study"] == document["study"]
    entry = AuditEntry.objects.filter(event="export.created").latest("sequence")
    changes = {c["field"]: c["new"] for c in json.loads(entry.changes_json)}
    assert changes["format"] == "usdm" and changes["file"]["sha256"] == digest


# --- import: a new protocol version from a USDM file ------------------------------------------------------


def _import(*args: str) -> Any:
    from cartrial.cli import _register, app

    _register()
    return CliRunner().invoke(app, ["usdm", "import", *args])


def _edited(document: dict[str, Any], tmp_path: Path, edit: Any) -> Path:
    changed = copy.deepcopy(document)
    edit(changed)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    return path


def _without_study_version(raw: Mapping[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(dict(raw))
    del data["study"]["version"], data["study"]["effective_date"]
    return data


def test_exported_then_imported_the_protocol_is_the_same_in_a_new_version(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "protocol-1.1.yaml"
    result = _import(str(path), "--out", str(out), "--effective-date", "2026-09-01")
    assert result.exit_code == 0, result.output
    assert result.output == f"protocol {PROTOCOL.code} 1.1: 35 visits, 8 criteria → {out}\n"
    new = load_protocol(out)
    assert (new.version, new.effective_date) == ("1.1", date(2026, 9, 1))
    assert new.visits == PROTOCOL.visits
    assert new.criteria == PROTOCOL.criteria
    assert _without_study_version(new.raw) == _without_study_version(PROTOCOL.raw)


def test_the_edits_of_the_usdm_file_make_the_new_version(document: dict[str, Any], tmp_path: Path) -> None:
    def edit(changed: dict[str, Any]) -> None:
        study_design = _design(changed)
        timeline = _timeline(changed)
        m6 = next(t for t in timeline["timings"] if t["name"] == "TIMING_M6")
        m6["windowLower"], m6["windowUpper"] = "P3W", "P21D"
        y15 = next(i for i in timeline["instances"] if i["name"] == "Y15")
        timeline["instances"].remove(y15)
        study_design["encounters"] = [e for e in study_design["encounters"] if e["name"] != "Y15"]
        items = changed["study"]["versions"][0]["eligibilityCriterionItems"]
        cd3 = next(i for i in items if i["name"] == "I06_CD3")
        cd3["text"] = "<p>CD3+ T cells &#8805; 150/&#181;L</p>"
        cd3["extensionAttributes"][0]["valueString"] = "<p>Lymphocytes T CD3+ ≥ 150/µL</p>"

    out = tmp_path / "protocol-2.0.yaml"
    edited = _edited(document, tmp_path, edit)
    result = _import(str(edited), "--out", str(out), "--effective-date", "2026-10-01", "--version", "2.0")
    assert result.exit_code == 0, result.output
    new = load_protocol(out)
    assert new.version == "2.0"
    assert [v.code for v in new.visits] == [v.code for v in PROTOCOL.visits if v.code != "Y15"]
    assert (new.visit("M6").window_before_days, new.visit("M6").window_after_days) == (21, 21)
    cd3 = next(c for c in new.criteria if c.id == "I06_CD3")
    assert cd3.text == {"en": "CD3+ T cells ≥ 150/µL", "fr": "Lymphocytes T CD3+ ≥ 150/µL"}
    assert cd3.rule == next(c for c in PROTOCOL.criteria if c.id == "I06_CD3").rule  # USDM carries no rule


def _new_visit_without_french(changed: dict[str, Any]) -> None:
    encounter = next(e for e in _design(changed)["encounters"] if e["name"] == "M9")
    encounter["name"], encounter["extensionAttributes"] = "M10", []


def _unknown_anchor(changed: dict[str, Any]) -> None:
    next(i for i in _timeline(changed)["instances"] if i["name"] == "ANCHOR_INCLUSION")["name"] = "ANCHOR_CONSENT"


def _hours(changed: dict[str, Any]) -> None:
    next(t for t in _timeline(changed)["timings"] if t["name"] == "TIMING_D1")["value"] = "PT24H"


def _unknown_form(changed: dict[str, Any]) -> None:
    _design(changed)["activities"][0]["name"] = "vitals"


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_new_visit_without_french, "Visit M10 has no French label"),
        (_unknown_anchor, "Anchor ANCHOR_CONSENT is not inclusion or infusion"),
        (_hours, "Timing TIMING_D1: 'PT24H' is not a duration in days or weeks"),
        (_unknown_form, "the new protocol would be refused: at key 'visits.0.forms.0': 'vitals' is not one of"),
        (lambda changed: changed.pop("study"), "is not a USDM v4 document: at study: Field required [usdm_invalid]"),
    ],
)
def test_a_usdm_file_that_cannot_make_a_protocol_is_refused_in_one_line_writing_nothing(
    document: dict[str, Any], tmp_path: Path, edit: Any, words: str
) -> None:
    out = tmp_path / "new.yaml"
    result = _import(str(_edited(document, tmp_path, edit)), "--out", str(out), "--effective-date", "2026-09-01")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and words in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.json"]


def test_the_import_never_overwrites_a_file_nor_keeps_the_base_version(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken.yaml"
    out.write_text("keep me", encoding="utf-8")
    result = _import(str(path), "--out", str(out), "--effective-date", "2026-09-01")
    assert result.exit_code == 2 and "[out_exists]" in result.output
    assert out.read_text(encoding="utf-8") == "keep me"
    same = _import(str(path), "--out", str(tmp_path / "v.yaml"), "--effective-date", "2026-09-01", "--version", "1.0")
    assert same.exit_code == 2 and "[usdm_version_unchanged]" in same.output
