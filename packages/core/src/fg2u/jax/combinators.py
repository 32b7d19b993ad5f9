"""The core's combinators (:mod:`fg2u.estimators.combinators`) bound to JAX arithmetic."""

from __future__ import annotations

from fg2u import estimators

from ._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]


class TwoPhase(estimators.TwoPhase):
    """:class:`fg2u.estimators.TwoPhase` on JAX (the step counter is an ``int32`` array; traced under jit)."""

    ops = TREE_OPS


class Scaled(estimators.Scaled):
    """:class:`fg2u.estimators.Scaled` on JAX."""

    ops = TREE_OPS


class ControlVariate(estimators.ControlVariate):
    """:class:`fg2u.estimators.ControlVariate` on JAX."""

    ops = TREE_OPS


class RunningControlVariate(estimators.RunningControlVariate):
    """:class:`fg2u.estimators.RunningControlVariate` on JAX (state: running mean like φ, ``int32`` count)."""

    ops = TREE_OPS
