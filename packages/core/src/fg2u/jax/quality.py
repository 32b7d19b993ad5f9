"""Gradient quality of JAX meta-gradient estimators on the user's own problem (see :mod:`fg2u.quality`).

:func:`gradient_quality` runs every estimator ``num_repeats`` times with fresh keys, compares each estimate
with an exact reference (:class:`~fg2u.jax.RGU` by default, or :class:`~fg2u.jax.FGU`), and returns a
:class:`fg2u.quality.GradientQuality` per estimator: cosine, relative error and norm ratio (mean ± std over
repeats), XLA's compiled temporary memory of one estimate
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

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from fg2u.checks import check_positive_int
from fg2u.experiment.loop import progress as progress_bar
from fg2u.problem import BlackBoxProblem, UnrolledProblem
from fg2u.quality import GradientQuality, estimator_label, is_stateful, named_estimators, summarize

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
      problem: an :class:`fg2u.UnrolledProblem` (or BlackBoxProblem) fixed across repeats, or a function
        ``inputs_r -> problem`` (then ``inputs`` is required).
      phi: the meta-parameters φ (pytree of float arrays, N entries in all).
      estimators: ``{label: est}`` or a list of estimators (labelled by class name); each
        ``est(problem, phi, key) -> (grad like phi, aux)``.
      reference: the exact estimator, :class:`fg2u.jax.RGU` by default (:class:`fg2u.jax.FGU` for tiny N).
        Called with a key too; a deterministic reference on a fixed problem is computed once.
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
      one :class:`fg2u.quality.GradientQuality` per estimator, in order. ``memory_bytes`` is XLA's
      compiled temporary memory of one estimate; ``seconds_per_estimate`` excludes compilation.
    """
    items = named_estimators(estimators)
    if callable(problem) and not isinstance(problem, (UnrolledProblem, BlackBoxProblem)):
        if inputs is None:
            raise ValueError(
                "problem is a function inputs -> problem, so pass inputs=[inputs_0, …, inputs_{R-1}] "
                "(one pytree of arrays per repeat)"
            )
        inputs = list(inputs)
        if not inputs:
            raise ValueError("inputs is empty; pass one pytree of arrays per repeat")
        make_problem, per_repeat, fixed = problem, inputs, False
    elif isinstance(problem, (UnrolledProblem, BlackBoxProblem)):
        if inputs is not None:
            raise ValueError("inputs is only used with a function problem; got a fixed problem and inputs")
        check_positive_int("num_repeats", num_repeats)
        make_problem, per_repeat, fixed = (lambda _: problem), [None] * num_repeats, True
    else:
        raise TypeError(
            f"problem must be an fg2u.UnrolledProblem, a BlackBoxProblem or a function inputs -> "
            f"problem, got {type(problem).__name__}"
        )
    reference = RGU() if reference is None else reference
    reference_name = reference_name or estimator_label(reference)
    key = jax.random.PRNGKey(0) if key is None else key
    keys = [jax.random.fold_in(key, r) for r in range(len(per_repeat))]

    bar = progress_bar(desc="gradient quality", total=(len(items) + 1) * len(per_repeat), enabled=progress)

    # References (one per repeat, or one when both the problem and the reference are deterministic).
    ref_compiled, ref_temp, ref_compile_s = compiled_estimate(reference, make_problem, phi, keys[0], per_repeat[0])
    deterministic = fixed and not _uses_key(reference)
    references: list[np.ndarray] = []
    for r, inp in enumerate(per_repeat):
        if deterministic and references:
            references.append(references[0])
        else:
            ref, _ = ref_compiled(phi, jax.random.fold_in(key, 1_000_000 + r), inp, None)
            references.append(np.asarray(jax.device_get(ref), dtype=np.float64))
        bar.update(1)

    results = []
    for label, est in items:
        state = est.init(phi) if is_stateful(est) else None
        if _same(est, reference):  # reuse the reference's executable (memory from its analysis)
            compiled, temp, compile_s = ref_compiled, ref_temp, ref_compile_s
        else:
            compiled, temp, compile_s = compiled_estimate(est, make_problem, phi, keys[0], per_repeat[0], state)
        estimates, seconds = [], []
        for r, inp in enumerate(per_repeat):
            t0 = time.perf_counter()
            flat, state = jax.block_until_ready(compiled(phi, keys[r], inp, state))
            seconds.append(time.perf_counter() - t0)
            estimates.append(np.asarray(jax.device_get(flat), dtype=np.float64))
            bar.update(1)
        results.append(
            summarize(
                label,
                estimates,
                references,
                reference_name=reference_name,
                memory_bytes=temp,
                memory_measure=MEMORY_MEASURE if temp is not None else "not reported by this JAX backend",
                seconds=seconds,
                compile_seconds=compile_s,
                settings=dict((settings or {}).get(label, {})),
            )
        )
    bar.close()
    return results


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 (an estimator with a non-boolean __eq__)
        return False


def _uses_key(estimator: Any) -> bool:
    """Whether an estimator is random (FG2U-like: has ``num_directions``); RGU, FGU, TRGU … are not."""
    return hasattr(estimator, "num_directions")
