"""Plotly figures in pages as data, not scripts: the pages' Content-Security-Policy runs no inline script.

A figure is an empty <div> and its JSON in `<script type="application/json">` (never executed);
`static/cartrial/cartrial.js` draws it with the local plotly.js on page load and after each
htmx swap. Shared by the logistics and biology plots.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from django.utils.html import format_html, json_script


def figure_html(figure: go.Figure, div_id: str, config: Mapping[str, Any]) -> str:
    """The figure's placeholder and data for `cartrial.js` (JSON escaped for embedding in HTML)."""
    data_id = f"{div_id}-figure"
    payload = {"figure": json.loads(figure.to_json()), "config": dict(config)}
    placeholder = '<div id="{}" class="plotly-figure" data-figure="{}"></div>{}'
    return str(format_html(placeholder, div_id, data_id, json_script(payload, data_id)))
