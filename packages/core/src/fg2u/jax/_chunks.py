"""``Σ_i c(v_i) v_i`` over b directions, vmapped inside chunks and scanned over chunks (memory ∝ chunk size).

Directions are either given (a pytree with a leading axis b) or `KeyedDirections`,
drawn inside each chunk: ``v_i`` is a function of ``(key, i)`` only (``fold_in(key, i)``), so a chunk holds
``chunk_size`` directions, not b, and the estimate for a key is the same for every ``chunk_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .directions import KeyedDirections

PyTree = Any

__all__ = ["weighted_direction_sum"]


def weighted_direction_sum(
    per_direction: Callable[[PyTree], tuple[jax.Array, jax.Array]],
    directions: PyTree,
    num_directions: int,
    chunk_size: int | None,
) -> tuple[PyTree, jax.Array, jax.Array]:
    """Returns ``(Σ_i c_i v_i, Σ_i l_i, l_0)`` where ``(c_i, l_i) = per_direction(v_i)``.

    ``directions`` is a pytree whose leaves have leading axis ``b = num_directions``, or
    `KeyedDirections` (each chunk draws its own directions inside the scan). Chunks of
    ``chunk_size`` directions are evaluated with ``jax.vmap``; the ``ceil(b / chunk_size)`` chunks run one
    after the other in a ``lax.scan`` that only carries the running sums, so the working memory of the
    per-direction computations is proportional to ``chunk_size``. When ``b`` is not a multiple of
    ``chunk_size`` the last chunk is padded with zero directions, masked out of both sums.
    """
    b = num_directions
    c = b if chunk_size is None else min(int(chunk_size), b)
    n = -(-b // c)
    pad = n * c - b
    mask = jnp.concatenate([jnp.ones((b,), bool), jnp.zeros((pad,), bool)]).reshape(n, c)
    one_chunk = _one_chunk(per_direction)

    if isinstance(directions, KeyedDirections):
        # drawn inside the chunk: indices ≥ b of a padded last chunk draw a direction that the mask drops
        indices = jnp.arange(n * c).reshape(n, c)
        if n == 1:
            return one_chunk(directions.take(indices[0]), mask[0])
        first = jax.eval_shape(lambda: directions.take(indices[0]))

        def keyed_body(carry: tuple, xs: tuple) -> tuple[tuple, None]:
            acc, acc_values, _ = carry
            idx, m = xs
            partial, values, value0 = one_chunk(directions.take(idx), m)
            return (jax.tree_util.tree_map(jnp.add, acc, partial), acc_values + values, value0), None

        zeros = jax.tree_util.tree_map(lambda d: jnp.zeros(d.shape[1:], d.dtype), first)
        values_shape = jax.eval_shape(lambda: one_chunk(directions.take(indices[0]), mask[0])[1:])
        init = (zeros,) + tuple(jnp.zeros(s.shape, s.dtype) for s in values_shape)
        (total, value_sum, value0), _ = lax.scan(keyed_body, init, (indices, mask))
        return total, value_sum, value0

    def to_chunks(d: jax.Array) -> jax.Array:
        if pad:
            d = jnp.concatenate([d, jnp.zeros((pad,) + d.shape[1:], d.dtype)], axis=0)
        return d.reshape((n, c) + d.shape[1:])

    chunks = jax.tree_util.tree_map(to_chunks, directions)

    if n == 1:
        return one_chunk(jax.tree_util.tree_map(lambda d: d[0], chunks), mask[0])

    def body(carry: tuple, xs: tuple) -> tuple[tuple, None]:
        acc, acc_values, _ = carry
        partial, values, value0 = one_chunk(*xs)
        return (jax.tree_util.tree_map(jnp.add, acc, partial), acc_values + values, value0), None

    zeros = jax.tree_util.tree_map(lambda d: jnp.zeros(d.shape[2:], d.dtype), chunks)
    values_shape = jax.eval_shape(
        lambda v, m: one_chunk(v, m)[1:], jax.tree_util.tree_map(lambda d: d[0], chunks), mask[0]
    )
    init = (zeros,) + tuple(jnp.zeros(s.shape, s.dtype) for s in values_shape)
    (total, value_sum, value0), _ = lax.scan(body, init, (chunks, mask))
    return total, value_sum, value0


def _one_chunk(per_direction: Callable) -> Callable:
    def one_chunk(v: PyTree, m: jax.Array) -> tuple[PyTree, jax.Array, jax.Array]:
        coeffs, values = jax.vmap(per_direction)(v)
        coeffs = jnp.where(m, coeffs, 0)
        partial = jax.tree_util.tree_map(lambda d: jnp.tensordot(coeffs.astype(d.dtype), d, axes=1), v)
        return partial, jnp.sum(jnp.where(m, values, 0)), values[0]

    return one_chunk
