"""Gradient quality of JAX meta-gradient estimators on the user's own problem (see [`fg2u.quality`][fg2u.quality]).

[`gradient_quality`][fg2u.jax.gradient_quality] runs every estimator ``num_repeats`` times with fresh keys, compares
each estimate with an exact reference ([`RGU`][fg2u.jax.RGU] by default, or [`FGU`][fg2u.jax.FGU]), and returns a
[`fg2u.quality.GradientQuality`][fg2u.quality.GradientQuality] per estimator: cosine, relative error and norm ratio
(mean ± std over repeats), XLA's compiled temporary memory of one estimate
(``jax.jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes``: deterministic, excludes the
inputs and outputs) and wall-clock seconds per estimate (compilation excluded).

Example::

    import fg2u.jax as fj
    from fg2u.quality import format_table
    results = fj.gradient_quality(problem, phi, {"FG2U b=8": fj.FG2U(num_directions=8),
                                                 "TRGU K=5": fj.TRGU(truncation=5)}, num_repeats=5)
    print(format_table(results))

A problem that changes between repeats (a fresh network initialisation, a new data batch) is passed as a
function ``make_problem(inputs) -> UnrolledProblem`` together with ``inputs``, a sequence of pytrees of
arrays (one per repeat, same shapes): the problem is built inside the compiled function, so closures over
the inputs (initial parameters captured by ``init``) do not recompile per repeat, and each repeat gets its
own reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from fg2u.problem import BlackBoxProblem, UnrolledProblem
from fg2u.quality import (
    GradientQuality,
    Measurement,
    is_stateful,
    problem_per_repeat,
    run_gradient_quality,
)

from .harness import compile_ahead
from .reverse import RGU

__all__ = ["gradient_quality", "compiled_estimate"]

MEMORY_MEASURE = "XLA compiled temp bytes of one estimate (memory_analysis().temp_size_in_bytes)"


def compiled_estimate(
    estimator: Any, make_problem: Callable[[Any], Any], phi: Any, key: Any, inputs: Any, state: Any = None
) -> tuple[Any, int | None, float]:
    """Compiles ``(φ, key, inputs, state) ↦ (ravel(ĝ), new_state)`` once, ĝ from ``estimator(make_problem(inputs),
    φ, key)`` or, for a stateful estimator, ``estimator.estimate(make_problem(inputs), φ, key, state)``.

    Returns ``(compiled, temp_bytes, compile_seconds)``; ``compiled(φ, key, inputs, state)`` returns the
    flattened estimate (shape ``(N,)``) and the new state (``None`` for stateless estimators).
    ``temp_bytes`` is None where the backend reports no analysis.
    """
    stateful = is_stateful(estimator)

    def flat_estimate(phi_: Any, key_: Any, inputs_: Any, state_: Any) -> tuple[jax.Array, Any]:
        if stateful:
            grad, _, new_state = estimator.estimate(make_problem(inputs_), phi_, key_, state_)
        else:
            grad, _ = estimator(make_problem(inputs_), phi_, key_)
            new_state = None
        return ravel_pytree(grad)[0], new_state

    return compile_ahead(jax.jit(flat_estimate), phi, key, inputs, state)


def gradient_quality(
    problem: UnrolledProblem | BlackBoxProblem | Callable[[Any], Any],
    phi: Any,
    estimators: Mapping[str, Any] | Sequence[Any] | Any,
    *,
    reference: Any = None,
    reference_name: str | None = None,
    num_repeats: int = 5,
    key: Any = None,
    inputs: Sequence[Any] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> list[GradientQuality]:
    """Cosine, relative error, norm ratio, memory and seconds of each estimator against ``reference``.

    Args:
      problem: an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem] (or BlackBoxProblem) fixed across repeats, or a
        function ``inputs_r -> problem`` (then ``inputs`` is required).
      phi: the meta-parameters φ (pytree of float arrays, N entries in all).
      estimators: ``{label: est}`` or a list of estimators (labelled by class name); each
        ``est(problem, phi, key) -> (grad like phi, aux)``.
      reference: the exact estimator, [`fg2u.jax.RGU`][fg2u.jax.RGU] by default ([`fg2u.jax.FGU`][fg2u.jax.FGU] for tiny
        N). Called with a key too; a deterministic reference on a fixed problem is computed once.
      reference_name: label of the reference (default: its class name).
      num_repeats: R ≥ 1 estimates per estimator. With a function ``problem``, R = ``len(inputs)``.
      key: base ``jax.random`` key (default ``PRNGKey(0)``); repeat r uses ``fold_in(key, r)``, the same
        for every estimator (common random numbers), the reference ``fold_in(key, 10⁶ + r)``.
      inputs: per-repeat pytrees of arrays for a function ``problem`` (same structure and shapes).
      settings: optional ``{label: settings dict}`` stored in the results.
      progress: show a tqdm bar over estimators × repeats.

    A stateful estimator (``est.stateful``, e.g. ``RunningControlVariate``) starts from ``est.init(φ)`` and
    keeps its state across the repeats as across meta steps: repeat r sees the state left by repeats
    0 … r − 1, so its statistics include the warm-up.

    Returns:
      one [`fg2u.quality.GradientQuality`][fg2u.quality.GradientQuality] per estimator, in order. ``memory_bytes`` is
      XLA's compiled temporary memory of one estimate; ``seconds_per_estimate`` excludes compilation.
    """
    make_problem, per_repeat, fixed = problem_per_repeat(problem, inputs, num_repeats)
    reference = RGU() if reference is None else reference
    key = jax.random.PRNGKey(0) if key is None else key
    kernel = _JaxKernel(make_problem, phi, key, per_repeat, reference)
    return run_gradient_quality(
        kernel,
        phi,
        estimators,
        per_repeat,
        reference=reference,
        reference_name=reference_name,
        fixed=fixed,
        settings=settings,
        progress=progress,
    )


class _JaxKernel:
    """Each estimator compiled once ahead of its repeats; memory from XLA's analysis of that executable.

    Repeat r uses ``fold_in(key, r)`` for every estimator (common random numbers), the reference
    ``fold_in(key, 10⁶ + r)``."""

    def __init__(self, make_problem: Callable[[Any], Any], phi: Any, key: Any, per_repeat: list, reference: Any):
        self.make_problem, self.phi, self.key, self.first_inputs = make_problem, phi, key, per_repeat[0]
        self.reference_estimator = reference
        self.keys = [jax.random.fold_in(key, r) for r in range(len(per_repeat))]  # ahead of the timed repeats
        self._ref: _JaxRun | None = None  # compiled on first use, reused when an estimator equals the reference

    def _reference_run(self) -> _JaxRun:
        if self._ref is None:
            self._ref = self._compile(self.reference_estimator, None)
        return self._ref

    def _compile(self, estimator: Any, state: Any) -> _JaxRun:
        compiled = compiled_estimate(estimator, self.make_problem, self.phi, self.keys[0], self.first_inputs, state)
        return _JaxRun(self, *compiled)

    def reference(self, repeat: int, inputs: Any) -> Any:
        compiled = self._reference_run().compiled
        flat, _ = compiled(self.phi, jax.random.fold_in(self.key, 1_000_000 + repeat), inputs, None)
        return flat

    def start(self, estimator: Any, state: Any) -> _JaxRun:
        if _same(estimator, self.reference_estimator):
            return self._reference_run()
        return self._compile(estimator, state)

    def to_vector(self, flat: Any) -> np.ndarray:
        return np.asarray(jax.device_get(flat), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class _JaxRun:
    kernel: _JaxKernel
    compiled: Any
    temp_bytes: int | None
    compile_seconds: float

    def __call__(self, repeat: int, inputs: Any, state: Any) -> tuple[Any, Any]:
        return jax.block_until_ready(self.compiled(self.kernel.phi, self.kernel.keys[repeat], inputs, state))

    def finish(self) -> Measurement:
        if self.temp_bytes is None:
            return Measurement(None, "not reported by this JAX backend", self.compile_seconds)
        return Measurement(self.temp_bytes, MEMORY_MEASURE, self.compile_seconds)


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 (an estimator with a non-boolean __eq__)
        return False
