"""Multiphasic CAR-T curve in closed form (Stein et al. 2019) and its exact time integral.

Source: Stein AM et al., CPT Pharmacometrics Syst Pharmacol 2019;8:285 (doi:10.1002/psp4.12388),
as transcribed in kinetics.md §2.1 and §4.1. Time in days since infusion; the level is in the
preset's CAR-T unit (copies/µg for stein2019, cells/µL for sle-default).

    C(t) = C0·e^(ρt)                                       t < Tmax, ρ = ln(Cmax/C0)/Tmax
    C(t) = Cmax·[(1−F)·e^(−α(t−Tmax)) + F·e^(−β(t−Tmax))]  t ≥ Tmax

Both branches are written as one product, C0·e^(ρ·min(t,Tmax)) · [(1−F)e^(−α·s) + F e^(−β·s)]
with s = max(t − Tmax, 0), so arrays of patients need no branch and never overflow.
The exposure ∫₀ᵗ C is closed form too; the PD cascade uses it for exact killing factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cartrial.domain.kinetics.parameters import FloatArray, ModelParameters


def growth_rate_per_day(parameters: ModelParameters) -> FloatArray:
    """ρ = ln(fold expansion) / Tmax."""
    rate: FloatArray = np.log(parameters.car_t_fold_expansion) / parameters.car_t_peak_day
    return rate


def initial_level(parameters: ModelParameters) -> FloatArray:
    """C0 = R0 = Cmax / fold expansion, the level just after infusion."""
    level: FloatArray = parameters.car_t_peak / parameters.car_t_fold_expansion
    return level


class CarTCurve:
    """The curves of N patients with their constants computed once, for stepping through time.

    `level_and_exposure(t)` shares its three exponentials between C(t) and ∫₀ᵗ C, which is
    what the cascade integrator needs at every step.
    """

    def __init__(self, parameters: ModelParameters) -> None:
        self.peak_day = parameters.car_t_peak_day
        self.initial = initial_level(parameters)
        self._initial_over_peak = 1.0 / parameters.car_t_fold_expansion
        self.growth = growth_rate_per_day(parameters)
        self.fast = parameters.car_t_fast_decline_per_day
        self.slow = parameters.car_t_slow_decline_per_day
        self.fast_share = parameters.car_t_peak * (1.0 - parameters.car_t_memory_fraction)
        self.slow_share = parameters.car_t_peak * parameters.car_t_memory_fraction
        # ∫ e^(ρu) = (e^(ρb) − 1)/ρ and ∫ e^(−λu) = (1 − e^(−λa))/λ; a zero rate (no expansion,
        # or no slow decline) takes the limit b or a instead.
        self._growth_zero = self.growth == 0.0
        self._slow_zero = self.slow == 0.0
        self._inverse_growth = 1.0 / np.where(self._growth_zero, 1.0, self.growth)
        self._inverse_fast = 1.0 / self.fast
        self._inverse_slow = 1.0 / np.where(self._slow_zero, 1.0, self.slow)
        self._any_zero = bool(self._growth_zero.any() or self._slow_zero.any())

    def level_and_exposure(self, day: float | FloatArray) -> tuple[FloatArray, FloatArray]:
        """C(t) and ∫₀ᵗ C(u) du for every patient at one time."""
        before = np.minimum(day, self.peak_day)
        after = np.maximum(day - self.peak_day, 0.0)
        rise = np.exp(self.growth * before)
        fast = np.exp(-self.fast * after)
        slow = np.exp(-self.slow * after)
        level: FloatArray = rise * self._initial_over_peak * (self.fast_share * fast + self.slow_share * slow)
        expansion = (rise - 1.0) * self._inverse_growth
        decline_fast = (1.0 - fast) * self._inverse_fast
        decline_slow = (1.0 - slow) * self._inverse_slow
        if self._any_zero:
            expansion = np.where(self._growth_zero, before, expansion)
            decline_slow = np.where(self._slow_zero, after, decline_slow)
        exposure: FloatArray = (
            self.initial * expansion + self.fast_share * decline_fast + self.slow_share * decline_slow
        )
        return level, exposure


def car_t_level(parameters: ModelParameters, day: float | FloatArray) -> FloatArray:
    """C(t) for each patient; `day` is a scalar or an array broadcastable against (N,)."""
    return CarTCurve(parameters).level_and_exposure(day)[0]


def car_t_exposure(parameters: ModelParameters, day: float | FloatArray) -> FloatArray:
    """∫₀ᵗ C(u) du in (CAR-T unit × day); exact, used for the killing factor e^(−κ∫C)."""
    return CarTCurve(parameters).level_and_exposure(day)[1]


@dataclass(frozen=True)
class CarTSummary:
    """Derived numbers of one CAR-T curve, as reported in Stein 2019 (Table 1 and Discussion)."""

    initial_level: float
    growth_rate_per_day: float
    doubling_time_days: float
    peak: float
    peak_day: float
    fast_half_life_days: float
    slow_half_life_days: float


def summarize_typical(parameters: ModelParameters) -> CarTSummary:
    """Derived numbers for the first patient of the batch (use with a typical patient)."""
    rho = float(growth_rate_per_day(parameters)[0])
    beta = float(parameters.car_t_slow_decline_per_day[0])
    return CarTSummary(
        initial_level=float(initial_level(parameters)[0]),
        growth_rate_per_day=rho,
        doubling_time_days=math.log(2.0) / rho if rho > 0 else math.inf,
        peak=float(parameters.car_t_peak[0]),
        peak_day=float(parameters.car_t_peak_day[0]),
        fast_half_life_days=math.log(2.0) / float(parameters.car_t_fast_decline_per_day[0]),
        slow_half_life_days=math.log(2.0) / beta if beta > 0 else math.inf,
    )


def car_t_curve(parameters: ModelParameters, days: npt.ArrayLike) -> FloatArray:
    """C at each day for each patient, shape (N, T)."""
    grid = np.asarray(days, dtype=np.float64)[:, np.newaxis]
    level: FloatArray = car_t_level(parameters, grid).T
    return level
