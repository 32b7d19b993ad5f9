"""Reverse-mode estimators: RGU (full backprop), TRGU (truncated), RGUCheckpointed (√T rematerialisation)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
from jax import lax

from fg2u._checks import check_positive_int
from fg2u.estimator import Aux

from ._finite import check_finite
from ._pytree import cast_like, check_float_tree
from .unroll import batch_slice, check_unrolled_problem, meta_objective, unroll_steps

PyTree = Any

__all__ = ["RGU", "TRGU", "RGUCheckpointed"]


def _value_and_grad(who: str, objective: Any, phi: PyTree, check: bool) -> tuple[PyTree, Aux]:
    loss, grad = jax.value_and_grad(objective)(phi)
    grad = cast_like(grad, phi)
    if check:
        check_finite(who, grad, loss)
    return grad, Aux(outer_loss=loss)


@dataclasses.dataclass(frozen=True)
class RGU:
    """Exact ``∇L(φ)`` by reverse mode through the ``lax.scan`` unroll (stores all T inner states: memory ∝ T)."""

    check_finite: bool = False

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        check_unrolled_problem(problem, "RGU")
        check_float_tree(phi)
        return _value_and_grad("RGU", meta_objective(problem), phi, self.check_finite)


@dataclasses.dataclass(frozen=True)
class TRGU:
    """Truncated reverse mode: backprop through the last ``K = truncation`` inner steps only.

    ``θ_{T−K}`` is computed normally and then treated as a constant (``lax.stop_gradient``); the direct
    dependence of the last K steps and of F on φ is kept. Hence ``dθ_T/dφ ≈ Σ_{t ≥ T−K} (Π ∂Φ/∂θ) ∂Φ_t/∂φ``.
    ``K ≥ T`` is exactly RGU (including the dependence of ``init`` on φ). Memory ∝ K.
    """

    truncation: int
    check_finite: bool = False

    def __post_init__(self) -> None:
        check_positive_int("truncation (K, the number of differentiated steps)", self.truncation)

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(truncated ∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "TRGU")
        check_float_tree(phi)
        k = min(self.truncation, num_steps)
        if k == num_steps:
            return _value_and_grad("TRGU", meta_objective(problem), phi, self.check_finite)
        head = num_steps - k

        def objective(p: PyTree) -> jax.Array:
            state = unroll_steps(problem.step, problem.init(p), p, batch_slice(problem.inner_batches, 0, head), head)
            state = lax.stop_gradient(state)
            state = unroll_steps(problem.step, state, p, batch_slice(problem.inner_batches, head, num_steps), k)
            return problem.outer_loss(state, p, problem.outer_batch)

        return _value_and_grad("TRGU", objective, phi, self.check_finite)


@dataclasses.dataclass(frozen=True)
class RGUCheckpointed:
    """Exact ``∇L(φ)`` by reverse mode with rematerialisation (``jax.checkpoint`` on segments).

    The unroll is a scan over ``⌊T/S⌋`` segments of ``S = segment_length`` steps (default ``⌈√T⌉``), each
    segment a checkpointed inner scan, plus one checkpointed remainder segment of ``T mod S`` steps. Only
    segment boundaries are stored in the forward pass; the backward pass recomputes one segment at a time.
    Memory ∝ ``T/S + S`` (∝ √T by default) at the price of about one extra forward unroll.
    """

    segment_length: int | None = None
    check_finite: bool = False

    def __post_init__(self) -> None:
        if self.segment_length is not None:
            check_positive_int("segment_length", self.segment_length)

    def __call__(self, problem: Any, phi: PyTree, key: Any = None) -> tuple[PyTree, Aux]:
        """``(∇L(φ), Aux(L(φ)))``; ``key`` is ignored."""
        num_steps = check_unrolled_problem(problem, "RGUCheckpointed")
        check_float_tree(phi)
        seg = min(self.segment_length or math.ceil(math.sqrt(num_steps)), num_steps)
        num_segments, rest = divmod(num_steps, seg)
        batches = problem.inner_batches
        step = problem.step

        def run(length: int) -> Any:
            return jax.checkpoint(lambda s, p, bt: unroll_steps(step, s, p, bt, length))

        def objective(p: PyTree) -> jax.Array:
            main = batch_slice(batches, 0, num_segments * seg)
            if main is not None:
                main = jax.tree_util.tree_map(lambda x: x.reshape((num_segments, seg) + x.shape[1:]), main)
            segment = run(seg)
            state, _ = lax.scan(lambda s, bt: (segment(s, p, bt), None), problem.init(p), main, length=num_segments)
            if rest:
                state = run(rest)(state, p, batch_slice(batches, num_segments * seg, num_steps))
            return problem.outer_loss(state, p, problem.outer_batch)

        return _value_and_grad("RGUCheckpointed", objective, phi, self.check_finite)
