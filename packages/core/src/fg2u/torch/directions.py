"""Direction sampling on torch: [`TorchOps`][fg2u.torch.TorchOps] (the
[`fg2u.directions.RandomOps`][fg2u.directions.RandomOps] protocol) and
[`sample_directions`][fg2u.torch.sample_directions] (flat sampling, then unflattened into the pytree of φ)."""

from __future__ import annotations

import numbers
from typing import Any

import torch

from fg2u.checks import check_positive_int
from fg2u.directions import DirectionDistribution, get_distribution
from fg2u.torch._pytree import PyTree, check_meta_params, num_elements, tree_unflatten, unravel_batch

__all__ = ["TorchOps", "as_generator", "sample_directions"]


def as_generator(key: Any, who: str = "key") -> torch.Generator:
    """A ``torch.Generator`` from a generator (used, and advanced, as is) or an int seed (a fresh one)."""
    if isinstance(key, torch.Generator):
        return key
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return torch.Generator().manual_seed(int(key) % (2**63))
    raise TypeError(
        f"{who} must be a torch.Generator or an int seed, got {type(key).__name__}: {key!r} "
        "(random estimators need randomness; e.g. pass torch.Generator().manual_seed(0) or 0)"
    )


class TorchOps:
    """[`fg2u.directions.RandomOps`][fg2u.directions.RandomOps] on torch. ``key``: a ``torch.Generator`` or an int seed.

    A generator key is *advanced* by sampling (torch's stateful convention): two calls with the same
    generator give different directions, two calls with the same int seed give the same ones.
    Samples are drawn on the generator's device (CPU for an int seed).
    """

    def split(self, key: Any, num: int) -> list:
        g = as_generator(key)
        seeds = torch.randint(0, 2**62, (num,), generator=g, device=g.device).tolist()
        return [torch.Generator(device=g.device).manual_seed(int(s)) for s in seeds]

    def normal(self, key: Any, shape: tuple[int, ...], dtype: Any = torch.float32) -> torch.Tensor:
        g = as_generator(key)
        return torch.randn(shape, generator=g, dtype=dtype, device=g.device)

    def rademacher(self, key: Any, shape: tuple[int, ...], dtype: Any = torch.float32) -> torch.Tensor:
        g = as_generator(key)
        return (2 * torch.randint(0, 2, shape, generator=g, device=g.device) - 1).to(dtype)

    def row_norms(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x, dim=1, keepdim=True)

    def orthonormal_rows(self, x: torch.Tensor) -> torch.Tensor:
        q, r = torch.linalg.qr(x.T)
        return (q * torch.sign(torch.diagonal(r))).T

    def concatenate(self, xs: list) -> torch.Tensor:
        return torch.cat(xs, dim=0)


def sample_directions(distribution: str | DirectionDistribution, key: Any, num_directions: int, like: PyTree) -> PyTree:
    """``num_directions`` directions ``v_i ∈ R^N`` (``N`` = number of entries of φ), as a pytree like
    ``like`` whose leaves have a leading axis ``b = num_directions``.

    Sampled flat as a ``(b, N)`` matrix by [`fg2u.directions`][fg2u.directions] (so every distribution satisfies
    ``E[v vᵀ] = I`` over the whole of φ), in the widest floating dtype of φ, then cut into the leaves of
    φ and cast to each leaf's dtype and device.
    """
    dist = get_distribution(distribution)
    b = check_positive_int("num_directions", num_directions)
    leaves, spec = check_meta_params(like, "sample_directions")
    dtype = leaves[0].dtype
    for leaf in leaves[1:]:
        dtype = torch.promote_types(dtype, leaf.dtype)
    flat = dist.sample(TorchOps(), as_generator(key), b, num_elements(leaves), dtype)
    return tree_unflatten(unravel_batch(flat, leaves), spec)
