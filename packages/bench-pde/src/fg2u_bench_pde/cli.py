"""Command line: ``python -m fg2u_bench_pde [--config cpu] [--estimators …] [--seeds 0] …`` (see ``--help``);
the common flags come from :func:`fg2u.harness.add_common_arguments`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fg2u.harness import add_common_arguments
from fg2u_bench_pde.configs import CONFIGS, SETTINGS
from fg2u_bench_pde.equations import EQUATIONS, PAPER_EQUATIONS, UnstableSettingError, get_equation
from fg2u_bench_pde.reference import CACHE_ENV_VAR, ENV_VAR, MissingDataError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fg2u_bench_pde",
        description="PDE coefficient discovery (Burgers, Allen-Cahn, KdV) with FG²U-ZO on a spectral solver "
        "and FG²U / RGU / TRGU on a PINN.",
    )
    p.add_argument(
        "--equations",
        nargs="+",
        choices=sorted(EQUATIONS),
        default=None,
        help=f"default: {' '.join(PAPER_EQUATIONS)} (the 'raissi' setting: those with a second unknown)",
    )
    from fg2u_bench_pde.run import ESTIMATORS

    add_common_arguments(
        p,
        configs=sorted(CONFIGS),
        default_out="results/pde",
        estimators=list(ESTIMATORS),
        default_estimators=["fg2u_zo_forward"],
    )
    p.epilog = (
        "estimators: fg2u_zo_forward/central: FG²U-ZO (fg2u.jax.FG2U_ZO) with random directions on the "
        "spectral solver; zo_quadrature: the paper's fixed 12-point quadrature (13 solves per step); "
        "fg2u, rgu, trgu: fg2u.jax estimators on the PINN; noise_floor: not a method but the Cramér–Rao floor "
        "of the noisy data (the error any unbiased fit must expect; needs --noise > 0)"
    )
    p.add_argument(
        "--setting",
        choices=sorted(SETTINGS),
        default="paper",
        help="paper: 64 observations on an 8x8 interior grid, one unknown; raissi: 2,000 random "
        "observations, two unknowns (lambda1, lambda2) for burgers and kdv",
    )
    p.add_argument(
        "--num-observations",
        type=int,
        default=None,
        help="override the setting's number of observations (grid layout: a square)",
    )
    p.add_argument("--directions", type=int, default=None, help="random directions per FG²U(-ZO) estimate (default 1)")
    p.add_argument(
        "--distribution",
        choices=["rademacher", "gaussian", "sphere", "orthogonal"],
        default=None,
        help="direction distribution of FG²U(-ZO) (default rademacher; orthogonal with --directions equal "
        "to the number of unknowns gives the exact gradient up to the finite difference)",
    )
    p.add_argument(
        "--data-source",
        choices=["solver", "reference"],
        default=None,
        help="solver (default): ground truth from our own fine spectral solve at the true "
        "coefficient, generated once and cached; reference: the authors' .mat files "
        "(the default when --data-dir is given)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help=f"folder with burgers.mat, KdV.mat, Allen_Cahn.mat for --data-source reference "
        f"(default: ${ENV_VAR}); e.g. ../shared/data/pde",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help=f"cache of the generated ground truths (default: ${CACHE_ENV_VAR} or ~/.cache/fg2u/pde)",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=None,
        help="observation noise level L: adds L·std(u)·N(0,1), seeded (default: the config's, 0)",
    )
    p.add_argument("--outer-steps", type=int, default=None, help="override the config's outer steps")
    p.add_argument(
        "--init-scan",
        type=int,
        default=None,
        help="override the config's initial scan (0: start the descent at the random draw)",
    )
    p.add_argument(
        "--stop-below",
        type=float,
        default=None,
        help="cost-of-discovery runs: stop once the relative coefficient error (computed from the "
        "known target) is below this value; recorded as setting stop_below",
    )
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

    from fg2u_bench_pde.configs import apply_setting
    from fg2u_bench_pde.run import build_task, format_table, noise_floor_record, run_one, write_records

    config = apply_setting(CONFIGS[args.config], args.setting)
    if args.directions is not None:
        if args.directions < 1:
            raise SystemExit(f"--directions must be >= 1, got {args.directions}")
        config = config.replace(num_directions=args.directions)
    if args.distribution is not None:
        config = config.replace(distribution=args.distribution)
    if args.stop_below is not None:
        if not args.stop_below > 0:
            raise SystemExit(f"--stop-below must be > 0, got {args.stop_below}")
        config = config.replace(stop_below=args.stop_below)
    if args.num_observations is not None:
        if args.num_observations < 1:
            raise SystemExit(f"--num-observations must be >= 1, got {args.num_observations}")
        config = config.replace(num_observations=args.num_observations)
    data_source = args.data_source or ("reference" if args.data_dir is not None else "solver")
    equations = args.equations or [
        e for e in PAPER_EQUATIONS if config.unknowns == 1 or get_equation(e).nonlinear_unknown
    ]
    if config.unknowns == 2:
        bad = [e for e in equations if not get_equation(e).nonlinear_unknown]
        if bad:
            raise SystemExit(f"--setting {args.setting} has two unknowns; {bad} have one (use burgers, kdv)")
    if args.noise is not None:
        if args.noise < 0:
            raise SystemExit(f"--noise must be >= 0, got {args.noise}")
        config = config.replace(noise_level=args.noise)
    if args.outer_steps is not None:
        if args.outer_steps < 1:
            raise SystemExit(f"--outer-steps must be >= 1, got {args.outer_steps}")
        config = config.replace(
            outer=dataclasses.replace(config.outer, steps=args.outer_steps),
            pinn_outer=dataclasses.replace(config.pinn_outer, steps=args.outer_steps),
        )
    if args.init_scan is not None:
        if args.init_scan < 0:
            raise SystemExit(f"--init-scan must be >= 0, got {args.init_scan}")
        config = config.replace(init_scan=args.init_scan)
    if "noise_floor" in args.estimators and not config.noise_level > 0:
        raise SystemExit(
            "--estimators noise_floor needs noisy observations: pass --noise LEVEL (e.g. --noise 0.01); "
            "exact data have no noise floor"
        )
    records = []
    try:
        for equation in equations:
            task = build_task(config, equation, data_source, args.data_dir, args.cache_dir)
            for estimator in args.estimators:
                for seed in args.seeds:
                    if estimator == "noise_floor":
                        record = noise_floor_record(config, task, seed)
                        write_records([record], args.out, config.name)
                        records.append(record)
                        print(
                            f"{equation:<11} {'noise floor':<16} seed {seed}: any unbiased fit of these data errs by "
                            f"{100 * record.metrics['relative_coefficient_error']:.4g} % on average (Cramér–Rao)",
                            flush=True,
                        )
                        continue
                    record = run_one(config, task, estimator, seed, progress=not args.no_progress)
                    write_records([record], args.out, config.name)
                    records.append(record)
                    m = record.metrics
                    print(
                        f"{equation:<11} {estimator:<16} seed {seed}: coefficient "
                        f"{m['coefficient']:.6g} (target {m['target_coefficient']:.6g}, rel. error "
                        f"{100 * m['relative_coefficient_error']:.4g} %"
                        + (f", λ1 {m['lambda1']:.6g}" if "lambda1" in m else "")
                        + f"), rel. L2 {m['relative_l2_error']:.3e}, solver calls to 1 % / 0.1 %: "
                        f"{m.get('solver_calls_to_1pct', float('nan')):.0f} / "
                        f"{m.get('solver_calls_to_0.1pct', float('nan')):.0f}, {record.wall_time_s:.1f} s",
                        flush=True,
                    )
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
