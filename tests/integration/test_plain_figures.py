"""The dashboards' plain figures are the data plotly's own figures give for the same calls."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

from cartrial.apps.figures import PlainFigure, bar, scatter


def _draw(figure: Any, trace: Any, bar_trace: Any) -> dict[str, Any]:
    figure.add_trace(trace(x=[0, 1, 2], y=[3.0, 1.5, 2.0], mode="lines+markers", name="CRP", meta="crp"))
    figure.add_trace(bar_trace(x=["D28", "M3"], y=[50.0, 75.0], text=["1", "3"], meta="doris"))
    figure.add_bar(y=["BDX-001"], x=[40], orientation="h", customdata=["Included"], meta="course")
    figure.add_vrect(
        x0=0.5, x1=4.5, fillcolor="#e67e22", opacity=0.28, line_width=0, name="episode:crs:2",
        annotation_text="CRS 2", annotation_position="top left",
    )  # fmt: skip
    figure.add_vrect(
        x0=2.5, x1=9.5, fillcolor="#8e44ad", opacity=0.2, line_width=0, name="episode:icans:1",
        annotation_text="ICANS 1", annotation_position="bottom left",
    )  # fmt: skip
    figure.update_layout(
        height=260,
        margin={"l": 60, "r": 20},
        xaxis_title="Days since infusion (D0)",
        yaxis_title="mg/L",
        yaxis_type="log",
        yaxis_range=[0, 100],
        xaxis={"dtick": 1},
        legend={"orientation": "h", "y": -0.3},
        barmode="group",
    )
    figure.update_layout(margin={"t": 20})
    figure.add_vline(x=0, line={"color": "#555", "dash": "dot", "width": 1})
    data: dict[str, Any] = figure.as_data() if isinstance(figure, PlainFigure) else json.loads(figure.to_json())
    return data


def test_a_plain_figure_is_the_data_of_plotlys_figure() -> None:
    plotly_data = _draw(go.Figure(), go.Scatter, go.Bar)
    plain_data = _draw(PlainFigure(), scatter, bar)
    assert plain_data == plotly_data
    assert [s.get("name") for s in plain_data["layout"]["shapes"]] == ["episode:crs:2", "episode:icans:1", None]
    assert plain_data["layout"]["margin"] == {"l": 60, "r": 20, "t": 20}
