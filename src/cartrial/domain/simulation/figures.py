"""The simulation's plots as PNG bytes (matplotlib, Agg backend: no display, no file written here).

One drawing for the CLI (written to files) and the page (shown inline): queue length over time,
line use over time, the distribution of inclusion → infusion days, each policy side by side. Texts
are msgids marked with `N_`; the adapter passes its translation function (`text`).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from cartrial.domain.simulation.model import SimulationResult
from cartrial.domain.text import N_

POLICY_LABELS = {"greedy": N_("First come, first served"), "optimised": N_("Optimised (CP-SAT)")}
_COLOURS = {"greedy": "#c0392b", "optimised": "#2471a3"}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _identity(msgid: str) -> str:
    return msgid


def queue_plot(result: SimulationResult, text: Callable[[str], str] = _identity) -> bytes:
    """Patients included and waiting for their apheresis, per day (mean over the replications)."""
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    for summary in result.summaries:
        axes.step(
            range(len(summary.queue_by_day)),
            summary.queue_by_day,
            where="post",
            color=_COLOURS.get(summary.policy),
            label=text(POLICY_LABELS[summary.policy]),
        )
    axes.set_xlabel(text(N_("Days from the start")))
    axes.set_ylabel(text(N_("Patients waiting for apheresis")))
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    return _png(figure)


def line_use_plot(result: SimulationResult, text: Callable[[str], str] = _identity) -> bytes:
    """Manufacturing lines running a batch, per facility and day (mean over the replications), with
    the number of lines as a dashed limit."""
    facilities = result.parameters.facilities
    figure = Figure(figsize=(8, 2.6 * len(facilities)))
    axes_list = figure.subplots(len(facilities), 1, squeeze=False)[:, 0]
    for axes, facility in zip(axes_list, facilities, strict=True):
        for summary in result.summaries:
            series = summary.line_use_by_day[facility.id]
            axes.plot(
                range(len(series)),
                series,
                color=_COLOURS.get(summary.policy),
                label=text(POLICY_LABELS[summary.policy]),
            )
        axes.axhline(facility.lines, color="#555555", linestyle="--", linewidth=1)
        axes.set_title(facility.id, loc="left", fontsize=10)
        axes.set_ylabel(text(N_("Lines in use")))
        axes.set_ylim(0, facility.lines + 0.5)
        axes.grid(alpha=0.3)
    axes_list[0].legend(loc="lower right")
    axes_list[-1].set_xlabel(text(N_("Days from the start")))
    return _png(figure)


def bed_use_plot(result: SimulationResult, text: Callable[[str], str] = _identity) -> bytes:
    """Infusions per week at each center (mean over the replications), with its beds per week dashed."""
    centers = result.parameters.centers
    figure = Figure(figsize=(8, 1.7 * len(centers) + 0.6))
    axes_list = figure.subplots(len(centers), 1, squeeze=False, sharex=True)[:, 0]
    for axes, center in zip(axes_list, centers, strict=True):
        for summary in result.summaries:
            series = summary.bed_use_by_week[center.id]
            axes.step(
                range(len(series)),
                series,
                where="post",
                color=_COLOURS.get(summary.policy),
                label=text(POLICY_LABELS[summary.policy]),
            )
        axes.axhline(center.infusions_per_week, color="#555555", linestyle="--", linewidth=1)
        axes.set_title(center.id, loc="left", fontsize=10)
        axes.set_ylim(0, center.infusions_per_week + 0.5)
        axes.grid(alpha=0.3)
    axes_list[0].legend(loc="lower right")
    axes_list[len(centers) // 2].set_ylabel(text(N_("Infusions per week")))
    axes_list[-1].set_xlabel(text(N_("Weeks from the start")))
    return _png(figure)


def days_plot(result: SimulationResult, text: Callable[[str], str] = _identity) -> bytes:
    """Distribution of the days from inclusion to infusion, per policy (pooled replications)."""
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    pooled = [
        (summary, [w for run in summary.runs for w in run.inclusion_to_infusion_days]) for summary in result.summaries
    ]
    values = [w for _, waits in pooled for w in waits]
    if values:
        bins = range(min(values), max(values) + 2, max(1, (max(values) - min(values)) // 30 + 1))
        for summary, waits in pooled:
            axes.hist(
                waits,
                bins=list(bins),
                alpha=0.55,
                color=_COLOURS.get(summary.policy),
                label=text(POLICY_LABELS[summary.policy]),
            )
        axes.legend(loc="upper right")
    axes.set_xlabel(text(N_("Days from inclusion to infusion")))
    axes.set_ylabel(text(N_("Patients")))
    axes.grid(alpha=0.3)
    return _png(figure)


PLOTS: dict[str, Callable[[SimulationResult, Callable[[str], str]], bytes]] = {
    "queue_length": queue_plot,
    "line_use": line_use_plot,
    "bed_use": bed_use_plot,
    "inclusion_to_infusion_days": days_plot,
}
