"""Distributions of random tangent directions ``v ∈ R^N`` with ``E[v vᵀ] = I``.

FG²U is unbiased because ``E[(∇L·v) v] = E[v vᵀ] ∇L = ∇L`` whenever the second moment of the
direction distribution is the identity. Each distribution here satisfies that:

* [`Rademacher`][fg2u.directions.Rademacher] — i.i.d. ±1 entries: ``E[v_i v_j] = δ_ij``. Lowest variance of the i.i.d.
  choices (Lemma 3.1 of the paper: ``E‖ĝ−g‖² ≤ (N+1)/b·‖g‖²``).
* [`Gaussian`][fg2u.directions.Gaussian] — i.i.d. standard normal entries: ``E[v vᵀ] = I``.
* [`Sphere`][fg2u.directions.Sphere] — uniform on the sphere of radius ``√N``: ``v = √N g/‖g‖`` with ``g ~ N(0, I)``;
  by symmetry ``E[v vᵀ] = (E‖v‖²/N) I = I``.
* [`OrthogonalBlocks`][fg2u.directions.OrthogonalBlocks] — blocks of ``min(b, N)`` mutually orthogonal directions, each
  row of a Haar-random orthonormal frame scaled by ``√N``. Every direction is marginally uniform on the
  ``√N``-sphere, so ``E[v vᵀ] = I``; orthogonality inside a block lowers the variance of the mean.

Sampling is written once against [`RandomOps`][fg2u.directions.RandomOps], a five-function protocol each backend
implements (``NumpyOps`` here, ``fg2u.jax`` and ``fg2u.torch`` provide their own). ``sample(...)`` returns a
``(num_directions, dim)`` array of flat directions; backends unflatten it into the pytree of φ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from fg2u.checks import check_positive_int

__all__ = [
    "RandomOps",
    "NumpyOps",
    "DirectionDistribution",
    "Rademacher",
    "Gaussian",
    "Sphere",
    "OrthogonalBlocks",
    "get_distribution",
    "check_direction_settings",
    "check_direction_shapes",
    "DISTRIBUTIONS",
]


@runtime_checkable
class RandomOps(Protocol):
    """The array operations direction sampling needs, for one backend. ``key`` is backend specific."""

    def split(self, key: Any, num: int) -> list[Any]: ...

    def normal(self, key: Any, shape: tuple[int, ...], dtype: Any) -> Any: ...

    def rademacher(self, key: Any, shape: tuple[int, ...], dtype: Any) -> Any: ...

    def row_norms(self, x: Any) -> Any:
        """``(b, N) -> (b, 1)`` Euclidean norms of the rows."""

    def orthonormal_rows(self, x: Any) -> Any:
        """``(b, N)`` with ``b <= N`` -> ``(b, N)`` Haar-orthonormal rows (QR with the sign of diag(R))."""

    def concatenate(self, xs: list[Any]) -> Any: ...


@runtime_checkable
class DirectionDistribution(Protocol):
    """A distribution over ``R^N`` with ``E[v vᵀ] = I``."""

    name: str

    def sample(self, ops: RandomOps, key: Any, num_directions: int, dim: int, dtype: Any) -> Any:
        """``num_directions`` directions as a ``(num_directions, dim)`` array."""


@dataclasses.dataclass(frozen=True)
class Rademacher:
    """i.i.d. uniform ±1 entries."""

    name: str = "rademacher"

    def sample(self, ops: RandomOps, key: Any, num_directions: int, dim: int, dtype: Any) -> Any:
        _check_sizes(num_directions, dim)
        return ops.rademacher(key, (num_directions, dim), dtype)


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """i.i.d. standard normal entries."""

    name: str = "gaussian"

    def sample(self, ops: RandomOps, key: Any, num_directions: int, dim: int, dtype: Any) -> Any:
        _check_sizes(num_directions, dim)
        return ops.normal(key, (num_directions, dim), dtype)


@dataclasses.dataclass(frozen=True)
class Sphere:
    """Uniform on the sphere of radius ``√N``."""

    name: str = "sphere"

    def sample(self, ops: RandomOps, key: Any, num_directions: int, dim: int, dtype: Any) -> Any:
        _check_sizes(num_directions, dim)
        g = ops.normal(key, (num_directions, dim), dtype)
        return g * (math.sqrt(dim) / ops.row_norms(g))


@dataclasses.dataclass(frozen=True)
class OrthogonalBlocks:
    """Independent blocks of ``min(b, N)`` orthonormal directions scaled by ``√N``.

    With ``b <= N`` all directions are mutually orthogonal; with ``b > N`` they come in
    ``ceil(b / N)`` independent orthogonal blocks.
    """

    name: str = "orthogonal"

    def sample(self, ops: RandomOps, key: Any, num_directions: int, dim: int, dtype: Any) -> Any:
        _check_sizes(num_directions, dim)
        num_blocks = -(-num_directions // dim)
        keys = ops.split(key, num_blocks)
        blocks, remaining = [], num_directions
        for block_key in keys:
            size = min(dim, remaining)
            g = ops.normal(block_key, (size, dim), dtype)
            blocks.append(ops.orthonormal_rows(g) * math.sqrt(dim))
            remaining -= size
        return blocks[0] if len(blocks) == 1 else ops.concatenate(blocks)


DISTRIBUTIONS: dict[str, type] = {
    "rademacher": Rademacher,
    "gaussian": Gaussian,
    "sphere": Sphere,
    "orthogonal": OrthogonalBlocks,
}


def get_distribution(distribution: str | DirectionDistribution) -> DirectionDistribution:
    """Accepts a name (``"rademacher"``, ``"gaussian"``, ``"sphere"``, ``"orthogonal"``) or an instance."""
    if isinstance(distribution, str):
        try:
            return cast(DirectionDistribution, DISTRIBUTIONS[distribution.lower()]())
        except KeyError:
            raise ValueError(
                f"unknown direction distribution {distribution!r}; choose one of {sorted(DISTRIBUTIONS)} "
                "or pass an object with a .sample(ops, key, num_directions, dim, dtype) method"
            ) from None
    if not isinstance(distribution, DirectionDistribution):
        raise TypeError(f"distribution must be a name or a DirectionDistribution, got {distribution!r}")
    return distribution


def check_direction_settings(num_directions: Any, distribution: Any, chunk_size: Any) -> None:
    """Validates the settings every random-direction estimator shares (FG2U, FG2U_ZO, in both backends)."""
    check_positive_int("num_directions (b)", num_directions)
    get_distribution(distribution)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)


def check_direction_shapes(leaves: Any, prefix: str = "") -> int:
    """The number of directions b of explicit directions, checked leaf by leaf against φ (both backends).

    ``leaves`` yields ``(path, direction_shape, phi_shape)`` per leaf (the pytree structures already agree);
    every direction leaf must have φ's leaf shape with one extra leading axis b, the same b for all,
    b ≥ 1. ``TypeError`` for a shape mismatch, ``ValueError`` for b = 0; ``prefix`` (e.g. ``"FG2U: "``)
    starts each message.
    """
    b = None
    for path, d_shape, p_shape in leaves:
        ds, ps = tuple(d_shape), tuple(p_shape)
        if len(ds) != len(ps) + 1 or ds[1:] != ps:
            raise TypeError(
                f"{prefix}directions{path} has shape {ds}; expected (b, *{ps}) — the shape of "
                f"phi{path} with a leading axis b for the directions"
            )
        if b is None:
            b = ds[0]
        elif ds[0] != b:
            raise TypeError(
                f"{prefix}directions{path} has {ds[0]} directions but earlier leaves have {b}; "
                "every leaf needs the same leading axis b"
            )
    if not b:
        raise ValueError(f"{prefix}directions must contain at least one direction (leading axis b >= 1), got b = 0")
    return int(b)


def _check_sizes(num_directions: int, dim: int) -> None:
    check_positive_int("num_directions", num_directions)
    check_positive_int("dim (number of meta parameters)", dim)


class NumpyOps:
    """[`RandomOps`][fg2u.directions.RandomOps] on NumPy; ``key`` is a ``numpy.random.Generator`` (or an int seed)."""

    def split(self, key: Any, num: int) -> list[Any]:
        return [np.random.default_rng(s) for s in np.random.default_rng(key).integers(0, 2**63, size=num)]

    def normal(self, key: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        return np.random.default_rng(key).standard_normal(shape).astype(dtype)

    def rademacher(self, key: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        return (2 * np.random.default_rng(key).integers(0, 2, size=shape) - 1).astype(dtype)

    def row_norms(self, x: np.ndarray) -> np.ndarray:
        norms: np.ndarray = np.linalg.norm(x, axis=1, keepdims=True)
        return norms

    def orthonormal_rows(self, x: np.ndarray) -> np.ndarray:
        q, r = np.linalg.qr(x.T)
        rows: np.ndarray = (q * np.sign(np.diag(r))).T
        return rows

    def concatenate(self, xs: list[Any]) -> np.ndarray:
        return np.concatenate(xs, axis=0)
