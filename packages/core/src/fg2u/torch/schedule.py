"""TwoPhase: one estimator for the first meta steps, another afterwards (the paper's two-phase paradigm)."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import torch

from fg2u._checks import check_callable, check_nonnegative_int
from fg2u.estimator import Aux
from fg2u.torch._pytree import PyTree

__all__ = ["TwoPhase"]


@dataclasses.dataclass(frozen=True)
class TwoPhase:
    """``first`` while ``meta_step < switch_step``, then ``second`` (e.g. a cheap Hessian-free or truncated
    estimator for warm-up, then FG²U).

    ``meta_step`` is a Python int or a 0-d integer tensor (the outer loop's counter).
    """

    first: Any
    second: Any
    switch_step: int

    def __post_init__(self) -> None:
        check_callable("first", self.first)
        check_callable("second", self.second)
        check_nonnegative_int("switch_step", self.switch_step)

    def __call__(self, problem: Any, phi: PyTree, key: Any = None, meta_step: Any = 0) -> tuple[PyTree, Aux]:
        """The estimate of the estimator active at ``meta_step``."""
        if isinstance(meta_step, torch.Tensor):
            if meta_step.numel() != 1 or meta_step.is_floating_point():
                raise TypeError(f"meta_step must be an int or a 0-d integer tensor, got {meta_step!r}")
            meta_step = int(meta_step.item())
        if isinstance(meta_step, bool) or not isinstance(meta_step, numbers.Integral):
            raise TypeError(f"meta_step must be an int (the outer step counter), got {type(meta_step).__name__}")
        chosen = self.first if meta_step < self.switch_step else self.second
        return chosen(problem, phi, key)
