"""Optax inner optimisers as transitions Φ of an :class:`fg2u.UnrolledProblem`."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import optax

from fg2u._checks import check_callable

PyTree = Any

__all__ = ["InnerState", "optax_transition"]


class InnerState(NamedTuple):
    """Inner state θ = (model parameters, optax optimiser state); a pytree."""

    params: PyTree
    opt_state: PyTree


def optax_transition(
    inner_loss: Callable[[PyTree, PyTree, Any], Any],
    optimizer: optax.GradientTransformation,
    init_params: PyTree | Callable[[PyTree], PyTree],
) -> tuple[Callable[[PyTree], InnerState], Callable[[InnerState, PyTree, Any], InnerState]]:
    """``(init, step)`` for ``UnrolledProblem`` from an inner loss and an optax optimiser.

    * ``init(φ) -> InnerState(params_0, optimizer.init(params_0))`` with ``params_0 = init_params(φ)`` when
      ``init_params`` is callable, else the pytree ``init_params`` itself.
    * ``step(state, φ, batch)``: one optax update of ``inner_loss(params, φ, batch)``:
      ``u, s' = optimizer.update(∇_params ℓ, s, params)``, ``params' = params + u``.

    Every step is differentiable in φ (forward and reverse mode) for optax.sgd (with or without momentum),
    adam and the other smooth optax transformations.
    """
    check_callable("inner_loss", inner_loss)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    grad_fn = jax.grad(inner_loss)

    def init(phi: PyTree) -> InnerState:
        params = init_params(phi) if callable(init_params) else init_params
        return InnerState(params, optimizer.init(params))

    def step(state: InnerState, phi: PyTree, batch: Any) -> InnerState:
        grads = grad_fn(state.params, phi, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return InnerState(optax.apply_updates(state.params, updates), opt_state)

    return init, step
