"""The writer of each export format (one line per format; each writer lives in its own module)."""

from __future__ import annotations

from cartrial.apps.exports.request import ExportFormat, ExportWriter
from cartrial.apps.exports.sdtm import datasetjson_write, define_write

WRITERS: dict[ExportFormat, ExportWriter] = {}
WRITERS[ExportFormat.DATASETJSON] = datasetjson_write
WRITERS[ExportFormat.DEFINE] = define_write
