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

Dirichlet problems (Allen-Cahn, u(t, ±1) = b): Chebyshev collocation on the ``N + 1`` points
``x_j = cos(πj/N)``. With ``w = u − b`` (zero at ±1) the semi-discretisation is ``w_t = c D₂ w + N(w + b)``,
``D₂`` the interior block of the squared Chebyshev differentiation matrix (boundary rows and columns
removed, which imposes w(±1) = 0). ``D₂ = V Λ V⁻¹`` has real negative eigenvalues (computed once per N in
numpy, independent of c), so in the coordinates ``z = V⁻¹ w`` the linear part is diagonal, ``c Λ``, and the
same ETDRK4 step and contour coefficients apply; the nonlinear term is ``V⁻¹ N(V z + b)``. The output is
the Chebyshev series of u at each output time (``(num_outputs, N + 1)``, real), evaluated at any
x ∈ [−1, 1] by ``Σ_k a_k cos(k arccos x)``. Conditioning: cond(V) ≈ 2–4 for N ≤ 512.

Use float64 (``jax.enable_x64``): the benchmark needs finite differences of the solution with ε ~ 1e-4.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fg2u.checks import check_positive_float, check_positive_int
from fg2u_bench_pde.equations import Equation, UnstableSettingError, check_coefficient

__all__ = [
    "SpectralSettings",
    "grid_points",
    "wavenumbers",
    "chebyshev_points",
    "chebyshev_operators",
    "etdrk4_coefficients",
    "Stepper",
    "stepper",
    "solve_spectrum",
    "evaluate",
    "chebyshev_basis",
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
        return (
            f"num_points={self.num_points}, dt={self.dt:.3g} (output_dt={self.output_dt:g} / "
            f"substeps={self.substeps}), dealias={self.dealias}"
        )


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


def chebyshev_points(num_points: int) -> np.ndarray:
    """``x_j = cos(πj/N)``, j = 0 … N, shape ``(N + 1,)`` (from 1 down to −1)."""
    return np.cos(np.pi * np.arange(num_points + 1) / num_points)


@functools.lru_cache(maxsize=8)
def chebyshev_operators(num_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Λ, V, V⁻¹, A)`` for N = ``num_points`` (float64 numpy, cached).

    ``Λ (N−1,)`` and ``V (N−1, N−1)``: the eigen-decomposition of the interior block of D² (D the
    Chebyshev differentiation matrix of Trefethen's *Spectral Methods in MATLAB*, ch. 6);
    ``A (N+1, N−1)`` maps eigen-coordinates z to the Chebyshev coefficients of w = V z padded with
    w(±1) = 0.
    """
    n = num_points
    x = chebyshev_points(n)
    c = np.hstack([2.0, np.ones(n - 1), 2.0]) * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d = d - np.diag(d.sum(axis=1))
    d2 = (d @ d)[1:n, 1:n]
    lam, v = np.linalg.eig(d2)
    if np.max(np.abs(lam.imag)) > 1e-8 * np.max(np.abs(lam.real)) or np.max(lam.real) >= 0:
        raise RuntimeError(f"Chebyshev D2 with N={n} has complex or non-negative eigenvalues; use N <= 512")
    lam, v = lam.real, v.real
    v_inv = np.linalg.inv(v)
    cheb_t = np.cos(np.outer(np.arange(n + 1), np.arange(n + 1)) * np.pi / n)  # T_k(x_j)
    pad = np.zeros((n + 1, n - 1))
    pad[1:n] = v
    a = np.linalg.solve(cheb_t, pad)
    return lam, v, v_inv, a


def _nonlinear_fn(equation: Equation, num_points: int, dtype, dealias: bool, scale=1.0, rate=None):
    if equation.boundary == "dirichlet":
        if equation.linear_order != 2 or not equation.name.startswith("allen_cahn"):
            raise ValueError(f"no Chebyshev right-hand side for equation {equation.name!r}")
        _, v, v_inv, _ = chebyshev_operators(num_points)
        v, v_inv = jnp.asarray(v, dtype), jnp.asarray(v_inv, dtype)
        b = equation.boundary_value
        r = 5.0 if rate is None else rate

        def nonlinear(z):  # V⁻¹ · r (u − u³), u = V z + b
            u = v @ z + b
            return scale * (v_inv @ (r * (u - u**3)))

        return nonlinear

    k = wavenumbers(num_points, dtype)
    k_odd = k.at[-1].set(0.0)  # no odd derivative of the Nyquist mode for real data
    m = jnp.arange(num_points // 2 + 1)
    mask = (m <= num_points // 3).astype(dtype) if dealias else jnp.ones_like(k)

    if equation.name in ("burgers", "kdv"):
        if rate is not None:
            raise ValueError(f"a reaction-rate field applies to Allen-Cahn, not {equation.name!r}")

        def nonlinear(v_hat):  # −λ₁ u u_x = −½ λ₁ (u²)_x
            u = jnp.fft.irfft(v_hat, n=num_points)
            return -0.5j * scale * k_odd * mask * jnp.fft.rfft(u * u)
    elif equation.name.startswith("allen_cahn"):
        r = 5.0 if rate is None else rate

        def nonlinear(v_hat):  # r (u − u³), r = 5 or a field on the grid
            u = jnp.fft.irfft(v_hat, n=num_points)
            return scale * mask * jnp.fft.rfft(r * (u - u**3))
    else:
        raise ValueError(f"no spectral right-hand side for equation {equation.name!r}")
    return nonlinear


@dataclasses.dataclass(frozen=True)
class Stepper:
    """The time stepping of one solve, for a solver written step by step (an unrolled problem).

    Attributes:
      z0: the initial state in the solver's coordinates (Fourier: rfft spectrum ``(N/2 + 1,)`` complex;
        Chebyshev: eigen-coordinates ``(N − 1,)`` real).
      advance: ``z -> z`` after one output interval (``substeps`` ETDRK4 steps).
      to_output: ``z ->`` the output basis coefficients (Fourier: the spectrum itself; Chebyshev: the
        Chebyshev series of u, ``(N + 1,)``), evaluated by :func:`evaluate`.
    """

    z0: jax.Array
    advance: Callable[[jax.Array], jax.Array]
    to_output: Callable[[jax.Array], jax.Array]


def stepper(equation: Equation, coefficient, settings: SpectralSettings, nonlinear_scale=1.0, rate=None) -> Stepper:
    """The ETDRK4 stepping of :func:`solve_spectrum` for one coefficient (traceable and differentiable in
    ``coefficient``, ``nonlinear_scale`` and ``rate``); :func:`solve_spectrum` is ``num_outputs − 1``
    applications of ``advance``."""
    n = settings.num_points
    coefficient = jnp.asarray(coefficient)
    dtype = coefficient.dtype if jnp.issubdtype(coefficient.dtype, jnp.floating) else jnp.result_type(float)
    h = settings.dt
    scale = jnp.asarray(nonlinear_scale, dtype)
    rate = None if rate is None else jnp.asarray(rate, dtype)
    nonlinear = _nonlinear_fn(equation, n, dtype, settings.dealias, scale, rate)
    if equation.boundary == "dirichlet":
        lam, v, v_inv, a = chebyshev_operators(n)
        linear = (coefficient.astype(dtype) * jnp.asarray(lam, dtype)).astype(_complex(dtype))
        e, e2, q, f1, f2, f3 = (jnp.real(c) for c in etdrk4_coefficients(linear, h, settings.contour_points))
        x_cheb = chebyshev_points(n)[1:n]
        z0 = jnp.asarray(v_inv, dtype) @ (
            equation.initial_condition(jnp.asarray(x_cheb, dtype)) - equation.boundary_value
        )
        a = jnp.asarray(a, dtype)
        offset = jnp.zeros(n + 1, dtype).at[0].set(equation.boundary_value)
        to_output = lambda z: a @ z + offset  # noqa: E731
    else:
        k = wavenumbers(n, dtype)
        linear = equation.linear_symbol(k, coefficient.astype(dtype))
        e, e2, q, f1, f2, f3 = etdrk4_coefficients(linear, h, settings.contour_points)
        z0 = jnp.fft.rfft(equation.initial_condition(grid_points(n, dtype)))
        to_output = lambda z: z  # noqa: E731

    def etdrk4_step(v, _):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2.0 * nb - nv)
        nc = nonlinear(c)
        return e * v + nv * f1 + 2.0 * (na + nb) * f2 + nc * f3, None

    def advance(v):
        v, _ = jax.lax.scan(etdrk4_step, v, None, length=settings.substeps)
        return v

    return Stepper(z0, advance, to_output)


def solve_spectrum(
    equation: Equation, coefficient, settings: SpectralSettings, nonlinear_scale=1.0, rate=None
) -> jax.Array:
    """The solution in the solver's basis at the output times.

    Periodic equations: rfft spectra ``v̂(t_n)``, shape ``(num_outputs, N/2 + 1)`` complex. Dirichlet
    equations (Chebyshev): Chebyshev coefficients of u, shape ``(num_outputs, N + 1)`` real. Evaluate
    either with :func:`evaluate`.

    ``coefficient`` (the coefficient c of the linear term) and ``nonlinear_scale`` (λ₁, the factor of the
    nonlinear term; 1 for the paper's equations) may be traced scalars: the function is jit-able and
    differentiable in both. ``rate`` (Allen-Cahn only): the reaction rate r(x) of ``r (u − u³)`` on the
    collocation points (Fourier ``(N,)``, Chebyshev interior ``(N − 1,)``) instead of the constant 5.
    """
    s = stepper(equation, coefficient, settings, nonlinear_scale, rate)

    def interval(v, _):
        v = s.advance(v)
        return v, s.to_output(v)

    _, vs = jax.lax.scan(interval, s.z0, None, length=settings.num_outputs - 1)
    return jnp.concatenate([s.to_output(s.z0)[None], vs], axis=0)


def _complex(dtype):
    return jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64


def evaluate(spectra, x, num_points: int) -> jax.Array:
    """The solution at points ``x`` from the output of :func:`solve_spectrum`.

    Args:
      spectra: ``(..., N/2 + 1)`` complex rfft coefficients of grid values on ``x_j = −1 + 2j/N`` (Fourier),
        or ``(..., N + 1)`` real Chebyshev coefficients (Dirichlet equations; told apart by the dtype).
      x: ``(P,)`` points (Fourier: any real values, the interpolant is 2-periodic; Chebyshev: clipped to
        [−1, 1]).
    Returns:
      ``(..., P)`` real values: ``(1/N) Re Σ_m w_m v̂_m e^{iπm(x+1)}`` (w = 1 for m = 0 and N/2, else 2)
      or ``Σ_k a_k cos(k arccos x)``.
    """
    x = jnp.asarray(x)
    if not jnp.iscomplexobj(spectra):
        return spectra @ chebyshev_basis(x, num_points).T
    m = jnp.arange(num_points // 2 + 1)
    weights = jnp.where((m == 0) | (m == num_points // 2), 1.0, 2.0).astype(x.dtype)
    phase = jnp.exp(1j * math.pi * (x[:, None] + 1.0) * m[None, :].astype(x.dtype))
    return jnp.real(spectra @ (weights[:, None] * phase.T)) / num_points


def chebyshev_basis(x, num_points: int) -> jax.Array:
    """``T_k(x_p) = cos(k arccos x_p)``, shape ``(P, N + 1)`` (x clipped to [−1, 1])."""
    x = jnp.asarray(x)
    theta = jnp.arccos(jnp.clip(x, -1.0, 1.0))
    return jnp.cos(theta[:, None] * jnp.arange(num_points + 1, dtype=x.dtype)[None, :])


def solve(
    equation: Equation, coefficient: float, settings: SpectralSettings, x, nonlinear_scale: float = 1.0
) -> np.ndarray:
    """Checked, non-traced solve: values at the output times and points ``x``, ``(num_outputs, P)``.

    Raises :class:`UnstableSettingError` for a non-positive coefficient or a blown-up solution.
    """
    check_coefficient(coefficient, f"{equation.name} coefficient {equation.coefficient_name}")
    spectra = jax.jit(solve_spectrum, static_argnums=(0, 2))(
        equation, jnp.asarray(coefficient), settings, jnp.asarray(nonlinear_scale)
    )
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
