"""TwoPhase: one estimator for the first meta steps, another afterwards (the paper's two-phase paradigm)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import lax

from fg2u._checks import check_callable, check_nonnegative_int
from fg2u.estimator import Aux

PyTree = Any

__all__ = ["TwoPhase"]


@dataclasses.dataclass(frozen=True)
class TwoPhase:
    """``first`` while ``meta_step < switch_step``, then ``second`` (e.g. a cheap truncated estimator, then FG²U).

    ``meta_step`` may be a Python int (plain Python dispatch: only the chosen estimator is traced) or a traced
    integer inside ``jax.jit`` (``lax.cond``: both estimators are compiled, one runs; their outputs must have
    the same shapes and dtypes, which holds for every estimator of :mod:`fg2u.jax` on the same problem).
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
        try:
            step = int(meta_step)
        except (jax.errors.ConcretizationTypeError, TypeError):
            return lax.cond(
                meta_step < self.switch_step,
                lambda: self.first(problem, phi, key),
                lambda: self.second(problem, phi, key),
            )
        chosen = self.first if step < self.switch_step else self.second
        return chosen(problem, phi, key)
