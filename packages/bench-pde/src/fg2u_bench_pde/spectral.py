"""Fourier pseudo-spectral solver with ETDRK4 time stepping, in JAX (differentiable, jit-able).

Space: ``N`` equispaced points ``x_j = −1 + 2j/N`` on the periodic domain [−1, 1) (period 2), real FFTs,
wavenumbers ``k_m = π m`` (m = 0 … N/2). Derivatives are exact for the represented modes; the odd
derivative of the Nyquist mode is set to zero (it is not representable for real data). Optional
dealiasing (``dealias=True``) zeroes modes with ``m > N/3`` in the nonlinear term (the 2/3 rule).

Time: ``v̂_t = L(c) v̂ + N(v̂)`` with the stiff linear part ``L = −c k²`` (diffusion, Burgers/Allen-Cahn)
or ``L = i c k³`` (dispersion, KdV: −c ∂x³ has symbol −c (ik)³ = i c k³) treated exactly, and the
nonlinear part ``N`` (−½ ∂x(u²) for Burgers/KdV, 5(u − u³) for Allen-Cahn) explicitly, by the
exponential time-differencing Runge–Kutta scheme of order 4 of Cox & Matthews (2002). Its
coefficients ``φ_j(hL)`` suffer cancellation for small ``|hL|``, so they are computed as Kassam &
Trefethen (2005) do, by the mean of the formula over ``M`` points of a circle of radius 1 around each
``hL`` (Cauchy's integral; the full circle, since L is complex for KdV). The coefficients are functions
of the coefficient c, computed inside the traced function, so the whole solve is differentiable in c
(``jax.grad``, ``jax.jvp``) — the oracle the finite-difference tests compare with.

Output: the spectrum at the ``num_outputs`` times ``t_n = n·output_dt`` (n = 0 … num_outputs−1), which
:func:`evaluate` turns into values at arbitrary points x by Fourier interpolation (the band-limited
interpolant, exact for the represented modes). That is how we sample the reference grids, whose x
points (e.g. 256 points including both ±1) are not our collocation points.

Use float64 (``jax.enable_x64``): the benchmark needs finite differences of the solution with ε ~ 1e-4.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from fg2u._checks import check_positive_float, check_positive_int
from fg2u_bench_pde.equations import Equation, UnstableSettingError, check_coefficient

__all__ = [
    "SpectralSettings",
    "grid_points",
    "wavenumbers",
    "etdrk4_coefficients",
    "solve_spectrum",
    "evaluate",
    "solve",
    "check_solution",
]


@dataclasses.dataclass(frozen=True)
class SpectralSettings:
    """Discretisation of one solve.

    Attributes:
      num_points: N, the number of Fourier collocation points (even, ≥ 8).
      output_dt: spacing of the output times ``t_n = n·output_dt``.
      num_outputs: number of output times (the first is t = 0).
      substeps: ETDRK4 steps per output interval; the time step is ``h = output_dt / substeps``.
      dealias: apply the 2/3 rule to the nonlinear term.
      contour_points: M, points on the Kassam–Trefethen contour.
      blowup_factor: a solution whose max |u| exceeds this factor times max |u0| (or 1) counts as blown up.
    """

    num_points: int
    output_dt: float
    num_outputs: int
    substeps: int
    dealias: bool = True
    contour_points: int = 64
    blowup_factor: float = 20.0

    def __post_init__(self) -> None:
        check_positive_int("num_points", self.num_points)
        if self.num_points % 2 or self.num_points < 8:
            raise ValueError(f"num_points must be even and >= 8, got {self.num_points}")
        check_positive_float("output_dt", self.output_dt)
        check_positive_int("num_outputs", self.num_outputs)
        check_positive_int("substeps", self.substeps)
        check_positive_int("contour_points", self.contour_points)
        check_positive_float("blowup_factor", self.blowup_factor)

    @property
    def dt(self) -> float:
        """The ETDRK4 time step h."""
        return self.output_dt / self.substeps

    @property
    def final_time(self) -> float:
        return self.output_dt * (self.num_outputs - 1)

    def describe(self) -> str:
        return (f"num_points={self.num_points}, dt={self.dt:.3g} (output_dt={self.output_dt:g} / "
                f"substeps={self.substeps}), dealias={self.dealias}")


def grid_points(num_points: int, dtype=None) -> jax.Array:
    """``x_j = −1 + 2j/N``, j = 0 … N−1, shape ``(N,)``."""
    return -1.0 + 2.0 * jnp.arange(num_points, dtype=dtype or jnp.result_type(float)) / num_points


def wavenumbers(num_points: int, dtype=None) -> jax.Array:
    """``k_m = π m``, m = 0 … N/2, shape ``(N/2 + 1,)`` (the rfft layout; domain length 2)."""
    return math.pi * jnp.arange(num_points // 2 + 1, dtype=dtype or jnp.result_type(float))


def etdrk4_coefficients(linear, h, contour_points: int = 64):
    """ETDRK4 coefficients for the diagonal operator ``linear`` (complex ``(M,)``) and step ``h``.

    Returns ``(E, E2, Q, f1, f2, f3)``, each ``(M,)`` complex: ``E = e^{hL}``, ``E2 = e^{hL/2}``,
    ``Q = h·φ₁(hL/2)/2``-type weights of Cox–Matthews, by contour averages (Kassam–Trefethen):

      Q  = h ⟨(e^{z/2} − 1)/z⟩,        f1 = h ⟨(−4 − z + e^z(4 − 3z + z²))/z³⟩,
      f2 = h ⟨(2 + z + e^z(z − 2))/z³⟩, f3 = h ⟨(−4 − 3z − z² + e^z(4 − z))/z³⟩,

    with ⟨·⟩ the mean over ``z = hL + e^{2πi(j+½)/M}``, j = 0 … M−1.
    """
    hl = h * linear
    roots = jnp.exp(2j * math.pi * (jnp.arange(contour_points) + 0.5) / contour_points).astype(hl.dtype)
    z = hl[:, None] + roots[None, :]
    ez = jnp.exp(z)
    q = h * jnp.mean((jnp.exp(z / 2) - 1.0) / z, axis=1)
    f1 = h * jnp.mean((-4.0 - z + ez * (4.0 - 3.0 * z + z**2)) / z**3, axis=1)
    f2 = h * jnp.mean((2.0 + z + ez * (z - 2.0)) / z**3, axis=1)
    f3 = h * jnp.mean((-4.0 - 3.0 * z - z**2 + ez * (4.0 - z)) / z**3, axis=1)
    return jnp.exp(hl), jnp.exp(hl / 2), q, f1, f2, f3


def _nonlinear_fn(equation: Equation, num_points: int, dtype, dealias: bool):
    k = wavenumbers(num_points, dtype)
    k_odd = k.at[-1].set(0.0)  # no odd derivative of the Nyquist mode for real data
    m = jnp.arange(num_points // 2 + 1)
    mask = (m <= num_points // 3).astype(dtype) if dealias else jnp.ones_like(k)

    if equation.name in ("burgers", "kdv"):
        def nonlinear(v_hat):  # −u u_x = −½ (u²)_x
            u = jnp.fft.irfft(v_hat, n=num_points)
            return -0.5j * k_odd * mask * jnp.fft.rfft(u * u)
    elif equation.name == "allen_cahn":
        def nonlinear(v_hat):  # 5 (u − u³)
            u = jnp.fft.irfft(v_hat, n=num_points)
            return mask * jnp.fft.rfft(5.0 * (u - u**3))
    else:
        raise ValueError(f"no spectral right-hand side for equation {equation.name!r}")
    return nonlinear


def solve_spectrum(equation: Equation, coefficient, settings: SpectralSettings) -> jax.Array:
    """Spectra ``v̂(t_n)`` at the output times, shape ``(num_outputs, N/2 + 1)`` complex.

    ``coefficient`` may be a traced scalar (the function is jit-able and differentiable in it).
    """
    n = settings.num_points
    coefficient = jnp.asarray(coefficient)
    dtype = coefficient.dtype if jnp.issubdtype(coefficient.dtype, jnp.floating) else jnp.result_type(float)
    h = settings.dt
    k = wavenumbers(n, dtype)
    linear = equation.linear_symbol(k, coefficient.astype(dtype))
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(linear, h, settings.contour_points)
    nonlinear = _nonlinear_fn(equation, n, dtype, settings.dealias)

    def etdrk4_step(v, _):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2.0 * nb - nv)
        nc = nonlinear(c)
        return e * v + nv * f1 + 2.0 * (na + nb) * f2 + nc * f3, None

    def interval(v, _):
        v, _ = jax.lax.scan(etdrk4_step, v, None, length=settings.substeps)
        return v, v

    u0 = equation.initial_condition(grid_points(n, dtype))
    v0 = jnp.fft.rfft(u0)
    _, vs = jax.lax.scan(interval, v0, None, length=settings.num_outputs - 1)
    return jnp.concatenate([v0[None], vs], axis=0)


def evaluate(spectra, x, num_points: int) -> jax.Array:
    """Band-limited interpolant of real spectra at points ``x``.

    Args:
      spectra: ``(..., N/2 + 1)`` rfft coefficients of grid values on ``x_j = −1 + 2j/N``.
      x: ``(P,)`` points (any real values; the interpolant is 2-periodic).
    Returns:
      ``(..., P)`` real values ``(1/N) Re Σ_m w_m v̂_m e^{iπm(x+1)}`` (w = 1 for m = 0 and N/2, else 2).
    """
    x = jnp.asarray(x)
    m = jnp.arange(num_points // 2 + 1)
    weights = jnp.where((m == 0) | (m == num_points // 2), 1.0, 2.0).astype(x.dtype)
    phase = jnp.exp(1j * math.pi * (x[:, None] + 1.0) * m[None, :].astype(x.dtype))
    return jnp.real(spectra @ (weights[:, None] * phase.T)) / num_points


def solve(equation: Equation, coefficient: float, settings: SpectralSettings, x) -> np.ndarray:
    """Checked, non-traced solve: values at the output times and points ``x``, ``(num_outputs, P)``.

    Raises :class:`UnstableSettingError` for a non-positive coefficient or a blown-up solution.
    """
    check_coefficient(coefficient, f"{equation.name} coefficient {equation.coefficient_name}")
    spectra = jax.jit(solve_spectrum, static_argnums=(0, 2))(equation, jnp.asarray(coefficient), settings)
    values = np.asarray(evaluate(spectra, jnp.asarray(x, dtype=spectra.real.dtype), settings.num_points))
    check_solution(values, equation, float(coefficient), settings)
    return values


def check_solution(values, equation: Equation, coefficient: float, settings: SpectralSettings) -> None:
    """Raises :class:`UnstableSettingError` when ``values`` hold NaN/inf or exceed the blow-up bound."""
    values = np.asarray(values)
    bound = settings.blowup_factor * max(1.0, float(np.max(np.abs(values[0]))) if values.size else 1.0)
    if not np.all(np.isfinite(values)) or np.max(np.abs(values)) > bound:
        raise UnstableSettingError(
            f"the spectral solution of {equation.name} blew up (NaN/inf or |u| > {bound:g}) at "
            f"{equation.coefficient_name}={coefficient:.6g} with {settings.describe()}; the time step is "
            "too large for this coefficient/grid (raise substeps) or the grid too coarse (raise num_points)"
        )
