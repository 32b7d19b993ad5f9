"""The core's combinators (:mod:`fg2u.estimators.combinators`) bound to PyTorch arithmetic
(:mod:`fg2u.torch._ops`; counters are Python ints)."""

from __future__ import annotations

from fg2u.estimators.combinators import bind
from fg2u.torch._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]

TwoPhase, Scaled, ControlVariate, RunningControlVariate = bind(TREE_OPS, "PyTorch", __name__)
