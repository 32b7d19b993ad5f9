"""Optax inner optimisers as transitions Φ of an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem].

**Adam and the zero-gradient trap.** ``optax.adam`` (default ``eps_root=0``) divides by ``√v̂ + eps``; at a
parameter whose gradient is exactly zero (e.g. an always-blank pixel's weight) ``v = 0`` and the derivative
of ``√v`` is infinite, so *every* meta-gradient (FG²U, RGU, …) becomes NaN although the inner loop itself
runs fine. ``optax.adam(lr, eps_root=1e-8)`` differentiates ``√(v̂ + eps_root)`` instead and is safe.
[`optax_transition`][fg2u.jax.inner.optax_transition] probes the optimiser once and warns
([`UnsafeOptimizerWarning`][fg2u.jax.inner.UnsafeOptimizerWarning]) or, with ``on_unsafe="raise"``, raises when its
derivative at a zero gradient is not finite.

**Fixed inner data.** ``inner_loss(params, φ, batch)`` receives the t-th slice of
``UnrolledProblem.inner_batches``. To train on one full training set at every step, either

* close over it: ``inner_loss = lambda p, phi, _: loss(p, phi, x_train, y_train)`` with
  ``inner_batches=None`` (the arrays become jit constants: simplest, recompiles for new data), or
* build the problem inside the jitted function so the data are traced arguments (no constant folding, no
  recompilation for new data of the same shape, no T copies)::

      @jax.jit
      def meta_grad(phi, key, x_train, y_train):
          init, step = optax_transition(lambda p, ph, _: loss(p, ph, x_train, y_train), opt, params0)
          return FG2U(8)(UnrolledProblem(init, step, outer_loss, T), phi, key)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fg2u.checks import check_callable

PyTree = Any

__all__ = ["InnerState", "UnsafeOptimizerWarning", "optax_transition", "zero_gradient_derivative_is_finite"]


class UnsafeOptimizerWarning(UserWarning):
    """The optimiser's update is not differentiable at a zero gradient (``optax.adam`` with ``eps_root=0``)."""


def zero_gradient_derivative_is_finite(optimizer: optax.GradientTransformation) -> bool | None:
    """Whether ``d update / d grad`` of ``optimizer`` is finite at an exactly zero gradient.

    Probes one ``jax.jvp`` of the first update on a small float32 parameter. ``None`` when the probe does not
    apply (an optimiser that needs a particular parameter structure, or extra arguments).
    """
    try:
        with jax.ensure_compile_time_eval():  # concrete even when called while tracing a jitted function
            return _probe(optimizer)
    except Exception:  # noqa: BLE001 - a structure-specific optimiser: the probe does not apply
        return None


def _probe(optimizer: optax.GradientTransformation) -> bool:
    params = jnp.ones((2,), jnp.float32)
    state = optimizer.init(params)

    def update(g: jax.Array) -> Any:
        return optimizer.update(g, state, params)[0]

    _, tangent = jax.jvp(update, (jnp.zeros_like(params),), (jnp.ones_like(params),))
    return bool(jnp.all(jnp.isfinite(tangent)))


_UNSAFE = (
    "the optax optimiser's update has a non-finite derivative at a zero gradient (optax.adam / adamw / "
    "rmsprop with eps_root=0 differentiate √v at v = 0): any inner parameter whose gradient is exactly zero "
    "makes every meta-gradient NaN. Use e.g. optax.adam(lr, eps_root=1e-8)"
)


class InnerState(NamedTuple):
    """Inner state θ = (model parameters, optax optimiser state); a pytree."""

    params: PyTree
    opt_state: PyTree


def optax_transition(
    inner_loss: Callable[[PyTree, PyTree, Any], Any],
    optimizer: optax.GradientTransformation,
    init_params: PyTree | Callable[[PyTree], PyTree],
    *,
    on_unsafe: str = "warn",
) -> tuple[Callable[[PyTree], InnerState], Callable[[InnerState, PyTree, Any], InnerState]]:
    """``(init, step)`` for ``UnrolledProblem`` from an inner loss and an optax optimiser.

    * ``init(φ) -> InnerState(params_0, optimizer.init(params_0))`` with ``params_0 = init_params(φ)`` when
      ``init_params`` is callable, else the pytree ``init_params`` itself.
    * ``step(state, φ, batch)``: one optax update of ``inner_loss(params, φ, batch)``:
      ``u, s' = optimizer.update(∇_params ℓ, s, params)``, ``params' = params + u``.

    Every step is differentiable in φ (forward and reverse mode) for optax.sgd (with or without momentum)
    and the other smooth optax transformations; Adam-type optimisers only with ``eps_root > 0``
    (``optax.adam(lr, eps_root=1e-8)``; see the module docstring): ``on_unsafe`` says what to do when a
    probe finds the update's derivative at a zero gradient non-finite — ``"warn"`` (default, an
    [`UnsafeOptimizerWarning`][fg2u.jax.inner.UnsafeOptimizerWarning]), ``"raise"`` (``ValueError``) or ``"ignore"``.

    The inner data: ``batch`` is ``inner_batches[t]``; for a fixed full training set used at every step close
    over it in ``inner_loss`` (see the module docstring).
    """
    check_callable("inner_loss", inner_loss)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    if on_unsafe not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_unsafe must be 'warn', 'raise' or 'ignore', got {on_unsafe!r}")
    if on_unsafe != "ignore" and zero_gradient_derivative_is_finite(optimizer) is False:
        if on_unsafe == "raise":
            raise ValueError(_UNSAFE + ".")
        warnings.warn(_UNSAFE + " (or pass on_unsafe='ignore').", UnsafeOptimizerWarning, stacklevel=2)
    grad_fn = jax.grad(inner_loss)

    def init(phi: PyTree) -> InnerState:
        params = init_params(phi) if callable(init_params) else init_params
        return InnerState(params, optimizer.init(params))

    def step(state: InnerState, phi: PyTree, batch: Any) -> InnerState:
        grads = grad_fn(state.params, phi, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return InnerState(optax.apply_updates(state.params, updates), opt_state)

    return init, step
