"""The meta loop every benchmark shares, backend-neutral: command-line flags, estimators by name, the loop with
its progress bar and timings, and the estimator part of result records.

A benchmark's command line::

    parser = argparse.ArgumentParser(prog="python -m my_bench")
    add_common_arguments(parser, configs=("smoke", "cpu", "paper"), default_out="results/my_bench")
    args = parser.parse_args()
    for seed in args.seeds:
        for name in args.estimators:
            estimator = fg2u.jax.make(name, **settings_for(name))   # or fg2u.torch.make
            result = run_meta_loop(step, carry, num_steps, desc=f"{estimator.display_name} seed {seed}",
                                   progress=not args.no_progress)
            record = make_record(..., **estimator_record(estimator), ...)

The backend builds ``step``: :func:`fg2u.jax.harness.make_meta_step` (one jitted meta step with gradient
accumulation, the meta optimiser and the estimator's state) or :func:`fg2u.torch.harness.make_meta_step`.
Same flags, same defaults everywhere: ``--config cpu``, ``--seeds 0``, every estimator of the benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_SEEDS",
    "add_common_arguments",
    "progress",
    "run_meta_loop",
    "LoopResult",
    "estimator_record",
]

DEFAULT_CONFIG = "cpu"
DEFAULT_SEEDS = (0,)


def add_common_arguments(
    parser: argparse.ArgumentParser,
    *,
    configs: Sequence[str],
    default_out: str,
    estimators: Sequence[str] | None = None,
    default_estimators: Sequence[str] | None = None,
    default_config: str = DEFAULT_CONFIG,
) -> None:
    """Adds ``--config``, ``--estimators``, ``--seeds``, ``--out`` and ``--no-progress`` to ``parser``.

    Args:
      configs: the benchmark's configuration names (``default_config`` must be one of them).
      default_out: the records folder (``results/<benchmark>``).
      estimators: accepted estimator names (registry names, display names or benchmark-specific baselines);
        ``None`` accepts any registered name.
      default_estimators: what runs without ``--estimators`` (default: all of ``estimators``).
    """
    if default_config not in configs:
        raise ValueError(f"default_config {default_config!r} is not one of the configs {tuple(configs)}")
    parser.add_argument(
        "--config",
        choices=tuple(configs),
        default=default_config,
        help=f"named configuration (default: {default_config})",
    )
    if estimators is None:
        from fg2u.estimators import names  # noqa: PLC0415

        estimators = names()
    chosen = list(default_estimators if default_estimators is not None else estimators)
    parser.add_argument(
        "--estimators",
        nargs="+",
        choices=tuple(estimators),
        default=chosen,
        metavar="NAME",
        help=f"estimators to run (default: {' '.join(chosen)}; choices: {', '.join(estimators)})",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(DEFAULT_SEEDS),
        help=f"random seeds, one run each (default: {' '.join(map(str, DEFAULT_SEEDS))})",
    )
    parser.add_argument("--out", default=default_out, help=f"folder for result records (default: {default_out})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in CI logs)")


def progress(
    iterable: Iterable | None = None,
    *,
    desc: str = "",
    enabled: bool = True,
    total: int | None = None,
    leave: bool = False,
) -> Any:
    """A tqdm progress bar on stderr (or a silent stand-in when disabled or tqdm is not installed)."""
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415
    except ImportError:  # the `progress` extra is not installed
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


@dataclasses.dataclass
class LoopResult:
    """What :func:`run_meta_loop` returns.

    Attributes:
      carry: the final carry of ``step`` (meta parameters, optimiser and estimator states, …).
      losses: ``(meta_step, outer_loss)`` every ``log_every`` steps and at the last step.
      seconds: wall time of the whole loop.
      first_step_s: wall time of the first step (includes compilation in JAX).
      step_s: mean wall time per meta step after the first.
      steps_run: meta steps taken (``num_steps`` unless ``stop_when`` ended the loop early).
      num_steps: the steps asked for.
    """

    carry: Any
    losses: list[tuple[int, float]]
    seconds: float
    first_step_s: float
    step_s: float
    steps_run: int
    num_steps: int

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
) -> LoopResult:
    """Runs ``carry, loss = step(carry, i)`` for ``i < num_steps`` with a progress bar showing the outer loss.

    ``loss`` is read (``float(loss)``) every ``log_every`` steps and at the last step — that synchronises an
    asynchronous backend only then. A non-finite loss stops the loop with a ``FloatingPointError`` that names the
    step. ``block(carry)`` (e.g. ``jax.block_until_ready``) is applied after the first and the last step so the
    timings are real.

    Hooks: ``stop_when(i, carry)`` is called after every step; ``True`` ends the loop there (early stopping at
    a target, a time budget; the last loss is then logged and ``steps_run`` says how many steps ran).
    ``postfix(carry)`` adds fields to the progress bar at the logged steps (e.g. the current coefficient).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    sync = block or (lambda c: c)
    bar = progress(range(num_steps), desc=desc, enabled=progress_bar)
    losses: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    first_step_s = 0.0
    steps_run = 0
    for i in bar:
        carry, loss = step(carry, i)
        steps_run = i + 1
        if i == 0:
            sync(carry)
            first_step_s = time.perf_counter() - t0
        stop = stop_when is not None and bool(stop_when(i, carry))
        if (i + 1) % log_every == 0 or i + 1 == num_steps or stop:
            value = float(loss)
            if not math.isfinite(value):
                bar.close()
                raise FloatingPointError(
                    f"{desc}: the outer loss became {value} at meta step {i}; lower the meta "
                    "learning rate or check the inner step size"
                )
            losses.append((i, value))
            bar.set_postfix(outer_loss=f"{value:.4g}", **dict(postfix(carry) if postfix is not None else {}))
        if stop:
            break
    sync(carry)
    seconds = time.perf_counter() - t0
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
    )


def estimator_record(estimator: Any) -> dict[str, Any]:
    """``{"estimator": display name, "estimator_settings": settings}`` from the estimator object itself."""
    return {"estimator": estimator.display_name, "estimator_settings": estimator.settings()}
