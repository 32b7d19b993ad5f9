"""Worker for test_torch_parallel.py: W gloo processes on CPU run DirectionParallel(FG2U) and rank 0
writes what every rank computed to a JSON file.

    python torch_direction_parallel.py --world 2 --out result.json
"""

import argparse
import json
import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import fg2u
import fg2u.torch as ft

NUM_DIRECTIONS = 8


def make_problem():
    """θ_{t+1} = θ_t − η(Aθ_t − tanh(φ)), F = ‖θ_T − 1‖²: a small non-linear problem in float64."""
    A = torch.diag(torch.arange(1.0, 6.0, dtype=torch.float64))
    problem = fg2u.UnrolledProblem(
        init=lambda phi: torch.zeros(5, dtype=torch.float64),
        step=lambda theta, phi, _: theta - 0.1 * (A @ theta - torch.tanh(phi)),
        outer_loss=lambda theta, phi, _: torch.sum((theta - 1.0) ** 2),
        num_steps=20,
    )
    return problem, torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)


def worker(rank, world, init_file, out):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        problem, phi = make_problem()
        estimator = ft.FG2U(num_directions=NUM_DIRECTIONS)
        parallel = ft.DirectionParallel(estimator)
        directions = ft.sample_directions("rademacher", 123, NUM_DIRECTIONS, like=phi)
        explicit, _ = parallel.with_directions(problem, phi, directions)
        sampled, aux = parallel(problem, phi, 7)
        # this rank's own share, recomputed locally, gathered to compare across ranks
        local = ft.sample_directions("rademacher", ft.rank_seed(7, rank), NUM_DIRECTIONS // world, like=phi)
        local_estimate, _ = estimator.with_directions(problem, phi, local)
        gathered_dirs = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(gathered_dirs, local)
        gathered_estimates = [torch.empty_like(local_estimate) for _ in range(world)]
        dist.all_gather(gathered_estimates, local_estimate)
        if rank == 0:
            single, _ = estimator.with_directions(problem, phi, directions)
            with open(out, "w") as f:
                json.dump(
                    {
                        "explicit": explicit.tolist(),
                        "single": single.tolist(),
                        "sampled": sampled.tolist(),
                        "loss": float(aux.outer_loss),
                        "local_directions": [d.tolist() for d in gathered_dirs],
                        "local_estimates": [e.tolist() for e in gathered_estimates],
                    },
                    f,
                )
        dist.barrier()  # no rank tears gloo down while another is still using it (an abort otherwise)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(
            worker,
            args=(args.world, os.path.join(tmp, "rendezvous"), args.out),
            nprocs=args.world,
            join=True,
            start_method="spawn",
        )
