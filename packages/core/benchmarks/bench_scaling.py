"""Direction-parallel FG²U: wall time and memory per meta-gradient versus the number of devices.

    python packages/core/benchmarks/bench_scaling.py [--devices 1 2 4] [--torch-world 1 2] [--jax-processes 2]

JAX: ``DirectionParallel(FG2U(b), mesh)`` over 1, 2, 4 … devices at fixed b. On a CPU machine the
devices are simulated (``XLA_FLAGS=--xla_force_host_platform_device_count``, set here before JAX is
imported) and share the same cores, so the wall time shows the overhead of the decomposition rather than a
speed-up; on a multi-GPU node the same script measures real scaling (see docs/distributed.md).
Memory: XLA's compiled temporary memory of the sharded program (per device).

JAX multi-process (``--jax-processes P``): P real processes joined by ``jax.distributed.initialize`` on
localhost with CPU collectives over gloo, one CPU device each, as a multi-host user would run it; every
process times ``DirectionParallel(FG2U(b))`` over the global mesh and checks it against its own
single-process ``FG2U(b)`` for the same key (relative error in the record).

torch: ``DirectionParallel(FG2U(b))`` over 1, 2 … gloo processes (CPU) with ``torch.multiprocessing``.
Result records go to ``results/scaling/<label>.jsonl``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def _jax_scaling(devices: list[int], num_directions: int, num_steps: int, meta_dim: int, repeats: int) -> list:
    import jax

    import fg2u.jax as fj
    from fg2u.experiment import Memory, make_record

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_core import make_problem  # the same problem as the core memory benchmark

    problem, phi = make_problem(num_steps, meta_dim)
    key = jax.random.PRNGKey(0)
    records = []
    platform = jax.devices()[0].platform
    for d in devices:
        estimator = fj.DirectionParallel(fj.FG2U(num_directions=num_directions), fj.direction_mesh(d))
        compiled = jax.jit(estimator).lower(problem, phi, key).compile()
        temp = int(compiled.memory_analysis().temp_size_in_bytes)
        jax.block_until_ready(compiled(problem, phi, key))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(problem, phi, key))
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        print(f"  jax  devices={d}  b={num_directions}  time={seconds * 1e3:9.2f} ms  temp={temp:>12,d} B", flush=True)
        records.append(
            make_record(
                benchmark="scaling",
                task="fg2u-directions",
                dataset="synthetic",
                config=f"jax-{platform}{'-simulated' if platform == 'cpu' else ''}",
                estimator="FG2U",
                estimator_settings={"num_directions": num_directions},
                problem_settings={"backend": "jax", "num_devices": d, "num_steps": num_steps, "meta_dim": meta_dim},
                seed=0,
                metrics={"wall_time_s": seconds, "compiled_temp_bytes": temp},
                memory=Memory("xla_temp_bytes", temp),
                wall_time_s=seconds,
            )
        )
    return records


def _jax_process_worker(
    rank: int, world: int, port: int, num_directions: int, num_steps: int, meta_dim: int, repeats: int, out: str
) -> None:
    """One of ``world`` processes of the multi-process JAX mode (run by :func:`_jax_multiprocess`)."""
    import json

    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"localhost:{port}", num_processes=world, process_id=rank, initialization_timeout=300
    )
    import numpy as np

    import fg2u.jax as fj

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_core import make_problem

    problem, phi = make_problem(num_steps, meta_dim)
    key = jax.random.PRNGKey(0)
    estimator = fj.FG2U(num_directions=num_directions)
    parallel = jax.jit(fj.DirectionParallel(estimator, fj.direction_mesh()))
    grad, _ = jax.block_until_ready(parallel(problem, phi, key))  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        grad, _ = jax.block_until_ready(parallel(problem, phi, key))
        times.append(time.perf_counter() - start)
    with jax.default_device(jax.local_devices()[0]):
        single, _ = jax.jit(estimator.__call__)(problem, phi, key)
    mine, single = np.asarray(grad.addressable_data(0)), np.asarray(single)
    rel = float(np.linalg.norm(mine - single) / np.linalg.norm(single))
    if len(jax.local_devices()) != 1:
        raise RuntimeError(f"expected one CPU device per process, got {len(jax.local_devices())} (XLA_FLAGS?)")
    with open(out, "w") as f:
        json.dump(
            {
                "rank": rank,
                "process_count": jax.process_count(),
                "devices": len(jax.devices()),
                "seconds": statistics.median(times),
                "rel_error_vs_single_process": rel,
            },
            f,
        )
    jax.distributed.shutdown()


def _jax_multiprocess(world: int, num_directions: int, num_steps: int, meta_dim: int, repeats: int) -> list:
    import json
    import socket
    import subprocess
    import tempfile

    from fg2u.experiment import make_record

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--jax-worker",
                    str(rank),
                    str(world),
                    str(port),
                    "--num-directions",
                    str(num_directions),
                    "--num-steps",
                    str(num_steps),
                    "--meta-dim",
                    str(meta_dim),
                    "--repeats",
                    str(repeats),
                    "--worker-out",
                    os.path.join(tmp, f"{rank}.json"),
                ],
                env=env,
            )
            for rank in range(world)
        ]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise RuntimeError(f"jax.distributed workers exited with {codes} (see their output above)")
        results = [json.load(open(os.path.join(tmp, f"{rank}.json"))) for rank in range(world)]
    seconds = max(r["seconds"] for r in results)
    rel = max(r["rel_error_vs_single_process"] for r in results)
    print(
        f"  jax  processes={world} (jax.distributed, gloo)  b={num_directions}  time={seconds * 1e3:9.2f} ms  "
        f"max rel. error vs single process={rel:.2e}",
        flush=True,
    )
    return [
        make_record(
            benchmark="scaling",
            task="fg2u-directions",
            dataset="synthetic",
            config="jax-cpu-multiprocess",
            estimator="FG2U",
            estimator_settings={"num_directions": num_directions},
            problem_settings={
                "backend": "jax",
                "num_devices": world,
                "num_processes": world,
                "num_steps": num_steps,
                "meta_dim": meta_dim,
                "collectives": "gloo",
            },
            seed=0,
            metrics={"wall_time_s": seconds, "rel_error_vs_single_process": rel},
            wall_time_s=seconds,
        )
    ]


def _torch_worker(
    rank: int, world: int, init_file: str, num_directions: int, num_steps: int, meta_dim: int, repeats: int, queue
) -> None:
    import torch
    import torch.distributed as dist

    import fg2u.torch as ft

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        problem, phi = _torch_problem(num_steps, meta_dim)
        estimator = ft.DirectionParallel(ft.FG2U(num_directions=num_directions))
        estimator(problem, phi, 0)  # warm-up
        times = []
        for repeat in range(repeats):
            dist.barrier()
            start = time.perf_counter()
            estimator(problem, phi, repeat)
            times.append(time.perf_counter() - start)
        if rank == 0:
            queue.put(statistics.median(times))
        dist.barrier()  # no rank tears gloo down while another is still using it (an abort otherwise)
    finally:
        dist.destroy_process_group()


def _torch_problem(num_steps: int, meta_dim: int):
    import numpy as np
    import torch

    import fg2u

    rng = np.random.default_rng(0)
    a = torch.as_tensor(rng.uniform(0.5, 1.5, meta_dim), dtype=torch.float32)
    y = torch.as_tensor(rng.normal(size=meta_dim), dtype=torch.float32)
    problem = fg2u.UnrolledProblem(
        init=lambda phi: torch.zeros_like(phi),
        step=lambda theta, phi, _: theta - 0.1 * (a * theta + 0.1 * torch.sin(theta) - phi),
        outer_loss=lambda theta, phi, _: 0.5 * torch.sum((theta - y) ** 2),
        num_steps=num_steps,
    )
    return problem, torch.as_tensor(rng.normal(size=meta_dim), dtype=torch.float32)


def _torch_scaling(worlds: list[int], num_directions: int, num_steps: int, meta_dim: int, repeats: int) -> list:
    import tempfile

    import torch.multiprocessing as mp

    from fg2u.experiment import make_record

    records = []
    context = mp.get_context("spawn")
    for world in worlds:
        with tempfile.TemporaryDirectory() as tmp:
            queue = context.SimpleQueue()
            mp.start_processes(
                _torch_worker,
                args=(world, os.path.join(tmp, "init"), num_directions, num_steps, meta_dim, repeats, queue),
                nprocs=world,
                join=True,
                start_method="spawn",
            )
            seconds = queue.get()
        print(f"  torch processes={world}  b={num_directions}  time={seconds * 1e3:9.2f} ms", flush=True)
        records.append(
            make_record(
                benchmark="scaling",
                task="fg2u-directions",
                dataset="synthetic",
                config="torch-gloo-cpu",
                estimator="FG2U",
                estimator_settings={"num_directions": num_directions},
                problem_settings={
                    "backend": "torch",
                    "num_devices": world,
                    "num_steps": num_steps,
                    "meta_dim": meta_dim,
                },
                seed=0,
                metrics={"wall_time_s": seconds},
                wall_time_s=seconds,
            )
        )
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--torch-world", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--num-directions", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--meta-dim", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/scaling"))
    parser.add_argument(
        "--jax-processes",
        type=int,
        nargs="*",
        default=[2],
        help="also run P real processes joined by jax.distributed on localhost (default: 2; none: omit values)",
    )
    parser.add_argument(
        "--only-multiprocess",
        action="store_true",
        help="skip the simulated-device and torch sweeps (with --jax-processes)",
    )
    parser.add_argument("--jax-worker", nargs=3, type=int, metavar=("RANK", "WORLD", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jax_worker is not None:
        rank, world, port = args.jax_worker
        _jax_process_worker(
            rank, world, port, args.num_directions, args.num_steps, args.meta_dim, args.repeats, args.worker_out
        )
        return
    if args.only_multiprocess:
        from fg2u.experiment import append_records

        records = [
            r
            for world in args.jax_processes
            for r in _jax_multiprocess(world, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
        ]
        path = append_records(args.out / "cpu-multiprocess.jsonl", records)
        print(f"wrote {len(records)} records to {path}")
        return
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={max(args.devices)}"
        ).strip()

    from fg2u.experiment import append_records

    records = _jax_scaling(args.devices, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
    if args.torch_world:
        records += _torch_scaling(args.torch_world, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
    path = append_records(args.out / "cpu-simulated.jsonl", records)
    print(f"wrote {len(records)} records to {path}")
    multi = [
        r
        for world in args.jax_processes
        for r in _jax_multiprocess(world, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
    ]
    if multi:
        path = append_records(args.out / "cpu-multiprocess.jsonl", multi)
        print(f"wrote {len(multi)} records to {path}")


if __name__ == "__main__":
    main()
