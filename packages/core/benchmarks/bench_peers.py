"""fg2u versus the libraries a user would otherwise pick, on one bi-level problem, side by side.

    nox -s bench_peers                                   # installs the pinned peers, runs the default sweep
    python packages/core/benchmarks/bench_peers.py --sizes small --num-steps 10 100 1000 [--out results/core]
    python packages/core/benchmarks/bench_peers.py --one torchopt-MetaSGD small 100   # one configuration, here
    python packages/core/benchmarks/bench_peers.py --sizes small --num-steps 100 1000 --rounds 3   # 3 interleaved sweeps

The problem (:mod:`peer_problem`): per-parameter weight decay φ of a tanh MLP trained by T steps of
minibatch SGD, outer loss on held-out data; ``small`` has N = 9,610 meta-parameters, ``large`` N = 993,760.
Implementations (each configuration runs in a fresh process, one intra-op thread):

* ``fg2u.torch-FG2U`` (b = 1), ``fg2u.torch-RGU``, ``fg2u.torch-RGUCheckpointed`` on a problem built with
  ``fg2u.torch.optim_transition`` + ``optim.sgd``, as a new user would (inner gradient by
  ``torch.autograd.grad``; FG²U pushes its tangent through each step by one Hessian-vector product and the
  optimiser's own tangent rule); ``fg2u.torch-RGU[autograd-step]``: the same RGU on a hand-written step
  with ``torch.autograd.grad`` — the formulation TorchOpt and higher use, to separate the estimator's cost
  from the step's;
* ``torchopt-MetaSGD`` (``torchopt.MetaSGD`` on an ``nn.Module``), ``higher`` (``higher.innerloop_ctx``
  around ``torch.optim.SGD``);
* ``fg2u.jax-FG2U`` (b = 1), ``fg2u.jax-RGU`` (``fg2u.jax.optax_transition`` + ``optax.sgd``);
  ``jax-grad-scan``: plain ``jax.grad`` through a ``lax.scan`` of the SGD step; ``jaxopt-GD-unrolled``:
  ``jaxopt.GradientDescent.update`` scanned over the minibatches, differentiated by ``jax.grad``.

Measured per configuration: peak RSS growth of the meta-gradient call over the RSS after a warm-up
(torch: warm-up on the T = 2 problem; JAX: the compiled function run once), with glibc's mmap threshold
fixed and the kernel's peak counter reset (as ``torch_memory.py``); XLA's compiled temporary bytes for
JAX; seconds per meta-gradient (the minimum of ``--repeats`` calls after the warm-up; wall clock, and the
process's CPU time, which a machine shared with other jobs disturbs less); the gradient
itself, which the parent compares with the reference (``jax-grad-scan``, else ``fg2u.torch-RGU``): relative
L2 error for exact methods; for FG²U, whose estimate is ``(∇L·v) v`` with a Rademacher v, the check is
``|ĝ_k| = |∇L_ref · sign(ĝ)|`` for every k (the directional derivative, recovered without knowing v).
Records go to ``<out>/peers.jsonl`` (task ``peers``), a table to stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_problem import BATCH, LR, NAMES, SIZES, make_data, shapes  # noqa: E402
from torch_memory import (  # noqa: E402
    MMAP_THRESHOLD,
    current_rss_bytes,
    peak_rss_bytes,
)

from fg2u.experiment import Memory, append_records, make_record, start_run  # noqa: E402
from fg2u.experiment.memory import reset_peak_rss as peak_rss_reset  # noqa: E402

TORCH_IMPLS = (
    "fg2u.torch-FG2U",
    "fg2u.torch-RGU",
    "fg2u.torch-RGUCheckpointed",
    "fg2u.torch-RGU[autograd-step]",
    "torchopt-MetaSGD",
    "higher",
)
JAX_IMPLS = ("fg2u.jax-FG2U", "fg2u.jax-RGU", "jax-grad-scan", "jaxopt-GD-unrolled")
IMPLS = JAX_IMPLS + TORCH_IMPLS
FORWARD = ("fg2u.torch-FG2U", "fg2u.jax-FG2U")  # memory flat in T: the only ones run at large T = 1000
REFERENCES = ("jax-grad-scan", "fg2u.torch-RGU")
# float32 through up to 1000 SGD steps: relative differences of ~1e-6·√T·cond are expected; 1e-3 flags a bug
RTOL = 1e-3


def make_fg2u_estimator(backend: str, name: str) -> Any:
    """The fg2u estimators of this benchmark (the one place they are constructed)."""
    mod = __import__(f"fg2u.{backend}", fromlist=["FG2U"])
    return {
        "FG2U": lambda: mod.FG2U(num_directions=1),
        "RGU": lambda: mod.RGU(),
        "RGUCheckpointed": lambda: mod.RGUCheckpointed(),
    }[name]()


# --------------------------------------------------------------------------------------------- torch
def _torch_setup(impl: str, size: str, num_steps: int) -> Callable[[], dict]:
    """A zero-argument callable computing the meta-gradient of configuration (size, T) with ``impl``;
    returns ``{name: np.ndarray}``."""
    import torch
    import torch.nn.functional as tf

    d = make_data(size, num_steps)
    x, y, xv, yv = (torch.as_tensor(a) for a in (d.x, d.y, d.x_val, d.y_val))
    p0 = {k: torch.as_tensor(v) for k, v in d.params0.items()}
    phi0 = {k: torch.as_tensor(v) for k, v in d.phi0.items()}

    def mlp(p: dict, xb: Any) -> Any:
        return torch.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def decay(p: dict, phi: dict) -> Any:
        return 0.5 * sum((phi[k] * p[k] ** 2).sum() for k in NAMES)

    def numpy(grads: dict) -> dict:
        return {k: grads[k].detach().numpy().copy() for k in NAMES}

    if impl.startswith("fg2u.torch-"):
        import fg2u
        import fg2u.torch as ft

        name = impl.split("-", 1)[1]
        if name == "RGU[autograd-step]":

            def step(p: dict, phi: dict, batch: Any) -> dict:
                p = {k: v if v.requires_grad else v.requires_grad_(True) for k, v in p.items()}
                with torch.enable_grad():
                    loss = tf.cross_entropy(mlp(p, batch[0]), batch[1]) + decay(p, phi)
                    grads = torch.autograd.grad(loss, [p[k] for k in NAMES], create_graph=True)
                return {k: p[k] - LR * g for k, g in zip(NAMES, grads)}

            init = lambda phi: {k: v.clone().requires_grad_(True) for k, v in p0.items()}  # noqa: E731
            outer = lambda p, phi, _: tf.cross_entropy(mlp(p, xv), yv)  # noqa: E731
            est = make_fg2u_estimator("torch", "RGU")
        else:

            def inner_loss(p: dict, phi: dict, batch: Any) -> Any:
                return tf.cross_entropy(mlp(p, batch[0]), batch[1]) + decay(p, phi)

            init, step = ft.optim_transition(inner_loss, ft.optim.sgd(LR), p0)
            outer = lambda s, phi, _: tf.cross_entropy(mlp(s.params, xv), yv)  # noqa: E731
            est = make_fg2u_estimator("torch", name)
        problem = fg2u.UnrolledProblem(
            init=init, step=step, outer_loss=outer, num_steps=num_steps, inner_batches=(x, y)
        )
        return lambda: numpy(est(problem, phi0, 1)[0])

    if impl == "torchopt-MetaSGD":
        import torchopt

        def run() -> dict:
            net = _TorchNet(p0)
            phi = {k: v.clone().requires_grad_(True) for k, v in phi0.items()}
            opt = torchopt.MetaSGD(net, lr=LR)
            for t in range(num_steps):
                opt.step(tf.cross_entropy(net(x[t]), y[t]) + decay(net.params(), phi))
            grads = torch.autograd.grad(tf.cross_entropy(net(xv), yv), [phi[k] for k in NAMES])
            return numpy(dict(zip(NAMES, grads)))

        return run

    if impl == "higher":
        import higher

        def run() -> dict:
            net = _TorchNet(p0)
            phi = {k: v.clone().requires_grad_(True) for k, v in phi0.items()}
            opt = torch.optim.SGD(net.parameters(), lr=LR)
            with higher.innerloop_ctx(net, opt, copy_initial_weights=True) as (fnet, diffopt):
                for t in range(num_steps):
                    fp = dict(zip(NAMES, fnet.parameters()))
                    diffopt.step(tf.cross_entropy(mlp(fp, x[t]), y[t]) + decay(fp, phi))
                fp = dict(zip(NAMES, fnet.parameters()))
                grads = torch.autograd.grad(tf.cross_entropy(mlp(fp, xv), yv), [phi[k] for k in NAMES])
            return numpy(dict(zip(NAMES, grads)))

        return run
    raise ValueError(f"unknown torch implementation {impl!r}; choose from {TORCH_IMPLS}")


def _TorchNet(p0: dict) -> Any:  # noqa: N802 - a module factory, imported lazily with torch
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for k in NAMES:
                self.register_parameter(k, torch.nn.Parameter(p0[k].clone()))

        def params(self) -> dict:
            return {k: getattr(self, k) for k in NAMES}

        def forward(self, xb: Any) -> Any:
            p = self.params()
            return torch.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    return Net()


# ----------------------------------------------------------------------------------------------- jax
def _jax_setup(impl: str, size: str, num_steps: int) -> tuple[Callable[[], dict], int]:
    """``(run, compiled temp bytes)`` for a JAX implementation; ``run`` returns ``{name: np.ndarray}``."""
    import jax
    import jax.numpy as jnp
    import optax

    d = make_data(size, num_steps)
    x, y, xv, yv = (jnp.asarray(a) for a in (d.x, d.y, d.x_val, d.y_val))
    p0 = {k: jnp.asarray(v) for k, v in d.params0.items()}
    phi0 = {k: jnp.asarray(v) for k, v in d.phi0.items()}

    def mlp(p: dict, xb: Any) -> Any:
        return jnp.tanh(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def ce(logits: Any, labels: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def inner_loss(p: dict, phi: dict, batch: Any) -> Any:
        return ce(mlp(p, batch[0]), batch[1]) + 0.5 * sum((phi[k] * p[k] ** 2).sum() for k in NAMES)

    if impl.startswith("fg2u.jax-"):
        import fg2u
        import fg2u.jax as fj

        init, step = fj.optax_transition(inner_loss, optax.sgd(LR), p0)
        problem = fg2u.UnrolledProblem(
            init=init,
            step=step,
            num_steps=num_steps,
            inner_batches=(x, y),
            outer_loss=lambda s, phi, _: ce(mlp(s.params, xv), yv),
        )
        est = make_fg2u_estimator("jax", impl.split("-", 1)[1])
        fn = jax.jit(lambda problem, phi, key: est(problem, phi, key)[0])
        args = (problem, phi0, jax.random.key(1))
    elif impl == "jax-grad-scan":

        def meta_loss(phi: dict, x: Any, y: Any) -> Any:
            def body(p: dict, batch: Any) -> tuple:
                g = jax.grad(inner_loss)(p, phi, batch)
                return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), None

            p, _ = jax.lax.scan(body, p0, (x, y))
            return ce(mlp(p, xv), yv)

        fn, args = jax.jit(jax.grad(meta_loss)), (phi0, x, y)
    elif impl == "jaxopt-GD-unrolled":
        import jaxopt

        solver = jaxopt.GradientDescent(
            fun=inner_loss, stepsize=LR, acceleration=False, maxiter=num_steps, implicit_diff=False
        )

        def meta_loss(phi: dict, x: Any, y: Any) -> Any:
            state0 = solver.init_state(p0, phi, (x[0], y[0]))

            def body(carry: tuple, batch: Any) -> tuple:
                return tuple(solver.update(*carry, phi, batch)), None

            (p, _), _ = jax.lax.scan(body, (p0, state0), (x, y))
            return ce(mlp(p, xv), yv)

        fn, args = jax.jit(jax.grad(meta_loss)), (phi0, x, y)
    else:
        raise ValueError(f"unknown JAX implementation {impl!r}; choose from {JAX_IMPLS}")
    compiled = fn.lower(*args).compile()
    temp = int(compiled.memory_analysis().temp_size_in_bytes)

    def run() -> dict:
        out = jax.block_until_ready(compiled(*args))
        return {k: np.asarray(out[k]) for k in NAMES}

    return run, temp


# ------------------------------------------------------------------------------------ one configuration
def measure_here(impl: str, size: str, num_steps: int, repeats: int, grad_path: Path | None) -> dict:
    """Runs one configuration in this process (call it in a fresh one) and returns the measurement."""
    temp = None
    if impl in TORCH_IMPLS:
        import torch

        torch.set_num_threads(1)
        _torch_setup(impl, size, min(2, num_steps))()  # warm-up: kernels, allocator, autograd machinery
        run = _torch_setup(impl, size, num_steps)
        versions = {"torch": torch.__version__}
    else:
        import jax

        run, temp = _jax_setup(impl, size, num_steps)
        run()  # warm-up: the compiled executable's first run
        versions = {"jax": jax.__version__}
    for peer in ("torchopt", "higher", "jaxopt"):
        if impl.startswith(peer):
            from importlib.metadata import version

            versions[peer] = version(peer)
    gc.collect()
    peak_reset = peak_rss_reset()
    baseline = current_rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    grads = run()
    times, cpu_times = [time.perf_counter() - start], [time.process_time() - cpu_start]
    peak = peak_rss_bytes()
    for _ in range(repeats - 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if grad_path is not None:
        np.savez(grad_path, **grads)
    return {
        "impl": impl,
        "size": size,
        "num_steps": num_steps,
        "meta_dim": int(sum(int(np.prod(s)) for s in shapes(size).values())),
        "batch": BATCH,
        "threads": 1,
        "seconds": min(times),
        "seconds_all": times,
        "cpu_seconds": min(cpu_times),
        "peak_rss_delta_bytes": max(peak - baseline, 0),
        "peak_reset": peak_reset,
        "xla_temp_bytes": temp,
        "versions": versions,
    }


def measure(impl: str, size: str, num_steps: int, repeats: int, timeout: float) -> tuple[dict, dict]:
    """One configuration in a fresh subprocess: ``(measurement, gradient)``."""
    with tempfile.TemporaryDirectory() as tmp:
        grad_path = Path(tmp) / "grad.npz"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--one",
            impl,
            size,
            str(num_steps),
            "--repeats",
            str(repeats),
            "--grad-out",
            str(grad_path),
        ]
        env = {
            **os.environ,
            "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
            "OMP_NUM_THREADS": "1",
            "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip(),
        }
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"{impl} {size} T={num_steps} failed:\n{out.stderr[-3000:]}")
        m = json.loads(out.stdout.strip().splitlines()[-1])
        with np.load(grad_path) as z:
            grad = {k: z[k] for k in NAMES}
    return m, grad


def _flat(grad: dict) -> np.ndarray:
    return np.concatenate([np.asarray(grad[k], np.float64).reshape(-1) for k in NAMES])


def agreement(impl: str, grad: dict, reference: dict | None) -> dict:
    """Relative error versus the reference gradient (exact methods), or the FG²U directional-derivative check."""
    if reference is None:
        return {}
    g, ref = _flat(grad), _flat(reference)
    if impl in FORWARD:
        magnitudes = np.abs(g)
        want = abs(float(ref @ np.sign(g)))
        return {"directional_rel_error": float(np.max(np.abs(magnitudes - want)) / max(want, 1e-30))}
    return {"grad_rel_error": float(np.linalg.norm(g - ref) / max(np.linalg.norm(ref), 1e-30))}


def _configurations(impls: list[str], sizes: list[str], steps: list[int], large_reverse_max_t: int) -> list:
    configs = []
    for size in sizes:
        for t in steps:
            # references first, so every other configuration can be compared as it finishes
            ordered = [i for i in REFERENCES if i in impls] + [i for i in impls if i not in REFERENCES]
            for impl in ordered:
                if size == "large" and t > large_reverse_max_t and impl not in FORWARD:
                    continue  # reverse unrolling of N ≈ 1e6 needs O(T·N) memory: see --large-reverse-max-t
                configs.append((impl, size, t))
    return configs


def _merge_round(m: dict, later: dict) -> None:
    """Folds a later round's measurement of the same configuration into ``m``: the fastest call over all
    rounds (wall and CPU time), the largest RSS growth, every round's best time in ``seconds_per_round``."""
    m["seconds_per_round"].append(later["seconds"])
    m["seconds_all"] = list(m["seconds_all"]) + list(later["seconds_all"])
    m["seconds"] = min(m["seconds"], later["seconds"])
    m["cpu_seconds"] = min(m["cpu_seconds"], later["cpu_seconds"])
    m["peak_rss_delta_bytes"] = max(m["peak_rss_delta_bytes"], later["peak_rss_delta_bytes"])


def _to_record(m: dict, config: str, run: Any = None) -> Any:
    metrics = {
        "seconds_per_meta_gradient": m["seconds"],
        "cpu_seconds_per_meta_gradient": m["cpu_seconds"],
        "peak_rss_delta_bytes": m["peak_rss_delta_bytes"],
    }
    if m.get("xla_temp_bytes") is not None:
        metrics["xla_temp_bytes"] = m["xla_temp_bytes"]
    rounds = m.get("seconds_per_round", [m["seconds"]])
    if len(rounds) > 1:  # the best time of each fresh process: how far one run alone could be off
        metrics["rounds"] = float(len(rounds))
        metrics["round_seconds_max_over_min"] = max(rounds) / min(rounds)
    for k in ("grad_rel_error", "directional_rel_error"):
        if k in m:
            metrics[k] = m[k]
    return make_record(
        benchmark="core",
        task="peers",
        dataset="synthetic-mlp-weight-decay",
        config=config,
        estimator=m["impl"],
        estimator_settings={"impl": m["impl"]},
        problem_settings={k: m[k] for k in ("size", "num_steps", "meta_dim", "batch")},
        config_settings={"threads": m["threads"]},
        seed=0,
        metrics=metrics,
        memory=Memory("peak_rss_growth", int(m["peak_rss_delta_bytes"])),
        details={"versions": m["versions"]},
        wall_time_s=m["seconds"],
        run=run,
    )


def print_table(results: list[dict]) -> None:
    print(
        f"\n{'implementation':32s} {'size':5s} {'T':>5s} {'RSS growth MiB':>15s} {'XLA temp MiB':>13s} "
        f"{'s/meta-grad':>12s} {'CPU s':>8s} {'rel err':>9s}  vs torchopt (mem, time, CPU time)"
    )
    by_key = {(m["impl"], m["size"], m["num_steps"]): m for m in results}
    for m in results:
        err = m.get("grad_rel_error", m.get("directional_rel_error"))
        ref = by_key.get(("torchopt-MetaSGD", m["size"], m["num_steps"]))
        ratio = ""
        if ref is not None and m["impl"] in TORCH_IMPLS:
            mem = m["peak_rss_delta_bytes"] / max(ref["peak_rss_delta_bytes"], 1)
            ratio = f"{mem:7.3f}x {m['seconds'] / ref['seconds']:6.2f}x {m['cpu_seconds'] / ref['cpu_seconds']:6.2f}x"
        temp = "" if m.get("xla_temp_bytes") is None else f"{m['xla_temp_bytes'] / 2**20:13.2f}"
        print(
            f"{m['impl']:32s} {m['size']:5s} {m['num_steps']:5d} {m['peak_rss_delta_bytes'] / 2**20:15.2f} "
            f"{temp:>13s} {m['seconds']:12.3f} {m['cpu_seconds']:8.3f} {'' if err is None else f'{err:9.1e}'}  {ratio}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", nargs=3, metavar=("IMPL", "SIZE", "T"), help="one configuration, in this process")
    parser.add_argument("--grad-out", type=Path, default=None, help="(with --one) save the gradient here (.npz)")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small", "large"])
    parser.add_argument("--num-steps", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument(
        "--large-reverse-max-t",
        type=int,
        default=100,
        help="largest T at which reverse-mode methods run on the large size (memory O(T·N))",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (minimum reported)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the whole sweep this many times, interleaved (a fresh process per configuration and round); "
        "seconds are the minimum over all rounds: on a shared machine one fresh process's best time varies by "
        "±15 %% from the next one's, more than the 5 %% differences one wants to see",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    parser.add_argument("--out", type=Path, default=None, help="append records to <out>/peers.jsonl")
    args = parser.parse_args(argv)

    if args.one is not None:
        impl, size, t = args.one
        if impl not in IMPLS:
            parser.error(f"unknown implementation {impl!r}; choose from {IMPLS}")
        print(json.dumps(measure_here(impl, size, int(t), args.repeats, args.grad_out)), flush=True)
        return

    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional
        tqdm = lambda xs, **_: xs  # noqa: E731
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    merged: dict[tuple, dict] = {}  # (impl, size, T) -> measurement, merged over rounds
    references: dict = {}
    failures: list[str] = []
    configs = _configurations(args.impls, args.sizes, args.num_steps, args.large_reverse_max_t)
    for round_index in range(args.rounds):
        desc = "peers" if args.rounds == 1 else f"peers, round {round_index + 1}/{args.rounds}"
        for impl, size, t in tqdm(configs, desc=desc, unit="config"):
            try:
                m, grad = measure(impl, size, t, args.repeats if t <= 100 or size == "small" else 1, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                failures.append(f"{impl} {size} T={t}: {str(err).splitlines()[0][:300]}")
                print(f"FAILED {impl} {size} T={t}:\n{str(err)[-1500:]}", file=sys.stderr)
                continue
            key = (impl, size, t)
            if key in merged:  # a later round: the gradient was checked in the first one
                _merge_round(merged[key], m)
                continue
            if impl in REFERENCES and (size, t) not in references:
                references[(size, t)] = (impl, grad)
            else:
                ref = references.get((size, t))
                m.update(agreement(impl, grad, None if ref is None else ref[1]))
                if ref is not None:
                    m["reference"] = ref[0]
            m["seconds_per_round"] = [m["seconds"]]
            merged[key] = m
            print(json.dumps({k: v for k, v in m.items() if k != "versions"}), flush=True)
    results = list(merged.values())
    print_table(results)
    bad = [m for m in results if max(m.get("grad_rel_error", 0), m.get("directional_rel_error", 0)) > RTOL]
    for m in bad:
        print(f"DISAGREES with the reference: {m['impl']} {m['size']} T={m['num_steps']}", file=sys.stderr)
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    if args.out is not None:
        run = start_run()
        append_records(args.out / "peers.jsonl", [_to_record(m, m["size"], run) for m in results])
        print(f"records appended to {args.out / 'peers.jsonl'}")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
