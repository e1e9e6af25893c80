"""A small server-side SVG strip of the daily CRS and ICANS grades (no script, no CDN).

One square per day from D0 to the last day shown, one row per syndrome, coloured by grade; days
without an assessment are left blank, days still due are outlined. Colours are SVG presentation
attributes, so the strict Content-Security-Policy (no inline style) does not apply to them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext

from cartrial.apps.toxicity.models import ToxicityAssessment

# Grade 0 green to grade 5 black; the same colours as the table's chips (toxicity.css).
GRADE_COLOURS = ("#cfe8cf", "#ffe08a", "#f6a94f", "#e2553f", "#9c1c1c", "#222222")
CELL_PX = 14
LABEL_PX = 52


def _day_label(day: int) -> str:
    return pgettext("day since infusion", "D%(day)s") % {"day": day}


def grade_strip(assessments: Sequence[ToxicityAssessment], *, last_day: int, missing: Sequence[int]) -> SafeString:
    """The strip as inline SVG, with a title per square (day and grade) for screen readers."""
    by_day = {a.day: a for a in assessments}
    days = range(0, max(last_day, 0) + 1)
    # Room after the last square for the last day's tick label.
    width = LABEL_PX + CELL_PX * len(days) + 24
    rows = ((gettext("CRS"), "crs_grade", 0), (gettext("ICANS"), "icans_grade", 1))
    cells = []
    for name, attribute, row in rows:
        y = 14 + row * (CELL_PX + 4)
        cells.append(format_html('<text x="0" y="{}" font-size="11">{}</text>', y + 11, name))
        for day in days:
            x = LABEL_PX + day * CELL_PX
            assessment = by_day.get(day)
            if assessment is not None:
                grade = getattr(assessment, attribute)
                title = gettext("D%(day)d: %(name)s grade %(grade)d") % {"day": day, "name": name, "grade": grade}
                cells.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-day="{}" data-grade="{}">'
                        "<title>{}</title></rect>",
                        x,
                        y,
                        CELL_PX - 2,
                        CELL_PX,
                        GRADE_COLOURS[grade],
                        day,
                        grade,
                        title,
                    )
                )
            elif day in missing:
                cells.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888" '
                        'stroke-dasharray="2 2"><title>{}</title></rect>',
                        x,
                        y,
                        CELL_PX - 2,
                        CELL_PX,
                        gettext("D%(day)d: assessment due") % {"day": day},
                    )
                )
    ticks = format_html_join(
        "",
        '<text x="{}" y="10" font-size="9">{}</text>',
        ((LABEL_PX + day * CELL_PX, _day_label(day)) for day in days if day % 7 == 0),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" aria-label="{}" '
        'data-testid="grade-strip">{}{}</svg>',
        width,
        14 + 2 * (CELL_PX + 4),
        gettext("Daily CRS and ICANS grades"),
        ticks,
        SafeString("".join(cells)),
    )
