"""Peak memory (RSS) and wall time of one fg2u.torch meta-gradient, one fresh process per configuration.

    # every (estimator, T, N) in a fresh subprocess, one JSON line each (bench_core.py --torch calls measure())
    python packages/core/benchmarks/torch_memory.py --estimators FG2U RGU RGUCheckpointed \
        --num-steps 10 100 1000 --meta-dims 10000 [--out results/core/torch_memory.jsonl]

The problem (the same as the JAX benchmark's): θ, φ ∈ R^N in float32, a non-linear inner transition

    θ_{t+1} = θ_t − η (a ⊙ θ_t + 0.1 sin θ_t − φ),     F = ½ ‖θ_T − y‖²,

so reverse-mode unrolling has to keep O(N) floats per step, while forward mode carries only (θ_t, θ̇_t).

Measure: :mod:`fg2u.experiment.memory`, the one peak-memory measure of the project. Every configuration runs
in a fresh interpreter (``measure_in_subprocess``) with one intra-op thread and glibc's mmap threshold fixed
at 64 KiB; :func:`build` makes the problem and a warm-up call of the same estimator with T = 2 (which loads
every kernel and the functorch / autograd machinery the measured call needs); freed heap is returned to the
OS, the kernel's peak counter is reset, and the result is the peak resident set size after the measured
call minus the resident size before it (``peak_rss_growth``). Where the peak cannot be reset,
``peak_reset`` is false and the warm-up's peak may dominate small configurations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fg2u.experiment import Memory, append_records, make_record, start_run
from fg2u.experiment.memory import measure_in_subprocess

ESTIMATORS = (
    "FG2U",
    "FG2U_ZO",
    "RGU",
    "TRGU",
    "RGUCheckpointed",
    "RGURecursive",
    "FGU",
    "HessianFree",
    "Neumann",
    "ConjugateGradient",
)


def make_problem(num_steps: int, meta_dim: int) -> tuple[Any, Any]:
    """The benchmark problem (module docstring) and φ_0, float32, seeded."""
    import torch

    import fg2u

    g = torch.Generator().manual_seed(0)
    a = torch.rand(meta_dim, generator=g) + 0.5
    y = torch.randn(meta_dim, generator=g)
    eta = 0.1
    problem = fg2u.UnrolledProblem(
        init=lambda phi: torch.zeros_like(phi),
        step=lambda theta, phi, _: theta - eta * (a * theta + 0.1 * torch.sin(theta) - phi),
        outer_loss=lambda theta, phi, _: 0.5 * torch.sum((theta - y) ** 2),
        num_steps=num_steps,
    )
    return problem, torch.randn(meta_dim, generator=g)


def make_estimator(name: str, num_directions: int, chunk_size: int | None, truncation: int) -> Any:
    import fg2u.torch as ft

    return {
        "FG2U": lambda: ft.FG2U(num_directions=num_directions, chunk_size=chunk_size),
        "FG2U_ZO": lambda: ft.FG2U_ZO(num_directions=num_directions, chunk_size=chunk_size, eps=1e-2),
        "RGU": ft.RGU,
        "TRGU": lambda: ft.TRGU(truncation),
        "RGUCheckpointed": ft.RGUCheckpointed,
        "RGURecursive": ft.RGURecursive,
        "FGU": ft.FGU,
        "HessianFree": lambda: ft.HessianFree(alpha=10.0),
        "Neumann": lambda: ft.Neumann(10, alpha=10.0),
        "ConjugateGradient": lambda: ft.ConjugateGradient(10),
    }[name]()


def build(
    estimator: str,
    num_steps: int,
    meta_dim: int,
    num_directions: int = 4,
    chunk_size: int | None = None,
    truncation: int = 10,
) -> tuple[Any, Any, dict]:
    """The builder :func:`fg2u.experiment.memory.measure_in_subprocess` calls in the fresh process:
    ``(call, warmup, info)`` for one configuration (module docstring)."""
    est = make_estimator(estimator, num_directions, chunk_size, truncation)
    # RGURecursive needs two levels (T > branching = 4) to use its rematerialising autograd function in warm-up
    warm_problem, warm_phi = make_problem(min(5 if estimator == "RGURecursive" else 2, num_steps), meta_dim)
    problem, phi = make_problem(num_steps, meta_dim)
    out: dict = {}

    def call() -> None:
        grad, aux = est(problem, phi, 1)
        out.update(outer_loss=float(aux.outer_loss), grad_norm=float(grad.norm()))

    return call, lambda: est(warm_problem, warm_phi, 0), out


def measure(
    estimator: str,
    num_steps: int,
    meta_dim: int,
    num_directions: int = 4,
    chunk_size: int | None = None,
    truncation: int = 10,
    threads: int = 1,
    timeout: float = 3600,
) -> dict:
    """One configuration in a fresh subprocess (so its peak RSS is its own): the measurement and its settings."""
    kwargs = {
        "estimator": estimator,
        "num_steps": num_steps,
        "meta_dim": meta_dim,
        "num_directions": num_directions,
        "chunk_size": chunk_size,
        "truncation": truncation,
    }
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the child imports this file as torch_memory
    m = measure_in_subprocess("torch_memory:build", kwargs, threads=threads, timeout_s=timeout)
    return {
        **kwargs,
        "backend": "torch",
        "threads": threads,
        "num_directions": num_directions if estimator in ("FG2U", "FG2U_ZO") else None,
        "truncation": truncation if estimator == "TRGU" else None,
        "peak_rss_delta_bytes": int(m["peak_rss_growth_bytes"]),
        "peak_reset": m["peak_reset"],
        "wall_time_s": m["seconds"],
        **m["info"],
    }


def _to_record(m: dict, config: str, run: Any = None) -> Any:
    return make_record(
        benchmark="core",
        task="memory-torch",
        dataset="synthetic",
        config=config,
        estimator=m["estimator"],
        estimator_settings={k: m[k] for k in ("num_directions", "chunk_size", "truncation")},
        problem_settings={"backend": "torch", "num_steps": m["num_steps"], "meta_dim": m["meta_dim"]},
        config_settings={"threads": m["threads"]},
        seed=0,
        metrics={"peak_rss_delta_bytes": m["peak_rss_delta_bytes"], "wall_time_s": m["wall_time_s"]},
        memory=Memory("peak_rss_growth", m["peak_rss_delta_bytes"]),
        details={"peak_reset": m["peak_reset"]},
        wall_time_s=m["wall_time_s"],
        run=run,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-steps", type=int, nargs="+", default=[10, 100, 1000], help="unroll depth(s) T")
    parser.add_argument(
        "--meta-dim", "--meta-dims", dest="meta_dims", type=int, nargs="+", default=[10_000], help="meta dimension(s) N"
    )
    parser.add_argument("--num-directions", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--truncation", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=["FG2U", "RGU", "RGUCheckpointed"])
    parser.add_argument("--out", type=Path, default=None, help="append result records (JSON Lines) here")
    parser.add_argument("--config", default="torch-memory", help="config label of the records")
    args = parser.parse_args(argv)

    run = start_run()
    results = []
    for meta_dim in args.meta_dims:
        for name in args.estimators:
            for num_steps in args.num_steps:
                m = measure(
                    name, num_steps, meta_dim, args.num_directions, args.chunk_size, args.truncation, args.threads
                )
                results.append(m)
                print(json.dumps(m), flush=True)
    print("\nestimator          T       N    peak RSS delta (MiB)   wall (s)", file=sys.stderr)
    for m in results:
        print(
            f"{m['estimator']:16s} {m['num_steps']:5d} {m['meta_dim']:7d} {m['peak_rss_delta_bytes'] / 2**20:14.2f}"
            f" {m['wall_time_s']:14.3f}",
            file=sys.stderr,
        )
    if args.out is not None:
        append_records(args.out, [_to_record(m, args.config, run) for m in results])


if __name__ == "__main__":
    main()
