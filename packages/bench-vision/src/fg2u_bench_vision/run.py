"""Command line: ``python -m fg2u_bench_vision --config smoke|cpu|paper --dataset digits ...``.

For every (seed, estimator): condense the training set into ``ipc`` images per class with the
estimator's meta-gradients, evaluate fresh ConvNets on it, append a result record to
``<out>/<config>.jsonl``, save the PNG grid ``<out>/<config>-<dataset>-ipc<k>-<estimator>-seed<s>.png``
and print a leaderboard row. At the end: a summary with the paper's Table 1 beside ours, and the figure
``<out>/<config>-<dataset>-ipc<k>-accuracy-vs-cost.png`` (test accuracy against each meta step's XLA memory and
seconds, every run of that file). Two baselines are recorded too: ``RandomReal`` (a random class-balanced
subset of real training images, evaluated with the same protocol) and ``WholeDataset`` (training on all
of it). Accuracies in records are percentages.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fg2u.harness import add_common_arguments

from .configs import CONFIG_NAMES, Config, get_config
from .data import DATA_ENV, DATASETS, VisionData, load_dataset
from .estimators import DEFAULT_ESTIMATORS, ESTIMATOR_NAMES, build_estimator

__all__ = ["main", "run_condensation", "parse_args", "RunResult"]


@dataclasses.dataclass
class RunResult:
    """One condensation run: the condensed images, metrics and the outer-loss trace."""

    estimator: str
    seed: int
    images: np.ndarray
    metrics: dict[str, float]
    settings: dict[str, Any]
    wall_time_s: float
    losses: list[float]


def _norm_order(config: Config) -> str:
    return "conv-norm-relu" if config.norm_before_relu else "conv-relu-norm"


def run_condensation(
    data: VisionData, config: Config, estimator_name: str, seed: int, *, progress: bool = True
) -> RunResult:
    """Condenses ``data`` with the estimator ``estimator_name`` and evaluates the result.

    Seeds: φ₀, network initialisations, real batches and directions derive from ``seed``; the
    evaluation networks from ``seed + 10_000`` (the same for every estimator at a given seed).
    """
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    from fg2u.harness import run_meta_loop  # noqa: PLC0415

    from .condensation import (
        compile_meta_step,
        implicit_rescale,
        init_synthetic,
        make_meta_step,
        meta_optimizer,
        sample_meta_inputs,
        setup_from_config,
        synthetic_labels,
    )
    from .evaluate import evaluate_condensed

    setup = setup_from_config(config, data.image_shape, data.num_classes)
    estimator = build_estimator(estimator_name, config, implicit_scale=implicit_rescale(setup))
    optimizer = meta_optimizer(config)
    if config.real_batch > data.x_train.shape[0]:
        raise ValueError(f"real_batch={config.real_batch} exceeds the {data.x_train.shape[0]} training images")
    step_fn = make_meta_step(setup, estimator, optimizer, grad_accumulation=config.grad_accumulation)
    rng = np.random.default_rng(seed)
    phi = jnp.asarray(init_synthetic(rng, setup))
    carry = (phi, optimizer.init(phi), estimator.init(phi))
    # compiled once, before the loop, for the shapes of one meta step's inputs (drawn from a throwaway
    # generator so that the run's own draws are unchanged): gives the meta step's XLA memory
    example = sample_meta_inputs(
        setup, np.random.default_rng(0), data.x_train, data.y_train, config.real_batch, config.grad_accumulation
    )
    step_fn, step_temp_bytes, compile_s = compile_meta_step(step_fn, *carry, jax.random.PRNGKey(0), *example)

    def step(carry: tuple, i: int) -> tuple:
        params0, real_x, real_y = sample_meta_inputs(
            setup, rng, data.x_train, data.y_train, config.real_batch, config.grad_accumulation
        )
        key = jax.random.PRNGKey(int(rng.integers(2**31)))
        phi, opt_state, est_state, loss = step_fn(*carry, key, params0, real_x, real_y)
        return (phi, opt_state, est_state), loss

    loop = run_meta_loop(
        step,
        carry,
        config.meta_steps,
        desc=f"{estimator.display_name} seed {seed}",
        progress_bar=progress,
        log_every=config.log_every,
        block=jax.block_until_ready,
    )
    phi = loop.carry[0]
    losses = [value for _, value in loop.losses]
    meta_s = loop.seconds

    t1 = time.perf_counter()
    images = np.asarray(jax.device_get(phi))
    evaluation = evaluate_condensed(
        setup.model,
        images,
        np.asarray(synthetic_labels(data.num_classes, config.ipc)),
        data.x_test,
        data.y_test,
        np.random.default_rng(seed + 10_000),
        num_nets=config.eval_nets,
        steps=config.eval_steps,
        lr=config.eval_lr,
        momentum=config.inner_momentum,
        weight_decay=config.weight_decay,
    )
    eval_s = time.perf_counter() - t1
    metrics = {
        "test_accuracy_mean": 100.0 * evaluation["mean"],
        "test_accuracy_std": 100.0 * evaluation["std"],
        "final_outer_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
        "meta_time_s": meta_s,
        "compile_time_s": float(compile_s),
        "meta_step_time_s": loop.step_s,
        "eval_time_s": eval_s,
    }
    if step_temp_bytes is not None:  # XLA's scratch memory of one compiled meta step (fg2u.jax.harness.temp_bytes)
        metrics["meta_step_temp_bytes"] = float(step_temp_bytes)
    settings = {
        **config.settings(),
        "depth_used": setup.model.depth,
        "norm_order": _norm_order(config),
        "estimator_settings": estimator.settings(),
        "accuracy_unit": "percent",
        "eval_accuracies": [100.0 * a for a in evaluation["accuracies"]],
        "dataset_note": data.note,
        "num_train": int(data.x_train.shape[0]),
        "num_test": int(data.x_test.shape[0]),
        "memory_measure": "peak RSS of the whole process (includes data and compilation)",
    }
    # the run's wall time: compilation (ahead of the loop), the meta loop and the evaluation
    return RunResult(estimator.display_name, seed, images, metrics, settings, compile_s + meta_s + eval_s, losses)


def _baseline_random_real(data: VisionData, config: Config, seed: int) -> RunResult:
    """A random class-balanced subset of real images as the condensed set (the usual 'Random' baseline)."""

    from .condensation import setup_from_config
    from .evaluate import evaluate_condensed

    setup = setup_from_config(config, data.image_shape, data.num_classes)
    rng = np.random.default_rng(seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(data.y_train == c), config.ipc, replace=False) for c in range(data.num_classes)]
    )
    t0 = time.perf_counter()
    ev = evaluate_condensed(
        setup.model,
        data.x_train[idx],
        data.y_train[idx],
        data.x_test,
        data.y_test,
        np.random.default_rng(seed + 10_000),
        num_nets=config.eval_nets,
        steps=config.eval_steps,
        lr=config.eval_lr,
        momentum=config.inner_momentum,
        weight_decay=config.weight_decay,
    )
    return _baseline_result(
        "RandomReal", seed, data.x_train[idx], ev, t0, config, setup, data, baseline="random real images per class"
    )


def _baseline_whole(data: VisionData, config: Config, seed: int) -> RunResult:

    from .condensation import setup_from_config
    from .evaluate import whole_dataset_reference

    setup = setup_from_config(config, data.image_shape, data.num_classes)
    t0 = time.perf_counter()
    ev = whole_dataset_reference(
        setup.model,
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        np.random.default_rng(seed + 20_000),
        num_nets=min(config.eval_nets, 3),
        epochs=config.full_epochs,
        batch_size=config.full_batch,
        lr=config.eval_lr,
        momentum=config.inner_momentum,
        weight_decay=config.weight_decay,
    )
    return _baseline_result(
        "WholeDataset",
        seed,
        np.zeros((0,)),
        ev,
        t0,
        config,
        setup,
        data,
        baseline="whole training set",
        train_steps=ev["steps"],
    )


def _baseline_result(name, seed, images, ev, t0, config, setup, data, **extra) -> RunResult:
    """The record of a data baseline from its evaluation ``ev`` (accuracies in [0, 1]) started at ``t0``."""
    metrics = {
        "test_accuracy_mean": 100 * ev["mean"],
        "test_accuracy_std": 100 * ev["std"],
        "eval_time_s": time.perf_counter() - t0,
    }
    settings = {
        **config.settings(),
        "depth_used": setup.model.depth,
        "norm_order": _norm_order(config),
        "accuracy_unit": "percent",
        **extra,
        "dataset_note": data.note,
        "eval_accuracies": [100 * a for a in ev["accuracies"]],
    }
    return RunResult(name, seed, images, metrics, settings, time.perf_counter() - t0, [])


def enable_compilation_cache() -> str | None:
    """Turns on JAX's persistent compilation cache so repeated runs (other seeds, later invocations)
    skip XLA compilation, which dominates short runs on CPU. Folder: ``$FG2U_VISION_JAX_CACHE`` or
    ``~/.cache/fg2u_bench_vision/jax``; set ``FG2U_VISION_JAX_CACHE=off`` to disable. Returns the folder."""
    import jax  # noqa: PLC0415

    folder = os.environ.get("FG2U_VISION_JAX_CACHE", str(Path.home() / ".cache" / "fg2u_bench_vision" / "jax"))
    if folder.lower() in ("off", "0", "none", ""):
        return None
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return folder


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m fg2u_bench_vision", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(
        p,
        configs=CONFIG_NAMES,
        default_out="results/vision",
        estimators=ESTIMATOR_NAMES,
        default_estimators=DEFAULT_ESTIMATORS,
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits is embedded; mnist and cifar10 read files from --data-dir / $" + DATA_ENV,
    )
    p.add_argument(
        "--data-source",
        choices=("files", "tfds"),
        default="files",
        help="raw files (idx.gz / CIFAR binary or pickles) or a prepared tensorflow-datasets data_dir",
    )
    p.add_argument("--data-dir", default=None, help=f"folder with the data files (default: ${DATA_ENV})")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the digits / mnist-test-resplit split")
    p.add_argument("--ipc", type=int, default=1, help="synthetic images per class")
    p.add_argument(
        "--norm-order",
        choices=("norm-relu", "relu-norm"),
        default=None,
        help="conv→norm→ReLU (default) or the paper code's conv→ReLU→norm",
    )
    p.add_argument("--meta-steps", type=int, default=None)
    p.add_argument("--inner-steps", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--num-directions", type=int, default=None)
    p.add_argument("--eval-nets", type=int, default=None)
    p.add_argument("--tag", default=None, help="record config label suffix (e.g. a reduced variant)")
    p.add_argument("--no-baselines", action="store_true", help="skip the RandomReal and WholeDataset baselines")
    p.add_argument("--no-whole-dataset", action="store_true", help="skip only the WholeDataset baseline")
    return p.parse_args(argv)


def _config_from_args(args: argparse.Namespace) -> Config:
    config = get_config(args.config, args.ipc)
    overrides = {
        "meta_steps": args.meta_steps,
        "inner_steps": args.inner_steps,
        "width": args.width,
        "num_directions": args.num_directions,
        "eval_nets": args.eval_nets,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    if args.norm_order is not None:
        changes["norm_before_relu"] = args.norm_order == "norm-relu"
    if args.tag:
        changes["name"] = f"{config.name}-{args.tag}"
    return config.replace(**changes) if changes else config


def _row(r: RunResult, dataset: str) -> str:
    m = r.metrics
    return (
        f"| {dataset:<18} | {r.estimator:<12} | {r.seed:>4} | {m['test_accuracy_mean']:6.2f} ± "
        f"{m['test_accuracy_std']:5.2f} | {m.get('final_outer_loss', float('nan')):8.4f} | {r.wall_time_s:8.1f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from fg2u.records import append_records, make_record, peak_rss_bytes, read_records  # noqa: PLC0415

    from .plots import save_accuracy_cost_figure, save_image_grid  # noqa: PLC0415

    config = _config_from_args(args)
    enable_compilation_cache()
    data = load_dataset(args.dataset, args.data_dir, source=args.data_source, split_seed=args.split_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / f"{config.name}.jsonl"
    print(
        f"data set {data.name}: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test images "
        f"{data.image_shape}; {data.note}"
    )
    print(f"config {config.name}, ipc {config.ipc}, results -> {jsonl}")
    header = f"| {'dataset':<18} | {'estimator':<12} | seed | test acc. % (mean ± std) | outer loss | time (s) |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    task = f"condensation-ipc{config.ipc}"
    results: list[RunResult] = []

    def record(r: RunResult) -> None:
        rec = make_record(
            benchmark="vision",
            task=task,
            dataset=data.name,
            config=config.name,
            estimator=r.estimator,
            settings=r.settings,
            seed=r.seed,
            metrics=r.metrics,
            wall_time_s=r.wall_time_s,
            peak_memory_bytes=peak_rss_bytes(),
        )
        append_records(jsonl, [rec])
        results.append(r)
        print(_row(r, data.name), flush=True)

    if not (args.no_baselines or args.no_whole_dataset):
        record(_baseline_whole(data, config, args.seeds[0]))
    for seed in args.seeds:
        if not args.no_baselines:
            record(_baseline_random_real(data, config, seed))
        for name in args.estimators:
            r = run_condensation(data, config, name, seed, progress=not args.no_progress)
            png = out / f"{config.name}-{data.name}-ipc{config.ipc}-{r.estimator}-seed{seed}.png"
            save_image_grid(
                r.images,
                data.num_classes,
                config.ipc,
                png,
                title=f"{r.estimator} {data.name} IPC {config.ipc} seed {seed}: {r.metrics['test_accuracy_mean']:.1f}%",
            )
            r.settings["image_grid"] = os.path.relpath(png, out)
            record(r)

    from .plugin import paper_accuracy  # noqa: PLC0415

    # the paper ran MNIST / CIFAR; on digits its MNIST row is the nearest reference (a different data set)
    ref_name = next((d for d in ("cifar100", "cifar10", "mnist") if data.name.startswith(d)), "mnist")
    paper = paper_accuracy(ref_name, config.ipc)
    note = "" if ref_name == data.name else f" ({ref_name}, not {data.name}: for the ordering only)"
    print(
        f"\nsummary (mean ± std over seeds of the per-seed mean accuracy); paper = Table 1, {ref_name} "
        f"IPC {config.ipc}{note}:"
    )
    print(f"| {'estimator':<24} | test acc. % | seeds | paper % |")
    print("|--------------------------|-------------|-------|---------|")
    for name in dict.fromkeys(r.estimator for r in results):
        accs = [r.metrics["test_accuracy_mean"] for r in results if r.estimator == name]
        ref = f"{paper[name]:.1f}" if name in paper else "—"
        print(f"| {name:<24} | {np.mean(accs):5.1f} ± {np.std(accs):4.1f} | {len(accs):>5} | {ref:>7} |")
    figure = save_accuracy_cost_figure(
        read_records(jsonl),
        out / f"{config.name}-{data.name}-ipc{config.ipc}-accuracy-vs-cost.png",
        dataset=data.name,
        ipc=config.ipc,
        inner_steps=config.inner_steps,
    )
    if figure is not None:
        print(f"accuracy against memory and seconds per meta step (every run in {jsonl.name}) -> {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
