"""Dose-limiting toxicities: the protocol's rules (data, `safety.dlt` of the protocol file)
evaluated on the AEs recorded in the DLT window (D0 to the window's last day) → candidates, each
with the rule that matched, for the investigator to confirm or rule out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cartrial.domain.safety.adverse_events import Relatedness
from cartrial.domain.safety.terms import term_get


@dataclass(frozen=True)
class DltRule:
    """One rule: an AE in the window matches when every condition given holds.

    `terms`: the AE's term is one of them; `haematological`: the term is (or is not) haematological;
    `min_grade`; `min_relatedness_cart`: relatedness to the CAR-T at least this; `exclude_terms`;
    `lasting_beyond_day`: the AE has not ended by D0 + that day.
    """

    code: str
    label: Mapping[str, str]
    min_grade: int
    terms: frozenset[str] | None = None
    haematological: bool | None = None
    min_relatedness_cart: Relatedness | None = None
    exclude_terms: frozenset[str] = frozenset()
    lasting_beyond_day: int | None = None


@dataclass(frozen=True)
class DltRules:
    window_days: tuple[int, int]
    rules: tuple[DltRule, ...]


@dataclass(frozen=True)
class AeForDlt:
    """What the rules read of a recorded AE."""

    ae_id: int
    term: str
    grade: int
    start_date: date
    end_date: date | None
    relatedness_cart: Relatedness | None


@dataclass(frozen=True)
class DltCandidate:
    ae_id: int
    rule: DltRule


def dlt_rules_parse(data: Mapping[str, Any]) -> DltRules:
    """The `safety.dlt` section as rules (the schema checked its shape; terms are checked here)."""
    rules = []
    for row in data["rules"]:
        for code in [*row.get("terms", []), *row.get("exclude_terms", [])]:
            term_get(code, item=f"safety.dlt.rules.{row['code']}")
        relatedness = row.get("min_relatedness_cart")
        rules.append(
            DltRule(
                code=row["code"],
                label=dict(row["label"]),
                min_grade=int(row["min_grade"]),
                terms=frozenset(row["terms"]) if "terms" in row else None,
                haematological=row.get("haematological"),
                min_relatedness_cart=Relatedness(relatedness) if relatedness else None,
                exclude_terms=frozenset(row.get("exclude_terms", [])),
                lasting_beyond_day=row.get("lasting_beyond_day"),
            )
        )
    low, high = data["window_days"]
    return DltRules(window_days=(int(low), int(high)), rules=tuple(rules))


def rule_matches(rule: DltRule, ae: AeForDlt, infusion_date: date) -> bool:
    """Whether `ae` meets every condition of `rule`."""
    term = term_get(ae.term)
    if ae.grade < rule.min_grade or ae.term in rule.exclude_terms:
        return False
    if rule.terms is not None and ae.term not in rule.terms:
        return False
    if rule.haematological is not None and term.haematological != rule.haematological:
        return False
    if rule.min_relatedness_cart is not None and (
        ae.relatedness_cart is None or ae.relatedness_cart.rank < rule.min_relatedness_cart.rank
    ):
        return False
    if rule.lasting_beyond_day is not None:
        limit = infusion_date + timedelta(days=rule.lasting_beyond_day)
        if ae.end_date is not None and ae.end_date <= limit:
            return False
    return True


def dlt_candidates(rules: DltRules, aes: Iterable[AeForDlt], infusion_date: date | None) -> list[DltCandidate]:
    """The AEs starting in the window that meet a rule, each with the first rule it meets."""
    if infusion_date is None:
        return []
    first = infusion_date + timedelta(days=rules.window_days[0])
    last = infusion_date + timedelta(days=rules.window_days[1])
    found = []
    for ae in sorted(aes, key=lambda a: (a.start_date, a.ae_id)):
        if not first <= ae.start_date <= last:
            continue
        rule = next((r for r in rules.rules if rule_matches(r, ae, infusion_date)), None)
        if rule is not None:
            found.append(DltCandidate(ae.ae_id, rule))
    return found


def rule_codes(rules: DltRules) -> Sequence[str]:
    return [r.code for r in rules.rules]
