"""The core's combinators (:mod:`fg2u.estimators.combinators`) bound to PyTorch arithmetic."""

from __future__ import annotations

from fg2u import estimators

from fg2u.torch._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]


class TwoPhase(estimators.TwoPhase):
    """:class:`fg2u.estimators.TwoPhase` on PyTorch (the step counter is a Python int)."""

    ops = TREE_OPS


class Scaled(estimators.Scaled):
    """:class:`fg2u.estimators.Scaled` on PyTorch."""

    ops = TREE_OPS


class ControlVariate(estimators.ControlVariate):
    """:class:`fg2u.estimators.ControlVariate` on PyTorch."""

    ops = TREE_OPS


class RunningControlVariate(estimators.RunningControlVariate):
    """:class:`fg2u.estimators.RunningControlVariate` on PyTorch (state: running mean like φ, int count)."""

    ops = TREE_OPS
