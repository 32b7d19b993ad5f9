"""Implicit differentiation at the fixed point ``θ* = Φ(θ*, φ)`` on JAX: [`Implicit`][fg2u.jax.Implicit] and the numeric
kernel of each linear solve of [`fg2u.estimators.implicit`][fg2u.estimators.implicit], over the matrix-free operator ``u
↦ (∂Φ/∂θ)ᵀ u``.

``θ* ≈ θ_T`` (the unrolled state, not differentiated); Φ is evaluated with the *last* inner batch
``inner_batches[T−1]``; the result is

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

computed with vector–Jacobian products only and fixed iteration counts (``lax.scan``: jit friendly). Non-floating
leaves of the inner state (e.g. optimiser step counters) are held constant. ``Neumann``, ``ConjugateGradient``
and ``HessianFree`` are the registry aliases that build [`Implicit`][fg2u.jax.Implicit] with one solve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, final

import jax
import jax.numpy as jnp
from jax import lax

from fg2u import estimators
from fg2u.estimator import Aux

from ._finite import check_finite
from ._pytree import cast_like, check_float_tree, check_same_structure, ravel, split_float
from .unroll import check_unrolled_problem, last_batch, unroll

PyTree = Any

__all__ = ["Implicit", "Neumann", "ConjugateGradient", "HessianFree"]

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


def _neumann(solve: estimators.NeumannSolve, lin: _Linearised) -> list:
    """``w = α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF`` (K vjps, a ``lax.scan``)."""
    alpha = solve.alpha

    def body(carry: tuple, _: None) -> tuple[tuple, None]:
        term, total = carry
        jt = lin.vjp_theta(term)
        term = _tmap(lambda p, q: p - alpha * (p - q), term, jt)
        return (term, _tmap(jnp.add, total, term)), None

    (_, total), _ = lax.scan(body, (lin.g_theta, lin.g_theta), None, length=solve.num_terms)
    return _tmap(lambda x: alpha * x, total)


def _conjugate_gradient(solve: estimators.ConjugateGradientSolve, lin: _Linearised) -> list:
    """``w`` from K conjugate-gradient iterations on ``(I − ∂Φ/∂θ)ᵀ w = ∇_θF`` from ``w_0 = 0`` (a ``lax.scan``; a
    zero curvature ``pᵀAp`` or residual stops the updates)."""
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
    (w, _, _, _), _ = lax.scan(body, init, None, length=solve.num_iterations)
    return unravel(w)


def _identity(solve: estimators.IdentitySolve, lin: _Linearised) -> list:
    """``w = α ∇_θF`` (no vjp)."""
    return _tmap(lambda x: solve.alpha * x, lin.g_theta)


_SOLVERS: dict[type, Callable[[Any, _Linearised], list]] = {
    estimators.NeumannSolve: _neumann,
    estimators.ConjugateGradientSolve: _conjugate_gradient,
    estimators.IdentitySolve: _identity,
}


@final
class Implicit(estimators.Implicit):
    """JAX kernel of [`fg2u.estimators.Implicit`][fg2u.estimators.Implicit] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 has the fixed point θ* = φ, with ∂Φ/∂θ = ∂Φ/∂φ = I/2; for F = ‖θ‖² the implicit
      gradient is ∇_φF + (I/2)(I − I/2)^{−1} 2θ_T = 2θ_T ≈ 2φ:

      >>> import jax.numpy as jnp
      >>> import fg2u, fg2u.jax as fj
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
      >>> phi = jnp.array([1.0, -2.0])
      >>> grad, aux = fj.Implicit(solve=fj.conjugate_gradient(num_iterations=1))(problem, phi, None)
      >>> grad.round(3)
      Array([ 1.998..., -3.996...], dtype=float32)
      >>> fj.Implicit(solve=fj.identity(alpha=2.0))(problem, phi, None)[0].round(3)  # w = α∇_θF: exact here
      Array([ 1.998..., -3.996...], dtype=float32)
      >>> fj.Implicit(solve=fj.neumann(num_terms=3)).settings()
      {'estimator': 'Neumann', 'num_terms': 3, 'alpha': 1.0, 'check_finite': False}
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        who = self.display_name
        lin = _linearise(problem, phi, who)
        w = _SOLVERS[type(self.solve)](self.solve, lin)
        return _finish(who, lin, w, phi, self.check_finite, problem)


_PROBLEM = """\
>>> import jax.numpy as jnp
>>> import fg2u, fg2u.jax as fj
>>> problem = fg2u.UnrolledProblem(init=lambda phi: jnp.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
...                                outer_loss=lambda th, phi, _: jnp.sum(th**2), num_steps=10)
>>> phi = jnp.array([1.0, -2.0])
"""

Neumann = estimators.Neumann.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> fj.Neumann(num_terms=10)(problem, phi, None)[0].round(3)  # → 2θ_T ≈ 2φ as K grows (error ∝ 2^{−K})
Array([ 1.997..., -3.994...], dtype=float32)
>>> fj.Neumann(10) == fj.Implicit(solve=fj.neumann(10))
True
""",
)
ConjugateGradient = estimators.ConjugateGradient.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> fj.ConjugateGradient(num_iterations=1)(problem, phi, None)[0].round(3)  # I − ∂Φ/∂θ = I/2: exact at K = 1
Array([ 1.998..., -3.996...], dtype=float32)
""",
)
HessianFree = estimators.HessianFree.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> fj.HessianFree()(problem, phi, None)[0].round(3)  # ∇_φF + α(∂Φ/∂φ)ᵀ∇_θF = θ_T
Array([ 0.999..., -1.998...], dtype=float32)
""",
)
