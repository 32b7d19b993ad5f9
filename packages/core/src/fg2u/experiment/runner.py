"""The one runner: a benchmark supplies its problem, data, evaluation and named configs; this does the rest.

A benchmark is an [`Experiment`][fg2u.experiment.runner.Experiment] (one per benchmark package) whose
[`Experiment.trial`][fg2u.experiment.runner.Experiment.trial] returns a [`Trial`][fg2u.experiment.runner.Trial] for one
(config, task, seed): the initial meta-parameters φ₀, the meta optimiser, the problem factory, the per-step inputs and
the evaluation. Its ``__main__`` is ``raise SystemExit(main(EXPERIMENT))``.
The runner owns everything else, the same for every benchmark:

* the command line: ``--config``, ``--estimators SPEC ...`` (any registered estimator in the spec grammar of
  [`fg2u.experiment.spec`][fg2u.experiment.spec], or one of the benchmark's
  [`Baseline`][fg2u.experiment.runner.Baseline] methods), ``--seeds``, ``--out``, ``--tag``, ``--no-progress``, plus the
  benchmark's own flags; user errors print one line naming the flag and the fix and exit 2; the output folder and data
  are checked before any work;
* estimators built through the registry, the benchmark's presets filling what a spec leaves out;
* the meta loop ([`fg2u.experiment.loop`][fg2u.experiment.loop]) through the backend's driver
  (``fg2u.jax.harness.Driver`` compiles the meta step ahead and reports XLA's memory of it;
  ``fg2u.torch.harness.Driver`` measures the peak-RSS growth of the first step), an anytime curve of the held-out metric
  (at least 6 points), and a run that diverges recorded with status ``"diverged"`` while the next method goes on;
* one record per run ([`fg2u.experiment.records`][fg2u.experiment.records]) with the invocation's provenance and run id,
  appended atomically to ``<out>/<config>.jsonl``; ``<out>/runs/<run_id>.json`` marks the invocation running,
  complete, failed or interrupted (Ctrl-C exits 130 with one line);
* a summary table per method of the benchmark's headline metric.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import importlib
import math
import os
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from fg2u.experiment.loop import Diverged, curve_steps, run_meta_loop
from fg2u.experiment.provenance import start_run, write_run_marker
from fg2u.experiment.records import Curve, Memory, ResultRecord, append_records, check_writable, make_record
from fg2u.experiment.spec import Spec, SpecError, build, completed, parse

__all__ = [
    "UsageError",
    "Task",
    "MethodResult",
    "Trial",
    "Baseline",
    "Experiment",
    "Prepared",
    "Method",
    "build_parser",
    "resolve_methods",
    "run_method",
    "gradient_check",
    "GRADIENT_CHECK_METRICS",
    "main",
]

DEFAULT_SEEDS = (0,)


class UsageError(Exception):
    """Bad input from the user: the runner prints ``error: <message>`` and exits 2, with no traceback.

    The message names the flag, what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One problem a config contains (an equation, a data set): the record's ``task`` and ``dataset``, and the
    settings that define the problem (``problem_settings``: runs compete for "best" only with runs of equal
    problem settings)."""

    name: str
    dataset: str
    problem_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class MethodResult:
    """What one run produced; the runner adds the method, settings and provenance to make the record."""

    metrics: dict[str, float]
    curve: Curve | None = None
    memory: Memory | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: str = "ok"
    phi: Any = None


@dataclasses.dataclass
class Prepared:
    """A backend driver's meta loop for one estimator and trial: ``step(carry, i) -> (carry, outer_loss)``,
    the start ``carry``, ``phi(carry)``, the memory of one meta step, the seconds spent compiling and details for
    the record (JAX: ``forward_unroll_bytes``, the same measure of the forward unroll alone)."""

    step: Callable[[Any, int], tuple[Any, Any]]
    carry: Any
    phi: Callable[[Any], Any]
    memory: Memory | None
    compile_s: float
    block: Callable[[Any], Any] | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


class Trial(abc.ABC):
    """One (config, task, seed) of a benchmark: the problem factory, the data and the evaluation.

    Attributes a subclass sets:
      num_meta_steps: meta steps of the loop.
      grad_accumulation: estimates averaged per meta step (A).
      curve_metric: name of the held-out metric `evaluate` returns with ``final=False`` (the anytime
        curve), or None for no curve.
      curve_points: evaluations along training, the start and the end included (>= 6 for a curve).
      log_every: meta steps between reads of the outer loss.
      reference: the spec of the exact estimator the gradient check compares with (``"rgu"``; ``"fgu"`` for
        a black-box problem whose objective JAX can differentiate).
    """

    num_meta_steps: int = 1
    grad_accumulation: int = 1
    curve_metric: str | None = None
    curve_points: int = 7
    log_every: int = 10
    reference: str = "rgu"

    @abc.abstractmethod
    def initial_phi(self) -> Any:
        """φ₀, the meta-parameters before the first meta step."""

    @abc.abstractmethod
    def meta_optimizer(self) -> Any:
        """The meta optimiser: an ``optax.GradientTransformation`` (JAX), or a function ``params -> torch
        optimizer`` (PyTorch)."""

    @abc.abstractmethod
    def make_problem(self, inputs: Any) -> Any:
        """The bi-level problem (``fg2u.UnrolledProblem`` / ``BlackBoxProblem``) of one estimate's inputs."""

    @abc.abstractmethod
    def next_inputs(self, step: int) -> tuple[Any, Any]:
        """``(key, inputs)`` of meta step ``step``: the estimator's random key and the problem inputs (JAX:
        a pytree with a leading axis A; PyTorch: keys and inputs are sequences of A)."""

    def example_inputs(self) -> tuple[Any, Any]:
        """``(key, inputs)`` shaped like `next_inputs`'s, drawn without consuming the run's randomness
        (JAX compiles the meta step ahead on them). Default: ``next_inputs(0)`` — override when that draws
        from the run's generator."""
        return self.next_inputs(0)

    @abc.abstractmethod
    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        """Metrics of ``phi``: the headline metrics when ``final``, else ``{curve_metric: value}`` (cheap)."""

    def meta_step_options(self) -> dict[str, Any]:
        """Extra keyword arguments of the backend's ``make_meta_step`` (``project``, ``max_grad_norm``)."""
        return {}

    def step_costs(self, estimator: Any) -> dict[str, float]:
        """Costs of one meta step with ``estimator`` besides time (e.g. ``{"solver_calls": b + 1}``); the anytime
        curve accumulates them."""
        return {}

    def initial_costs(self) -> dict[str, float]:
        """Costs spent before the first meta step (e.g. the solver calls of an initial scan)."""
        return {}

    def stop_when(self, step: int, phi: Any) -> bool:
        """Ends the loop early after meta step ``step`` (e.g. a target error reached); default never."""
        return False

    def use_estimator(self, estimator: Any) -> None:  # noqa: B027 (optional hook)
        """Called with the run's estimator before its loop is prepared; default nothing. A benchmark whose problem
        comes in several forms picks one here (e.g. only a black-box solver for a zeroth-order estimator, the
        differentiable one for every other estimator)."""

    def inputs_for(self, estimator: Any, step: int, inputs: Any) -> Any:
        """The problem inputs of meta step ``step`` (drawn as ``inputs`` for the run's estimator) in the form of
        the problem ``estimator`` can use: the gradient check runs the exact reference on the same draw.
        Default: ``inputs`` (one problem form); a benchmark with a black-box and a differentiable form returns
        the differentiable one's inputs for a reference that cannot use the black box."""
        return inputs

    def curve_metrics(self, curve: Curve) -> dict[str, float]:
        """Metrics read off the run's anytime curve (e.g. the meta steps, costs and seconds until the curve
        first falls below a target); default none. Added to the record's metrics."""
        return {}

    def details(self) -> dict[str, Any]:
        """Per-run details for the record (not settings)."""
        return {}

    def measure(self, spec: Spec) -> MethodResult | None:
        """The result of a task that measures an estimator rather than running the meta loop (e.g. the peak
        memory of one meta-gradient at a given T in a fresh process, built from ``spec``, the completed
        spec); ``None`` (the default) runs the meta loop."""
        return None


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A benchmark's method that is not a meta-gradient estimator (random real images, least squares).

    Attributes:
      display: its name in records (``"RandomReal"``).
      run: ``run(trial, settings) -> MethodResult``; ``settings`` are ``defaults`` updated with the spec's.
      defaults: its settings and their defaults (a spec may set only these).
      once: run for the first seed only (seed-free yardsticks).
      description: one line for ``--help``.
      yardstick: not a competitor (a bound, a data baseline): never marked best.
    """

    display: str
    run: Callable[[Any, Mapping[str, Any]], MethodResult]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    once: bool = False
    description: str = ""
    yardstick: bool = True


class Experiment(abc.ABC):
    """A benchmark: its problem (`trial`), data, evaluation and named configs.

    Class attributes:
      name: the records' ``benchmark`` and ``results/<name>``.
      backend: ``"jax"`` or ``"torch"``: which estimators and driver run it.
      description: one line for ``--help``.
      config_names: the named presets; ``default_config`` is one of them.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    description: ClassVar[str] = ""
    config_names: ClassVar[tuple[str, ...]]
    default_config: ClassVar[str] = "cpu"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027 (optional hook)
        """Adds the benchmark's own flags (config overrides, data paths)."""

    @abc.abstractmethod
    def configure(self, args: argparse.Namespace) -> Any:
        """The config object of ``args.config`` with the benchmark's overrides; raises
        [`UsageError`][fg2u.experiment.runner.UsageError] naming the flag for bad values, and for missing data (which
        files to put where)."""

    def config_label(self, config: Any, args: argparse.Namespace) -> str:
        """The records' ``config`` field and file name: the config's name, ``-<tag>`` with ``--tag``."""
        name = getattr(config, "name", args.config)
        return f"{name}-{args.tag}" if args.tag else name

    def config_settings(self, config: Any) -> dict[str, Any]:
        """The config's settings besides the problem's (budget, meta optimiser, evaluation protocol)."""
        settings = getattr(config, "settings", None)
        return dict(settings()) if callable(settings) else {}

    @abc.abstractmethod
    def default_methods(self, config: Any) -> Sequence[str]:
        """The method specs that run without ``--estimators``."""

    def presets(self, config: Any) -> Mapping[str, Mapping[str, Any]]:
        """Default settings per registry or baseline name (``{"fg2u": {"num_directions": 16}}``), for settings a spec
        leaves out."""
        return {}

    def complete(self, spec: Spec, config: Any) -> Spec:
        """A spec with the config's presets filled in (innermost specs first); may wrap it in another."""
        return spec.with_defaults(self.presets(config).get(spec.key, {}))

    def baselines(self) -> Mapping[str, Baseline]:
        """The benchmark's own methods by spec name (``"random_real"``)."""
        return {}

    @abc.abstractmethod
    def tasks(self, config: Any) -> Sequence[Task]:
        """The problems the config contains (one for most benchmarks)."""

    @abc.abstractmethod
    def trial(self, config: Any, task: Task, seed: int) -> Trial:
        """A fresh trial of one (task, seed), for one run (its random draws start anew: every method of a
        seed sees the same draws). Cache expensive set-up (data, a pre-trained model) in the experiment."""

    def headline(self) -> str | None:
        """The metric the summary table shows (default: the first declared headline metric)."""
        return None

    def finish(self, records: Sequence[ResultRecord], out: Path, config: Any) -> None:  # noqa: B027 (optional hook)
        """Called after all runs (figures, extra files)."""

    def on_record(self, record: ResultRecord, result: MethodResult, out: Path) -> None:  # noqa: B027
        """Called after each record is written (an image grid of the condensed set, …)."""


# ----------------------------------------------------------------------------------------------- methods
@dataclasses.dataclass(frozen=True)
class Method:
    """One method of a run: the spec as given, the completed spec, and the estimator or baseline it built."""

    given: str
    spec: Spec
    estimator: Any = None
    baseline: Baseline | None = None

    @property
    def display(self) -> str:
        if self.baseline is not None:
            return self.baseline.display
        return str(getattr(self.estimator, "display_name", type(self.estimator).__name__))

    @property
    def settings(self) -> dict[str, Any]:
        if self.baseline is not None:
            return {"estimator": self.baseline.display, **dict(self.spec.settings)}
        return dict(self.estimator.settings())


def backend_module(experiment: Experiment) -> Any:
    """``fg2u.jax`` or ``fg2u.torch`` — imported only when a benchmark runs (optional heavy dependency)."""
    if experiment.backend not in ("jax", "torch"):
        raise ValueError(f"{type(experiment).__name__}.backend must be 'jax' or 'torch', got {experiment.backend!r}")
    return importlib.import_module(f"fg2u.{experiment.backend}")


def resolve_methods(experiment: Experiment, config: Any, texts: Sequence[str]) -> list[Method]:
    """Parses and builds every method before any work; [`UsageError`][fg2u.experiment.runner.UsageError] naming the bad
    spec otherwise."""
    baselines = {key.lower(): b for key, b in experiment.baselines().items()}
    backend = None
    methods = []
    for text in texts:
        try:
            spec = parse(text)
        except SpecError as error:
            raise UsageError(f"--estimators: {error}") from None
        if spec.key in baselines:
            baseline = baselines[spec.key]
            unknown = sorted(set(spec.settings) - set(baseline.defaults))
            if unknown:
                raise UsageError(
                    f"--estimators {text!r}: {baseline.display} has no setting(s) {', '.join(unknown)}; "
                    f"its settings are {', '.join(baseline.defaults) or 'none'}"
                )
            full = spec.with_defaults({**baseline.defaults, **experiment.presets(config).get(spec.key, {})})
            methods.append(Method(text, full, baseline=baseline))
            continue
        if backend is None:
            backend = backend_module(experiment)
        full = completed(spec, lambda s: experiment.complete(s, config))
        try:
            estimator = build(full, backend.BACKEND)
        except (ValueError, TypeError) as error:
            choices = ", ".join([*backend.BACKEND.names(), *baselines])
            raise UsageError(f"--estimators {text!r}: {error} (methods: {choices})") from None
        methods.append(Method(text, full, estimator=estimator))
    return methods


# --------------------------------------------------------------------------------------------- one run
def run_method(
    experiment: Experiment, trial: Trial, method: Method, *, desc: str = "", progress: bool = True
) -> MethodResult:
    """Runs one method on one trial: a baseline's own procedure, the trial's own measurement of an estimator
    ([`Trial.measure`][fg2u.experiment.runner.Trial.measure]), or the meta loop of an estimator through the
    backend's driver with the anytime curve. Raises [`fg2u.experiment.loop.Diverged`][fg2u.experiment.loop.Diverged]
    on divergence."""
    if method.baseline is not None:
        return method.baseline.run(trial, dict(method.spec.settings))
    measured = trial.measure(method.spec)
    if measured is not None:
        return measured
    driver = importlib.import_module(f"fg2u.{experiment.backend}.harness").Driver()
    trial.use_estimator(method.estimator)
    prepared: Prepared = driver.prepare(method.estimator, trial)
    costs_per_step = trial.step_costs(method.estimator)
    initial = trial.initial_costs()
    points = curve_steps(trial.num_meta_steps, trial.curve_points) if trial.curve_metric else ()

    def evaluate(carry: Any) -> float:
        return trial.evaluate(prepared.phi(carry), final=False)[trial.curve_metric or ""]

    def stop_when(i: int, carry: Any) -> bool:
        return trial.stop_when(i, prepared.phi(carry))

    loop = run_meta_loop(
        prepared.step,
        prepared.carry,
        trial.num_meta_steps,
        desc=desc,
        progress_bar=progress,
        log_every=trial.log_every,
        block=prepared.block,
        stop_when=stop_when,
        evaluate=evaluate if points else None,
        evaluate_at=points,
    )
    phi = prepared.phi(loop.carry)
    metrics = dict(trial.evaluate(phi, final=True))
    metrics.update(
        meta_time_s=loop.seconds,
        compile_time_s=prepared.compile_s,
        meta_step_time_s=loop.step_s,
        steps_run=float(loop.steps_run),
        final_outer_loss=_tail_mean([v for _, v in loop.losses]),
    )
    curve = None
    if loop.evaluations:
        steps = [k for k, _, _ in loop.evaluations]
        curve = Curve(
            metric=trial.curve_metric or "",
            step=tuple(steps),
            seconds=tuple(prepared.compile_s + s for _, s, _ in loop.evaluations),
            value=tuple(v for _, _, v in loop.evaluations),
            cost={name: tuple(initial.get(name, 0.0) + k * c for k in steps) for name, c in costs_per_step.items()},
        )
        metrics.update(trial.curve_metrics(curve))
    details = {**prepared.details, **trial.details()}
    return MethodResult(metrics=metrics, curve=curve, memory=prepared.memory, details=details, phi=phi)


GRADIENT_CHECK_METRICS = ("grad_cosine", "grad_projection", "grad_norm_ratio", "grad_mse_ratio")
#: The task of a gradient check's records: this prefix + the benchmark task (the leaderboard and the gate read it).
GRADIENT_CHECK_TASK_PREFIX = "gradient-check-"


def gradient_check(experiment: Experiment, trial: Trial, method: Method, draws: int) -> MethodResult:
    """The estimator's meta-gradient against the trial's exact ``reference`` at φ₀ on ``draws`` draws of the
    trial's inputs (the first estimate of each meta step's inputs), with the trial's keys — all fixed by the
    seed, so the metrics are deterministic for given code:

    * ``grad_projection`` = Σ_r ⟨ĝ_r, g_r⟩ / Σ_r ‖g_r‖² — 1 in expectation for an unbiased estimator, −1 for a
      flipped sign, b or 1/b for a wrong 1/b scale;
    * ``grad_cosine`` — the mean over draws of cos(ĝ_r, g_r);
    * ``grad_norm_ratio`` = (Σ_r ‖ĝ_r‖² / Σ_r ‖g_r‖²)^½;
    * ``grad_mse_ratio`` = Σ_r ‖ĝ_r − g_r‖² / Σ_r ‖g_r‖² — for FG²U with Rademacher directions (N − 1)/b in
      expectation (Lemma 3.1): directions repeated across chunks make it larger.

    Non-finite estimates give NaN metrics (the gate fails on them)."""
    driver = importlib.import_module(f"fg2u.{experiment.backend}.harness").Driver()
    backend = backend_module(experiment)
    reference = build(trial.reference, backend.BACKEND)
    trial.use_estimator(method.estimator)
    phi = trial.initial_phi()
    estimates = driver.estimates_fn(method.estimator, reference, trial)
    dot = ref_sq = est_sq = err_sq = 0.0
    cosines = []
    start = time.perf_counter()
    for r in range(draws):
        key, inputs = trial.next_inputs(r)
        estimate, exact = estimates(phi, key, inputs, trial.inputs_for(reference, r, inputs))
        dot += float(estimate @ exact)
        ref_sq += float(exact @ exact)
        est_sq += float(estimate @ estimate)
        err_sq += float((estimate - exact) @ (estimate - exact))
        cosines.append(float(estimate @ exact) / math.sqrt(float(estimate @ estimate) * float(exact @ exact)))
    metrics = {
        "grad_projection": dot / ref_sq,
        "grad_cosine": math.fsum(cosines) / len(cosines),
        "grad_norm_ratio": math.sqrt(est_sq / ref_sq),
        "grad_mse_ratio": err_sq / ref_sq,
        "check_seconds": time.perf_counter() - start,
    }
    details = {"draws": draws, "reference": trial.reference, "meta_dimension": int(len(estimate))}
    return MethodResult(metrics={k: v if math.isfinite(v) else math.nan for k, v in metrics.items()}, details=details)


def _tail_mean(values: Sequence[float]) -> float:
    """The mean of the last tenth of the logged losses (at least one), NaN when none were logged."""
    if not values:
        return math.nan
    tail = values[-max(1, len(values) // 10) :]
    return math.fsum(tail) / len(tail)


# ------------------------------------------------------------------------------------------ command line
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <message> (see --help)``, exit 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"--seeds takes integers >= 0 (numpy's generators refuse negatives), got {value}"
        )
    return value


def build_parser(experiment: Experiment) -> argparse.ArgumentParser:
    """The benchmark's command line: the common flags, then
    [`Experiment.add_arguments`][fg2u.experiment.runner.Experiment.add_arguments]."""
    parser = _Parser(
        prog=f"python -m fg2u_bench_{experiment.name}",
        description=experiment.description or experiment.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if experiment.default_config not in experiment.config_names:
        raise ValueError(f"default_config {experiment.default_config!r} is not one of {experiment.config_names}")
    parser.add_argument(
        "--config",
        choices=experiment.config_names,
        default=experiment.default_config,
        help=f"named configuration (default: {experiment.default_config})",
    )
    baselines = ", ".join(f"{k} ({b.description or b.display})" for k, b in experiment.baselines().items())
    parser.add_argument(
        "--estimators",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="methods to run, in the spec grammar name[:key=value,...] (e.g. fg2u:num_directions=32, "
        "two_phase:first=hessian_free,second=fg2u(num_directions=8)); any registered estimator "
        "(python -c 'import fg2u.estimators as e; print(e.names())')"
        + (f", or this benchmark's methods: {baselines}" if baselines else "")
        + "; default: the config's list",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=_seed,
        default=list(DEFAULT_SEEDS),
        help=f"random seeds, one run each (default: {' '.join(map(str, DEFAULT_SEEDS))})",
    )
    parser.add_argument(
        "--out",
        default=f"results/{experiment.name}",
        help=f"folder for result records (default: results/{experiment.name})",
    )
    parser.add_argument("--tag", default=None, help="suffix of the records' config label (a reduced variant)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in CI logs)")
    parser.add_argument(
        "--gradient-check",
        type=int,
        default=0,
        metavar="DRAWS",
        help="also compare every estimator's meta-gradient with the exact one at φ₀ on DRAWS fixed draws of "
        "the first seed (task gradient-check-<task>: projection, cosine, norm and error ratios; what the CI "
        "gate checks)",
    )
    parser.add_argument(
        "--gradient-check-only", action="store_true", help="run the gradient check only, no meta-training"
    )
    experiment.add_arguments(parser)
    return parser


def _summary(records: Sequence[ResultRecord], metric: str | None) -> str:
    if metric is None or not records:
        return ""
    lines = [f"summary ({metric}: mean ± std over seeds; runs that did not finish are counted apart):"]
    groups: dict[tuple[str, str, str], list[ResultRecord]] = {}
    for r in records:
        if r.status == "ok" and metric not in r.metrics:  # another kind of record (a gradient check)
            continue
        groups.setdefault((r.task, r.estimator, r.estimator_spec), []).append(r)
    if not groups:
        return ""
    width = max(len(f"{task} {est}") for task, est, _ in groups)
    for (task, est, _), rs in groups.items():
        values = [r.metrics[metric] for r in rs if r.status == "ok" and math.isfinite(r.metrics.get(metric, math.nan))]
        bad = len(rs) - len(values)
        text = "—" if not values else f"{statistics.fmean(values):.4g}"
        if len(values) > 1:
            text += f" ± {statistics.stdev(values):.2g}"
        extra = f", {bad} diverged/failed" if bad else ""
        lines.append(f"  {f'{task} {est}':<{width}}  {text}  (n={len(values)}{extra})")
    return "\n".join(lines)


def _row(record: ResultRecord, metric: str | None) -> str:
    if metric not in record.metrics and "grad_projection" in record.metrics:
        metric = "grad_projection"  # a gradient check's record
    value = record.metrics.get(metric or "", math.nan)
    shown = f"{metric}={value:.4g}" if metric and math.isfinite(value) else ""
    memory = f", memory {record.memory.bytes / 2**20:.1f} MiB ({record.memory.measure})" if record.memory else ""
    return (
        f"[{record.status}] {record.task} {record.estimator} seed {record.seed}: {shown}"
        f" ({record.wall_time_s:.1f} s{memory})"
    )


def main(experiment: Experiment, argv: Sequence[str] | None = None) -> int:
    """Runs a benchmark from the command line (module docstring); returns the exit code.

    0: every run finished (diverged runs included: divergence is a result); 1: a run failed with an error;
    2: bad input; 130: interrupted.
    """
    parser = build_parser(experiment)
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        config = experiment.configure(args)
        texts = args.estimators if args.estimators is not None else list(experiment.default_methods(config))
        methods = resolve_methods(experiment, config, texts)
        tasks = list(experiment.tasks(config))
        out = check_writable(args.out)
    except (UsageError, OSError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    label = experiment.config_label(config, args)
    path = out / f"{label}.jsonl"
    if args.gradient_check < 0 or (args.gradient_check_only and not args.gradient_check):
        print(
            f"{prog}: error: --gradient-check takes a number of draws >= 1 (with --gradient-check-only)",
            file=sys.stderr,
        )
        return 2
    checks = [  # deterministic for given code and seed: the first seed is enough
        (task, args.seeds[0], method, True)
        for task in tasks
        for method in methods
        if args.gradient_check and method.baseline is None
    ]
    runs = checks + [
        (task, seed, method, False)
        for task in tasks
        for i, seed in enumerate(args.seeds)
        for method in methods
        if not args.gradient_check_only and not (method.baseline is not None and method.baseline.once and i > 0)
    ]
    context = start_run(
        argv if argv is not None else sys.argv, code=Path(sys.modules[type(experiment).__module__].__file__ or ".")
    )
    write_run_marker(out, context, status="running", expected=len(runs), written=0)
    metric = experiment.headline() or _declared_headline(experiment.name)
    print(f"{experiment.name}: config {label}, {len(runs)} run(s) -> {path} (run {context.run_id})", flush=True)
    written: list[ResultRecord] = []
    failures = 0
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for task, seed, method, check in runs:
            start = time.perf_counter()
            try:
                trial = experiment.trial(config, task, seed)  # a fresh trial per run: its own random draws
                if check:
                    result = gradient_check(experiment, trial, method, args.gradient_check)
                else:
                    result = run_method(
                        experiment,
                        trial,
                        method,
                        desc=f"{task.name} {method.display} seed {seed}",
                        progress=not args.no_progress,
                    )
            except Diverged as error:
                result = MethodResult(
                    metrics={"diverged_at_step": float(error.step)}, status="diverged", details={"error": str(error)}
                )
            except (UsageError, KeyboardInterrupt):
                raise
            except Exception as error:  # noqa: BLE001 (recorded, reported, and the exit code says so)
                traceback.print_exc()
                failures += 1
                result = MethodResult(
                    metrics={}, status="failed", details={"error": f"{type(error).__name__}: {error}"}
                )
            record = make_record(
                benchmark=experiment.name,
                task=GRADIENT_CHECK_TASK_PREFIX + task.name if check else task.name,
                dataset=task.dataset,
                config=label,
                estimator=method.display,
                estimator_spec=str(method.spec),
                estimator_settings=method.settings,
                problem_settings=dict(task.problem_settings),
                config_settings=experiment.config_settings(config),
                seed=seed,
                status=result.status,
                metrics=result.metrics,
                memory=result.memory,
                curve=result.curve,
                details=result.details,
                wall_time_s=time.perf_counter() - start,
                run=context,
            )
            append_records(path, [record])
            written.append(record)
            experiment.on_record(record, result, out)
            print(_row(record, metric), flush=True)
            write_run_marker(out, context, status="running", expected=len(runs), written=len(written))
        experiment.finish(written, out, config)
    except UsageError as error:
        write_run_marker(out, context, status="failed", expected=len(runs), written=len(written), note=str(error))
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        write_run_marker(out, context, status="interrupted", expected=len(runs), written=len(written))
        print(
            f"\n{prog}: interrupted (Ctrl-C) after {len(written)} of {len(runs)} run(s); the records written so far "
            f"are in {path}, labelled partial (run {context.run_id})",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(130)  # skip interpreter shutdown: XLA's compile threads can crash it mid-compilation
    finally:
        signal.signal(signal.SIGINT, previous)
    status = "failed" if failures else "complete"
    write_run_marker(out, context, status=status, expected=len(runs), written=len(written))
    summary = _summary(written, metric)
    if summary:
        print("\n" + summary)
    if failures:
        print(f"{prog}: {failures} run(s) failed with an error (see above); their records say status 'failed'")
        return 1
    return 0


def _declared_headline(name: str) -> str | None:
    """The first headline metric the benchmark's plugin declares (entry points ``fg2u.benchmarks``)."""
    from fg2u.benchmarks import discover  # noqa: PLC0415 (reads entry points: only when a benchmark runs)

    for bench in discover():
        if bench.name == name and bench.metrics:
            return bench.metrics[0].name
    return None
