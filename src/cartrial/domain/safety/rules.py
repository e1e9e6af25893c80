"""The protocol's safety section as one value: CTCAE version, SAE reporting clock, DLT rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cartrial.domain.safety.dlt import DltRules, dlt_rules_parse
from cartrial.domain.safety.sae_clock import SaeClockRules
from cartrial.domain.safety.terms import term_get


@dataclass(frozen=True)
class SafetyRules:
    ctcae_version: str
    sae_clock: SaeClockRules
    dlt: DltRules
    # Lab terms the protocol expects of its treatment, not proposed from the lab values.
    lab_proposals_exclude_terms: frozenset[str] = frozenset()


def safety_rules_parse(data: Mapping[str, Any]) -> SafetyRules:
    """The `safety:` section (its shape checked by the schema; its terms checked here) as rules."""
    excluded = [str(code) for code in data.get("lab_proposals_exclude_terms", [])]
    for code in excluded:
        term_get(code, item="safety.lab_proposals_exclude_terms")
    return SafetyRules(
        ctcae_version=str(data["ctcae_version"]),
        sae_clock=SaeClockRules(
            initial_report_hours=int(data["sae_initial_report_hours"]),
            follow_up_interval_days=int(data["sae_follow_up_interval_days"]),
        ),
        dlt=dlt_rules_parse(data["dlt"]),
        lab_proposals_exclude_terms=frozenset(excluded),
    )
