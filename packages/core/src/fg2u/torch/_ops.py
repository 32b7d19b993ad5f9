"""The PyTorch implementation of [`fg2u.estimators.base.TreeOps`][fg2u.estimators.TreeOps] (what the core's combinators
need)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fg2u.torch._pytree import PyTree, tree_flatten, tree_map
from fg2u.torch.directions import TorchOps, sample_directions

__all__ = ["TorchTreeOps", "TREE_OPS"]


class TorchTreeOps:
    """Pytree arithmetic on tensors; counters are Python ints (the meta loop is Python)."""

    def counter(self, value: int) -> int:
        return int(value)

    def cond(self, pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
        return true_fn() if bool(pred) else false_fn()

    def scale(self, tree: PyTree, factor: Any) -> PyTree:
        return tree_map(lambda x: (x * factor).to(x.dtype), tree)

    def add(self, a: PyTree, b: PyTree) -> PyTree:
        return tree_map(lambda x, y: x + y, a, b)

    def sub(self, a: PyTree, b: PyTree) -> PyTree:
        return tree_map(lambda x, y: x - y, a, b)

    def vdot(self, a: PyTree, b: PyTree) -> torch.Tensor:
        return torch.stack([torch.sum(x * y) for x, y in zip(tree_flatten(a)[0], tree_flatten(b)[0])]).sum()

    def zeros_like(self, tree: PyTree) -> PyTree:
        return tree_map(lambda x: torch.zeros_like(x).detach(), tree)

    def split_key(self, key: Any, num: int) -> list:
        if key is None:
            raise TypeError("a randomised estimator needs a torch.Generator or an int seed as key, not None")
        return TorchOps().split(key, num)

    def sample_directions(self, distribution: Any, key: Any, num_directions: int, like: PyTree) -> PyTree:
        return sample_directions(distribution, key, num_directions, like)

    def project(self, directions: PyTree, tree: PyTree) -> PyTree:
        dirs, leaves = tree_flatten(directions)[0], tree_flatten(tree)[0]
        b = dirs[0].shape[0]
        coeffs = sum(d.reshape(b, -1) @ t.reshape(-1).to(d.dtype) for d, t in zip(dirs, leaves))
        return tree_map(lambda d: torch.tensordot(coeffs, d, dims=1) / b, directions)

    def take(self, directions: PyTree, start: int, stop: int) -> PyTree:
        return tree_map(lambda d: d[start:stop], directions)

    def where(self, pred: Any, a: Any, b: Any) -> Any:
        if isinstance(pred, torch.Tensor):
            return torch.where(pred, torch.as_tensor(a), torch.as_tensor(b))
        return a if pred else b

    def size(self, tree: PyTree) -> int:
        return sum(int(x.numel()) for x in tree_flatten(tree)[0])


TREE_OPS = TorchTreeOps()
