"""The hybrid estimator on PyTorch: reverse mode through the last K inner steps, tangents through the first T − K."""

from __future__ import annotations

from typing import Any, final

import torch

from fg2u import estimators
from fg2u.estimator import Aux
from fg2u.problem import UnrolledProblem
from fg2u.torch._pytree import (
    PyTree,
    check_directions,
    check_finite_result,
    check_meta_params,
    detach,
    tree_flatten,
    tree_map,
    tree_unflatten,
)
from fg2u.torch._tangent import forward_estimate
from fg2u.torch.directions import sample_directions
from fg2u.torch.forward import _cast_directions, _check_key
from fg2u.torch.reverse import value_and_grad
from fg2u.torch.unroll import _as_scalar, check_unrolled_problem, meta_objective, run_steps

__all__ = ["Hybrid"]


def _is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


@final
class Hybrid(estimators.Hybrid):
    """PyTorch kernel of [`fg2u.estimators.Hybrid`][fg2u.estimators.Hybrid] (same settings and defaults).

    ``θ_H`` (``H = T − K``) is computed once without autograd; one ``torch.autograd.grad`` through the last K
    steps gives ``L``, ``∂_φG`` and ``∇_θG`` (floating-point leaves of θ). The coefficients ``⟨∇_θG, J_head v_i⟩``
    are the directional derivatives of the *head problem* — the first H steps with the linear outer loss
    ``θ ↦ ⟨∇_θG, θ⟩`` — computed by FG2U's tangent kernel (`fg2u.torch._tangent`: one primal pass per
    chunk, the chunk's tangents batched; ``torch.func.jvp`` fallback).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> est = ft.Hybrid(num_directions=2, reverse_steps=3, distribution="orthogonal")  # exact head term
      >>> est(problem, phi, 0)[0].round(decimals=3)
      tensor([ 1.9960, -3.9920])
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(ĝ, Aux(L(φ)))``; ``key``: ``torch.Generator`` or int seed (ignored when K ≥ T)."""
        num_steps = check_unrolled_problem(problem, "Hybrid")
        check_meta_params(phi, "Hybrid")
        if self.reverse_steps >= num_steps:
            return value_and_grad("Hybrid", meta_objective(problem, autograd=True), phi, self.check_finite)
        _check_key(key, "Hybrid")
        directions = sample_directions(self.distribution, key, self.num_directions, phi)
        return self.with_directions(problem, phi, directions)

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit ``directions`` (pytree like φ, every leaf with a leading axis b)."""
        num_steps = check_unrolled_problem(problem, "Hybrid")
        phi_leaves, spec = check_meta_params(phi, "Hybrid")
        dir_leaves, b = check_directions(directions, phi, "Hybrid")
        if self.reverse_steps >= num_steps:
            return value_and_grad("Hybrid", meta_objective(problem, autograd=True), phi, self.check_finite)
        dir_leaves = _cast_directions(dir_leaves, phi_leaves)
        head = num_steps - self.reverse_steps

        with torch.no_grad():
            phi_const = detach(phi)
            theta_h = detach(run_steps(problem, problem.init(phi_const), phi_const, 0, head))
        leaves, state_spec = tree_flatten(theta_h)
        float_idx = [i for i, x in enumerate(leaves) if _is_float(x)]

        def tail(pair: tuple) -> torch.Tensor:
            floats, p = pair
            state = list(leaves)
            for i, x in zip(float_idx, floats):
                state[i] = x
            final = run_steps(problem, tree_unflatten(state, state_spec), p, head, num_steps)
            return _as_scalar(problem.outer_loss(final, p, problem.outer_batch), "outer_loss", p)

        (g_theta, g_phi), aux = value_and_grad("Hybrid", tail, ([leaves[i] for i in float_idx], phi))
        g_theta = [g.detach() for g in g_theta]

        if float_idx:

            def linear(state: PyTree, p: PyTree, _: Any) -> torch.Tensor:
                state_leaves = tree_flatten(state)[0]
                return sum((g * state_leaves[i]).sum() for i, g in zip(float_idx, g_theta))

            batches = problem.inner_batches
            if batches is not None:
                batches = tree_map(lambda x: x[:head] if isinstance(x, torch.Tensor) else x, batches)
            head_problem = UnrolledProblem(problem.init, problem.step, linear, num_steps=head, inner_batches=batches)
            total, _ = forward_estimate("Hybrid", head_problem, phi, dir_leaves, spec, b, self.chunk_size)
            grad = tree_map(lambda d, s, p: (d + s / b).to(p.dtype), g_phi, total, phi)
        else:  # no float leaf in θ: nothing flows through θ_H
            grad = g_phi
        if self.check_finite:
            check_finite_result("Hybrid", grad, aux.outer_loss)
        return grad, aux
