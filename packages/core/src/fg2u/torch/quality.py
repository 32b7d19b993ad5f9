"""Gradient quality of PyTorch meta-gradient estimators on the user's own problem (see :mod:`fg2u.quality`).

:func:`gradient_quality` runs every estimator ``num_repeats`` times with fresh ``torch.Generator`` seeds,
compares each estimate with an exact reference (:class:`~fg2u.torch.RGU` by default, or
:class:`~fg2u.torch.FGU`), and returns a :class:`fg2u.quality.GradientQuality` per estimator: cosine,
relative error and norm ratio (mean ± std over repeats), memory and median seconds per estimate.

Memory is the growth of the process's resident set size while the estimator runs: freed heap memory is
returned to the OS (``malloc_trim``), the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``,
Linux), and the result is ``VmHWM − VmRSS`` before the first repeat (``/proc/self/status``). It includes
everything the estimator allocates (activations stored for backward, tangents, temporaries); the
allocator's caching makes it coarse (a few MiB). Where the reset is unavailable (macOS, containers that
forbid it) ``memory_bytes`` is None.

A problem that changes between repeats is passed as ``make_problem(inputs) -> UnrolledProblem`` together
with ``inputs`` (one per repeat); each repeat then gets its own reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fg2u._checks import check_positive_int
from fg2u.experiment.memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from fg2u.problem import BlackBoxProblem, UnrolledProblem
from fg2u.quality import GradientQuality, estimator_label, is_stateful, named_estimators, summarize

from ._pytree import tree_flatten
from .reverse import RGU

__all__ = ["gradient_quality", "flatten_gradient"]

MEMORY_MEASURE = "peak RSS growth of the process during the estimates (VmHWM after − VmRSS before)"


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
    progress: bool = False,
) -> list[GradientQuality]:
    """Cosine, relative error, norm ratio, memory and seconds of each estimator against ``reference``.

    Args:
      problem: an :class:`fg2u.UnrolledProblem` (or BlackBoxProblem) fixed across repeats, or a function
        ``inputs_r -> problem`` (then ``inputs`` is required and R = ``len(inputs)``).
      phi: the meta-parameters φ (pytree of float tensors, N entries in all).
      estimators: ``{label: est}`` or a list (labelled by class name); ``est(problem, phi, key) -> (grad, aux)``.
      reference: exact estimator, :class:`fg2u.torch.RGU` by default; deterministic on a fixed problem
        ⇒ computed once.
      num_repeats: R ≥ 1 estimates per estimator (fixed problem).
      seed: repeat r gives every estimator ``torch.Generator().manual_seed(seed + r)`` (common random
        numbers across estimators); the reference gets seed ``seed + 10⁶ + r``.
      inputs: per-repeat inputs for a function ``problem``.
      settings: optional ``{label: settings dict}`` stored in the results.
      measure_memory: measure peak-RSS growth (Linux); otherwise ``memory_bytes`` is None.
      progress: show a tqdm bar.

    A stateful estimator (``est.stateful``, e.g. ``RunningControlVariate``) starts from ``est.init(φ)`` and
    keeps its state across the repeats as across meta steps (its statistics include the warm-up).

    Returns:
      one :class:`fg2u.quality.GradientQuality` per estimator, in order.
    """
    items = named_estimators(estimators)
    if isinstance(problem, (UnrolledProblem, BlackBoxProblem)):
        if inputs is not None:
            raise ValueError("inputs is only used with a function problem; got a fixed problem and inputs")
        check_positive_int("num_repeats", num_repeats)
        make_problem, per_repeat, fixed = (lambda _: problem), [None] * num_repeats, True
    elif callable(problem):
        if inputs is None:
            raise ValueError("problem is a function inputs -> problem, so pass inputs=[inputs_0, …, inputs_{R-1}]")
        per_repeat, fixed, make_problem = list(inputs), False, problem
        if not per_repeat:
            raise ValueError("inputs is empty; pass one input per repeat")
    else:
        raise TypeError(
            f"problem must be an fg2u.UnrolledProblem, a BlackBoxProblem or a function inputs -> "
            f"problem, got {type(problem).__name__}"
        )
    reference = RGU() if reference is None else reference
    reference_name = reference_name or estimator_label(reference)

    from tqdm.auto import tqdm  # noqa: PLC0415

    bar = tqdm(
        total=(len(items) + 1) * len(per_repeat),
        desc="gradient quality",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    deterministic = fixed and not hasattr(reference, "num_directions")
    references: list[np.ndarray] = []
    for r, inp in enumerate(per_repeat):
        if deterministic and references:
            references.append(references[0])
        else:
            grad, _ = reference(make_problem(inp), phi, torch.Generator().manual_seed(seed + 1_000_000 + r))
            references.append(flatten_gradient(grad))
        bar.update(1)

    results = []
    for label, est in items:
        problems = [make_problem(inp) for inp in per_repeat]
        stateful = is_stateful(est)
        state = est.init(phi) if stateful else None
        reset = measure_memory and reset_peak_rss()
        before = rss_bytes() if reset else None
        estimates, seconds = [], []
        for r, prob in enumerate(problems):
            t0 = time.perf_counter()
            generator = torch.Generator().manual_seed(seed + r)
            if stateful:
                grad, _, state = est.estimate(prob, phi, generator, state)
            else:
                grad, _ = est(prob, phi, generator)
            estimates.append(flatten_gradient(grad))
            seconds.append(time.perf_counter() - t0)
            del grad
            bar.update(1)
        peak = peak_rss_bytes() if before is not None else None
        memory = None if peak is None or before is None else max(peak - before, 0)
        results.append(
            summarize(
                label,
                estimates,
                references,
                reference_name=reference_name,
                memory_bytes=memory,
                memory_measure=MEMORY_MEASURE if memory is not None else "not measured (needs Linux /proc)",
                seconds=seconds,
                settings=dict((settings or {}).get(label, {})),
            )
        )
    bar.close()
    return results
