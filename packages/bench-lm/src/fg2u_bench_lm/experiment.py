"""CaMeLS on the core's runner: the problem, data, evaluation and configs — nothing else.

``python -m fg2u_bench_lm --config smoke|cpu|cpu-warmup|cpu-two-phase|paper|paper-two-phase --estimators SPEC
...``: for every seed, build the data streams and a tokenizer and pre-train the base model on the QA format
(cached, ``--cache-dir``); then for every method adapt the base model on the test stream with token
weights and score its greedy answers (EM, prefix EM, F1, in percent), one record per (seed, method) in
``<out>/<config>.jsonl`` (:mod:`fg2u.experiment.runner` does the meta loop, the records, the memory of the
first meta step and the anytime curve of the validation meta-objective).

Methods: any registered estimator by spec (``rgu``, ``rgu_checkpointed``, ``fg2u:num_directions=8``): it
meta-trains a weight model (φ) whose weights then drive the adaptation; and three weightings without
meta-gradients (:class:`~fg2u.experiment.Baseline` yardsticks): ``base`` (no adaptation: the closed-book
guess), ``uniform`` (plain fine-tuning) and ``oracle`` (1 on the answer tokens, 0 elsewhere).

Two evaluation protocols, both in every record: the config's optimiser (Adam, metrics ``em``, ``em_prefix``,
``f1``) and SGD at ``eval_sgd_lr`` (metrics ``*_sgd``), which replays the meta-training inner loop. An
adaptation whose loss or parameters stop being finite ends the run with status ``"diverged"``.

``--memory-sweep`` runs the task ``memory`` instead: the peak-RSS growth of one meta-gradient at each T of
the config's ``memory_steps``, every (estimator, T) in a fresh interpreter
(:func:`fg2u.experiment.memory.measure_in_subprocess`; builder :func:`fg2u_bench_lm.memory.build_meta_gradient`).

Warm starts (the paper's two-phase protocol): a config with ``save_weights`` (``cpu-warmup``, or
``--save-weights``) saves every learned weight model as ``<out>/weights/<config>-<method>-seed<s>-<run id>.pt``
(never overwritten); ``--warm-start PATH`` (``{seed}`` and ``*`` allowed; default for ``cpu-two-phase``: the
``cpu-warmup`` RGU weights in ``<out>/weights``) starts φ from such a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fg2u.experiment import (
    Baseline,
    Diverged,
    Experiment,
    Memory,
    MethodResult,
    ResultRecord,
    Spec,
    Task,
    Trial,
    UsageError,
    main,
    progress,
    read_records,
)
from fg2u.experiment.memory import measure_in_subprocess
from fg2u.torch import meta_objective, unroll

from . import camels, evaluate, models
from .configs import CONFIG_NAMES, LMConfig, get_config
from .data import DataFileMissingError, resolve_data_file
from .prepare import SQUAD_DEV_LABEL, LMRun, SeedSetup, cache_key, dataset_label, prepare_seed
from .tokenizer import encode_documents, span_token_mask
from .weights import check_matches, load_weights, resolve_warm_start, save_weights, sha256

__all__ = ["Camels", "CamelsTrial", "MemoryTrial", "EXPERIMENT", "DATA_SOURCES", "MEMORY_METHODS", "cli"]

DATA_SOURCES = ("synthetic", "squad-dev", "squad", "streamingqa")
MEMORY_METHODS = ("rgu", "rgu_checkpointed", "fg2u")
CACHE_ENV = "FG2U_LM_CACHE"
UNIFORM_SGD_WEIGHT = math.log(2) / 3.0
"""The weight model's initial weight softplus_β(0) = log(2)/β, β = 3: uniform weighting under the SGD
protocol is plain fine-tuning at this fraction of the inner lr (what meta-training starts from)."""
_BASELINES = ("base", "uniform", "oracle")


# ------------------------------------------------------------------------------------------- evaluation
def _protocols(config: LMConfig, sgd_weight: float = 1.0) -> list[tuple[str, str, float]]:
    """``(metric suffix, optimiser, lr)`` of the evaluation protocols: the config's, and SGD at ``eval_sgd_lr``
    times ``sgd_weight`` (the uniform weighting's weight under SGD, see :data:`UNIFORM_SGD_WEIGHT`)."""
    protocols = [("", config.eval_optimizer, config.eval_lr)]
    if config.eval_sgd_lr is not None and config.eval_optimizer != "sgd":
        protocols.append(("_sgd", "sgd", config.eval_sgd_lr * sgd_weight))
    return protocols


def evaluate_weighting(
    trial: CamelsTrial, weight_fn: Callable, *, adapt: bool = True, sgd_weight: float = 1.0
) -> tuple[dict[str, float], list[dict]]:
    """EM / prefix EM / F1 (%) of the adapted base model under every protocol (suffix ``_sgd`` for SGD), and
    the per-question rows. Raises :class:`~fg2u.experiment.Diverged` when an adaptation stops being finite."""
    c, s = trial.config, trial.setup
    docs = list(s.splits.test)[: c.num_eval_docs] if c.num_eval_docs else list(s.splits.test)
    metrics: dict[str, float] = {"pretrain_final_loss": s.pretrain_loss}
    rows: list[dict] = []
    for suffix, optimizer, lr in _protocols(c, sgd_weight):
        bar = progress(total=len(docs), desc=f"evaluate{suffix or ''} seed {trial.seed}", enabled=trial.show_progress)
        try:
            scores, r = evaluate.evaluate_stream(
                s.base,
                s.tokenizer,
                docs,
                weight_fn,
                lr=lr,
                max_doc_tokens=c.spec.max_doc_tokens,
                chunk_size=c.eval_chunk,
                max_new_tokens=c.max_new_tokens,
                optimizer=optimizer,
                adapt=adapt,
                progress=bar.update,
            )
        except evaluate.AdaptationDiverged as error:
            raise Diverged(
                f"evaluation ({optimizer} at lr {lr:g}): {error}; lower the evaluation lr (--eval-lr)",
                trial.num_meta_steps,
            ) from None
        finally:
            bar.close()
        metrics.update({f"{k}{suffix}": v for k, v in scores.items()})
        rows.extend({**row, "protocol": optimizer} for row in r)
        if not adapt:  # no adaptation: the protocols give the same answers
            for suffix2, _, _ in _protocols(c)[1:]:
                metrics.update({f"{k}{suffix2}": v for k, v in scores.items()})
            break
    return metrics, rows


def weight_statistics(trial: CamelsTrial, weight_fn: Callable) -> dict[str, float]:
    """Mean and coefficient of variation (std/mean) of the weights over the test tokens (a CV near 0: still
    nearly uniform) and, where answer spans are known, the mean weight on answer tokens over the mean weight
    on the other tokens (1: no preference)."""
    docs = list(trial.setup.splits.test)
    max_tokens = trial.config.spec.max_doc_tokens
    batch = encode_documents(trial.setup.tokenizer, docs, max_tokens)
    mask = batch["attention_mask"].bool()
    with torch.no_grad():
        weights = weight_fn(batch["input_ids"], batch["attention_mask"])
    w = weights[mask]
    mean = float(w.mean())
    out = {"test_weight_mean": mean, "test_weight_cv": float(w.std()) / max(mean, 1e-12)}
    if docs and all(d.answer_spans for d in docs):
        answer = span_token_mask(trial.setup.tokenizer, docs, max_tokens, scope="answer").bool() & mask
        other = mask & ~answer
        out["test_weight_answer_ratio"] = float(weights[answer].mean()) / max(float(weights[other].mean()), 1e-12)
    return out


# ----------------------------------------------------------------------------------------------- trials
class CamelsTrial(Trial):
    """One seed of CaMeLS meta-training: φ = the weight model's parameters that require grad.

    Meta step ``i``: ``grad_accum`` tasks of T documents drawn with ``random.Random(seed)`` (the same draws for
    every method of a seed), estimator keys ``seed·1000003 + i·grad_accum + a``; with ``carry_reset`` R the
    inner loops start from the carried base model, advanced after each draw by the first task's inner loop
    under the current φ (no gradient) and reset to the pre-trained model every R documents. The anytime curve
    is the validation meta-objective L(φ) on ``validation_tasks`` fixed tasks (``random.Random(10000 +
    seed)``, the meta-validation stream).
    """

    curve_metric = "val_meta_objective"
    log_every = 1

    def __init__(self, run: LMRun, setup: SeedSetup, seed: int, *, show_progress: bool = True) -> None:
        self.run, self.config, self.setup, self.seed = run, run.config, setup, seed
        self.show_progress = show_progress
        c = self.config
        self.num_meta_steps = c.meta_steps
        self.grad_accumulation = c.grad_accum
        self.curve_points = c.curve_points
        self.theta0 = models.param_dict(setup.base)
        self.rng = random.Random(seed)
        self.carried: dict | None = None
        self.streamed = 0
        self.weight_model: Any = None
        self.phi: dict | None = None
        self.rows: list[dict] = []
        self._curve: list[float] = []
        self._details: dict[str, Any] = {}
        self._cpu_start: float | None = None  # process CPU time at the first draw (the meta loop's start)
        self._cpu_evaluating = 0.0  # CPU time spent on the anytime curve, left out like the loop's seconds

    def initial_phi(self) -> dict:
        c = self.config
        self.weight_model = models.build_weight_model(
            self.run.weight_model_dir or c.weight_model_size,
            self.setup.tokenizer,
            c.n_positions,
            seed=self.seed,
            backbone=c.weight_backbone,
            base=self.setup.base,
        )
        phi = {k: p.detach() for k, p in self.weight_model.named_parameters() if p.requires_grad}
        path = self.run.warm_start.get(self.seed)
        if path is not None:
            saved = load_weights(path, c)
            check_matches(path, saved, phi)
            with torch.no_grad():
                for k, v in phi.items():
                    v.copy_(saved["phi"][k])
            self._details["warm_start"] = {"path": path, "sha256": sha256(path), **saved["meta"]}
        self.phi = phi
        self._details.update(
            threads=self.run.threads,
            weight_params=sum(int(p.numel()) for p in phi.values()),
            base_params=sum(int(p.numel()) for p in self.theta0.values()),
            pretrain_seconds=self.setup.pretrain_seconds,
        )
        return phi

    def meta_optimizer(self) -> Callable:
        lr = self.config.outer_lr
        return lambda params: torch.optim.Adam(params, lr=lr)

    def make_problem(self, inputs: Any) -> Any:
        return inputs  # next_inputs draws the problems themselves (their inner loops may start from a carry)

    def meta_step_options(self) -> dict[str, Any]:
        return {"max_grad_norm": self.config.max_grad_norm}

    def next_inputs(self, step: int) -> tuple[list[int], list[Any]]:
        if self._cpu_start is None:
            self._cpu_start = time.process_time()
        c, s = self.config, self.setup
        problems = [
            camels.make_task(
                s.base,
                self.weight_model,
                self.theta0,
                s.tokenizer,
                s.splits.meta_train,
                s.splits.locality,
                c.spec,
                self.rng,
                theta_start=self.carried,
            )
            for _ in range(c.grad_accum)
        ]
        if c.carry_reset is not None:  # advance (or reset) the base model under the φ of this step's estimates
            self.streamed += c.spec.num_steps
            if self.streamed >= c.carry_reset:
                self.carried, self.streamed = None, 0
            else:
                with torch.no_grad():
                    self.carried = {k: v.detach() for k, v in unroll(problems[0], dict(self.phi or {})).items()}
        keys = [self.seed * 1_000_003 + step * c.grad_accum + a for a in range(c.grad_accum)]
        return keys, problems

    def validation_objective(self) -> float:
        """Mean meta-objective L(φ) over the fixed validation tasks (the same tasks at every evaluation)."""
        c, s = self.config, self.setup
        spec = c.validation_spec
        docs = s.splits.meta_val
        if len(docs) < spec.num_steps:
            raise UsageError(
                f"the validation meta-objective needs T = {spec.num_steps} documents but the meta-validation "
                f"stream has {len(docs)}; give a config with validation_num_steps <= {len(docs)}"
            )
        rng = random.Random(10_000 + self.seed)
        phi = models.param_dict(self.weight_model)
        values = []
        with torch.no_grad():
            for _ in range(c.validation_tasks):
                problem = camels.make_task(
                    s.base, self.weight_model, self.theta0, s.tokenizer, docs, s.splits.locality, spec, rng
                )
                values.append(float(meta_objective(problem)(phi)))
        return statistics.fmean(values)

    def weight_fn(self, input_ids: Any, attention_mask: Any) -> Any:
        """The learned weights ``(N, L)`` of documents ``(N, L)`` (no gradient)."""
        self.weight_model.eval()
        with torch.no_grad():
            return self.weight_model(input_ids, attention_mask)

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        if not final:
            start = time.process_time()
            value = self.validation_objective()
            self._curve.append(value)
            self._cpu_evaluating += time.process_time() - start
            return {"val_meta_objective": value}
        metrics = weight_statistics(self, self.weight_fn)
        if self._cpu_start is not None:
            # CPU seconds of this one-thread process in the meta loop: the budget that equal-time comparisons
            # hold fixed (wall-clock on a free core; unlike meta_time_s, not inflated by other processes)
            metrics["meta_cpu_time_s"] = time.process_time() - self._cpu_start - self._cpu_evaluating
        scores, self.rows = evaluate_weighting(self, self.weight_fn)
        metrics.update(scores)
        if self._curve:
            metrics.update(val_outer_loss_before=self._curve[0], val_outer_loss_after=self._curve[-1])
        return metrics

    def details(self) -> dict[str, Any]:
        return dict(self._details)


class MemoryTrial(Trial):
    """The ``memory`` task at one T: :meth:`measure` runs one meta-gradient of the estimator in a fresh
    interpreter and reports the growth of its peak RSS; there is no meta loop."""

    def __init__(self, run: LMRun, num_steps: int, seed: int) -> None:
        self.run, self.num_steps, self.seed = run, num_steps, seed

    def measure(self, spec: Spec) -> MethodResult:
        c = self.run.config
        kwargs = {
            "config": c.to_dict(),
            "spec": str(spec),
            "num_steps": self.num_steps,
            "seed": self.seed,
            "model_dir": self.run.model_dir,
            "weight_model_dir": self.run.weight_model_dir,
        }
        m = measure_in_subprocess("fg2u_bench_lm.memory:build_meta_gradient", kwargs, threads=self.run.threads)
        grown = int(m["peak_rss_growth_bytes"])
        info = dict(m["info"])
        metrics = {
            "peak_memory_mib": grown / 2**20,
            "seconds": float(m["seconds"]),
            "within_budget": float(grown <= c.memory_budget_bytes),
            "outer_loss": float(info.pop("outer_loss")),
        }
        return MethodResult(
            metrics=metrics,
            memory=Memory("peak_rss_growth", grown),
            details={"peak_reset": m["peak_reset"], "threads": self.run.threads, **info},
        )

    def _no_loop(self) -> Any:
        raise TypeError("the memory task measures one meta-gradient (MemoryTrial.measure); it has no meta loop")

    def initial_phi(self) -> Any:
        return self._no_loop()

    def meta_optimizer(self) -> Any:
        return self._no_loop()

    def make_problem(self, inputs: Any) -> Any:
        return self._no_loop()

    def next_inputs(self, step: int) -> tuple[Any, Any]:
        return self._no_loop()

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        return self._no_loop()


# -------------------------------------------------------------------------------------------- baselines
def _fixed_weights(weight_fn: Callable, *, adapt: bool = True, sgd_weight: float = 1.0) -> Callable:
    def run(trial: CamelsTrial, settings: Mapping[str, Any]) -> MethodResult:
        scores, trial.rows = evaluate_weighting(
            trial, weight_fn(settings), adapt=adapt, sgd_weight=float(settings.get("sgd_weight", sgd_weight))
        )
        details = {"pretrain_seconds": trial.setup.pretrain_seconds, "threads": trial.run.threads}
        return MethodResult(metrics=scores, details=details)

    return run


def _uniform(settings: Mapping[str, Any]) -> Callable:
    return evaluate.uniform_weights


def _oracle(settings: Mapping[str, Any]) -> Callable:
    return evaluate.OracleWeights(str(settings["scope"]))


# ----------------------------------------------------------------------------------------- experiment
class Camels(Experiment):
    """CaMeLS: meta-learned token weights for online adaptation of a language model (synthetic or real QA)."""

    name = "lm"
    backend = "torch"
    description = __doc__
    config_names = CONFIG_NAMES
    default_config = "cpu"

    def __init__(self) -> None:
        self._setup: tuple[tuple, SeedSetup] | None = None
        self._trial: CamelsTrial | None = None
        self._show_progress = True
        self._memory_sweep = False

    def headline(self) -> str | None:
        """F1 (the plugin's first metric) for the F1 runs; the peak memory for ``--memory-sweep``."""
        return "peak_memory_mib" if self._memory_sweep else None

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data",
            default="synthetic",
            choices=DATA_SOURCES,
            help="synthetic: the generated sparse-facts stream (default, offline); squad-dev: SQuAD v1.1 dev "
            f"split by article (label {SQUAD_DEV_LABEL!r}); squad: CaMeLS's SQuAD-Seq (needs the train file); "
            "streamingqa",
        )
        p.add_argument(
            "--data-file",
            default=None,
            help="squad-dev: dev-v1.1.json; squad: train-v1.1.json; streamingqa: questions JSONL "
            "(default: that name in $FG2U_LM_DATA)",
        )
        p.add_argument(
            "--test-file", default=None, help="squad: the validation JSON (default: $FG2U_LM_DATA/dev-v1.1.json)"
        )
        p.add_argument("--documents-file", default=None, help="streamingqa: documents JSONL (records with evidence_id)")
        p.add_argument(
            "--model-dir", default=None, help="a local transformers model folder for the base model (+ tokenizer)"
        )
        p.add_argument(
            "--weight-model-dir", default=None, help="a local transformers model folder for the weight model"
        )
        for flag, kind, what in (
            ("--meta-steps", int, "meta steps"),
            ("--inner-steps", int, "unroll depth T (documents per meta-training task), for every method"),
            ("--grad-accum", int, "estimates averaged per meta step, for every method"),
            ("--outer-lr", float, "meta (outer) Adam learning rate, for every method"),
            ("--eval-lr", float, "evaluation learning rate"),
            ("--carry-reset", int, "paper protocol: carry the base model across meta steps, reset every R documents"),
        ):
            p.add_argument(flag, type=kind, default=None, help=f"override the config's {what}")
        p.add_argument(
            "--eval-optimizer", choices=("adam", "sgd"), default=None, help="override the evaluation optimiser"
        )
        p.add_argument(
            "--weight-backbone",
            choices=models.WEIGHT_BACKBONES,
            default=None,
            help="override the weight model's backbone: fresh, base (a copy of the pre-trained base LM), "
            "base-frozen (that copy fixed: φ = the head) or base-frozen-readout (φ = the head's last layer)",
        )
        p.add_argument(
            "--warm-start",
            default=None,
            metavar="PATH",
            help="start φ from a saved weight model (PATH may hold {seed} and *; one file per seed); default for "
            "configs with a warm start: <out>/weights/<that config>-RGU-seed{seed}-*.pt",
        )
        p.add_argument("--save-weights", action="store_true", help="save each learned weight model in <out>/weights/")
        p.add_argument(
            "--memory-sweep",
            action="store_true",
            help="instead of F1 runs: peak memory of one meta-gradient at each T of the config's memory_steps "
            f"(task 'memory'; default estimators {' '.join(MEMORY_METHODS)})",
        )
        p.add_argument(
            "--memory-steps", type=int, nargs="+", default=None, metavar="T", help="override the sweep's T values"
        )
        p.add_argument(
            "--heatmap-docs", type=int, default=4, help="test documents in the token-weight heat map (0: none)"
        )
        p.add_argument(
            "--predictions", action="store_true", help="also write the per-question predictions (JSON Lines)"
        )
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
        p.add_argument(
            "--cache-dir",
            default=None,
            help=f"pre-trained base models are cached here (default: ${CACHE_ENV} or ~/.cache/fg2u_bench_lm; 'off': none)",
        )

    def configure(self, args: argparse.Namespace) -> LMRun:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self._show_progress = not args.no_progress
        self._memory_sweep = bool(args.memory_sweep)
        config = get_config(args.config)
        changes = {
            k: v
            for k, v in {
                "meta_steps": args.meta_steps,
                "inner_steps": args.inner_steps,
                "grad_accum": args.grad_accum,
                "outer_lr": args.outer_lr,
                "eval_lr": args.eval_lr,
                "eval_optimizer": args.eval_optimizer,
                "weight_backbone": args.weight_backbone,
                "carry_reset": args.carry_reset,
            }.items()
            if v is not None
        }
        if args.memory_steps is not None:
            bad = [t for t in args.memory_steps if t < 1]
            if bad:
                raise UsageError(f"--memory-steps takes T >= 1, got {bad[0]}")
            changes["memory_steps"] = tuple(args.memory_steps)
        if args.save_weights:
            changes["save_weights"] = True
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        if args.heatmap_docs < 0:
            raise UsageError(f"--heatmap-docs must be >= 0, got {args.heatmap_docs}")
        try:
            config = config.replace(**changes)
        except (ValueError, TypeError) as error:
            flag = next((f"--{k.replace('_', '-')}" for k in changes if k in str(error)), "--config")
            if "T)" in str(error):
                flag = "--inner-steps"
            raise UsageError(f"{flag}: {error}") from None
        if (
            config.validation_spec.num_steps > config.num_meta_val
            and args.data == "synthetic"
            and not args.memory_sweep
        ):
            raise UsageError(
                f"--inner-steps {config.inner_steps}: the validation meta-objective unrolls "
                f"{config.validation_spec.num_steps} documents but config {config.name} has {config.num_meta_val} "
                "meta-validation documents; use a config with validation_num_steps set (cpu-two-phase)"
            )
        if args.memory_sweep:
            given = args.estimators or []
            fixed = [t for t in given if t.split(":")[0].strip().lower() in _BASELINES]
            if fixed:
                raise UsageError(
                    f"--memory-sweep measures meta-gradient estimators; {fixed[0]!r} is a weighting without one "
                    f"(drop it from --estimators)"
                )
            if args.data != "synthetic":
                raise UsageError("--memory-sweep measures on the synthetic stream; drop --data")
        files = self._data_files(args)
        cache = args.cache_dir or os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "fg2u_bench_lm")
        pattern = args.warm_start
        if pattern is None and config.warm_start is not None and not args.memory_sweep:
            pattern = str(Path(args.out) / "weights" / f"{config.warm_start}-RGU-seed{{seed}}-*.pt")
        warm = resolve_warm_start(pattern, args.seeds) if pattern is not None and not args.memory_sweep else {}
        for path in warm.values():
            load_weights(path, config)
        torch.set_num_threads(args.threads)
        return LMRun(
            config=config,
            data=args.data,
            data_files=files,
            model_dir=args.model_dir,
            weight_model_dir=args.weight_model_dir,
            cache_dir=None if cache.lower() in ("off", "none", "") else cache,
            warm_start=warm,
            warm_start_pattern=pattern,
            memory_sweep=args.memory_sweep,
            threads=args.threads,
            heatmap_docs=args.heatmap_docs,
            predictions=args.predictions,
            first_seed=args.seeds[0],
        )

    @staticmethod
    def _data_files(args: argparse.Namespace) -> dict[str, str]:
        wanted = {
            "synthetic": {},
            "squad-dev": {"data": (args.data_file, "dev-v1.1.json", "SQuAD v1.1 dev JSON")},
            "squad": {
                "data": (args.data_file, "train-v1.1.json", "SQuAD v1.1 train JSON"),
                "test": (args.test_file, "dev-v1.1.json", "SQuAD validation JSON"),
            },
            "streamingqa": {"data": (args.data_file, "streamingqa_questions.jsonl", "StreamingQA questions JSONL")},
        }[args.data]
        files = {}
        try:
            for key, (path, default, what) in wanted.items():
                files[key] = str(resolve_data_file(path, default, what))
        except DataFileMissingError as error:
            raise UsageError(f"--data {args.data}: {error}") from None
        if args.data == "streamingqa" and args.documents_file is not None:
            if not Path(args.documents_file).is_file():
                raise UsageError(f"--documents-file {args.documents_file}: no such file")
            files["documents"] = args.documents_file
        return files

    def default_methods(self, config: LMRun) -> Sequence[str]:
        return MEMORY_METHODS if config.memory_sweep else config.config.default_methods

    def presets(self, config: LMRun) -> Mapping[str, Mapping[str, Any]]:
        return config.config.presets()

    def baselines(self) -> Mapping[str, Baseline]:
        return {
            "base": Baseline("base", _fixed_weights(_uniform, adapt=False), description="no adaptation"),
            "uniform": Baseline(
                "uniform",
                _fixed_weights(_uniform, sgd_weight=UNIFORM_SGD_WEIGHT),
                defaults={"sgd_weight": UNIFORM_SGD_WEIGHT},
                description="1 on every token: plain fine-tuning",
            ),
            "oracle": Baseline(
                "oracle",
                _fixed_weights(_oracle),
                defaults={"scope": "answer"},
                description="1 on the answer tokens (scope=fact: the fact sentences)",
            ),
        }

    def tasks(self, config: LMRun) -> Sequence[Task]:
        c = config.config
        dataset = dataset_label(config)
        problem = c.problem_settings()
        if config.data == "synthetic":
            problem.update(
                stream=c.stream,
                facts_per_document=c.facts_per_document,
                distractor_sentences=list(c.distractor_sentences),
            )
        if config.model_dir is not None:
            problem["model_size"] = str(config.model_dir)
        if not config.memory_sweep:
            return [Task("camels", dataset, problem)]
        memory = {
            "model_size": problem["model_size"],
            "weight_model_size": c.weight_model_size,
            "weight_backbone": c.weight_backbone,
            "n_positions": c.n_positions,
            "vocab_size": c.vocab_size,
            "max_doc_tokens": c.spec.max_doc_tokens,
            "max_qa_tokens": c.spec.max_qa_tokens,
            "questions_per_step": c.spec.questions_per_step,
            "locality_texts": c.spec.locality_texts,
            "kl_coef": c.spec.kl_coef,
            "inner_lr": c.spec.inner_lr,
        }
        return [Task("memory", dataset, {**memory, "num_steps": t}) for t in c.memory_steps]

    def trial(self, config: LMRun, task: Task, seed: int) -> Trial:
        if task.name == "memory":
            return MemoryTrial(config, int(task.problem_settings["num_steps"]), seed)
        key = (cache_key(config, seed), config.cache_dir)
        if self._setup is None or self._setup[0] != key:
            self._setup = None  # one seed's models in memory at a time
            self._setup = (key, prepare_seed(config, seed, show_progress=self._show_progress))
        self._trial = CamelsTrial(config, self._setup[1], seed, show_progress=self._show_progress)
        return self._trial

    def on_record(self, record: ResultRecord, result: MethodResult, out: Path) -> None:
        trial = self._trial
        if trial is None or record.task != "camels":
            return
        run = trial.run
        if run.predictions and trial.rows:
            with (out / f"{record.config}_predictions.jsonl").open("a") as f:
                for row in trial.rows:
                    f.write(json.dumps({"estimator": record.estimator, "seed": record.seed, **row}) + "\n")
        learned = result.phi is not None and record.status == "ok" and trial.phi is not None
        if learned and run.config.save_weights:
            meta = {
                "config": record.config,
                "estimator": record.estimator,
                "estimator_spec": record.estimator_spec,
                "seed": record.seed,
                "run_id": record.run_id,
                "meta_steps": int(record.metrics.get("steps_run", 0)),
                "weight_backbone": run.config.weight_backbone,
                "weight_model_size": run.config.weight_model_size,
            }
            name = f"{record.config}-{record.estimator}-seed{record.seed}-{record.run_id}.pt"
            path = save_weights(out / "weights" / name, trial.phi, meta)
            print(f"weight model saved: {path}")
        png = out / f"weights_heatmap_{record.config}_{record.estimator}-seed{record.seed}.png"
        if learned and run.heatmap_docs and record.seed == run.first_seed and not png.exists():
            from fg2u_bench_lm.figures import plot_weight_heatmap  # noqa: PLC0415 (matplotlib: only for figures)

            plot_weight_heatmap(
                trial.setup.tokenizer,
                list(trial.setup.splits.test)[: run.heatmap_docs],
                trial.weight_fn,
                png,
                max_doc_tokens=run.config.spec.max_doc_tokens,
                title=f"{record.estimator} learned token weights, {record.dataset}, seed {record.seed}",
            )
            print(f"heat map: {png}")

    def finish(self, records: Sequence[ResultRecord], out: Path, config: LMRun) -> None:
        from fg2u_bench_lm.figures import plot_memory, plot_meta_validation  # noqa: PLC0415 (matplotlib)

        if not records:
            return
        label = records[0].config
        every = read_records(out / f"{label}.jsonl")  # every invocation's records of this config
        if config.memory_sweep:
            png = plot_memory(every, out / f"memory_vs_T_{label}.png", config.config.memory_budget_bytes)
            print(f"memory against T (every memory record of {label}.jsonl): {png}")
            return
        if any(r.curve is not None for r in every):
            png = plot_meta_validation(every, out / f"meta_val_{label}.png")
            print(f"validation meta-objective against meta step and seconds (every record of {label}.jsonl): {png}")
        print("\n" + protocol_table(records))


def protocol_table(records: Sequence[ResultRecord]) -> str:
    """EM and F1 (mean ± std over seeds) per method under both protocols, and the validation meta-objective
    before → after meta-training."""
    by: dict[str, list[ResultRecord]] = {}
    for r in records:
        if r.status == "ok":
            by.setdefault(r.estimator, []).append(r)
    lines = [f"{'weights':<16} {'seeds':>5} {'EM':>12} {'F1':>12} {'EM (SGD)':>12} {'F1 (SGD)':>12} {'val L':>16}"]
    for name, rs in by.items():

        def ms(key: str, rs: list[ResultRecord] = rs) -> str:
            values = [r.metrics[key] for r in rs if key in r.metrics]
            if not values:
                return "-"
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.2f}±{sd:.2f}"

        val = "-"
        if all("val_outer_loss_after" in r.metrics for r in rs):
            before = statistics.fmean(r.metrics["val_outer_loss_before"] for r in rs)
            after = statistics.fmean(r.metrics["val_outer_loss_after"] for r in rs)
            val = f"{before:.3f}→{after:.3f}"
        lines.append(
            f"{name:<16} {len(rs):>5} {ms('em'):>12} {ms('f1'):>12} {ms('em_sgd'):>12} {ms('f1_sgd'):>12} {val:>16}"
        )
    return "\n".join(lines)


EXPERIMENT = Camels()


def cli(argv: Sequence[str] | None = None) -> int:
    """``fg2u-bench-lm`` / ``python -m fg2u_bench_lm``: :func:`fg2u.experiment.main` on :data:`EXPERIMENT`."""
    return main(EXPERIMENT, argv)
