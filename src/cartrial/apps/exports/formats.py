"""The writer of each export format (one line per format; each writer lives in its own module)."""

from __future__ import annotations

from cartrial.apps.exports.fhir import fhir_write
from cartrial.apps.exports.request import ExportFormat, ExportWriter
from cartrial.apps.exports.usdm import usdm_write

WRITERS: dict[ExportFormat, ExportWriter] = {}
WRITERS[ExportFormat.FHIR] = fhir_write
WRITERS[ExportFormat.USDM] = usdm_write
