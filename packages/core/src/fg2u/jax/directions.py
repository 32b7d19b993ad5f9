"""Direction sampling on JAX: :class:`JaxOps` implements :class:`fg2u.directions.RandomOps`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fg2u.directions import DirectionDistribution, _check_sizes, get_distribution

from ._pytree import check_float_tree, ravel

PyTree = Any

__all__ = ["JaxOps", "sample_directions", "check_key"]


class JaxOps:
    """:class:`fg2u.directions.RandomOps` on ``jax.random``; ``key`` is a JAX PRNG key (typed or raw)."""

    def split(self, key: Any, num: int) -> list:
        return list(jax.random.split(key, num))

    def normal(self, key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype)

    def rademacher(self, key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.rademacher(key, shape, dtype)

    def row_norms(self, x: jax.Array) -> jax.Array:
        return jnp.linalg.norm(x, axis=1, keepdims=True)

    def orthonormal_rows(self, x: jax.Array) -> jax.Array:
        """``(..., b, N) -> (..., b, N)`` Haar-orthonormal rows (batched over leading axes)."""
        q, r = jnp.linalg.qr(jnp.swapaxes(x, -1, -2))  # (..., N, b) with orthonormal columns
        diag = jnp.diagonal(r, axis1=-2, axis2=-1)
        signs = jnp.where(diag < 0, -1.0, 1.0).astype(q.dtype)
        return jnp.swapaxes(q * signs[..., None, :], -1, -2)

    def concatenate(self, xs: list) -> jax.Array:
        return jnp.concatenate(xs, axis=0)


def check_key(key: Any, who: str) -> None:
    """A random estimator needs a JAX key."""
    if key is None:
        raise TypeError(f"{who} is randomised: pass a JAX PRNG key, e.g. jax.random.key(0), not None")
    dtype = getattr(key, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jax.dtypes.prng_key) or dtype == jnp.uint32):
        raise TypeError(
            f"{who} needs a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
            f"got {type(key).__name__}: {key!r}"
        )


def sample_directions(distribution: str | DirectionDistribution, key: Any, num_directions: int, like: PyTree) -> PyTree:
    """``num_directions`` random tangents with ``E[v vᵀ] = I``, as a pytree like ``like`` with a leading axis ``b``.

    Directions are drawn flat, ``(b, N)`` with ``N`` the total number of entries of ``like``, through
    :mod:`fg2u.directions` (so ``"sphere"`` and ``"orthogonal"`` act on the whole vector, not per leaf),
    then unflattened leaf by leaf. i.i.d. distributions (Rademacher, Gaussian, Sphere) draw direction ``i``
    from ``fold_in(key, i)`` — as the FG²U estimators do chunk by chunk, so ``FG2U(b)(problem, φ, key)``
    equals ``FG2U(b).with_directions(problem, φ, sample_directions(dist, key, b, φ))`` for every
    ``chunk_size``; orthogonal blocks are drawn jointly from ``key``.
    """
    from ._chunks import KeyedDirections, drawn_per_direction

    dist = get_distribution(distribution)
    check_float_tree(like, "phi")
    check_key(key, "sample_directions")
    flat, unravel = ravel(like)
    if drawn_per_direction(dist):
        _check_sizes(num_directions, flat.size)
        return KeyedDirections(dist, key, num_directions, like).all()
    vs = dist.sample(JaxOps(), key, num_directions, flat.size, flat.dtype)
    return jax.vmap(unravel)(vs)
