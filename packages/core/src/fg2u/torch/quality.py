"""Gradient quality of PyTorch meta-gradient estimators on the user's own problem (see [`fg2u.quality`][fg2u.quality]).

[`gradient_quality`][fg2u.torch.gradient_quality] runs every estimator ``num_repeats`` times with fresh
``torch.Generator`` seeds, compares each estimate with an exact reference ([`RGU`][fg2u.torch.RGU] by default, or
[`FGU`][fg2u.torch.FGU]), and returns a [`fg2u.quality.GradientQuality`][fg2u.quality.GradientQuality] per estimator:
cosine, relative error and norm ratio (mean ± std over repeats), memory and median seconds per estimate.

Memory is the growth of the process's resident set size while the estimator runs: freed heap memory is
returned to the OS (``malloc_trim``), the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``,
Linux), and the result is ``VmHWM − VmRSS`` before the first repeat (``/proc/self/status``). It includes
everything the estimator allocates (activations stored for backward, tangents, temporaries); the
allocator's caching makes it coarse (a few MiB). Where the reset is unavailable (macOS, containers that
forbid it) ``memory_bytes`` is None.

Each estimator is first run once, unmeasured (``warmup=True``, the default), so that what a process pays once
— the first ``torch.autograd.grad`` with explicit cotangents imports ``torch.fx.experimental.symbolic_shapes``
and with it sympy and mpmath, about 38 MiB of resident memory (docs: the estimator guide, "Memory of torch
FG²U in a fresh process") — is not charged to whichever estimator happens to run first: the memory column
then does not depend on the order of the estimators.

A problem that changes between repeats is passed as ``make_problem(inputs) -> UnrolledProblem`` together
with ``inputs`` (one per repeat); each repeat then gets its own reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fg2u.experiment.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from fg2u.problem import BlackBoxProblem, UnrolledProblem
from fg2u.quality import (
    GradientQuality,
    Measurement,
    is_stateful,
    problem_per_repeat,
    run_gradient_quality,
)

from ._pytree import tree_flatten
from .reverse import RGU

__all__ = ["gradient_quality", "flatten_gradient"]

MEMORY_MEASURE = "peak RSS growth of the process during the estimates (VmHWM after − VmRSS before)"
WARM_MEASURE = MEMORY_MEASURE + ", after one unmeasured warm-up estimate"


def flatten_gradient(grad: Any) -> np.ndarray:
    """A pytree of tensors as one float64 NumPy vector (leaves in ``torch.utils._pytree`` order)."""
    leaves, _ = tree_flatten(grad)
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    if not tensors:
        raise TypeError(
            f"the estimate holds no tensors (got {type(grad).__name__}); an estimator must return a "
            "pytree of tensors shaped like φ"
        )
    return np.concatenate([t.detach().to("cpu", torch.float64).reshape(-1).numpy() for t in tensors])


def gradient_quality(
    problem: UnrolledProblem | BlackBoxProblem | Callable[[Any], Any],
    phi: Any,
    estimators: Mapping[str, Any] | Sequence[Any] | Any,
    *,
    reference: Any = None,
    reference_name: str | None = None,
    num_repeats: int = 5,
    seed: int = 0,
    inputs: Sequence[Any] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    measure_memory: bool = True,
    warmup: bool = True,
    progress: bool = False,
) -> list[GradientQuality]:
    """Cosine, relative error, norm ratio, memory and seconds of each estimator against ``reference``.

    Args:
      problem: an [`fg2u.UnrolledProblem`][fg2u.problem.UnrolledProblem] (or BlackBoxProblem) fixed across repeats, or a
        function ``inputs_r -> problem`` (then ``inputs`` is required and R = ``len(inputs)``).
      phi: the meta-parameters φ (pytree of float tensors, N entries in all).
      estimators: ``{label: est}`` or a list (labelled by class name); ``est(problem, phi, key) -> (grad, aux)``.
      reference: exact estimator, [`fg2u.torch.RGU`][fg2u.torch.RGU] by default; deterministic on a fixed problem
        ⇒ computed once.
      num_repeats: R ≥ 1 estimates per estimator (fixed problem).
      seed: repeat r gives every estimator ``torch.Generator().manual_seed(seed + r)`` (common random
        numbers across estimators); the reference gets seed ``seed + 10⁶ + r``.
      inputs: per-repeat inputs for a function ``problem``.
      settings: optional ``{label: settings dict}`` stored in the results.
      measure_memory: measure peak-RSS growth (Linux); otherwise ``memory_bytes`` is None.
      warmup: with ``measure_memory``, run each estimator once (unmeasured, on the first repeat's problem,
        seed ``seed + 2·10⁶``, a fresh state) before its measured repeats, so that one-off costs of the
        process (lazy imports, allocator pools) are charged to no estimator and the memory column does not
        depend on the order of the estimators; costs one extra estimate per estimator.
      progress: show a tqdm bar.

    A stateful estimator (``est.stateful``, e.g. ``RunningControlVariate``) starts from ``est.init(φ)`` and
    keeps its state across the repeats as across meta steps (its statistics include the warm-up).

    Returns:
      one [`fg2u.quality.GradientQuality`][fg2u.quality.GradientQuality] per estimator, in order.
    """
    make_problem, per_repeat, fixed = problem_per_repeat(problem, inputs, num_repeats)
    reference = RGU() if reference is None else reference
    kernel = _TorchKernel(make_problem, phi, seed, per_repeat, reference, measure_memory, warmup)
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


@dataclasses.dataclass
class _TorchKernel:
    """Eager estimates; memory as the peak-RSS growth of the process over an estimator's repeats.

    Repeat r gives every estimator ``torch.Generator().manual_seed(seed + r)`` (common random numbers), the
    reference ``seed + 10⁶ + r``."""

    make_problem: Callable[[Any], Any]
    phi: Any
    seed: int
    per_repeat: list
    reference_estimator: Any
    measure_memory: bool
    warmup: bool = True

    def reference(self, repeat: int, inputs: Any) -> Any:
        generator = torch.Generator().manual_seed(self.seed + 1_000_000 + repeat)
        grad, _ = self.reference_estimator(self.make_problem(inputs), self.phi, generator)
        return grad

    def start(self, estimator: Any, state: Any) -> _TorchRun:
        problems = [self.make_problem(inp) for inp in self.per_repeat]  # built before the memory baseline
        stateful = is_stateful(estimator)
        if self.measure_memory and self.warmup:  # one-offs of the process are charged to no estimator
            warm = _TorchRun(self, estimator, stateful, problems[:1], None)
            warm(0, None, estimator.init(self.phi) if stateful else None, seed=self.seed + 2_000_000)
            del warm
        before = rss_bytes() if self.measure_memory and reset_peak_rss() else None
        return _TorchRun(self, estimator, stateful, problems, before)

    def to_vector(self, flat: Any) -> np.ndarray:
        return flatten_gradient(flat)


@dataclasses.dataclass
class _TorchRun:
    kernel: _TorchKernel
    estimator: Any
    stateful: bool
    problems: list
    rss_before: int | None

    def __call__(self, repeat: int, inputs: Any, state: Any, *, seed: int | None = None) -> tuple[Any, Any]:
        generator = torch.Generator().manual_seed(self.kernel.seed + repeat if seed is None else seed)
        if self.stateful:
            grad, _, state = self.estimator.estimate(self.problems[repeat], self.kernel.phi, generator, state)
        else:
            grad, _ = self.estimator(self.problems[repeat], self.kernel.phi, generator)
        return grad, state

    def finish(self) -> Measurement:
        peak = peak_rss_bytes() if self.rss_before is not None else None
        if peak is None or self.rss_before is None:
            return Measurement(None, "not measured (needs Linux /proc)")
        measure = WARM_MEASURE if self.kernel.warmup else MEMORY_MEASURE
        return Measurement(max(peak - self.rss_before, 0), measure)
