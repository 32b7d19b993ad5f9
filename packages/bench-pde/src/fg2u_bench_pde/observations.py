"""Observation points of the solution grid, optionally with Gaussian noise.

Two layouts: ``"random"`` — distinct grid points drawn uniformly without replacement (seeded; Raissi et
al.'s 2,000-point setting, or 64 points); ``"grid"`` — the paper's 8 × 8 interior grid: √n equispaced
interior indices in t (t = 0 excluded) times √n equispaced interior indices in x (the end points excluded).
Noise: ``level · std(u) · N(0, 1)`` with std over the whole solution grid, seeded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fg2u_bench_pde.checks import check_positive_int

__all__ = ["LAYOUTS", "Observations", "sample_observations", "interior_indices"]

LAYOUTS = ("random", "grid")


@dataclasses.dataclass(frozen=True)
class Observations:
    """``num`` observed values ``u`` at grid indices ``(t_index, x_index)`` (points ``(t, x)``).

    Shapes: all ``(num,)``; ``t_index``/``x_index`` int, ``t``, ``x``, ``u`` float64.
    """

    t_index: np.ndarray
    x_index: np.ndarray
    t: np.ndarray
    x: np.ndarray
    u: np.ndarray


def sample_observations(
    x: np.ndarray,
    t: np.ndarray,
    u: np.ndarray,
    *,
    num_points: int = 64,
    noise_level: float = 0.0,
    seed: int = 0,
    include_initial_time: bool = False,
    layout: str = "random",
) -> Observations:
    """Draws ``num_points`` observations of the grid (see the module docstring for the layouts).

    Args:
      x: ``(n_x,)``, t: ``(n_t,)``, u: ``(n_t, n_x)`` the solution grid.
      noise_level: adds ``noise_level · std(u) · N(0, 1)`` to each observed value (0: exact data).
      seed: seeds the random points and the noise.
      include_initial_time: allow points at t = 0 (``"random"`` only; they carry no information on the
        coefficient).
      layout: ``"random"`` or ``"grid"`` (``num_points`` must then be a square, e.g. 64 = 8 × 8).
    """
    num_points = check_positive_int("num_points", num_points)
    u = np.asarray(u)
    if u.shape != (len(t), len(x)):
        raise ValueError(f"u must have shape (n_t, n_x) = {(len(t), len(x))}, got {u.shape}")
    if not np.isfinite(noise_level) or noise_level < 0:
        raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rng = np.random.default_rng(seed)
    if layout == "grid":
        side = int(round(np.sqrt(num_points)))
        if side * side != num_points:
            raise ValueError(f"the 'grid' layout needs a square num_points (e.g. 64 = 8 x 8), got {num_points}")
        t_index, x_index = (
            a.ravel()
            for a in np.meshgrid(interior_indices(len(t), side), interior_indices(len(x), side), indexing="ij")
        )
    else:
        first = 0 if include_initial_time else 1
        candidates = (len(t) - first) * len(x)
        if num_points > candidates:
            raise ValueError(f"num_points={num_points} exceeds the {candidates} available grid points")
        flat = rng.choice(candidates, size=num_points, replace=False)
        t_index, x_index = np.divmod(flat, len(x))
        t_index = t_index + first
    values = u[t_index, x_index].astype(np.float64)
    if noise_level > 0:
        values = values + noise_level * np.std(u) * rng.standard_normal(num_points)
    return Observations(t_index=t_index, x_index=x_index, t=np.asarray(t)[t_index], x=np.asarray(x)[x_index], u=values)


def interior_indices(size: int, count: int) -> np.ndarray:
    """``count`` equispaced interior indices of ``range(size)`` (both ends excluded), distinct, sorted.

    ``np.linspace(0, size − 1, count + 2)[1:−1]`` rounded; raises when ``size < count + 2``.
    """
    if size < count + 2:
        raise ValueError(f"an axis of {size} points has fewer than {count} interior points for the 'grid' layout")
    return np.round(np.linspace(0, size - 1, count + 2)[1:-1]).astype(int)
