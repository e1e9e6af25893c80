"""What the labels say, built from a subject's logistics records."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cartrial.apps.logistics.labels import LabelSpec
from cartrial.apps.logistics.selectors import SubjectLogistics
from cartrial.apps.logistics.services import coi_of, din_of
from cartrial.apps.text import render, tr
from cartrial.domain.text import N_, Message, protocol_text
from cartrial.protocols import Protocol

VALIDATION_NOTE = N_("ICCBBA validation FIN — not for clinical use")


def label_specs(data: SubjectLogistics, protocol: Protocol, language: str) -> list[LabelSpec]:
    """The product bag label (CoI), and for each collection a bag label and two tube labels (DIN)."""
    if data.coi is None:
        return []
    coi = coi_of(data.coi)
    subject = data.subject
    zone = ZoneInfo(subject.center.time_zone)
    product = protocol.product("CART_CRYO")
    specs = [
        LabelSpec(
            title=protocol_text(product.label, language),
            eye_readable=coi.eye_readable(),
            barcode_data=coi.barcode_data(),
            lines=[
                render(
                    Message(
                        N_("Subject {subject} · {center}"), {"subject": subject.code, "center": subject.center.code}
                    ),
                    language,
                ),
                tr(N_("For autologous use only"), language),
                render(Message(N_("Store ≤ {limit} °C (LN2 vapour)"), {"limit": product.max_temperature_c}), language),
                tr(VALIDATION_NOTE, language),
            ],
        )
    ]
    for collection, _ in data.collections:
        din = din_of(collection)
        ended_local = collection.ended_at.astimezone(zone)
        ended_utc = collection.ended_at.strftime("%H:%M UTC")
        lines = [
            render(
                Message(
                    N_("Collection {number} · {subject} · {ended}"),
                    {
                        "number": collection.number,
                        "subject": subject.code,
                        "ended": f"{ended_local:%Y-%m-%d %H:%M} {ended_local.tzname()} ({ended_utc})",
                    },
                ),
                language,
            ),
            f"{collection.volume_ml:g} mL"
            + (f" · CD3+ {collection.cd3_cells_e9:g} x10^9" if collection.cd3_cells_e9 else ""),
            tr(VALIDATION_NOTE, language),
        ]
        specs.append(
            LabelSpec(
                title=tr(N_("Apheresis material"), language),
                eye_readable=din.eye_readable(),
                barcode_data=din.barcode_data(),
                lines=lines,
                second_code=coi.eye_readable(),
            )
        )
        for tube in (1, 2):
            specs.append(
                LabelSpec(
                    title=f"Tube {tube} · {subject.code}",
                    eye_readable=din.eye_readable(),
                    barcode_data=din.barcode_data(),
                    lines=[],
                    tube=True,
                )
            )
    return specs
