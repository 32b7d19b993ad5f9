"""Forward-mode estimators: FG²U (forward gradient through the unroll), FG²U-ZO (finite differences), FGU."""

from __future__ import annotations

from typing import Any, final

import jax
import jax.numpy as jnp

from fg2u import estimators
from fg2u.directions import get_distribution
from fg2u.estimator import Aux
from fg2u.problem import BlackBoxProblem

from ._chunks import weighted_direction_sum
from ._finite import check_finite
from ._pytree import cast_like, check_directions, check_float_tree, ravel
from ._tangent import tangent_forward_sum
from .directions import GivenDirections, KeyedDirections, check_key, drawn_per_direction, sample_directions
from .unroll import check_unrolled_problem, meta_objective

PyTree = Any

__all__ = ["FG2U", "FG2U_ZO", "FGU"]


def _finish(
    who: str, total: PyTree, b: int, phi: PyTree, loss: jax.Array, check: bool, problem: Any = None
) -> tuple[PyTree, Aux]:
    grad = cast_like(jax.tree_util.tree_map(lambda s: s / b, total), phi)
    if check:
        check_finite(who, grad, loss, phi=phi, problem=problem)
    return grad, Aux(outer_loss=loss)


@final
class FG2U(estimators.FG2U):
    """JAX kernel of [`fg2u.estimators.FG2U`][fg2u.estimators.FG2U] (same settings; ``key`` a JAX PRNG key).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> est = fj.FG2U(num_directions=2, distribution="orthogonal")  # b = N orthogonal directions: exact
      >>> grad, aux = jax.jit(est)(problem, phi, jax.random.key(0))
      >>> grad.round(3)
      Array([ 1.996..., -3.992...], dtype=float32)
      >>> grad, _ = fj.FG2U(num_directions=8, chunk_size=4)(problem, phi, jax.random.key(0))
      >>> grad.shape  # unbiased: E[ĝ] = ∇L for Rademacher directions
      (2,)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))`` for an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem]; ``key`` a JAX PRNG key."""
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
        # one tangent scan per chunk (primal shared by the chunk's tangents, outer loss differentiated once);
        # keyed directions are drawn per chunk and kept compact, given ones are read row by row
        if not isinstance(directions, KeyedDirections):
            directions = GivenDirections(jax.vmap(lambda v: ravel(v)[0])(directions))
        total, loss = tangent_forward_sum(problem, phi, directions, self.chunk_size, 1.0 / b)
        return _finish("FG2U", total, 1, phi, loss, self.check_finite, problem)


@final
class FG2U_ZO(estimators.FG2U_ZO):
    """JAX kernel of [`fg2u.estimators.FG2U_ZO`][fg2u.estimators.FG2U_ZO] (same settings; ``key`` a JAX PRNG key).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> est = fj.FG2U_ZO(num_directions=2, eps=1e-2, scheme="central", distribution="orthogonal")
      >>> est(problem, phi, jax.random.key(0))[0].round(2)  # L is quadratic: central differences are exact
      Array([ 2.  , -3.99...], dtype=float32)
    """

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
        return _finish("FG2U_ZO", total, b, phi, loss, self.check_finite, problem)


@final
class FGU(estimators.FGU):
    """JAX kernel of [`fg2u.estimators.FGU`][fg2u.estimators.FGU] (same settings; ``key`` a JAX PRNG key).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> fj.FGU()(problem, phi, None)[0].round(3)  # N = 2 jvps
      Array([ 1.996..., -3.992...], dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "FGU")
        check_float_tree(phi)
        objective = meta_objective(problem)
        grad, loss = jax.jacfwd(lambda p: (lambda value: (value, value))(objective(p)), has_aux=True)(phi)
        grad = cast_like(grad, phi)
        if self.check_finite:
            check_finite("FGU", grad, loss, phi=phi, problem=problem)
        return grad, Aux(outer_loss=loss)


def _draw(est: Any, key: Any, phi: PyTree) -> tuple[PyTree, int]:
    """The b directions for ``key``. i.i.d. distributions (Rademacher, Gaussian, Sphere): drawn lazily, each
    chunk drawing its own (``v_i`` depends on ``(key, i)`` only; memory ∝ ``chunk_size``, not b); others
    (orthogonal blocks): all b at once. Either way ``v_i`` equals ``sample_directions(..., key, b, phi)[i]``,
    whatever ``chunk_size`` (``fg2u.jax.parallel`` relies on this)."""
    if drawn_per_direction(est.distribution):
        dist = get_distribution(est.distribution)
        return KeyedDirections(dist, key, est.num_directions, phi), est.num_directions
    return sample_directions(est.distribution, key, est.num_directions, phi), est.num_directions


def cast_directions(directions: PyTree, phi: PyTree) -> PyTree:
    """Directions in the dtype of the matching φ leaf."""
    return jax.tree_util.tree_map(lambda d, p: jnp.asarray(d, dtype=jnp.result_type(p)), directions, phi)
