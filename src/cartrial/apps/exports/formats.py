"""The writer of each export format (one line per format; each writer lives in its own module)."""

from __future__ import annotations

from cartrial.apps.exports.fhir import fhir_write
from cartrial.apps.exports.odm import odm_write
from cartrial.apps.exports.request import ExportFormat, ExportWriter
from cartrial.apps.exports.sdtm import datasetjson_write, define_write
from cartrial.apps.exports.tables import tables_write
from cartrial.apps.exports.usdm import usdm_write

WRITERS: dict[ExportFormat, ExportWriter] = {
    ExportFormat.ODM: odm_write,
    ExportFormat.DEFINE: define_write,
    ExportFormat.DATASETJSON: datasetjson_write,
    ExportFormat.FHIR: fhir_write,
    ExportFormat.USDM: usdm_write,
    ExportFormat.CSV: tables_write,
}
