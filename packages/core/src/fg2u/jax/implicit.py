"""Implicit-differentiation estimators at the fixed point ``θ* = Φ(θ*, φ)``: Neumann, CG, Hessian-free.

All three take ``θ* ≈ θ_T`` (the unrolled state, not differentiated), evaluate Φ with the *last* inner batch
``inner_batches[T−1]``, and return

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

computed with vector–Jacobian products only and fixed iteration counts (jit friendly). Non-floating
leaves of the inner state (e.g. optimiser step counters) are held constant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fg2u import estimators
from fg2u.estimator import Aux

from ._finite import check_finite
from ._pytree import cast_like, check_float_tree, check_same_structure, ravel, split_float
from .unroll import check_unrolled_problem, last_batch, unroll

PyTree = Any

__all__ = ["Neumann", "ConjugateGradient", "HessianFree"]

_tmap = jax.tree_util.tree_map


@dataclasses.dataclass
class _Linearised:
    loss: jax.Array
    g_theta: list  # ∇_θF, float leaves of θ
    g_phi: PyTree  # ∇_φF
    vjp_theta: Callable[[list], list]  # u ↦ (∂Φ/∂θ)ᵀ u
    vjp_phi: Callable[[list], PyTree]  # u ↦ (∂Φ/∂φ)ᵀ u


def _linearise(problem: Any, phi: PyTree, who: str) -> _Linearised:
    check_unrolled_problem(problem, who)
    check_float_tree(phi)
    theta = lax.stop_gradient(unroll(problem, phi))
    floats, rebuild = split_float(theta)
    if not floats:
        raise TypeError(f"{who}: the inner state has no floating-point leaves to differentiate")
    batch = last_batch(problem)

    def outer(fl: list, p: PyTree) -> jax.Array:
        return problem.outer_loss(rebuild(fl), p, problem.outer_batch)

    def transition(fl: list, p: PyTree) -> list:
        state = rebuild(fl)
        new_state = problem.step(state, p, batch)
        check_same_structure(new_state, state, "the state returned by step", "the state passed to step")
        return split_float(new_state)[0]

    loss, outer_vjp = jax.vjp(outer, floats, phi)
    g_theta, g_phi = outer_vjp(jnp.ones_like(loss))
    _, step_vjp = jax.vjp(transition, floats, phi)
    return _Linearised(
        loss=loss,
        g_theta=list(g_theta),
        g_phi=g_phi,
        vjp_theta=lambda u: list(step_vjp(u)[0]),
        vjp_phi=lambda u: step_vjp(u)[1],
    )


def _finish(who: str, lin: _Linearised, w: list, phi: PyTree, check: bool, problem: Any = None) -> tuple[PyTree, Aux]:
    grad = cast_like(_tmap(jnp.add, lin.g_phi, lin.vjp_phi(w)), phi)
    if check:
        check_finite(who, grad, lin.loss, phi=phi, problem=problem)
    return grad, Aux(outer_loss=lin.loss)


class Neumann(estimators.Neumann):
    """JAX kernel of :class:`fg2u.estimators.Neumann` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "Neumann")
        alpha = self.alpha

        def body(carry: tuple, _: None) -> tuple[tuple, None]:
            term, total = carry
            jt = lin.vjp_theta(term)
            term = _tmap(lambda p, q: p - alpha * (p - q), term, jt)
            return (term, _tmap(jnp.add, total, term)), None

        (_, total), _ = lax.scan(body, (lin.g_theta, lin.g_theta), None, length=self.num_terms)
        return _finish("Neumann", lin, _tmap(lambda x: alpha * x, total), phi, self.check_finite, problem)


class ConjugateGradient(estimators.ConjugateGradient):
    """JAX kernel of :class:`fg2u.estimators.ConjugateGradient` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "ConjugateGradient")
        rhs, unravel = ravel(lin.g_theta)

        def matvec(x: jax.Array) -> jax.Array:
            u = unravel(x)
            return x - ravel(lin.vjp_theta(u))[0]

        def body(carry: tuple, _: None) -> tuple[tuple, None]:
            x, r, p, rs = carry
            ap = matvec(p)
            pap = jnp.vdot(p, ap)
            step = jnp.where(pap != 0, rs / jnp.where(pap != 0, pap, 1), 0)
            x = x + step * p
            r = r - step * ap
            rs_new = jnp.vdot(r, r)
            beta = jnp.where(rs != 0, rs_new / jnp.where(rs != 0, rs, 1), 0)
            return (x, r, r + beta * p, rs_new), None

        init = (jnp.zeros_like(rhs), rhs, rhs, jnp.vdot(rhs, rhs))
        (w, _, _, _), _ = lax.scan(body, init, None, length=self.num_iterations)
        return _finish("ConjugateGradient", lin, unravel(w), phi, self.check_finite, problem)


class HessianFree(estimators.HessianFree):
    """JAX kernel of :class:`fg2u.estimators.HessianFree` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇_φF + α(∂Φ/∂φ)ᵀ∇_θF, Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "HessianFree")
        w = _tmap(lambda x: self.alpha * x, lin.g_theta)
        return _finish("HessianFree", lin, w, phi, self.check_finite, problem)
