"""The JAX implementation of [`fg2u.estimators.base.TreeOps`][fg2u.estimators.TreeOps] (what the core's combinators
need)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .directions import check_key, sample_directions

PyTree = Any
_tmap = jax.tree_util.tree_map

__all__ = ["JaxTreeOps", "TREE_OPS"]


class JaxTreeOps:
    """Pytree arithmetic on ``jax.numpy``; counters are ``int32`` arrays so that state can be traced."""

    def counter(self, value: int) -> jax.Array:
        return jnp.asarray(value, jnp.int32)

    def cond(self, pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
        if isinstance(pred, jax.core.Tracer):  # inside jit: compile both, run one
            return lax.cond(pred, true_fn, false_fn)
        return true_fn() if bool(pred) else false_fn()  # concrete: trace only the chosen one

    def scale(self, tree: PyTree, factor: Any) -> PyTree:
        return _tmap(lambda x: (x * factor).astype(x.dtype), tree)

    def add(self, a: PyTree, b: PyTree) -> PyTree:
        return _tmap(lambda x, y: x + y, a, b)

    def sub(self, a: PyTree, b: PyTree) -> PyTree:
        return _tmap(lambda x, y: x - y, a, b)

    def vdot(self, a: PyTree, b: PyTree) -> jax.Array:
        pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
        return jnp.sum(jnp.stack([jnp.vdot(x, y) for x, y in pairs]))

    def zeros_like(self, tree: PyTree) -> PyTree:
        return _tmap(jnp.zeros_like, tree)

    def split_key(self, key: Any, num: int) -> list:
        check_key(key, "a randomised estimator")
        return list(jax.random.split(key, num))

    def sample_directions(self, distribution: Any, key: Any, num_directions: int, like: PyTree) -> PyTree:
        return sample_directions(distribution, key, num_directions, like)

    def project(self, directions: PyTree, tree: PyTree) -> PyTree:
        dirs, leaves = jax.tree_util.tree_leaves(directions), jax.tree_util.tree_leaves(tree)
        b = dirs[0].shape[0]
        coeffs = sum(d.reshape(b, -1) @ t.reshape(-1) for d, t in zip(dirs, leaves))
        return _tmap(lambda d: (jnp.tensordot(coeffs, d, axes=1) / b).astype(d.dtype), directions)

    def take(self, directions: PyTree, start: int, stop: int) -> PyTree:
        return _tmap(lambda d: d[start:stop], directions)

    def where(self, pred: Any, a: Any, b: Any) -> jax.Array:
        return jnp.where(pred, a, b)

    def size(self, tree: PyTree) -> int:
        return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))


TREE_OPS = JaxTreeOps()
