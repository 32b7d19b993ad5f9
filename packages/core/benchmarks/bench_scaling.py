"""Direction-parallel FG²U: wall time and memory per meta-gradient versus the number of devices.

    python packages/core/benchmarks/bench_scaling.py [--devices 1 2 4] [--torch-world 1 2]

JAX: ``DirectionParallel(FG2U(b), mesh)`` over 1, 2, 4 … devices at fixed b. On a CPU machine the
devices are simulated (``XLA_FLAGS=--xla_force_host_platform_device_count``, set here before JAX is
imported) and share the same cores, so the wall time shows the overhead of the decomposition rather than a
speed-up; on a multi-GPU node the same script measures real scaling (see docs/distributed.md).
Memory: XLA's compiled temporary memory of the sharded program (per device).

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
    from fg2u.records import make_record

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
        records.append(make_record(
            benchmark="scaling", task="fg2u-directions", dataset="synthetic",
            config=f"jax-{platform}{'-simulated' if platform == 'cpu' else ''}", estimator="FG2U",
            settings={"backend": "jax", "num_devices": d, "num_directions": num_directions,
                      "num_steps": num_steps, "meta_dim": meta_dim, "memory_measure": "xla_compiled_temp_bytes"},
            seed=0, metrics={"wall_time_s": seconds, "compiled_temp_bytes": temp},
            peak_memory_bytes=temp, wall_time_s=seconds,
        ))
    return records


def _torch_worker(rank: int, world: int, init_file: str, num_directions: int, num_steps: int, meta_dim: int,
                  repeats: int, queue) -> None:
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

    from fg2u.records import make_record

    records = []
    context = mp.get_context("spawn")
    for world in worlds:
        with tempfile.TemporaryDirectory() as tmp:
            queue = context.SimpleQueue()
            mp.start_processes(
                _torch_worker, args=(world, os.path.join(tmp, "init"), num_directions, num_steps, meta_dim,
                                     repeats, queue),
                nprocs=world, join=True, start_method="spawn",
            )
            seconds = queue.get()
        print(f"  torch processes={world}  b={num_directions}  time={seconds * 1e3:9.2f} ms", flush=True)
        records.append(make_record(
            benchmark="scaling", task="fg2u-directions", dataset="synthetic", config="torch-gloo-cpu",
            estimator="FG2U",
            settings={"backend": "torch", "num_devices": world, "num_directions": num_directions,
                      "num_steps": num_steps, "meta_dim": meta_dim},
            seed=0, metrics={"wall_time_s": seconds}, wall_time_s=seconds,
        ))
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
    args = parser.parse_args(argv)
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={max(args.devices)}").strip()

    from fg2u.records import append_records

    records = _jax_scaling(args.devices, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
    if args.torch_world:
        records += _torch_scaling(args.torch_world, args.num_directions, args.num_steps, args.meta_dim, args.repeats)
    path = append_records(args.out / "cpu-simulated.jsonl", records)
    print(f"wrote {len(records)} records to {path}")


if __name__ == "__main__":
    main()
