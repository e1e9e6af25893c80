"""Reference integration of the Tier-1 model, one patient at a time with `scipy.integrate.solve_ivp`.

Why it exists: it is the independent oracle for the vectorized integrator (tests) and the
baseline of the speed benchmark. It writes the whole model as one ODE, including the CAR-T
curve in its compartmental form (kinetics.md §2.1): before Tmax dE/dt = ρE; after Tmax
dE/dt = −αE and dM/dt = k·E − βM with k = F·(α − β), M(Tmax) = 0, observed C = E + M.
The right-hand side is split at Tmax so the adaptive solver never steps over the kink.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp

from cartrial.domain.kinetics.parameters import FloatArray, ModelParameters
from cartrial.domain.kinetics.simulation import MARKERS, PRECURSOR_STAGES

StateArray = npt.NDArray[np.float64]
RightHandSide = Callable[[float, StateArray], StateArray]


def _patient_rhs(parameters: ModelParameters, patient: int) -> tuple[float, StateArray, RightHandSide]:
    """Return (Tmax, y0, rhs) of one patient; the state is [E, M, P₁..P₃, B_old, B_new, S, L, A, I]."""
    p = {name: float(values[patient]) for name, values in parameters.as_columns().items()}
    t_max = p["car_t_peak_day"]
    rho = math.log(p["car_t_fold_expansion"]) / t_max
    c0 = p["car_t_peak"] / p["car_t_fold_expansion"]
    alpha = p["car_t_fast_decline_per_day"]
    beta = p["car_t_slow_decline_per_day"]
    to_memory = p["car_t_memory_fraction"] * (alpha - beta)
    transit = PRECURSOR_STAGES / p["precursor_transit_days"]
    kill = p["b_lineage_kill_rate"]
    plasma_kill = p["plasmablast_kill_ratio"] * kill
    delta_b = p["b_cell_turnover_per_day"]
    delta_s = p["plasmablast_turnover_per_day"]
    phi = p["regenerated_autoreactivity"]
    f_l = p["llpc_antibody_fraction"]
    delta_l = p["llpc_loss_per_day"]
    k_a = math.log(2.0) / p["antibody_half_life_days"]
    k_out = p["inflammation_turnover_per_day"]
    a50 = p["inflammation_half_effect_fraction"]
    i_min = p["inflammation_floor_fraction"]

    def rhs(t: float, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        effector, memory = y[0], y[1]
        if t < t_max:
            d_effector, d_memory = rho * effector, 0.0
        else:
            d_effector = -alpha * effector
            d_memory = to_memory * effector - beta * memory
        car_t = effector + memory
        chain_loss = transit + kill * car_t
        precursors = y[2 : 2 + PRECURSOR_STAGES]
        d_precursors = np.empty(PRECURSOR_STAGES)
        d_precursors[0] = transit - chain_loss * precursors[0]
        d_precursors[1:] = transit * precursors[:-1] - chain_loss * precursors[1:]
        b_old, b_new, plasma, llpc, antibody, inflammation = y[2 + PRECURSOR_STAGES :]
        b_loss = delta_b + kill * car_t
        steady = i_min + (1.0 - i_min) * antibody * (1.0 + a50) / (antibody + a50)
        return np.concatenate(
            (
                [d_effector, d_memory],
                d_precursors,
                [
                    -b_loss * b_old,
                    delta_b * precursors[-1] - b_loss * b_new,
                    delta_s * (b_old + phi * b_new) - (delta_s + plasma_kill * car_t) * plasma,
                    -delta_l * llpc,
                    k_a * ((1.0 - f_l) * plasma + f_l * llpc) - k_a * antibody,
                    k_out * (steady - inflammation),
                ],
            )
        )

    f_ld = p["lymphodepletion_b_fraction"]
    y0 = np.array([c0, 0.0] + [f_ld] * PRECURSOR_STAGES + [f_ld, 0.0, 1.0, 1.0, 1.0, 1.0])
    return t_max, y0, rhs


def solve_patient(
    parameters: ModelParameters,
    patient: int,
    output_days: npt.ArrayLike,
    *,
    relative_tolerance: float = 1e-10,
    absolute_tolerance: float = 1e-14,
    method: str = "Radau",
) -> dict[str, FloatArray]:
    """Markers of one patient at the output days (name → (T,)), by adaptive integration."""
    days = np.asarray(output_days, dtype=np.float64)
    t_max, y0, rhs = _patient_rhs(parameters, patient)
    states = np.empty((y0.size, days.size))
    last_day = float(days[-1])
    if last_day <= 0.0:
        states[:] = y0[:, np.newaxis]
        return _markers(parameters, patient, states)

    def integrate(
        span: tuple[float, float], y_start: npt.NDArray[np.float64], at: FloatArray
    ) -> npt.NDArray[np.float64]:
        solution = solve_ivp(
            rhs,
            span,
            y_start,
            method=method,
            t_eval=at,
            rtol=relative_tolerance,
            atol=absolute_tolerance,
        )
        if not solution.success:
            raise ArithmeticError(f"solve_ivp failed for patient {patient}: {solution.message}")
        found: npt.NDArray[np.float64] = solution.y
        return found

    expansion_end = min(t_max, last_day)
    in_expansion = days <= expansion_end
    expansion_grid = np.union1d(days[in_expansion], [0.0, expansion_end])
    expansion = integrate((0.0, expansion_end), y0, expansion_grid)
    states[:, in_expansion] = expansion[:, np.searchsorted(expansion_grid, days[in_expansion])]
    if last_day > t_max:
        after = ~in_expansion
        states[:, after] = integrate((t_max, last_day), expansion[:, -1], days[after])
    return _markers(parameters, patient, states)


def _markers(parameters: ModelParameters, patient: int, states: npt.NDArray[np.float64]) -> dict[str, FloatArray]:
    b_baseline = float(parameters.b_cells_baseline[patient])
    first_b = 2 + PRECURSOR_STAGES
    preexisting = b_baseline * states[first_b]
    regenerated = b_baseline * states[first_b + 1]
    values: dict[str, FloatArray] = {
        "car_t": states[0] + states[1],
        "b_cells": preexisting + regenerated,
        "b_cells_preexisting": preexisting,
        "b_cells_regenerated": regenerated,
        "marrow_b_precursors": states[2:first_b].mean(axis=0),
        "plasmablasts": states[first_b + 2],
        "long_lived_plasma_cells": states[first_b + 3],
        "anti_dsdna": float(parameters.anti_dsdna_baseline[patient]) * states[first_b + 4],
        "inflammation": states[first_b + 5],
    }
    return {marker: values[marker] for marker in MARKERS}
