"""Where FG²U wins: memory and seconds per meta-gradient of exact reverse mode and FG²U, measured, fitted and
projected (issue 23, item 5; the page docs/where-fg2u-wins.md).

    python packages/core/benchmarks/where_fg2u_wins.py memory    # compile-only XLA temp memory (the grids below)
    python packages/core/benchmarks/where_fg2u_wins.py time      # seconds per meta-gradient at selected points
    python packages/core/benchmarks/where_fg2u_wins.py devices   # DirectionParallel on simulated CPU devices
    python packages/core/benchmarks/where_fg2u_wins.py analyse   # fits, projection, figure, tables
    ... memory --problems mlp --quick                            # a subset (for a first look)

Estimators: RGU (stored states ∝ T), RGUCheckpointed (√T segments), RGURecursive (k = 4, O(k log_k T)
states) — the exact gradient — and FG2U(b, chunk_size), plus a plain forward unroll (no gradient) as the
yardstick. Problems (one family each, sizes swept):

* ``core`` — bench_core's synthetic problem: θ, φ ∈ R^N, θ_{t+1} = θ_t − η(a ⊙ θ_t + 0.1 sin θ_t − φ); the
  inner state *is* the meta-parameter, so width = N.
* ``mlp`` — built for FG²U's side of the trade: an MLP (in 16 → width → width → 10 classes, tanh) trained by
  Adam (params + two moment buffers: the inner state is 3P floats) on 4 examples per step, φ = per-example
  loss weights of ``num_train`` training examples (N = num_train, default 256; weight 2·sigmoid(φ_i)); outer
  loss: cross-entropy of 128 validation examples at θ_T. The inner state dwarfs the activations (4 × width).
* ``vision`` — the vision benchmark's real inner model: ``fg2u_bench_vision.condensation.make_problem`` at the
  ``cpu`` config (digits, IPC 1: N = 640, ConvNet depth 2, SGD momentum, real batch 256), widths 32–128.

Memory: XLA's compiled temporary bytes (``memory_analysis().temp_size_in_bytes``), deterministic and
compile-only (no run), so it reaches sizes we could never time here. Seconds: the compiled call, the
estimators of one configuration interleaved round-robin (``--repeats`` rounds, load spreads over all of them
alike); each record holds the minimum and median wall seconds, the median process CPU seconds (all threads)
and the 1-minute load average during the measurement.

Records (schema 2, one invocation one run id) go to ``results/scaling/where-fg2u-wins.jsonl``: benchmark
``scaling``, task ``where-fg2u-wins``, dataset the problem family, config the part (``memory``, ``time``,
``devices``). ``analyse`` reads them and writes ``where-fg2u-wins.png`` and ``where-fg2u-wins-fits.json``
next to them and prints the tables of the docs page.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OUT = ROOT / "results" / "scaling"
RECORDS = "where-fg2u-wins.jsonl"
TASK = "where-fg2u-wins"

# ----------------------------------------------------------------------------------------- the grids
STEPS = (10, 30, 100, 300, 1000, 3000, 10_000)
EXACT = ("RGU", "RGUCheckpointed", "RGURecursive")
FG_MEMORY = ((1, 1), (16, 1), (16, 16))  # (b, chunk_size)


@dataclasses.dataclass(frozen=True)
class Case:
    """One problem size: ``family`` (core / mlp / vision), T, width (core: N) and, for mlp, num_train (= N)."""

    family: str
    num_steps: int
    width: int
    num_train: int = 256

    def settings(self) -> dict[str, Any]:
        out = {"family": self.family, "num_steps": self.num_steps, "width": self.width}
        if self.family == "mlp":
            out["num_train"] = self.num_train
        return out


def memory_grid(families: list[str], quick: bool) -> list[tuple[Case, tuple[str, ...]]]:
    """(case, estimator names) pairs of the compile-only memory sweep (about 25 minutes under load 10)."""
    every = ("plain-unroll", *EXACT, *(fg_name(b, c) for b, c in FG_MEMORY))
    short = ("plain-unroll", *EXACT, fg_name(1, 1), fg_name(16, 16))  # FG2U(16, c=1) ≈ FG2U(1, c=1) off core
    steps = (10, 100, 1000, 10_000) if quick else STEPS
    grid: list[tuple[Case, tuple[str, ...]]] = []
    if "core" in families:
        grid += [(Case("core", t, 10_000), every) for t in steps]
        grid += [(Case("core", 1000, n), every) for n in (100, 1_000, 100_000, 1_000_000)]
    if "mlp" in families:
        grid += [(Case("mlp", t, 256), every) for t in steps if t != 30]
        grid += [(Case("mlp", t, 1024), short) for t in (100, 10_000)]
        widths = (64, 1024) if quick else (32, 128, 512, 1024, 2048, 4096)
        grid += [(Case("mlp", 1000, w), short) for w in widths]
        grid += [(Case("mlp", 1000, 256, n), short[:-1]) for n in (16, 4096)]
        grid += [(Case("mlp", 1000, 256), tuple(fg_name(16, c) for c in (2, 4, 8)))]
    if "vision" in families:
        grid += [(Case("vision", t, 32), short) for t in ((100, 1000) if quick else (100, 300, 1000))]
        grid += [(Case("vision", 300, w), short) for w in ((64,) if quick else (64, 128))]
    return grid


def time_grid(families: list[str]) -> list[tuple[Case, tuple[str, ...]]]:
    """(case, estimator names) pairs of the timed sweep (a few points: enough for the fits)."""
    base = ("plain-unroll", *EXACT, fg_name(1, 1), fg_name(8, 8))
    chunks = tuple(fg_name(8, c) for c in (1, 2, 4))
    grid: list[tuple[Case, tuple[str, ...]]] = []
    if "core" in families:
        grid += [(Case("core", 100, 10_000), base + chunks)]
        grid += [(Case("core", 1000, 10_000), base), (Case("core", 10_000, 10_000), base)]
        grid += [(Case("core", 1000, n), base) for n in (1_000, 100_000)]
    if "mlp" in families:
        grid += [(Case("mlp", 100, 256), base + chunks)]
        grid += [(Case("mlp", t, 256), base) for t in (300, 1000)]
        grid += [(Case("mlp", 100, w), base) for w in (64, 128, 512, 1024)]
        grid += [(Case("mlp", 100, 256, 4096), base)]
    if "vision" in families:
        grid += [(Case("vision", 100, 32), base + chunks), (Case("vision", 300, 32), base)]
        grid += [(Case("vision", 100, 64), base)]
    return grid


def fg_name(b: int, chunk: int) -> str:
    return f"FG2U(b={b},c={chunk})"


# --------------------------------------------------------------------------------------- the problems
def build(case: Case) -> tuple[Any, Any, dict[str, Any]]:
    """``(problem, φ, info)``: info holds ``meta_dim`` N, ``state_bytes`` (one inner state θ) and
    ``inner_params`` (model parameters, for the mlp and vision families)."""
    import jax

    if case.family == "core":
        sys.path.insert(0, str(HERE))
        from bench_core import make_problem  # noqa: PLC0415 (a sibling script)

        problem, phi = make_problem(case.num_steps, case.width)
        params = None
    elif case.family == "mlp":
        problem, phi, params = _mlp_problem(case)
    elif case.family == "vision":
        problem, phi, params = _vision_problem(case)
    else:
        raise ValueError(f"unknown problem family {case.family!r}; choose core, mlp or vision")
    state = jax.eval_shape(problem.init, phi)
    state_bytes = sum(int(leaf.size) * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(state))
    meta_dim = sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(phi))
    info = {"meta_dim": meta_dim, "state_bytes": state_bytes}
    if params is not None:
        info["inner_params"] = params
    return problem, phi, info


MLP_IN, MLP_CLASSES, MLP_BATCH, MLP_VAL, MLP_LR = 16, 10, 4, 128, 1e-3


def _mlp_problem(case: Case) -> tuple[Any, Any, int]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import fg2u
    import fg2u.jax as fj

    rng = np.random.default_rng(0)
    n, w = case.num_train, case.width
    teacher = rng.normal(size=(MLP_IN, MLP_CLASSES))
    x_all = rng.normal(size=(n + MLP_VAL, MLP_IN)).astype(np.float32)
    y_all = np.argmax(x_all @ teacher + 0.5 * rng.normal(size=(n + MLP_VAL, MLP_CLASSES)), axis=1).astype(np.int32)
    x_train, y_train = jnp.asarray(x_all[:n]), jnp.asarray(y_all[:n])
    x_val, y_val = jnp.asarray(x_all[n:]), jnp.asarray(y_all[n:])
    sizes = (MLP_IN, w, w, MLP_CLASSES)
    params0 = [
        (
            jnp.asarray(rng.normal(size=(a, b)) / math.sqrt(a), jnp.float32),
            jnp.zeros((b,), jnp.float32),
        )
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    num_params = sum(int(W.size + c.size) for W, c in params0)
    batches = jnp.asarray(rng.integers(0, n, size=(case.num_steps, MLP_BATCH)), jnp.int32)

    def apply(params: Any, x: jax.Array) -> jax.Array:
        for W, c in params[:-1]:
            x = jnp.tanh(x @ W + c)
        W, c = params[-1]
        return x @ W + c

    def per_example_ce(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = apply(params, x)
        return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]

    def inner_loss(params: Any, phi: jax.Array, idx: jax.Array) -> jax.Array:
        weights = 2.0 * jax.nn.sigmoid(phi[idx])
        return jnp.mean(weights * per_example_ce(params, x_train[idx], y_train[idx]))

    init, step = fj.optax_transition(inner_loss, optax.adam(MLP_LR, eps_root=1e-8), params0)
    problem = fg2u.UnrolledProblem(
        init=init,
        step=step,
        outer_loss=lambda state, phi, _: jnp.mean(per_example_ce(state.params, x_val, y_val)),
        num_steps=case.num_steps,
        inner_batches=batches,
    )
    return problem, jnp.zeros((n,), jnp.float32), num_params


def _vision_problem(case: Case) -> tuple[Any, Any, int]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fg2u_bench_vision.condensation import init_synthetic, make_problem, sample_meta_inputs, setup_from_config
    from fg2u_bench_vision.configs import get_config

    data = _digits()
    config = get_config("cpu").replace(inner_steps=case.num_steps, width=case.width)
    setup = setup_from_config(config, data.image_shape, data.num_classes)
    rng = np.random.default_rng(0)
    phi = jnp.asarray(init_synthetic(rng, setup))
    params0, x, y = sample_meta_inputs(setup, rng, data.x_train, data.y_train, config.real_batch, 1)
    params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a[0]), params0)
    problem = make_problem(setup, params0, jnp.asarray(x[0]), jnp.asarray(y[0]))
    return problem, phi, sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(params0))


_DIGITS: list = []


def _digits() -> Any:
    if not _DIGITS:
        from fg2u_bench_vision.data import load_dataset

        _DIGITS.append(load_dataset("digits"))
    return _DIGITS[0]


def make_estimator(name: str) -> Any:
    import fg2u.jax as fj

    if name == "RGU":
        return fj.RGU()
    if name == "RGUCheckpointed":
        return fj.RGUCheckpointed()
    if name == "RGURecursive":
        return fj.RGURecursive()
    if name.startswith("FG2U(b="):
        b, c = (int(part.split("=")[1]) for part in name[5:-1].split(","))
        return fj.FG2U(num_directions=b, chunk_size=c)
    raise ValueError(f"unknown estimator {name!r}")


def _callable(name: str, problem: Any) -> Any:
    import fg2u.jax as fj

    if name == "plain-unroll":
        objective = fj.meta_objective(problem)
        return lambda phi, key: objective(phi)
    estimator = make_estimator(name)
    return lambda phi, key: estimator(problem, phi, key)


def _settings(name: str) -> dict[str, Any]:
    if name == "plain-unroll":
        return {}
    if name.startswith("DirectionParallel("):  # DirectionParallel(FG2U(b=B,c=C),D=D)
        inner, devices = name[len("DirectionParallel(") : -1].rsplit(",D=", 1)
        return {**_settings(inner), "num_devices": int(devices)}
    return {k: v for k, v in make_estimator(name).settings().items() if isinstance(v, (int, float, str, bool))}


# ------------------------------------------------------------------------------------------ measuring
def compile_one(name: str, problem: Any, phi: Any, key: Any) -> tuple[Any, dict[str, int], float]:
    import jax

    start = time.perf_counter()
    compiled = jax.jit(_callable(name, problem)).lower(phi, key).compile()
    seconds = time.perf_counter() - start
    analysis = compiled.memory_analysis()
    memory = {
        "compiled_temp_bytes": int(analysis.temp_size_in_bytes),
        "compiled_argument_bytes": int(analysis.argument_size_in_bytes),
        "compiled_output_bytes": int(analysis.output_size_in_bytes),
    }
    return compiled, memory, seconds


def _record(run: Any, part: str, case: Case, info: dict, name: str, metrics: dict, wall: float, details: dict):
    from fg2u.experiment import Memory, make_record

    problem_settings = {**case.settings(), **info}
    return make_record(
        benchmark="scaling",
        task=TASK,
        dataset=case.family,
        config=part,
        estimator=name,
        estimator_settings=_settings(name),
        problem_settings=problem_settings,
        seed=0,
        metrics=metrics,
        memory=Memory("xla_temp_bytes", int(metrics["compiled_temp_bytes"]))
        if "compiled_temp_bytes" in metrics
        else None,
        wall_time_s=wall,
        details=details,
        run=run,
    )


def run_memory(families: list[str], quick: bool, out: Path) -> int:
    import jax

    from fg2u.experiment import append_records, start_run

    run = start_run()
    key = jax.random.PRNGKey(0)
    total = 0
    for case, names in memory_grid(families, quick):
        problem, phi, info = build(case)
        records = []
        for name in names:
            _, memory, seconds = compile_one(name, problem, phi, key)
            records.append(
                _record(
                    run, "memory", case, info, name, memory, seconds, {"measured": "compile only", "compile_s": seconds}
                )
            )
            print(
                f"  {case.family:6s} T={case.num_steps:6d} width={case.width:7d} N={info['meta_dim']:7d} "
                f"{name:18s} temp={memory['compiled_temp_bytes'] / 2**20:11.2f} MiB "
                f"({memory['compiled_temp_bytes'] / info['state_bytes']:8.2f} states)  compile {seconds:5.1f} s",
                flush=True,
            )
        append_records(out / RECORDS, records)
        total += len(records)
        jax.clear_caches()
    return total


def run_time(families: list[str], repeats: int, out: Path, only: list[str] | None = None) -> int:
    import jax

    from fg2u.experiment import append_records, start_run

    run = start_run()
    key = jax.random.PRNGKey(0)
    total = 0
    for case, names in time_grid(families):
        if only and f"{case.family}:{case.num_steps}:{case.width}" not in only:
            continue
        problem, phi, info = build(case)
        compiled = {}
        memory = {}
        for name in names:
            compiled[name], memory[name], _ = compile_one(name, problem, phi, key)
            jax.block_until_ready(compiled[name](phi, key))  # warm-up
        walls: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        loads = [os.getloadavg()[0]]
        for _ in range(repeats):
            for name in names:  # round-robin: the load falls on every estimator alike
                c0, w0 = time.process_time(), time.perf_counter()
                jax.block_until_ready(compiled[name](phi, key))
                walls[name].append(time.perf_counter() - w0)
                cpus[name].append(time.process_time() - c0)
            loads.append(os.getloadavg()[0])
        records = []
        for name in names:
            metrics = {
                **memory[name],
                "seconds_min": min(walls[name]),
                "seconds_median": statistics.median(walls[name]),
                "cpu_seconds_median": statistics.median(cpus[name]),
            }
            details = {"repeats": repeats, "load_1min": loads, "walls": walls[name], "cpu_seconds": cpus[name]}
            records.append(_record(run, "time", case, info, name, metrics, min(walls[name]), details))
            print(
                f"  {case.family:6s} T={case.num_steps:6d} width={case.width:7d} {name:18s} "
                f"min {min(walls[name]):8.4f} s  median {statistics.median(walls[name]):8.4f} s  "
                f"cpu {statistics.median(cpus[name]):8.4f} s  load {max(loads):.1f}",
                flush=True,
            )
        append_records(out / RECORDS, records)
        total += len(records)
        jax.clear_caches()
    return total


DEVICE_COUNTS = (1, 2, 4, 8)


def run_devices(repeats: int, out: Path) -> int:
    """DirectionParallel(FG2U(b = 8, chunk 1)) over 1, 2, 4, 8 simulated devices, and FG2U(8/D) on one device
    (what one device computes): the per-device cost and the overhead of the decomposition."""
    import jax

    import fg2u.jax as fj
    from fg2u.experiment import append_records, start_run

    if len(jax.devices()) < max(DEVICE_COUNTS):
        raise RuntimeError(f"need {max(DEVICE_COUNTS)} devices, JAX sees {len(jax.devices())} (XLA_FLAGS?)")
    run = start_run()
    key = jax.random.PRNGKey(0)
    b = 8
    total = 0
    for case in (Case("mlp", 300, 256, 64), Case("core", 1000, 10_000)):
        problem, phi, info = build(case)
        programs = {}
        for d in DEVICE_COUNTS:
            est = fj.DirectionParallel(fj.FG2U(num_directions=b, chunk_size=1), fj.direction_mesh(d))
            programs[("parallel", d)] = jax.jit(lambda phi, key, est=est, problem=problem: est(problem, phi, key))
            single = fj.FG2U(num_directions=b // d, chunk_size=1)
            programs[("one-device share", d)] = jax.jit(
                lambda phi, key, est=single, problem=problem: est(problem, phi, key)
            )
        compiled, memory = {}, {}
        for label, fn in programs.items():
            compiled[label] = fn.lower(phi, key).compile()
            memory[label] = int(compiled[label].memory_analysis().temp_size_in_bytes)
            jax.block_until_ready(compiled[label](phi, key))
        walls: dict = {k: [] for k in programs}
        cpus: dict = {k: [] for k in programs}
        loads = [os.getloadavg()[0]]
        for _ in range(repeats):
            for label in programs:
                c0, w0 = time.process_time(), time.perf_counter()
                jax.block_until_ready(compiled[label](phi, key))
                walls[label].append(time.perf_counter() - w0)
                cpus[label].append(time.process_time() - c0)
            loads.append(os.getloadavg()[0])
        records = []
        for (kind, d), _ in programs.items():
            label = (kind, d)
            metrics = {
                "compiled_temp_bytes": memory[label],
                "seconds_min": min(walls[label]),
                "seconds_median": statistics.median(walls[label]),
                "cpu_seconds_median": statistics.median(cpus[label]),
                "cpu_seconds_per_device": statistics.median(cpus[label]) / (d if kind == "parallel" else 1),
            }
            name = f"DirectionParallel(FG2U(b={b},c=1),D={d})" if kind == "parallel" else fg_name(b // d, 1)
            rec_case = case
            details = {"repeats": repeats, "load_1min": loads, "kind": kind, "num_devices": d, "simulated": True}
            rec = _record(
                run, "devices", rec_case, {**info, "num_devices": d}, name, metrics, min(walls[label]), details
            )
            records.append(rec)
            print(
                f"  {case.family:6s} {kind:16s} D={d}  temp/device={memory[label] / 2**20:8.2f} MiB  "
                f"min {min(walls[label]):7.4f} s  cpu {statistics.median(cpus[label]):7.4f} s  "
                f"cpu/device {metrics['cpu_seconds_per_device']:7.4f} s  load {max(loads):.1f}",
                flush=True,
            )
        append_records(out / RECORDS, records)
        total += len(records)
        jax.clear_caches()
    return total


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("memory", "time", "devices", "analyse"))
    parser.add_argument("--problems", nargs="+", choices=("core", "mlp", "vision"), default=["core", "mlp", "vision"])
    parser.add_argument("--quick", action="store_true", help="memory: a subset of the grid")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per configuration (interleaved)")
    parser.add_argument("--only", nargs="+", default=None, help="time: only these FAMILY:T:WIDTH cases")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.part == "devices" and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={max(DEVICE_COUNTS)}"
        ).strip()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"where_fg2u_wins {args.part}: load {os.getloadavg()}", flush=True)
    if args.part == "memory":
        n = run_memory(args.problems, args.quick, args.out)
    elif args.part == "time":
        n = run_time(args.problems, args.repeats, args.out, args.only)
    elif args.part == "devices":
        n = run_devices(args.repeats, args.out)
    else:
        sys.path.insert(0, str(HERE))
        import where_fg2u_wins_analysis  # noqa: PLC0415

        where_fg2u_wins_analysis.main(args.out)
        return
    print(f"wrote {n} records to {args.out / RECORDS} (load {os.getloadavg()})")


if __name__ == "__main__":
    main()
