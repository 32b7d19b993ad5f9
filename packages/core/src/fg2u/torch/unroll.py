"""The unrolled inner loop and the meta objective ``L(φ) = F(θ_T(φ), φ)`` (a plain Python loop)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.utils._pytree as _pt

from fg2u.problem import BlackBoxProblem, check_unrolled_structure
from fg2u.torch._pytree import PyTree, batch_slice, check_same_structure

__all__ = ["unroll", "meta_objective", "check_unrolled_problem", "run_steps", "last_batch"]


def check_unrolled_problem(problem: Any, who: str) -> int:
    """Validates an unrolled problem for estimator ``who`` (clear ``TypeError``/``ValueError``); returns ``T``."""
    num_steps = check_unrolled_structure(problem, who)
    batches = getattr(problem, "inner_batches", None)
    if batches is not None:
        for path, leaf in _pt.tree_flatten_with_path(batches)[0]:
            if not isinstance(leaf, torch.Tensor):
                continue
            if leaf.dim() == 0 or leaf.shape[0] != num_steps:
                raise ValueError(
                    f"inner_batches{_pt.keystr(path)} has shape {tuple(leaf.shape)}; every leaf needs a "
                    f"leading axis of length num_steps = {num_steps} (one slice per inner step)"
                )
    return num_steps


def last_batch(problem: Any) -> Any:
    """The batch of the last inner step, ``inner_batches[T-1]`` (``None`` without inner batches)."""
    return batch_slice(problem.inner_batches, problem.num_steps - 1)


def run_steps(problem: Any, state: PyTree, phi: PyTree, start: int, stop: int) -> PyTree:
    """``θ_stop`` from ``θ_start``: applies ``step(θ_t, φ, batch_t)`` for ``t = start, …, stop−1``.

    The first transition's output is checked to have the structure, shapes and dtypes of its input.
    """
    for t in range(start, stop):
        new_state = problem.step(state, phi, batch_slice(problem.inner_batches, t))
        if t == start:
            check_same_structure(new_state, state, "the state returned by step", "the state passed to step", phi=phi)
        state = new_state
    return state


def unroll(problem: Any, phi: PyTree) -> PyTree:
    """``θ_T(φ)``: ``θ_0 = init(φ)``, ``θ_{t+1} = step(θ_t, φ, batch_t)`` for ``t < T`` (a Python loop).

    Differentiable by every torch mechanism (autograd, ``torch.func.jvp``/``vmap``); memory of the
    primal loop is O(1) in T unless reverse-mode autograd records it.
    """
    num_steps = check_unrolled_problem(problem, "unroll")
    return run_steps(problem, problem.init(phi), phi, 0, num_steps)


def meta_objective(problem: Any, *, autograd: bool = False) -> Callable[[PyTree], torch.Tensor]:
    """``φ ↦ L(φ)`` (a 0-d tensor): ``outer_loss(θ_T(φ), φ, outer_batch)`` for an unrolled problem,
    ``objective(φ, data)`` for a black box (a Python/NumPy float result is converted to φ's dtype).

    By default evaluating L records no autograd graph (the unroll runs under ``torch.no_grad()``), even when
    φ or tensors the problem closes over (an ``nn.Module``'s parameters) require grad: memory stays flat in
    T, and ``float(L)`` does not warn about ``requires_grad``. The ``torch.func`` transforms still
    differentiate it: inside ``torch.func.jvp`` / ``grad`` / ``vmap`` (φ is then a functorch tensor) the
    grad mode is left as it is, and forward-mode AD ignores ``no_grad``.

    Args:
      problem: an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem] or
        [`fg2u.BlackBoxProblem`][fg2u.problem.BlackBoxProblem].
      autograd: record the reverse graph through the whole unroll, for ``L.backward()`` or
        ``torch.autograd.grad(L, …)`` (what ``RGU`` does; memory grows with T). The exact meta-gradient is
        ``fg2u.torch.RGU()(problem, phi, None)``.

    Examples:
      >>> import torch, fg2u, fg2u.torch as ft
      >>> problem = fg2u.UnrolledProblem(init=lambda phi: torch.zeros(2),
      ...     step=lambda theta, phi, batch: theta - 0.5 * (theta - phi),
      ...     outer_loss=lambda theta, phi, batch: torch.sum(theta**2), num_steps=1)
      >>> phi = torch.ones(2, requires_grad=True)
      >>> float(ft.meta_objective(problem)(phi))  # θ_1 = φ/2: L = 2 · 0.25
      0.5
      >>> ft.meta_objective(problem, autograd=True)(phi).requires_grad
      True
    """
    if isinstance(problem, BlackBoxProblem):
        return lambda phi: _as_scalar(problem.objective(phi, problem.data), "objective", phi)
    check_unrolled_problem(problem, "meta_objective")

    def objective(phi: PyTree) -> torch.Tensor:
        with contextlib.nullcontext() if autograd or _inside_transform(phi) else torch.no_grad():
            loss = problem.outer_loss(unroll(problem, phi), phi, problem.outer_batch)
        return _as_scalar(loss, "outer_loss", phi)

    return objective


def _inside_transform(phi: PyTree) -> bool:
    """Whether φ is a ``torch.func`` (functorch) tensor: the function is being transformed, grad mode stays."""
    is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if is_wrapped is None:  # a torch without this check: leave the grad mode alone (the old behaviour)
        return True
    return any(isinstance(x, torch.Tensor) and is_wrapped(x) for x in _pt.tree_leaves(phi))


def _as_scalar(value: Any, name: str, phi: PyTree) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            dtype = _pt.tree_leaves(phi)[0].dtype
            value = torch.as_tensor(float(value), dtype=dtype)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must return a scalar, got {type(value).__name__}: {value!r}") from None
    if value.numel() != 1 or value.dim() > 1:
        raise TypeError(f"{name} must return a scalar, got a tensor of shape {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must return a floating-point scalar, got dtype {value.dtype}")
    return value.reshape(())
