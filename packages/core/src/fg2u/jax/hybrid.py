"""The hybrid estimator on JAX: reverse mode through the last K inner steps, jvps through the first T − K."""

from __future__ import annotations

from typing import Any, final

import jax
import jax.numpy as jnp

from fg2u import estimators
from fg2u.estimator import Aux

from ._chunks import weighted_direction_sum
from ._finite import check_finite
from ._pytree import cast_like, check_directions, check_float_tree, split_float
from .directions import check_key
from .forward import _draw, cast_directions
from .reverse import _value_and_grad
from .unroll import _scalar, batch_slice, check_unrolled_problem, meta_objective, unroll_steps

PyTree = Any

__all__ = ["Hybrid"]


@final
class Hybrid(estimators.Hybrid):
    """JAX kernel of [`fg2u.estimators.Hybrid`][fg2u.estimators.Hybrid] (same settings; ``key`` a JAX PRNG key).

    ``θ_H`` (``H = T − K``) is computed once; one ``jax.value_and_grad`` through the last K steps (a
    ``lax.scan``) gives ``L``, ``∂_φG`` and ``∇_θG`` with respect to the floating-point leaves of θ; the
    coefficient of direction ``v`` is ``⟨∇_θG, J_head v⟩`` from one ``jax.jvp`` through the first H steps,
    vectorised over the directions of a chunk (the primal part of the jvp is shared by the chunk).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> est = fj.Hybrid(num_directions=2, reverse_steps=3, distribution="orthogonal")  # exact head term
      >>> est(problem, phi, jax.random.key(0))[0].round(3)
      Array([ 1.996..., -3.992...], dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))`` for an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem]; ``key`` a JAX PRNG key
        (ignored when K ≥ T)."""
        num_steps = check_unrolled_problem(problem, "Hybrid")
        check_float_tree(phi)
        if self.reverse_steps >= num_steps:
            return _value_and_grad("Hybrid", meta_objective(problem), phi, self.check_finite)
        check_key(key, "Hybrid")
        return self._estimate(problem, phi, num_steps, *_draw(self, key, phi))

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        num_steps = check_unrolled_problem(problem, "Hybrid")
        check_float_tree(phi)
        b = check_directions(directions, phi)
        if self.reverse_steps >= num_steps:
            return _value_and_grad("Hybrid", meta_objective(problem), phi, self.check_finite)
        return self._estimate(problem, phi, num_steps, cast_directions(directions, phi), b)

    def _estimate(self, problem: Any, phi: PyTree, num_steps: int, directions: PyTree, b: int) -> tuple[PyTree, Aux]:
        k = self.reverse_steps
        head = num_steps - k
        head_batches = batch_slice(problem.inner_batches, 0, head)
        tail_batches = batch_slice(problem.inner_batches, head, num_steps)

        def run_head(p: PyTree) -> PyTree:
            return unroll_steps(problem.step, problem.init(p), p, head_batches, head)

        theta_h = run_head(phi)
        theta_float, rebuild = split_float(theta_h)
        is_float = [jnp.issubdtype(jnp.result_type(x), jnp.inexact) for x in jax.tree_util.tree_leaves(theta_h)]

        def tail(floats: list, p: PyTree) -> jax.Array:
            final = unroll_steps(problem.step, rebuild(floats), p, tail_batches, k)
            return _scalar(problem.outer_loss(final, p, problem.outer_batch), "outer_loss")

        loss, (g_theta, g_phi) = jax.value_and_grad(tail, argnums=(0, 1))(theta_float, phi)
        zero = jnp.zeros((), jnp.result_type(loss))

        def per_direction(v: PyTree) -> tuple[jax.Array, jax.Array]:
            # ⟨∇_θG, J_head v⟩ over the float leaves (the tangents of integer leaves are float0 zeros)
            _, z = jax.jvp(run_head, (phi,), (v,))
            z_float = [zl for zl, f in zip(jax.tree_util.tree_leaves(z), is_float) if f]
            coeff = zero
            for g, zl in zip(g_theta, z_float):
                coeff = coeff + jnp.sum(g * zl).astype(zero.dtype)
            return coeff, zero

        total, _, _ = weighted_direction_sum(per_direction, directions, b, self.chunk_size)
        grad = cast_like(jax.tree_util.tree_map(lambda d, s: d + s / b, g_phi, total), phi)
        if self.check_finite:
            check_finite("Hybrid", grad, loss)
        return grad, Aux(outer_loss=loss)
