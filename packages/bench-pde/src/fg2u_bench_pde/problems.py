"""Bi-level problems of the benchmark: φ (a 0-d array, or ``(2,)`` for two unknowns) parametrises the unknown
coefficient c(φ) (and λ₁).

* :func:`spectral_problem` — a :class:`fg2u.BlackBoxProblem`: ``L(φ) = mean_i (u_c(t_i, x_i) − u_i)²``
  with ``u_c`` from the pseudo-spectral solver (:mod:`.spectral`) and the observations ``(t_i, x_i, u_i)``:
  the paper treats the numerical solver as a black box (FG²U-ZO, least squares with a finite-difference
  Jacobian and Nelder–Mead see only this). :func:`spectral_residuals` is the same misfit as a vector.
* :func:`spectral_unrolled_problem` — the same solve and the same L(φ) as an :class:`fg2u.UnrolledProblem`
  (inner state: the solution at an output time and the misfit so far; one inner step: one output interval of
  ETDRK4 steps with the coefficient c(φ)), so that estimators that differentiate through the solver (FG²U,
  RGU, RGUCheckpointed, ...) run on it.
* :func:`fg2u_bench_pde.pinn.pinn_problem` — the PINN as an :class:`fg2u.UnrolledProblem`.

A non-positive coefficient makes the objective NaN (inside traced code we cannot raise); the benchmark
loop turns any NaN into :class:`~fg2u_bench_pde.equations.UnstableSettingError` naming the setting.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from fg2u import BlackBoxProblem, UnrolledProblem
from fg2u_bench_pde.equations import Equation, coefficient_from_phi
from fg2u_bench_pde.observations import Observations
from fg2u_bench_pde.spectral import SpectralSettings, chebyshev_basis, evaluate, solve_spectrum, stepper

__all__ = [
    "split_unknowns",
    "observation_data",
    "values_at",
    "spectral_objective",
    "spectral_residuals",
    "spectral_problem",
    "interval_batches",
    "unrolled_misfit_problem",
    "spectral_unrolled_problem",
    "spectral_prediction",
]


def observation_data(observations: Observations) -> dict:
    """The observations as a dict of jnp arrays (pytree leaves): ``t_index`` int, ``x`` and ``u`` float."""
    return {
        "t_index": jnp.asarray(observations.t_index),
        "x": jnp.asarray(observations.x, dtype=jnp.result_type(float)),
        "u": jnp.asarray(observations.u, dtype=jnp.result_type(float)),
    }


def _values_at(spectra, t_index, x, num_points: int):
    """Interpolant of spectrum ``spectra[t_index_i]`` at ``x_i``, shape ``(P,)`` (Fourier or Chebyshev)."""
    return values_at(spectra[t_index], x, num_points)


def values_at(spectra, x, num_points: int):
    """The interpolant of ``spectra[i]`` at ``x[i]``: ``spectra (P, M)`` (or one spectrum ``(M,)`` for every
    point), ``x (P,)`` → ``(P,)``; Fourier (complex rfft coefficients) or Chebyshev (real series)."""
    if not jnp.iscomplexobj(spectra):
        return jnp.sum(spectra * chebyshev_basis(x, num_points), axis=1)
    m = jnp.arange(num_points // 2 + 1)
    weights = jnp.where((m == 0) | (m == num_points // 2), 1.0, 2.0)
    phase = jnp.exp(1j * math.pi * (x[:, None] + 1.0) * m[None, :])
    return jnp.sum(jnp.real(spectra * weights * phase), axis=1) / num_points


def split_unknowns(phi, parametrisation: str, unknowns: int):
    """``(c, λ₁)`` from φ: one unknown — φ is 0-d, c = c(φ), λ₁ = 1; two unknowns — φ = (φ₁, φ₂) of shape
    ``(2,)``, λ₁ = c(φ₁) (nonlinear term), c = c(φ₂) (the paper's coefficient, "λ₂")."""
    if unknowns == 1:
        return coefficient_from_phi(phi, parametrisation), jnp.ones_like(phi)
    if unknowns == 2:
        return coefficient_from_phi(phi[1], parametrisation), coefficient_from_phi(phi[0], parametrisation)
    raise ValueError(f"unknowns must be 1 or 2, got {unknowns!r}")


@functools.lru_cache(maxsize=32)  # one function per problem: jit and XLA caches then hit across seeds and runs
def spectral_objective(equation: Equation, settings: SpectralSettings, parametrisation: str, unknowns: int = 1):
    """``objective(φ, data) -> L(φ)``: mean squared misfit at the observations (NaN when c(φ) ≤ 0 or λ₁ ≤ 0).

    ``unknowns=2`` (Burgers, KdV): φ has shape ``(2,)`` and also sets λ₁, see :func:`split_unknowns`.
    """
    if unknowns == 2 and not equation.nonlinear_unknown:
        raise ValueError(f"{equation.name} has no second unknown (λ₁ of the nonlinear term); use unknowns=1")

    def objective(phi, data):
        coefficient, scale = split_unknowns(phi, parametrisation, unknowns)
        ok = (coefficient > 0) & (scale > 0)
        spectra = solve_spectrum(equation, jnp.where(ok, coefficient, 1.0), settings, jnp.where(ok, scale, 1.0))
        predicted = _values_at(spectra, data["t_index"], data["x"], settings.num_points)
        loss = jnp.mean((predicted - data["u"]) ** 2)
        return jnp.where(ok, loss, jnp.nan)

    return objective


@functools.lru_cache(maxsize=32)
def spectral_residuals(equation: Equation, settings: SpectralSettings, parametrisation: str, unknowns: int = 1):
    """``residuals(φ, data) -> (P,)``: ``u_c(t_i, x_i) − u_i`` at the observations, whose mean square is
    :func:`spectral_objective` (NaN entries when c(φ) ≤ 0 or λ₁ ≤ 0)."""
    if unknowns == 2 and not equation.nonlinear_unknown:
        raise ValueError(f"{equation.name} has no second unknown (λ₁ of the nonlinear term); use unknowns=1")

    def residuals(phi, data):
        coefficient, scale = split_unknowns(phi, parametrisation, unknowns)
        ok = (coefficient > 0) & (scale > 0)
        spectra = solve_spectrum(equation, jnp.where(ok, coefficient, 1.0), settings, jnp.where(ok, scale, 1.0))
        predicted = _values_at(spectra, data["t_index"], data["x"], settings.num_points)
        return jnp.where(ok, predicted - data["u"], jnp.nan)

    return residuals


def spectral_problem(
    equation: Equation,
    settings: SpectralSettings,
    parametrisation: str,
    observations: Observations,
    unknowns: int = 1,
) -> BlackBoxProblem:
    """The black-box problem ``L(φ)`` of the spectral solver; observation times must be output times."""
    if int(observations.t_index.max()) >= settings.num_outputs:
        raise ValueError(
            f"observation time index {int(observations.t_index.max())} >= num_outputs={settings.num_outputs}"
        )
    return BlackBoxProblem(
        spectral_objective(equation, settings, parametrisation, unknowns), observation_data(observations)
    )


def spectral_prediction(
    equation: Equation, coefficient, settings: SpectralSettings, x, nonlinear_scale: float = 1.0
) -> jax.Array:
    """``u_c`` at all output times and points ``x``: ``(num_outputs, P)`` (jit-compiled)."""
    spectra = jax.jit(solve_spectrum, static_argnums=(0, 2))(
        equation, jnp.asarray(coefficient), settings, jnp.asarray(nonlinear_scale)
    )
    return evaluate(spectra, jnp.asarray(x, dtype=spectra.real.dtype), settings.num_points)


def interval_batches(observations: Observations, num_outputs: int, weight: float) -> dict:
    """The observations grouped by output time for :func:`unrolled_misfit_problem`.

    Returns ``{"inner": {"x", "u", "w"}, "initial": {"x", "u", "w"}}``: ``inner`` leaves have shape
    ``(num_outputs − 1, Q)`` — row ``n`` holds the observations at output time ``n + 1``, padded to the largest
    count Q with ``w = 0``; ``initial`` holds those at t = 0 (``(Q₀,)``, at least one padded entry). Real
    entries have ``w = weight``.
    """
    t_index = np.asarray(observations.t_index)
    if t_index.max() >= num_outputs:
        raise ValueError(f"observation time index {int(t_index.max())} >= num_outputs={num_outputs}")
    fdtype = jnp.result_type(float)

    def pack(rows: list) -> dict:
        width = max(1, max(len(r) for r in rows))
        out = {k: np.zeros((len(rows), width)) for k in ("x", "u", "w")}
        for n, idx in enumerate(rows):
            out["x"][n, : len(idx)] = observations.x[idx]
            out["u"][n, : len(idx)] = observations.u[idx]
            out["w"][n, : len(idx)] = weight
        return {k: jnp.asarray(v, fdtype) for k, v in out.items()}

    inner = pack([np.flatnonzero(t_index == n) for n in range(1, num_outputs)])
    initial = pack([np.flatnonzero(t_index == 0)])
    return {"inner": inner, "initial": {k: v[0] for k, v in initial.items()}}


def unrolled_misfit_problem(make_stepper, settings: SpectralSettings, initial_values, batches: dict) -> UnrolledProblem:
    """A solve as an unrolled problem whose outer loss is the weighted squared misfit ``Σ_i w_i (u(t_i, x_i) − u_i)²``.

    Args:
      make_stepper: ``φ -> (Stepper, ok)``: the solver's time stepping for φ (:func:`.spectral.stepper`) and a
        traced bool (False: φ is outside the domain; the loss is then NaN).
      settings: the discretisation (``num_outputs − 1`` inner steps, one per output interval).
      initial_values: ``x -> u(0, x)`` (the initial condition, for observations at t = 0).
      batches: :func:`interval_batches`.

    The inner state is ``{"z": the solver state as real numbers (complex spectra as (re, im)), "misfit": the
    weighted squared misfit of the output times so far}``.
    """

    def to_real(z):
        return jnp.stack([jnp.real(z), jnp.imag(z)]) if jnp.iscomplexobj(z) else z

    def init(phi):
        s, _ = make_stepper(phi)
        return {"z": to_real(s.z0), "misfit": jnp.zeros((), jnp.real(s.z0).dtype)}

    def step(state, phi, batch):
        s, _ = make_stepper(phi)
        z = state["z"]
        z = s.advance(z[0] + 1j * z[1] if jnp.iscomplexobj(s.z0) else z)
        values = values_at(s.to_output(z), batch["x"], settings.num_points)
        return {"z": to_real(z), "misfit": state["misfit"] + jnp.sum(batch["w"] * (values - batch["u"]) ** 2)}

    def outer_loss(state, phi, initial):
        _, ok = make_stepper(phi)
        loss = state["misfit"] + jnp.sum(initial["w"] * (initial_values(initial["x"]) - initial["u"]) ** 2)
        return jnp.where(ok, loss, jnp.nan)

    return UnrolledProblem(
        init=init,
        step=step,
        outer_loss=outer_loss,
        num_steps=settings.num_outputs - 1,
        inner_batches=batches["inner"],
        outer_batch=batches["initial"],
    )


def spectral_unrolled_problem(
    equation: Equation,
    settings: SpectralSettings,
    parametrisation: str,
    observations: Observations,
    unknowns: int = 1,
) -> UnrolledProblem:
    """:func:`spectral_problem`'s L(φ) (the mean squared misfit) as an unrolled problem (module docstring):
    ``T = num_outputs − 1`` inner steps of ``substeps`` ETDRK4 steps each."""
    if unknowns == 2 and not equation.nonlinear_unknown:
        raise ValueError(f"{equation.name} has no second unknown (λ₁ of the nonlinear term); use unknowns=1")

    def make_stepper(phi):
        coefficient, scale = split_unknowns(phi, parametrisation, unknowns)
        ok = (coefficient > 0) & (scale > 0)
        return stepper(equation, jnp.where(ok, coefficient, 1.0), settings, jnp.where(ok, scale, 1.0)), ok

    batches = interval_batches(observations, settings.num_outputs, 1.0 / len(observations.u))
    return unrolled_misfit_problem(make_stepper, settings, equation.initial_condition, batches)
