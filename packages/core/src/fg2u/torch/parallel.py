"""Direction-parallel FG²U over a ``torch.distributed`` process group (one node or many).

Each of the ``W`` ranks computes ``b / W`` of the b directions and the estimates are averaged with one
``all_reduce``: ``ĝ = (1/W) Σ_r ĝ_r``, with ``ĝ_r`` the mean over rank r's directions. Sampled
directions come from rank-folded seeds, so ranks never repeat each other's directions; with explicit
directions ([`DirectionParallel.with_directions`][fg2u.torch.DirectionParallel.with_directions]) every rank takes its
contiguous share and the result equals the single-process estimate for the same directions.

Launch with ``torchrun --nproc-per-node=G script.py`` (one node) or with ``--nnodes``/``--rdzv-endpoint``
(several nodes) after ``torch.distributed.init_process_group("nccl" | "gloo")``; see docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.distributed as dist

from fg2u.estimator import Aux
from fg2u.estimators import Estimator
from fg2u.torch._pytree import PyTree, tree_flatten, tree_unflatten
from fg2u.torch.directions import as_generator, sample_directions
from fg2u.torch.forward import FG2U, FG2U_ZO

__all__ = ["DirectionParallel", "rank_seed"]

_SEED_MODULUS = 2**62


def rank_seed(key: Any, rank: int) -> int:
    """The seed of rank ``rank``: a base seed drawn from ``key`` (int seed or generator) folded with the rank.

    Every rank must pass the same key; the generator case draws one number from it on every rank.
    """
    base = int(torch.randint(0, _SEED_MODULUS, (1,), generator=as_generator(key, "key")).item())
    return (base * 1_000_003 + 7_919 * (rank + 1)) % _SEED_MODULUS


@dataclasses.dataclass(frozen=True)
class DirectionParallel(Estimator):
    """Runs an [`FG2U`][fg2u.torch.FG2U] or [`FG2U_ZO`][fg2u.torch.FG2U_ZO] estimator with its b directions split over
    the ranks.

    Args:
      estimator: the FG²U / FG²U-ZO estimator; ``num_directions`` must be divisible by the world size.
      group: the process group (``None``: the default group; ``torch.distributed`` must be initialised).

    Every rank calls it with the same problem, φ and key and gets the same averaged ``(grad, Aux)``.
    """

    estimator: FG2U | FG2U_ZO
    group: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.estimator, (FG2U, FG2U_ZO)):
            raise TypeError(
                "DirectionParallel spreads random directions over processes, so it wraps FG2U or FG2U_ZO; "
                f"got {type(self.estimator).__name__}"
            )

    @property
    def display_name(self) -> str:
        """Records name it like the wrapped estimator (same estimate); ``settings()`` adds the world size."""
        return self.estimator.display_name

    def settings(self) -> dict[str, Any]:
        world = dist.get_world_size(self.group) if dist.is_available() and dist.is_initialized() else None
        return {**self.estimator.settings(), "direction_parallel_world_size": world}

    def _world(self) -> tuple[int, int]:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "DirectionParallel needs torch.distributed initialised: call "
                "torch.distributed.init_process_group('gloo' or 'nccl') in every process (torchrun does the "
                "rendezvous), or use the estimator directly in a single process"
            )
        rank, world = dist.get_rank(self.group), dist.get_world_size(self.group)
        if self.estimator.num_directions % world:
            raise ValueError(
                f"num_directions={self.estimator.num_directions} is not divisible by the world size {world}; "
                f"choose a multiple of {world}"
            )
        return rank, world

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """This rank draws ``b / W`` directions from its rank-folded seed; the estimates are averaged."""
        rank, world = self._world()
        local = sample_directions(
            self.estimator.distribution, rank_seed(key, rank), self.estimator.num_directions // world, like=phi
        )
        return self._all_mean(self.estimator.with_directions(problem, phi, local), world)

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit directions (all b, identical on every rank): rank r takes share r."""
        rank, world = self._world()
        leaves, spec = tree_flatten(directions)
        b = leaves[0].shape[0]
        if b % world:
            raise ValueError(f"{b} directions cannot be split evenly over {world} ranks")
        share = b // world
        local = tree_unflatten([leaf[rank * share : (rank + 1) * share] for leaf in leaves], spec)
        return self._all_mean(self.estimator.with_directions(problem, phi, local), world)

    def _all_mean(self, estimate: tuple[PyTree, Aux], world: int) -> tuple[PyTree, Aux]:
        grad, aux = estimate
        leaves, spec = tree_flatten(grad)
        loss = torch.as_tensor(aux.outer_loss, dtype=leaves[0].dtype, device=leaves[0].device)
        packed = torch.cat([leaf.reshape(-1).to(leaves[0].dtype) for leaf in leaves] + [loss.reshape(1)])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=self.group)
        packed = packed / world
        out, offset = [], 0
        for leaf in leaves:
            out.append(packed[offset : offset + leaf.numel()].reshape(leaf.shape).to(leaf.dtype))
            offset += leaf.numel()
        return tree_unflatten(out, spec), Aux(outer_loss=packed[-1].to(loss.dtype))
