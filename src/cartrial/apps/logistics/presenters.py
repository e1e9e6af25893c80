"""What the labels and the deviations say, built from a subject's logistics records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cartrial.apps.form_description import FormFieldOut, form_fields
from cartrial.apps.logistics.forms import ACTIONS, action_form
from cartrial.apps.logistics.labels import LabelSpec
from cartrial.apps.logistics.models import Deviation, Shipment
from cartrial.apps.logistics.selectors import SubjectLogistics, release_specification
from cartrial.apps.logistics.services import coi_of, deviation_owners_of, deviation_text, din_of, place_label
from cartrial.apps.text import render, tr
from cartrial.domain.deviations import (
    KIND_LABELS,
    MOVE_DONE_LABELS,
    MOVE_LABELS,
    STATUS_LABELS,
    DeviationKind,
    DeviationStatus,
    deviation_moves_open_to,
)
from cartrial.domain.manufacturing import QcKind
from cartrial.domain.roles import ACTION_LABELS, ROLE_LABELS, Action, Role
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
    product = protocol.drug_product
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


# --- deviations --------------------------------------------------------------------------------


@dataclass
class DeviationView:
    """One deviation as a page shows it, in the page's language, with the moves the reader may make."""

    deviation: Deviation
    kind_label: str
    status_label: str
    message: str
    place: str
    opened_by: str
    thread: list[dict[str, Any]]
    moves: list[dict[str, str]]
    error: str = ""
    text: str = ""


def _person(user: Any) -> str:
    if user is None:
        return tr(N_("the system"))
    return str(user.get_full_name() or user.get_username())


def _role_label(role: str) -> str:
    try:
        return tr(ROLE_LABELS[Role(role)])
    except ValueError:
        return role


def deviation_place(deviation: Deviation) -> str:
    """Where it happened: the step (or the shipment of a temperature log), and the site recorded."""
    if deviation.step == "temperature_log" and deviation.shipment is not None:
        to_lab = deviation.shipment.direction == Shipment.Direction.TO_LAB
        where = tr(N_("Apheresis material to the lab") if to_lab else N_("Product to the center"))
    else:
        where = tr(place_label(deviation.step)) if deviation.step else ""
    return " · ".join(part for part in (where, deviation.location) if part)


def deviation_view(deviation: Deviation, role: Role | None, *, error: str = "", text: str = "") -> DeviationView:
    """A deviation read with its shipment and prefetched comments (`selectors.deviation_thread`)."""
    status = DeviationStatus(deviation.status)
    return DeviationView(
        deviation=deviation,
        kind_label=tr(KIND_LABELS[DeviationKind(deviation.kind)]),
        status_label=tr(STATUS_LABELS[status]),
        message=render(deviation_text(deviation)),
        place=deviation_place(deviation),
        opened_by=_person(deviation.actor),
        thread=[
            {
                "comment": comment,
                "author": _person(comment.author),
                "role": _role_label(comment.role),
                "move": tr(MOVE_DONE_LABELS.get(comment.move, comment.move)),
            }
            for comment in deviation.comments.all()
        ],
        moves=[
            {"move": move, "label": tr(MOVE_LABELS[move])}
            for move in deviation_moves_open_to(role, status, deviation_owners_of(deviation))
        ],
        error=error,
        text=text,
    )


def deviation_age(opened_at: datetime, now: datetime) -> Message:
    """How long a deviation has waited: hours on its first day, then whole days."""
    hours = max(0.0, (now - opened_at).total_seconds() / 3600)
    if hours < 24:
        return Message(N_("{hours} h"), {"hours": int(hours)})
    return Message(N_("{days} d"), {"days": int(hours // 24)})


# --- the actions' fields, for the API's clients -------------------------------------------------------


def action_fields(action: Action, protocol: Protocol, language: str) -> list[FormFieldOut]:
    """The fields of a logistics action's form (the page's), in `language`; a release test's choice
    says the unit of its result, the range a result can be at all and what the specification accepts."""
    fields = form_fields(action_form(action, protocol, language), language)
    specification = release_specification(protocol)
    for field in fields:
        for choice in field.choices or []:
            spec = specification.get(choice.value) if field.name == "test_code" else None
            if spec is None:
                continue
            choice.specification = render(spec.describe(), language)
            if spec.kind is QcKind.NUMERIC:
                choice.unit = spec.unit or None
                if spec.plausible is not None:
                    choice.minimum, choice.maximum = spec.plausible.minimum, spec.plausible.maximum
    return fields


def action_label(action: Action, language: str) -> str:
    return tr(ACTION_LABELS[action], language)


# The actions sent as `data` to the actions endpoint (a data-logger file has its own endpoint).
DATA_ACTIONS: tuple[Action, ...] = tuple(a for a in ACTIONS if a is not Action.IMPORT_TEMPERATURE_LOG)
