"""Reverse-mode estimators: RGU (full backprop), TRGU (truncated), RGUCheckpointed (√T rematerialisation),
RGURecursive (recursive checkpointing, O(log T) memory)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, final

import jax
import jax.numpy as jnp
from jax import lax

from fg2u import estimators
from fg2u.estimator import Aux
from fg2u.estimators.reverse import recursive_radices

from ._finite import check_finite
from ._pytree import cast_like, check_float_tree
from .unroll import batch_slice, check_unrolled_problem, checked_step, meta_objective, unroll_steps

PyTree = Any

__all__ = ["RGU", "TRGU", "RGUCheckpointed", "RGURecursive"]


def _value_and_grad(who: str, objective: Any, phi: PyTree, check: bool, problem: Any = None) -> tuple[PyTree, Aux]:
    loss, grad = jax.value_and_grad(objective)(phi)
    grad = cast_like(grad, phi)
    if check:
        check_finite(who, grad, loss, phi=phi, problem=problem)
    return grad, Aux(outer_loss=loss)


@final
class RGU(estimators.RGU):
    """JAX kernel of [`fg2u.estimators.RGU`][fg2u.estimators.RGU] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> grad, aux = jax.jit(fj.RGU())(problem, phi, None)
      >>> grad.round(3)
      Array([ 1.996..., -3.992...], dtype=float32)
      >>> aux.outer_loss.round(3)  # L(φ) = (1 − 2⁻¹⁰)² ‖φ‖²
      Array(4.99..., dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "RGU")
        check_float_tree(phi)
        return _value_and_grad("RGU", meta_objective(problem), phi, self.check_finite, problem)


@final
class TRGU(estimators.TRGU):
    """JAX kernel of [`fg2u.estimators.TRGU`][fg2u.estimators.TRGU] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> grad, _ = fj.TRGU(truncation=3)(problem, phi, None)  # dθ_T/dφ ≈ Σ_{j<3} 2^{−j−1} = 1 − 2⁻³
      >>> grad.round(3)  # 2 (1 − 2⁻¹⁰)(1 − 2⁻³) φ
      Array([ 1.748..., -3.497...], dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(truncated ∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "TRGU")
        check_float_tree(phi)
        k = min(self.truncation, num_steps)
        if k == num_steps:
            return _value_and_grad("TRGU", meta_objective(problem), phi, self.check_finite, problem)
        head = num_steps - k

        def objective(p: PyTree) -> jax.Array:
            state = unroll_steps(problem.step, problem.init(p), p, batch_slice(problem.inner_batches, 0, head), head)
            state = lax.stop_gradient(state)
            state = unroll_steps(problem.step, state, p, batch_slice(problem.inner_batches, head, num_steps), k)
            return problem.outer_loss(state, p, problem.outer_batch)

        return _value_and_grad("TRGU", objective, phi, self.check_finite, problem)


@final
class RGUCheckpointed(estimators.RGUCheckpointed):
    """JAX kernel of [`fg2u.estimators.RGUCheckpointed`][fg2u.estimators.RGUCheckpointed] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> fj.RGUCheckpointed(segment_length=3)(problem, phi, None)[0].round(3)  # exact, as RGU
      Array([ 1.996..., -3.992...], dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "RGUCheckpointed")
        check_float_tree(phi)
        seg = min(self.segment_length or math.ceil(math.sqrt(num_steps)), num_steps)
        num_segments, rest = divmod(num_steps, seg)
        batches = problem.inner_batches
        step = problem.step

        def run(length: int) -> Any:
            return jax.checkpoint(lambda s, p, bt: unroll_steps(step, s, p, bt, length))

        def objective(p: PyTree) -> jax.Array:
            main = batch_slice(batches, 0, num_segments * seg)
            if main is not None:
                main = jax.tree_util.tree_map(lambda x: x.reshape((num_segments, seg) + x.shape[1:]), main)
            segment = run(seg)
            state, _ = lax.scan(lambda s, bt: (segment(s, p, bt), None), problem.init(p), main, length=num_segments)
            if rest:
                state = run(rest)(state, p, batch_slice(batches, num_segments * seg, num_steps))
            return problem.outer_loss(state, p, problem.outer_batch)

        return _value_and_grad("RGUCheckpointed", objective, phi, self.check_finite, problem)


@final
class RGURecursive(estimators.RGURecursive):
    """JAX kernel of [`fg2u.estimators.RGURecursive`][fg2u.estimators.RGURecursive] (same settings and defaults).

    ``L`` nested ``lax.scan`` (one per level of `fg2u.estimators.reverse.recursive_radices`), the body of
    each but the bottom one the ``jax.checkpoint`` of the level below, so the compiled program has O(log T)
    scans whatever T; a bottom scan applies one step per iteration, reading ``inner_batches[t]`` by index
    (nothing is padded or copied), and the spare slots of the tree (``t ≥ T``) are a ``lax.cond`` identity.

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import jax, jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> jax.jit(fj.RGURecursive(branching=2))(problem, phi, None)[0].round(3)  # exact, as RGU
      Array([ 1.996..., -3.992...], dtype=float32)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "RGURecursive")
        check_float_tree(phi)
        radices = recursive_radices(num_steps, self.branching)
        padded = math.prod(radices) > num_steps
        batches = problem.inner_batches
        step = checked_step(problem.step)

        def objective(p: PyTree) -> jax.Array:
            def one_step(state: PyTree, t: jax.Array) -> PyTree:
                def apply(s: PyTree) -> PyTree:
                    index = jnp.minimum(t, num_steps - 1)
                    batch = None if batches is None else jax.tree_util.tree_map(lambda x: x[index], batches)
                    return step(s, p, batch)

                return lax.cond(t < num_steps, apply, lambda s: s, state) if padded else apply(state)

            def level(depth: int) -> Callable[[PyTree, jax.Array], PyTree]:
                """``(θ_start, start) -> θ after this level's chunk`` (``Π radices[depth:]`` slots)."""
                slots = jnp.arange(radices[depth], dtype=jnp.int32)
                if depth == len(radices) - 1:
                    return lambda state, start: lax.scan(lambda s, i: (one_step(s, start + i), None), state, slots)[0]
                span = math.prod(radices[depth + 1 :])
                # the level below is rematerialised in the backward pass: this scan stores its ≤ k inputs only
                inner = jax.checkpoint(level(depth + 1), prevent_cse=False)  # a scan body: no CSE to prevent
                return lambda state, start: lax.scan(lambda s, i: (inner(s, start + i * span), None), state, slots)[0]

            final = level(0)(problem.init(p), jnp.zeros((), jnp.int32))
            return problem.outer_loss(final, p, problem.outer_batch)

        return _value_and_grad("RGURecursive", objective, phi, self.check_finite, problem)
