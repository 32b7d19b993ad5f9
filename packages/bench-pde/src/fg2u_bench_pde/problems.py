"""Bi-level problems of the benchmark: φ (a 0-d array) parametrises the unknown coefficient c(φ).

* :func:`spectral_problem` — a :class:`fg2u.BlackBoxProblem`: ``L(φ) = mean_i (u_c(t_i, x_i) − u_i)²``
  with ``u_c`` from the pseudo-spectral solver (:mod:`.spectral`) and the observations ``(t_i, x_i, u_i)``.
  Only FG²U-ZO applies (the paper treats the numerical solver as a black box), although the solver is
  differentiable in JAX, which the tests use as an oracle.
* :func:`fg2u_bench_pde.pinn.pinn_problem` — the PINN as an :class:`fg2u.UnrolledProblem`.

A non-positive coefficient makes the objective NaN (inside traced code we cannot raise); the benchmark
loop turns any NaN into :class:`~fg2u_bench_pde.equations.UnstableSettingError` naming the setting.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from fg2u import BlackBoxProblem
from fg2u_bench_pde.equations import Equation, coefficient_from_phi
from fg2u_bench_pde.observations import Observations
from fg2u_bench_pde.spectral import SpectralSettings, chebyshev_basis, evaluate, solve_spectrum

__all__ = ["split_unknowns", "observation_data", "spectral_objective", "spectral_problem", "spectral_prediction"]


def observation_data(observations: Observations) -> dict:
    """The observations as a dict of jnp arrays (pytree leaves): ``t_index`` int, ``x`` and ``u`` float."""
    return {
        "t_index": jnp.asarray(observations.t_index),
        "x": jnp.asarray(observations.x, dtype=jnp.result_type(float)),
        "u": jnp.asarray(observations.u, dtype=jnp.result_type(float)),
    }


def _values_at(spectra, t_index, x, num_points: int):
    """Interpolant of spectrum ``spectra[t_index_i]`` at ``x_i``, shape ``(P,)`` (Fourier or Chebyshev)."""
    if not jnp.iscomplexobj(spectra):
        return jnp.sum(spectra[t_index] * chebyshev_basis(x, num_points), axis=1)
    m = jnp.arange(num_points // 2 + 1)
    weights = jnp.where((m == 0) | (m == num_points // 2), 1.0, 2.0)
    phase = jnp.exp(1j * math.pi * (x[:, None] + 1.0) * m[None, :])
    return jnp.sum(jnp.real(spectra[t_index] * weights * phase), axis=1) / num_points


def split_unknowns(phi, parametrisation: str, unknowns: int):
    """``(c, λ₁)`` from φ: one unknown — φ is 0-d, c = c(φ), λ₁ = 1; two unknowns — φ = (φ₁, φ₂) of shape
    ``(2,)``, λ₁ = c(φ₁) (nonlinear term), c = c(φ₂) (the paper's coefficient, "λ₂")."""
    if unknowns == 1:
        return coefficient_from_phi(phi, parametrisation), jnp.ones_like(phi)
    if unknowns == 2:
        return coefficient_from_phi(phi[1], parametrisation), coefficient_from_phi(phi[0], parametrisation)
    raise ValueError(f"unknowns must be 1 or 2, got {unknowns!r}")


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
