"""Reverse-mode estimators: RGU (full backprop), TRGU (truncated), RGUCheckpointed (√T rematerialisation),
RGURecursive (recursive checkpointing, O(log T) memory)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, final

import torch

from fg2u import estimators
from fg2u.estimator import Aux
from fg2u.estimators.reverse import recursive_radices
from fg2u.torch._attention import fused_attention_error
from fg2u.torch._pytree import (
    PyTree,
    check_finite_result,
    check_meta_params,
    detach,
    tree_flatten,
    tree_unflatten,
)
from fg2u.torch.unroll import _as_scalar, check_unrolled_problem, meta_objective, run_steps

__all__ = ["RGU", "TRGU", "RGUCheckpointed", "RGURecursive", "value_and_grad"]


def value_and_grad(
    who: str, objective: Callable[[PyTree], torch.Tensor], phi: PyTree, check: bool = False, problem: Any = None
) -> tuple[PyTree, Aux]:
    """``(∇objective(φ), Aux(objective(φ)))`` by ``torch.autograd.grad`` on a detached copy of φ.

    Leaves of φ the objective does not depend on get a zero gradient. The graph is freed afterwards.
    """
    leaves, spec = check_meta_params(phi, who)
    req = [p.detach().requires_grad_(True) for p in leaves]
    with torch.enable_grad():
        loss = objective(tree_unflatten(req, spec))
        if loss.requires_grad:
            try:
                grads: Sequence[torch.Tensor | None] = torch.autograd.grad(loss, req, allow_unused=True)
            except (RuntimeError, NotImplementedError) as err:  # e.g. a fused attention kernel: name the fix
                explained = fused_attention_error(who, err)
                if explained is None:
                    raise
                raise explained from err
        else:
            grads = [None] * len(req)
    grad_leaves = [torch.zeros_like(p) if g is None else g.to(p.dtype) for g, p in zip(grads, leaves)]
    grad, loss = tree_unflatten(grad_leaves, spec), loss.detach()
    if check:
        check_finite_result(who, grad, loss, phi=phi, problem=problem)
    return grad, Aux(outer_loss=loss)


@final
class RGU(estimators.RGU):
    """PyTorch kernel of [`fg2u.estimators.RGU`][fg2u.estimators.RGU] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> grad, aux = ft.RGU()(problem, phi, None)
      >>> grad.round(decimals=3)
      tensor([ 1.9960, -3.9920])
      >>> aux.outer_loss.round(decimals=3)  # L(φ) = (1 − 2⁻¹⁰)² ‖φ‖²
      tensor(4.9900)
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "RGU")
        return value_and_grad("RGU", meta_objective(problem, autograd=True), phi, self.check_finite, problem=problem)


@final
class TRGU(estimators.TRGU):
    """PyTorch kernel of [`fg2u.estimators.TRGU`][fg2u.estimators.TRGU] (same settings and defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> grad, _ = ft.TRGU(truncation=3)(problem, phi, None)  # dθ_T/dφ ≈ Σ_{j<3} 2^{−j−1} = 1 − 2⁻³
      >>> grad.round(decimals=3)  # 2 (1 − 2⁻¹⁰)(1 − 2⁻³) φ
      tensor([ 1.7480, -3.4970])
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(truncated ∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "TRGU")
        check_meta_params(phi, "TRGU")
        k = min(self.truncation, num_steps)
        if k == num_steps:
            return value_and_grad(
                "TRGU", meta_objective(problem, autograd=True), phi, self.check_finite, problem=problem
            )
        head = num_steps - k
        with torch.no_grad():
            phi_const = detach(phi)
            state = detach(run_steps(problem, problem.init(phi_const), phi_const, 0, head))

        def objective(p: PyTree) -> torch.Tensor:
            final = run_steps(problem, state, p, head, num_steps)
            return _as_scalar(problem.outer_loss(final, p, problem.outer_batch), "outer_loss", p)

        return value_and_grad("TRGU", objective, phi, self.check_finite, problem=problem)


class _Rematerialise(torch.autograd.Function):
    """``outputs = run(*inputs)`` computed without storing intermediates; the backward pass recomputes
    ``run`` with autograd enabled (same RNG state) and backpropagates through that recomputation.

    Like the reentrant ``torch.utils.checkpoint`` but differentiated with ``torch.autograd.grad`` inside
    ``backward``, so the outer call may use ``torch.autograd.grad`` too. (The non-reentrant checkpoint
    relies on saved-tensor hooks, which ``torch.func.grad`` — the inner gradient of a user's step, or of
    [`fg2u.torch.optim_transition`][fg2u.torch.optim_transition]'s inside ``torch.func`` transforms — does not support.)
    """

    @staticmethod
    def forward(ctx: Any, run: Callable, *inputs: torch.Tensor) -> Any:
        ctx.run = run
        ctx.devices = sorted({x.device.index or 0 for x in inputs if x.is_cuda})
        ctx.cpu_rng = torch.get_rng_state()
        ctx.cuda_rng = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.save_for_backward(*inputs)
        with torch.no_grad():
            outputs = run(*inputs)
        ctx.mark_non_differentiable(*[o for o in outputs if not o.is_floating_point()])
        return outputs

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        inputs = [x.detach().requires_grad_(need) for x, need in zip(ctx.saved_tensors, ctx.needs_input_grad[1:])]
        with torch.random.fork_rng(devices=ctx.devices, enabled=True):
            torch.set_rng_state(ctx.cpu_rng)
            for d, state in zip(ctx.devices, ctx.cuda_rng):
                torch.cuda.set_rng_state(state, d)
            with torch.enable_grad():
                outputs = ctx.run(*inputs)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if g is not None and o.requires_grad]
        wanted = [x for x in inputs if x.requires_grad]
        grads = iter(
            torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
            if pairs and wanted
            else [None] * len(wanted)
        )
        return (None, *[next(grads) if x.requires_grad else None for x in inputs])


def _rematerialised(state: PyTree, phi_leaves: list, phi_spec: Any, run: Callable[[PyTree, PyTree], PyTree]) -> PyTree:
    """``run(state, φ)`` rematerialised in the backward pass (`_Rematerialise`). Every tensor the segment
    depends on (the state's tensor leaves, φ's leaves) is an explicit input, so no closure hides a dependence on
    φ (``run`` must use the φ it is given); non-tensor leaves of the state pass through as constants."""
    state_leaves, state_spec = tree_flatten(state)
    is_tensor = [isinstance(x, torch.Tensor) for x in state_leaves]
    tensors = [x for x, t in zip(state_leaves, is_tensor) if t]
    n = len(tensors)
    non_tensor_out: list = []

    def rebuild(tensor_leaves: Any, others: Any) -> list:
        it_t, it_o = iter(tensor_leaves), iter(others)
        return [next(it_t) if t else next(it_o) for t in is_tensor]

    def segment(*flat: torch.Tensor) -> tuple:
        s = tree_unflatten(rebuild(flat[:n], [x for x, t in zip(state_leaves, is_tensor) if not t]), state_spec)
        q = tree_unflatten(list(flat[n:]), phi_spec)
        out = tree_flatten(run(s, q))[0]
        non_tensor_out[:] = [x for x, t in zip(out, is_tensor) if not t]
        return tuple(x for x, t in zip(out, is_tensor) if t)

    out = _Rematerialise.apply(segment, *tensors, *phi_leaves)
    return tree_unflatten(rebuild(out, list(non_tensor_out)), state_spec)


def _checkpointed_segment(
    problem: Any, state: PyTree, phi_leaves: list, phi_spec: Any, start: int, stop: int
) -> PyTree:
    """Steps ``start:stop`` rematerialised in the backward pass."""
    return _rematerialised(state, phi_leaves, phi_spec, lambda s, q: run_steps(problem, s, q, start, stop))


@final
class RGUCheckpointed(estimators.RGUCheckpointed):
    """PyTorch kernel of [`fg2u.estimators.RGUCheckpointed`][fg2u.estimators.RGUCheckpointed] (same settings and
    defaults).

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> ft.RGUCheckpointed(segment_length=3)(problem, phi, None)[0].round(decimals=3)  # exact, as RGU
      tensor([ 1.9960, -3.9920])
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "RGUCheckpointed")
        check_meta_params(phi, "RGUCheckpointed")
        seg = min(self.segment_length or math.ceil(math.sqrt(num_steps)), num_steps)

        def objective(p: PyTree) -> torch.Tensor:
            phi_leaves, phi_spec = tree_flatten(p)
            state = problem.init(p)
            for start in range(0, num_steps, seg):
                state = _checkpointed_segment(problem, state, phi_leaves, phi_spec, start, min(start + seg, num_steps))
            return _as_scalar(problem.outer_loss(state, p, problem.outer_batch), "outer_loss", p)

        return value_and_grad("RGUCheckpointed", objective, phi, self.check_finite, problem=problem)


@final
class RGURecursive(estimators.RGURecursive):
    """PyTorch kernel of [`fg2u.estimators.RGURecursive`][fg2u.estimators.RGURecursive] (same settings and defaults).

    The levels of `fg2u.estimators.reverse.recursive_radices` as nested calls of
    [`RGUCheckpointed`][fg2u.torch.RGUCheckpointed]'s autograd function (each chunk below the top rematerialised in
    backward, random ops replayed with the saved RNG state); spare slots past T are skipped.

    Examples:
      θ_{t+1} = (θ_t + φ)/2 from θ_0 = 0 gives θ_T = (1 − 2⁻ᵀ)φ; for F = ‖θ_T‖², ∇L = 2(1 − 2⁻ᵀ)²φ:

      >>> import torch
      >>> import fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2), step=lambda th, phi, _: (th + phi) / 2,
      ...                                outer_loss=lambda th, phi, _: torch.sum(th**2), num_steps=10)
      >>> phi = torch.tensor([1.0, -2.0])
      >>> ft.RGURecursive(branching=2)(problem, phi, None)[0].round(decimals=3)  # exact, as RGU
      tensor([ 1.9960, -3.9920])
    """

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "RGURecursive")
        check_meta_params(phi, "RGURecursive")
        radices = recursive_radices(num_steps, self.branching)

        def run_level(depth: int, state: PyTree, q: PyTree, start: int) -> PyTree:
            """The state after this level's chunk that starts at step ``start`` (steps ≥ T are spare: none run)."""
            if depth == len(radices) - 1:
                return run_steps(problem, state, q, start, min(start + radices[depth], num_steps))
            span = math.prod(radices[depth + 1 :])
            q_leaves, q_spec = tree_flatten(q)
            for i in range(radices[depth]):
                lo = start + i * span
                if lo >= num_steps:
                    break

                def chunk(s: PyTree, qq: PyTree, lo: int = lo) -> PyTree:
                    return run_level(depth + 1, s, qq, lo)

                state = _rematerialised(state, q_leaves, q_spec, chunk)
            return state

        def objective(p: PyTree) -> torch.Tensor:
            state = run_level(0, problem.init(p), p, 0)
            return _as_scalar(problem.outer_loss(state, p, problem.outer_batch), "outer_loss", p)

        return value_and_grad("RGURecursive", objective, phi, self.check_finite, problem=problem)
