"""Plots of observations against the expected course (Plotly figures as data; pages load the local plotly.js).

Conventions on every plot: x = days since infusion (D0), y = the marker on a log scale; grey =
the population's 5-95 % band (virtual cohort of the preset) with its median dotted; blue = this
patient's predictive band (5-95 %, individual fit) with the fitted curve; filled dots = measured
values, open dots = "< LoQ" placed at the limit of quantification (the value is at most there).
Band values of 0 (e.g. B cells in aplasia) are drawn at the marker's display floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext as _

from cartrial.apps.biology.presenters import MARKER_TITLES
from cartrial.apps.biology.selectors import CohortPatient, KineticRow
from cartrial.apps.figures import figure_html
from cartrial.domain.kinetics import Band, Preset, ReappearanceSummary
from cartrial.domain.lab_catalogue import unit_label

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
# Lowest level drawn on each log axis, in the marker's unit (below any assay's LoQ).
DISPLAY_FLOOR = {"car_t": 0.01, "b_cells": 0.01, "anti_dsdna": 1.0}
POPULATION_FILL = "rgba(110, 120, 130, 0.20)"
POPULATION_LINE = "rgba(90, 100, 110, 0.9)"
SUBJECT_FILL = "rgba(11, 92, 143, 0.22)"
SUBJECT_LINE = "#0b5c8f"
OBSERVED = "#b3261e"
PATIENT_COLOURS = ("#0b5c8f", "#b3261e", "#1f7a3a", "#a55d00", "#6a3d9a", "#008b8b", "#c71585", "#4d4d4d")


def _d() -> str:
    """The day-since-infusion prefix: D in English, J in French (J14)."""
    return pgettext("day since infusion", "D")


def _html(figure: go.Figure, div_id: str) -> str:
    return figure_html(figure, div_id, _CONFIG)


def _clip(values: np.ndarray, marker: str) -> list[float]:
    clipped: list[float] = np.maximum(np.asarray(values, dtype=float), DISPLAY_FLOOR[marker]).tolist()
    return clipped


# Daily points are kept while things move fast; later ones are thinned so a two-year plot stays small.
DAILY_UNTIL_DAY = 60
MAX_LATER_POINTS = 150


def _shown_days(days: np.ndarray, x_max: float) -> np.ndarray:
    """Indices of band days to draw: every day to D60, then an even subset up to `x_max`."""
    early = np.flatnonzero(days <= min(DAILY_UNTIL_DAY, x_max))
    later = np.flatnonzero((days > DAILY_UNTIL_DAY) & (days <= x_max))
    step = max(1, math.ceil(later.size / MAX_LATER_POINTS))
    chosen = later[::step]
    if later.size and chosen[-1] != later[-1]:
        chosen = np.append(chosen, later[-1])
    return np.concatenate([early, chosen])


def _band_traces(
    figure: go.Figure, band: Band, marker: str, x_max: float, *, name: str, fill: str, line: str, median: bool
) -> None:
    keep = _shown_days(band.days, x_max)
    days = band.days[keep].tolist()
    lower = _clip(band.lower(marker)[keep], marker)
    upper = _clip(band.upper(marker)[keep], marker)
    figure.add_trace(go.Scatter(x=days, y=upper, mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False))
    figure.add_trace(
        go.Scatter(
            x=days,
            y=lower,
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=fill,
            name=name,
            hoverinfo="skip",
        )
    )
    if median:
        figure.add_trace(
            go.Scatter(
                x=days,
                y=_clip(band.median(marker)[keep], marker),
                mode="lines",
                line={"color": line, "dash": "dot", "width": 1},
                name=_("Population median"),
                hovertemplate=_d() + "%{x}: %{y:.3g}<extra></extra>",
            )
        )


def _observation_traces(
    figure: go.Figure, rows: Sequence[KineticRow], marker: str, unit: str, *, colour: str, name: str, legend: bool
) -> None:
    measured = [row for row in rows if not row.censored]
    censored = [row for row in rows if row.censored]
    figure.add_trace(
        go.Scatter(
            x=[row.day for row in measured],
            y=[max(row.value or 0.0, DISPLAY_FLOOR[marker]) for row in measured],
            mode="markers",
            marker={"color": colour, "size": 8, "symbol": "circle"},
            name=name,
            legendgroup=name,
            showlegend=legend,
            hovertemplate=f"{name}<br>{_d()}%{{x}}: %{{y:.3g}} {unit}<extra></extra>",
        )
    )
    if censored:
        figure.add_trace(
            go.Scatter(
                x=[row.day for row in censored],
                y=[row.loq for row in censored],
                mode="markers",
                marker={"color": colour, "size": 9, "symbol": "circle-open", "line": {"width": 2}},
                name=f"{name} (< LoQ)",
                legendgroup=name,
                showlegend=legend,
                hovertemplate=f"{name}<br>{_d()}%{{x}}: < %{{y:.3g}} {unit} (LoQ)<extra></extra>",
            )
        )


def _layout(figure: go.Figure, marker: str, unit: str, x_max: float, y_top: float, height: int, legend: bool) -> None:
    floor = DISPLAY_FLOOR[marker]
    figure.update_layout(
        title={"text": f"{gettext(MARKER_TITLES[marker])} ({unit})", "font": {"size": 14}, "x": 0.01},
        height=height,
        margin={"l": 55, "r": 10, "t": 36, "b": 40},
        showlegend=legend,
        legend={"font": {"size": 11}},
        plot_bgcolor="#fff",
        hovermode="closest",
    )
    figure.update_xaxes(
        title_text=_("Days since infusion (D0)"), range=[-2, x_max], gridcolor="#eef1f4", zeroline=False
    )
    low, high = math.log10(floor), math.log10(max(y_top * 2.0, floor * 10))
    decades = range(math.floor(low), math.ceil(high) + 1)
    figure.update_yaxes(
        type="log",
        range=[low, high],
        gridcolor="#eef1f4",
        tickvals=[10.0**exponent for exponent in decades],
        ticktext=[power_of_ten(exponent) for exponent in decades],
    )


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(exponent: int) -> str:
    """A decade's label as 10 with a Unicode superscript exponent (1, 10, 10², 10⁻¹).

    Plotly's own "power" format writes the exponent with <sup>, which it draws with an inline
    style attribute that the pages' Content-Security-Policy refuses.
    """
    if exponent == 0:
        return "1"
    if exponent == 1:
        return "10"
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def x_limit(rows: Sequence[KineticRow], horizon: float, minimum: float = 120.0) -> float:
    """Days shown: the last result plus a month, at least `minimum`, at most the band's horizon."""
    last = max((row.day or 0 for row in rows), default=0)
    return float(min(horizon, max(minimum, last + 30)))


def subject_marker_plot(
    marker: str,
    rows: Sequence[KineticRow],
    *,
    population: Band,
    fitted: Band | None,
    expected: np.ndarray | None,
    x_max: float,
    div_id: str,
    height: int = 300,
    legend: bool = True,
) -> str:
    """One marker of one subject: population band, the subject's band and fit, the results."""
    unit = gettext(unit_label(population.units[marker]))
    figure = go.Figure()
    _band_traces(
        figure,
        population,
        marker,
        x_max,
        name=_("Population 5–95 %"),
        fill=POPULATION_FILL,
        line=POPULATION_LINE,
        median=True,
    )
    tops = [float(np.max(population.upper(marker)[population.days <= x_max]))]
    if fitted is not None:
        _band_traces(
            figure,
            fitted,
            marker,
            x_max,
            name=_("This patient, 5–95 % (fit)"),
            fill=SUBJECT_FILL,
            line=SUBJECT_LINE,
            median=False,
        )
        tops.append(float(np.max(fitted.upper(marker)[fitted.days <= x_max])))
        if expected is not None:
            keep = _shown_days(fitted.days, x_max)
            figure.add_trace(
                go.Scatter(
                    x=fitted.days[keep].tolist(),
                    y=_clip(np.asarray(expected)[keep], marker),
                    mode="lines",
                    line={"color": SUBJECT_LINE, "width": 2},
                    name=_("Fitted course"),
                    hovertemplate=_d() + "%{x}: %{y:.3g}<extra></extra>",
                )
            )
    _observation_traces(figure, rows, marker, unit, colour=OBSERVED, name=_("Results"), legend=True)
    tops.extend(row.shown_value or 0.0 for row in rows)
    _layout(figure, marker, unit, x_max, max(tops), height, legend)
    return _html(figure, div_id)


def cohort_marker_plot(
    marker: str, patients: Sequence[CohortPatient], *, population: Band, x_max: float, div_id: str, height: int = 360
) -> str:
    """Every patient's results of one marker over the population band, one colour per patient."""
    unit = gettext(unit_label(population.units[marker]))
    figure = go.Figure()
    _band_traces(
        figure,
        population,
        marker,
        x_max,
        name=_("Population 5–95 %"),
        fill=POPULATION_FILL,
        line=POPULATION_LINE,
        median=True,
    )
    tops = [float(np.max(population.upper(marker)[population.days <= x_max]))]
    for index, patient in enumerate(patients):
        rows = [row for row in patient.series.get(marker, []) if row.day is not None and row.day <= x_max]
        if not rows:
            continue
        colour = PATIENT_COLOURS[index % len(PATIENT_COLOURS)]
        code = patient.subject.code
        figure.add_trace(
            go.Scatter(
                x=[row.day for row in rows],
                y=[max(row.shown_value or 0.0, DISPLAY_FLOOR[marker]) for row in rows],
                mode="lines",
                line={"color": colour, "width": 1.5},
                legendgroup=code,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        _observation_traces(figure, rows, marker, unit, colour=colour, name=code, legend=True)
        tops.extend(row.shown_value or 0.0 for row in rows)
    _layout(figure, marker, unit, x_max, max(tops), height, True)
    return _html(figure, div_id)


def _prior_band_shapes(figure: go.Figure, low: float, middle: float, high: float, label: str) -> None:
    figure.add_hrect(y0=low, y1=high, fillcolor=POPULATION_FILL, line_width=0, layer="below")
    figure.add_hline(
        y=middle,
        line={"color": POPULATION_LINE, "dash": "dot", "width": 1},
        annotation_text=label,
        annotation_position="top left",
        annotation_font_size=11,
    )


def peak_plot(patients: Sequence[CohortPatient], preset: Preset, *, div_id: str, height: int = 320) -> str:
    """Observed CAR-T peak (D0-D28) per patient against the prior's 5-95 % range of the peak."""
    spec = preset.spec("car_t_peak")
    spread = 1.6448536269514722 * math.sqrt(spec.between_patient_variance)
    low, high = spec.typical * math.exp(-spread), spec.typical * math.exp(spread)
    shown = [p for p in patients if p.peak_car_t is not None]
    car_t_unit = gettext(unit_label(preset.car_t_unit))
    figure = go.Figure()
    _prior_band_shapes(
        figure, low, spec.typical, high, _("prior: median %(median)s, 5–95 %%") % {"median": f"{spec.typical:g}"}
    )
    for reached in (True, False):
        group = [p for p in shown if p.peak_reached is reached]
        if not group:
            continue
        figure.add_trace(
            go.Scatter(
                x=[p.subject.code for p in group],
                y=[p.peak_car_t.value for p in group if p.peak_car_t is not None],
                customdata=[p.peak_car_t.day for p in group if p.peak_car_t is not None],
                mode="markers",
                marker={
                    "size": 11,
                    "color": SUBJECT_LINE if reached else "#a55d00",
                    "symbol": "circle" if reached else "triangle-up-open",
                    "line": {"width": 2},
                },
                name=_("Highest value D0–D28") if reached else _("Highest so far (peak may be later)"),
                hovertemplate="%{x}: %{y:.3g} " + car_t_unit + f" ({_d()}%{{customdata}})<extra></extra>",
            )
        )
    figure.update_layout(
        title={"text": _("CAR-T peak per patient (%(unit)s)") % {"unit": car_t_unit}, "font": {"size": 14}},
        height=height,
        margin={"l": 55, "r": 10, "t": 36, "b": 40},
        plot_bgcolor="#fff",
        legend={"orientation": "h", "y": -0.2},
    )
    values = [p.peak_car_t.value or 0.0 for p in shown if p.peak_car_t is not None] + [low, high]
    figure.update_yaxes(
        type="log", range=[math.log10(max(min(values) / 3, 1e-3)), math.log10(max(values) * 3)], gridcolor="#eef1f4"
    )
    figure.update_xaxes(type="category")
    return _html(figure, div_id)


def reappearance_plot(
    patients: Sequence[CohortPatient], reappearance: ReappearanceSummary, *, div_id: str, height: int = 320
) -> str:
    """B-cell reappearance day per patient against the virtual cohort's distribution."""
    quantiles = reappearance.quantile_days
    figure = go.Figure()
    _prior_band_shapes(
        figure,
        quantiles[0.05],
        quantiles[0.5],
        quantiles[0.95],
        _("virtual cohort: median D%(median)s, 5–95 %% D%(low)s–D%(high)s")
        % {"median": f"{quantiles[0.5]:g}", "low": f"{quantiles[0.05]:g}", "high": f"{quantiles[0.95]:g}"},
    )
    back = [p for p in patients if p.reappearance_day is not None]
    waiting = [p for p in patients if p.reappearance_day is None and p.depleted_until_day is not None]
    if back:
        figure.add_trace(
            go.Scatter(
                x=[p.subject.code for p in back],
                y=[p.reappearance_day for p in back],
                mode="markers",
                marker={"size": 11, "color": SUBJECT_LINE},
                name=_("B cells back on"),
                hovertemplate="%{x}: " + _d() + "%{y}<extra></extra>",
            )
        )
    if waiting:
        figure.add_trace(
            go.Scatter(
                x=[p.subject.code for p in waiting],
                y=[p.depleted_until_day for p in waiting],
                mode="markers",
                marker={"size": 11, "color": "#5b6875", "symbol": "triangle-up-open", "line": {"width": 2}},
                name=_("Still depleted on (return later)"),
                hovertemplate="%{x}: > " + _d() + "%{y}<extra></extra>",
            )
        )
    figure.update_layout(
        title={
            "text": _("B-cell reappearance (≥ %(threshold)s cells/µL after depletion)")
            % {"threshold": f"{reappearance.threshold_cells_per_ul:g}"},
            "font": {"size": 14},
        },
        height=height,
        margin={"l": 55, "r": 10, "t": 36, "b": 40},
        plot_bgcolor="#fff",
        legend={"orientation": "h", "y": -0.2},
    )
    days = [p.reappearance_day or 0.0 for p in back] + [float(p.depleted_until_day or 0) for p in waiting]
    figure.update_yaxes(
        title_text=_("Days since infusion"), range=[0, max([quantiles[0.95], *days]) * 1.15], gridcolor="#eef1f4"
    )
    figure.update_xaxes(type="category")
    return _html(figure, div_id)
