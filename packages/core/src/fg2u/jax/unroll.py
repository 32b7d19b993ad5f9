"""The inner loop as a ``lax.scan`` and the meta objective ``L(φ) = F(θ_T(φ), φ)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fg2u.problem import BlackBoxProblem, check_unrolled_structure

from ._pytree import check_same_structure

PyTree = Any

__all__ = [
    "unroll",
    "unroll_steps",
    "checked_step",
    "meta_objective",
    "batch_slice",
    "last_batch",
    "check_unrolled_problem",
]


def check_unrolled_problem(problem: Any, who: str) -> int:
    """Validates an unrolled problem for estimator ``who``; returns ``T``."""
    num_steps = check_unrolled_structure(problem, who)
    batches = getattr(problem, "inner_batches", None)
    if batches is not None:
        for path, leaf in jax.tree_util.tree_flatten_with_path(batches)[0]:
            shape = jnp.shape(leaf)
            if len(shape) == 0 or shape[0] != num_steps:
                raise ValueError(
                    f"inner_batches{jax.tree_util.keystr(path)} has shape {tuple(shape)}; every leaf needs a "
                    f"leading axis of length num_steps = {num_steps} (one slice per inner step)"
                )
    return num_steps


def batch_slice(batches: Any, start: int, stop: int) -> Any:
    """Steps ``start:stop`` of ``inner_batches`` (``None`` stays ``None``)."""
    if batches is None:
        return None
    return jax.tree_util.tree_map(lambda x: x[start:stop], batches)


def last_batch(problem: Any) -> Any:
    """The batch of the last inner step, ``inner_batches[T-1]`` (``None`` without inner batches)."""
    if problem.inner_batches is None:
        return None
    return jax.tree_util.tree_map(lambda x: x[-1], problem.inner_batches)


def checked_step(step: Callable) -> Callable:
    """``step`` that checks its output has the structure, shapes and dtypes of its input state."""

    def body(state: PyTree, phi: PyTree, batch: Any) -> PyTree:
        new_state = step(state, phi, batch)
        check_same_structure(new_state, state, "the state returned by step", "the state passed to step", phi=phi)
        return new_state

    return body


def unroll_steps(step: Callable, state: PyTree, phi: PyTree, batches: Any, length: int) -> PyTree:
    """``length`` applications of ``step`` from ``state`` as one ``lax.scan`` (``batches``: leading axis ``length``)."""
    body = checked_step(step)

    def scan_body(carry: PyTree, batch: Any) -> tuple[PyTree, None]:
        return body(carry, phi, batch), None

    if length == 0:
        return state
    final, _ = lax.scan(scan_body, state, batches, length=length)
    return final


def unroll(problem: Any, phi: PyTree) -> PyTree:
    """``θ_T``: ``θ_0 = init(φ)``, ``θ_{t+1} = step(θ_t, φ, inner_batches[t])`` for ``t < T``, via ``lax.scan``.

    Only the carry is kept, so the memory of a plain (or forward-differentiated) unroll does not grow with T.
    """
    num_steps = check_unrolled_problem(problem, "unroll")
    return unroll_steps(problem.step, problem.init(phi), phi, problem.inner_batches, num_steps)


def meta_objective(problem: Any) -> Callable[[PyTree], jax.Array]:
    """``φ ↦ L(φ)``: ``F(θ_T(φ), φ, outer_batch)`` for an unrolled problem, ``objective(φ, data)`` for a black box."""
    if isinstance(problem, BlackBoxProblem):
        return lambda phi: _scalar(_call_black_box(problem, phi), "objective")
    check_unrolled_problem(problem, "meta_objective")

    def objective(phi: PyTree) -> jax.Array:
        return _scalar(problem.outer_loss(unroll(problem, phi), phi, problem.outer_batch), "outer_loss")

    return objective


BLACK_BOX_RECIPE = """\
Wrap the non-JAX solver in jax.pure_callback so JAX calls it on concrete NumPy values:

    import numpy as np, jax, jax.numpy as jnp

    def host_loss(phi, data):                   # NumPy / SciPy code, e.g. scipy.integrate.solve_ivp
        return np.float32(my_solver_loss(np.asarray(phi), data))

    def objective(phi, data):
        out = jax.ShapeDtypeStruct((), jnp.float32)
        return jax.pure_callback(host_loss, out, phi, data, vmap_method="sequential")

    problem = fg2u.BlackBoxProblem(objective, data)   # then fg2u.jax.FG2U_ZO(...)(problem, phi, key)

(FG2U_ZO only evaluates L, never differentiates it, so the callback needs no derivative.)
See examples/blackbox_ode_zo.py and the "black-box solver" recipe in the docs."""


def _call_black_box(problem: BlackBoxProblem, phi: PyTree) -> Any:
    try:
        return problem.objective(phi, problem.data)
    except (
        jax.errors.TracerArrayConversionError,
        jax.errors.TracerIntegerConversionError,
        jax.errors.ConcretizationTypeError,
    ) as exc:
        raise TypeError(
            f"BlackBoxProblem.objective converted a traced JAX value to NumPy / Python ({type(exc).__name__}). "
            "The estimators trace the objective (jit, vmap over directions), so a NumPy/SciPy solver cannot "
            "see concrete values.\n" + BLACK_BOX_RECIPE
        ) from exc


def _scalar(value: Any, name: str) -> jax.Array:
    value = jnp.asarray(value)
    if value.shape != ():
        raise TypeError(f"{name} must return a scalar, got an array of shape {value.shape}")
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{name} must return a floating-point scalar, got dtype {value.dtype}")
    return value
