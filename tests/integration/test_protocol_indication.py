"""The protocol's coded indication (`study.indication`): read with its codes, optional, and refused with
its key when a code lacks its system. Only loads YAML (no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cartrial.domain.standards.indication import Coding
from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

SNOMED = "http://snomed.info/sct"


def _data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PROTOCOL_FILE.read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_the_trial_studies_lupus_coded_in_snomed_and_icd10() -> None:
    indication = load_protocol().indication
    assert indication is not None
    assert indication.label == {"en": "Systemic lupus erythematosus", "fr": "Lupus érythémateux systémique"}
    assert indication.rare_disease is True
    assert indication.codes == (
        Coding(SNOMED, f"{SNOMED}/900000000000207008", "55464009", "Systemic lupus erythematosus"),
        Coding("http://hl7.org/fhir/sid/icd-10", "2019", "M32", "Systemic lupus erythematosus"),
    )


def test_a_protocol_without_an_indication_loads_without_one(tmp_path: Path) -> None:
    data = _data()
    del data["study"]["indication"]
    assert load_protocol(_write(tmp_path, data)).indication is None


def test_a_code_without_its_system_is_refused_with_its_key(tmp_path: Path) -> None:
    data = _data()
    del data["study"]["indication"]["codes"][1]["system"]
    with pytest.raises(ProtocolError) as refused:
        load_protocol(_write(tmp_path, data))
    assert refused.value.key == "study.indication.codes.1"
    assert "'system' is a required property" in refused.value.problem
