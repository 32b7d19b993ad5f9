"""Forward-mode estimators: FG²U (forward gradient through the unroll), FG²U-ZO (finite differences), FGU."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fg2u._checks import check_choice, check_positive_float
from fg2u.directions import DirectionDistribution, check_direction_settings
from fg2u.estimator import Aux
from fg2u.problem import BlackBoxProblem

from ._chunks import weighted_direction_sum
from ._finite import check_finite
from ._pytree import cast_like, check_directions, check_float_tree
from .directions import check_key, sample_directions
from .unroll import check_unrolled_problem, meta_objective

PyTree = Any

__all__ = ["FG2U", "FG2U_ZO", "FGU"]


def _finish(who: str, total: PyTree, b: int, phi: PyTree, loss: jax.Array, check: bool) -> tuple[PyTree, Aux]:
    grad = cast_like(jax.tree_util.tree_map(lambda s: s / b, total), phi)
    if check:
        check_finite(who, grad, loss)
    return grad, Aux(outer_loss=loss)


@dataclasses.dataclass(frozen=True)
class FG2U:
    """(FG)²U: ``ĝ = (1/b) Σ_{i<b} (∇L(φ)·v_i) v_i`` with ``E[v vᵀ] = I``, so ``E[ĝ] = ∇L(φ)``.

    Each directional derivative ``∇L·v_i`` is one forward-mode ``jax.jvp`` through the whole ``lax.scan``
    unroll, which carries only ``(θ_t, dθ_t/dφ·v)``: the memory does not grow with the unroll depth T.
    Directions are vmapped inside chunks of ``chunk_size`` and the chunks are scanned sequentially, so the
    working memory of the jvps is ∝ ``chunk_size`` (plus the ``b × N`` directions, drawn at once so that a
    key gives the same directions for every ``chunk_size``); ``None`` → all b at once.

    For Rademacher directions ``E‖ĝ − ∇L‖² = (N − 1)/b · ‖∇L‖²`` (Lemma 3.1 bounds it by ``(N+1)/b``).

    Args:
      num_directions: b ≥ 1.
      distribution: ``"rademacher"``, ``"gaussian"``, ``"sphere"``, ``"orthogonal"`` or a
        :class:`fg2u.directions.DirectionDistribution`.
      chunk_size: directions per vmapped chunk, or ``None``.
      check_finite: raise ``FloatingPointError`` on NaN/inf (see :mod:`fg2u.jax._finite`).
    """

    num_directions: int = 1
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))`` for an :class:`fg2u.UnrolledProblem`; ``key`` a JAX PRNG key."""
        check_unrolled_problem(problem, "FG2U")
        check_float_tree(phi)
        check_key(key, "FG2U")
        return self._estimate(problem, phi, *_draw(self, key, phi))

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        check_unrolled_problem(problem, "FG2U")
        check_float_tree(phi)
        b = check_directions(directions, phi)
        return self._estimate(problem, phi, cast_directions(directions, phi), b)

    def _estimate(self, problem: Any, phi: PyTree, directions: PyTree, b: int) -> tuple[PyTree, Aux]:
        objective = meta_objective(problem)

        def per_direction(v: PyTree) -> tuple[jax.Array, jax.Array]:
            loss, derivative = jax.jvp(objective, (phi,), (v,))
            return derivative, loss

        total, _, loss = weighted_direction_sum(per_direction, directions, b, self.chunk_size)
        return _finish("FG2U", total, b, phi, loss, self.check_finite)


@dataclasses.dataclass(frozen=True)
class FG2U_ZO:
    """Zeroth-order (FG)²U: the directional derivative replaced by a finite difference of L.

    * ``scheme="forward"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ))/ε · v_i``, bias ``O(ε)`` (b + 1 evaluations).
    * ``scheme="central"``: ``ĝ = (1/b) Σ_i (L(φ+εv_i) − L(φ−εv_i))/(2ε) · v_i``, bias ``O(ε²)`` (2b evaluations).

    Works on a :class:`fg2u.BlackBoxProblem` (``objective(φ, data)`` must be JAX-traceable; wrap an external
    solver in ``jax.pure_callback(..., vmap_method="sequential")``) or on an :class:`fg2u.UnrolledProblem`.
    ``Aux.outer_loss`` is ``L(φ)`` for the forward scheme and the mean of the ``2b`` perturbed values for the
    central one.
    """

    num_directions: int = 1
    eps: float = 1e-4
    scheme: str = "forward"
    distribution: str | DirectionDistribution = "rademacher"
    chunk_size: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_direction_settings(self.num_directions, self.distribution, self.chunk_size)
        check_positive_float("eps (the finite-difference step)", self.eps)
        check_choice("scheme", self.scheme, ("forward", "central"))

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux)`` for a black-box or unrolled problem; ``key`` a JAX PRNG key."""
        self._check_problem(problem)
        check_float_tree(phi)
        check_key(key, "FG2U_ZO")
        return self._estimate(problem, phi, *_draw(self, key, phi))

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        self._check_problem(problem)
        check_float_tree(phi)
        b = check_directions(directions, phi)
        return self._estimate(problem, phi, cast_directions(directions, phi), b)

    @staticmethod
    def _check_problem(problem: Any) -> None:
        if not isinstance(problem, BlackBoxProblem):
            check_unrolled_problem(problem, "FG2U_ZO")

    def _estimate(self, problem: Any, phi: PyTree, directions: PyTree, b: int) -> tuple[PyTree, Aux]:
        objective = meta_objective(problem)
        eps = self.eps

        def shifted(v: PyTree, scale: float) -> PyTree:
            return jax.tree_util.tree_map(lambda p, d: p + (scale * eps) * d, phi, v)

        if self.scheme == "forward":
            base = objective(phi)

            def per_direction(v: PyTree) -> tuple[jax.Array, jax.Array]:
                plus = objective(shifted(v, 1.0))
                return (plus - base) / eps, plus

            total, _, _ = weighted_direction_sum(per_direction, directions, b, self.chunk_size)
            loss = base
        else:

            def per_direction(v: PyTree) -> tuple[jax.Array, jax.Array]:
                plus, minus = objective(shifted(v, 1.0)), objective(shifted(v, -1.0))
                return (plus - minus) / (2 * eps), 0.5 * (plus + minus)

            total, value_sum, _ = weighted_direction_sum(per_direction, directions, b, self.chunk_size)
            loss = value_sum / b
        return _finish("FG2U_ZO", total, b, phi, loss, self.check_finite)


@dataclasses.dataclass(frozen=True)
class FGU:
    """Exact ``∇L(φ)`` by forward mode: the full Jacobian ``jax.jacfwd`` (N jvps through the unroll).

    Memory is flat in T like FG²U but the cost is N unrolls: a reference for small N.
    """

    check_finite: bool = False

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "FGU")
        check_float_tree(phi)
        objective = meta_objective(problem)
        grad, loss = jax.jacfwd(lambda p: (lambda value: (value, value))(objective(p)), has_aux=True)(phi)
        grad = cast_like(grad, phi)
        if self.check_finite:
            check_finite("FGU", grad, loss)
        return grad, Aux(outer_loss=loss)


def _draw(est: Any, key: Any, phi: PyTree) -> tuple[PyTree, int]:
    """All b directions drawn at once as a flat ``(b, N)`` sample, so the draw for a key does not depend on
    ``chunk_size`` (``fg2u.jax.parallel`` relies on this)."""
    return sample_directions(est.distribution, key, est.num_directions, phi), est.num_directions


def cast_directions(directions: PyTree, phi: PyTree) -> PyTree:
    """Directions in the dtype of the matching φ leaf."""
    return jax.tree_util.tree_map(lambda d, p: jnp.asarray(d, dtype=jnp.result_type(p)), directions, phi)
