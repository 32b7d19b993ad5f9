"""How well noisy observations can determine the coefficients at all: the Cramér–Rao bound (the noise floor).

Observations ``u_i = u_θ(t_i, x_i) + σ ε_i`` with ``ε_i ~ N(0, 1)`` i.i.d. and ``σ = level · std(u)`` (the
benchmark's noise model, :mod:`.observations`). θ is the unknown coefficient c (and λ₁ in the two-unknown
setting, θ = (λ₁, c)). With ``J = ∂u_θ(t_i, x_i)/∂θ`` (P × d, at the true θ), every unbiased estimator θ̂ has

    Cov(θ̂) ⪰ σ² (JᵀJ)⁻¹                                  (Cramér–Rao; the Fisher information is JᵀJ/σ²)

and the least-squares fit the benchmark computes (its outer loss is the mean squared misfit) attains it to first
order in σ: θ̂ − θ ≈ (JᵀJ)⁻¹Jᵀ σε. So ``s_k = σ √((JᵀJ)⁻¹_kk) / |θ_k|`` is the relative standard deviation any
estimator must show over noise draws, and the expected relative error of unknown k is ``√(2/π) s_k`` (the mean of
a half-normal). The benchmark's headline metric — the largest relative error over the unknowns — has expectation
``E max_k |e_k|`` for ``e ~ N(0, diag(1/θ) σ²(JᵀJ)⁻¹ diag(1/θ))``, computed here by Monte Carlo (exact for the
linearised model up to the sampling error, 0.1 % relative with the default 10⁶ draws).

With a Gaussian prior θ ~ N(θ₀, Q⁻¹) (the field setting, :mod:`.field`) the same linearisation gives the
posterior covariance ``(JᵀJ/σ² + Q)⁻¹`` (Laplace's approximation at the MAP fit; at the truth and averaged over
the prior it is the Bayesian Cramér–Rao bound of van Trees): :func:`posterior_covariance`. For a linear model it
is exact, the covariance of ``θ̂_MAP − θ`` over prior and noise.

A coefficient error target below this floor cannot be met from those data by any (unbiased) method; it says
nothing about how quickly an optimiser gets there. ``python -m fg2u_bench_pde --estimators noise_floor`` writes
the floor as a record (estimator ``NoiseFloor``) beside the fitted ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["NoiseFloor", "cramer_rao_covariance", "posterior_covariance", "noise_floor"]


def cramer_rao_covariance(predict: Callable[[jax.Array], jax.Array], theta, sigma: float) -> np.ndarray:
    """``σ² (JᵀJ)⁻¹`` with ``J = ∂predict/∂θ`` at ``theta`` (forward mode, one jvp per unknown).

    Args:
      predict: ``θ (d,) -> predicted observations (P,)``, differentiable in JAX.
      theta: the true parameters, shape ``(d,)``.
      sigma: the noise standard deviation of each observation.

    Returns: the ``(d, d)`` covariance bound (float64 numpy). Raises ``ValueError`` when the observations do not
    determine θ (JᵀJ singular: a coefficient the observed values do not depend on).
    """
    theta = jnp.atleast_1d(jnp.asarray(theta))
    jac = np.asarray(jax.jacfwd(predict)(theta), dtype=np.float64).reshape(-1, theta.size)
    info = jac.T @ jac
    if not np.all(np.isfinite(info)) or np.linalg.matrix_rank(info) < theta.size:
        raise ValueError(
            f"the observations do not determine the {theta.size} unknown(s): JᵀJ = {info.tolist()} is singular or "
            "not finite (observe points where the solution depends on the coefficient, e.g. t > 0)"
        )
    return float(sigma) ** 2 * np.linalg.inv(info)


def posterior_covariance(jacobian, sigma: float, prior_precision) -> np.ndarray:
    """``(JᵀJ/σ² + Q)⁻¹``: the Gaussian posterior covariance of a model linearised with Jacobian ``J (P, d)``,
    noise ``σ`` per observation and prior precision ``Q (d, d)`` (module docstring).

    Examples:
        >>> import numpy as np
        >>> posterior_covariance(np.ones((4, 1)), 1.0, np.eye(1))  # four unit observations and one prior
        array([[0.2]])
    """
    jac = np.asarray(jacobian, dtype=np.float64)
    info = jac.T @ jac / float(sigma) ** 2 + np.asarray(prior_precision, dtype=np.float64)
    return np.linalg.inv(info)


class NoiseFloor:
    """The Cramér–Rao floor of one observation set (see the module docstring).

    Attributes:
      relative_std: ``(d,)`` the relative standard deviation ``s_k`` of each unknown (θ order: (λ₁, c) or (c,)).
      expected_relative_error: ``(d,)`` ``√(2/π) s_k``.
      expected_max_relative_error: ``E max_k |e_k|`` (the benchmark's ``relative_coefficient_error``).
    """

    def __init__(self, covariance: np.ndarray, theta: np.ndarray, *, draws: int = 1_000_000, seed: int = 0) -> None:
        theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        rel_cov = covariance / np.outer(theta, theta)
        self.covariance = covariance
        self.relative_std = np.sqrt(np.diag(rel_cov))
        self.expected_relative_error = math.sqrt(2.0 / math.pi) * self.relative_std
        if theta.size == 1:
            self.expected_max_relative_error = float(self.expected_relative_error[0])
        else:
            e = np.random.default_rng(seed).multivariate_normal(np.zeros(theta.size), rel_cov, size=draws)
            self.expected_max_relative_error = float(np.mean(np.max(np.abs(e), axis=1)))


def noise_floor(equation, task, observations, unknowns: int, noise_level: float) -> NoiseFloor:
    """The floor of the benchmark's spectral fit on ``observations`` of ``task`` with noise ``noise_level``.

    The model is the benchmark's own solver (:func:`.spectral.solve_spectrum` at ``task.spectral``), linearised
    at the true coefficient(s) ``task.target_coefficient`` (and ``task.target_nonlinear`` for two unknowns);
    ``σ = noise_level · std(task.u)`` as in :func:`.observations.sample_observations`. Run under
    ``jax.enable_x64(True)``.
    """
    from fg2u_bench_pde.problems import _values_at, observation_data
    from fg2u_bench_pde.spectral import solve_spectrum

    if not noise_level > 0:
        raise ValueError(f"the noise floor needs noise_level > 0 (exact data have none), got {noise_level!r}")
    data = observation_data(observations)
    two = unknowns == 2

    def predict(theta):
        spectra = solve_spectrum(equation, theta[-1], task.spectral, theta[0] if two else 1.0)
        return _values_at(spectra, data["t_index"], data["x"], task.spectral.num_points)

    theta = np.array([task.target_nonlinear, task.target_coefficient] if two else [task.target_coefficient])
    sigma = noise_level * float(np.std(task.u))
    return NoiseFloor(cramer_rao_covariance(predict, theta, sigma), theta)
