"""Efficacy endpoints of a subject's visits: SLEDAI-2K, DORIS, drug-free DORIS, LLDAS and SRI-4.

The contract of `cartrial endpoints` (issue 10). Every endpoint is the calculator's of
`cartrial.domain.scores` (one home per rule); this module only validates the payload, feeds
each calculator the visit's values and adds the two endpoints that span visits.

Input: `{"baseline": {"sledai_descriptors", "pga"}, "visits": [{"code", "sledai_descriptors",
"pga", "prednisone_mg_per_day", "maintenance_therapy_stable", "standard_maintenance_only",
"hemolytic_anemia", "gi_activity", "new_bilag_a", "new_bilag_b", "immunosuppressants"}, ...]}`,
visits in time order. Output: `{"visits": [{"code", "sledai", "clinical_sledai", "doris",
"drug_free_doris", "lldas", "sri4"}, ...], "doris_sustained_from": code | null}`.

How the contract's fields reach the calculators:
- `sledai`, `clinical_sledai`: `sledai2k.score_sledai2k` on the visit's descriptors (`score` and
  `clinical_score`: without low_complement and increased_dna_binding), with the calculator's
  default 10-day lookback window (the contract does not carry one).
- `doris`: `remission.assess_doris_2021` on the visit's descriptors, PGA, prednisone and
  `maintenance_therapy_stable`.
- `lldas`: `remission.assess_lldas` on the visit's fields; its "previous assessment" (new features)
  is the previous visit of the list, and the baseline for the first visit.
- `sri4`: `sri4.assess_sri4` with the baseline's SLEDAI-2K (computed from its descriptors) and PGA
  as reference; `new_bilag_a` / `new_bilag_b` are the visit's counts of domains new since baseline,
  as SRI-4 defines them (A now and not A at baseline; B now and C, D or E at baseline).
- `drug_free_doris`: DORIS and, at the same visit, no glucocorticoid (prednisone at most
  `DRUG_FREE_PREDNISONE_MAX_MG`) and no immunosuppressant (the `immunosuppressants` list, minus
  `DRUG_FREE_TOLERATED_THERAPIES`, is empty). Which drug classes a drug-free remission forbids
  is an open clinical item (clinical.md §3.2, §7.2): the list holds what the investigator records
  as immunosuppressants and biologics; antimalarials are not immunosuppressants and belong in it
  only if the SAP forbids them.
- `doris_sustained_from`: the code of the earliest visit from which DORIS holds at that visit and
  at every later one; null when the last visit is not in DORIS (or there is no visit). How long a
  remission must last to count is the SAP's business, not this function's.

Invalid input is `InvalidInput` with a stable code and `item` naming the offending key as a path
(`visits[2].pga`, `baseline.sledai_descriptors[0]`); the first problem found is reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cartrial.domain.errors import InvalidInput
from cartrial.domain.scores import remission, sledai2k, sri4
from cartrial.domain.scores.input_fields import json_type_name
from cartrial.domain.text import N_, Message

# Drug-free DORIS: "prednisone 0". A dose recorded as 0 mg/day and nothing else passes.
DRUG_FREE_PREDNISONE_MAX_MG = 0.0
# Names (compared case-insensitively) that may appear in `immunosuppressants` without breaking a
# drug-free remission. Empty: every listed drug breaks it. Open item (clinical.md §7.2): a sponsor
# whose SAP tolerates, say, hydroxychloroquine listed there adds it here.
DRUG_FREE_TOLERATED_THERAPIES: frozenset[str] = frozenset()

TOP_LEVEL_KEYS: tuple[str, ...] = ("baseline", "visits")
BASELINE_KEYS: tuple[str, ...] = ("sledai_descriptors", "pga")
VISIT_KEYS: tuple[str, ...] = (
    "code",
    "sledai_descriptors",
    "pga",
    "prednisone_mg_per_day",
    "maintenance_therapy_stable",
    "standard_maintenance_only",
    "hemolytic_anemia",
    "gi_activity",
    "new_bilag_a",
    "new_bilag_b",
    "immunosuppressants",
)
VISIT_OUTPUT_KEYS: tuple[str, ...] = (
    "code",
    "sledai",
    "clinical_sledai",
    "doris",
    "drug_free_doris",
    "lldas",
    "sri4",
)

_EXPECTED_OBJECT = N_("an object")
_EXPECTED_LIST = N_("a list")
_EXPECTED_STRING = N_("a string")
_EXPECTED_NUMBER = N_("a number")
_EXPECTED_INTEGER = N_("an integer")
_EXPECTED_BOOLEAN = N_("true or false")


@dataclass(frozen=True)
class Baseline:
    """The reference of SRI-4 and the first visit's "previous assessment" for LLDAS."""

    sledai_descriptors: tuple[str, ...]
    pga: float


@dataclass(frozen=True)
class Visit:
    """One follow-up visit as the contract gives it, validated."""

    code: str
    sledai_descriptors: tuple[str, ...]
    pga: float
    prednisone_mg_per_day: float
    maintenance_therapy_stable: bool
    standard_maintenance_only: bool
    hemolytic_anemia: bool
    gi_activity: bool
    new_bilag_a: int
    new_bilag_b: int
    immunosuppressants: tuple[str, ...]


@dataclass(frozen=True)
class VisitEndpoints:
    """The endpoints of one visit, each from its calculator."""

    code: str
    sledai: int
    clinical_sledai: int
    doris: bool
    drug_free_doris: bool
    lldas: bool
    sri4: bool

    def as_json(self) -> dict[str, Any]:
        """The visit's row of the contract, keys in the contract's order."""
        return {key: getattr(self, key) for key in VISIT_OUTPUT_KEYS}


def endpoints_report(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of `cartrial endpoints` for one subject's payload (keys of the contract)."""
    baseline, visits = parse_endpoints_input(payload)
    rows = assess_visits(baseline, visits)
    return {
        "visits": [row.as_json() for row in rows],
        "doris_sustained_from": doris_sustained_from([(row.code, row.doris) for row in rows]),
    }


def assess_visits(baseline: Baseline, visits: Sequence[Visit]) -> list[VisitEndpoints]:
    """Every visit's endpoints, in the given (time) order; LLDAS compares with the visit before."""
    reference = baseline_sledai(baseline)
    rows = []
    previous = baseline.sledai_descriptors
    for visit in visits:
        rows.append(assess_visit(visit, previous=previous, baseline=baseline, baseline_sledai=reference))
        previous = visit.sledai_descriptors
    return rows


def baseline_sledai(baseline: Baseline) -> int:
    """The baseline's SLEDAI-2K, SRI-4's reference."""
    return sledai2k.score_sledai2k(descriptors=baseline.sledai_descriptors).score


def assess_visit(visit: Visit, *, previous: Sequence[str], baseline: Baseline, baseline_sledai: int) -> VisitEndpoints:
    """One visit's endpoints: `previous` is the last assessment's descriptors (LLDAS new features)."""
    score = sledai2k.score_sledai2k(descriptors=visit.sledai_descriptors)
    doris = remission.assess_doris_2021(
        sledai_descriptors=visit.sledai_descriptors,
        pga=visit.pga,
        prednisone_mg_per_day=visit.prednisone_mg_per_day,
        maintenance_therapy_stable=visit.maintenance_therapy_stable,
    ).remission
    lldas = remission.assess_lldas(
        sledai_descriptors=visit.sledai_descriptors,
        previous_sledai_descriptors=previous,
        hemolytic_anemia=visit.hemolytic_anemia,
        gi_activity=visit.gi_activity,
        pga=visit.pga,
        prednisone_mg_per_day=visit.prednisone_mg_per_day,
        standard_maintenance_only=visit.standard_maintenance_only,
    ).lldas
    responder = sri4.assess_sri4(
        baseline_sledai=baseline_sledai,
        current_sledai=score.score,
        new_bilag_a=visit.new_bilag_a,
        new_bilag_b=visit.new_bilag_b,
        baseline_pga=baseline.pga,
        current_pga=visit.pga,
    ).responder
    return VisitEndpoints(
        code=visit.code,
        sledai=score.score,
        clinical_sledai=score.clinical_score,
        doris=doris,
        drug_free_doris=doris and drug_free(visit),
        lldas=lldas,
        sri4=responder,
    )


def drug_free(visit: Visit) -> bool:
    """No glucocorticoid and no immunosuppressant at the visit (DORIS is judged separately)."""
    taken = {name.casefold() for name in visit.immunosuppressants}
    tolerated = {name.casefold() for name in DRUG_FREE_TOLERATED_THERAPIES}
    return visit.prednisone_mg_per_day <= DRUG_FREE_PREDNISONE_MAX_MG and not taken - tolerated


def doris_sustained_from(doris_by_visit: Sequence[tuple[str, bool]]) -> str | None:
    """The code of the first visit of the trailing run of DORIS visits; None if the last is not in DORIS."""
    start: str | None = None
    for code, in_doris in doris_by_visit:
        if not in_doris:
            start = None
        elif start is None:
            start = code
    return start


# --- validation --------------------------------------------------------------------------------


def parse_endpoints_input(payload: object) -> tuple[Baseline, list[Visit]]:
    """The payload as typed values, or InvalidInput naming the first offending item."""
    data = _object(payload, "", TOP_LEVEL_KEYS)
    baseline_data = _object(data["baseline"], "baseline", BASELINE_KEYS)
    baseline = Baseline(
        sledai_descriptors=_descriptors(baseline_data["sledai_descriptors"], "baseline.sledai_descriptors"),
        pga=_pga(baseline_data["pga"], "baseline.pga"),
    )
    visits_data = data["visits"]
    if not isinstance(visits_data, list):
        raise InvalidInput(
            N_("{item} must be a list of visits, got {type}."),
            code="visits_malformed",
            item="visits",
            type=json_type_name(visits_data),
        )
    visits: list[Visit] = []
    first_at: dict[str, int] = {}
    for index, given in enumerate(visits_data):
        visit = _visit(given, f"visits[{index}]")
        if visit.code in first_at:
            raise InvalidInput(
                N_("{item}: the visit code '{visit}' is already used by visits[{first}]."),
                code="visit_code_duplicate",
                item=f"visits[{index}].code",
                visit=visit.code,
                first=str(first_at[visit.code]),
            )
        first_at[visit.code] = index
        visits.append(visit)
    return baseline, visits


def _visit(given: object, path: str) -> Visit:
    """One visit, its keys checked in the contract's order."""
    data = _object(given, path, VISIT_KEYS)
    visit = Visit(
        code=_text(data["code"], f"{path}.code"),
        sledai_descriptors=_descriptors(data["sledai_descriptors"], f"{path}.sledai_descriptors"),
        pga=_pga(data["pga"], f"{path}.pga"),
        prednisone_mg_per_day=_prednisone(data["prednisone_mg_per_day"], f"{path}.prednisone_mg_per_day"),
        maintenance_therapy_stable=_boolean(data["maintenance_therapy_stable"], f"{path}.maintenance_therapy_stable"),
        standard_maintenance_only=_boolean(data["standard_maintenance_only"], f"{path}.standard_maintenance_only"),
        hemolytic_anemia=_boolean(data["hemolytic_anemia"], f"{path}.hemolytic_anemia"),
        gi_activity=_boolean(data["gi_activity"], f"{path}.gi_activity"),
        new_bilag_a=_bilag(data["new_bilag_a"], f"{path}.new_bilag_a"),
        new_bilag_b=_bilag(data["new_bilag_b"], f"{path}.new_bilag_b"),
        immunosuppressants=_names(data["immunosuppressants"], f"{path}.immunosuppressants"),
    )
    if visit.new_bilag_a + visit.new_bilag_b > sri4.BILAG_DOMAIN_COUNT:
        raise InvalidInput(
            N_("{item}: new BILAG A and B domains together ({total}) exceed the {count} domains."),
            code="bilag_out_of_range",
            item=f"{path}.new_bilag_b",
            total=visit.new_bilag_a + visit.new_bilag_b,
            count=sri4.BILAG_DOMAIN_COUNT,
        )
    return visit


def _object(value: object, path: str, keys: Sequence[str]) -> Mapping[str, Any]:
    """An object with exactly `keys`: unknown keys first (a misspelt key reads best), then missing."""
    if not isinstance(value, Mapping):
        if not path:
            raise InvalidInput(
                N_("The input must be a JSON object, got {type}."), code="input_not_object", type=json_type_name(value)
            )
        raise _wrong_type(value, path, _EXPECTED_OBJECT)
    prefix = f"{path}." if path else ""
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise InvalidInput(
            N_("{item} is not a key of the input; accepted keys: {keys}."),
            code="key_unknown",
            item=prefix + unknown[0],
            keys=", ".join(keys),
        )
    for key in keys:
        if key not in value:
            missing = prefix + key
            raise InvalidInput(N_("The input lacks the key {key}."), code="key_missing", item=missing, key=missing)
    return value


def _descriptors(value: object, path: str) -> tuple[str, ...]:
    """SLEDAI-2K descriptor keys as the `sledai2k` calculator knows them, each listed once."""
    if not isinstance(value, list):
        raise _wrong_type(value, path, _EXPECTED_LIST)
    seen: list[str] = []
    for index, key in enumerate(value):
        item = f"{path}[{index}]"
        if not isinstance(key, str):
            raise _wrong_type(key, item, _EXPECTED_STRING)
        if key not in sledai2k.DESCRIPTOR_KEYS:
            raise InvalidInput(
                N_("{item}: '{value}' is not a SLEDAI-2K descriptor."), code="descriptor_unknown", item=item, value=key
            )
        if key in seen:
            raise InvalidInput(
                N_("{item}: the descriptor '{value}' is listed twice."),
                code="descriptor_duplicate",
                item=item,
                value=key,
            )
        seen.append(key)
    return tuple(seen)


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(value, path, _EXPECTED_NUMBER)
    return float(value)


def _pga(value: object, path: str) -> float:
    """The physician global assessment on the calculators' SELENA 0-3 scale."""
    pga = _number(value, path)
    if not (math.isfinite(pga) and remission.PGA_MIN <= pga <= remission.PGA_MAX):
        raise InvalidInput(
            N_("{item} must be from {minimum} to {maximum}, got {value}."),
            code="pga_out_of_range",
            item=path,
            minimum=remission.PGA_MIN,
            maximum=remission.PGA_MAX,
            value=pga,
        )
    return pga


def _prednisone(value: object, path: str) -> float:
    """A prednisolone-equivalent dose within the calculators' plausible range (never negative)."""
    dose = _number(value, path)
    if not (math.isfinite(dose) and 0 <= dose <= remission.PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY):
        raise InvalidInput(
            N_("{item} must be from 0 to {maximum} mg/day, got {value}."),
            code="dose_out_of_range",
            item=path,
            maximum=remission.PREDNISONE_MAX_PLAUSIBLE_MG_PER_DAY,
            value=dose,
        )
    return dose


def _bilag(value: object, path: str) -> int:
    """A count of new BILAG-2004 domains, 0 to the nine organ domains."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(value, path, _EXPECTED_INTEGER)
    if not 0 <= value <= sri4.BILAG_DOMAIN_COUNT:
        raise InvalidInput(
            N_("{item} must be from 0 to {maximum} BILAG domains, got {value}."),
            code="bilag_out_of_range",
            item=path,
            maximum=sri4.BILAG_DOMAIN_COUNT,
            value=value,
        )
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(value, path, _EXPECTED_BOOLEAN)
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _wrong_type(value, path, _EXPECTED_STRING)
    if not value.strip():
        raise InvalidInput(N_("{item} must not be empty."), code="value_empty", item=path)
    return value


def _names(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _wrong_type(value, path, _EXPECTED_LIST)
    return tuple(_text(name, f"{path}[{index}]") for index, name in enumerate(value))


def _wrong_type(value: object, path: str, expected: str) -> InvalidInput:
    return InvalidInput(
        N_("{item} must be {expected}, got {type}."),
        code="type_invalid",
        item=path,
        expected=Message(expected),
        type=json_type_name(value),
    )
