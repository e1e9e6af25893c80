"""What the labels say, built from a subject's logistics records."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cartrial.apps.logistics.labels import LabelSpec
from cartrial.apps.logistics.selectors import SubjectLogistics
from cartrial.apps.logistics.services import coi_of, din_of
from cartrial.protocols import Protocol

VALIDATION_NOTE = {
    "en": "ICCBBA validation FIN — not for clinical use",
    "fr": "FIN de validation ICCBBA — pas d'usage clinique",
}


def label_specs(data: SubjectLogistics, protocol: Protocol, language: str) -> list[LabelSpec]:
    """The product bag label (CoI), and for each collection a bag label and two tube labels (DIN)."""
    if data.coi is None:
        return []
    coi = coi_of(data.coi)
    subject = data.subject
    zone = ZoneInfo(subject.center.time_zone)
    fr = language == "fr"
    product = protocol.product("CART_CRYO")
    specs = [
        LabelSpec(
            title=product.label.get(language, product.label["en"]),
            eye_readable=coi.eye_readable(),
            barcode_data=coi.barcode_data(),
            lines=[
                f"{'Patient' if fr else 'Subject'} {subject.code} · {subject.center.code}",
                "Usage autologue uniquement" if fr else "For autologous use only",
                (f"Conserver ≤ {product.max_temperature_c:g} °C (vapeur d'azote)")
                if fr
                else f"Store ≤ {product.max_temperature_c:g} °C (LN2 vapour)",
                VALIDATION_NOTE.get(language, VALIDATION_NOTE["en"]),
            ],
        )
    ]
    for collection, _ in data.collections:
        din = din_of(collection)
        ended_local = collection.ended_at.astimezone(zone)
        ended_utc = collection.ended_at.strftime("%H:%M UTC")
        lines = [
            f"{'Recueil' if fr else 'Collection'} {collection.number} · {subject.code} · "
            f"{ended_local:%Y-%m-%d %H:%M} {ended_local.tzname()} ({ended_utc})",
            f"{collection.volume_ml:g} mL"
            + (f" · CD3+ {collection.cd3_cells_e9:g} x10^9 cells" if collection.cd3_cells_e9 else ""),
            VALIDATION_NOTE.get(language, VALIDATION_NOTE["en"]),
        ]
        specs.append(
            LabelSpec(
                title="Produit d'aphérèse" if fr else "Apheresis material",
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
