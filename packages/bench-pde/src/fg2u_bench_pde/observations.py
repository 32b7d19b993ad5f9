"""Observation points: 64 seeded points of the solution grid, optionally with Gaussian noise."""

from __future__ import annotations

import dataclasses

import numpy as np

from fg2u._checks import check_positive_int

__all__ = ["Observations", "sample_observations"]


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
) -> Observations:
    """Draws ``num_points`` distinct grid points uniformly without replacement (seeded).

    Args:
      x: ``(n_x,)``, t: ``(n_t,)``, u: ``(n_t, n_x)`` the solution grid.
      noise_level: adds ``noise_level · std(u) · N(0, 1)`` to each observed value (0: exact data).
      include_initial_time: allow points at t = 0 (they carry no information on the coefficient).
    """
    num_points = check_positive_int("num_points", num_points)
    u = np.asarray(u)
    if u.shape != (len(t), len(x)):
        raise ValueError(f"u must have shape (n_t, n_x) = {(len(t), len(x))}, got {u.shape}")
    if not np.isfinite(noise_level) or noise_level < 0:
        raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level}")
    first = 0 if include_initial_time else 1
    candidates = (len(t) - first) * len(x)
    if num_points > candidates:
        raise ValueError(f"num_points={num_points} exceeds the {candidates} available grid points")
    rng = np.random.default_rng(seed)
    flat = rng.choice(candidates, size=num_points, replace=False)
    t_index, x_index = np.divmod(flat, len(x))
    t_index = t_index + first
    values = u[t_index, x_index].astype(np.float64)
    if noise_level > 0:
        values = values + noise_level * np.std(u) * rng.standard_normal(num_points)
    return Observations(t_index=t_index, x_index=x_index, t=np.asarray(t)[t_index],
                        x=np.asarray(x)[x_index], u=values)
