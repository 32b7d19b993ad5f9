"""Scaling laws and the time-to-quality model of ``where_fg2u_wins.py`` (numpy only).

Fits:

* :func:`fit_power_law` — ``y = c · Π_k x_k^{α_k}`` by least squares on ``log y`` (one or several variables):
  the exponents α_k, the constant and the residuals (RMS and largest, in log space and as relative errors).
* :func:`fit_affine` — ``y = a + b · g(x)`` with ``g`` = ``x``, ``√x``, ``ln x`` or ``1`` (ordinary least
  squares): the structural laws of reverse mode's stored states (∝ T, √T checkpointing, log T recursive
  checkpointing) and of FG²U (flat); :func:`best_affine` picks the transform with the smallest residual.

The quality model of FG²U with Rademacher directions (exact identities, see the docs page
``docs/where-fg2u-wins.md``): for ``ĝ = (1/b) Σ_i (gᵀv_i) v_i`` with ``v_i ∈ {±1}^N``,
``E ĝ = g`` and ``E‖ĝ‖² = ‖g‖² (1 + (N − 1)/b)``, so

* :func:`cosine_of_directions` — ``(E ĝᵀg)² / (‖g‖² E‖ĝ‖²) = 1 / (1 + (N − 1)/b)``: the (squared) cosine of
  one estimate, ≈ its cosine to the exact gradient;
* :func:`directions_for_cosine` — the b that reaches a target cosine ``c``: ``b = ⌈(N − 1) c² / (1 − c²)⌉``;
* :func:`descent_ratio` — ``b / (b + N − 1)``: the expected decrease of one SGD step with the best step size
  (descent lemma: ``‖g‖⁴ / (2 L E‖ĝ‖²)``) relative to an exact gradient step.

Time-to-quality on D devices (the directions split evenly, one all-reduce): :func:`fg2u_seconds`,
:func:`crossover_devices` (the fewest devices with which FG²U reaches cosine ``c`` faster than one exact
meta-gradient) and :func:`descent_crossover_devices` (the same for the expected decrease per second).

Exact reverse mode at a fixed number of stored states: :func:`revolve_forward_steps` (Griewank & Walther's
binomial checkpointing, the optimal schedule for ``s`` checkpoints; analytic, not implemented in fg2u).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PowerLaw",
    "AffineLaw",
    "fit_power_law",
    "fit_affine",
    "best_affine",
    "cosine_of_directions",
    "directions_for_cosine",
    "descent_ratio",
    "fg2u_seconds",
    "crossover_devices",
    "descent_crossover_devices",
    "binomial",
    "revolve_repetitions",
    "revolve_forward_steps",
]

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "sqrt": np.sqrt,
    "log": np.log,
    "constant": np.zeros_like,
}


def _positive(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{name} must be finite and > 0 for a log-log fit; got {values}")
    return values


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient · Π_k x_k^{exponents[k]}``, fitted on ``n`` points.

    ``rms_log_residual``: root mean square of ``ln y − ln ŷ``; ``max_relative_residual``: ``max |y/ŷ − 1|``;
    ``exponent_stderr``: the exponents' standard errors from the least-squares covariance (NaN with fewer
    points than parameters + 1).
    """

    coefficient: float
    exponents: dict[str, float]
    rms_log_residual: float
    max_relative_residual: float
    n: int
    exponent_stderr: dict[str, float] = field(default_factory=dict)

    def __call__(self, **x: float | np.ndarray) -> np.ndarray:
        missing = set(self.exponents) - set(x)
        if missing:
            raise ValueError(f"missing variables {sorted(missing)} (the law has {sorted(self.exponents)})")
        out = np.asarray(self.coefficient, dtype=float)
        for name, alpha in self.exponents.items():
            out = out * np.asarray(x[name], dtype=float) ** alpha
        return out

    def describe(self, unit: str = "") -> str:
        terms = " · ".join(
            f"{k}^{a:.3f}"
            + (f"(±{self.exponent_stderr[k]:.3f})" if np.isfinite(self.exponent_stderr.get(k, np.nan)) else "")
            for k, a in self.exponents.items()
        )
        return (
            f"{self.coefficient:.3g}{unit} · {terms}  (n={self.n}, RMS log residual {self.rms_log_residual:.3f}, "
            f"max |rel. residual| {self.max_relative_residual:.1%})"
        )


def fit_power_law(x: Mapping[str, Sequence[float]], y: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``ln y = ln c + Σ_k α_k ln x_k``.

    Args:
      x: ``{variable name: values}``, each of the length of ``y``, all > 0. A variable that takes a single value
        cannot be fitted: ``ValueError`` naming it.
      y: the measured values (> 0).

    Returns:
      The :class:`PowerLaw`.

    Examples:
      >>> law = fit_power_law({"T": [10, 100, 1000]}, [20.0, 200.0, 2000.0])
      >>> round(law.exponents["T"], 6), round(law.coefficient, 6)
      (1.0, 2.0)
    """
    yv = _positive("y", np.asarray(y))
    if not x:
        raise ValueError("x must name at least one variable")
    names = list(x)
    cols = []
    for name in names:
        xv = _positive(f"x[{name!r}]", np.asarray(x[name]))
        if xv.shape != yv.shape:
            raise ValueError(f"x[{name!r}] has {xv.size} values but y has {yv.size}")
        if np.ptp(np.log(xv)) == 0:
            raise ValueError(f"x[{name!r}] takes one value only ({xv[0]}): its exponent cannot be fitted")
        cols.append(np.log(xv))
    design = np.column_stack([np.ones_like(yv), *cols])
    if yv.size < design.shape[1]:
        raise ValueError(f"{yv.size} points cannot fit {design.shape[1]} parameters")
    target = np.log(yv)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ solution
    dof = yv.size - design.shape[1]
    if dof > 0:
        sigma2 = float(residual @ residual) / dof
        cov = sigma2 * np.linalg.pinv(design.T @ design)
        stderr = {n: float(math.sqrt(max(cov[i + 1, i + 1], 0.0))) for i, n in enumerate(names)}
    else:
        stderr = {n: float("nan") for n in names}
    return PowerLaw(
        coefficient=float(np.exp(solution[0])),
        exponents={n: float(a) for n, a in zip(names, solution[1:])},
        rms_log_residual=float(np.sqrt(np.mean(residual**2))),
        max_relative_residual=float(np.max(np.abs(np.exp(residual) - 1.0))),
        n=int(yv.size),
        exponent_stderr=stderr,
    )


@dataclass(frozen=True)
class AffineLaw:
    """``y = intercept + slope · g(x)`` with ``g`` named by ``transform`` (``linear``, ``sqrt``, ``log``,
    ``constant``: ``g = 0``). ``max_relative_residual``: ``max |ŷ/y − 1|`` over the ``n`` points."""

    transform: str
    intercept: float
    slope: float
    max_relative_residual: float
    rms_relative_residual: float
    n: int

    def __call__(self, x: float | np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * TRANSFORMS[self.transform](np.asarray(x, dtype=float))

    def describe(self, var: str = "T") -> str:
        g = {"linear": var, "sqrt": f"√{var}", "log": f"ln {var}", "constant": ""}[self.transform]
        body = f"{self.intercept:.3g}" + (f" + {self.slope:.3g}·{g}" if self.transform != "constant" else "")
        return f"{body}  (n={self.n}, max |rel. residual| {self.max_relative_residual:.1%})"


def fit_affine(x: Sequence[float], y: Sequence[float], transform: str) -> AffineLaw:
    """Least-squares fit of ``y = a + b · g(x)`` (``transform`` names g; ``"constant"`` fits ``y = a``).

    Examples:
      >>> law = fit_affine([1, 4, 16], [3.0, 5.0, 9.0], "sqrt")
      >>> round(law.intercept, 6), round(law.slope, 6)
      (1.0, 2.0)
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {sorted(TRANSFORMS)}, got {transform!r}")
    xv = _positive("x", np.asarray(x))
    yv = np.asarray(y, dtype=float)
    if yv.shape != xv.shape:
        raise ValueError(f"x has {xv.size} values but y has {yv.size}")
    if transform == "constant":
        a, b = float(np.mean(yv)), 0.0
    else:
        design = np.column_stack([np.ones_like(xv), TRANSFORMS[transform](xv)])
        (a, b), *_ = np.linalg.lstsq(design, yv, rcond=None)
    fitted = a + b * TRANSFORMS[transform](xv)
    rel = fitted / yv - 1.0
    return AffineLaw(
        transform, float(a), float(b), float(np.max(np.abs(rel))), float(np.sqrt(np.mean(rel**2))), int(yv.size)
    )


def best_affine(
    x: Sequence[float], y: Sequence[float], transforms: Sequence[str] = ("constant", "log", "sqrt", "linear")
) -> AffineLaw:
    """The :func:`fit_affine` law with the smallest RMS relative residual among ``transforms``; a law within
    ``1e-9`` of the smallest residual that comes earlier in ``transforms`` wins the tie (``"constant"`` first by
    default: a flat series is not reported as ``a + 1e-16·√x``)."""
    fits = [fit_affine(x, y, t) for t in transforms]
    smallest = min(f.rms_relative_residual for f in fits)
    return next(f for f in fits if f.rms_relative_residual <= smallest + 1e-9)


# ------------------------------------------------------------------------------------ the quality model
def _check_dim(meta_dim: int) -> None:
    if int(meta_dim) != meta_dim or meta_dim < 1:
        raise ValueError(f"meta_dim must be an integer ≥ 1, got {meta_dim}")


def cosine_of_directions(num_directions: float | np.ndarray, meta_dim: int) -> np.ndarray:
    """``1 / √(1 + (N − 1)/b)``: the cosine of a b-direction Rademacher FG²U estimate to the exact gradient
    (exactly ``E[ĝᵀg] / √(‖g‖² E‖ĝ‖²)``)."""
    _check_dim(meta_dim)
    b = np.asarray(num_directions, dtype=float)
    return 1.0 / np.sqrt(1.0 + (meta_dim - 1) / b)


def directions_for_cosine(cosine: float, meta_dim: int) -> int:
    """The fewest Rademacher directions b with :func:`cosine_of_directions` ``≥ cosine``:
    ``⌈(N − 1) c² / (1 − c²)⌉`` (at least 1). ``cosine`` in (0, 1)."""
    _check_dim(meta_dim)
    if not 0.0 < cosine < 1.0:
        raise ValueError(f"cosine must be in (0, 1) (1 needs infinitely many random directions), got {cosine}")
    b = (meta_dim - 1) * cosine**2 / (1.0 - cosine**2)
    b_int = max(1, math.ceil(b - 1e-9 * max(b, 1.0)))  # tolerance: (N−1)c²/(1−c²) exact integers in floats
    return b_int


def descent_ratio(num_directions: float | np.ndarray, meta_dim: int) -> np.ndarray:
    """``b / (b + N − 1)``: one SGD step's expected decrease with an FG²U estimate relative to an exact step.

    With ``f`` L-smooth, ``E ĝ = g`` and the best step size η = ‖g‖² / (L E‖ĝ‖²), the descent lemma gives
    ``E f(φ − ηĝ) ≤ f(φ) − ‖g‖⁴ / (2 L E‖ĝ‖²)`` (Bottou, Curtis & Nocedal 2018, §4.1), and
    ``E‖ĝ‖² = ‖g‖² (1 + (N − 1)/b)`` for Rademacher directions.
    """
    _check_dim(meta_dim)
    b = np.asarray(num_directions, dtype=float)
    return b / (b + meta_dim - 1)


def fg2u_seconds(num_directions: int, devices: int, seconds_per_direction: float, overhead: float = 0.0) -> float:
    """Wall time of b directions evenly spread over D devices: ``⌈b / D⌉ · t_dir + overhead``."""
    if num_directions < 1 or devices < 1:
        raise ValueError(f"num_directions and devices must be ≥ 1, got {num_directions} and {devices}")
    return math.ceil(num_directions / devices) * seconds_per_direction + overhead


def crossover_devices(
    meta_dim: int, cosine: float, seconds_per_direction: float, exact_seconds: float, overhead: float = 0.0
) -> int | None:
    """The fewest devices D with which FG²U reaches ``cosine`` (b = :func:`directions_for_cosine`) in less time
    than one exact meta-gradient (``exact_seconds``, on one device), or ``None`` when no D does (one direction
    per device, ``t_dir + overhead``, is already slower).

    ``⌈b/D⌉ t_dir + o < t_exact`` ⇔ ``⌈b/D⌉ ≤ k`` with k the largest integer such that ``k t_dir + o < t_exact``
    ⇔ ``D ≥ ⌈b / k⌉``.
    """
    if seconds_per_direction <= 0 or exact_seconds <= 0:
        raise ValueError("seconds must be > 0")
    b = directions_for_cosine(cosine, meta_dim)
    room = (exact_seconds - overhead) / seconds_per_direction
    k = math.ceil(room) - 1  # largest integer strictly below room
    if k < 1:
        return None
    return math.ceil(b / min(k, b))


def descent_crossover_devices(
    meta_dim: int,
    per_device_seconds: Callable[[int], float],
    exact_seconds: float,
    *,
    max_per_device: int = 64,
    max_devices: int = 10**9,
) -> int | None:
    """The fewest devices D for which FG²U's best expected decrease per second beats exact gradient steps.

    With k directions per device (``per_device_seconds(k)``: one device's time for k directions, e.g.
    ``α + β·k`` for one vectorised chunk), b = kD and the decrease per second is
    ``descent_ratio(kD, N) / per_device_seconds(k)``; exact steps give ``1 / exact_seconds``. Searches k ≤
    ``max_per_device`` and D by bisection (the best rate over k grows with D). ``None`` if even
    ``max_devices`` does not suffice.
    """
    if exact_seconds <= 0:
        raise ValueError("exact_seconds must be > 0")

    def beats(d: int) -> bool:
        best = max(float(descent_ratio(k * d, meta_dim)) / per_device_seconds(k) for k in range(1, max_per_device + 1))
        return best > 1.0 / exact_seconds

    if not beats(max_devices):
        return None
    lo, hi = 1, max_devices
    if beats(lo):
        return lo
    while hi - lo > 1:  # invariant: not beats(lo), beats(hi)
        mid = (lo + hi) // 2
        if beats(mid):
            hi = mid
        else:
            lo = mid
    return hi


# ------------------------------------------------------------------ binomial checkpointing (analytic)
def binomial(s: int, r: int) -> int:
    """``β(s, r) = C(s + r, s)``: the longest chain revolve reverses with s checkpoints and r repetitions."""
    return math.comb(s + r, s)


def revolve_repetitions(num_steps: int, snapshots: int) -> int:
    """The repetition number r of binomial checkpointing: the least r with ``β(s, r) ≥ T``."""
    if num_steps < 1 or snapshots < 1:
        raise ValueError(f"num_steps and snapshots must be ≥ 1, got {num_steps} and {snapshots}")
    r = 0
    while binomial(snapshots, r) < num_steps:
        r += 1
    return r


def revolve_forward_steps(num_steps: int, snapshots: int) -> int:
    """The fewest forward step evaluations to reverse T steps with s checkpoints (the reverse sweep's own T
    step linearisations not counted): ``r·T − β(s + 1, r − 1)`` with r = :func:`revolve_repetitions`.

    References:
      Griewank, A., Walther, A. (2000). Algorithm 799: revolve: an implementation of checkpointing for the
      reverse or adjoint mode of computational differentiation. ACM TOMS 26(1), 19–45, Proposition 1.
      https://doi.org/10.1145/347837.347846
    """
    r = revolve_repetitions(num_steps, snapshots)
    if r == 0:
        return 0
    return r * num_steps - binomial(snapshots + 1, r - 1)
