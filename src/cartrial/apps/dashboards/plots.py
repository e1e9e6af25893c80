"""Plots of the dashboards: Plotly figures as data (`apps/figures.py`), drawn by the local plotly.js.

Each figure is wrapped in a `<figure>` with its title as `<figcaption>` (the accessible name of the
chart, FR/EN), and carries what it shows as attributes put there for readers and tests alike:
`data-series` lists the series' keys, each trace's `meta` is its key, each shaded episode's shape
is named `episode:<kind>:<grade>`. Adding a series is one `add_series` call, adding an episode band
one `add_band` call (the lead's CRS / ICANS episodes): `TimeCoursePlot` holds both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, pgettext

from cartrial.apps.figures import PlainFigure, bar, figure_html, scatter
from cartrial.domain.dashboards import (
    AE_GRADES,
    EPISODE_GRADES,
    FLOW_LABELS,
    FLOW_STAGES,
    CenterInclusions,
    EpisodeBand,
    EpisodeGrades,
    Series,
    SwimmerRow,
    TermGrades,
    VisitRate,
)
from cartrial.domain.lab_catalogue import unit_label
from cartrial.domain.pathway import STATE_LABELS, State

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
SERIES_COLOURS = ("#0b5c8f", "#b3261e", "#1f7a3a", "#a55d00", "#6a3d9a", "#008b8b", "#c71585", "#4d4d4d")
# Episode bands: one colour per kind of episode, deeper with the grade.
BAND_COLOURS = {"crs": "#e67e22", "icans": "#8e44ad"}
BAND_DEFAULT_COLOUR = "#7f8c8d"
# Each band's label is its syndrome's short name (msgids: "SRC" in French), then its grade.
BAND_LABELS = {"crs": gettext_noop("CRS"), "icans": gettext_noop("ICANS")}
# CRS labelled at the top, ICANS at the bottom: an ICANS starting with a CRS does not hide its label.
BAND_LABEL_POSITIONS = {"crs": "top left", "icans": "bottom left"}


def _d() -> str:
    """The day-since-infusion prefix: D in English, J in French (J14)."""
    return pgettext("day since infusion", "D")


def _wrapped(figure: PlainFigure, div_id: str, title: str, series: Sequence[str]) -> str:
    """The figure in a `<figure>` named by its caption, listing its series."""
    return str(
        format_html(
            '<figure class="chart" id="{}" aria-labelledby="{}-title" data-series="{}">'
            '<figcaption id="{}-title">{}</figcaption>{}</figure>',
            div_id + "-box",
            div_id,
            " ".join(series),
            div_id,
            title,
            figure_html(figure, div_id, _CONFIG),
        )
    )


@dataclass
class TimeCoursePlot:
    """One panel of a subject's time courses: series over days since D0 and shaded episodes."""

    div_id: str
    title: str
    y_title: str
    log: bool = False
    series: list[Series] = field(default_factory=list)
    bands: list[EpisodeBand] = field(default_factory=list)

    def add_series(self, series: Series) -> None:
        """Draw one more series (markers and lines; open symbols for '< LoQ' values)."""
        self.series.append(series)

    def add_band(self, band: EpisodeBand) -> None:
        """Shade one episode (CRS, ICANS...) from its start day to its end day, labelled with its grade."""
        self.bands.append(band)

    def html(self) -> str:
        figure = PlainFigure()
        x_max = max((p.day for s in self.series for p in s.points), default=28)
        for index, series in enumerate(self.series):
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            unit = _(unit_label(series.unit))
            figure.add_trace(
                scatter(
                    x=[p.day for p in series.points],
                    y=[p.value for p in series.points],
                    mode="lines+markers",
                    name=_(series.label),
                    meta=series.key,
                    line={"color": colour, "width": 1.5},
                    marker={
                        "color": colour,
                        "size": 7,
                        "symbol": ["circle-open" if p.censored else "circle" for p in series.points],
                    },
                    hovertemplate=f"{_(series.label)}<br>{_d()}%{{x}}: %{{y:.3g}} {unit}<extra></extra>",
                )
            )
        for band in self.bands:
            colour = BAND_COLOURS.get(band.kind, BAND_DEFAULT_COLOUR)
            end = band.end_day if band.end_day is not None else max(x_max, band.start_day)
            figure.add_vrect(
                x0=band.start_day - 0.5,
                x1=end + 0.5,
                fillcolor=colour,
                opacity=min(0.12 + 0.08 * band.grade, 0.5),
                line_width=0,
                name=f"episode:{band.kind}:{band.grade}",
                annotation_text=f"{_(BAND_LABELS.get(band.kind, band.kind.upper()))} {band.grade}",
                annotation_position=BAND_LABEL_POSITIONS.get(band.kind, "top left"),
            )
        figure.update_layout(
            height=260,
            margin={"l": 60, "r": 20, "t": 20, "b": 40},
            xaxis_title=_("Days since infusion (D0)"),
            yaxis_title=self.y_title,
            yaxis_type="log" if self.log else "linear",
            legend={"orientation": "h", "y": -0.3},
            showlegend=len(self.series) > 1,
        )
        figure.add_vline(x=0, line={"color": "#555", "dash": "dot", "width": 1})
        return _wrapped(figure, self.div_id, self.title, [s.key for s in self.series])


def inclusions_plot(rows: Sequence[CenterInclusions]) -> str:
    """Cumulative inclusions per center, month by month (one step line per center)."""
    figure = PlainFigure()
    for index, row in enumerate(rows):
        figure.add_trace(
            scatter(
                x=list(row.months),
                y=list(row.cumulative),
                mode="lines+markers",
                line={"shape": "hv", "color": SERIES_COLOURS[index % len(SERIES_COLOURS)]},
                name=row.center,
                meta=row.center,
                customdata=list(row.counts),
                hovertemplate=f"{row.center} %{{x}}: %{{y}} (+%{{customdata}})<extra></extra>",
            )
        )
    figure.update_layout(
        height=320,
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        xaxis_title=_("Month of inclusion"),
        yaxis_title=_("Subjects included (cumulative)"),
        xaxis_type="category",
    )
    return _wrapped(figure, "inclusions-plot", _("Inclusions per center over time"), [r.center for r in rows])


def flow_plot(flow: dict[str, int]) -> str:
    """Screened → included → infused → in remission, as bars."""
    labels = [_(FLOW_LABELS[stage]) for stage in FLOW_STAGES]
    figure = PlainFigure()
    figure.add_trace(
        bar(
            x=labels,
            y=[flow[stage] for stage in FLOW_STAGES],
            text=[str(flow[stage]) for stage in FLOW_STAGES],
            meta="flow",
            marker={"color": SERIES_COLOURS[0]},
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    )
    figure.update_layout(height=300, margin={"l": 60, "r": 20, "t": 20, "b": 60}, yaxis_title=_("Subjects"))
    return _wrapped(figure, "flow-plot", _("Flow of subjects"), ["flow"])


def rates_plot(rates: Sequence[VisitRate]) -> str:
    """DORIS and LLDAS rates (%) per follow-up visit, among the subjects assessed there."""
    shown = [rate for rate in rates if rate.assessed]
    figure = PlainFigure()
    for key, name, colour in (
        ("doris", _("DORIS remission"), SERIES_COLOURS[2]),
        ("lldas", "LLDAS", SERIES_COLOURS[0]),
    ):
        figure.add_bar(
            x=[rate.code for rate in shown],
            y=[rate.doris_pct if key == "doris" else rate.lldas_pct for rate in shown],
            customdata=[[getattr(rate, key), rate.assessed] for rate in shown],
            name=name,
            meta=key,
            marker={"color": colour},
            hovertemplate="%{x}: %{y:.0f} % (%{customdata[0]}/%{customdata[1]})<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=300,
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        xaxis_title=_("Follow-up visit"),
        yaxis_title=_("Subjects assessed (%)"),
        yaxis_range=[0, 100],
    )
    return _wrapped(figure, "rates-plot", _("DORIS and LLDAS per follow-up visit"), ["doris", "lldas"])


def swimmer_plot(rows: Sequence[SwimmerRow]) -> str:
    """One bar per subject from inclusion to today (or the end of its course), with apheresis, D0,
    the visits done and the remission marker; pseudonymous codes only."""
    codes = [row.code for row in rows]
    figure = PlainFigure()
    figure.add_bar(
        y=codes,
        x=[row.end_day for row in rows],
        orientation="h",
        name=_("Course since inclusion"),
        meta="course",
        marker={"color": ["#b0b7bf" if row.final else "#cfe3f1" for row in rows]},
        customdata=[_(STATE_LABELS[State(row.state)]) for row in rows],
        hovertemplate="%{y}: %{x} " + _("days") + " · %{customdata}<extra></extra>",
    )

    def markers(key: str, name: str, symbol: str, colour: str, points: list[tuple[str, int, str]]) -> None:
        figure.add_trace(
            scatter(
                y=[code for code, _day, _text in points],
                x=[day for _code, day, _text in points],
                text=[text for _code, _day, text in points],
                mode="markers",
                name=name,
                meta=key,
                marker={"symbol": symbol, "size": 10, "color": colour},
                hovertemplate="%{y} · %{text}: %{x}<extra></extra>",
            )
        )

    markers(
        "apheresis",
        _("Apheresis"),
        "triangle-up",
        SERIES_COLOURS[3],
        [(r.code, r.apheresis_day, _("Apheresis")) for r in rows if r.apheresis_day is not None],
    )
    markers(
        "infusion",
        _("Infusion (D0)"),
        "diamond",
        SERIES_COLOURS[1],
        [(r.code, r.infusion_day, _d() + "0") for r in rows if r.infusion_day is not None],
    )
    markers(
        "visits",
        _("Visits done"),
        "line-ns-open",
        "#333333",
        [(r.code, day, code) for r in rows for code, day in r.visit_days],
    )
    markers(
        "remission",
        _("DORIS remission sustained from"),
        "star",
        SERIES_COLOURS[2],
        [(r.code, r.remission_day, r.remission_visit or "") for r in rows if r.remission_day is not None],
    )
    figure.update_layout(
        height=120 + 28 * max(1, len(rows)),
        margin={"l": 80, "r": 20, "t": 20, "b": 40},
        xaxis_title=_("Days since inclusion"),
        yaxis={"autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "y": -0.15},
        barmode="overlay",
    )
    return _wrapped(
        figure, "swimmer-plot", _("Each subject's course"), ["course", "apheresis", "infusion", "visits", "remission"]
    )


# Grade colours of the AE chart: CTCAE 1 (mild) to 5 (death), lighter to darker.
GRADE_COLOURS = ("#9ecae1", "#fdae6b", "#e6550d", "#a50f15", "#252525")
# The AE chart's height: room for the axis and legend, then one row per term.
AE_PLOT_BASE_PX = 120
AE_PLOT_ROW_PX = 36


def adverse_events_plot(terms: Sequence[TermGrades], labels: Sequence[str]) -> str:
    """Events per term (`labels` in the reader's language, in `terms` order) stacked by CTCAE grade.

    Horizontal bars, one row per term, the figure growing with the terms: CTCAE terms are long and
    read only when written level. The serious events are counted apart from the grades (the table's
    "Serious" column), not drawn: a marker on the count axis would read as one more grade.
    """
    figure = PlainFigure()
    most = max((row.total for row in terms), default=1)  # counts are whole: whole ticks, ten at most
    for index, grade in enumerate(AE_GRADES):
        figure.add_bar(
            y=list(labels),
            x=[row.by_grade[index] for row in terms],
            orientation="h",
            name=_("Grade %(grade)s") % {"grade": grade},
            meta=f"grade_{grade}",
            marker={"color": GRADE_COLOURS[index]},
            hovertemplate="%{y} · " + _("Grade %(grade)s") % {"grade": grade} + ": %{x}<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=AE_PLOT_BASE_PX + AE_PLOT_ROW_PX * max(1, len(terms)),
        margin={"l": 20, "r": 20, "t": 40, "b": 50},
        xaxis={"title": {"text": _("Adverse events")}, "dtick": max(1, -(-most // 10)), "rangemode": "tozero"},
        yaxis={"title": {"text": _("CTCAE term")}, "automargin": True, "autorange": "reversed", "type": "category"},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "traceorder": "normal"},
    )
    keys = [f"grade_{grade}" for grade in AE_GRADES]
    return _wrapped(figure, "adverse-events-plot", _("Adverse events by term and grade"), keys)


def episodes_plot(rows: Sequence[EpisodeGrades], labels: Sequence[str]) -> str:
    """Subjects by the maximum grade of their CRS and of their ICANS episodes (one bar group per grade)."""
    figure = PlainFigure()
    for index, (row, name) in enumerate(zip(rows, labels, strict=True)):
        figure.add_bar(
            x=[str(grade) for grade in EPISODE_GRADES],
            y=list(row.subjects_by_grade),
            name=name,
            meta=row.kind,
            marker={"color": BAND_COLOURS.get(row.kind, SERIES_COLOURS[index % len(SERIES_COLOURS)])},
            hovertemplate=name + " · " + _("maximum grade") + " %{x}: %{y}<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=300,
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        xaxis_title=_("Maximum grade (ASTCT)"),
        yaxis_title=_("Subjects"),
        xaxis_type="category",
    )
    return _wrapped(figure, "episodes-plot", _("CRS and ICANS: subjects by maximum grade"), [row.kind for row in rows])
