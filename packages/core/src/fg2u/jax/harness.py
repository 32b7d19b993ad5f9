"""One jitted meta step for [`run_meta_loop`][fg2u.experiment.loop.run_meta_loop]: gradient accumulation, the estimator's state and
an optax meta optimiser; [`compile_ahead`][fg2u.jax.harness.compile_ahead] compiles it once and reports its XLA
memory."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fg2u.checks import check_positive_int
from fg2u.experiment.records import Memory
from fg2u.experiment.runner import Prepared
from fg2u.jax.unroll import meta_objective

PyTree = Any

__all__ = ["make_meta_step", "merge_states", "compile_ahead", "temp_bytes", "enable_compilation_cache", "Driver"]


def merge_states(states: PyTree) -> PyTree:
    """The estimator state after a meta step with accumulation: ``states`` has a leading axis A (one per estimate,
    all started from the same state); floating leaves are averaged (exact for states affine in the estimate,
    e.g. a running mean), other leaves (counters) are taken from the first."""

    def merge(x: jax.Array) -> jax.Array:
        return jnp.mean(x, axis=0).astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else x[0]

    return jax.tree_util.tree_map(merge, states)


def make_meta_step(
    estimator: Any,
    make_problem: Callable[[PyTree], Any],
    optimizer: optax.GradientTransformation,
    *,
    grad_accumulation: int = 1,
    project: Callable[[PyTree], PyTree] | None = None,
) -> Callable:
    """A jitted ``(φ, opt_state, est_state, key, inputs) -> (φ, opt_state, est_state, outer_loss)``.

    ``inputs`` is a pytree whose leaves have a leading axis ``grad_accumulation`` (A): estimate ``a`` is
    ``estimator.estimate(make_problem(inputs[a]), φ, key_a, est_state)`` with its own split ``key_a`` of ``key``.
    The mean of the A estimates goes to ``optimizer``; ``project`` (e.g. a clip to the feasible set) is applied
    to φ after the update. ``outer_loss`` is the mean L(φ) before the update. Every estimate starts from the
    same ``est_state``; the returned state is [`merge_states`][fg2u.jax.harness.merge_states] of theirs. Start with
    ``est_state = estimator.init(φ)`` and ``opt_state = optimizer.init(φ)``.
    """
    check_positive_int("grad_accumulation", grad_accumulation)

    def meta_step(phi: PyTree, opt_state: Any, est_state: Any, key: Any, inputs: PyTree) -> tuple:
        def one(key_a: Any, inputs_a: PyTree) -> tuple:
            grad, aux, new_state = estimator.estimate(make_problem(inputs_a), phi, key_a, est_state)
            return grad, aux.outer_loss, new_state

        if grad_accumulation == 1:
            grad, loss, est_state_new = one(key, jax.tree_util.tree_map(lambda x: x[0], inputs))
        else:

            def body(g_acc: PyTree, xs: tuple) -> tuple:
                g, loss, new_state = one(*xs)
                return jax.tree_util.tree_map(jnp.add, g_acc, g), (loss, new_state)

            zeros = jax.tree_util.tree_map(jnp.zeros_like, phi)
            scanned: tuple[PyTree, tuple[Any, Any]] = jax.lax.scan(
                body, zeros, (jax.random.split(key, grad_accumulation), inputs)
            )
            g_sum, (losses, states) = scanned
            grad = jax.tree_util.tree_map(lambda g: g / grad_accumulation, g_sum)
            loss = jnp.mean(losses)
            est_state_new = merge_states(states)
        updates, opt_state = optimizer.update(grad, opt_state, phi)
        phi = optax.apply_updates(phi, updates)
        if project is not None:
            phi = project(phi)
        return phi, opt_state, est_state_new, loss

    return jax.jit(meta_step)


def enable_compilation_cache(env_var: str, default_folder: str) -> str | None:
    """Turns on JAX's persistent compilation cache, so that later runs of the same shapes (other seeds, later
    invocations) skip XLA compilation, which dominates short runs on a CPU. The folder is ``$env_var`` or
    ``default_folder``; ``env_var=off`` (or ``0``, ``none``, empty) disables it. A cache already configured is
    kept. Returns the folder, or ``None`` when disabled."""
    folder = os.environ.get(env_var, default_folder)
    if folder.lower() in ("off", "0", "none", ""):
        return None
    if getattr(jax.config, "jax_compilation_cache_dir", None) is None:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return folder


def temp_bytes(compiled: Any) -> int | None:
    """The scratch memory XLA allocates for one call of ``compiled`` (a ``jax.stages.Compiled``), in bytes:
    ``memory_analysis().temp_size_in_bytes``. Deterministic for given shapes (unlike a process's RSS) and it
    excludes the arguments and outputs. None where the backend reports no analysis."""
    try:
        analysis = compiled.memory_analysis()
        return None if analysis is None else int(analysis.temp_size_in_bytes)
    except (AttributeError, NotImplementedError, RuntimeError):
        return None


def compile_ahead(fn: Callable, *args: Any) -> tuple[Callable, int | None, float]:
    """Compiles ``fn`` (a ``jax.jit``-ed function) for the shapes and dtypes of ``args`` now.

    Returns ``(compiled, temp_bytes, compile_seconds)``: ``compiled`` takes arguments of the same shapes
    (another shape raises a ``TypeError`` instead of recompiling), ``temp_bytes`` is
    [`temp_bytes`][fg2u.jax.harness.temp_bytes]'s measure of one call. With JAX's persistent compilation cache on, a
    second process gets the executable from the cache.
    """
    if not hasattr(fn, "lower"):
        raise TypeError(f"compile_ahead needs a jax.jit-ed function (with .lower), got {type(fn).__name__}")
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, temp_bytes(compiled), time.perf_counter() - t0


class Driver:
    """The JAX side of [`fg2u.experiment.runner`][fg2u.experiment.runner]: one meta step per (estimator, trial),
    compiled ahead of the loop on the trial's example inputs; its memory is XLA's scratch memory of one call
    (``xla_temp_bytes``, deterministic)."""

    def prepare(self, estimator: Any, trial: Any) -> Any:
        """A [`fg2u.experiment.runner.Prepared`][fg2u.experiment.runner.Prepared] loop for ``estimator`` on
        ``trial``."""

        optimizer = trial.meta_optimizer()
        step_fn = make_meta_step(
            estimator,
            trial.make_problem,
            optimizer,
            grad_accumulation=trial.grad_accumulation,
            **trial.meta_step_options(),
        )
        phi = trial.initial_phi()
        carry = (phi, optimizer.init(phi), estimator.init(phi))
        example_key, example_inputs = trial.example_inputs()
        compiled, temp, compile_s = compile_ahead(step_fn, *carry, example_key, example_inputs)

        def step(carry: tuple, i: int) -> tuple:
            key, inputs = trial.next_inputs(i)
            phi, opt_state, est_state, loss = compiled(*carry, key, inputs)
            return (phi, opt_state, est_state), loss

        memory = None if temp is None else Memory("xla_temp_bytes", int(temp))
        prepared = Prepared(step, carry, lambda c: c[0], memory, compile_s, block=jax.block_until_ready)
        forward = self.forward_unroll_bytes(trial, phi, example_inputs)
        if forward is not None:
            prepared.details["forward_unroll_bytes"] = forward
        return prepared

    @staticmethod
    def forward_unroll_bytes(trial: Any, phi: Any, inputs: Any) -> int | None:
        """XLA's scratch memory of L(φ) alone (the forward unroll of one estimate, no meta-gradient): the
        yardstick of memory budgets such as "at most 2× a plain unroll"."""

        def loss(phi: Any, inputs: Any) -> Any:
            return meta_objective(trial.make_problem(jax.tree_util.tree_map(lambda x: x[0], inputs)))(phi)

        return temp_bytes(jax.jit(loss).lower(phi, inputs).compile())

    def estimates_fn(self, estimator: Any, reference: Any, trial: Any) -> Callable:
        """A compiled ``(φ, key, inputs, reference_inputs) -> (ĝ, g)``: ``estimator``'s meta-gradient on the
        problem of the first estimate of ``inputs`` (leading axis A) and ``reference``'s on that of
        ``reference_inputs`` — the same draw in the form of the problem each can use (``trial.next_inputs``
        after ``trial.use_estimator``: a black box for a zeroth-order estimator, the unrolled solver for the
        exact reference) —, both with ``key``, as flat float64 NumPy vectors. The problems are built inside the
        trace, so new inputs do not recompile."""

        def problem_for(est: Any, inputs: Any) -> Any:
            trial.use_estimator(est)
            return trial.make_problem(jax.tree_util.tree_map(lambda x: x[0], inputs))

        @jax.jit
        def both(phi: Any, key: Any, inputs: Any, reference_inputs: Any) -> tuple:
            estimate = estimator(problem_for(estimator, inputs), phi, key)[0]
            exact = reference(problem_for(reference, reference_inputs), phi, key)[0]
            return estimate, exact

        def flat(tree: Any) -> np.ndarray:
            return np.concatenate([np.asarray(leaf, np.float64).ravel() for leaf in jax.tree_util.tree_leaves(tree)])

        def call(phi: Any, key: Any, inputs: Any, reference_inputs: Any) -> tuple:
            estimate, exact = both(phi, key, inputs, reference_inputs)
            return flat(estimate), flat(exact)

        return call
