"""Implicit differentiation at the fixed point ``θ* = Φ(θ*, φ)`` on PyTorch: [`Implicit`][fg2u.torch.Implicit] and the
numeric kernel of each linear solve of [`fg2u.estimators.implicit`][fg2u.estimators.implicit], over the matrix-free
operator ``u ↦ (∂Φ/∂θ)ᵀ u``.

``θ* ≈ θ_T`` (the unrolled state, computed under ``torch.no_grad``); Φ is evaluated with the *last* inner batch
``inner_batches[T−1]``; the result is

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

with vector–Jacobian products (``torch.func.vjp``) only and fixed iteration counts. Non-floating leaves of the
inner state (e.g. optimiser step counters) are held constant. ``Aux.outer_loss`` is ``F(θ_T, φ)``.
``Neumann``, ``ConjugateGradient`` and ``HessianFree`` are the registry aliases that build
[`Implicit`][fg2u.torch.Implicit] with one solve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, final

import torch

from fg2u import estimators
from fg2u.estimator import Aux
from fg2u.torch._pytree import (
    PyTree,
    check_finite_result,
    check_meta_params,
    check_same_structure,
    detach,
    is_float_tensor,
    tree_flatten,
    tree_unflatten,
)
from fg2u.torch.unroll import _as_scalar, check_unrolled_problem, last_batch, unroll

__all__ = ["Implicit", "Neumann", "ConjugateGradient", "HessianFree"]


def _split_float(tree: PyTree) -> tuple[list, Callable[[list], PyTree]]:
    """``(float_leaves, rebuild)``; ``rebuild(new_float_leaves)`` puts the other leaves back."""
    leaves, spec = tree_flatten(tree)
    is_float = [is_float_tensor(x) for x in leaves]

    def rebuild(new: list) -> PyTree:
        it = iter(new)
        return tree_unflatten([next(it) if f else x for x, f in zip(leaves, is_float)], spec)

    return [x for x, f in zip(leaves, is_float) if f], rebuild


@dataclasses.dataclass
class _Linearised:
    loss: torch.Tensor
    g_theta: list  # ∇_θF over the float leaves of θ
    g_phi: list  # ∇_φF over the leaves of φ
    vjp_theta: Callable[[list], list]  # u ↦ (∂Φ/∂θ)ᵀ u
    vjp_phi: Callable[[list], list]  # u ↦ (∂Φ/∂φ)ᵀ u
    spec: Any
    phi_leaves: list


def _linearise(problem: Any, phi: PyTree, who: str) -> _Linearised:
    check_unrolled_problem(problem, who)
    phi_leaves, spec = check_meta_params(phi, who)
    phi_leaves = [p.detach() for p in phi_leaves]
    with torch.no_grad():
        theta = detach(unroll(problem, tree_unflatten(phi_leaves, spec)))
    floats, rebuild = _split_float(theta)
    if not floats:
        raise TypeError(f"{who}: the inner state has no floating-point leaves to differentiate")
    batch = last_batch(problem)

    def outer(fl: list, pl: list) -> torch.Tensor:
        p = tree_unflatten(pl, spec)
        return _as_scalar(problem.outer_loss(rebuild(fl), p, problem.outer_batch), "outer_loss", p)

    def transition(fl: list, pl: list) -> list:
        state = rebuild(fl)
        new_state = problem.step(state, tree_unflatten(pl, spec), batch)
        check_same_structure(new_state, state, "the state returned by step", "the state passed to step")
        return _split_float(new_state)[0]

    loss, outer_vjp = torch.func.vjp(outer, floats, phi_leaves)[:2]
    g_theta, g_phi = outer_vjp(torch.ones_like(loss))
    step_vjp = torch.func.vjp(transition, floats, phi_leaves)[1]
    return _Linearised(
        loss=loss.detach(),
        g_theta=list(g_theta),
        g_phi=list(g_phi),
        vjp_theta=lambda u: list(step_vjp(list(u))[0]),
        vjp_phi=lambda u: list(step_vjp(list(u))[1]),
        spec=spec,
        phi_leaves=phi_leaves,
    )


def _finish(who: str, lin: _Linearised, w: list, check: bool, problem: Any = None) -> tuple[PyTree, Aux]:
    leaves = [(a + b).detach().to(p.dtype) for a, b, p in zip(lin.g_phi, lin.vjp_phi(w), lin.phi_leaves)]
    grad = tree_unflatten(leaves, lin.spec)
    if check:
        check_finite_result(who, grad, lin.loss, phi=tree_unflatten(lin.phi_leaves, lin.spec), problem=problem)
    return grad, Aux(outer_loss=lin.loss)


def _neumann(solve: estimators.NeumannSolve, lin: _Linearised) -> list:
    """``w = α Σ_{k=0}^{K} (I − α(I − ∂Φ/∂θ)ᵀ)^k ∇_θF`` (K vjps)."""
    alpha = solve.alpha
    term, total = list(lin.g_theta), list(lin.g_theta)
    for _ in range(solve.num_terms):
        jt = lin.vjp_theta(term)
        term = [p - alpha * (p - q) for p, q in zip(term, jt)]
        total = [a + b for a, b in zip(total, term)]
    return [alpha * x for x in total]


def _conjugate_gradient(solve: estimators.ConjugateGradientSolve, lin: _Linearised) -> list:
    """``w`` from K conjugate-gradient iterations on ``(I − ∂Φ/∂θ)ᵀ w = ∇_θF`` from ``w_0 = 0`` (stops early at a
    zero residual or curvature ``pᵀAp``)."""
    shapes = [g.shape for g in lin.g_theta]
    sizes = [g.numel() for g in lin.g_theta]

    def ravel(xs: list) -> torch.Tensor:
        return torch.cat([x.reshape(-1) for x in xs])

    def unravel(x: torch.Tensor) -> list:
        return [c.reshape(s) for c, s in zip(torch.split(x, sizes), shapes)]

    def matvec(x: torch.Tensor) -> torch.Tensor:
        return x - ravel(lin.vjp_theta(unravel(x)))

    rhs = ravel(lin.g_theta)
    x, r, p = torch.zeros_like(rhs), rhs.clone(), rhs.clone()
    rs = torch.dot(r, r)
    for _ in range(solve.num_iterations):
        if rs == 0:  # exact solution reached
            break
        ap = matvec(p)
        pap = torch.dot(p, ap)
        if pap == 0:
            break
        step = rs / pap
        x = x + step * p
        r = r - step * ap
        rs_new = torch.dot(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return unravel(x)


def _identity(solve: estimators.IdentitySolve, lin: _Linearised) -> list:
    """``w = α ∇_θF`` (no vjp)."""
    return [solve.alpha * x for x in lin.g_theta]


_SOLVERS: dict[type, Callable[[Any, _Linearised], list]] = {
    estimators.NeumannSolve: _neumann,
    estimators.ConjugateGradientSolve: _conjugate_gradient,
    estimators.IdentitySolve: _identity,
}


@final
class Implicit(estimators.Implicit):
    """PyTorch kernel of [`fg2u.estimators.Implicit`][fg2u.estimators.Implicit] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 has the fixed point θ* = φ, with ∂Φ/∂θ = ∂Φ/∂φ = I/2; for F = ‖θ‖² the implicit
      gradient is ∇_φF + (I/2)(I − I/2)^{−1} 2θ_T = 2θ_T ≈ 2φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> grad, aux = ft.Implicit(solve=ft.conjugate_gradient(num_iterations=1))(problem, phi, None)
      >>> grad.round(decimals=3)
      tensor([ 1.9980, -3.9960])
      >>> ft.Implicit(solve=ft.identity(alpha=2.0))(problem, phi, None)[0].round(decimals=3)  # exact here
      tensor([ 1.9980, -3.9960])
      >>> ft.Implicit(solve=ft.neumann(num_terms=3)).settings()
      {'estimator': 'Neumann', 'num_terms': 3, 'alpha': 1.0, 'check_finite': False}
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        who = self.display_name
        lin = _linearise(problem, phi, who)
        with torch.no_grad():
            w = _SOLVERS[type(self.solve)](self.solve, lin)
        return _finish(who, lin, w, self.check_finite, problem)


_PROBLEM = """\
>>> import torch
>>> import fg2u, fg2u.torch as ft
>>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
>>> phi = torch.tensor([1.0, -2.0])
"""

Neumann = estimators.Neumann.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> ft.Neumann(num_terms=10)(problem, phi, None)[0].round(decimals=3)  # → 2θ_T ≈ 2φ as K grows (error ∝ 2^{−K})
tensor([ 1.9970, -3.9940])
>>> ft.Neumann(10) == ft.Implicit(solve=ft.neumann(10))
True
""",
)
ConjugateGradient = estimators.ConjugateGradient.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> ft.ConjugateGradient(num_iterations=1)(problem, phi, None)[0].round(decimals=3)  # I − ∂Φ/∂θ = I/2: exact
tensor([ 1.9980, -3.9960])
""",
)
HessianFree = estimators.HessianFree.bind(
    Implicit,
    __name__,
    _PROBLEM
    + """\
>>> ft.HessianFree()(problem, phi, None)[0].round(decimals=3)  # ∇_φF + α(∂Φ/∂φ)ᵀ∇_θF = θ_T
tensor([ 0.9990, -1.9980])
""",
)
