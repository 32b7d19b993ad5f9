"""Command line: ``python -m fg2u_bench_pde --config smoke|cpu|paper …`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fg2u_bench_pde.configs import CONFIGS
from fg2u_bench_pde.equations import EQUATIONS, UnstableSettingError
from fg2u_bench_pde.reference import ENV_VAR, MissingDataError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fg2u_bench_pde",
        description="PDE coefficient discovery (Burgers, Allen-Cahn, KdV) with FG²U-ZO on a spectral solver "
        "and FG²U / RGU / TRGU on a PINN.",
    )
    p.add_argument("--config", choices=sorted(CONFIGS), default="smoke")
    p.add_argument("--equations", nargs="+", choices=sorted(EQUATIONS), default=sorted(EQUATIONS))
    from fg2u_bench_pde.run import ESTIMATORS

    p.add_argument("--estimators", nargs="+", choices=list(ESTIMATORS), default=["fg2u_zo_forward"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--data-dir", default=None,
                   help=f"folder with burgers.mat, KdV.mat, Allen_Cahn.mat (default: ${ENV_VAR}); "
                        "e.g. ../shared/data/pde")
    p.add_argument("--data-source", choices=["reference", "solver"], default="reference",
                   help="observations from the reference files or from our spectral solver at the true coefficient")
    p.add_argument("--noise", type=float, default=None, help="observation noise level (default: the config's)")
    p.add_argument("--outer-steps", type=int, default=None, help="override the config's outer steps")
    p.add_argument("--init-scan", type=int, default=None,
                   help="override the config's initial scan (0: start the descent at the random draw)")
    p.add_argument("--out", default="results/pde", help="folder of <config>.jsonl")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    import jax

    # float64 for this run only (a context, so importing or calling main never flips the global
    # setting of a host process such as pytest): the finite differences use ε = 1e-4.
    with jax.enable_x64(True):
        return _run(args)


def _run(args) -> int:
    import dataclasses

    from tqdm.auto import tqdm

    from fg2u_bench_pde.run import build_task, format_table, run_one, write_records

    config = CONFIGS[args.config]
    if args.noise is not None:
        if args.noise < 0:
            raise SystemExit(f"--noise must be >= 0, got {args.noise}")
        config = config.replace(noise_level=args.noise)
    if args.outer_steps is not None:
        if args.outer_steps < 1:
            raise SystemExit(f"--outer-steps must be >= 1, got {args.outer_steps}")
        config = config.replace(outer=dataclasses.replace(config.outer, steps=args.outer_steps),
                                pinn_outer=dataclasses.replace(config.pinn_outer, steps=args.outer_steps))
    if args.init_scan is not None:
        if args.init_scan < 0:
            raise SystemExit(f"--init-scan must be >= 0, got {args.init_scan}")
        config = config.replace(init_scan=args.init_scan)
    records = []
    try:
        for equation in args.equations:
            task = build_task(config, equation, args.data_source, args.data_dir)
            for estimator in args.estimators:
                for seed in args.seeds:
                    bar = None if args.no_progress else (
                        lambda it, e=estimator, s=seed: tqdm(it, desc=f"{equation}/{e}/seed{s}", leave=False))
                    record = run_one(config, task, estimator, seed, progress=bar)
                    write_records([record], args.out, config.name)
                    records.append(record)
                    m = record.metrics
                    print(f"{equation:<11} {estimator:<16} seed {seed}: {record.task} coefficient "
                          f"{m['coefficient']:.6g} (target {m['target_coefficient']:.6g}, rel. error "
                          f"{100 * m['relative_coefficient_error']:.4f} %), rel. L2 {m['relative_l2_error']:.3e}, "
                          f"{record.wall_time_s:.1f} s", flush=True)
    except MissingDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except UnstableSettingError as error:
        print(f"error: unstable setting: {error}", file=sys.stderr)
        return 3
    print()
    print(format_table(records))
    print(f"\nrecords appended to {Path(args.out) / (config.name + '.jsonl')}")
    return 0
