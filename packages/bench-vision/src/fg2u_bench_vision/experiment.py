"""Dataset condensation on the core's runner: the problem, data, evaluation and configs — nothing else.

``python -m fg2u_bench_vision --config smoke|cpu|cpu-t100|cpu-t10|paper --dataset digits ...``: for every
(seed, method), condense the training set into ``ipc`` images per class with the method's meta-gradients,
evaluate fresh ConvNets trained on them, and append a record to ``<out>/<config>.jsonl`` (the runner of
:mod:`fg2u.experiment.runner` does the loop, the records, the memory of one meta step and the anytime curve
of test accuracy); each run also saves the PNG grid ``<out>/<config>-<dataset>-ipc<k>-<method>-seed<s>.png``
and the figure ``<out>/<config>-<dataset>-ipc<k>-accuracy-vs-cost.png``. Accuracies are percentages.

Methods: any registered estimator by spec (``fg2u:num_directions=64``), with the config's presets for the
settings a spec leaves out (:meth:`Condensation.presets`), and two data baselines: ``random_real`` (a random
class-balanced subset of real training images, evaluated with the same protocol) and ``whole_dataset``
(training on all of it, once).

Initialisation (``--init``): ``noise`` (U[0, 1], the paper's FG²U protocol) or ``real`` (the usual protocol of
DC/DSA/MTT: the same random real images per class as ``random_real`` of that seed, so a method that ends
below ``random_real`` made its starting point worse). The implicit estimators (Neumann, conjugate
gradient, Hessian-free) are wrapped in ``scaled`` by 1/η_{T−1} so that every estimator reports
meta-gradients in the same units (see :mod:`fg2u_bench_vision.condensation`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fg2u.experiment import Baseline, Experiment, MethodResult, ResultRecord, Spec, Task, Trial, UsageError
from fg2u.jax import harness

from .condensation import (
    CondensationSetup,
    implicit_rescale,
    init_synthetic,
    make_problem,
    meta_optimizer,
    sample_meta_inputs,
    setup_from_config,
    synthetic_labels,
)
from .configs import CONFIG_NAMES, Config, get_config
from .data import DATA_ENV, DATASETS, DataNotFoundError, VisionData, load_dataset
from .evaluate import evaluate_condensed, whole_dataset_reference

__all__ = ["Condensation", "CondensationTrial", "EXPERIMENT", "DEFAULT_METHODS", "INITS", "random_real_indices"]

DEFAULT_METHODS = (
    "rgu",
    "rgu_checkpointed",
    "fg2u",
    "trgu",
    "hessian_free",
    "neumann",
    "two_phase",
    "random_real",
    "whole_dataset",
)
INITS = ("noise", "real")
_IMPLICIT = ("neumann", "conjugate_gradient", "hessian_free", "implicit")


def random_real_indices(data: VisionData, ipc: int, rng: np.random.Generator) -> np.ndarray:
    """``ipc`` random training images per class (class order), without replacement."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(data.y_train == c), ipc, replace=False) for c in range(data.num_classes)]
    )


def _norm_order(config: Config) -> str:
    return "conv-norm-relu" if config.norm_before_relu else "conv-relu-norm"


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """A :class:`~fg2u_bench_vision.configs.Config` with the data set and the initialisation of a run."""

    config: Config
    data: VisionData
    init: str

    @property
    def name(self) -> str:
        return self.config.name if self.init == "noise" else f"{self.config.name}-init-real"

    def settings(self) -> dict[str, Any]:
        return {**self.config.settings(), "init": self.init}


class CondensationTrial(Trial):
    """One (config, seed): φ₀, the meta optimiser, fresh networks and real batches per meta step, evaluation.

    Seeds: φ₀, network initialisations, real batches and directions derive from ``seed`` (one generator, drawn
    in that order); the evaluation networks from ``seed + 10_000`` (the same for every method at a seed).
    """

    curve_metric = "test_accuracy"
    curve_points = 7

    def __init__(self, vc: VisionConfig, setup: CondensationSetup, seed: int) -> None:
        self.vc, self.config, self.data, self.setup, self.seed = vc, vc.config, vc.data, setup, seed
        self.rng = np.random.default_rng(seed)
        self.num_meta_steps = self.config.meta_steps
        self.grad_accumulation = self.config.grad_accumulation
        self.log_every = self.config.log_every
        self._eval_details: dict[str, Any] = {}

    def initial_phi(self) -> Any:
        if self.vc.init == "real":
            idx = random_real_indices(self.data, self.config.ipc, np.random.default_rng(self.seed))
            return jnp.asarray(self.data.x_train[idx])
        return jnp.asarray(init_synthetic(self.rng, self.setup))

    def meta_optimizer(self) -> Any:
        return meta_optimizer(self.config)

    def make_problem(self, inputs: Any) -> Any:
        return make_problem(self.setup, *inputs)

    def meta_step_options(self) -> dict[str, Any]:
        return {"project": lambda phi: jnp.clip(phi, 0.0, 1.0)}

    def _draw(self, rng: np.random.Generator) -> tuple[Any, Any]:
        c = self.config
        inputs = sample_meta_inputs(
            self.setup, rng, self.data.x_train, self.data.y_train, c.real_batch, c.grad_accumulation
        )
        return jax.random.PRNGKey(int(rng.integers(2**31))), inputs

    def next_inputs(self, step: int) -> tuple[Any, Any]:
        return self._draw(self.rng)

    def example_inputs(self) -> tuple[Any, Any]:
        return self._draw(np.random.default_rng(0))  # a throwaway generator: the run's draws are unchanged

    def evaluate(self, phi: Any, *, final: bool) -> dict[str, float]:
        c = self.config
        images = np.asarray(jax.device_get(phi))
        start = time.perf_counter()
        evaluation = evaluate_condensed(
            self.setup.model,
            images,
            np.asarray(synthetic_labels(self.data.num_classes, c.ipc)),
            self.data.x_test,
            self.data.y_test,
            np.random.default_rng(self.seed + 10_000),
            num_nets=c.eval_nets if final else 1,
            steps=c.eval_steps,
            lr=c.eval_lr,
            momentum=c.inner_momentum,
            weight_decay=c.weight_decay,
        )
        if not final:
            return {"test_accuracy": 100.0 * evaluation["mean"]}
        self._eval_details = {"eval_accuracies": [100.0 * a for a in evaluation["accuracies"]]}
        return {
            "test_accuracy_mean": 100.0 * evaluation["mean"],
            "test_accuracy_std": 100.0 * evaluation["std"],
            "eval_time_s": time.perf_counter() - start,
        }

    def details(self) -> dict[str, Any]:
        return {**self._eval_details, **_data_details(self.data)}


def _random_real(trial: CondensationTrial, settings: Mapping[str, Any]) -> MethodResult:
    """A random class-balanced subset of real images as the condensed set (the usual 'Random' baseline)."""
    c = trial.config
    idx = random_real_indices(trial.data, c.ipc, np.random.default_rng(trial.seed))
    start = time.perf_counter()
    ev = evaluate_condensed(
        trial.setup.model,
        trial.data.x_train[idx],
        trial.data.y_train[idx],
        trial.data.x_test,
        trial.data.y_test,
        np.random.default_rng(trial.seed + 10_000),
        num_nets=c.eval_nets,
        steps=c.eval_steps,
        lr=c.eval_lr,
        momentum=c.inner_momentum,
        weight_decay=c.weight_decay,
    )
    return _baseline_result(ev, start, trial, phi=trial.data.x_train[idx])


def _whole_dataset(trial: CondensationTrial, settings: Mapping[str, Any]) -> MethodResult:
    """Training on the whole training set (mini-batches): the accuracy a condensed set tries to reach."""
    c = trial.config
    start = time.perf_counter()
    ev = whole_dataset_reference(
        trial.setup.model,
        trial.data.x_train,
        trial.data.y_train,
        trial.data.x_test,
        trial.data.y_test,
        np.random.default_rng(trial.seed + 20_000),
        num_nets=min(c.eval_nets, 3),
        epochs=c.full_epochs,
        batch_size=c.full_batch,
        lr=c.eval_lr,
        momentum=c.inner_momentum,
        weight_decay=c.weight_decay,
    )
    result = _baseline_result(ev, start, trial)
    result.details["train_steps"] = ev["steps"]
    return result


def _baseline_result(ev: Mapping[str, Any], start: float, trial: CondensationTrial, phi: Any = None) -> MethodResult:
    metrics = {
        "test_accuracy_mean": 100.0 * ev["mean"],
        "test_accuracy_std": 100.0 * ev["std"],
        "eval_time_s": time.perf_counter() - start,
    }
    details = {"eval_accuracies": [100.0 * a for a in ev["accuracies"]], **_data_details(trial.data)}
    return MethodResult(metrics=metrics, details=details, phi=phi)


def _data_details(data: VisionData) -> dict[str, Any]:
    """The data set's facts for a record's details (its name is the record's ``dataset``)."""
    return {"dataset_note": data.note, "num_train": int(data.x_train.shape[0]), "num_test": int(data.x_test.shape[0])}


class Condensation(Experiment):
    """Dataset condensation (performance matching) with a ConvNet; data: digits (embedded), MNIST, CIFAR."""

    name = "vision"
    backend = "jax"
    description = __doc__
    config_names = CONFIG_NAMES
    default_config = "cpu"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dataset",
            choices=DATASETS,
            default="digits",
            help=f"digits is embedded; mnist and cifar10 read files from --data-dir / ${DATA_ENV}",
        )
        p.add_argument(
            "--data-source",
            choices=("files", "tfds"),
            default="files",
            help="raw files (idx.gz / CIFAR binary or pickles) or a prepared tensorflow-datasets data_dir",
        )
        p.add_argument("--data-dir", default=None, help=f"folder with the data files (default: ${DATA_ENV})")
        p.add_argument("--split-seed", type=int, default=0, help="seed of the digits / mnist-test-resplit split")
        p.add_argument("--ipc", type=int, default=1, help="synthetic images per class (default 1)")
        p.add_argument("--init", choices=INITS, default="noise", help="φ₀: U[0, 1] noise (default) or real images")
        p.add_argument(
            "--norm-order",
            choices=("norm-relu", "relu-norm"),
            default=None,
            help="conv→norm→ReLU (default) or the paper code's conv→ReLU→norm",
        )
        for flag, what in (
            ("--meta-steps", "meta steps"),
            ("--inner-steps", "inner steps T"),
            ("--width", "ConvNet width"),
            ("--eval-nets", "evaluation networks"),
        ):
            p.add_argument(flag, type=int, default=None, help=f"override the config's {what}")

    def configure(self, args: argparse.Namespace) -> VisionConfig:
        enable_compilation_cache()
        if args.ipc < 1:
            raise UsageError(f"--ipc must be >= 1 (synthetic images per class), got {args.ipc}")
        changes = {
            k: v
            for k, v in {
                "meta_steps": args.meta_steps,
                "inner_steps": args.inner_steps,
                "width": args.width,
                "eval_nets": args.eval_nets,
            }.items()
            if v is not None
        }
        if args.norm_order is not None:
            changes["norm_before_relu"] = args.norm_order == "norm-relu"
        try:
            config = get_config(args.config, args.ipc)
            config = config.replace(**changes) if changes else config
        except (ValueError, TypeError) as error:
            flag = next((f"--{k.replace('_', '-')}" for k in changes if k in str(error)), "--config")
            raise UsageError(f"{flag}: {error}") from None
        try:
            data = load_dataset(args.dataset, args.data_dir, source=args.data_source, split_seed=args.split_seed)
        except (DataNotFoundError, FileNotFoundError) as error:
            raise UsageError(f"--dataset {args.dataset}: {error}") from None
        smallest = int(np.bincount(data.y_train, minlength=data.num_classes).min())
        if args.ipc > smallest:
            raise UsageError(
                f"--ipc {args.ipc}: {data.name} has only {smallest} training images in its smallest class; "
                f"choose --ipc <= {smallest}"
            )
        print(
            f"data set {data.name}: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test images "
            f"{data.image_shape}; {data.note}"
        )
        return VisionConfig(config, data, args.init)

    def default_methods(self, config: VisionConfig) -> Sequence[str]:
        return DEFAULT_METHODS

    def presets(self, config: VisionConfig) -> Mapping[str, Mapping[str, Any]]:
        c = config.config
        directions = {"num_directions": c.num_directions, "chunk_size": c.chunk_size}
        return {
            "fg2u": directions,
            "fg2u_zo": directions,
            "hybrid": directions,
            "trgu": {"truncation": c.truncation},
            "neumann": {"num_terms": c.neumann_terms},
            "conjugate_gradient": {"num_iterations": max(1, c.neumann_terms)},
            "two_phase": {
                "first": "hessian_free",
                "second": "fg2u",
                "switch_step": int(c.two_phase_fraction * c.meta_steps),
            },
            "control_variate": {"estimator": "fg2u", "surrogate": "hessian_free"},
            "running_control_variate": {"estimator": "fg2u"},
        }

    def complete(self, spec: Spec, config: VisionConfig) -> Spec:
        spec = super().complete(spec, config)
        scale = self._implicit_scale(config)
        if spec.key == "scaled":  # an explicit `scaled` replaces the automatic one of its estimator
            inner = spec.settings.get("estimator")
            if isinstance(inner, Spec) and inner.key == "scaled" and inner.settings.get("scale") == scale:
                return spec.replace(estimator=inner.settings["estimator"])
            return spec
        if spec.key in _IMPLICIT:
            return Spec("scaled", {"estimator": spec, "scale": scale})
        return spec

    @staticmethod
    def _implicit_scale(config: VisionConfig) -> float:
        return float(implicit_rescale(_setup(config)))

    def baselines(self) -> Mapping[str, Baseline]:
        return {
            "random_real": Baseline("RandomReal", _random_real, description="random real images per class"),
            "whole_dataset": Baseline(
                "WholeDataset", _whole_dataset, once=True, description="training on the whole training set"
            ),
        }

    def tasks(self, config: VisionConfig) -> Sequence[Task]:
        c, data = config.config, config.data
        setup = _setup(config)
        problem = {
            "ipc": c.ipc,
            "inner_steps": c.inner_steps,
            "inner_lr": c.inner_lr,
            "inner_momentum": c.inner_momentum,
            "weight_decay": c.weight_decay,
            "width": c.width,
            "depth": setup.model.depth,
            "norm_order": _norm_order(c),
            "eval_nets": c.eval_nets,
            "eval_steps": c.eval_steps,
            "eval_lr": c.eval_lr,
        }
        return [Task(f"condensation-ipc{c.ipc}", data.name, problem)]

    def config_label(self, config: VisionConfig, args: argparse.Namespace) -> str:
        return f"{config.name}-{args.tag}" if args.tag else config.name

    def config_settings(self, config: VisionConfig) -> dict[str, Any]:
        return config.settings()

    def trial(self, config: VisionConfig, task: Task, seed: int) -> CondensationTrial:
        return CondensationTrial(config, _setup(config), seed)

    def on_record(self, record: ResultRecord, result: MethodResult, out: Path) -> None:
        from .plots import save_image_grid  # noqa: PLC0415 (matplotlib: only when a run writes its figure)

        if result.phi is None or record.estimator == "WholeDataset":
            return
        c = record.config_settings
        png = out / f"{record.config}-{record.dataset}-ipc{c['ipc']}-{record.estimator}-seed{record.seed}.png"
        accuracy = record.metrics.get("test_accuracy_mean", float("nan"))
        save_image_grid(
            np.asarray(jax.device_get(result.phi)),
            int(np.asarray(result.phi).shape[0]) // int(c["ipc"]),
            int(c["ipc"]),
            png,
            title=f"{record.estimator} {record.dataset} IPC {c['ipc']} seed {record.seed}: {accuracy:.1f}%",
        )

    def finish(self, records: Sequence[ResultRecord], out: Path, config: VisionConfig) -> None:
        from fg2u.experiment import read_records  # noqa: PLC0415

        from .plots import save_accuracy_cost_figure  # noqa: PLC0415 (matplotlib only when drawing)
        from .plugin import paper_accuracy  # noqa: PLC0415

        if not records:
            return
        c, data = config.config, config.data
        ref_name = next((d for d in ("cifar100", "cifar10", "mnist") if data.name.startswith(d)), "mnist")
        paper = paper_accuracy(ref_name, c.ipc)
        note = "" if ref_name == data.name else f" ({ref_name}, not {data.name}: for the ordering only)"
        print(
            f"\nthe paper's Table 1, {ref_name} IPC {c.ipc}{note}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in paper.items())
        )
        path = out / f"{records[0].config}.jsonl"
        figure = save_accuracy_cost_figure(
            read_records(path),
            out / f"{records[0].config}-{data.name}-ipc{c.ipc}-accuracy-vs-cost.png",
            dataset=data.name,
            ipc=c.ipc,
            inner_steps=c.inner_steps,
        )
        if figure is not None:
            print(f"accuracy against memory and seconds per meta step (every run in {path.name}) -> {figure}")


@functools.lru_cache(maxsize=8)
def _setup_cached(config: Config, image_shape: tuple[int, int, int], num_classes: int) -> CondensationSetup:
    return setup_from_config(config, image_shape, num_classes)


def _setup(config: VisionConfig) -> CondensationSetup:
    return _setup_cached(config.config, tuple(config.data.image_shape), config.data.num_classes)


def enable_compilation_cache() -> str | None:
    """JAX's persistent compilation cache for this benchmark (repeated runs skip XLA compilation). Folder:
    ``$FG2U_VISION_JAX_CACHE`` or ``~/.cache/fg2u_bench_vision/jax``; ``FG2U_VISION_JAX_CACHE=off`` disables it."""
    return harness.enable_compilation_cache(
        "FG2U_VISION_JAX_CACHE", str(Path.home() / ".cache" / "fg2u_bench_vision" / "jax")
    )


EXPERIMENT = Condensation()
