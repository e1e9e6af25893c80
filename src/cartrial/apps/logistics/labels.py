"""Printable labels (PDF): the product bag, each collection's bag and tubes.

Each label carries the eye-readable code with its check character K boxed beside it (never in
the barcode, logistics.md §2 and docs/identity.md), a Code 128 linear barcode of the ISBT 128
data structure (`&/` + CoI, `=` + DIN + type-3 flag) and a DataMatrix of the same data.
Identifiers are generated for the ICCBBA validation FINs only, so every label says so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import code128, createBarcodeDrawing
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from cartrial.domain.identity import EyeReadable

BAG_SIZE = (100 * mm, 62 * mm)
TUBE_SIZE = (60 * mm, 28 * mm)


@dataclass(frozen=True)
class LabelSpec:
    """What one label says: a title, the eye-readable code and K, barcode data, and lines of text."""

    title: str
    eye_readable: EyeReadable
    barcode_data: str
    lines: Sequence[str]
    tube: bool = False
    second_code: EyeReadable | None = None


def labels_pdf(labels: Sequence[LabelSpec], *, document_title: str) -> bytes:
    """One page per label, sized for a thermal label printer (bag 100 × 62 mm, tube 60 × 28 mm)."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=BAG_SIZE)
    canvas.setTitle(document_title)
    canvas.setAuthor("cartrial")
    for label in labels:
        size = TUBE_SIZE if label.tube else BAG_SIZE
        canvas.setPageSize(size)
        (_draw_tube if label.tube else _draw_bag)(canvas, label, size)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _boxed(canvas: Canvas, x: float, y: float, code: EyeReadable, font_size: float) -> None:
    """The eye-readable code, then K in a box (ST-001 §7.5.1.1)."""
    canvas.setFont("Helvetica-Bold", font_size)
    canvas.drawString(x, y, code.text)
    width = canvas.stringWidth(code.text, "Helvetica-Bold", font_size)
    box = font_size * 1.25
    left = x + width + font_size * 0.5
    canvas.rect(left, y - font_size * 0.28, box, box, stroke=1, fill=0)
    canvas.drawCentredString(left + box / 2, y, code.check_character)


def _datamatrix(canvas: Canvas, data: str, x: float, y: float, side: float) -> None:
    """A DataMatrix (ECC 200) of `data`, scaled to a square of `side`."""
    drawing = createBarcodeDrawing("ECC200DataMatrix", value=data)
    scale = side / max(drawing.width, drawing.height)
    canvas.saveState()
    canvas.translate(x, y)
    canvas.scale(scale, scale)
    renderPDF.draw(drawing, canvas, 0, 0)
    canvas.restoreState()


def _draw_bag(canvas: Canvas, label: LabelSpec, size: tuple[float, float]) -> None:
    width, height = size
    margin = 4 * mm
    canvas.setLineWidth(0.8)
    canvas.roundRect(1.5 * mm, 1.5 * mm, width - 3 * mm, height - 3 * mm, 2 * mm)
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(margin, height - margin - 6, label.title)
    barcode = code128.Code128(label.barcode_data, barHeight=11 * mm, barWidth=0.30 * mm, quiet=False)
    barcode.drawOn(canvas, margin, height - margin - 9 - 11 * mm)
    canvas.setFont("Helvetica", 6)
    canvas.drawString(margin, height - margin - 15 - 11 * mm, label.barcode_data)
    _boxed(canvas, margin, height - margin - 25 - 11 * mm, label.eye_readable, 12)
    y = height - margin - 34 - 11 * mm
    if label.second_code is not None:
        _boxed(canvas, margin, y, label.second_code, 8)
        y -= 11
    canvas.setFont("Helvetica", 7)
    for line in label.lines:
        canvas.drawString(margin, y, line)
        y -= 9
    _datamatrix(canvas, label.barcode_data, width - margin - 20 * mm, height - margin - 26 * mm, 20 * mm)


def _draw_tube(canvas: Canvas, label: LabelSpec, size: tuple[float, float]) -> None:
    width, height = size
    margin = 2.5 * mm
    canvas.setFont("Helvetica-Bold", 6)
    canvas.drawString(margin, height - margin - 5, label.title)
    barcode = code128.Code128(label.barcode_data, barHeight=7 * mm, barWidth=0.19 * mm, quiet=False)
    barcode.drawOn(canvas, margin, height - margin - 7 - 7 * mm)
    _boxed(canvas, margin, margin + 4, label.eye_readable, 8)
    _datamatrix(canvas, label.barcode_data, width - margin - 12 * mm, margin, 12 * mm)
