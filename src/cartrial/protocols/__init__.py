"""The trial defined as versioned data: the protocol file, its schema and the loader.

The protocol (criteria, visit schedule, consent versions, product time and temperature
limits, capacities) is read from YAML and validated at start-up; a broken file stops the
server with a message naming the file, the key and the problem (stable error ids, in the
manner of clinicedc's system checks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cartrial.domain.booking import NetworkCapacities, capacities_parse
from cartrial.domain.ecrf import FormDef, FormDefinitionError, parse_forms
from cartrial.domain.eligibility import Criterion, RuleError, parse_criteria, validate_rules
from cartrial.domain.errors import InvalidInput
from cartrial.domain.manufacturing import QcSpecification, parse_release_specification
from cartrial.domain.pathway import PathwayRules
from cartrial.domain.safety.rules import SafetyRules, safety_rules_parse
from cartrial.domain.standards.indication import Indication, indication_parse
from cartrial.domain.visits import UNSCHEDULED_PREFIX, Anchor, VisitDefinition, VisitPhase

DEFAULT_PROTOCOL_FILE = Path(__file__).with_name("sle_cart_phase12.yaml")


class ProtocolError(Exception):
    """The protocol file is unusable: names the file, the key (a dotted path) and the problem."""

    code = "protocol_invalid"

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"Protocol file {self.path}: at key '{key or '(top level)'}': {problem}")


@dataclass(frozen=True)
class ConsentDocument:
    version: str
    language: str
    title: str
    effective_date: date
    current: bool


# The name of a protocol visit before the schedule had phases and forms.
Visit = VisitDefinition


@dataclass(frozen=True)
class ProductLimits:
    code: str
    label: Mapping[str, str]
    condition: str
    role: str
    min_temperature_c: float
    max_temperature_c: float
    max_transit_hours: float | None
    max_thaw_to_infusion_min: float | None
    release_specification: Mapping[str, QcSpecification]


@dataclass(frozen=True)
class Protocol:
    """A validated protocol version; records keep `version` to say what they were captured under."""

    path: str
    code: str
    version: str
    title: Mapping[str, str]
    effective_date: date
    consent_documents: tuple[ConsentDocument, ...]
    visits: tuple[VisitDefinition, ...]
    products: tuple[ProductLimits, ...]
    pathway_rules: PathwayRules
    follow_up_months: int
    long_term_follow_up_years: int
    manufacturing_slots_per_week: int
    kinetics_preset: str
    criteria: tuple[Criterion, ...]
    raw: Mapping[str, Any]
    # The eCRF forms by code, in file order (docs/ecrf.md); visits name them by code.
    forms: Mapping[str, FormDef] = field(default_factory=dict)
    # Adverse events, SAE clock, DLT rules (`safety:`); None for a protocol without the section.
    safety: SafetyRules | None = None
    # The network's initial capacities (`capacities:`, docs/booking.md); loaded into the planning app.
    capacities: NetworkCapacities | None = None
    # The condition studied, coded (`study.indication`); None for a protocol without it.
    indication: Indication | None = None

    def current_consent_versions(self) -> dict[str, str]:
        """The consent version subjects must have signed, per language."""
        return {d.language: d.version for d in self.consent_documents if d.current}

    def visit(self, code: str) -> VisitDefinition:
        """One visit of the schedule by code."""
        for visit in self.visits:
            if visit.code == code:
                return visit
        raise KeyError(code)

    def product(self, code: str) -> ProductLimits:
        """The limits of one product by code."""
        for product in self.products:
            if product.code == code:
                return product
        raise KeyError(code)

    def product_of_role(self, role: str) -> ProductLimits:
        """The product the pathway handles in that role (`starting_material` or `drug_product`)."""
        for product in self.products:
            if product.role == role:
                return product
        raise KeyError(role)

    @property
    def starting_material(self) -> ProductLimits:
        """The apheresis material collected at the center and shipped to the manufacturing lab."""
        return self.product_of_role(STARTING_MATERIAL)

    @property
    def drug_product(self) -> ProductLimits:
        """The released CAR-T product shipped back, thawed and infused."""
        return self.product_of_role(DRUG_PRODUCT)


def _schema() -> dict[str, Any]:
    text = resources.files("cartrial.protocols").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _key(path: Any) -> str:
    return ".".join(str(part) for part in path)


def _semantic_checks(path: Path, data: Mapping[str, Any]) -> None:
    """Rules a JSON schema cannot say: uniqueness, one current consent per language, ordered limits."""
    current_by_language: dict[str, int] = {}
    for index, doc in enumerate(data["consent"]["documents"]):
        if doc.get("current"):
            current_by_language[doc["language"]] = current_by_language.get(doc["language"], 0) + 1
            if current_by_language[doc["language"]] > 1:
                raise ProtocolError(
                    path, f"consent.documents.{index}.current", f"two current consent versions for '{doc['language']}'"
                )
    if not current_by_language:
        raise ProtocolError(path, "consent.documents", "no consent version is marked current: true")
    _visit_checks(path, data["visits"])
    products: set[str] = set()
    for index, product in enumerate(data["products"]):
        if product["code"] in products:
            raise ProtocolError(path, f"products.{index}.code", f"duplicate product code '{product['code']}'")
        products.add(product["code"])
        if product["min_temperature_c"] >= product["max_temperature_c"]:
            raise ProtocolError(
                path, f"products.{index}.min_temperature_c", "min_temperature_c must be below max_temperature_c"
            )
    for role in (STARTING_MATERIAL, DRUG_PRODUCT):
        holders = [i for i, product in enumerate(data["products"]) if product["role"] == role]
        if len(holders) != 1:
            raise ProtocolError(path, "products", f"exactly one product must have role '{role}' (found {len(holders)})")
    low, high = data["pathway"]["lymphodepletion_window_days"]
    if low > high:
        raise ProtocolError(path, "pathway.lymphodepletion_window_days", f"window [{low}, {high}] is reversed")


def _visit_checks(path: Path, visits: list[dict[str, Any]]) -> None:
    """Unique codes, none taken from the unscheduled numbering, each anchor's visits in day order.

    Windows are never negative: the schema says so (`minimum: 0`).
    """
    seen: set[str] = set()
    last_day_by_anchor: dict[str, tuple[int, str]] = {}
    for index, visit in enumerate(visits):
        code = visit["code"]
        if code in seen:
            raise ProtocolError(path, f"visits.{index}.code", f"duplicate visit code '{code}'")
        seen.add(code)
        if code.startswith(UNSCHEDULED_PREFIX):
            raise ProtocolError(
                path,
                f"visits.{index}.code",
                f"visit code '{code}' starts with '{UNSCHEDULED_PREFIX}', kept for unscheduled visits",
            )
        previous = last_day_by_anchor.get(visit["anchor"])
        if previous is not None and visit["day"] < previous[0]:
            raise ProtocolError(
                path,
                f"visits.{index}.day",
                f"visit '{code}' (day {visit['day']}) comes after '{previous[1]}' (day {previous[0]}) "
                f"of the same anchor '{visit['anchor']}': list the visits in day order",
            )
        last_day_by_anchor[visit["anchor"]] = (visit["day"], code)


def _visit_definition(visit: Mapping[str, Any]) -> VisitDefinition:
    return VisitDefinition(
        code=visit["code"],
        label=visit["label"],
        anchor=Anchor(visit["anchor"]),
        day=visit["day"],
        window_before_days=visit["window_before_days"],
        window_after_days=visit["window_after_days"],
        phase=VisitPhase(visit["phase"]),
        forms=tuple(visit["forms"]),
    )


# The two product roles of the pathway (`products[].role`).
STARTING_MATERIAL = "starting_material"
DRUG_PRODUCT = "drug_product"

# The expected-biology preset when the protocol file has no `model.kinetics_preset`.
DEFAULT_KINETICS_PRESET = "sle-default"

# How far ahead a planned date may be when the protocol file does not say (`pathway.planning_horizon_days`).
DEFAULT_PLANNING_HORIZON_DAYS = 180

# The daily CRS/ICANS assessment window (D0..D14) when the protocol file does not say.
DEFAULT_TOXICITY_ASSESSMENT_DAYS = 14

# A month and a year of follow-up as whole days from D0: M24 is day 730 as in the visit schedule.
DAYS_PER_YEAR = 365.25


def _pathway_rules(data: Mapping[str, Any]) -> PathwayRules:
    pathway = data["pathway"]
    low, high = pathway["lymphodepletion_window_days"]
    return PathwayRules(
        acute_monitoring_days=pathway["acute_monitoring_days"],
        follow_up_days=round(pathway["follow_up_months"] * DAYS_PER_YEAR / 12),
        long_term_follow_up_days=round(pathway["long_term_follow_up_years"] * DAYS_PER_YEAR),
        lymphodepletion_window_days=(low, high),
        consent_withdrawal_exits_study=data["consent"]["withdrawal_exits_study"],
        planning_horizon_days=pathway.get("planning_horizon_days", DEFAULT_PLANNING_HORIZON_DAYS),
        toxicity_assessment_days=pathway.get("toxicity_assessment_days", DEFAULT_TOXICITY_ASSESSMENT_DAYS),
    )


def _parse_date(path: Path, key: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ProtocolError(path, key, f"'{value}' is not a calendar date (YYYY-MM-DD)") from None


def load_protocol(path: Path | str = DEFAULT_PROTOCOL_FILE) -> Protocol:
    """Read, validate and return the protocol at `path`; ProtocolError says what is wrong where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProtocolError(path, "", f"cannot be read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProtocolError(path, "", f"{where}not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise ProtocolError(path, "", "the file must hold a mapping of sections (study, consent, visits...)")
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), _key(e.absolute_path)))
    if errors:
        first = errors[0]
        raise ProtocolError(path, _key(first.absolute_path), first.message)
    _semantic_checks(path, data)
    try:
        criteria = parse_criteria(data.get("eligibility", {}).get("criteria", []))
        validate_rules(criteria)
    except RuleError as error:
        raise ProtocolError(path, f"eligibility.criteria.{error.criterion_index}.rule", str(error)) from None
    except InvalidInput as error:
        raise ProtocolError(path, "eligibility.criteria", str(error)) from None
    release_specifications = []
    for index, product in enumerate(data["products"]):
        try:
            release_specifications.append(parse_release_specification(product.get("release_specification", [])))
        except InvalidInput as error:
            raise ProtocolError(path, f"products.{index}.release_specification", str(error)) from None
    try:
        forms = parse_forms(data.get("forms"))
    except FormDefinitionError as error:
        raise ProtocolError(path, error.key, error.problem) from None
    for index, visit in enumerate(data["visits"]):
        for position, form_code in enumerate(visit.get("forms", [])):
            if form_code not in forms:
                raise ProtocolError(
                    path, f"visits.{index}.forms.{position}", f"unknown form '{form_code}' (not in the forms section)"
                )
    safety = None
    if "safety" in data:
        try:
            safety = safety_rules_parse(data["safety"])
        except InvalidInput as error:
            raise ProtocolError(path, error.item or "safety", str(error)) from None
    collecting = {visit["code"]: set(visit.get("forms", [])) for visit in data["visits"]}
    for index, form in enumerate(forms.values()):
        if form.baseline_visit is not None and form.code not in collecting.get(form.baseline_visit, set()):
            raise ProtocolError(
                path,
                f"forms.{index}.baseline_visit",
                f"the baseline visit '{form.baseline_visit}' is not a visit collecting the form '{form.code}'",
            )
    capacities = None
    if "capacities" in data:
        try:
            capacities = capacities_parse(data["capacities"])
        except InvalidInput as error:
            raise ProtocolError(path, error.item or "capacities", str(error)) from None
    study = data["study"]
    return Protocol(
        path=str(path),
        code=study["code"],
        version=study["version"],
        title=study["title"],
        effective_date=_parse_date(path, "study.effective_date", study["effective_date"]),
        consent_documents=tuple(
            ConsentDocument(
                version=d["version"],
                language=d["language"],
                title=d["title"],
                effective_date=_parse_date(path, f"consent.documents.{i}.effective_date", d["effective_date"]),
                current=bool(d.get("current", False)),
            )
            for i, d in enumerate(data["consent"]["documents"])
        ),
        visits=tuple(_visit_definition(v) for v in data["visits"]),
        products=tuple(
            ProductLimits(
                code=p["code"],
                label=p["label"],
                condition=p["condition"],
                role=p["role"],
                min_temperature_c=float(p["min_temperature_c"]),
                max_temperature_c=float(p["max_temperature_c"]),
                max_transit_hours=p.get("max_transit_hours"),
                max_thaw_to_infusion_min=p.get("max_thaw_to_infusion_min"),
                release_specification=release_specifications[i],
            )
            for i, p in enumerate(data["products"])
        ),
        pathway_rules=_pathway_rules(data),
        follow_up_months=data["pathway"]["follow_up_months"],
        long_term_follow_up_years=data["pathway"]["long_term_follow_up_years"],
        manufacturing_slots_per_week=data.get("capacities", {}).get("manufacturing_slots_per_week", 1),
        kinetics_preset=data.get("model", {}).get("kinetics_preset", DEFAULT_KINETICS_PRESET),
        criteria=criteria,
        raw=data,
        forms=forms,
        safety=safety,
        capacities=capacities,
        indication=indication_parse(study["indication"]) if "indication" in study else None,
    )


@cache
def active_protocol(path: str | None = None) -> Protocol:
    """The protocol in force, loaded once per process (the path comes from settings)."""
    return load_protocol(Path(path) if path else DEFAULT_PROTOCOL_FILE)
