"""Implicit-differentiation estimators at the fixed point ``θ* = Φ(θ*, φ)``: Neumann, CG, Hessian-free.

All three take ``θ* ≈ θ_T`` (the unrolled state, computed under ``torch.no_grad``), evaluate Φ with the
*last* inner batch ``inner_batches[T−1]``, and return

    ∇_φF + (∂Φ/∂φ)ᵀ w,      w ≈ (I − ∂Φ/∂θ)^{−T} ∇_θF,

with vector–Jacobian products (``torch.func.vjp``) only and fixed iteration counts. Non-floating leaves
of the inner state (e.g. optimiser step counters) are held constant. ``Aux.outer_loss`` is ``F(θ_T, φ)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

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

__all__ = ["Neumann", "ConjugateGradient", "HessianFree"]


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


class Neumann(estimators.Neumann):
    """PyTorch kernel of :class:`fg2u.estimators.Neumann` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "Neumann")
        alpha = self.alpha
        with torch.no_grad():
            term, total = list(lin.g_theta), list(lin.g_theta)
            for _ in range(self.num_terms):
                jt = lin.vjp_theta(term)
                term = [p - alpha * (p - q) for p, q in zip(term, jt)]
                total = [a + b for a, b in zip(total, term)]
            w = [alpha * x for x in total]
        return _finish("Neumann", lin, w, self.check_finite, problem)


class ConjugateGradient(estimators.ConjugateGradient):
    """PyTorch kernel of :class:`fg2u.estimators.ConjugateGradient` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(implicit ∇L(φ), Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "ConjugateGradient")
        shapes = [g.shape for g in lin.g_theta]
        sizes = [g.numel() for g in lin.g_theta]

        def ravel(xs: list) -> torch.Tensor:
            return torch.cat([x.reshape(-1) for x in xs])

        def unravel(x: torch.Tensor) -> list:
            return [c.reshape(s) for c, s in zip(torch.split(x, sizes), shapes)]

        def matvec(x: torch.Tensor) -> torch.Tensor:
            return x - ravel(lin.vjp_theta(unravel(x)))

        with torch.no_grad():
            rhs = ravel(lin.g_theta)
            x, r, p = torch.zeros_like(rhs), rhs.clone(), rhs.clone()
            rs = torch.dot(r, r)
            for _ in range(self.num_iterations):
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
        return _finish("ConjugateGradient", lin, unravel(x), self.check_finite, problem)


class HessianFree(estimators.HessianFree):
    """PyTorch kernel of :class:`fg2u.estimators.HessianFree` (same settings and defaults)."""

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇_φF + α(∂Φ/∂φ)ᵀ∇_θF, Aux(F(θ_T, φ)))``; ``key`` is ignored."""
        lin = _linearise(problem, phi, "HessianFree")
        return _finish("HessianFree", lin, [self.alpha * x for x in lin.g_theta], self.check_finite, problem)
