"""Plotly figures in pages as data, not scripts: the pages' Content-Security-Policy runs no inline script.

A figure is an empty <div> and its JSON in `<script type="application/json">` (never executed);
`static/cartrial/cartrial.js` draws it with the local plotly.js on page load and after each
htmx swap. Shared by the logistics, biology and dashboard plots.

`PlainFigure` builds a figure as the plain data plotly.js reads, with the calls of plotly's
`go.Figure` the plots use (`add_trace`, `add_bar`, `update_layout` with its `xaxis_title` shorthand,
`add_vrect`, `add_vline`): plotly's objects validate every property as it is set, which cost the
study dashboard most of its time (docs/benchmarks.md, "Load").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import plotly.graph_objects as go
from django.utils.html import format_html, json_script

# Where `add_vrect` writes a band's label, as plotly's `annotation_position`.
_LABEL_PLACES = {
    "top left": {"y": 1, "yanchor": "top", "xanchor": "left"},
    "bottom left": {"y": 0, "yanchor": "bottom", "xanchor": "left"},
}


@cache
def _template() -> dict[str, Any]:
    """plotly's default template as data, built once: the plain figures look like the others."""
    template: dict[str, Any] = json.loads(go.Figure().to_json())["layout"]["template"]
    return template


def _nested(key: str, value: Any) -> dict[str, Any]:
    """plotly's shorthand `xaxis_title="x"` as `{"xaxis": {"title": {"text": "x"}}}`."""
    head, _, rest = key.partition("_")
    if not rest:
        return {head: value}
    if rest == "title" and not isinstance(value, dict):
        return {head: {"title": {"text": value}}}
    return {head: _nested(rest, value)}


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@dataclass
class PlainFigure:
    """A Plotly figure as plain data: traces and layout, as plotly.js reads them."""

    data: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def add_bar(self, **values: Any) -> None:
        self.data.append({"type": "bar", **values})

    def update_layout(self, **values: Any) -> None:
        for key, value in values.items():
            _merge(self.layout, _nested(key, value))

    def add_vrect(self, *, x0: float, x1: float, annotation_text: str, annotation_position: str, **shape: Any) -> None:
        """A band over the whole height from x0 to x1, with its label (`line_width` as plotly spells it)."""
        line = {"width": shape.pop("line_width")} if "line_width" in shape else {}
        rect = {"type": "rect", "x0": x0, "x1": x1, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain"}
        self.layout.setdefault("shapes", []).append({**rect, **shape, **({"line": line} if line else {})})
        label = {"text": annotation_text, "x": x0, "xref": "x", "yref": "y domain", "showarrow": False}
        self.layout.setdefault("annotations", []).append({**label, **_LABEL_PLACES[annotation_position]})

    def add_vline(self, *, x: float, line: dict[str, Any]) -> None:
        """A vertical line over the whole height at x."""
        vline = {"type": "line", "x0": x, "x1": x, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain", "line": line}
        self.layout.setdefault("shapes", []).append(vline)

    def as_data(self) -> dict[str, Any]:
        return {"data": self.data, "layout": {"template": _template(), **self.layout}}


def scatter(**values: Any) -> dict[str, Any]:
    """A scatter trace (lines, markers) as data."""
    return {"type": "scatter", **values}


def bar(**values: Any) -> dict[str, Any]:
    """A bar trace as data."""
    return {"type": "bar", **values}


def figure_html(figure: go.Figure | PlainFigure, div_id: str, config: Mapping[str, Any]) -> str:
    """The figure's placeholder and data for `cartrial.js` (JSON escaped for embedding in HTML)."""
    data_id = f"{div_id}-figure"
    data = figure.as_data() if isinstance(figure, PlainFigure) else json.loads(figure.to_json())
    payload = {"figure": data, "config": dict(config)}
    placeholder = '<div id="{}" class="plotly-figure" data-figure="{}"></div>{}'
    return str(format_html(placeholder, div_id, data_id, json_script(payload, data_id)))
