"""Vein-to-vein time: per patient, the duration of each logistics step; per center, median and range.

logistics.md §4.2: vein-to-vein time (leukapheresis to infusion) is the measure the field
compares (ZUMA-1 median 24 days, JULIET 54 days) and shortening it changes outcomes; the
intervals reported here are apheresis → release, release → infusion and apheresis → infusion.

Pure: the apps layer gathers the milestone times, this module measures.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cartrial.domain.text import N_

SECONDS_PER_DAY = 86400.0

INTERVALS: tuple[tuple[str, str, str], ...] = (
    ("apheresis_to_release", "apheresis_at", "release_at"),
    ("release_to_infusion", "release_at", "infusion_at"),
    ("apheresis_to_infusion", "apheresis_at", "infusion_at"),
)
INTERVAL_LABELS: dict[str, str] = {
    "apheresis_to_release": N_("Apheresis → release"),
    "release_to_infusion": N_("Release → infusion"),
    "apheresis_to_infusion": N_("Apheresis → infusion (vein to vein)"),
}
ALL_CENTERS = "ALL"


@dataclass(frozen=True)
class Milestones:
    """When the first apheresis ended, the product was released and infused (None: not yet)."""

    subject_code: str
    center_code: str
    apheresis_at: datetime | None
    release_at: datetime | None
    infusion_at: datetime | None

    def interval_days(self, name: str) -> float | None:
        for interval, start_name, end_name in INTERVALS:
            if interval == name:
                start, end = getattr(self, start_name), getattr(self, end_name)
                if start is None or end is None:
                    return None
                return days_between(start, end)
        raise KeyError(name)


@dataclass(frozen=True)
class IntervalSummary:
    """Median and range of one interval over the patients who reached both ends."""

    interval: str
    count: int
    median_days: float | None
    min_days: float | None
    max_days: float | None
    values_days: tuple[float, ...]


@dataclass(frozen=True)
class StepDuration:
    label: str
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return days_between(self.start, self.end)


def days_between(start: datetime, end: datetime) -> float:
    """Elapsed days between two aware instants.

    Through UTC: Python subtracts two times of the same zone by wall clock, which would lose or
    gain the hour of a clock change.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("vein-to-vein times need time zones")
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / SECONDS_PER_DAY


def summarise(milestones: Iterable[Milestones]) -> dict[str, dict[str, IntervalSummary]]:
    """Per center code and for all centers (`ALL`): each interval's count, median, min and max in days."""
    groups: dict[str, list[Milestones]] = {}
    for item in milestones:
        groups.setdefault(item.center_code, []).append(item)
        groups.setdefault(ALL_CENTERS, []).append(item)
    return {center: {name: _summary(name, rows) for name, _, _ in INTERVALS} for center, rows in groups.items()}


def _summary(name: str, rows: Sequence[Milestones]) -> IntervalSummary:
    values = tuple(sorted(v for v in (row.interval_days(name) for row in rows) if v is not None))
    if not values:
        return IntervalSummary(name, 0, None, None, None, ())
    return IntervalSummary(name, len(values), statistics.median(values), values[0], values[-1], values)


def step_durations(points: Sequence[tuple[str, datetime]]) -> list[StepDuration]:
    """Consecutive milestones (label, time) as steps named `start → end`, each with its duration.

    Points must be in time order; a step that would run backwards means a record is wrong and is
    refused rather than shown as a negative duration.
    """
    steps = []
    for (start_label, start), (end_label, end) in itertools.pairwise(points):
        if end < start:
            raise ValueError(f"'{end_label}' is recorded before '{start_label}': the records are out of order")
        steps.append(StepDuration(f"{start_label} → {end_label}", start, end))
    return steps
