"""The protocol's `safety:` section: read into rules, and a broken one stops the start-up naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol


def _write(tmp_path: Path, change: dict[str, object]) -> Path:
    data = yaml.safe_load(Path(DEFAULT_PROTOCOL_FILE).read_text(encoding="utf-8"))
    data["safety"].update(change)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_clock_and_window_are_the_files(tmp_path: Path) -> None:
    safety = load_protocol(_write(tmp_path, {"sae_initial_report_hours": 48, "sae_follow_up_interval_days": 14})).safety
    assert safety is not None
    assert (safety.sae_clock.initial_report_hours, safety.sae_clock.follow_up_interval_days) == (48, 14)
    assert safety.ctcae_version == "5.0" and safety.dlt.window_days == (0, 28)


def test_an_unknown_term_in_a_dlt_rule_is_refused_naming_the_rule(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(DEFAULT_PROTOCOL_FILE).read_text(encoding="utf-8"))
    rules = data["safety"]["dlt"]["rules"]
    rules[1]["terms"] = ["cytokine_storm"]
    with pytest.raises(ProtocolError) as caught:
        load_protocol(_write(tmp_path, {"dlt": {"window_days": [0, 28], "rules": rules}}))
    assert "safety.dlt.rules.crs_grade4" in str(caught.value) and "cytokine_storm" in str(caught.value)


def test_a_missing_clock_field_is_refused_by_the_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, {})
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["safety"]["sae_initial_report_hours"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert "sae_initial_report_hours" in str(caught.value)


def test_expected_lab_terms_are_the_files_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    safety = load_protocol(DEFAULT_PROTOCOL_FILE).safety
    assert safety is not None and safety.lab_proposals_exclude_terms == frozenset({"lymphocyte_count_decreased"})
    path = _write(tmp_path, {})
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["safety"]["lab_proposals_exclude_terms"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    without = load_protocol(path).safety
    assert without is not None and without.lab_proposals_exclude_terms == frozenset()
    with pytest.raises(ProtocolError) as caught:
        load_protocol(_write(tmp_path, {"lab_proposals_exclude_terms": ["lymphopenia"]}))
    assert "safety.lab_proposals_exclude_terms" in str(caught.value) and "lymphopenia" in str(caught.value)
