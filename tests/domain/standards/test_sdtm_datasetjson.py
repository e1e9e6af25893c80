"""Dataset-JSON v1.1 text pieces (domain/standards/datasetjson.py): a header, rows and the end make one
document dsjframe validates and reads back, row for row."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import dsjframe
import pytest

from cartrial.domain.standards import datasetjson
from cartrial.domain.standards.sdtm_metadata import DATASETS_BY_NAME, row_values

CONTEXT = datasetjson.DatasetContext(
    created_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    originator="test",
    source_system="cartrial",
    source_version="0.1.0",
    study_oid="CARTLUP-12",
    metadata_version_oid="MDV.CARTLUP-12.SDTMIG3.4",
)
VS = DATASETS_BY_NAME["VS"]
ROWS = [
    {
        "STUDYID": "CARTLUP-12",
        "DOMAIN": "VS",
        "USUBJID": "CARTLUP-12-PAR-001",
        "VSSEQ": index,
        "VSTESTCD": "TEMP",
        "VSTEST": "Temperature",
        "VSORRES": text,
        "VSORRESU": "C",
        "VSSTRESC": text,
        "VSSTRESN": float(text),
        "VSSTRESU": "C",
        "VISITNUM": float(index),
        "VISIT": f"Day {index}",
        "VISITDY": index + 1,
        "VSDTC": f"2026-03-1{index}",
        "VSDY": index + 1,
    }
    for index, text in enumerate(("36.9", "38.4", "37.2"))
]


def document(rows: list[dict[str, object]]) -> bytes:
    text = datasetjson.header(VS, CONTEXT, len(rows))
    text += datasetjson.ROWS_SEPARATOR.join(datasetjson.row(VS, row_values(VS, row)) for row in rows)
    return (text + datasetjson.END).encode("utf-8")


def test_header_rows_and_end_are_one_valid_dataset_read_back_row_for_row() -> None:
    payload = document(ROWS)
    report = dsjframe.validate_dataset(payload)
    assert report["ok"] is True and report["issue_code"] is None, report
    table = dsjframe.read_dataset(payload)
    assert table.num_rows == 3
    assert table.column("VSSTRESN").to_pylist() == [36.9, 38.4, 37.2]
    assert table.column("VSDTC").to_pylist() == ["2026-03-10", "2026-03-11", "2026-03-12"]
    assert table.column("VSPOS").to_pylist() == [None, None, None]


def test_the_metadata_comes_before_the_rows_with_the_count() -> None:
    text = document(ROWS).decode("utf-8")
    assert text.index('"records": 3') < text.index('"rows"')
    dataset = json.loads(text)
    assert (dataset["datasetJSONVersion"], dataset["itemGroupOID"], dataset["name"]) == ("1.1.0", "IG.VS", "VS")
    assert (dataset["studyOID"], dataset["metaDataRef"]) == ("CARTLUP-12", "define.xml")
    keys = [(c["name"], c["keySequence"]) for c in dataset["columns"] if "keySequence" in c]
    assert keys == [("STUDYID", 1), ("USUBJID", 2), ("VSSEQ", 5), ("VSTESTCD", 3), ("VISITNUM", 4)]


def test_an_empty_dataset_is_valid() -> None:
    report = dsjframe.validate_dataset(document([]))
    assert report["ok"] is True, report


def test_a_wrong_count_is_what_the_validator_catches() -> None:
    # The validator is not lenient: a header announcing 4 rows over 3 fails.
    text = document(ROWS).decode("utf-8").replace('"records": 3', '"records": 4')
    report = dsjframe.validate_dataset(text.encode("utf-8"))
    assert report["ok"] is False and report["issue_code"] == "records_mismatch"


def test_values_json_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="VSSTRESN"):
        datasetjson.row(VS, row_values(VS, {**ROWS[0], "VSSTRESN": math.nan}))
    with pytest.raises(ValueError, match="VSSEQ"):
        datasetjson.row(VS, row_values(VS, {**ROWS[0], "VSSEQ": 1.5}))
