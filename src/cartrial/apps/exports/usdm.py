"""The USDM v4 export: the protocol in force as one USDM JSON file (`cartrial export usdm --out F`).

The protocol is not subject data: the file is the same whatever the caller's centers, subjects or
`--since` (it holds no subject), so the request's filters do not narrow it. The counts say
`subjects=0` and `records` = encounters + scheduled activities (a form at a visit) + eligibility
criteria (docs/exports.md, CDISC USDM v4).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cartrial import __version__
from cartrial.apps.exports.request import ExportCounts, ExportRequest, Progress
from cartrial.apps.text import tr
from cartrial.apps.trial.protocol import protocol_in_force
from cartrial.protocols import Protocol

if TYPE_CHECKING:
    from cartrial.domain.standards.usdm import ProtocolDesign

# The steps reported as progress: terminology loaded, document built, file written.
STEPS = 3


def usdm_write(request: ExportRequest, out: Path, progress: Progress) -> ExportCounts:
    """Write the USDM v4 document of the protocol in force into the file `out`."""
    # The USDM model library takes about a second to import: loaded only when a USDM export runs.
    from cartrial.domain.standards import usdm

    progress(0, STEPS)
    builder = usdm.usdm_builder()
    progress(1, STEPS)
    document, counts = usdm.usdm_document(protocol_design(protocol_in_force()), builder, _french, __version__)
    progress(2, STEPS)
    out.write_text(usdm.usdm_json(document), encoding="utf-8")
    progress(3, STEPS)
    return ExportCounts(subjects=0, records=counts.records)


def protocol_design(protocol: Protocol) -> ProtocolDesign:
    """What of the protocol the USDM document describes (the study product is the drug product)."""
    from cartrial.domain.standards.usdm import ProtocolDesign, StudyProduct

    study = protocol.raw["study"]
    return ProtocolDesign(
        code=protocol.code,
        version=protocol.version,
        title=protocol.title,
        phase=str(study["phase"]),
        sponsor=str(study["sponsor"]),
        effective_date=protocol.effective_date,
        visits=protocol.visits,
        forms=protocol.forms,
        criteria=protocol.criteria,
        indication=protocol.indication,
        product=StudyProduct(code=protocol.drug_product.code, label=protocol.drug_product.label),
    )


def _french(msgid: str) -> str:
    return tr(msgid, "fr")
