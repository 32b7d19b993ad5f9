"""Estimators built from estimators, written once over the backend's [`TreeOps`][fg2u.estimators.TreeOps].

* [`TwoPhase`][fg2u.estimators.TwoPhase] — one estimator for the first meta steps, another afterwards (state: the step
  counter).
* [`Scaled`][fg2u.estimators.Scaled] — an estimator's estimate times a constant (e.g. to put an implicit estimate in
  units of the meta-gradient).
* [`ControlVariate`][fg2u.estimators.ControlVariate] — FG²U with a cheap surrogate ``c`` (Hessian-free, TRGU) as control
  variate: ``ĝ = s·c + (1/b) Σ v vᵀ (g − s·c)``, unbiased.
* [`RunningControlVariate`][fg2u.estimators.RunningControlVariate] — the same with ``c`` the running mean of the
  previous meta steps' estimates: no extra computation, state across meta steps.

A backend class of a combinator only sets ``ops``; the combinators are callable like any estimator and expose
``init`` / ``estimate`` for their state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from fg2u.checks import check_callable, check_nonnegative_int
from fg2u.estimator import Aux
from fg2u.estimators.base import Estimator
from fg2u.estimators.forward import RandomDirections
from fg2u.estimators.registry import estimator_field, register

PyTree = Any

__all__ = ["TwoPhase", "TwoPhaseState", "Scaled", "ControlVariate", "RunningControlVariate", "RunningMeanState"]


def _check_estimator(name: str, value: Any) -> None:
    check_callable(name, value)
    for method in ("init", "estimate"):
        if not callable(getattr(value, method, None)):
            raise TypeError(
                f"{name} must be an estimator with init/estimate (e.g. fg2u.jax.RGU()), got {type(value).__name__}"
            )


class TwoPhaseState(NamedTuple):
    """State of [`TwoPhase`][fg2u.estimators.TwoPhase].

    Attributes:
      meta_step: the number of [`TwoPhase.estimate`][fg2u.estimators.TwoPhase.estimate] calls so far (an ``int32`` array
        in JAX, an int in torch).
      first: the state of ``first`` (``None`` for a stateless estimator).
      second: the state of ``second``.
    """

    meta_step: Any
    first: Any
    second: Any


class RunningMeanState(NamedTuple):
    """State of [`RunningControlVariate`][fg2u.estimators.RunningControlVariate].

    Attributes:
      mean: ``m``, the running mean of the previous estimates (a pytree like φ; zeros before the first).
      count: the number of estimates averaged into ``mean``.
    """

    mean: PyTree
    count: Any


@register("two_phase")
@dataclasses.dataclass(frozen=True)
class TwoPhase(Estimator):
    """``first`` for the first ``switch_step`` meta steps, then ``second`` (the paper's two-phase paradigm: a
    cheap Hessian-free or truncated estimator for warm-up, then FG²U).

    State: [`TwoPhaseState`][fg2u.estimators.TwoPhaseState] ``(meta_step, first, second)``; ``meta_step`` counts the
      calls of
    `estimate` (one per meta step) and may be traced (inside ``jax.jit`` both estimators are compiled and one runs;
    their outputs must have the same shapes and dtypes, which holds for the estimators of one backend on
    the same problem). Called without state it is ``first``.

    References:
      Shen, Q., Wang, Y., Yang, Z., et al. (2024). Memory-Efficient Gradient Unrolling for Large-Scale Bi-level
      Optimization (the two-phase paradigm). NeurIPS 2024. https://arxiv.org/abs/2406.14095
    """

    first: Any = estimator_field()
    second: Any = estimator_field()
    switch_step: int = 0
    stateful = True
    example = "first=HessianFree(), second=FG2U(num_directions=8), switch_step=100"

    @property
    def bias(self) -> str:
        """``"unbiased"`` when both phases are (exact or unbiased), else ``"biased"``."""
        return "unbiased" if {self.first.bias, self.second.bias} <= {"exact", "unbiased"} else "biased"

    def __post_init__(self) -> None:
        _check_estimator("first", self.first)
        _check_estimator("second", self.second)
        check_nonnegative_int("switch_step", self.switch_step)

    def init(self, phi: PyTree) -> TwoPhaseState:
        return TwoPhaseState(self.ops.counter(0), self.first.init(phi), self.second.init(phi))

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]:
        step, first_state, second_state = state

        def run_first() -> tuple:
            grad, aux, new_first = self.first.estimate(problem, phi, key, first_state)
            return grad, aux, new_first, second_state

        def run_second() -> tuple:
            grad, aux, new_second = self.second.estimate(problem, phi, key, second_state)
            return grad, aux, first_state, new_second

        grad, aux, first_state, second_state = self.ops.cond(step < self.switch_step, run_first, run_second)
        return grad, aux, TwoPhaseState(step + 1, first_state, second_state)


@register("scaled")
@dataclasses.dataclass(frozen=True)
class Scaled(Estimator):
    """``scale · estimator``: e.g. an implicit estimate linearised at a step with learning rate η, rescaled by
    1/η so that every estimator reports meta-gradients in the same units. Records name it like ``estimator``
    with ``scale`` among the settings. The state is ``estimator``'s.
    """

    estimator: Any = estimator_field()
    scale: float = 1.0
    example = "RGU(), scale=0.5"

    @property
    def bias(self) -> str:
        """The wrapped estimator's when ``scale == 1``; otherwise ``"biased"`` (the direction, and so the cosine,
        is the wrapped one's)."""
        return self.estimator.bias if self.scale == 1 else "biased"

    def __post_init__(self) -> None:
        _check_estimator("estimator", self.estimator)
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a finite number, got {self.scale!r}")

    @property
    def display_name(self) -> str:
        return self.estimator.display_name

    @property
    def stateful(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.estimator, "stateful", False))

    def settings(self) -> dict[str, Any]:
        return {**self.estimator.settings(), "scale": self.scale}

    def init(self, phi: PyTree) -> Any:
        return self.estimator.init(phi)

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]:
        grad, aux, state = self.estimator.estimate(problem, phi, key, state)
        return self.ops.scale(grad, self.scale), aux, state


def _controlled(
    ops: Any, estimator: Any, problem: Any, phi: PyTree, key: Any, control: PyTree, scale: float | None
) -> tuple[PyTree, Aux]:
    """``s·c + (1/b) Σ_i v_i v_iᵀ (g − s·c)`` from ``estimator``'s b directions, ``c = control``.

    With a fixed ``scale`` s it is one call of ``estimator.with_directions``. With ``scale=None`` the directions
    are split into halves A and B; half A uses ``s_B = ⟨ĝ_B, c⟩/‖c‖²`` estimated from half B's plain estimate
    and vice versa (cross-fitting), so each half's scale is independent of its own directions and the mean of
    the two halves stays unbiased: ``E[ĝ_A | B] = s_B c + g − s_B c = g``.
    """
    b = estimator.num_directions
    directions = ops.sample_directions(estimator.distribution, key, b, phi)
    if scale is not None:
        grad, aux = estimator.with_directions(problem, phi, directions)
        correction = ops.sub(control, ops.project(directions, control))
        return ops.add(grad, ops.scale(correction, scale)), aux
    half = b // 2
    first, second = ops.take(directions, 0, half), ops.take(directions, half, b)
    grad_a, aux = estimator.with_directions(problem, phi, first)
    grad_b, _ = estimator.with_directions(problem, phi, second)
    norm2 = ops.vdot(control, control)
    safe = ops.where(norm2 > 0, norm2, 1.0)
    s_b = ops.where(norm2 > 0, ops.vdot(grad_b, control) / safe, 0.0)
    s_a = ops.where(norm2 > 0, ops.vdot(grad_a, control) / safe, 0.0)
    fixed_a = ops.add(grad_a, ops.scale(ops.sub(control, ops.project(first, control)), s_b))
    fixed_b = ops.add(grad_b, ops.scale(ops.sub(control, ops.project(second, control)), s_a))
    weight_a = half / b
    return ops.add(ops.scale(fixed_a, weight_a), ops.scale(fixed_b, 1.0 - weight_a)), aux


def _check_random(name: str, value: Any, scale: float | None) -> None:
    _check_estimator(name, value)
    if not isinstance(value, RandomDirections):
        raise TypeError(
            f"{name} must be FG2U or FG2U_ZO (an estimator over random directions), got {type(value).__name__}"
        )
    if scale is None and value.num_directions < 2:
        raise ValueError(
            f"{name}.num_directions must be >= 2 when scale=None (the scale is cross-fitted on two halves of the "
            f"directions); got {value.num_directions}. Use more directions or a fixed scale"
        )
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale)
    ):
        raise TypeError(f"scale must be None (cross-fitted) or a finite number, got {scale!r}")


@register("control_variate")
@dataclasses.dataclass(frozen=True)
class ControlVariate(Estimator):
    """FG²U with a surrogate meta-gradient ``c`` as control variate (unbiased):

        ĝ = s·c + (1/b) Σ_i v_i v_iᵀ (g − s·c)       (the directional derivatives g·v_i by forward mode)

    ``E[ĝ] = s·c + (g − s·c) = g`` for any ``c`` and ``s`` independent of the directions. Its error is that of
    FG²U applied to the residual ``g − s·c``: ``E‖ĝ − g‖² = (N − 1)/b · ‖g − s·c‖²`` (Rademacher), so it wins when
    the surrogate is well aligned with ``g``: with ``s`` optimal, by the factor ``1 − cos²(g, c)``.

    Args:
      estimator: the FG2U / FG2U_ZO estimator (its b directions).
      surrogate: a cheap deterministic estimator computed on the same problem (e.g. ``Scaled(HessianFree())`` or
        ``TRGU(K)``); it costs one surrogate evaluation per estimate.
      scale: ``s``; ``None`` cross-fits it on two halves of the directions (see `_controlled`) so that it
        is not estimated from the directions it multiplies.
    Memory: FG²U's plus the surrogate's. The surrogate's own bias does not reach ``ĝ``. State: the surrogate's
    (none of its own).
    """

    estimator: Any = estimator_field()
    surrogate: Any = estimator_field()
    scale: float | None = None
    example = "FG2U(num_directions=8), surrogate=HessianFree()"

    @property
    def bias(self) -> str:
        return "unbiased"

    def __post_init__(self) -> None:
        _check_random("estimator", self.estimator, self.scale)
        _check_estimator("surrogate", self.surrogate)

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]:
        surrogate_key, direction_key = self.ops.split_key(key, 2)
        control, _, state = self.surrogate.estimate(problem, phi, surrogate_key, state)
        grad, aux = _controlled(self.ops, self.estimator, problem, phi, direction_key, control, self.scale)
        return grad, aux, state

    def init(self, phi: PyTree) -> Any:
        return self.surrogate.init(phi)


@register("running_control_variate")
@dataclasses.dataclass(frozen=True)
class RunningControlVariate(Estimator):
    """FG²U whose control variate is the running mean of its own previous estimates (no extra computation):

        c_k = m_k,   m_{k+1} = β m_k + (1 − β) ĝ_k,   m_0 = 0,     ĝ_k = s·c_k + (1/b) Σ v vᵀ (g_k − s·c_k).

    ``c_k`` depends only on earlier meta steps' directions, so ``E[ĝ_k | past] = g_k``: unbiased. Its error is
    ``r · ‖g_k − s·c_k‖²`` with ``r = (N − 1)/b`` (plain FG²U: ``r · ‖g_k‖²``), so it helps only when the running
    mean is closer to ``g_k`` than 0 is.

    **Stability and when it pays.** The mean is fed by the estimates, whose error is r times that of ``c``. With
    memory ``L = 1/(1 − β)`` and ``d² = E‖g_k − ḡ‖²`` the spread of the meta-gradients around their mean
    (fresh inner initialisations, moving φ), the stationary error of ``c`` is about ``d² L/(L − r)`` for
    ``L > r`` (it diverges for ``L ≤ r``), so ``E‖ĝ − g‖² ≈ r d² L/(L − r)``: a gain over plain FG²U needs
    ``d² ≪ ‖g‖²`` and ``L ≫ r`` (memory much longer than N/b meta steps). ``decay=None`` takes ``L = 4(1 + r)``
    (``β = 1 − 1/(4(1 + r))``); ``m`` starts at 0 without bias correction, so early control variates are shrunk
    towards 0 (plain FG²U) rather than amplified. Measured on an image-distillation benchmark (N = 640, b = 16,
    fresh networks every step: meta-gradients of different networks have cosine ≈ 0.4, so d² ≈ 0.6‖g‖²), a short
    memory diverged (β = 0.9: 12 % test accuracy against 54 % for plain FG²U); this is a problem where it cannot
    pay. The cross-fitted scale (``scale=None``) shrinks a poorly aligned ``c`` towards 0 but its own noise adds
    about ``4/b`` of plain FG²U's error, so it pays only for b ≳ 16.

    State: [`RunningMeanState`][fg2u.estimators.RunningMeanState] ``(mean, count)``: ``m`` (like φ) and the number of
      estimates folded into
    it. Memory: FG²U's plus one copy of φ.

    Args:
      estimator: the FG2U / FG2U_ZO estimator.
      decay: β in [0, 1), or ``None`` for ``1 − 1/(4(1 + r))``, ``r = (N − 1)/b``.
      scale: ``s`` (default 1: ``c`` is in the units of the meta-gradient); ``None`` cross-fits it on two
        halves of the directions.
    """

    estimator: Any = estimator_field()
    decay: float | None = None
    scale: float | None = 1.0
    stateful = True

    @property
    def bias(self) -> str:
        return "unbiased"

    example = "FG2U(num_directions=8)"

    def __post_init__(self) -> None:
        _check_random("estimator", self.estimator, self.scale)
        if self.decay is not None and (
            isinstance(self.decay, bool) or not isinstance(self.decay, (int, float)) or not 0 <= self.decay < 1
        ):
            raise ValueError(f"decay must be None (stable default) or a number in [0, 1), got {self.decay!r}")

    def decay_for(self, num_params: int) -> float:
        """β for φ with ``num_params`` entries: ``decay``, or ``1 − 1/(4(1 + r))`` with ``r = (N − 1)/b`` when None."""
        if self.decay is not None:
            return float(self.decay)
        r = max(num_params - 1, 0) / self.estimator.num_directions
        return 1.0 - 1.0 / (4.0 * (1.0 + r))

    def init(self, phi: PyTree) -> RunningMeanState:
        return RunningMeanState(self.ops.zeros_like(phi), self.ops.counter(0))

    def estimate(self, problem: Any, phi: PyTree, key: Any, state: Any) -> tuple[PyTree, Aux, Any]:
        ops = self.ops
        mean, count = state
        decay = self.decay_for(ops.size(phi))
        grad, aux = _controlled(ops, self.estimator, problem, phi, key, mean, self.scale)
        mean = ops.add(ops.scale(mean, decay), ops.scale(grad, 1.0 - decay))
        return grad, aux, RunningMeanState(mean, count + 1)
