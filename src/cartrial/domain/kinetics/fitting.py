"""Individual fit: maximum a-posteriori parameters of one subject, and the subject's band.

Method (kinetics.md §4.4 b and §7 ii): minimise, over log-parameters, the stacked residuals
  - observed value:          (ln y − ln f(t; θ)) / σ_marker           (log-normal error)
  - value below the LoQ:      √(−2 ln Φ((ln LoQ − ln f(t; θ)) / σ))   (censored, M3 likelihood)
  - each fitted parameter:    (ln θ − ln θ_typical) / ω               (log-normal prior)
with `scipy.optimize.least_squares` (trust-region reflective, bounds = physical ranges). Half the
sum of squares is then the negative log-posterior. The Jacobian is taken by forward differences
computed as one vectorized simulation of p + 1 "patients", so a fit costs about as many
simulations as optimiser iterations. Uncertainty: Laplace approximation, Σ = (JᵀJ)⁻¹ at the
optimum; the band is the 5/50/95 % quantiles of simulations drawn from N(θ̂, Σ) (parameter
uncertainty only, no residual error). A fit that stops before converging returns no band.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares
from scipy.special import log_ndtr

from cartrial.domain.kinetics.cohort import BAND_QUANTILES, Band, output_day_grid
from cartrial.domain.kinetics.observations import OBSERVED_MARKERS, Observation
from cartrial.domain.kinetics.parameters import FloatArray, ModelParameters, Preset
from cartrial.domain.kinetics.simulation import MARKERS, march, marker_units, simulate_markers

# Parameters that only move the inflammation marker, which a subject's CAR-T, B-cell and
# anti-dsDNA data say nothing about: they stay at their prior.
_NOT_INFORMED_BY_OBSERVATIONS = frozenset(
    {"inflammation_turnover_per_day", "inflammation_half_effect_fraction", "inflammation_floor_fraction"}
)
# Forward-difference step on the log scale (relative step 1e-6: well above rounding, 1e-14).
_DIFFERENCE_STEP = 1e-6
DEFAULT_MAX_EVALUATIONS = 60
# Relative change of the negative log-posterior (≈ 10-50 for a subject) or of the parameters at
# which the optimiser stops: 1e-6 is far below what the data can resolve.
OPTIMISER_TOLERANCE = 1e-6
BAND_SAMPLES = 400
BAND_HORIZON_DAYS = 365.0
# Predictions are floored before logs: a depleted marker still has a finite log-likelihood.
_PREDICTION_FLOOR = 1e-300


@dataclass(frozen=True)
class FitResult:
    """Outcome of one individual fit; `band` and `expected` are None when it did not converge."""

    converged: bool
    message: str
    parameters: dict[str, float]
    fitted: tuple[str, ...]
    log_standard_errors: dict[str, float] | None
    negative_log_posterior: float
    evaluations: int
    band: Band | None
    expected: dict[str, FloatArray] | None


def fitted_parameters(preset: Preset) -> tuple[str, ...]:
    """Parameters estimated per subject: those with between-patient variability that the data inform."""
    return tuple(
        spec.name
        for spec in preset.parameters
        if spec.between_patient_variance > 0 and spec.name not in _NOT_INFORMED_BY_OBSERVATIONS
    )


@dataclass(frozen=True)
class _Design:
    """Observations as index arrays into the prediction grid (marker × unique day)."""

    days: FloatArray
    marker_index: npt.NDArray[np.intp]
    day_index: npt.NDArray[np.intp]
    log_value: FloatArray
    log_loq: FloatArray
    censored: npt.NDArray[np.bool_]
    sd_log: FloatArray


def _design(observations: Sequence[Observation], preset: Preset) -> _Design:
    days = np.unique(np.asarray([observation.day for observation in observations], dtype=np.float64))
    marker_index = np.asarray([OBSERVED_MARKERS.index(o.marker) for o in observations], dtype=np.intp)
    day_index = np.searchsorted(days, [observation.day for observation in observations]).astype(np.intp)
    censored = np.asarray([observation.censored for observation in observations], dtype=np.bool_)
    log_value = np.asarray(
        [math.log(o.value) if not o.censored and o.value is not None else math.nan for o in observations]
    )
    log_loq = np.asarray([math.log(o.loq) if o.loq is not None else math.nan for o in observations])
    sd_log = np.asarray([preset.residual_sd_log[observation.marker] for observation in observations])
    return _Design(days, marker_index, day_index, log_value, log_loq, censored, sd_log)


def _observed_predictions(patients: ModelParameters, days: FloatArray) -> FloatArray:
    """CAR-T, B cells and anti-dsDNA, shape (3, N, len(days)), in observation units."""
    predictions = np.empty((len(OBSERVED_MARKERS), patients.patient_count, days.size))
    for index, state in enumerate(march(patients, days)):
        predictions[0, :, index] = state.car_t
        predictions[1, :, index] = patients.b_cells_baseline * (state.b_preexisting + state.b_regenerated)
        predictions[2, :, index] = patients.anti_dsdna_baseline * state.antibody
    return predictions


class _Posterior:
    """Residuals of the log-posterior for one subject; caches the batch Jacobian of each point."""

    def __init__(self, observations: Sequence[Observation], preset: Preset) -> None:
        self.preset = preset
        self.design = _design(observations, preset)
        self.names = fitted_parameters(preset)
        specs = [preset.spec(name) for name in self.names]
        self.prior_mean = np.log([spec.typical for spec in specs])
        self.prior_sd = np.sqrt([spec.between_patient_variance for spec in specs])
        with np.errstate(divide="ignore"):
            self.lower = np.log([spec.lower for spec in specs])
        self.upper = np.log([spec.upper for spec in specs])
        self.typical = preset.typical_values()
        self._cache: dict[bytes, tuple[FloatArray, FloatArray]] = {}

    def patients(self, log_values: FloatArray) -> ModelParameters:
        """A batch with one patient per row of `log_values` (fitted columns), others typical."""
        rows = log_values.shape[0]
        columns: dict[str, FloatArray] = {name: np.full(rows, value) for name, value in self.typical.items()}
        for position, name in enumerate(self.names):
            columns[name] = np.exp(log_values[:, position])
        return ModelParameters.from_columns(columns)

    def _residuals(self, log_values: FloatArray) -> FloatArray:
        """Residual vectors of a batch, shape (rows, observations + parameters)."""
        prior = (log_values - self.prior_mean) / self.prior_sd
        residuals: FloatArray = np.concatenate([self.data_residuals(log_values), prior], axis=1)
        return residuals

    def data_residuals(self, log_values: FloatArray) -> FloatArray:
        """Observation residuals of a batch, shape (rows, observations)."""
        design = self.design
        predictions = _observed_predictions(self.patients(log_values), design.days)
        predicted = np.maximum(predictions[design.marker_index, :, design.day_index], _PREDICTION_FLOOR).T
        log_predicted = np.log(predicted)
        data = np.where(design.censored, 0.0, (design.log_value - log_predicted) / design.sd_log)
        below = log_ndtr((design.log_loq - log_predicted) / design.sd_log)
        censored = np.sqrt(np.maximum(-2.0 * below, 0.0))
        residuals: FloatArray = np.where(design.censored, censored, data)
        return residuals

    def _evaluate(self, point: FloatArray) -> tuple[FloatArray, FloatArray]:
        key = point.tobytes()
        if key not in self._cache:
            steps = np.where(point + _DIFFERENCE_STEP <= self.upper, _DIFFERENCE_STEP, -_DIFFERENCE_STEP)
            batch = np.repeat(point[np.newaxis, :], point.size + 1, axis=0)
            batch[1:] += np.diag(steps)
            residuals = self._residuals(batch)
            jacobian = ((residuals[1:] - residuals[0]) / steps[:, np.newaxis]).T
            self._cache = {key: (residuals[0], jacobian)}
        return self._cache[key]

    def residuals(self, point: FloatArray) -> FloatArray:
        """Residual vector at one point (log fitted parameters)."""
        return self._evaluate(point)[0]

    def jacobian(self, point: FloatArray) -> FloatArray:
        """Jacobian of the residuals at one point."""
        return self._evaluate(point)[1]


def negative_log_likelihood(
    observations: Sequence[Observation], preset: Preset, parameters: Mapping[str, float]
) -> float:
    """−ln L of the observations under one parameter set (constants dropped, no prior).

    Observed values contribute ½((ln y − ln f)/σ)², censored ones −ln Φ((ln LoQ − ln f)/σ).
    """
    posterior = _Posterior(observations, preset.with_typical(parameters))
    residuals = posterior.data_residuals(posterior.prior_mean[np.newaxis, :])[0]
    return 0.5 * float(residuals @ residuals)


def _band_from_samples(patients: ModelParameters, preset: Preset, days: FloatArray) -> Band:
    simulated = simulate_markers(patients, days)
    return Band(
        days=days,
        quantiles=BAND_QUANTILES,
        units=marker_units(preset),
        values={marker: np.quantile(simulated[marker], BAND_QUANTILES, axis=0) for marker in MARKERS},
    )


def fit_subject(
    observations: Sequence[Observation],
    preset: Preset,
    *,
    band_days: npt.ArrayLike | None = None,
    band_samples: int = BAND_SAMPLES,
    seed: int = 0,
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS,
) -> FitResult:
    """MAP fit of one subject's observations under the preset's priors, with its band.

    `band_days` defaults to daily up to max(365, last observation). The band draws
    `band_samples` parameter sets from the Laplace posterior with a seeded generator.
    """
    posterior = _Posterior(observations, preset)
    start = np.clip(posterior.prior_mean, posterior.lower, posterior.upper)
    solution = least_squares(
        posterior.residuals,
        start,
        jac=posterior.jacobian,
        bounds=(posterior.lower, posterior.upper),
        method="trf",
        x_scale=posterior.prior_sd,
        max_nfev=max_evaluations,
        ftol=OPTIMISER_TOLERANCE,
        xtol=OPTIMISER_TOLERANCE,
        gtol=OPTIMISER_TOLERANCE,
    )
    point: FloatArray = solution.x
    residuals, jacobian = posterior.residuals(point), posterior.jacobian(point)
    objective = 0.5 * float(residuals @ residuals)
    values = posterior.typical | {name: float(math.exp(point[i])) for i, name in enumerate(posterior.names)}
    converged = bool(solution.success) and solution.status > 0 and math.isfinite(objective)
    covariance: FloatArray | None = None
    if converged:
        try:
            covariance = np.asarray(np.linalg.inv(jacobian.T @ jacobian), dtype=np.float64)
        except np.linalg.LinAlgError:
            converged = False
    if not converged or covariance is None:
        return FitResult(
            converged=False,
            message=f"did not converge: {solution.message}",
            parameters=values,
            fitted=posterior.names,
            log_standard_errors=None,
            negative_log_posterior=objective,
            evaluations=int(solution.nfev),
            band=None,
            expected=None,
        )
    last_day = max(observation.day for observation in observations)
    days = (
        np.asarray(band_days, dtype=np.float64)
        if band_days is not None
        else output_day_grid(max(BAND_HORIZON_DAYS, math.ceil(last_day)))
    )
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(point, covariance, size=band_samples, method="cholesky")
    draws = np.clip(draws, posterior.lower, posterior.upper)
    sampled = posterior.patients(draws)
    others = [
        spec for spec in preset.parameters if spec.name not in posterior.names and spec.between_patient_variance > 0
    ]
    columns = sampled.as_columns()
    for spec in others:
        deviation = math.sqrt(spec.between_patient_variance) * rng.standard_normal(band_samples)
        columns[spec.name] = np.clip(spec.typical * np.exp(deviation), spec.lower, spec.upper)
    map_patient = posterior.patients(point[np.newaxis, :])
    expected = {marker: values_[0] for marker, values_ in simulate_markers(map_patient, days).items()}
    return FitResult(
        converged=True,
        message=str(solution.message),
        parameters=values,
        fitted=posterior.names,
        log_standard_errors={name: float(math.sqrt(covariance[i, i])) for i, name in enumerate(posterior.names)},
        negative_log_posterior=objective,
        evaluations=int(solution.nfev),
        band=_band_from_samples(ModelParameters.from_columns(columns), preset, days),
        expected=expected,
    )
