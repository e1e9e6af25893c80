"""Clinical milestones read off simulated trajectories: B-cell aplasia and reappearance.

Definition (kinetics.md §5 V4: "detectable CD19+ cells by flow" after aplasia): a patient's
B cells reappear on the first output day on which they are at or above the threshold after
having been below it on an earlier output day. Never below it = never depleted (NaN); still
below it at the last day = not back within the horizon (+inf).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cartrial.domain.kinetics.parameters import FloatArray
from cartrial.domain.kinetics.published import B_CELL_REAPPEARANCE_CELLS_PER_UL


class ReappearanceTracker:
    """Follows N patients day by day so a cohort never stores whole trajectories."""

    def __init__(self, patient_count: int, threshold_cells_per_ul: float = B_CELL_REAPPEARANCE_CELLS_PER_UL) -> None:
        self.threshold_cells_per_ul = threshold_cells_per_ul
        self._depleted = np.zeros(patient_count, dtype=bool)
        self._reappearance_day = np.full(patient_count, np.nan)

    def observe(self, day: float, b_cells_per_ul: FloatArray) -> None:
        """Record the B cells of every patient at the next output day."""
        below = b_cells_per_ul < self.threshold_cells_per_ul
        back = self._depleted & ~below & np.isnan(self._reappearance_day)
        self._reappearance_day[back] = day
        self._depleted |= below

    def reappearance_days(self) -> FloatArray:
        """Day of reappearance per patient; NaN never depleted, +inf not back yet."""
        days = self._reappearance_day.copy()
        days[self._depleted & np.isnan(days)] = np.inf
        return days


def b_cell_reappearance_days(
    b_cells_per_ul: npt.ArrayLike,
    days: npt.ArrayLike,
    threshold_cells_per_ul: float = B_CELL_REAPPEARANCE_CELLS_PER_UL,
) -> FloatArray:
    """Reappearance day of each patient from B cells of shape (N, T) at the given days."""
    trajectories = np.atleast_2d(np.asarray(b_cells_per_ul, dtype=np.float64))
    grid = np.asarray(days, dtype=np.float64)
    tracker = ReappearanceTracker(trajectories.shape[0], threshold_cells_per_ul)
    for column, day in enumerate(grid.tolist()):
        tracker.observe(day, trajectories[:, column])
    return tracker.reappearance_days()
