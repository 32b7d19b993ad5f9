"""A coefficient *field* with many unknowns (issue 25): the Allen–Cahn reaction rate r(x) on K nodes.

The PDE (periodic on x ∈ [−1, 1), Fourier pseudo-spectral, the ETDRK4 solver of :mod:`.spectral`)::

    u_t = D u_xx + r(x) (u − u³),     u(0, x) = x² cos(πx),     D = 1e-3 (known),     t ∈ [0, 0.5]

Unknown: the log-rate ``f(x) = log(r(x)/5)`` as the periodic piecewise-linear interpolant of its values θ ∈ R^K
at the nodes ``x_k = −1 + 2k/K`` (``f = Bθ`` on the solver's grid, B the ``(N, K)`` hat-function matrix;
K = N: one value per grid point). θ = 0 is the paper's constant rate 5. The truth is a smooth field that no
K-node interpolant represents exactly, ``f*(x) = 0.4 sin(πx) + 0.3 cos(3πx + 0.5)`` (r* ∈ [2.5, 10]).

Prior (stated in every record): a Gaussian Matérn-3/2 field in its SPDE form (Lindgren, Rue & Lindström 2011),
``(κ² − ∂²) f = τ W`` (W white noise), discretised on the nodes with the periodic second difference Δ_h
(spacing h = 2/K)::

    θ ~ N(0, Q⁻¹),    Q = (h/τ²) (κ² I − Δ_h)²,    κ = √12/ρ,  τ² = 4κ³ s²

with range ρ = 0.5 and marginal standard deviation s = 0.5 (of the continuous process): the same prior for
every K, so fits with different K estimate the same thing.

Objective (the negative log posterior; the same for every method)::

    J(θ) = 1/(2σ²) Σ_i (u_θ(t_i, x_i) − u_i)² + ½ θᵀQθ,     σ = noise_level · std(u)

The misfit term needs a solve; the prior term is known in closed form, so every method gets it exactly: its
gradient ``Qθ`` is added to a meta-gradient estimate of the misfit (:func:`prior_gradient`), and least squares
stacks ``L θ`` (``Q = LᵀL``) under the whitened residuals.

Error: the relative L2 error of the rate on the solver grid, ``‖r_θ − r*‖ / ‖r*‖``. Yardstick: the converged
penalised least-squares (MAP) fit with the solver's exact Jacobian, and its posterior spread (Laplace: the
covariance ``(JᵀJ/σ² + Q)⁻¹`` at the fit, the Cramér–Rao machinery of :mod:`.information` with the prior's
information added — a Bayesian Cramér–Rao bound).

Noisy solver variant (``solver_noise`` = s > 0): every solver call returns the observed values plus
``s · std(u) · N(0, 1)`` noise drawn afresh for that call — a Monte Carlo observation operator whose estimate
of each observed value has standard error ``s · std(u)``. ``E[J_noisy] = J + const``: the same minimiser. In
traced code the noise of a call is drawn from a key folded with the bits of θ (a per-step key for the
estimators), so distinct calls never share noise.

References:
  Lindgren, Rue & Lindström, "An explicit link between Gaussian fields and Gaussian Markov random fields: the
  SPDE approach", J. R. Stat. Soc. B 73 (2011) 423–498, https://doi.org/10.1111/j.1467-9868.2011.00777.x
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fg2u import BlackBoxProblem, UnrolledProblem
from fg2u.checks import check_positive_float, check_positive_int
from fg2u_bench_pde.equations import get_equation
from fg2u_bench_pde.observations import Observations
from fg2u_bench_pde.problems import _values_at, interval_batches, unrolled_misfit_problem
from fg2u_bench_pde.spectral import SpectralSettings, grid_points, solve_spectrum, stepper

__all__ = [
    "FieldSpec",
    "true_log_rate",
    "hat_basis",
    "prior_precision",
    "field_objective_parts",
    "field_black_box",
    "field_unrolled_problem",
    "prior_gradient",
    "relative_field_error",
    "field_reference",
]

#: The PDE of the field setting: periodic Allen–Cahn (the equation ``allen_cahn_periodic`` with D = 1e-3).
EQUATION = dataclasses.replace(get_equation("allen_cahn_periodic"), name="allen_cahn_field", true_coefficient=1e-3)
BASE_RATE = 5.0


def true_log_rate(x):
    """``f*(x) = 0.4 sin(πx) + 0.3 cos(3πx + 0.5)`` (numpy or JAX arrays)."""
    lib = jnp if isinstance(x, jax.Array) else np
    return 0.4 * lib.sin(math.pi * x) + 0.3 * lib.cos(3 * math.pi * x + 0.5)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """The field problem: K unknowns, the prior, and the solver noise.

    Attributes:
      num_unknowns: K, nodes of the piecewise-linear log-rate (a divisor of the solver's N, or N itself).
      prior_range: ρ of the Matérn-3/2 prior (module docstring).
      prior_std: its marginal standard deviation s.
      diffusion: D (known).
      solver_noise: s > 0: the noisy solver variant (relative to std(u)); 0: deterministic.
    """

    num_unknowns: int
    prior_range: float = 0.5
    prior_std: float = 0.5
    diffusion: float = 1e-3
    solver_noise: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("num_unknowns (--field-size)", self.num_unknowns)
        check_positive_float("prior_range", self.prior_range)
        check_positive_float("prior_std", self.prior_std)
        check_positive_float("diffusion", self.diffusion)
        if not (math.isfinite(self.solver_noise) and self.solver_noise >= 0):
            raise ValueError(f"solver_noise (--solver-noise) must be a finite number >= 0, got {self.solver_noise}")

    @property
    def kappa(self) -> float:
        return math.sqrt(12.0) / self.prior_range

    @property
    def tau(self) -> float:
        return math.sqrt(4.0 * self.kappa**3) * self.prior_std

    def describe_prior(self) -> str:
        """The prior in words (for records)."""
        return (
            f"Gaussian Matérn-3/2 (SPDE) prior on f = log(r/5) at K = {self.num_unknowns} nodes: θ ~ N(0, Q⁻¹), "
            f"Q = (h/τ²)(κ²I − Δ_h)², h = 2/K, κ = √12/ρ = {self.kappa:.4g}, τ = {self.tau:.4g} "
            f"(range ρ = {self.prior_range:g}, marginal std {self.prior_std:g}); prior mean 0 (r = 5)"
        )


def hat_basis(num_points: int, num_unknowns: int) -> np.ndarray:
    """``B (N, K)``: the periodic piecewise-linear interpolant at the grid ``x_j = −1 + 2j/N`` of values at the
    nodes ``x_k = −1 + 2k/K`` (rows sum to 1; K = N gives the identity).

    Examples:
        >>> hat_basis(4, 2)  # grid points −1, −0.5, 0, 0.5; nodes −1, 0 (and −1 again after the period)
        array([[1. , 0. ],
               [0.5, 0.5],
               [0. , 1. ],
               [0.5, 0.5]])
    """
    x = np.asarray(grid_points(num_points, np.float64))
    nodes = -1.0 + 2.0 * np.arange(num_unknowns) / num_unknowns
    h = 2.0 / num_unknowns
    d = (x[:, None] - nodes[None, :] + 1.0) % 2.0 - 1.0  # periodic distance in [−1, 1)
    return np.maximum(0.0, 1.0 - np.abs(d) / h)


def prior_precision(spec: FieldSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, L)`` with ``Q = LᵀL = (h/τ²)(κ²I − Δ_h)²`` (module docstring); ``L = √h/τ (κ²I − Δ_h)``."""
    k = spec.num_unknowns
    h = 2.0 / k
    eye = np.eye(k)
    lap = (np.roll(eye, 1, axis=1) + np.roll(eye, -1, axis=1) - 2.0 * eye) / h**2
    op = spec.kappa**2 * eye - lap
    root = math.sqrt(h) / spec.tau * op
    return root.T @ root, root


def _bits(theta: jax.Array) -> jax.Array:
    """An integer made from the bits of θ (distinct θ give distinct integers with overwhelming probability)."""
    words = jax.lax.bitcast_convert_type(jnp.ravel(theta).astype(jnp.float64), jnp.uint32).reshape(-1)
    weights = jnp.arange(1, words.size + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)
    return jnp.sum(words * weights)


def field_objective_parts(settings: SpectralSettings, spec: FieldSpec, sigma: float, noise_scale: float):
    """``predict(θ, data) -> (P,)``: the solver's values at the observations (plus the noisy variant's call noise
    ``noise_scale · N(0, 1)`` from the key ``data["noise_key"]`` folded with θ's bits), and
    ``misfit(θ, data) = Σ_i (predict_i − u_i)² / (2σ²)``."""
    basis = jnp.asarray(hat_basis(settings.num_points, spec.num_unknowns))

    def predict(theta, data):
        rate = BASE_RATE * jnp.exp(basis @ theta)
        spectra = solve_spectrum(EQUATION, spec.diffusion, settings, 1.0, rate)
        values = _values_at(spectra, data["t_index"], data["x"], settings.num_points)
        if spec.solver_noise > 0:
            key = jax.random.fold_in(data["noise_key"], _bits(theta))
            values = values + noise_scale * jax.random.normal(key, values.shape, values.dtype)
        return values

    def misfit(theta, data):
        return jnp.sum((predict(theta, data) - data["u"]) ** 2) / (2.0 * sigma**2)

    return predict, misfit


def field_black_box(
    settings: SpectralSettings, spec: FieldSpec, sigma: float, noise_scale: float, data
) -> BlackBoxProblem:
    """The misfit term of J as a black box (the prior's gradient is added exactly, :func:`prior_gradient`)."""
    _, misfit = field_objective_parts(settings, spec, sigma, noise_scale)
    return BlackBoxProblem(misfit, data)


def field_unrolled_problem(
    settings: SpectralSettings, spec: FieldSpec, sigma: float, observations: Observations
) -> UnrolledProblem:
    """The misfit term of J through the differentiable solver, one output interval per inner step (as
    :func:`.problems.spectral_unrolled_problem`); deterministic solver only."""
    if spec.solver_noise > 0:
        raise ValueError("the white-box (unrolled) field problem has no noisy variant; use solver_noise=0")
    basis = jnp.asarray(hat_basis(settings.num_points, spec.num_unknowns))

    def make_stepper(theta):
        rate = BASE_RATE * jnp.exp(basis @ theta)
        return stepper(EQUATION, spec.diffusion, settings, 1.0, rate), jnp.bool_(True)

    batches = interval_batches(observations, settings.num_outputs, 1.0 / (2.0 * sigma**2))
    return unrolled_misfit_problem(make_stepper, settings, EQUATION.initial_condition, batches)


def prior_gradient(precision: np.ndarray):
    """An optax transformation adding the prior's exact gradient ``Qθ`` to the incoming (misfit) gradient."""
    import optax  # noqa: PLC0415 (JAX-side dependency, as the rest of the benchmark)

    q = jnp.asarray(precision)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("prior_gradient needs the parameters (optax passes them as `params`)")
        return jax.tree_util.tree_map(lambda g, p: g + q @ p, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def relative_field_error(theta, num_points: int, num_unknowns: int) -> float:
    """``‖r_θ − r*‖₂ / ‖r*‖₂`` on the solver's grid (no solve)."""
    x = np.asarray(grid_points(num_points, np.float64))
    rate = BASE_RATE * np.exp(hat_basis(num_points, num_unknowns) @ np.asarray(theta, np.float64))
    truth = BASE_RATE * np.exp(true_log_rate(x))
    return float(np.linalg.norm(rate - truth) / np.linalg.norm(truth))


def field_reference(x: np.ndarray, t: np.ndarray, settings: SpectralSettings) -> np.ndarray:
    """The ground truth ``u (n_t, n_x)`` on ``t × x``: the solver with the exact f* on its own (fine) grid."""
    from fg2u_bench_pde.spectral import evaluate  # noqa: PLC0415

    grid = grid_points(settings.num_points, jnp.float64)
    rate = BASE_RATE * jnp.exp(true_log_rate(grid))
    solve: Callable = jax.jit(lambda r: solve_spectrum(EQUATION, 1e-3, settings, 1.0, r))
    spectra = solve(rate)
    return np.asarray(evaluate(spectra, jnp.asarray(x, jnp.float64), settings.num_points))
