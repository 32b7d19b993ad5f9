"""The core's combinators (:mod:`fg2u.estimators.combinators`) bound to JAX arithmetic (:mod:`fg2u.jax._ops`;
counters are ``int32`` arrays, so the state can be traced under ``jax.jit``)."""

from __future__ import annotations

from fg2u.estimators.combinators import bind

from ._ops import TREE_OPS

__all__ = ["TwoPhase", "Scaled", "ControlVariate", "RunningControlVariate"]

TwoPhase, Scaled, ControlVariate, RunningControlVariate = bind(TREE_OPS, "JAX", __name__)
