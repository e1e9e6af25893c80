"""Virtual cohorts: sample patients, simulate them in chunks, return 5/50/95 % bands per marker.

Why histograms: exact quantiles need every patient's value at every day (N × T × markers
numbers: 26 GB for a million patients over a year). Instead each chunk is marched through time
and, at each output day, adds its values to a per-(marker, day) histogram of log10(value) with
`HISTOGRAM_BINS` bins. The bin range of each (marker, day) comes from the first
`PILOT_PATIENTS` patients of the cohort (their 1st-99th percentiles, widened), so
memory is bounded by the chunk size and the histograms, not by N. A 5 %, 50 % or 95 % quantile
is read by interpolating inside its bin, so it lies within one bin (≤ ~2 % relative) of the
order statistics around the exact sample quantile; `tests/domain/kinetics` checks exactly that.
Values outside the range are counted in the edge bins, which only matters for quantiles
beyond the pilot's 1st-99th range.
Reappearance of B cells is recorded per patient on the output-day grid, so its distribution is
an exact histogram over days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cartrial.domain.kinetics.errors import InvalidSimulationRequest
from cartrial.domain.kinetics.milestones import ReappearanceTracker
from cartrial.domain.kinetics.parameters import (
    FloatArray,
    ModelParameters,
    Preset,
    sample_patients,
    validate_patients,
)
from cartrial.domain.kinetics.published import B_CELL_REAPPEARANCE_CELLS_PER_UL
from cartrial.domain.kinetics.simulation import (
    MARKERS,
    integration_days,
    march,
    marker_units,
    markers_from_state,
)

BAND_QUANTILES: tuple[float, float, float] = (0.05, 0.5, 0.95)
DEFAULT_CHUNK_PATIENTS = 8192
PILOT_PATIENTS = 2000
HISTOGRAM_BINS = 2048
# Histogram counts are int32 (27 MB for 9 markers × 366 days × 2048 bins).
MAXIMUM_PATIENTS = 2**31 - 1
# Widen the pilot's log10 range by this share of its span on each side, and by at least
# `MINIMUM_MARGIN_DECADES`, so the bulk of later chunks falls inside it.
RANGE_MARGIN = 0.25
MINIMUM_MARGIN_DECADES = 0.05
# Values at or below this level (in the marker's unit) count as zero and bands report 0.0: for
# cells/µL it is less than one cell in the whole blood volume (5 L = 5×10⁶ µL).
ZERO_LEVEL = 1e-12
# The pilot's 1st-99th percentiles set each histogram range, so a few extreme patients do not
# stretch the bins; 5-95 % quantiles are far inside it.
PILOT_RANGE_QUANTILES = (0.01, 0.99)

_ZERO_LOG10 = math.log10(ZERO_LEVEL)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Band:
    """Quantile bands: for each marker an array (len(quantiles), len(days)) in the marker's unit."""

    days: FloatArray
    quantiles: tuple[float, ...]
    units: dict[str, str]
    values: dict[str, FloatArray]

    @property
    def markers(self) -> tuple[str, ...]:
        """Marker identifiers, `car_t` first."""
        return tuple(self.values)

    def quantile_row(self, marker: str, position: int) -> FloatArray:
        """One quantile of one marker over days (position in `quantiles`)."""
        row: FloatArray = self.values[marker][position]
        return row

    def lower(self, marker: str) -> FloatArray:
        """The lowest quantile (5 %) over days."""
        return self.quantile_row(marker, 0)

    def median(self, marker: str) -> FloatArray:
        """The middle quantile (50 %) over days."""
        return self.quantile_row(marker, len(self.quantiles) // 2)

    def upper(self, marker: str) -> FloatArray:
        """The highest quantile (95 %) over days."""
        return self.quantile_row(marker, len(self.quantiles) - 1)

    def at_day(self, marker: str, day: float) -> FloatArray:
        """Quantiles at any day inside the grid, interpolated linearly on the log scale."""
        logs = np.log(np.maximum(self.values[marker], ZERO_LEVEL))
        interpolated = [np.interp(day, self.days, row) for row in logs]
        return np.exp(np.asarray(interpolated, dtype=np.float64))


@dataclass(frozen=True)
class ReappearanceSummary:
    """Distribution of B-cell reappearance days in a cohort (output-day resolution)."""

    threshold_cells_per_ul: float
    patients: int
    never_depleted: int
    not_back_by_horizon: int
    mean_days: float
    sd_days: float
    quantile_days: dict[float, float]


@dataclass(frozen=True)
class CohortResult:
    """Bands and B-cell reappearance of a virtual cohort."""

    preset: str
    patients: int
    seed: int
    band: Band
    reappearance: ReappearanceSummary


def _log_levels(values: FloatArray) -> FloatArray:
    logs: FloatArray = np.log10(np.maximum(values, ZERO_LEVEL))
    return logs


def _marker_matrix(state_markers: dict[str, FloatArray]) -> FloatArray:
    return np.stack([state_markers[marker] for marker in MARKERS])


class _QuantileHistograms:
    """Per-(marker, day) histograms of log10 values over fixed ranges."""

    def __init__(self, low: FloatArray, high: FloatArray) -> None:
        span = high - low
        margin = np.maximum(RANGE_MARGIN * span, MINIMUM_MARGIN_DECADES)
        self.low = low - margin
        self.bin_width = (span + 2 * margin) / HISTOGRAM_BINS
        marker_count, day_count = low.shape
        self.counts = np.zeros((marker_count, day_count, HISTOGRAM_BINS), dtype=np.int32)
        # Exact extremes: quantiles are clipped into them, so a marker every patient shares
        # (LLPCs with no loss, anything at day 0) comes out exact.
        self.smallest = np.full((marker_count, day_count), np.inf)
        self.largest = np.full((marker_count, day_count), -np.inf)
        self._offsets = (np.arange(marker_count) * HISTOGRAM_BINS)[:, np.newaxis]

    def add(self, day_index: int, log_values: FloatArray) -> None:
        """Count the (markers, patients) log10 values of one output day."""
        positions = (log_values - self.low[:, day_index, np.newaxis]) / self.bin_width[:, day_index, np.newaxis]
        bins = np.clip(positions, 0, HISTOGRAM_BINS - 1).astype(np.intp) + self._offsets
        np.minimum(self.smallest[:, day_index], log_values.min(axis=1), out=self.smallest[:, day_index])
        np.maximum(self.largest[:, day_index], log_values.max(axis=1), out=self.largest[:, day_index])
        found = np.bincount(bins.ravel(), minlength=self.counts.shape[0] * HISTOGRAM_BINS)
        self.counts[:, day_index, :] += found.reshape(self.counts.shape[0], HISTOGRAM_BINS)

    def quantiles(self, levels: Sequence[float]) -> FloatArray:
        """Quantile values, shape (markers, len(levels), days), in linear units."""
        cumulative = np.cumsum(self.counts, axis=2)
        total = cumulative[:, :, -1:]
        result = np.empty((self.counts.shape[0], len(levels), self.counts.shape[1]))
        for position, level in enumerate(levels):
            rank = level * (total - 1)
            bin_index = np.argmax(cumulative > rank, axis=2)[..., np.newaxis]
            before = np.take_along_axis(cumulative, bin_index, axis=2) - np.take_along_axis(
                self.counts, bin_index, axis=2
            )
            inside = np.take_along_axis(self.counts, bin_index, axis=2)
            fraction = (rank - before + 0.5) / inside
            log_value = np.clip(
                self.low + (bin_index[..., 0] + fraction[..., 0]) * self.bin_width, self.smallest, self.largest
            )
            at_floor = log_value < _ZERO_LOG10 + self.bin_width
            result[:, position, :] = np.where(at_floor, 0.0, 10**log_value)
        return result


def _pilot_ranges(parameters: ModelParameters, days: FloatArray) -> tuple[FloatArray, FloatArray]:
    low = np.empty((len(MARKERS), days.size))
    high = np.empty((len(MARKERS), days.size))
    for index, state in enumerate(march(parameters, days)):
        logs = _log_levels(_marker_matrix(markers_from_state(parameters, state)))
        low[:, index], high[:, index] = np.quantile(logs, PILOT_RANGE_QUANTILES, axis=1)
    return low, high


def _reappearance_summary(
    days: FloatArray, reappearance_counts: npt.NDArray[np.int64], never: int, not_back: int
) -> ReappearanceSummary:
    patients = int(reappearance_counts.sum()) + never + not_back
    back = int(reappearance_counts.sum())
    mean = float((reappearance_counts * days).sum() / back) if back else math.nan
    variance = float((reappearance_counts * (days - mean) ** 2).sum() / (back - 1)) if back > 1 else math.nan
    depleted_counts = np.append(reappearance_counts, not_back)
    depleted_days = np.append(days, math.inf)
    cumulative = np.cumsum(depleted_counts)
    quantiles: dict[float, float] = {}
    for level in BAND_QUANTILES:
        if cumulative[-1] == 0:
            quantiles[level] = math.nan
            continue
        index = int(np.argmax(cumulative >= level * cumulative[-1]))
        quantiles[level] = float(depleted_days[index])
    return ReappearanceSummary(
        threshold_cells_per_ul=B_CELL_REAPPEARANCE_CELLS_PER_UL,
        patients=patients,
        never_depleted=never,
        not_back_by_horizon=not_back,
        mean_days=mean,
        sd_days=math.sqrt(variance) if variance == variance else math.nan,
        quantile_days=quantiles,
    )


def output_day_grid(horizon_days: float, step_days: float = 1.0) -> FloatArray:
    """Output days 0, step, 2·step, … up to the horizon (inclusive when it falls on the grid)."""
    if not math.isfinite(horizon_days) or horizon_days <= 0:
        raise InvalidSimulationRequest("The horizon must be > 0 days, got {value}.", value=horizon_days)
    if not math.isfinite(step_days) or step_days <= 0:
        raise InvalidSimulationRequest("The step must be > 0 days, got {value}.", value=step_days)
    count = math.floor(horizon_days / step_days + 1e-9)
    return np.arange(count + 1, dtype=np.float64) * step_days


@dataclass
class _Tally:
    """What the chunks add up: histograms of marker values, reappearance days by output day."""

    histograms: _QuantileHistograms
    reappearance_counts: npt.NDArray[np.int64]
    never_depleted: int = 0
    not_back: int = 0


def _run_chunk(chunk: ModelParameters, grid: FloatArray, tally: _Tally) -> None:
    """March one chunk through time and add it to the tally."""
    tracker = ReappearanceTracker(chunk.patient_count)
    for index, state in enumerate(march(chunk, grid)):
        values = markers_from_state(chunk, state)
        tracker.observe(float(grid[index]), values["b_cells"])
        tally.histograms.add(index, _log_levels(_marker_matrix(values)))
    reappearance = tracker.reappearance_days()
    back = np.isfinite(reappearance)
    tally.never_depleted += int(np.isnan(reappearance).sum())
    tally.not_back += int(np.isinf(reappearance).sum())
    tally.reappearance_counts += np.bincount(np.searchsorted(grid, reappearance[back]), minlength=grid.size)


def simulate_cohort(
    preset: Preset,
    *,
    patients: int,
    days: npt.ArrayLike,
    seed: int = 0,
    chunk_patients: int = DEFAULT_CHUNK_PATIENTS,
    on_progress: ProgressCallback | None = None,
) -> CohortResult:
    """Sample `patients` virtual patients from the preset and return their quantile bands.

    Patients come from `sample_patients(preset, patients, numpy.random.default_rng(seed))`,
    drawn chunk by chunk from one generator in order (the same sample as one draw), so the
    result depends on `chunk_patients` only through the histogram ranges set by the first
    chunk. Memory is bounded by one chunk plus the histograms. `on_progress(done, total)` is
    called after each chunk. (Threads over chunks were tried: no gain, NumPy calls on arrays
    of this size are too short for the GIL to be released usefully.)
    """
    if not 1 <= patients <= MAXIMUM_PATIENTS:
        raise InvalidSimulationRequest(
            "A cohort needs 1 to {maximum} patients, got {patients}.", maximum=MAXIMUM_PATIENTS, patients=patients
        )
    if chunk_patients < 1:
        raise InvalidSimulationRequest("Chunks need at least one patient, got {value}.", value=chunk_patients)
    grid = np.asarray(days, dtype=np.float64)
    integration_days(grid)
    rng = np.random.default_rng(seed)

    def next_chunk(drawn: int) -> ModelParameters:
        chunk = sample_patients(preset, min(chunk_patients, patients - drawn), rng)
        validate_patients(preset, chunk)
        return chunk

    first = next_chunk(0)
    pilot = first.subset(slice(0, min(PILOT_PATIENTS, first.patient_count)))
    tally = _Tally(
        histograms=_QuantileHistograms(*_pilot_ranges(pilot, grid)),
        reappearance_counts=np.zeros(grid.size, dtype=np.int64),
    )
    chunk: ModelParameters | None = first
    done = 0
    while chunk is not None:
        _run_chunk(chunk, grid, tally)
        done += chunk.patient_count
        if on_progress is not None:
            on_progress(done, patients)
        chunk = next_chunk(done) if done < patients else None
    quantile_values = tally.histograms.quantiles(BAND_QUANTILES)
    band = Band(
        days=grid,
        quantiles=BAND_QUANTILES,
        units=marker_units(preset),
        values={marker: quantile_values[index] for index, marker in enumerate(MARKERS)},
    )
    return CohortResult(
        preset=preset.name,
        patients=patients,
        seed=seed,
        band=band,
        reappearance=_reappearance_summary(grid, tally.reappearance_counts, tally.never_depleted, tally.not_back),
    )
