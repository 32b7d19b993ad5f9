"""Peak memory (RSS) and wall time of one fg2u.torch meta-gradient, one fresh process per configuration.

    # one configuration, in this process (prints one JSON line; used by bench_core.py --torch)
    python packages/core/benchmarks/torch_memory.py --estimator FG2U --num-steps 1000 --meta-dim 10000

    # a sweep: every (estimator, T, N) in a fresh subprocess, one JSON line each
    python packages/core/benchmarks/torch_memory.py --sweep --estimators FG2U RGU RGUCheckpointed \
        --num-steps 10 100 1000 --meta-dims 10000 [--out results/core/torch_memory.jsonl]

The problem (the same as the JAX benchmark's): θ, φ ∈ R^N in float32, a non-linear inner transition

    θ_{t+1} = θ_t − η (a ⊙ θ_t + 0.1 sin θ_t − φ),     F = ½ ‖θ_T − y‖²,

so reverse-mode unrolling has to keep O(N) floats per step, while forward mode carries only (θ_t, θ̇_t).

Measure: after imports and a warm-up run of the same estimator with T = 2 (which loads every kernel and
the functorch / autograd machinery the measured run needs), freed heap memory is returned to the OS
(``malloc_trim(0)``), the kernel's peak-RSS counter is reset (``echo 5 > /proc/self/clear_refs``, Linux),
and the current RSS (``/proc/self/statm``) is the baseline; the result is the peak resident set size at
the end (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus that baseline. Where the peak cannot be
reset, ``peak_reset`` is false and the warm-up's peak may dominate small configurations. Repeatable on
CPU; a fresh process per configuration so that no configuration inherits another's peak. Torch runs with
one intra-op thread (``--threads``), and glibc's mmap threshold is fixed at 64 KiB
(``MALLOC_MMAP_THRESHOLD_``; the script re-executes itself to set it) so that large tensors are mapped
and unmapped individually: without it glibc's dynamic threshold serves them from a fragmenting heap
whose RSS reflects allocation history rather than live memory (differences of tens of MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fg2u.records import peak_rss_reset

MMAP_THRESHOLD = 65536
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


def current_rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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


def measure_here(
    estimator: str,
    num_steps: int,
    meta_dim: int,
    num_directions: int = 4,
    chunk_size: int | None = None,
    truncation: int = 10,
    threads: int = 1,
) -> dict:
    """Runs one configuration in *this* process and returns the measurement (call it in a fresh process)."""
    import torch

    torch.set_num_threads(threads)
    est = make_estimator(estimator, num_directions, chunk_size, truncation)
    # RGURecursive needs two levels (T > branching = 4) to use its rematerialising autograd function in warm-up
    warm_problem, phi = make_problem(min(5 if estimator == "RGURecursive" else 2, num_steps), meta_dim)
    est(warm_problem, phi, 0)  # warm-up: kernels, allocator pools, functorch/autograd machinery
    del warm_problem
    problem, phi = make_problem(num_steps, meta_dim)
    peak_reset = peak_rss_reset()
    baseline = current_rss_bytes()
    start = time.perf_counter()
    grad, aux = est(problem, phi, 1)
    wall = time.perf_counter() - start
    peak = peak_rss_bytes()
    return {
        "backend": "torch",
        "estimator": estimator,
        "num_steps": num_steps,
        "meta_dim": meta_dim,
        "num_directions": num_directions if estimator in ("FG2U", "FG2U_ZO") else None,
        "chunk_size": chunk_size,
        "truncation": truncation if estimator == "TRGU" else None,
        "threads": threads,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_rss_delta_bytes": max(peak - baseline, 0),
        "peak_reset": peak_reset,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "wall_time_s": wall,
        "outer_loss": float(aux.outer_loss),
        "grad_norm": float(torch.linalg.vector_norm(grad)),
        "torch": torch.__version__,
        "memory_measure": "peak_rss_minus_baseline",
    }


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
    """One configuration in a fresh subprocess (so its peak RSS is its own); returns the JSON dict."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--estimator",
        estimator,
        "--num-steps",
        str(num_steps),
        "--meta-dim",
        str(meta_dim),
        "--num-directions",
        str(num_directions),
        "--truncation",
        str(truncation),
        "--threads",
        str(threads),
    ]
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"configuration {estimator} T={num_steps} N={meta_dim} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _to_record(m: dict, config: str) -> Any:
    from fg2u.records import make_record

    settings = {
        k: m[k]
        for k in (
            "backend",
            "num_steps",
            "meta_dim",
            "num_directions",
            "chunk_size",
            "truncation",
            "threads",
            "memory_measure",
        )
    }
    return make_record(
        benchmark="core",
        task="memory-torch",
        dataset="synthetic",
        config=config,
        estimator=m["estimator"],
        settings=settings,
        seed=0,
        metrics={"peak_rss_delta_bytes": m["peak_rss_delta_bytes"], "wall_time_s": m["wall_time_s"]},
        peak_memory_bytes=m["peak_rss_delta_bytes"],
        wall_time_s=m["wall_time_s"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--estimator", choices=ESTIMATORS, help="single configuration, measured in this process")
    parser.add_argument("--num-steps", type=int, nargs="+", default=[10, 100, 1000], help="unroll depth(s) T")
    parser.add_argument(
        "--meta-dim", "--meta-dims", dest="meta_dims", type=int, nargs="+", default=[10_000], help="meta dimension(s) N"
    )
    parser.add_argument("--num-directions", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--truncation", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="every configuration in a fresh subprocess")
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=["FG2U", "RGU", "RGUCheckpointed"])
    parser.add_argument("--out", type=Path, default=None, help="append result records (JSON Lines) here")
    parser.add_argument("--config", default="torch-memory", help="config label of the records")
    args = parser.parse_args(argv)

    if not args.sweep:
        if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and argv is None:
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
            os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]], env)
        if args.estimator is None or len(args.num_steps) != 1 or len(args.meta_dims) != 1:
            parser.error("give --estimator, one --num-steps and one --meta-dim, or use --sweep")
        print(
            json.dumps(
                measure_here(
                    args.estimator,
                    args.num_steps[0],
                    args.meta_dims[0],
                    args.num_directions,
                    args.chunk_size,
                    args.truncation,
                    args.threads,
                )
            ),
            flush=True,
        )
        return

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
        from fg2u.records import append_records

        append_records(args.out, [_to_record(m, args.config) for m in results])


if __name__ == "__main__":
    main()
