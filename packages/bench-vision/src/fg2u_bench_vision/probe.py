"""Gradient-quality probe: how close is each estimator's condensation meta-gradient to the exact one?

``python -m fg2u_bench_vision.probe [--inner-steps 10 30 100 300] [--estimators rgu trgu:3 ...] ...``

At a fixed φ (the synthetic images after initialisation, U[0, 1], or after ``--phi-steps`` RGU meta
steps of condensation), for every unroll length T and every estimator, ``--repeats`` meta-gradients are
estimated, each on a fresh network initialisation θ₀ and a fresh real batch (the same R draws for every
estimator), and compared with the exact meta-gradient of the same draw (RGU) by
:func:`fg2u.jax.gradient_quality`: cosine, relative error and norm ratio (mean ± std over draws), XLA
compiled temp bytes of one estimate and seconds per estimate. One result record per (T, estimator) is
appended to ``<out>/probe.jsonl`` (benchmark ``vision``, task ``gradient-quality-ipc<k>``, config
``probe-T<T>``; ``settings.inner_steps`` = T) and a table is printed.

``--throughput-directions B --chunk-sizes c1 c2 …`` also measures FG²U's directions per second with B
directions processed in vmapped chunks of c (records with ``settings.measure = "throughput"``, metric
``directions_per_second``).

Estimator specs: the grammar of every benchmark (:mod:`fg2u.experiment.spec`), e.g. ``trgu:truncation=3`` or
``fg2u:num_directions=32,chunk_size=8``. Estimators are built exactly as the benchmark builds them (its presets
fill unset settings, :meth:`fg2u_bench_vision.experiment.Condensation.complete`): implicit estimates are multiplied
by 1/η_{T−1} (:func:`fg2u_bench_vision.condensation.implicit_rescale`), which changes norm ratios and relative
errors, not cosines. The data set: digits (embedded) by default, MNIST when a data folder is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .configs import CONFIG_NAMES, Config, get_config
from .data import DATA_ENV, DATASETS, VisionData, load_dataset

__all__ = ["build_probe_estimator", "probe", "throughput", "main", "DEFAULT_ESTIMATORS"]

DEFAULT_ESTIMATORS = (
    "rgu",
    "rgu_checkpointed",
    "trgu:truncation=3",
    "trgu:truncation=25",
    "hessian_free",
    "neumann",
    "fg2u:num_directions=8",
    "fg2u:num_directions=32",
    "fg2u:num_directions=128",
)
DEFAULT_STEPS = (10, 30, 100, 300)


def _vision_config(config: Config, data: VisionData) -> Any:
    from .experiment import VisionConfig  # noqa: PLC0415 (JAX and flax load with it)

    return VisionConfig(config, data, "noise")


def build_probe_estimator(spec: str, config: Config, data: VisionData) -> tuple[Any, str]:
    """The ``fg2u.jax`` estimator of ``spec`` (the spec grammar of :mod:`fg2u.experiment.spec`), completed with
    the benchmark's presets exactly as the benchmark's runs are (:meth:`~.experiment.Condensation.complete`), and
    the completed spec. ``ValueError`` naming the spec for an unknown estimator or setting."""
    import fg2u.jax as fj  # noqa: PLC0415
    from fg2u.experiment.spec import build, completed  # noqa: PLC0415

    from .experiment import EXPERIMENT  # noqa: PLC0415

    vc = _vision_config(config, data)
    full = completed(spec, lambda s: EXPERIMENT.complete(s, vc))
    try:
        return build(full, fj.BACKEND), str(full)
    except (ValueError, TypeError) as error:
        raise ValueError(f"estimator spec {spec!r}: {error}") from None


def _draws(setup: Any, data: VisionData, rng: np.random.Generator, real_batch: int, repeats: int) -> list:
    from .condensation import sample_meta_inputs  # noqa: PLC0415

    draws = []
    for _ in range(repeats):
        params0, x, y = sample_meta_inputs(setup, rng, data.x_train, data.y_train, real_batch, 1)
        import jax  # noqa: PLC0415

        draws.append((jax.tree_util.tree_map(lambda a: a[0], params0), x[0], y[0]))
    return draws


def initial_phi(data: VisionData, config: Config, seed: int, phi_steps: int, progress: bool = False) -> np.ndarray:
    """φ₀ ~ U[0, 1] (seeded), then ``phi_steps`` RGU meta steps of condensation with ``config`` (Adam with
    the config's meta lr and schedule, one fresh network and real batch per step, φ clipped to [0, 1])."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import optax  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    import fg2u.jax as fj  # noqa: PLC0415

    from .condensation import init_synthetic, make_problem, meta_optimizer, sample_meta_inputs, setup_from_config

    setup = setup_from_config(config, data.image_shape, data.num_classes)
    rng = np.random.default_rng(seed)
    phi = init_synthetic(rng, setup)
    if phi_steps == 0:
        return phi
    optimizer = meta_optimizer(config.replace(meta_steps=phi_steps))
    exact = fj.RGU()

    @jax.jit
    def step(phi, opt_state, params0, x, y):
        grad, aux = exact(make_problem(setup, params0, x, y), phi, None)
        updates, opt_state = optimizer.update(grad, opt_state, phi)
        return jnp.clip(optax.apply_updates(phi, updates), 0.0, 1.0), opt_state

    phi = jnp.asarray(phi)
    opt_state = optimizer.init(phi)
    for _ in tqdm(range(phi_steps), desc="φ: RGU condensation", disable=not progress, leave=False, file=sys.stderr):
        params0, x, y = sample_meta_inputs(setup, rng, data.x_train, data.y_train, config.real_batch, 1)
        phi, opt_state = step(phi, opt_state, jax.tree_util.tree_map(lambda a: a[0], params0), x[0], y[0])
    return np.asarray(jax.device_get(phi))


def probe(
    data: VisionData,
    config: Config,
    phi: np.ndarray,
    inner_steps: int,
    estimator_specs: Sequence[str],
    *,
    repeats: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> list[tuple[str, Any]]:
    """Gradient quality of every estimator at unroll length ``inner_steps`` (T), fixed φ, ``repeats`` draws
    of (θ₀, real batch). Returns ``[(completed spec, fg2u.quality.GradientQuality), …]``."""
    import jax  # noqa: PLC0415

    import fg2u.jax as fj  # noqa: PLC0415

    from .condensation import make_problem, setup_from_config

    cfg = config.replace(inner_steps=inner_steps)
    setup = setup_from_config(cfg, data.image_shape, data.num_classes)
    if cfg.real_batch > data.x_train.shape[0]:
        raise ValueError(f"real_batch={cfg.real_batch} exceeds the {data.x_train.shape[0]} training images")
    built = {}
    for spec in estimator_specs:
        estimator, full = build_probe_estimator(spec, cfg, data)
        built[full] = estimator
    draws = _draws(setup, data, np.random.default_rng([seed, inner_steps]), cfg.real_batch, repeats)
    results = fj.gradient_quality(
        lambda inputs: make_problem(setup, *inputs),
        jax.numpy.asarray(phi),
        built,
        inputs=draws,
        key=jax.random.PRNGKey(seed),
        settings={k: v.settings() for k, v in built.items()},
        progress=progress,
    )
    return list(zip(built, results))


def throughput(
    data: VisionData,
    config: Config,
    phi: np.ndarray,
    inner_steps: int,
    num_directions: int,
    chunk_sizes: Sequence[int],
    *,
    repeats: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> list[tuple[str, Any]]:
    """FG²U with ``num_directions`` directions in vmapped chunks of each size: quality, memory, seconds."""
    specs = [f"fg2u:num_directions={num_directions},chunk_size={c}" for c in chunk_sizes]
    return probe(data, config, phi, inner_steps, specs, repeats=repeats, seed=seed, progress=progress)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m fg2u_bench_vision.probe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        choices=CONFIG_NAMES,
        default="cpu-t100",
        help="network, inner optimiser, real batch (its inner_steps is replaced by --inner-steps)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help=f"default: mnist when --data-dir or ${DATA_ENV} is given, else the embedded digits",
    )
    p.add_argument("--data-dir", default=None, help=f"folder with the data files (default: ${DATA_ENV})")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument(
        "--inner-steps",
        nargs="*",
        type=int,
        default=list(DEFAULT_STEPS),
        help="unroll lengths T (none: only the throughput measurement)",
    )
    p.add_argument(
        "--estimators",
        nargs="+",
        default=list(DEFAULT_ESTIMATORS),
        help="estimator specs name[:key=value,...] (e.g. trgu:truncation=3 fg2u:num_directions=32,chunk_size=8)",
    )
    p.add_argument("--repeats", type=int, default=5, help="draws of (fresh network, real batch) per estimator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--phi-steps",
        type=int,
        default=0,
        help="φ after this many RGU meta steps of condensation (0: φ at initialisation)",
    )
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--real-batch", type=int, default=None)
    p.add_argument(
        "--throughput-directions",
        type=int,
        default=0,
        help="also measure FG2U directions per second with this many directions (0: skip)",
    )
    p.add_argument("--chunk-sizes", nargs="+", type=int, default=[1, 4, 16, 64])
    p.add_argument("--throughput-steps", type=int, default=100, help="T of the throughput measurement")
    p.add_argument("--out", default="results/vision", help="folder of probe.jsonl")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--plot-only",
        action="store_true",
        help="measure nothing: redraw the figure (OUT/gradient-quality.png) from OUT/probe.jsonl",
    )
    args = p.parse_args(argv)
    for name in ("repeats", "ipc"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if any(t < 1 for t in args.inner_steps):
        p.error(f"--inner-steps must be positive integers, got {args.inner_steps}")
    if not args.inner_steps and not args.throughput_directions and not args.plot_only:
        p.error("nothing to measure: give --inner-steps and/or --throughput-directions")
    if args.phi_steps < 0:
        p.error("--phi-steps must be >= 0")
    return args


def _row(T: int, q: Any) -> str:
    mem = "—" if q.memory_bytes is None else f"{q.memory_bytes / 2**20:8.2f}"
    return (
        f"| {T:>4} | {q.name:<22} | {q.cosine_mean:6.3f} ± {q.cosine_std:5.3f} | {q.relative_error_mean:8.3g} | "
        f"{q.norm_ratio_mean:8.3g} | {mem:>9} | {q.seconds_per_estimate:8.3f} |"
    )


def draw_figure(out: Path) -> Path | None:
    """Redraws ``out/gradient-quality.png`` from every record in ``out/probe.jsonl`` (see
    :func:`fg2u_bench_vision.plots.save_gradient_quality_figure`); ``None`` when there is nothing to draw."""
    from fg2u.experiment.records import read_records  # noqa: PLC0415

    from .plots import GRADIENT_QUALITY_FIGURE, save_gradient_quality_figure  # noqa: PLC0415

    jsonl = Path(out) / "probe.jsonl"
    if not jsonl.is_file():
        return None
    return save_gradient_quality_figure(read_records(jsonl), Path(out) / GRADIENT_QUALITY_FIGURE)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from fg2u.experiment import Memory, append_records, make_record, start_run  # noqa: PLC0415

    if args.plot_only:
        figure = draw_figure(Path(args.out))
        if figure is None:
            print(f"error: no probe records in {Path(args.out) / 'probe.jsonl'}; run the probe first", file=sys.stderr)
            return 2
        print(f"figure -> {figure}")
        return 0

    config = get_config(args.config, args.ipc)
    changes = {k: v for k, v in {"width": args.width, "real_batch": args.real_batch}.items() if v is not None}
    config = config.replace(**changes) if changes else config
    from .experiment import EXPERIMENT, enable_compilation_cache  # noqa: PLC0415

    dataset = args.dataset or ("mnist" if (args.data_dir or os.environ.get(DATA_ENV)) else "digits")
    enable_compilation_cache()
    data = load_dataset(dataset, args.data_dir, split_seed=args.split_seed)
    for spec in args.estimators:  # fail fast on a bad spec
        try:
            build_probe_estimator(spec, config, data)
        except ValueError as error:
            print(f"python -m fg2u_bench_vision.probe: error: --estimators: {error}", file=sys.stderr)
            return 2
    run = start_run(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "probe.jsonl"
    print(f"data set {data.name}: {data.x_train.shape[0]} train images {data.image_shape}; {data.note}")
    phi = initial_phi(data, config, args.seed, args.phi_steps, progress=not args.no_progress)
    phi_source = "init U[0,1]" if args.phi_steps == 0 else f"after {args.phi_steps} RGU meta steps"
    print(
        f"config {config.name} (width {config.width}, inner lr {config.inner_lr} cosine, real batch "
        f"{config.real_batch}), ipc {config.ipc}, φ {phi_source}, {args.repeats} draws; records -> {jsonl}"
    )
    header = "|    T | estimator              | cosine to RGU   | rel. err | ‖ĝ‖/‖g‖ | temp MiB | s/estimate |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    task = f"gradient-quality-ipc{config.ipc}"

    def record(T: int, spec: str, q: Any, measure: str, extra: dict[str, float]) -> None:
        (task_info,) = EXPERIMENT.tasks(_vision_config(config.replace(inner_steps=T), data))
        memory = None
        if q.memory_bytes is not None and "xla" in str(q.memory_measure).lower():
            memory = Memory("xla_temp_bytes", int(q.memory_bytes))
        rec = make_record(
            benchmark="vision",
            task=task,
            dataset=data.name,
            config=f"probe-T{T}",
            estimator=str(q.settings.get("estimator", q.name)),
            estimator_spec=spec,
            estimator_settings=q.settings,
            problem_settings={**task_info.problem_settings, "phi": phi_source},
            config_settings={
                "measure": measure,
                "reference": q.reference,
                "repeats": q.num_repeats,
                "real_batch": config.real_batch,
            },
            seed=args.seed,
            metrics={**q.metrics(), **extra},
            memory=memory,
            details={
                "draws": "fresh network and real batch per repeat, same for all estimators",
                "cosines": list(q.cosines),
                "dataset_note": data.note,
                "memory_measure": q.memory_measure,
            },
            wall_time_s=q.seconds_per_estimate * q.num_repeats + (q.compile_seconds or 0.0),
            run=run,
        )
        append_records(jsonl, [rec])

    for T in args.inner_steps:
        t0 = time.perf_counter()
        for spec, q in probe(
            data, config, phi, T, args.estimators, repeats=args.repeats, seed=args.seed, progress=not args.no_progress
        ):
            record(T, spec, q, "quality", {})
            print(_row(T, q), flush=True)
        print(f"  (T = {T}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.throughput_directions:
        b, T = args.throughput_directions, args.throughput_steps
        print(f"\nFG2U throughput, b = {b}, T = {T}:")
        print("| chunk | directions / s | temp MiB | s/estimate |")
        print("|---|---|---|---|")
        for spec, q in throughput(
            data,
            config,
            phi,
            T,
            b,
            args.chunk_sizes,
            repeats=min(args.repeats, 3),
            seed=args.seed,
            progress=not args.no_progress,
        ):
            rate = b / q.seconds_per_estimate
            record(T, spec, q, "throughput", {"directions_per_second": rate})
            mem = "—" if q.memory_bytes is None else f"{q.memory_bytes / 2**20:.2f}"
            print(f"| {q.settings.get('chunk_size')} | {rate:.1f} | {mem} | {q.seconds_per_estimate:.3f} |", flush=True)
    figure = draw_figure(out)
    if figure is not None:
        print(f"figure -> {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
