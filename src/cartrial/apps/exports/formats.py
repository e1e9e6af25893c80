"""The writer of each export format (one line per format; each writer lives in its own module)."""

from __future__ import annotations

from cartrial.apps.exports.request import ExportFormat, ExportWriter
from cartrial.apps.exports.tables import tables_write

WRITERS: dict[ExportFormat, ExportWriter] = {}
WRITERS[ExportFormat.CSV] = tables_write
