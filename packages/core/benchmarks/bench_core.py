"""Memory and time of every JAX estimator versus unroll depth T and meta-dimension N.

    python packages/core/benchmarks/bench_core.py                 # T ∈ {10, 100, 1000}, N ∈ {1e3, 1e5}
    python packages/core/benchmarks/bench_core.py --size small    # the regression-tracking subset
    python packages/core/benchmarks/bench_core.py --size depth    # T ∈ {10, …, 10⁴}, N = 10⁴: the exact
                                                                  # reverse modes against FG²U
    python packages/core/benchmarks/bench_core.py --torch         # also the torch backend (peak RSS)
    python packages/core/benchmarks/bench_core.py --size depth --torch --skip-jax   # torch only

The problem: θ, φ ∈ R^N, a non-linear inner transition
    θ_{t+1} = θ_t − η (a ⊙ θ_t + 0.1 sin θ_t − φ),     F = ½ ‖θ_T − y‖²,
so reverse unrolling has to store (or recompute) N floats per step. For every (estimator, T, N) the
script records the compiled temporary memory reported by XLA
(``jax.jit(f).lower(...).compile().memory_analysis().temp_size_in_bytes``, deterministic) and the
median wall time of the compiled call, and appends result records to ``results/core/<size>.jsonl``.
It prints a table, and the ratios the design targets:
  * FG²U temp memory at the largest T within 1.1× of the smallest T (flat in T);
  * RGU growing about linearly in T, RGUCheckpointed about √T, RGURecursive about log T (``--size depth``:
    RGU, RGUCheckpointed, RGURecursive with k = 4 and k = 2, and FG²U from T = 10 to 10⁴);
  * FG²U wall time per direction within 2.5× of one plain (non-differentiated) unroll;
  * FG²U (chunk_size = 1) compiled temp memory within 3× of a plain unroll's for every b (1, 4, 16):
    directions are drawn inside each chunk, so memory does not depend on b.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import fg2u
import fg2u.jax as fj
from fg2u.experiment import Memory, append_records, make_record, start_run

RUN = start_run()  # one run id and provenance for every record of this invocation

SIZES = {
    "full": {"num_steps": (10, 100, 1000), "meta_dims": (1_000, 100_000)},
    "small": {"num_steps": (10, 100), "meta_dims": (1_000,)},
    # the exact reverse modes (stored states ∝ T, √T, log T) against FG²U (flat) up to T = 10⁴
    "depth": {"num_steps": (10, 100, 1000, 10_000), "meta_dims": (10_000,)},
}
# the estimators of each size (None: every one of estimators())
SIZE_ESTIMATORS: dict[str, tuple[str, ...] | None] = {
    "full": None,
    "small": (
        "FG2U",
        "FG2U(b=1)",
        "FG2U(b=16)",
        "RGU",
        "RGUCheckpointed",
        "TRGU(K=10)",
        "Neumann(K=10)",
        "ConjugateGradient(K=10)",
        "HessianFree",
        "FGU",
    ),
    "depth": ("FG2U", "RGU", "RGUCheckpointed", "RGURecursive", "RGURecursive(k=2)"),
}
NUM_DIRECTIONS = 4
FGU_MAX_DIM = 1_000  # FGU costs N jvps: a reference for small N only


def make_problem(num_steps: int, meta_dim: int) -> tuple[fg2u.UnrolledProblem, jax.Array]:
    """The benchmark problem (see module docstring) and an initial φ."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(0.5, 1.5, meta_dim), jnp.float32)
    y = jnp.asarray(rng.normal(size=meta_dim), jnp.float32)
    eta = 0.1

    problem = fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros_like(phi),
        step=lambda theta, phi, _: theta - eta * (a * theta + 0.1 * jnp.sin(theta) - phi),
        outer_loss=lambda theta, phi, _: 0.5 * jnp.sum((theta - y) ** 2),
        num_steps=num_steps,
    )
    phi = jnp.asarray(rng.normal(size=meta_dim), jnp.float32)
    return problem, phi


MEMORY_DIRECTIONS = (1, 16)  # FG2U(b, chunk_size=1) for these b too: compiled memory must not depend on b


def estimators(num_steps: int, meta_dim: int) -> dict[str, object]:
    out = {
        "FG2U": fj.FG2U(num_directions=NUM_DIRECTIONS, chunk_size=1),
        **{f"FG2U(b={b})": fj.FG2U(num_directions=b, chunk_size=1) for b in MEMORY_DIRECTIONS},
        "RGU": fj.RGU(),
        "RGUCheckpointed": fj.RGUCheckpointed(),
        "RGURecursive": fj.RGURecursive(),
        "RGURecursive(k=2)": fj.RGURecursive(branching=2),
        "TRGU(K=10)": fj.TRGU(truncation=min(10, num_steps)),
        "Neumann(K=10)": fj.Neumann(num_terms=10, alpha=0.5),
        "ConjugateGradient(K=10)": fj.ConjugateGradient(num_iterations=10),
        "HessianFree": fj.HessianFree(),
    }
    if meta_dim <= FGU_MAX_DIM:
        out["FGU"] = fj.FGU()
    return out


def measure(fn, *args, repeats: int) -> tuple[dict[str, int], float]:
    """Compiled memory analysis and median wall time of ``jax.jit(fn)(*args)``."""
    compiled = jax.jit(fn).lower(*args).compile()
    analysis = compiled.memory_analysis()
    memory = {
        "compiled_temp_bytes": int(analysis.temp_size_in_bytes),
        "compiled_argument_bytes": int(analysis.argument_size_in_bytes),
        "compiled_output_bytes": int(analysis.output_size_in_bytes),
    }
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return memory, statistics.median(times)


def run_jax(size: str, out_dir: Path, repeats: int, only: list[str] | None = None) -> list:
    records = []
    key = jax.random.PRNGKey(0)
    for meta_dim in SIZES[size]["meta_dims"]:
        for num_steps in SIZES[size]["num_steps"]:
            problem, phi = make_problem(num_steps, meta_dim)
            plain = lambda phi, problem=problem: fj.meta_objective(problem)(phi)  # noqa: E731
            plain_memory, plain_time = measure(plain, phi, repeats=repeats)
            records.append(_record(size, "plain-unroll", {}, num_steps, meta_dim, plain_memory, plain_time))
            print(
                f"  T={num_steps:5d} N={meta_dim:7d} {'plain unroll (no gradient)':24s} "
                f"temp={plain_memory['compiled_temp_bytes']:>12,d} B time={plain_time * 1e3:9.2f} ms",
                flush=True,
            )
            chosen = only if only is not None else SIZE_ESTIMATORS[size]
            for name, estimator in estimators(num_steps, meta_dim).items():
                if chosen is not None and name not in chosen:
                    continue
                fn = lambda phi, key, estimator=estimator, problem=problem: estimator(problem, phi, key)  # noqa: E731
                memory, seconds = measure(fn, phi, key, repeats=repeats)
                settings = _settings(estimator)
                metrics_extra = {"time_ratio_to_plain_unroll": seconds / plain_time}
                if name.startswith("FG2U"):
                    b = estimator.num_directions
                    metrics_extra["time_per_direction_ratio"] = seconds / b / plain_time
                    metrics_extra["temp_memory_ratio_to_plain_unroll"] = memory["compiled_temp_bytes"] / max(
                        plain_memory["compiled_temp_bytes"], 1
                    )
                records.append(_record(size, name, settings, num_steps, meta_dim, memory, seconds, metrics_extra))
                print(
                    f"  T={num_steps:5d} N={meta_dim:7d} {name:24s} temp={memory['compiled_temp_bytes']:>12,d} B "
                    f"time={seconds * 1e3:9.2f} ms",
                    flush=True,
                )
    append_records(out_dir / f"{size}.jsonl", records)
    return records


def run_torch(size: str, out_dir: Path) -> list:
    """Peak-RSS growth per configuration, one fresh subprocess each (torch_memory.py, the shared measure of
    :mod:`fg2u.experiment.memory`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_memory  # noqa: PLC0415 (a sibling script, importable once its folder is on the path)

    records = []
    for meta_dim in SIZES[size]["meta_dims"]:
        for num_steps in SIZES[size]["num_steps"]:
            for name in ("FG2U", "RGU", "RGUCheckpointed", "RGURecursive"):
                measured = torch_memory.measure(name, num_steps, meta_dim, NUM_DIRECTIONS)
                records.append(torch_memory._to_record(measured, size, RUN))
                print(
                    f"  torch T={num_steps:5d} N={meta_dim:7d} {name:16s} "
                    f"peak RSS delta={measured['peak_rss_delta_bytes']:>12,d} B",
                    flush=True,
                )
    append_records(out_dir / f"{size}.jsonl", records)
    return records


def _settings(estimator) -> dict:
    """The estimator's scalar settings (``estimator.settings()``: an implicit estimator's solve settings flat)."""
    return {
        key: value
        for key, value in estimator.settings().items()
        if key != "estimator" and isinstance(value, (int, float, str, bool, type(None)))
    }


def _record(size, name, settings, num_steps, meta_dim, memory, seconds, extra=None):
    return make_record(
        benchmark="core",
        task="memory-jax",
        dataset="synthetic",
        config=size,
        estimator=name,
        estimator_settings=settings,
        problem_settings={"backend": "jax", "num_steps": num_steps, "meta_dim": meta_dim},
        seed=0,
        metrics={**memory, "wall_time_s": seconds, **(extra or {})},
        memory=Memory("xla_temp_bytes", int(memory["compiled_temp_bytes"])),
        wall_time_s=seconds,
        run=RUN,
    )


def summarise(records: list) -> None:
    """Prints the ratios the design targets."""
    jax_records = [r for r in records if r.task == "memory-jax"]
    if not jax_records:
        return
    by = {(r.estimator, r.problem_settings["num_steps"], r.problem_settings["meta_dim"]): r for r in jax_records}
    steps = sorted({r.problem_settings["num_steps"] for r in jax_records})
    dims = sorted({r.problem_settings["meta_dim"] for r in jax_records})
    lo, hi = steps[0], steps[-1]
    print(
        f"\nratios between T={hi} and T={lo} (compiled temp memory; sqrt ratio {math.sqrt(hi / lo):.1f}, "
        f"linear ratio {hi / lo:.0f}):"
    )
    for n in dims:
        for name in ("FG2U", "RGU", "RGUCheckpointed", "RGURecursive", "RGURecursive(k=2)", "TRGU(K=10)"):
            a, b = by.get((name, lo, n)), by.get((name, hi, n))
            if a and b:
                ratio = b.metrics["compiled_temp_bytes"] / max(a.metrics["compiled_temp_bytes"], 1)
                print(f"  N={n:7d} {name:18s} memory ratio {ratio:8.2f}")
        state = 4 * n  # one float32 state θ ∈ R^N
        names = [m for m in ("plain-unroll", "RGU", "RGUCheckpointed", "RGURecursive", "RGURecursive(k=2)", "FG2U")]
        if any(by.get((m, t, n)) for m in names[1:] for t in steps):
            print(f"  N={n:7d}: compiled temp memory in states (4N bytes) / seconds per estimate, by T:")
            for m in names:
                cells = [by.get((m, t, n)) for t in steps]
                if any(cells):
                    text = "  ".join(
                        f"T={t}: {c.metrics['compiled_temp_bytes'] / state:7.1f} / {c.metrics['wall_time_s']:.3g} s"
                        for t, c in zip(steps, cells)
                        if c
                    )
                    print(f"    {m:18s} {text}")
        for t in steps:
            for name in ("FG2U", *(f"FG2U(b={b})" for b in MEMORY_DIRECTIONS)):
                fg = by.get((name, t, n))
                if fg:
                    print(
                        f"  N={n:7d} T={t:5d} {name:10s} (chunk_size=1, b={fg.estimator_settings['num_directions']:2d}): time per "
                        f"direction / plain unroll = {fg.metrics['time_per_direction_ratio']:.2f}, compiled temp "
                        f"memory / plain unroll = {fg.metrics['temp_memory_ratio_to_plain_unroll']:.2f}"
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=Path("results/core"))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per configuration (median)")
    parser.add_argument("--torch", action="store_true", help="also measure the torch backend (peak RSS)")
    parser.add_argument("--skip-jax", action="store_true", help="with --torch: the torch backend only")
    parser.add_argument(
        "--estimators",
        nargs="+",
        default=None,
        metavar="NAME",
        help="only these JAX estimators (e.g. FG2U 'FG2U(b=1)' 'FG2U(b=16)' RGU); default: all",
    )
    parser.add_argument("--meta-dims", type=int, nargs="+", default=None, help="override the size's N values")
    parser.add_argument("--num-steps", type=int, nargs="+", default=None, help="override the size's T values")
    args = parser.parse_args(argv)
    if args.meta_dims or args.num_steps:
        SIZES[args.size] = {
            "num_steps": tuple(args.num_steps or SIZES[args.size]["num_steps"]),
            "meta_dims": tuple(args.meta_dims or SIZES[args.size]["meta_dims"]),
        }
    print(f"bench_core: size={args.size}, JAX {jax.__version__} on {jax.devices()[0].platform}", flush=True)
    records = [] if args.skip_jax else run_jax(args.size, args.out, args.repeats, args.estimators)
    if args.torch:
        records += run_torch(args.size, args.out)
    summarise(records)
    print(f"\nwrote {len(records)} records to {args.out / (args.size + '.jsonl')}")


if __name__ == "__main__":
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    main()
