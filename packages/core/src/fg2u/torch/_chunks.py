"""``Σ_i c(v_i) v_i`` over b directions: vmapped inside chunks, chunks one after the other (memory ∝ chunk)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch

from fg2u.torch._pytree import tree_unflatten

__all__ = ["weighted_direction_sum", "chunked_direction_sum"]

# (coefficient c_i, value l_i) of one direction, given the leaves of v_i
PerDirection = Callable[[list], tuple[torch.Tensor, torch.Tensor]]

_warned: set[str] = set()


def _vmapped_or_looped(per_direction: PerDirection, chunk: list[torch.Tensor], vectorize: bool, who: str):
    """``(coeffs (c,), values (c,))`` for one chunk: ``torch.func.vmap`` over its directions, or — when
    ``vectorize`` is False or vmap cannot batch some operation of the problem (data-dependent control
    flow, an op without a batching rule, an in-place update of a captured tensor) — a Python loop."""
    c = chunk[0].shape[0]
    if vectorize and c > 1:
        try:
            return torch.func.vmap(lambda *v: per_direction(list(v)), randomness="same")(*chunk)
        except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
            vmap_error = err
    else:
        vmap_error = None
    coeffs, values = [], []
    for i in range(c):
        coeff, value = per_direction([leaf[i] for leaf in chunk])
        coeffs.append(coeff)
        values.append(value)
        if i == 0 and vmap_error is not None and who not in _warned:
            # warn only once the loop works, so a genuine error in the problem is not masked by this note
            _warned.add(who)
            warnings.warn(
                f"{who}: torch.func.vmap could not batch the directions of this problem "
                f"({type(vmap_error).__name__}: {str(vmap_error).splitlines()[0][:200]}); falling back to a "
                "loop over the directions of each chunk (same result, slower)",
                RuntimeWarning,
                stacklevel=4,
            )
    return torch.stack(coeffs), torch.stack(values)


def weighted_direction_sum(
    per_direction: PerDirection,
    direction_leaves: Sequence[torch.Tensor],
    spec: Any,
    num_directions: int,
    chunk_size: int | None,
    who: str,
    vectorize: bool = True,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Returns ``(Σ_i c_i v_i, Σ_i l_i, l_0)`` where ``(c_i, l_i) = per_direction(v_i)``.

    ``direction_leaves``: leaves of the directions pytree (``spec``), each with a leading axis
    ``b = num_directions``. Chunks of ``chunk_size`` directions (``None``: all b) run one after the other;
    only the running sums are kept between chunks, so the working memory of the per-direction
    computations is proportional to the chunk size.
    """
    b = num_directions
    c = b if chunk_size is None else min(int(chunk_size), b)
    totals = [torch.zeros_like(leaf[0]) for leaf in direction_leaves]
    value_sum, value0 = None, None
    for start in range(0, b, c):
        chunk = [leaf[start : start + c] for leaf in direction_leaves]
        coeffs, values = _vmapped_or_looped(per_direction, chunk, vectorize, who)
        for k, leaf in enumerate(chunk):
            totals[k] = totals[k] + torch.tensordot(coeffs.to(leaf.dtype), leaf, dims=1)
        s = values.sum()
        value_sum = s if value_sum is None else value_sum + s
        if value0 is None:
            value0 = values[0]
    return tree_unflatten(totals, spec), cast(torch.Tensor, value_sum), cast(torch.Tensor, value0)


def chunked_direction_sum(
    per_chunk: Callable[[list], tuple[torch.Tensor, torch.Tensor]],
    direction_leaves: Sequence[torch.Tensor],
    spec: Any,
    num_directions: int,
    chunk_size: int | None,
) -> tuple[Any, torch.Tensor]:
    """Returns ``(Σ_i c_i v_i, l)`` where ``(c_chunk (c,), l) = per_chunk(chunk_leaves)`` for each chunk of
    ``chunk_size`` directions (``None``: all b at once), chunks one after the other; ``l`` is the value of the
    first chunk (a per-problem quantity such as L(φ), the same for every chunk)."""
    b = num_directions
    c = b if chunk_size is None else min(int(chunk_size), b)
    totals = [torch.zeros_like(leaf[0]) for leaf in direction_leaves]
    value0 = None
    for start in range(0, b, c):
        chunk = [leaf[start : start + c] for leaf in direction_leaves]
        coeffs, value = per_chunk(chunk)
        for k, leaf in enumerate(chunk):
            totals[k] = totals[k] + torch.tensordot(coeffs.to(leaf.dtype), leaf, dims=1)
        if value0 is None:
            value0 = value
    return tree_unflatten(totals, spec), cast(torch.Tensor, value0)
