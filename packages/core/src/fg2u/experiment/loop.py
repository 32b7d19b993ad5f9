"""The meta loop every benchmark shares, backend-neutral: progress bar, timings, divergence, anytime curve.

``run_meta_loop(step, carry, num_steps)`` runs ``carry, loss = step(carry, i)``; a backend supplies ``step``
(`fg2u.jax.harness.JaxDriver`, `fg2u.torch.harness.TorchDriver`) and the runner
([`fg2u.experiment.runner`][fg2u.experiment.runner]) supplies the evaluation of the held-out metric along the way.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["progress", "run_meta_loop", "LoopResult", "Diverged", "curve_steps"]


class Diverged(FloatingPointError):
    """The outer loss (or an estimate) became NaN/inf: the run is recorded with status ``"diverged"``."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def progress(
    iterable: Iterable | None = None,
    *,
    desc: str = "",
    enabled: bool = True,
    total: int | None = None,
    leave: bool = False,
) -> Any:
    """A tqdm progress bar on stderr, or a silent stand-in when disabled or tqdm is not installed (the
    ``progress`` extra)."""
    if enabled:
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 (optional dependency: the `progress` extra)
        except ImportError:
            enabled = False
    if not enabled:
        return _Silent(iterable, total)
    return tqdm(iterable, desc=desc, total=total, leave=leave, file=sys.stderr, dynamic_ncols=True)


class _Silent:
    def __init__(self, iterable: Iterable | None, total: int | None) -> None:
        self._iterable = iterable if iterable is not None else range(total or 0)

    def __iter__(self) -> Any:
        return iter(self._iterable)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def curve_steps(num_steps: int, points: int) -> tuple[int, ...]:
    """``points`` meta-step counts from 0 to ``num_steps`` (both included), about evenly spaced, distinct."""
    if points < 2:
        raise ValueError(f"an anytime curve needs >= 2 points, got {points}")
    return tuple(sorted({round(num_steps * k / (points - 1)) for k in range(points)}))


@dataclasses.dataclass
class LoopResult:
    """What [`run_meta_loop`][fg2u.experiment.loop.run_meta_loop] returns.

    Attributes:
      carry: the final carry of ``step``.
      losses: ``(meta_step, outer_loss)`` every ``log_every`` steps and at the last step.
      seconds: wall time of the loop, evaluations excluded.
      first_step_s: wall time of the first step.
      step_s: mean wall time per meta step after the first.
      steps_run: meta steps taken (fewer than ``num_steps`` when ``stop_when`` ended the loop).
      num_steps: the steps asked for.
      evaluations: ``(meta_step, seconds, value)`` of ``evaluate`` at ``evaluate_at`` steps (``seconds``: loop
        time so far, evaluations excluded).
    """

    carry: Any
    losses: list[tuple[int, float]]
    seconds: float
    first_step_s: float
    step_s: float
    steps_run: int
    num_steps: int
    evaluations: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)

    @property
    def stopped_early(self) -> bool:
        """Whether ``stop_when`` ended the loop before ``num_steps``."""
        return self.steps_run < self.num_steps


def run_meta_loop(
    step: Callable[[Any, int], tuple[Any, Any]],
    carry: Any,
    num_steps: int,
    *,
    desc: str = "meta steps",
    progress_bar: bool = True,
    log_every: int = 10,
    block: Callable[[Any], Any] | None = None,
    stop_when: Callable[[int, Any], bool] | None = None,
    postfix: Callable[[Any], Mapping[str, Any]] | None = None,
    evaluate: Callable[[Any], float] | None = None,
    evaluate_at: Sequence[int] = (),
) -> LoopResult:
    """Runs ``carry, loss = step(carry, i)`` for ``i < num_steps`` with a progress bar showing the outer loss.

    ``loss`` is read (``float(loss)``) every ``log_every`` steps and at the last step — that synchronises an
    asynchronous backend only then. A non-finite loss raises [`Diverged`][fg2u.experiment.loop.Diverged] naming the
    step. ``block(carry)`` (e.g. ``jax.block_until_ready``) is applied after the first and the last step, and
    before each evaluation, so the timings are real.

    Hooks: ``stop_when(i, carry)`` after every step (``True`` ends the loop there); ``postfix(carry)`` adds
    fields to the progress bar at the logged steps; ``evaluate(carry) -> float`` runs after ``k`` steps for
    every ``k`` in ``evaluate_at`` (``0``: before the first step) and at an early stop, its time left out of
    ``seconds``.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    sync = block or (lambda c: c)
    at = set(evaluate_at) if evaluate is not None else set()
    evaluations: list[tuple[int, float, float]] = []
    eval_seconds = 0.0
    t0 = time.perf_counter()

    def record(k: int) -> None:
        nonlocal eval_seconds
        assert evaluate is not None
        sync(carry)
        start = time.perf_counter()
        elapsed = start - t0 - eval_seconds  # loop time so far, earlier evaluations excluded
        value = float(evaluate(carry))
        eval_seconds += time.perf_counter() - start
        evaluations.append((k, elapsed, value))

    if 0 in at:
        record(0)
    bar = progress(range(num_steps), desc=desc, enabled=progress_bar)
    losses: list[tuple[int, float]] = []
    first_step_s = 0.0
    steps_run = 0
    for i in bar:
        carry, loss = step(carry, i)
        steps_run = i + 1
        if i == 0:
            sync(carry)
            first_step_s = time.perf_counter() - t0 - eval_seconds
        stop = stop_when is not None and bool(stop_when(i, carry))
        if (i + 1) % log_every == 0 or i + 1 == num_steps or stop:
            value = float(loss)
            if not math.isfinite(value):
                bar.close()
                raise Diverged(
                    f"{desc}: the outer loss became {value} at meta step {i}; lower the meta learning rate or "
                    "check the inner step size",
                    i,
                )
            losses.append((i, value))
            bar.set_postfix(outer_loss=f"{value:.4g}", **dict(postfix(carry) if postfix is not None else {}))
        if steps_run in at or (stop and at and steps_run not in at):
            record(steps_run)
        if stop:
            break
    sync(carry)
    seconds = time.perf_counter() - t0 - eval_seconds
    bar.close()
    step_s = (seconds - first_step_s) / max(1, steps_run - 1)
    return LoopResult(
        carry=carry,
        losses=losses,
        seconds=seconds,
        first_step_s=first_step_s,
        step_s=step_s,
        steps_run=steps_run,
        num_steps=num_steps,
        evaluations=evaluations,
    )
