"""Plots of the logistics pages (Plotly figures as data: the page loads the local plotly.js and draws them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from cartrial.apps.figures import figure_html
from cartrial.domain.vein_to_vein import INTERVAL_LABELS, INTERVALS, IntervalSummary, StepDuration
from cartrial.locale import translator

_CONFIG = {"displaylogo": False, "responsive": True}


def _html(figure: go.Figure, div_id: str) -> str:
    return figure_html(figure, div_id, _CONFIG)


def temperature_plot(
    readings: Sequence[tuple[datetime, float, int]],
    *,
    limit_min_c: float,
    limit_max_c: float,
    excursions: Sequence[Mapping[str, Any]],
    time_zone: str,
    language: str,
    div_id: str,
) -> str:
    """The logged curve in the center's local time (UTC in the hover), the limits, the excursions shaded."""
    zone = ZoneInfo(time_zone)
    local = [at.astimezone(zone).replace(tzinfo=None) for at, _, _ in readings]
    utc = [at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") for at, _, _ in readings]
    label_t = "Température (°C)" if language == "fr" else "Temperature (°C)"
    figure = go.Figure(
        go.Scatter(
            x=local,
            y=[c for _, c, _ in readings],
            mode="lines+markers",
            marker={"size": 4},
            name=label_t,
            customdata=[[u, line] for u, (_, _, line) in zip(utc, readings, strict=True)],
            hovertemplate="%{x|%Y-%m-%d %H:%M} ("
            + time_zone
            + ")<br>%{customdata[0]}<br>%{y:.1f} °C"
            + ("<br>ligne %{customdata[1]}" if language == "fr" else "<br>line %{customdata[1]}")
            + "<extra></extra>",
        )
    )
    lower, upper = ("min", "max")
    figure.add_hline(
        y=limit_max_c, line={"color": "#c0392b", "dash": "dash"}, annotation_text=f"{upper} {limit_max_c:g} °C"
    )
    figure.add_hline(
        y=limit_min_c, line={"color": "#2471a3", "dash": "dash"}, annotation_text=f"{lower} {limit_min_c:g} °C"
    )
    for excursion in excursions:
        start = datetime.fromisoformat(excursion["start"]).astimezone(zone).replace(tzinfo=None)
        end = datetime.fromisoformat(excursion["end"]).astimezone(zone).replace(tzinfo=None)
        figure.add_vrect(x0=start, x1=end, fillcolor="#f5b7b1", opacity=0.45, line_width=0)
    figure.update_layout(
        height=320,
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        xaxis_title=("Heure locale" if language == "fr" else "Local time") + f" ({time_zone})",
        yaxis_title=label_t,
        showlegend=False,
    )
    return _html(figure, div_id)


def vein_to_vein_plot(summaries: Mapping[str, Mapping[str, IntervalSummary]], language: str) -> str:
    """Per center and overall: each interval's values as points, median as a bar, range as error bars."""
    centers = sorted(c for c in summaries if c != "ALL") + (["ALL"] if "ALL" in summaries else [])
    figure = go.Figure()
    for name, _, _ in INTERVALS:
        label = translator(language)(INTERVAL_LABELS[name])
        medians, low, high, texts = [], [], [], []
        for center in centers:
            summary = summaries[center][name]
            median = summary.median_days
            medians.append(median)
            low.append(0 if median is None or summary.min_days is None else median - summary.min_days)
            high.append(0 if median is None or summary.max_days is None else summary.max_days - median)
            texts.append(
                f"n={summary.count}" + (f", {summary.min_days:.1f}–{summary.max_days:.1f} j" if summary.count else "")
            )
        figure.add_bar(
            name=label,
            x=[("Tous" if c == "ALL" and language == "fr" else "All" if c == "ALL" else c) for c in centers],
            y=medians,
            error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low},
            hovertext=texts,
            hovertemplate="%{x}: %{y:.1f} "
            + ("jours" if language == "fr" else "days")
            + " (%{hovertext})<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=360,
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        yaxis_title=("Jours (médiane, étendue)" if language == "fr" else "Days (median, range)"),
        legend={"orientation": "h", "y": -0.2},
    )
    return _html(figure, "vein-to-vein-plot")


def timeline_plot(steps: Sequence[StepDuration], time_zone: str, language: str) -> str:
    """One patient's steps from apheresis to infusion as a Gantt-like chart (local time)."""
    zone = ZoneInfo(time_zone)
    figure = go.Figure()
    for step in steps:
        start = step.start.astimezone(zone).replace(tzinfo=None)
        end = step.end.astimezone(zone).replace(tzinfo=None)
        figure.add_trace(
            go.Scatter(
                x=[start, end],
                y=[step.label, step.label],
                mode="lines+markers",
                line={"width": 10},
                hovertemplate=f"{step.label}: {step.days:.1f} "
                + ("j" if language == "fr" else "d")
                + "<extra></extra>",
                showlegend=False,
            )
        )
    figure.update_layout(
        height=60 + 32 * max(1, len(steps)),
        margin={"l": 330, "r": 20, "t": 10, "b": 30},
        yaxis={"autorange": "reversed"},
    )
    return _html(figure, "timeline-plot")
